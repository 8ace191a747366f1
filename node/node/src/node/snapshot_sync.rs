//! Joining by snapshot (ADR 0012): a node whose state is still the
//! genesis's asks its peers which snapshots they keep, takes the newest,
//! checks its index against the genesis (the chain of epochs, block H's
//! certificate, the cut against H's state root), fetches the chunks in
//! parallel from every peer offering it, checks each as it arrives, keeps
//! the good ones on disk by their hash (an interrupted download resumes
//! from them, and a later snapshot reuses every part that did not change),
//! and builds the state at H from them. Block sync then takes it from
//! H + 1.
//!
//! It runs before the rest of the node starts, on the node's network: until
//! it is done, the network's inbound events are read here, snapshot
//! queries answered and everything else dropped (a node whose state is the
//! genesis's has nothing to say to consensus or gossip yet), so the rest of
//! the start sees an ordinary data dir whose tip is H.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stele_state::State;
use stele_types::Address;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::join_progress::{JoinPhase, JoinProgress};
use super::{NodeError, NodeOptions};
use crate::metrics::{NodeMetrics, PeerGarbage};
use crate::net::{InboundQueues, InboundSync, Network};
use crate::snapshot::format::{Anchor, Manifest, chunk_limits};
use crate::snapshot::{check_anchor, check_chunk, decode_index};
use crate::sync::{SnapshotQuery, decode_snapshot_list, serve_snapshot};

/// How long to wait for a first peer.
const PEERS_WAIT: Duration = Duration::from_secs(5);
/// After the first peer, how long the other peers the node lists may take
/// to connect.
const PEERS_GRACE: Duration = Duration::from_secs(2);
/// How long a peer may take to answer one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Chunk requests in flight to one peer.
const IN_FLIGHT_PER_PEER: usize = 2;
/// Failed requests (not bad chunks) after which a peer is left out.
const PEER_FAILURES_MAX: u32 = 3;
/// Snapshot heights tried, newest first, before syncing blocks instead.
const HEIGHTS_TRIED_MAX: usize = 4;

/// The folder an unfinished download keeps its checked chunks in, each
/// named by its Keccak-256 (the manifest's chunk hash).
pub fn download_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshot-sync")
}

/// Where a downloaded chunk of hash `hash` is kept.
pub fn downloaded_chunk(dir: &Path, hash: &stele_types::Hash) -> PathBuf {
    dir.join(hex::encode(hash.0))
}

/// What the join by snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The state is now that of this height.
    At(u64),
    /// No peer offered a snapshot: block sync from the genesis.
    NoSnapshot,
}

/// Serves snapshot queries from `snapshots` and drops every other inbound
/// event, until `stop` fires; gives `inbound` back then.
async fn answer_only_snapshots(
    mut inbound: InboundQueues,
    snapshots: PathBuf,
    mut stop: oneshot::Receiver<()>,
) -> InboundQueues {
    loop {
        let InboundSync {
            request, respond, ..
        } = tokio::select! {
            _ = &mut stop => return inbound,
            req = inbound.sync.recv() => match req {
                Some(req) => req,
                None => return inbound,
            },
            event = inbound.events.recv() => match event {
                Some(_) => continue,
                None => return inbound,
            },
        };
        if let Some(query) = SnapshotQuery::decode(&request) {
            // One at a time: a node still at the genesis state rarely
            // keeps snapshots, and its peers' queries must not pile up.
            let dir = snapshots.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(bytes) = serve_snapshot(&dir, query) {
                    respond.respond(bytes);
                }
            })
            .await;
        }
    }
}

/// What the join reports to: its progress (for `/status`) and the node's
/// metrics.
pub(super) struct Report<'a> {
    pub progress: &'a JoinProgress,
    pub metrics: &'a NodeMetrics,
}

/// Joins by snapshot if a peer offers one (`state` holds only the
/// genesis); see the module docs. Gives the network's inbound events back
/// for the node.
pub(super) async fn join(
    opts: &NodeOptions,
    state: &mut State,
    net: &Network,
    inbound: InboundQueues,
    report: &Report<'_>,
) -> (Result<Joined, NodeError>, InboundQueues) {
    let snapshots = super::snapshots::snapshots_dir(&opts.data_dir);
    let (stop, stopped) = oneshot::channel();
    let answering = tokio::spawn(answer_only_snapshots(inbound, snapshots, stopped));
    report.progress.set_phase(JoinPhase::Finding);
    let result = fetch_and_import(opts, state, net, report).await;
    report.progress.set_phase(match result {
        Ok(Joined::At(height)) => {
            report.metrics.snapshot_sync_height.set(height as i64);
            JoinPhase::Joined
        }
        _ => JoinPhase::NoSnapshot,
    });
    let _ = stop.send(());
    match answering.await {
        Ok(inbound) => (result, inbound),
        // The task cannot panic (it only forwards); give a closed channel.
        Err(_) => (
            result,
            InboundQueues {
                events: mpsc::channel(1).1,
                sync: mpsc::channel(1).1,
            },
        ),
    }
}

async fn fetch_and_import(
    opts: &NodeOptions,
    state: &mut State,
    net: &Network,
    report: &Report<'_>,
) -> Result<Joined, NodeError> {
    let peers = connected_peers(net, opts.peers.len()).await;
    if peers.is_empty() {
        info!("no peer connected: no snapshot to join by; syncing blocks from the genesis");
        return Ok(Joined::NoSnapshot);
    }
    let offers = ask_offers(net, &peers).await;
    if offers.is_empty() {
        info!(
            peers = peers.len(),
            "no peer keeps a snapshot; syncing blocks from the genesis"
        );
        return Ok(Joined::NoSnapshot);
    }
    // Newest first. A peer can name any height. One that fails to give
    // the index of a height it named, or sends bytes that do not check, is
    // left out of the rest of the join, so the heights only it named cost
    // nothing more; a height whose chunks cannot all be had from honest
    // peers costs an attempt, not the join.
    let mut excluded: BTreeSet<Address> = BTreeSet::new();
    let mut tried = 0;
    for (&height, offering) in offers.iter().rev() {
        if tried == HEIGHTS_TRIED_MAX {
            break;
        }
        let offering: Vec<Address> = offering.difference(&excluded).copied().collect();
        if offering.is_empty() {
            continue;
        }
        info!(height, peers = offering.len(), "joining by snapshot");
        report.progress.set_phase(JoinPhase::Finding);
        let asked = offering.clone();
        match join_at(opts, state, net, height, offering, &mut excluded, report).await {
            Ok(()) => return Ok(Joined::At(height)),
            Err(e) => {
                warn!(height, error = %e, "could not join by this snapshot");
                if !asked.iter().all(|p| excluded.contains(p)) {
                    tried += 1;
                }
            }
        }
    }
    info!("no snapshot offered could be had; syncing blocks from the genesis");
    Ok(Joined::NoSnapshot)
}

/// Fetches and imports the snapshot of `height` from `offering`. On an
/// error the state is still the genesis's.
async fn join_at(
    opts: &NodeOptions,
    state: &mut State,
    net: &Network,
    height: u64,
    mut offering: Vec<Address>,
    excluded: &mut BTreeSet<Address>,
    report: &Report<'_>,
) -> Result<(), NodeError> {
    let (manifest, anchor) =
        fetch_index(opts, net, height, &mut offering, excluded, report).await?;
    let dir = download_dir(&opts.data_dir);
    std::fs::create_dir_all(&dir).map_err(|source| NodeError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    fetch_chunks(opts, net, &manifest, &dir, offering, excluded, report).await?;
    report.progress.set_phase(JoinPhase::Importing);
    state.reset()?;
    let imported =
        crate::snapshot::import_parts(state, &opts.genesis, &manifest, &anchor, |_, part| {
            Ok(std::fs::read(downloaded_chunk(&dir, &part.chunk_hash))?)
        });
    if let Err(e) = imported {
        // Back to the genesis state, as before the attempt.
        state.reset()?;
        state.commit(0, &opts.genesis.writes())?;
        return Err(NodeError::SnapshotSync(e.to_string()));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The peers connected within [`PEERS_WAIT`], and those that follow
/// within [`PEERS_GRACE`] (no wait once all `listed` are).
async fn connected_peers(net: &Network, listed: usize) -> Vec<Address> {
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    loop {
        let peers = net.connected_peers();
        if !peers.is_empty() {
            let at = *first.get_or_insert_with(Instant::now);
            if peers.len() >= listed || at.elapsed() >= PEERS_GRACE {
                return peers;
            }
        } else if started.elapsed() >= PEERS_WAIT {
            return peers;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which peers keep which snapshot heights.
async fn ask_offers(net: &Network, peers: &[Address]) -> BTreeMap<u64, BTreeSet<Address>> {
    let query = SnapshotQuery::List.encode();
    let mut asks = JoinSet::new();
    for peer in peers {
        let (net, query, peer) = (net.clone(), query.clone(), *peer);
        asks.spawn(async move {
            let answer = tokio::time::timeout(QUERY_TIMEOUT, net.request(&peer, &query)).await;
            (peer, answer)
        });
    }
    let mut offers: BTreeMap<u64, BTreeSet<Address>> = BTreeMap::new();
    while let Some(Ok((peer, answer))) = asks.join_next().await {
        match answer {
            Ok(Ok(bytes)) => match decode_snapshot_list(&bytes) {
                Some(heights) => {
                    for h in heights {
                        offers.entry(h).or_default().insert(peer);
                    }
                }
                None => debug!(%peer, "undecodable snapshot list"),
            },
            Ok(Err(e)) => debug!(%peer, error = %e, "no snapshot list"),
            Err(_) => debug!(%peer, "snapshot list timed out"),
        }
    }
    offers
}

/// The index of `height` from the first peer of `offering` whose index
/// checks; peers that do not give one that checks are dropped from
/// `offering` and added to `excluded`.
async fn fetch_index(
    opts: &NodeOptions,
    net: &Network,
    height: u64,
    offering: &mut Vec<Address>,
    excluded: &mut BTreeSet<Address>,
    report: &Report<'_>,
) -> Result<(Manifest, Anchor), NodeError> {
    let query = SnapshotQuery::Index { height }.encode();
    while let Some(peer) = offering.first().copied() {
        let answer = tokio::time::timeout(QUERY_TIMEOUT, net.request(&peer, &query)).await;
        // Bytes that came but do not check are the peer's lie, not a
        // failure on the way.
        let mut lied = false;
        let checked = match answer {
            Ok(Ok(bytes)) => match crate::sync::decode_snapshot_item(&bytes) {
                Some(index) => decode_index(index)
                    .map_err(|e| e.to_string())
                    .and_then(|(m, a)| {
                        check_anchor(&opts.genesis, &m, &a).map_err(|e| e.to_string())?;
                        stele_types::snapshot::Cut {
                            parts: m.parts.iter().map(|p| p.part).collect(),
                        }
                        .verify(&m.state_root)
                        .map_err(|e| e.to_string())?;
                        if m.height != height {
                            return Err(format!("an index of height {}", m.height));
                        }
                        Ok((m, a))
                    })
                    .inspect_err(|_| lied = true),
                None => Err("it does not keep that snapshot".into()),
            },
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        };
        match checked {
            Ok(found) => return Ok(found),
            Err(reason) => {
                warn!(%peer, height, %reason, "snapshot index refused; asking another peer");
                if lied {
                    report
                        .metrics
                        .record_peer_garbage(PeerGarbage::SnapshotInvalid);
                }
                excluded.insert(peer);
                offering.remove(0);
            }
        }
    }
    Err(NodeError::SnapshotSync(format!(
        "no peer gave a snapshot index of height {height} that checks"
    )))
}

/// Fetches every chunk of `manifest` not yet in `dir`, checking each, in
/// parallel from the peers of `offering`.
async fn fetch_chunks(
    opts: &NodeOptions,
    net: &Network,
    manifest: &Manifest,
    dir: &Path,
    offering: Vec<Address>,
    excluded: &mut BTreeSet<Address>,
    report: &Report<'_>,
) -> Result<(), NodeError> {
    let limits = chunk_limits();
    let value_bytes_max = opts.state.value_bytes_max;
    let total = manifest.parts.len();
    // Chunks a previous run kept are checked again and kept.
    let mut missing: VecDeque<usize> = VecDeque::new();
    let mut resumed = 0;
    for (index, part) in manifest.parts.iter().enumerate() {
        let kept = std::fs::read(downloaded_chunk(dir, &part.chunk_hash))
            .ok()
            .is_some_and(|bytes| check_chunk(part, &bytes, &limits, value_bytes_max).is_ok());
        if kept {
            resumed += 1;
        } else {
            missing.push_back(index);
        }
    }
    if resumed > 0 {
        info!(resumed, total, "resuming a snapshot download");
    }
    report
        .progress
        .attempt(manifest.height, total as u64, resumed as u64);
    let height = manifest.height;
    let mut peers: BTreeMap<Address, (usize, u32)> =
        offering.into_iter().map(|p| (p, (0, 0))).collect();
    let mut in_flight = JoinSet::new();
    let mut done = resumed;
    let mut last_log = Instant::now();
    while done < total {
        // Hand out chunks to peers with room.
        let free: Vec<Address> = peers
            .iter()
            .filter(|(_, (busy, _))| *busy < IN_FLIGHT_PER_PEER)
            .map(|(p, _)| *p)
            .collect();
        for peer in free {
            let Some(index) = missing.pop_front() else {
                break;
            };
            if let Some(slot) = peers.get_mut(&peer) {
                slot.0 += 1;
            }
            let (net, query) = (
                net.clone(),
                SnapshotQuery::Chunk {
                    height,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                }
                .encode(),
            );
            in_flight.spawn(async move {
                let answer = tokio::time::timeout(QUERY_TIMEOUT, net.request(&peer, &query)).await;
                (peer, index, answer)
            });
        }
        let Some(Ok((peer, index, answer))) = in_flight.join_next().await else {
            return Err(NodeError::SnapshotSync(format!(
                "no peer left to fetch the snapshot of height {height} from ({done} of {total} chunks)"
            )));
        };
        let Some(slot) = peers.get_mut(&peer) else {
            missing.push_back(index);
            continue;
        };
        slot.0 = slot.0.saturating_sub(1);
        let bytes = match answer {
            Ok(Ok(bytes)) => bytes,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                debug!(%peer, index, %reason, "chunk request failed");
                slot.1 += 1;
                if slot.1 >= PEER_FAILURES_MAX {
                    warn!(%peer, "leaving out a peer whose chunk requests keep failing");
                    peers.remove(&peer);
                }
                missing.push_back(index);
                continue;
            }
        };
        // (whether the peer sent bytes that do not check, why refused)
        let checked = match crate::sync::decode_snapshot_item(&bytes) {
            None => Err((false, "it no longer keeps that snapshot".to_string())),
            Some(chunk) => check_chunk(&manifest.parts[index], chunk, &limits, value_bytes_max)
                .map(|_| chunk.to_vec())
                .map_err(|reason| (true, reason)),
        };
        match checked {
            Ok(chunk) => {
                let path = downloaded_chunk(dir, &manifest.parts[index].chunk_hash);
                let aside = path.with_extension("partial");
                std::fs::write(&aside, &chunk)
                    .and_then(|()| std::fs::rename(&aside, &path))
                    .map_err(|source| NodeError::CreateDir {
                        path: path.clone(),
                        source,
                    })?;
                done += 1;
                report.progress.fetched(chunk.len());
                report.metrics.snapshot_sync_chunks_fetched.inc();
                report
                    .metrics
                    .snapshot_sync_chunk_bytes_fetched
                    .inc_by(chunk.len() as u64);
                if last_log.elapsed() > Duration::from_secs(2) {
                    info!(height, done, total, "fetching the snapshot");
                    last_log = Instant::now();
                }
            }
            Err((false, reason)) => {
                debug!(%peer, index, %reason, "leaving out a peer without the snapshot");
                peers.remove(&peer);
                missing.push_back(index);
            }
            Err((true, reason)) => {
                warn!(%peer, index, %reason, "a peer sent a bad snapshot chunk; leaving it out");
                report.progress.refused();
                report.metrics.snapshot_sync_chunks_refused.inc();
                report
                    .metrics
                    .record_peer_garbage(PeerGarbage::SnapshotInvalid);
                excluded.insert(peer);
                peers.remove(&peer);
                missing.push_back(index);
            }
        }
    }
    Ok(())
}
