//! A Stele node: the chain follower every node runs, and the validator role
//! on top of it.
//!
//! Files, in the order a block goes through them:
//! - `start.rs` wires a node together: it opens the data dir (`open.rs`:
//!   genesis check, RocksDB recovery against the high-water mark, VM warm-up),
//!   starts the transport, the gossip tasks and the driver.
//! - `shared.rs`: [`Shared`], what the driver, the RPC server and the gossip
//!   tasks share; admission of transactions goes through its methods.
//! - `gossip.rs`: the gossip wire format, the router that sends gossip to
//!   admission and everything else to the driver, and batched admission.
//! - `driver.rs`: one task that owns both roles and dispatches events to
//!   them: inbound messages, the view timer, sync results, the proposal
//!   deadline, shutdown.
//! - `follower.rs`: the chain follower: the committed tip, the blocks
//!   executed above it (the pipeline), checking, executing and committing
//!   blocks; `catch_up.rs`: fetching missed blocks from peers and serving
//!   them.
//! - `validator.rs`: the validator role: the PBFT replica, its consensus log,
//!   carrying out its actions, votes' retransmission; `propose.rs`: the
//!   proposer (when to propose, and building the block), owned by it.
//! - `view_timer.rs`: the view timer, held back while no quorum is in reach.
//! - `exec_thread.rs`: where execution and commits run (ADR 0007).
//!
//! Invariants (ADR 0007 has the reasoning):
//! - a `Persist` record is written to the consensus log, synced when it must
//!   be, before any later action of the same batch runs (so nothing is
//!   signed and sent that a restart could forget);
//! - a block is committed only with a certificate the replica accepted, and
//!   only if its re-executed state root matches its header; the block, its
//!   receipts, its certificate and its state version land in one atomic
//!   batch, made durable by the next synced consensus-log write;
//! - blocks execute and commit one job at a time, in order: in place on the
//!   driver's worker thread under [`runtime`], on a dedicated thread
//!   otherwise;
//! - a block is validated (and proposed) on its parent: the committed tip,
//!   or a block executed on it and still in its commit round (up to
//!   `consensus.pipeline_blocks` in flight). It then executes on the tip's
//!   version with the uncommitted blocks' writes layered on top; a proposal
//!   whose parent is not executed here waits. Committing a block re-checks
//!   that its parent is the tip.

mod catch_up;
mod certified;
mod driver;
mod epochs;
mod error;
mod exec_thread;
mod follower;
mod gossip;
mod join_progress;
mod open;
mod propose;
mod protocol;
mod serve;
mod shared;
mod snapshot_sync;
mod snapshots;
mod start;
mod validator;
mod view_timer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stele_state::StateConfig;
use stele_types::{Hash, SecretKey};
use stele_vm::EXEC_THREAD_STACK_BYTES;
use tokio::sync::{broadcast, watch};
use tracing::warn;

use crate::genesis::Genesis;
use crate::mempool::AdmitError;
use crate::net::{NetConfig, PeerInfo};
use crate::store::CommittedBlock;

pub use epochs::EpochView;
pub use error::{BlockRejected, CommitError, NodeError};
pub use join_progress::{JoinPhase, JoinProgress};
pub use open::{init_data_dir, open_database, open_empty_database, record_genesis_hash};
pub use protocol::ProtocolView;
pub use shared::Shared;
pub use snapshots::{kept_heights, snapshots_dir};

/// The state snapshots a node keeps for its peers (ADR 0012).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// One every this many heights; 0 makes none.
    pub interval_blocks: u64,
    /// How many of the newest are kept.
    pub kept: usize,
    /// Entries a chunk holds at most (smaller chunks: more of them, fetched
    /// from more peers at once).
    pub chunk_entries: usize,
}

impl Default for SnapshotOptions {
    /// None made.
    fn default() -> Self {
        SnapshotOptions {
            interval_blocks: 0,
            kept: 2,
            chunk_entries: crate::snapshot::format::CHUNK_ENTRIES_TARGET,
        }
    }
}

/// Column family for the node's own metadata (the genesis it belongs to).
pub const CF_NODE_META: &str = "node_meta";

/// Where in the data dir the VM keeps compiled contracts (node-local; wiping
/// it only costs compiles at the next start).
pub const ARTIFACT_DIR: &str = "wasm";

/// Consensus timings and block production pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusOptions {
    /// View-change timer for the first attempt (doubles up to the max).
    /// `None` follows the chain's protocol parameters (the genesis's, then
    /// each upgrade's); a value overrides them on this node only.
    pub view_timeout_ms: Option<u64>,
    pub view_timeout_max_ms: Option<u64>,
    /// Shortest time between two proposals of this node when transactions
    /// are waiting (lets a block fill up).
    pub block_interval_ms: u64,
    /// How long the primary waits before proposing an empty block.
    pub empty_block_interval_ms: u64,
    /// Most blocks proposed and not committed yet: with 2, the primary
    /// proposes block n+1 while n is in its commit round, executed on n's
    /// uncommitted writes; with 1 (the default) each proposal waits for the
    /// previous commit. More makes more, smaller blocks: it pays where a
    /// round is long against a block's CPU cost (validators far apart), and
    /// on one small machine it costs throughput (docs/benchmarks.md).
    pub pipeline_blocks: u64,
}

/// Most blocks in flight [`ConsensusOptions::pipeline_blocks`] may ask for.
pub const PIPELINE_BLOCKS_MAX: u64 = 4;

impl Default for ConsensusOptions {
    fn default() -> Self {
        ConsensusOptions {
            view_timeout_ms: None,
            view_timeout_max_ms: None,
            block_interval_ms: 5,
            empty_block_interval_ms: 500,
            pipeline_blocks: 1,
        }
    }
}

/// What a node does (ADR 0009).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes part in consensus: its key must be in the validator set.
    #[default]
    Validator,
    /// A full node: follows the chain from its peers' certified blocks,
    /// executes and checks them, serves reads and forwards transactions.
    /// Its key must not be in the validator set; it signs nothing.
    Full,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Validator => "validator",
            Role::Full => "full",
        }
    }
}

/// Everything needed to run a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Holds the RocksDB database (state, blocks, consensus log).
    pub data_dir: PathBuf,
    pub role: Role,
    /// The node's peer key: a validator's signing key, or a full node's
    /// own key (only to authenticate it to its peers).
    pub key: SecretKey,
    pub genesis: Genesis,
    pub listen: SocketAddr,
    pub peers: Vec<PeerInfo>,
    pub net: NetConfig,
    pub mempool_txs_max: usize,
    pub mempool_bytes_max: usize,
    /// [`MempoolConfig::sender_gapped_bytes_max`].
    pub mempool_sender_gapped_bytes_max: usize,
    /// [`MempoolConfig::gapped_ttl_blocks`].
    pub mempool_gapped_ttl_blocks: u64,
    /// Senders whose prepared keys are kept for checking transactions that
    /// name their sender (~45 KB each; 0 keeps none).
    pub sender_keys_max: usize,
    pub consensus: ConsensusOptions,
    /// State limits and `versions_kept`, the state versions pruning keeps
    /// readable (for proofs and views at past heights).
    pub state: StateConfig,
    /// Prune old state versions every this many blocks; 0 never prunes.
    pub prune_interval_blocks: u64,
    /// Keep the last this many blocks (and every epoch's last), deleting
    /// older ones with their receipts and index rows when pruning; 0 keeps
    /// every block.
    pub keep_blocks: u64,
    /// The state snapshots kept for peers (ADR 0012).
    pub snapshots: SnapshotOptions,
    /// Join by snapshot when the data dir holds only the genesis state
    /// (ADR 0012); otherwise block sync from the genesis.
    pub snapshot_sync: bool,
    /// The optional indexes kept beside the blocks (`[index]`).
    pub index: crate::index::IndexConfig,
    /// Execute and commit blocks on the consensus driver's own thread
    /// (`tokio::task::block_in_place`) instead of handing each job to the
    /// execution thread and waiting to be woken: two thread hand-offs less
    /// per block on the critical path. Needs a multi-threaded runtime whose
    /// worker threads have [`EXEC_THREAD_STACK_BYTES`] of stack, as
    /// [`runtime`] builds; otherwise the execution thread is used.
    pub exec_inline: bool,
    /// Start even though the database lost data it had synced (a torn or
    /// corrupt RocksDB log, a database below the high-water mark `mark`),
    /// treating the restart as a host crash: the validator signs no
    /// PRE-PREPARE or PREPARE in the views it may have voted in. Without
    /// it such a start fails with [`NodeError::DataLoss`]. Only an operator
    /// sets this (`stele-node start --accept-data-loss`), for one start.
    pub accept_data_loss: bool,
    /// The gas schedule and VM limits versions this node runs: all it was
    /// built with, unless a test caps them to stand for an older build
    /// ([`protocol_support_from_env`], read by `stele-node start` only).
    pub protocol_support: stele_exec::ProtocolSupport,
}

/// The versions this node runs, as `STELE_TEST_GAS_SCHEDULE_MAX` and
/// `STELE_TEST_VM_LIMITS_MAX` cap them: a test stands a node built before
/// an upgrade's version with them (ADR 0011). Unset, everything this
/// build has; an unparsable value is an error, never ignored.
pub fn protocol_support_from_env() -> Result<stele_exec::ProtocolSupport, String> {
    let mut support = stele_exec::ProtocolSupport::default();
    for (var, field) in [
        ("STELE_TEST_GAS_SCHEDULE_MAX", &mut support.gas_schedule_max),
        ("STELE_TEST_VM_LIMITS_MAX", &mut support.vm_limits_max),
    ] {
        if let Some(v) = std::env::var_os(var) {
            let v = v.to_string_lossy();
            *field = v
                .parse()
                .map_err(|_| format!("{var}={v} is not a version number"))?;
            warn!(
                "{var}={v}: this node runs as if it were built without later versions (a test setting)"
            );
        }
    }
    Ok(support)
}

/// The multi-threaded tokio runtime a node runs best on: its worker threads
/// have the stack block execution needs (see [`NodeOptions::exec_inline`]).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(EXEC_THREAD_STACK_BYTES)
        .build()
}

/// A snapshot of the node's progress, for RPC status and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub height: u64,
    pub view: u64,
    pub view_changes: u64,
    pub syncing: bool,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    driver: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Node {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn progress(&self) -> Progress {
        self.shared.progress()
    }

    pub fn p2p_addr(&self) -> Result<SocketAddr, NodeError> {
        self.shared.net.local_addr().map_err(NodeError::Network)
    }

    /// Submits a raw signed transaction as a client would.
    pub fn submit(&self, raw: &[u8]) -> Result<Hash, AdmitError> {
        self.shared.admit(raw, None, true)
    }

    /// What the JSON-RPC server needs from this node.
    pub fn rpc_context(&self) -> crate::rpc::RpcContext {
        let s = &self.shared;
        crate::rpc::RpcContext {
            chain_id: s.chain_id,
            genesis_hash: s.genesis_hash,
            validators: s.validators.clone(),
            state: s.state.clone(),
            executor: s.executor.clone(),
            submitter: s.clone(),
            status: s.clone(),
            commits: s.commits.clone(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.shared.commits.subscribe()
    }

    /// Whether the driver stopped on its own (a fatal error).
    pub fn is_finished(&self) -> bool {
        self.driver.is_finished()
    }

    /// Stops taking work, lets an in-flight commit finish (commits are one
    /// synced batch, so there is nothing half-written to abandon), closes
    /// the transport and waits for the driver, then (up to 5 s) for the
    /// node's other tasks to close the database and for the transport to
    /// let go of its UDP port.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let result = self.driver.await.unwrap_or_else(|e| Err(e.into()));
        let port = self.shared.net.local_addr().ok();
        self.shared.net.shutdown().await;
        // The tasks around the driver end once it has, and hold the
        // database open until then: wait for them (bounded), so that a
        // start on this data dir right after, in this process, finds it
        // closed rather than "in use".
        let deadline = Instant::now() + SHUTDOWN_RELEASE_WAIT;
        while Arc::strong_count(&self.shared) > 1 || Arc::strong_count(&self.shared.state) > 1 {
            if Instant::now() > deadline {
                warn!("the node's database stays open after shutdown: something still holds it");
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The QUIC endpoint's socket closes once its driver task sees the
        // last handle gone, a moment after this drop: a start on the same
        // port right after, in this process, must find it free.
        drop(self.shared);
        if let Some(port) = port {
            while std::net::UdpSocket::bind(port).is_err() {
                if Instant::now() > deadline {
                    warn!(%port, "the node's UDP port stays bound after shutdown");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        result
    }
}

/// How long [`Node::shutdown`] waits for the node's tasks to let go of
/// the database.
const SHUTDOWN_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
