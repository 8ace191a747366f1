//! `stele-node`: the Stele validator binary.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stele_node::config::{LogFormat, NodeConfig, NodeSection, P2pSection, PeerEntry};
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::net::{NetConfig, PeerInfo};
use stele_node::node::{Node, NodeOptions, now_ms};
use stele_node::{keys, metrics};
use stele_types::{SecretKey, Validator, ValidatorSet};

#[derive(Parser)]
#[command(name = "stele-node", version, about = "Run a Stele validator.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node home: a new validator key, config.toml and, unless
    /// --genesis is given, a one-validator genesis for a local network.
    Init {
        /// The node's home directory.
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// Join an existing network: copy this genesis file instead of
        /// creating one.
        #[arg(long)]
        genesis: Option<PathBuf>,
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        /// Address the validator listens on for peers.
        #[arg(long, default_value = "127.0.0.1:26656")]
        p2p: SocketAddr,
        /// Address of the JSON-RPC server.
        #[arg(long, default_value = "127.0.0.1:8545")]
        rpc: SocketAddr,
    },
    /// Run the validator until SIGINT or SIGTERM.
    Start {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
    },
    /// Show the validator key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write the homes of N validators sharing one genesis into a folder
    /// (node0, node1, ...), with peers on loopback and funded dev accounts.
    Testnet {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value = "testnet")]
        output: PathBuf,
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        /// First port; node i uses base+2i for peers and base+2i+1 for RPC.
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        /// Dev accounts to fund; their keys go to accounts.json.
        #[arg(long, default_value_t = 8)]
        accounts: usize,
    },
    /// Delete the node's chain data (blocks, state, consensus log). Keeps the
    /// key, config and genesis.
    Reset {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print the validator's address and public key (never the secret).
    Show {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
    },
}

/// Balance of every dev account and validator in generated genesis files.
const DEV_BALANCE: u128 = 1_000_000_000_000_000_000_000_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            home,
            genesis,
            chain_id,
            p2p,
            rpc,
        } => init(&home, genesis.as_deref(), chain_id, p2p, rpc),
        Command::Start { home } => start(&home),
        Command::Keys {
            command: KeysCommand::Show { home },
        } => keys_show(&home),
        Command::Testnet {
            validators,
            output,
            chain_id,
            base_port,
            accounts,
        } => testnet(validators, &output, chain_id, base_port, accounts),
        Command::Reset { home, yes } => reset(&home, yes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), String>;

fn config_path(home: &Path) -> PathBuf {
    home.join("config.toml")
}

fn write_new(path: &Path, text: &str) -> Res {
    if path.exists() {
        return Err(format!(
            "{} already exists; not overwriting it",
            path.display()
        ));
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn node_config(p2p: SocketAddr, rpc: Option<SocketAddr>, peers: Vec<PeerEntry>) -> NodeConfig {
    NodeConfig {
        node: NodeSection {
            data_dir: "data".into(),
            key_file: "node_key.json".into(),
            genesis_file: "genesis.json".into(),
        },
        p2p: P2pSection { listen: p2p, peers },
        rpc: rpc.map(|listen| stele_node::rpc::RpcConfig {
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

fn genesis_json(g: &Genesis) -> Result<String, String> {
    serde_json::to_string_pretty(g).map_err(|e| e.to_string())
}

fn init(
    home: &Path,
    genesis: Option<&Path>,
    chain_id: u64,
    p2p: SocketAddr,
    rpc: SocketAddr,
) -> Res {
    std::fs::create_dir_all(home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let key = SecretKey::generate();
    keys::save(&home.join("node_key.json"), &key).map_err(|e| e.to_string())?;
    let genesis = match genesis {
        Some(path) => Genesis::load(path).map_err(|e| e.to_string())?,
        None => {
            let validator = Validator {
                address: key.public_key().address(),
                public_key: key.public_key(),
                power: 1,
            };
            Genesis {
                chain_id,
                genesis_time_ms: now_ms(),
                validators: ValidatorSet::new(vec![validator]).map_err(|e| e.to_string())?,
                allocations: vec![Allocation {
                    address: key.public_key().address(),
                    balance: DEV_BALANCE,
                }],
                params: ChainParams::default(),
            }
        }
    };
    write_new(&home.join("genesis.json"), &genesis_json(&genesis)?)?;
    write_new(
        &config_path(home),
        &node_config(p2p, Some(rpc), vec![]).to_toml(),
    )?;
    let root =
        stele_node::node::init_data_dir(&home.join("data"), &genesis).map_err(|e| e.to_string())?;
    println!("home:         {}", home.display());
    println!("validator:    {}", key.public_key().address());
    println!("chain id:     {}", genesis.chain_id);
    println!("genesis hash: {}", genesis.hash());
    println!("state root:   {root}");
    Ok(())
}

fn keys_show(home: &Path) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    let key = keys::load(&config.node.key_file).map_err(|e| e.to_string())?;
    println!("address:    {}", key.public_key().address());
    println!("public key: {}", key.public_key());
    Ok(())
}

fn testnet(n: usize, out: &Path, chain_id: u64, base_port: u16, accounts: usize) -> Res {
    if n == 0 || n > 64 {
        return Err("--validators must be in 1..=64".into());
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
    keys.sort_by_key(|k| k.public_key().address());
    let dev: Vec<SecretKey> = (0..accounts).map(|_| SecretKey::generate()).collect();
    let port = |i: usize, k: u16| -> Result<u16, String> {
        base_port
            .checked_add(2 * i as u16 + k)
            .ok_or_else(|| "--base-port too high for this many validators".to_string())
    };
    let mut allocations: Vec<Allocation> = keys
        .iter()
        .chain(&dev)
        .map(|k| Allocation {
            address: k.public_key().address(),
            balance: DEV_BALANCE,
        })
        .collect();
    allocations.sort_by_key(|a| a.address);
    let genesis = Genesis {
        chain_id,
        genesis_time_ms: now_ms(),
        validators: ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.public_key().address(),
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .map_err(|e| e.to_string())?,
        allocations,
        params: ChainParams::default(),
    };
    let genesis_text = genesis_json(&genesis)?;
    let mut peers = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        peers.push(PeerEntry {
            address: k.public_key().address(),
            endpoint: SocketAddr::from(([127, 0, 0, 1], port(i, 0)?)),
        });
    }
    for (i, k) in keys.iter().enumerate() {
        let home = out.join(format!("node{i}"));
        std::fs::create_dir_all(&home)
            .map_err(|e| format!("cannot create {}: {e}", home.display()))?;
        keys::save(&home.join("node_key.json"), k).map_err(|e| e.to_string())?;
        write_new(&home.join("genesis.json"), &genesis_text)?;
        let others = peers
            .iter()
            .filter(|p| p.address != k.public_key().address());
        let config = node_config(
            SocketAddr::from(([127, 0, 0, 1], port(i, 0)?)),
            Some(SocketAddr::from(([127, 0, 0, 1], port(i, 1)?))),
            others.cloned().collect(),
        );
        write_new(&config_path(&home), &config.to_toml())?;
    }
    let dev_json: Vec<serde_json::Value> = dev
        .iter()
        .map(|k| {
            serde_json::json!({
                "address": k.public_key().address(),
                "secret_key": format!("0x{}", hex::encode(k.to_bytes())),
            })
        })
        .collect();
    write_new(
        &out.join("accounts.json"),
        &serde_json::to_string_pretty(&dev_json).map_err(|e| e.to_string())?,
    )?;
    println!(
        "wrote {n} validator homes to {} (chain {chain_id}, genesis {})",
        out.display(),
        genesis.hash()
    );
    Ok(())
}

fn reset(home: &Path, yes: bool) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    let data = &config.node.data_dir;
    if !data.exists() {
        println!("nothing to delete: {} does not exist", data.display());
        return Ok(());
    }
    if !yes {
        println!(
            "This deletes every block, the state and the consensus log in {}.\nType `yes` to continue:",
            data.display()
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        if answer.trim() != "yes" {
            return Err("not confirmed; nothing deleted".into());
        }
    }
    std::fs::remove_dir_all(data).map_err(|e| format!("cannot delete {}: {e}", data.display()))?;
    println!("deleted {}", data.display());
    Ok(())
}

fn init_logging(config: &NodeConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn start(home: &Path) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    init_logging(&config);
    let key = keys::load(&config.node.key_file).map_err(|e| e.to_string())?;
    let genesis = Genesis::load(&config.node.genesis_file).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
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
            consensus: config.consensus.options(),
            state: stele_state::StateConfig {
                versions_kept: config.storage.versions_kept,
                ..Default::default()
            },
            prune_interval_blocks: config.storage.prune_interval_blocks,
        };
        let node = Node::start(opts).await.map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if let Some(listen) = config.metrics.listen {
            let addr = metrics::serve(listen, node.shared().metrics.clone(), stop_rx.clone())
                .await
                .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))?;
            tracing::info!(%addr, "metrics at /metrics");
        }
        let rpc = match config.rpc.clone() {
            Some(rpc_config) => {
                let server = stele_node::rpc::start(rpc_config, node.rpc_context())
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(addr = %server.local_addr(), "JSON-RPC listening");
                Some(server)
            }
            None => None,
        };
        wait_for_signal(&node).await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        if let Some(server) = rpc {
            server.stop();
            server.stopped().await;
        }
        node.shutdown().await.map_err(|e| e.to_string())
    })
}

async fn wait_for_signal(node: &Node) {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let fatal = async {
        while !node.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
        () = fatal => {}
    }
}
