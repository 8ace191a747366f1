//! Context: who is calling, in which block and transaction, and the gas
//! left.

use crate::abi::HOST_MODULE;
use crate::state::HostState;
use crate::world::World;

use super::mem::write;
use super::{C, L, R, charge, fuel_left};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "caller", caller::<W>)?;
    l.func_wrap(HOST_MODULE, "origin", origin::<W>)?;
    l.func_wrap(HOST_MODULE, "self_address", self_address::<W>)?;
    l.func_wrap(HOST_MODULE, "value", value::<W>)?;
    l.func_wrap(HOST_MODULE, "block_height", block_height::<W>)?;
    l.func_wrap(HOST_MODULE, "block_timestamp", block_timestamp::<W>)?;
    l.func_wrap(HOST_MODULE, "chain_id", chain_id::<W>)?;
    l.func_wrap(HOST_MODULE, "tx_hash", tx_hash::<W>)?;
    l.func_wrap(HOST_MODULE, "gas_left", gas_left::<W>)?;
    Ok(())
}

/// Charges for and writes the bytes `f` takes from the state to `dst`.
fn context_bytes<W: World + 'static>(
    c: &mut C<'_, W>,
    dst: i32,
    f: impl FnOnce(&HostState<W>) -> Vec<u8>,
) -> R<()> {
    let bytes = f(c.data());
    let g = c.data().gas().host(bytes.len() as u64);
    charge(c, g)?;
    write(c, dst, &bytes)
}

fn caller<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    context_bytes(&mut c, dst, |s| {
        s.frames
            .last()
            .map(|f| f.caller.0.to_vec())
            .unwrap_or_default()
    })
}

fn origin<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    context_bytes(&mut c, dst, |s| s.ctx.origin.0.to_vec())
}

fn self_address<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    context_bytes(&mut c, dst, |s| {
        s.frames
            .last()
            .map(|f| f.contract.0.to_vec())
            .unwrap_or_default()
    })
}

fn value<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    context_bytes(&mut c, dst, |s| {
        s.frames
            .last()
            .map(|f| f.value.to_le_bytes().to_vec())
            .unwrap_or_default()
    })
}

fn tx_hash<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    context_bytes(&mut c, dst, |s| s.ctx.tx_hash.0.to_vec())
}

fn block_height<W: World + 'static>(mut c: C<'_, W>) -> R<i64> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    Ok(c.data().ctx.block_height as i64)
}

fn block_timestamp<W: World + 'static>(mut c: C<'_, W>) -> R<i64> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    Ok(c.data().ctx.block_timestamp_ms as i64)
}

fn chain_id<W: World + 'static>(mut c: C<'_, W>) -> R<i64> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    Ok(c.data().ctx.chain_id as i64)
}

fn gas_left<W: World + 'static>(mut c: C<'_, W>) -> R<i64> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    let left = fuel_left(&mut c)? / c.data().gas().fuel_per_gas.max(1);
    Ok(left as i64)
}
