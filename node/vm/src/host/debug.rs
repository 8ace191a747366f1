//! Debug logs: lines a contract writes for its author. Paid like an event
//! of no topic, never stored: a block's execution drops them, and a traced
//! run (a dry run, a replay, the testkit) keeps them in its call trace.

use crate::abi::{DEBUG_LOG, HOST_MODULE};
use crate::error::TrapKind;
use crate::state::{DEBUG_LOG_DROPPED, DEBUG_LOG_RECORD_BYTES_MAX, DebugLog};
use crate::world::World;

use super::mem::read;
use super::{C, L, R, charge, trap};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, DEBUG_LOG, debug_log::<W>)?;
    Ok(())
}

fn debug_log<W: World + 'static>(mut c: C<'_, W>, ptr: i32, len: i32) -> R<()> {
    let gas = c.data().gas().clone();
    let len = len as u32;
    // Validation refuses the import under limits without debug logs, so
    // the maximum is not 0 here; the check stands anyway.
    if len > c.data().limits().debug_log_bytes_max {
        return Err(trap(TrapKind::DebugLogTooLong));
    }
    charge(
        &mut c,
        gas.event_base + gas.event_byte * u64::from(len) + gas.host(u64::from(len)),
    )?;
    // Read (and bounds-check) the line traced or not, so a traced run ends
    // exactly as the block's did.
    let bytes = read(&mut c, ptr, len)?;
    let state = c.data_mut();
    if !state.ctx.debug || state.log_bytes > DEBUG_LOG_RECORD_BYTES_MAX {
        return Ok(());
    }
    let Some(frame) = state.trace.last_mut() else {
        return Ok(());
    };
    let after_calls = u32::try_from(frame.calls.len()).unwrap_or(u32::MAX);
    state.log_bytes += bytes.len();
    let text = if state.log_bytes > DEBUG_LOG_RECORD_BYTES_MAX {
        DEBUG_LOG_DROPPED.to_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    frame.logs.push(DebugLog { after_calls, text });
    Ok(())
}
