//! Block execution: accounts, the VM's world over the Merkle overlay, and
//! the deterministic function (state at parent, block) -> (writes, receipts,
//! roots).

mod account;
mod executor;
mod world;

pub use account::{Account, code_key};
pub use executor::{
    Applied, ApplyError, BlockEnv, BlockExecution, ExecError, Executor, ExecutorConfig, TxRejection,
};
pub use world::{SharedState, StateBase, StateWorld};
