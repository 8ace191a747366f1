//! The native token: balances and transfers from the calling contract.

use stele_types::Address;

use crate::abi::HOST_MODULE;
use crate::world::World;

use super::mem::{read_array, write};
use super::{C, L, R, charge, this, world_err};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "balance", balance::<W>)?;
    l.func_wrap(HOST_MODULE, "transfer", transfer::<W>)?;
    Ok(())
}

fn balance<W: World + 'static>(mut c: C<'_, W>, ap: i32, dst: i32) -> R<()> {
    let gas = c.data().gas().clone();
    charge(&mut c, gas.balance_read + gas.host(36))?;
    let who = Address(read_array(&mut c, ap)?);
    let b = c.data().world.balance(&who);
    let b = world_err(&mut c, b)?;
    write(&mut c, dst, &b.to_le_bytes())
}

fn transfer<W: World + 'static>(mut c: C<'_, W>, ap: i32, vp: i32) -> R<i32> {
    let gas = c.data().gas().clone();
    charge(&mut c, gas.transfer + gas.host(36))?;
    let to = Address(read_array(&mut c, ap)?);
    let amount = u128::from_le_bytes(read_array(&mut c, vp)?);
    let me = this(&mut c)?;
    let r = c.data_mut().world.transfer(&me, &to, amount);
    Ok(if world_err(&mut c, r)? { 0 } else { 1 })
}
