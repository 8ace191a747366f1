//! The standing adversarial suite: a 4-validator cluster of real
//! `stele-node` processes, honest accounts sending transfers through one
//! validator the whole time, and one attack after another against another
//! validator (and, for hostile contracts, against the chain). Each attack
//! runs for a phase; the suite reports, per phase, the honest transfers'
//! submission-to-commit latency (and its ratio to the baseline phase run
//! before any attack), whether every one of them committed, the blocks and
//! empty blocks made, each validator's peak resident memory, how the
//! attacked validator's RPC answered an honest probe meanwhile, and the
//! attack's own counters.
//!
//! Who is where: validator 0 is attacked, honest transfers go through
//! validator 1's RPC, the probe asks validator 0 from 127.0.0.1. Every
//! attacker connects from addresses of its own in 127.0.0.0/8 (a node
//! limits RPC per client IP; loopback reaches it from all of them), and the
//! attack's tasks run on worker threads at the lowest CPU priority (nice
//! 19), so on a small machine the validators get the CPU first, as if the
//! attacker were another host; what the attack costs the validators is
//! fully counted.
//!
//! The attacks ([`Attack`]): hostile contracts (issue 23's classes),
//! mempool pinning with nonce-gapped 128 KiB transactions from many funded
//! accounts, a flood of validly signed transactions from unfunded
//! accounts, heavy reads (`get_events` scans, blocks, storage pages in full
//! batches), malformed and oversized requests, 1 000 idle connections,
//! slow WebSocket subscribers that never read, a QUIC handshake flood
//! during which the attacked validator restarts and must find its peers,
//! and a Byzantine validator flooding its peers with garbage.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use stele_client::api::{BlockId, EventFilter};
use stele_client::{Client, Signer, TxBuilder};
use stele_types::{Address, ExecStatus, Hash, SecretKey};
use tokio::io::AsyncWriteExt;

use crate::cluster::{Cluster, ClusterConfig, Endpoints};
use crate::hostile::{HOSTILE, SEGMENT_BOMB, compile_bomb};
use crate::load::{Load, LoadConfig, SenderSpec};
use crate::rawnet::{self, source_ip};

/// One attack of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// Issue 23's hostile contracts, spread over the phase: a module that
    /// cannot be instantiated, a compile bomb, iteration over deletes
    /// (the transaction's own and committed ones), memory growth in every
    /// frame, an event flood, a pointer chase and a float chain.
    HostileContracts,
    /// Funded accounts park nonce-gapped calls with the largest arguments
    /// a transaction may carry (128 KiB) at ten times the honest gas price,
    /// as many as the validators take.
    MempoolPinning,
    /// Validly signed transfers from accounts that hold nothing, in full
    /// batches, as fast as the node answers.
    UnfundedFlood,
    /// Full batches of the heaviest reads: `get_events` over every block,
    /// `get_block`, `list_storage` pages.
    HeavyReads,
    /// Truncated JSON, bytes that are not JSON, bodies over the size limit
    /// and heads that promise a body never sent.
    MalformedRequests,
    /// 1 000 connections that send nothing or half a request head, each
    /// reopened as soon as the node closes it.
    IdleConnections,
    /// WebSocket clients with 8 subscriptions each that never read.
    SlowSubscribers,
    /// QUIC handshakes from many addresses, each held without proving a
    /// key; halfway through, the attacked validator restarts and must
    /// reconnect to its peers through the flood.
    HandshakeFlood,
    /// Validator 3's node stops, nothing more: the reference the
    /// Byzantine validator's phase is judged against (a Byzantine
    /// validator is at least a missing one, and with one of four missing
    /// every quorum needs all the others).
    ValidatorDown,
    /// Validator 3's node stops and an attacker holding its key floods
    /// the other three with valid-looking garbage on every channel
    /// ([`crate::byzantine`]); validator 3 restarts after the phase.
    ByzantineValidator,
}

impl Attack {
    pub const ALL: &'static [Attack] = &[
        Attack::HostileContracts,
        Attack::MempoolPinning,
        Attack::UnfundedFlood,
        Attack::HeavyReads,
        Attack::MalformedRequests,
        Attack::IdleConnections,
        Attack::SlowSubscribers,
        Attack::HandshakeFlood,
        Attack::ValidatorDown,
        Attack::ByzantineValidator,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::HostileContracts => "hostile_contracts",
            Attack::MempoolPinning => "mempool_pinning",
            Attack::UnfundedFlood => "unfunded_flood",
            Attack::HeavyReads => "heavy_reads",
            Attack::MalformedRequests => "malformed_requests",
            Attack::IdleConnections => "idle_connections",
            Attack::SlowSubscribers => "slow_subscribers",
            Attack::HandshakeFlood => "handshake_flood",
            Attack::ValidatorDown => "validator_down",
            Attack::ByzantineValidator => "byzantine_validator",
        }
    }

    /// The second octet of the loopback addresses this attack sends from.
    fn ip_block(self) -> u8 {
        20 + self as u8
    }
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub node_bin: PathBuf,
    pub attacks: Vec<Attack>,
    /// How long each phase (the baseline, each attack, the closing
    /// baseline) lasts.
    pub phase: Duration,
    /// Honest transfers per second, over all honest senders.
    pub honest_rate: f64,
    pub honest_senders: usize,
    /// Funded accounts of the mempool-pinning attack.
    pub pinners: usize,
    /// Each validator's mempool byte limit (`[mempool] bytes_max`): small
    /// enough that the pinning attack fills it.
    pub mempool_bytes_max: u64,
    /// Fail a phase whose honest p50 latency is over this multiple of the
    /// baseline's (`None`: report only, for runs on a busy machine).
    pub latency_ratio_max: Option<f64>,
    /// Fail a phase in which a validator's resident memory went over this.
    pub rss_mib_max: u64,
    /// The cluster's `consensus.empty_block_interval_ms`.
    pub empty_block_interval: Duration,
}

impl SuiteConfig {
    /// The full suite: every attack, 20 s phases, the 2x latency target.
    pub fn full(node_bin: impl Into<PathBuf>) -> SuiteConfig {
        SuiteConfig {
            node_bin: node_bin.into(),
            attacks: Attack::ALL.to_vec(),
            phase: Duration::from_secs(20),
            honest_rate: 40.0,
            honest_senders: 8,
            pinners: 40,
            mempool_bytes_max: 32 << 20,
            latency_ratio_max: Some(2.0),
            rss_mib_max: 2048,
            empty_block_interval: Duration::from_millis(500),
        }
    }

    /// What CI runs: every attack for 5 s, latency reported, not judged
    /// (CI machines are shared and debug builds are slow).
    pub fn quick(node_bin: impl Into<PathBuf>) -> SuiteConfig {
        SuiteConfig {
            phase: Duration::from_secs(5),
            honest_rate: 20.0,
            pinners: 20,
            latency_ratio_max: None,
            ..SuiteConfig::full(node_bin)
        }
    }
}

/// Latencies of the honest transfers sent in one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Honest {
    /// Accepted by validator 1 during the phase.
    pub sent: usize,
    pub committed: usize,
    /// Refused by validator 1 during the phase (a resend of a transfer
    /// that committed meanwhile counts too), by error code.
    pub refused: BTreeMap<String, usize>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// An honest client's calls to the attacked validator during a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Probe {
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: f64,
}

/// One phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub seconds: f64,
    pub honest: Honest,
    /// Honest p50 over the baseline's (for the Byzantine validator, over
    /// the phase with validator 3 missing, when it ran).
    pub p50_ratio: Option<f64>,
    pub blocks: u64,
    pub empty_blocks: u64,
    /// Views the chain moved through (view changes).
    pub view_changes: u64,
    /// Each validator's peak resident memory in the phase.
    pub rss_mib_max: Vec<u64>,
    pub probe: Probe,
    pub attack: BTreeMap<String, u64>,
    /// The checks this phase failed.
    pub failures: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub phases: Vec<PhaseReport>,
    /// Honest transfers accepted and never seen committed, over the run.
    pub honest_uncommitted: usize,
    pub failures: Vec<String>,
}

impl SuiteReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.phases.iter().all(|p| p.failures.is_empty())
    }
}

/// Named counters an attack bumps from many tasks.
#[derive(Debug, Clone, Default)]
struct Counters(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counters {
    fn add(&self, key: impl Into<String>, n: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(key.into()).or_insert(0) += n;
    }

    fn max(&self, key: &str, value: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let v = map.entry(key.to_string()).or_insert(0);
        *v = (*v).max(value);
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// When each probe of the attacked validator started, and how long it
/// took if it was answered.
type Probes = Arc<Mutex<Vec<(Instant, Option<Duration>)>>>;

/// A block seen by the follower.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    tx_count: u64,
}

/// Validators' process ids, kept current across restarts, and the peak
/// resident memory seen since the last reset.
#[derive(Debug, Default)]
struct Memory {
    pids: Vec<Option<i32>>,
    peak_kib: Vec<u64>,
}

fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The validator whose key the Byzantine attacker holds.
const BYZANTINE: usize = 3;

/// What the attacks need to know about the chain.
#[derive(Debug, Clone)]
struct Target {
    chain_id: u64,
    /// The attacked validator's RPC and QUIC addresses.
    rpc: SocketAddr,
    p2p: SocketAddr,
    /// RPC of the validator honest clients use (the pinning attack sends
    /// there too).
    honest_rpc: SocketAddr,
    hostile: Address,
    phase: Duration,
}

/// A hostile transaction sent, and the status it must end with.
#[derive(Debug, Clone)]
struct Expected {
    what: &'static str,
    hash: Hash,
    status: ExecStatus,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// A runtime for attack tasks whose worker threads run at nice 19, shut
/// down without waiting when dropped (it is dropped inside the suite's own
/// runtime, where blocking is not allowed).
#[derive(Debug)]
struct AttackerRuntime(Option<tokio::runtime::Runtime>);

impl AttackerRuntime {
    fn spawn<F>(&self, future: F) -> Option<tokio::task::JoinHandle<F::Output>>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().map(|rt| rt.spawn(future))
    }
}

impl Drop for AttackerRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn attacker_runtime() -> Result<AttackerRuntime> {
    Ok(AttackerRuntime(Some(low_priority_runtime(
        2,
        "stele-attacker",
    )?)))
}

/// A multi-threaded runtime of `threads` workers named `name` that run at
/// the lowest CPU priority (nice 19): an attacker on the validators' own
/// small machine then gets only the CPU they leave, as if it were another
/// host.
pub fn low_priority_runtime(threads: usize, name: &str) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(2)
        .thread_name(name)
        .on_thread_start(|| {
            let tid = nix::unistd::gettid().to_string();
            // Best effort: without `renice` the attacker competes at the
            // validators' priority (and the results are pessimistic).
            let _ = std::process::Command::new("renice")
                .args(["-n", "19", "-p", &tid])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        })
        .enable_all()
        .build()?)
}

/// Runs the suite and reports every phase. An error means the suite could
/// not run (the cluster did not start, set-up failed); failed checks are
/// in the report.
pub async fn run(config: &SuiteConfig) -> Result<SuiteReport> {
    let mut cluster = Cluster::start(ClusterConfig {
        accounts: 2 + config.honest_senders,
        relays: false,
        // The node's default budget per address (200 tokens a second):
        // enough for the honest client, which sends from 127.0.0.1.
        rpc_rate_per_s: 200,
        loopback_is_one_client: false,
        mempool_bytes_max: Some(config.mempool_bytes_max),
        empty_block_interval_ms: config.empty_block_interval.as_millis() as u64,
        // The node's own view timers: the suite measures what a deployed
        // chain does.
        view_timeout_ms: 2_000,
        view_timeout_max_ms: 60_000,
        log_level: "warn".into(),
        ..ClusterConfig::new(&config.node_bin, 4)
    })
    .await?;
    match run_on(&mut cluster, config).await {
        Ok(report) => Ok(report),
        Err(e) => Err(e.context(cluster.log_tails(30))),
    }
}

async fn run_on(cluster: &mut Cluster, config: &SuiteConfig) -> Result<SuiteReport> {
    let chain_id = cluster.chain_id;
    let honest_node = cluster.client(1);
    let attacker = Arc::new(Signer::new(cluster.accounts[0].key.clone()));
    let funder = Arc::new(Signer::new(cluster.accounts[1].key.clone()));

    // Set-up: the hostile contract with 2 000 keys, the pinners' funds.
    let hostile = {
        let code = wat::parse_str(HOSTILE).context("hostile contract")?;
        let tx = TxBuilder::new(chain_id).nonce(0).gas_limit(300_000_000);
        let (_, raw, _) = attacker.sign(tx.deploy(code, vec![], 0));
        let info = honest_node
            .send_and_wait(&raw, None, Duration::from_secs(30))
            .await?;
        let address = info
            .receipt
            .contract_address
            .context("the hostile contract did not deploy")?;
        let tx = TxBuilder::new(chain_id).nonce(1).gas_limit(100_000_000);
        let (_, raw, _) = attacker.sign(tx.call(address, "fill", vec![], 0));
        let info = honest_node
            .send_and_wait(&raw, None, Duration::from_secs(30))
            .await?;
        ensure!(
            info.receipt.status == ExecStatus::Success,
            "fill: {:?}",
            info.receipt
        );
        address
    };
    let one_node = Arc::new(Endpoints::new(vec![(
        cluster.rpc_addr(1),
        Client::connect(&cluster.rpc_url(1)).await?,
    )]));
    let pinners = if config.attacks.contains(&Attack::MempoolPinning) {
        crate::contracts::fund_accounts(
            &one_node,
            chain_id,
            &[funder],
            config.pinners,
            1_000_000_000_000_000,
        )
        .await?
    } else {
        Vec::new()
    };

    // Honest senders: dev accounts 2.., through validator 1 only.
    let mut senders = Vec::new();
    for account in &cluster.accounts[2..] {
        let signer = Arc::new(Signer::new(account.key.clone()));
        let first_nonce = honest_node.get_account(signer.address()).await?.nonce;
        senders.push(SenderSpec {
            signer,
            first_nonce,
            trades: false,
        });
    }

    // Every block as validator 1 commits it.
    let blocks: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let stop_all = Arc::new(AtomicBool::new(false));
    let follower = {
        let blocks = blocks.clone();
        let stop = stop_all.clone();
        let url = format!("ws://{}", cluster.rpc_addr(1));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(ws) = Client::connect(&url).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let Ok(mut sub) = ws.subscribe_new_blocks().await else {
                    continue;
                };
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
                        Err(_) => continue,
                        Ok(Some(Ok(block))) => blocks
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Seen {
                                at: Instant::now(),
                                tx_count: block.tx_count,
                            }),
                        Ok(_) => break,
                    }
                }
            }
        })
    };

    // Resident memory, sampled.
    let memory = Arc::new(Mutex::new(Memory {
        pids: (0..cluster.len())
            .map(|i| cluster.pid(i).ok().map(|p| p.as_raw()))
            .collect(),
        peak_kib: vec![0; cluster.len()],
    }));
    let sampler = {
        let memory = memory.clone();
        let stop = stop_all.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                {
                    let mut m = memory
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for i in 0..m.pids.len() {
                        if let Some(kib) = m.pids[i].and_then(rss_kib) {
                            m.peak_kib[i] = m.peak_kib[i].max(kib);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // The probe: an honest client of the attacked validator.
    let probes: Probes = Arc::default();
    let prober = {
        let probes = probes.clone();
        let stop = stop_all.clone();
        let rpc = cluster.rpc_addr(0);
        tokio::spawn(async move {
            let body = rawnet::call(1, "get_status", serde_json::json!([])).to_string();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = async {
                    let mut s =
                        rawnet::connect_from(std::net::IpAddr::from([127, 0, 0, 1]), rpc, None)
                            .await?;
                    rawnet::post(&mut s, body.as_bytes(), Duration::from_secs(2)).await
                }
                .await;
                let ok = matches!(&answer, Ok(a) if a.status == 200
                    && rawnet::outcomes(&a.body) == vec![Ok(())]);
                probes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((started, ok.then(|| started.elapsed())));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let load = Load::start(
        LoadConfig {
            window: 8,
            rate_per_s: Some(config.honest_rate),
            swap_share: 0.0,
            token_share: 0.0,
            sticky: true,
            ..LoadConfig::new(chain_id)
        },
        one_node.clone(),
        senders,
        None,
        23_24,
    );
    let attack_rt = attacker_runtime()?;
    let target = Target {
        chain_id,
        rpc: cluster.rpc_addr(0),
        p2p: cluster.p2p_addr(0),
        honest_rpc: cluster.rpc_addr(1),
        hostile,
        phase: config.phase,
    };
    let mut attacker_nonce = 2;
    let mut pinners = Some(pinners);

    let mut phases: Vec<(String, Option<Attack>)> = vec![("baseline".into(), None)];
    phases.extend(
        config
            .attacks
            .iter()
            .map(|a| (a.name().to_string(), Some(*a))),
    );
    phases.push(("baseline_after".into(), None));

    let mut reports: Vec<PhaseReport> = Vec::new();
    // Let the load settle in before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, attack) in phases {
        let view0 = honest_node.get_status().await.map(|s| s.view).unwrap_or(0);
        {
            let mut m = memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            m.peak_kib.iter_mut().for_each(|k| *k = 0);
        }
        let counters = Counters::default();
        let stop = Arc::new(AtomicBool::new(false));
        let refused_before = load.ledger().rejections().len();
        let started = Instant::now();
        let mut task = None;
        match attack {
            Some(Attack::HostileContracts) => {
                let txs = hostile_transactions(&attacker, chain_id, hostile, &mut attacker_nonce)?;
                let target = target.clone();
                let counters = counters.clone();
                task = attack_rt
                    .spawn(async move { hostile_contracts(&target, txs, &counters).await });
            }
            Some(Attack::ValidatorDown) => cluster.stop(BYZANTINE).await?,
            Some(Attack::ByzantineValidator) => {
                cluster.stop(BYZANTINE).await?;
                let home = cluster.root().join("net").join(format!("node{BYZANTINE}"));
                let key = stele_node::keys::load(&home.join("node_key.json"))
                    .map_err(|e| anyhow::anyhow!("validator {BYZANTINE}'s key: {e}"))?;
                let genesis = stele_node::genesis::Genesis::load(&home.join("genesis.json"))?;
                let peers: Vec<stele_node::net::PeerInfo> = (0..cluster.len())
                    .filter(|i| *i != BYZANTINE)
                    .map(|i| stele_node::net::PeerInfo {
                        address: cluster.validators[i],
                        socket: cluster.p2p_addr(i),
                    })
                    .collect();
                let (counters, stop) = (counters.clone(), stop.clone());
                task = attack_rt.spawn(async move {
                    let sent =
                        crate::byzantine::run(key, chain_id, genesis.validators, peers, stop).await;
                    for (k, v) in sent {
                        counters.add(k, v);
                    }
                    Vec::new()
                });
            }
            Some(Attack::MempoolPinning) => {
                let signers = pinners.take().unwrap_or_default();
                let (target, counters, stop) = (target.clone(), counters.clone(), stop.clone());
                task = attack_rt.spawn(async move {
                    mempool_pinning(&target, signers, &counters, &stop).await;
                    Vec::new()
                });
            }
            Some(a) => {
                let (target, counters, stop) = (target.clone(), counters.clone(), stop.clone());
                task = attack_rt.spawn(async move {
                    match a {
                        Attack::UnfundedFlood => unfunded_flood(&target, &counters, &stop).await,
                        Attack::HeavyReads => heavy_reads(&target, &counters, &stop).await,
                        Attack::MalformedRequests => malformed(&target, &counters, &stop).await,
                        Attack::IdleConnections => idle(&target, &counters, &stop).await,
                        Attack::SlowSubscribers => {
                            slow_subscribers(&target, &counters, &stop).await
                        }
                        Attack::HandshakeFlood => handshakes(&target, &counters, &stop).await,
                        Attack::HostileContracts
                        | Attack::MempoolPinning
                        | Attack::ValidatorDown
                        | Attack::ByzantineValidator => {}
                    }
                    Vec::new()
                });
            }
            None => {}
        }
        let mut notes = Vec::new();
        if attack == Some(Attack::HandshakeFlood) {
            // Halfway: the attacked validator restarts into the flood.
            tokio::time::sleep(config.phase / 2).await;
            cluster.kill(0)?;
            cluster.restart(0).await?;
            memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pids[0] = cluster.pid(0).ok().map(|p| p.as_raw());
            let back = Instant::now();
            let rejoined = loop {
                if let Ok(s) = cluster.client(0).get_status().await
                    && s.peers_connected >= 3
                {
                    break Some(back.elapsed());
                }
                if back.elapsed() > config.phase / 2 + Duration::from_secs(10) {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            match rejoined {
                Some(d) => counters.add("restart_to_all_peers_ms", d.as_millis() as u64),
                None => notes.push("the restarted validator did not reach its 3 peers".into()),
            }
            tokio::time::sleep_until((started + config.phase).into()).await;
        } else {
            tokio::time::sleep(config.phase).await;
        }
        stop.store(true, Ordering::Relaxed);
        let ended = Instant::now();
        if let Some(task) = task {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(sent)) => {
                    // Each hostile transaction ends as it must before the
                    // next phase starts (so none spills into it).
                    for e in sent {
                        match honest_node.wait_for_receipt(e.hash, 60_000).await {
                            Ok(info) if info.receipt.status == e.status => {}
                            Ok(info) => notes.push(format!(
                                "{}: {:?}, expected {:?}",
                                e.what, info.receipt.status, e.status
                            )),
                            Err(err) => notes.push(format!("{}: not committed ({err})", e.what)),
                        }
                    }
                }
                Ok(Err(e)) => notes.push(format!("the attack task failed: {e}")),
                Err(_) => notes.push("the attack did not stop within 30 s".into()),
            }
        }
        if matches!(
            attack,
            Some(Attack::ValidatorDown | Attack::ByzantineValidator)
        ) {
            cluster.restart(BYZANTINE).await?;
            memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pids[BYZANTINE] = cluster.pid(BYZANTINE).ok().map(|p| p.as_raw());
            let height = cluster.max_height(&[1]).await?;
            if let Err(e) = cluster
                .wait_height(&[BYZANTINE], height, Duration::from_secs(30))
                .await
            {
                notes.push(format!(
                    "validator {BYZANTINE} did not catch up after the attack: {e}"
                ));
            }
        }
        // Give the phase's honest transfers time to commit.
        let mut honest = wait_honest(load.ledger(), started, ended, Duration::from_secs(30)).await;
        for r in load.ledger().rejections().iter().skip(refused_before) {
            let code = r.code.map_or("transport".to_string(), |c| c.to_string());
            *honest.refused.entry(code).or_insert(0) += 1;
        }
        let view1 = honest_node
            .get_status()
            .await
            .map(|s| s.view)
            .unwrap_or(view0);
        let (blocks_n, empty) = {
            let b = blocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let inside: Vec<&Seen> = b
                .iter()
                .filter(|s| s.at >= started && s.at < ended)
                .collect();
            (
                inside.len() as u64,
                inside.iter().filter(|s| s.tx_count == 0).count() as u64,
            )
        };
        let probe = {
            let p = probes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let inside: Vec<_> = p
                .iter()
                .filter(|(at, _)| *at >= started && *at < ended)
                .collect();
            let mut ok: Vec<Duration> = inside.iter().filter_map(|(_, d)| *d).collect();
            ok.sort();
            Probe {
                ok: ok.len() as u64,
                failed: (inside.len() - ok.len()) as u64,
                p50_ms: percentile(&ok, 0.5),
            }
        };
        let rss_mib_max: Vec<u64> = memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .peak_kib
            .iter()
            .map(|k| k / 1024)
            .collect();
        // The Byzantine validator is judged against validator 3 simply
        // missing, when that phase ran; everything else against the
        // baseline.
        let reference = match attack {
            Some(Attack::ByzantineValidator) => reports
                .iter()
                .find(|r| r.phase == Attack::ValidatorDown.name())
                .or(reports.first()),
            _ => reports.first(),
        };
        let baseline_p50 = reference.map(|r| r.honest.p50_ms);
        let p50_ratio = baseline_p50
            .filter(|b| *b > 0.0 && (attack.is_some() || name == "baseline_after"))
            .map(|b| honest.p50_ms / b);
        let mut failures = notes;
        if honest.committed < honest.sent {
            failures.push(format!(
                "{} of {} honest transfers did not commit",
                honest.sent - honest.committed,
                honest.sent
            ));
        }
        if honest.sent == 0 {
            failures.push("no honest transfer was accepted".into());
        }
        // An idle chain makes a block per empty-block interval; only
        // unselectable transactions waiting must not make more.
        let empty_allowed =
            (ended - started).as_secs_f64() / config.empty_block_interval.as_secs_f64() + 2.0;
        if empty as f64 > empty_allowed {
            failures.push(format!("{empty} empty blocks (at most {empty_allowed:.0})"));
        }
        if let (Some(max), Some(ratio)) = (config.latency_ratio_max, p50_ratio)
            && ratio > max
        {
            failures.push(format!("honest p50 latency {ratio:.2}x the baseline's"));
        }
        for (i, mib) in rss_mib_max.iter().enumerate() {
            if *mib > config.rss_mib_max {
                failures.push(format!("validator {i} resident memory {mib} MiB"));
            }
        }
        for i in 0..cluster.len() {
            if !cluster.is_running(i) {
                failures.push(format!("validator {i} stopped"));
            }
        }
        reports.push(PhaseReport {
            phase: name,
            seconds: (ended - started).as_secs_f64(),
            honest,
            p50_ratio,
            blocks: blocks_n,
            empty_blocks: empty,
            view_changes: view1.saturating_sub(view0),
            rss_mib_max,
            probe,
            attack: counters.take(),
            failures,
        });
    }

    let mut failures = Vec::new();
    let load_report = load.finish(Duration::from_secs(30)).await?;
    if load_report.uncommitted > 0 {
        failures.push(format!(
            "{} honest transfers never committed",
            load_report.uncommitted
        ));
    }
    // Every validator on one chain at the end.
    let all: Vec<usize> = (0..cluster.len()).collect();
    if let Ok(height) = cluster.max_height(&all).await
        && let Err(e) = cluster
            .wait_height(&all, height, Duration::from_secs(30))
            .await
    {
        failures.push(format!("validators did not converge: {e}"));
    }
    stop_all.store(true, Ordering::Relaxed);
    for t in [follower, sampler, prober] {
        t.abort();
    }
    drop(attack_rt);
    Ok(SuiteReport {
        phases: reports,
        honest_uncommitted: load_report.uncommitted,
        failures,
    })
}

/// Waits until every honest transfer accepted in `[from, to)` committed,
/// at most `timeout`, and measures them.
async fn wait_honest(
    ledger: &crate::load::Ledger,
    from: Instant,
    to: Instant,
    timeout: Duration,
) -> Honest {
    let deadline = Instant::now() + timeout;
    loop {
        let txs = ledger.txs();
        let inside: Vec<_> = txs
            .values()
            .filter(|r| r.accepted_at.is_some_and(|a| a >= from && a < to))
            .collect();
        let committed = inside.iter().filter(|r| r.committed.is_some()).count();
        if committed == inside.len() || Instant::now() > deadline {
            let mut latencies: Vec<Duration> = inside
                .iter()
                .filter_map(|r| match (r.accepted_at, r.committed) {
                    (Some(a), Some((c, _))) => Some(c.saturating_duration_since(a)),
                    _ => None,
                })
                .collect();
            latencies.sort();
            return Honest {
                sent: inside.len(),
                committed,
                refused: BTreeMap::new(),
                p50_ms: percentile(&latencies, 0.5),
                p90_ms: percentile(&latencies, 0.9),
                p99_ms: percentile(&latencies, 0.99),
                max_ms: percentile(&latencies, 1.0),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// The attacks. Each runs until `stop` (or, for hostile contracts, until it
// sent everything) and counts what it did and how the node answered.

/// Issue 23's classes as signed transactions, with the status each must
/// end with on every validator.
fn hostile_transactions(
    attacker: &Signer,
    chain_id: u64,
    hostile: Address,
    nonce: &mut u64,
) -> Result<Vec<(&'static str, Vec<u8>, ExecStatus)>> {
    use ExecStatus::*;
    let mut txs = Vec::new();
    for (what, code) in [
        ("segment_bomb", SEGMENT_BOMB.to_string()),
        ("compile_bomb", compile_bomb(2_000)),
    ] {
        let code = wat::parse_str(code).context(what)?;
        let tx = TxBuilder::new(chain_id)
            .nonce(*nonce)
            .gas_limit(300_000_000)
            .deploy(code, vec![], 0);
        txs.push((what, attacker.sign(tx).1, Failed));
        *nonce += 1;
    }
    for (method, status) in [
        ("wipe_and_scan", OutOfGas),
        ("grow", Success),
        ("events", Trapped),
        ("chase", OutOfGas),
        ("wipe", Success),
        ("scan_each", OutOfGas),
        ("floats", OutOfGas),
        ("fill", Success),
    ] {
        let tx = TxBuilder::new(chain_id)
            .nonce(*nonce)
            .gas_limit(100_000_000)
            .call(hostile, method, vec![], 0);
        txs.push((method, attacker.sign(tx).1, status));
        *nonce += 1;
    }
    Ok(txs)
}

async fn hostile_contracts(
    target: &Target,
    txs: Vec<(&'static str, Vec<u8>, ExecStatus)>,
    counters: &Counters,
) -> Vec<Expected> {
    let Ok(client) = Client::connect(&format!("http://{}", target.rpc)).await else {
        counters.add("connect_failed", 1);
        return Vec::new();
    };
    let gap = target.phase / (txs.len() as u32 + 1);
    let mut sent = Vec::new();
    for (what, raw, status) in txs {
        tokio::time::sleep(gap).await;
        match client.send_transaction(&raw).await {
            Ok(hash) => {
                counters.add("sent", 1);
                sent.push(Expected { what, hash, status });
            }
            Err(e) => counters.add(format!("refused_{}", e.code().unwrap_or(-1)), 1),
        }
    }
    sent
}

/// Returns once `stop` is set.
async fn until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Once `stop` is set, tells an attack's `tasks` to stop (`stop_flag`)
/// and waits for each at most `within`.
async fn stop_when(
    stop: &AtomicBool,
    stop_flag: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    within: Duration,
) {
    until(stop).await;
    stop_flag.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(within, t).await;
    }
}

/// One JSON-RPC POST from `source`, counted by outcome; the connection is
/// kept for the next call when the node keeps it. The calls' outcomes, or
/// `None` if the node answered no JSON-RPC.
async fn post_counted(
    conn: &mut Option<tokio::net::TcpStream>,
    source: std::net::IpAddr,
    to: SocketAddr,
    body: &[u8],
    counters: &Counters,
) -> Option<Vec<Result<(), i64>>> {
    if conn.is_none() {
        match rawnet::connect_from(source, to, None).await {
            Ok(s) => *conn = Some(s),
            Err(_) => {
                counters.add("connect_failed", 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                return None;
            }
        }
    }
    let stream = conn.as_mut()?;
    match rawnet::post(stream, body, Duration::from_secs(10)).await {
        Ok(answer) => {
            if answer.close {
                *conn = None;
            }
            if answer.status != 200 {
                counters.add(format!("http_{}", answer.status), 1);
                return None;
            }
            let outcomes = rawnet::outcomes(&answer.body);
            for outcome in &outcomes {
                match outcome {
                    Ok(()) => counters.add("ok", 1),
                    Err(code) => counters.add(format!("error_{code}"), 1),
                }
            }
            Some(outcomes)
        }
        Err(_) => {
            counters.add("closed_or_timed_out", 1);
            *conn = None;
            None
        }
    }
}

async fn mempool_pinning(
    target: &Target,
    pinners: Vec<Arc<Signer>>,
    counters: &Counters,
    stop: &AtomicBool,
) {
    let mut tasks = Vec::new();
    for (i, signer) in pinners.into_iter().enumerate() {
        let target = target.clone();
        let counters = counters.clone();
        let source = source_ip(Attack::MempoolPinning.ip_block(), i);
        // Half at the attacked validator, half at the honest clients' one.
        let to = if i % 2 == 0 {
            target.rpc
        } else {
            target.honest_rpc
        };
        tasks.push(tokio::spawn(async move {
            // Nonce 0 never sent: every transaction waits behind it.
            let mut conn = None;
            let mut refusals = 0;
            for nonce in 1..=64u64 {
                // The most call arguments a transaction may carry.
                let args = vec![0x5a; (128 << 10) - 64];
                let tx = TxBuilder::new(target.chain_id)
                    .nonce(nonce)
                    .gas_limit(2_200_000)
                    .gas_price(10)
                    .call(target.hostile, "fill", args, 0);
                let raw = signer.sign(tx).1;
                let body = rawnet::call(
                    nonce,
                    "send_transaction",
                    serde_json::json!([format!("0x{}", hex::encode(&raw))]),
                )
                .to_string();
                let outcome = post_counted(&mut conn, source, to, body.as_bytes(), &counters).await;
                if outcome == Some(vec![Ok(())]) {
                    counters.add("bytes_accepted", raw.len() as u64);
                } else {
                    refusals += 1;
                    if refusals >= 2 {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The pool stays pinned for the rest of the phase.
    until(stop).await;
}

async fn unfunded_flood(target: &Target, counters: &Counters, stop: &AtomicBool) {
    // Pre-signed: 2 048 transfers from 2 048 accounts that hold nothing.
    let raws: Arc<Vec<String>> = Arc::new(
        (0..2_048)
            .map(|_| {
                let signer = Signer::new(SecretKey::generate());
                let tx = TxBuilder::new(target.chain_id)
                    .nonce(0)
                    .gas_limit(100_000)
                    .transfer(signer.address(), 1);
                format!("0x{}", hex::encode(signer.sign(tx).1))
            })
            .collect(),
    );
    flood(
        target,
        counters,
        stop,
        Attack::UnfundedFlood,
        16,
        move |i| {
            let batch: Vec<serde_json::Value> = (0..32)
                .map(|k| {
                    let raw = &raws[(i * 32 + k) % raws.len()];
                    rawnet::call(k as u64, "send_transaction", serde_json::json!([raw]))
                })
                .collect();
            serde_json::Value::Array(batch).to_string().into_bytes()
        },
    )
    .await;
}

async fn heavy_reads(target: &Target, counters: &Counters, stop: &AtomicBool) {
    let hostile = target.hostile;
    flood(target, counters, stop, Attack::HeavyReads, 16, move |i| {
        let batch: Vec<serde_json::Value> = (0..32u64)
            .map(|k| match (i as u64 + k) % 4 {
                0 | 1 => rawnet::call(
                    k,
                    "get_events",
                    serde_json::json!([EventFilter::default(), 1, null, 1000, null]),
                ),
                2 => rawnet::call(
                    k,
                    "get_block",
                    serde_json::json!([BlockId::Height(1), null]),
                ),
                _ => rawnet::call(
                    k,
                    "list_storage",
                    serde_json::json!([hostile, "0x", null, 256]),
                ),
            })
            .collect();
        serde_json::Value::Array(batch).to_string().into_bytes()
    })
    .await;
}

/// `per_ip` connections from each of 16 addresses, sending `body(i)` in a
/// loop until `stop`.
async fn flood(
    target: &Target,
    counters: &Counters,
    stop: &AtomicBool,
    attack: Attack,
    ips: usize,
    body: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) {
    let body = Arc::new(body);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..ips * 2 {
        let (body, counters, stop_flag) = (body.clone(), counters.clone(), stop_flag.clone());
        let source = source_ip(attack.ip_block(), c / 2);
        let to = target.rpc;
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut i = c;
            while !stop_flag.load(Ordering::Relaxed) {
                post_counted(&mut conn, source, to, &body(i), &counters).await;
                i += ips * 2;
            }
        }));
    }
    stop_when(stop, &stop_flag, tasks, Duration::from_secs(12)).await;
}

async fn malformed(target: &Target, counters: &Counters, stop: &AtomicBool) {
    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..32usize {
        let (counters, stop_flag) = (counters.clone(), stop_flag.clone());
        let source = source_ip(Attack::MalformedRequests.ip_block(), c / 2);
        let to = target.rpc;
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut i = c;
            while !stop_flag.load(Ordering::Relaxed) {
                i += 1;
                match i % 4 {
                    0 => {
                        let body = br#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":["#;
                        post_counted(&mut conn, source, to, body, &counters).await;
                    }
                    1 => {
                        let body: Vec<u8> = (0..4096u32).map(|b| (b * 131 % 251) as u8).collect();
                        post_counted(&mut conn, source, to, &body, &counters).await;
                    }
                    2 => {
                        // Over the 2 MiB body limit.
                        let body = vec![b' '; 3 << 20];
                        post_counted(&mut conn, source, to, &body, &counters).await;
                    }
                    _ => {
                        // A head promising 1 MiB, 10 bytes of it, then gone.
                        conn = None;
                        if let Ok(mut s) = rawnet::connect_from(source, to, None).await {
                            let mut head = rawnet::post_head(1 << 20).into_bytes();
                            head.extend_from_slice(b"{\"jsonrpc\"");
                            let _ = s.write_all(&head).await;
                            counters.add("abandoned_bodies", 1);
                        }
                    }
                }
            }
        }));
    }
    stop_when(stop, &stop_flag, tasks, Duration::from_secs(12)).await;
}

/// Holds connections that the node must close (or never accept), each
/// reopened as soon as it is gone. `open` makes one ready to hold, or says
/// how the node refused it.
async fn hold_connections<F, Fut>(
    count: usize,
    per_ip: usize,
    attack: Attack,
    counters: &Counters,
    stop: &AtomicBool,
    open: F,
) where
    F: Fn(std::net::IpAddr, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<tokio::net::TcpStream, String>> + Send,
{
    use tokio::io::AsyncReadExt;
    let open = Arc::new(open);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let held = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..count {
        let (open, counters, stop_flag, held) = (
            open.clone(),
            counters.clone(),
            stop_flag.clone(),
            held.clone(),
        );
        let source = source_ip(attack.ip_block(), c / per_ip);
        tasks.push(tokio::spawn(async move {
            while !stop_flag.load(Ordering::Relaxed) {
                match open(source, c).await {
                    Ok(mut stream) => {
                        counters.add("opened", 1);
                        let now = held.fetch_add(1, Ordering::Relaxed) + 1;
                        counters.max("held_max", now);
                        // Hold until the node closes it or the phase ends.
                        let mut byte = [0u8; 1];
                        loop {
                            if stop_flag.load(Ordering::Relaxed) {
                                break;
                            }
                            match tokio::time::timeout(
                                Duration::from_millis(200),
                                stream.read(&mut byte),
                            )
                            .await
                            {
                                Err(_) => continue,
                                Ok(Ok(0)) | Ok(Err(_)) => {
                                    counters.add("closed_by_node", 1);
                                    break;
                                }
                                // Something written to a connection that
                                // reads nothing back (pings, answers).
                                Ok(Ok(_)) => {}
                            }
                        }
                        held.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(why) => {
                        counters.add(why, 1);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    stop_when(stop, &stop_flag, tasks, Duration::from_secs(5)).await;
}

async fn idle(target: &Target, counters: &Counters, stop: &AtomicBool) {
    let to = target.rpc;
    // 1 000 connections from 40 addresses; half send nothing, half half a
    // request head.
    hold_connections(
        1_000,
        25,
        Attack::IdleConnections,
        counters,
        stop,
        move |source, c| async move {
            let mut s = rawnet::connect_from(source, to, None)
                .await
                .map_err(|_| "connect_failed".to_string())?;
            if c % 2 == 1 {
                s.write_all(b"POST / HTTP/1.1\r\nHost: stele\r\n")
                    .await
                    .map_err(|_| "write_failed".to_string())?;
            }
            Ok(s)
        },
    )
    .await;
}

async fn slow_subscribers(target: &Target, counters: &Counters, stop: &AtomicBool) {
    let to = target.rpc;
    // 512 WebSockets from 32 addresses, 8 subscriptions each, never read.
    hold_connections(
        512,
        16,
        Attack::SlowSubscribers,
        counters,
        stop,
        move |source, _| async move {
            let mut s = rawnet::connect_from(source, to, Some(4096))
                .await
                .map_err(|_| "connect_failed".to_string())?;
            match rawnet::websocket_upgrade(&mut s).await {
                Ok(Ok(())) => {}
                Ok(Err(status)) => return Err(format!("upgrade_refused_{status}")),
                Err(_) => return Err("upgrade_failed".to_string()),
            }
            for k in 0..8u64 {
                let call = if k % 2 == 0 {
                    rawnet::call(k, "subscribe_new_blocks", serde_json::json!([]))
                } else {
                    rawnet::call(
                        k,
                        "subscribe_events",
                        serde_json::json!([EventFilter::default()]),
                    )
                };
                s.write_all(&rawnet::ws_text_frame(call.to_string().as_bytes()))
                    .await
                    .map_err(|_| "write_failed".to_string())?;
            }
            Ok(s)
        },
    )
    .await;
}

async fn handshakes(target: &Target, counters: &Counters, stop: &AtomicBool) {
    let Ok(client_config) = stele_node::net::testing::client_config() else {
        counters.add("no_client_config", 1);
        return;
    };
    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // 32 addresses, 4 attempts in flight from each.
    for c in 0..128usize {
        let (counters, stop_flag, client_config) =
            (counters.clone(), stop_flag.clone(), client_config.clone());
        let source = source_ip(Attack::HandshakeFlood.ip_block(), c / 4);
        let to = target.p2p;
        tasks.push(tokio::spawn(async move {
            let Ok(endpoint) = quinn::Endpoint::client(SocketAddr::new(source, 0)) else {
                counters.add("no_endpoint", 1);
                return;
            };
            while !stop_flag.load(Ordering::Relaxed) {
                let connecting =
                    match endpoint.connect_with(client_config.clone(), to, "stele-validator") {
                        Ok(c) => c,
                        Err(_) => {
                            counters.add("connect_error", 1);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                match tokio::time::timeout(Duration::from_secs(5), connecting).await {
                    Ok(Ok(conn)) => {
                        counters.add("tls_completed", 1);
                        // Never prove a key: hold it until the node drops it.
                        tokio::select! {
                            _ = conn.closed() => counters.add("closed_by_node", 1),
                            _ = async {
                                while !stop_flag.load(Ordering::Relaxed) {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            } => {}
                        }
                    }
                    Ok(Err(_)) => counters.add("refused", 1),
                    Err(_) => counters.add("timed_out", 1),
                }
            }
            endpoint.close(0u32.into(), b"");
        }));
    }
    stop_when(stop, &stop_flag, tasks, Duration::from_secs(6)).await;
}

/// Checks a configuration before a long run.
pub fn check(config: &SuiteConfig) -> Result<()> {
    if config.phase < Duration::from_secs(2) {
        bail!("a phase must last at least 2 s");
    }
    ensure!(config.honest_senders > 0, "at least one honest sender");
    ensure!(config.honest_rate > 0.0, "a positive honest rate");
    Ok(())
}
