//! The shell around the tree: opening a store (RocksDB on disk or memory,
//! see [`crate::kv`]), atomic synced commits, reads and proofs at any
//! retained version.

use std::collections::BTreeMap;
#[cfg(feature = "rocksdb")]
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

#[cfg(feature = "rocksdb")]
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRecoveryMode, Options, WriteBatch,
};
use stele_types::Hash;
use stele_types::codec::Encode;
use stele_types::proof::{STATE_KEY_BYTES_MAX, SparseMerkleProof, StateKey};

use crate::cache::{Entry, NodeCache};
use crate::error::StateError;
use crate::kv::{Cf, Pending, Reader, RemoteReads, Store};
use crate::node::{Child, DB_KEY_BYTES_MAX, NewNode, Node, NodeKey};
use crate::tombstones::Tombstones;
use crate::tree::{self, NodeSource};

/// Tree nodes, keyed by [`NodeKey::to_db_key`].
pub const CF_NODES: &str = "state_nodes";
/// Stale-node index: `stale_since (u64 BE) || node key` for pruning.
pub const CF_STALE: &str = "state_stale";
/// Root pointer of every retained version, keyed by version (u64 BE).
pub const CF_ROOTS: &str = "state_roots";
/// Flat index at the latest version: `namespace || raw key -> value`.
pub const CF_FLAT: &str = "state_flat";
/// Latest and oldest retained versions.
pub const CF_META: &str = "state_meta";

#[cfg(feature = "rocksdb")]
const STATE_CFS: [&str; 5] = [CF_NODES, CF_STALE, CF_ROOTS, CF_FLAT, CF_META];
pub(crate) const META_LATEST: &[u8] = b"latest";
pub(crate) const META_OLDEST: &[u8] = b"oldest";

/// Tunables of the state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// How many of the most recent versions [`State::prune`] keeps readable.
    pub versions_kept: u64,
    /// Largest value stored under one key (contract code is the largest).
    pub value_bytes_max: usize,
    /// Most writes in one commit.
    pub commit_writes_max: usize,
    /// Most entries returned by one [`State::iter_prefix`] page.
    pub iter_limit_max: usize,
    /// Most stale nodes deleted per write batch while pruning.
    pub prune_batch_nodes_max: usize,
    /// RocksDB block cache size.
    pub block_cache_bytes: usize,
    /// Most bytes of verified internal nodes kept in memory (a node with
    /// many children takes about 1.4 KB, one with few about 200 bytes;
    /// see `cache.rs`); 0 disables the cache.
    pub node_cache_bytes_max: usize,
    /// Flat-index deletes in one namespace, since its last compaction, that
    /// make the state compact the range they span in the background (0
    /// never does). See [`crate::tombstones`].
    pub flat_deletes_compact: u64,
    /// What opening does with a damaged RocksDB write-ahead log.
    pub wal_recovery: WalRecovery,
    /// RocksDB's write-ahead log files together at most: past it, the
    /// column families holding the oldest file are flushed so it can go.
    /// Without a bound, a column family written rarely (the block store's
    /// metadata, the epochs) keeps every log file since its last flush on
    /// disk, so deleted blocks and pruned versions stay there too, and a
    /// restart replays them all.
    pub wal_bytes_max: u64,
}

/// What [`State::open`] does when RocksDB's write-ahead log is torn or
/// corrupt (a cut tail, a flipped byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalRecovery {
    /// Refuse to open ([`StateError::is_corruption`]): the writes in the
    /// damaged part, some of them perhaps synced, would otherwise be
    /// dropped without a word.
    #[default]
    Strict,
    /// Open with the writes before the first damaged record and drop the
    /// rest, as RocksDB does by default. Only after an operator accepted
    /// the loss.
    DropDamagedTail,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            versions_kept: 1000,
            value_bytes_max: 2 << 20,
            commit_writes_max: 1 << 20,
            iter_limit_max: 10_000,
            prune_batch_nodes_max: 100_000,
            block_cache_bytes: 256 << 20,
            node_cache_bytes_max: 256 << 20,
            flat_deletes_compact: 256,
            wal_recovery: WalRecovery::Strict,
            wal_bytes_max: 256 << 20,
        }
    }
}

/// The versioned state, on RocksDB ([`State::open`]) or in memory
/// ([`State::in_memory`]). Reads take `&self`; commits and pruning take
/// `&mut self`, so only one writer exists.
#[derive(Debug)]
pub struct State {
    /// Only this struct writes to it.
    pub(crate) store: Store,
    pub(crate) config: StateConfig,
    pub(crate) latest: Option<u64>,
    pub(crate) oldest: Option<u64>,
    pub(crate) cache: NodeCache,
    tombstones: Tombstones,
    compaction: Option<JoinHandle<()>>,
}

impl Drop for State {
    /// Waits for a background compaction, so the database is closed (and
    /// its lock released) when the state is gone.
    fn drop(&mut self) {
        if let Some(handle) = self.compaction.take() {
            // A panicked compaction thread has nothing left to clean up.
            let _ = handle.join();
        }
    }
}

/// A block's state changes, applied to the tree but not yet written. The node
/// may add its own writes (block store, receipts) to [`Self::batch_mut`] so
/// that [`State::apply`] makes all of them durable in one synced batch.
pub struct PreparedCommit {
    version: u64,
    base: Option<u64>,
    root: Hash,
    batch: Pending,
    /// The new internal nodes, for the node cache once the batch is durable.
    internal_nodes: Vec<(NodeKey, Entry)>,
    /// The nodes this commit makes stale, for the node cache to forget.
    stale_nodes: Vec<NodeKey>,
    /// The flat-index keys this commit deletes.
    deletes: Tombstones,
    /// Tree nodes written by this commit.
    pub nodes_written: usize,
    /// Tree nodes this commit made stale.
    pub nodes_stale: usize,
}

impl std::fmt::Debug for PreparedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCommit")
            .field("version", &self.version)
            .field("base", &self.base)
            .field("root", &self.root)
            .field("batch_writes", &self.batch.len())
            .field("nodes_written", &self.nodes_written)
            .field("nodes_stale", &self.nodes_stale)
            .finish()
    }
}

impl PreparedCommit {
    /// The version this commit creates.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The latest version when it was prepared; [`State::apply`] refuses it
    /// once that changed.
    pub fn base(&self) -> Option<u64> {
        self.base
    }

    /// The state root of the new version.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The write batch, for adding writes to the caller's column families;
    /// an error for a state in memory, which has none.
    #[cfg(feature = "rocksdb")]
    pub fn batch_mut(&mut self) -> Result<&mut WriteBatch, StateError> {
        match &mut self.batch {
            Pending::Rocks(batch) => Ok(batch),
            Pending::Memory(_) => Err(StateError::InMemory {
                what: "column families of its own caller",
            }),
        }
    }
}

/// Reads nodes from the nodes column family, verifying every node against the
/// hash its parent records so corruption is an error, not a wrong answer.
pub(crate) struct DbNodes<'a> {
    reader: Reader<'a>,
    cache: &'a NodeCache,
}

impl NodeSource for DbNodes<'_> {
    fn node(&self, key: &NodeKey, expected: &Hash) -> Result<Node, StateError> {
        if let Some(node) = self.cache.get(key) {
            return Ok(Node::Internal(node));
        }
        let mut node = self
            .reader
            .get_with(Cf::Nodes, &key.to_db_key(), Node::decode)?
            .ok_or_else(|| StateError::MissingNode {
                node: Box::new(*key),
            })?
            .map_err(|reason| StateError::CorruptNode {
                node: Box::new(*key),
                reason,
            })?;
        // Checking an internal node fills its memo, which the cache keeps.
        let computed = match &mut node {
            Node::Internal(internal) => internal.hash_memo(),
            Node::Leaf(leaf) => leaf.hash(),
        };
        if computed != *expected {
            return Err(StateError::NodeHashMismatch {
                node: Box::new(*key),
                expected: *expected,
                computed,
            });
        }
        if let Node::Internal(internal) = &node {
            self.cache.insert_entry(*key, Entry::copied(internal));
        }
        Ok(node)
    }
}

impl State {
    /// A new, empty state in memory (ADR 0013): the same tree, proofs and
    /// iteration as on disk, for tests and tools that do not keep it. It
    /// has no column families but its own, so [`State::db`] and
    /// [`PreparedCommit::batch_mut`] are errors on it.
    pub fn in_memory(config: StateConfig) -> State {
        State::with_store(Store::memory(), config)
    }

    /// A new state in memory over a remote chain (the testkit's fork):
    /// reads of keys it never wrote nor deleted go to `remote` (through
    /// [`CommittedView`](crate::CommittedView) and its cursors, which ask
    /// [`RemoteReads::iterate`] first). Its roots and proofs are those of
    /// what it holds, not the remote's.
    pub fn in_memory_over(config: StateConfig, remote: Arc<dyn RemoteReads>) -> State {
        State::with_store(Store::memory_over(remote), config)
    }

    fn with_store(store: Store, config: StateConfig) -> State {
        let cache = NodeCache::new(config.node_cache_bytes_max);
        State {
            store,
            config,
            latest: None,
            oldest: None,
            cache,
            tombstones: Tombstones::default(),
            compaction: None,
        }
    }

    /// Opens (or creates) the state at `path` with only the state's own
    /// column families.
    #[cfg(feature = "rocksdb")]
    pub fn open(path: impl AsRef<Path>, config: StateConfig) -> Result<State, StateError> {
        State::open_with_column_families(path, config, &[])
    }

    /// Opens (or creates) the state at `path`, also opening the caller's
    /// `extra` column families so its writes can join state commits.
    #[cfg(feature = "rocksdb")]
    pub fn open_with_column_families(
        path: impl AsRef<Path>,
        config: StateConfig,
        extra: &[&str],
    ) -> Result<State, StateError> {
        for name in extra {
            if STATE_CFS.contains(name) || *name == rocksdb::DEFAULT_COLUMN_FAMILY_NAME {
                return Err(StateError::ReservedColumnFamily {
                    name: (*name).to_owned(),
                });
            }
        }
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_max_total_wal_size(config.wal_bytes_max);
        db_opts.set_wal_recovery_mode(match config.wal_recovery {
            WalRecovery::Strict => DBRecoveryMode::AbsoluteConsistency,
            WalRecovery::DropDamagedTail => DBRecoveryMode::PointInTime,
        });
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_compression_type(DBCompressionType::Lz4);
        // RocksDB must open every existing column family; keep ones a caller
        // registered earlier even if not named this time.
        let mut names: Vec<String> = STATE_CFS.iter().map(|s| (*s).to_owned()).collect();
        names.extend(extra.iter().map(|s| (*s).to_owned()));
        if let Ok(existing) = DB::list_cf(&db_opts, path.as_ref()) {
            names.extend(existing);
        }
        names.sort();
        names.dedup();
        let descriptors: Vec<ColumnFamilyDescriptor> = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, cf_opts.clone()))
            .collect();
        let db = Arc::new(DB::open_cf_descriptors(&db_opts, path, descriptors)?);
        let mut state = State::with_store(Store::Rocks(db), config);
        state.latest = state.read_meta(META_LATEST, "latest version")?;
        state.oldest = state.read_meta(META_OLDEST, "oldest version")?;
        if state.latest.is_some() != state.oldest.is_some() {
            return Err(StateError::CorruptMeta {
                what: "versions",
                reason: "only one of latest and oldest is recorded",
            });
        }
        Ok(state)
    }

    #[cfg(feature = "rocksdb")]
    fn read_meta(&self, key: &[u8], what: &'static str) -> Result<Option<u64>, StateError> {
        let reader = self.store.reader()?;
        let Some(array) = reader.get_with(Cf::Meta, key, |b| <[u8; 8]>::try_from(b))? else {
            return Ok(None);
        };
        let array = array.map_err(|_| StateError::CorruptMeta {
            what,
            reason: "not 8 bytes",
        })?;
        Ok(Some(u64::from_le_bytes(array)))
    }

    /// The underlying database, for the caller's column families; an error
    /// for a state in memory.
    #[cfg(feature = "rocksdb")]
    pub fn db(&self) -> Result<&DB, StateError> {
        match &self.store {
            Store::Rocks(db) => Ok(db),
            Store::Memory(_) => Err(StateError::InMemory {
                what: "RocksDB database",
            }),
        }
    }

    /// Whether the state is in memory ([`State::in_memory`]).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.store, Store::Memory(_))
    }

    /// A column family opened with this state (the caller's or the state's).
    #[cfg(feature = "rocksdb")]
    pub fn column_family(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.cf(name)
    }

    #[cfg(feature = "rocksdb")]
    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db()?
            .cf_handle(name)
            .ok_or_else(|| StateError::MissingColumnFamily {
                name: name.to_owned(),
            })
    }

    pub(crate) fn nodes(&self) -> Result<DbNodes<'_>, StateError> {
        Ok(DbNodes {
            reader: self.store.reader()?,
            cache: &self.cache,
        })
    }

    /// The configuration the state was opened with.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// The newest committed version, `None` before the first commit.
    pub fn latest_version(&self) -> Option<u64> {
        self.latest
    }

    /// The oldest version still readable, `None` before the first commit.
    pub fn oldest_version(&self) -> Option<u64> {
        self.oldest
    }

    /// The root pointer of `version`, after checking it is retained.
    pub(crate) fn root_child(&self, version: u64) -> Result<Option<Child>, StateError> {
        let unknown = StateError::UnknownVersion {
            version,
            latest: self.latest,
        };
        let (Some(latest), Some(oldest)) = (self.latest, self.oldest) else {
            return Err(unknown);
        };
        if version > latest {
            return Err(unknown);
        }
        if version < oldest {
            return Err(StateError::VersionPruned { version, oldest });
        }
        self.store
            .reader()?
            .get_with(Cf::Roots, &version.to_be_bytes(), decode_root)?
            .ok_or(unknown)?
    }

    /// The state root of `version`.
    pub fn root(&self, version: u64) -> Result<Hash, StateError> {
        Ok(self.root_child(version)?.map_or(Hash::ZERO, |c| c.hash))
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &StateKey, version: u64) -> Result<Option<Vec<u8>>, StateError> {
        self.get_hashed(&key.hash(), version)
    }

    /// The value at key hash `key` at `version`.
    pub fn get_hashed(&self, key: &Hash, version: u64) -> Result<Option<Vec<u8>>, StateError> {
        tree::get(&self.nodes()?, self.root_child(version)?, key)
    }

    /// The value of `key` at `version` and a proof of it against
    /// [`Self::root`], checkable with `stele_types::proof` alone.
    pub fn prove(
        &self,
        key: &StateKey,
        version: u64,
    ) -> Result<(Option<Vec<u8>>, SparseMerkleProof), StateError> {
        tree::prove(&self.nodes()?, self.root_child(version)?, &key.hash())
    }

    /// Applies `writes` (`None` deletes) on top of the latest version as
    /// `version` and makes it durable; returns the new root.
    pub fn commit(
        &mut self,
        version: u64,
        writes: &BTreeMap<StateKey, Option<Vec<u8>>>,
    ) -> Result<Hash, StateError> {
        let prepared = self.prepare_commit(version, writes)?;
        self.apply(prepared)
    }

    /// Computes `version` from `writes` without writing anything yet.
    pub fn prepare_commit(
        &self,
        version: u64,
        writes: &BTreeMap<StateKey, Option<Vec<u8>>>,
    ) -> Result<PreparedCommit, StateError> {
        if let Some(latest) = self.latest
            && version <= latest
        {
            return Err(StateError::VersionNotIncreasing { version, latest });
        }
        if writes.len() > self.config.commit_writes_max {
            return Err(StateError::TooManyWrites {
                len: writes.len(),
                max: self.config.commit_writes_max,
            });
        }
        for (key, value) in writes {
            if key.key.len() > STATE_KEY_BYTES_MAX {
                return Err(StateError::KeyTooLong {
                    len: key.key.len(),
                    max: STATE_KEY_BYTES_MAX,
                });
            }
            let len = value.as_ref().map_or(0, Vec::len);
            if len > self.config.value_bytes_max {
                return Err(StateError::ValueTooLarge {
                    len,
                    max: self.config.value_bytes_max,
                });
            }
        }
        let mut hashed: Vec<(Hash, Option<&[u8]>)> = writes
            .iter()
            .map(|(k, v)| (k.hash(), v.as_deref()))
            .collect();
        hashed.sort_unstable_by_key(|a| a.0);
        assert!(
            hashed.windows(2).all(|w| w[0].0 != w[1].0),
            "invariant: distinct state keys have distinct Keccak-256 hashes"
        );
        let root = match self.latest {
            Some(latest) => self.root_child(latest)?,
            None => None,
        };
        let update = tree::update_parallel(&self.nodes()?, root, version, &hashed)?;

        let mut batch = self.store.batch()?;
        let mut internal_nodes = Vec::with_capacity(update.new_nodes.len());
        let nodes_written = update.new_nodes.len();
        for (key, node) in update.new_nodes {
            let encoded = node.encode();
            batch.put(Cf::Nodes, &key.to_db_key(), &encoded);
            if let NewNode::Internal(internal) = node {
                // The cache keeps small nodes in the encoding just written.
                let entry = if Entry::is_packed(&internal) {
                    Entry::packed(encoded)
                } else {
                    Entry::Full(internal)
                };
                internal_nodes.push((key, entry));
            }
        }
        for key in &update.stale {
            let (stale, len) = stale_key(version, key);
            batch.put(Cf::Stale, &stale[..len], b"");
        }
        let nodes_stale = update.stale.len();
        batch.put(Cf::Roots, &version.to_be_bytes(), &encode_root(update.root));
        let mut deletes = Tombstones::default();
        for (key, value) in writes {
            match value {
                Some(v) => batch.put(Cf::Flat, &flat_key(key), v),
                None => {
                    batch.delete(Cf::Flat, &flat_key(key));
                    deletes.record(key);
                }
            }
        }
        batch.put(Cf::Meta, META_LATEST, &version.to_le_bytes());
        if self.oldest.is_none() {
            batch.put(Cf::Meta, META_OLDEST, &version.to_le_bytes());
        }
        Ok(PreparedCommit {
            version,
            base: self.latest,
            root: update.root.map_or(Hash::ZERO, |c| c.hash),
            batch: batch.finish(),
            internal_nodes,
            deletes,
            nodes_written,
            nodes_stale,
            stale_nodes: update.stale,
        })
    }

    /// Writes a prepared commit (and whatever the caller added to its batch)
    /// in one synced RocksDB write; returns the new root.
    pub fn apply(&mut self, prepared: PreparedCommit) -> Result<Hash, StateError> {
        self.apply_with(prepared, true)
    }

    /// [`State::apply`] without waiting for the disk: the write is atomic and
    /// survives the process crashing (it is in the operating system's
    /// buffers), and becomes durable against power loss with the next
    /// synced write to this database, whatever column family that write is
    /// to (RocksDB has one log for all of them). For a caller that can
    /// rebuild the commit from something it syncs later, such as a
    /// consensus log in the same database.
    pub fn apply_unsynced(&mut self, prepared: PreparedCommit) -> Result<Hash, StateError> {
        self.apply_with(prepared, false)
    }

    fn apply_with(&mut self, prepared: PreparedCommit, sync: bool) -> Result<Hash, StateError> {
        if prepared.base != self.latest {
            return Err(StateError::StalePreparedCommit {
                base: prepared.base,
                latest: self.latest,
            });
        }
        self.store.write(prepared.batch, sync)?;
        assert!(
            self.latest.is_none_or(|l| l < prepared.version),
            "invariant: the committed version only grows"
        );
        self.latest = Some(prepared.version);
        self.oldest.get_or_insert(prepared.version);
        self.cache.forget(&prepared.stale_nodes);
        for (key, entry) in prepared.internal_nodes {
            self.cache.insert_entry(key, entry);
        }
        self.tombstones.merge(prepared.deletes);
        #[cfg(feature = "rocksdb")]
        self.compact_deleted_ranges();
        Ok(prepared.root)
    }

    /// Starts a background compaction of the flat-index ranges whose
    /// deletes reached [`StateConfig::flat_deletes_compact`], unless one is
    /// still running (its ranges wait for the next commit). A memory
    /// store has no tombstones to drop.
    #[cfg(feature = "rocksdb")]
    fn compact_deleted_ranges(&mut self) {
        let Store::Rocks(db) = &self.store else {
            return;
        };
        if self.config.flat_deletes_compact == 0
            || self.compaction.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        let db = Arc::clone(db);
        let ranges = self.tombstones.take_due(self.config.flat_deletes_compact);
        if ranges.is_empty() {
            return;
        }
        if let Some(done) = self.compaction.take() {
            let _ = done.join();
        }
        let spawned = std::thread::Builder::new()
            .name("state-compact".into())
            .spawn(move || crate::tombstones::compact(&db, CF_FLAT, &ranges));
        match spawned {
            Ok(handle) => self.compaction = Some(handle),
            // Without a thread the tombstones stay until RocksDB's own
            // compactions; iteration stays correct, only slower.
            Err(e) => tracing::warn!(error = %e, "could not start the flat-index compaction"),
        }
    }

    /// Waits until the background compaction of deleted ranges (if any)
    /// has finished; for tests and benchmarks.
    pub fn wait_for_compaction(&mut self) {
        if let Some(handle) = self.compaction.take() {
            let _ = handle.join();
        }
    }

    /// Compacts every state column family (used to measure size on disk);
    /// nothing to do in memory.
    pub fn compact(&self) -> Result<(), StateError> {
        #[cfg(feature = "rocksdb")]
        if let Store::Rocks(db) = &self.store {
            for name in STATE_CFS {
                db.compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
            }
        }
        Ok(())
    }
}

/// Stale-index key: the version that replaced the node, then the node key
/// (on the stack: a commit writes one per node it replaces).
pub(crate) fn stale_key(since: u64, node: &NodeKey) -> ([u8; 8 + DB_KEY_BYTES_MAX], usize) {
    let node = node.to_db_key();
    let mut out = [0u8; 8 + DB_KEY_BYTES_MAX];
    out[..8].copy_from_slice(&since.to_be_bytes());
    out[8..8 + node.len()].copy_from_slice(&node);
    (out, 8 + node.len())
}

/// Flat-index key: the namespace encoding (fixed length per namespace), then
/// the raw key, so a namespace's keys are contiguous and in raw-key order.
pub(crate) fn flat_key(key: &StateKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.namespace.encoded_len() + key.key.len());
    key.namespace.encode_to(&mut out);
    out.extend_from_slice(&key.key);
    out
}

/// The state key of a flat-index key (its namespace, whose length its tag
/// fixes, then the raw key); `None` if it is none.
pub fn state_key_of_flat(bytes: &[u8]) -> Option<StateKey> {
    let ns_len = match bytes.first()? {
        3 => 21,
        _ => 1,
    };
    let limits = stele_types::Limits::DEFAULT;
    let namespace = stele_types::decode(bytes.get(..ns_len)?, &limits).ok()?;
    let key = bytes[ns_len..].to_vec();
    (key.len() <= STATE_KEY_BYTES_MAX).then_some(StateKey { namespace, key })
}

/// Root pointer encoding: 0 (empty tree), or 1, version (u64 LE), hash, and
/// whether the root is a leaf (0 or 1).
pub(crate) fn encode_root(root: Option<Child>) -> Vec<u8> {
    match root {
        None => vec![0],
        Some(c) => {
            let mut out = Vec::with_capacity(42);
            out.push(1);
            out.extend_from_slice(&c.version.to_le_bytes());
            out.extend_from_slice(&c.hash.0);
            out.push(u8::from(c.leaf));
            out
        }
    }
}

fn decode_root(bytes: &[u8]) -> Result<Option<Child>, StateError> {
    let corrupt = |reason| StateError::CorruptMeta {
        what: "root pointer",
        reason,
    };
    match bytes {
        [0] => Ok(None),
        [1, rest @ ..] if rest.len() == 41 => {
            let mut version = [0u8; 8];
            version.copy_from_slice(&rest[..8]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&rest[8..40]);
            let leaf = match rest[40] {
                0 => false,
                1 => true,
                _ => return Err(corrupt("leaf flag is not 0 or 1")),
            };
            Ok(Some(Child {
                version: u64::from_le_bytes(version),
                hash: Hash(hash),
                leaf,
            }))
        }
        _ => Err(corrupt("bad tag or length")),
    }
}
