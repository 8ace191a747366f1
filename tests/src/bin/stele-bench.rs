//! `stele-bench`: drives a Stele cluster with pre-signed transfers and
//! prints a JSON report (committed tx/s, commit latency, and this machine's
//! signature-verification ceiling).
//!
//! ```text
//! stele-bench --node-bin target/debug/stele-node --validators 4
//! stele-bench --rpc 127.0.0.1:26601 --rpc 127.0.0.1:26603 --accounts-file testnet/accounts.json
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use stele_cluster::bench::{BenchConfig, Target, Workload, run};

#[derive(Parser)]
#[command(name = "stele-bench", about = "Load benchmark for a Stele cluster.")]
struct Args {
    /// Start a local cluster from this stele-node binary.
    #[arg(long, conflicts_with = "rpc")]
    node_bin: Option<PathBuf>,
    /// Validators of the local cluster.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// The local cluster's `consensus.block_interval_ms` (shortest time
    /// between two proposals while transactions wait); the node's default
    /// if not given.
    #[arg(long)]
    block_interval_ms: Option<u64>,
    /// The local cluster's `consensus.pipeline_blocks` (most blocks
    /// proposed and not yet committed); the node's default.
    #[arg(long, default_value_t = 1)]
    pipeline_blocks: u64,
    /// RPC address of a running validator (repeat for each).
    #[arg(long)]
    rpc: Vec<SocketAddr>,
    /// Funded keys of the running cluster (accounts.json of `stele-node testnet`).
    #[arg(long, requires = "rpc")]
    accounts_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = WorkloadArg::Native)]
    workload: WorkloadArg,
    /// Fresh accounts funded before the run; each sends.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Pre-signed transactions per sender.
    #[arg(long, default_value_t = 100)]
    txs_per_sender: u64,
    /// Transactions in flight per sender (1..=64).
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Offered transactions per second over all senders; 0 is flat out.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds spent measuring the signature ceiling.
    #[arg(long, default_value_t = 2.0)]
    verify_seconds: f64,
    /// Only measure and print the signature ceiling.
    #[arg(long)]
    ceiling_only: bool,
    /// Full nodes beside the local cluster's validators (the load's writes
    /// still go to the validators).
    #[arg(long, default_value_t = 0)]
    full_nodes: usize,
    /// Concurrent readers flooding the full nodes (the validators without
    /// full nodes) with views, event queries, block reads and a block
    /// subscription each, during the load.
    #[arg(long, default_value_t = 0)]
    read_flood: usize,
    /// Send the read flood through HAProxy (docs/haproxy.cfg).
    #[arg(long)]
    reads_via_balancer: bool,
    /// The read flood makes views only (a token's `balance_of`; needs
    /// `--workload token`), not a dApp's mix.
    #[arg(long)]
    views_only: bool,
    /// Gas limit of each token transfer (`--workload token`); by default
    /// half as much again as `estimate_gas` gives for one.
    #[arg(long)]
    token_gas_limit: Option<u64>,
    /// CPUs the local validators may run on (a `taskset -c` list).
    #[arg(long)]
    validator_cpus: Option<String>,
    /// CPUs the local full nodes may run on (a `taskset -c` list).
    #[arg(long)]
    full_node_cpus: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum WorkloadArg {
    Native,
    Token,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.ceiling_only {
        let measured = stele_cluster::bench::measure_ceiling(Duration::from_secs_f64(
            args.verify_seconds.max(0.1),
        ))
        .and_then(|c| Ok(serde_json::to_string_pretty(&c)?));
        return match measured {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let target = match (args.node_bin, args.accounts_file) {
        (Some(node_bin), _) => Target::Local {
            node_bin,
            validators: args.validators,
            block_interval_ms: args.block_interval_ms,
            pipeline_blocks: args.pipeline_blocks,
            full_nodes: args.full_nodes,
            validator_cpus: args.validator_cpus,
            full_node_cpus: args.full_node_cpus,
        },
        (None, Some(accounts_file)) if !args.rpc.is_empty() => Target::Remote {
            rpc: args.rpc,
            accounts_file,
        },
        _ => {
            eprintln!("error: give --node-bin, or --rpc (one or more) with --accounts-file");
            return ExitCode::FAILURE;
        }
    };
    let config = BenchConfig {
        target,
        workload: match args.workload {
            WorkloadArg::Native => Workload::Native,
            WorkloadArg::Token => Workload::Token,
        },
        senders: args.senders,
        txs_per_sender: args.txs_per_sender,
        window: args.window,
        rate_per_s: (args.rate > 0.0).then_some(args.rate),
        verify_measure: Duration::from_secs_f64(args.verify_seconds.max(0.1)),
        read_flood: args.read_flood,
        reads_via_balancer: args.reads_via_balancer,
        views_only: args.views_only,
        token_gas_limit: args.token_gas_limit,
    };
    match stele_cluster::run_and_print(run(&config)) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}
