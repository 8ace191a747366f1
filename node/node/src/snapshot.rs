//! State snapshots (ADR 0012, `docs/snapshot-format.md`): a cut of the
//! state tree at a height into parts, a chunk of entries per part, each
//! checkable on its own against the certified state root, with the block
//! of that height and the chain of epochs from the genesis that certifies
//! it. `stele-node snapshot export` / `import` write and read them as one
//! file (backups); snapshot sync will serve the same chunks to peers.

mod create;
pub mod format;
mod restore;
pub mod synthetic;

pub use create::{
    DirSink, Exported, FileSink, INDEX_FILE, Sink, chunk_file, export, export_folder,
};
pub use restore::{
    Imported, check_anchor, check_chunk, decode_index, import, import_folder, import_parts,
};

use thiserror::Error;

/// Why a snapshot could not be made, read or imported.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] stele_state::StateError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the node has committed no block yet")]
    NothingCommitted,
    #[error("block {height} is missing from the block store")]
    MissingBlock { height: u64 },
    #[error("the block store has no epoch history (start the node once with this build)")]
    NoEpochHistory,
    #[error("the flat index changed while it was read")]
    FlatChanged,
    #[error("the state disagrees with its certified root: {0}")]
    Disagrees(String),
    #[error("not a Stele snapshot file")]
    NotASnapshot,
    #[error("snapshot format version {0} is not one this build reads (1)")]
    Version(u32),
    #[error("the snapshot file is truncated or damaged")]
    Truncated,
    #[error("the snapshot's index does not decode: {0}")]
    Decode(#[from] stele_types::codec::DecodeError),
    #[error("the snapshot does not tie to this chain: {0}")]
    Anchor(String),
    #[error("the snapshot's parts do not make its certified root: {0}")]
    Manifest(String),
    #[error("chunk {index} is refused: {reason}")]
    Chunk { index: usize, reason: String },
}
