//! Node homes on disk: the folder layout `stele-node init` and `testnet`
//! write (key file, `config.toml`, `genesis.json`, `data/`), and starting a
//! validator with its RPC and metrics servers from such a folder. The
//! `stele-node` binary and `stele devnet` share this code, so a devnet is
//! exactly the network an operator would run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stele_types::{Address, Amount, SecretKey, Validator, ValidatorSet};

use crate::config::{NodeConfig, NodeSection, P2pSection, PeerEntry, RuntimeSection};
use crate::genesis::{Allocation, ChainParams, Genesis};
use crate::net::{NetConfig, PeerInfo};
use crate::node::{Node, NodeOptions, Role};
use crate::rpc::{RpcConfig, RpcListener, RpcServer};
use crate::{keys, metrics};

mod hosts;
mod join;
mod lock;

pub use hosts::{HostLayout, write_testnet_on_hosts};
pub use join::{
    Finished, default_listen, finish_validator_home, is_prepared, prepare_validator_home,
};
pub use lock::{HomeLock, LOCK_FILE};

/// Balance of every dev account and validator in generated genesis files.
pub const DEV_BALANCE: Amount = 1_000_000_000_000_000_000_000_000;

/// Validators a generated testnet may have.
pub const TESTNET_VALIDATORS_MAX: usize = 64;

/// A failure reading, writing or starting a node home; the message names
/// the file or setting and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HomeError(String);

impl HomeError {
    fn io(what: &str, path: &Path, e: std::io::Error) -> HomeError {
        HomeError(format!("cannot {what} {}: {e}", path.display()))
    }
}

fn err(e: impl std::fmt::Display) -> HomeError {
    HomeError(e.to_string())
}

/// The config file of a node home.
pub fn config_path(home: &Path) -> PathBuf {
    home.join("config.toml")
}

/// Writes `text` to a file that must not exist yet.
pub fn write_new(path: &Path, text: &str) -> Result<(), HomeError> {
    if path.exists() {
        return Err(HomeError(format!(
            "{} already exists; not overwriting it",
            path.display()
        )));
    }
    std::fs::write(path, text).map_err(|e| HomeError::io("write", path, e))
}

/// Writes `text` to a file that must not exist yet, readable and writable
/// by its owner only (mode 0600 on Unix): for files holding secret keys.
pub fn write_new_secret(path: &Path, text: &str) -> Result<(), HomeError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    // `create_new` refuses an existing file, even one created meanwhile.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            HomeError(format!(
                "{} already exists; not overwriting it",
                path.display()
            ))
        } else {
            HomeError::io("create", path, e)
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| HomeError::io("write", path, e))
}

/// A config with the default sections, paths relative to the home, and the
/// given listen addresses and peers.
pub fn node_config(p2p: SocketAddr, rpc: Option<SocketAddr>, peers: Vec<PeerEntry>) -> NodeConfig {
    NodeConfig {
        node: NodeSection {
            role: Role::Validator,
            data_dir: "data".into(),
            key_file: "node_key.json".into(),
            genesis_file: "genesis.json".into(),
        },
        p2p: P2pSection {
            listen: p2p,
            peers,
            followers_max: NetConfig::default().followers_max,
            followers_allowed: Vec::new(),
        },
        rpc: rpc.map(|listen| RpcConfig {
            listen,
            ..Default::default()
        }),
        metrics: Default::default(),
        mempool: Default::default(),
        consensus: Default::default(),
        storage: Default::default(),
        log: Default::default(),
        runtime: Default::default(),
        index: Default::default(),
    }
}

/// [`node_config`] for a full node: `role = "full"`, both indexes on (a
/// full node serves the reads they answer).
pub fn full_node_config(
    p2p: SocketAddr,
    rpc: Option<SocketAddr>,
    peers: Vec<PeerEntry>,
) -> NodeConfig {
    let mut config = node_config(p2p, rpc, peers);
    config.node.role = Role::Full;
    config.index = crate::index::IndexConfig {
        events: true,
        storage_history: true,
    };
    config
}

/// `genesis` as the pretty JSON of a `genesis.json` file.
pub fn genesis_json(genesis: &Genesis) -> Result<String, HomeError> {
    serde_json::to_string_pretty(genesis).map_err(err)
}

/// What [`write_testnet`] generates.
#[derive(Debug, Clone)]
pub struct TestnetSpec {
    pub validators: usize,
    pub chain_id: u64,
    /// Node i listens for peers on `base_port + 2i` and serves RPC on
    /// `base_port + 2i + 1`, all on 127.0.0.1.
    pub base_port: u16,
    pub genesis_time_ms: u64,
    /// Accounts funded with [`DEV_BALANCE`] besides the validators.
    pub dev_accounts: Vec<Address>,
    /// Full nodes beside the validators (`full0`, `full1`, ...), with the
    /// ports after the validators'.
    pub full_nodes: usize,
}

/// A generated testnet folder.
#[derive(Debug, Clone)]
pub struct Testnet {
    pub genesis: Genesis,
    /// `node0`, `node1`, ... in validator-set order.
    pub homes: Vec<PathBuf>,
    /// The RPC address of each node, in the same order (on hosts: the
    /// address its RPC server listens on, on its host).
    pub rpc: Vec<SocketAddr>,
    /// `full0`, `full1`, ...: the full nodes' homes.
    pub full_homes: Vec<PathBuf>,
    /// The RPC address of each full node, in the same order.
    pub full_rpc: Vec<SocketAddr>,
}

/// Writes the homes of `spec.validators` validators sharing one genesis into
/// `out` (`node0`, `node1`, ...) with fresh keys and peers on loopback.
/// Refuses to overwrite an existing home.
pub fn write_testnet(out: &Path, spec: &TestnetSpec) -> Result<Testnet, HomeError> {
    let n = spec.validators;
    if n == 0 || n > TESTNET_VALIDATORS_MAX {
        return Err(HomeError(format!(
            "validators must be in 1..={TESTNET_VALIDATORS_MAX}, not {n}"
        )));
    }
    if spec.full_nodes > TESTNET_VALIDATORS_MAX {
        return Err(HomeError(format!(
            "full nodes must be at most {TESTNET_VALIDATORS_MAX}, not {}",
            spec.full_nodes
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| HomeError::io("create", out, e))?;
    let keys = testnet_keys(n);
    let addr = |i: usize, k: u16| -> Result<SocketAddr, HomeError> {
        u16::try_from(2 * i)
            .ok()
            .and_then(|o| spec.base_port.checked_add(o + k))
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .ok_or_else(|| HomeError("the base port is too high for this many validators".into()))
    };
    let genesis = testnet_genesis(spec, &keys)?;
    let genesis_text = genesis_json(&genesis)?;
    let peers = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Ok(PeerEntry {
                address: k.public_key().address(),
                endpoint: addr(i, 0)?.into(),
            })
        })
        .collect::<Result<Vec<_>, HomeError>>()?;
    let mut homes = Vec::with_capacity(n);
    let mut rpc = Vec::with_capacity(n);
    for (i, k) in keys.iter().enumerate() {
        let home = out.join(format!("node{i}"));
        let others = peers
            .iter()
            .filter(|p| p.address != k.public_key().address());
        let config = node_config(addr(i, 0)?, Some(addr(i, 1)?), others.cloned().collect());
        write_home(&home, k, &genesis_text, &config)?;
        homes.push(home);
        rpc.push(addr(i, 1)?);
    }
    let full_keys: Vec<SecretKey> = (0..spec.full_nodes)
        .map(|_| SecretKey::generate())
        .collect();
    let full_peers = full_keys
        .iter()
        .enumerate()
        .map(|(j, k)| {
            Ok(PeerEntry {
                address: k.public_key().address(),
                endpoint: addr(n + j, 0)?.into(),
            })
        })
        .collect::<Result<Vec<_>, HomeError>>()?;
    let mut full_homes = Vec::with_capacity(spec.full_nodes);
    let mut full_rpc = Vec::with_capacity(spec.full_nodes);
    for (j, k) in full_keys.iter().enumerate() {
        let home = out.join(format!("full{j}"));
        // Every validator, and the other full nodes.
        let others = peers.iter().chain(
            full_peers
                .iter()
                .filter(|p| p.address != k.public_key().address()),
        );
        let config = full_node_config(
            addr(n + j, 0)?,
            Some(addr(n + j, 1)?),
            others.cloned().collect(),
        );
        write_home(&home, k, &genesis_text, &config)?;
        full_homes.push(home);
        full_rpc.push(addr(n + j, 1)?);
    }
    Ok(Testnet {
        genesis,
        homes,
        rpc,
        full_homes,
        full_rpc,
    })
}

/// Writes `home` for a validator joining the testnet whose first validator
/// home is `node0`: a fresh key, `node0`'s genesis, and `peers`. Its key is
/// in no validator set: it follows the chain until the validators vote it
/// in (ADR 0010). Returns its key.
pub fn write_testnet_joiner(
    home: &Path,
    node0: &Path,
    p2p: SocketAddr,
    rpc: SocketAddr,
    peers: Vec<PeerEntry>,
) -> Result<SecretKey, HomeError> {
    let genesis = node0.join("genesis.json");
    let genesis_text =
        std::fs::read_to_string(&genesis).map_err(|e| HomeError::io("read", &genesis, e))?;
    let key = SecretKey::generate();
    write_home(
        home,
        &key,
        &genesis_text,
        &node_config(p2p, Some(rpc), peers),
    )?;
    Ok(key)
}

/// How the other nodes reach the node of `home`: its key's address and its
/// `[p2p] listen` address.
pub fn peer_entry(home: &Path) -> Result<PeerEntry, HomeError> {
    let key = keys::load(&home.join("node_key.json")).map_err(err)?;
    let config = NodeConfig::load(&config_path(home)).map_err(err)?;
    Ok(PeerEntry {
        address: key.public_key().address(),
        endpoint: config.p2p.listen.into(),
    })
}

/// Fresh keys for `n` validators, in validator-set (address) order.
fn testnet_keys(n: usize) -> Vec<SecretKey> {
    let mut keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
    keys.sort_by_key(|k| k.public_key().address());
    keys
}

/// The genesis of a generated testnet: `keys` are the validators (power 1
/// each), and they and the dev accounts get [`DEV_BALANCE`].
fn testnet_genesis(spec: &TestnetSpec, keys: &[SecretKey]) -> Result<Genesis, HomeError> {
    let mut allocations: Vec<Allocation> = keys
        .iter()
        .map(|k| k.public_key().address())
        .chain(spec.dev_accounts.iter().copied())
        .map(|address| Allocation {
            address,
            balance: DEV_BALANCE,
        })
        .collect();
    allocations.sort_by_key(|a| a.address);
    allocations.dedup_by_key(|a| a.address);
    let genesis = Genesis {
        chain_id: spec.chain_id,
        genesis_time_ms: spec.genesis_time_ms,
        validators: ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.public_key().address(),
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .map_err(err)?,
        allocations,
        params: ChainParams::default(),
    };
    genesis.validate().map_err(err)?;
    Ok(genesis)
}

/// Writes a node home: its key, the genesis and `config`.
fn write_home(
    home: &Path,
    key: &SecretKey,
    genesis_text: &str,
    config: &NodeConfig,
) -> Result<(), HomeError> {
    std::fs::create_dir_all(home).map_err(|e| HomeError::io("create", home, e))?;
    keys::save(&home.join("node_key.json"), key).map_err(err)?;
    write_new(&home.join("genesis.json"), genesis_text)?;
    write_new(&config_path(home), &config.to_toml())
}

/// A validator process's two tokio runtimes (docs/architecture.md,
/// "Runtimes"): `consensus` runs the driver, the peer network, precheck,
/// gossip intake and block execution and commits; `rpc` runs the JSON-RPC
/// and metrics servers, their connections and calls. Each has its own
/// worker threads, timers and blocking pool, so a flood of client work
/// cannot delay the driver's timers, QUIC packets or commits.
#[derive(Debug)]
pub struct Runtimes {
    consensus: tokio::runtime::Runtime,
    rpc: tokio::runtime::Runtime,
}

/// Blocking threads of the RPC runtime (transaction intake's signature
/// checks; views and block reads have their own pools).
const RPC_BLOCKING_THREADS_MAX: usize = 32;

/// How long [`Runtimes::shutdown`] waits for each runtime's tasks.
const RUNTIME_SHUTDOWN_MS: u64 = 5_000;

impl Runtimes {
    /// Builds both runtimes with the worker counts of `[runtime]`. The
    /// consensus workers get the stack block execution needs
    /// ([`crate::node::NodeOptions::exec_inline`]).
    pub fn build(section: &RuntimeSection) -> Result<Runtimes, HomeError> {
        let consensus = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(section.consensus_threads)
            .thread_name("consensus")
            .thread_stack_size(stele_vm::EXEC_THREAD_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| HomeError(format!("cannot start the consensus runtime: {e}")))?;
        let rpc = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(section.rpc_threads)
            .thread_name("rpc")
            .max_blocking_threads(RPC_BLOCKING_THREADS_MAX)
            .enable_all()
            .build()
            .map_err(|e| HomeError(format!("cannot start the RPC runtime: {e}")))?;
        Ok(Runtimes { consensus, rpc })
    }

    /// The consensus runtime: start the node with `block_on` here.
    pub fn consensus(&self) -> &tokio::runtime::Runtime {
        &self.consensus
    }

    /// Where the RPC and metrics servers run ([`start_home_on`]).
    pub fn rpc_handle(&self) -> tokio::runtime::Handle {
        self.rpc.handle().clone()
    }

    /// Stops both runtimes (after [`RunningNode::shutdown`]): the RPC one
    /// first, then consensus, each waiting a bounded time for its tasks.
    pub fn shutdown(self) {
        let wait = std::time::Duration::from_millis(RUNTIME_SHUTDOWN_MS);
        self.rpc.shutdown_timeout(wait);
        self.consensus.shutdown_timeout(wait);
    }
}

/// A validator started from its home, with its RPC and metrics servers.
#[derive(Debug)]
pub struct RunningNode {
    pub node: Node,
    pub rpc: Option<RpcServer>,
    /// Where `/metrics` is served, if it is.
    pub metrics: Option<SocketAddr>,
    pub config: NodeConfig,
    stop_tx: tokio::sync::watch::Sender<bool>,
    /// Held until the node has stopped.
    lock: HomeLock,
}

/// The listeners of a home's config, bound before anything else starts.
struct Listeners {
    rpc: Option<RpcListener>,
    metrics: Option<std::net::TcpListener>,
}

impl Listeners {
    /// Binds the RPC and metrics ports; the first that fails is the error,
    /// naming its address (nothing else has started yet).
    fn bind(config: &NodeConfig) -> Result<Listeners, HomeError> {
        let rpc = match config.rpc.clone() {
            Some(rpc) => Some(crate::rpc::bind(rpc).map_err(err)?),
            None => None,
        };
        let metrics = match config.metrics.listen {
            Some(listen) => Some(crate::listen::bind_tcp(listen).map_err(|e| {
                HomeError(format!(
                    "cannot listen for metrics on {listen}: {e} (is another node using it? change [metrics] listen in config.toml)"
                ))
            })?),
            None => None,
        };
        Ok(Listeners { rpc, metrics })
    }
}

/// Starts the validator whose home is `home` on the current tokio runtime,
/// RPC and metrics included (as `stele devnet` does); `exec_inline` as
/// [`NodeOptions::exec_inline`]. `stele-node start` uses [`start_home_on`]
/// with its own RPC runtime.
pub async fn start_home(home: &Path, exec_inline: bool) -> Result<RunningNode, HomeError> {
    start_home_with(home, exec_inline, false).await
}

/// [`start_home`], with `accept_data_loss` as
/// [`NodeOptions::accept_data_loss`] (`stele-node start --accept-data-loss`
/// uses [`start_home_on`]).
pub async fn start_home_with(
    home: &Path,
    exec_inline: bool,
    accept_data_loss: bool,
) -> Result<RunningNode, HomeError> {
    start_home_on(
        home,
        exec_inline,
        accept_data_loss,
        tokio::runtime::Handle::current(),
    )
    .await
}

/// The peers of `p2p` as the transport dials them: each DNS name resolved
/// now, once (a peer whose address changes later needs a restart), to an
/// address of the listen address's family. A name that does not resolve
/// stops the start, naming the peer.
pub async fn resolve_peers(p2p: &P2pSection) -> Result<Vec<PeerInfo>, HomeError> {
    let mut peers = Vec::with_capacity(p2p.peers.len());
    for p in &p2p.peers {
        let socket = p.endpoint.resolve(p2p.listen).await.map_err(|e| {
            HomeError(format!(
                "peer {} at {}: {e} (see [[p2p.peers]] in config.toml)",
                p.address, p.endpoint
            ))
        })?;
        peers.push(PeerInfo {
            address: p.address,
            socket,
        });
    }
    Ok(peers)
}

/// Starts the validator whose home is `home`: locks the home ([`HomeLock`]:
/// a second node on it is told so at once), binds its RPC and metrics
/// ports (a port in use fails the start at once, before the data
/// directory is opened or consensus starts), then starts the node on the
/// current runtime (the consensus runtime), then serves RPC and metrics on
/// `rpc`; `accept_data_loss` as [`NodeOptions::accept_data_loss`].
pub async fn start_home_on(
    home: &Path,
    exec_inline: bool,
    accept_data_loss: bool,
    rpc: tokio::runtime::Handle,
) -> Result<RunningNode, HomeError> {
    let config = NodeConfig::load(&config_path(home)).map_err(err)?;
    let lock = HomeLock::acquire(home)?;
    let key = keys::load(&config.node.key_file).map_err(err)?;
    let genesis = Genesis::load(&config.node.genesis_file).map_err(err)?;
    let peers = resolve_peers(&config.p2p).await?;
    let listeners = Listeners::bind(&config)?;
    let opts = NodeOptions {
        data_dir: config.node.data_dir.clone(),
        role: config.node.role,
        key,
        genesis,
        listen: config.p2p.listen,
        peers,
        net: config.p2p.net_config(),
        mempool_txs_max: config.mempool.txs_max,
        mempool_bytes_max: config.mempool.bytes_max,
        mempool_sender_gapped_bytes_max: config.mempool.sender_gapped_bytes_max,
        mempool_gapped_ttl_blocks: config.mempool.gapped_ttl_blocks,
        sender_keys_max: config.mempool.sender_keys_max,
        consensus: config.consensus.options(),
        state: stele_state::StateConfig {
            versions_kept: config.storage.versions_kept,
            ..Default::default()
        },
        prune_interval_blocks: config.storage.prune_interval_blocks,
        keep_blocks: config.storage.keep_blocks,
        snapshots: crate::node::SnapshotOptions {
            interval_blocks: config.storage.snapshot_interval_blocks,
            kept: config.storage.snapshots_kept,
            chunk_entries: config.storage.snapshot_chunk_entries,
        },
        snapshot_sync: config.storage.snapshot_sync,
        index: config.index,
        exec_inline,
        accept_data_loss,
        protocol_support: crate::node::protocol_support_from_env().map_err(HomeError)?,
    };
    // While the node joins by snapshot (a while), from the moment it found
    // one to fetch, the RPC port answers `/status` with the join's
    // progress. Before that (a new network's nodes all look for one at
    // their first start, and find none) the port answers nothing, as
    // during any start.
    let progress = Arc::new(crate::node::JoinProgress::default());
    let joining = match &listeners.rpc {
        Some(l) => {
            let _runtime = rpc.enter();
            let (progress, chain_id) = (progress.clone(), opts.genesis.chain_id);
            let full_node = opts.role == Role::Full;
            let watched = progress.clone();
            let begin = async move {
                while !matches!(
                    watched.phase(),
                    crate::node::JoinPhase::Fetching | crate::node::JoinPhase::Importing
                ) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            };
            let answer = move || progress.joining_status(chain_id, full_node);
            Some(
                l.serve_joining(begin, answer)
                    .map_err(|e| HomeError(format!("cannot answer on the RPC port: {e}")))?,
            )
        }
        None => None,
    };
    let started = Node::start_with(opts, progress).await;
    if let Some(joining) = joining {
        joining.stop().await;
    }
    let node = started.map_err(err)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut running = RunningNode {
        node,
        rpc: None,
        metrics: None,
        config,
        stop_tx,
        lock,
    };
    let node_metrics = running.node.shared().metrics().clone();
    if let Some(l) = &listeners.rpc {
        node_metrics.export_rpc(l.metrics());
    }
    let ctx = running.node.rpc_context();
    // Everything the servers spawn lands on the runtime that polls them.
    let served = rpc
        .spawn(async move {
            let metrics = match listeners.metrics {
                Some(l) => Some(metrics::serve_on(l, node_metrics, stop_rx).await),
                None => None,
            };
            let rpc = match listeners.rpc {
                Some(l) => Some(l.serve(ctx).await),
                None => None,
            };
            (metrics, rpc)
        })
        .await;
    let (metrics, rpc) = match served {
        Ok(served) => served,
        Err(e) => {
            let _ = running.shutdown().await;
            return Err(HomeError(format!("the RPC runtime failed: {e}")));
        }
    };
    match metrics {
        Some(Ok(addr)) => {
            tracing::info!(%addr, "metrics at /metrics");
            running.metrics = Some(addr);
        }
        Some(Err(e)) => {
            if let Some(Ok(server)) = rpc {
                running.rpc = Some(server);
            }
            let _ = running.shutdown().await;
            return Err(HomeError(format!("cannot serve metrics: {e}")));
        }
        None => {}
    }
    match rpc {
        Some(Ok(server)) => {
            tracing::info!(addr = %server.local_addr(), "JSON-RPC listening");
            running.rpc = Some(server);
        }
        Some(Err(e)) => {
            let _ = running.shutdown().await;
            return Err(err(e));
        }
        None => {}
    }
    Ok(running)
}

impl RunningNode {
    /// Stops the RPC and metrics servers, then the node (its final state is
    /// on disk when this returns).
    pub async fn shutdown(self) -> Result<(), HomeError> {
        let _ = self.stop_tx.send(true);
        if let Some(server) = self.rpc {
            server.stop();
            server.stopped().await;
        }
        let stopped = self.node.shutdown().await.map_err(err);
        // The next node may start on this home once this one's data is closed.
        drop(self.lock);
        stopped
    }
}

#[cfg(test)]
mod tests;
