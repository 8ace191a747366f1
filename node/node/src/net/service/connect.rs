//! Connections: accepting peers in handshake slots (followers only while
//! a follower slot is free), dialling with backoff, registering an
//! authenticated connection and noticing its close.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use quinn::{Connection, VarInt};
use stele_types::Address;
use tokio::sync::mpsc;

use super::streams::writer;
use super::{Inbound, Network, PeerHandle, PeerInfo, lock};
use crate::net::admission::{Refusal, Slot, source_of};
use crate::net::config::NetConfig;
use crate::net::frame::{Channel, code};
use crate::net::handshake::{self, HandshakeError, PeerKind};
use crate::net::metrics::NetMetrics;
use crate::net::tls;

impl Network {
    /// Gives each inbound attempt a handshake slot or refuses it at once
    /// (module `admission`): under load, unvalidated sources get a Retry
    /// first; a source over its share, or a full table, is refused.
    pub(super) async fn accept_loop(self) {
        let inner = &self.inner;
        while let Some(incoming) = inner.endpoint.accept().await {
            let remote = incoming.remote_address();
            let needs_retry = !incoming.remote_address_validated() && incoming.may_retry();
            match inner.admission.admit(remote.ip(), needs_retry) {
                Ok(slot) => {
                    tokio::spawn(self.clone().accept_one(incoming, slot));
                }
                Err(Refusal::RetryFirst) => {
                    inner.metrics.record_refusal(Refusal::RetryFirst);
                    if let Err(e) = incoming.retry() {
                        e.into_incoming().ignore();
                    }
                }
                Err(reason) => {
                    inner.metrics.record_refusal(reason);
                    incoming.refuse();
                    let why = match reason {
                        Refusal::SourceBusy => "too many handshakes from this source",
                        _ => "too many handshakes in flight",
                    };
                    self.log_refusal(remote, &why);
                }
            }
        }
    }

    /// Runs one inbound handshake in its slot, within the handshake timeout.
    async fn accept_one(self, incoming: quinn::Incoming, slot: Slot) {
        let _slot = slot;
        let remote = incoming.remote_address();
        let inner = &self.inner;
        let result = tokio::time::timeout(inner.config.handshake_timeout, async {
            let conn = incoming
                .await
                .map_err(|e| HandshakeError::Connection(e.to_string()))?;
            let take_follower = |peer: &Address| self.has_follower_room(peer, remote);
            let set = self.validator_set();
            let peer =
                handshake::accept(&conn, &inner.key, inner.chain_id, &set, &take_follower).await;
            Ok::<_, HandshakeError>((conn, peer))
        })
        .await;
        match result {
            Ok(Ok((conn, Ok((peer, kind))))) => self.register(peer, kind, conn),
            Ok(Ok((conn, Err(e @ HandshakeError::FollowerRefused(_))))) => {
                inner
                    .metrics
                    .followers_refused
                    .fetch_add(1, Ordering::Relaxed);
                self.refuse(&conn, &e);
            }
            Ok(Ok((conn, Err(e)))) => self.refuse(&conn, &e),
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "inbound connection failed");
            }
            // Dropping the connection closes it and frees the slot.
            Err(_) => {
                inner
                    .metrics
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.log_refusal(remote, &HandshakeError::Timeout);
            }
        }
    }

    /// Logs a refused connection, at most once per source per
    /// `refusal_log_interval` (every refusal is counted in the metrics).
    fn log_refusal(&self, remote: SocketAddr, reason: &dyn Display) {
        let logged = lock(&self.inner.refusals).refused(remote.ip(), Instant::now());
        if let Some(unlogged) = logged {
            tracing::warn!(
                %remote,
                %reason,
                unlogged,
                interval_secs = self.inner.config.refusal_log_interval.as_secs(),
                "refused peer connection (logged once per source per interval; `unlogged` more since the last line)"
            );
        }
    }

    /// Whether a follower `peer` connecting from `remote` may connect: on
    /// the allow list if there is one, and a follower slot free, in total
    /// and for its source (or it holds one already, and is reconnecting).
    fn has_follower_room(&self, peer: &Address, remote: SocketAddr) -> bool {
        let config = &self.inner.config;
        if !config.followers_allowed.is_empty() && !config.followers_allowed.contains(peer) {
            return false;
        }
        let peers = self.peers();
        peers.contains_key(peer) || follower_room(&peers, config, remote)
    }

    fn refuse(&self, conn: &Connection, e: &HandshakeError) {
        self.log_refusal(conn.remote_address(), e);
        self.inner
            .metrics
            .handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        conn.close(
            VarInt::from_u32(code::HANDSHAKE_FAILED),
            b"handshake failed",
        );
    }

    pub(super) async fn dial_loop(self, peer: PeerInfo) {
        let config = self.inner.config.clone();
        let mut backoff = config.reconnect_backoff_min;
        let mut shutdown = self.inner.shutdown.subscribe();
        while !self.is_shut_down() {
            // A connection already closed (reset by the restarted peer,
            // say) may still be in the map until its watcher removes it;
            // redial at once rather than wait on it.
            let existing = self
                .peers()
                .get(&peer.address)
                .map(|p| p.conn.clone())
                .filter(|c| c.close_reason().is_none());
            if let Some(conn) = existing {
                tokio::select! {
                    _ = conn.closed() => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            match self.dial_after(&peer.address) {
                None => {
                    // The other side dials (or nobody does) under this
                    // set: wait for the set to change.
                    let changed = self.inner.set_changed.notified();
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(config.reconnect_backoff_max) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
                Some(delay) if !delay.is_zero() => {
                    // Give the side that dials first its chance, then look
                    // again.
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                    let connected = self
                        .peers()
                        .get(&peer.address)
                        .is_some_and(|p| p.conn.close_reason().is_none());
                    if connected {
                        continue;
                    }
                }
                Some(_) => {}
            }
            match self.dial(&peer).await {
                Ok((conn, kind)) => {
                    backoff = config.reconnect_backoff_min;
                    self.register(peer.address, kind, conn);
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.address, error = %e, "dial failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(config.reconnect_backoff_max);
                }
            }
        }
    }

    async fn dial(&self, peer: &PeerInfo) -> Result<(Connection, PeerKind), HandshakeError> {
        let inner = &self.inner;
        let attempt = async {
            let conn = inner
                .endpoint
                .connect(peer.socket, tls::SERVER_NAME)
                .map_err(|e| HandshakeError::Connection(e.to_string()))?
                .await
                .map_err(|e| HandshakeError::Connection(e.to_string()))?;
            let set = self.validator_set();
            match handshake::dial(&conn, &inner.key, inner.chain_id, &set, &peer.address).await {
                Ok((_, kind)) => Ok((conn, kind)),
                Err(e) => {
                    self.refuse(&conn, &e);
                    Err(e)
                }
            }
        };
        tokio::time::timeout(inner.config.handshake_timeout, attempt)
            .await
            .map_err(|_| HandshakeError::Timeout)?
    }

    /// Makes `conn` the connection to `peer`, replacing any older one, and
    /// starts its reader and writer tasks. A follower beyond
    /// `followers_max` (handshakes that raced for the last slot) is closed
    /// instead.
    fn register(&self, peer: Address, kind: PeerKind, conn: Connection) {
        if self.is_shut_down() {
            conn.close(VarInt::from_u32(code::SHUTDOWN), b"shutdown");
            return;
        }
        let config = &self.inner.config;
        let metrics = &self.inner.metrics;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let (consensus_tx, consensus_rx) = mpsc::channel(config.consensus_queue_max);
        let (gossip_tx, gossip_rx) = mpsc::channel(config.gossip_queue_max);
        let (blocks_tx, blocks_rx) = mpsc::channel(config.blocks_queue_max.max(1));
        let old = {
            let mut peers = self.peers();
            if kind == PeerKind::Follower
                && !peers.contains_key(&peer)
                && !follower_room(&peers, config, conn.remote_address())
            {
                drop(peers);
                metrics.followers_refused.fetch_add(1, Ordering::Relaxed);
                conn.close(
                    VarInt::from_u32(code::FOLLOWERS_FULL),
                    b"no follower slot free",
                );
                return;
            }
            peers.insert(
                peer,
                PeerHandle {
                    conn: conn.clone(),
                    kind,
                    generation,
                    consensus: consensus_tx,
                    gossip: gossip_tx,
                    blocks: blocks_tx,
                },
            )
        };
        match old {
            Some(old) => {
                old.conn
                    .close(VarInt::from_u32(code::REPLACED), b"replaced");
                // A key is a validator's or not for good; the gauges
                // stay right.
            }
            None => {
                connected_gauge(metrics, kind).fetch_add(1, Ordering::Relaxed);
            }
        }
        match kind {
            PeerKind::Validator => {
                tracing::info!(%peer, remote = %conn.remote_address(), "validator connected");
                let _ = self.inner.inbound.try_send(Inbound::PeerConnected(peer));
            }
            PeerKind::Follower => {
                tracing::info!(%peer, remote = %conn.remote_address(), "follower connected");
            }
        }
        for (channel, rx) in [
            (Channel::Consensus, consensus_rx),
            (Channel::Gossip, gossip_rx),
            (Channel::Blocks, blocks_rx),
        ] {
            tokio::spawn(writer(self.clone(), conn.clone(), channel, rx));
        }
        tokio::spawn(self.clone().uni_acceptor(peer, kind, conn.clone()));
        tokio::spawn(self.clone().sync_server(peer, conn.clone()));
        tokio::spawn(self.clone().watch_close(peer, kind, conn, generation));
    }

    async fn watch_close(self, peer: Address, kind: PeerKind, conn: Connection, generation: u64) {
        let reason = conn.closed().await;
        let removed = {
            let mut peers = self.peers();
            if peers.get(&peer).is_some_and(|p| p.generation == generation) {
                peers.remove(&peer);
                true
            } else {
                false
            }
        };
        if !removed {
            return;
        }
        connected_gauge(&self.inner.metrics, kind).fetch_sub(1, Ordering::Relaxed);
        match kind {
            PeerKind::Validator => {
                tracing::info!(%peer, %reason, "validator disconnected");
                let _ = self.inner.inbound.try_send(Inbound::PeerDisconnected(peer));
            }
            PeerKind::Follower => {
                tracing::info!(%peer, %reason, "follower disconnected");
                // Any key can be a follower's: its allowances go with its
                // connection, so keys that come and go leave nothing behind
                // (its slot bounds what one connection can take).
                self.forget_allowances(&peer);
            }
        }
    }

    /// Drops a peer's rate, queued-bytes and sync allowances.
    fn forget_allowances(&self, peer: &Address) {
        lock(&self.inner.buckets).retain(|(p, _), _| p != peer);
        lock(&self.inner.queued).retain(|(p, _), _| p != peer);
        lock(&self.inner.sync_budgets).remove(peer);
    }
}

/// Whether `peers` leave room for one more follower from `remote`: fewer
/// than `followers_max` in all, and fewer than `followers_per_source_max`
/// from its source (an IPv4 address or IPv6 /64), so one host cannot take
/// every slot with keys of its own.
fn follower_room(
    peers: &BTreeMap<Address, PeerHandle>,
    config: &NetConfig,
    remote: SocketAddr,
) -> bool {
    let source = source_of(remote.ip());
    let (all, same_source) = peers
        .values()
        .filter(|p| p.kind == PeerKind::Follower)
        .fold((0, 0), |(all, same), p| {
            let same_source = source_of(p.conn.remote_address().ip()) == source;
            (all + 1, same + usize::from(same_source))
        });
    all < config.followers_max && same_source < config.followers_per_source_max
}

/// The gauge of connected peers of `kind`.
fn connected_gauge(metrics: &NetMetrics, kind: PeerKind) -> &AtomicU64 {
    match kind {
        PeerKind::Validator => &metrics.peers_connected,
        PeerKind::Follower => &metrics.followers_connected,
    }
}
