//! Block sync: fetching committed blocks this node missed from its peers,
//! in order (serving them to peers is `serve`'s). Fetched blocks go
//! to the driver, which commits them through the replica (it checks their
//! certificates), or on a full node through the follower (`certified.rs`,
//! which checks them itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stele_types::{Address, Limits};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Shared;
use crate::net::Network;
use crate::sync::{SyncRequest, SyncedBlock, decode_response};

/// A fetched block, tagged with the generation of the fetch that got it.
pub(super) type Fetched = (u64, SyncedBlock);

/// Consecutive failed requests after which a fetch gives up (the next
/// proposal or checkpoint above the tip starts another).
const FETCH_FAILURES_MAX: usize = 64;

pub(super) struct CatchUp {
    shared: Arc<Shared>,
    me: Address,
    blocks: mpsc::Sender<Fetched>,
    /// Generation of the current fetch; results of older ones are ignored.
    generation: u64,
    to: u64,
    /// The running fetch's first height, target (raised in place when a
    /// later request extends it, so a slow fetch is never restarted from
    /// scratch) and liveness.
    from: u64,
    target: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl CatchUp {
    pub(super) fn new(shared: Arc<Shared>, me: Address, blocks: mpsc::Sender<Fetched>) -> CatchUp {
        CatchUp {
            shared,
            me,
            blocks,
            generation: 0,
            to: 0,
            from: 0,
            target: Arc::new(AtomicU64::new(0)),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The highest height asked for so far.
    pub(super) fn target(&self) -> u64 {
        self.to
    }

    /// Whether a fetched block comes from the current fetch.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        generation == self.generation
    }

    /// Fetches blocks `from..=to` from peers, in order, and hands them to
    /// the driver; a newer request supersedes this one.
    pub(super) fn start(&mut self, from: u64, to: u64) {
        self.shared.syncing.store(true, Ordering::Relaxed);
        self.shared.peer_height.fetch_max(to, Ordering::Relaxed);
        if self.running.load(Ordering::Relaxed) && from >= self.from {
            // Extend the running fetch instead of starting over: on a slow
            // network a restarted fetch would never finish.
            self.target.fetch_max(to, Ordering::Relaxed);
            self.to = self.to.max(to);
            return;
        }
        self.generation += 1;
        self.to = to;
        self.from = from;
        self.target = Arc::new(AtomicU64::new(to));
        self.running = Arc::new(AtomicBool::new(true));
        info!(from, to, "syncing blocks from peers");
        let me = self.me;
        // A validator fetches from the other validators; a full node from
        // whichever peers it has, validators or full nodes.
        let peers: Option<Vec<Address>> = self.shared.net.is_validator().then(|| {
            self.shared
                .epoch()
                .validators
                .validators()
                .iter()
                .map(|v| v.address)
                .filter(|a| *a != me)
                .collect()
        });
        let fetch = Fetch {
            net: self.shared.net.clone(),
            limits: self.shared.limits.clone(),
            blocks: self.blocks.clone(),
            generation: self.generation,
            peers,
            target: self.target.clone(),
        };
        let running = self.running.clone();
        tokio::spawn(async move {
            fetch.run(from).await;
            running.store(false, Ordering::Relaxed);
        });
    }

    /// Stops the running fetch and starts another from `from` (a fetched
    /// block was refused: the fetch has moved past a height the node still
    /// needs, and its later blocks cannot be used).
    pub(super) fn restart(&mut self, from: u64, to: u64) {
        // The running task stops at its next block: its target is below it.
        self.target.store(0, Ordering::Relaxed);
        self.running = Arc::new(AtomicBool::new(false));
        self.start(from, to.max(self.to));
    }
}

/// One fetch task: asks connected peers in turn for the next blocks until
/// it reaches the (moving) target or fails too often in a row.
struct Fetch {
    net: Network,
    limits: Limits,
    blocks: mpsc::Sender<Fetched>,
    generation: u64,
    /// Whom to ask, of those connected; `None`: any peer connected.
    peers: Option<Vec<Address>>,
    target: Arc<AtomicU64>,
}

impl Fetch {
    async fn run(self, from: u64) {
        let mut next = from;
        // Each fetch starts with another peer than the last (a restarted
        // fetch does not go back to the peer whose block was refused).
        let mut attempt = usize::try_from(self.generation).unwrap_or(0);
        let mut failures: usize = 0;
        while next <= self.target.load(Ordering::Relaxed) && failures < FETCH_FAILURES_MAX {
            let to = self.target.load(Ordering::Relaxed);
            let peers: Vec<Address> = match &self.peers {
                Some(list) => {
                    let connected = self.net.connected();
                    list.iter()
                        .filter(|a| connected.contains(a))
                        .copied()
                        .collect()
                }
                None => self.net.connected_peers(),
            };
            if peers.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                failures += 1;
                continue;
            }
            let peer = peers[attempt % peers.len()];
            attempt += 1;
            failures += 1;
            let req = SyncRequest { from: next, to };
            let blocks = match self.net.request(&peer, &req.encode()).await {
                Ok(bytes) => match decode_response(&bytes, &self.limits) {
                    Ok(blocks) => blocks,
                    Err(e) => {
                        warn!(%peer, error = %e, "malformed sync response");
                        continue;
                    }
                },
                Err(e) => {
                    debug!(%peer, error = %e, "sync request failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if blocks.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            for block in blocks {
                if block.certificate.height != next {
                    break;
                }
                next += 1;
                failures = 0;
                if self.blocks.send((self.generation, block)).await.is_err() {
                    return;
                }
            }
        }
    }
}
