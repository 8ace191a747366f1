//! Guest memory: every access a host function makes goes through here and
//! is bounds-checked against the calling frame's memory.

use std::ops::Range;

use crate::error::{TrapKind, VmError};
use crate::world::World;

use super::{C, R, fatal, trap};

fn memory<W: World + 'static>(c: &mut C<'_, W>) -> R<wasmtime::Memory> {
    match c.data().frames.last().and_then(|f| f.memory) {
        Some(m) => Ok(m),
        None => Err(fatal(c, VmError::Invariant("frame has a memory"))),
    }
}

fn region(ptr: i32, len: u64, mem_len: usize) -> Option<Range<usize>> {
    let start = ptr as u32 as u64;
    let end = start.checked_add(len)?;
    if end > mem_len as u64 {
        return None;
    }
    Some(start as usize..end as usize)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(super) fn read<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, len: u32) -> R<Vec<u8>> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    let r = region(ptr, u64::from(len), data.len())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    Ok(data[r].to_vec())
}

/// Copies the `N` bytes at `ptr` out of guest memory.
pub(super) fn read_array<W: World + 'static, const N: usize>(
    c: &mut C<'_, W>,
    ptr: i32,
) -> R<[u8; N]> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    let r =
        region(ptr, N as u64, data.len()).ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    let mut out = [0u8; N];
    out.copy_from_slice(&data[r]);
    Ok(out)
}

/// Copies `bytes` into guest memory at `ptr`.
pub(super) fn write<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, bytes: &[u8]) -> R<()> {
    let mem = memory(c)?;
    let data = mem.data_mut(&mut *c);
    let r = region(ptr, bytes.len() as u64, data.len())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Checks `ptr..ptr+len` is in bounds without copying (to fail before work).
pub(super) fn check<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, len: u64) -> R<()> {
    let mem = memory(c)?;
    let size = mem.data_size(&*c);
    region(ptr, len, size)
        .map(|_| ())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))
}
