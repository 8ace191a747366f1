//! Events: what a contract emits, within the per-transaction and per-block
//! limits.

use stele_types::{Event, Hash};

use crate::abi::HOST_MODULE;
use crate::error::TrapKind;
use crate::limits::event_bytes;
use crate::world::World;

use super::mem::read;
use super::{C, L, R, charge, this, trap};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "emit_event", emit_event::<W>)?;
    Ok(())
}

fn emit_event<W: World + 'static>(mut c: C<'_, W>, tp: i32, tc: i32, dp: i32, dl: i32) -> R<()> {
    let gas = c.data().gas().clone();
    let limits = c.data().limits();
    let (tc, dl) = (tc as u32, dl as u32);
    if tc > limits.event_topics_max {
        return Err(trap(TrapKind::EventTopics));
    }
    if dl > limits.event_data_bytes_max {
        return Err(trap(TrapKind::EventDataTooLarge));
    }
    if c.data().events.len() >= limits.events_max as usize {
        return Err(trap(TrapKind::TooManyEvents));
    }
    let emitted: u64 = c.data().events.iter().map(event_bytes).sum();
    let allowed = limits.event_bytes_max.min(c.data().ctx.event_bytes_left);
    if emitted + u64::from(tc) * 32 + u64::from(dl) > allowed {
        return Err(trap(TrapKind::EventBytes));
    }
    charge(
        &mut c,
        gas.event_base
            + gas.event_topic * u64::from(tc)
            + gas.event_byte * u64::from(dl)
            + gas.host(u64::from(tc) * 32 + u64::from(dl)),
    )?;
    let raw = read(&mut c, tp, tc * 32)?;
    let topics = raw
        .chunks_exact(32)
        .map(|t| {
            let mut h = [0u8; 32];
            h.copy_from_slice(t);
            Hash(h)
        })
        .collect();
    let data = read(&mut c, dp, dl)?;
    let contract = this(&mut c)?;
    c.data_mut().events.push(Event {
        contract,
        topics,
        data,
    });
    Ok(())
}
