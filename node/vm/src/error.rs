//! Errors. [`Failure`] is what consensus sees when a call does not succeed:
//! a deterministic status, code and message (no backtraces, no host
//! strings). [`VmError`] is a node-side failure that produces no receipt.

use stele_types::ExecStatus;
use thiserror::Error;

use crate::validate::ValidationError;
use crate::world::WorldError;

/// Why a contract frame trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TrapKind {
    #[error("unreachable executed")]
    Unreachable,
    #[error("stack height limit exceeded")]
    StackLimit,
    #[error("out of bounds memory access")]
    MemoryOutOfBounds,
    #[error("out of bounds table access")]
    TableOutOfBounds,
    #[error("uninitialized table element")]
    UninitializedElement,
    #[error("indirect call type mismatch")]
    IndirectCallType,
    #[error("integer overflow")]
    IntegerOverflow,
    #[error("integer divide by zero")]
    DivisionByZero,
    #[error("invalid conversion to integer")]
    BadConversion,
    #[error("host call with an out of bounds pointer")]
    HostPointerOutOfBounds,
    #[error("storage key too large")]
    StorageKeyTooLarge,
    #[error("storage key is empty")]
    StorageKeyEmpty,
    #[error("storage value too large")]
    StorageValueTooLarge,
    #[error("too many event topics")]
    EventTopics,
    #[error("event data too large")]
    EventDataTooLarge,
    #[error("too many events")]
    TooManyEvents,
    #[error("event bytes over the transaction's or the block's limit")]
    EventBytes,
    #[error("debug log line too long")]
    DebugLogTooLong,
    #[error("return data too large")]
    ReturnDataTooLarge,
    #[error("call arguments too large")]
    ArgsTooLarge,
    #[error("invalid method name")]
    InvalidMethodName,
    #[error("negative gas budget")]
    NegativeGas,
    /// The native stack guard fired. The deterministic stack limit and the
    /// call depth limit are sized so this cannot happen; if it does it is a
    /// VM bug, reported but not trusted for consensus.
    #[error("native stack exhausted")]
    NativeStackOverflow,
    #[error("other trap")]
    Other,
}

/// Why a call failed before or around its contract code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FailKind {
    #[error("no contract at this address")]
    NoSuchContract,
    #[error("no such method")]
    NoSuchMethod,
    #[error("insufficient balance for the attached value")]
    InsufficientBalance,
    #[error("call depth limit exceeded")]
    CallDepthExceeded,
    #[error("too many calls in one transaction")]
    TooManyFrames,
    #[error("reentrant call blocked")]
    ReentrancyBlocked,
    #[error("a contract already exists at the new address")]
    ContractExists,
    #[error("invalid code: {0}")]
    InvalidCode(ValidationError),
    #[error("call arguments too large")]
    ArgsTooLarge,
    #[error("invalid method name")]
    InvalidMethodName,
    #[error("query timed out")]
    Timeout,
    #[error("memory limit of the transaction reached")]
    MemoryLimit,
}

/// The deterministic reason a frame did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Failure {
    /// The contract called `revert`; the payload is its output.
    #[error("reverted")]
    Reverted(Vec<u8>),
    #[error("out of gas")]
    OutOfGas,
    #[error("trapped: {0}")]
    Trapped(TrapKind),
    #[error("failed: {0}")]
    Failed(FailKind),
}

impl Failure {
    /// Receipt status for this failure.
    pub fn status(&self) -> ExecStatus {
        match self {
            Failure::Reverted(_) => ExecStatus::Reverted,
            Failure::OutOfGas => ExecStatus::OutOfGas,
            Failure::Trapped(_) => ExecStatus::Trapped,
            Failure::Failed(_) => ExecStatus::Failed,
        }
    }

    /// Receipt output for this failure: the revert payload, or the
    /// deterministic message.
    pub fn output(&self) -> Vec<u8> {
        match self {
            Failure::Reverted(payload) => payload.clone(),
            Failure::OutOfGas => b"out of gas".to_vec(),
            Failure::Trapped(kind) => format!("trapped: {kind}").into_bytes(),
            Failure::Failed(kind) => format!("failed: {kind}").into_bytes(),
        }
    }
}

/// A node-side error: no receipt can be produced; the block must not be
/// committed on this node until it is resolved.
#[derive(Debug, Error)]
pub enum VmError {
    #[error(transparent)]
    World(#[from] WorldError),
    #[error("wasmtime engine setup failed: {0}")]
    Engine(String),
    #[error("VM configuration: {0}")]
    Config(String),
    #[error("instantiation failed outside the contract's control: {0}")]
    Instantiate(String),
    #[error("code stored for a contract does not match its hash or fails validation")]
    CorruptCode,
    #[error("a VM invariant was violated: {0}")]
    Invariant(&'static str),
}
