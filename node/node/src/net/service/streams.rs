//! Channel streams: reading a peer's consensus and gossip frames under its
//! message rate and queued-bytes budget, and writing queued messages in
//! batches.

use std::sync::Arc;
use std::time::Instant;

use quinn::{Connection, VarInt};
use stele_types::Address;
use tokio::sync::{Semaphore, TryAcquireError, mpsc};

use super::{Inbound, InboundCharge, Network, Payload, lock};
use crate::net::frame::{Channel, ReadError, code, read_frame_body, read_frame_len, write_frames};
use crate::net::handshake::PeerKind;
use crate::net::metrics::DropReason;
use crate::net::rate::TokenBucket;

/// A writer takes queued messages into one stream write up to about this
/// many bytes.
const WRITE_BATCH_BYTES_MAX: usize = 256 << 10;

impl Network {
    /// Accepts the peer's unidirectional channel streams: consensus only
    /// from validators (to this node even while its key waits outside the
    /// set: a validator that is behind learns so from the epoch its peers'
    /// messages name, ADR 0010); pushed blocks from validators (a validator of
    /// the next epoch follows the chain by them until its epoch starts, ADR
    /// 0010; one that runs a replica ignores them) and, on a node that is
    /// no validator, from full nodes; gossip from anyone. A stream of
    /// another channel is stopped and counted.
    pub(super) async fn uni_acceptor(self, peer: Address, kind: PeerKind, conn: Connection) {
        while let Ok(mut recv) = conn.accept_uni().await {
            let net = self.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if recv.read_exact(&mut first).await.is_err() {
                    return;
                }
                let validator = net.am_validator();
                let allowed = match Channel::from_byte(first[0]) {
                    Some(ch @ Channel::Consensus) => (kind == PeerKind::Validator).then_some(ch),
                    Some(ch @ Channel::Gossip) => Some(ch),
                    Some(ch @ Channel::Blocks) => {
                        (!validator || kind == PeerKind::Validator).then_some(ch)
                    }
                    Some(Channel::Sync) | None => None,
                };
                match allowed {
                    Some(ch) => net.read_channel(peer, kind, ch, recv).await,
                    None => {
                        net.inner.metrics.record_drop(DropReason::NotAllowed);
                        let _ = recv.stop(VarInt::from_u32(code::BAD_CHANNEL));
                    }
                }
            });
        }
    }

    async fn read_channel(
        &self,
        peer: Address,
        kind: PeerKind,
        channel: Channel,
        mut recv: quinn::RecvStream,
    ) {
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
            if !self.take_token(peer, kind, channel) {
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
            Channel::Consensus | Channel::Blocks => config.peer_consensus_queued_bytes_max,
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

    /// Takes one message's worth from the peer's allowance on `channel`
    /// (a follower's is smaller: its gossip shares admission with the
    /// validators').
    fn take_token(&self, peer: Address, kind: PeerKind, channel: Channel) -> bool {
        let config = &self.inner.config;
        let now = Instant::now();
        let (rate, burst) = match kind {
            PeerKind::Validator => (config.peer_msgs_per_sec, config.peer_msgs_burst),
            PeerKind::Follower => (config.follower_msgs_per_sec, config.follower_msgs_burst),
        };
        lock(&self.inner.buckets)
            .entry((peer, channel))
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .try_take(now)
    }
}

/// Writes queued messages for one channel to one peer on a long-lived
/// stream, reopening the stream if the peer stopped it.
pub(super) async fn writer(
    net: Network,
    conn: Connection,
    channel: Channel,
    mut rx: mpsc::Receiver<Payload>,
) {
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
