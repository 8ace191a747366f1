//! Block execution: accounts, the VM's world over the Merkle overlay, and
//! the deterministic function (state at parent, block) -> (writes, receipts,
//! roots).
//!
//! The crate is the pure core that validators, the contract testkit and any
//! tool that runs blocks share. It has no network, RPC or async runtime in
//! its dependency tree (`tests/tests/deps.rs`, in stele-cluster, pins
//! that): the caller owns threads, locks on the shared state and the block
//! store.

mod account;
mod executor;
pub mod governance;
pub mod upgrade;
mod world;

pub use account::{Account, code_key};
pub use executor::{
    Applied, ApplyError, BlockEnv, BlockExecution, ExecError, Executor, ExecutorConfig,
    ProtocolSupport, Replayed, TxRejection, Unsupported,
};
pub use governance::{EpochInfo, PendingChange};
pub use upgrade::ScheduledUpgrade;
pub use world::{SharedState, StateBase, StateWorld, StorageWrite};
