//! Building the block the replica asked this validator to propose: when
//! (the proposal deadline), from which transactions, executed on which
//! parent.

use std::time::{Duration, Instant};

use stele_consensus::Input;
use stele_exec::{BlockEnv, BlockExecution, ExecError, StateBase};
use stele_state::PreparedCommit;
use stele_types::codec::Encode;
use stele_types::{Block, BlockHeader, Hash, SignedTransaction};
use tracing::{debug, warn};

use std::sync::Arc;

use stele_types::Address;

use super::follower::{Executed, Follower, next_validators_hash, root_after};
use super::{ConsensusOptions, NodeError, Shared, now_ms};
use crate::mempool::BlockLimits;

/// Selections tried for one proposal: a transaction the mempool thought
/// valid may not be (the pool is checked against committed state only);
/// it is dropped and the selection made again.
const SELECTION_ATTEMPTS: usize = 8;

/// The proposer: the proposal the replica asked for (`RequestProposal`),
/// the pacing of this node's proposals, and building them.
pub(super) struct Proposal {
    shared: Arc<Shared>,
    /// This validator, the proposer named in its blocks.
    me: Address,
    consensus: ConsensusOptions,
    asked: Option<Asked>,
    /// The uncommitted parent on which the last selection found nothing
    /// new to propose: the next proposal waits for a transaction or for the
    /// parent's commit rather than filling the pipeline with empty blocks.
    idle_above: Option<Hash>,
    last: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Asked {
    /// The epoch of the replica that asked.
    epoch: u64,
    view: u64,
    seq: u64,
    parent: Hash,
}

impl Proposal {
    pub(super) fn new(shared: Arc<Shared>, me: Address, consensus: ConsensusOptions) -> Proposal {
        Proposal {
            shared,
            me,
            consensus,
            asked: None,
            idle_above: None,
            last: Instant::now(),
        }
    }

    pub(super) fn ask(&mut self, epoch: u64, view: u64, seq: u64, parent: Hash) {
        self.asked = Some(Asked {
            epoch,
            view,
            seq,
            parent,
        });
    }

    /// Forgets the proposal asked for (the replica that asked is retired).
    pub(super) fn forget(&mut self) {
        self.asked = None;
        self.idle_above = None;
    }

    pub(super) fn is_asked(&self) -> bool {
        self.asked.is_some()
    }

    /// A transaction arrived: the next proposal need not wait as if idle.
    pub(super) fn tx_arrived(&mut self) {
        self.idle_above = None;
    }

    /// Keeps the request for the next deadline, noting that nothing new
    /// could go on `parent` if `idle`.
    fn wait(&mut self, asked: Asked, idle: bool) {
        if idle {
            self.idle_above = Some(asked.parent);
        }
        self.asked = Some(asked);
    }
}

/// How long after its previous proposal the primary proposes again:
/// `block_interval_ms` when `ready` transactions can go in a block (so
/// blocks fill), `empty_block_interval_ms` when none can or the last
/// selection came up empty (`idle`). Transactions behind a nonce gap are
/// not ready, so they never make the chain produce empty blocks faster than
/// an idle one, which still makes a block every `empty_block_interval_ms`
/// so the backups' view timers do not fire.
fn proposal_wait_ms(ready: usize, idle: bool, consensus: &ConsensusOptions) -> u64 {
    if ready == 0 || idle {
        consensus.empty_block_interval_ms
    } else {
        consensus.block_interval_ms
    }
}

/// What executing a selection gave: the execution, the state root after
/// it, the state commit to reuse, and the hash of the set that certifies
/// the next block.
type Built = (BlockExecution, Hash, Option<PreparedCommit>, Hash);

impl Proposal {
    /// When to build the pending proposal: soon if transactions a block
    /// can take wait, after the empty-block interval otherwise
    /// ([`proposal_wait_ms`]), never while its parent is neither the
    /// committed tip nor executed on it, nor while everything waiting is
    /// already in the uncommitted parent.
    pub(super) fn deadline(&self, follower: &Follower) -> Option<tokio::time::Instant> {
        let Asked { seq, parent, .. } = self.asked?;
        follower.parent_ref(&parent, seq)?;
        let idle = self.idle_above == Some(parent);
        if idle && parent != follower.tip.hash {
            return None;
        }
        let ready = self.shared.mempool().ready_len();
        let wait = proposal_wait_ms(ready, idle, &self.consensus);
        Some(tokio::time::Instant::from_std(
            self.last + Duration::from_millis(wait),
        ))
    }

    /// Builds and executes the block the replica asked for, on the
    /// committed tip or on a block still in its commit round; the input
    /// that hands it to the replica, or `None` if it waits for the next
    /// deadline.
    pub(super) async fn propose(
        &mut self,
        follower: &mut Follower,
    ) -> Result<Option<Input>, NodeError> {
        let Some(asked) = self.asked.take() else {
            return Ok(None);
        };
        let Asked { seq, parent, .. } = asked;
        let (Some(on), Some(base)) = (
            follower.parent_ref(&parent, seq),
            follower.base_on(&parent, seq),
        ) else {
            // The parent is not executed here: wait for it.
            self.wait(asked, false);
            return Ok(None);
        };
        // Past the epoch's end the block after `parent` is the next epoch's
        // (ADR 0010): this replica builds none; it is told where its epoch
        // ends once that is committed, and forgets the request.
        let epoch = follower.epoch_on(&base)?;
        if epoch.epoch() != asked.epoch {
            debug!(seq, epoch = asked.epoch, "no proposal past the epoch's end");
            return Ok(None);
        }
        let env = BlockEnv {
            height: seq,
            timestamp_ms: now_ms().max(on.timestamp_ms + 1),
            proposer: self.me,
        };
        for _ in 0..SELECTION_ATTEMPTS {
            let txs = self
                .shared
                .mempool()
                .select(self.block_limits(&base)?, &base);
            if txs.is_empty() && self.empty_block_waits(&base) {
                self.wait(asked, true);
                return Ok(None);
            }
            self.last = Instant::now();
            match self
                .build(follower, &base, &epoch.validators, &env, txs.clone())
                .await?
            {
                Ok(built) => return Ok(Some(self.proposed(follower, asked, &env, txs, built))),
                Err(e) if self.dropped_failed_tx(&e) => {}
                Err(e) if base.pending.is_some() => {
                    // Above an uncommitted parent (its writes and these may
                    // exceed one commit's limits): wait for the parent.
                    warn!(seq, error = %e, "cannot build a block above an uncommitted parent yet");
                    self.wait(asked, true);
                    return Ok(None);
                }
                Err(source) => {
                    return Err(NodeError::Propose {
                        height: seq,
                        source,
                    });
                }
            }
        }
        // Try again at the next deadline.
        self.wait(asked, false);
        Ok(None)
    }

    /// The limits of a block on `base`: its protocol's (ADR 0011).
    fn block_limits(&self, base: &StateBase) -> Result<BlockLimits, NodeError> {
        let p = self
            .shared
            .executor
            .protocol_on(base)
            .map_err(NodeError::Protocol)?;
        Ok(BlockLimits {
            gas_max: p.block_gas_max,
            bytes_max: usize::try_from(p.block_bytes_max).unwrap_or(usize::MAX),
            txs_max: usize::try_from(p.block_txs_max).unwrap_or(usize::MAX),
        })
    }

    /// Whether an empty selection waits instead of making an empty block:
    /// above an uncommitted parent everything waiting is already in the
    /// blocks above the tip; on the tip, an empty block waits for the idle
    /// interval.
    fn empty_block_waits(&self, base: &StateBase) -> bool {
        let idle = Duration::from_millis(self.consensus.empty_block_interval_ms);
        base.pending.is_some() || self.last.elapsed() < idle
    }

    /// Executes the selected transactions on `base` and computes the state
    /// root after them; `set` certifies the block (its header names the
    /// next set: this one, or the one the block installs).
    fn build(
        &self,
        follower: &Follower,
        base: &StateBase,
        set: &stele_types::ValidatorSet,
        env: &BlockEnv,
        txs: Vec<SignedTransaction>,
    ) -> impl Future<Output = Result<Result<Built, ExecError>, NodeError>> + Send + 'static {
        let executor = self.shared.executor.clone();
        let state = self.shared.state.clone();
        let (base, env, set) = (base.clone(), env.clone(), set.clone());
        let exec = follower.exec.clone();
        async move {
            exec.run(move || -> Result<Built, ExecError> {
                let exec = executor.execute_block(base.clone(), &env, &txs)?;
                let (root, prepared) = root_after(&state, env.height, &base, &exec.writes)
                    .map_err(|e| ExecError::Backend(e.to_string()))?;
                let next = next_validators_hash(&set, &exec)
                    .map_err(|e| ExecError::Backend(e.to_string()))?;
                Ok((exec, root, prepared, next))
            })
            .await
        }
    }

    /// Drops from the mempool a transaction that cannot go in a block;
    /// whether `e` was such a transaction (then the selection is made
    /// again).
    fn dropped_failed_tx(&self, e: &ExecError) -> bool {
        match e {
            ExecError::InvalidTx { hash, reason, .. } => {
                debug!(%hash, %reason, "dropping a transaction that cannot be included");
                self.shared.mempool().remove(hash);
                true
            }
            ExecError::TxInternal { hash, reason, .. } => {
                // Never a contract's doing (those are receipts), so a bug
                // or a resource of this node: the block goes on without the
                // transaction rather than the node stopping.
                warn!(%hash, %reason, "dropping a transaction whose execution failed inside the node");
                self.shared.metrics.txs_dropped_internal.inc();
                self.shared.mempool().remove(hash);
                true
            }
            _ => false,
        }
    }

    /// The block from an executed selection, kept by the follower for its
    /// commit; the input that hands it to the replica.
    fn proposed(
        &self,
        follower: &mut Follower,
        asked: Asked,
        env: &BlockEnv,
        txs: Vec<SignedTransaction>,
        (exec, state_root, prepared, next_validators_hash): Built,
    ) -> Input {
        let Asked {
            epoch,
            view,
            seq,
            parent,
        } = asked;
        // The receipts carry the hashes the executor computed.
        let tx_hashes: Vec<Hash> = exec.receipts.iter().map(|r| r.tx_hash).collect();
        let block = Block {
            header: BlockHeader {
                chain_id: self.shared.chain_id,
                height: seq,
                epoch,
                view,
                parent_hash: parent,
                tx_root: stele_types::list_root(&tx_hashes),
                state_root,
                receipts_root: exec.receipts_root,
                timestamp_ms: env.timestamp_ms,
                proposer: self.me,
                next_validators_hash,
            },
            txs,
        };
        let block_hash = block.hash();
        let payload = block.to_bytes();
        debug!(seq, view, txs = block.txs.len(), "proposing");
        let metrics = &self.shared.metrics;
        if parent != follower.tip.hash {
            metrics.pipelined_blocks.inc();
        }
        metrics
            .exec_seconds
            .observe(self.last.elapsed().as_secs_f64());
        follower.remember(block_hash, Executed::new(block, exec, prepared));
        Input::ProposalReady {
            view,
            seq,
            block_hash,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{AccountState, AccountView, Mempool, MempoolConfig, VerifiedTx};
    use stele_types::{Address, SecretKey};

    #[test]
    fn only_gapped_transactions_waiting_wait_the_empty_block_interval() {
        let opts = ConsensusOptions::default();
        let k = SecretKey::from_bytes(&[7; 32]).expect("a valid key");
        let mut pool = Mempool::new(MempoolConfig::new(1));
        let view = |nonce| AccountState {
            nonce,
            balance: 1 << 60,
        };
        struct One(AccountState);
        impl AccountView for One {
            fn account(&self, _: &Address) -> AccountState {
                self.0
            }
        }
        let tx = |nonce| {
            let signed = stele_types::Transaction {
                chain_id: 1,
                nonce,
                gas_limit: 30_000,
                gas_price: 1,
                payload: stele_types::TxPayload::Transfer {
                    to: Address([1; 20]),
                    amount: 1,
                },
            }
            .sign(&k);
            VerifiedTx::new(signed, 1).expect("signed for chain 1")
        };
        let idle = opts.empty_block_interval_ms;
        assert_eq!(proposal_wait_ms(pool.ready_len(), false, &opts), idle);
        // Nonce 0 is missing: nothing a block can take.
        pool.insert(tx(1), &One(view(0))).expect("admitted");
        assert_eq!(proposal_wait_ms(pool.ready_len(), false, &opts), idle);
        pool.insert(tx(0), &One(view(0))).expect("admitted");
        assert_eq!(
            proposal_wait_ms(pool.ready_len(), false, &opts),
            opts.block_interval_ms
        );
        // A selection that came up empty waits the idle interval too.
        assert_eq!(proposal_wait_ms(pool.ready_len(), true, &opts), idle);
    }
}
