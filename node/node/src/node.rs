//! The validator: drives the pure PBFT replica with the transport, the
//! mempool, the executor and the block store.
//!
//! One driver task owns the replica and carries out its actions in order.
//! Everything CPU-heavy or blocking (execution, Merkle updates, RocksDB
//! writes) runs on one dedicated execution thread with a large stack; the
//! driver awaits it, so blocks are executed and committed strictly in
//! order. Signature checks of gossiped transactions and block-sync reads run
//! on tokio's blocking pool.
//!
//! Invariants:
//! - a `Persist` record is synced to the consensus log before any later
//!   action of the same batch runs (so nothing is signed and sent that a
//!   restart could forget);
//! - a block is committed only with a certificate the replica accepted, and
//!   only if its re-executed state root matches its header; the block, its
//!   receipts, its certificate and its state version land in one synced
//!   batch;
//! - a block is validated (and proposed) on its parent: the committed tip,
//!   or a block executed on it and still in its commit round (up to
//!   `consensus.pipeline_blocks` in flight). It then executes on the tip's
//!   version with the uncommitted blocks' writes layered on top; a proposal
//!   whose parent is not executed here waits. Committing a block re-checks
//!   that its parent is the tip.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stele_consensus::{Action, Config as ReplicaConfig, Input, Record, Replica, TimerId};
use stele_state::{
    Namespace, PreparedCommit, State, StateConfig, StateError, WalRecovery, WriteSet,
};
use stele_types::codec::Encode;
use stele_types::{
    Address, Block, BlockHeader, CommitCertificate, Hash, Limits, SecretKey, SignedTransaction,
    ValidatorSet, decode,
};
use stele_vm::{EXEC_THREAD_STACK_BYTES, Vm};
use thiserror::Error;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::exec::{BlockEnv, BlockExecution, ExecError, Executor, SharedState, StateBase};
use crate::genesis::Genesis;
use crate::log_limit::LogLimit;
use crate::mark::{DataLoss, Mark, MarkWriter};
use crate::mempool::{
    AdmitError, BlockLimits, Mempool, MempoolConfig, VerifiedTx, verify_raw_as, verify_raw_batch,
};
use crate::metrics::{NodeMetrics, PeerGarbage};
use crate::net::{Channel, Inbound, InboundCharge, NetConfig, Network, PeerInfo};
use crate::precheck::{self, Precheck, PrecheckedVerifier, VerifiedSignatures};
use crate::sender_keys::SenderKeys;
use crate::store::{
    BLOCK_STORE_CFS, BlockReader, CommittedBlock, finish_block_commit, prepare_block_commit,
};
use crate::sync::{SyncRequest, SyncedBlock, decode_response, serve};
use crate::wal::{CF_WAL, Wal};

/// Column family for the node's own metadata (the genesis it belongs to).
pub const CF_NODE_META: &str = "node_meta";
/// Inbound events taken at once, so the consensus messages among them
/// share one synced log write.
const INBOUND_BATCH_MAX: usize = 256;
const META_GENESIS: &[u8] = b"genesis_hash";

/// Consensus timings and block production pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusOptions {
    /// View-change timer for the first attempt (doubles up to the max).
    pub view_timeout_ms: u64,
    pub view_timeout_max_ms: u64,
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
            view_timeout_ms: 2_000,
            view_timeout_max_ms: 60_000,
            block_interval_ms: 5,
            empty_block_interval_ms: 500,
            pipeline_blocks: 1,
        }
    }
}

/// Everything needed to run a validator.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Holds the RocksDB database (state, blocks, consensus log).
    pub data_dir: PathBuf,
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
}

/// The multi-threaded tokio runtime a node runs best on: its worker threads
/// have the stack block execution needs (see [`NodeOptions::exec_inline`]).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(EXEC_THREAD_STACK_BYTES)
        .build()
}

/// Why the node could not start or had to stop.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid genesis: {0}")]
    Genesis(String),
    #[error("this node's key {0} is not in the genesis validator set")]
    NotAValidator(Address),
    #[error("the data directory belongs to another chain (genesis {found}, expected {expected})")]
    WrongGenesis { found: Hash, expected: Hash },
    #[error("storage: {0}")]
    Storage(String),
    #[error(
        "{}. This validator may have forgotten votes it signed, and voting again could sign twice for one slot, so it does not start. Once the cause is understood (a power loss, or a kill in the middle of a large write, can tear the log's tail), start it with `stele-node start --accept-data-loss`: it then sits out the views it may have voted in, as after a host crash, and catches up from its peers",
        losses_text(.0)
    )]
    DataLoss(Vec<DataLoss>),
    #[error("another stele-node is running on this home ({} is locked)", .lock.display())]
    HomeInUse { lock: PathBuf },
    #[error("network: {0}")]
    Network(String),
    #[error("consensus configuration: {0}")]
    Consensus(String),
    #[error("the execution thread stopped")]
    ExecThreadGone,
    #[error("committing block {height} failed: {reason}")]
    Commit { height: u64, reason: String },
}

fn losses_text(losses: &[DataLoss]) -> String {
    let texts: Vec<String> = losses.iter().map(DataLoss::to_string).collect();
    texts.join("; ")
}

fn storage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

/// A snapshot of the node's progress, for RPC status and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub height: u64,
    pub view: u64,
    pub view_changes: u64,
    pub syncing: bool,
}

/// State shared by the driver, the RPC layer and the gossip tasks.
#[derive(Debug)]
pub struct Shared {
    pub chain_id: u64,
    pub genesis_hash: Hash,
    pub validators: ValidatorSet,
    pub state: SharedState,
    pub executor: Arc<Executor>,
    pub mempool: Mutex<Mempool>,
    pub mempool_config: MempoolConfig,
    /// Tables of busy senders, for checking transactions whose sender was
    /// named by the client or the gossiping validator.
    pub sender_keys: SenderKeys,
    pub limits: Limits,
    pub net: Network,
    pub commits: broadcast::Sender<Arc<CommittedBlock>>,
    pub metrics: Arc<NodeMetrics>,
    height: AtomicU64,
    view: AtomicU64,
    /// The replica's stable checkpoint (its low watermark), for `precheck`.
    stable_seq: AtomicU64,
    view_changes: AtomicU64,
    syncing: AtomicBool,
    /// The highest height a sync was asked to reach: what this node knows
    /// its peers committed (`/health` compares it with `height`).
    peer_height: AtomicU64,
    tx_arrived: Notify,
}

impl Shared {
    fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // Every mempool operation leaves its indexes consistent before it
        // can panic, so a poisoned lock still guards a usable pool.
        self.mempool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The committed state the mempool checks against.
    pub fn latest_base(&self) -> StateBase {
        StateBase::latest(&self.state, None)
    }

    /// Verifies and admits a raw transaction, signed by `claimed` when
    /// that is given; returns its hash. With `gossip`, the transaction is
    /// sent to every validator, naming its sender, once it is ready: at
    /// once, or if it waits behind a nonce gap, when the gap closes
    /// ([`Mempool::insert_announced`]). Transactions whose gap this one
    /// closed are sent too.
    pub fn admit(
        &self,
        raw: &[u8],
        claimed: Option<Address>,
        gossip: bool,
    ) -> Result<Hash, AdmitError> {
        let claim = claimed.map(|sender| (sender, &self.sender_keys));
        let vtx = verify_raw_as(raw, &self.mempool_config, &self.limits, claim)?;
        let hash = self.insert_verified(vtx, claimed.is_some(), gossip)?;
        self.tx_arrived.notify_one();
        Ok(hash)
    }

    /// Gossips the announced transactions that have become ready
    /// ([`Mempool::take_announcements`]); called after every mempool
    /// change that can close a gap (an admission, a commit).
    fn announce(&self, ready: Vec<(Address, SignedTransaction)>) {
        for (sender, tx) in ready {
            let raw = tx.to_bytes();
            let payload = GossipTx {
                sender: Some(sender),
                raw: &raw,
            };
            self.net.broadcast(Channel::Gossip, payload.encode());
        }
    }

    /// [`Shared::admit`] without gossip for many transactions (a batch of
    /// gossip), results in order; the signature checks of named senders
    /// share their inversions ([`verify_raw_batch`]).
    pub fn admit_batch(&self, items: &[(&[u8], Option<Address>)]) -> Vec<Result<Hash, AdmitError>> {
        let verified =
            verify_raw_batch(items, &self.mempool_config, &self.limits, &self.sender_keys);
        let results: Vec<Result<Hash, AdmitError>> = verified
            .into_iter()
            .zip(items)
            .map(|(vtx, (_, claimed))| self.insert_verified(vtx?, claimed.is_some(), false))
            .collect();
        if results.iter().any(Result::is_ok) {
            self.tx_arrived.notify_one();
        }
        results
    }

    /// Puts a transaction whose signature was checked into the mempool and
    /// remembers its sender; `named` counts it towards the sender's table;
    /// with `announce` it is gossiped once ready. Gossips whatever
    /// announced transactions became ready.
    fn insert_verified(
        &self,
        vtx: VerifiedTx,
        named: bool,
        announce: bool,
    ) -> Result<Hash, AdmitError> {
        let (hash, sender) = (vtx.hash, vtx.sender);
        let base = self.latest_base();
        let (admitted, ready) = {
            let mut pool = self.mempool();
            let admitted = if announce {
                pool.insert_announced(vtx, &base)
            } else {
                pool.insert(vtx, &base)
            };
            // Taken after a refusal too: admission first revalidates the
            // sender's queue against the state just read.
            (admitted, pool.take_announcements())
        };
        self.announce(ready);
        admitted?;
        if named {
            self.sender_keys.admitted(&sender);
        }
        // Block execution on this node will not check the signature again.
        self.executor.remember_sender(hash, sender);
        Ok(hash)
    }

    /// A pending transaction by hash.
    pub fn pending(&self, hash: &Hash) -> Option<SignedTransaction> {
        self.mempool().get(hash).cloned()
    }

    /// The next nonce of `sender`, counting its pending transactions.
    pub fn pending_nonce(&self, sender: &Address) -> u64 {
        let base = self.latest_base();
        self.mempool().pending_nonce(sender, &base)
    }

    /// (transactions, bytes) in the mempool.
    pub fn mempool_size(&self) -> (usize, usize) {
        let pool = self.mempool();
        (pool.len(), pool.bytes())
    }

    pub fn progress(&self) -> Progress {
        Progress {
            height: self.height.load(Ordering::Relaxed),
            view: self.view.load(Ordering::Relaxed),
            view_changes: self.view_changes.load(Ordering::Relaxed),
            syncing: self.syncing.load(Ordering::Relaxed),
        }
    }
}

impl crate::rpc::TxSubmitter for Shared {
    fn submit(&self, raw: &[u8], sender: Option<Address>) -> Result<Hash, AdmitError> {
        self.admit(raw, sender, true)
    }

    fn pending(&self, hash: &Hash) -> Option<SignedTransaction> {
        Shared::pending(self, hash)
    }

    fn pending_nonce(&self, address: &Address) -> u64 {
        Shared::pending_nonce(self, address)
    }
}

impl crate::rpc::NodeStatus for Shared {
    fn status(&self) -> crate::rpc::StatusInfo {
        let p = self.progress();
        let (txs, bytes) = self.mempool_size();
        crate::rpc::StatusInfo {
            chain_id: self.chain_id,
            height: p.height,
            view: p.view,
            peers_connected: self.net.metrics().peers_connected(),
            syncing: p.syncing,
            mempool_txs: txs as u64,
            mempool_bytes: bytes as u64,
        }
    }

    fn peer_height(&self) -> Option<u64> {
        Some(self.peer_height.load(Ordering::Relaxed))
    }
}

/// A running validator.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    driver: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Node {
    /// Opens the data directory (initialising it from the genesis on first
    /// start), starts the transport and the consensus driver.
    pub async fn start(opts: NodeOptions) -> Result<Node, NodeError> {
        let genesis = &opts.genesis;
        genesis
            .validate()
            .map_err(|e| NodeError::Genesis(e.to_string()))?;
        let me = opts.key.public_key().address();
        if genesis.validators.index_of(&me).is_none() {
            return Err(NodeError::NotAValidator(me));
        }
        let genesis_hash = genesis.hash();
        let (state, damaged) =
            open_state_guarded(&opts.data_dir, &opts.state, genesis, genesis_hash)?;

        let mut rcfg =
            ReplicaConfig::new(genesis.chain_id, genesis.validators.clone(), genesis_hash);
        rcfg.pipeline_blocks_max = opts.consensus.pipeline_blocks.clamp(1, PIPELINE_BLOCKS_MAX);
        rcfg.view_timeout_ms = opts.consensus.view_timeout_ms;
        rcfg.view_timeout_max_ms = opts.consensus.view_timeout_max_ms;
        rcfg.limits.payload_bytes_max = rcfg
            .limits
            .payload_bytes_max
            .max(genesis.params.block_bytes_max + (64 << 10));
        rcfg.limits.message_bytes_max = rcfg
            .limits
            .message_bytes_max
            .max(2 * rcfg.limits.payload_bytes_max);
        let msg_limits = rcfg.limits.clone();
        let horizon = precheck::Horizon {
            views_ahead: rcfg.views_ahead_max,
            window_seqs: rcfg.window_seqs,
        };
        let (mut wal, mut records) = Wal::open(&state, &msg_limits).map_err(storage)?;
        let mut losses = Vec::new();
        let mark = check_mark(&opts.data_dir, &state, &wal, &mut losses)?;
        // A damaged log tail whose loss the mark does not show held only
        // writes never synced (a process killed in the middle of a large
        // write tears it): nothing this validator signed is gone. Without
        // a mark nothing says so, and it counts as a loss.
        let torn_tail = match (damaged, &mark) {
            (Some(damage), Some(_)) if losses.is_empty() => Some(damage),
            (Some(damage), _) => {
                losses.insert(0, damage);
                None
            }
            (None, _) => None,
        };
        if let Some(damage) = &torn_tail {
            warn!(
                damage = %damage,
                "dropped a damaged tail of the database's log; the database still holds everything this node had synced (high-water mark), so it starts as after a host crash"
            );
            records.extend(
                wal.record_loss(&state, mark.map(|m| m.view))
                    .map_err(storage)?,
            );
        }
        let lost = !losses.is_empty();
        if lost {
            let text = losses_text(&losses);
            if !opts.accept_data_loss {
                error!(loss = %text, "refusing to start: the database lost data it had synced");
                return Err(NodeError::DataLoss(losses));
            }
            error!(
                loss = %text,
                "the database lost data it had synced; starting as the operator asked (--accept-data-loss): this validator sits out the views it may have voted in, as after a host crash"
            );
            let view = losses.iter().filter_map(DataLoss::view).max();
            records.extend(wal.record_loss(&state, view).map_err(storage)?);
        }
        if lost || torn_tail.is_some() || mark.is_none() {
            // From here on the mark names what the database holds now, so
            // an accepted loss is not found again at the next start.
            Mark {
                height: state.latest_version().unwrap_or(0),
                wal_next: wal.next_index(),
                view: mark.map_or(0, |m| m.view),
            }
            .write(&opts.data_dir)
            .map_err(storage)?;
        }
        // Signatures of consensus messages are checked before the driver
        // (`precheck`); the replica's verifier finds them recorded there.
        let verified = Arc::new(VerifiedSignatures::default());
        let verifier = Box::new(PrecheckedVerifier::new(verified.clone()));
        let replica = Replica::new(rcfg, opts.key.clone(), verifier)
            .map_err(|e| NodeError::Consensus(e.to_string()))?;

        let committed = state.latest_version().unwrap_or(0);
        let tip = {
            let reader = BlockReader::new(&state);
            match reader.block(committed).map_err(storage)? {
                Some(b) if committed > 0 => Tip {
                    height: committed,
                    hash: b.hash(),
                    timestamp_ms: b.header.timestamp_ms,
                },
                _ => Tip {
                    height: 0,
                    hash: genesis_hash,
                    timestamp_ms: genesis.genesis_time_ms,
                },
            }
        };

        let mut vm_config = genesis
            .vm_config()
            .map_err(|e| NodeError::Consensus(e.to_string()))?;
        // Compiled contracts persist, so a restart never pays a compile.
        vm_config.artifact_dir = Some(opts.data_dir.join(ARTIFACT_DIR));
        let vm = Vm::new(vm_config).map_err(|e| NodeError::Consensus(e.to_string()))?;
        warm_contracts(&vm, &state)?;
        let executor = Arc::new(Executor::new(vm, genesis.executor_config()));
        let state: SharedState = Arc::new(RwLock::new(state));

        let mut net_cfg = opts.net.clone();
        net_cfg.consensus_frame_bytes_max = net_cfg
            .consensus_frame_bytes_max
            .max(msg_limits.message_bytes_max);
        let (net, inbound) = Network::start(
            net_cfg.clone(),
            opts.key.clone(),
            genesis.chain_id,
            genesis.validators.clone(),
            opts.listen,
            opts.peers.clone(),
        )
        .map_err(|e| NodeError::Network(e.to_string()))?;

        let mut mempool_config = MempoolConfig::new(genesis.chain_id);
        mempool_config.txs_max = opts.mempool_txs_max;
        mempool_config.bytes_max = opts.mempool_bytes_max;
        mempool_config.sender_gapped_bytes_max = opts.mempool_sender_gapped_bytes_max;
        mempool_config.gapped_ttl_blocks = opts.mempool_gapped_ttl_blocks;
        mempool_config.tx_gas_max = genesis.params.block_gas_max;
        mempool_config.tx_gas_base = genesis.params.tx_gas_base;
        mempool_config.tx_gas_per_byte = genesis.params.tx_gas_per_byte;
        let limits = Limits {
            input_bytes_max: msg_limits.payload_bytes_max,
            block_txs_max: genesis.params.block_txs_max,
            ..Limits::DEFAULT
        };
        let (commits, _) = broadcast::channel(1024);
        let metrics = Arc::new(NodeMetrics::new(net.metrics()));
        if lost {
            metrics.data_loss_accepted.inc();
        }
        let mark_writer = MarkWriter::start(&opts.data_dir, metrics.mark_write_failures.clone())
            .map_err(storage)?;
        let shared = Arc::new(Shared {
            chain_id: genesis.chain_id,
            genesis_hash,
            validators: genesis.validators.clone(),
            state,
            executor,
            mempool: Mutex::new(Mempool::at_height(mempool_config.clone(), tip.height)),
            sender_keys: SenderKeys::new(opts.sender_keys_max),
            mempool_config,
            limits,
            net,
            commits,
            metrics,
            height: AtomicU64::new(tip.height),
            view: AtomicU64::new(0),
            stable_seq: AtomicU64::new(0),
            view_changes: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            peer_height: AtomicU64::new(0),
            tx_arrived: Notify::new(),
        });

        let (gossip_queue, gossip_rx) = mpsc::channel(GOSSIP_QUEUE_MAX);
        tokio::spawn(admit_gossip(shared.clone(), gossip_rx));
        let (driver_tx, driver_rx) = mpsc::channel(net_cfg.inbound_queue_max);
        let (precheck_tx, precheck_rx) = mpsc::channel(net_cfg.inbound_queue_max);
        tokio::spawn(route_inbound(
            inbound,
            precheck_tx,
            gossip_queue,
            shared.metrics.gossip_dropped.clone(),
        ));
        let budgets = Arc::new(precheck::PeerBudgets::default());
        let check = Precheck::new(
            genesis.chain_id,
            genesis.validators.clone(),
            msg_limits.clone(),
            horizon,
            budgets.clone(),
            shared.metrics.precheck.clone(),
        );
        let progress = {
            let shared = shared.clone();
            move || precheck::Progress {
                view: shared.view.load(Ordering::Relaxed),
                stable: shared.stable_seq.load(Ordering::Relaxed),
                committed: shared.height.load(Ordering::Relaxed),
            }
        };
        tokio::spawn(precheck::run(
            check,
            verified,
            progress,
            precheck_rx,
            driver_tx,
        ));
        let exec = ExecThread::start(opts.exec_inline)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (sync_tx, sync_rx) = mpsc::channel(256);
        let first = if records.is_empty() && tip.height == 0 && !wal.unsynced_lost() {
            Input::Start
        } else {
            // An accepted loss was logged above, as an error.
            if wal.unsynced_lost() && !lost {
                warn!(
                    "the host restarted since the consensus log was last open: this validator sits out its current view"
                );
            }
            Input::Restart {
                records,
                committed: (tip.height > 0).then_some((tip.height, tip.hash)),
                unsynced_lost: wal.unsynced_lost(),
            }
        };
        info!(
            address = %me,
            height = tip.height,
            listen = %opts.listen,
            "starting validator"
        );
        let driver = Driver {
            shared: shared.clone(),
            replica,
            wal,
            mark: mark_writer,
            msg_limits,
            exec,
            me,
            tip,
            executed: BTreeMap::new(),
            waiting_validation: VecDeque::new(),
            pending_proposal: None,
            idle_above: None,
            last_proposal: Instant::now(),
            timer: None,
            timer_after_ms: 0,
            quorum_since: None,
            sync_tx,
            sync_gen: 0,
            sync_to: 0,
            sync_from: 0,
            sync_target: Arc::new(AtomicU64::new(0)),
            sync_running: Arc::new(AtomicBool::new(false)),
            recent: VecDeque::new(),
            recent_bytes: 0,
            last_new_view: None,
            consensus: opts.consensus.clone(),
            prune_interval_blocks: opts.prune_interval_blocks,
            sync_bytes_max: net_cfg.sync_response_bytes_max,
            equivocation_log: LogLimit::new(EQUIVOCATION_LOG_INTERVAL, genesis.validators.len()),
            budgets,
            validators: genesis.validators.clone(),
        };
        let driver = tokio::spawn(driver.run(first, driver_rx, sync_rx, shutdown_rx));
        Ok(Node {
            shared,
            shutdown,
            driver,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn progress(&self) -> Progress {
        self.shared.progress()
    }

    pub fn p2p_addr(&self) -> Result<SocketAddr, NodeError> {
        self.shared
            .net
            .local_addr()
            .map_err(|e| NodeError::Network(e.to_string()))
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
    /// node's other tasks to close the database.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let result = match self.driver.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Consensus(format!("driver task failed: {e}"))),
        };
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
        result
    }
}

/// How long [`Node::shutdown`] waits for the node's tasks to let go of
/// the database.
const SHUTDOWN_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Where in the data dir the VM keeps compiled contracts (node-local; wiping
/// it only costs compiles at the next start).
pub const ARTIFACT_DIR: &str = "wasm";

/// Stored contracts read per page when warming the VM.
const WARM_PAGE: usize = 8;

/// Loads every stored contract into the VM (from its artifact, or by
/// compiling it) before the node takes part in consensus, so that no block
/// or query after a restart, or after the artifact directory was wiped,
/// pays for an unpriced compile.
fn warm_contracts(vm: &Vm<crate::exec::StateWorld>, state: &State) -> Result<(), NodeError> {
    let started = Instant::now();
    let mut after: Option<Vec<u8>> = None;
    let mut count = 0usize;
    loop {
        let page = state
            .iter_prefix(&Namespace::Code, b"", after.as_deref(), WARM_PAGE)
            .map_err(|e| NodeError::Storage(e.to_string()))?;
        for (hash, code) in &page.entries {
            // Every stored code passed validation at its deploy under this
            // chain's limits; one that fails now is reported and left to
            // fail its calls.
            if let Err(e) = vm.warm(code) {
                warn!(code_hash = %hex::encode(hash), error = %e, "stored contract does not load");
            }
            count += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if count > 0 {
        info!(
            contracts = count,
            ms = started.elapsed().as_millis() as u64,
            "contracts loaded into the VM"
        );
    }
    Ok(())
}

/// Initialises `data_dir` from `genesis` (as the first start would) and
/// returns the genesis state root.
pub fn init_data_dir(data_dir: &std::path::Path, genesis: &Genesis) -> Result<Hash, NodeError> {
    genesis
        .validate()
        .map_err(|e| NodeError::Genesis(e.to_string()))?;
    let state = open_state(data_dir, &StateConfig::default(), genesis, genesis.hash())?;
    state.root(0).map_err(storage)
}

fn open_state(
    data_dir: &std::path::Path,
    config: &StateConfig,
    genesis: &Genesis,
    genesis_hash: Hash,
) -> Result<State, NodeError> {
    let mut cfs: Vec<&str> = BLOCK_STORE_CFS.to_vec();
    cfs.push(CF_WAL);
    cfs.push(CF_NODE_META);
    let db_dir = data_dir.join("db");
    std::fs::create_dir_all(&db_dir).map_err(storage)?;
    let mut state = State::open_with_column_families(&db_dir, config.clone(), &cfs)
        .map_err(|e| open_error(&db_dir, e))?;
    let meta = state.column_family(CF_NODE_META).map_err(storage)?;
    let recorded = state.db().get_cf(meta, META_GENESIS).map_err(storage)?;
    match recorded {
        Some(bytes) => {
            let found =
                Hash(bytes.as_slice().try_into().map_err(|_| {
                    NodeError::Storage("recorded genesis hash is not 32 bytes".into())
                })?);
            if found != genesis_hash {
                return Err(NodeError::WrongGenesis {
                    found,
                    expected: genesis_hash,
                });
            }
        }
        None => {
            if state.latest_version().is_none() {
                state.commit(0, &genesis.writes()).map_err(storage)?;
            }
            let meta = state.column_family(CF_NODE_META).map_err(storage)?;
            let mut wo = stele_state::rocksdb::WriteOptions::default();
            wo.set_sync(true);
            state
                .db()
                .put_cf_opt(meta, META_GENESIS, genesis_hash.0, &wo)
                .map_err(storage)?;
        }
    }
    Ok(state)
}

fn open_error(db_dir: &Path, e: StateError) -> NodeError {
    if e.is_locked() {
        NodeError::HomeInUse {
            lock: db_dir.join("LOCK"),
        }
    } else if e.is_corruption() {
        NodeError::DataLoss(vec![DataLoss::CorruptDatabase {
            detail: e.to_string(),
        }])
    } else {
        storage(e)
    }
}

/// Opens the state refusing a damaged RocksDB log ([`WalRecovery::Strict`]);
/// a database refused so is opened again without its damaged tail, and
/// the damage is returned for the caller to weigh against the high-water
/// mark (refusing the start if anything synced is gone).
fn open_state_guarded(
    data_dir: &Path,
    config: &StateConfig,
    genesis: &Genesis,
    genesis_hash: Hash,
) -> Result<(State, Option<DataLoss>), NodeError> {
    let strict = StateConfig {
        wal_recovery: WalRecovery::Strict,
        ..config.clone()
    };
    match open_state(data_dir, &strict, genesis, genesis_hash) {
        Err(NodeError::DataLoss(mut found)) => {
            let lenient = StateConfig {
                wal_recovery: WalRecovery::DropDamagedTail,
                ..config.clone()
            };
            let state = open_state(data_dir, &lenient, genesis, genesis_hash).map_err(|e| {
                NodeError::Storage(format!(
                    "the database does not open even without its damaged log tail: {e}"
                ))
            })?;
            Ok((state, found.pop()))
        }
        opened => opened.map(|state| (state, None)),
    }
}

/// Compares the database with the high-water mark in `data_dir`, adding
/// what it lost (or a damaged mark) to `losses`; returns the mark.
fn check_mark(
    data_dir: &Path,
    state: &State,
    wal: &Wal,
    losses: &mut Vec<DataLoss>,
) -> Result<Option<Mark>, NodeError> {
    let height = state.latest_version().unwrap_or(0);
    match Mark::read(data_dir) {
        Ok(Some(mark)) => {
            losses.extend(mark.check(height, wal.next_index()));
            Ok(Some(mark))
        }
        Ok(None) => {
            if height > 0 || wal.next_index() > 0 {
                warn!(
                    height,
                    "no high-water mark beside this database (first start of this version?); starting one now"
                );
            }
            Ok(None)
        }
        Err(e @ crate::mark::MarkError::Corrupt { .. }) => {
            losses.push(DataLoss::CorruptMark {
                detail: e.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(storage(e)),
    }
}

/// Concurrent signature checks of gossiped transactions; more wait in the
/// gossip queue.
const GOSSIP_VERIFY_TASKS_MAX: usize = 64;
/// Most pending transactions, and their bytes, offered again to a peer
/// that (re)connects.
const REGOSSIP_TXS_MAX: usize = 4_096;
const REGOSSIP_BYTES_MAX: usize = 16 << 20;
/// Gossiped transactions waiting for a signature check; beyond, newcomers
/// are dropped and counted.
const GOSSIP_QUEUE_MAX: usize = 16_384;

/// Sends gossiped transactions from the network straight to admission and
/// everything else to the driver, so a transaction gossiped while the
/// driver waits on an execution or a commit reaches the mempool (and the
/// next proposal) without waiting for it. Consensus messages keep the
/// network's back-pressure; gossip beyond the admission queue is dropped
/// and counted. Ends as soon as the network or the driver goes away (it
/// holds the admission queue, which keeps the node's state open).
async fn route_inbound(
    mut inbound: mpsc::Receiver<Inbound>,
    driver: mpsc::Sender<Inbound>,
    gossip: mpsc::Sender<GossipItem>,
    gossip_dropped: prometheus_client::metrics::counter::Counter,
) {
    loop {
        let ev = tokio::select! {
            ev = inbound.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            () = driver.closed() => return,
        };
        match ev {
            Inbound::Message {
                channel: Channel::Gossip,
                payload,
                from,
                charge,
            } => {
                if gossip.try_send((from, payload, charge)).is_err() {
                    gossip_dropped.inc();
                }
            }
            other => {
                if driver.send(other).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A gossiped transaction waiting for admission, with its sender's
/// queued-bytes charge (given back once admission is done with it).
type GossipItem = (Address, Vec<u8>, InboundCharge);

/// Why admission refused a gossiped transaction, if the reason marks it as
/// garbage: an honest validator gossips only transactions it decoded and
/// verified itself. Other refusals (nonce, funds, already known) happen to
/// honest peers too and are not counted.
fn gossip_garbage(e: &AdmitError) -> Option<PeerGarbage> {
    match e {
        AdmitError::TooLarge { .. } | AdmitError::Malformed(_) => {
            Some(PeerGarbage::GossipUndecodable)
        }
        AdmitError::WrongChain { .. } => Some(PeerGarbage::GossipWrongChain),
        AdmitError::BadSignature(_) | AdmitError::NotSignedBy(_) => {
            Some(PeerGarbage::GossipBadSignature)
        }
        _ => None,
    }
}

/// Admits gossiped transactions, at most [`GOSSIP_VERIFY_TASKS_MAX`]
/// signature checks at a time; the rest wait in the queue rather than
/// being dropped, so a burst of transactions submitted to backups still
/// reaches the primary. Ends when the driver and the router drop the queue.
async fn admit_gossip(shared: Arc<Shared>, mut rx: mpsc::Receiver<GossipItem>) {
    let slots = Arc::new(Semaphore::new(GOSSIP_VERIFY_TASKS_MAX));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // Transactions that queued meanwhile share the task: one hand-off
        // to a blocking thread per batch, not per transaction.
        let mut batch = vec![first];
        while batch.len() < GOSSIP_VERIFY_BATCH_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut items = Vec::with_capacity(batch.len());
            let mut froms = Vec::with_capacity(batch.len());
            let metrics = &shared.metrics;
            for (from, payload, _) in &batch {
                match GossipTx::decode(payload) {
                    Some(tx) => {
                        items.push((tx.raw, tx.sender));
                        froms.push(from);
                    }
                    None => {
                        metrics.record_peer_garbage(PeerGarbage::GossipUndecodable);
                        debug!(%from, "malformed gossip");
                    }
                }
            }
            for (from, result) in froms.into_iter().zip(shared.admit_batch(&items)) {
                if let Err(e) = result {
                    if let Some(garbage) = gossip_garbage(&e) {
                        metrics.record_peer_garbage(garbage);
                    }
                    debug!(%from, error = %e, "gossiped transaction not admitted");
                }
            }
            drop(permit);
            // `batch`, dropped last, held its senders' queued-bytes
            // charges through admission.
        });
    }
}

/// A transaction on the gossip channel: `0x00 || raw`, or
/// `0x01 || sender || raw` (20-byte address) from a validator that
/// recovered the sender, so the receiver checks the signature against the
/// sender's table ([`SenderKeys`]) instead of recovering it. A wrong sender
/// gets the transaction rejected, as from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GossipTx<'a> {
    sender: Option<Address>,
    raw: &'a [u8],
}

impl<'a> GossipTx<'a> {
    fn encode(&self) -> Arc<[u8]> {
        let mut out = Vec::with_capacity(21 + self.raw.len());
        match &self.sender {
            Some(sender) => {
                out.push(1);
                out.extend_from_slice(sender.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(self.raw);
        Arc::from(out)
    }

    /// `None` for an unknown tag or a truncated sender; the transaction
    /// bytes are checked by admission.
    fn decode(payload: &'a [u8]) -> Option<GossipTx<'a>> {
        match payload.split_first()? {
            (0, raw) => Some(GossipTx { sender: None, raw }),
            (1, rest) => {
                let (sender, raw) = rest.split_first_chunk::<20>()?;
                Some(GossipTx {
                    sender: Some(Address(*sender)),
                    raw,
                })
            }
            _ => None,
        }
    }
}

/// Gossiped transactions one verification task takes at most.
const GOSSIP_VERIFY_BATCH_MAX: usize = 64;
/// Proposals waiting for their parent to commit locally.
const WAITING_VALIDATIONS_MAX: usize = 64;
/// Executed-but-uncommitted blocks remembered.
const EXECUTED_MAX: usize = 64;
/// Broadcast consensus messages kept for retransmission.
const RECENT_BROADCASTS_MAX: usize = 512;
/// ...and at most this many bytes of them (a PRE-PREPARE carries a block).
const RECENT_BROADCAST_BYTES_MAX: usize = 64 << 20;
/// A proposal's timestamp may be this far ahead of the local clock.
const CLOCK_DRIFT_MAX_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    height: u64,
    hash: Hash,
    timestamp_ms: u64,
}

/// A block executed on top of the tip, waiting for its commit.
struct Executed {
    block: Block,
    exec: BlockExecution,
    /// The state commit computed to check the root, reused at commit while
    /// the committed version is still its base.
    prepared: Option<PreparedCommit>,
    /// When execution finished, for the commit latency metric.
    at: Instant,
}

type Job = Box<dyn FnOnce() + Send>;

/// Where blocks execute (Wasm needs a deep native stack): in place on the
/// calling worker thread of a multi-threaded runtime built by [`runtime`],
/// or on a dedicated thread with that stack.
#[derive(Clone)]
struct ExecThread {
    /// `None`: run jobs in place (`exec_inline`).
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl ExecThread {
    fn start(inline: bool) -> Result<ExecThread, NodeError> {
        let inline = inline
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if inline {
            return Ok(ExecThread { jobs: None });
        }
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("stele-exec".into())
            .stack_size(EXEC_THREAD_STACK_BYTES)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(|e| NodeError::Storage(format!("cannot start the execution thread: {e}")))?;
        Ok(ExecThread { jobs: Some(jobs) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let Some(jobs) = &self.jobs else {
            return Ok(tokio::task::block_in_place(f));
        };
        let (tx, rx) = oneshot::channel();
        jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| NodeError::ExecThreadGone)?;
        rx.await.map_err(|_| NodeError::ExecThreadGone)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Driver {
    shared: Arc<Shared>,
    replica: Replica,
    wal: Wal,
    /// The high-water mark, published after every synced log write.
    mark: MarkWriter,
    msg_limits: stele_consensus::MessageLimits,
    exec: ExecThread,
    me: Address,
    tip: Tip,
    executed: BTreeMap<Hash, Executed>,
    waiting_validation: VecDeque<PendingValidation>,
    pending_proposal: Option<(u64, u64, Hash)>,
    /// The uncommitted parent on which the last selection found nothing
    /// new to propose: the next proposal waits for a transaction or for the
    /// parent's commit rather than filling the pipeline with empty blocks.
    idle_above: Option<Hash>,
    last_proposal: Instant,
    timer: Option<(TimerId, tokio::time::Instant)>,
    /// The armed timer's full duration.
    timer_after_ms: u64,
    /// Since when a quorum of validators has been connected, if it is.
    quorum_since: Option<tokio::time::Instant>,
    sync_tx: mpsc::Sender<(u64, SyncedBlock)>,
    /// Generation of the current sync task; results of older ones are
    /// ignored.
    sync_gen: u64,
    sync_to: u64,
    /// The running sync task's first height, target (raised in place when
    /// a later request extends it, so a slow sync is never restarted from
    /// scratch) and liveness.
    sync_from: u64,
    sync_target: Arc<AtomicU64>,
    sync_running: Arc<AtomicBool>,
    /// Consensus messages this node broadcast lately, resent to a peer when
    /// it (re)connects: the transport drops messages to disconnected peers,
    /// and PBFT needs them retransmitted (a missed NEW-VIEW would leave the
    /// peer out of the view).
    recent: VecDeque<Arc<[u8]>>,
    /// Total bytes in `recent`.
    recent_bytes: usize,
    /// The last NEW-VIEW this node broadcast, kept beyond `recent`.
    last_new_view: Option<Arc<[u8]>>,
    consensus: ConsensusOptions,
    prune_interval_blocks: u64,
    sync_bytes_max: usize,
    /// Equivocations are logged once per signer per interval: a Byzantine
    /// validator can sign conflicting votes as fast as it can send them.
    equivocation_log: LogLimit<u32>,
    /// Peers' signature-check budgets: an equivocation costs its signer.
    budgets: Arc<precheck::PeerBudgets>,
    validators: ValidatorSet,
}

/// A validator's equivocations are logged at most once per this.
const EQUIVOCATION_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// How long after its previous proposal the primary proposes again:
/// `block_interval_ms` when `ready` transactions can go in a block (so
/// blocks fill), `empty_block_interval_ms` when none can or the last
/// selection came up empty (`idle`). Transactions behind a nonce gap are
/// not ready, so they never make the chain produce empty blocks faster than
/// an idle one, which still makes a block every `empty_block_interval_ms`
/// so the backups' view timers do not fire.
fn proposal_wait_ms(ready: usize, idle: bool, consensus: &ConsensusOptions) -> u64 {
    if ready == 0 || idle {
        consensus.empty_block_interval_ms
    } else {
        consensus.block_interval_ms
    }
}

/// What the driver does when the view timer of `after_ms` expires at
/// `now`.
#[derive(Debug, PartialEq, Eq)]
enum TimerFired {
    /// Tell the replica: it starts a view change.
    ViewChange,
    /// Re-arm the timer for this instant instead.
    WaitUntil(tokio::time::Instant),
}

/// The primary gets a whole timeout with a quorum in reach (at start, after
/// a partition) before this node votes it out; otherwise a node whose
/// quorum connected just before its timer expired moves to a higher view
/// alone and stays there. Without a quorum in reach a view change cannot
/// succeed, so the node waits for peers.
fn view_timer_fired(
    quorum_since: Option<tokio::time::Instant>,
    after_ms: u64,
    now: tokio::time::Instant,
) -> TimerFired {
    const NO_QUORUM_RECHECK: Duration = Duration::from_millis(200);
    match quorum_since.map(|t| t + Duration::from_millis(after_ms)) {
        Some(due) if due > now => TimerFired::WaitUntil(due),
        Some(_) => TimerFired::ViewChange,
        None => TimerFired::WaitUntil(now + NO_QUORUM_RECHECK),
    }
}

struct PendingValidation {
    seq: u64,
    block_hash: Hash,
    parent: Hash,
    payload: Vec<u8>,
}

impl Driver {
    async fn run(
        mut self,
        first: Input,
        mut inbound: mpsc::Receiver<Inbound>,
        mut sync_rx: mpsc::Receiver<(u64, SyncedBlock)>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        if self.quorum_connected() {
            // A network of one: its quorum is itself.
            self.quorum_since = Some(tokio::time::Instant::now());
        }
        self.feed(first).await?;
        loop {
            let timer_at = self.timer.map(|(_, at)| at);
            let proposal_at = self.proposal_deadline();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                ev = inbound.recv() => match ev {
                    Some(ev) => {
                        // Consensus messages that arrived together go to
                        // the replica as one batch (one log write).
                        let mut batch = VecDeque::new();
                        // The senders' queued-bytes charges are given back
                        // once the replica has taken the batch, so the
                        // batch itself stays within their budgets.
                        let mut charges = Vec::new();
                        let mut others = Vec::new();
                        let mut next = Some(ev);
                        while let Some(ev) = next.take() {
                            match ev {
                                Inbound::Message {
                                    channel: Channel::Consensus,
                                    payload,
                                    charge,
                                    ..
                                } => {
                                    batch.push_back(Input::Message(payload));
                                    charges.push(charge);
                                }
                                other => others.push(other),
                            }
                            if batch.len() + others.len() < INBOUND_BATCH_MAX {
                                next = inbound.try_recv().ok();
                            }
                        }
                        if !batch.is_empty() {
                            self.feed_all(batch).await?;
                        }
                        drop(charges);
                        for ev in others {
                            self.on_inbound(ev).await?;
                        }
                    }
                    None => break,
                },
                () = sleep_until_opt(timer_at) => {
                    if let Some((id, _)) = self.timer.take() {
                        let now = tokio::time::Instant::now();
                        match view_timer_fired(self.quorum_since, self.timer_after_ms, now) {
                            TimerFired::ViewChange => self.feed(Input::Timer(id)).await?,
                            TimerFired::WaitUntil(at) => self.timer = Some((id, at)),
                        }
                    }
                }
                Some((generation, block)) = sync_rx.recv() => {
                    if generation == self.sync_gen {
                        self.feed(Input::Synced {
                            certificate: block.certificate,
                            payload: block.payload,
                        })
                        .await?;
                    }
                }
                () = sleep_until_opt(proposal_at) => {
                    self.propose().await?;
                }
                () = self.shared.tx_arrived.notified(), if self.pending_proposal.is_some() => {
                    self.idle_above = None;
                }
            }
        }
        self.sync_on_stop();
        info!(height = self.tip.height, "validator stopped");
        Ok(())
    }

    /// Syncs the database's log once more at a clean stop, so the last
    /// commits are durable and the high-water mark names them exactly.
    fn sync_on_stop(&self) {
        let Ok(state) = self.shared.state.read() else {
            return;
        };
        match state.db().flush_wal(true) {
            Ok(()) => self.mark.publish(Mark {
                height: self.tip.height,
                wal_next: self.wal.next_index(),
                view: self.replica.view().0,
            }),
            Err(e) => warn!(error = %e, "cannot sync the database at stop"),
        }
    }

    /// When to build the pending proposal: soon if transactions a block
    /// can take wait, after the empty-block interval otherwise
    /// ([`proposal_wait_ms`]), never while its parent is neither the
    /// committed tip nor executed on it, nor while everything waiting is
    /// already in the uncommitted parent.
    fn proposal_deadline(&self) -> Option<tokio::time::Instant> {
        let (_, seq, parent) = self.pending_proposal?;
        self.parent_ref(&parent, seq)?;
        let idle = self.idle_above == Some(parent);
        if idle && parent != self.tip.hash {
            return None;
        }
        let ready = self.shared.mempool().ready_len();
        let wait = proposal_wait_ms(ready, idle, &self.consensus);
        Some(tokio::time::Instant::from_std(
            self.last_proposal + Duration::from_millis(wait),
        ))
    }

    async fn on_inbound(&mut self, ev: Inbound) -> Result<(), NodeError> {
        match ev {
            Inbound::Message {
                channel: Channel::Consensus,
                payload,
                ..
            } => self.feed(Input::Message(payload)).await,
            // Gossip never reaches the driver (`route_inbound` takes it).
            Inbound::Message { channel, from, .. } => {
                debug!(%from, channel = channel.name(), "unexpected message channel");
                Ok(())
            }
            Inbound::SyncRequest {
                from,
                request,
                respond,
            } => {
                let Some(req) = SyncRequest::decode(&request) else {
                    self.shared
                        .metrics
                        .record_peer_garbage(PeerGarbage::SyncMalformed);
                    debug!(%from, "malformed sync request");
                    // Dropping `respond` closes the request stream.
                    return Ok(());
                };
                let shared = self.shared.clone();
                let bytes_max = self.sync_bytes_max;
                tokio::task::spawn_blocking(move || {
                    match serve_sync(&shared.state, req, bytes_max) {
                        Ok(bytes) => respond.respond(bytes),
                        Err(e) => warn!(%from, error = %e, "cannot serve sync request"),
                    }
                });
                Ok(())
            }
            Inbound::PeerConnected(peer) => {
                debug!(%peer, resent = self.recent.len(), "peer connected");
                if self.quorum_since.is_none() && self.quorum_connected() {
                    self.quorum_since = Some(tokio::time::Instant::now());
                }
                let net = &self.shared.net;
                if let Some(nv) = &self.last_new_view {
                    net.send(&peer, Channel::Consensus, nv.clone());
                }
                for bytes in &self.recent {
                    net.send(&peer, Channel::Consensus, bytes.clone());
                }
                // Gossip goes once, to the peers connected then: offer the
                // pending transactions again, or one admitted while this
                // peer was cut off waits here until this validator leads.
                // All of them, gapped ones too: this validator's state may
                // lag the peer's, and the peer's admission sorts them out.
                let pending = self
                    .shared
                    .mempool()
                    .pending(REGOSSIP_TXS_MAX, REGOSSIP_BYTES_MAX);
                for tx in pending {
                    let raw = tx.to_bytes();
                    let payload = GossipTx {
                        sender: None,
                        raw: &raw,
                    };
                    net.send(&peer, Channel::Gossip, payload.encode());
                }
                Ok(())
            }
            Inbound::PeerDisconnected(peer) => {
                debug!(%peer, "peer disconnected");
                if !self.quorum_connected() {
                    self.quorum_since = None;
                }
                Ok(())
            }
        }
    }

    /// Feeds `input` to the replica and carries out the actions, feeding
    /// back the inputs they produce, until there is nothing left.
    async fn feed(&mut self, input: Input) -> Result<(), NodeError> {
        self.feed_all(VecDeque::from([input])).await
    }

    /// Feeds every input at hand to the replica before carrying out their
    /// actions together (one synced log write for all of them), then the
    /// inputs those actions produce, until there is nothing left.
    async fn feed_all(&mut self, mut inputs: VecDeque<Input>) -> Result<(), NodeError> {
        while !inputs.is_empty() {
            let mut actions = Vec::new();
            while let Some(input) = inputs.pop_front() {
                actions.extend(self.replica.handle(input));
            }
            self.carry_out(actions, &mut inputs).await?;
        }
        self.observe();
        Ok(())
    }

    fn observe(&mut self) {
        let (view, _) = self.replica.view();
        let old = self.shared.view.swap(view, Ordering::Relaxed);
        if view > old {
            self.shared.view_changes.fetch_add(1, Ordering::Relaxed);
            self.shared.metrics.view_changes.inc();
            info!(view, "view changed");
        }
        self.shared.metrics.view.set(view as i64);
        self.shared
            .stable_seq
            .store(self.replica.stable_seq(), Ordering::Relaxed);
        self.shared
            .metrics
            .record_consensus_counters(self.replica.counters());
    }

    async fn carry_out(
        &mut self,
        actions: Vec<Action>,
        inputs: &mut VecDeque<Input>,
    ) -> Result<(), NodeError> {
        // Group commit: every record of this batch in one synced write,
        // before any of the batch's other actions (moving a record earlier
        // never breaks persist-before-send).
        let mut records: Vec<Record> = Vec::new();
        let actions: Vec<Action> = actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Persist(record) => {
                    records.push(record);
                    None
                }
                other => Some(other),
            })
            .collect();
        self.persist(&mut records)?;
        for action in actions {
            match action {
                Action::Persist(_) => {}
                Action::Broadcast(bytes) => {
                    let bytes: Arc<[u8]> = Arc::from(bytes);
                    self.remember_broadcast(&bytes);
                    self.shared.net.broadcast(Channel::Consensus, bytes);
                }
                Action::Send { to, bytes } => {
                    if let Some(v) = self.shared.validators.get(to as usize) {
                        self.shared
                            .net
                            .send(&v.address, Channel::Consensus, Arc::from(bytes));
                    }
                }
                Action::SetTimer { id, after_ms } => {
                    self.timer = Some((
                        id,
                        tokio::time::Instant::now() + Duration::from_millis(after_ms),
                    ));
                    self.timer_after_ms = after_ms;
                }
                Action::RequestProposal { view, seq, parent } => {
                    self.pending_proposal = Some((view, seq, parent));
                }
                Action::ValidateBlock {
                    seq,
                    block_hash,
                    parent,
                    payload,
                } => {
                    let pending = PendingValidation {
                        seq,
                        block_hash,
                        parent,
                        payload,
                    };
                    if self.parent_ref(&parent, seq).is_some() {
                        let valid = self.validate(&pending).await?;
                        inputs.push_back(Input::BlockValidated {
                            seq,
                            block_hash,
                            valid,
                        });
                        if valid {
                            // Its children may have arrived first.
                            self.validate_waiting(inputs).await?;
                        }
                    } else {
                        // The parent is not executed here yet. A proposal
                        // further above the tip than the pipeline explains
                        // means this node missed committed blocks inside
                        // the window: fetch them now rather than wait for
                        // the next checkpoint, or the view timer fires and
                        // leaves this node alone in a higher view.
                        let missing_to = seq.saturating_sub(self.consensus.pipeline_blocks.max(1));
                        if missing_to > self.tip.height
                            && (missing_to > self.sync_to
                                || !self.shared.syncing.load(Ordering::Relaxed))
                        {
                            self.start_sync(self.tip.height + 1, missing_to);
                        }
                        if self.waiting_validation.len() >= WAITING_VALIDATIONS_MAX {
                            self.waiting_validation.pop_front();
                        }
                        self.waiting_validation.push_back(pending);
                    }
                }
                Action::Commit {
                    seq,
                    block_hash,
                    payload,
                    certificate,
                } => {
                    self.commit(seq, block_hash, payload, certificate).await?;
                    // Proposals that were waiting for this block.
                    self.validate_waiting(inputs).await?;
                }
                Action::RequestSync { from, to } => self.start_sync(from, to),
                Action::Evidence(evidence) => {
                    self.shared.metrics.equivocations.inc();
                    let signer = evidence.first.signer;
                    // Two validly signed conflicting messages: the signer
                    // is faulty, and its messages wait unchecked a while.
                    if let Some(v) = self.validators.get(signer as usize) {
                        self.budgets.offence(v.address, Instant::now());
                    }
                    if let Some(unlogged) = self.equivocation_log.event(signer, Instant::now()) {
                        warn!(
                            signer,
                            unlogged,
                            "validator signed conflicting messages (logged once per signer per 30 s; `unlogged` more since the last line)"
                        );
                    }
                }
                Action::CompactLog { stable_seq, view } => {
                    let shared = self.shared.clone();
                    let state = shared.state.read().map_err(|_| poisoned())?;
                    let dropped = self
                        .wal
                        .compact(&state, stable_seq, view)
                        .map_err(storage)?;
                    debug!(stable_seq, dropped, "compacted the consensus log");
                }
            }
        }
        self.persist(&mut records)
    }

    /// Whether this node and the validators it is connected to hold a
    /// quorum of the voting power.
    fn quorum_connected(&self) -> bool {
        let connected = self.shared.net.connected();
        let set = &self.shared.validators;
        let power: u64 = set
            .validators()
            .iter()
            .filter(|v| v.address == self.me || connected.contains(&v.address))
            .map(|v| v.power)
            .sum();
        power >= set.quorum_power()
    }

    fn remember_broadcast(&mut self, bytes: &Arc<[u8]>) {
        let is_new_view = stele_consensus::SignedMessage::decode(bytes, &self.msg_limits)
            .is_ok_and(|m| matches!(m.message, stele_consensus::Message::NewView(_)));
        if is_new_view {
            self.last_new_view = Some(bytes.clone());
            return;
        }
        self.recent_bytes += bytes.len();
        self.recent.push_back(bytes.clone());
        while self.recent.len() > RECENT_BROADCASTS_MAX
            || (self.recent_bytes > RECENT_BROADCAST_BYTES_MAX && self.recent.len() > 1)
        {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= old.len();
            }
        }
    }

    fn persist(&mut self, records: &mut Vec<Record>) -> Result<(), NodeError> {
        if records.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let state = shared.state.read().map_err(|_| poisoned())?;
        let started = std::time::Instant::now();
        let synced = self.wal.append(&state, records).map_err(storage)?;
        if synced {
            shared
                .metrics
                .wal_sync_seconds
                .observe(started.elapsed().as_secs_f64());
            // The sync made every commit so far and every record durable.
            self.mark.publish(Mark {
                height: self.tip.height,
                wal_next: self.wal.next_index(),
                view: self.replica.view().0,
            });
        }
        records.clear();
        Ok(())
    }

    /// The committed tip's state.
    fn base(&self) -> StateBase {
        StateBase::at(&self.shared.state, Some(self.tip.height), None)
    }

    /// The uncommitted blocks between the committed tip and a new block at
    /// `seq` on `parent`, newest first: none if `parent` is the tip, `None`
    /// if `parent` is neither the tip nor a block executed on it (directly
    /// or through other such blocks).
    fn uncommitted_chain(&self, parent: &Hash, seq: u64) -> Option<Vec<&Executed>> {
        let mut chain = Vec::new();
        let (mut hash, mut height) = (*parent, seq.checked_sub(1)?);
        while hash != self.tip.hash {
            if height <= self.tip.height {
                return None;
            }
            // A primary proposes at most this far ahead of a commit; a
            // deeper chain waits for commits here, which bounds the write
            // sets merged for it.
            if chain.len() as u64 >= PIPELINE_BLOCKS_MAX {
                return None;
            }
            let e = self.executed.get(&hash)?;
            if e.block.header.height != height {
                return None;
            }
            chain.push(e);
            hash = e.block.header.parent_hash;
            height -= 1;
        }
        (height == self.tip.height).then_some(chain)
    }

    /// The block a new one at `seq` on `parent` builds on, if it is the
    /// tip or executed on it.
    fn parent_ref(&self, parent: &Hash, seq: u64) -> Option<Tip> {
        let chain = self.uncommitted_chain(parent, seq)?;
        Some(match chain.first() {
            None => self.tip,
            Some(e) => Tip {
                height: e.block.header.height,
                hash: *parent,
                timestamp_ms: e.block.header.timestamp_ms,
            },
        })
    }

    /// What a block at `seq` on `parent` executes on: the committed tip,
    /// with the writes of the uncommitted blocks in between on top.
    fn base_on(&self, parent: &Hash, seq: u64) -> Option<StateBase> {
        let chain = self.uncommitted_chain(parent, seq)?;
        let pending = (!chain.is_empty()).then(|| {
            let mut writes = WriteSet::new();
            for e in chain.iter().rev() {
                writes.extend(e.exec.writes.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Arc::new(writes)
        });
        Some(StateBase::at(
            &self.shared.state,
            Some(self.tip.height),
            pending,
        ))
    }

    fn block_limits(&self) -> BlockLimits {
        let cfg = self.shared.executor.config();
        BlockLimits {
            gas_max: cfg.block_gas_max,
            // Leave room for the header in the consensus payload.
            bytes_max: cfg.block_bytes_max,
            txs_max: cfg.block_txs_max,
        }
    }

    /// Builds, executes and proposes the block the replica asked for, on
    /// the committed tip or on a block still in its commit round.
    async fn propose(&mut self) -> Result<(), NodeError> {
        let Some((view, seq, parent)) = self.pending_proposal.take() else {
            return Ok(());
        };
        let (Some(on), Some(base)) = (self.parent_ref(&parent, seq), self.base_on(&parent, seq))
        else {
            // The parent is not executed here: wait for it.
            self.pending_proposal = Some((view, seq, parent));
            return Ok(());
        };
        let limits = self.block_limits();
        let env = BlockEnv {
            height: seq,
            timestamp_ms: now_ms().max(on.timestamp_ms + 1),
            proposer: self.me,
        };
        // A transaction the mempool thought valid may not be (the pool is
        // checked against committed state only); drop it and try again.
        for _ in 0..8 {
            let txs = self.shared.mempool().select(limits, &base);
            if txs.is_empty() && base.pending.is_some() {
                // Everything waiting is already in the blocks above the tip.
                self.idle_above = Some(parent);
                self.pending_proposal = Some((view, seq, parent));
                return Ok(());
            }
            let idle_ms = self.consensus.empty_block_interval_ms;
            if txs.is_empty() && self.last_proposal.elapsed() < Duration::from_millis(idle_ms) {
                // Nothing the pool holds can go in this block: an empty
                // block waits for the idle interval.
                self.idle_above = Some(parent);
                self.pending_proposal = Some((view, seq, parent));
                return Ok(());
            }
            self.last_proposal = Instant::now();
            let executor = self.shared.executor.clone();
            let state = self.shared.state.clone();
            let (b, e, t) = (base.clone(), env.clone(), txs.clone());
            let result = self
                .exec
                .run(
                    move || -> Result<(BlockExecution, Hash, Option<PreparedCommit>), ExecError> {
                        let exec = executor.execute_block(b.clone(), &e, &t)?;
                        let (root, prepared) = root_after(&state, e.height, &b, &exec.writes)
                            .map_err(ExecError::Backend)?;
                        Ok((exec, root, prepared))
                    },
                )
                .await?;
            match result {
                Ok((exec, state_root, prepared)) => {
                    // The receipts carry the hashes the executor computed.
                    let tx_hashes: Vec<Hash> = exec.receipts.iter().map(|r| r.tx_hash).collect();
                    let block = Block {
                        header: BlockHeader {
                            chain_id: self.shared.chain_id,
                            height: seq,
                            view,
                            parent_hash: parent,
                            tx_root: stele_types::list_root(&tx_hashes),
                            state_root,
                            receipts_root: exec.receipts_root,
                            timestamp_ms: env.timestamp_ms,
                            proposer: self.me,
                        },
                        txs,
                    };
                    let block_hash = block.hash();
                    let payload = block.to_bytes();
                    debug!(seq, view, txs = block.txs.len(), "proposing");
                    if base.pending.is_some() {
                        self.shared.metrics.pipelined_blocks.inc();
                    }
                    self.shared
                        .metrics
                        .exec_seconds
                        .observe(self.last_proposal.elapsed().as_secs_f64());
                    self.remember(
                        block_hash,
                        Executed {
                            block,
                            exec,
                            prepared,
                            at: Instant::now(),
                        },
                    );
                    return self
                        .feed(Input::ProposalReady {
                            view,
                            seq,
                            block_hash,
                            payload,
                        })
                        .await;
                }
                Err(ExecError::InvalidTx { hash, reason, .. }) => {
                    debug!(%hash, %reason, "dropping a transaction that cannot be included");
                    self.shared.mempool().remove(&hash);
                }
                Err(ExecError::TxInternal { hash, reason, .. }) => {
                    // Never a contract's doing (those are receipts), so a
                    // bug or a resource of this node: the block goes on
                    // without the transaction rather than the node
                    // stopping.
                    warn!(%hash, %reason, "dropping a transaction whose execution failed inside the node");
                    self.shared.metrics.txs_dropped_internal.inc();
                    self.shared.mempool().remove(&hash);
                }
                Err(e) if base.pending.is_some() => {
                    // Above an uncommitted parent (its writes and these may
                    // exceed one commit's limits): wait for the parent.
                    warn!(seq, error = %e, "cannot build a block above an uncommitted parent yet");
                    self.idle_above = Some(parent);
                    break;
                }
                Err(e) => {
                    return Err(NodeError::Commit {
                        height: seq,
                        reason: format!("cannot build a block: {e}"),
                    });
                }
            }
        }
        // Try again at the next deadline.
        self.pending_proposal = Some((view, seq, parent));
        Ok(())
    }

    /// Validates the waiting proposals whose parent is now the tip or
    /// executed on it (one may be the parent of the next), and forgets
    /// those at or below the tip.
    async fn validate_waiting(&mut self, inputs: &mut VecDeque<Input>) -> Result<(), NodeError> {
        let tip = self.tip.height;
        self.waiting_validation.retain(|p| p.seq > tip);
        while let Some(i) = self
            .waiting_validation
            .iter()
            .position(|p| self.parent_ref(&p.parent, p.seq).is_some())
        {
            let Some(p) = self.waiting_validation.remove(i) else {
                break;
            };
            let valid = self.validate(&p).await?;
            inputs.push_back(Input::BlockValidated {
                seq: p.seq,
                block_hash: p.block_hash,
                valid,
            });
        }
        Ok(())
    }

    fn remember(&mut self, hash: Hash, executed: Executed) {
        if self.executed.len() >= EXECUTED_MAX {
            self.executed.pop_first();
        }
        self.executed.insert(hash, executed);
    }

    /// Checks a proposed block on top of its parent (the committed tip or a
    /// block executed on it) and executes it.
    async fn validate(&mut self, p: &PendingValidation) -> Result<bool, NodeError> {
        if self.executed.contains_key(&p.block_hash) {
            return Ok(true);
        }
        let checked = self
            .check_block(p.seq, &p.block_hash, &p.payload, true)
            .and_then(|b| {
                if b.header.parent_hash == p.parent {
                    Ok(b)
                } else {
                    Err("the header's parent is not the proposal's".into())
                }
            });
        let block = match checked {
            Ok(b) => b,
            Err(reason) => {
                warn!(seq = p.seq, %reason, "rejecting proposed block");
                return Ok(false);
            }
        };
        let started = Instant::now();
        let result = self.execute(block).await?;
        self.shared
            .metrics
            .exec_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(executed) => {
                if p.parent != self.tip.hash {
                    self.shared.metrics.pipelined_blocks.inc();
                }
                self.remember(p.block_hash, executed);
                Ok(true)
            }
            Err(reason) => {
                warn!(seq = p.seq, %reason, "rejecting proposed block");
                Ok(false)
            }
        }
    }

    /// The structural checks of a block at `seq` on its parent, the tip or
    /// a block executed on it.
    fn check_block(
        &self,
        seq: u64,
        block_hash: &Hash,
        payload: &[u8],
        check_clock: bool,
    ) -> Result<Block, String> {
        let block: Block =
            decode(payload, &self.shared.limits).map_err(|e| format!("undecodable: {e}"))?;
        let h = &block.header;
        if block.hash() != *block_hash {
            return Err("hash does not match".into());
        }
        if h.chain_id != self.shared.chain_id {
            return Err(format!("chain id {} is not ours", h.chain_id));
        }
        if h.height != seq {
            return Err(format!("height {} where {} was expected", h.height, seq));
        }
        let Some(parent) = self.parent_ref(&h.parent_hash, seq) else {
            return Err("parent is neither the committed tip nor executed on it".into());
        };
        if h.tx_root != block.compute_tx_root() {
            return Err("transaction root does not match".into());
        }
        if h.proposer != self.shared.validators.primary(h.view).address {
            return Err(format!("proposer is not the primary of view {}", h.view));
        }
        if h.timestamp_ms <= parent.timestamp_ms {
            return Err("timestamp does not advance".into());
        }
        if check_clock && h.timestamp_ms > now_ms() + CLOCK_DRIFT_MAX_MS {
            return Err("timestamp is too far in the future".into());
        }
        Ok(block)
    }

    /// Executes `block` on its parent (the tip or a block executed on it)
    /// and checks its roots.
    fn execute(
        &self,
        block: Block,
    ) -> impl std::future::Future<Output = Result<Result<Executed, String>, NodeError>> + Send + 'static
    {
        let executor = self.shared.executor.clone();
        let state = self.shared.state.clone();
        let base = self.base_on(&block.header.parent_hash, block.header.height);
        let exec = self.exec.clone();
        async move {
            let Some(base) = base else {
                return Ok(Err("the parent is not executed".into()));
            };
            exec.run(move || {
                let h = &block.header;
                let env = BlockEnv {
                    height: h.height,
                    timestamp_ms: h.timestamp_ms,
                    proposer: h.proposer,
                };
                let exec = executor
                    .execute_block(base.clone(), &env, &block.txs)
                    .map_err(|e| format!("execution: {e}"))?;
                if exec.receipts_root != h.receipts_root {
                    return Err("receipts root does not match".into());
                }
                let (root, prepared) = root_after(&state, h.height, &base, &exec.writes)?;
                if root != h.state_root {
                    return Err(format!(
                        "state root {root} does not match the header's {}",
                        h.state_root
                    ));
                }
                Ok(Executed {
                    block,
                    exec,
                    prepared,
                    at: Instant::now(),
                })
            })
            .await
        }
    }

    async fn commit(
        &mut self,
        seq: u64,
        block_hash: Hash,
        payload: Vec<u8>,
        certificate: CommitCertificate,
    ) -> Result<(), NodeError> {
        let fail = |reason: String| NodeError::Commit {
            height: seq,
            reason,
        };
        let executed = match self.executed.remove(&block_hash) {
            Some(e) if e.block.header.parent_hash == self.tip.hash => e,
            _ => {
                // Synced, or validated before a restart: check and execute
                // now. The certificate makes it final, so a mismatch here
                // means this node is broken, not the block.
                let block = self
                    .check_block(seq, &block_hash, &payload, false)
                    .map_err(fail)?;
                if block.header.parent_hash != self.tip.hash {
                    return Err(fail("parent is not the committed tip".into()));
                }
                self.execute(block).await?.map_err(fail)?
            }
        };
        let started = Instant::now();
        let state = self.shared.state.clone();
        let cert = certificate.clone();
        let executed_at = executed.at;
        let (executed, txs_len) = {
            let Executed {
                block,
                exec,
                prepared,
                ..
            } = executed;
            let txs_len = block.txs.len();
            let result = self
                .exec
                .run(move || -> Result<(Block, BlockExecution), String> {
                    let mut state = state
                        .write()
                        .map_err(|_| "state lock poisoned".to_string())?;
                    // The Merkle update from validation, unless the state
                    // moved since (then it is computed again).
                    let prepared = match prepared {
                        Some(p) if p.base() == state.latest_version() => {
                            finish_block_commit(&state, p, &block, &exec.receipts, &cert)
                        }
                        _ => prepare_block_commit(
                            &state,
                            &block,
                            &exec.receipts,
                            &cert,
                            &exec.writes,
                        ),
                    }
                    .map_err(|e| e.to_string())?;
                    // Not synced here: the next synced write to this
                    // database (this node's next synced consensus-log
                    // record, at the latest the next block's prepared
                    // certificate) makes it durable, and until then
                    // the block is recoverable from the prepared
                    // certificate in the log, which was synced before this
                    // node voted to commit it, and from its peers. A crash
                    // of the process loses nothing (the write is in the
                    // operating system's buffers).
                    state.apply_unsynced(prepared).map_err(|e| e.to_string())?;
                    Ok((block, exec))
                })
                .await?
                .map_err(fail)?;
            (result, txs_len)
        };
        let (block, exec) = executed;
        let metrics = &self.shared.metrics;
        metrics
            .storage_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics
            .commit_latency
            .observe(executed_at.elapsed().as_secs_f64());
        let interval_ms = block
            .header
            .timestamp_ms
            .saturating_sub(self.tip.timestamp_ms);
        metrics.block_interval.observe(interval_ms as f64 / 1000.0);
        metrics.txs_committed.inc_by(txs_len as u64);
        metrics.height.set(seq as i64);
        self.tip = Tip {
            height: seq,
            hash: block_hash,
            timestamp_ms: block.header.timestamp_ms,
        };
        self.shared.height.store(seq, Ordering::Relaxed);
        self.executed.retain(|_, e| e.block.header.height > seq);
        let committed: Vec<(Hash, Address)> = exec
            .receipts
            .iter()
            .map(|r| r.tx_hash)
            .zip(exec.senders.iter().copied())
            .collect();
        let base = self.base();
        let (txs, bytes, gapped, expired, ready) = {
            let mut pool = self.shared.mempool();
            pool.on_block_committed(seq, &committed, &base);
            (
                pool.len(),
                pool.bytes(),
                pool.gapped_len(),
                pool.expired_total(),
                pool.take_announcements(),
            )
        };
        // Transactions of this node's clients whose gap the block closed.
        self.shared.announce(ready);
        metrics.mempool_txs.set(txs as i64);
        metrics.mempool_bytes.set(bytes as i64);
        metrics.mempool_gapped_txs.set(gapped as i64);
        let newly_expired = expired.saturating_sub(metrics.mempool_expired.get());
        if newly_expired > 0 {
            metrics.mempool_expired.inc_by(newly_expired);
            debug!(
                height = seq,
                expired = newly_expired,
                "dropped gapped transactions at their TTL"
            );
        }
        if self.shared.syncing.load(Ordering::Relaxed) && seq >= self.sync_target() {
            self.shared.syncing.store(false, Ordering::Relaxed);
        }
        debug!(height = seq, txs = txs_len, "committed");
        // Subscribers hear of the block before any housekeeping below.
        let _ = self.shared.commits.send(Arc::new(CommittedBlock {
            block,
            receipts: exec.receipts,
            certificate,
        }));
        if self.prune_interval_blocks > 0 && seq.is_multiple_of(self.prune_interval_blocks) {
            let state = self.shared.state.clone();
            let started = std::time::Instant::now();
            let pruned = self
                .exec
                .run(move || match state.write() {
                    Ok(mut state) => state.prune().map_err(|e| e.to_string()),
                    Err(_) => Err("state lock poisoned".to_string()),
                })
                .await?;
            metrics
                .prune_seconds
                .observe(started.elapsed().as_secs_f64());
            match pruned {
                Ok(stats) => debug!(height = seq, ?stats, "pruned old state versions"),
                // Pruning only frees space; the chain goes on without it.
                Err(e) => warn!(height = seq, error = %e, "pruning failed"),
            }
        }
        Ok(())
    }

    fn sync_target(&self) -> u64 {
        self.sync_to
    }

    /// Fetches blocks `from..=to` from peers, in order, and hands them to
    /// the driver; a newer request supersedes this one.
    fn start_sync(&mut self, from: u64, to: u64) {
        self.shared.syncing.store(true, Ordering::Relaxed);
        self.shared.peer_height.fetch_max(to, Ordering::Relaxed);
        if self.sync_running.load(Ordering::Relaxed) && from >= self.sync_from {
            // Extend the running sync instead of starting over: on a slow
            // network a restarted sync would never finish.
            self.sync_target.fetch_max(to, Ordering::Relaxed);
            self.sync_to = self.sync_to.max(to);
            return;
        }
        self.sync_gen += 1;
        let generation = self.sync_gen;
        self.sync_to = to;
        self.sync_from = from;
        let target = Arc::new(AtomicU64::new(to));
        let running = Arc::new(AtomicBool::new(true));
        self.sync_target = target.clone();
        self.sync_running = running.clone();
        info!(from, to, "syncing blocks from peers");
        let net = self.shared.net.clone();
        let limits = self.shared.limits.clone();
        let tx = self.sync_tx.clone();
        let me = self.me;
        let validators: Vec<Address> = self
            .shared
            .validators
            .validators()
            .iter()
            .map(|v| v.address)
            .filter(|a| *a != me)
            .collect();
        tokio::spawn(async move {
            let mut next = from;
            let mut attempt: usize = 0;
            let mut failures: usize = 0;
            while next <= target.load(Ordering::Relaxed) && failures < 64 {
                let to = target.load(Ordering::Relaxed);
                let connected = net.connected();
                let peers: Vec<&Address> = validators
                    .iter()
                    .filter(|a| connected.contains(a))
                    .collect();
                if peers.is_empty() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    failures += 1;
                    continue;
                }
                let peer = *peers[attempt % peers.len()];
                attempt += 1;
                failures += 1;
                let req = SyncRequest { from: next, to };
                let blocks = match net.request(&peer, &req.encode()).await {
                    Ok(bytes) => match decode_response(&bytes, &limits) {
                        Ok(blocks) => blocks,
                        Err(e) => {
                            warn!(%peer, error = %e, "malformed sync response");
                            continue;
                        }
                    },
                    Err(e) => {
                        debug!(%peer, error = %e, "sync request failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if blocks.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                for block in blocks {
                    if block.certificate.height != next {
                        break;
                    }
                    next += 1;
                    failures = 0;
                    if tx.send((generation, block)).await.is_err() {
                        running.store(false, Ordering::Relaxed);
                        return;
                    }
                }
            }
            running.store(false, Ordering::Relaxed);
        });
    }
}

/// Answers a block-sync request from a snapshot of the committed state: the
/// state lock is held only while the snapshot is taken, so a commit never
/// waits for the (up to 64) block reads.
fn serve_sync(
    state: &SharedState,
    req: SyncRequest,
    bytes_max: usize,
) -> Result<Vec<u8>, NodeError> {
    let view = state.read().map_err(|_| poisoned())?.view();
    match view {
        Some(view) => serve(&BlockReader::from_view(&view), req, bytes_max)
            .map_err(|e| NodeError::Storage(e.to_string())),
        // Nothing committed: no blocks to give.
        None => Ok(0u32.to_le_bytes().to_vec()),
    }
}

/// Sleeps until `at`, or forever without a deadline.
/// The state root after `writes` on `base`, with the commit to reuse when
/// `base` is the committed version itself. Over uncommitted parents the
/// root is that of their writes and these together (a root depends only on
/// the keys and values), and the commit is computed again once the parents
/// are in.
fn root_after(
    state: &SharedState,
    height: u64,
    base: &StateBase,
    writes: &WriteSet,
) -> Result<(Hash, Option<PreparedCommit>), String> {
    let state = state
        .read()
        .map_err(|_| "state lock poisoned".to_string())?;
    if state.latest_version() != base.version {
        return Err("the committed state moved under the execution".into());
    }
    let state_err = |e: stele_state::StateError| format!("state: {e}");
    match &base.pending {
        None => {
            let prepared = state.prepare_commit(height, writes).map_err(state_err)?;
            Ok((prepared.root(), Some(prepared)))
        }
        Some(pending) => {
            let mut all = WriteSet::clone(pending);
            all.extend(writes.iter().map(|(k, v)| (k.clone(), v.clone())));
            let prepared = state.prepare_commit(height, &all).map_err(state_err)?;
            Ok((prepared.root(), None))
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn poisoned() -> NodeError {
    NodeError::Storage("state lock poisoned by a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT_MS: u64 = 2_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The start-up race the fault tests hit once in about four runs: the
    /// quorum connects 10 ms before the first timer expires. The timer must
    /// wait a whole timeout from that moment, not vote the primary out.
    #[test]
    fn a_quorum_that_connected_just_before_expiry_gets_a_whole_timeout() {
        let start = tokio::time::Instant::now();
        let connected = start + ms(TIMEOUT_MS - 10);
        let fired = start + ms(TIMEOUT_MS);
        assert_eq!(
            view_timer_fired(Some(connected), TIMEOUT_MS, fired),
            TimerFired::WaitUntil(connected + ms(TIMEOUT_MS))
        );
        // At the re-armed deadline the view change goes ahead.
        assert_eq!(
            view_timer_fired(Some(connected), TIMEOUT_MS, connected + ms(TIMEOUT_MS)),
            TimerFired::ViewChange
        );
    }

    #[test]
    fn a_quorum_in_reach_for_a_whole_timeout_changes_the_view() {
        let start = tokio::time::Instant::now();
        assert_eq!(
            view_timer_fired(Some(start), TIMEOUT_MS, start + ms(TIMEOUT_MS + 1)),
            TimerFired::ViewChange
        );
    }

    #[test]
    fn without_a_quorum_the_timer_waits_for_peers() {
        let now = tokio::time::Instant::now();
        assert_eq!(
            view_timer_fired(None, TIMEOUT_MS, now),
            TimerFired::WaitUntil(now + ms(200))
        );
    }

    #[test]
    fn only_gapped_transactions_waiting_wait_the_empty_block_interval() {
        use crate::mempool::{AccountState, AccountView};
        let opts = ConsensusOptions::default();
        let k = SecretKey::from_bytes(&[7; 32]).expect("a valid key");
        let mut pool = Mempool::new(MempoolConfig::new(1));
        let view = |nonce| AccountState {
            nonce,
            balance: 1 << 60,
        };
        struct One(AccountState);
        impl AccountView for One {
            fn account(&self, _: &Address) -> AccountState {
                self.0
            }
        }
        let tx = |nonce| {
            let signed = stele_types::Transaction {
                chain_id: 1,
                nonce,
                gas_limit: 30_000,
                gas_price: 1,
                payload: stele_types::TxPayload::Transfer {
                    to: Address([1; 20]),
                    amount: 1,
                },
            }
            .sign(&k);
            VerifiedTx::new(signed, 1).expect("signed for chain 1")
        };
        let idle = opts.empty_block_interval_ms;
        assert_eq!(proposal_wait_ms(pool.ready_len(), false, &opts), idle);
        // Nonce 0 is missing: nothing a block can take.
        pool.insert(tx(1), &One(view(0))).expect("admitted");
        assert_eq!(proposal_wait_ms(pool.ready_len(), false, &opts), idle);
        pool.insert(tx(0), &One(view(0))).expect("admitted");
        assert_eq!(
            proposal_wait_ms(pool.ready_len(), false, &opts),
            opts.block_interval_ms
        );
        // A selection that came up empty waits the idle interval too.
        assert_eq!(proposal_wait_ms(pool.ready_len(), true, &opts), idle);
    }

    #[test]
    fn gossip_payloads_round_trip_and_reject_bad_framing() {
        let sender = Address([7; 20]);
        for tx in [
            GossipTx {
                sender: Some(sender),
                raw: b"tx bytes",
            },
            GossipTx {
                sender: None,
                raw: b"tx bytes",
            },
            GossipTx {
                sender: None,
                raw: b"",
            },
        ] {
            let bytes = tx.encode();
            assert_eq!(GossipTx::decode(&bytes), Some(tx));
        }
        let named = GossipTx {
            sender: Some(sender),
            raw: b"",
        }
        .encode();
        assert_eq!(&named[..], &[&[1u8][..], &[7; 20]].concat()[..]);
        assert_eq!(GossipTx::decode(&named[..20]), None);
        assert_eq!(GossipTx::decode(&[]), None);
        assert_eq!(GossipTx::decode(&[2, 0, 0]), None);
    }
}
