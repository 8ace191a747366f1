//! The host functions of the `stele` import module, one module per area as
//! `docs/vm.md` groups them (input and output, storage, context, native
//! token, events, crypto, calls and deploys); [`link`] registers them all.
//! Each area's `link` is its table: one line per host function, naming the
//! ABI function and the Rust function that implements it.
//!
//! Every pointer/length pair from the guest is bounds-checked against the
//! frame's memory ([`mem`]): a bad region traps the contract
//! (`TrapKind::HostPointerOutOfBounds`), never the node. Every length is
//! checked against its limit before anything is allocated, and gas is
//! charged before the work it pays for.

mod calls;
mod context;
mod crypto;
mod debug;
mod events;
mod io;
mod mem;
mod storage;
mod token;

use stele_types::Address;
use wasmtime::{Caller, Linker};

use crate::error::{Failure, TrapKind, VmError};
use crate::exec::{HostExit, get_fuel, set_fuel};
use crate::state::HostState;
use crate::world::{World, WorldError};

/// The caller of a host function; its data is the execution's store data.
type C<'a, W> = Caller<'a, HostState<W>>;
/// What a host function returns: `Err` stops the frame ([`HostExit`]).
type R<T> = wasmtime::Result<T>;
/// The linker every area registers its functions in.
type L<W> = Linker<HostState<W>>;

/// Registers every host function of [`crate::abi::HOST_FUNCTIONS`].
pub(crate) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    io::link(l)?;
    storage::link(l)?;
    context::link(l)?;
    token::link(l)?;
    events::link(l)?;
    crypto::link(l)?;
    debug::link(l)?;
    calls::link(l)
}

/// Stops the frame with failure `f` (a revert, a trap, out of gas).
fn exit(f: Failure) -> wasmtime::Error {
    wasmtime::Error::new(HostExit::Fail(f))
}

fn trap(kind: TrapKind) -> wasmtime::Error {
    exit(Failure::Trapped(kind))
}

/// Stops the whole execution: the node failed, not the contract.
fn fatal<W: World + 'static>(c: &mut C<'_, W>, e: VmError) -> wasmtime::Error {
    c.data_mut().fatal = Some(e);
    wasmtime::Error::new(HostExit::Fatal)
}

/// Charges `gas`, or runs out of gas (consuming everything left).
fn charge<W: World + 'static>(c: &mut C<'_, W>, gas: u64) -> R<()> {
    let gas = c.data().gas().fuel(gas);
    let fuel = fuel_left(c)?;
    if fuel < gas {
        set_fuel_left(c, 0)?;
        return Err(exit(Failure::OutOfGas));
    }
    set_fuel_left(c, fuel - gas)?;
    Ok(())
}

/// Fuel left to the calling frame.
fn fuel_left<W: World + 'static>(c: &mut C<'_, W>) -> R<u64> {
    match get_fuel(c) {
        Ok(fuel) => Ok(fuel),
        Err(e) => Err(fatal(c, e)),
    }
}

fn set_fuel_left<W: World + 'static>(c: &mut C<'_, W>, fuel: u64) -> R<()> {
    match set_fuel(c, fuel) {
        Ok(()) => Ok(()),
        Err(e) => Err(fatal(c, e)),
    }
}

fn world_err<W: World + 'static, T>(c: &mut C<'_, W>, r: Result<T, WorldError>) -> R<T> {
    r.map_err(|e| fatal(c, e.into()))
}

/// The contract of the calling frame.
fn this<W: World + 'static>(c: &mut C<'_, W>) -> R<Address> {
    match c.data().frame() {
        Ok(f) => Ok(f.contract),
        Err(e) => Err(fatal(c, e)),
    }
}
