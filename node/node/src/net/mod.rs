//! The peer transport over QUIC (quinn): validators among themselves, and
//! followers (full nodes, ADR 0009) that get committed blocks and nothing
//! of consensus.
//!
//! Architecture invariant: only this module knows about QUIC, TLS and
//! sockets. The rest of the node sees authenticated validator addresses,
//! channels and byte payloads.

mod admission;
mod config;
mod frame;
mod handshake;
mod metrics;
mod rate;
mod service;
#[doc(hidden)]
pub mod testing;
mod tls;

pub use admission::{Refusal, source_of};
pub use config::NetConfig;
pub use frame::Channel;
pub use handshake::{HandshakeError, PeerKind};
pub use metrics::{DropReason, NetMetrics};
pub use service::{
    Inbound, InboundCharge, InboundQueues, InboundSync, NetError, Network, PeerInfo, SyncResponder,
};
