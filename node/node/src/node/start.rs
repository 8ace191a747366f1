//! Starting a node: the data dir opened and recovered, the replica, the
//! executor, the transport, the shared state, the inbound tasks and the
//! driver, wired together.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use stele_consensus::{Config as ReplicaConfig, Input, MessageLimits, Record};
use stele_exec::{Executor, SharedState};
use stele_state::State;
use stele_types::{Hash, Limits};
use stele_vm::Vm;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tracing::{error, info, warn};

use super::catch_up::CatchUp;
use super::driver::Driver;
use super::epochs::{self, EpochReplicas};
use super::error::losses_text;
use super::exec_thread::ExecThread;
use super::follower::{Follower, Tip};
use super::join_progress::JoinProgress;
use super::open::{check_mark, open_state_guarded, warm_contracts};
use super::serve::SyncServer;
use super::validator::{Standby, Validator};
use super::{
    ARTIFACT_DIR, Node, NodeError, NodeOptions, PIPELINE_BLOCKS_MAX, Role, Shared, gossip,
};
use crate::genesis::Genesis;
use crate::mark::{DataLoss, Mark, MarkWriter};
use crate::mempool::{Mempool, MempoolConfig};
use crate::metrics::NodeMetrics;
use crate::net::{Inbound, InboundQueues, NetConfig, Network};
use crate::precheck::{self, Precheck, VerifiedSignatures};
use crate::sender_keys::SenderKeys;
use crate::store::BlockReader;
use crate::wal::Wal;

/// Fetched blocks waiting for the driver.
const FETCHED_QUEUE_MAX: usize = 256;

impl Node {
    /// Opens the data directory (initialising it from the genesis on first
    /// start), starts the transport and the driver: with the validator
    /// role on top of the chain follower, or (a full node) the follower
    /// alone.
    pub async fn start(opts: NodeOptions) -> Result<Node, NodeError> {
        Node::start_with(opts, Arc::default()).await
    }

    /// [`start`](Self::start), reporting a join by snapshot in `join` as it
    /// goes (a home answers `/status` from it while the join runs).
    pub async fn start_with(opts: NodeOptions, join: Arc<JoinProgress>) -> Result<Node, NodeError> {
        let genesis = &opts.genesis;
        genesis.validate()?;
        let me = opts.key.public_key().address();
        let genesis_hash = genesis.hash();
        let (mut state, damaged) =
            open_state_guarded(&opts.data_dir, &opts.state, genesis, genesis_hash)?;
        let rcfg = replica_config(&opts, genesis_hash);
        let msg_limits = rcfg.limits.clone();
        // A new or wiped node joins by snapshot on its network, started
        // early for it.
        let early_network = if opts.snapshot_sync && may_join_by_snapshot(&opts, &state)? {
            let (net, inbound, net_cfg) = start_network(&opts, &msg_limits)?;
            let metrics = Arc::new(NodeMetrics::new(net.metrics()));
            let report = super::snapshot_sync::Report {
                progress: &join,
                metrics: &metrics,
            };
            let (joined, inbound) =
                super::snapshot_sync::join(&opts, &mut state, &net, inbound, &report).await;
            match joined {
                Ok(super::snapshot_sync::Joined::At(height)) => {
                    info!(height, "joined by snapshot");
                }
                Ok(super::snapshot_sync::Joined::NoSnapshot) => {}
                Err(e) => {
                    net.shutdown().await;
                    return Err(e);
                }
            }
            Some((net, inbound, net_cfg, metrics))
        } else {
            None
        };
        let consensus = match opts.role {
            Role::Validator => Some(ConsensusParts::open(&opts, &state, damaged, rcfg)?),
            Role::Full => {
                // A full node signs nothing: losing the log's tail only
                // costs blocks it fetches again from its peers.
                if let Some(damage) = damaged {
                    warn!(damage = %damage, "dropped a damaged tail of the database's log; the blocks lost are fetched again from peers");
                }
                None
            }
        };
        let tip = committed_tip(&state, genesis, genesis_hash)?;
        let executor = Arc::new(executor(&opts, &state)?);

        let (net, inbound, net_cfg, metrics) = match early_network {
            Some(started) => started,
            None => {
                let (net, inbound, net_cfg) = start_network(&opts, &msg_limits)?;
                let metrics = Arc::new(NodeMetrics::new(net.metrics()));
                (net, inbound, net_cfg, metrics)
            }
        };
        if consensus.as_ref().is_some_and(|c| c.recovered.lost) {
            metrics.data_loss_accepted.inc();
        }
        let shared = Arc::new(Shared {
            join,
            ..shared(
                &opts,
                genesis_hash,
                state,
                executor,
                net,
                metrics,
                &msg_limits,
                tip,
            )
        });
        let (fetched_tx, fetched_rx) = mpsc::channel(FETCHED_QUEUE_MAX);
        let catch_up = CatchUp::new(shared.clone(), me, fetched_tx);
        let sync_server = SyncServer::new(
            shared.clone(),
            net_cfg.sync_response_bytes_max,
            super::snapshots::snapshots_dir(&opts.data_dir),
        );
        let exec = ExecThread::start(opts.exec_inline)?;
        let follower = Follower::new(
            shared.clone(),
            exec,
            tip,
            catch_up,
            super::follower::Retention {
                prune_interval_blocks: opts.prune_interval_blocks,
                keep_blocks: opts.keep_blocks,
                snapshots: super::snapshots::Snapshots::new(&opts.data_dir, opts.snapshots),
            },
        )?;
        // The epoch the tip's state names decides who is a validator now
        // (ADR 0010), not the genesis.
        let epoch = follower.epoch.clone();
        shared.net.set_validators(epoch.transport_set());
        let member = epoch.validators.index_of(&me).is_some();
        if opts.role == Role::Full && member {
            shared.net.shutdown().await;
            return Err(NodeError::ValidatorKeyOnFullNode(me));
        }
        let mut driver = Driver::new(follower);
        let (first, driver_rx) = match consensus {
            Some(parts) => {
                let mark = MarkWriter::start(
                    &opts.data_dir,
                    shared.metrics.mark_writes.clone(),
                    shared.metrics.mark_write_failures.clone(),
                )
                .map_err(NodeError::MarkWriter)?;
                let (budgets, driver_rx) = spawn_inbound_tasks(
                    &shared,
                    inbound,
                    sync_server,
                    Some((parts.verified.clone(), &msg_limits, parts.horizon)),
                    &net_cfg,
                );
                let Recovered {
                    mut wal,
                    records,
                    lost,
                } = parts.recovered;
                let replicas = EpochReplicas {
                    template: parts.rcfg,
                    chain_timeouts: opts.consensus.view_timeout_ms.is_none()
                        && opts.consensus.view_timeout_max_ms.is_none(),
                    key: opts.key.clone(),
                    verified: parts.verified,
                };
                let base_hash = epochs::block_hash_at(
                    &shared.state,
                    epoch.info.start_height.saturating_sub(1),
                    genesis_hash,
                )?;
                let replica = replicas.build(&epoch, base_hash)?;
                // A log left by a finished epoch is not this epoch's
                // replica's to replay (a stop between an epoch's last
                // commit and the switch).
                let stale = records.iter().any(|r| match r {
                    Record::Signed(m) | Record::NewView(m) => m.epoch < epoch.epoch(),
                    _ => false,
                });
                let records = if stale || replica.is_none() {
                    let state = shared.state.read().map_err(|_| NodeError::Poisoned)?;
                    wal.clear(&state)?;
                    Vec::new()
                } else {
                    records
                };
                let standby = Standby {
                    wal,
                    mark,
                    msg_limits,
                    consensus: opts.consensus.clone(),
                    budgets,
                    counters: Default::default(),
                };
                driver.replicas = Some(replicas);
                let first = match replica {
                    Some(replica) => {
                        let first = first_input(records, lost, &standby.wal, tip);
                        info!(address = %me, height = tip.height, epoch = epoch.epoch(), listen = %opts.listen, "starting validator");
                        driver.validator = Some(Validator::new(shared.clone(), replica, standby));
                        Some(first)
                    }
                    None => {
                        warn!(
                            address = %me,
                            epoch = epoch.epoch(),
                            "this validator's key is not in the current validator set: following the chain until a change adds it"
                        );
                        driver.standby = Some(standby);
                        None
                    }
                };
                (first, driver_rx)
            }
            None => {
                let (_, driver_rx) =
                    spawn_inbound_tasks(&shared, inbound, sync_server, None, &net_cfg);
                info!(address = %me, height = tip.height, listen = %opts.listen, "starting full node");
                (None, driver_rx)
            }
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let driver = tokio::spawn(driver.run(first, driver_rx, fetched_rx, shutdown_rx));
        Ok(Node {
            shared,
            shutdown,
            driver,
        })
    }
}

/// What the validator role starts from: the replicas' configuration, its
/// consensus log as recovered, and the signatures the pre-check records for
/// the replica.
struct ConsensusParts {
    rcfg: ReplicaConfig,
    recovered: Recovered,
    verified: Arc<VerifiedSignatures>,
    horizon: precheck::Horizon,
}

impl ConsensusParts {
    fn open(
        opts: &NodeOptions,
        state: &State,
        damaged: Option<DataLoss>,
        rcfg: ReplicaConfig,
    ) -> Result<ConsensusParts, NodeError> {
        rcfg.validate()?;
        let recovered = recover_log(opts, state, damaged, &rcfg.limits)?;
        // Signatures of consensus messages are checked before the driver
        // (`precheck`); the replica's verifier finds them recorded there.
        let verified = Arc::new(VerifiedSignatures::default());
        let horizon = precheck::Horizon {
            views_ahead: rcfg.views_ahead_max,
            window_seqs: rcfg.window_seqs,
        };
        Ok(ConsensusParts {
            rcfg,
            recovered,
            verified,
            horizon,
        })
    }
}

/// The replica's configuration: the chain's validators, this node's
/// timings, and message limits that fit the largest block the chain
/// allows.
fn replica_config(opts: &NodeOptions, genesis_hash: Hash) -> ReplicaConfig {
    let genesis = &opts.genesis;
    let mut rcfg = ReplicaConfig::new(genesis.chain_id, genesis.validators.clone(), genesis_hash);
    // The window is twice the checkpoint interval, as the replica needs.
    let k = genesis.params.checkpoint_interval;
    rcfg.checkpoint_interval_seqs = k;
    rcfg.window_seqs = 2 * k;
    rcfg.limits.window_seqs_max = 2 * k;
    rcfg.pipeline_blocks_max = opts
        .consensus
        .pipeline_blocks
        .clamp(1, PIPELINE_BLOCKS_MAX.min(2 * k));
    // The chain's timeouts (the driver moves them to the tip's protocol,
    // and to each upgrade's), unless this node's config sets its own.
    let protocol = genesis.params.protocol();
    rcfg.view_timeout_ms = opts
        .consensus
        .view_timeout_ms
        .unwrap_or(protocol.view_timeout_ms);
    rcfg.view_timeout_max_ms = opts
        .consensus
        .view_timeout_max_ms
        .unwrap_or(protocol.view_timeout_max_ms)
        .max(rcfg.view_timeout_ms);
    rcfg.limits.payload_bytes_max = rcfg
        .limits
        .payload_bytes_max
        .max(genesis.params.block_bytes_max + (64 << 10));
    rcfg.limits.message_bytes_max = rcfg
        .limits
        .message_bytes_max
        .max(2 * rcfg.limits.payload_bytes_max);
    // Sets change size from epoch to epoch (ADR 0010): a message decodes
    // with the votes of the largest set any epoch may have, and the replica
    // checks them against its own.
    rcfg.limits.validators_max = stele_types::ValidatorSet::VALIDATORS_MAX;
    rcfg
}

/// The consensus log as recovered at start, and whether the database lost
/// data it had synced (accepted by the operator).
struct Recovered {
    wal: Wal,
    records: Vec<Record>,
    lost: bool,
}

/// Opens the consensus log and weighs what the database may have lost
/// against the high-water mark (ADR 0007): a torn tail of writes never
/// synced starts as after a host crash; a loss of synced data refuses the
/// start unless the operator accepted it.
fn recover_log(
    opts: &NodeOptions,
    state: &State,
    damaged: Option<DataLoss>,
    msg_limits: &MessageLimits,
) -> Result<Recovered, NodeError> {
    let (mut wal, mut records) = Wal::open(state, msg_limits)?;
    let mut losses = Vec::new();
    let mark = check_mark(&opts.data_dir, state, &wal, &mut losses)?;
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
        records.extend(wal.record_loss(state, mark.map(|m| m.view))?);
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
        records.extend(wal.record_loss(state, view)?);
    }
    if lost || torn_tail.is_some() || mark.is_none() {
        // From here on the mark names what the database holds now, so
        // an accepted loss is not found again at the next start.
        Mark {
            height: state.latest_version().unwrap_or(0),
            wal_next: wal.next_index(),
            view: mark.map_or(0, |m| m.view),
        }
        .write(&opts.data_dir)?;
    }
    Ok(Recovered { wal, records, lost })
}

/// Starts the transport, its consensus frames big enough for the largest
/// consensus message.
/// Whether the data dir holds only the genesis state and no vote (a new or
/// wiped node), which may join by snapshot (ADR 0012).
fn may_join_by_snapshot(opts: &NodeOptions, state: &State) -> Result<bool, NodeError> {
    let voted = opts.data_dir.join(crate::mark::MARK_FILE).exists()
        || state
            .db()?
            .iterator_cf(
                state.column_family(crate::wal::CF_WAL)?,
                stele_state::rocksdb::IteratorMode::Start,
            )
            .next()
            .is_some();
    Ok(state.latest_version() == Some(0) && !voted)
}

fn start_network(
    opts: &NodeOptions,
    msg_limits: &MessageLimits,
) -> Result<(Network, InboundQueues, NetConfig), NodeError> {
    let mut net_cfg = opts.net.clone();
    net_cfg.consensus_frame_bytes_max = net_cfg
        .consensus_frame_bytes_max
        .max(msg_limits.message_bytes_max);
    let (net, inbound) = Network::start(
        net_cfg.clone(),
        opts.key.clone(),
        opts.genesis.chain_id,
        opts.genesis.validators.clone(),
        opts.listen,
        opts.peers.clone(),
    )?;
    Ok((net, inbound, net_cfg))
}

/// The committed block the node starts from (the genesis before any).
fn committed_tip(state: &State, genesis: &Genesis, genesis_hash: Hash) -> Result<Tip, NodeError> {
    let committed = state.latest_version().unwrap_or(0);
    let reader = BlockReader::new(state);
    Ok(match reader.block(committed)? {
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
    })
}

/// The executor with the chain's VM, every stored contract loaded.
fn executor(opts: &NodeOptions, state: &State) -> Result<Executor, NodeError> {
    let mut vm_config = opts.genesis.vm_config()?;
    // Compiled contracts persist, so a restart never pays a compile.
    vm_config.artifact_dir = Some(opts.data_dir.join(ARTIFACT_DIR));
    let template = vm_config.clone();
    let vm = Vm::new(vm_config)?;
    warm_contracts(&vm, state)?;
    let mut config = opts.genesis.executor_config();
    // Only a node that keeps the storage-history index pays for recording
    // which keys each transaction wrote.
    config.record_storage_writes = opts.index.storage_history;
    // Upgrades get VMs with this node's settings (ADR 0011).
    Ok(Executor::new(vm, config).upgradable(template, opts.protocol_support))
}

fn mempool_config(opts: &NodeOptions) -> MempoolConfig {
    let params = &opts.genesis.params;
    let mut config = MempoolConfig::new(opts.genesis.chain_id);
    config.txs_max = opts.mempool_txs_max;
    config.bytes_max = opts.mempool_bytes_max;
    config.sender_gapped_bytes_max = opts.mempool_sender_gapped_bytes_max;
    config.gapped_ttl_blocks = opts.mempool_gapped_ttl_blocks;
    config.tx_gas_max = params.block_gas_max;
    config.tx_gas_base = params.tx_gas_base;
    config.tx_gas_per_byte = params.tx_gas_per_byte;
    config
}

#[allow(clippy::too_many_arguments)] // one call, at start; each is a part of `Shared`
fn shared(
    opts: &NodeOptions,
    genesis_hash: Hash,
    state: State,
    executor: Arc<Executor>,
    net: Network,
    metrics: Arc<NodeMetrics>,
    msg_limits: &MessageLimits,
    tip: Tip,
) -> Shared {
    // The genesis's protocol until the follower reads the tip's.
    let protocol = super::ProtocolView::genesis(&executor);
    let genesis = &opts.genesis;
    let mempool_config = mempool_config(opts);
    let state: SharedState = Arc::new(RwLock::new(state));
    let (commits, _) = broadcast::channel(1024);
    Shared {
        role: opts.role,
        chain_id: genesis.chain_id,
        genesis_hash,
        validators: genesis.validators.clone(),
        state,
        executor,
        mempool: Mutex::new(Mempool::at_height(mempool_config.clone(), tip.height)),
        sender_keys: SenderKeys::new(opts.sender_keys_max),
        mempool_config,
        limits: Limits {
            input_bytes_max: msg_limits.payload_bytes_max,
            block_txs_max: genesis.params.block_txs_max,
            ..Limits::DEFAULT
        },
        net,
        commits,
        metrics,
        height: AtomicU64::new(tip.height),
        view: AtomicU64::new(0),
        stable_seq: AtomicU64::new(0),
        view_changes: AtomicU64::new(0),
        syncing: AtomicBool::new(false),
        peer_height: AtomicU64::new(0),
        heard: Mutex::new(None),
        tx_arrived: Notify::new(),
        index: opts.index,
        // The genesis epoch until the follower reads the tip's.
        epoch: std::sync::RwLock::new(Arc::new(super::EpochView {
            info: stele_exec::EpochInfo {
                epoch: 0,
                start_height: 1,
            },
            validators: genesis.validators.clone(),
            pending: None,
        })),
        protocol: std::sync::RwLock::new(Arc::new(protocol)),
        join: Arc::default(),
    }
}

/// Starts the tasks between the transport and the driver: the sync
/// server (on the transport's sync queue), the router, gossip admission
/// and, for a validator (`precheck`: where the replica
/// finds verified signatures, its message limits and horizon), the
/// consensus messages' pre-check. Returns the peers' signature-check
/// budgets, which the driver charges for equivocations, and the driver's
/// inbound queue.
fn spawn_inbound_tasks(
    shared: &Arc<Shared>,
    inbound: InboundQueues,
    sync_server: SyncServer,
    precheck: Option<(Arc<VerifiedSignatures>, &MessageLimits, precheck::Horizon)>,
    net_cfg: &NetConfig,
) -> (Arc<precheck::PeerBudgets>, mpsc::Receiver<Inbound>) {
    let queue_max = net_cfg.inbound_queue_max;
    let (driver, driver_rx) = mpsc::channel(queue_max);
    tokio::spawn(sync_server.run(inbound.sync, driver.clone()));
    let inbound = inbound.events;
    let (gossip_queue, gossip_rx) = mpsc::channel(gossip::GOSSIP_QUEUE_MAX);
    tokio::spawn(gossip::admit_gossip(shared.clone(), gossip_rx));
    let budgets = Arc::new(precheck::PeerBudgets::default());
    let Some((verified, msg_limits, horizon)) = precheck else {
        // A full node takes no consensus message (the transport lets none
        // through): everything but gossip goes straight to the driver.
        tokio::spawn(gossip::route_inbound(
            inbound,
            driver,
            gossip_queue,
            shared.metrics.gossip_dropped.clone(),
        ));
        return (budgets, driver_rx);
    };
    let (precheck_tx, precheck_rx) = mpsc::channel(queue_max);
    tokio::spawn(gossip::route_inbound(
        inbound,
        precheck_tx,
        gossip_queue,
        shared.metrics.gossip_dropped.clone(),
    ));
    let epochs: precheck::EpochSource = {
        let shared = shared.clone();
        Arc::new(move || shared.epoch())
    };
    let check = Precheck::new(
        shared.chain_id,
        epochs,
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
        driver,
    ));
    (budgets, driver_rx)
}

/// The replica's first input: a fresh start, or a restart from the log and
/// the committed tip.
fn first_input(records: Vec<Record>, lost: bool, wal: &Wal, tip: Tip) -> Input {
    if records.is_empty() && tip.height == 0 && !wal.unsynced_lost() {
        return Input::Start;
    }
    // An accepted loss was logged already, as an error.
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
}
