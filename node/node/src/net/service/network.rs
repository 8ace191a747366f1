//! The `Network` handle's public API: start-up (the QUIC endpoint and its
//! transport settings), sending and broadcasting, and shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};
use stele_types::{Address, SecretKey, ValidatorSet, keccak256_parts};
use tokio::sync::{mpsc, watch};

use super::{InboundQueues, Inner, NetError, Network, Payload, PeerHandle, PeerInfo};
use crate::log_limit::LogLimit;
use crate::net::admission::{Admission, RefusalLog};
use crate::net::config::NetConfig;
use crate::net::frame::{Channel, code};
use crate::net::handshake::PeerKind;
use crate::net::metrics::{DropReason, NetMetrics};
use crate::net::tls;

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
    /// Binds `listen`, starts accepting peers and dialling `peers` (see
    /// [`dials`]), and returns the handle and the queues of inbound events.
    /// Must run inside a tokio runtime.
    pub fn start(
        config: NetConfig,
        key: SecretKey,
        chain_id: u64,
        validators: ValidatorSet,
        listen: SocketAddr,
        peers: Vec<PeerInfo>,
    ) -> Result<(Network, InboundQueues), NetError> {
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
    ) -> Result<(Network, InboundQueues), NetError> {
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
        // Each request waiting here holds one of its peer's
        // `sync_streams_max` stream slots, so this bound is rarely reached.
        let (sync_tx, sync_rx) = mpsc::channel(config.inbound_queue_max);
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
            3 * (validators.len() + config.followers_max),
        ));
        let validator = validators.index_of(&me).is_some();
        let net = Network {
            inner: Arc::new(Inner {
                config,
                key,
                me,
                validator: AtomicBool::new(validator),
                chain_id,
                validators: RwLock::new(Arc::new(validators)),
                set_changed: tokio::sync::Notify::new(),
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
                sync_inbound: sync_tx,
                metrics: Arc::new(NetMetrics::default()),
                shutdown,
            }),
        };
        tokio::spawn(net.clone().accept_loop());
        for peer in peers {
            // Every configured peer gets a dial loop, which dials while the
            // rule (`dials`) says this side does: the rule changes with the
            // validator set.
            tokio::spawn(net.clone().dial_loop(peer));
        }
        Ok((
            net,
            InboundQueues {
                events: inbound_rx,
                sync: sync_rx,
            },
        ))
    }

    /// Makes `set` the keys treated as validators (the current epoch's set
    /// with the next one's, ADR 0010). A connected peer whose standing
    /// changes (a follower that joins, a validator that leaves) is closed,
    /// so it is classified again at its next handshake; the dialling side
    /// reconnects.
    pub fn set_validators(&self, set: ValidatorSet) {
        let me = self.inner.me;
        let old = self.validator_set();
        if *old == set {
            return;
        }
        let is_validator = |s: &ValidatorSet, a: &Address| s.index_of(a).is_some();
        self.inner
            .validator
            .store(is_validator(&set, &me), Ordering::Relaxed);
        let changed: Vec<Connection> = self
            .peers()
            .iter()
            .filter(|(a, _)| is_validator(&old, a) != is_validator(&set, a))
            .map(|(_, p)| p.conn.clone())
            .collect();
        let me_changed = is_validator(&old, &me) != is_validator(&set, &me);
        *self
            .inner
            .validators
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
        let all: Vec<Connection> = if me_changed {
            // This node's own standing changed: every peer classified it.
            self.peers().values().map(|p| p.conn.clone()).collect()
        } else {
            changed
        };
        for conn in all {
            conn.close(
                VarInt::from_u32(code::RECLASSIFIED),
                b"validator set changed",
            );
        }
        self.inner.set_changed.notify_waiters();
    }

    /// Whether this side dials `peer` under the current validator set, and
    /// after how long without a connection (see [`dials`]).
    pub(super) fn dial_after(&self, peer: &Address) -> Option<std::time::Duration> {
        dials(&self.inner.me, &self.validator_set(), peer)
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
        self.peers()
            .iter()
            .filter(|(_, p)| p.kind == PeerKind::Validator)
            .map(|(a, _)| *a)
            .collect()
    }

    /// How many keys the transport treats as validators now.
    pub fn validator_set_len(&self) -> usize {
        self.validator_set().len()
    }

    /// Every peer connected now, validators and followers, in address
    /// order.
    pub fn connected_peers(&self) -> Vec<Address> {
        self.peers().keys().copied().collect()
    }

    /// Whether this node's key is in the validator set.
    pub fn is_validator(&self) -> bool {
        self.am_validator()
    }

    /// Whether the transport treats `peer` as a validator (of the current
    /// epoch or the decided next one).
    pub fn is_validator_key(&self, peer: &Address) -> bool {
        self.validator_set().index_of(peer).is_some()
    }

    /// Queues `payload` for `to` on `channel` (consensus, gossip or
    /// blocks). Never waits: if the peer is not connected, does not take
    /// the channel (consensus to a follower), or its queue is full, the
    /// message is dropped and counted.
    pub fn send(&self, to: &Address, channel: Channel, payload: Payload) {
        let peers = self.peers();
        match peers.get(to) {
            Some(peer) => self.enqueue(peer, channel, payload),
            None => self.inner.metrics.record_drop(DropReason::NotConnected),
        }
    }

    /// Queues `payload` for every connected peer that takes `channel`:
    /// consensus for validators, blocks for followers, gossip for
    /// validators (and, from a full node, for everyone).
    pub fn broadcast(&self, channel: Channel, payload: Payload) {
        let peers = self.peers();
        for peer in peers.values() {
            // Pushed blocks go to every follower; validators get them only
            // when sent to one by one.
            let followers_only = channel == Channel::Blocks && peer.kind != PeerKind::Follower;
            if !followers_only && peer.takes(channel, self.am_validator()) {
                self.enqueue(peer, channel, payload.clone());
            }
        }
    }

    fn enqueue(&self, peer: &PeerHandle, channel: Channel, payload: Payload) {
        let metrics = &self.inner.metrics;
        if !peer.takes(channel, self.am_validator()) {
            metrics.record_drop(DropReason::NotAllowed);
            return;
        }
        let queue = match channel {
            Channel::Consensus => &peer.consensus,
            Channel::Gossip => &peer.gossip,
            Channel::Blocks => &peer.blocks,
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

    /// Closes every connection and stops accepting and dialling.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner
            .endpoint
            .close(VarInt::from_u32(code::SHUTDOWN), b"shutdown");
        self.peers().clear();
        self.inner.endpoint.wait_idle().await;
    }
}

/// Between validators, the higher address dials only after the lower one
/// had this long to: it does when it lists the higher one, but a validator
/// that joined later (ADR 0010) may be listed by nobody.
pub(super) const HIGHER_ADDRESS_DIAL_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `me` dials `peer`, and after how long without a connection
/// (`None`: the other end dials, this one only accepts): between
/// validators, the lower address dials at once and the higher one after
/// [`HIGHER_ADDRESS_DIAL_DELAY`]; a full node dials every validator it
/// lists, and of two full nodes the lower address dials (list each
/// other); a validator never dials a full node.
pub(super) fn dials(
    me: &Address,
    validators: &ValidatorSet,
    peer: &Address,
) -> Option<std::time::Duration> {
    let now = Some(std::time::Duration::ZERO);
    if peer == me {
        return None;
    }
    let me_validator = validators.index_of(me).is_some();
    let peer_validator = validators.index_of(peer).is_some();
    match (me_validator, peer_validator) {
        (true, true) if peer > me => now,
        (true, true) => Some(HIGHER_ADDRESS_DIAL_DELAY),
        (false, false) => (peer > me).then_some(std::time::Duration::ZERO),
        (false, true) => now,
        (true, false) => None,
    }
}
