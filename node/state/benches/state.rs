//! State benchmark: prints one JSON object. Not a timed test.
//!
//! Workload: load `STELE_BENCH_KEYS` keys (default 1,000,000) in batches of
//! 100k, then commit `STELE_BENCH_ROUNDS` (default 10) batches of
//! `STELE_BENCH_BATCH` (default 10,000) random writes, half updates of
//! existing keys and half inserts; the timed batches start once RocksDB
//! has finished the load's flushes and compactions (`settle`). The same
//! workload runs on Penumbra's `jmt` crate over RocksDB (a small
//! TreeReader/TreeWriter below, same RocksDB options, same synced write
//! batches, same Keccak-256 hash) as the peer.
//!
//! `cargo bench -p stele-state` (use `STELE_BENCH_KEYS=100000` for a quick run;
//! `STELE_BENCH_JMT_SLOW=0` leaves out jmt's slower API).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use borsh::BorshDeserialize;
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeUpdateBatch, TreeWriter};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, WriteBatch, WriteOptions,
};
use sha3::Keccak256;
use stele_state::{State, StateConfig, StateKey};
use stele_types::codec::Encode;
use stele_types::{Address, keccak256};

const LOAD_BATCH: u64 = 100_000;
const PROOF_SAMPLES: u64 = 1000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn key(i: u64) -> StateKey {
    StateKey::storage(&Address([0x5e; 20]), i.to_le_bytes().to_vec())
}

fn value(i: u64, round: u64) -> Vec<u8> {
    keccak256(&[i.to_le_bytes(), round.to_le_bytes()].concat())
        .0
        .to_vec()
}

/// Pseudo-random key indices for round `round`: half among the loaded keys,
/// half new keys above them.
fn round_keys(round: u64, keys: u64, batch: u64) -> Vec<u64> {
    (0..batch)
        .map(|j| {
            let r = u64::from_le_bytes(
                keccak256(&[round.to_le_bytes(), j.to_le_bytes()].concat()).0[..8]
                    .try_into()
                    .expect("8 bytes"),
            );
            if j % 2 == 0 {
                r % keys
            } else {
                keys + round * batch + j
            }
        })
        .collect()
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn micros(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

struct Measured {
    load_s: f64,
    /// Waited after the load for its flushes and compactions.
    settle_s: f64,
    updates_per_s: f64,
    root_ms_per_batch: f64,
    write_ms_per_batch: f64,
    proof_gen_us: f64,
    proof_verify_us: f64,
    proof_bytes_avg: f64,
    proof_bytes_max: usize,
    disk_bytes_per_key: f64,
}

/// Waits until RocksDB has no flush or compaction running or pending
/// (the load's), for up to ten minutes, so the timed batches of both trees
/// start from a quiet database (at 10M keys it waited 0.3-0.5 s). Not
/// counted in the load time; returns the seconds waited.
fn settle(db: &DB) -> f64 {
    let started = Instant::now();
    // Read once: the column families do not change while the bench waits.
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), db.path()).unwrap_or_default();
    let busy = || {
        let mut n = 0;
        for p in [
            "rocksdb.num-running-compactions",
            "rocksdb.num-running-flushes",
        ] {
            n += db.property_int_value(p).ok().flatten().unwrap_or(0);
        }
        for cf in &names {
            if let Some(h) = db.cf_handle(cf) {
                for p in [
                    "rocksdb.compaction-pending",
                    "rocksdb.mem-table-flush-pending",
                ] {
                    n += db.property_int_value_cf(&h, p).ok().flatten().unwrap_or(0);
                }
            }
        }
        n
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut quiet = 0;
    while quiet < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        quiet = if busy() == 0 { quiet + 1 } else { 0 };
    }
    started.elapsed().as_secs_f64()
}

fn bench_stele(path: &Path, keys: u64, rounds: u64, batch: u64) -> Measured {
    let mut state = State::open(
        path,
        StateConfig {
            versions_kept: 1,
            ..StateConfig::default()
        },
    )
    .expect("open state");
    let started = Instant::now();
    let mut version = 0;
    for start in (0..keys).step_by(LOAD_BATCH as usize) {
        let writes: BTreeMap<_, _> = (start..(start + LOAD_BATCH).min(keys))
            .map(|i| (key(i), Some(value(i, 0))))
            .collect();
        version += 1;
        state.commit(version, &writes).expect("load commit");
    }
    let load_s = started.elapsed().as_secs_f64();
    let settle_s = settle(state.db().expect("db"));

    let (mut total, mut root_time, mut write_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let indices = round_keys(round, keys, batch);
        let t0 = Instant::now();
        let writes: BTreeMap<_, _> = indices
            .iter()
            .map(|&i| (key(i), Some(value(i, round))))
            .collect();
        version += 1;
        let prepared = state.prepare_commit(version, &writes).expect("prepare");
        let t1 = Instant::now();
        state.apply(prepared).expect("apply");
        let t2 = Instant::now();
        total += t2 - t0;
        root_time += t1 - t0;
        write_time += t2 - t1;
    }
    let root = state.root(version).expect("root");

    let sample: Vec<StateKey> = (0..PROOF_SAMPLES)
        .map(|i| key(i * (keys / PROOF_SAMPLES).max(1)))
        .collect();
    let t = Instant::now();
    let proofs: Vec<_> = sample
        .iter()
        .map(|k| state.prove(k, version).expect("prove"))
        .collect();
    let proof_gen = t.elapsed();
    let hashes: Vec<_> = sample.iter().map(StateKey::hash).collect();
    let t = Instant::now();
    for ((value, proof), k) in proofs.iter().zip(&hashes) {
        proof.verify(&root, k, value.as_deref()).expect("verify");
    }
    let proof_verify = t.elapsed();
    let sizes: Vec<usize> = proofs.iter().map(|(_, p)| p.to_bytes().len()).collect();

    state.prune().expect("prune");
    state.compact().expect("compact");
    drop(state);
    let total_keys = keys + rounds * batch / 2;
    Measured {
        load_s,
        settle_s,
        updates_per_s: per_sec(rounds * batch, total),
        root_ms_per_batch: root_time.as_secs_f64() * 1e3 / rounds as f64,
        write_ms_per_batch: write_time.as_secs_f64() * 1e3 / rounds as f64,
        proof_gen_us: micros(proof_gen, PROOF_SAMPLES),
        proof_verify_us: micros(proof_verify, PROOF_SAMPLES),
        proof_bytes_avg: sizes.iter().sum::<usize>() as f64 / sizes.len() as f64,
        proof_bytes_max: sizes.iter().copied().max().unwrap_or(0),
        disk_bytes_per_key: dir_bytes(path) as f64 / total_keys as f64,
    }
}

/// Penumbra's `jmt` over RocksDB: nodes under `version (BE) || borsh(node
/// key)`, values under `key hash || !version (BE)` so the newest value at or
/// below a version is one seek away, stale-node index written as for ours.
struct JmtDb {
    db: DB,
}

const JMT_NODES: &str = "nodes";
const JMT_VALUES: &str = "values";
const JMT_STALE: &str = "stale";

impl JmtDb {
    fn open(path: &Path) -> JmtDb {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        let cache = Cache::new_lru_cache(256 << 20);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_compression_type(DBCompressionType::Lz4);
        let cfs = [JMT_NODES, JMT_VALUES, JMT_STALE]
            .map(|name| ColumnFamilyDescriptor::new(name, cf_opts.clone()));
        JmtDb {
            db: DB::open_cf_descriptors(&db_opts, path, cfs).expect("open jmt db"),
        }
    }

    fn node_key_bytes(key: &NodeKey) -> Vec<u8> {
        let mut out = key.version().to_be_bytes().to_vec();
        out.extend(borsh::to_vec(key).expect("borsh"));
        out
    }

    fn write(&self, update: &TreeUpdateBatch, version: Version) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.add_nodes(&mut batch, &update.node_batch)?;
        let stale = self.db.cf_handle(JMT_STALE).expect("cf");
        for entry in &update.stale_node_index_batch {
            let mut k = entry.stale_since_version.to_be_bytes().to_vec();
            k.extend(Self::node_key_bytes(&entry.node_key));
            batch.put_cf(stale, k, b"");
        }
        let _ = version;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    fn add_nodes(&self, batch: &mut WriteBatch, nodes: &NodeBatch) -> Result<()> {
        let nodes_cf = self.db.cf_handle(JMT_NODES).expect("cf");
        let values_cf = self.db.cf_handle(JMT_VALUES).expect("cf");
        for (k, node) in nodes.nodes() {
            batch.put_cf(nodes_cf, Self::node_key_bytes(k), borsh::to_vec(node)?);
        }
        for ((version, key_hash), value) in nodes.values() {
            let mut k = key_hash.0.to_vec();
            k.extend((u64::MAX - version).to_be_bytes());
            batch.put_cf(values_cf, k, borsh::to_vec(value)?);
        }
        Ok(())
    }
}

impl TreeReader for JmtDb {
    fn get_node_option(&self, node_key: &NodeKey) -> Result<Option<Node>> {
        let cf = self.db.cf_handle(JMT_NODES).expect("cf");
        match self.db.get_pinned_cf(cf, Self::node_key_bytes(node_key))? {
            Some(bytes) => Ok(Some(Node::try_from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> Result<Option<OwnedValue>> {
        let cf = self.db.cf_handle(JMT_VALUES).expect("cf");
        let mut seek = key_hash.0.to_vec();
        seek.extend((u64::MAX - max_version).to_be_bytes());
        let mut iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(&seek, Direction::Forward));
        match iter.next() {
            Some(entry) => {
                let (k, v) = entry?;
                if k[..32] != key_hash.0 {
                    return Ok(None);
                }
                Ok(Option::<OwnedValue>::try_from_slice(&v)?)
            }
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("only needed for state restore, which the benchmark does not use")
    }
}

impl TreeWriter for JmtDb {
    fn write_node_batch(&self, node_batch: &NodeBatch) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.add_nodes(&mut batch, node_batch)?;
        self.db.write(batch)?;
        Ok(())
    }
}

/// How the peer applies a batch: `put_value_set` (one value set, with
/// deletions), or `batch_put_value_sets`, its sorted single-traversal API
/// (puts only; the workload has no deletions).
#[derive(Clone, Copy, PartialEq, Eq)]
enum JmtApi {
    PutValueSet,
    BatchPutValueSets,
}

/// Applies `set` as version `version` with `api`.
fn jmt_put(
    tree: &JellyfishMerkleTree<'_, JmtDb, Keccak256>,
    api: JmtApi,
    set: Vec<(KeyHash, OwnedValue)>,
    version: Version,
) -> TreeUpdateBatch {
    match api {
        JmtApi::PutValueSet => {
            let set = set.into_iter().map(|(k, v)| (k, Some(v)));
            tree.put_value_set(set, version).expect("jmt put").1
        }
        JmtApi::BatchPutValueSets => {
            tree.batch_put_value_sets(vec![set], None, version)
                .expect("jmt batch put")
                .1
        }
    }
}

fn bench_jmt(path: &Path, keys: u64, rounds: u64, batch: u64, api: JmtApi) -> Measured {
    let db = JmtDb::open(path);
    let key_hash = |i: u64| KeyHash(key(i).hash().0);
    let started = Instant::now();
    let mut version: Version = 0;
    for start in (0..keys).step_by(LOAD_BATCH as usize) {
        let tree = JellyfishMerkleTree::<_, Keccak256>::new(&db);
        let set: Vec<_> = (start..(start + LOAD_BATCH).min(keys))
            .map(|i| (key_hash(i), value(i, 0)))
            .collect();
        // jmt's first version is 0; ours starts at 1. Only the count matters.
        let update = jmt_put(&tree, api, set, version);
        db.write(&update, version).expect("jmt write");
        version += 1;
    }
    let load_s = started.elapsed().as_secs_f64();
    let settle_s = settle(&db.db);

    let (mut total, mut root_time, mut write_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let indices = round_keys(round, keys, batch);
        let t0 = Instant::now();
        let tree = JellyfishMerkleTree::<_, Keccak256>::new(&db);
        let set: Vec<_> = indices
            .iter()
            .map(|&i| (key_hash(i), value(i, round)))
            .collect();
        let update = jmt_put(&tree, api, set, version);
        let t1 = Instant::now();
        db.write(&update, version).expect("jmt write");
        let t2 = Instant::now();
        total += t2 - t0;
        root_time += t1 - t0;
        write_time += t2 - t1;
        version += 1;
    }
    let last = version - 1;
    let tree = JellyfishMerkleTree::<_, Keccak256>::new(&db);
    let root = tree.get_root_hash(last).expect("jmt root");
    let sample: Vec<KeyHash> = (0..PROOF_SAMPLES)
        .map(|i| key_hash(i * (keys / PROOF_SAMPLES).max(1)))
        .collect();
    let t = Instant::now();
    let proofs: Vec<_> = sample
        .iter()
        .map(|k| tree.get_with_proof(*k, last).expect("jmt prove"))
        .collect();
    let proof_gen = t.elapsed();
    let t = Instant::now();
    for ((value, proof), k) in proofs.iter().zip(&sample) {
        proof.verify(root, *k, value.as_ref()).expect("jmt verify");
    }
    let proof_verify = t.elapsed();
    let sizes: Vec<usize> = proofs
        .iter()
        .map(|(_, p)| borsh::to_vec(p).map_or(0, |b| b.len()))
        .collect();
    // jmt leaves pruning to the application; compact what is there.
    for cf in [JMT_NODES, JMT_VALUES, JMT_STALE] {
        let handle = db.db.cf_handle(cf).expect("cf");
        db.db.compact_range_cf(handle, None::<&[u8]>, None::<&[u8]>);
    }
    drop(db);
    let total_keys = keys + rounds * batch / 2;
    Measured {
        load_s,
        settle_s,
        updates_per_s: per_sec(rounds * batch, total),
        root_ms_per_batch: root_time.as_secs_f64() * 1e3 / rounds as f64,
        write_ms_per_batch: write_time.as_secs_f64() * 1e3 / rounds as f64,
        proof_gen_us: micros(proof_gen, PROOF_SAMPLES),
        proof_verify_us: micros(proof_verify, PROOF_SAMPLES),
        proof_bytes_avg: sizes.iter().sum::<usize>() as f64 / sizes.len() as f64,
        proof_bytes_max: sizes.iter().copied().max().unwrap_or(0),
        disk_bytes_per_key: dir_bytes(path) as f64 / total_keys as f64,
    }
}

fn json(m: &Measured) -> serde_json::Value {
    serde_json::json!({
        "load_s": m.load_s,
        "settle_s": m.settle_s,
        "updates_per_s": m.updates_per_s,
        "root_ms_per_batch": m.root_ms_per_batch,
        "write_ms_per_batch": m.write_ms_per_batch,
        "proof_gen_us": m.proof_gen_us,
        "proof_verify_us": m.proof_verify_us,
        "proof_bytes_avg": m.proof_bytes_avg,
        "proof_bytes_max": m.proof_bytes_max,
        "disk_bytes_per_key": m.disk_bytes_per_key,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either. Run a tiny workload unless asked for the real one.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let keys = env_u64("STELE_BENCH_KEYS", if is_bench { 1_000_000 } else { 2_000 });
    let batch = env_u64("STELE_BENCH_BATCH", if is_bench { 10_000 } else { 200 });
    let rounds = env_u64("STELE_BENCH_ROUNDS", if is_bench { 10 } else { 2 });
    let stele_dir = tempfile::tempdir().expect("temp dir");
    let stele = bench_stele(stele_dir.path(), keys, rounds, batch);
    drop(stele_dir);
    // `STELE_BENCH_JMT_SLOW=0` skips jmt's slower API (a 10M-key run is
    // then about 40% shorter); the ratio that matters is to the best one.
    let slow = std::env::var("STELE_BENCH_JMT_SLOW").map_or(true, |v| v != "0");
    let jmt = slow.then(|| {
        let jmt_dir = tempfile::tempdir().expect("temp dir");
        bench_jmt(jmt_dir.path(), keys, rounds, batch, JmtApi::PutValueSet)
    });
    let jmt_dir = tempfile::tempdir().expect("temp dir");
    let jmt_batch = bench_jmt(
        jmt_dir.path(),
        keys,
        rounds,
        batch,
        JmtApi::BatchPutValueSets,
    );
    drop(jmt_dir);
    let best = jmt.as_ref().map_or(jmt_batch.updates_per_s, |j| {
        j.updates_per_s.max(jmt_batch.updates_per_s)
    });
    let out = serde_json::json!({
        "workload": {"keys": keys, "batch": batch, "rounds": rounds, "load_batch": LOAD_BATCH},
        "stele": json(&stele),
        "jmt_put_value_set": jmt.as_ref().map(json),
        "jmt_batch_put_value_sets": json(&jmt_batch),
        "updates_per_s_ratio_stele_over_jmt_put_value_set": jmt.as_ref().map(|j| stele.updates_per_s / j.updates_per_s),
        "updates_per_s_ratio_stele_over_jmt_best": stele.updates_per_s / best,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
