//! Storage: the calling contract's own key-value store and its ordered
//! prefix iteration.

use crate::abi::HOST_MODULE;
use crate::error::{Failure, TrapKind};
use crate::world::World;

use super::mem::{read, write};
use super::{C, L, R, charge, exit, fuel_left, set_fuel_left, this, trap, world_err};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "storage_read", storage_read::<W>)?;
    l.func_wrap(HOST_MODULE, "storage_write", storage_write::<W>)?;
    l.func_wrap(HOST_MODULE, "storage_remove", storage_remove::<W>)?;
    l.func_wrap(HOST_MODULE, "storage_has", storage_has::<W>)?;
    l.func_wrap(HOST_MODULE, "storage_next", storage_next::<W>)?;
    Ok(())
}

/// The storage key at `ptr`, within the key length limits.
fn key<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, len: i32) -> R<Vec<u8>> {
    let len = len as u32;
    if len == 0 {
        return Err(trap(TrapKind::StorageKeyEmpty));
    }
    if len > c.data().limits().storage_key_bytes_max {
        return Err(trap(TrapKind::StorageKeyTooLarge));
    }
    read(c, ptr, len)
}

fn storage_read<W: World + 'static>(
    mut c: C<'_, W>,
    kp: i32,
    kl: i32,
    dst: i32,
    cap: i32,
) -> R<i64> {
    let gas = c.data().gas().clone();
    let k = key(&mut c, kp, kl)?;
    charge(
        &mut c,
        gas.storage_read_base + (gas.storage_read_byte + gas.host_byte) * k.len() as u64,
    )?;
    let me = this(&mut c)?;
    let v = c.data().world.storage_get(&me, &k);
    let Some(v) = world_err(&mut c, v)? else {
        return Ok(-1);
    };
    charge(
        &mut c,
        (gas.storage_read_byte + gas.host_byte) * v.len() as u64,
    )?;
    let n = v.len().min(cap as u32 as usize);
    write(&mut c, dst, &v[..n])?;
    Ok(v.len() as i64)
}

fn storage_write<W: World + 'static>(mut c: C<'_, W>, kp: i32, kl: i32, vp: i32, vl: i32) -> R<()> {
    let gas = c.data().gas().clone();
    let k = key(&mut c, kp, kl)?;
    let vl = vl as u32;
    if vl > c.data().limits().storage_value_bytes_max {
        return Err(trap(TrapKind::StorageValueTooLarge));
    }
    let bytes = k.len() as u64 + u64::from(vl);
    charge(
        &mut c,
        gas.storage_write_base + (gas.storage_write_byte + gas.host_byte) * bytes,
    )?;
    let v = read(&mut c, vp, vl)?;
    let me = this(&mut c)?;
    let r = c.data_mut().world.storage_set(&me, &k, &v);
    world_err(&mut c, r)
}

fn storage_remove<W: World + 'static>(mut c: C<'_, W>, kp: i32, kl: i32) -> R<i32> {
    let gas = c.data().gas().clone();
    let k = key(&mut c, kp, kl)?;
    charge(
        &mut c,
        gas.storage_delete_base + (gas.storage_read_byte + gas.host_byte) * k.len() as u64,
    )?;
    let me = this(&mut c)?;
    let r = c.data_mut().world.storage_remove(&me, &k);
    Ok(i32::from(world_err(&mut c, r)?))
}

fn storage_has<W: World + 'static>(mut c: C<'_, W>, kp: i32, kl: i32) -> R<i32> {
    let gas = c.data().gas().clone();
    let k = key(&mut c, kp, kl)?;
    charge(
        &mut c,
        gas.storage_read_base + (gas.storage_read_byte + gas.host_byte) * k.len() as u64,
    )?;
    let me = this(&mut c)?;
    let r = c.data().world.storage_has(&me, &k);
    Ok(i32::from(world_err(&mut c, r)?))
}

// The ABI fixes the parameters (`docs/vm.md`).
#[allow(clippy::too_many_arguments)]
fn storage_next<W: World + 'static>(
    mut c: C<'_, W>,
    pp: i32,
    pl: i32,
    cp: i32,
    cl: i32,
    kd: i32,
    kc: i32,
    vd: i32,
    vc: i32,
) -> R<i64> {
    let gas = c.data().gas().clone();
    let key_max = c.data().limits().storage_key_bytes_max;
    let (pl, cl) = (pl as u32, cl as u32);
    if pl > key_max || cl > key_max {
        return Err(trap(TrapKind::StorageKeyTooLarge));
    }
    charge(
        &mut c,
        gas.storage_iter_item + gas.host_byte * u64::from(pl + cl),
    )?;
    let prefix = read(&mut c, pp, pl)?;
    let cursor = read(&mut c, cp, cl)?;
    let me = this(&mut c)?;
    let after = if cl == 0 { None } else { Some(&cursor[..]) };
    // Walk at most as many deleted keys as the frame can pay for.
    let skip_fuel = gas.fuel(gas.storage_iter_skip);
    let skip_max = match skip_fuel {
        0 => u64::MAX,
        fuel => fuel_left(&mut c)? / fuel,
    };
    let r = c.data().world.storage_next(&me, &prefix, after, skip_max);
    let Some(next) = world_err(&mut c, r)? else {
        set_fuel_left(&mut c, 0)?;
        return Err(exit(Failure::OutOfGas));
    };
    charge(&mut c, gas.storage_iter_skip.saturating_mul(next.skipped))?;
    let Some((k, v)) = next.entry else {
        return Ok(-1);
    };
    charge(
        &mut c,
        (gas.storage_read_byte + gas.host_byte) * (k.len() + v.len()) as u64,
    )?;
    write(&mut c, kd, &k[..k.len().min(kc as u32 as usize)])?;
    write(&mut c, vd, &v[..v.len().min(vc as u32 as usize)])?;
    Ok(((k.len() as i64) << 32) | v.len() as i64)
}
