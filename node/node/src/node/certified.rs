//! Certified blocks from peers: how a full node (no validator role) moves
//! along the chain (ADR 0009). Validators push each block to their
//! followers as they commit it; a block above the next one shows a gap,
//! which block sync fills. Every certificate is checked against the
//! validator set of its epoch here (the set the tip's state names), as the
//! replica checks a validator's; a block is then checked against its
//! certificate, executed, and committed only if its state root matches.
//! Following the chain block by block follows the chain of validator sets:
//! an epoch's last block installs the next set in the state.

use std::sync::atomic::Ordering;

use stele_types::Address;
use tracing::debug;

use super::{BlockRejected, NodeError, follower::Follower};
use crate::metrics::PeerGarbage;
use crate::sync::SyncedBlock;

/// Most blocks fetched on the word of a certificate of a later epoch, which
/// this node cannot check yet.
const UNCHECKED_FETCH_BLOCKS_MAX: u64 = 64;

impl Follower {
    /// A block `from` pushed as it committed it (`Channel::Blocks`).
    pub(super) async fn on_pushed(&mut self, from: Address, bytes: &[u8]) -> Result<(), NodeError> {
        match SyncedBlock::decode_item(bytes, &self.shared.limits) {
            Ok(block) => self.on_certified(Some(from), block).await,
            Err(e) => {
                self.garbage(Some(from), &e);
                Ok(())
            }
        }
    }

    /// A block pushed to a node that runs a replica: only a hint that the
    /// chain is ahead, to fetch up to (each fetched block's certificate is
    /// checked by the replica).
    pub(super) fn hint_pushed(&mut self, bytes: &[u8]) {
        let Ok(block) = SyncedBlock::decode_item(bytes, &self.shared.limits) else {
            return;
        };
        let height = block.certificate.height;
        let next = self.tip.height + 1;
        if height >= next && height > self.catch_up.target() {
            self.catch_up
                .start(next, height.min(next + UNCHECKED_FETCH_BLOCKS_MAX));
        }
    }

    /// A certified block, pushed by `from` or fetched (`None`). One at or
    /// below the tip is known already; its certificate is not even checked.
    /// One above the next height, once its certificate checks, tells the
    /// node how far the chain is and starts a fetch of the gap. The next
    /// block, its certificate checked and the block found to be the one it
    /// certifies, is executed and committed: a certified block that does
    /// not execute to its state root on the tip means this node is broken
    /// (or a quorum of validators is), and stops it.
    pub(super) async fn on_certified(
        &mut self,
        from: Option<Address>,
        block: SyncedBlock,
    ) -> Result<(), NodeError> {
        let SyncedBlock {
            payload,
            certificate,
        } = block;
        let height = certificate.height;
        if height <= self.tip.height {
            return Ok(());
        }
        let next = self.tip.height + 1;
        if height > next && height <= self.shared.peer_height.load(Ordering::Relaxed) {
            // Heard of already (its certificate checked then): make sure
            // a fetch runs up to it, without checking it again.
            self.catch_up.start(next, height);
            return Ok(());
        }
        // The tip's state names the set that certifies its epoch's blocks
        // (ADR 0010). A certificate of a later epoch cannot be checked
        // until this node has followed the chain there: it only makes the
        // node fetch the next blocks, a bounded stretch whose
        // certificates are checked one by one as they come.
        if certificate.epoch > self.epoch.epoch() && height > next {
            self.catch_up
                .start(next, height.min(next + UNCHECKED_FETCH_BLOCKS_MAX));
            return Ok(());
        }
        let checked = if certificate.epoch == self.epoch.epoch() {
            certificate.verify(self.shared.chain_id, &self.epoch.validators)
        } else {
            Err(stele_types::CertificateError::WrongEpoch {
                expected: self.epoch.epoch(),
                got: certificate.epoch,
            })
        };
        if let Err(e) = checked {
            self.garbage(from, &e);
            return Ok(());
        }
        self.shared.heard_certified(height);
        if height > next {
            self.catch_up.start(next, height);
            return Ok(());
        }
        let block = match self.check_block(height, &certificate.block_hash, &payload, false) {
            Ok(block) => block,
            // Not the block the certificate is for: the sender's fault.
            Err(e @ (BlockRejected::Undecodable(_) | BlockRejected::HashMismatch)) => {
                self.garbage(from, &e);
                return Ok(());
            }
            Err(reason) => {
                return Err(NodeError::Commit {
                    height,
                    source: reason.into(),
                });
            }
        };
        self.commit_block(block, &payload, certificate).await
    }

    /// Counts a refused block; a fetched one also restarts the fetch from
    /// the next height (it has moved past it), which asks the next peer.
    fn garbage(&mut self, from: Option<Address>, error: &dyn std::fmt::Display) {
        self.shared
            .metrics
            .record_peer_garbage(PeerGarbage::BlockUncertified);
        match from {
            Some(from) => debug!(%from, %error, "refused a pushed block"),
            None => {
                debug!(%error, "refused a fetched block; fetching again");
                let target = self.catch_up.target();
                self.catch_up.restart(self.tip.height + 1, target);
            }
        }
    }
}
