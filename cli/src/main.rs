//! `stele`: the command-line tool for contract authors. Keys, build,
//! deploy, call and view contracts, inspect the chain, and run a local
//! devnet, all against a node's JSON-RPC API.

mod chain;
mod contract;
mod ctx;
mod devnet;
mod keystore;
mod new;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::ctx::{CliError, Ctx};

/// The devnet's first RPC endpoint, the default of `--rpc`.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";

#[derive(Parser)]
#[command(
    name = "stele",
    version,
    about = "Build, deploy and call Stele contracts; run a local devnet.",
    long_about = "Build, deploy and call Stele contracts; run a local devnet.\n\n\
        Start here:\n  stele devnet                 # a local 4-validator network (leave it running)\n  \
        stele deploy contracts/token --init-args '[\"Gold\", \"GLD\", 18, \"1000000\"]'\n  \
        stele call <TOKEN> transfer --args '[\"<ADDRESS>\", \"250\"]'\n  \
        stele view <TOKEN> balance_of --args '[\"<ADDRESS>\"]'"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// JSON-RPC endpoint of a node (http:// or ws://).
    #[arg(long, global = true, env = "STELE_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
    /// Key that signs transactions: a key name from the keystore.
    #[arg(long, global = true, env = "STELE_FROM", default_value = "dev0")]
    pub from: String,
    /// Machine-readable JSON output (one document on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Stele's home folder (keystore, devnet data).
    #[arg(long, global = true, env = "STELE_HOME")]
    pub home: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local network: validators over QUIC on loopback, funded dev
    /// accounts in the keystore (dev0, dev1, ...). Ctrl-C stops it; the next
    /// run resumes the same chain unless --reset.
    Devnet(devnet::DevnetArgs),
    /// Start a contract project in a new folder: an example contract, its
    /// tests on the real VM and the SDK, pinned to this version (offline).
    New(new::NewArgs),
    /// Manage signing keys (encrypted v3 keystore files).
    Keys {
        #[command(subcommand)]
        command: keystore::KeysCommand,
    },
    /// Build a contract crate for wasm32; prints the size and code hash.
    Build(contract::BuildArgs),
    /// Upload and instantiate a contract (a .wasm file or a crate folder,
    /// built first); waits for the receipt and prints the address.
    Deploy(contract::DeployArgs),
    /// Call a contract method in a transaction; arguments are checked
    /// against the contract's on-chain ABI before anything is signed.
    Call(contract::CallArgs),
    /// Run a read-only method; nothing is signed or stored.
    View(contract::ViewArgs),
    /// Send native tokens.
    Transfer(chain::TransferArgs),
    /// Balance, nonce and code of an account.
    Account(chain::AccountArgs),
    /// A transaction and its receipt.
    Tx(chain::TxArgs),
    /// A block (the latest by default).
    Block(chain::BlockArgs),
    /// The node's status: its chain, height and the certified height, its
    /// sync phase and, while it joins by snapshot, how far it got.
    Status,
    /// The validator set: its epoch, its members and the change decided in
    /// it (validators vote changes in with `VoteValidators` transactions).
    Validators(chain::ValidatorsArgs),
    /// The protocol parameters in force and the upgrade scheduled
    /// (validators vote upgrades in with `protocol vote`).
    Protocol(chain::ProtocolArgs),
    /// The ABI embedded in a deployed contract.
    Abi(contract::AbiArgs),
    /// A contract's events: recent ones, then new ones with --follow.
    Events(contract::EventsArgs),
    /// Read a contract storage value with its Merkle proof and check the
    /// proof against the validator set of a genesis file.
    Proof(contract::ProofArgs),
    /// Rebuild a contract from its source and check that the deployed code
    /// is exactly what it builds (the same code hash).
    Verify(contract::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let ctx = Ctx::new(cli.global)?;
        match cli.command {
            Command::Devnet(a) => devnet::run(&ctx, a).await,
            Command::New(a) => new::run(&ctx, a),
            Command::Keys { command } => keystore::run(&ctx, command),
            Command::Build(a) => contract::build(&ctx, a).await,
            Command::Deploy(a) => contract::deploy(&ctx, a).await,
            Command::Call(a) => contract::call(&ctx, a).await,
            Command::View(a) => contract::view(&ctx, a).await,
            Command::Transfer(a) => chain::transfer(&ctx, a).await,
            Command::Account(a) => chain::account(&ctx, a).await,
            Command::Tx(a) => chain::tx(&ctx, a).await,
            Command::Block(a) => chain::block(&ctx, a).await,
            Command::Status => chain::status(&ctx).await,
            Command::Validators(a) => chain::validators(&ctx, a).await,
            Command::Protocol(a) => chain::protocol(&ctx, a).await,
            Command::Abi(a) => contract::abi(&ctx, a).await,
            Command::Events(a) => contract::events(&ctx, a).await,
            Command::Proof(a) => contract::proof(&ctx, a).await,
            Command::Verify(a) => contract::verify(&ctx, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report(json);
            ExitCode::FAILURE
        }
    }
}

/// Shorthand for results of CLI commands.
pub type Res<T = ()> = Result<T, CliError>;
