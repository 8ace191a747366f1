//! A damaged disk is loud (issue 24, item 8): a stopped validator whose
//! RocksDB log is cut or corrupted, or whose database is copied back from
//! an earlier time, refuses to start with an error naming the loss; with
//! `accept_data_loss` it starts as after a host crash (it sits out the view
//! it may have voted in) and goes on. One validator on a real data dir.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stele_node::genesis::{ChainParams, Genesis};
use stele_node::mark::DataLoss;
use stele_node::net::NetConfig;
use stele_node::node::{ConsensusOptions, Node, NodeError, NodeOptions, Role};
use stele_types::*;

const WAIT: Duration = Duration::from_secs(60);

fn key() -> SecretKey {
    stele_fixtures::key(7)
}

fn genesis() -> Genesis {
    let k = key();
    Genesis {
        chain_id: 4242,
        genesis_time_ms: 1_700_000_000_000,
        validators: ValidatorSet::new(vec![Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: 1,
        }])
        .unwrap(),
        allocations: Vec::new(),
        params: ChainParams::default(),
    }
}

fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn start(data_dir: &Path, accept_data_loss: bool) -> Result<Node, NodeError> {
    Node::start(NodeOptions {
        data_dir: data_dir.to_owned(),
        role: Role::Validator,
        key: key(),
        genesis: genesis(),
        listen: free_addr(),
        peers: Vec::new(),
        net: NetConfig::default(),
        mempool_txs_max: 1_000,
        mempool_bytes_max: 1 << 20,
        mempool_sender_gapped_bytes_max: 1 << 20,
        mempool_gapped_ttl_blocks: 600,
        sender_keys_max: 16,
        consensus: ConsensusOptions {
            view_timeout_ms: Some(400),
            view_timeout_max_ms: Some(800),
            block_interval_ms: 5,
            empty_block_interval_ms: 20,
            pipeline_blocks: 1,
        },
        state: Default::default(),
        prune_interval_blocks: 0,
        snapshots: Default::default(),
        snapshot_sync: false,
        keep_blocks: 0,
        index: Default::default(),
        exec_inline: false,
        accept_data_loss,
        protocol_support: Default::default(),
    })
    .await
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the validator until it is at least `height` high and stops it;
/// returns its height and view then.
async fn run_to(data_dir: &Path, height: u64) -> (u64, u64) {
    let node = start(data_dir, false).await.unwrap();
    until("blocks", || node.progress().height >= height).await;
    let p = node.progress();
    node.shutdown().await.unwrap();
    (p.height, p.view)
}

/// The newest RocksDB write-ahead log file.
fn newest_log(data_dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a RocksDB log file")
}

fn refused(result: Result<Node, NodeError>) -> Vec<DataLoss> {
    match result {
        Err(NodeError::DataLoss(losses)) => losses,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a validator with lost data started"),
    }
}

/// With the loss accepted: the start is counted, the validator sits out
/// the view it restarted in (one validator: it must change view before it
/// proposes again) and commits on; the next start needs no flag.
async fn accepted_then_lossless(data_dir: &Path, view_before: u64) {
    let node = start(data_dir, true).await.unwrap();
    let from = node.progress().height;
    let text = node.shared().metrics().render();
    assert!(text.contains("stele_data_loss_accepted_total 1"), "{text}");
    until("commits after a view change", || {
        let p = node.progress();
        p.height > from + 2 && p.view > view_before
    })
    .await;
    node.shutdown().await.unwrap();
    let node = start(data_dir, false).await.unwrap();
    let from = node.progress().height;
    until("commits", || node.progress().height > from).await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_rocksdb_log_tail_is_refused_until_the_operator_accepts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (_, view) = run_to(dir.path(), 10).await;
    let log = newest_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    assert!(len > 100, "the log holds the last writes");
    // Cut inside the last record, as a torn write or a truncation does.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let losses = refused(start(dir.path(), false).await);
    assert!(
        matches!(losses.as_slice(), [DataLoss::CorruptDatabase { .. }, ..]),
        "{losses:?}"
    );
    // Refused again: nothing changed on disk.
    refused(start(dir.path(), false).await);
    accepted_then_lossless(dir.path(), view).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_byte_in_the_rocksdb_log_is_refused_until_the_operator_accepts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (_, view) = run_to(dir.path(), 10).await;
    let log = newest_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&log, &bytes).unwrap();
    let losses = refused(start(dir.path(), false).await);
    assert!(
        matches!(losses.as_slice(), [DataLoss::CorruptDatabase { .. }, ..]),
        "{losses:?}"
    );
    let err = NodeError::DataLoss(losses).to_string();
    assert!(err.contains("--accept-data-loss"), "{err}");
    accepted_then_lossless(dir.path(), view).await;
}

/// A write torn past everything synced (as a process killed in the middle
/// of a large write leaves the log): the strict open refuses the log, the
/// tail is dropped, and as the database still reaches the high-water mark
/// the validator starts without asking, sitting out the view it restarted
/// in as after a host crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_write_past_what_was_synced_is_dropped_as_after_a_host_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (height, view) = run_to(dir.path(), 10).await;
    let log = newest_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // The start of a record that never finished: a header announcing a
    // full record of 1 000 bytes, with only 10 of them.
    let mut torn = vec![0x11, 0x22, 0x33, 0x44];
    torn.extend_from_slice(&1_000u16.to_le_bytes());
    torn.push(1);
    torn.extend_from_slice(&[0xab; 10]);
    bytes.extend_from_slice(&torn);
    std::fs::write(&log, &bytes).unwrap();
    let node = start(dir.path(), false).await.unwrap();
    let from = node.progress().height;
    assert!(from >= height, "{from} < {height}");
    let text = node.shared().metrics().render();
    assert!(!text.contains("stele_data_loss_accepted_total 1"), "{text}");
    until("commits after a view change", || {
        let p = node.progress();
        p.height > from + 2 && p.view > view
    })
    .await;
    node.shutdown().await.unwrap();
}

/// Offsets in a RocksDB write-ahead log where a write (a logical record)
/// begins: the log is 32 KiB blocks of records, each a 7-byte header
/// (checksum, length, type: 1 full, 2 first fragment) and its payload.
fn write_starts(log: &[u8]) -> Vec<usize> {
    const BLOCK: usize = 32 * 1024;
    const HEADER: usize = 7;
    let mut starts = Vec::new();
    let mut at = 0;
    while at + HEADER <= log.len() {
        let left = BLOCK - at % BLOCK;
        if left < HEADER {
            at += left; // the block's zero padding
            continue;
        }
        let len = usize::from(u16::from_le_bytes([log[at + 4], log[at + 5]]));
        match log[at + 6] {
            0 => break, // preallocated, never written
            1 | 2 => starts.push(at),
            _ => {}
        }
        at += HEADER + len;
    }
    starts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rocksdb_log_cut_cleanly_between_two_writes_is_refused_as_a_rollback() {
    // The report of issue 24: a tail cut at a record boundary opens
    // without a word from RocksDB, hundreds of blocks lower.
    let dir = tempfile::tempdir().unwrap();
    let (height, view) = run_to(dir.path(), 20).await;
    let log = newest_log(dir.path());
    let bytes = std::fs::read(&log).unwrap();
    let starts = write_starts(&bytes);
    assert!(starts.len() > 20, "{} writes in the log", starts.len());
    std::fs::write(&log, &bytes[..starts[starts.len() / 2]]).unwrap();
    let losses = refused(start(dir.path(), false).await);
    match losses.as_slice() {
        [
            DataLoss::BelowMark {
                mark, height: now, ..
            },
        ] => {
            assert!(*now < mark.height && mark.height >= height, "{losses:?}");
        }
        other => panic!("{other:?}"),
    }
    accepted_then_lossless(dir.path(), view).await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_copied_back_from_earlier_is_refused_as_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let (early, _) = run_to(dir.path(), 5).await;
    let saved = tempfile::tempdir().unwrap();
    copy_dir(&db, saved.path());
    let (late, view) = run_to(dir.path(), early + 10).await;
    std::fs::remove_dir_all(&db).unwrap();
    copy_dir(saved.path(), &db);
    // RocksDB opens it without complaint; the high-water mark does not.
    let losses = refused(start(dir.path(), false).await);
    match losses.as_slice() {
        [DataLoss::BelowMark { mark, height, .. }] => {
            // A clean stop syncs, so the mark names its last commit.
            assert!(*height >= early && mark.height >= late, "{losses:?}");
            assert!(*height < mark.height && mark.view >= view, "{losses:?}");
        }
        other => panic!("{other:?}"),
    }
    accepted_then_lossless(dir.path(), view).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_high_water_mark_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, view) = run_to(dir.path(), 3).await;
    let mark = dir.path().join(stele_node::mark::MARK_FILE);
    let mut bytes = std::fs::read(&mark).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&mark, &bytes).unwrap();
    let losses = refused(start(dir.path(), false).await);
    assert!(
        matches!(losses.as_slice(), [DataLoss::CorruptMark { .. }]),
        "{losses:?}"
    );
    accepted_then_lossless(dir.path(), view).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_data_dir_is_told_the_home_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), false).await.unwrap();
    match start(dir.path(), false).await {
        Err(e @ NodeError::HomeInUse { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("another stele-node is running on this home"),
                "{text}"
            );
            assert!(text.contains("LOCK"), "{text}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("two nodes opened one data dir"),
    }
    node.shutdown().await.unwrap();
}
