//! Node homes on disk: the folder layout `stele-node init` and `testnet`
//! write (key file, `config.toml`, `genesis.json`, `data/`), and starting a
//! validator with its RPC and metrics servers from such a folder. The
//! `stele-node` binary and `stele devnet` share this code, so a devnet is
//! exactly the network an operator would run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use stele_types::{Address, Amount, SecretKey, Validator, ValidatorSet};

use crate::config::{NodeConfig, NodeSection, P2pSection, PeerEntry};
use crate::genesis::{Allocation, ChainParams, Genesis};
use crate::net::{NetConfig, PeerInfo};
use crate::node::{Node, NodeOptions};
use crate::rpc::{RpcConfig, RpcServer};
use crate::{keys, metrics};

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
            data_dir: "data".into(),
            key_file: "node_key.json".into(),
            genesis_file: "genesis.json".into(),
        },
        p2p: P2pSection { listen: p2p, peers },
        rpc: rpc.map(|listen| RpcConfig {
            listen,
            ..Default::default()
        }),
        metrics: Default::default(),
        mempool: Default::default(),
        consensus: Default::default(),
        storage: Default::default(),
        log: Default::default(),
    }
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
}

/// A generated testnet folder.
#[derive(Debug, Clone)]
pub struct Testnet {
    pub genesis: Genesis,
    /// `node0`, `node1`, ... in validator-set order.
    pub homes: Vec<PathBuf>,
    /// The RPC address of each node, in the same order.
    pub rpc: Vec<SocketAddr>,
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
    std::fs::create_dir_all(out).map_err(|e| HomeError::io("create", out, e))?;
    let mut keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
    keys.sort_by_key(|k| k.public_key().address());
    let addr = |i: usize, k: u16| -> Result<SocketAddr, HomeError> {
        u16::try_from(2 * i)
            .ok()
            .and_then(|o| spec.base_port.checked_add(o + k))
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .ok_or_else(|| HomeError("the base port is too high for this many validators".into()))
    };
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
    let genesis_text = genesis_json(&genesis)?;
    let peers = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Ok(PeerEntry {
                address: k.public_key().address(),
                endpoint: addr(i, 0)?,
            })
        })
        .collect::<Result<Vec<_>, HomeError>>()?;
    let mut homes = Vec::with_capacity(n);
    let mut rpc = Vec::with_capacity(n);
    for (i, k) in keys.iter().enumerate() {
        let home = out.join(format!("node{i}"));
        std::fs::create_dir_all(&home).map_err(|e| HomeError::io("create", &home, e))?;
        keys::save(&home.join("node_key.json"), k).map_err(err)?;
        write_new(&home.join("genesis.json"), &genesis_text)?;
        let others = peers
            .iter()
            .filter(|p| p.address != k.public_key().address());
        let config = node_config(addr(i, 0)?, Some(addr(i, 1)?), others.cloned().collect());
        write_new(&config_path(&home), &config.to_toml())?;
        homes.push(home);
        rpc.push(addr(i, 1)?);
    }
    Ok(Testnet {
        genesis,
        homes,
        rpc,
    })
}

/// A validator started from its home, with its RPC and metrics servers.
#[derive(Debug)]
pub struct RunningNode {
    pub node: Node,
    pub rpc: Option<RpcServer>,
    pub config: NodeConfig,
    stop_tx: tokio::sync::watch::Sender<bool>,
}

/// Starts the validator whose home is `home` (as `stele-node start` does),
/// on the current tokio runtime; `exec_inline` as
/// [`NodeOptions::exec_inline`].
pub async fn start_home(home: &Path, exec_inline: bool) -> Result<RunningNode, HomeError> {
    start_home_with(home, exec_inline, false).await
}

/// [`start_home`], with `accept_data_loss` as
/// [`NodeOptions::accept_data_loss`] (`stele-node start --accept-data-loss`).
pub async fn start_home_with(
    home: &Path,
    exec_inline: bool,
    accept_data_loss: bool,
) -> Result<RunningNode, HomeError> {
    let config = NodeConfig::load(&config_path(home)).map_err(err)?;
    let key = keys::load(&config.node.key_file).map_err(err)?;
    let genesis = Genesis::load(&config.node.genesis_file).map_err(err)?;
    let opts = NodeOptions {
        data_dir: config.node.data_dir.clone(),
        key,
        genesis,
        listen: config.p2p.listen,
        peers: config
            .p2p
            .peers
            .iter()
            .map(|p| PeerInfo {
                address: p.address,
                socket: p.endpoint,
            })
            .collect(),
        net: NetConfig::default(),
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
        exec_inline,
        accept_data_loss,
    };
    let node = Node::start(opts).await.map_err(err)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut running = RunningNode {
        node,
        rpc: None,
        config: config.clone(),
        stop_tx,
    };
    if let Some(listen) = config.metrics.listen {
        match metrics::serve(listen, running.node.shared().metrics.clone(), stop_rx).await {
            Ok(addr) => tracing::info!(%addr, "metrics at /metrics"),
            Err(e) => {
                let _ = running.shutdown().await;
                return Err(HomeError(format!("cannot serve metrics on {listen}: {e}")));
            }
        }
    }
    if let Some(rpc_config) = config.rpc.clone() {
        match crate::rpc::start(rpc_config, running.node.rpc_context()).await {
            Ok(server) => {
                tracing::info!(addr = %server.local_addr(), "JSON-RPC listening");
                running.rpc = Some(server);
            }
            Err(e) => {
                let _ = running.shutdown().await;
                return Err(err(e));
            }
        }
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
        self.node.shutdown().await.map_err(err)
    }
}
