//! Connections: accepting validators in handshake slots, dialling those
//! with a higher address with backoff, registering an authenticated
//! connection and noticing its close.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use quinn::{Connection, VarInt};
use stele_types::Address;
use tokio::sync::mpsc;

use super::streams::writer;
use super::{Inbound, Network, PeerHandle, PeerInfo, lock};
use crate::net::admission::{Refusal, Slot};
use crate::net::frame::{Channel, code};
use crate::net::handshake::{self, HandshakeError};
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
            let peer =
                handshake::accept(&conn, &inner.key, inner.chain_id, &inner.validators).await;
            Ok::<_, HandshakeError>((conn, peer))
        })
        .await;
        match result {
            Ok(Ok((conn, Ok(peer)))) => self.register(peer, conn),
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
            match self.dial(&peer).await {
                Ok(conn) => {
                    backoff = config.reconnect_backoff_min;
                    self.register(peer.address, conn);
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

    async fn dial(&self, peer: &PeerInfo) -> Result<Connection, HandshakeError> {
        let inner = &self.inner;
        let attempt = async {
            let conn = inner
                .endpoint
                .connect(peer.socket, tls::SERVER_NAME)
                .map_err(|e| HandshakeError::Connection(e.to_string()))?
                .await
                .map_err(|e| HandshakeError::Connection(e.to_string()))?;
            match handshake::dial(
                &conn,
                &inner.key,
                inner.chain_id,
                &inner.validators,
                &peer.address,
            )
            .await
            {
                Ok(_) => Ok(conn),
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
    /// starts its reader and writer tasks.
    fn register(&self, peer: Address, conn: Connection) {
        if self.is_shut_down() {
            conn.close(VarInt::from_u32(code::SHUTDOWN), b"shutdown");
            return;
        }
        let config = &self.inner.config;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let (consensus_tx, consensus_rx) = mpsc::channel(config.consensus_queue_max);
        let (gossip_tx, gossip_rx) = mpsc::channel(config.gossip_queue_max);
        let old = self.peers().insert(
            peer,
            PeerHandle {
                conn: conn.clone(),
                generation,
                consensus: consensus_tx,
                gossip: gossip_tx,
            },
        );
        match old {
            Some(old) => old
                .conn
                .close(VarInt::from_u32(code::REPLACED), b"replaced"),
            None => {
                self.inner
                    .metrics
                    .peers_connected
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        tracing::info!(%peer, remote = %conn.remote_address(), "validator connected");
        let _ = self.inner.inbound.try_send(Inbound::PeerConnected(peer));
        tokio::spawn(writer(
            self.clone(),
            conn.clone(),
            Channel::Consensus,
            consensus_rx,
        ));
        tokio::spawn(writer(
            self.clone(),
            conn.clone(),
            Channel::Gossip,
            gossip_rx,
        ));
        tokio::spawn(self.clone().uni_acceptor(peer, conn.clone()));
        tokio::spawn(self.clone().sync_server(peer, conn.clone()));
        tokio::spawn(self.clone().watch_close(peer, conn, generation));
    }

    async fn watch_close(self, peer: Address, conn: Connection, generation: u64) {
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
        if removed {
            self.inner
                .metrics
                .peers_connected
                .fetch_sub(1, Ordering::Relaxed);
            tracing::info!(%peer, %reason, "validator disconnected");
            let _ = self.inner.inbound.try_send(Inbound::PeerDisconnected(peer));
        }
    }
}
