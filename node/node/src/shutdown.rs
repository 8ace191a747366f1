//! Waiting for the moment a process that runs nodes should stop: an
//! operator's signal, or a node that stopped on its own.

use std::time::Duration;

/// How often [`wait_for_stop`] asks whether a node stopped on its own.
const STOPPED_POLL_MS: u64 = 200;

/// Why [`wait_for_stop`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
    Signal,
    /// A node stopped on its own (a fatal error; its log says which).
    NodeStopped,
}

/// Waits for SIGINT or SIGTERM, or until `stopped` answers true (asked
/// every [`STOPPED_POLL_MS`] ms; pass whether any node's driver finished).
pub async fn wait_for_stop(stopped: impl Fn() -> bool) -> Stop {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C and a fatal stop remain.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let node_stopped = async {
        while !stopped() {
            tokio::time::sleep(Duration::from_millis(STOPPED_POLL_MS)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Stop::Signal,
        () = term => Stop::Signal,
        () = node_stopped => Stop::NodeStopped,
    }
}
