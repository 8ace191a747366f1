//! The simulated cluster: nodes, network, clock, block registry, epochs and
//! the invariant checks.
//!
//! Epochs (ADR 0010) are the application's business here as in the node: a
//! block may carry the next change of validator set from the scenario's
//! list; the epoch then ends at the first checkpoint at or after that block,
//! whose block names the next set. Each node drives one replica per epoch it
//! is a member of, and follows the chain by certified blocks (as a full
//! node) while it is not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use stele_consensus::{
    Action, Commit, Config, Input, Message, MessageLimits, PrePrepare, Prepare, Record, Replica,
    SignedMessage, Verifier, ViewChange, peek_epoch,
};
use stele_types::codec::Encode;
use stele_types::{
    CommitCertificate, Hash, PublicKey, SecretKey, Signature, Validator, ValidatorSet, keccak256,
};

use super::rng::Rng;

/// Signature verification memoised across the whole simulated cluster: a
/// message broadcast to n replicas is verified once. Results are the real
/// k256 results, so forged signatures still fail.
#[derive(Debug, Clone, Default)]
pub struct CachedVerifier(Arc<Mutex<VerifyCache>>);

type VerifyCache = HashMap<(PublicKey, Hash, Signature), bool>;

impl Verifier for CachedVerifier {
    fn verify(&self, key: &PublicKey, digest: &Hash, signature: &Signature) -> bool {
        let k = (*key, *digest, *signature);
        let mut cache = self.0.lock().expect("cache lock is never poisoned");
        *cache
            .entry(k)
            .or_insert_with(|| key.verify(digest, signature).is_ok())
    }
}

/// How a simulated validator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byzantine {
    Honest,
    /// Runs but never sends anything.
    Silent,
    /// As primary, sends different blocks (sometimes invalid) to each half.
    EquivocatingPrimary,
    /// Sends a conflicting PREPARE or COMMIT to half of its peers.
    ConflictingVotes,
    /// Adds messages with forged signatures, unknown signers, garbage and
    /// oversized bytes.
    Forger,
    /// Adds validly signed messages for stale and far-future views.
    StaleSpam,
    /// Two instances run with this validator's key.
    Twin,
}

/// Network faults, active until `heal_ms`. Validators are named by their
/// id in the key pool (ids below the genesis size are the genesis set).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub drop_permille: u64,
    pub duplicate_permille: u64,
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
    /// Groups of ids that cannot talk to each other, between the two times.
    pub partition: Option<(Vec<Vec<u32>>, u64, u64)>,
    /// (id, crash at, restart at, host crash). A host crash loses the
    /// records written after the last synced one.
    pub crashes: Vec<(u32, u64, u64, bool)>,
    pub heal_ms: u64,
}

/// A change of validator set the scenario submits: from `at_ms` on, the
/// next block whose chain has decided every earlier change and has none
/// pending may carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at_ms: u64,
    /// The whole next set: (id, voting power).
    pub members: Vec<(u32, u64)>,
}

/// The epoch a block after some tip belongs to, as its chain says.
#[derive(Debug, Clone)]
struct EpochState {
    epoch: u64,
    base_seq: u64,
    base_hash: Hash,
    set: ValidatorSet,
    /// Ids of the set, in set (address) order: index -> id.
    members: Vec<u32>,
    /// A decided change (its index) and the epoch's last height.
    pending: Option<(usize, u64)>,
    /// Index of the next change a block may carry.
    next_change: usize,
}

#[derive(Debug, Clone)]
struct BlockInfo {
    seq: u64,
    parent: Hash,
    txs: Vec<u64>,
    /// Deliberately broken (e.g. repeats a committed transaction).
    invalid: bool,
    epoch: u64,
    /// The change this block decides.
    change: Option<usize>,
    /// In an epoch's last block: the hash of the next epoch's set.
    next_set: Option<Hash>,
    /// The epoch the block after this one belongs to.
    after: EpochState,
}

#[derive(Debug)]
struct Node {
    id: u32,
    byz: Byzantine,
    /// The replica of the node's epoch, while it is a member of it.
    replica: Option<Replica>,
    /// The ids of the replica's set (index -> id).
    replica_members: Vec<u32>,
    /// The epoch the node is in (its replica's, or the one it follows).
    epoch: u64,
    alive: bool,
    /// Bumped on every crash so events for the old incarnation are dropped.
    incarnation: u64,
    /// The replica's log, each record with its epoch.
    records: Vec<(u64, Record)>,
    /// How many of `records` (a prefix) are synced; a host crash loses the
    /// rest.
    synced: usize,
    /// Whether the crash in progress is a host crash.
    host_crash: bool,
    /// Hashes of the signed messages persisted, for persist-before-send.
    persisted: BTreeSet<Hash>,
    chain: Vec<Hash>,
    committed_txs: BTreeSet<u64>,
    /// Messages of the next epoch that came before the node got there.
    early: Vec<Vec<u8>>,
    /// No catch-up is started before this time (one every 200 ms).
    catch_up_after_ms: u64,
    /// Views of the epochs this node finished, plus its current view.
    views_before: u64,
}

/// Most next-epoch messages a node holds (the real node bounds it too).
const EARLY_MAX: usize = 1_024;
/// How often a node that is no validator pulls certified blocks.
const FOLLOW_TICK_MS: u64 = 250;

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: u32,
        bytes: Vec<u8>,
    },
    /// An input for the replica of `epoch` of one incarnation of a node.
    Input {
        node: usize,
        incarnation: u64,
        epoch: u64,
        input: Input,
    },
    /// A certified block pushed to a node (state transfer or following).
    Follow {
        node: usize,
        incarnation: u64,
        certificate: CommitCertificate,
        payload: Vec<u8>,
    },
    Crash {
        node: usize,
        host: bool,
    },
    Restart {
        node: usize,
    },
    Tick,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub committed_height: u64,
    pub messages_sent: u64,
    pub message_bytes: u64,
    pub time_ms: u64,
    pub max_view: u64,
    pub evidence: u64,
    pub epochs: u64,
}

pub struct World {
    /// Size of the genesis set.
    pub n: usize,
    pub rng: Rng,
    pub time_ms: u64,
    queue: BTreeMap<(u64, u64), Event>,
    event_counter: u64,
    nodes: Vec<Node>,
    /// The key pool, by id.
    keys: Vec<SecretKey>,
    /// Epoch 0's configuration; later epochs' come from `Config::for_epoch`.
    pub cfg: Config,
    /// Decoding limits for any message of any epoch.
    limits: MessageLimits,
    genesis: EpochState,
    changes: Vec<Change>,
    blocks: BTreeMap<Hash, BlockInfo>,
    /// First certified commit per height, from honest replicas.
    pub committed: BTreeMap<u64, (Hash, CommitCertificate, Vec<u8>)>,
    pub faults: Faults,
    pub block_interval_ms: u64,
    pub messages_sent: u64,
    pub message_bytes: u64,
    pub evidence: u64,
    verifier: CachedVerifier,
}

pub fn genesis_hash() -> Hash {
    keccak256(b"stele-sim-genesis")
}

fn block_hash(payload: &[u8]) -> Hash {
    keccak256(payload)
}

fn encode_block(info: &BlockInfo, salt: u64) -> Vec<u8> {
    let mut out = Vec::new();
    info.seq.encode_to(&mut out);
    info.parent.encode_to(&mut out);
    info.epoch.encode_to(&mut out);
    info.change
        .map_or(u64::MAX, |c| c as u64)
        .encode_to(&mut out);
    info.next_set.unwrap_or(Hash::ZERO).encode_to(&mut out);
    salt.encode_to(&mut out);
    for t in &info.txs {
        t.encode_to(&mut out);
    }
    out
}

fn key_of(i: u64) -> SecretKey {
    let mut b = [0u8; 32];
    b[24..].copy_from_slice(&(i + 1).to_be_bytes());
    SecretKey::from_bytes(&b).expect("small scalars are valid keys")
}

/// Deterministic keys and the validator set they form, sorted by address.
pub fn validator_keys(n: usize) -> (Vec<SecretKey>, ValidatorSet) {
    let mut keys: Vec<SecretKey> = (0..n as u64).map(key_of).collect();
    keys.sort_by_key(|k| k.address());
    let set = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                address: k.address(),
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("distinct sorted keys form a validator set");
    (keys, set)
}

/// The key pool: the genesis keys (ids 0..n, in set order) and `extra`
/// more for validators that join later.
fn key_pool(n: usize, extra: usize) -> Vec<SecretKey> {
    let (mut keys, _) = validator_keys(n);
    keys.extend((n..n + extra).map(|i| key_of(i as u64)));
    keys
}

/// The set of `members` (id, power), and its ids in set order.
fn set_of(keys: &[SecretKey], members: &[(u32, u64)]) -> (ValidatorSet, Vec<u32>) {
    let mut sorted: Vec<(u32, u64)> = members.to_vec();
    sorted.sort_by_key(|(id, _)| keys[*id as usize].address());
    let set = ValidatorSet::new(
        sorted
            .iter()
            .map(|(id, power)| Validator {
                address: keys[*id as usize].address(),
                public_key: keys[*id as usize].public_key(),
                power: *power,
            })
            .collect(),
    )
    .expect("distinct keys form a validator set");
    (set, sorted.iter().map(|(id, _)| *id).collect())
}

pub fn sim_config(set: ValidatorSet) -> Config {
    let mut cfg = Config::new(7, set, genesis_hash());
    cfg.checkpoint_interval_seqs = 4;
    cfg.window_seqs = 8;
    cfg.pipeline_blocks_max = 3;
    cfg.view_timeout_ms = 1_000;
    cfg.view_timeout_max_ms = 8_000;
    cfg.limits.window_seqs_max = 8;
    cfg.limits.message_bytes_max = 1 << 20;
    cfg.limits.payload_bytes_max = 4096;
    cfg
}

impl World {
    /// A cluster of `n` validators that never changes; `byzantine` assigns
    /// behaviours to ids (all others are honest).
    pub fn new(seed: u64, n: usize, byzantine: &[(u32, Byzantine)], faults: Faults) -> World {
        World::with_changes(seed, n, byzantine, faults, Vec::new())
    }

    /// A cluster of `n` genesis validators that goes through `changes`;
    /// every id a change names runs a node from the start (following the
    /// chain until it is a validator).
    pub fn with_changes(
        seed: u64,
        n: usize,
        byzantine: &[(u32, Byzantine)],
        faults: Faults,
        changes: Vec<Change>,
    ) -> World {
        let pool = changes
            .iter()
            .flat_map(|c| c.members.iter().map(|(id, _)| *id as usize + 1))
            .chain([n])
            .max()
            .unwrap_or(n);
        let keys = key_pool(n, pool - n);
        let genesis_members: Vec<(u32, u64)> = (0..n as u32).map(|i| (i, 1)).collect();
        let (set, members) = set_of(&keys, &genesis_members);
        let cfg = sim_config(set.clone());
        let mut limits = cfg.limits.clone();
        limits.validators_max = pool;
        let genesis = EpochState {
            epoch: 0,
            base_seq: 0,
            base_hash: genesis_hash(),
            set,
            members,
            pending: None,
            next_change: 0,
        };
        let mut nodes = Vec::new();
        for id in 0..pool as u32 {
            let byz = byzantine
                .iter()
                .find(|(b, _)| *b == id)
                .map_or(Byzantine::Honest, |(_, b)| *b);
            let copies = if byz == Byzantine::Twin { 2 } else { 1 };
            for _ in 0..copies {
                nodes.push(Node {
                    id,
                    byz,
                    replica: None,
                    replica_members: Vec::new(),
                    epoch: 0,
                    alive: true,
                    incarnation: 0,
                    records: Vec::new(),
                    synced: 0,
                    host_crash: false,
                    persisted: BTreeSet::new(),
                    chain: Vec::new(),
                    committed_txs: BTreeSet::new(),
                    early: Vec::new(),
                    catch_up_after_ms: 0,
                    views_before: 0,
                });
            }
        }
        let mut w = World {
            n,
            rng: Rng::new(seed),
            time_ms: 0,
            queue: BTreeMap::new(),
            event_counter: 0,
            nodes,
            keys,
            cfg,
            limits,
            genesis,
            changes,
            blocks: BTreeMap::new(),
            committed: BTreeMap::new(),
            faults,
            block_interval_ms: 150,
            messages_sent: 0,
            message_bytes: 0,
            evidence: 0,
            verifier: CachedVerifier::default(),
        };
        for (id, at, back, host) in w.faults.crashes.clone() {
            for node in 0..w.nodes.len() {
                if w.nodes[node].id == id {
                    w.schedule(at, Event::Crash { node, host });
                    w.schedule(back, Event::Restart { node });
                }
            }
        }
        for node in 0..w.nodes.len() {
            w.schedule(0, Event::Restart { node });
        }
        if pool > n {
            w.schedule(FOLLOW_TICK_MS, Event::Tick);
        }
        w
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.event_counter += 1;
        self.queue.insert((at, self.event_counter), event);
    }

    fn is_honest(&self, id: u32) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.id == id)
            .all(|n| n.byz == Byzantine::Honest)
    }

    /// Honest nodes that are running.
    fn live_honest(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest && n.alive)
    }

    pub fn min_live_honest_height(&self) -> u64 {
        self.live_honest()
            .map(|n| n.chain.len() as u64)
            .min()
            .unwrap_or(0)
    }

    /// The lowest epoch a live honest node is in.
    pub fn min_live_honest_epoch(&self) -> u64 {
        self.live_honest().map(|n| n.epoch).min().unwrap_or(0)
    }

    pub fn max_honest_height(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .map(|n| n.chain.len() as u64)
            .max()
            .unwrap_or(0)
    }

    /// The highest view an honest replica reached, counting the views of
    /// earlier epochs too (views restart at 0 in every epoch).
    pub fn max_honest_view(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .map(|n| n.views_before + n.replica.as_ref().map_or(0, |r| r.view().0))
            .max()
            .unwrap_or(0)
    }

    /// How many changes the scenario submits.
    pub fn changes(&self) -> usize {
        self.changes.len()
    }

    /// The ids of the set of the latest epoch any honest node reached.
    pub fn latest_members(&self) -> Vec<u32> {
        let tip = self
            .nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .max_by_key(|n| n.chain.len())
            .and_then(|n| n.chain.last().copied());
        self.state_after(tip).members
    }

    pub fn counters_total(&self) -> (u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0);
        for r in self
            .nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .filter_map(|n| n.replica.as_ref())
        {
            let c = r.counters();
            t.0 += c.dropped_bad_signature + c.dropped_non_validator;
            t.1 += c.dropped_wrong_view;
            t.2 += c.dropped_oversized + c.dropped_malformed;
            t.3 += c.equivocations;
        }
        t
    }

    pub fn double_sign_refusals(&self) -> u64 {
        self.nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.counters().double_sign_refused)
            .sum()
    }

    /// Runs events until `until_ms` or until `stop` holds. Returns an
    /// invariant violation if one happens.
    pub fn run(&mut self, until_ms: u64, stop: impl Fn(&World) -> bool) -> Result<(), String> {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > until_ms {
                break;
            }
            let event = entry.remove();
            self.time_ms = at;
            self.step(event)?;
            if stop(self) {
                break;
            }
        }
        Ok(())
    }

    // ---- epochs -------------------------------------------------------

    /// The epoch of the block after `tip` (the genesis when `None`).
    fn state_after(&self, tip: Option<Hash>) -> EpochState {
        match tip.and_then(|h| self.blocks.get(&h)) {
            Some(b) => b.after.clone(),
            None => self.genesis.clone(),
        }
    }

    fn state_after_hash(&self, parent: &Hash) -> Option<EpochState> {
        if *parent == genesis_hash() {
            return Some(self.genesis.clone());
        }
        self.blocks.get(parent).map(|b| b.after.clone())
    }

    /// The chain rule: what block `b` (at `b.seq`, hash `hash`) leaves for
    /// the block after it, given the state `s` after its parent.
    fn next_state(&self, mut s: EpochState, b: &BlockInfo, hash: Hash) -> EpochState {
        let k = self.cfg.checkpoint_interval_seqs;
        if let Some(i) = b.change {
            s.pending = Some((i, b.seq.div_ceil(k) * k));
            s.next_change = i + 1;
        }
        if let Some((i, last)) = s.pending
            && b.seq == last
        {
            let (set, members) = set_of(&self.keys, &self.changes[i].members);
            s.epoch += 1;
            s.base_seq = last;
            s.base_hash = hash;
            s.set = set;
            s.members = members;
            s.pending = None;
        }
        s
    }

    /// The node's epoch as its chain says (the state after its tip).
    fn tip_state(&self, node: usize) -> EpochState {
        self.state_after(self.nodes[node].chain.last().copied())
    }

    /// Moves `node` to the epoch its chain reached: retires the replica of
    /// the finished epoch and its log, starts the next epoch's replica if
    /// the node is a member (with the messages that came early), and tells
    /// a running replica where its epoch ends once the chain decided it.
    fn settle(&mut self, node: usize) -> Result<(), String> {
        if !self.nodes[node].alive {
            return Ok(());
        }
        let state = self.tip_state(node);
        if state.epoch > self.nodes[node].epoch {
            let n = &mut self.nodes[node];
            n.views_before += n.replica.as_ref().map_or(0, |r| r.view().0);
            n.replica = None;
            n.epoch = state.epoch;
            n.records.clear();
            n.synced = 0;
            let early = std::mem::take(&mut n.early);
            if self.start_replica(node, &state, Vec::new(), false)? {
                for bytes in early {
                    if peek_epoch(&bytes) == Some(state.epoch) {
                        let inc = self.nodes[node].incarnation;
                        self.feed(node, inc, state.epoch, Input::Message(bytes))?;
                    }
                }
            }
            return self.settle(node);
        }
        if let Some((_, last)) = state.pending
            && let Some(r) = &self.nodes[node].replica
            && r.last_seq().is_none()
        {
            let (inc, epoch) = (self.nodes[node].incarnation, state.epoch);
            self.feed(node, inc, epoch, Input::EpochEnds { last_seq: last })?;
        }
        Ok(())
    }

    /// Builds the replica of `state`'s epoch if the node is a member and
    /// starts it (from `records` after a crash). Returns whether it did.
    fn start_replica(
        &mut self,
        node: usize,
        state: &EpochState,
        records: Vec<Record>,
        restart: bool,
    ) -> Result<bool, String> {
        let id = self.nodes[node].id;
        if !state.members.contains(&id) {
            return Ok(false);
        }
        let cfg = self.cfg.for_epoch(
            state.epoch,
            state.set.clone(),
            state.base_seq,
            state.base_hash,
        );
        let replica = Replica::new(
            cfg,
            self.keys[id as usize].clone(),
            Box::new(self.verifier.clone()),
        )
        .map_err(|e| format!("replica of epoch {} for {id}: {e}", state.epoch))?;
        let n = &mut self.nodes[node];
        n.replica = Some(replica);
        n.replica_members = state.members.clone();
        let input = if restart || !records.is_empty() {
            let committed = n.chain.last().map(|h| (n.chain.len() as u64, *h));
            Input::Restart {
                records,
                committed,
                unsynced_lost: n.host_crash,
            }
        } else {
            Input::Start
        };
        let replaying = matches!(input, Input::Restart { .. });
        let actions = n
            .replica
            .as_mut()
            .map(|r| r.handle(input))
            .unwrap_or_default();
        if replaying
            && actions
                .iter()
                .any(|a| matches!(a, Action::Broadcast(_) | Action::Send { .. }))
        {
            return Err(format!("node {id} sent a message while replaying its log"));
        }
        for action in actions {
            self.act(node, action)?;
        }
        Ok(true)
    }

    /// Schedules the certified blocks above the node's chain that some
    /// honest node committed, as a full node's catch-up would fetch them.
    fn catch_up(&mut self, node: usize) {
        let n = &self.nodes[node];
        if !n.alive || self.time_ms < n.catch_up_after_ms {
            return;
        }
        let from = n.chain.len() as u64 + 1;
        let incarnation = n.incarnation;
        self.nodes[node].catch_up_after_ms = self.time_ms + 200;
        let blocks: Vec<_> = self
            .committed
            .range(from..)
            .take(64)
            .map(|(_, (_, cert, payload))| (cert.clone(), payload.clone()))
            .collect();
        for (at, (certificate, payload)) in (self.time_ms + 5..).zip(blocks) {
            self.schedule(
                at,
                Event::Follow {
                    node,
                    incarnation,
                    certificate,
                    payload,
                },
            );
        }
    }

    /// A certified block for `node`: its replica checks it if it runs that
    /// epoch; otherwise the node checks the certificate against the set its
    /// chain names for the epoch, as a full node does, and commits it.
    fn follow(
        &mut self,
        node: usize,
        cert: CommitCertificate,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let n = &self.nodes[node];
        if cert.height != n.chain.len() as u64 + 1 {
            return Ok(());
        }
        if let Some(r) = &n.replica {
            if r.epoch() == cert.epoch {
                let (inc, epoch) = (n.incarnation, r.epoch());
                return self.feed(
                    node,
                    inc,
                    epoch,
                    Input::Synced {
                        certificate: cert,
                        payload,
                    },
                );
            }
            return Ok(());
        }
        let state = self.tip_state(node);
        if cert.epoch != state.epoch || !self.certificate_valid(&cert, &state.set) {
            return Ok(());
        }
        self.on_commit(node, cert.height, cert.block_hash, payload, cert)?;
        self.settle(node)
    }

    /// The certificate's signatures, sorted by signer, hold a quorum of
    /// `set` and verify (through the cluster's signature cache).
    fn certificate_valid(&self, cert: &CommitCertificate, set: &ValidatorSet) -> bool {
        let digest = cert.digest(self.cfg.chain_id);
        let sorted = cert
            .signatures
            .windows(2)
            .all(|w| w[0].validator < w[1].validator);
        let mut power = 0u64;
        for s in &cert.signatures {
            let Some(v) = set.get(s.validator as usize) else {
                return false;
            };
            if !self.verifier.verify(&v.public_key, &digest, &s.signature) {
                return false;
            }
            power += v.power;
        }
        sorted && power >= set.quorum_power()
    }

    /// What a client holding only the genesis set can check: walking the
    /// committed chain, each epoch's last block is certified by the set it
    /// knows and names the next set, and the tip's certificate verifies
    /// with the set reached that way (full k256 checks, no cache).
    pub fn check_set_chain(&self) -> Result<u64, String> {
        let Some((&tip, _)) = self.committed.last_key_value() else {
            return Ok(0);
        };
        let mut set = self.genesis.set.clone();
        let mut epoch = 0;
        for (height, (hash, cert, _)) in &self.committed {
            let info = self
                .blocks
                .get(hash)
                .ok_or_else(|| format!("set chain: unknown block at {height}"))?;
            if info.next_set.is_none() && *height != tip {
                continue;
            }
            if cert.epoch != epoch {
                return Err(format!(
                    "set chain: certificate at {height} says epoch {}, the chain {epoch}",
                    cert.epoch
                ));
            }
            cert.verify(self.cfg.chain_id, &set)
                .map_err(|e| format!("set chain: certificate at {height}: {e}"))?;
            if let Some(next) = info.next_set {
                let after = &info.after;
                if after.set.hash() != next {
                    return Err(format!("set chain: block {height} names another set"));
                }
                set = after.set.clone();
                epoch += 1;
            }
        }
        Ok(epoch)
    }

    // ---- events -------------------------------------------------------

    fn step(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Deliver { to, from, bytes } => self.deliver(to, from, bytes)?,
            Event::Input {
                node,
                incarnation,
                epoch,
                input,
            } => self.feed(node, incarnation, epoch, input)?,
            Event::Follow {
                node,
                incarnation,
                certificate,
                payload,
            } => {
                let n = &self.nodes[node];
                if n.alive && n.incarnation == incarnation {
                    self.follow(node, certificate, payload)?;
                }
            }
            Event::Crash { node, host } => {
                let n = &mut self.nodes[node];
                n.alive = false;
                n.incarnation += 1;
                n.host_crash = host;
                n.early.clear();
                if host {
                    let synced = n.synced;
                    n.records.truncate(synced);
                }
            }
            Event::Restart { node } => {
                let n = &mut self.nodes[node];
                n.alive = true;
                n.views_before += n.replica.as_ref().map_or(0, |r| r.view().0);
                n.replica = None;
                let state = self.tip_state(node);
                let n = &mut self.nodes[node];
                n.epoch = state.epoch;
                let records: Vec<Record> = n
                    .records
                    .iter()
                    .filter(|(e, _)| *e == state.epoch)
                    .map(|(_, r)| r.clone())
                    .collect();
                let restart = n.incarnation > 0;
                self.start_replica(node, &state, records, restart)?;
                self.settle(node)?;
            }
            Event::Tick => {
                for node in 0..self.nodes.len() {
                    if self.nodes[node].replica.is_none() {
                        self.catch_up(node);
                    }
                }
                self.schedule(self.time_ms + FOLLOW_TICK_MS, Event::Tick);
            }
        }
        Ok(())
    }

    /// Bytes from validator `from` reach `to`: its replica gets them if they
    /// are of its epoch; the next epoch's are held until the node gets there
    /// and start a catch-up (the sender is ahead); an older epoch's sender
    /// is behind, and is sent the blocks it misses (a node answers a
    /// laggard's stale messages with its chain).
    fn deliver(&mut self, to: usize, from: u32, bytes: Vec<u8>) -> Result<(), String> {
        let n = &self.nodes[to];
        if !n.alive {
            return Ok(());
        }
        let Some(epoch) = peek_epoch(&bytes) else {
            return Ok(());
        };
        if epoch == n.epoch {
            if n.replica.is_some() {
                let inc = n.incarnation;
                self.feed(to, inc, epoch, Input::Message(bytes))?;
            }
        } else if epoch > n.epoch {
            if epoch == n.epoch + 1 && n.early.len() < EARLY_MAX {
                self.nodes[to].early.push(bytes);
            }
            self.catch_up(to);
        } else if epoch < n.epoch {
            for sender in 0..self.nodes.len() {
                if self.nodes[sender].id == from && self.nodes[sender].epoch == epoch {
                    self.catch_up(sender);
                }
            }
        }
        Ok(())
    }

    fn feed(
        &mut self,
        node: usize,
        incarnation: u64,
        epoch: u64,
        input: Input,
    ) -> Result<(), String> {
        let n = &mut self.nodes[node];
        if !n.alive || n.incarnation != incarnation {
            return Ok(());
        }
        let Some(replica) = n.replica.as_mut().filter(|r| r.epoch() == epoch) else {
            return Ok(());
        };
        let actions = replica.handle(input);
        for action in actions {
            self.act(node, action)?;
        }
        self.settle(node)
    }

    fn network_faulty(&self) -> bool {
        self.time_ms < self.faults.heal_ms
    }

    fn partitioned(&self, a: u32, b: u32) -> bool {
        let Some((groups, from, to)) = &self.faults.partition else {
            return false;
        };
        if self.time_ms < *from || self.time_ms >= *to {
            return false;
        }
        let group = |x: u32| groups.iter().position(|g| g.contains(&x));
        group(a) != group(b)
    }

    /// Puts bytes on the wire from `from` to every node with id `to`.
    fn send_id(&mut self, from: usize, to: u32, bytes: Vec<u8>) {
        let from_id = self.nodes[from].id;
        self.messages_sent += 1;
        self.message_bytes += bytes.len() as u64;
        if self.partitioned(from_id, to) {
            return;
        }
        let faulty = self.network_faulty();
        if faulty && self.rng.chance(self.faults.drop_permille) {
            return;
        }
        let copies = if faulty && self.rng.chance(self.faults.duplicate_permille) {
            2
        } else {
            1
        };
        for target in 0..self.nodes.len() {
            if self.nodes[target].id != to || target == from {
                continue;
            }
            for _ in 0..copies {
                let delay = if faulty {
                    self.rng
                        .range(self.faults.delay_min_ms, self.faults.delay_max_ms)
                } else {
                    self.rng.range(1, 5)
                };
                let at = self.time_ms + delay;
                self.schedule(
                    at,
                    Event::Deliver {
                        to: target,
                        from: from_id,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }

    /// Sends to the validator at `index` of the sender's replica's set.
    fn send(&mut self, from: usize, index: u32, bytes: Vec<u8>) {
        if let Some(&id) = self.nodes[from].replica_members.get(index as usize) {
            self.send_id(from, id, bytes);
        }
    }

    /// The size of the sender's replica's set.
    fn set_size(&self, node: usize) -> u32 {
        self.nodes[node].replica_members.len() as u32
    }

    fn broadcast_raw(&mut self, from: usize, bytes: &[u8]) {
        let me = self.nodes[from].id;
        for id in self.nodes[from].replica_members.clone() {
            if id != me {
                self.send_id(from, id, bytes.to_vec());
            }
        }
    }

    fn act(&mut self, node: usize, action: Action) -> Result<(), String> {
        let byz = self.nodes[node].byz;
        if std::env::var_os("STELE_SIM_TRACE").is_some() {
            self.trace(node, &action);
        }
        let epoch = self.nodes[node]
            .replica
            .as_ref()
            .map_or(self.nodes[node].epoch, |r| r.epoch());
        let incarnation = self.nodes[node].incarnation;
        match action {
            Action::Persist(r) => {
                if let Record::Signed(m) = &r {
                    self.nodes[node].persisted.insert(keccak256(&m.to_bytes()));
                }
                let n = &mut self.nodes[node];
                let sync = r.needs_sync();
                n.records.push((epoch, r));
                if sync {
                    n.synced = n.records.len();
                }
            }
            Action::Broadcast(bytes) => {
                self.check_persisted(node, &bytes)?;
                self.outgoing(node, byz, None, bytes);
            }
            Action::Send { to, bytes } => {
                self.check_persisted(node, &bytes)?;
                self.outgoing(node, byz, Some(to), bytes);
            }
            Action::SetTimer { id, after_ms } => {
                self.schedule(
                    self.time_ms + after_ms,
                    Event::Input {
                        node,
                        incarnation,
                        epoch,
                        input: Input::Timer(id),
                    },
                );
            }
            Action::RequestProposal { view, seq, parent } => {
                // The node builds no block past its epoch's end: the
                // replica is told where that is once it is committed.
                if let Some((payload, hash)) = self.build_block(seq, parent, epoch, false) {
                    self.schedule(
                        self.time_ms + self.block_interval_ms,
                        Event::Input {
                            node,
                            incarnation,
                            epoch,
                            input: Input::ProposalReady {
                                view,
                                seq,
                                block_hash: hash,
                                payload,
                            },
                        },
                    );
                }
            }
            Action::ValidateBlock {
                seq,
                block_hash,
                parent,
                payload,
            } => {
                let valid = self.validate(seq, &block_hash, &parent, &payload, epoch);
                self.schedule(
                    self.time_ms + 1,
                    Event::Input {
                        node,
                        incarnation,
                        epoch,
                        input: Input::BlockValidated {
                            seq,
                            block_hash,
                            valid,
                        },
                    },
                );
            }
            Action::RequestSync { from, to } => {
                for (at, h) in (self.time_ms + 5..).zip(from..=to) {
                    let Some((_, cert, payload)) = self.committed.get(&h).cloned() else {
                        break;
                    };
                    self.schedule(
                        at,
                        Event::Input {
                            node,
                            incarnation,
                            epoch,
                            input: Input::Synced {
                                certificate: cert,
                                payload,
                            },
                        },
                    );
                }
            }
            Action::Commit {
                seq,
                block_hash,
                payload,
                certificate,
            } => self.on_commit(node, seq, block_hash, payload, certificate)?,
            Action::CompactLog { stable_seq, view } => {
                let n = &mut self.nodes[node];
                let obsolete = |(e, r): &(u64, Record)| *e == epoch && r.obsolete(stable_seq, view);
                let kept_synced = n.records[..n.synced]
                    .iter()
                    .filter(|r| !obsolete(r))
                    .count();
                n.records.retain(|r| !obsolete(r));
                n.synced = kept_synced;
            }
            Action::Evidence(e) => {
                self.evidence += 1;
                let signer = e.first.signer;
                if e.second.signer != signer || e.first == e.second {
                    return Err("malformed evidence".into());
                }
                let n = &self.nodes[node];
                let signer_id = n.replica_members.get(signer as usize).copied();
                if n.byz == Byzantine::Honest && signer_id.is_some_and(|id| self.is_honest(id)) {
                    return Err(format!(
                        "honest node {} reported evidence against honest validator {signer_id:?}",
                        n.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// Persist before you speak: every message a replica signed and sends
    /// was persisted first (forwarded NEW-VIEWs are signed by others).
    fn check_persisted(&self, node: usize, bytes: &[u8]) -> Result<(), String> {
        let n = &self.nodes[node];
        let Ok(m) = SignedMessage::decode(bytes, &self.limits) else {
            return Err(format!("node {} sent an undecodable message", n.id));
        };
        let own = n.replica.as_ref().is_some_and(|r| r.index() == m.signer);
        if own && !n.persisted.contains(&keccak256(bytes)) {
            return Err(format!(
                "node {} sent {:?} before persisting it",
                n.id,
                m.message.kind()
            ));
        }
        Ok(())
    }

    /// With STELE_SIM_TRACE set, prints what each replica does.
    fn trace(&self, node: usize, action: &Action) {
        let n = &self.nodes[node];
        let who = format!(
            "t={} node {} epoch {} view {:?}",
            self.time_ms,
            n.id,
            n.epoch,
            n.replica.as_ref().map(|r| r.view())
        );
        let short = |h: &Hash| h.to_string()[2..10].to_string();
        match action {
            Action::Broadcast(b) | Action::Send { bytes: b, .. } => {
                if let Ok(m) = SignedMessage::decode(b, &self.limits) {
                    let detail = match &m.message {
                        Message::PrePrepare(p) => format!(
                            "PP v{} s{} {} <- {}",
                            p.view,
                            p.seq,
                            short(&p.block_hash),
                            short(&p.parent)
                        ),
                        Message::Prepare(p) => format!(
                            "P v{} s{} {} <- {}",
                            p.view,
                            p.seq,
                            short(&p.block_hash),
                            short(&p.parent)
                        ),
                        Message::Commit(c) => {
                            format!("C v{} s{} {}", c.view, c.seq, short(&c.block_hash))
                        }
                        Message::Checkpoint(c) => format!("CP s{} {}", c.seq, short(&c.block_hash)),
                        Message::ViewChange(vc) => format!(
                            "VC v{} cp{} prepared {:?}",
                            vc.new_view,
                            vc.checkpoint.seq,
                            vc.prepared
                                .iter()
                                .map(|c| (c.view, c.seq, short(&c.block_hash), short(&c.parent)))
                                .collect::<Vec<_>>()
                        ),
                        Message::NewView(nv) => format!(
                            "NV v{} O {:?}",
                            nv.view,
                            nv.pre_prepares
                                .iter()
                                .map(|e| (e.seq, short(&e.block_hash), short(&e.parent)))
                                .collect::<Vec<_>>()
                        ),
                    };
                    eprintln!("{who} send {detail}");
                }
            }
            Action::Commit {
                seq,
                block_hash,
                certificate,
                ..
            } => {
                let parent = self
                    .blocks
                    .get(block_hash)
                    .map(|b| short(&b.parent))
                    .unwrap_or_default();
                eprintln!(
                    "{who} COMMIT s{seq} {} <- {parent} (cert view {})",
                    short(block_hash),
                    certificate.view
                );
            }
            Action::RequestSync { from, to } => eprintln!("{who} sync {from}..={to}"),
            Action::ValidateBlock {
                seq,
                block_hash,
                parent,
                ..
            } => eprintln!(
                "{who} validate s{seq} {} <- {}",
                short(block_hash),
                short(parent)
            ),
            _ => {}
        }
    }

    // ---- blocks -------------------------------------------------------

    fn ancestor_txs(&self, mut hash: Hash) -> BTreeSet<u64> {
        let mut txs = BTreeSet::new();
        while let Some(b) = self.blocks.get(&hash) {
            txs.extend(b.txs.iter().copied());
            hash = b.parent;
        }
        txs
    }

    /// Builds a block of `epoch`: a few pending transactions not yet in its
    /// ancestry (chosen with some randomness, so competing blocks overlap),
    /// or, if `invalid`, one repeating an ancestor's transaction. It carries
    /// the next change once that is due and none is pending, and names the
    /// next set at the epoch's last height. None if the chain says the
    /// block after `parent` is of another epoch (past the end).
    fn build_block(
        &mut self,
        seq: u64,
        parent: Hash,
        epoch: u64,
        invalid: bool,
    ) -> Option<(Vec<u8>, Hash)> {
        let state = self.state_after_hash(&parent)?;
        if state.epoch != epoch {
            return None;
        }
        let used = self.ancestor_txs(parent);
        let mut txs = Vec::new();
        let mut candidate = 0u64;
        let want = self.rng.range(0, 3);
        while (txs.len() as u64) < want {
            if !used.contains(&candidate) && self.rng.chance(700) {
                txs.push(candidate);
            }
            candidate += 1;
        }
        if invalid {
            match used.iter().next() {
                Some(t) => txs.push(*t),
                None => {
                    let t = txs.first().copied().unwrap_or(0);
                    txs.push(t);
                }
            }
        }
        let due = state.pending.is_none()
            && self
                .changes
                .get(state.next_change)
                .is_some_and(|c| c.at_ms <= self.time_ms);
        let change = due.then_some(state.next_change);
        let mut info = BlockInfo {
            seq,
            parent,
            txs,
            invalid,
            epoch,
            change,
            next_set: None,
            after: state.clone(),
        };
        // Whether this block ends the epoch: the state after it is the next.
        let probe = self.next_state(state.clone(), &info, Hash::ZERO);
        if probe.epoch != state.epoch {
            info.next_set = Some(probe.set.hash());
        }
        let salt = self.rng.next_u64();
        let payload = encode_block(&info, salt);
        let hash = block_hash(&payload);
        info.after = self.next_state(state, &info, hash);
        self.blocks.insert(hash, info);
        Some((payload, hash))
    }

    /// What the node's executor decides for the replica of `epoch`: the
    /// payload is the registered block, at this height, on this parent, with
    /// no transaction repeated, of the epoch its chain says (so of no epoch
    /// past its end), with the change the chain allows and the next set
    /// named exactly at the epoch's end.
    fn validate(&self, seq: u64, hash: &Hash, parent: &Hash, payload: &[u8], epoch: u64) -> bool {
        if block_hash(payload) != *hash {
            return false;
        }
        let Some(b) = self.blocks.get(hash) else {
            return false;
        };
        if b.invalid || b.seq != seq || b.parent != *parent {
            return false;
        }
        let parent_ok = if seq == 1 {
            *parent == genesis_hash()
        } else {
            self.blocks.get(parent).is_some_and(|p| p.seq == seq - 1)
        };
        let Some(state) = self.state_after_hash(parent) else {
            return false;
        };
        if b.epoch != epoch || state.epoch != epoch {
            return false;
        }
        if let Some(c) = b.change
            && (state.pending.is_some() || c != state.next_change || c >= self.changes.len())
        {
            return false;
        }
        let after = self.next_state(state.clone(), b, *hash);
        let ends = after.epoch != state.epoch;
        if b.next_set != ends.then(|| after.set.hash()) {
            return false;
        }
        let used = self.ancestor_txs(*parent);
        let unique: BTreeSet<u64> = b.txs.iter().copied().collect();
        parent_ok && unique.len() == b.txs.len() && b.txs.iter().all(|t| !used.contains(t))
    }

    // ---- invariants ---------------------------------------------------

    fn on_commit(
        &mut self,
        node: usize,
        seq: u64,
        hash: Hash,
        payload: Vec<u8>,
        cert: CommitCertificate,
    ) -> Result<(), String> {
        let honest = self.nodes[node].byz == Byzantine::Honest;
        let id = self.nodes[node].id;
        let n = &self.nodes[node];
        // Total order: heights one by one, each extending the last.
        if seq != n.chain.len() as u64 + 1 {
            return Err(format!(
                "total order: node {id} committed height {seq} after {}",
                n.chain.len()
            ));
        }
        if cert.height != seq || cert.block_hash != hash {
            return Err(format!("node {id}: certificate does not match block {seq}"));
        }
        // Validity: only proposed blocks commit, on their parent.
        let Some(info) = self.blocks.get(&hash).cloned() else {
            return Err(format!(
                "validity: node {id} committed an unproposed block at {seq}"
            ));
        };
        let parent = n.chain.last().copied().unwrap_or(genesis_hash());
        if info.parent != parent || info.seq != seq || block_hash(&payload) != hash {
            return Err(format!(
                "validity: node {id} block {seq} does not extend its chain"
            ));
        }
        // Epochs: the block and its certificate are of the epoch the chain
        // says, and the certificate is by that epoch's set.
        let state = self.tip_state(node);
        if info.epoch != state.epoch || cert.epoch != state.epoch {
            return Err(format!(
                "epochs: node {id} committed block {seq} of epoch {} with a certificate of epoch {}, the chain is in epoch {}",
                info.epoch, cert.epoch, state.epoch
            ));
        }
        if honest {
            // No transaction committed twice.
            for t in &info.txs {
                if n.committed_txs.contains(t) {
                    return Err(format!("transaction {t} committed twice by node {id}"));
                }
            }
            // Agreement.
            match self.committed.get(&seq) {
                Some((h, _, _)) if *h != hash => {
                    return Err(format!(
                        "agreement: node {id} committed {hash} at height {seq}, another honest node {h}"
                    ));
                }
                Some(_) => {}
                None => {
                    if !self.certificate_valid(&cert, &state.set) {
                        return Err(format!(
                            "certificate at height {seq} does not verify with the set of epoch {}",
                            state.epoch
                        ));
                    }
                    self.committed.insert(seq, (hash, cert, payload));
                }
            }
        }
        let n = &mut self.nodes[node];
        n.chain.push(hash);
        n.committed_txs.extend(info.txs.iter().copied());
        Ok(())
    }

    // ---- Byzantine behaviour ------------------------------------------

    /// A message signed by `node`'s key as its replica's index and epoch.
    fn sign(&self, node: usize, message: Message) -> SignedMessage {
        let n = &self.nodes[node];
        let epoch = n.replica.as_ref().map_or(n.epoch, |r| r.epoch());
        let index = n.replica.as_ref().map_or(0, |r| r.index());
        let digest = message.digest(self.cfg.chain_id, epoch);
        SignedMessage {
            epoch,
            signature: self.keys[n.id as usize].sign_digest(&digest),
            signer: index,
            message,
        }
    }

    fn outgoing(&mut self, node: usize, byz: Byzantine, to: Option<u32>, bytes: Vec<u8>) {
        let me = self.nodes[node].replica.as_ref().map_or(0, |r| r.index());
        let n = self.set_size(node);
        let deliver = |w: &mut World, bytes: Vec<u8>| match to {
            Some(t) => w.send(node, t, bytes),
            None => w.broadcast_raw(node, &bytes),
        };
        let parsed = SignedMessage::decode(&bytes, &self.limits).ok();
        match byz {
            Byzantine::Honest | Byzantine::Twin => deliver(self, bytes),
            Byzantine::Silent => {}
            Byzantine::EquivocatingPrimary => {
                let Some(SignedMessage {
                    message: Message::PrePrepare(pp),
                    ..
                }) = parsed
                else {
                    return deliver(self, bytes);
                };
                let invalid = self.rng.chance(330);
                let epoch = self.nodes[node].epoch;
                let Some((payload, hash)) = self.build_block(pp.seq, pp.parent, epoch, invalid)
                else {
                    return deliver(self, bytes);
                };
                let alt = self.sign(
                    node,
                    Message::PrePrepare(PrePrepare {
                        block_hash: hash,
                        payload,
                        ..pp
                    }),
                );
                let alt_bytes = alt.to_bytes();
                for peer in 0..n {
                    if peer == me {
                        continue;
                    }
                    // Even peers get the original, odd peers the other
                    // block, and one peer both: that one can prove it.
                    if peer % 2 == 0 || peer == (me + 1) % n {
                        self.send(node, peer, bytes.clone());
                    }
                    if peer % 2 == 1 {
                        self.send(node, peer, alt_bytes.clone());
                    }
                }
            }
            Byzantine::ConflictingVotes => {
                let conflicting = match &parsed {
                    Some(SignedMessage {
                        message: Message::Prepare(p),
                        ..
                    }) => Some(Message::Prepare(Prepare {
                        block_hash: keccak256(&self.rng.next_u64().to_le_bytes()),
                        ..*p
                    })),
                    Some(SignedMessage {
                        message: Message::Commit(c),
                        ..
                    }) => Some(Message::Commit(Commit {
                        block_hash: keccak256(&self.rng.next_u64().to_le_bytes()),
                        ..*c
                    })),
                    _ => None,
                };
                match conflicting {
                    None => deliver(self, bytes),
                    Some(c) => {
                        let alt = self.sign(node, c).to_bytes();
                        for peer in 0..n {
                            if peer != me {
                                // Odd peers get both votes and can prove it.
                                self.send(node, peer, bytes.clone());
                                if peer % 2 == 1 {
                                    self.send(node, peer, alt.clone());
                                }
                            }
                        }
                    }
                }
            }
            Byzantine::Forger => {
                deliver(self, bytes.clone());
                if !self.rng.chance(200) {
                    return;
                }
                if let Some(m) = parsed {
                    // Claim another validator signed it.
                    let mut forged = m.clone();
                    forged.signer = (me + 1) % n;
                    if forged.signer != me {
                        deliver(self, forged.to_bytes());
                    }
                    // A signer outside the set.
                    let mut stranger = m.clone();
                    stranger.signer = n + 3;
                    deliver(self, stranger.to_bytes());
                    // A corrupted signature.
                    let mut corrupt = m;
                    corrupt.signature.0[10] ^= 0x55;
                    deliver(self, corrupt.to_bytes());
                }
                let garbage: Vec<u8> = (0..self.rng.range(0, 200))
                    .map(|_| self.rng.next_u64() as u8)
                    .collect();
                deliver(self, garbage);
                if self.rng.chance(50) {
                    deliver(self, vec![0u8; self.cfg.limits.message_bytes_max + 1]);
                }
            }
            Byzantine::StaleSpam => {
                deliver(self, bytes);
                let spam = self.rng.chance(150);
                if let Some(m) = parsed.filter(|_| spam) {
                    let view = m.message.view();
                    let seq = m.message.seq();
                    let stale = Message::Prepare(Prepare {
                        view: view.saturating_sub(1),
                        seq: seq + self.rng.range(0, 3),
                        block_hash: keccak256(&self.rng.next_u64().to_le_bytes()),
                        parent: Hash::ZERO,
                    });
                    let future = Message::Commit(Commit {
                        view: view + 1_000,
                        seq,
                        block_hash: Hash::ZERO,
                    });
                    let old_vc = Message::ViewChange(ViewChange {
                        new_view: view.saturating_sub(1),
                        checkpoint: stele_consensus::CheckpointProof {
                            seq: 0,
                            block_hash: genesis_hash(),
                            votes: Vec::new(),
                        },
                        prepared: Vec::new(),
                    });
                    for msg in [stale, future, old_vc] {
                        let b = self.sign(node, msg).to_bytes();
                        deliver(self, b);
                    }
                }
            }
        }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome {
            committed_height: self.max_honest_height(),
            messages_sent: self.messages_sent,
            message_bytes: self.message_bytes,
            time_ms: self.time_ms,
            max_view: self.max_honest_view(),
            evidence: self.evidence,
            epochs: self
                .nodes
                .iter()
                .filter(|n| n.byz == Byzantine::Honest)
                .map(|n| n.epoch)
                .max()
                .unwrap_or(0),
        }
    }
}
