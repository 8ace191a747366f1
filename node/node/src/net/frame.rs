//! Channels and length-prefixed frames on QUIC streams.
//!
//! Consensus and gossip each use one long-lived unidirectional stream per
//! direction, opened by the sender, whose first byte names the channel; the
//! consensus stream has a higher priority so it is never stuck behind
//! gossip. Each block-sync request gets its own bidirectional stream. A frame
//! is a `u32` little-endian length and that many bytes; a length over the
//! channel's maximum stops the stream before anything is allocated.

use quinn::{RecvStream, SendStream};

use super::config::NetConfig;

/// A logical channel between two validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Channel {
    /// PBFT messages: latency-critical, highest priority.
    Consensus = 0,
    /// Transaction gossip.
    Gossip = 1,
    /// Block sync requests and responses.
    Sync = 2,
    /// Committed blocks with their certificates, pushed to followers (full
    /// nodes) as they commit.
    Blocks = 3,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Consensus,
        Channel::Gossip,
        Channel::Sync,
        Channel::Blocks,
    ];

    pub fn from_byte(b: u8) -> Option<Channel> {
        match b {
            0 => Some(Channel::Consensus),
            1 => Some(Channel::Gossip),
            2 => Some(Channel::Sync),
            3 => Some(Channel::Blocks),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Channel::Consensus => "consensus",
            Channel::Gossip => "gossip",
            Channel::Sync => "sync",
            Channel::Blocks => "blocks",
        }
    }

    /// Largest inbound frame on this channel (for sync: the request).
    pub fn frame_bytes_max(self, config: &NetConfig) -> usize {
        match self {
            // A pushed block is as large as a proposal.
            Channel::Consensus | Channel::Blocks => config.consensus_frame_bytes_max,
            Channel::Gossip => config.gossip_frame_bytes_max,
            Channel::Sync => config.sync_request_bytes_max,
        }
    }

    /// QUIC stream priority: higher is sent first.
    pub fn priority(self) -> i32 {
        match self {
            Channel::Consensus => 100,
            Channel::Blocks => 20,
            Channel::Sync => 10,
            Channel::Gossip => 0,
        }
    }
}

/// Application error codes used when stopping streams or closing connections.
pub mod code {
    pub const OVERSIZED_FRAME: u32 = 1;
    pub const BAD_CHANNEL: u32 = 2;
    pub const HANDSHAKE_FAILED: u32 = 3;
    pub const REPLACED: u32 = 4;
    pub const SHUTDOWN: u32 = 5;
    pub const TOO_MANY_STREAMS: u32 = 6;
    pub const FOLLOWERS_FULL: u32 = 7;
    /// The validator set changed and this peer's standing with it.
    pub const RECLASSIFIED: u32 = 8;
}

/// Why reading a frame stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended cleanly between frames.
    Finished,
    /// The length prefix exceeded the maximum.
    Oversized { len: usize, max: usize },
    /// The stream or connection failed mid-frame.
    Stream(String),
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Vec<u8>, ReadError> {
    let len = read_frame_len(recv, max).await?;
    read_frame_body(recv, len).await
}

/// Reads a frame's length prefix and checks it against `max`; the body
/// follows through [`read_frame_body`]. Split so that a reader can wait for
/// room for the body before reading (and allocating) it.
pub async fn read_frame_len(recv: &mut RecvStream, max: usize) -> Result<usize, ReadError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(ReadError::Finished),
        Err(e) => return Err(ReadError::Stream(e.to_string())),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(ReadError::Oversized { len, max });
    }
    Ok(len)
}

/// Reads a frame body of `len` bytes, checked by [`read_frame_len`].
pub async fn read_frame_body(recv: &mut RecvStream, len: usize) -> Result<Vec<u8>, ReadError> {
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf)
        .await
        .map_err(|e| ReadError::Stream(e.to_string()))?;
    Ok(buf)
}

/// Frames at most this long are copied into one buffer and written
/// together; longer ones are written in place.
const COALESCE_BYTES_MAX: usize = 64 << 10;

/// Writes several frames with as few stream writes as possible: each write
/// to a QUIC stream takes the connection's lock and wakes its driver, which
/// costs more than copying a small message.
pub async fn write_frames<P: AsRef<[u8]>>(
    send: &mut SendStream,
    payloads: &[P],
) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::new();
    for payload in payloads {
        let payload = payload.as_ref();
        let len = u32::try_from(payload.len()).map_err(|_| "frame longer than u32".to_string())?;
        if payload.len() > COALESCE_BYTES_MAX {
            if !buf.is_empty() {
                send.write_all(&buf).await.map_err(|e| e.to_string())?;
                buf.clear();
            }
            write_frame(send, payload).await?;
        } else {
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(payload);
        }
    }
    if !buf.is_empty() {
        send.write_all(&buf).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes one frame.
pub async fn write_frame(send: &mut SendStream, payload: &[u8]) -> Result<(), String> {
    let len = u32::try_from(payload.len()).map_err(|_| "frame longer than u32".to_string())?;
    send.write_all(&len.to_le_bytes())
        .await
        .map_err(|e| e.to_string())?;
    send.write_all(payload).await.map_err(|e| e.to_string())
}
