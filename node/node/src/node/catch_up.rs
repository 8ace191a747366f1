//! Block sync: fetching committed blocks this node missed from its peers,
//! in order, and serving them to peers that missed them. Fetched blocks go
//! to the driver, which commits them through the replica (it checks their
//! certificates), or on a full node through the follower (`certified.rs`,
//! which checks them itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stele_exec::SharedState;
use stele_types::{Address, Limits};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{NodeError, Shared};
use crate::metrics::PeerGarbage;
use crate::net::{Network, SyncResponder};
use crate::store::BlockReader;
use crate::sync::{SyncRequest, SyncedBlock, decode_response, serve};

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
    /// Most bytes of blocks in one answer to a peer.
    serve_bytes_max: usize,
    /// The snapshots this node keeps, served to peers (ADR 0012).
    snapshots: std::path::PathBuf,
    /// Snapshot queries being answered; beyond [`SNAPSHOT_SERVING_MAX`]
    /// in all, or [`SNAPSHOT_SERVING_PER_PEER_MAX`] for one peer, a query
    /// is dropped (its stream closes; the asker tries another peer).
    snapshot_serving: Arc<SnapshotSlots>,
}

/// Snapshot queries (chunk reads of up to a few MiB) answered at once.
const SNAPSHOT_SERVING_MAX: usize = 4;
/// Of those, for one peer: no peer holds every slot (a joiner asks two
/// chunks at a time of each peer).
const SNAPSHOT_SERVING_PER_PEER_MAX: usize = 2;

/// The snapshot queries being answered, in all and per peer.
#[derive(Debug, Default)]
struct SnapshotSlots {
    busy: std::sync::Mutex<std::collections::BTreeMap<Address, usize>>,
}

/// One query's slot, given back when dropped.
struct SnapshotSlot {
    slots: Arc<SnapshotSlots>,
    peer: Address,
}

impl SnapshotSlots {
    fn take(self: &Arc<Self>, peer: Address) -> Option<SnapshotSlot> {
        let mut busy = self.busy.lock().ok()?;
        let total: usize = busy.values().sum();
        let mine = busy.get(&peer).copied().unwrap_or(0);
        if total >= SNAPSHOT_SERVING_MAX || mine >= SNAPSHOT_SERVING_PER_PEER_MAX {
            return None;
        }
        busy.insert(peer, mine + 1);
        Some(SnapshotSlot {
            slots: self.clone(),
            peer,
        })
    }
}

impl Drop for SnapshotSlot {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.slots.busy.lock()
            && let Some(n) = busy.get_mut(&self.peer)
        {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.peer);
            }
        }
    }
}

impl CatchUp {
    pub(super) fn new(
        shared: Arc<Shared>,
        me: Address,
        blocks: mpsc::Sender<Fetched>,
        serve_bytes_max: usize,
        snapshots: std::path::PathBuf,
    ) -> CatchUp {
        CatchUp {
            shared,
            me,
            blocks,
            generation: 0,
            to: 0,
            from: 0,
            target: Arc::new(AtomicU64::new(0)),
            running: Arc::new(AtomicBool::new(false)),
            serve_bytes_max,
            snapshots,
            snapshot_serving: Arc::default(),
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

    /// Answers a peer's sync request on a blocking thread; a malformed one
    /// is counted and its stream closed.
    pub(super) fn serve(&self, from: Address, request: &[u8], respond: SyncResponder) {
        if let Some(query) = crate::sync::SnapshotQuery::decode(request) {
            let Some(permit) = self.snapshot_serving.take(from) else {
                debug!(%from, "snapshot queries at their limit; dropping one");
                return;
            };
            let dir = self.snapshots.clone();
            let metrics = self.shared.metrics.clone();
            tokio::task::spawn_blocking(move || {
                match crate::sync::serve_snapshot(&dir, query) {
                    Ok(bytes) => {
                        let chunk = matches!(query, crate::sync::SnapshotQuery::Chunk { .. });
                        if chunk && crate::sync::decode_snapshot_item(&bytes).is_some() {
                            metrics.snapshot_chunks_served.inc();
                            metrics
                                .snapshot_chunk_bytes_served
                                .inc_by(bytes.len() as u64 - 1);
                        }
                        respond.respond(bytes);
                    }
                    Err(e) => warn!(%from, error = %e, "cannot serve a snapshot query"),
                }
                drop(permit);
            });
            return;
        }
        let Some(req) = SyncRequest::decode(request) else {
            self.shared
                .metrics
                .record_peer_garbage(PeerGarbage::SyncMalformed);
            debug!(%from, "malformed sync request");
            // Dropping `respond` closes the request stream.
            return;
        };
        let state = self.shared.state.clone();
        let bytes_max = self.serve_bytes_max;
        tokio::task::spawn_blocking(move || match serve_sync(&state, req, bytes_max) {
            Ok(bytes) => respond.respond(bytes),
            Err(e) => warn!(%from, error = %e, "cannot serve sync request"),
        });
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

/// Answers a block-sync request from a snapshot of the committed state: the
/// state lock is held only while the snapshot is taken, so a commit never
/// waits for the (up to 64) block reads.
fn serve_sync(
    state: &SharedState,
    req: SyncRequest,
    bytes_max: usize,
) -> Result<Vec<u8>, NodeError> {
    let view = state.read().map_err(|_| NodeError::Poisoned)?.view();
    match view {
        Some(view) => Ok(serve(&BlockReader::from_view(&view), req, bytes_max)?),
        // Nothing committed: no blocks to give.
        None => Ok(0u32.to_le_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_peer_holds_every_snapshot_slot_and_slots_come_back() {
        let slots = Arc::new(SnapshotSlots::default());
        let (a, b, c) = (Address([1; 20]), Address([2; 20]), Address([3; 20]));
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert!(slots.take(a).is_none(), "a third for one peer");
        let _b1 = slots.take(b).unwrap();
        let _b2 = slots.take(b).unwrap();
        assert!(slots.take(c).is_none(), "a fifth in all");
        drop(a1);
        let _c1 = slots.take(c).unwrap();
        assert!(slots.take(a).is_none());
    }
}
