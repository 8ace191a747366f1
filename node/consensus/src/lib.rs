//! Stele's PBFT consensus core (Castro & Liskov, OSDI'99 / TOCS'02) as a pure
//! state machine: [`Replica::handle`] takes an [`Input`] and returns the
//! [`Action`]s the node must carry out.
//!
//! Architecture invariant: no tokio, no sockets, no clock, no disk and no
//! randomness; time, network and storage reach the replica only as inputs.

mod checkpoint;
pub mod config;
pub mod io;
pub mod message;
pub mod metrics;
mod normal;
mod quorum;
mod replica;
mod slot;
pub mod verify;
mod view_change;

pub use config::{Config, ConfigError, MessageLimits};
pub use io::{Action, Evidence, Input, Record, Retention, TimerId};
pub use message::{
    Checkpoint, CheckpointProof, Commit, Message, NewView, NewViewEntry, PrePrepare, Prepare,
    PreparedCertificate, ReplicaIndex, SignedMessage, ViewChange, Vote, peek_epoch,
};
pub use metrics::Counters;
pub use replica::Replica;
pub use verify::{K256Verifier, Verifier};
