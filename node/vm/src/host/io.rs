//! Input and output: the frame's input, its return data, and reverting.

use crate::abi::HOST_MODULE;
use crate::error::{Failure, TrapKind};
use crate::world::World;

use super::mem::{read, write};
use super::{C, L, R, charge, exit, fatal, trap};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "input_len", input_len::<W>)?;
    l.func_wrap(HOST_MODULE, "input_read", input_read::<W>)?;
    l.func_wrap(HOST_MODULE, "set_return", set_return::<W>)?;
    l.func_wrap(HOST_MODULE, "revert", revert::<W>)?;
    Ok(())
}

fn input_len<W: World + 'static>(mut c: C<'_, W>) -> R<i32> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    let len = c.data().frame().map(|f| f.input.len()).unwrap_or(0);
    Ok(len as i32)
}

fn input_read<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    let input = c
        .data()
        .frame()
        .map(|f| f.input.clone())
        .unwrap_or_default();
    let g = c.data().gas().host(input.len() as u64);
    charge(&mut c, g)?;
    write(&mut c, dst, &input)
}

fn set_return<W: World + 'static>(mut c: C<'_, W>, p: i32, len: i32) -> R<()> {
    let len = len as u32;
    if len > c.data().limits().return_data_bytes_max {
        return Err(trap(TrapKind::ReturnDataTooLarge));
    }
    let g = c.data().gas().host(u64::from(len));
    charge(&mut c, g)?;
    let bytes = read(&mut c, p, len)?;
    match c.data_mut().frame_mut() {
        Ok(f) => f.return_data = bytes,
        Err(e) => return Err(fatal(&mut c, e)),
    }
    Ok(())
}

fn revert<W: World + 'static>(mut c: C<'_, W>, p: i32, len: i32) -> R<()> {
    let len = len as u32;
    if len > c.data().limits().return_data_bytes_max {
        return Err(trap(TrapKind::ReturnDataTooLarge));
    }
    let g = c.data().gas().host(u64::from(len));
    charge(&mut c, g)?;
    let bytes = read(&mut c, p, len)?;
    Err(exit(Failure::Reverted(bytes)))
}
