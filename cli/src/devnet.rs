//! `stele devnet`: a local network in one process. The validators are the
//! real node (PBFT over QUIC on loopback, RocksDB data dirs, JSON-RPC),
//! started from homes laid out exactly as `stele-node testnet` writes them,
//! so a devnet behaves like a network of separate `stele-node` processes.
//! Dev accounts have fixed keys (the same on every machine) and are written
//! to the keystore as `dev0`, `dev1`, ...

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stele_client::{Client, Signer, TxBuilder};
use stele_node::home::{self, DEV_BALANCE, RunningNode, TestnetSpec};
use stele_node::node::now_ms;
use stele_node::shutdown::{Stop, wait_for_stop};
use stele_types::{Address, SecretKey, keccak256};

use crate::Res;
use crate::ctx::{CliError, Ctx, fail};
use crate::keystore::save_devnet_key;

mod set;

/// Marker and settings of a devnet folder.
const SPEC_FILE: &str = "devnet.json";
const LOG_FILE: &str = "devnet.log";
/// How long the network may take to commit its first block after start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevnetArgs {
    #[command(subcommand)]
    pub action: Option<DevnetAction>,
    /// Number of validators (n = 1 runs the same PBFT code path).
    #[arg(long)]
    pub validators: Option<usize>,
    /// Folder for the chain data; default <home>/devnet.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Delete the folder's chain and start a new one.
    #[arg(long)]
    pub reset: bool,
    /// Funded dev accounts (keys dev0, dev1, ... in the keystore).
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Validator i listens for peers on BASE+2i and serves RPC on BASE+2i+1
    /// (the default puts validator 0's RPC on 8545).
    #[arg(long, default_value_t = 8544)]
    pub base_port: u16,
    #[arg(long, default_value_t = 1337)]
    pub chain_id: u64,
    /// After start, build and deploy the example token and counter from
    /// this source tree's contracts/ (needs the wasm32 target).
    #[arg(long)]
    pub deploy_examples: bool,
    /// Full nodes to run beside the validators (follow the chain, serve
    /// reads, forward transactions), on the ports after the validators'.
    #[arg(long)]
    pub full_nodes: Option<usize>,
}

/// Changes to a running devnet's validator set (ADR 0010), voted by its
/// validators' keys, which the devnet folder holds.
#[derive(clap::Subcommand, Debug)]
pub enum DevnetAction {
    /// Add a validator while the devnet runs: writes its node into the
    /// folder (the devnet starts it), waits until it has synced, funds its
    /// key, and has the validators vote it in; it validates from the next
    /// epoch on.
    AddValidator(set::AddValidatorArgs),
    /// Remove a validator while the devnet runs, by the other validators'
    /// vote; its node keeps running and follows the chain.
    RemoveValidator(set::RemoveValidatorArgs),
}

/// What a devnet folder was created with (`devnet.json`), and the
/// validators added since.
#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    validators: usize,
    accounts: usize,
    base_port: u16,
    chain_id: u64,
    rpc: Vec<SocketAddr>,
    #[serde(default)]
    full_nodes: usize,
    #[serde(default)]
    full_rpc: Vec<SocketAddr>,
    /// Validator nodes added by `stele devnet add-validator`, in order.
    #[serde(default)]
    added: Vec<Added>,
}

/// A validator node added to a devnet folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Added {
    /// Its home in the folder (`node4`).
    name: String,
    rpc: SocketAddr,
}

pub fn default_dir(ctx: &Ctx) -> PathBuf {
    ctx.home.join("devnet")
}

/// Dev account `i`'s key: derived from a fixed label, so every devnet has
/// the same dev addresses.
pub fn dev_key(i: usize) -> Result<SecretKey, CliError> {
    let mut seed = b"stele devnet account ".to_vec();
    seed.extend_from_slice(&(i as u64).to_be_bytes());
    SecretKey::from_bytes(&keccak256(&seed).0)
        .map_err(|e| CliError::new(format!("dev key {i}: {e}")))
}

/// Replaces `devnet.json` (written aside, then renamed over it, so the
/// running devnet never reads half a file).
fn save_spec(dir: &Path, spec: &Spec) -> Res {
    let text = serde_json::to_string_pretty(spec)
        .map_err(|e| CliError::new(format!("devnet spec: {e}")))?;
    let path = dir.join(SPEC_FILE);
    let aside = dir.join(format!("{SPEC_FILE}.new"));
    std::fs::write(&aside, text)
        .and_then(|()| std::fs::rename(&aside, &path))
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))
}

fn load_spec(dir: &Path) -> Result<Option<Spec>, CliError> {
    let path = dir.join(SPEC_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            CliError::new(format!("{} is damaged: {e}", path.display()))
                .hint("start over with --reset")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => fail(format!("cannot read {}: {e}", path.display())),
    }
}

/// Creates the devnet folder, or checks that an existing one matches.
fn prepare(dir: &Path, a: &DevnetArgs) -> Result<(Spec, bool), CliError> {
    if a.reset && dir.exists() {
        if load_spec(dir).ok().flatten().is_none()
            && dir.read_dir().is_ok_and(|mut d| d.next().is_some())
        {
            return fail(format!(
                "{} is not a devnet folder; not deleting it",
                dir.display()
            ));
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| CliError::new(format!("cannot delete {}: {e}", dir.display())))?;
    }
    if let Some(spec) = load_spec(dir)? {
        if let Some(n) = a.validators
            && n != spec.validators
        {
            return Err(CliError::new(format!(
                "the devnet in {} has {} validators, not {n}",
                dir.display(),
                spec.validators
            ))
            .hint("add --reset to start a new chain with a different size"));
        }
        if let Some(n) = a.full_nodes
            && n != spec.full_nodes
        {
            return Err(CliError::new(format!(
                "the devnet in {} has {} full nodes, not {n}",
                dir.display(),
                spec.full_nodes
            ))
            .hint("add --reset to start a new chain with a different size"));
        }
        return Ok((spec, true));
    }
    if a.accounts == 0 || a.accounts > 256 {
        return fail("--accounts must be in 1..=256");
    }
    let dev: Vec<Address> = (0..a.accounts)
        .map(|i| dev_key(i).map(|k| k.public_key().address()))
        .collect::<Result<_, _>>()?;
    let testnet = home::write_testnet(
        dir,
        &TestnetSpec {
            validators: a.validators.unwrap_or(4),
            chain_id: a.chain_id,
            base_port: a.base_port,
            genesis_time_ms: now_ms(),
            dev_accounts: dev,
            full_nodes: a.full_nodes.unwrap_or(0),
        },
    )
    .map_err(|e| CliError::new(e.to_string()))?;
    // The devnet starts its nodes one after another in this process: a
    // node must not wait for peers to offer it a snapshot to join by
    // (they all start from the genesis anyway).
    for home_dir in testnet.homes.iter().chain(&testnet.full_homes) {
        devnet_settings(home_dir)?;
    }
    let spec = Spec {
        validators: testnet.homes.len(),
        accounts: a.accounts,
        base_port: a.base_port,
        chain_id: a.chain_id,
        rpc: testnet.rpc,
        full_nodes: testnet.full_homes.len(),
        full_rpc: testnet.full_rpc,
        added: Vec::new(),
    };
    let text = serde_json::to_string_pretty(&spec)
        .map_err(|e| CliError::new(format!("devnet spec: {e}")))?;
    home::write_new(&dir.join(SPEC_FILE), &text).map_err(|e| CliError::new(e.to_string()))?;
    Ok((spec, false))
}

/// A devnet node's settings, in the home `home_dir`: `[storage]
/// snapshot_sync` off; the block explorer on at `/explorer/`, and CORS
/// open, so the explorer (or a dApp on another local port) served by one
/// node can read any of them.
fn devnet_settings(home_dir: &Path) -> Res {
    let path = home::config_path(home_dir);
    // Parsed, not loaded: its relative paths stay relative.
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    let mut config = stele_node::config::NodeConfig::parse(&text, &path)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    config.storage.snapshot_sync = false;
    if let Some(rpc) = config.rpc.as_mut() {
        rpc.explorer = true;
        rpc.cors_origins = vec!["*".into()];
    }
    std::fs::write(&path, config.to_toml())
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))
}

fn init_logging(dir: &Path) -> Res {
    let path = dir.join(LOG_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("STELE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second subscriber (only in tests) is not an error worth failing on.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

pub async fn run(ctx: &Ctx, a: DevnetArgs) -> Res {
    match a.action {
        Some(DevnetAction::AddValidator(args)) => return set::add(ctx, args).await,
        Some(DevnetAction::RemoveValidator(args)) => return set::remove(ctx, args).await,
        None => {}
    }
    let dir = a.dir.clone().unwrap_or_else(|| default_dir(ctx));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", dir.display())))?;
    let (spec, resumed) = prepare(&dir, &a)?;
    init_logging(&dir)?;

    let ks = ctx.keystore();
    let mut accounts = Vec::new();
    for i in 0..spec.accounts {
        let key = dev_key(i)?;
        let name = format!("dev{i}");
        if let Err(e) = save_devnet_key(&ks, &name, &key) {
            eprintln!("warning: {name} not written to the keystore: {}", e.message);
        }
        accounts.push((name, key));
    }

    // The genesis validators, the full nodes, then the validators added
    // since (`stele devnet add-validator`).
    let homes = (0..spec.validators)
        .map(|i| (format!("node{i}"), format!("validator {i}")))
        .chain((0..spec.full_nodes).map(|j| (format!("full{j}"), format!("full node {j}"))))
        .chain(
            spec.added
                .iter()
                .map(|a| (a.name.clone(), format!("added validator {}", a.name))),
        );
    let mut nodes: Vec<RunningNode> = Vec::new();
    for (name, what) in homes {
        // The CLI's runtime was not built for in-place execution.
        match home::start_home(&dir.join(name), false).await {
            Ok(n) => nodes.push(n),
            Err(e) => {
                stop_all(nodes).await;
                return Err(CliError::new(format!("{what} did not start: {e}")).hint(
                    "is another devnet using these ports or this folder? Stop it, or pass --dir and --base-port",
                ));
            }
        }
    }
    let later: Arc<Mutex<Vec<RunningNode>>> = Arc::default();
    let result = serve(ctx, &a, &dir, &spec, resumed, &accounts, &nodes, &later).await;
    stop_all(nodes).await;
    let added_later = std::mem::take(&mut *lock(&later));
    stop_all(added_later).await;
    result?;
    if !ctx.json() {
        eprintln!("devnet stopped; its chain is kept in {}", dir.display());
    }
    Ok(())
}

async fn stop_all(nodes: Vec<RunningNode>) {
    for n in nodes {
        if let Err(e) = n.shutdown().await {
            eprintln!("warning: a node did not shut down cleanly: {e}");
        }
    }
}

fn lock(nodes: &Mutex<Vec<RunningNode>>) -> std::sync::MutexGuard<'_, Vec<RunningNode>> {
    nodes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How often a running devnet looks for validators added to its folder.
const ADDED_POLL: Duration = Duration::from_millis(500);

/// Starts the validator nodes `stele devnet add-validator` lists in
/// `devnet.json` while the devnet runs (those in `started` run already),
/// into `later`, until `stop` changes.
async fn start_added(
    dir: PathBuf,
    mut started: BTreeSet<String>,
    later: Arc<Mutex<Vec<RunningNode>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(ADDED_POLL) => {}
        }
        let Ok(Some(spec)) = load_spec(&dir) else {
            continue;
        };
        for added in spec.added {
            if !started.insert(added.name.clone()) {
                continue;
            }
            match home::start_home(&dir.join(&added.name), false).await {
                Ok(n) => {
                    tracing::info!(node = %added.name, "started an added validator node");
                    lock(&later).push(n);
                }
                Err(e) => {
                    tracing::warn!(node = %added.name, error = %e, "an added validator node did not start");
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    ctx: &Ctx,
    a: &DevnetArgs,
    dir: &Path,
    spec: &Spec,
    resumed: bool,
    accounts: &[(String, SecretKey)],
    nodes: &[RunningNode],
    later: &Arc<Mutex<Vec<RunningNode>>>,
) -> Res {
    let rpc_addr = nodes
        .first()
        .and_then(|n| n.rpc.as_ref())
        .map(|r| r.local_addr())
        .ok_or_else(|| CliError::new("validator 0 serves no RPC"))?;
    let url = format!("http://{rpc_addr}");
    let client = Client::connect(&url).await?;
    let height = wait_ready(ctx, &client, nodes).await?;

    let mut examples = Vec::new();
    if a.deploy_examples {
        examples = deploy_examples(ctx, &client, spec.chain_id, &accounts[0].1).await?;
    }

    let rpc_of = |n: &RunningNode| n.rpc.as_ref().map(|r| format!("http://{}", r.local_addr()));
    let (validators, rest) = nodes.split_at(spec.validators.min(nodes.len()));
    let (full, added) = rest.split_at(spec.full_nodes.min(rest.len()));
    let rpcs: Vec<String> = validators.iter().filter_map(rpc_of).collect();
    let full_rpcs: Vec<String> = full.iter().filter_map(rpc_of).collect();
    let added_rpcs: Vec<String> = added.iter().filter_map(rpc_of).collect();
    let accounts_json: Vec<Value> = accounts
        .iter()
        .map(|(name, k)| json!({"name": name, "address": k.public_key().address()}))
        .collect();
    ctx.out(
        || {
            let mut s = format!(
                "Stele devnet {} ({} validator{}, chain id {}, height {height})\n\nRPC:       {url}  (ws://{rpc_addr} for subscriptions)\n",
                if resumed { "resumed" } else { "started" },
                spec.validators,
                if spec.validators == 1 { "" } else { "s" },
                spec.chain_id
            );
            if rpcs.len() > 1 {
                s.push_str(&format!("other RPCs: {}\n", rpcs[1..].join(" ")));
            }
            if !full_rpcs.is_empty() {
                s.push_str(&format!("full nodes: {}\n", full_rpcs.join(" ")));
            }
            if !added_rpcs.is_empty() {
                s.push_str(&format!("added validators: {}\n", added_rpcs.join(" ")));
            }
            s.push_str(&format!(
                "data:      {}\nlog:       {}\n\nFunded accounts ({DEV_BALANCE} each at genesis; keys in the keystore, no passphrase):\n",
                dir.display(),
                dir.join(LOG_FILE).display()
            ));
            for (name, k) in accounts {
                s.push_str(&format!("  {name:<6} {}\n", k.public_key().address()));
            }
            for (name, addr) in &examples {
                s.push_str(&format!("\nexample {name}: {addr}"));
            }
            s.push_str("\nTry: stele account dev0\nCtrl-C stops the devnet; running it again resumes this chain (--reset starts over).");
            s
        },
        json!({
            "rpc": url,
            "ws": format!("ws://{rpc_addr}"),
            "rpcs": rpcs,
            "full_node_rpcs": full_rpcs,
            "added_validator_rpcs": added_rpcs,
            "chain_id": spec.chain_id,
            "validators": spec.validators,
            "height": height,
            "resumed": resumed,
            "dir": dir,
            "accounts": accounts_json,
            "examples": examples.iter().map(|(n, a)| json!({"name": n, "address": a})).collect::<Vec<_>>(),
        }),
    );
    let (stop_added, stopped) = tokio::sync::watch::channel(false);
    let started = spec.added.iter().map(|a| a.name.clone()).collect();
    let watcher = tokio::spawn(start_added(
        dir.to_path_buf(),
        started,
        later.clone(),
        stopped,
    ));
    let finished = || {
        nodes.iter().any(|n| n.node.is_finished())
            || lock(later).iter().any(|n| n.node.is_finished())
    };
    if wait_for_stop(finished).await == Stop::NodeStopped {
        eprintln!("a node stopped on its own; see the devnet log");
    }
    let _ = stop_added.send(true);
    let _ = watcher.await;
    Ok(())
}

/// Waits until validator 0 has committed a block since start (all
/// validators connected and agreeing), with a spinner.
async fn wait_ready(ctx: &Ctx, client: &Client, nodes: &[RunningNode]) -> Result<u64, CliError> {
    let _spin = ctx.spinner("starting validators");
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut start_height = None;
    loop {
        if nodes.iter().any(|n| n.node.is_finished()) {
            return fail("a node stopped while starting; see the devnet log");
        }
        if let Ok(s) = client.get_status().await {
            let first = *start_height.get_or_insert(s.height);
            if s.height > first || (s.height > 0 && nodes.len() == 1) {
                return Ok(s.height);
            }
        }
        if Instant::now() > deadline {
            return fail(format!(
                "the devnet committed no block within {} s; see the devnet log",
                READY_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds and deploys the example token (all its supply to dev0) and
/// counter from this source tree.
async fn deploy_examples(
    ctx: &Ctx,
    client: &Client,
    chain_id: u64,
    key: &SecretKey,
) -> Result<Vec<(String, Address)>, CliError> {
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts");
    let signer = Signer::new(key.clone());
    let mut out = Vec::new();
    let examples: [(&str, Value); 2] = [
        (
            "token",
            json!(["Stele Dev Token", "SDT", 18, "1000000000000000000000000"]),
        ),
        ("counter", json!([0, "18446744073709551615"])),
    ];
    for (name, args) in examples {
        let dir = contracts.join(name);
        let built = {
            let _spin = ctx.spinner(format!("building example {name}"));
            let d = dir.clone();
            tokio::task::spawn_blocking(move || {
                stele_build::build(
                    &d,
                    &stele_build::BuildOptions {
                        target_dir: None,
                        locked: false,
                        verbose: false,
                    },
                )
            })
            .await
            .map_err(|e| CliError::new(format!("build task: {e}")))?
            .map_err(|e| CliError::new(format!("building {}: {e}", dir.display())))?
        };
        let init = built
            .abi
            .encode_args("init", &args)
            .map_err(|e| CliError::new(format!("example {name} init: {e}")))?;
        let nonce = client.get_account(signer.address()).await?.pending_nonce;
        let tx = TxBuilder::new(chain_id)
            .nonce(nonce)
            .gas_limit(200_000_000)
            .deploy(built.wasm, init, 0);
        let (_, raw, _) = signer.sign(tx);
        let r = crate::chain::send_and_wait(ctx, client, &raw, None, 60).await?;
        match r.receipt.contract_address {
            Some(addr) => out.push((name.to_string(), addr)),
            None => {
                return fail(format!(
                    "deploying example {name} failed: {}",
                    stele_abi::output_text(&r.receipt.output)
                ));
            }
        }
    }
    Ok(out)
}
