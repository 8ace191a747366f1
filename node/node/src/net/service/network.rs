//! The `Network` handle's public API: start-up (the QUIC endpoint and its
//! transport settings), sending and broadcasting, and shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use stele_types::{Address, SecretKey, ValidatorSet, keccak256_parts};
use tokio::sync::{mpsc, watch};

use super::{Inbound, Inner, NetError, Network, Payload, PeerHandle, PeerInfo};
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
    /// [`dials`]), and returns the handle and the stream of inbound events.
    /// Must run inside a tokio runtime.
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
            3 * (validators.len() + config.followers_max),
        ));
        let validator = validators.index_of(&me).is_some();
        let net = Network {
            inner: Arc::new(Inner {
                config,
                key,
                me,
                validator,
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
        let set = &net.inner.validators;
        for peer in peers {
            if dials(&me, set, &peer.address) {
                tokio::spawn(net.clone().dial_loop(peer));
            } else if validator && set.index_of(&peer.address).is_none() {
                tracing::warn!(
                    peer = %peer.address,
                    "a validator does not dial full nodes: they dial it (this peer is ignored)"
                );
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
        self.peers()
            .iter()
            .filter(|(_, p)| p.kind == PeerKind::Validator)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Every peer connected now, validators and followers, in address
    /// order.
    pub fn connected_peers(&self) -> Vec<Address> {
        self.peers().keys().copied().collect()
    }

    /// Whether this node's key is in the validator set.
    pub fn is_validator(&self) -> bool {
        self.inner.validator
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
            if peer.takes(channel, self.inner.validator) {
                self.enqueue(peer, channel, payload.clone());
            }
        }
    }

    fn enqueue(&self, peer: &PeerHandle, channel: Channel, payload: Payload) {
        let metrics = &self.inner.metrics;
        if !peer.takes(channel, self.inner.validator) {
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

/// Whether `me` dials `peer` (the other end only accepts): between
/// validators, the lower address dials; a full node dials every validator
/// it lists, and of two full nodes the lower address dials (list each
/// other); a validator never dials a full node.
pub(super) fn dials(me: &Address, validators: &ValidatorSet, peer: &Address) -> bool {
    let me_validator = validators.index_of(me).is_some();
    let peer_validator = validators.index_of(peer).is_some();
    match (me_validator, peer_validator) {
        (true, true) | (false, false) => peer > me,
        (false, true) => true,
        (true, false) => false,
    }
}
