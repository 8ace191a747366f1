//! The validator role on top of the chain follower: the PBFT replica, its
//! consensus log and high-water mark, and the actions the replica asks
//! for: persist, send, arm the view timer, validate a proposal, report an
//! equivocation, compact the log. Building a proposal is in `propose.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use stele_consensus::{
    Counters, Evidence, Input, Message, MessageLimits, Record, Replica, SignedMessage,
};
use stele_types::{Address, Hash};
use tracing::{debug, info, warn};

use super::follower::Follower;
use super::propose::Proposal;
use super::view_timer::ViewTimer;
use super::{ConsensusOptions, NodeError, Shared, gossip};
use crate::log_limit::LogLimit;
use crate::mark::{Mark, MarkWriter};
use crate::net::Channel;
use crate::precheck::PeerBudgets;
use crate::wal::Wal;

/// Proposals waiting for their parent to commit locally.
const WAITING_VALIDATIONS_MAX: usize = 64;
/// Broadcast consensus messages kept for retransmission.
const RECENT_BROADCASTS_MAX: usize = 512;
/// ...and at most this many bytes of them (a PRE-PREPARE carries a block).
const RECENT_BROADCAST_BYTES_MAX: usize = 64 << 20;
/// A validator's equivocations are logged at most once per this.
const EQUIVOCATION_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A proposal the replica asked this node to validate.
pub(super) struct PendingValidation {
    pub(super) seq: u64,
    pub(super) block_hash: Hash,
    pub(super) parent: Hash,
    pub(super) payload: Vec<u8>,
}

/// What the validator role keeps while its key is in no epoch's set (a
/// validator that joins later, or left): its consensus log, high-water
/// mark and the peers' budgets, to resume with when a set names it again.
pub(super) struct Standby {
    pub(super) wal: Wal,
    pub(super) mark: MarkWriter,
    pub(super) msg_limits: MessageLimits,
    pub(super) consensus: ConsensusOptions,
    pub(super) budgets: Arc<PeerBudgets>,
    /// The consensus counters of the replicas it ran before.
    pub(super) counters: Counters,
}

pub(super) struct Validator {
    pub(super) shared: Arc<Shared>,
    pub(super) replica: Replica,
    wal: Wal,
    /// The high-water mark, published after every synced log write.
    mark: MarkWriter,
    msg_limits: MessageLimits,
    me: Address,
    consensus: ConsensusOptions,
    pub(super) timer: ViewTimer,
    /// The proposal the replica asked for, built at its deadline.
    pub(super) proposal: Proposal,
    /// Proposals waiting for their parent to be executed here.
    waiting: VecDeque<PendingValidation>,
    /// Consensus messages broadcast lately, for peers that (re)connect.
    recent: Recent,
    /// Equivocations are logged once per signer per interval: a Byzantine
    /// validator can sign conflicting votes as fast as it can send them.
    equivocation_log: LogLimit<u32>,
    /// Peers' signature-check budgets: an equivocation costs its signer.
    budgets: Arc<PeerBudgets>,
    /// The counters of this node's replicas of finished epochs: the
    /// metrics count across epochs.
    counters_before: Counters,
}

impl Validator {
    pub(super) fn new(shared: Arc<Shared>, replica: Replica, standby: Standby) -> Validator {
        let Standby {
            wal,
            mark,
            msg_limits,
            consensus,
            budgets,
            counters,
        } = standby;
        let validators = replica.validators().len();
        let me = replica
            .validators()
            .get(replica.index() as usize)
            .map_or(Address([0; 20]), |v| v.address);
        let proposal = Proposal::new(shared.clone(), me, consensus.clone());
        Validator {
            me,
            msg_limits,
            shared,
            replica,
            wal,
            mark,
            consensus,
            timer: ViewTimer::default(),
            proposal,
            waiting: VecDeque::new(),
            recent: Recent::default(),
            equivocation_log: LogLimit::new(EQUIVOCATION_LOG_INTERVAL, validators),
            budgets,
            counters_before: counters,
        }
    }

    /// Moves to the next epoch's replica (ADR 0010): the finished epoch's
    /// log is cleared first (no replica will replay it), and what was kept
    /// for the old replica (proposal, waiting validations, messages to
    /// resend, the view timer) goes with it.
    pub(super) fn switch_epoch(&mut self, replica: Replica) -> Result<(), NodeError> {
        self.clear_log()?;
        info!(
            epoch = replica.epoch(),
            index = replica.index(),
            validators = replica.validators().len(),
            "validating in a new epoch"
        );
        self.counters_before = self.counters_before.plus(self.replica.counters());
        self.replica = replica;
        self.proposal.forget();
        self.waiting.clear();
        self.recent = Recent::default();
        self.timer = ViewTimer::default();
        self.timer.set_quorum(self.quorum_connected());
        Ok(())
    }

    /// Leaves the validator role: this key is in no set of the epoch that
    /// starts (the log of the finished one is cleared).
    pub(super) fn into_standby(mut self) -> Result<Standby, NodeError> {
        self.clear_log()?;
        info!(
            epoch = self.replica.epoch() + 1,
            "this key is not in the new epoch's validator set: following the chain"
        );
        Ok(Standby {
            wal: self.wal,
            mark: self.mark,
            msg_limits: self.msg_limits,
            consensus: self.consensus,
            counters: self.counters_before.plus(self.replica.counters()),
            budgets: self.budgets,
        })
    }

    fn clear_log(&mut self) -> Result<(), NodeError> {
        let shared = self.shared.clone();
        let state = shared.state.read().map_err(|_| NodeError::Poisoned)?;
        self.wal.clear(&state)?;
        Ok(())
    }

    /// Appends the records of a batch to the consensus log in one write,
    /// synced if any of them needs it; a synced write also publishes the
    /// high-water mark.
    pub(super) fn persist(
        &mut self,
        records: &mut Vec<Record>,
        committed: u64,
    ) -> Result<(), NodeError> {
        if records.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let state = shared.state.read().map_err(|_| NodeError::Poisoned)?;
        let started = Instant::now();
        let synced = self.wal.append(&state, records)?;
        if synced {
            shared
                .metrics
                .wal_sync_seconds
                .observe(started.elapsed().as_secs_f64());
            // The sync made every commit so far and every record durable.
            self.mark.publish(Mark {
                height: committed,
                wal_next: self.wal.next_index(),
                view: self.replica.view().0,
            });
        }
        records.clear();
        Ok(())
    }

    pub(super) fn broadcast(&mut self, bytes: Vec<u8>) {
        let bytes: Arc<[u8]> = Arc::from(bytes);
        self.recent.remember(&bytes, &self.msg_limits);
        self.shared.net.broadcast(Channel::Consensus, bytes);
    }

    pub(super) fn send(&self, to: u32, bytes: Vec<u8>) {
        if let Some(v) = self.replica.validators().get(to as usize) {
            self.shared
                .net
                .send(&v.address, Channel::Consensus, Arc::from(bytes));
        }
    }

    /// The replica's `ValidateBlock`: executes the proposal now if its
    /// parent is executed here, otherwise keeps it until it is (fetching
    /// the blocks in between if the proposal shows this node missed some).
    pub(super) async fn validate_block(
        &mut self,
        follower: &mut Follower,
        pending: PendingValidation,
        inputs: &mut VecDeque<Input>,
    ) -> Result<(), NodeError> {
        let PendingValidation {
            seq,
            block_hash,
            parent,
            ..
        } = pending;
        if follower.parent_ref(&parent, seq).is_some() {
            let valid = follower
                .execute_proposal(
                    seq,
                    block_hash,
                    parent,
                    &pending.payload,
                    self.replica.epoch(),
                )
                .await?;
            inputs.push_back(Input::BlockValidated {
                seq,
                block_hash,
                valid,
            });
            if valid {
                // Its children may have arrived first.
                self.validate_waiting(follower, inputs).await?;
            }
            return Ok(());
        }
        // The parent is not executed here yet. A proposal further above the
        // tip than the pipeline explains means this node missed committed
        // blocks inside the window: fetch them now rather than wait for the
        // next checkpoint, or the view timer fires and leaves this node
        // alone in a higher view.
        let missing_to = seq.saturating_sub(self.consensus.pipeline_blocks.max(1));
        let tip = follower.tip.height;
        if missing_to > tip
            && (missing_to > follower.catch_up.target()
                || !self.shared.syncing.load(Ordering::Relaxed))
        {
            follower.catch_up.start(tip + 1, missing_to);
        }
        if self.waiting.len() >= WAITING_VALIDATIONS_MAX {
            self.waiting.pop_front();
        }
        self.waiting.push_back(pending);
        Ok(())
    }

    /// Validates the waiting proposals whose parent is now the tip or
    /// executed on it (one may be the parent of the next), and forgets
    /// those at or below the tip.
    pub(super) async fn validate_waiting(
        &mut self,
        follower: &mut Follower,
        inputs: &mut VecDeque<Input>,
    ) -> Result<(), NodeError> {
        let tip = follower.tip.height;
        self.waiting.retain(|p| p.seq > tip);
        while let Some(i) = self
            .waiting
            .iter()
            .position(|p| follower.parent_ref(&p.parent, p.seq).is_some())
        {
            let Some(p) = self.waiting.remove(i) else {
                break;
            };
            let valid = follower
                .execute_proposal(
                    p.seq,
                    p.block_hash,
                    p.parent,
                    &p.payload,
                    self.replica.epoch(),
                )
                .await?;
            inputs.push_back(Input::BlockValidated {
                seq: p.seq,
                block_hash: p.block_hash,
                valid,
            });
        }
        Ok(())
    }

    /// Two validly signed conflicting messages: the signer is faulty, and
    /// its messages wait unchecked a while.
    pub(super) fn on_equivocation(&mut self, evidence: &Evidence) {
        self.shared.metrics.equivocations.inc();
        let signer = evidence.first.signer;
        if let Some(v) = self.replica.validators().get(signer as usize) {
            self.budgets.offence(v.address, Instant::now());
        }
        if let Some(unlogged) = self.equivocation_log.event(signer, Instant::now()) {
            warn!(
                signer,
                unlogged,
                "validator signed conflicting messages (logged once per signer per 30 s; `unlogged` more since the last line)"
            );
        }
    }

    /// Drops the log records made obsolete by a stable checkpoint.
    pub(super) fn compact_log(&mut self, stable_seq: u64, view: u64) -> Result<(), NodeError> {
        let shared = self.shared.clone();
        let state = shared.state.read().map_err(|_| NodeError::Poisoned)?;
        let dropped = self.wal.compact(&state, stable_seq, view)?;
        debug!(stable_seq, dropped, "compacted the consensus log");
        Ok(())
    }

    /// Whether this node and the validators it is connected to hold a
    /// quorum of the voting power.
    pub(super) fn quorum_connected(&self) -> bool {
        let connected = self.shared.net.connected();
        let set = self.replica.validators();
        let power: u64 = set
            .validators()
            .iter()
            .filter(|v| v.address == self.me || connected.contains(&v.address))
            .map(|v| v.power)
            .sum();
        power >= set.quorum_power()
    }

    /// A peer (re)connected: resend what it may have missed. The transport
    /// drops messages to disconnected peers, and PBFT needs them
    /// retransmitted (a missed NEW-VIEW would leave the peer out of the
    /// view); pending transactions are offered again too.
    pub(super) fn on_peer_connected(&mut self, peer: &Address) {
        debug!(%peer, resent = self.recent.messages.len(), "peer connected");
        self.timer.set_quorum(self.quorum_connected());
        let net = &self.shared.net;
        if let Some(nv) = &self.recent.last_new_view {
            net.send(peer, Channel::Consensus, nv.clone());
        }
        for bytes in &self.recent.messages {
            net.send(peer, Channel::Consensus, bytes.clone());
        }
        gossip::offer_pending(&self.shared, peer);
    }

    pub(super) fn on_peer_disconnected(&mut self, peer: &Address) {
        debug!(%peer, "peer disconnected");
        self.timer.set_quorum(self.quorum_connected());
    }

    /// Publishes the replica's view and counters after a batch of inputs.
    pub(super) fn observe(&self) {
        let shared = &self.shared;
        let (view, _) = self.replica.view();
        let old = shared.view.swap(view, Ordering::Relaxed);
        if view > old {
            shared.view_changes.fetch_add(1, Ordering::Relaxed);
            shared.metrics.view_changes.inc();
            info!(view, "view changed");
        }
        shared.metrics.view.set(view as i64);
        shared
            .stable_seq
            .store(self.replica.stable_seq(), Ordering::Relaxed);
        shared
            .metrics
            .record_consensus_counters(&self.counters_before.plus(self.replica.counters()));
    }

    /// Syncs the database's log once more at a clean stop, so the last
    /// commits are durable and the high-water mark names them exactly.
    pub(super) fn sync_on_stop(&self, committed: u64) {
        let Ok(state) = self.shared.state.read() else {
            return;
        };
        match state
            .db()
            .and_then(|db| db.flush_wal(true).map_err(Into::into))
        {
            Ok(()) => self.mark.publish(Mark {
                height: committed,
                wal_next: self.wal.next_index(),
                view: self.replica.view().0,
            }),
            Err(e) => warn!(error = %e, "cannot sync the database at stop"),
        }
    }
}

/// Consensus messages this node broadcast lately, resent to a peer when it
/// (re)connects, bounded in count and bytes; the last NEW-VIEW is kept
/// beyond them.
#[derive(Default)]
struct Recent {
    messages: VecDeque<Arc<[u8]>>,
    /// Total bytes in `messages`.
    bytes: usize,
    last_new_view: Option<Arc<[u8]>>,
}

impl Recent {
    fn remember(&mut self, bytes: &Arc<[u8]>, limits: &MessageLimits) {
        let is_new_view = SignedMessage::decode(bytes, limits)
            .is_ok_and(|m| matches!(m.message, Message::NewView(_)));
        if is_new_view {
            self.last_new_view = Some(bytes.clone());
            return;
        }
        self.bytes += bytes.len();
        self.messages.push_back(bytes.clone());
        while self.messages.len() > RECENT_BROADCASTS_MAX
            || (self.bytes > RECENT_BROADCAST_BYTES_MAX && self.messages.len() > 1)
        {
            if let Some(old) = self.messages.pop_front() {
                self.bytes -= old.len();
            }
        }
    }
}
