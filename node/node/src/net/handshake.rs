//! Binding a QUIC connection to a validator's k256 key.
//!
//! Both ends export 32 bytes of keying material from the TLS session
//! (RFC 5705/8446 exporter), which is unique to this connection: a relay in
//! the middle would hold two different sessions with two different values.
//! Each end signs `keccak256(tag || role || chain_id || ekm)` with its
//! validator key and sends `chain_id || public key || signature` on the
//! first bidirectional stream, dialer first. The role byte keeps a peer from
//! reflecting our own signature back at us.
//!
//! A proven key outside the validator set is a *follower* (a full node,
//! ADR 0009): the listener takes it only if it has room for one, and the
//! transport never gives it anything of consensus.

use quinn::Connection;
use stele_types::{Address, Hash, PublicKey, SecretKey, Signature, ValidatorSet, keccak256_parts};
use thiserror::Error;

const TAG: &[u8] = b"STELE/v1/peer-auth\0";
const EKM_LABEL: &[u8] = b"EXPORTER-stele-peer-auth";
const HELLO_BYTES: usize = 8 + 33 + 65;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Role {
    Dialer = 1,
    Listener = 2,
}

/// What an authenticated peer is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKind {
    /// Its key is in the validator set.
    Validator,
    /// A non-voting peer (a full node): its key is not in the set.
    Follower,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("connection failed during the handshake: {0}")]
    Connection(String),
    #[error("could not export keying material: {0}")]
    KeyingMaterial(String),
    #[error("peer is on chain {got}, we are on {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("peer key {0} is not a valid public key")]
    InvalidKey(PublicKey),
    #[error("peer {0} is not in the validator set")]
    NotAValidator(Address),
    #[error("peer {0} is not a validator and this node takes no more followers")]
    FollowerRefused(Address),
    #[error("dialed {expected} but {got} answered")]
    UnexpectedPeer { expected: Address, got: Address },
    #[error("peer's key-binding signature does not verify")]
    BadSignature,
    #[error("peer connected to itself")]
    SelfConnection,
    #[error("handshake timed out")]
    Timeout,
}

fn binding(chain_id: u64, ekm: &[u8; 32], role: Role) -> Hash {
    keccak256_parts(&[TAG, &[role as u8], &chain_id.to_le_bytes(), ekm])
}

fn export(conn: &Connection, chain_id: u64) -> Result<[u8; 32], HandshakeError> {
    let mut ekm = [0u8; 32];
    conn.export_keying_material(&mut ekm, EKM_LABEL, &chain_id.to_le_bytes())
        .map_err(|e| HandshakeError::KeyingMaterial(format!("{e:?}")))?;
    Ok(ekm)
}

fn hello(key: &SecretKey, chain_id: u64, ekm: &[u8; 32], role: Role) -> [u8; HELLO_BYTES] {
    let sig = key.sign_digest(&binding(chain_id, ekm, role));
    let mut out = [0u8; HELLO_BYTES];
    out[..8].copy_from_slice(&chain_id.to_le_bytes());
    out[8..41].copy_from_slice(&key.public_key().0);
    out[41..].copy_from_slice(&sig.0);
    out
}

/// Checks a peer's hello and returns its key and what it is to us.
fn check(
    bytes: &[u8; HELLO_BYTES],
    chain_id: u64,
    ekm: &[u8; 32],
    role: Role,
    validators: &ValidatorSet,
    me: &Address,
) -> Result<(PublicKey, PeerKind), HandshakeError> {
    let mut chain = [0u8; 8];
    chain.copy_from_slice(&bytes[..8]);
    let got = u64::from_le_bytes(chain);
    if got != chain_id {
        return Err(HandshakeError::WrongChain {
            expected: chain_id,
            got,
        });
    }
    let mut pk = [0u8; 33];
    pk.copy_from_slice(&bytes[8..41]);
    let pk = PublicKey(pk);
    pk.validate().map_err(|_| HandshakeError::InvalidKey(pk))?;
    let address = pk.address();
    if address == *me {
        return Err(HandshakeError::SelfConnection);
    }
    let kind = match validators.index_of(&address) {
        Some(index) if validators.validators()[index].public_key == pk => PeerKind::Validator,
        // An address is its key's hash: the set names no other key for it.
        Some(_) => return Err(HandshakeError::NotAValidator(address)),
        None => PeerKind::Follower,
    };
    let mut sig = [0u8; 65];
    sig.copy_from_slice(&bytes[41..]);
    pk.verify(&binding(chain_id, ekm, role), &Signature(sig))
        .map_err(|_| HandshakeError::BadSignature)?;
    Ok((pk, kind))
}

fn conn_err(e: impl std::fmt::Display) -> HandshakeError {
    HandshakeError::Connection(e.to_string())
}

/// Dialer side: proves our key, then checks the listener is `expected`.
pub async fn dial(
    conn: &Connection,
    key: &SecretKey,
    chain_id: u64,
    validators: &ValidatorSet,
    expected: &Address,
) -> Result<(Address, PeerKind), HandshakeError> {
    let ekm = export(conn, chain_id)?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(conn_err)?;
    send.write_all(&hello(key, chain_id, &ekm, Role::Dialer))
        .await
        .map_err(conn_err)?;
    send.finish().map_err(conn_err)?;
    let mut theirs = [0u8; HELLO_BYTES];
    recv.read_exact(&mut theirs).await.map_err(conn_err)?;
    let (pk, kind) = check(
        &theirs,
        chain_id,
        &ekm,
        Role::Listener,
        validators,
        &key.address(),
    )?;
    let got = pk.address();
    if got != *expected {
        return Err(HandshakeError::UnexpectedPeer {
            expected: *expected,
            got,
        });
    }
    Ok((got, kind))
}

/// Listener side: checks the dialer's key, then proves ours. A dialer
/// outside the validator set is refused, before we prove anything, unless
/// `take_follower` takes it.
pub async fn accept(
    conn: &Connection,
    key: &SecretKey,
    chain_id: u64,
    validators: &ValidatorSet,
    take_follower: &(dyn Fn(&Address) -> bool + Send + Sync),
) -> Result<(Address, PeerKind), HandshakeError> {
    let ekm = export(conn, chain_id)?;
    let (mut send, mut recv) = conn.accept_bi().await.map_err(conn_err)?;
    let mut theirs = [0u8; HELLO_BYTES];
    recv.read_exact(&mut theirs).await.map_err(conn_err)?;
    let (pk, kind) = check(
        &theirs,
        chain_id,
        &ekm,
        Role::Dialer,
        validators,
        &key.address(),
    )?;
    let address = pk.address();
    if kind == PeerKind::Follower && !take_follower(&address) {
        return Err(HandshakeError::FollowerRefused(address));
    }
    send.write_all(&hello(key, chain_id, &ekm, Role::Listener))
        .await
        .map_err(conn_err)?;
    send.finish().map_err(conn_err)?;
    Ok((address, kind))
}
