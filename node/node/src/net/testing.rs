//! Building blocks for tests that speak to the transport below the
//! [`Network`](super::Network) API: a stranger's QUIC client that never
//! proves a key, or a validator that opens streams of its own, writes
//! frames on them and sends block-sync requests. Not for production use.

use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use stele_types::{SecretKey, ValidatorSet};

use super::frame::{self, Channel, ReadError};
use super::handshake::{self, HandshakeError};
use super::service::{NetError, PeerInfo};
use super::tls;

/// A QUIC client configuration that completes the TLS handshake with a
/// validator (any certificate, our ALPN) and nothing more.
pub fn client_config() -> Result<quinn::ClientConfig, NetError> {
    let tls = tls::client_config().map_err(NetError::Setup)?;
    let tls = QuicClientConfig::try_from(tls).map_err(|e| NetError::Setup(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(tls)))
}

/// Connects from `endpoint` to `to` and proves `key`, as a validator
/// dialling would, and hands back the bare connection.
pub async fn dial_as(
    endpoint: &Endpoint,
    key: &SecretKey,
    chain_id: u64,
    validators: &ValidatorSet,
    to: &PeerInfo,
) -> Result<Connection, HandshakeError> {
    let conn = endpoint
        .connect_with(
            client_config().map_err(|e| HandshakeError::Connection(e.to_string()))?,
            to.socket,
            tls::SERVER_NAME,
        )
        .map_err(|e| HandshakeError::Connection(e.to_string()))?
        .await
        .map_err(|e| HandshakeError::Connection(e.to_string()))?;
    handshake::dial(&conn, key, chain_id, validators, &to.address).await?;
    Ok(conn)
}

/// Opens a stream of `channel` (consensus or gossip) on `conn` the way the
/// transport's writer does: a unidirectional stream whose first byte names
/// the channel. Frames then go through [`write_frames`]. Not for production
/// use.
pub async fn open_channel(conn: &Connection, channel: Channel) -> Result<SendStream, String> {
    let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
    send.set_priority(channel.priority()).ok();
    send.write_all(&[channel as u8])
        .await
        .map_err(|e| e.to_string())?;
    Ok(send)
}

/// Writes length-prefixed frames to a stream opened by [`open_channel`],
/// batched as the transport batches them. Not for production use.
pub async fn write_frames<P: AsRef<[u8]>>(
    send: &mut SendStream,
    payloads: &[P],
) -> Result<(), String> {
    frame::write_frames(send, payloads).await
}

/// Reads one frame of at most `max` bytes from a peer's stream; `None` when
/// the stream ended between frames. Not for production use.
pub async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Option<Vec<u8>>, String> {
    match frame::read_frame(recv, max).await {
        Ok(payload) => Ok(Some(payload)),
        Err(ReadError::Finished) => Ok(None),
        Err(ReadError::Oversized { len, max }) => Err(format!("frame of {len} bytes over {max}")),
        Err(ReadError::Stream(e)) => Err(e),
    }
}

/// Sends one block-sync request on its own bidirectional stream, as
/// [`Network::request`](super::Network::request) does, and reads the
/// response (at most `response_bytes_max`). Not for production use.
pub async fn sync_request(
    conn: &Connection,
    request: &[u8],
    response_bytes_max: usize,
) -> Result<Vec<u8>, String> {
    sync_request_at(conn, request, response_bytes_max, Channel::Sync.priority()).await
}

/// [`sync_request`] with the request's stream at `priority` among this
/// side's streams (an attacker that floods other channels on the same
/// connection sends its sync requests first).
pub async fn sync_request_at(
    conn: &Connection,
    request: &[u8],
    response_bytes_max: usize,
    priority: i32,
) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.set_priority(priority).ok();
    send.write_all(&[Channel::Sync as u8])
        .await
        .map_err(|e| e.to_string())?;
    frame::write_frame(&mut send, request).await?;
    send.finish().map_err(|e| e.to_string())?;
    read_frame(&mut recv, response_bytes_max)
        .await?
        .ok_or_else(|| "the peer closed the request unanswered".to_string())
}
