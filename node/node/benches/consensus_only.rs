//! Consensus-only throughput and latency: N validators (default 4) run the
//! real PBFT replica over the real QUIC transport on loopback, with the
//! consensus log synced to RocksDB before every send, but transactions are
//! opaque 512-byte payloads: no execution and no signature check. This is
//! how BFT research prototypes report consensus throughput, so the figure
//! compares with theirs.
//!
//! The primary batches pending payloads into blocks (up to
//! `STELE_BENCH_BATCH`, or whatever arrived within `STELE_BENCH_BATCH_MS`)
//! and keeps up to `STELE_BENCH_PIPELINE` blocks in flight. Payloads arrive
//! at `STELE_BENCH_RATE` per second, or flat out when 0 (a full batch is
//! always waiting). Prints one JSON object: committed payloads per second,
//! consensus latency (proposal to commit at the primary) and end-to-end
//! latency (payload arrival to commit), p50/p99, and this machine's k256
//! verification rate.
//!
//! `cargo bench -p stele-node --bench consensus_only` (not a test).

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stele_consensus::{Action, Config, Input, Record, Replica, TimerId};
use stele_node::net::{Channel, Inbound, NetConfig, Network, PeerInfo};
use stele_node::wal::{CF_WAL, Wal};
use stele_state::{State, StateConfig};
use stele_types::codec::Encode;
use stele_types::{Hash, SecretKey, Validator, ValidatorSet, keccak256};

const CHAIN: u64 = 9_999;
const CF_BLOCKS: &str = "bench_blocks";
/// Inbound messages handled before one group commit of the log.
const INBOUND_BATCH_MAX: usize = 256;
/// seq, parent, proposal time, count.
const HEADER_BYTES: usize = 8 + 32 + 8 + 4;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone)]
struct Params {
    validators: usize,
    payload_bytes: usize,
    batch_max: usize,
    batch_ms: u64,
    pipeline: u64,
    rate: u64,
    warmup: Duration,
    measure: Duration,
}

/// Shared between the validators and the load: the clock origin, the
/// payload queue at the primary, and the primary's measurements.
struct Shared {
    epoch: Instant,
    queue: std::sync::Mutex<VecDeque<u64>>,
    stop: AtomicBool,
    measuring: AtomicBool,
    committed_payloads: AtomicU64,
    committed_blocks: AtomicU64,
    consensus_ns: std::sync::Mutex<Vec<u64>>,
    e2e_ns: std::sync::Mutex<Vec<u64>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

fn key(i: usize) -> SecretKey {
    stele_fixtures::key(i as u64 + 77)
}

fn free_udp_ports(n: usize) -> Vec<SocketAddr> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect()
}

/// A block payload: header, then `count` payloads (each starts with its
/// arrival time).
fn build_block(p: &Params, shared: &Shared, seq: u64, parent: &Hash) -> Vec<u8> {
    let arrivals: Vec<u64> = if p.rate == 0 {
        let now = shared.now_ns();
        vec![now; p.batch_max]
    } else {
        let mut q = shared.queue.lock().expect("queue lock");
        let n = q.len().min(p.batch_max);
        q.drain(..n).collect()
    };
    let mut out = Vec::with_capacity(HEADER_BYTES + arrivals.len() * p.payload_bytes);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&parent.0);
    out.extend_from_slice(&shared.now_ns().to_le_bytes());
    out.extend_from_slice(&(arrivals.len() as u32).to_le_bytes());
    for (i, t) in arrivals.iter().enumerate() {
        let start = out.len();
        out.extend_from_slice(&t.to_le_bytes());
        out.resize(start + p.payload_bytes, (seq as usize + i) as u8);
    }
    out
}

/// Checks a proposed block's header against what the replica expects.
fn valid_block(payload: &[u8], seq: u64, parent: &Hash, p: &Params) -> bool {
    if payload.len() < HEADER_BYTES {
        return false;
    }
    let count = u32::from_le_bytes(payload[48..52].try_into().unwrap_or([0; 4])) as usize;
    payload[..8] == seq.to_le_bytes()
        && payload[8..40] == parent.0
        && payload.len() == HEADER_BYTES + count * p.payload_bytes
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

struct Validator_ {
    index: usize,
    key: SecretKey,
    validators: ValidatorSet,
    listen: SocketAddr,
    peers: Vec<PeerInfo>,
    dir: std::path::PathBuf,
}

async fn run_validator(v: Validator_, p: Params, shared: Arc<Shared>, ready: Arc<AtomicU64>) {
    let net_config = NetConfig {
        peer_msgs_per_sec: 1_000_000,
        peer_msgs_burst: 1_000_000,
        ..NetConfig::default()
    };
    let (net, mut inbound) = Network::start(
        net_config,
        v.key.clone(),
        CHAIN,
        v.validators.clone(),
        v.listen,
        v.peers.clone(),
    )
    .expect("network");
    let state =
        State::open_with_column_families(&v.dir, StateConfig::default(), &[CF_WAL, CF_BLOCKS])
            .expect("state");
    let mut cfg = Config::new(CHAIN, v.validators.clone(), Hash([0; 32]));
    cfg.pipeline_blocks_max = p.pipeline;
    cfg.window_seqs = (4 * p.pipeline).max(32);
    cfg.checkpoint_interval_seqs = cfg.window_seqs / 2;
    cfg.limits.window_seqs_max = cfg.window_seqs;
    cfg.limits.payload_bytes_max = HEADER_BYTES + p.batch_max * p.payload_bytes;
    let limits = cfg.limits.clone();
    let (mut wal, _) = Wal::open(&state, &limits).expect("wal");
    let mut replica = Replica::with_k256(cfg, v.key.clone()).expect("replica");
    let others: Vec<_> = v
        .validators
        .validators()
        .iter()
        .map(|x| x.address)
        .filter(|a| *a != v.key.address())
        .collect();

    // Start once every peer is connected, so no first message is lost.
    loop {
        if others.iter().all(|a| net.connected().contains(a)) {
            break;
        }
        tokio::select! {
            m = inbound.events.recv() => if m.is_none() { return },
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < p.validators as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut inputs: VecDeque<Input> = VecDeque::from([Input::Start]);
    let mut timer: Option<(TimerId, tokio::time::Instant)> = None;
    let mut proposals: VecDeque<(u64, u64, Hash)> = VecDeque::new();
    let mut last_proposal = tokio::time::Instant::now();
    let blocks_cf = state.column_family(CF_BLOCKS).expect("cf");
    let db = state.db().expect("the state is on disk");
    while !shared.stop.load(Ordering::Relaxed) {
        // Group commit: handle every queued input keeping the actions in
        // order, make all their log records durable in one synced write,
        // then carry out the rest. Each action still runs after every record
        // the replica asked to persist before it.
        let mut actions = Vec::new();
        while let Some(input) = inputs.pop_front() {
            for action in replica.handle(input) {
                if let Action::ValidateBlock {
                    seq,
                    block_hash,
                    parent,
                    payload,
                } = action
                {
                    // No external effect: answered at once.
                    let valid = keccak256(&payload) == block_hash
                        && valid_block(&payload, seq, &parent, &p);
                    inputs.push_back(Input::BlockValidated {
                        seq,
                        block_hash,
                        valid,
                    });
                } else {
                    actions.push(action);
                }
            }
        }
        let records: Vec<Record> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Persist(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        if !records.is_empty() {
            wal.append(&state, &records).expect("wal append");
        }
        for action in actions {
            match action {
                Action::Persist(_) | Action::ValidateBlock { .. } => {}
                Action::Broadcast(bytes) => net.broadcast(Channel::Consensus, Arc::from(bytes)),
                Action::Send { to, bytes } => {
                    if let Some(x) = v.validators.get(to as usize) {
                        net.send(&x.address, Channel::Consensus, Arc::from(bytes));
                    }
                }
                Action::SetTimer { id, after_ms } => {
                    timer = Some((
                        id,
                        tokio::time::Instant::now() + Duration::from_millis(after_ms),
                    ));
                }
                Action::RequestProposal { view, seq, parent } => {
                    proposals.push_back((view, seq, parent));
                }
                Action::Commit {
                    seq,
                    payload,
                    certificate,
                    ..
                } => {
                    // Stored like a block (the consensus log is what is
                    // synced before sends).
                    let mut value = certificate.to_bytes();
                    value.extend_from_slice(&payload);
                    let _ = db.put_cf(blocks_cf, seq.to_be_bytes(), value);
                    if v.index == 0 && shared.measuring.load(Ordering::Relaxed) {
                        let now = shared.now_ns();
                        let count =
                            u32::from_le_bytes(payload[48..52].try_into().unwrap_or([0; 4]));
                        shared
                            .committed_payloads
                            .fetch_add(u64::from(count), Ordering::Relaxed);
                        shared.committed_blocks.fetch_add(1, Ordering::Relaxed);
                        let proposed = u64_at(&payload, 40);
                        shared
                            .consensus_ns
                            .lock()
                            .expect("lock")
                            .push(now.saturating_sub(proposed));
                        let mut e2e = shared.e2e_ns.lock().expect("lock");
                        for i in 0..count as usize {
                            let at = HEADER_BYTES + i * p.payload_bytes;
                            e2e.push(now.saturating_sub(u64_at(&payload, at)));
                        }
                    }
                }
                Action::CompactLog { stable_seq, view } => {
                    let _ = wal.compact(&state, stable_seq, view);
                }
                Action::RequestSync { .. } | Action::Evidence(_) => {}
            }
        }
        // The primary proposes when a batch is full or its time is up.
        if let Some(&(view, seq, parent)) = proposals.front() {
            let waiting = if p.rate == 0 {
                p.batch_max
            } else {
                shared.queue.lock().expect("queue lock").len()
            };
            let due = last_proposal + Duration::from_millis(p.batch_ms);
            if waiting >= p.batch_max || (waiting > 0 && tokio::time::Instant::now() >= due) {
                proposals.pop_front();
                let payload = build_block(&p, &shared, seq, &parent);
                last_proposal = tokio::time::Instant::now();
                inputs.push_back(Input::ProposalReady {
                    view,
                    seq,
                    block_hash: keccak256(&payload),
                    payload,
                });
                continue;
            }
        }
        let wake = timer.map(|(_, at)| at);
        let propose_at = (!proposals.is_empty()).then(|| {
            (last_proposal + Duration::from_millis(p.batch_ms))
                .max(tokio::time::Instant::now() + Duration::from_micros(200))
        });
        let next = [wake, propose_at].into_iter().flatten().min();
        tokio::select! {
            m = inbound.events.recv() => {
                let mut next = m;
                let mut taken = 0;
                // Take whatever else has arrived too, for one group commit.
                loop {
                    match next {
                        Some(Inbound::Message { payload, channel: Channel::Consensus, .. }) => inputs.push_back(Input::Message(payload)),
                        Some(_) => {}
                        None => return,
                    }
                    taken += 1;
                    if taken >= INBOUND_BATCH_MAX {
                        break;
                    }
                    match inbound.events.try_recv() {
                        Ok(m) => next = Some(m),
                        Err(_) => break,
                    }
                }
            },
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                if let Some((id, at)) = timer
                    && tokio::time::Instant::now() >= at
                {
                    timer = None;
                    inputs.push_back(Input::Timer(id));
                }
            }
        }
    }
    net.shutdown().await;
}

/// k256 verifications per second on one core.
fn verify_rate() -> f64 {
    let k = key(1);
    let digest = keccak256(b"stele bench");
    let sig = k.sign_digest(&digest);
    let pk = k.public_key();
    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        pk.verify(&digest, &sig).expect("valid signature");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1e6
}

fn main() {
    let p = Params {
        validators: env_u64("STELE_BENCH_VALIDATORS", 4) as usize,
        payload_bytes: 512,
        batch_max: env_u64("STELE_BENCH_BATCH", 2_000) as usize,
        batch_ms: env_u64("STELE_BENCH_BATCH_MS", 5),
        pipeline: env_u64("STELE_BENCH_PIPELINE", 4),
        rate: env_u64("STELE_BENCH_RATE", 0),
        warmup: Duration::from_secs(env_u64("STELE_BENCH_WARMUP_S", 2)),
        measure: Duration::from_secs(env_u64("STELE_BENCH_SECS", 10)),
    };
    let verify_per_s = verify_rate();
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        queue: std::sync::Mutex::new(VecDeque::new()),
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(false),
        committed_payloads: AtomicU64::new(0),
        committed_blocks: AtomicU64::new(0),
        consensus_ns: std::sync::Mutex::new(Vec::new()),
        e2e_ns: std::sync::Mutex::new(Vec::new()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys: Vec<SecretKey> = {
        let mut k: Vec<SecretKey> = (0..p.validators).map(key).collect();
        k.sort_by_key(SecretKey::address);
        k
    };
    let validators = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                address: k.address(),
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("validator set");
    let addrs = free_udp_ports(p.validators);
    let ready = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let v = Validator_ {
                index: i,
                key: k.clone(),
                validators: validators.clone(),
                listen: addrs[i],
                peers: keys
                    .iter()
                    .zip(&addrs)
                    .filter(|(o, _)| o.address() != k.address())
                    .map(|(o, a)| PeerInfo {
                        address: o.address(),
                        socket: *a,
                    })
                    .collect(),
                dir: tmp.path().join(format!("v{i}")),
            };
            tasks.push(tokio::spawn(run_validator(
                v,
                p.clone(),
                shared.clone(),
                ready.clone(),
            )));
        }
        // The offered load, when not flat out.
        if p.rate > 0 {
            let shared = shared.clone();
            let rate = p.rate;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                let mut sent: u64 = 0;
                let start = Instant::now();
                while !shared.stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                    let now = shared.now_ns();
                    let mut q = shared.queue.lock().expect("queue lock");
                    while sent < due {
                        q.push_back(now);
                        sent += 1;
                    }
                }
            });
        }
        while ready.load(Ordering::SeqCst) < p.validators as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(p.warmup).await;
        shared.measuring.store(true, Ordering::SeqCst);
        tokio::time::sleep(p.measure).await;
        shared.measuring.store(false, Ordering::SeqCst);
        shared.stop.store(true, Ordering::SeqCst);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    });
    let payloads = shared.committed_payloads.load(Ordering::SeqCst);
    let blocks = shared.committed_blocks.load(Ordering::SeqCst);
    let mut consensus = shared.consensus_ns.lock().expect("lock").clone();
    let mut e2e = shared.e2e_ns.lock().expect("lock").clone();
    consensus.sort_unstable();
    e2e.sort_unstable();
    let secs = p.measure.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{{\"bench\":\"consensus_only\",\"validators\":{},\"payload_bytes\":{},\"batch_max\":{},\"batch_ms\":{},\"pipeline\":{},\"offered_per_s\":{},\"committed_per_s\":{:.0},\"blocks_per_s\":{:.1},\"consensus_latency_ms_p50\":{:.2},\"consensus_latency_ms_p99\":{:.2},\"e2e_latency_ms_p50\":{:.2},\"e2e_latency_ms_p99\":{:.2},\"cores\":{cores},\"k256_verify_per_s_per_core\":{:.0}}}",
        p.validators,
        p.payload_bytes,
        p.batch_max,
        p.batch_ms,
        p.pipeline,
        if p.rate == 0 {
            "\"flat out\"".to_string()
        } else {
            p.rate.to_string()
        },
        payloads as f64 / secs,
        blocks as f64 / secs,
        percentile(&consensus, 0.5),
        percentile(&consensus, 0.99),
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99),
        verify_per_s
    );
}
