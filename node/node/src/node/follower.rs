//! The chain follower, the part every node runs: it owns the committed tip
//! and the blocks executed above it that wait for their commit (the
//! pipeline), checks and executes blocks on their parent, and commits a
//! block once it holds its certificate. It signs nothing and decides
//! nothing: which blocks to execute and when a block is final comes from
//! the validator role (the replica's certificates) or from block sync.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use stele_exec::{BlockEnv, BlockExecution, SharedState, StateBase, governance, upgrade};
use stele_state::{PreparedCommit, WriteSet};
use stele_types::{Address, Block, CommitCertificate, Hash, decode};
use tracing::{debug, info, warn};

use super::catch_up::CatchUp;
use super::epochs::EpochView;
use super::exec_thread::ExecThread;
use super::protocol::{self, ProtocolView};
use super::{BlockRejected, CommitError, NodeError, PIPELINE_BLOCKS_MAX, Shared, now_ms};
use crate::net::Channel;
use crate::store::{CommittedBlock, finish_block_commit, prepare_block_commit};
use crate::sync::SyncedBlock;

/// Executed-but-uncommitted blocks remembered.
const EXECUTED_MAX: usize = 64;
/// A proposal's timestamp may be this far ahead of the local clock.
const CLOCK_DRIFT_MAX_MS: u64 = 10_000;

/// A block a new one builds on: the committed tip, or a block executed on
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tip {
    pub(super) height: u64,
    pub(super) hash: Hash,
    pub(super) timestamp_ms: u64,
}

/// A block executed on top of the tip, waiting for its commit.
pub(super) struct Executed {
    pub(super) block: Block,
    pub(super) exec: BlockExecution,
    /// The state commit computed to check the root, reused at commit while
    /// the committed version is still its base.
    prepared: Option<PreparedCommit>,
    /// When execution finished, for the commit latency metric.
    at: Instant,
}

impl Executed {
    pub(super) fn new(
        block: Block,
        exec: BlockExecution,
        prepared: Option<PreparedCommit>,
    ) -> Self {
        Executed {
            block,
            exec,
            prepared,
            at: Instant::now(),
        }
    }
}

pub(super) struct Follower {
    pub(super) shared: Arc<Shared>,
    pub(super) exec: ExecThread,
    pub(super) tip: Tip,
    /// The epoch of the block after the tip, as the tip's state says.
    pub(super) epoch: Arc<EpochView>,
    executed: BTreeMap<Hash, Executed>,
    /// Fetching missed blocks from peers.
    pub(super) catch_up: CatchUp,
    retention: Retention,
}

/// What the follower keeps and drops as blocks commit.
pub(super) struct Retention {
    /// Prune old state versions (and blocks) every this many blocks.
    pub(super) prune_interval_blocks: u64,
    /// Blocks kept: the last this many (and every epoch's last); 0 keeps
    /// all (ADR 0012).
    pub(super) keep_blocks: u64,
    pub(super) snapshots: super::snapshots::Snapshots,
}

impl Follower {
    pub(super) fn new(
        shared: Arc<Shared>,
        exec: ExecThread,
        tip: Tip,
        catch_up: CatchUp,
        retention: Retention,
    ) -> Result<Follower, NodeError> {
        let base = StateBase::at(&shared.state, Some(tip.height), None);
        let epoch = Arc::new(EpochView::on(&base)?);
        shared.set_epoch(epoch.clone());
        let view = ProtocolView::on(&shared.executor, &base)?;
        // A node without the tip's protocol does not start: it would stop
        // at the next block anyway (ADR 0011).
        view.check_next(&shared.executor, tip.height)?;
        if view.active != ProtocolView::genesis(&shared.executor).active {
            // An upgrade activated before this start: its VM gets every
            // contract now, as the genesis's VM did.
            let vm = shared.executor.vm_for(&view.active).map_err(|reason| {
                NodeError::ProtocolUnsupported {
                    height: tip.height + 1,
                    reason,
                }
            })?;
            let state = shared.state.read().map_err(|_| NodeError::Poisoned)?;
            super::open::warm_contracts(&vm, &state)?;
        }
        protocol::prepare(&shared, &view);
        shared.set_protocol(Arc::new(view));
        Ok(Follower {
            shared,
            exec,
            tip,
            epoch,
            executed: BTreeMap::new(),
            catch_up,
            retention,
        })
    }

    /// The committed tip's state.
    pub(super) fn base(&self) -> StateBase {
        StateBase::at(&self.shared.state, Some(self.tip.height), None)
    }

    /// The uncommitted blocks between the committed tip and a new block at
    /// `seq` on `parent`, newest first: none if `parent` is the tip, `None`
    /// if `parent` is neither the tip nor a block executed on it (directly
    /// or through other such blocks).
    fn uncommitted_chain(&self, parent: &Hash, seq: u64) -> Option<Vec<&Executed>> {
        let mut chain = Vec::new();
        let (mut hash, mut height) = (*parent, seq.checked_sub(1)?);
        while hash != self.tip.hash {
            if height <= self.tip.height {
                return None;
            }
            // A primary proposes at most this far ahead of a commit; a
            // deeper chain waits for commits here, which bounds the write
            // sets merged for it.
            if chain.len() as u64 >= PIPELINE_BLOCKS_MAX {
                return None;
            }
            let e = self.executed.get(&hash)?;
            if e.block.header.height != height {
                return None;
            }
            chain.push(e);
            hash = e.block.header.parent_hash;
            height -= 1;
        }
        (height == self.tip.height).then_some(chain)
    }

    /// The block a new one at `seq` on `parent` builds on, if it is the
    /// tip or executed on it.
    pub(super) fn parent_ref(&self, parent: &Hash, seq: u64) -> Option<Tip> {
        let chain = self.uncommitted_chain(parent, seq)?;
        Some(match chain.first() {
            None => self.tip,
            Some(e) => Tip {
                height: e.block.header.height,
                hash: *parent,
                timestamp_ms: e.block.header.timestamp_ms,
            },
        })
    }

    /// What a block at `seq` on `parent` executes on: the committed tip,
    /// with the writes of the uncommitted blocks in between on top.
    pub(super) fn base_on(&self, parent: &Hash, seq: u64) -> Option<StateBase> {
        let chain = self.uncommitted_chain(parent, seq)?;
        let pending = (!chain.is_empty()).then(|| {
            let mut writes = WriteSet::new();
            for e in chain.iter().rev() {
                writes.extend(e.exec.writes.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Arc::new(writes)
        });
        Some(StateBase::at(
            &self.shared.state,
            Some(self.tip.height),
            pending,
        ))
    }

    /// The epoch of a block on `base`: the tip's, read once per change,
    /// unless the uncommitted blocks below it changed the epoch's records
    /// (a vote decided, or a set was installed). Reading it means decoding
    /// the set and checking each key, which every block need not pay.
    pub(super) fn epoch_on(&self, base: &StateBase) -> Result<Arc<EpochView>, NodeError> {
        match &base.pending {
            Some(w) if governance::touches_epoch(w) => Ok(Arc::new(EpochView::on(base)?)),
            _ => Ok(self.epoch.clone()),
        }
    }

    /// Keeps an executed block until its commit (or until it is the oldest
    /// of [`EXECUTED_MAX`]).
    pub(super) fn remember(&mut self, hash: Hash, executed: Executed) {
        if self.executed.len() >= EXECUTED_MAX {
            self.executed.pop_first();
        }
        self.executed.insert(hash, executed);
    }

    pub(super) fn is_executed(&self, hash: &Hash) -> bool {
        self.executed.contains_key(hash)
    }

    /// Checks a proposed block at `seq` on `parent` (the committed tip or a
    /// block executed on it) for the replica of `epoch`, executes it and
    /// keeps it for its commit. Whether it passed; a refusal is logged and
    /// counted by reason.
    pub(super) async fn execute_proposal(
        &mut self,
        seq: u64,
        block_hash: Hash,
        parent: Hash,
        payload: &[u8],
        epoch: u64,
    ) -> Result<bool, NodeError> {
        if self.is_executed(&block_hash) {
            return Ok(true);
        }
        let checked = self
            .check_block(seq, &block_hash, payload, true)
            .and_then(|b| {
                if b.header.parent_hash != parent {
                    Err(BlockRejected::NotTheProposalsParent)
                } else if b.header.epoch != epoch {
                    // A block of another epoch (past this epoch's end)
                    // gets no vote in this one, whatever its chain says.
                    Err(BlockRejected::WrongEpoch {
                        got: b.header.epoch,
                        expected: epoch,
                    })
                } else {
                    Ok(b)
                }
            });
        let block = match checked {
            Ok(b) => b,
            Err(reason) => return Ok(self.rejected(seq, reason)),
        };
        let started = Instant::now();
        let result = self.execute(block).await?;
        self.shared
            .metrics
            .exec_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(executed) => {
                if parent != self.tip.hash {
                    self.shared.metrics.pipelined_blocks.inc();
                }
                self.remember(block_hash, executed);
                Ok(true)
            }
            Err(reason) => Ok(self.rejected(seq, reason)),
        }
    }

    fn rejected(&self, seq: u64, reason: BlockRejected) -> bool {
        warn!(seq, %reason, "rejecting proposed block");
        self.shared.metrics.record_block_rejected(reason.reason());
        false
    }

    /// The structural checks of a block at `seq` on its parent, the tip or
    /// a block executed on it.
    pub(super) fn check_block(
        &self,
        seq: u64,
        block_hash: &Hash,
        payload: &[u8],
        check_clock: bool,
    ) -> Result<Block, BlockRejected> {
        let block: Block =
            decode(payload, &self.shared.limits).map_err(BlockRejected::Undecodable)?;
        let h = &block.header;
        if block.hash() != *block_hash {
            return Err(BlockRejected::HashMismatch);
        }
        if h.chain_id != self.shared.chain_id {
            return Err(BlockRejected::WrongChain(h.chain_id));
        }
        if h.height != seq {
            return Err(BlockRejected::WrongHeight {
                got: h.height,
                expected: seq,
            });
        }
        let Some(parent) = self.parent_ref(&h.parent_hash, seq) else {
            return Err(BlockRejected::UnknownParent);
        };
        if h.tx_root != block.compute_tx_root() {
            return Err(BlockRejected::TxRootMismatch);
        }
        if h.timestamp_ms <= parent.timestamp_ms {
            return Err(BlockRejected::TimestampNotAfterParent);
        }
        if check_clock && h.timestamp_ms > now_ms() + CLOCK_DRIFT_MAX_MS {
            return Err(BlockRejected::TimestampAhead);
        }
        Ok(block)
    }

    /// Executes `block` on its parent (the tip or a block executed on it)
    /// and checks its roots.
    fn execute(
        &self,
        block: Block,
    ) -> impl Future<Output = Result<Result<Executed, BlockRejected>, NodeError>> + Send + 'static
    {
        let executor = self.shared.executor.clone();
        let state = self.shared.state.clone();
        let base = self.base_on(&block.header.parent_hash, block.header.height);
        // The epoch, its set and so the primary come from the parent's
        // state (ADR 0010).
        let epoch = base.as_ref().map(|b| self.epoch_on(b));
        let exec = self.exec.clone();
        async move {
            let (Some(base), Some(epoch)) = (base, epoch) else {
                return Ok(Err(BlockRejected::UnknownParent));
            };
            let epoch = epoch?;
            exec.run(move || {
                let h = &block.header;
                let (info, set) = (&epoch.info, &epoch.validators);
                if h.epoch != info.epoch {
                    return Err(BlockRejected::WrongEpoch {
                        got: h.epoch,
                        expected: info.epoch,
                    });
                }
                if h.proposer != set.primary(h.view).address {
                    return Err(BlockRejected::NotThePrimary { view: h.view });
                }
                let env = BlockEnv {
                    height: h.height,
                    timestamp_ms: h.timestamp_ms,
                    proposer: h.proposer,
                };
                let exec = executor
                    .execute_block(base.clone(), &env, &block.txs)
                    .map_err(BlockRejected::Execution)?;
                let next = next_validators_hash(set, &exec)?;
                if h.next_validators_hash != next {
                    return Err(BlockRejected::WrongNextValidators {
                        got: h.next_validators_hash,
                        expected: next,
                    });
                }
                if exec.receipts_root != h.receipts_root {
                    return Err(BlockRejected::ReceiptsRootMismatch {
                        computed: exec.receipts_root,
                        header: h.receipts_root,
                    });
                }
                let (root, prepared) = root_after(&state, h.height, &base, &exec.writes)?;
                if root != h.state_root {
                    return Err(BlockRejected::StateRootMismatch {
                        computed: root,
                        header: h.state_root,
                    });
                }
                Ok(Executed::new(block, exec, prepared))
            })
            .await
        }
    }

    /// Commits the block at `seq` with its certificate: the executed block
    /// if this node executed it on the tip, or the payload checked and
    /// executed now (synced, or validated before a restart). Then moves the
    /// tip, updates the mempool and tells subscribers and followers.
    pub(super) async fn commit(
        &mut self,
        seq: u64,
        block_hash: Hash,
        payload: Vec<u8>,
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        let executed = match self.executed.remove(&block_hash) {
            Some(e) if e.block.header.parent_hash == self.tip.hash => e,
            _ => self
                .execute_certified(seq, &block_hash, &payload)
                .await?
                .map_err(|source| NodeError::Commit {
                    height: seq,
                    source,
                })?,
        };
        self.commit_executed(executed, &payload, certificate).await
    }

    /// Executes a block on the tip that its certificate makes final and
    /// commits it (a full node's path: `block` was checked and `payload` is
    /// its encoding).
    pub(super) async fn commit_block(
        &mut self,
        block: Block,
        payload: &[u8],
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        let seq = block.header.height;
        let executed = self
            .execute(block)
            .await?
            .map_err(|reason| NodeError::Commit {
                height: seq,
                source: reason.into(),
            })?;
        self.commit_executed(executed, payload, certificate).await
    }

    /// Writes an executed block with its certificate, moves the tip, pushes
    /// the block to followers, updates the mempool and tells subscribers.
    async fn commit_executed(
        &mut self,
        executed: Executed,
        payload: &[u8],
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        let seq = executed.block.header.height;
        let block_hash = certificate.block_hash;
        let started = Instant::now();
        let executed_at = executed.at;
        let (block, exec) = self
            .write(executed, certificate.clone())
            .await?
            .map_err(|source| NodeError::Commit {
                height: seq,
                source,
            })?;
        self.push_to_followers(payload, &certificate);
        let metrics = &self.shared.metrics;
        metrics
            .storage_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics
            .commit_latency
            .observe(executed_at.elapsed().as_secs_f64());
        let interval_ms = block
            .header
            .timestamp_ms
            .saturating_sub(self.tip.timestamp_ms);
        metrics.block_interval.observe(interval_ms as f64 / 1000.0);
        metrics.txs_committed.inc_by(block.txs.len() as u64);
        metrics.height.set(seq as i64);
        self.tip = Tip {
            height: seq,
            hash: block_hash,
            timestamp_ms: block.header.timestamp_ms,
        };
        self.shared.height.store(seq, Ordering::Relaxed);
        self.executed.retain(|_, e| e.block.header.height > seq);
        // The block's writes say whether the epoch's records changed.
        let epoch = if governance::touches_epoch(&exec.writes) {
            EpochView::on(&self.base())?
        } else {
            EpochView::clone(&self.epoch)
        };
        if epoch != *self.epoch {
            if epoch.epoch() != self.epoch.epoch() {
                info!(
                    epoch = epoch.epoch(),
                    height = seq + 1,
                    validators = epoch.validators.len(),
                    "a new epoch starts with the next block"
                );
            }
            self.epoch = Arc::new(epoch);
            self.shared.set_epoch(self.epoch.clone());
        }
        if upgrade::touches_protocol(&exec.writes) {
            self.settle_protocol(seq)?;
        }
        self.update_mempool(seq, &exec);
        if self.shared.syncing.load(Ordering::Relaxed) && seq >= self.catch_up.target() {
            self.shared.syncing.store(false, Ordering::Relaxed);
        }
        debug!(height = seq, txs = block.txs.len(), "committed");
        // Subscribers hear of the block before any housekeeping below.
        let _ = self.shared.commits.send(Arc::new(CommittedBlock {
            block,
            receipts: exec.receipts,
            certificate,
        }));
        let state = &self.shared.state;
        self.retention.snapshots.after_commit(
            seq,
            || state.read().ok()?.view(),
            &self.shared.metrics,
        );
        self.prune_if_due(seq).await
    }

    /// After a block at `seq` that scheduled or activated an upgrade:
    /// the node follows the new protocol, gets ready for a scheduled one,
    /// and stops here if it cannot execute the next block.
    fn settle_protocol(&mut self, seq: u64) -> Result<(), NodeError> {
        let view = ProtocolView::on(&self.shared.executor, &self.base())?;
        let before = self.shared.protocol();
        if view.active != before.active {
            info!(
                height = seq + 1,
                gas_schedule_version = view.active.gas_schedule_version,
                vm_limits_version = view.active.vm_limits_version,
                "a protocol upgrade is active from the next block"
            );
        }
        view.check_next(&self.shared.executor, seq)?;
        if view.scheduled.is_some() && view.scheduled != before.scheduled {
            protocol::prepare(&self.shared, &view);
        }
        self.shared.set_protocol(Arc::new(view));
        Ok(())
    }

    /// A certified block this node has not executed on the tip: checked
    /// and executed now. The certificate makes it final, so a mismatch here
    /// means this node is broken, not the block.
    async fn execute_certified(
        &mut self,
        seq: u64,
        block_hash: &Hash,
        payload: &[u8],
    ) -> Result<Result<Executed, CommitError>, NodeError> {
        let block = match self.check_block(seq, block_hash, payload, false) {
            Ok(block) => block,
            Err(e) => return Ok(Err(e.into())),
        };
        if block.header.parent_hash != self.tip.hash {
            return Ok(Err(CommitError::ParentNotTip));
        }
        let started = Instant::now();
        let result = self.execute(block).await?;
        self.shared
            .metrics
            .exec_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(result.map_err(CommitError::from))
    }

    /// Writes the block, its receipts, its certificate and its state
    /// version in one atomic batch, reusing the Merkle update from
    /// validation unless the state moved since.
    async fn write(
        &mut self,
        executed: Executed,
        cert: CommitCertificate,
    ) -> Result<Result<(Block, BlockExecution), CommitError>, NodeError> {
        let state = self.shared.state.clone();
        let index = self.shared.index;
        let Executed {
            block,
            exec,
            prepared,
            ..
        } = executed;
        self.exec
            .run(move || {
                let mut state = state.write().map_err(|_| CommitError::Poisoned)?;
                let mut prepared = match prepared {
                    Some(p) if p.base() == state.latest_version() => {
                        finish_block_commit(&state, p, &block, &exec.receipts, &cert, &exec.writes)
                    }
                    _ => prepare_block_commit(&state, &block, &exec.receipts, &cert, &exec.writes),
                }?;
                // The block's index rows, in its own batch: never ahead of
                // or behind the blocks.
                crate::index::put_block(
                    &state,
                    prepared.batch_mut()?,
                    &index,
                    &block,
                    &exec.receipts,
                    &exec.storage_writes,
                )?;
                // Not synced here: the next synced write to this database
                // (this node's next synced consensus-log record, at the
                // latest the next block's prepared certificate) makes it
                // durable, and until then the block is recoverable from the
                // prepared certificate in the log, which was synced before
                // this node voted to commit it, and from its peers. A crash
                // of the process loses nothing (the write is in the
                // operating system's buffers).
                state.apply_unsynced(prepared)?;
                Ok((block, exec))
            })
            .await
    }

    /// Sends a committed block with its certificate to the connected
    /// followers (full nodes), and to the validators of the next epoch that
    /// are not validators yet (ADR 0010: they follow the chain until their
    /// epoch starts, and the transport counts them as validators already);
    /// a peer whose queue is full misses it and fetches it by block sync.
    fn push_to_followers(&self, payload: &[u8], certificate: &CommitCertificate) {
        let net = &self.shared.net;
        let joiners: Vec<Address> = self.epoch.pending.as_ref().map_or(Vec::new(), |p| {
            p.validators
                .validators()
                .iter()
                .map(|v| v.address)
                .filter(|a| self.epoch.validators.index_of(a).is_none())
                .collect()
        });
        if net.metrics().followers_connected() == 0 && joiners.is_empty() {
            return;
        }
        let item: Arc<[u8]> = Arc::from(SyncedBlock::encode_item(payload, certificate));
        net.broadcast(Channel::Blocks, item.clone());
        for joiner in &joiners {
            net.send(joiner, Channel::Blocks, item.clone());
        }
    }

    /// Takes a committed block's transactions out of the mempool, gossips
    /// the transactions of this node's clients whose nonce gap it closed,
    /// and exports the pool's size.
    fn update_mempool(&self, seq: u64, exec: &BlockExecution) {
        let committed: Vec<(Hash, Address)> = exec
            .receipts
            .iter()
            .map(|r| r.tx_hash)
            .zip(exec.senders.iter().copied())
            .collect();
        let base = self.base();
        let (txs, bytes, gapped, expired, ready) = {
            let mut pool = self.shared.mempool();
            pool.on_block_committed(seq, &committed, &base);
            (
                pool.len(),
                pool.bytes(),
                pool.gapped_len(),
                pool.expired_total(),
                pool.take_announcements(),
            )
        };
        self.shared.announce(ready);
        let metrics = &self.shared.metrics;
        metrics.mempool_txs.set(txs as i64);
        metrics.mempool_bytes.set(bytes as i64);
        metrics.mempool_gapped_txs.set(gapped as i64);
        let newly_expired = expired.saturating_sub(metrics.mempool_expired.get());
        if newly_expired > 0 {
            metrics.mempool_expired.inc_by(newly_expired);
            debug!(
                height = seq,
                expired = newly_expired,
                "dropped gapped transactions at their TTL"
            );
        }
    }

    /// Prunes old state versions, and blocks if it keeps only the last
    /// ones, every `prune_interval_blocks` blocks.
    async fn prune_if_due(&mut self, seq: u64) -> Result<(), NodeError> {
        let interval = self.retention.prune_interval_blocks;
        if interval == 0 || !seq.is_multiple_of(interval) {
            return Ok(());
        }
        self.prune_blocks(seq).await?;
        let state = self.shared.state.clone();
        let started = Instant::now();
        let pruned = self
            .exec
            .run(move || match state.write() {
                Ok(mut state) => state.prune().map_err(NodeError::State),
                Err(_) => Err(NodeError::Poisoned),
            })
            .await?;
        self.shared
            .metrics
            .prune_seconds
            .observe(started.elapsed().as_secs_f64());
        match pruned {
            Ok(stats) => debug!(height = seq, ?stats, "pruned old state versions"),
            // Pruning only frees space; the chain goes on without it.
            Err(e) => warn!(height = seq, error = %e, "pruning failed"),
        }
        Ok(())
    }

    /// Deletes the blocks below the last `keep_blocks`, but none a peer
    /// joining by the oldest snapshot kept still needs.
    async fn prune_blocks(&mut self, seq: u64) -> Result<(), NodeError> {
        let keep = self.retention.keep_blocks;
        if keep == 0 {
            return Ok(());
        }
        let mut below = (seq + 1).saturating_sub(keep);
        if let Some(oldest) = self.retention.snapshots.oldest_kept() {
            below = below.min(oldest);
        }
        if below <= 1 {
            return Ok(());
        }
        let state = self.shared.state.clone();
        let pruned = self
            .exec
            .run(move || crate::store::prune_blocks_below(&state, below))
            .await?;
        match pruned {
            Ok(deleted) => debug!(height = seq, below, deleted, "pruned old blocks"),
            Err(e) => warn!(height = seq, error = %e, "pruning blocks failed"),
        }
        Ok(())
    }
}

/// What a block's header names as the set that certifies the next block:
/// the set its execution installs at an epoch's end, `set` otherwise.
pub(super) fn next_validators_hash(
    set: &stele_types::ValidatorSet,
    exec: &BlockExecution,
) -> Result<Hash, BlockRejected> {
    let installed = governance::installed_set(&exec.writes)
        .map_err(|e| BlockRejected::NoEpoch(e.to_string()))?;
    Ok(installed.as_ref().unwrap_or(set).hash())
}

/// The state root after `writes` on `base`, with the commit to reuse when
/// `base` is the committed version itself. Over uncommitted parents the
/// root is that of their writes and these together (a root depends only on
/// the keys and values), and the commit is computed again once the parents
/// are in.
pub(super) fn root_after(
    state: &SharedState,
    height: u64,
    base: &StateBase,
    writes: &WriteSet,
) -> Result<(Hash, Option<PreparedCommit>), BlockRejected> {
    let state = state.read().map_err(|_| BlockRejected::StatePoisoned)?;
    if state.latest_version() != base.version {
        return Err(BlockRejected::StateMoved);
    }
    match &base.pending {
        None => {
            let prepared = state
                .prepare_commit(height, writes)
                .map_err(BlockRejected::State)?;
            Ok((prepared.root(), Some(prepared)))
        }
        Some(pending) => {
            let mut all = WriteSet::clone(pending);
            all.extend(writes.iter().map(|(k, v)| (k.clone(), v.clone())));
            let prepared = state
                .prepare_commit(height, &all)
                .map_err(BlockRejected::State)?;
            Ok((prepared.root(), None))
        }
    }
}
