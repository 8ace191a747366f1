//! The replica: its state, the dispatcher `handle`, message checks, the
//! safety log (sign once, persist before you speak) and restart.
//! Normal-case operation (§4.2) is in `normal.rs`, checkpoints and state
//! transfer (§4.3) in `checkpoint.rs`, view changes (§4.4, §4.5.2) in
//! `view_change.rs`.

use std::collections::BTreeMap;

use stele_types::codec::Encode;
use stele_types::{ConsensusKind, Hash, SecretKey, Signature};

use crate::config::{Config, ConfigError};
use crate::io::{Action, Evidence, Input, Record, TimerId};
use crate::message::{CheckpointProof, Message, ReplicaIndex, SignedMessage, Vote};
use crate::metrics::Counters;
use crate::quorum;
use crate::slot::{Accepted, Slot, Validation};
use crate::verify::{K256Verifier, Verifier};

/// Key of the "never sign two values" rule: (kind, view, seq).
pub(crate) type VoteKey = (u8, u64, u64);

pub(crate) fn vote_key(m: &Message) -> VoteKey {
    match m {
        // One VIEW-CHANGE and one NEW-VIEW per view, whatever checkpoint.
        Message::ViewChange(_) | Message::NewView(_) => (m.kind() as u8, m.view(), 0),
        _ => (m.kind() as u8, m.view(), m.seq()),
    }
}

/// A PBFT replica (Castro & Liskov; section numbers are the OSDI'99
/// paper's) as a pure state machine: feed it [`Input`]s with
/// [`Replica::handle`] and carry out the [`Action`]s it returns.
///
/// How it must be driven:
/// - **Start** once: [`Input::Start`] on an empty log, or
///   [`Input::Restart`] with every record of its earlier
///   [`Action::Persist`]s in order (minus those [`Action::CompactLog`]
///   let go), the last block committed to the store, and whether unsynced
///   records may be lost. A restart replays without sending anything.
/// - **Feed** every event as it happens: peer bytes ([`Input::Message`]),
///   the firing of the latest [`Action::SetTimer`] ([`Input::Timer`]; older
///   ids are ignored), and the answers to its requests:
///   [`Input::ProposalReady`] for [`Action::RequestProposal`],
///   [`Input::BlockValidated`] for [`Action::ValidateBlock`], and
///   [`Input::Synced`] for [`Action::RequestSync`], one block at a time in
///   height order. Answers may come late or interleaved with other inputs;
///   one the replica no longer waits for is ignored.
/// - **Carry out** the actions in the order returned. Safety rests on one
///   rule: a [`Action::Persist`] is written, and synced when
///   [`Record::needs_sync`] holds, before any `Broadcast` or `Send` after
///   it leaves (persist before you speak). Records may move earlier, never
///   later: a driver may write the records of several `handle` calls in
///   one batch ahead of all their other actions, as `stele-node` does.
///   [`Action::Commit`] comes once per height in height order and must be
///   applied in that order; [`Action::CompactLog`] only once the records
///   before it are durable.
#[derive(Debug)]
pub struct Replica {
    pub(crate) cfg: Config,
    key: SecretKey,
    pub(crate) me: ReplicaIndex,
    pub(crate) verifier: Box<dyn Verifier>,

    /// Current view; while `active` is false the replica is changing into it.
    pub(crate) view: u64,
    pub(crate) active: bool,
    /// View changes since the last commit; the timer doubles with each.
    pub(crate) attempts: u32,
    pub(crate) timer: u64,
    /// The last sequence whose PRE-PREPARE re-armed the view timer (see
    /// `on_pre_prepare`): each sequence gets that once.
    pub(crate) timer_extended_for: u64,

    pub(crate) stable: CheckpointProof,
    pub(crate) committed_seq: u64,
    pub(crate) committed_hash: Hash,
    pub(crate) slots: BTreeMap<u64, Slot>,
    /// CHECKPOINT votes by seq: hash and signature per signer.
    pub(crate) checkpoint_votes: BTreeMap<u64, BTreeMap<ReplicaIndex, (Hash, Signature)>>,
    /// Latest valid VIEW-CHANGE of each replica (highest view).
    pub(crate) latest_view_change: BTreeMap<ReplicaIndex, SignedMessage>,
    /// The NEW-VIEW that installed the current view, resent to laggards.
    pub(crate) new_view_message: Option<SignedMessage>,

    /// What this replica signed, by (kind, view, seq): never two values.
    signed: BTreeMap<VoteKey, Hash>,
    /// Set by a restart that may have lost unsynced records (the host
    /// restarted): the view the replica was in. PRE-PREPAREs and PREPAREs
    /// are written without a sync, so it cannot know which ones it sent in
    /// that view; it signs none there or below and waits for a later view.
    lost_view: Option<u64>,
    /// First message seen per (kind, view, seq, signer), for equivocation.
    seen: BTreeMap<(u8, u64, u64, ReplicaIndex), SignedMessage>,

    /// The proposal asked of the node: (view, seq, parent).
    pub(crate) proposal_pending: Option<(u64, u64, Hash)>,
    /// Next sequence number the primary assigns in this view.
    pub(crate) next_seq: u64,
    /// Highest height asked of state transfer.
    pub(crate) sync_requested_to: u64,
    /// The epoch's last height, once the committed chain fixed it
    /// ([`Input::EpochEnds`]).
    pub(crate) last_seq: Option<u64>,
    replaying: bool,
    pub(crate) counters: Counters,
    pub(crate) out: Vec<Action>,
}

impl Replica {
    /// A replica for the validator holding `key`. Fails if the key is not in
    /// the validator set or the configuration is inconsistent.
    pub fn new(
        cfg: Config,
        key: SecretKey,
        verifier: Box<dyn Verifier>,
    ) -> Result<Replica, ConfigError> {
        cfg.validate()?;
        let me = cfg
            .validators
            .index_of(&key.address())
            .ok_or(ConfigError::NotAValidator)?;
        // At most `ValidatorSet::VALIDATORS_MAX` validators, so it fits.
        let me = ReplicaIndex::try_from(me).map_err(|_| ConfigError::NotAValidator)?;
        let (base_seq, base_hash) = (cfg.base_seq, cfg.base_hash);
        Ok(Replica {
            cfg,
            key,
            me,
            verifier,
            view: 0,
            active: true,
            attempts: 0,
            timer: 0,
            timer_extended_for: base_seq,
            stable: CheckpointProof {
                seq: base_seq,
                block_hash: base_hash,
                votes: Vec::new(),
            },
            committed_seq: base_seq,
            committed_hash: base_hash,
            slots: BTreeMap::new(),
            checkpoint_votes: BTreeMap::new(),
            latest_view_change: BTreeMap::new(),
            new_view_message: None,
            signed: BTreeMap::new(),
            lost_view: None,
            seen: BTreeMap::new(),
            proposal_pending: None,
            next_seq: base_seq + 1,
            sync_requested_to: 0,
            last_seq: None,
            replaying: false,
            counters: Counters::default(),
            out: Vec::new(),
        })
    }

    /// A replica with plain k256 signature verification.
    pub fn with_k256(cfg: Config, key: SecretKey) -> Result<Replica, ConfigError> {
        Replica::new(cfg, key, Box::new(K256Verifier::default()))
    }

    /// Processes one input and returns what the node must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Start => {
                self.arm_timer();
                self.advance();
            }
            Input::Restart {
                records,
                committed,
                unsynced_lost,
            } => self.restart(records, committed, unsynced_lost),
            Input::Message(bytes) => self.on_bytes(&bytes),
            Input::Timer(id) => {
                if id.0 == self.timer && !self.finished() {
                    self.on_timeout();
                }
            }
            Input::ProposalReady {
                view,
                seq,
                block_hash,
                payload,
            } => self.on_proposal_ready(view, seq, block_hash, payload),
            Input::BlockValidated {
                seq,
                block_hash,
                valid,
            } => self.on_validated(seq, block_hash, valid),
            Input::Synced {
                certificate,
                payload,
            } => self.on_synced(certificate, payload),
            Input::EpochEnds { last_seq } => self.end_epoch_at(last_seq),
        }
        std::mem::take(&mut self.out)
    }

    /// Drop and equivocation counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// This replica's index in the validator set.
    pub fn index(&self) -> ReplicaIndex {
        self.me
    }

    /// The current view, and whether it is installed (false while changing).
    pub fn view(&self) -> (u64, bool) {
        (self.view, self.active)
    }

    /// Height of the last committed block.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// Sequence number of the stable checkpoint (the low watermark h).
    pub fn stable_seq(&self) -> u64 {
        self.stable.seq
    }

    /// Sets the view-change timeouts (the chain's protocol changed them):
    /// the next timer armed uses them. A pair the config would refuse (a
    /// zero base, a max below it) is ignored.
    pub fn set_view_timeouts(&mut self, base_ms: u64, max_ms: u64) {
        if base_ms > 0 && max_ms >= base_ms {
            self.cfg.view_timeout_ms = base_ms;
            self.cfg.view_timeout_max_ms = max_ms;
        }
    }

    /// The view-change timeouts in force: (base, max).
    pub fn view_timeouts(&self) -> (u64, u64) {
        (self.cfg.view_timeout_ms, self.cfg.view_timeout_max_ms)
    }

    /// The epoch this replica runs.
    pub fn epoch(&self) -> u64 {
        self.cfg.epoch
    }

    /// Its epoch's validator set (indices in messages are into it).
    pub fn validators(&self) -> &stele_types::ValidatorSet {
        &self.cfg.validators
    }

    /// The epoch's last height, once known.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Whether the replica committed its epoch's last height: it has nothing
    /// left to do, and the node moves on to the next epoch.
    pub fn finished(&self) -> bool {
        self.last_seq == Some(self.committed_seq)
    }

    /// [`Input::EpochEnds`]: nothing above `last` is ordered in this epoch.
    /// Slots above it are dropped (no block there can commit in this
    /// epoch: the node refuses to validate one), and so is a proposal asked
    /// for above it. An end below the committed height or off a checkpoint
    /// is a driver's mistake and changes nothing.
    fn end_epoch_at(&mut self, last: u64) {
        if self.last_seq.is_some()
            || last < self.committed_seq
            || !last.is_multiple_of(self.cfg.checkpoint_interval_seqs)
        {
            return;
        }
        self.last_seq = Some(last);
        self.slots.retain(|seq, _| *seq <= last);
        if self.proposal_pending.is_some_and(|(_, seq, _)| seq > last) {
            self.proposal_pending = None;
        }
        self.advance();
    }

    // ---- helpers ---------------------------------------------------------

    pub(crate) fn is_primary(&self, view: u64) -> bool {
        self.primary_index(view) == self.me
    }

    pub(crate) fn primary_index(&self, view: u64) -> ReplicaIndex {
        (view % self.cfg.validators.len() as u64) as ReplicaIndex
    }

    /// The high watermark H = h + L (§4.2), capped at the epoch's last
    /// height once that is known.
    pub(crate) fn high_watermark(&self) -> u64 {
        let high = self.stable.seq.saturating_add(self.cfg.window_seqs);
        self.last_seq.map_or(high, |last| high.min(last))
    }

    pub(crate) fn in_window(&self, seq: u64) -> bool {
        seq > self.stable.seq && seq <= self.high_watermark()
    }

    pub(crate) fn power_of(&self, signer: ReplicaIndex) -> u64 {
        quorum::power(&self.cfg.validators, std::iter::once(&signer))
    }

    pub(crate) fn power<'a>(&self, signers: impl Iterator<Item = &'a ReplicaIndex>) -> u64 {
        quorum::power(&self.cfg.validators, signers)
    }

    pub(crate) fn is_quorum(&self, power: u64) -> bool {
        power >= self.cfg.validators.quorum_power()
    }

    /// Verifies one signature by `signer` over `digest`.
    pub(crate) fn verify_vote(&self, signer: ReplicaIndex, digest: &Hash, sig: &Signature) -> bool {
        match self.cfg.validators.get(signer as usize) {
            Some(v) => self.verifier.verify(&v.public_key, digest, sig),
            None => false,
        }
    }

    /// Votes sorted by signer without duplicates, all valid over `digest`,
    /// holding a quorum of power.
    pub(crate) fn valid_quorum(&self, digest: &Hash, votes: &[Vote]) -> bool {
        let sorted = votes.windows(2).all(|w| w[0].signer < w[1].signer);
        sorted
            && self.is_quorum(self.power(votes.iter().map(|v| &v.signer)))
            && votes
                .iter()
                .all(|v| self.verify_vote(v.signer, digest, &v.signature))
    }

    /// The committed hash at `seq`, if this replica knows it.
    pub(crate) fn committed_hash_at(&self, seq: u64) -> Option<Hash> {
        if seq == self.committed_seq {
            Some(self.committed_hash)
        } else if seq == self.stable.seq && seq <= self.committed_seq {
            Some(self.stable.block_hash)
        } else {
            self.slots.get(&seq).and_then(|s| s.committed())
        }
    }

    pub(crate) fn slot_mut(&mut self, seq: u64) -> &mut Slot {
        self.slots.entry(seq).or_default()
    }

    /// Signs `message` unless this replica already signed a different value
    /// for the same (kind, view, seq); during replay it signs nothing new;
    /// after a lossy restart, no PRE-PREPARE or PREPARE in the lost view.
    pub(crate) fn sign(&mut self, message: Message) -> Option<SignedMessage> {
        if matches!(message, Message::PrePrepare(_) | Message::Prepare(_))
            && !self.may_order(message.view())
        {
            return None;
        }
        let key = vote_key(&message);
        let body = message.body_hash();
        match self.signed.get(&key) {
            Some(b) if *b == body => {}
            Some(_) => {
                self.counters.double_sign_refused += 1;
                return None;
            }
            None if self.replaying => return None,
            None => {
                self.signed.insert(key, body);
            }
        }
        let epoch = self.cfg.epoch;
        let digest = message.digest(self.cfg.chain_id, epoch);
        Some(SignedMessage {
            epoch,
            signature: self.key.sign_digest(&digest),
            signer: self.me,
            message,
        })
    }

    /// The body hash this replica signed for `message`'s (kind, view, seq),
    /// if it signed anything there.
    pub(crate) fn signed_body(&self, message: &Message) -> Option<Hash> {
        self.signed.get(&vote_key(message)).copied()
    }

    /// Whether the replica is replaying its log (it signs nothing new).
    pub(crate) fn replaying(&self) -> bool {
        self.replaying
    }

    /// Whether this replica may sign PRE-PREPAREs and PREPAREs in `view`
    /// (see `lost_view`).
    pub(crate) fn may_order(&self, view: u64) -> bool {
        self.lost_view.is_none_or(|lost| view > lost)
    }

    /// Forgets what this replica will never accept or sign again once in
    /// `view`: PRE-PREPAREs and votes of lower views (prepared certificates,
    /// commit certificates and validations are kept), and the equivocation
    /// and signing records of lower views. CHECKPOINTs have no view and are
    /// dropped with the stable checkpoint instead.
    fn forget_views_below(&mut self, view: u64) {
        for slot in self.slots.values_mut() {
            slot.forget_views_below(view);
        }
        let checkpoint = ConsensusKind::Checkpoint as u8;
        self.seen
            .retain(|(kind, v, _, _), _| *kind == checkpoint || *v >= view);
        self.signed
            .retain(|(kind, v, _), _| *kind == checkpoint || *v >= view);
    }

    /// Drops equivocation and signing records at or below `seq`, the new
    /// stable checkpoint (view-change records, at seq 0, stay).
    pub(crate) fn forget_seqs_through(&mut self, seq: u64) {
        self.seen.retain(|(_, _, s, _), _| *s > seq || *s == 0);
        self.signed.retain(|(_, _, s), _| *s > seq || *s == 0);
    }

    /// Persist, then broadcast (persist before you speak).
    pub(crate) fn sign_persist_broadcast(&mut self, message: Message) -> Option<SignedMessage> {
        let m = self.sign(message)?;
        self.out.push(Action::Persist(Record::Signed(m.clone())));
        self.out.push(Action::Broadcast(m.to_bytes()));
        Some(m)
    }

    pub(crate) fn view_timeout_ms(&self) -> u64 {
        let shift = self.attempts.min(32);
        self.cfg
            .view_timeout_ms
            .saturating_mul(1u64 << shift)
            .min(self.cfg.view_timeout_max_ms)
    }

    pub(crate) fn arm_timer(&mut self) {
        self.timer += 1;
        let after_ms = self.view_timeout_ms();
        self.out.push(Action::SetTimer {
            id: TimerId(self.timer),
            after_ms,
        });
    }

    // ---- view transitions (§4.4) ----------------------------------------
    // The only writers of `view`, `active`, `attempts`, `new_view_message`
    // and `latest_view_change` outside restart; `view_change.rs` decides
    // when, these say what changes.

    /// Stops taking part in the current view and starts changing into
    /// `new_view`: drops a pending proposal and lower views' normal-case
    /// state, and counts the attempt (each doubles the timer, §4.5.2).
    pub(crate) fn begin_view_change(&mut self, new_view: u64) {
        self.view = new_view;
        self.active = false;
        self.proposal_pending = None;
        self.new_view_message = None;
        self.attempts = self.attempts.saturating_add(1);
        self.forget_views_below(new_view);
    }

    /// Enters the view of the NEW-VIEW `m` (checked, or signed here), which
    /// is kept to forward to laggards.
    pub(crate) fn enter_view(&mut self, m: SignedMessage) {
        let view = m.message.view();
        self.view = view;
        self.active = true;
        self.proposal_pending = None;
        self.new_view_message = Some(m);
        self.forget_views_below(view);
    }

    /// Keeps `m` as its signer's latest VIEW-CHANGE.
    pub(crate) fn remember_view_change(&mut self, m: SignedMessage) {
        self.latest_view_change.insert(m.signer, m);
    }

    /// The primary of a newly installed view proposes from `seq` on, above
    /// the PRE-PREPAREs its NEW-VIEW re-proposed.
    pub(crate) fn propose_from(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    // ---- receiving ------------------------------------------------------

    fn on_bytes(&mut self, bytes: &[u8]) {
        if bytes.len() > self.cfg.limits.message_bytes_max {
            self.counters.dropped_oversized += 1;
            return;
        }
        let m = match SignedMessage::decode(bytes, &self.cfg.limits) {
            Ok(m) => m,
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        if m.epoch != self.cfg.epoch {
            self.counters.dropped_wrong_epoch += 1;
            return;
        }
        let Some(validator) = self.cfg.validators.get(m.signer as usize) else {
            self.counters.dropped_non_validator += 1;
            return;
        };
        // Checking a signature is most of the work per message: a vote that
        // can change nothing here is dropped before it.
        if self.vote_unneeded(&m.message) {
            self.counters.unneeded_votes += 1;
            return;
        }
        let digest = m.digest(self.cfg.chain_id);
        if !self
            .verifier
            .verify(&validator.public_key, &digest, &m.signature)
        {
            self.counters.dropped_bad_signature += 1;
            return;
        }
        if m.signer == self.me {
            // Our own messages are applied when sent; a copy from the
            // network (or from a twin holding our key) adds nothing.
            self.counters.duplicates += 1;
            return;
        }
        match m.message.clone() {
            Message::PrePrepare(pp) => self.on_pre_prepare(m, pp),
            Message::Prepare(p) => self.on_prepare(m, p),
            Message::Commit(c) => self.on_commit(m, c),
            Message::Checkpoint(c) => self.on_checkpoint(m, c),
            Message::ViewChange(vc) => self.on_view_change(m, vc),
            Message::NewView(nv) => self.on_new_view(m, nv),
        }
    }

    /// A PREPARE for a slot this replica already prepared in that view or a
    /// later one, or a COMMIT for a slot already committed-local or at or
    /// below the committed height. With four validators that is the third
    /// vote of each phase, every block. A signer who equivocates in such a
    /// vote goes unreported (its earlier votes in the slot were checked).
    /// PREPAREs for committed blocks still count when the slot is not
    /// prepared here: a VIEW-CHANGE must carry a prepared certificate for
    /// every block above the stable checkpoint, committed or not, or the
    /// next NEW-VIEW has a hole below a committed block (the simulation
    /// stalls without them).
    fn vote_unneeded(&self, message: &Message) -> bool {
        match message {
            Message::Prepare(p) => self
                .slots
                .get(&p.seq)
                .and_then(|s| s.prepared())
                .is_some_and(|c| c.view >= p.view),
            Message::Commit(c) => {
                c.seq <= self.committed_seq
                    || self
                        .slots
                        .get(&c.seq)
                        .is_some_and(|s| s.certificate().is_some())
            }
            _ => false,
        }
    }

    /// Views a replica accepts normal-case messages for: its own, and a few
    /// ahead (buffered until it gets there).
    pub(crate) fn view_acceptable(&mut self, view: u64) -> bool {
        let ok = view >= self.view && view <= self.view.saturating_add(self.cfg.views_ahead_max);
        if !ok {
            self.counters.dropped_wrong_view += 1;
        }
        ok
    }

    pub(crate) fn seq_acceptable(&mut self, seq: u64) -> bool {
        let ok = self.in_window(seq);
        if !ok {
            self.counters.dropped_out_of_window += 1;
        }
        ok
    }

    /// Records the first message per (kind, view, seq, signer). Returns false
    /// for a duplicate, and for a conflicting second message, which is
    /// reported as evidence.
    pub(crate) fn first_of_its_kind(&mut self, m: &SignedMessage) -> bool {
        let (kind, view, seq) = vote_key(&m.message);
        let key = (kind, view, seq, m.signer);
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, m.clone());
                true
            }
            Some(first) if first.message.body_hash() == m.message.body_hash() => {
                self.counters.duplicates += 1;
                false
            }
            Some(first) => {
                let first = first.clone();
                self.report_equivocation(first, m.clone());
                false
            }
        }
    }

    /// Reports two conflicting messages signed by one validator.
    pub(crate) fn report_equivocation(&mut self, first: SignedMessage, second: SignedMessage) {
        self.counters.equivocations += 1;
        self.out.push(Action::Evidence(Evidence { first, second }));
    }

    // ---- restart ---------------------------------------------------------

    /// Rebuilds the safety state from the log without emitting any message:
    /// what was signed stays signed, and nothing new is signed during replay.
    fn restart(&mut self, records: Vec<Record>, committed: Option<(u64, Hash)>, lost: bool) {
        self.replaying = true;
        if let Some((seq, hash)) = committed {
            self.committed_seq = seq;
            self.committed_hash = hash;
        }
        let epoch = self.cfg.epoch;
        for record in records {
            match record {
                // Another epoch's messages are not this replica's to replay
                // (the node keeps one epoch's log per replica).
                Record::Signed(m) | Record::NewView(m) if m.epoch != epoch => {}
                Record::Stable(p) => {
                    if p.seq > self.stable.seq {
                        self.stable = p;
                    }
                }
                Record::Prepared(c) => {
                    self.slot_mut(c.seq).keep_prepared(c);
                }
                Record::Signed(m) => self.replay_signed(m),
                Record::NewView(m) => self.replay_new_view(m),
                Record::LostView(view) => {
                    self.lost_view = self.lost_view.max(Some(view));
                }
            }
        }
        let stable_seq = self.stable.seq;
        self.slots = self.slots.split_off(&(stable_seq + 1));
        // Validations in flight died with the node: ask again.
        for slot in self.slots.values_mut() {
            slot.forget_pending_validations();
        }
        if let Some(h) = self.committed_hash_at(self.committed_seq) {
            self.committed_hash = h;
        }
        self.next_seq = self
            .slots
            .iter()
            .filter(|(_, s)| s.accepted(self.view).is_some())
            .map(|(seq, _)| seq + 1)
            .max()
            .unwrap_or(0)
            .max(self.committed_seq + 1);
        self.replaying = false;
        self.sync_requested_to = 0;
        self.out.clear();
        // Records are lost only after the last synced one, and entering a
        // view is synced: whatever was lost belongs to the current view.
        // Recorded (synced) first, so a later restart on the same host
        // still knows.
        if lost {
            self.lost_view = self.lost_view.max(Some(self.view));
            self.out.push(Action::Persist(Record::LostView(self.view)));
        }
        self.arm_timer();
        if self.committed_seq < self.stable.seq {
            self.request_sync(self.stable.seq);
        }
        self.advance();
    }

    fn replay_signed(&mut self, m: SignedMessage) {
        let key = vote_key(&m.message);
        self.signed.insert(key, m.message.body_hash());
        match m.message.clone() {
            Message::PrePrepare(pp) => {
                let slot = self.slot_mut(pp.seq);
                slot.set_validation(pp.block_hash, Validation::Valid);
                slot.set_pre_prepare(
                    pp.view,
                    Accepted {
                        block_hash: pp.block_hash,
                        parent: pp.parent,
                        payload: pp.payload,
                    },
                );
            }
            Message::Prepare(p) => {
                let me = self.me;
                self.slot_mut(p.seq)
                    .add_prepare(p.view, p.block_hash, p.parent, me, m.signature);
            }
            Message::Commit(c) => {
                let me = self.me;
                self.slot_mut(c.seq)
                    .add_commit(c.view, c.block_hash, me, m.signature);
            }
            Message::Checkpoint(c) => {
                self.checkpoint_votes
                    .entry(c.seq)
                    .or_default()
                    .insert(self.me, (c.block_hash, m.signature));
            }
            Message::ViewChange(vc) => {
                if vc.new_view >= self.view {
                    self.view = vc.new_view;
                    self.active = false;
                }
                self.latest_view_change.insert(self.me, m);
            }
            Message::NewView(_) => self.replay_new_view(m),
        }
    }
}
