//! A Byzantine validator on a real cluster: four `stele-node` processes,
//! validator 3 stopped and its key used by the attacker of
//! `stele_cluster::byzantine`, which floods the three others with
//! valid-looking garbage on every channel while honest transfers go
//! through validator 1.
//!
//! `STELE_BYZANTINE_REPORT=1` (with `-- --nocapture`) prints the attacker's
//! counters, each validator's drop counters and peak memory, and the
//! warnings each one logged.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stele_client::{Signer, TxBuilder};
use stele_cluster::byzantine;
use stele_cluster::check;
use stele_cluster::cluster::{Cluster, ClusterConfig};
use stele_node::genesis::Genesis;
use stele_node::net::PeerInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the attack runs at least: the honest transfers spread over
/// it.
const ATTACK: Duration = Duration::from_secs(5);
/// How long the attack may go on after that until every honest validator
/// has counted every kind of garbage it checks (a loaded machine gives
/// the low-priority attacker little time).
const ATTACK_MAX: Duration = Duration::from_secs(60);
/// The drop counters every honest validator must show.
const DROPPED: [&str; 4] = [
    "stele_consensus_precheck_dropped{reason=\"bad_signature\"}",
    "stele_messages_dropped{reason=\"gossip_undecodable\"}",
    "stele_messages_dropped{reason=\"gossip_wrong_chain\"}",
    "stele_messages_dropped{reason=\"sync_malformed\"}",
];
const HONEST_TRANSFERS: u64 = 5;
/// Honest transfers go through this validator; the attacker holds the
/// key of `BYZANTINE`.
const HONEST_ENTRY: usize = 1;
const BYZANTINE: usize = 3;
const HONEST: [usize; 3] = [0, 1, 2];
/// Warnings a validator may log in the whole run: the attacker causes
/// thousands of loggable events (equivocations, bad signatures, oversized
/// frames), each kind logged once per peer per interval.
const WARN_LINES_MAX: usize = 40;

/// Every kind of garbage the attacker must have sent, by its counter.
const KINDS: [&str; 15] = [
    "conflicting_votes",
    "far_future_votes",
    "far_future_view_changes",
    "bad_signatures",
    "duplicates",
    "malformed",
    "truncated",
    "max_frames",
    "oversized_frames",
    "gossip_undecodable",
    "gossip_wrong_chain",
    "sync_huge",
    "sync_random",
    "sync_malformed",
    "sync_responses",
];

/// The body of `GET /metrics` from a node.
async fn metrics_page(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).await.unwrap();
    page
}

/// The value of one sample line of a metrics page, 0 when absent.
fn sample(page: &str, line_start: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A process's peak resident memory in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn honest_transfers_commit_while_a_byzantine_validator_floods_garbage() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let attacker = stele_cluster::attack::low_priority_runtime(1, "byzantine").unwrap();
    runtime.block_on(async {
        let mut config = ClusterConfig::new(env!("CARGO_BIN_EXE_stele-node"), 4);
        config.accounts = 1;
        config.relays = false;
        config.metrics = true;
        let mut cluster = Cluster::start(config).await.unwrap();
        cluster
            .wait_height(&[0, 1, 2, 3], 1, Duration::from_secs(30))
            .await
            .unwrap();
        cluster.stop(BYZANTINE).await.unwrap();

        let net = cluster.root().join("net");
        let home = net.join(format!("node{BYZANTINE}"));
        let key = stele_node::keys::load(&home.join("node_key.json")).unwrap();
        let genesis = Genesis::load(&home.join("genesis.json")).unwrap();
        let peers: Vec<PeerInfo> = HONEST
            .iter()
            .map(|&i| PeerInfo {
                address: cluster.validators[i],
                socket: cluster.p2p_addr(i),
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let attack = attacker.spawn(byzantine::run(
            key,
            cluster.chain_id,
            genesis.validators.clone(),
            peers,
            stop.clone(),
        ));

        // Honest transfers spread over the attack, each waited for.
        let client = cluster.client(HONEST_ENTRY);
        let signer = Signer::new(cluster.accounts[0].key.clone());
        let pause = ATTACK / (HONEST_TRANSFERS as u32 + 1);
        for nonce in 0..HONEST_TRANSFERS {
            tokio::time::sleep(pause).await;
            let tx = TxBuilder::new(cluster.chain_id)
                .nonce(nonce)
                .gas_limit(100_000)
                .transfer(cluster.validators[0], 1);
            let (_, raw, _) = signer.sign(tx);
            let hash = client.send_transaction(&raw).await.unwrap();
            if let Err(e) = client.wait_for_receipt(hash, 15_000).await {
                panic!(
                    "honest transfer {nonce} not committed under attack: {e}\n{}",
                    cluster.log_tails(30)
                );
            }
        }
        tokio::time::sleep(pause).await;
        let deadline = tokio::time::Instant::now() + ATTACK_MAX;
        loop {
            let mut all = true;
            for i in HONEST {
                let page = metrics_page(cluster.metrics_addr(i).unwrap()).await;
                all &= DROPPED.iter().all(|line| sample(&page, line) > 0.0);
            }
            if all || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let counters = tokio::time::timeout(Duration::from_secs(20), attack)
            .await
            .expect("the attacker stops when told")
            .unwrap();

        // The attack was real: every kind went out.
        let missing: Vec<&str> = KINDS
            .iter()
            .copied()
            .filter(|k| counters.get(*k).copied().unwrap_or(0) == 0)
            .collect();
        assert!(
            missing.is_empty(),
            "the attacker sent no {missing:?}: {counters:#?}"
        );

        // The honest validators still run, commit, and agree.
        for i in HONEST {
            assert!(cluster.is_running(i), "validator {i} exited");
        }
        cluster
            .wait_progress(&HONEST, Duration::from_secs(15))
            .await
            .unwrap();
        check::same_chain(&cluster, &HONEST).await.unwrap();

        // The garbage reached them and was dropped by the pre-check.
        let mut report = BTreeMap::new();
        for i in HONEST {
            let page = metrics_page(cluster.metrics_addr(i).unwrap()).await;
            // Bad signatures are dropped by the pre-check; garbage past
            // the transport is counted too, by reason.
            for line in DROPPED {
                assert!(
                    sample(&page, line) > 0.0,
                    "validator {i} counted no {line}; attacker: {counters:#?}\n{page}"
                );
            }
            let rss = cluster
                .pid(i)
                .map(|p| peak_rss_kib(p.as_raw()))
                .unwrap_or(0);
            let log = std::fs::read_to_string(cluster.root().join(format!("node{i}.log")))
                .unwrap_or_default();
            let warnings = log.lines().filter(|l| l.contains("WARN")).count();
            assert!(
                warnings <= WARN_LINES_MAX,
                "validator {i} logged {warnings} warnings: a peer can flood the log\n{}",
                cluster.log_tail(i, 10)
            );
            let drops: Vec<&str> = page
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter(|l| {
                    ["dropped", "equivocations", "messages_in", "verified"]
                        .iter()
                        .any(|k| l.contains(k))
                })
                .collect();
            report.insert(i, (rss, warnings, drops.join("\n")));
        }
        if std::env::var_os("STELE_BYZANTINE_REPORT").is_some() {
            eprintln!("attacker: {counters:#?}");
            for (i, (rss, warnings, drops)) in &report {
                eprintln!("validator {i}: peak RSS {rss} KiB, {warnings} WARN lines\n{drops}");
            }
        }
    });
    attacker.shutdown_background();
}
