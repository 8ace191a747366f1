//! Joining a chain by snapshot against joining it by replay (issue 28;
//! docs/benchmarks.md), printed as JSON lines. Not a timed test: CI only
//! builds it.
//!
//! Run: `cargo bench -p stele-node --bench snapshot_join` (100 000
//! accounts at height 1 000 000), or with `-- --accounts 1000000 --height
//! 1000000 --servers 2 --replay-blocks 3000`.
//!
//! By snapshot: a chain of four validators whose state at `--height`
//! holds `--accounts` accounts, block `--height` certified by the four
//! (`snapshot::synthetic`: the state is written, not executed), the blocks
//! below it pruned, its snapshot kept. `--servers` of the validators run on
//! copies of that data dir (too few to make blocks; they serve). A new
//! full node with an empty data dir starts with `snapshot_sync` on and the
//! servers as its peers; the time is from `Node::start` until it returns
//! with the state of `--height` built and checked against its certified
//! root. Line `snapshot`: the time, the chunks and bytes fetched, the
//! joined node's disk.
//!
//! By replay: a one-validator chain makes `--replay-blocks` empty blocks,
//! then a new full node with `snapshot_sync` off syncs them from the
//! genesis (certificate checks, execution, commits). Line `replay`: blocks
//! per second, and the time that rate gives for `--height` blocks, a lower
//! bound (these blocks hold no transaction).
//!
//! Disk over a long run (`--disk-blocks N`, 0 skips it; `--accounts 0`
//! skips the join): a one-validator
//! chain commits N blocks of transfers among 64 accounts (the state keeps
//! its size), twice: keeping every block, then with `keep_blocks` 1 000,
//! a snapshot every 1 000 heights (2 kept), 200 state versions kept,
//! RocksDB's log at most 16 MiB (256 MiB by default: a short run would
//! measure the log alone).
//! Lines `disk`: the data dir's bytes every N / 10 blocks.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::net::{NetConfig, PeerInfo};
use stele_node::node::{ConsensusOptions, Node, NodeOptions, Role, SnapshotOptions};
use stele_node::snapshot::synthetic::{keep_snapshot, write_chain};
use stele_types::codec::Encode;
use stele_types::{SecretKey, Validator, ValidatorSet};

const CHAIN: u64 = 1;

struct Args {
    accounts: u64,
    height: u64,
    servers: usize,
    replay_blocks: u64,
    chunk_entries: usize,
    disk_blocks: u64,
    /// Keep the data dirs here (default: a temp dir, deleted).
    dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        accounts: 100_000,
        height: 1_000_000,
        servers: 2,
        replay_blocks: 3_000,
        chunk_entries: stele_node::snapshot::format::CHUNK_ENTRIES_TARGET,
        disk_blocks: 0,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} takes a number"))
        };
        match arg.as_str() {
            "--accounts" => a.accounts = value(),
            "--height" => a.height = value().max(2),
            "--servers" => a.servers = (value() as usize).clamp(1, 4),
            "--replay-blocks" => a.replay_blocks = value(),
            "--chunk-entries" => a.chunk_entries = value() as usize,
            "--disk-blocks" => a.disk_blocks = value(),
            "--dir" => a.dir = it.next().map(PathBuf::from),
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn keys(n: usize) -> Vec<SecretKey> {
    let mut keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
    keys.sort_by_key(SecretKey::address);
    keys
}

fn genesis(keys: &[SecretKey]) -> Genesis {
    genesis_funding(keys, &[])
}

/// The chain of validators `keys`, which `funded` and they hold coins of.
fn genesis_funding(keys: &[SecretKey], funded: &[SecretKey]) -> Genesis {
    Genesis {
        chain_id: CHAIN,
        genesis_time_ms: 1_700_000_000_000,
        validators: ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.address(),
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .expect("a validator set"),
        allocations: keys
            .iter()
            .chain(funded)
            .map(|k| Allocation {
                address: k.address(),
                balance: 1 << 60,
            })
            .collect(),
        params: ChainParams::default(),
    }
}

/// A free loopback port (reserved, then let go for the node to bind).
fn free_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a port");
    socket.local_addr().expect("its address")
}

fn options(
    data_dir: PathBuf,
    role: Role,
    key: SecretKey,
    genesis: &Genesis,
    listen: SocketAddr,
    peers: Vec<PeerInfo>,
) -> NodeOptions {
    NodeOptions {
        data_dir,
        role,
        key,
        genesis: genesis.clone(),
        listen,
        peers,
        net: NetConfig {
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(500),
            ..NetConfig::default()
        },
        mempool_txs_max: 10_000,
        mempool_bytes_max: 64 << 20,
        mempool_sender_gapped_bytes_max: 2 << 20,
        mempool_gapped_ttl_blocks: 600,
        sender_keys_max: 64,
        consensus: ConsensusOptions {
            view_timeout_ms: Some(1_000),
            view_timeout_max_ms: Some(4_000),
            block_interval_ms: 1,
            empty_block_interval_ms: 1,
            pipeline_blocks: 0,
        },
        state: stele_state::StateConfig::default(),
        prune_interval_blocks: 100,
        keep_blocks: 0,
        snapshots: SnapshotOptions::default(),
        snapshot_sync: false,
        index: stele_node::index::IndexConfig::default(),
        exec_inline: false,
        accept_data_loss: false,
        protocol_support: Default::default(),
    }
}

fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a copy");
    for entry in std::fs::read_dir(from).expect("read a dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

async fn by_snapshot(a: &Args, root: &Path) {
    let keys = keys(4);
    let genesis = genesis(&keys);
    let first = root.join("server0");
    let started = Instant::now();
    let state_root =
        write_chain(&first, &genesis, &keys, a.height, a.accounts).expect("write the chain");
    let written_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let exported = keep_snapshot(&first, &genesis, a.chunk_entries).expect("make the snapshot");
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "chain written in {written_ms:.0} ms (root {state_root}), snapshot made in {snapshot_ms:.0} ms"
    );

    // Copies made before any server opens its database.
    for i in 1..a.servers {
        copy_dir(&first, &root.join(format!("server{i}")));
    }
    let mut servers = Vec::new();
    let mut peers = Vec::new();
    for (i, key) in keys.iter().enumerate().take(a.servers) {
        let dir = root.join(format!("server{i}"));
        let listen = free_port();
        let node = Node::start(options(
            dir,
            Role::Validator,
            key.clone(),
            &genesis,
            listen,
            Vec::new(),
        ))
        .await
        .expect("start a server");
        peers.push(PeerInfo {
            address: key.address(),
            socket: node.p2p_addr().expect("its address"),
        });
        servers.push(node);
    }

    let joiner_dir = root.join("joiner");
    let mut opts = options(
        joiner_dir.clone(),
        Role::Full,
        SecretKey::generate(),
        &genesis,
        free_port(),
        peers,
    );
    opts.snapshot_sync = true;
    let started = Instant::now();
    let joiner = Node::start(opts).await.expect("join");
    let join_ms = started.elapsed().as_secs_f64() * 1000.0;
    let height = joiner.progress().height;
    assert_eq!(height, a.height, "joined at another height");
    let metrics = joiner.shared().metrics();
    let fetched = metrics.snapshot_sync_chunks_fetched.get();
    let fetched_bytes = metrics.snapshot_sync_chunk_bytes_fetched.get();
    println!(
        "{}",
        serde_json::json!({
            "bench": "snapshot",
            "accounts": a.accounts,
            "height": a.height,
            "servers": a.servers,
            "chunks": exported.manifest.parts.len(),
            "snapshot_bytes": exported.bytes,
            "chunks_fetched": fetched,
            "bytes_fetched": fetched_bytes,
            "join_ms": join_ms.round(),
            "joined_disk_bytes": disk_bytes(&joiner_dir),
            "server_disk_bytes": disk_bytes(&first),
            "chain_written_ms": written_ms.round(),
            "snapshot_made_ms": snapshot_ms.round(),
        })
    );
    joiner.shutdown().await.expect("stop the joiner");
    for node in servers {
        node.shutdown().await.expect("stop a server");
    }
}

async fn by_replay(a: &Args, root: &Path) {
    let keys = keys(1);
    let genesis = genesis(&keys);
    let listen = free_port();
    let validator = Node::start(options(
        root.join("validator"),
        Role::Validator,
        keys[0].clone(),
        &genesis,
        listen,
        Vec::new(),
    ))
    .await
    .expect("start the validator");
    while validator.progress().height < a.replay_blocks {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peers = vec![PeerInfo {
        address: keys[0].address(),
        socket: validator.p2p_addr().expect("its address"),
    }];
    let started = Instant::now();
    let follower = Node::start(options(
        root.join("follower"),
        Role::Full,
        SecretKey::generate(),
        &genesis,
        free_port(),
        peers,
    ))
    .await
    .expect("start the follower");
    while follower.progress().height < a.replay_blocks {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = a.replay_blocks as f64 / seconds;
    println!(
        "{}",
        serde_json::json!({
            "bench": "replay",
            "blocks": a.replay_blocks,
            "replay_ms": (seconds * 1000.0).round(),
            "blocks_per_s": rate.round(),
            "projected_s_for_height": (a.height as f64 / rate).round(),
            "height": a.height,
        })
    );
    follower.shutdown().await.expect("stop the follower");
    validator.shutdown().await.expect("stop the validator");
}

/// One run of `--disk-blocks` blocks of transfers on one validator.
async fn disk_run(a: &Args, root: &Path, keep_blocks: u64) {
    let keys = keys(1);
    let senders: Vec<SecretKey> = (0..64).map(|_| SecretKey::generate()).collect();
    let genesis = genesis_funding(&keys, &senders);
    let dir = root.join(format!("keep{keep_blocks}"));
    let mut opts = options(
        dir.clone(),
        Role::Validator,
        keys[0].clone(),
        &genesis,
        free_port(),
        Vec::new(),
    );
    opts.keep_blocks = keep_blocks;
    opts.state.versions_kept = 200;
    // A short run reaches the log bound only if it is small.
    opts.state.wal_bytes_max = 16 << 20;
    if keep_blocks > 0 {
        opts.snapshots = SnapshotOptions {
            interval_blocks: 1_000,
            kept: 2,
            chunk_entries: 4_096,
        };
    }
    let node = Node::start(opts).await.expect("start the validator");
    let mut nonces = vec![0u64; senders.len()];
    let step = (a.disk_blocks / 10).max(1);
    let mut next_report = step;
    let started = Instant::now();
    let mut txs = 0u64;
    while node.progress().height < a.disk_blocks {
        for (i, key) in senders.iter().enumerate() {
            let to = senders[(i + 1) % senders.len()].address();
            let raw = stele_types::Transaction {
                chain_id: CHAIN,
                nonce: nonces[i],
                gas_limit: 100_000,
                gas_price: 1,
                payload: stele_types::TxPayload::Transfer { to, amount: 1 },
            }
            .sign(key)
            .to_bytes();
            if node.submit(&raw).is_ok() {
                nonces[i] += 1;
                txs += 1;
            }
        }
        let height = node.progress().height;
        if height >= next_report {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "disk",
                    "keep_blocks": keep_blocks,
                    "height": height,
                    "txs": txs,
                    "data_dir_bytes": disk_bytes(&dir),
                    "seconds": started.elapsed().as_secs(),
                })
            );
            next_report += step;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    node.shutdown().await.expect("stop the validator");
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let temp = tempfile::tempdir().expect("a temp dir");
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    runtime.block_on(async {
        // `--accounts 0` skips the join.
        if a.accounts > 0 {
            by_snapshot(&a, &dir.join("snapshot")).await;
        }
        if a.replay_blocks > 0 {
            by_replay(&a, &dir.join("replay")).await;
        }
        if a.disk_blocks > 0 {
            for keep_blocks in [0, 1_000] {
                disk_run(&a, &dir.join("disk"), keep_blocks).await;
            }
        }
    });
}
