//! The running transport: a QUIC endpoint, one authenticated connection per
//! validator, bounded outbound queues, and inbound delivery to the node.
//!
//! Connection rule: of two validators, the one with the lower address dials
//! and keeps redialling with exponential backoff; the other only accepts. A
//! new authenticated connection from a peer replaces the old one (the peer
//! restarted). A restarted listener is found out by its dialer at the next
//! packet on the old connection: the endpoint's stateless-reset key is
//! derived from the validator key, so the new process can reset the old
//! process's connections, and the dialer redials at once instead of waiting
//! for the idle timeout.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};
use stele_types::{Address, SecretKey, ValidatorSet, keccak256_parts};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot, watch};

use super::admission::{Admission, Refusal, RefusalLog, Slot};
use super::config::NetConfig;
use super::frame::{
    Channel, ReadError, code, read_frame, read_frame_body, read_frame_len, write_frame,
    write_frames,
};
use super::handshake::{self, HandshakeError};
use super::metrics::{DropReason, NetMetrics};
use super::rate::{SyncBudget, TokenBucket};
use super::tls;
use crate::log_limit::LogLimit;

/// A validator's network address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: Address,
    pub socket: SocketAddr,
}

/// What the transport delivers to the node.
#[derive(Debug)]
pub enum Inbound {
    /// A consensus or gossip message from an authenticated validator.
    Message {
        from: Address,
        channel: Channel,
        payload: Vec<u8>,
        /// The payload's room in the sender's queued-bytes budget; keep it
        /// with the payload until the node has taken the message in.
        charge: InboundCharge,
    },
    /// A block-sync request; answer through `respond`.
    SyncRequest {
        from: Address,
        request: Vec<u8>,
        respond: SyncResponder,
    },
    PeerConnected(Address),
    PeerDisconnected(Address),
}

/// The room a received message takes in its sender's queued-bytes budget
/// (`NetConfig::peer_consensus_queued_bytes_max`, `..._gossip_...`); the
/// room is given back when this is dropped. While a peer's budget is used
/// up, its reader on that channel waits, and QUIC flow control holds the
/// peer back.
#[derive(Debug, Default)]
pub struct InboundCharge {
    /// Held only to be given back when dropped.
    _permit: Option<OwnedSemaphorePermit>,
}

impl InboundCharge {
    /// A charge against no budget (for messages made up outside the
    /// transport, as in tests).
    pub fn none() -> Self {
        InboundCharge { _permit: None }
    }
}

/// Answers one block-sync request. Dropping it without answering closes the
/// request stream.
#[derive(Debug)]
pub struct SyncResponder(oneshot::Sender<Vec<u8>>);

impl SyncResponder {
    pub fn respond(self, response: Vec<u8>) {
        // The requester may have given up; nothing to do then.
        let _ = self.0.send(response);
    }
}

/// Transport failures the node sees.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetError {
    #[error("cannot start the transport: {0}")]
    Setup(String),
    #[error("not connected to {0}")]
    NotConnected(Address),
    #[error("sync request to {peer} failed: {reason}")]
    Request { peer: Address, reason: String },
    #[error("sync request to {0} timed out")]
    Timeout(Address),
}

type Payload = Arc<[u8]>;

/// A writer takes queued messages into one stream write up to about this
/// many bytes.
const WRITE_BATCH_BYTES_MAX: usize = 256 << 10;

struct PeerHandle {
    conn: Connection,
    generation: u64,
    consensus: mpsc::Sender<Payload>,
    gossip: mpsc::Sender<Payload>,
}

struct Inner {
    config: NetConfig,
    key: SecretKey,
    me: Address,
    chain_id: u64,
    validators: ValidatorSet,
    endpoint: Endpoint,
    peers: Mutex<BTreeMap<Address, PeerHandle>>,
    generation: AtomicU64,
    admission: Admission,
    refusals: Mutex<RefusalLog>,
    /// Inbound allowance per (validator, channel), shared by all of the
    /// validator's streams and connections, so opening streams or
    /// reconnecting does not refill it (ADR 0005). At most two entries per
    /// validator: only authenticated peers get one.
    buckets: Mutex<BTreeMap<(Address, Channel), TokenBucket>>,
    /// Queued inbound bytes per (validator, channel): permits are bytes,
    /// taken before a frame's body is read and given back when the node
    /// drops the message's [`InboundCharge`]. Keyed like `buckets`.
    queued: Mutex<BTreeMap<(Address, Channel), Arc<Semaphore>>>,
    /// Block-sync serving allowance per validator, keyed like `buckets`.
    sync_budgets: Mutex<BTreeMap<Address, SyncBudget>>,
    /// Oversized frames are logged once per peer and channel per
    /// `refusal_log_interval`: a peer can open streams and send a length
    /// prefix over the limit as fast as it likes.
    oversized_log: Mutex<LogLimit<(Address, Channel)>>,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<NetMetrics>,
    shutdown: watch::Sender<bool>,
}

/// Handle to the running transport; cheap to clone.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("me", &self.inner.me)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whose data stays consistent through a panic (every update
/// is a single insert, remove or counter change).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Endpoint settings that survive a restart: the stateless-reset key and
/// the key of the connection-ID generator, both derived from the validator
/// key. A new process of the same validator then recognises the connection
/// IDs its earlier process gave out (a packet for an unknown one is
/// answered only if it passes the generator's check) and answers with the
/// reset tokens that process promised (RFC 9000 §10.3: "static key"). A
/// dialer still holding a connection to the earlier process gets a reset at
/// its next packet and redials at once. Only the holder of the validator
/// key can derive these, so nobody else can reset connections to us.
fn endpoint_config(key: &SecretKey, chain_id: u64) -> quinn::EndpointConfig {
    let secret = key.to_bytes();
    let derive = |purpose: &[u8]| {
        keccak256_parts(&[
            b"STELE/v1/quic-endpoint\0",
            purpose,
            &chain_id.to_le_bytes(),
            &secret,
        ])
    };
    let reset = derive(b"stateless-reset");
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &reset.0,
    )));
    let cid = derive(b"connection-id");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&cid.0[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

fn transport(config: &NetConfig) -> Result<Arc<TransportConfig>, NetError> {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(config.sync_streams_max + 1));
    t.max_concurrent_uni_streams(VarInt::from_u32(8));
    t.receive_window(VarInt::from_u32(config.conn_receive_window_bytes));
    t.stream_receive_window(VarInt::from_u32(config.stream_receive_window_bytes));
    t.send_window(config.send_window_bytes);
    t.keep_alive_interval(Some(config.keep_alive));
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(config.idle_timeout).map_err(|e| NetError::Setup(e.to_string()))?,
    ));
    Ok(Arc::new(t))
}

impl Network {
    /// Binds `listen`, starts accepting validators and dialling `peers`
    /// (those with a higher address than ours), and returns the handle and
    /// the stream of inbound events. Must run inside a tokio runtime.
    pub fn start(
        config: NetConfig,
        key: SecretKey,
        chain_id: u64,
        validators: ValidatorSet,
        listen: SocketAddr,
        peers: Vec<PeerInfo>,
    ) -> Result<(Network, mpsc::Receiver<Inbound>), NetError> {
        let socket = std::net::UdpSocket::bind(listen)
            .map_err(|e| NetError::Setup(format!("cannot bind {listen}: {e}")))?;
        Self::start_on(config, key, chain_id, validators, socket, peers)
    }

    /// As [`start`](Self::start), on an already bound UDP socket.
    pub fn start_on(
        config: NetConfig,
        key: SecretKey,
        chain_id: u64,
        validators: ValidatorSet,
        socket: std::net::UdpSocket,
        peers: Vec<PeerInfo>,
    ) -> Result<(Network, mpsc::Receiver<Inbound>), NetError> {
        let setup = NetError::Setup;
        let sock = socket2::SockRef::from(&socket);
        // Best effort: a smaller buffer than asked only costs drops.
        if let Err(e) = sock.set_recv_buffer_size(config.udp_socket_buffer_bytes) {
            tracing::debug!(error = %e, "cannot size the UDP receive buffer");
        }
        if let Err(e) = sock.set_send_buffer_size(config.udp_socket_buffer_bytes) {
            tracing::debug!(error = %e, "cannot size the UDP send buffer");
        }
        let transport = transport(&config)?;
        let server_tls = QuicServerConfig::try_from(tls::server_config().map_err(setup)?)
            .map_err(|e| NetError::Setup(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
        server.transport_config(transport.clone());
        let client_tls = QuicClientConfig::try_from(tls::client_config().map_err(setup)?)
            .map_err(|e| NetError::Setup(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(client_tls));
        client.transport_config(transport);
        let mut endpoint = Endpoint::new(
            endpoint_config(&key, chain_id),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| NetError::Setup(e.to_string()))?;
        endpoint.set_default_client_config(client);

        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_max);
        let (shutdown, _) = watch::channel(false);
        let me = key.address();
        let admission = Admission::new(
            config.handshakes_max,
            config.handshakes_per_source_max,
            config.handshakes_retry_above,
            peers.iter().map(|p| p.socket.ip()),
        );
        let refusals = Mutex::new(RefusalLog::new(config.refusal_log_interval));
        let oversized_log = Mutex::new(LogLimit::new(
            config.refusal_log_interval,
            2 * validators.len(),
        ));
        let net = Network {
            inner: Arc::new(Inner {
                config,
                key,
                me,
                chain_id,
                validators,
                endpoint,
                peers: Mutex::new(BTreeMap::new()),
                generation: AtomicU64::new(0),
                admission,
                refusals,
                buckets: Mutex::new(BTreeMap::new()),
                queued: Mutex::new(BTreeMap::new()),
                sync_budgets: Mutex::new(BTreeMap::new()),
                oversized_log,
                inbound: inbound_tx,
                metrics: Arc::new(NetMetrics::default()),
                shutdown,
            }),
        };
        tokio::spawn(net.clone().accept_loop());
        for peer in peers {
            if peer.address > me {
                tokio::spawn(net.clone().dial_loop(peer));
            }
        }
        Ok((net, inbound_rx))
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.inner
            .endpoint
            .local_addr()
            .map_err(|e| NetError::Setup(e.to_string()))
    }

    pub fn metrics(&self) -> Arc<NetMetrics> {
        self.inner.metrics.clone()
    }

    /// Validators connected now, in address order.
    pub fn connected(&self) -> Vec<Address> {
        self.peers().keys().copied().collect()
    }

    /// Queues `payload` for `to` on `channel` (consensus or gossip). Never
    /// waits: if the peer is not connected or its queue is full, the message
    /// is dropped and counted.
    pub fn send(&self, to: &Address, channel: Channel, payload: Payload) {
        let peers = self.peers();
        match peers.get(to) {
            Some(peer) => self.enqueue(peer, channel, payload),
            None => self.inner.metrics.record_drop(DropReason::NotConnected),
        }
    }

    /// Queues `payload` for every connected validator.
    pub fn broadcast(&self, channel: Channel, payload: Payload) {
        let peers = self.peers();
        for peer in peers.values() {
            self.enqueue(peer, channel, payload.clone());
        }
    }

    fn enqueue(&self, peer: &PeerHandle, channel: Channel, payload: Payload) {
        let metrics = &self.inner.metrics;
        let queue = match channel {
            Channel::Consensus => &peer.consensus,
            Channel::Gossip => &peer.gossip,
            Channel::Sync => {
                debug_assert!(false, "sync goes through request()");
                return;
            }
        };
        if payload.len() > channel.frame_bytes_max(&self.inner.config) {
            metrics.record_drop(DropReason::Oversized);
            return;
        }
        if queue.try_send(payload).is_err() {
            metrics.record_drop(DropReason::QueueFull);
        }
    }

    /// Sends a block-sync request to `to` and waits for its response.
    pub async fn request(&self, to: &Address, request: &[u8]) -> Result<Vec<u8>, NetError> {
        let conn = self
            .peers()
            .get(to)
            .map(|p| p.conn.clone())
            .ok_or(NetError::NotConnected(*to))?;
        let peer = *to;
        let config = &self.inner.config;
        let fail = |reason: String| NetError::Request { peer, reason };
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| fail(e.to_string()))?;
            send.set_priority(Channel::Sync.priority()).ok();
            send.write_all(&[Channel::Sync as u8])
                .await
                .map_err(|e| fail(e.to_string()))?;
            write_frame(&mut send, request).await.map_err(fail)?;
            send.finish().map_err(|e| fail(e.to_string()))?;
            match read_frame(&mut recv, config.sync_response_bytes_max).await {
                Ok(response) => Ok(response),
                Err(ReadError::Oversized { len, max }) => {
                    self.inner.metrics.record_drop(DropReason::Oversized);
                    Err(fail(format!("response of {len} bytes over {max}")))
                }
                Err(ReadError::Finished) => Err(fail("peer closed the request".into())),
                Err(ReadError::Stream(e)) => Err(fail(e)),
            }
        };
        let response = tokio::time::timeout(config.sync_timeout, exchange)
            .await
            .map_err(|_| NetError::Timeout(peer))??;
        self.inner.metrics.inbound(Channel::Sync, response.len());
        Ok(response)
    }

    /// Closes every connection and stops accepting and dialling.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner
            .endpoint
            .close(VarInt::from_u32(code::SHUTDOWN), b"shutdown");
        self.peers().clear();
        self.inner.endpoint.wait_idle().await;
    }

    fn peers(&self) -> MutexGuard<'_, BTreeMap<Address, PeerHandle>> {
        lock(&self.inner.peers)
    }

    fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Gives each inbound attempt a handshake slot or refuses it at once
    /// (module `admission`): under load, unvalidated sources get a Retry
    /// first; a source over its share, or a full table, is refused.
    async fn accept_loop(self) {
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

    async fn dial_loop(self, peer: PeerInfo) {
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

    /// Accepts the peer's unidirectional channel streams.
    async fn uni_acceptor(self, peer: Address, conn: Connection) {
        while let Ok(mut recv) = conn.accept_uni().await {
            let net = self.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if recv.read_exact(&mut first).await.is_err() {
                    return;
                }
                match Channel::from_byte(first[0]) {
                    Some(ch @ (Channel::Consensus | Channel::Gossip)) => {
                        net.read_channel(peer, ch, recv).await;
                    }
                    _ => {
                        let _ = recv.stop(VarInt::from_u32(code::BAD_CHANNEL));
                    }
                }
            });
        }
    }

    async fn read_channel(&self, peer: Address, channel: Channel, mut recv: quinn::RecvStream) {
        let config = &self.inner.config;
        let metrics = &self.inner.metrics;
        let max = channel.frame_bytes_max(config);
        let queued = self.queued_budget(peer, channel);
        loop {
            let len = match read_frame_len(&mut recv, max).await {
                Ok(len) => len,
                Err(ReadError::Oversized { len, max }) => {
                    let logged =
                        lock(&self.inner.oversized_log).event((peer, channel), Instant::now());
                    if let Some(unlogged) = logged {
                        tracing::warn!(
                            %peer,
                            channel = channel.name(),
                            len,
                            max,
                            unlogged,
                            interval_secs = config.refusal_log_interval.as_secs(),
                            "oversized frame (logged once per peer and channel per interval; `unlogged` more since the last line)"
                        );
                    }
                    metrics.record_drop(DropReason::Oversized);
                    let _ = recv.stop(VarInt::from_u32(code::OVERSIZED_FRAME));
                    return;
                }
                Err(ReadError::Finished | ReadError::Stream(_)) => return,
            };
            // Room for the body before it is read: while the peer's queued
            // bytes are at the budget this waits, the stream's receive
            // window fills and QUIC stops the peer. `len` is at most the
            // frame maximum, which the budget is at least.
            let bytes = u32::try_from(len).unwrap_or(u32::MAX);
            let permit = match queued.clone().try_acquire_many_owned(bytes) {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => {
                    metrics.record_budget_wait(channel);
                    match queued.clone().acquire_many_owned(bytes).await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
                Err(TryAcquireError::Closed) => return,
            };
            let payload = match read_frame_body(&mut recv, len).await {
                Ok(payload) => payload,
                Err(_) => return,
            };
            if !self.take_token(peer, channel) {
                metrics.record_drop(DropReason::RateLimited);
                continue;
            }
            metrics.inbound(channel, payload.len());
            let msg = Inbound::Message {
                from: peer,
                channel,
                payload,
                charge: InboundCharge {
                    _permit: Some(permit),
                },
            };
            // Waiting here pushes back on the peer through QUIC flow
            // control instead of buffering without bound.
            if self.inner.inbound.send(msg).await.is_err() {
                return;
            }
        }
    }

    /// The peer's queued-bytes budget on `channel`, shared by all its
    /// streams and connections.
    fn queued_budget(&self, peer: Address, channel: Channel) -> Arc<Semaphore> {
        let config = &self.inner.config;
        let budget = match channel {
            Channel::Consensus => config.peer_consensus_queued_bytes_max,
            Channel::Gossip | Channel::Sync => config.peer_gossip_queued_bytes_max,
        };
        // One largest frame always fits, or it could never be read.
        let bytes = budget
            .max(channel.frame_bytes_max(config))
            .min(Semaphore::MAX_PERMITS);
        lock(&self.inner.queued)
            .entry((peer, channel))
            .or_insert_with(|| Arc::new(Semaphore::new(bytes)))
            .clone()
    }

    /// Waits until the peer's block-sync budget allows serving one more
    /// request, and takes it (module `rate`, [`SyncBudget`]); false if the
    /// connection closed meanwhile (a reconnection must not leave requests
    /// waiting to be served to nobody).
    async fn wait_for_sync_budget(&self, peer: Address, conn: &Connection) -> bool {
        let mut counted = false;
        loop {
            if conn.close_reason().is_some() {
                return false;
            }
            let now = Instant::now();
            let ready = lock(&self.inner.sync_budgets)
                .entry(peer)
                .or_insert_with(|| SyncBudget::new(&self.inner.config, now))
                .try_start(now);
            match ready {
                Ok(()) => return true,
                Err(wait) => {
                    if !counted {
                        counted = true;
                        self.inner.metrics.record_budget_wait(Channel::Sync);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Charges a block-sync response to the peer's budget.
    fn charge_sync_response(&self, peer: Address, bytes: usize) {
        let now = Instant::now();
        lock(&self.inner.sync_budgets)
            .entry(peer)
            .or_insert_with(|| SyncBudget::new(&self.inner.config, now))
            .charge(bytes, now);
    }

    /// Takes one message's worth from the peer's allowance on `channel`.
    fn take_token(&self, peer: Address, channel: Channel) -> bool {
        let config = &self.inner.config;
        let now = Instant::now();
        lock(&self.inner.buckets)
            .entry((peer, channel))
            .or_insert_with(|| {
                TokenBucket::new(config.peer_msgs_per_sec, config.peer_msgs_burst, now)
            })
            .try_take(now)
    }

    /// Serves the peer's block-sync requests, a bounded number at a time.
    async fn sync_server(self, peer: Address, conn: Connection) {
        let config = self.inner.config.clone();
        let permits = Arc::new(Semaphore::new(config.sync_streams_max as usize));
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let _ = recv.stop(VarInt::from_u32(code::TOO_MANY_STREAMS));
                continue;
            };
            let net = self.clone();
            let config = config.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut first = [0u8; 1];
                if recv.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first[0] != Channel::Sync as u8 {
                    let _ = recv.stop(VarInt::from_u32(code::BAD_CHANNEL));
                    return;
                }
                let request = match read_frame(&mut recv, config.sync_request_bytes_max).await {
                    Ok(r) => r,
                    Err(ReadError::Oversized { .. }) => {
                        net.inner.metrics.record_drop(DropReason::Oversized);
                        let _ = recv.stop(VarInt::from_u32(code::OVERSIZED_FRAME));
                        return;
                    }
                    Err(_) => return,
                };
                net.inner.metrics.inbound(Channel::Sync, request.len());
                // Over its budget the request waits here, holding its
                // stream slot: at most `sync_streams_max` wait, none is
                // served beyond the budget.
                if !net.wait_for_sync_budget(peer, &conn).await {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                let event = Inbound::SyncRequest {
                    from: peer,
                    request,
                    respond: SyncResponder(tx),
                };
                if net.inner.inbound.send(event).await.is_err() {
                    return;
                }
                let Ok(Ok(response)) = tokio::time::timeout(config.sync_timeout, rx).await else {
                    return;
                };
                net.charge_sync_response(peer, response.len());
                send.set_priority(Channel::Sync.priority()).ok();
                if write_frame(&mut send, &response).await.is_ok() {
                    net.inner.metrics.outbound(Channel::Sync, response.len());
                    let _ = send.finish();
                }
            });
        }
    }
}

/// Writes queued messages for one channel to one peer on a long-lived
/// stream, reopening the stream if the peer stopped it.
async fn writer(net: Network, conn: Connection, channel: Channel, mut rx: mpsc::Receiver<Payload>) {
    let mut stream: Option<quinn::SendStream> = None;
    let mut batch: Vec<Payload> = Vec::new();
    while let Some(first) = rx.recv().await {
        // Whatever else is queued goes out in the same write.
        let mut bytes = first.len();
        batch.clear();
        batch.push(first);
        while bytes < WRITE_BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        if stream.is_none() {
            let Ok(mut s) = conn.open_uni().await else {
                return;
            };
            s.set_priority(channel.priority()).ok();
            if s.write_all(&[channel as u8]).await.is_err() {
                return;
            }
            stream = Some(s);
        }
        let Some(s) = stream.as_mut() else {
            continue;
        };
        match write_frames(s, &batch).await {
            Ok(()) => {
                for payload in &batch {
                    net.inner.metrics.outbound(channel, payload.len());
                }
            }
            Err(e) => {
                tracing::debug!(channel = channel.name(), error = %e, "stream write failed");
                stream = None;
                if conn.close_reason().is_some() {
                    return;
                }
            }
        }
    }
}
