//! The load benchmark: pre-funded accounts send pre-signed token transfers
//! to a cluster at a fixed offered rate or flat out; the report gives the
//! committed transactions per second, the submission-to-commit latency, and
//! this machine's signature-verification ceiling measured in the same run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde::Serialize;
use stele_client::{Client, Signer};
use stele_types::SecretKey;

use crate::cluster::{Cluster, ClusterConfig, Endpoints};
use crate::contracts::{fund_accounts, setup_amm};
use crate::load::{Load, LoadConfig, SenderSpec};
use crate::node_stats::{self, NodeStages};

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start a local cluster of `validators` from this `stele-node` binary.
    Local {
        node_bin: PathBuf,
        validators: usize,
        /// The validators' `consensus.block_interval_ms`; `None` leaves
        /// the node's default.
        block_interval_ms: Option<u64>,
        /// The validators' `consensus.pipeline_blocks`.
        pipeline_blocks: u64,
        /// Full nodes beside the validators (ADR 0009). The load's writes
        /// go to the validators either way; reads go to the full nodes.
        full_nodes: usize,
        /// [`ClusterConfig::validator_cpus`], [`ClusterConfig::full_node_cpus`].
        validator_cpus: Option<String>,
        full_node_cpus: Option<String>,
    },
    /// A running cluster's RPC addresses, and the funded keys (an
    /// `accounts.json` as `stele-node testnet` writes it) to pay from.
    Remote {
        rpc: Vec<SocketAddr>,
        accounts_file: PathBuf,
    },
}

/// What the senders send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Native-token transfers (no contract).
    Native,
    /// `transfer` calls of the token contract.
    Token,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Native => "native transfers",
            Workload::Token => "token contract transfers",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub target: Target,
    pub workload: Workload,
    /// Fresh accounts funded before the run, each a sender.
    pub senders: usize,
    pub txs_per_sender: u64,
    /// Transactions in flight per sender (at most 64).
    pub window: u64,
    /// Offered rate over all senders; `None` is flat out.
    pub rate_per_s: Option<f64>,
    /// How long the ceiling measurement runs.
    pub verify_measure: Duration,
    /// Concurrent readers flooding the full nodes (the validators if there
    /// are none) with views, event queries, block reads and a block
    /// subscription each, for the whole load (a local cluster only).
    pub read_flood: usize,
    /// The readers go through HAProxy (`docs/haproxy.cfg`) in front of the
    /// full nodes.
    pub reads_via_balancer: bool,
    /// Whether the readers make views only, instead of a dApp's mix.
    pub views_only: bool,
    /// Gas limit of each token transfer instead of the estimate's
    /// (`Amm::transfer_gas`).
    pub token_gas_limit: Option<u64>,
}

/// Percentiles of the submission-to-commit latency, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The machine's signature ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub cores: usize,
    /// k256 ECDSA verifications (prehashed, known key) per second on one
    /// core.
    pub k256_verify_per_s_per_core: f64,
    /// Transaction signature checks as the node does them (encoding,
    /// Keccak-256, public key recovery) per second on one core.
    pub tx_recover_per_s_per_core: f64,
}

/// The JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: &'static str,
    pub validators: usize,
    pub senders: usize,
    /// The gas limit of each token transfer (`--workload token`).
    pub token_transfer_gas: Option<u64>,
    pub txs_sent: usize,
    pub txs_committed: usize,
    pub rejections: usize,
    /// Rejections by JSON-RPC error code (`transport` for failed calls).
    pub rejections_by_code: std::collections::BTreeMap<String, usize>,
    /// Transactions sent again because their sender's nonce stalled.
    pub resends: u64,
    pub offered_tx_per_s: Option<f64>,
    pub committed_tx_per_s: f64,
    /// From the first submission to the last commit seen.
    pub duration_s: f64,
    /// Blocks holding the load's transactions, and their mean size.
    pub blocks: usize,
    pub txs_per_block_mean: f64,
    pub latency: Latency,
    /// The ceiling measured before the load...
    pub machine: Ceiling,
    /// ...and again after it: a shared VM's speed can drift within a run,
    /// so the two show how steady it was.
    pub machine_after: Ceiling,
    /// `cores x k256 verify/s / validators`, with the mean of the two
    /// measurements: every validator checks every signature, and they
    /// share the cores.
    pub ceiling_tx_per_s: f64,
    /// `committed_tx_per_s / ceiling_tx_per_s`.
    pub ratio: f64,
    /// Each validator's block stages and CPU time during the load (a local
    /// cluster only).
    pub nodes: Vec<NodeStages>,
    pub full_nodes: usize,
    /// The read flood, if one ran.
    pub reads: Option<crate::reads::ReadsReport>,
    /// How much later full nodes got each block than validator 0 (their
    /// new-block subscriptions), over the load.
    pub full_node_lag: Option<Latency>,
}

/// Measures the verification ceiling on one thread.
pub fn measure_ceiling(run_for: Duration) -> Result<Ceiling> {
    use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use k256::ecdsa::{Signature, SigningKey};

    let sk = SigningKey::from_slice(&[7u8; 32]).map_err(|e| anyhow!("{e}"))?;
    let vk = *sk.verifying_key();
    let digest = stele_types::keccak256(b"stele bench").0;
    let sig: Signature = sk.sign_prehash(&digest).map_err(|e| anyhow!("{e}"))?;
    let start = Instant::now();
    let mut verified = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..64 {
            vk.verify_prehash(&digest, &sig)
                .map_err(|e| anyhow!("verify: {e}"))?;
        }
        verified += 64;
    }
    let verify_rate = verified as f64 / start.elapsed().as_secs_f64();

    let key = SecretKey::from_bytes(&[9u8; 32]).map_err(|e| anyhow!("{e}"))?;
    let signer = Signer::new(key);
    let tx = stele_client::TxBuilder::new(1)
        .gas_limit(100_000)
        .transfer(signer.address(), 1);
    let (signed, _, _) = signer.sign(tx);
    let start = Instant::now();
    let mut recovered = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..64 {
            signed.verify(1).map_err(|e| anyhow!("verify: {e}"))?;
        }
        recovered += 64;
    }
    let recover_rate = recovered as f64 / start.elapsed().as_secs_f64();
    Ok(Ceiling {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        k256_verify_per_s_per_core: verify_rate,
        tx_recover_per_s_per_core: recover_rate,
    })
}

/// The percentiles of `sorted` durations.
pub fn latency_of(sorted: &[Duration]) -> Latency {
    Latency {
        p50_ms: percentile(sorted, 0.50),
        p90_ms: percentile(sorted, 0.90),
        p99_ms: percentile(sorted, 0.99),
        max_ms: percentile(sorted, 1.0),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs the benchmark.
pub async fn run(config: &BenchConfig) -> Result<BenchReport> {
    ensure!(
        (1..=64).contains(&config.window),
        "--window must be in 1..=64"
    );
    let machine = measure_ceiling(config.verify_measure)?;
    // A local cluster lives until the end of this function.
    let mut _cluster = None;
    // Metrics address and process of each local validator.
    let mut watched: Vec<(SocketAddr, Option<nix::unistd::Pid>)> = Vec::new();
    // Where reads go, and validator 0 and the full nodes for the lag probe.
    let mut read_targets: Vec<SocketAddr> = Vec::new();
    let mut probe: Option<(SocketAddr, Vec<SocketAddr>)> = None;
    let mut full_node_count = 0;
    let (endpoints, funders, validators) = match &config.target {
        Target::Local {
            node_bin,
            validators,
            block_interval_ms,
            pipeline_blocks,
            full_nodes,
            validator_cpus,
            full_node_cpus,
        } => {
            let mut c = ClusterConfig::new(node_bin, *validators);
            c.full_nodes = *full_nodes;
            c.validator_cpus = validator_cpus.clone();
            c.full_node_cpus = full_node_cpus.clone();
            full_node_count = *full_nodes;
            c.block_interval_ms = *block_interval_ms;
            c.pipeline_blocks = *pipeline_blocks;
            c.relays = false;
            c.metrics = true;
            c.log_level = "warn".into();
            // For a look at the nodes' logs after a run.
            c.keep_dir = std::env::var_os("STELE_BENCH_KEEP").is_some();
            c.view_timeout_ms = 2_000;
            c.view_timeout_max_ms = 60_000;
            c.empty_block_interval_ms = 500;
            c.accounts = 8;
            let keep = c.keep_dir;
            let cluster = Cluster::start(c).await?;
            if keep {
                eprintln!("cluster folder kept: {}", cluster.root().display());
            }
            let all: Vec<usize> = (0..cluster.len()).collect();
            cluster
                .wait_height(&all, 1, Duration::from_secs(60))
                .await?;
            let funders: Vec<Arc<Signer>> = cluster
                .accounts
                .iter()
                .map(|a| Arc::new(Signer::new(a.key.clone())))
                .collect();
            // Writes go to the validators, as before full nodes existed,
            // so runs with and without them compare.
            let mut writers = Vec::with_capacity(*validators);
            for i in 0..*validators {
                let addr = cluster.rpc_addr(i);
                let client = Client::connect(&format!("http://{addr}"))
                    .await
                    .map_err(|e| anyhow!("{addr}: {e}"))?;
                writers.push((addr, client));
            }
            let e = Arc::new(Endpoints::new(writers));
            watched = (0..*validators)
                .filter_map(|i| Some((cluster.metrics_addr(i)?, cluster.pid(i).ok())))
                .collect();
            let fulls: Vec<SocketAddr> = (0..*full_nodes)
                .map(|j| cluster.rpc_addr(cluster.full_node(j)))
                .collect();
            read_targets = if fulls.is_empty() {
                (0..*validators).map(|i| cluster.rpc_addr(i)).collect()
            } else {
                fulls.clone()
            };
            if !fulls.is_empty() {
                probe = Some((cluster.rpc_addr(0), fulls));
            }
            _cluster = Some(cluster);
            (e, funders, *validators)
        }
        Target::Remote { rpc, accounts_file } => {
            let mut nodes = Vec::new();
            for a in rpc {
                let c = Client::connect(&format!("http://{a}"))
                    .await
                    .map_err(|e| anyhow!("{a}: {e}"))?;
                nodes.push((*a, c));
            }
            let text = std::fs::read_to_string(accounts_file)
                .with_context(|| accounts_file.display().to_string())?;
            let json: Vec<serde_json::Value> = serde_json::from_str(&text)?;
            let funders = json
                .iter()
                .map(|a| -> Result<Arc<Signer>> {
                    let s = a["secret_key"].as_str().context("no secret_key")?;
                    Ok(Arc::new(
                        Signer::from_hex(s).map_err(|e| anyhow!("bad key: {e}"))?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let n = nodes.len();
            (Arc::new(Endpoints::new(nodes)), funders, n)
        }
    };
    let first = endpoints.client(0).context("no node")?;
    let chain_id = first
        .get_status()
        .await
        .map_err(|e| anyhow!("status: {e}"))?
        .chain_id;
    let senders = fund_accounts(
        &endpoints,
        chain_id,
        &funders,
        config.senders,
        10u128.pow(21),
    )
    .await?;
    let token = config.workload == Workload::Token;
    let amm = if token {
        let owner = funders.first().context("no funded account")?.clone();
        let mut amm = setup_amm(&endpoints, chain_id, owner, &senders).await?;
        if let Some(gas) = config.token_gas_limit {
            amm.transfer_gas = gas;
        }
        Some(Arc::new(amm))
    } else {
        None
    };
    let token_transfer_gas = amm.as_ref().map(|a| a.transfer_gas);
    let specs: Vec<SenderSpec> = senders
        .iter()
        .map(|s| SenderSpec {
            signer: s.clone(),
            // Token senders approved the pool twice during the set-up.
            first_nonce: if token { 2 } else { 0 },
            trades: token,
        })
        .collect();
    let mut load_config = LoadConfig::new(chain_id);
    load_config.window = config.window;
    load_config.rate_per_s = config.rate_per_s;
    load_config.swap_share = 0.0;
    load_config.token_share = if token { 1.0 } else { 0.0 };
    load_config.presign = Some(config.txs_per_sender);
    load_config.sticky = true;
    // Nothing is lost in a healthy cluster; a flat-out run queues for
    // seconds, and resending then would only add load.
    load_config.stall = Duration::from_secs(120);
    // The balancer lives until the end of the run.
    let mut _balancer = None;
    let flood = if config.read_flood > 0 && !read_targets.is_empty() {
        let targets: Vec<String> = if config.reads_via_balancer {
            let lb = crate::haproxy::Haproxy::start(
                crate::haproxy::Mode::Http,
                &read_targets,
                std::net::IpAddr::from([127, 0, 0, 9]),
            )
            .await?;
            for i in 0..read_targets.len() {
                lb.wait_status("stele_http", i, "UP", Duration::from_secs(30))
                    .await?;
            }
            let addr = lb.addr().to_string();
            _balancer = Some(lb);
            vec![addr]
        } else {
            read_targets.iter().map(ToString::to_string).collect()
        };
        let view = amm.as_ref().map(|a| crate::reads::View {
            contract: a.token_a,
            method: "balance_of".into(),
            args: a.balance_of_args(a.pool).unwrap_or_default(),
        });
        Some(
            crate::reads::ReadFlood::start(targets, config.read_flood, view, config.views_only)
                .await?,
        )
    } else {
        None
    };
    let lag = match &probe {
        Some((reference, fulls)) => Some(
            crate::reads::LagProbe::start(
                reference.to_string(),
                fulls.iter().map(ToString::to_string).collect(),
            )
            .await?,
        ),
        None => None,
    };
    let stats_before = watch(&watched).await;
    let load = Load::start(load_config, endpoints, specs, amm, 42);
    let ledger = load.ledger().clone();
    let report = load.join(Duration::from_secs(600)).await?;
    let stats_after = watch(&watched).await;
    let reads = match flood {
        Some(f) => Some(f.stop().await),
        None => None,
    };
    let full_node_lag = match lag {
        Some(p) => p.stop().await,
        None => None,
    };
    let nodes: Vec<NodeStages> = stats_before
        .iter()
        .zip(&stats_after)
        .enumerate()
        .map(|(i, (a, b))| node_stats::between(i, a, b))
        .collect();
    // Read straight from the validators: their CPU time is what the reads
    // (and the load beside them) cost.
    let reads = reads.map(|mut r| {
        let share: Option<f64> = nodes.iter().map(|n| n.cpu_share_of_core).sum();
        if full_node_count == 0 && !config.reads_via_balancer {
            r.targets_cpu_share = share;
            r.calls_per_core = share.filter(|s| *s > 0.0).map(|s| r.calls_per_s / s);
        }
        r
    });
    let machine_after = measure_ceiling(config.verify_measure)?;
    let txs = ledger.txs();
    let first_sent = txs.values().filter_map(|r| r.accepted_at).min();
    let last_commit = txs.values().filter_map(|r| r.committed.map(|c| c.0)).max();
    let duration = match (first_sent, last_commit) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let committed = txs.values().filter(|r| r.committed.is_some()).count();
    let heights: std::collections::BTreeSet<u64> = txs
        .values()
        .filter_map(|r| r.committed.map(|c| c.1))
        .collect();
    let mut lat = ledger.latencies();
    lat.sort();
    let tps = if duration.is_zero() {
        0.0
    } else {
        committed as f64 / duration.as_secs_f64()
    };
    let verify_per_s =
        (machine.k256_verify_per_s_per_core + machine_after.k256_verify_per_s_per_core) / 2.0;
    let ceiling = machine.cores as f64 * verify_per_s / validators as f64;
    Ok(BenchReport {
        workload: config.workload.name(),
        validators,
        senders: config.senders,
        token_transfer_gas,
        txs_sent: report.accepted,
        txs_committed: committed,
        rejections: report.rejections,
        rejections_by_code: report.rejections_by_code.clone(),
        resends: report.resends,
        offered_tx_per_s: config.rate_per_s,
        committed_tx_per_s: tps,
        duration_s: duration.as_secs_f64(),
        blocks: heights.len(),
        txs_per_block_mean: committed as f64 / heights.len().max(1) as f64,
        latency: latency_of(&lat),
        ceiling_tx_per_s: ceiling,
        ratio: if ceiling > 0.0 { tps / ceiling } else { 0.0 },
        machine,
        machine_after,
        nodes,
        full_nodes: full_node_count,
        reads,
        full_node_lag,
    })
}

/// Snapshots of the watched nodes; none (and a warning) if one cannot be
/// read, since the load's figures stand without them.
async fn watch(nodes: &[(SocketAddr, Option<nix::unistd::Pid>)]) -> Vec<node_stats::Snapshot> {
    if nodes.is_empty() {
        return Vec::new();
    }
    match node_stats::snapshot_all(nodes).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: no node stages in the report: {e:#}");
            Vec::new()
        }
    }
}
