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
//!
//! This module holds the public types and the shared state; the `Network`
//! handle's API, connecting, channel streams and block sync are in its
//! children.

mod connect;
mod network;
mod streams;
mod sync;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use quinn::{Connection, Endpoint};
use stele_types::{Address, SecretKey, ValidatorSet};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::admission::{Admission, RefusalLog};
use super::config::NetConfig;
use super::frame::Channel;
use super::handshake::PeerKind;
use super::metrics::NetMetrics;
use super::rate::{SyncBudget, TokenBucket};
use crate::log_limit::LogLimit;

/// A peer's network address: a validator's, or a full node's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: Address,
    pub socket: SocketAddr,
}

/// What the transport delivers to the node, in two queues: peers' block
/// sync requests apart from everything else. A flood of consensus or
/// gossip messages (or a node slow to take them) then never holds a sync
/// request back: each queue has its own bound, and the node serves sync
/// requests off the path its consensus messages take.
#[derive(Debug)]
pub struct InboundQueues {
    /// Messages and peers' comings and goings, in arrival order.
    pub events: mpsc::Receiver<Inbound>,
    /// Peers' block-sync requests.
    pub sync: mpsc::Receiver<InboundSync>,
}

/// A peer's block-sync request (a block range or a snapshot query, still
/// encoded); answer through `respond`.
#[derive(Debug)]
pub struct InboundSync {
    pub from: Address,
    pub request: Vec<u8>,
    pub respond: SyncResponder,
}

/// What the transport delivers to the node.
#[derive(Debug)]
pub enum Inbound {
    /// A consensus, gossip or pushed-block message from an authenticated
    /// peer (consensus only ever from a validator).
    Message {
        from: Address,
        channel: Channel,
        payload: Vec<u8>,
        /// The payload's room in the sender's queued-bytes budget; keep it
        /// with the payload until the node has taken the message in.
        charge: InboundCharge,
    },
    /// A validator connected or went away (followers' comings and goings
    /// are not reported).
    PeerConnected(Address),
    PeerDisconnected(Address),
    /// The pre-check saw a consensus message from `from` of an epoch later
    /// than the next one: this node is behind by a whole epoch or more
    /// (ADR 0010) and fetches the blocks it misses.
    EpochAhead {
        from: Address,
        epoch: u64,
    },
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

struct PeerHandle {
    conn: Connection,
    kind: PeerKind,
    generation: u64,
    consensus: mpsc::Sender<Payload>,
    gossip: mpsc::Sender<Payload>,
    blocks: mpsc::Sender<Payload>,
}

impl PeerHandle {
    /// Whether this peer gets messages of `channel` from a node that is
    /// (`validator`) or is not a validator: consensus only between
    /// validators; pushed blocks to anyone (broadcast to followers, sent to
    /// a validator of the next epoch that still follows the chain); gossip
    /// from a validator to validators, from a full node to anyone.
    fn takes(&self, channel: Channel, validator: bool) -> bool {
        match channel {
            Channel::Consensus => validator && self.kind == PeerKind::Validator,
            Channel::Gossip => !validator || self.kind == PeerKind::Validator,
            Channel::Blocks => true,
            Channel::Sync => false,
        }
    }
}

struct Inner {
    config: NetConfig,
    key: SecretKey,
    me: Address,
    /// Whether this node's key is in the validator set.
    validator: AtomicBool,
    chain_id: u64,
    /// The keys treated as validators: the current epoch's set and, once a
    /// change is decided, the next one's (ADR 0010).
    validators: RwLock<Arc<ValidatorSet>>,
    /// Wakes the dial loops when the validator set changes.
    set_changed: tokio::sync::Notify,
    endpoint: Endpoint,
    peers: Mutex<BTreeMap<Address, PeerHandle>>,
    generation: AtomicU64,
    admission: Admission,
    refusals: Mutex<RefusalLog>,
    /// Inbound allowance per (peer, channel), shared by all of the peer's
    /// streams and connections, so opening streams or reconnecting does not
    /// refill it (ADR 0005). At most three entries per peer: only
    /// authenticated peers get one; a follower's go when it disconnects.
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
    /// Block-sync requests, apart from `inbound` (see [`InboundQueues`]).
    sync_inbound: mpsc::Sender<InboundSync>,
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

impl Network {
    fn peers(&self) -> MutexGuard<'_, BTreeMap<Address, PeerHandle>> {
        lock(&self.inner.peers)
    }

    fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// The keys treated as validators now.
    pub(super) fn validator_set(&self) -> Arc<ValidatorSet> {
        self.inner
            .validators
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether this node is a validator now.
    pub(super) fn am_validator(&self) -> bool {
        self.inner.validator.load(Ordering::Relaxed)
    }
}
