//! The Stele node: the chain follower and the validator role (`node`), the
//! mempool, block store, networking, RPC and the `stele-node` binary.
//! Blocks execute in `stele-exec`.
//!
//! Architecture invariant: the mempool and the executor are plain data
//! structures and functions driven by their callers; locks, tasks, sockets
//! and clocks live in the node's service modules.

pub mod config;
pub mod genesis;
pub mod genesis_build;
pub mod home;
pub mod host;
pub mod index;
pub mod keys;
pub mod listen;
pub mod log_limit;
pub mod mark;
pub mod mempool;
pub mod metrics;
pub mod net;
pub mod node;
pub mod precheck;
pub mod rpc;
pub mod sender_keys;
pub mod shutdown;
pub mod snapshot;
pub mod store;
pub mod sync;
pub mod validator_record;
pub mod wal;
