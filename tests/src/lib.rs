//! Cluster fault-test harness and load generator for Stele: real
//! `stele-node` processes started from a generated testnet folder, with a
//! UDP relay per directed link that a test can cut, delay or drop.
//!
//! - [`cluster`]: start, kill (SIGKILL), stop (SIGTERM), restart, pause
//!   (SIGSTOP/SIGCONT) and wipe validators; partition and heal links.
//! - [`relay`]: the per-link UDP relay.
//! - [`load`]: transfers and AMM swaps from many accounts, every hash and
//!   rejection recorded, commits followed over a WebSocket subscription.
//! - [`contracts`]: the token and AMM contracts (built with `stele-build`)
//!   and funding fresh accounts.
//! - [`check`]: the invariants: one chain, every accepted transaction
//!   committed exactly once, supply conserved.
//! - [`scenarios`]: the fault scenarios (`node/node/tests/faults.rs` runs
//!   them).
//! - [`bench`]: the load benchmark behind the `stele-bench` binary.
//! - [`node_stats`]: a validator's block stages and CPU time from its
//!   metrics and `/proc`, for the benchmark's report.
//! - [`attack`]: the standing adversarial suite behind the `stele-attack`
//!   binary: honest transfers' commit latency with and without each attack
//!   of hostile contracts, clients and peers; [`hostile`] holds the
//!   hostile contracts, [`rawnet`] raw HTTP and WebSocket from chosen
//!   source addresses.
//! - [`haproxy`]: HAProxy from the shipped `docs/haproxy.cfg` (or its TCP
//!   variant) in front of nodes' RPC ports, and its servers' health.
//! - [`byzantine`]: a Byzantine validator that holds a real validator key
//!   and sends valid-looking garbage to every peer on every channel.

pub mod attack;
pub mod bench;
pub mod byzantine;
pub mod check;
pub mod cluster;
pub mod contracts;
pub mod haproxy;
pub mod hostile;
pub mod load;
pub mod node_stats;
pub mod rawnet;
pub mod reads;
pub mod relay;
pub mod scenarios;

/// What the harness's binaries do with a run: `run` on a fresh
/// multi-threaded runtime, its report printed as pretty JSON on standard
/// output. `None` (with the error on standard error) if the runtime could
/// not start, the run failed or the report does not serialize.
pub fn run_and_print<T: serde::Serialize>(
    run: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let report = match runtime.block_on(run) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e:#}");
            return None;
        }
    };
    match serde_json::to_string_pretty(&report) {
        Ok(json) => {
            println!("{json}");
            Some(report)
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}
