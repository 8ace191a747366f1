//! What the driver, the RPC server and the gossip tasks share: the chain's
//! identity, the state, the executor, the mempool and the transport, and
//! the driver's progress. Transactions enter the mempool only through
//! [`Shared::admit`] and [`Shared::admit_batch`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stele_exec::{Executor, SharedState, StateBase};
use stele_types::codec::Encode;
use stele_types::{Address, Hash, Limits, SignedTransaction, ValidatorSet};
use tokio::sync::{Notify, broadcast};

use super::gossip::GossipTx;
use super::{Progress, Role};
use crate::mempool::{
    AdmitError, Mempool, MempoolConfig, VerifiedTx, verify_raw_as, verify_raw_batch,
};
use crate::metrics::NodeMetrics;
use crate::net::{Channel, Network};
use crate::sender_keys::SenderKeys;
use crate::store::CommittedBlock;
use stele_client::api::SyncPhase;

/// State shared by the driver, the RPC layer and the gossip tasks.
#[derive(Debug)]
pub struct Shared {
    pub(super) role: Role,
    pub(super) chain_id: u64,
    pub(super) genesis_hash: Hash,
    pub(super) validators: ValidatorSet,
    pub(super) state: SharedState,
    pub(super) executor: Arc<Executor>,
    pub(super) mempool: Mutex<Mempool>,
    pub(super) mempool_config: MempoolConfig,
    /// Tables of busy senders, for checking transactions whose sender was
    /// named by the client or the gossiping validator.
    pub(super) sender_keys: SenderKeys,
    pub(super) limits: Limits,
    pub(super) net: Network,
    pub(super) commits: broadcast::Sender<Arc<CommittedBlock>>,
    pub(super) metrics: Arc<NodeMetrics>,
    pub(super) height: AtomicU64,
    pub(super) view: AtomicU64,
    /// The replica's stable checkpoint (its low watermark), for `precheck`.
    pub(super) stable_seq: AtomicU64,
    pub(super) view_changes: AtomicU64,
    pub(super) syncing: AtomicBool,
    /// The highest height a sync was asked to reach: what this node knows
    /// its peers committed (`/health` compares it with `height`).
    pub(super) peer_height: AtomicU64,
    /// When a full node last heard of a new certified block (pushed or
    /// fetched, its certificate checked): `/health` finds a full node that
    /// hears nothing stale, however close to its peers it thinks it is.
    pub(super) heard: Mutex<Option<Instant>>,
    pub(super) tx_arrived: Notify,
    /// The indexes written with each committed block.
    pub(super) index: crate::index::IndexConfig,
    /// The epoch of the block after the committed tip (ADR 0010).
    pub(super) epoch: std::sync::RwLock<Arc<super::EpochView>>,
    /// The protocol of the block after the committed tip, and the upgrade
    /// scheduled (ADR 0011).
    pub(super) protocol: std::sync::RwLock<Arc<super::ProtocolView>>,
    /// The join by snapshot at start, if any (for `/status`).
    pub(super) join: Arc<super::JoinProgress>,
}

impl Shared {
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// A certified block at `height` was heard of (its certificate
    /// checked): peers have committed up to there at least.
    pub(super) fn heard_certified(&self, height: u64) {
        self.peer_height.fetch_max(height, Ordering::Relaxed);
        *self
            .heard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// The epoch of the next block: its number, its validator set and the
    /// change decided in it.
    pub fn epoch(&self) -> Arc<super::EpochView> {
        self.epoch
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_epoch(&self, epoch: Arc<super::EpochView>) {
        *self
            .epoch
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = epoch;
    }

    /// The protocol of the next block, and the upgrade scheduled.
    pub fn protocol(&self) -> Arc<super::ProtocolView> {
        self.protocol
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_protocol(&self, protocol: Arc<super::ProtocolView>) {
        self.mempool().set_protocol(&protocol.active);
        *self
            .protocol
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = protocol;
    }

    /// The genesis validator set (the current one is [`Shared::epoch`]'s).
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The Merkle state and block store (one RocksDB).
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// Committed blocks, as they commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.commits.subscribe()
    }

    pub(super) fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // Every mempool operation leaves its indexes consistent before it
        // can panic, so a poisoned lock still guards a usable pool.
        self.mempool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The committed state the mempool checks against.
    pub fn latest_base(&self) -> StateBase {
        StateBase::latest(&self.state, None)
    }

    /// Verifies and admits a raw transaction, signed by `claimed` when
    /// that is given; returns its hash. With `gossip`, the transaction is
    /// sent to every validator, naming its sender, once it is ready: at
    /// once, or if it waits behind a nonce gap, when the gap closes
    /// ([`Mempool::insert_announced`]). Transactions whose gap this one
    /// closed are sent too.
    pub fn admit(
        &self,
        raw: &[u8],
        claimed: Option<Address>,
        gossip: bool,
    ) -> Result<Hash, AdmitError> {
        let claim = claimed.map(|sender| (sender, &self.sender_keys));
        let vtx = verify_raw_as(raw, &self.mempool_config, &self.limits, claim)?;
        let hash = self.insert_verified(vtx, claimed.is_some(), gossip)?;
        self.tx_arrived.notify_one();
        Ok(hash)
    }

    /// Gossips the announced transactions that have become ready
    /// ([`Mempool::take_announcements`]); called after every mempool
    /// change that can close a gap (an admission, a commit).
    pub(super) fn announce(&self, ready: Vec<(Address, SignedTransaction)>) {
        for (sender, tx) in ready {
            let raw = tx.to_bytes();
            let payload = GossipTx {
                sender: Some(sender),
                raw: &raw,
            };
            self.net.broadcast(Channel::Gossip, payload.encode());
        }
    }

    /// [`Shared::admit`] for many transactions (a batch of gossip),
    /// results in order; those whose `relay` is set are gossiped on as a
    /// client's would be, the others not at all. The signature checks of
    /// named senders share their inversions ([`verify_raw_batch`]).
    pub fn admit_batch(
        &self,
        items: &[(&[u8], Option<Address>)],
        relay: &[bool],
    ) -> Vec<Result<Hash, AdmitError>> {
        let verified =
            verify_raw_batch(items, &self.mempool_config, &self.limits, &self.sender_keys);
        let results: Vec<Result<Hash, AdmitError>> = verified
            .into_iter()
            .zip(items)
            .zip(relay.iter().chain(std::iter::repeat(&false)))
            .map(|((vtx, (_, claimed)), relay)| {
                self.insert_verified(vtx?, claimed.is_some(), *relay)
            })
            .collect();
        if results.iter().any(Result::is_ok) {
            self.tx_arrived.notify_one();
        }
        results
    }

    /// Puts a transaction whose signature was checked into the mempool and
    /// remembers its sender; `named` counts it towards the sender's table;
    /// with `announce` it is gossiped once ready. Gossips whatever
    /// announced transactions became ready.
    fn insert_verified(
        &self,
        vtx: VerifiedTx,
        named: bool,
        announce: bool,
    ) -> Result<Hash, AdmitError> {
        let (hash, sender) = (vtx.hash, vtx.sender);
        let base = self.latest_base();
        let (admitted, ready) = {
            let mut pool = self.mempool();
            let admitted = if announce {
                pool.insert_announced(vtx, &base)
            } else {
                pool.insert(vtx, &base)
            };
            // Taken after a refusal too: admission first revalidates the
            // sender's queue against the state just read.
            (admitted, pool.take_announcements())
        };
        self.announce(ready);
        admitted?;
        if named {
            self.sender_keys.admitted(&sender);
        }
        // Block execution on this node will not check the signature again.
        self.executor.remember_sender(hash, sender);
        Ok(hash)
    }

    /// Whether the mempool holds the transaction `hash`.
    pub fn is_pending(&self, hash: &Hash) -> bool {
        self.mempool().get(hash).is_some()
    }

    /// A pending transaction by hash.
    pub fn pending(&self, hash: &Hash) -> Option<SignedTransaction> {
        self.mempool().get(hash).cloned()
    }

    /// The next nonce of `sender`, counting its pending transactions.
    pub fn pending_nonce(&self, sender: &Address) -> u64 {
        let base = self.latest_base();
        self.mempool().pending_nonce(sender, &base)
    }

    /// (transactions, bytes) in the mempool.
    pub fn mempool_size(&self) -> (usize, usize) {
        let pool = self.mempool();
        (pool.len(), pool.bytes())
    }

    pub fn progress(&self) -> Progress {
        Progress {
            height: self.height.load(Ordering::Relaxed),
            view: self.view.load(Ordering::Relaxed),
            view_changes: self.view_changes.load(Ordering::Relaxed),
            syncing: self.syncing.load(Ordering::Relaxed),
        }
    }
}

impl crate::rpc::TxSubmitter for Shared {
    fn submit(&self, raw: &[u8], sender: Option<Address>) -> Result<Hash, AdmitError> {
        self.admit(raw, sender, true)
    }

    fn pending(&self, hash: &Hash) -> Option<SignedTransaction> {
        Shared::pending(self, hash)
    }

    fn pending_nonce(&self, address: &Address) -> u64 {
        Shared::pending_nonce(self, address)
    }
}

impl crate::rpc::NodeStatus for Shared {
    fn status(&self) -> crate::rpc::StatusInfo {
        let p = self.progress();
        let (txs, bytes) = self.mempool_size();
        let net = self.net.metrics();
        let full_node = self.role == Role::Full;
        crate::rpc::StatusInfo {
            chain_id: self.chain_id,
            full_node,
            height: p.height,
            certified_height: self.peer_height.load(Ordering::Relaxed).max(p.height),
            view: p.view,
            // A full node counts every peer it follows from; a validator
            // the validators it reaches.
            peers_connected: if full_node {
                net.peers_connected() + net.followers_connected()
            } else {
                net.peers_connected()
            },
            syncing: p.syncing,
            mempool_txs: txs as u64,
            mempool_bytes: bytes as u64,
            // Filled in by the RPC handler, which reads the block store.
            blocks_from: 1,
            phase: if p.syncing {
                SyncPhase::Blocks
            } else {
                SyncPhase::Live
            },
            snapshot: self.join.info(),
        }
    }

    fn peer_height(&self) -> Option<u64> {
        Some(self.peer_height.load(Ordering::Relaxed))
    }

    fn silent_for(&self) -> Option<Duration> {
        if self.role != Role::Full {
            return None;
        }
        let heard = *self
            .heard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Never heard of one: silent since the start, as far as `/health`
        // cares.
        Some(heard.map_or(Duration::MAX, |at| at.elapsed()))
    }
}
