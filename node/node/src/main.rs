//! `stele-node`: the Stele node binary (a validator, or a full node).

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stele_node::config::{LogFormat, NodeConfig, PeerEntry};
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::home::{self, DEV_BALANCE, TestnetSpec, config_path, node_config};
use stele_node::keys;
use stele_node::node::now_ms;
use stele_node::shutdown;
use stele_types::{SecretKey, Validator, ValidatorSet};

#[derive(Parser)]
#[command(
    name = "stele-node",
    version,
    about = "Run a Stele validator or full node."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node home: a new key, config.toml and, unless --genesis is
    /// given, a one-validator genesis for a local network.
    Init {
        /// The node's home directory.
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// Join an existing network: copy this genesis file instead of
        /// creating one.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// A full node (role = "full"): follows the validators named by
        /// --peer, serves reads and forwards transactions; needs --genesis.
        #[arg(long)]
        full: bool,
        /// A peer to reach, as ADDRESS@HOST:PORT (repeat for each).
        #[arg(long = "peer", value_parser = parse_peer)]
        peers: Vec<PeerEntry>,
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        /// Address the node listens on for peers.
        #[arg(long, default_value = "127.0.0.1:26656")]
        p2p: SocketAddr,
        /// Address of the JSON-RPC server.
        #[arg(long, default_value = "127.0.0.1:8545")]
        rpc: SocketAddr,
    },
    /// Run the node until SIGINT or SIGTERM.
    Start {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// Start even though the database lost data it had synced (the node
        /// refuses to start and says so otherwise): the validator then sits
        /// out the views it may have voted in, as after a host crash. For
        /// one start, once the cause of the loss is understood.
        #[arg(long)]
        accept_data_loss: bool,
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
        /// Full nodes to add (full0, full1, ...), on the ports after the
        /// validators'.
        #[arg(long, default_value_t = 0)]
        full_nodes: usize,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            home,
            genesis,
            full,
            peers,
            chain_id,
            p2p,
            rpc,
        } => init(&home, genesis.as_deref(), full, peers, chain_id, p2p, rpc),
        Command::Start {
            home,
            accept_data_loss,
        } => start(&home, accept_data_loss),
        Command::Keys {
            command: KeysCommand::Show { home },
        } => keys_show(&home),
        Command::Testnet {
            validators,
            output,
            chain_id,
            base_port,
            accounts,
            full_nodes,
        } => testnet(
            validators, full_nodes, &output, chain_id, base_port, accounts,
        ),
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

fn write_new(path: &Path, text: &str) -> Res {
    home::write_new(path, text).map_err(|e| e.to_string())
}

fn genesis_json(g: &Genesis) -> Result<String, String> {
    home::genesis_json(g).map_err(|e| e.to_string())
}

/// `ADDRESS@HOST:PORT`.
fn parse_peer(text: &str) -> Result<PeerEntry, String> {
    let (address, endpoint) = text
        .split_once('@')
        .ok_or_else(|| format!("`{text}` is not ADDRESS@HOST:PORT"))?;
    Ok(PeerEntry {
        address: address
            .parse()
            .map_err(|e| format!("`{address}` is not an address: {e}"))?,
        endpoint: endpoint
            .parse()
            .map_err(|e| format!("`{endpoint}` is not HOST:PORT: {e}"))?,
    })
}

fn init(
    home: &Path,
    genesis: Option<&Path>,
    full: bool,
    peers: Vec<PeerEntry>,
    chain_id: u64,
    p2p: SocketAddr,
    rpc: SocketAddr,
) -> Res {
    if full && genesis.is_none() {
        return Err(
            "a full node follows an existing network: pass its genesis with --genesis (and its validators with --peer)"
                .into(),
        );
    }
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
    let config = if full {
        home::full_node_config(p2p, Some(rpc), peers)
    } else {
        node_config(p2p, Some(rpc), peers)
    };
    write_new(&config_path(home), &config.to_toml())?;
    let root =
        stele_node::node::init_data_dir(&home.join("data"), &genesis).map_err(|e| e.to_string())?;
    println!("home:         {}", home.display());
    println!("role:         {}", config.node.role.name());
    println!("address:      {}", key.public_key().address());
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

fn testnet(
    n: usize,
    full_nodes: usize,
    out: &Path,
    chain_id: u64,
    base_port: u16,
    accounts: usize,
) -> Res {
    let dev: Vec<SecretKey> = (0..accounts).map(|_| SecretKey::generate()).collect();
    let spec = TestnetSpec {
        validators: n,
        full_nodes,
        chain_id,
        base_port,
        genesis_time_ms: now_ms(),
        dev_accounts: dev.iter().map(|k| k.public_key().address()).collect(),
    };
    let testnet = home::write_testnet(out, &spec).map_err(|e| e.to_string())?;
    let dev_json: Vec<serde_json::Value> = dev
        .iter()
        .map(|k| {
            serde_json::json!({
                "address": k.public_key().address(),
                "secret_key": format!("0x{}", hex::encode(k.to_bytes())),
            })
        })
        .collect();
    // Funded secret keys: readable by their owner only.
    home::write_new_secret(
        &out.join("accounts.json"),
        &serde_json::to_string_pretty(&dev_json).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "wrote {n} validator homes and {full_nodes} full node homes to {} (chain {chain_id}, genesis {})",
        out.display(),
        testnet.genesis.hash()
    );
    Ok(())
}

fn reset(home: &Path, yes: bool) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    // Never under a running node: held until the data is gone.
    let _lock = home::HomeLock::acquire(home).map_err(|e| e.to_string())?;
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
    // Colour codes only for a person at a terminal: in a log file or a
    // journal they are noise around every level and field name.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn start(home: &Path, accept_data_loss: bool) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    init_logging(&config);
    // Consensus and RPC on runtimes of their own (docs/architecture.md,
    // "Runtimes"); this thread drives the start, the wait and the shutdown.
    let runtimes = home::Runtimes::build(&config.runtime).map_err(|e| e.to_string())?;
    let rpc = runtimes.rpc_handle();
    let result = runtimes.consensus().block_on(async move {
        let running = home::start_home_on(home, true, accept_data_loss, rpc)
            .await
            .map_err(|e| e.to_string())?;
        shutdown::wait_for_stop(|| running.node.is_finished()).await;
        tracing::info!("shutting down");
        running.shutdown().await.map_err(|e| e.to_string())
    });
    runtimes.shutdown();
    result
}
