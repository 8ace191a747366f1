//! Transport counters, read by the node's metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use super::admission::Refusal;
use super::frame::Channel;

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The peer's outbound queue was full.
    QueueFull,
    /// The peer sent faster than its rate limit.
    RateLimited,
    /// The frame was over the channel's maximum.
    Oversized,
    /// No connection to the peer.
    NotConnected,
    /// The peer may not send or get this channel (consensus from or to a
    /// follower, blocks pushed to a validator).
    NotAllowed,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::RateLimited,
        DropReason::Oversized,
        DropReason::NotConnected,
        DropReason::NotAllowed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RateLimited => "rate_limited",
            DropReason::Oversized => "oversized",
            DropReason::NotConnected => "not_connected",
            DropReason::NotAllowed => "not_allowed",
        }
    }
}

/// Monotonic counters of the transport.
#[derive(Debug, Default)]
pub struct NetMetrics {
    // Sized by the enums' `ALL`, so a new channel or reason cannot index
    // past them.
    msgs_in: [AtomicU64; Channel::ALL.len()],
    msgs_out: [AtomicU64; Channel::ALL.len()],
    bytes_in: [AtomicU64; Channel::ALL.len()],
    bytes_out: [AtomicU64; Channel::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
    budget_waits: [AtomicU64; Channel::ALL.len()],
    /// Connections refused because the peer's key is not a validator's or
    /// it failed to prove its key.
    pub handshake_failures: AtomicU64,
    /// Validators currently connected.
    pub peers_connected: AtomicU64,
    /// Followers (full nodes) currently connected.
    pub followers_connected: AtomicU64,
    /// Followers refused because every follower slot was taken or their
    /// key is not on the allow list.
    pub followers_refused: AtomicU64,
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl NetMetrics {
    pub(crate) fn inbound(&self, ch: Channel, bytes: usize) {
        self.msgs_in[ch as usize].fetch_add(1, Ordering::Relaxed);
        self.bytes_in[ch as usize].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn outbound(&self, ch: Channel, bytes: usize) {
        self.msgs_out[ch as usize].fetch_add(1, Ordering::Relaxed);
        self.bytes_out[ch as usize].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_refusal(&self, reason: Refusal) {
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Inbound connection attempts that got no handshake slot, by reason
    /// (`retry`: answered with a QUIC Retry first).
    pub fn handshakes_refused(&self, reason: Refusal) -> u64 {
        get(&self.refused[reason as usize])
    }

    pub(crate) fn record_budget_wait(&self, ch: Channel) {
        self.budget_waits[ch as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Times a peer had to wait for its budget on `ch`: a consensus or
    /// gossip reader whose queued bytes were at the budget, or a block-sync
    /// request over the sync budget.
    pub fn budget_waits(&self, ch: Channel) -> u64 {
        get(&self.budget_waits[ch as usize])
    }

    pub(crate) fn record_drop(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn msgs_in(&self, ch: Channel) -> u64 {
        get(&self.msgs_in[ch as usize])
    }

    pub fn msgs_out(&self, ch: Channel) -> u64 {
        get(&self.msgs_out[ch as usize])
    }

    pub fn bytes_in(&self, ch: Channel) -> u64 {
        get(&self.bytes_in[ch as usize])
    }

    pub fn bytes_out(&self, ch: Channel) -> u64 {
        get(&self.bytes_out[ch as usize])
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        get(&self.dropped[reason as usize])
    }

    pub fn handshake_failures(&self) -> u64 {
        get(&self.handshake_failures)
    }

    pub fn peers_connected(&self) -> u64 {
        get(&self.peers_connected)
    }

    pub fn followers_connected(&self) -> u64 {
        get(&self.followers_connected)
    }

    pub fn followers_refused(&self) -> u64 {
        get(&self.followers_refused)
    }
}
