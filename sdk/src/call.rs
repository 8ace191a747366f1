//! Cross-contract calls and deploys. Typed stubs come from
//! `#[stele_sdk::interface]` on a trait describing the callee.

use alloc::string::String;
use alloc::vec::Vec;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::abi::{REVERT_ERROR, REVERT_MESSAGE};
use crate::{Address, Amount, env, sys};

/// Outcome status of a call or deploy (= the VM's `ExecStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Reverted,
    OutOfGas,
    Trapped,
    /// No such contract or method, value not covered, depth limit,
    /// reentrancy blocked, invalid code, address taken.
    Failed,
}

impl Status {
    fn from_code(code: u32) -> Status {
        match code {
            0 => Status::Success,
            1 => Status::Reverted,
            2 => Status::OutOfGas,
            3 => Status::Trapped,
            _ => Status::Failed,
        }
    }
}

/// Why a cross-contract call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E = NoError> {
    /// The callee reverted with its typed error.
    Error(E),
    /// The callee reverted with a message.
    Message(String),
    /// The callee did not succeed for another reason, or its output did not
    /// decode; `output` is the VM's message or the raw payload.
    Failed { status: Status, output: Vec<u8> },
}

/// Error type of methods that declare none: never decodes, so a tagged
/// error payload from such a method shows as [`CallError::Failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoError {}

impl BorshSerialize for NoError {
    fn serialize<W: borsh::io::Write>(&self, _: &mut W) -> borsh::io::Result<()> {
        match *self {}
    }
}

impl BorshDeserialize for NoError {
    fn deserialize_reader<R: borsh::io::Read>(_: &mut R) -> borsh::io::Result<Self> {
        Err(borsh::io::Error::new(
            borsh::io::ErrorKind::InvalidData,
            "no error type",
        ))
    }
}

impl<E> CallError<E> {
    /// Reverts this frame, passing a message on unchanged; other failures
    /// revert with a message naming what happened.
    pub fn revert(self) -> ! {
        match self {
            CallError::Message(m) => env::revert_msg(&m),
            CallError::Error(_) => env::revert_msg("callee reverted with an error"),
            CallError::Failed { status, .. } => env::revert_msg(match status {
                Status::OutOfGas => "callee ran out of gas",
                Status::Trapped => "callee trapped",
                Status::Failed => "call failed",
                _ => "callee output does not decode",
            }),
        }
    }
}

/// `Result` helpers for calls.
pub trait OrRevert<T> {
    /// The value, or revert this frame (see [`CallError::revert`]).
    fn or_revert(self) -> T;
}

impl<T, E> OrRevert<T> for Result<T, CallError<E>> {
    fn or_revert(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.revert(),
        }
    }
}

/// Options of one call: attached value and gas budget (0 = all allowed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    pub value: Amount,
    pub gas: u64,
}

/// Calls `method` of `contract` with already encoded `args`; returns the
/// status and the return data, revert payload or failure message.
pub fn call_raw(
    contract: &Address,
    method: &str,
    args: &[u8],
    opts: CallOptions,
) -> (Status, Vec<u8>) {
    let (code, out) = sys::call(&contract.0, method, args, opts.value, opts.gas);
    (Status::from_code(code), out)
}

/// Decodes a call outcome by the SDK conventions: Borsh return value, or a
/// tagged revert payload.
pub fn decode_outcome<R: BorshDeserialize, E: BorshDeserialize>(
    status: Status,
    out: Vec<u8>,
) -> Result<R, CallError<E>> {
    match status {
        Status::Success => R::try_from_slice(&out).map_err(|_| CallError::Failed {
            status,
            output: out,
        }),
        Status::Reverted => match out.split_first() {
            Some((&REVERT_MESSAGE, msg)) => match core::str::from_utf8(msg) {
                Ok(m) => Err(CallError::Message(String::from(m))),
                Err(_) => Err(CallError::Failed {
                    status,
                    output: out,
                }),
            },
            Some((&REVERT_ERROR, body)) => match E::try_from_slice(body) {
                Ok(e) => Err(CallError::Error(e)),
                Err(_) => Err(CallError::Failed {
                    status,
                    output: out,
                }),
            },
            _ => Err(CallError::Failed {
                status,
                output: out,
            }),
        },
        _ => Err(CallError::Failed {
            status,
            output: out,
        }),
    }
}

/// Calls `method` with Borsh-encoded `args` (a tuple of the arguments) and
/// decodes the result; what interface stubs do.
pub fn call<A: BorshSerialize, R: BorshDeserialize, E: BorshDeserialize>(
    contract: &Address,
    method: &str,
    args: &A,
    opts: CallOptions,
) -> Result<R, CallError<E>> {
    let mut input = Vec::new();
    if args.serialize(&mut input).is_err() {
        env::revert_msg("argument encoding failed")
    }
    let (status, out) = call_raw(contract, method, &input, opts);
    decode_outcome(status, out)
}

/// Deploys `code` (a built contract's Wasm) with constructor arguments
/// `init_args` (a tuple, Borsh-encoded here) and `value`; returns the new
/// contract's address.
pub fn deploy<A: BorshSerialize>(
    code: &[u8],
    init_args: &A,
    opts: CallOptions,
) -> Result<Address, CallError<NoError>> {
    let mut input = Vec::new();
    if init_args.serialize(&mut input).is_err() {
        env::revert_msg("argument encoding failed")
    }
    let (code, addr, out) = sys::deploy(code, &input, opts.value, opts.gas);
    let status = Status::from_code(code);
    match status {
        Status::Success => Ok(Address(addr)),
        _ => decode_outcome::<(), NoError>(status, out).map(|()| Address(addr)),
    }
}

/// Replaces this contract's code with `code` (validated and priced like a
/// deploy), then runs the new code's `#[migrate]` method, if it has one,
/// with `migrate_args`, in this contract. If the migration fails, the code
/// stays as it was and its error is returned. The running method keeps
/// executing the old code; later calls run the new one. Who may upgrade is
/// the contract's own rule: check the caller before calling this.
pub fn upgrade<A: BorshSerialize>(
    code: &[u8],
    migrate_args: &A,
    opts: CallOptions,
) -> Result<(), CallError<NoError>> {
    let mut input = Vec::new();
    if migrate_args.serialize(&mut input).is_err() {
        env::revert_msg("argument encoding failed")
    }
    let (code, out) = sys::upgrade(code, &input, opts.gas);
    let status = Status::from_code(code);
    match status {
        Status::Success => Ok(()),
        _ => decode_outcome::<(), NoError>(status, out),
    }
}
