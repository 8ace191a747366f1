//! Stele's deterministic, gas-metered Wasm runtime on wasmtime.
//!
//! Every validator must get the same result, the same gas and the same error
//! for the same call: the engine configuration is fixed ([`engine_config`]),
//! code is validated and instrumented at deploy ([`validate`],
//! [`instrument`]), gas is one versioned schedule ([`GasSchedule`]), and all
//! caps live in one versioned table ([`VmLimits`]). The contract ABI is
//! documented in `docs/vm.md`.
//!
//! Architecture invariant: only this crate knows about wasmtime.

pub mod abi;
pub mod cache;
pub mod error;
pub mod exec;
pub mod gas;
mod host;
pub mod instrument;
pub mod limits;
pub mod memory_world;
mod state;
pub mod validate;
pub mod vm;
pub mod warm;
pub mod world;

pub use error::{FailKind, Failure, TrapKind, VmError};
pub use exec::{Action, Outcome};
pub use gas::GasSchedule;
pub use limits::{PAGE_BYTES, VmLimits, event_bytes};
pub use memory_world::MemoryWorld;
pub use state::{CallTrace, DEBUG_LOG_RECORD_BYTES_MAX, DebugLog, ExecContext, HostState};
pub use validate::{ModuleInfo, ValidationError, validate};
pub use vm::{
    CompileCounts, EXEC_THREAD_STACK_BYTES, NATIVE_WASM_STACK_BYTES, Vm, VmConfig, engine_config,
    query_engine_config,
};
pub use world::{Entry, Next, World, WorldError};
