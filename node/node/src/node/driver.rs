//! The driver: one task that owns the node's roles and hands each event to
//! the one it concerns, one event at a time (ADR 0007). Consensus messages
//! go to the replica, whose actions are carried out in order, persist
//! first; sync requests to the follower; peers' comings and goings to the
//! validator (retransmission, the view timer's quorum). Fetched blocks go
//! to the replica, which checks their certificates; on a full node (no
//! validator role) they go to the follower, which checks them itself, as
//! it does the blocks its peers push.

use std::collections::VecDeque;

use stele_consensus::{Action, Input, Record};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::catch_up::Fetched;
use super::follower::Follower;
use super::validator::{PendingValidation, Validator};
use super::{NodeError, gossip};
use crate::net::{Channel, Inbound};

/// Inbound events taken at once, so the consensus messages among them
/// share one synced log write.
const INBOUND_BATCH_MAX: usize = 256;

pub(super) struct Driver {
    pub(super) follower: Follower,
    /// `None` on a full node.
    pub(super) validator: Option<Validator>,
}

impl Driver {
    /// Runs until shutdown; `first` is the replica's first input (a
    /// validator's).
    pub(super) async fn run(
        mut self,
        first: Option<Input>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut fetched: mpsc::Receiver<Fetched>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
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
                        }
                    }
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
                    batch.push_back(Input::Message(payload));
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
            } => self.follower.on_pushed(from, &payload).await?,
            // Consensus messages are batched by `on_inbound`; gossip never
            // reaches the driver (`gossip::route_inbound` takes it).
            Inbound::Message { channel, from, .. } => {
                debug!(%from, channel = channel.name(), "unexpected message channel");
            }
            Inbound::SyncRequest {
                from,
                request,
                respond,
            } => self.follower.catch_up.serve(from, &request, respond),
            Inbound::PeerConnected(peer) => match &mut self.validator {
                Some(validator) => validator.on_peer_connected(&peer),
                // A full node's clients' transactions sent while it had no
                // validator to forward them to.
                None => gossip::offer_pending(&self.follower.shared, &peer),
            },
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
        Ok(())
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
                validator.proposal.ask(view, seq, parent);
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
