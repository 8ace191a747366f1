//! Transport limits and timings.

use std::time::Duration;

/// Limits and timings of the validator transport. Every queue, frame and
/// window is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Largest consensus frame (a PRE-PREPARE carries a whole block).
    pub consensus_frame_bytes_max: usize,
    /// Largest gossiped transaction frame.
    pub gossip_frame_bytes_max: usize,
    /// Largest block-sync request.
    pub sync_request_bytes_max: usize,
    /// Largest block-sync response.
    pub sync_response_bytes_max: usize,
    /// Outbound consensus messages queued per peer before new ones drop.
    pub consensus_queue_max: usize,
    /// Outbound gossip messages queued per peer before new ones drop.
    pub gossip_queue_max: usize,
    /// Inbound messages queued for the node before readers wait.
    pub inbound_queue_max: usize,
    /// Followers (full nodes: peers whose key is not in the validator set)
    /// connected at once; more are refused in the handshake. Counted apart
    /// from validators, so followers never take a validator's place. 0
    /// takes none.
    pub followers_max: usize,
    /// Followers from one source (an IPv4 address or an IPv6 /64) at once,
    /// so that one host with many keys cannot take every follower slot
    /// (many hosts still can: `followers_allowed` is the answer then).
    pub followers_per_source_max: usize,
    /// If not empty, only these followers' keys are taken.
    pub followers_allowed: Vec<stele_types::Address>,
    /// Committed blocks queued per follower before new ones drop (the
    /// follower fetches what it missed by block sync).
    pub blocks_queue_max: usize,
    /// A follower's `peer_msgs_per_sec` and burst: what one full node may
    /// send per channel (its forwarded transactions go through the same
    /// admission as the validators' gossip, so its share is smaller).
    pub follower_msgs_per_sec: u32,
    pub follower_msgs_burst: u32,
    /// Sustained inbound messages per second per peer and channel, and the
    /// burst allowed above it; excess messages are dropped and counted. The
    /// allowance belongs to the peer's key: every stream and connection of
    /// one validator draws on the same bucket, and a reconnection does not
    /// refill it.
    pub peer_msgs_per_sec: u32,
    pub peer_msgs_burst: u32,
    /// Concurrent block-sync requests a peer may have open with us.
    pub sync_streams_max: u32,
    /// Block-sync requests per second a peer may have served, and the burst
    /// above it. A request over the budget waits (holding one of the
    /// peer's `sync_streams_max` slots) until the budget allows it; the
    /// allowance belongs to the peer's key, as `peer_msgs_per_sec` does.
    /// An honest catching-up peer has one request in flight at a time,
    /// spread over all its peers, and waits 100 ms after an empty answer.
    pub sync_requests_per_sec: u32,
    pub sync_requests_burst: u32,
    /// Block-sync response bytes per second a peer may have served, and the
    /// burst (raised to `sync_response_bytes_max` if lower, so one full
    /// response always fits). A response is charged once read; while the
    /// peer is in debt, its next request waits.
    pub sync_response_bytes_per_sec: u64,
    pub sync_response_bytes_burst: u64,
    /// Bytes of a peer's consensus messages, and of its gossip messages,
    /// received but not yet taken by the node (queued for the pre-check,
    /// the driver or transaction admission). Over it the peer's readers
    /// wait, which holds back its streams through QUIC flow control. Raised
    /// to the channel's frame maximum if lower, so one largest frame always
    /// fits.
    pub peer_consensus_queued_bytes_max: usize,
    pub peer_gossip_queued_bytes_max: usize,
    /// Inbound connections allowed in the handshake at once; more are
    /// refused before any work is done for them.
    pub handshakes_max: usize,
    /// Inbound handshakes allowed at once from one source (an IPv4 address
    /// or an IPv6 /64); more from it are refused, so one host cannot take
    /// the slots validators need to reconnect.
    pub handshakes_per_source_max: usize,
    /// Once this many handshakes are in flight, a connection attempt whose
    /// source address QUIC has not validated is answered with a Retry
    /// (one extra round trip), so a spoofed source cannot take a slot.
    pub handshakes_retry_above: usize,
    /// A refused source is logged at most once per this interval (with a
    /// count of what it tried meanwhile); every refusal is counted.
    pub refusal_log_interval: Duration,
    /// QUIC connection receive window (quinn's default is unbounded).
    pub conn_receive_window_bytes: u32,
    /// QUIC per-stream receive window.
    pub stream_receive_window_bytes: u32,
    /// QUIC send window per connection.
    pub send_window_bytes: u64,
    /// Kernel receive and send buffers asked for the UDP socket (the
    /// kernel caps them at `net.core.rmem_max` / `wmem_max`). The default
    /// ~208 KiB overflows when a peer sends a block of several hundred
    /// kilobytes while this node is busy, and every drop costs a QUIC
    /// retransmission.
    pub udp_socket_buffer_bytes: usize,
    /// A connection with nothing to send pings this often. A peer that
    /// restarted answers the ping with a stateless reset (its reset key is
    /// derived from its validator key), so the dialer learns of a restart
    /// within this interval instead of the idle timeout.
    pub keep_alive: Duration,
    pub idle_timeout: Duration,
    /// Time allowed for the TLS handshake plus the key-binding exchange
    /// (one to three round trips; a slot held this long is what a stalled
    /// handshake costs).
    pub handshake_timeout: Duration,
    /// Time allowed for one block-sync round trip.
    pub sync_timeout: Duration,
    /// First and largest delay between reconnection attempts.
    pub reconnect_backoff_min: Duration,
    pub reconnect_backoff_max: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            consensus_frame_bytes_max: 32 << 20,
            gossip_frame_bytes_max: (1 << 20) + (4 << 10),
            sync_request_bytes_max: 1 << 10,
            sync_response_bytes_max: 64 << 20,
            consensus_queue_max: 4096,
            gossip_queue_max: 16_384,
            inbound_queue_max: 16_384,
            followers_max: 16,
            followers_per_source_max: 4,
            followers_allowed: Vec::new(),
            blocks_queue_max: 64,
            follower_msgs_per_sec: 2_000,
            follower_msgs_burst: 4_000,
            peer_msgs_per_sec: 20_000,
            peer_msgs_burst: 40_000,
            sync_streams_max: 8,
            sync_requests_per_sec: 32,
            sync_requests_burst: 16,
            sync_response_bytes_per_sec: 32 << 20,
            sync_response_bytes_burst: 64 << 20,
            peer_consensus_queued_bytes_max: 64 << 20,
            peer_gossip_queued_bytes_max: 16 << 20,
            handshakes_max: 64,
            handshakes_per_source_max: 4,
            handshakes_retry_above: 8,
            refusal_log_interval: Duration::from_secs(30),
            conn_receive_window_bytes: 64 << 20,
            stream_receive_window_bytes: 32 << 20,
            send_window_bytes: 64 << 20,
            udp_socket_buffer_bytes: 8 << 20,
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(3),
            sync_timeout: Duration::from_secs(20),
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
        }
    }
}
