//! Cheap checks, then signature checks in parallel, for consensus messages
//! on their way from the network to the driver.
//!
//! One Byzantine validator may send validly signed messages at line rate.
//! Checked on the driver, each signature (~50-100 µs) delays every block;
//! so each message first passes the checks that cost nothing (size, a
//! digest already seen, a view the replica has left, a sequence number at
//! or below its low watermark, a COMMIT at or below the committed height:
//! all of which the replica would drop), and only then is its signature
//! checked, off the driver, several batches at a time. A good signature is recorded in [`VerifiedSignatures`], which the
//! replica's verifier consults before doing the work itself; a bad one
//! never reaches the driver. The replica stays a pure state machine: what
//! it sees is the same as before, only sooner.
//!
//! What one peer can cost: at most [`VERIFY_PER_PEER_PER_S`] signature
//! checks a second (a burst of [`VERIFY_PER_PEER_BURST`]), its messages'
//! own and those inside their certificates; a message that would take more
//! is dropped (`over_budget`) before anything is checked. An honest
//! validator sends a few messages per block and a view change's
//! certificates carry at most a few hundred signatures, well inside it.
//! And a vote for a view or a sequence so far ahead that the replica would
//! drop it (twice its buffering horizon, so a slightly old reading of the
//! replica's progress never drops a useful one) is dropped unchecked.
//!
//! The signatures inside certificates (the votes of a VIEW-CHANGE's proofs,
//! the VIEW-CHANGEs of a NEW-VIEW) are checked here too, once the message's
//! own signature is good, and recorded the same way; a recorded vote is not
//! checked again when another certificate carries it.
//!
//! The per-peer budgets are in `budget`; the tests in `tests`.

mod budget;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stele_consensus::{
    Checkpoint, K256Verifier, Message, MessageLimits, SignedMessage, Verifier, Vote,
};
use stele_types::{Hash, PublicKey, Signature, ValidatorSet, keccak256, keccak256_parts};
use tokio::sync::mpsc;

use crate::net::{Channel, Inbound, InboundCharge};

pub use budget::{OFFENCE_CHECKS, PeerBudgets};

/// Messages taken from the queue into one batch (a VIEW-CHANGE or NEW-VIEW
/// may carry many signatures; the batch is then checked on the blocking
/// pool).
const BATCH_MAX: usize = 64;
/// A batch with at most this many signatures (of its messages and inside
/// their certificates) is checked on the pipeline's
/// own task (no hand-off to another thread); a larger one goes to the
/// blocking pool.
const INLINE_VERIFY_MAX: usize = 2;
/// Batches checked or waiting to be forwarded at once; beyond, the
/// pipeline waits, which pushes back on the network's readers.
const BATCHES_IN_FLIGHT_MAX: usize = 4;
/// Digests remembered per generation; two generations are kept.
const SEEN_PER_GENERATION_MAX: usize = 16_384;
/// A generation of digests is retired after this long, so a message is a
/// duplicate for between one and two of these: long enough that a replayed
/// flood of the same bytes costs one check per span, short enough that a
/// copy the replica could not use yet (a view it had not reached) is
/// accepted when resent after a reconnection or a view-change timeout.
const SEEN_GENERATION_SPAN: Duration = Duration::from_secs(2);
/// Verified signatures waiting for the replica; past it, the oldest are
/// forgotten (the replica then checks those itself).
const VERIFIED_MAX: usize = 65_536;
/// Signature checks one peer's messages may cost per second (~0.2-0.4 of a
/// core at 50-100 us each), and in a burst.
pub const VERIFY_PER_PEER_PER_S: f64 = 4_000.0;
pub const VERIFY_PER_PEER_BURST: f64 = 16_000.0;

/// Why the pre-check dropped a consensus message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PrecheckDrop {
    /// Over the message size limit.
    Oversized,
    /// The same bytes arrived a moment ago.
    Duplicate,
    /// Not a well-formed signed consensus message.
    Malformed,
    /// Signed by an index outside the validator set.
    NonValidator,
    /// Of another epoch than the replica's (ADR 0010).
    WrongEpoch,
    /// A PRE-PREPARE, PREPARE or COMMIT for a view below the replica's or
    /// at or below its low watermark, or a COMMIT at or below the committed
    /// height.
    Stale,
    /// The signature does not verify.
    BadSignature,
    /// A PRE-PREPARE, PREPARE or COMMIT for a view or sequence far beyond
    /// what the replica buffers.
    Ahead,
    /// Its signature checks would exceed the sending peer's budget.
    OverBudget,
}

impl PrecheckDrop {
    pub const ALL: [PrecheckDrop; 9] = [
        PrecheckDrop::Oversized,
        PrecheckDrop::Duplicate,
        PrecheckDrop::Malformed,
        PrecheckDrop::NonValidator,
        PrecheckDrop::WrongEpoch,
        PrecheckDrop::Stale,
        PrecheckDrop::BadSignature,
        PrecheckDrop::Ahead,
        PrecheckDrop::OverBudget,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PrecheckDrop::Oversized => "oversized",
            PrecheckDrop::Duplicate => "duplicate",
            PrecheckDrop::Malformed => "malformed",
            PrecheckDrop::NonValidator => "non_validator",
            PrecheckDrop::WrongEpoch => "wrong_epoch",
            PrecheckDrop::Stale => "stale",
            PrecheckDrop::BadSignature => "bad_signature",
            PrecheckDrop::Ahead => "ahead",
            PrecheckDrop::OverBudget => "over_budget",
        }
    }
}

/// Counters of the pre-check, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct PrecheckCounters {
    dropped: [AtomicU64; PrecheckDrop::ALL.len()],
    verified: AtomicU64,
}

impl PrecheckCounters {
    fn record_drop(&self, reason: PrecheckDrop) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Messages dropped for `reason`.
    pub fn dropped(&self, reason: PrecheckDrop) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Signatures checked and found good.
    pub fn verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }
}

/// Digests of recent messages in two generations, so memory is bounded and
/// a message counts as a duplicate only for a few seconds.
#[derive(Debug)]
struct Seen {
    current: BTreeSet<Hash>,
    previous: BTreeSet<Hash>,
    since: Instant,
}

impl Seen {
    fn new(now: Instant) -> Seen {
        Seen {
            current: BTreeSet::new(),
            previous: BTreeSet::new(),
            since: now,
        }
    }

    /// Records `digest`; false if it was seen already.
    fn insert(&mut self, digest: Hash, now: Instant) -> bool {
        if self.current.len() >= SEEN_PER_GENERATION_MAX
            || now.saturating_duration_since(self.since) >= SEEN_GENERATION_SPAN
        {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        !self.previous.contains(&digest) && self.current.insert(digest)
    }
}

/// What the replica knows that makes a message useless to it: its view,
/// its stable checkpoint (the low watermark) and the committed height. All
/// only grow, so a stale reading only lets a useless message through,
/// never drops a useful one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub view: u64,
    pub stable: u64,
    pub committed: u64,
}

/// A message that passed the cheap checks; its signature is next.
#[derive(Debug)]
struct Candidate {
    from: stele_types::Address,
    payload: Vec<u8>,
    key: PublicKey,
    /// Signed by the peer that sent it (not relayed).
    self_signed: bool,
    digest: Hash,
    signature: Signature,
    /// The signatures inside its certificates, checked once its own is.
    embedded: Vec<Signed>,
}

/// One signature to check: the signer's key, the digest, the signature.
type Signed = (PublicKey, Hash, Signature);

/// How far ahead of its progress the replica buffers votes: views past
/// its own, sequences past its low watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub views_ahead: u64,
    pub window_seqs: u64,
}

/// Where the pre-check reads the replica's epoch, its set and the next
/// epoch's (decided) set from: the node's published epoch.
pub type EpochSource = Arc<dyn Fn() -> Arc<crate::node::EpochView> + Send + Sync>;

/// How often the pre-check tells the driver that peers are epochs ahead.
const EPOCH_AHEAD_REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// An epoch source that always gives epoch 0 with `validators` and no
/// change (tests and tools).
pub fn fixed_epoch(validators: ValidatorSet) -> EpochSource {
    let view = Arc::new(crate::node::EpochView {
        info: stele_exec::EpochInfo {
            epoch: 0,
            start_height: 1,
        },
        validators,
        pending: None,
    });
    Arc::new(move || view.clone())
}

/// The cheap checks, in order of cost.
pub struct Precheck {
    chain_id: u64,
    epochs: EpochSource,
    /// A message of an epoch past the next one, to report to the driver
    /// (at most once per [`EPOCH_AHEAD_REPORT_INTERVAL`]), and when the
    /// last was.
    ahead: Option<(stele_types::Address, u64)>,
    ahead_reported: Option<Instant>,
    limits: MessageLimits,
    horizon: Horizon,
    seen: Seen,
    budgets: Arc<PeerBudgets>,
    counters: Arc<PrecheckCounters>,
}

impl std::fmt::Debug for Precheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Precheck")
            .field("chain_id", &self.chain_id)
            .field("horizon", &self.horizon)
            .finish_non_exhaustive()
    }
}

impl Precheck {
    /// A pre-check for a replica whose epoch, set and next set `epochs`
    /// gives at each message.
    pub fn new(
        chain_id: u64,
        epochs: EpochSource,
        limits: MessageLimits,
        horizon: Horizon,
        budgets: Arc<PeerBudgets>,
        counters: Arc<PrecheckCounters>,
    ) -> Precheck {
        Precheck {
            chain_id,
            epochs,
            ahead: None,
            ahead_reported: None,
            limits,
            horizon,
            seen: Seen::new(Instant::now()),
            budgets,
            counters,
        }
    }

    /// Runs the cheap checks on one consensus message; what is left to do
    /// is its signature check.
    fn check(
        &mut self,
        from: stele_types::Address,
        payload: Vec<u8>,
        progress: Progress,
        now: Instant,
    ) -> Option<Candidate> {
        let fail = |reason| {
            self.counters.record_drop(reason);
            None
        };
        if payload.len() > self.limits.message_bytes_max {
            return fail(PrecheckDrop::Oversized);
        }
        if !self.seen.insert(keccak256(&payload), now) {
            return fail(PrecheckDrop::Duplicate);
        }
        let Ok(m) = SignedMessage::decode(&payload, &self.limits) else {
            return fail(PrecheckDrop::Malformed);
        };
        // The replica's epoch, or the next one once it is decided (ADR
        // 0010): the driver holds those until its replica gets there, so
        // the first messages of an epoch are not lost to members that
        // finish the last one a moment later.
        let epochs = (self.epochs)();
        let current = epochs.epoch();
        let validators = if m.epoch == current {
            &epochs.validators
        } else if m.epoch == current.saturating_add(1)
            && let Some(next) = &epochs.pending
        {
            &next.validators
        } else {
            if m.epoch > current
                && self
                    .ahead_reported
                    .is_none_or(|t| now.duration_since(t) >= EPOCH_AHEAD_REPORT_INTERVAL)
            {
                self.ahead = Some((from, m.epoch));
                self.ahead_reported = Some(now);
            }
            return fail(PrecheckDrop::WrongEpoch);
        };
        let Some((key, signer)) = validators
            .get(m.signer as usize)
            .map(|v| (v.public_key, v.address))
        else {
            return fail(PrecheckDrop::NonValidator);
        };
        // The replica's progress says nothing of the next epoch's views and
        // sequences.
        if m.epoch == current && is_stale(&m.message, progress) {
            return fail(PrecheckDrop::Stale);
        }
        if m.epoch == current && is_far_ahead(&m.message, progress, self.horizon) {
            return fail(PrecheckDrop::Ahead);
        }
        let mut embedded = Vec::new();
        // For a view below its own the replica never looks inside (it
        // answers a laggard's VIEW-CHANGE with its NEW-VIEW, and drops an
        // old NEW-VIEW), so neither does the pre-check.
        let in_view = m.epoch == current
            && match &m.message {
                Message::ViewChange(vc) => vc.new_view >= progress.view,
                Message::NewView(nv) => nv.view >= progress.view,
                _ => false,
            };
        if in_view {
            embedded_signatures(&m, self.chain_id, validators, &mut embedded);
        }
        if !self.budgets.spend(from, 1 + embedded.len(), now) {
            self.counters.record_drop(PrecheckDrop::OverBudget);
            return None;
        }
        Some(Candidate {
            from,
            key,
            self_signed: signer == from,
            digest: m.digest(self.chain_id),
            signature: m.signature,
            embedded,
            payload,
        })
    }
}

/// Appends to `out` every signature `m` carries besides its own, with the
/// digest its signer signed: the CHECKPOINT votes of a stable-checkpoint
/// proof and the PREPARE votes of each prepared certificate in a
/// VIEW-CHANGE, and each VIEW-CHANGE of a NEW-VIEW with what it carries.
/// Votes by an index outside the validator set are left out (the replica
/// rejects them). The counts are bounded by the decoding limits.
fn embedded_signatures(
    signed: &SignedMessage,
    chain_id: u64,
    validators: &ValidatorSet,
    out: &mut Vec<Signed>,
) {
    let epoch = signed.epoch;
    let mut votes = |digest: Hash, votes: &[Vote]| {
        for v in votes {
            if let Some(validator) = validators.get(v.signer as usize) {
                out.push((validator.public_key, digest, v.signature));
            }
        }
    };
    match &signed.message {
        Message::ViewChange(vc) => {
            let proof = &vc.checkpoint;
            let checkpoint = Checkpoint {
                seq: proof.seq,
                block_hash: proof.block_hash,
            };
            votes(checkpoint.digest(chain_id, epoch), &proof.votes);
            for c in &vc.prepared {
                votes(c.prepare().digest(chain_id, epoch), &c.votes);
            }
        }
        Message::NewView(nv) => {
            for vc in &nv.view_changes {
                if let Some(validator) = validators.get(vc.signer as usize) {
                    out.push((validator.public_key, vc.digest(chain_id), vc.signature));
                }
                // A NEW-VIEW's entries are VIEW-CHANGEs (the replica rejects
                // anything else), so this does not recurse further.
                if let Message::ViewChange(_) = vc.message {
                    embedded_signatures(vc, chain_id, validators, out);
                }
            }
        }
        Message::PrePrepare(_)
        | Message::Prepare(_)
        | Message::Commit(_)
        | Message::Checkpoint(_) => {}
    }
}

/// Messages the replica drops whatever their signature: normal-case
/// messages of a view it has left (`view_acceptable`) or at or below its
/// low watermark (`seq_acceptable`), COMMITs at or below its committed
/// height (`vote_unneeded`). The high watermark is not checked: a stale
/// reading of it would be too low and drop what the replica accepts.
fn is_stale(m: &Message, p: Progress) -> bool {
    match m {
        Message::PrePrepare(pp) => pp.view < p.view || pp.seq <= p.stable,
        Message::Prepare(pr) => pr.view < p.view || pr.seq <= p.stable,
        Message::Commit(c) => c.view < p.view || c.seq <= p.stable.max(p.committed),
        Message::Checkpoint(_) | Message::ViewChange(_) | Message::NewView(_) => false,
    }
}

/// Whether `m` is a vote for a view or sequence beyond twice what the
/// replica buffers (it drops them; the margin covers a stale `p`).
fn is_far_ahead(m: &Message, p: Progress, h: Horizon) -> bool {
    let view_max = p.view.saturating_add(h.views_ahead.saturating_mul(2));
    let seq_max = p.stable.saturating_add(h.window_seqs.saturating_mul(2));
    match m {
        Message::PrePrepare(pp) => pp.view > view_max || pp.seq > seq_max,
        Message::Prepare(pr) => pr.view > view_max || pr.seq > seq_max,
        Message::Commit(c) => c.view > view_max || c.seq > seq_max,
        Message::Checkpoint(_) | Message::ViewChange(_) | Message::NewView(_) => false,
    }
}

fn entry(key: &PublicKey, digest: &Hash, signature: &Signature) -> Hash {
    keccak256_parts(&[&key.0, &digest.0, &signature.0])
}

#[derive(Debug, Default)]
struct VerifiedInner {
    set: BTreeSet<Hash>,
    order: VecDeque<Hash>,
}

/// Signatures the pre-check found good, waiting for the replica to ask.
/// Bounded: the oldest are forgotten first, and a forgotten one is only
/// checked again.
#[derive(Debug, Default)]
pub struct VerifiedSignatures {
    inner: Mutex<VerifiedInner>,
}

impl VerifiedSignatures {
    fn lock(&self) -> MutexGuard<'_, VerifiedInner> {
        // Every update leaves the set and queue usable (an entry in one and
        // not the other is only forgotten sooner or later), so a poisoned
        // lock is still consistent enough.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, entry: Hash) {
        let mut v = self.lock();
        if v.set.insert(entry) {
            v.order.push_back(entry);
        }
        while v.order.len() > VERIFIED_MAX {
            if let Some(old) = v.order.pop_front() {
                v.set.remove(&old);
            }
        }
    }

    /// Whether `entry` was verified (and not forgotten since). Entries stay
    /// until pushed out by newer ones: the same vote arrives in several
    /// certificates (each VIEW-CHANGE of a view change, then the NEW-VIEW).
    fn contains(&self, entry: &Hash) -> bool {
        self.lock().set.contains(entry)
    }
}

/// The replica's verifier in the node: a signature the pre-check verified
/// costs a lookup; anything else (a bad vote inside a certificate, a
/// signature whose record was forgotten) is checked with k256.
#[derive(Debug)]
pub struct PrecheckedVerifier {
    verified: Arc<VerifiedSignatures>,
    k256: K256Verifier,
}

impl PrecheckedVerifier {
    pub fn new(verified: Arc<VerifiedSignatures>) -> PrecheckedVerifier {
        PrecheckedVerifier {
            verified,
            k256: K256Verifier::default(),
        }
    }
}

impl Verifier for PrecheckedVerifier {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool {
        self.verified.contains(&entry(key, digest, signature))
            || self.k256.verify(key, digest, signature)
    }
}

/// A peer that delivered a bad signature is logged at most once per this.
const BAD_SIGNATURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// What the signature checks share across batches and threads.
#[derive(Debug)]
struct Checker {
    k256: K256Verifier,
    verified: Arc<VerifiedSignatures>,
    counters: Arc<PrecheckCounters>,
    budgets: Arc<PeerBudgets>,
    /// Per validator connection that delivered a bad signature: when it was
    /// last logged and how many since. At most one entry per validator (the
    /// transport delivers only from authenticated validators).
    bad_log: Mutex<BTreeMap<stele_types::Address, (Option<Instant>, u64)>>,
}

impl Checker {
    /// Counts a bad signature from `from`'s connection and logs it, once
    /// per peer per interval: a validator that relays (or signs) messages
    /// that do not verify is lying or broken, and the operator should know.
    fn bad_signature(&self, from: stele_types::Address) {
        self.counters.record_drop(PrecheckDrop::BadSignature);
        let now = Instant::now();
        let mut log = self
            .bad_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, unlogged) = log.entry(from).or_insert((None, 0));
        if last.is_some_and(|t| now.saturating_duration_since(t) < BAD_SIGNATURE_LOG_INTERVAL) {
            *unlogged += 1;
            return;
        }
        tracing::warn!(
            peer = %from,
            unlogged = *unlogged,
            "consensus message with a bad signature dropped (logged once per peer per 30 s; `unlogged` more since the last line)"
        );
        *last = Some(now);
        *unlogged = 0;
    }

    /// Checks one signature unless it is recorded already, and records it
    /// if good.
    fn check(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool {
        let e = entry(key, digest, signature);
        if self.verified.contains(&e) {
            return true;
        }
        if !self.k256.verify(key, digest, signature) {
            return false;
        }
        self.counters.verified.fetch_add(1, Ordering::Relaxed);
        self.verified.insert(e);
        true
    }

    /// Checks the signatures of `batch`, records the good ones and returns
    /// what goes to the driver, in arrival order.
    fn verify_batch(&self, batch: Vec<Item>) -> Vec<Inbound> {
        let mut out = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Item::Pass(ev) => out.push(ev),
                Item::Verify(c, charge) => {
                    if self.check(&c.key, &c.digest, &c.signature) {
                        // A bad vote inside a certificate is left for the
                        // replica, which rejects the message for it (or
                        // uses the message without looking, as when it
                        // answers a laggard's VIEW-CHANGE); it then checks
                        // that one vote itself.
                        for (key, digest, signature) in &c.embedded {
                            self.check(key, digest, signature);
                        }
                        out.push(Inbound::Message {
                            from: c.from,
                            channel: Channel::Consensus,
                            payload: c.payload,
                            charge,
                        });
                    } else {
                        if c.self_signed {
                            self.budgets.offence(c.from, Instant::now());
                        }
                        self.bad_signature(c.from);
                    }
                }
            }
        }
        out
    }
}

/// One event of a batch: passed through as it is, or a consensus message
/// whose signature is still to check, with its sender's queued-bytes
/// charge (held until the driver takes the message, or it is dropped).
#[derive(Debug)]
enum Item {
    Pass(Inbound),
    Verify(Candidate, InboundCharge),
}

/// A batch on its way to the driver: ready, or being checked on the
/// blocking pool.
enum Pending {
    Ready(Vec<Inbound>),
    Checking(tokio::task::JoinHandle<Vec<Inbound>>),
}

/// Runs the pipeline from `inbound` to `driver` until either side goes
/// away. Events other than consensus messages pass through; everything
/// reaches the driver in the order it arrived. `progress` reads the
/// replica's view, low watermark and committed height.
pub async fn run(
    mut check: Precheck,
    verified: Arc<VerifiedSignatures>,
    progress: impl Fn() -> Progress,
    mut inbound: mpsc::Receiver<Inbound>,
    driver: mpsc::Sender<Inbound>,
) {
    let (ordered_tx, ordered_rx) = mpsc::channel(BATCHES_IN_FLIGHT_MAX);
    let driver_gone = driver.clone();
    let forwarder = tokio::spawn(forward(ordered_rx, driver));
    let checker = Arc::new(Checker {
        k256: K256Verifier::default(),
        verified,
        counters: check.counters.clone(),
        budgets: check.budgets.clone(),
        bad_log: Mutex::default(),
    });
    loop {
        let first = tokio::select! {
            ev = inbound.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            // The driver stopped: end, so the router ends too.
            () = driver_gone.closed() => break,
        };
        let mut events = vec![first];
        while events.len() < BATCH_MAX {
            match inbound.try_recv() {
                Ok(ev) => events.push(ev),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let seen_progress = progress();
        let mut to_verify = 0;
        let mut batch = Vec::with_capacity(events.len());
        for ev in events {
            match ev {
                Inbound::Message {
                    from,
                    channel: Channel::Consensus,
                    payload,
                    charge,
                } => {
                    if let Some(c) = check.check(from, payload, seen_progress, now) {
                        to_verify += 1 + c.embedded.len();
                        batch.push(Item::Verify(c, charge));
                    }
                    if let Some((from, epoch)) = check.ahead.take() {
                        batch.push(Item::Pass(Inbound::EpochAhead { from, epoch }));
                    }
                }
                other => batch.push(Item::Pass(other)),
            }
        }
        let pending = if to_verify <= INLINE_VERIFY_MAX {
            Pending::Ready(checker.verify_batch(batch))
        } else {
            let checker = checker.clone();
            Pending::Checking(tokio::task::spawn_blocking(move || {
                checker.verify_batch(batch)
            }))
        };
        if ordered_tx.send(pending).await.is_err() {
            break;
        }
    }
    drop(ordered_tx);
    let _ = forwarder.await;
}

/// Hands batches to the driver in the order they were taken.
async fn forward(mut ordered: mpsc::Receiver<Pending>, driver: mpsc::Sender<Inbound>) {
    while let Some(pending) = ordered.recv().await {
        let events = match pending {
            Pending::Ready(events) => events,
            Pending::Checking(task) => match task.await {
                Ok(events) => events,
                // A panic in a check loses that batch only (PBFT
                // retransmits); the pipeline goes on.
                Err(_) => continue,
            },
        };
        for ev in events {
            if driver.send(ev).await.is_err() {
                return;
            }
        }
    }
}
