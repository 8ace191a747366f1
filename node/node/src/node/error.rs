//! Why a node could not start or had to stop, and why it refused a block.

use std::path::PathBuf;

use stele_exec::ExecError;
use stele_state::StateError;
use stele_types::codec::DecodeError;
use stele_types::{Address, Hash};
use thiserror::Error;

use crate::genesis::GenesisError;
use crate::mark::{DataLoss, MarkError};
use crate::net::NetError;
use crate::store::StoreError;
use crate::wal::WalError;

/// Why the node could not start or had to stop.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error(
        "this node's key {0} is not in the genesis validator set (a full node is started with role = \"full\")"
    )]
    NotAValidator(Address),
    #[error(
        "this full node's key {0} is a validator's: a full node needs a key of its own (`stele-node init --full` makes one)"
    )]
    ValidatorKeyOnFullNode(Address),
    #[error("the data directory belongs to another chain (genesis {found}, expected {expected})")]
    WrongGenesis { found: Hash, expected: Hash },
    #[error("the genesis hash recorded in the database is {len} bytes, not 32")]
    CorruptGenesisRecord { len: usize },
    #[error("joining by snapshot failed: {0}")]
    SnapshotSync(String),
    #[error("{} already holds a chain (height {height}); import into a new home, or `stele-node reset` first", .path.display())]
    NotEmpty { path: PathBuf, height: u64 },
    #[error("cannot create {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    State(#[from] StateError),
    #[error("block store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Wal(#[from] WalError),
    #[error("high-water mark: {0}")]
    Mark(#[from] MarkError),
    #[error("cannot start the high-water mark writer: {0}")]
    MarkWriter(#[source] std::io::Error),
    #[error("the database does not open even without its damaged log tail: {0}")]
    DamagedBeyondRepair(#[source] Box<NodeError>),
    #[error(
        "{}. This validator may have forgotten votes it signed, and voting again could sign twice for one slot, so it does not start. Once the cause is understood (a power loss, or a kill in the middle of a large write, can tear the log's tail), start it with `stele-node start --accept-data-loss`: it then sits out the views it may have voted in, as after a host crash, and catches up from its peers",
        losses_text(.0)
    )]
    DataLoss(Vec<DataLoss>),
    #[error("another stele-node is running on this home ({} is locked)", .lock.display())]
    HomeInUse { lock: PathBuf },
    #[error("network: {0}")]
    Network(#[from] NetError),
    #[error("consensus configuration: {0}")]
    Consensus(#[from] stele_consensus::ConfigError),
    #[error("VM configuration: {0}")]
    Vm(#[from] stele_vm::VmError),
    #[error("cannot start the execution thread: {0}")]
    ExecThreadStart(#[source] std::io::Error),
    #[error("the execution thread stopped")]
    ExecThreadGone,
    #[error("the state lock was poisoned by a panic")]
    Poisoned,
    #[error("the driver task failed: {0}")]
    DriverFailed(#[from] tokio::task::JoinError),
    #[error("cannot build block {height}: {source}")]
    Propose { height: u64, source: ExecError },
    #[error("committing block {height} failed: {source}")]
    Commit { height: u64, source: CommitError },
    #[error("reading the epoch from the state: {0}")]
    Epoch(String),
    #[error("reading the protocol parameters from the state: {0}")]
    Protocol(String),
    #[error(
        "block {height} is the first under a protocol upgrade this node cannot run: {reason}. The node stopped after block {}, everything up to it committed; start it again with a build that has that version",
        .height.saturating_sub(1)
    )]
    ProtocolUnsupported {
        height: u64,
        reason: stele_exec::Unsupported,
    },
}

pub(super) fn losses_text(losses: &[DataLoss]) -> String {
    let texts: Vec<String> = losses.iter().map(DataLoss::to_string).collect();
    texts.join("; ")
}

/// Why a certified block could not be committed. The certificate makes the
/// block final, so any of these means this node is broken, not the block.
#[derive(Debug, Error)]
pub enum CommitError {
    #[error("the block does not check: {0}")]
    Rejected(#[from] BlockRejected),
    #[error("its parent is not the committed tip")]
    ParentNotTip,
    #[error("block store: {0}")]
    Store(#[from] StoreError),
    #[error("storage: {0}")]
    State(#[from] StateError),
    #[error("the state lock was poisoned by a panic")]
    Poisoned,
}

/// Why this node refused a proposed (or synced) block. Counted in the
/// `blocks_rejected{reason}` metric by [`BlockRejected::reason`].
#[derive(Debug, Error)]
pub enum BlockRejected {
    #[error("undecodable: {0}")]
    Undecodable(#[source] DecodeError),
    #[error("its hash does not match the one voted on")]
    HashMismatch,
    #[error("chain id {0} is not ours")]
    WrongChain(u64),
    #[error("height {got} where {expected} was expected")]
    WrongHeight { got: u64, expected: u64 },
    #[error("its parent is neither the committed tip nor executed on it")]
    UnknownParent,
    #[error("the header's parent is not the proposal's")]
    NotTheProposalsParent,
    #[error("transaction root does not match")]
    TxRootMismatch,
    #[error("proposer is not the primary of view {view}")]
    NotThePrimary { view: u64 },
    #[error("epoch {got} where {expected} was expected")]
    WrongEpoch { got: u64, expected: u64 },
    #[error("the state gives no epoch: {0}")]
    NoEpoch(String),
    #[error("the header names validator set {got}, expected {expected}")]
    WrongNextValidators { got: Hash, expected: Hash },
    #[error("timestamp does not advance")]
    TimestampNotAfterParent,
    #[error("timestamp is too far in the future")]
    TimestampAhead,
    #[error("execution: {0}")]
    Execution(#[source] ExecError),
    #[error("receipts root {computed} does not match the header's {header}")]
    ReceiptsRootMismatch { computed: Hash, header: Hash },
    #[error("state root {computed} does not match the header's {header}")]
    StateRootMismatch { computed: Hash, header: Hash },
    // The two below are this node's trouble, not the block's; the block
    // is refused all the same (it cannot be checked).
    #[error("the committed state moved under the execution")]
    StateMoved,
    #[error("state: {0}")]
    State(#[source] StateError),
    #[error("the state lock was poisoned by a panic")]
    StatePoisoned,
}

impl BlockRejected {
    /// The `reason` label of the `blocks_rejected` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockRejected::Undecodable(_) => "undecodable",
            BlockRejected::HashMismatch => "hash_mismatch",
            BlockRejected::WrongChain(_) => "wrong_chain",
            BlockRejected::WrongHeight { .. } => "wrong_height",
            BlockRejected::UnknownParent => "unknown_parent",
            BlockRejected::NotTheProposalsParent => "not_the_proposals_parent",
            BlockRejected::TxRootMismatch => "tx_root_mismatch",
            BlockRejected::NotThePrimary { .. } => "not_the_primary",
            BlockRejected::WrongEpoch { .. } => "wrong_epoch",
            BlockRejected::NoEpoch(_) => "no_epoch",
            BlockRejected::WrongNextValidators { .. } => "wrong_next_validators",
            BlockRejected::TimestampNotAfterParent => "timestamp_not_after_parent",
            BlockRejected::TimestampAhead => "timestamp_ahead",
            BlockRejected::Execution(_) => "execution",
            BlockRejected::ReceiptsRootMismatch { .. } => "receipts_root_mismatch",
            BlockRejected::StateRootMismatch { .. } => "state_root_mismatch",
            BlockRejected::StateMoved => "state_moved",
            BlockRejected::State(_) => "state",
            BlockRejected::StatePoisoned => "state_poisoned",
        }
    }
}
