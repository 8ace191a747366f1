//! The one error type of `stele-state`.

use stele_types::Hash;
use thiserror::Error;

use crate::node::NodeKey;

/// Why a state operation failed. Corrupt or missing data on disk is always
/// reported here, never by a panic or a wrong answer.
#[derive(Debug, Error)]
pub enum StateError {
    #[cfg(feature = "rocksdb")]
    #[error("RocksDB error: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("the state is in memory: it has no {what}")]
    InMemory { what: &'static str },
    #[error("the prepared commit was made by a state on another store")]
    ForeignBatch,
    #[error("the forked chain's state: {reason}")]
    Remote { reason: String },
    #[error("tree node {node} is missing from the database")]
    MissingNode { node: Box<NodeKey> },
    #[error("tree node {node} is corrupt: {reason}")]
    CorruptNode {
        node: Box<NodeKey>,
        reason: &'static str,
    },
    #[error("tree node {node} hashes to {computed}, but its parent records {expected}")]
    NodeHashMismatch {
        node: Box<NodeKey>,
        expected: Hash,
        computed: Hash,
    },
    #[error("state metadata {what} is corrupt: {reason}")]
    CorruptMeta {
        what: &'static str,
        reason: &'static str,
    },
    #[error("version {version} was never committed (latest: {latest:?})")]
    UnknownVersion { version: u64, latest: Option<u64> },
    #[error("version {version} was pruned (oldest kept: {oldest})")]
    VersionPruned { version: u64, oldest: u64 },
    #[error("cannot commit version {version}: the latest version is {latest}")]
    VersionNotIncreasing { version: u64, latest: u64 },
    #[error("prepared commit was built on version {base:?}, but the latest is now {latest:?}")]
    StalePreparedCommit {
        base: Option<u64>,
        latest: Option<u64>,
    },
    #[error("state key is {len} bytes, over the maximum of {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error("value is {len} bytes, over the maximum of {max}")]
    ValueTooLarge { len: usize, max: usize },
    #[error("{len} writes in one commit, over the maximum of {max}")]
    TooManyWrites { len: usize, max: usize },
    #[error("iteration limit {limit} is over the maximum of {max}")]
    IterLimitTooLarge { limit: usize, max: usize },
    #[error("column family {name} is not open")]
    MissingColumnFamily { name: String },
    #[error("column family name {name} is reserved for the state")]
    ReservedColumnFamily { name: String },
    #[error("cannot import into a state that has version {latest}")]
    ImportIntoNonEmpty { latest: u64 },
    #[error("import entry {index} is not after the one before it in key-hash order")]
    ImportOutOfOrder { index: u64 },
    #[error("checkpoint at depth {depth} is not open ({open} checkpoints are)")]
    UnknownCheckpoint { depth: usize, open: usize },
}

impl StateError {
    /// The RocksDB error behind this one, if any.
    #[cfg(feature = "rocksdb")]
    fn db(&self) -> Option<&rocksdb::Error> {
        match self {
            StateError::Db(e) => Some(e),
            _ => None,
        }
    }

    /// Whether RocksDB found its files damaged (a torn or corrupt
    /// write-ahead log under [`crate::WalRecovery::Strict`], a bad table
    /// checksum), as opposed to failing to reach them.
    pub fn is_corruption(&self) -> bool {
        #[cfg(feature = "rocksdb")]
        let corrupt = self
            .db()
            .is_some_and(|e| e.kind() == rocksdb::ErrorKind::Corruption);
        #[cfg(not(feature = "rocksdb"))]
        let corrupt = false;
        corrupt
    }

    /// Whether opening failed because another process holds the
    /// database's `LOCK` file.
    pub fn is_locked(&self) -> bool {
        // RocksDB reports it as an I/O error naming the lock file: "While
        // lock file: .../LOCK: Resource temporarily unavailable" from
        // another process, "lock hold by current process ... .../LOCK" from
        // this one.
        #[cfg(feature = "rocksdb")]
        let locked = self.db().is_some_and(|e| {
            e.kind() == rocksdb::ErrorKind::IOError
                && (e.as_ref().contains("While lock file")
                    || e.as_ref().contains("lock hold by current process"))
        });
        #[cfg(not(feature = "rocksdb"))]
        let locked = false;
        locked
    }
}
