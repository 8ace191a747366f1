//! The driver: one task that owns the node's roles and hands each event to
//! the one it concerns, one event at a time (ADR 0007). Consensus messages
//! go to the replica, whose actions are carried out in order, persist
//! first; sync requests to the follower; peers' comings and goings to the
//! validator (retransmission, the view timer's quorum). Fetched blocks go
//! to the replica, which checks their certificates; on a full node (no
//! validator role) they go to the follower, which checks them itself, as
//! it does the blocks its peers push.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stele_consensus::{Action, Input, Record, peek_epoch};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::catch_up::Fetched;
use super::epochs::{EpochReplicas, EpochView, block_hash_at};
use super::follower::Follower;
use super::validator::{PendingValidation, Standby, Validator};
use super::{NodeError, gossip};
use crate::net::{Channel, Inbound};

/// Inbound events taken at once, so the consensus messages among them
/// share one synced log write.
const INBOUND_BATCH_MAX: usize = 256;
/// Most consensus messages of the next epoch held until the node gets
/// there (ADR 0010), and most bytes of them (a PRE-PREPARE carries a
/// block).
const EARLY_MESSAGES_MAX: usize = 1_024;
const EARLY_BYTES_MAX: usize = 64 << 20;
/// Next-epoch messages held this long mean the node is behind its peers,
/// not a moment late: it fetches the blocks it misses.
const EARLY_CATCH_UP_AFTER: Duration = Duration::from_secs(1);

pub(super) struct Driver {
    pub(super) follower: Follower,
    /// The validator role while this node's key is in the epoch's set;
    /// `None` on a full node and between memberships.
    pub(super) validator: Option<Validator>,
    /// The validator role while its key is in no set (it joins later, or
    /// left).
    pub(super) standby: Option<Standby>,
    /// How this validator builds each epoch's replica; `None` on a full
    /// node.
    pub(super) replicas: Option<EpochReplicas>,
    /// Consensus messages of the next epoch, held until the node gets
    /// there, and since when.
    early: VecDeque<Vec<u8>>,
    /// Total bytes in `early`.
    early_bytes: usize,
    early_since: Option<Instant>,
    /// The epoch view the transport was last given.
    transport_epoch: Option<Arc<EpochView>>,
}

impl Driver {
    pub(super) fn new(follower: Follower) -> Driver {
        Driver {
            follower,
            validator: None,
            standby: None,
            replicas: None,
            early: VecDeque::new(),
            early_bytes: 0,
            early_since: None,
            transport_epoch: None,
        }
    }

    /// The epoch whose consensus messages this node takes now: its
    /// replica's, or (between memberships) the chain's.
    fn consensus_epoch(&self) -> u64 {
        self.validator
            .as_ref()
            .map_or(self.follower.epoch.epoch(), |v| v.replica.epoch())
    }

    /// After commits: moves the validator role to the epoch the chain
    /// reached (ADR 0010) and returns the inputs for its replica. An epoch
    /// that ended retires the replica: the next one's starts on its last
    /// block if this key is in the new set (with the messages of that epoch
    /// held so far), or the role waits in standby. A replica whose epoch's
    /// end the chain decided is told where it is.
    fn settle_epoch(&mut self) -> Result<VecDeque<Input>, NodeError> {
        self.settle_timeouts();
        let epoch = self.follower.epoch.clone();
        let shared = self.follower.shared.clone();
        if !self
            .transport_epoch
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, &epoch))
        {
            shared.net.set_validators(epoch.transport_set());
            self.transport_epoch = Some(epoch.clone());
        }
        let mut inputs = VecDeque::new();
        let Some(replicas) = &self.replicas else {
            return Ok(inputs);
        };
        if let Some(v) = &self.validator {
            let current = v.replica.epoch();
            if epoch.epoch() == current {
                if let Some(p) = &epoch.pending
                    && v.replica.last_seq().is_none()
                {
                    inputs.push_back(Input::EpochEnds {
                        last_seq: p.last_height,
                    });
                }
                return Ok(inputs);
            }
        } else if epoch.validators.index_of(&replicas.key.address()).is_none() {
            return Ok(inputs);
        }
        // A new epoch, and this key's role in it.
        let base = epoch.info.start_height.saturating_sub(1);
        let base_hash = if base == self.follower.tip.height {
            self.follower.tip.hash
        } else {
            block_hash_at(&shared.state, base, shared.genesis_hash)?
        };
        let replica = replicas.build(&epoch, base_hash)?;
        match (replica, self.validator.take(), self.standby.take()) {
            (Some(replica), Some(mut v), _) => {
                v.switch_epoch(replica)?;
                self.validator = Some(v);
            }
            (Some(replica), None, Some(standby)) => {
                info!(epoch = epoch.epoch(), "this key joins the validators");
                self.validator = Some(Validator::new(shared.clone(), replica, standby));
            }
            (None, Some(v), _) => {
                self.standby = Some(v.into_standby()?);
                self.early.clear();
                self.early_bytes = 0;
                self.early_since = None;
                return Ok(inputs);
            }
            (_, None, standby) => {
                self.standby = standby;
                return Ok(inputs);
            }
        }
        let tip = self.follower.tip;
        inputs.push_back(if tip.height > base {
            // Blocks of the new epoch were committed by following.
            Input::Restart {
                records: Vec::new(),
                committed: Some((tip.height, tip.hash)),
                unsynced_lost: false,
            }
        } else {
            Input::Start
        });
        let now = epoch.epoch();
        inputs.extend(
            self.early
                .drain(..)
                .filter(|m| peek_epoch(m) == Some(now))
                .map(Input::Message),
        );
        self.early_bytes = 0;
        self.early_since = None;
        Ok(inputs)
    }

    /// Moves the replicas' view timeouts to the chain's protocol, when they
    /// follow it and an upgrade changed it (ADR 0011).
    fn settle_timeouts(&mut self) {
        let Some(replicas) = &mut self.replicas else {
            return;
        };
        if !replicas.chain_timeouts {
            return;
        }
        let p = self.follower.shared.protocol();
        let wanted = (p.active.view_timeout_ms, p.active.view_timeout_max_ms);
        let t = &mut replicas.template;
        (t.view_timeout_ms, t.view_timeout_max_ms) = wanted;
        if let Some(v) = &mut self.validator
            && v.replica.view_timeouts() != wanted
        {
            info!(
                view_timeout_ms = wanted.0,
                view_timeout_max_ms = wanted.1,
                "view timeouts follow the chain's protocol"
            );
            v.replica.set_view_timeouts(wanted.0, wanted.1);
        }
    }

    /// Settles the epoch after commits made outside the replica (a node
    /// following the chain between memberships).
    async fn after_following(&mut self) -> Result<(), NodeError> {
        let inputs = self.settle_epoch()?;
        if !inputs.is_empty() {
            self.feed_all(inputs).await?;
        }
        Ok(())
    }

    /// Runs until shutdown; `first` is the replica's first input (a
    /// validator's).
    pub(super) async fn run(
        mut self,
        first: Option<Input>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut fetched: mpsc::Receiver<Fetched>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        // The tip's protocol may have other timeouts than the genesis's.
        self.settle_timeouts();
        if let Some(validator) = &mut self.validator {
            // A network of one: its quorum is itself.
            let quorum = validator.quorum_connected();
            validator.timer.set_quorum(quorum);
        }
        if let Some(first) = first {
            self.feed(first).await?;
        }
        let shared = self.follower.shared.clone();
        loop {
            let (timer_at, proposal_at, asked) = match &self.validator {
                Some(v) => (
                    v.timer.deadline(),
                    v.proposal.deadline(&self.follower),
                    v.proposal.is_asked(),
                ),
                None => (None, None, false),
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                ev = inbound.recv() => match ev {
                    Some(ev) => self.on_inbound(ev, &mut inbound).await?,
                    None => break,
                },
                () = sleep_until_opt(timer_at) => {
                    let fired = self.validator.as_mut().and_then(|v| v.timer.fire());
                    if let Some(id) = fired {
                        self.feed(Input::Timer(id)).await?;
                    }
                }
                Some((generation, block)) = fetched.recv() => {
                    if self.follower.catch_up.is_current(generation) {
                        if self.validator.is_some() {
                            self.feed(Input::Synced {
                                certificate: block.certificate,
                                payload: block.payload,
                            })
                            .await?;
                        } else {
                            self.follower.on_certified(None, block).await?;
                            self.after_following().await?;
                        }
                    }
                }
                () = sleep_until_opt(self.early_since.map(|t| (t + EARLY_CATCH_UP_AFTER).into())) => {
                    // Peers are in the next epoch and this node is not:
                    // fetch what it misses (a window's worth at a time).
                    self.early_since = None;
                    let tip = self.follower.tip.height;
                    let window = 2 * self.follower.shared.executor.config().checkpoint_interval;
                    self.follower.catch_up.start(tip + 1, tip + window);
                }
                () = sleep_until_opt(proposal_at) => {
                    if let Some(validator) = &mut self.validator
                        && let Some(input) = validator.proposal.propose(&mut self.follower).await?
                    {
                        self.feed(input).await?;
                    }
                }
                () = shared.tx_arrived.notified(), if asked => {
                    if let Some(validator) = &mut self.validator {
                        validator.proposal.tx_arrived();
                    }
                }
            }
        }
        let height = self.follower.tip.height;
        match &self.validator {
            Some(validator) => {
                validator.sync_on_stop(height);
                info!(height, "validator stopped");
            }
            None => info!(height, "full node stopped"),
        }
        Ok(())
    }

    /// Handles `first` and whatever else is queued behind it (up to
    /// [`INBOUND_BATCH_MAX`]): consensus messages go to the replica as one
    /// batch (one log write), the rest one by one after it.
    async fn on_inbound(
        &mut self,
        first: Inbound,
        inbound: &mut mpsc::Receiver<Inbound>,
    ) -> Result<(), NodeError> {
        let mut batch = VecDeque::new();
        // The senders' queued-bytes charges are given back once the replica
        // has taken the batch, so the batch itself stays within their
        // budgets.
        let mut charges = Vec::new();
        let mut others = Vec::new();
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Inbound::Message {
                    channel: Channel::Consensus,
                    payload,
                    charge,
                    ..
                } => {
                    let next = self.consensus_epoch() + 1;
                    if peek_epoch(&payload) == Some(next) {
                        // The next epoch's: held until this node gets
                        // there (the pre-check verified it against the
                        // decided next set).
                        if self.early.len() < EARLY_MESSAGES_MAX
                            && self.early_bytes + payload.len() <= EARLY_BYTES_MAX
                        {
                            self.early_bytes += payload.len();
                            self.early.push_back(payload);
                        }
                        self.early_since.get_or_insert_with(Instant::now);
                    } else {
                        batch.push_back(Input::Message(payload));
                    }
                    charges.push(charge);
                }
                other => others.push(other),
            }
            if batch.len() + others.len() < INBOUND_BATCH_MAX {
                next = inbound.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            self.feed_all(batch).await?;
        }
        drop(charges);
        for ev in others {
            self.on_other_inbound(ev).await?;
        }
        Ok(())
    }

    /// Everything inbound but consensus messages.
    async fn on_other_inbound(&mut self, ev: Inbound) -> Result<(), NodeError> {
        match ev {
            Inbound::Message {
                channel: Channel::Blocks,
                from,
                payload,
                ..
            } => {
                if self.validator.is_none() {
                    self.follower.on_pushed(from, &payload).await?;
                    self.after_following().await?;
                } else {
                    // A validator commits through its replica only. Peers
                    // push blocks to a node they no longer count as a
                    // validator: this one is behind an epoch its key left
                    // (ADR 0010), and nobody of its epoch answers its view
                    // changes any more. It fetches the blocks up to there,
                    // whose certificates its replica checks.
                    self.follower.hint_pushed(&payload);
                }
            }
            // Consensus messages are batched by `on_inbound`; gossip never
            // reaches the driver (`gossip::route_inbound` takes it).
            Inbound::Message { channel, from, .. } => {
                debug!(%from, channel = channel.name(), "unexpected message channel");
            }
            Inbound::PeerConnected(peer) => match &mut self.validator {
                Some(validator) => validator.on_peer_connected(&peer),
                // A full node's clients' transactions sent while it had no
                // validator to forward them to.
                None => gossip::offer_pending(&self.follower.shared, &peer),
            },
            Inbound::EpochAhead { from, epoch } => {
                // Peers are at least an epoch ahead: fetch a window of the
                // blocks this node misses (and more as they come in).
                let tip = self.follower.tip.height;
                if tip + 1 > self.follower.catch_up.target() {
                    debug!(%from, epoch, tip, "peers are epochs ahead: fetching blocks");
                    let window = 2 * self.follower.shared.executor.config().checkpoint_interval;
                    self.follower.catch_up.start(tip + 1, tip + window);
                }
            }
            Inbound::PeerDisconnected(peer) => {
                if let Some(validator) = &mut self.validator {
                    validator.on_peer_disconnected(&peer);
                }
            }
        }
        Ok(())
    }

    /// Feeds `input` to the replica and carries out the actions, feeding
    /// back the inputs they produce, until there is nothing left.
    async fn feed(&mut self, input: Input) -> Result<(), NodeError> {
        self.feed_all(VecDeque::from([input])).await
    }

    /// Feeds every input at hand to the replica before carrying out their
    /// actions together (one synced log write for all of them), then the
    /// inputs those actions produce, until there is nothing left.
    /// Nothing without the validator role (the transport gives a full node
    /// no consensus message).
    async fn feed_all(&mut self, mut inputs: VecDeque<Input>) -> Result<(), NodeError> {
        loop {
            let Some(validator) = &mut self.validator else {
                return Ok(());
            };
            while !inputs.is_empty() {
                let mut actions = Vec::new();
                while let Some(input) = inputs.pop_front() {
                    actions.extend(validator.replica.handle(input));
                }
                carry_out(&mut self.follower, validator, actions, &mut inputs).await?;
            }
            validator.observe();
            // The commits may have ended the epoch or fixed its end.
            inputs = self.settle_epoch()?;
            if inputs.is_empty() {
                return Ok(());
            }
        }
    }
}

/// Carries out a batch of the replica's actions in order, after persisting
/// all of its records in one write (group commit: moving a record earlier
/// never breaks persist-before-send). Inputs the actions produce go to
/// `inputs`.
async fn carry_out(
    follower: &mut Follower,
    validator: &mut Validator,
    actions: Vec<Action>,
    inputs: &mut VecDeque<Input>,
) -> Result<(), NodeError> {
    let mut records: Vec<Record> = Vec::new();
    let actions: Vec<Action> = actions
        .into_iter()
        .filter_map(|action| match action {
            Action::Persist(record) => {
                records.push(record);
                None
            }
            other => Some(other),
        })
        .collect();
    validator.persist(&mut records, follower.tip.height)?;
    for action in actions {
        match action {
            Action::Persist(_) => {}
            Action::Broadcast(bytes) => validator.broadcast(bytes),
            Action::Send { to, bytes } => validator.send(to, bytes),
            Action::SetTimer { id, after_ms } => validator.timer.arm(id, after_ms),
            Action::RequestProposal { view, seq, parent } => {
                let epoch = validator.replica.epoch();
                validator.proposal.ask(epoch, view, seq, parent);
            }
            Action::ValidateBlock {
                seq,
                block_hash,
                parent,
                payload,
            } => {
                let pending = PendingValidation {
                    seq,
                    block_hash,
                    parent,
                    payload,
                };
                validator.validate_block(follower, pending, inputs).await?;
            }
            Action::Commit {
                seq,
                block_hash,
                payload,
                certificate,
            } => {
                follower
                    .commit(seq, block_hash, payload, certificate)
                    .await?;
                // Proposals that were waiting for this block.
                validator.validate_waiting(follower, inputs).await?;
            }
            Action::RequestSync { from, to } => follower.catch_up.start(from, to),
            Action::Evidence(evidence) => validator.on_equivocation(&evidence),
            Action::CompactLog { stable_seq, view } => {
                validator.compact_log(stable_seq, view)?;
            }
        }
    }
    Ok(())
}

/// Sleeps until `at`, or forever without a deadline.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
