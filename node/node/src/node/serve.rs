//! Serving peers' block-sync requests and snapshot queries, on a task of
//! its own: the transport hands them over in their own queue
//! ([`InboundQueues::sync`](crate::net::InboundQueues)), so they wait
//! neither behind consensus messages and their signature checks (a
//! Byzantine validator's flood included) nor for a driver busy executing
//! or committing a block. Each answer is read on a blocking thread; what a
//! peer can have in flight is bounded by the transport (its sync stream
//! slots and byte budget) and, for snapshot chunks, by the slots here.

use std::path::PathBuf;
use std::sync::Arc;

use stele_exec::SharedState;
use stele_types::Address;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{NodeError, Shared};
use crate::metrics::PeerGarbage;
use crate::net::{Inbound, InboundSync, SyncResponder};
use crate::store::BlockReader;
use crate::sync::{SyncRequest, serve};

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

/// Answers peers' sync requests from the committed state.
pub(super) struct SyncServer {
    shared: Arc<Shared>,
    /// Most bytes of blocks in one answer to a peer.
    serve_bytes_max: usize,
    /// The snapshots this node keeps, served to peers (ADR 0012).
    snapshots: PathBuf,
    /// Snapshot queries being answered; beyond [`SNAPSHOT_SERVING_MAX`]
    /// in all, or [`SNAPSHOT_SERVING_PER_PEER_MAX`] for one peer, a query
    /// is dropped (its stream closes; the asker tries another peer).
    snapshot_serving: Arc<SnapshotSlots>,
}

impl SyncServer {
    pub(super) fn new(shared: Arc<Shared>, serve_bytes_max: usize, snapshots: PathBuf) -> Self {
        SyncServer {
            shared,
            serve_bytes_max,
            snapshots,
            snapshot_serving: Arc::default(),
        }
    }

    /// Serves `requests` until the transport closes the queue or the
    /// driver goes away (`driver`'s receiver dropped): the task holds the
    /// node's state open, so it must not outlive the node.
    pub(super) async fn run(
        self,
        mut requests: mpsc::Receiver<InboundSync>,
        driver: mpsc::Sender<Inbound>,
    ) {
        loop {
            let req = tokio::select! {
                req = requests.recv() => match req {
                    Some(req) => req,
                    None => return,
                },
                () = driver.closed() => return,
            };
            self.serve(req.from, &req.request, req.respond);
        }
    }

    /// Answers a peer's sync request on a blocking thread; a malformed one
    /// is counted and its stream closed.
    fn serve(&self, from: Address, request: &[u8], respond: SyncResponder) {
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
