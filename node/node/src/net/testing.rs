//! Building blocks for tests that speak to the transport below the
//! [`Network`](super::Network) API: a stranger's QUIC client that never
//! proves a key, or a validator that opens streams of its own. Not for
//! production use.

use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint};
use stele_types::{SecretKey, ValidatorSet};

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
