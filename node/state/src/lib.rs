//! Stele's authenticated, versioned Merkle state, on RocksDB (feature
//! `rocksdb`, on by default) or in memory.
//!
//! A sparse Merkle tree in the Jellyfish family: 16-ary nodes over Keccak-256
//! key hashes, single-leaf subtrees collapsed, one version per block height,
//! nodes stored under version-prefixed keys (`docs/adr/0003-merkle-state.md`).
//! Around it: atomic synced commits the node can add its own writes to,
//! pruning through a stale-node index, proofs checkable with `stele-types`
//! alone, an ordered flat index for prefix listing, and the executor's
//! overlay with nested checkpoints.

mod cache;
mod error;
mod flat;
#[cfg(feature = "rocksdb")]
mod import;
mod kv;
mod node;
mod overlay;
mod prune;
mod store;
mod tombstones;
mod tree;
mod view;

pub use error::StateError;
pub use flat::{FlatCursor, Page};
#[cfg(feature = "rocksdb")]
pub use import::Importer;
pub use kv::RemoteReads;
pub use node::{DbNodeKey, NibblePath, NodeKey};
pub use overlay::{Checkpoint, Overlay, Snapshot, StateRead, WriteSet};
pub use prune::PruneStats;
pub use stele_types::proof::{Namespace, ProofError, SparseMerkleProof, StateKey};
pub use store::{
    CF_FLAT, CF_META, CF_NODES, CF_ROOTS, CF_STALE, PreparedCommit, State, StateConfig,
    WalRecovery, state_key_of_flat,
};
pub use view::CommittedView;

/// Re-exported so callers can build their own writes into a commit's batch.
#[cfg(feature = "rocksdb")]
pub use rocksdb;
