//! `stele-attack`: the standing adversarial suite. Starts a 4-validator
//! cluster, keeps honest transfers flowing through validator 1, runs each
//! attack against validator 0 (or the chain) for a phase and prints a JSON
//! report: honest commit latency with and without each attack, blocks and
//! empty blocks, peak memory, how the attacked validator answered an
//! honest client, and the attack's counters. Exits 1 when a check failed.
//!
//! ```text
//! stele-attack --node-bin target/release/stele-node                # all, 20 s phases
//! stele-attack --node-bin target/release/stele-node --quick        # CI's settings
//! stele-attack --node-bin ... --attack heavy-reads --attack idle-connections
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stele_cluster::attack::{Attack, SuiteConfig, check, run};

#[derive(Parser)]
#[command(
    name = "stele-attack",
    about = "Adversarial suite for a Stele cluster."
)]
struct Args {
    /// The stele-node binary the cluster runs.
    #[arg(long)]
    node_bin: PathBuf,
    /// Attacks to run (repeat); all when none is given.
    #[arg(long, value_enum)]
    attack: Vec<Attack>,
    /// CI's settings: 5 s phases, latency reported but not judged.
    #[arg(long)]
    quick: bool,
    /// Seconds per phase.
    #[arg(long)]
    phase_secs: Option<f64>,
    /// Honest transfers per second.
    #[arg(long)]
    honest_rate: Option<f64>,
    /// Report latency without judging it against the 2x target.
    #[arg(long)]
    no_latency_target: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = if args.quick {
        SuiteConfig::quick(args.node_bin)
    } else {
        SuiteConfig::full(args.node_bin)
    };
    if !args.attack.is_empty() {
        config.attacks = args.attack;
    }
    if let Some(s) = args.phase_secs {
        config.phase = Duration::from_secs_f64(s.max(0.0));
    }
    if let Some(r) = args.honest_rate {
        config.honest_rate = r;
    }
    if args.no_latency_target {
        config.latency_ratio_max = None;
    }
    if let Err(e) = check(&config) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    match stele_cluster::run_and_print(run(&config)) {
        Some(report) if report.ok() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
