//! `stele-node`: the Stele node binary (a validator, or a full node).

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stele_node::config::{LogFormat, NodeConfig, PeerEntry};
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::genesis_build::{self, BuildError, DRAFT_FILE, GenesisDraft, PEERS_FILE};
use stele_node::home::{self, DEV_BALANCE, HostLayout, TestnetSpec, config_path, node_config};
use stele_node::host::{Host, HostPort};
use stele_node::keys;
use stele_node::node::now_ms;
use stele_node::shutdown;
use stele_node::validator_record::{RECORD_FILE, ValidatorRecord};
use stele_types::{Address, Amount, SecretKey, Validator, ValidatorSet};

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
    /// given, a one-validator genesis for a local network. With
    /// --advertise, prepare a validator of a network assembled across
    /// hosts instead; `init --genesis` on that home later finishes it
    /// (docs/operators.md, "Starting a network across hosts").
    Init {
        /// The node's home directory.
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// Join an existing network: copy this genesis file instead of
        /// creating one. On a home prepared with --advertise, finish it
        /// with this genesis (its key and config.toml are kept).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Add the genesis validators as peers, at the addresses their
        /// records advertise: a peers.json from `genesis build`, a record
        /// file, or a folder of records (this node itself is left out).
        #[arg(long, requires = "genesis")]
        peers_from: Option<PathBuf>,
        /// A full node (role = "full"): follows the validators named by
        /// --peer or --peers-from, serves reads and forwards transactions;
        /// needs --genesis.
        #[arg(long)]
        full: bool,
        /// A peer to reach, as ADDRESS@HOST:PORT, HOST an IP address or a
        /// DNS name (repeat for each).
        #[arg(long = "peer", value_parser = parse_peer)]
        peers: Vec<PeerEntry>,
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        /// Address the node listens on for peers [default: 127.0.0.1:26656;
        /// with --advertise, 0.0.0.0 and the advertised port].
        #[arg(long)]
        p2p: Option<SocketAddr>,
        /// Address of the JSON-RPC server [default: 127.0.0.1:8545].
        #[arg(long)]
        rpc: Option<SocketAddr>,
        /// Prepare a validator of a network assembled across hosts: where
        /// the other validators reach this one, as HOST:PORT (HOST an IP
        /// address or a DNS name). Writes the key, config.toml and
        /// validator.json (the signed record to send whoever builds the
        /// genesis, for --chain-id), and no genesis yet.
        #[arg(long, conflicts_with_all = ["genesis", "full", "peers"])]
        advertise: Option<HostPort>,
        /// Voting power asked for in validator.json [default: 1].
        #[arg(long, requires = "advertise")]
        power: Option<u64>,
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
    /// (node0, node1, ...), with peers on loopback (or one per host with
    /// --hosts) and funded dev accounts.
    Testnet {
        /// Validators [default: 4, or one per host of --hosts].
        #[arg(long)]
        validators: Option<usize>,
        #[arg(long, default_value = "testnet")]
        output: PathBuf,
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        /// First port; node i uses base+2i for peers and base+2i+1 for RPC.
        /// With --hosts, every node uses base for peers and base+1 for RPC.
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        /// One validator per host (IP addresses or DNS names, comma
        /// separated): node i runs on the i-th host, listens for peers on
        /// 0.0.0.0:BASE and is reached at HOST:BASE; its RPC is on
        /// 127.0.0.1:BASE+1 unless --rpc-public. Copy each home to its host.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<Host>,
        /// With --hosts: serve RPC on every interface (0.0.0.0:BASE+1).
        #[arg(long, requires = "hosts")]
        rpc_public: bool,
        /// With --hosts: each node listens (peers and RPC) on its host's own
        /// address, not on every interface: for hosts that are addresses of
        /// one machine (127.0.0.11, 127.0.0.12, ...). IP addresses only.
        #[arg(long, requires = "hosts", conflicts_with = "rpc_public")]
        bind_hosts: bool,
        /// Dev accounts to fund; their keys go to accounts.json.
        #[arg(long, default_value_t = 8)]
        accounts: usize,
        /// Full nodes to add (full0, full1, ...), on the ports after the
        /// validators'.
        #[arg(long, default_value_t = 0)]
        full_nodes: usize,
    },
    /// Assemble a genesis across hosts from the validators' signed records
    /// (docs/operators.md, "Starting a network across hosts").
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// State snapshots as backup files (ADR 0012, docs/snapshot-format.md).
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
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
enum SnapshotCommand {
    /// Write the state at the node's latest height to FILE, with that
    /// block, its certificate and the chain of epochs that tie it to the
    /// genesis. The node must be stopped, unless --height names a snapshot
    /// the node keeps (`data/snapshots/<height>`), which is copied into
    /// FILE, each chunk checked, while the node runs.
    Export {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        /// A height whose snapshot the node keeps.
        #[arg(long)]
        height: Option<u64>,
        file: PathBuf,
    },
    /// Check FILE against this home's genesis (every certificate from the
    /// genesis on, every chunk against the certified state root) and make
    /// it this home's chain; the home must hold no chain yet. `stele-node
    /// start` then syncs the blocks after it from the peers.
    Import {
        #[arg(long, default_value = "stele-home")]
        home: PathBuf,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Start a draft genesis: chain id, genesis time and the default chain
    /// parameters; no validators or accounts yet.
    New {
        #[arg(long, default_value_t = 1337)]
        chain_id: u64,
        #[arg(long, default_value = DRAFT_FILE)]
        output: PathBuf,
        /// Milliseconds since the Unix epoch [default: now].
        #[arg(long)]
        genesis_time_ms: Option<u64>,
    },
    /// Add a validator from its record (validator.json), after checking it
    /// is for the draft's chain and signed by its key.
    AddValidator {
        /// The draft.
        #[arg(long, default_value = DRAFT_FILE)]
        genesis: PathBuf,
        #[arg(long)]
        record: PathBuf,
    },
    /// Give an account an initial balance.
    AddAccount {
        /// The draft.
        #[arg(long, default_value = DRAFT_FILE)]
        genesis: PathBuf,
        #[arg(long)]
        address: Address,
        /// In the smallest unit.
        #[arg(long)]
        balance: Amount,
    },
    /// Add the record in every *.json file of a folder: all of them, or
    /// none if one is refused.
    Collect {
        /// The draft.
        #[arg(long, default_value = DRAFT_FILE)]
        genesis: PathBuf,
        #[arg(long)]
        records: PathBuf,
    },
    /// Write the genesis to distribute (genesis.json) and the validators'
    /// records (peers.json) that `init --peers-from` reads.
    Build {
        /// The draft.
        #[arg(long, default_value = DRAFT_FILE)]
        genesis: PathBuf,
        #[arg(long, default_value = "genesis.json")]
        output: PathBuf,
        #[arg(long, default_value = PEERS_FILE)]
        peers: PathBuf,
    },
    /// Print the genesis hash and the validators of a genesis or a draft.
    Show {
        #[arg(long, default_value = "genesis.json")]
        genesis: PathBuf,
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
            peers_from,
            full,
            peers,
            chain_id,
            p2p,
            rpc,
            advertise,
            power,
        } => match advertise {
            Some(advertise) => prepare(&home, chain_id, power, advertise, p2p, rpc),
            None => init(
                &home,
                Init {
                    genesis: genesis.as_deref(),
                    peers_from: peers_from.as_deref(),
                    full,
                    peers,
                    chain_id,
                    p2p,
                    rpc,
                },
            ),
        },
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
            hosts,
            rpc_public,
            bind_hosts,
            accounts,
            full_nodes,
        } => {
            let layout = (!hosts.is_empty()).then_some(HostLayout {
                hosts,
                bind_hosts,
                rpc_public,
            });
            testnet(
                validators, full_nodes, &output, chain_id, base_port, accounts, layout,
            )
        }
        Command::Genesis { command } => genesis_command(command),
        Command::Snapshot { command } => snapshot_command(command),
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

/// `init` without --advertise.
struct Init<'a> {
    genesis: Option<&'a Path>,
    peers_from: Option<&'a Path>,
    full: bool,
    peers: Vec<PeerEntry>,
    chain_id: u64,
    p2p: Option<SocketAddr>,
    rpc: Option<SocketAddr>,
}

const DEFAULT_P2P: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 26656);
const DEFAULT_RPC: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8545);

fn init(home: &Path, args: Init<'_>) -> Res {
    if args.full && args.genesis.is_none() {
        return Err(
            "a full node follows an existing network: pass its genesis with --genesis (and its validators with --peer or --peers-from)"
                .into(),
        );
    }
    let records = match args.peers_from {
        Some(path) => genesis_build::read_records(path).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    if let Some(path) = args.genesis
        && home::is_prepared(home)
    {
        return finish(home, path, args, records);
    }
    // Nothing written into a home that has any of these already.
    for name in ["node_key.json", "genesis.json", "config.toml"] {
        let path = home.join(name);
        if path.exists() {
            return Err(format!(
                "{} already exists; not overwriting it",
                path.display()
            ));
        }
    }
    std::fs::create_dir_all(home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let key = SecretKey::generate();
    keys::save(&home.join("node_key.json"), &key).map_err(|e| e.to_string())?;
    let genesis = match args.genesis {
        Some(path) => Genesis::load(path).map_err(|e| e.to_string())?,
        None => {
            let validator = Validator {
                address: key.public_key().address(),
                public_key: key.public_key(),
                power: 1,
            };
            Genesis {
                chain_id: args.chain_id,
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
    let mut peers = args.peers;
    peers.extend(
        genesis_build::peers_from_records(&genesis, records, &key.address())
            .map_err(|e| e.to_string())?,
    );
    write_new(&home.join("genesis.json"), &genesis_json(&genesis)?)?;
    let p2p = args.p2p.unwrap_or(DEFAULT_P2P);
    let rpc = args.rpc.unwrap_or(DEFAULT_RPC);
    let config = if args.full {
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

/// `init --advertise`: a validator home waiting for its genesis.
fn prepare(
    home: &Path,
    chain_id: u64,
    power: Option<u64>,
    advertise: HostPort,
    p2p: Option<SocketAddr>,
    rpc: Option<SocketAddr>,
) -> Res {
    let p2p = p2p.unwrap_or_else(|| home::default_listen(&advertise));
    let record = home::prepare_validator_home(
        home,
        chain_id,
        power.unwrap_or(1),
        advertise,
        p2p,
        rpc.unwrap_or(DEFAULT_RPC),
    )
    .map_err(|e| e.to_string())?;
    println!("home:       {}", home.display());
    println!("address:    {}", record.address);
    println!("chain id:   {}", record.chain_id);
    println!("power:      {}", record.power);
    println!("advertise:  {} (listening on {p2p})", record.advertise);
    println!(
        "record:     {}  (send it to whoever builds the genesis; then run `stele-node init --home {} --genesis genesis.json --peers-from peers.json`)",
        home.join(RECORD_FILE).display(),
        home.display()
    );
    Ok(())
}

/// `init --genesis` on a home `init --advertise` prepared.
fn finish(
    home: &Path,
    genesis: &Path,
    args: Init<'_>,
    records: Vec<(PathBuf, ValidatorRecord)>,
) -> Res {
    if args.full || args.p2p.is_some() || args.rpc.is_some() {
        return Err(format!(
            "{} is a validator home prepared with --advertise: it keeps its config.toml (edit it to change the listen addresses); pass only --genesis, --peers-from and --peer",
            home.display()
        ));
    }
    let genesis = Genesis::load(genesis).map_err(|e| e.to_string())?;
    let done = home::finish_validator_home(home, &genesis, args.peers, records)
        .map_err(|e| e.to_string())?;
    println!("home:         {}", home.display());
    println!("address:      {}", done.address);
    println!("chain id:     {}", genesis.chain_id);
    println!("genesis hash: {}", genesis.hash());
    println!("state root:   {}", done.state_root);
    println!("peers:        {}", done.peers);
    if done.peers + 1 < genesis.validators.len() {
        println!(
            "note: {} of the other {} validators have no peer entry (add them with --peer, or [[p2p.peers]] in config.toml)",
            genesis.validators.len() - 1 - done.peers,
            genesis.validators.len() - 1
        );
    }
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
    validators: Option<usize>,
    full_nodes: usize,
    out: &Path,
    chain_id: u64,
    base_port: u16,
    accounts: usize,
    layout: Option<HostLayout>,
) -> Res {
    let n = match (&layout, validators) {
        (Some(layout), Some(n)) if n != layout.hosts.len() => {
            return Err(format!(
                "--validators {n} but {} hosts: one validator per host",
                layout.hosts.len()
            ));
        }
        (Some(layout), _) => layout.hosts.len(),
        (None, n) => n.unwrap_or(4),
    };
    let dev: Vec<SecretKey> = (0..accounts).map(|_| SecretKey::generate()).collect();
    let spec = TestnetSpec {
        validators: n,
        full_nodes,
        chain_id,
        base_port,
        genesis_time_ms: now_ms(),
        dev_accounts: dev.iter().map(|k| k.public_key().address()).collect(),
    };
    let testnet = match &layout {
        Some(layout) => home::write_testnet_on_hosts(out, &spec, layout),
        None => home::write_testnet(out, &spec),
    }
    .map_err(|e| e.to_string())?;
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
    if let Some(layout) = layout {
        for (i, (home, host)) in testnet.homes.iter().zip(&layout.hosts).enumerate() {
            println!(
                "node{i}: copy {} to {host} (validator {})",
                home.display(),
                testnet.genesis.validators.validators()[i].address
            );
        }
    }
    Ok(())
}

fn genesis_command(command: GenesisCommand) -> Res {
    let e = |e: BuildError| e.to_string();
    match command {
        GenesisCommand::New {
            chain_id,
            output,
            genesis_time_ms,
        } => {
            if output.exists() {
                return Err(format!(
                    "{} already exists; not overwriting it",
                    output.display()
                ));
            }
            let draft = GenesisDraft::new(chain_id, genesis_time_ms.unwrap_or_else(now_ms));
            draft.save(&output).map_err(e)?;
            println!(
                "wrote {} (chain {chain_id}, genesis time {} ms)",
                output.display(),
                draft.genesis_time_ms
            );
        }
        GenesisCommand::AddValidator { genesis, record } => {
            let mut draft = GenesisDraft::load(&genesis).map_err(e)?;
            let r = genesis_build::read_record(&record).map_err(e)?;
            let (address, power) = (r.address, r.power);
            draft.add_validator(r).map_err(|err| match err {
                BuildError::Invalid { source, .. } => BuildError::Record {
                    path: record,
                    source,
                }
                .to_string(),
                other => other.to_string(),
            })?;
            draft.save(&genesis).map_err(e)?;
            println!(
                "added validator {address} (power {power}); {} validators",
                draft.validators.len()
            );
        }
        GenesisCommand::AddAccount {
            genesis,
            address,
            balance,
        } => {
            let mut draft = GenesisDraft::load(&genesis).map_err(e)?;
            draft.add_account(address, balance).map_err(e)?;
            draft.save(&genesis).map_err(e)?;
            println!(
                "allocated {balance} to {address}; {} accounts",
                draft.allocations.len()
            );
        }
        GenesisCommand::Collect { genesis, records } => {
            let mut draft = GenesisDraft::load(&genesis).map_err(e)?;
            let added = draft.collect(&records).map_err(e)?;
            draft.save(&genesis).map_err(e)?;
            println!(
                "added {added} validators from {}; {} validators",
                records.display(),
                draft.validators.len()
            );
        }
        GenesisCommand::Build {
            genesis,
            output,
            peers,
        } => {
            let draft = GenesisDraft::load(&genesis).map_err(e)?;
            let built = draft.build().map_err(e)?;
            if peers.exists() {
                return Err(format!(
                    "{} already exists; not overwriting it",
                    peers.display()
                ));
            }
            write_new(&output, &genesis_json(&built)?)?;
            genesis_build::write_peers_file(&peers, &draft.validators).map_err(e)?;
            println!(
                "wrote {} and {} (chain {}, {} validators, genesis {})",
                output.display(),
                peers.display(),
                built.chain_id,
                built.validators.len(),
                built.hash()
            );
        }
        GenesisCommand::Show { genesis } => show_genesis(&genesis)?,
    }
    Ok(())
}

/// `genesis show`: a finished genesis, else a draft.
fn show_genesis(path: &Path) -> Res {
    let (genesis, records) = match Genesis::load(path) {
        Ok(genesis) => (Some(genesis), Vec::new()),
        Err(as_genesis) => match GenesisDraft::load(path) {
            Ok(draft) => {
                let genesis = match draft.build() {
                    Ok(g) => Some(g),
                    Err(BuildError::NoValidators) => None,
                    Err(e) => return Err(e.to_string()),
                };
                println!("draft:        {}", path.display());
                (genesis, draft.validators)
            }
            // Neither: the genesis's own complaint is the one to read.
            Err(BuildError::Json { .. } | BuildError::NotADraft { .. }) => {
                return Err(as_genesis.to_string());
            }
            Err(e) => return Err(e.to_string()),
        },
    };
    let Some(genesis) = genesis else {
        println!("genesis hash: none yet (the draft has no validator)");
        return Ok(());
    };
    println!("chain id:     {}", genesis.chain_id);
    println!("genesis time: {} ms", genesis.genesis_time_ms);
    println!("genesis hash: {}", genesis.hash());
    println!(
        "validators:   {} (total power {})",
        genesis.validators.len(),
        genesis.validators.total_power()
    );
    for v in genesis.validators.validators() {
        match records.iter().find(|r| r.address == v.address) {
            Some(r) => println!("  {}  power {}  at {}", v.address, v.power, r.advertise),
            None => println!("  {}  power {}", v.address, v.power),
        }
    }
    println!(
        "accounts:     {} (supply {})",
        genesis.allocations.len(),
        genesis.total_supply()
    );
    Ok(())
}

fn snapshot_command(command: SnapshotCommand) -> Res {
    match command {
        SnapshotCommand::Export {
            home,
            height: None,
            file,
        } => snapshot_export(&home, &file),
        SnapshotCommand::Export {
            home,
            height: Some(height),
            file,
        } => snapshot_export_kept(&home, height, &file),
        SnapshotCommand::Import { home, file } => snapshot_import(&home, &file),
    }
}

/// A stopped node's home, locked, with its config and genesis.
fn locked_home(home: &Path) -> Result<(NodeConfig, Genesis, home::HomeLock), String> {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    let lock = home::HomeLock::acquire(home).map_err(|e| e.to_string())?;
    let genesis = Genesis::load(&config.node.genesis_file).map_err(|e| e.to_string())?;
    Ok((config, genesis, lock))
}

fn snapshot_export(home: &Path, file: &Path) -> Res {
    let (config, genesis, _lock) = locked_home(home)?;
    let state = stele_node::node::open_database(&config.node.data_dir, &genesis)
        .map_err(|e| e.to_string())?;
    let view = state.view().ok_or("the node has no state yet")?;
    let exported = write_snapshot_file(file, |sink| {
        stele_node::snapshot::export(
            &view,
            sink,
            stele_node::snapshot::format::CHUNK_ENTRIES_TARGET,
        )
        .map_err(|e| e.to_string())
    })?;
    let m = &exported.manifest;
    println!(
        "wrote {}: height {}, state root {}, {} entries in {} chunks, {} bytes",
        file.display(),
        m.height,
        m.state_root,
        exported.entries,
        m.parts.len(),
        exported.bytes
    );
    Ok(())
}

/// A snapshot file at `file`, written by `write` aside, synced, then
/// renamed, so a file at the name is always whole; the aside file is
/// deleted if `write` fails.
fn write_snapshot_file(
    file: &Path,
    write: impl FnOnce(
        &mut stele_node::snapshot::FileSink<std::io::BufWriter<std::fs::File>>,
    ) -> Result<stele_node::snapshot::Exported, String>,
) -> Result<stele_node::snapshot::Exported, String> {
    let partial = file.with_extension("partial");
    let out = std::fs::File::create(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let mut sink = stele_node::snapshot::FileSink::new(std::io::BufWriter::new(out));
    let written = write(&mut sink).and_then(|exported| {
        sink.into_inner()
            .into_inner()
            .map_err(|e| e.to_string())?
            .sync_all()
            .map_err(|e| e.to_string())?;
        Ok(exported)
    });
    let exported = written.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, file).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(exported)
}

/// `export --height H`: the node's kept snapshot of H, as one file.
fn snapshot_export_kept(home: &Path, height: u64, file: &Path) -> Res {
    let config = NodeConfig::load(&config_path(home)).map_err(|e| e.to_string())?;
    let kept = stele_node::node::snapshots_dir(&config.node.data_dir);
    let dir = kept.join(height.to_string());
    if !dir.is_dir() {
        let heights = stele_node::node::kept_heights(&kept);
        return Err(format!(
            "the node keeps no snapshot of height {height} (it keeps {}; [storage] snapshot_interval_blocks sets which)",
            if heights.is_empty() {
                "none".to_string()
            } else {
                heights
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    let exported = write_snapshot_file(file, |sink| {
        stele_node::snapshot::export_folder(&dir, sink)
            .map_err(|e| format!("{}: {e}", dir.display()))
    })?;
    let m = &exported.manifest;
    println!(
        "wrote {}: height {}, state root {}, {} chunks, {} bytes",
        file.display(),
        m.height,
        m.state_root,
        m.parts.len(),
        exported.bytes
    );
    Ok(())
}

fn snapshot_import(home: &Path, file: &Path) -> Res {
    let (config, genesis, _lock) = locked_home(home)?;
    let mut state =
        stele_node::node::open_empty_database(&config.node.data_dir).map_err(|e| e.to_string())?;
    let imported =
        stele_node::snapshot::import(&mut state, &genesis, file).map_err(|e| e.to_string())?;
    println!(
        "imported {}: height {} (epoch {}), state root {}, {} entries; `stele-node start` syncs the blocks after it",
        file.display(),
        imported.height,
        imported.epoch,
        imported.state_root,
        imported.entries
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
        // A signal during the start (a join by snapshot takes a while)
        // stops it cleanly: what it fetched is on disk for the next start.
        let running = tokio::select! {
            started = home::start_home_on(home, true, accept_data_loss, rpc) => {
                started.map_err(|e| e.to_string())?
            }
            _ = shutdown::wait_for_stop(|| false) => {
                tracing::info!("stopped while starting");
                return Ok(());
            }
        };
        shutdown::wait_for_stop(|| running.node.is_finished()).await;
        tracing::info!("shutting down");
        running.shutdown().await.map_err(|e| e.to_string())
    });
    runtimes.shutdown();
    result
}
