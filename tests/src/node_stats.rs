//! Where a validator's time goes during a benchmark: the means of its block
//! histograms (from its Prometheus endpoint) and its process's CPU time
//! per committed block, between two snapshots.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest metrics page read (a node's is a few tens of KB).
const PAGE_BYTES_MAX: u64 = 4 << 20;

/// The block histograms reported, by their name without `stele_` and
/// `_seconds`.
const STAGES: [&str; 5] = [
    "commit_latency",
    "execution",
    "storage_commit",
    "wal_sync",
    "block_interval",
];

/// Stages whose observations over [`SLOW_SECONDS`] are counted (the block
/// stages and pruning, which runs on the driver's path).
const SLOW_STAGES: [&str; 6] = [
    "commit_latency",
    "execution",
    "storage_commit",
    "wal_sync",
    "block_interval",
    "prune",
];

/// A bucket bound of the node's histograms (0.5 ms doubling): what counts
/// as a slow block stage, a gap a client notices.
const SLOW_SECONDS: &str = "0.016";

/// The counters reported, as exported (labels included), by a short name:
/// transactions committed, consensus signatures checked, and consensus
/// messages received and sent (every vote goes to every validator, so
/// these grow with the square of the validator count network-wide).
const COUNTERS: [(&str, &str); 4] = [
    ("txs", "stele_txs_committed_total"),
    ("signatures", "stele_consensus_signatures_verified"),
    ("consensus_in", "stele_messages_in{channel=\"consensus\"}"),
    ("consensus_out", "stele_messages_out{channel=\"consensus\"}"),
];

/// One validator's counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    /// `stele_<stage>_seconds` sum and count, for each of [`STAGES`].
    histograms: BTreeMap<&'static str, (f64, f64)>,
    /// Each of [`COUNTERS`] present, by its short name.
    counters: BTreeMap<&'static str, f64>,
    /// Observations over [`SLOW_SECONDS`] so far, by stage.
    slow: BTreeMap<&'static str, f64>,
    /// User plus system CPU time of the process.
    cpu: Option<Duration>,
}

/// Means per block between two snapshots of one validator.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStages {
    pub node: usize,
    /// Blocks this node committed in between.
    pub blocks: u64,
    /// Mean milliseconds per block: proposal or validation to commit, of
    /// which execution, the storage commit and the synced consensus-log
    /// write; and the time between blocks.
    pub commit_latency_ms: f64,
    pub execution_ms: f64,
    pub storage_commit_ms: f64,
    pub wal_sync_ms: f64,
    pub block_interval_ms: f64,
    /// CPU time of the node's process per committed block (RPC, gossip and
    /// everything else included), and as a share of one core.
    pub cpu_ms_per_block: Option<f64>,
    pub cpu_share_of_core: Option<f64>,
    /// Transactions this node committed in between, and its CPU time per
    /// transaction in microseconds.
    pub txs: u64,
    pub cpu_us_per_tx: Option<f64>,
    /// Per committed block: consensus messages received and sent, and
    /// consensus signatures checked (the part of the work that grows with
    /// the validator count).
    pub consensus_msgs_in_per_block: f64,
    pub consensus_msgs_out_per_block: f64,
    pub signatures_verified_per_block: f64,
    /// Stages that took over 16 ms in between, by stage (none: absent).
    pub over_16ms: BTreeMap<&'static str, u64>,
}

/// The value of the metric `name` (as exported, e.g.
/// `stele_snapshot_chunks_served_total`) on the node serving `metrics`.
pub async fn metric(metrics: SocketAddr, name: &str) -> Result<Option<f64>> {
    Ok(parse(&fetch(metrics).await?).get(name).copied())
}

/// Reads node `metrics`' histograms and, with `pid`, its CPU time.
pub async fn snapshot(metrics: SocketAddr, pid: Option<Pid>) -> Result<Snapshot> {
    let page = fetch(metrics).await?;
    let values = parse(&page);
    let mut histograms = BTreeMap::new();
    for stage in STAGES {
        let name = format!("stele_{stage}_seconds");
        let sum = values.get(&format!("{name}_sum")).copied();
        let count = values.get(&format!("{name}_count")).copied();
        if let (Some(sum), Some(count)) = (sum, count) {
            histograms.insert(stage, (sum, count));
        }
    }
    let slow = slow_counts(&values);
    let counters = COUNTERS
        .iter()
        .filter_map(|(short, name)| Some((*short, *values.get(*name)?)))
        .collect();
    Ok(Snapshot {
        at: Instant::now(),
        histograms,
        counters,
        slow,
        cpu: pid.and_then(process_cpu),
    })
}

/// What node `node` did between `before` and `after`.
pub fn between(node: usize, before: &Snapshot, after: &Snapshot) -> NodeStages {
    let mean_ms = |stage: &str| {
        let (Some(a), Some(b)) = (before.histograms.get(stage), after.histograms.get(stage)) else {
            return 0.0;
        };
        let count = b.1 - a.1;
        if count > 0.0 {
            1_000.0 * (b.0 - a.0) / count
        } else {
            0.0
        }
    };
    let blocks = match (
        before.histograms.get("commit_latency"),
        after.histograms.get("commit_latency"),
    ) {
        (Some(a), Some(b)) => (b.1 - a.1).max(0.0) as u64,
        _ => 0,
    };
    let cpu = match (before.cpu, after.cpu) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let wall = after.at.saturating_duration_since(before.at);
    let grew = |counter: &str| match (before.counters.get(counter), after.counters.get(counter)) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    };
    let per_block = |counter: &str| {
        if blocks > 0 {
            grew(counter) / blocks as f64
        } else {
            0.0
        }
    };
    let txs = grew("txs") as u64;
    NodeStages {
        node,
        blocks,
        commit_latency_ms: mean_ms("commit_latency"),
        execution_ms: mean_ms("execution"),
        storage_commit_ms: mean_ms("storage_commit"),
        wal_sync_ms: mean_ms("wal_sync"),
        block_interval_ms: mean_ms("block_interval"),
        cpu_ms_per_block: cpu
            .filter(|_| blocks > 0)
            .map(|c| c.as_secs_f64() * 1_000.0 / blocks as f64),
        cpu_share_of_core: cpu
            .filter(|_| !wall.is_zero())
            .map(|c| c.as_secs_f64() / wall.as_secs_f64()),
        txs,
        cpu_us_per_tx: cpu
            .filter(|_| txs > 0)
            .map(|c| c.as_secs_f64() * 1e6 / txs as f64),
        consensus_msgs_in_per_block: per_block("consensus_in"),
        consensus_msgs_out_per_block: per_block("consensus_out"),
        signatures_verified_per_block: per_block("signatures"),
        over_16ms: after
            .slow
            .iter()
            .filter_map(|(stage, b)| {
                let grew = (b - before.slow.get(stage).copied().unwrap_or(0.0)).max(0.0) as u64;
                (grew > 0).then_some((*stage, grew))
            })
            .collect(),
    }
}

/// Observations over [`SLOW_SECONDS`] of each of [`SLOW_STAGES`] on a
/// parsed page: the count less the bucket at that bound.
fn slow_counts(values: &BTreeMap<String, f64>) -> BTreeMap<&'static str, f64> {
    SLOW_STAGES
        .iter()
        .filter_map(|stage| {
            let name = format!("stele_{stage}_seconds");
            let count = values.get(&format!("{name}_count"))?;
            let fast = values.get(&format!("{name}_bucket{{le=\"{SLOW_SECONDS}\"}}"))?;
            Some((*stage, count - fast))
        })
        .collect()
}

/// `GET /metrics` over HTTP/1.0, the body of a 200 answer.
async fn fetch(addr: SocketAddr) -> Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut bytes = Vec::new();
        stream.take(PAGE_BYTES_MAX).read_to_end(&mut bytes).await?;
        Ok::<_, std::io::Error>(bytes)
    };
    let bytes = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("metrics at {addr}: no answer within 5 s"))?
        .with_context(|| format!("metrics at {addr}"))?;
    let text = String::from_utf8(bytes).context("metrics page is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("metrics answer without a header end")?;
    let status = head.split_whitespace().nth(1);
    if status != Some("200") {
        bail!("metrics at {addr}: status {status:?}");
    }
    Ok(body.to_owned())
}

/// The samples of a Prometheus text page, by name with their labels as
/// written (`name{label="value"}`); a label value holding a space is not
/// read (no metric looked up has one).
fn parse(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((name.to_owned(), value))
        })
        .collect()
}

/// User plus system CPU time of process `pid` (Linux `/proc`).
fn process_cpu(pid: Pid) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are numbers.
    let (_, fields) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; the state
    // (field 3) comes first after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)?;
    Some(Duration::from_secs_f64(ticks as f64 / per_s as f64))
}

/// Snapshots of every node in `nodes` (metrics address, pid).
pub async fn snapshot_all(nodes: &[(SocketAddr, Option<Pid>)]) -> Result<Vec<Snapshot>> {
    let mut out = Vec::with_capacity(nodes.len());
    for (addr, pid) in nodes {
        out.push(snapshot(*addr, *pid).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_sums_and_counts_are_read_and_labelled_samples_skipped() {
        let page = "# HELP stele_execution_seconds Block execution\n\
                    # TYPE stele_execution_seconds histogram\n\
                    stele_execution_seconds_sum 0.5\n\
                    stele_execution_seconds_count 10\n\
                    stele_execution_seconds_bucket{le=\"0.001\"} 4\n\
                    stele_height 42\n\
                    stele_messages_in{channel=\"consensus\"} 7\n\
                    # EOF\n";
        let values = parse(page);
        assert_eq!(values.get("stele_execution_seconds_sum"), Some(&0.5));
        assert_eq!(values.get("stele_execution_seconds_count"), Some(&10.0));
        assert_eq!(values.get("stele_height"), Some(&42.0));
        assert_eq!(values.get(COUNTERS[2].1), Some(&7.0));
        assert_eq!(
            values.get("stele_execution_seconds_bucket{le=\"0.001\"}"),
            Some(&4.0)
        );
        assert_eq!(values.len(), 5);
        let slow = slow_counts(&parse(
            "stele_wal_sync_seconds_count 10\n\
             stele_wal_sync_seconds_bucket{le=\"0.008\"} 6\n\
             stele_wal_sync_seconds_bucket{le=\"0.016\"} 7\n",
        ));
        assert_eq!(slow, BTreeMap::from([("wal_sync", 3.0)]));
    }

    #[test]
    fn stages_are_means_over_the_blocks_in_between() {
        let at = Instant::now();
        let snap = |sum: f64, count: f64, cpu_ms: u64, after: u64| Snapshot {
            at: at + Duration::from_secs(after),
            histograms: STAGES.iter().map(|s| (*s, (sum, count))).collect(),
            counters: COUNTERS.iter().map(|(c, _)| (*c, 4.0 * count)).collect(),
            slow: BTreeMap::from([("wal_sync", count / 50.0), ("prune", 1.0)]),
            cpu: Some(Duration::from_millis(cpu_ms)),
        };
        let stages = between(2, &snap(1.0, 100.0, 500, 0), &snap(1.5, 200.0, 700, 1));
        assert_eq!(stages.node, 2);
        assert_eq!(stages.blocks, 100);
        assert!((stages.commit_latency_ms - 5.0).abs() < 1e-9);
        assert!((stages.wal_sync_ms - 5.0).abs() < 1e-9);
        assert_eq!(stages.cpu_ms_per_block, Some(2.0));
        assert_eq!(stages.cpu_share_of_core, Some(0.2));
        assert_eq!(stages.txs, 400);
        assert_eq!(stages.cpu_us_per_tx, Some(500.0));
        assert!((stages.consensus_msgs_in_per_block - 4.0).abs() < 1e-9);
        assert!((stages.signatures_verified_per_block - 4.0).abs() < 1e-9);
        assert_eq!(stages.over_16ms, BTreeMap::from([("wal_sync", 2)]));
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(process_cpu(Pid::this()).is_some());
    }
}
