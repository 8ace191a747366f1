//! The simulated cluster: nodes, network, clock, block registry and the
//! invariant checks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use stele_consensus::{
    Action, Commit, Config, Input, Message, PrePrepare, Prepare, Record, Replica, SignedMessage,
    Verifier, ViewChange,
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

/// Network faults, active until `heal_ms`.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub drop_permille: u64,
    pub duplicate_permille: u64,
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
    /// Groups of validator indices that cannot talk to each other, between
    /// the two times.
    pub partition: Option<(Vec<Vec<u32>>, u64, u64)>,
    /// (validator index, crash at, restart at, host crash). A host crash
    /// loses the records written after the last synced one.
    pub crashes: Vec<(u32, u64, u64, bool)>,
    pub heal_ms: u64,
}

#[derive(Debug, Clone)]
struct BlockInfo {
    seq: u64,
    parent: Hash,
    txs: Vec<u64>,
    /// Deliberately broken (e.g. repeats a committed transaction).
    invalid: bool,
}

#[derive(Debug)]
struct Node {
    index: u32,
    byz: Byzantine,
    replica: Replica,
    alive: bool,
    /// Bumped on every crash so events for the old incarnation are dropped.
    epoch: u64,
    records: Vec<Record>,
    /// How many of `records` (a prefix) are synced; a host crash loses the
    /// rest.
    synced: usize,
    /// Whether the crash in progress is a host crash.
    host_crash: bool,
    /// Hashes of the signed messages persisted, for persist-before-send.
    persisted: BTreeSet<Hash>,
    chain: Vec<Hash>,
    committed_txs: BTreeSet<u64>,
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        bytes: Vec<u8>,
    },
    Input {
        node: usize,
        epoch: u64,
        input: Input,
    },
    Crash {
        node: usize,
        host: bool,
    },
    Restart {
        node: usize,
    },
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
}

pub struct World {
    pub n: usize,
    pub rng: Rng,
    pub time_ms: u64,
    queue: BTreeMap<(u64, u64), Event>,
    event_counter: u64,
    nodes: Vec<Node>,
    keys: Vec<SecretKey>,
    pub cfg: Config,
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

fn encode_block(seq: u64, parent: &Hash, txs: &[u64], salt: u64) -> Vec<u8> {
    let mut out = Vec::new();
    seq.encode_to(&mut out);
    parent.encode_to(&mut out);
    salt.encode_to(&mut out);
    for t in txs {
        t.encode_to(&mut out);
    }
    out
}

/// Deterministic keys and the validator set they form, sorted by address.
pub fn validator_keys(n: usize) -> (Vec<SecretKey>, ValidatorSet) {
    let mut keys: Vec<SecretKey> = (0..n)
        .map(|i| {
            let mut b = [0u8; 32];
            b[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            SecretKey::from_bytes(&b).expect("small scalars are valid keys")
        })
        .collect();
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
    /// A cluster of `n` validators; `byzantine` assigns behaviours to
    /// validator indices (all others are honest).
    pub fn new(seed: u64, n: usize, byzantine: &[(u32, Byzantine)], faults: Faults) -> World {
        let (keys, set) = validator_keys(n);
        let cfg = sim_config(set);
        let verifier = CachedVerifier::default();
        let mut nodes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let byz = byzantine
                .iter()
                .find(|(b, _)| *b as usize == i)
                .map_or(Byzantine::Honest, |(_, b)| *b);
            let copies = if byz == Byzantine::Twin { 2 } else { 1 };
            for _ in 0..copies {
                let replica = Replica::new(cfg.clone(), key.clone(), Box::new(verifier.clone()))
                    .expect("simulation config is valid");
                nodes.push(Node {
                    index: i as u32,
                    byz,
                    replica,
                    alive: true,
                    epoch: 0,
                    records: Vec::new(),
                    synced: 0,
                    host_crash: false,
                    persisted: BTreeSet::new(),
                    chain: Vec::new(),
                    committed_txs: BTreeSet::new(),
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
            blocks: BTreeMap::new(),
            committed: BTreeMap::new(),
            faults,
            block_interval_ms: 150,
            messages_sent: 0,
            message_bytes: 0,
            evidence: 0,
            verifier,
        };
        for (v, at, back, host) in w.faults.crashes.clone() {
            for node in 0..w.nodes.len() {
                if w.nodes[node].index == v {
                    w.schedule(at, Event::Crash { node, host });
                    w.schedule(back, Event::Restart { node });
                }
            }
        }
        for node in 0..w.nodes.len() {
            w.schedule(
                0,
                Event::Input {
                    node,
                    epoch: 0,
                    input: Input::Start,
                },
            );
        }
        w
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.event_counter += 1;
        self.queue.insert((at, self.event_counter), event);
    }

    fn is_honest(&self, index: u32) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.index == index)
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

    pub fn max_honest_height(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .map(|n| n.chain.len() as u64)
            .max()
            .unwrap_or(0)
    }

    pub fn max_honest_view(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.byz == Byzantine::Honest)
            .map(|n| n.replica.view().0)
            .max()
            .unwrap_or(0)
    }

    pub fn counters_total(&self) -> (u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0);
        for n in self.nodes.iter().filter(|n| n.byz == Byzantine::Honest) {
            let c = n.replica.counters();
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
            .map(|n| n.replica.counters().double_sign_refused)
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

    fn step(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Deliver { to, bytes } => {
                if self.nodes[to].alive {
                    let epoch = self.nodes[to].epoch;
                    self.feed(to, epoch, Input::Message(bytes))?;
                }
            }
            Event::Input { node, epoch, input } => self.feed(node, epoch, input)?,
            Event::Crash { node, host } => {
                let n = &mut self.nodes[node];
                n.alive = false;
                n.epoch += 1;
                n.host_crash = host;
                if host {
                    let synced = n.synced;
                    n.records.truncate(synced);
                }
            }
            Event::Restart { node } => {
                let key = self.keys[self.nodes[node].index as usize].clone();
                let replica = Replica::new(self.cfg.clone(), key, Box::new(self.verifier.clone()))
                    .expect("simulation config is valid");
                let n = &mut self.nodes[node];
                n.replica = replica;
                n.alive = true;
                let committed = n.chain.last().map(|h| (n.chain.len() as u64, *h));
                let records = n.records.clone();
                let actions = n.replica.handle(Input::Restart {
                    records,
                    committed,
                    unsynced_lost: n.host_crash,
                });
                if actions
                    .iter()
                    .any(|a| matches!(a, Action::Broadcast(_) | Action::Send { .. }))
                {
                    return Err(format!(
                        "node {} sent a message while replaying its log",
                        n.index
                    ));
                }
                for action in actions {
                    self.act(node, action)?;
                }
            }
        }
        Ok(())
    }

    fn feed(&mut self, node: usize, epoch: u64, input: Input) -> Result<(), String> {
        let n = &mut self.nodes[node];
        if !n.alive || n.epoch != epoch {
            return Ok(());
        }
        let actions = n.replica.handle(input);
        for action in actions {
            self.act(node, action)?;
        }
        Ok(())
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

    /// Puts bytes on the wire from `from` to every node holding `to`.
    fn send(&mut self, from: usize, to: u32, bytes: Vec<u8>) {
        let from_index = self.nodes[from].index;
        self.messages_sent += 1;
        self.message_bytes += bytes.len() as u64;
        if self.partitioned(from_index, to) {
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
            if self.nodes[target].index != to || target == from {
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
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }

    fn broadcast_raw(&mut self, from: usize, bytes: &[u8]) {
        let me = self.nodes[from].index;
        for to in 0..self.n as u32 {
            if to != me {
                self.send(from, to, bytes.to_vec());
            }
        }
    }

    fn act(&mut self, node: usize, action: Action) -> Result<(), String> {
        let byz = self.nodes[node].byz;
        if std::env::var_os("STELE_SIM_TRACE").is_some() {
            self.trace(node, &action);
        }
        match action {
            Action::Persist(r) => {
                if let Record::Signed(m) = &r {
                    self.nodes[node].persisted.insert(keccak256(&m.to_bytes()));
                }
                let n = &mut self.nodes[node];
                let sync = r.needs_sync();
                n.records.push(r);
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
                let epoch = self.nodes[node].epoch;
                self.schedule(
                    self.time_ms + after_ms,
                    Event::Input {
                        node,
                        epoch,
                        input: Input::Timer(id),
                    },
                );
            }
            Action::RequestProposal { view, seq, parent } => {
                let (payload, hash) = self.build_block(seq, parent, false);
                let epoch = self.nodes[node].epoch;
                self.schedule(
                    self.time_ms + self.block_interval_ms,
                    Event::Input {
                        node,
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
            Action::ValidateBlock {
                seq,
                block_hash,
                parent,
                payload,
            } => {
                let valid = self.validate(seq, &block_hash, &parent, &payload);
                let epoch = self.nodes[node].epoch;
                self.schedule(
                    self.time_ms + 1,
                    Event::Input {
                        node,
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
                let epoch = self.nodes[node].epoch;
                for (at, h) in (self.time_ms + 5..).zip(from..=to) {
                    let Some((_, cert, payload)) = self.committed.get(&h).cloned() else {
                        break;
                    };
                    self.schedule(
                        at,
                        Event::Input {
                            node,
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
                let kept_synced = n.records[..n.synced]
                    .iter()
                    .filter(|r| !r.obsolete(stable_seq, view))
                    .count();
                n.records.retain(|r| !r.obsolete(stable_seq, view));
                n.synced = kept_synced;
            }
            Action::Evidence(e) => {
                self.evidence += 1;
                let signer = e.first.signer;
                if e.second.signer != signer || e.first == e.second {
                    return Err("malformed evidence".into());
                }
                if self.nodes[node].byz == Byzantine::Honest && self.is_honest(signer) {
                    return Err(format!(
                        "honest node {} reported evidence against honest validator {signer}",
                        self.nodes[node].index
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
        let Ok(m) = SignedMessage::decode(bytes, &self.cfg.limits) else {
            return Err(format!("node {} sent an undecodable message", n.index));
        };
        if m.signer == n.index && !n.persisted.contains(&keccak256(bytes)) {
            return Err(format!(
                "node {} sent {:?} before persisting it",
                n.index,
                m.message.kind()
            ));
        }
        Ok(())
    }

    /// With STELE_SIM_TRACE set, prints what each replica does.
    fn trace(&self, node: usize, action: &Action) {
        let n = &self.nodes[node];
        let who = format!(
            "t={} node {} view {:?}",
            self.time_ms,
            n.index,
            n.replica.view()
        );
        let short = |h: &Hash| h.to_string()[2..10].to_string();
        match action {
            Action::Broadcast(b) | Action::Send { bytes: b, .. } => {
                if let Ok(m) = SignedMessage::decode(b, &self.cfg.limits) {
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

    /// Builds a block: a few pending transactions not yet in its ancestry
    /// (chosen with some randomness, so competing blocks overlap), or, if
    /// `invalid`, one repeating an ancestor's transaction.
    fn build_block(&mut self, seq: u64, parent: Hash, invalid: bool) -> (Vec<u8>, Hash) {
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
        let salt = self.rng.next_u64();
        let payload = encode_block(seq, &parent, &txs, salt);
        let hash = block_hash(&payload);
        self.blocks.insert(
            hash,
            BlockInfo {
                seq,
                parent,
                txs,
                invalid,
            },
        );
        (payload, hash)
    }

    /// What the node's executor decides: the payload is the registered
    /// block, at this height, on this parent, with no transaction repeated.
    fn validate(&self, seq: u64, hash: &Hash, parent: &Hash, payload: &[u8]) -> bool {
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
        let index = self.nodes[node].index;
        let n = &self.nodes[node];
        // Total order: heights one by one, each extending the last.
        if seq != n.chain.len() as u64 + 1 {
            return Err(format!(
                "total order: node {index} committed height {seq} after {}",
                n.chain.len()
            ));
        }
        if cert.height != seq || cert.block_hash != hash {
            return Err(format!(
                "node {index}: certificate does not match block {seq}"
            ));
        }
        // Validity: only proposed blocks commit, on their parent.
        let Some(info) = self.blocks.get(&hash).cloned() else {
            return Err(format!(
                "validity: node {index} committed an unproposed block at {seq}"
            ));
        };
        let parent = n.chain.last().copied().unwrap_or(genesis_hash());
        if info.parent != parent || info.seq != seq || block_hash(&payload) != hash {
            return Err(format!(
                "validity: node {index} block {seq} does not extend its chain"
            ));
        }
        if honest {
            // No transaction committed twice.
            for t in &info.txs {
                if n.committed_txs.contains(t) {
                    return Err(format!("transaction {t} committed twice by node {index}"));
                }
            }
            // Agreement.
            match self.committed.get(&seq) {
                Some((h, _, _)) if *h != hash => {
                    return Err(format!(
                        "agreement: node {index} committed {hash} at height {seq}, another honest node {h}"
                    ));
                }
                Some(_) => {}
                None => {
                    // Full k256 check of the certificate every few heights
                    // (it costs a few signature recoveries).
                    if seq % 8 == 1 {
                        cert.verify(self.cfg.chain_id, &self.cfg.validators)
                            .map_err(|e| {
                                format!("certificate at height {seq} does not verify: {e}")
                            })?;
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

    fn sign(&self, index: u32, message: Message) -> SignedMessage {
        let digest = message.digest(self.cfg.chain_id);
        SignedMessage {
            signature: self.keys[index as usize].sign_digest(&digest),
            signer: index,
            message,
        }
    }

    fn outgoing(&mut self, node: usize, byz: Byzantine, to: Option<u32>, bytes: Vec<u8>) {
        let me = self.nodes[node].index;
        let deliver = |w: &mut World, bytes: Vec<u8>| match to {
            Some(t) => w.send(node, t, bytes),
            None => w.broadcast_raw(node, &bytes),
        };
        let parsed = SignedMessage::decode(&bytes, &self.cfg.limits).ok();
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
                let (payload, hash) = self.build_block(pp.seq, pp.parent, invalid);
                let alt = self.sign(
                    me,
                    Message::PrePrepare(PrePrepare {
                        block_hash: hash,
                        payload,
                        ..pp
                    }),
                );
                let alt_bytes = alt.to_bytes();
                for peer in 0..self.n as u32 {
                    if peer == me {
                        continue;
                    }
                    // Even peers get the original, odd peers the other
                    // block, and one peer both: that one can prove it.
                    if peer % 2 == 0 || peer == (me + 1) % self.n as u32 {
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
                        let alt = self.sign(me, c).to_bytes();
                        for peer in 0..self.n as u32 {
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
                    forged.signer = (me + 1) % self.n as u32;
                    if forged.signer != me {
                        deliver(self, forged.to_bytes());
                    }
                    // A signer outside the set.
                    let mut stranger = m.clone();
                    stranger.signer = self.n as u32 + 3;
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
                        let b = self.sign(me, msg).to_bytes();
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
        }
    }
}
