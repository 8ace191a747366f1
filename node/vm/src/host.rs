//! The host functions of the `stele` import module (see `docs/vm.md`).
//!
//! Every pointer/length pair from the guest is bounds-checked against the
//! frame's memory: a bad region traps the contract
//! (`TrapKind::HostPointerOutOfBounds`), never the node. Every length is
//! checked against its limit before anything is allocated, and gas is
//! charged before the work it pays for.

use sha3::{Digest, Sha3_256};
use stele_types::{Address, Event, Hash, PublicKey, Signature, keccak256};
use wasmtime::{AsContextMut, Caller, Linker};

use crate::abi::HOST_MODULE;
use crate::error::{FailKind, Failure, TrapKind, VmError};
use crate::exec::{FrameCall, HostExit, get_fuel, run_frame, set_fuel, valid_method};
use crate::limits::event_bytes;
use crate::state::{HostState, NewCode};
use crate::world::World;

type C<'a, W> = Caller<'a, HostState<W>>;
type R<T> = wasmtime::Result<T>;

fn exit(f: Failure) -> wasmtime::Error {
    wasmtime::Error::new(HostExit::Fail(f))
}

fn trap(kind: TrapKind) -> wasmtime::Error {
    exit(Failure::Trapped(kind))
}

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

fn memory<W: World + 'static>(c: &mut C<'_, W>) -> R<wasmtime::Memory> {
    match c.data().frames.last().and_then(|f| f.memory) {
        Some(m) => Ok(m),
        None => Err(fatal(c, VmError::Invariant("frame has a memory"))),
    }
}

fn region(ptr: i32, len: u64, mem_len: usize) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as u64;
    let end = start.checked_add(len)?;
    if end > mem_len as u64 {
        return None;
    }
    Some(start as usize..end as usize)
}

/// Copies `len` bytes at `ptr` out of guest memory.
fn read<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, len: u32) -> R<Vec<u8>> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    let r = region(ptr, u64::from(len), data.len())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    Ok(data[r].to_vec())
}

fn read_array<W: World + 'static, const N: usize>(c: &mut C<'_, W>, ptr: i32) -> R<[u8; N]> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    let r =
        region(ptr, N as u64, data.len()).ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    let mut out = [0u8; N];
    out.copy_from_slice(&data[r]);
    Ok(out)
}

/// Copies `bytes` into guest memory at `ptr`.
fn write<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, bytes: &[u8]) -> R<()> {
    let mem = memory(c)?;
    let data = mem.data_mut(&mut *c);
    let r = region(ptr, bytes.len() as u64, data.len())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Checks `ptr..ptr+len` is in bounds without copying (to fail before work).
fn check<W: World + 'static>(c: &mut C<'_, W>, ptr: i32, len: u64) -> R<()> {
    let mem = memory(c)?;
    let size = mem.data_size(&*c);
    region(ptr, len, size)
        .map(|_| ())
        .ok_or_else(|| trap(TrapKind::HostPointerOutOfBounds))
}

fn world_err<W: World + 'static, T>(
    c: &mut C<'_, W>,
    r: Result<T, crate::world::WorldError>,
) -> R<T> {
    r.map_err(|e| fatal(c, e.into()))
}

fn this<W: World + 'static>(c: &mut C<'_, W>) -> R<Address> {
    match c.data().frame() {
        Ok(f) => Ok(f.contract),
        Err(e) => Err(fatal(c, e)),
    }
}

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

/// Registers every host function of [`crate::abi::HOST_FUNCTIONS`].
pub(crate) fn link<W: World + 'static>(l: &mut Linker<HostState<W>>) -> wasmtime::Result<()> {
    let m = HOST_MODULE;

    l.func_wrap(m, "input_len", |mut c: C<'_, W>| -> R<i32> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        let len = c.data().frame().map(|f| f.input.len()).unwrap_or(0);
        Ok(len as i32)
    })?;
    l.func_wrap(m, "input_read", |mut c: C<'_, W>, dst: i32| -> R<()> {
        let input = c
            .data()
            .frame()
            .map(|f| f.input.clone())
            .unwrap_or_default();
        let g = c.data().gas().host(input.len() as u64);
        charge(&mut c, g)?;
        write(&mut c, dst, &input)
    })?;

    l.func_wrap(
        m,
        "storage_read",
        |mut c: C<'_, W>, kp: i32, kl: i32, dst: i32, cap: i32| -> R<i64> {
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
        },
    )?;
    l.func_wrap(
        m,
        "storage_write",
        |mut c: C<'_, W>, kp: i32, kl: i32, vp: i32, vl: i32| -> R<()> {
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
        },
    )?;
    l.func_wrap(
        m,
        "storage_remove",
        |mut c: C<'_, W>, kp: i32, kl: i32| -> R<i32> {
            let gas = c.data().gas().clone();
            let k = key(&mut c, kp, kl)?;
            charge(
                &mut c,
                gas.storage_delete_base + (gas.storage_read_byte + gas.host_byte) * k.len() as u64,
            )?;
            let me = this(&mut c)?;
            let r = c.data_mut().world.storage_remove(&me, &k);
            Ok(i32::from(world_err(&mut c, r)?))
        },
    )?;
    l.func_wrap(
        m,
        "storage_has",
        |mut c: C<'_, W>, kp: i32, kl: i32| -> R<i32> {
            let gas = c.data().gas().clone();
            let k = key(&mut c, kp, kl)?;
            charge(
                &mut c,
                gas.storage_read_base + (gas.storage_read_byte + gas.host_byte) * k.len() as u64,
            )?;
            let me = this(&mut c)?;
            let r = c.data().world.storage_has(&me, &k);
            Ok(i32::from(world_err(&mut c, r)?))
        },
    )?;
    l.func_wrap(
        m,
        "storage_next",
        |mut c: C<'_, W>,
         pp: i32,
         pl: i32,
         cp: i32,
         cl: i32,
         kd: i32,
         kc: i32,
         vd: i32,
         vc: i32|
         -> R<i64> {
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
        },
    )?;

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
    l.func_wrap(m, "caller", |mut c: C<'_, W>, dst: i32| -> R<()> {
        context_bytes(&mut c, dst, |s| {
            s.frames
                .last()
                .map(|f| f.caller.0.to_vec())
                .unwrap_or_default()
        })
    })?;
    l.func_wrap(m, "origin", |mut c: C<'_, W>, dst: i32| -> R<()> {
        context_bytes(&mut c, dst, |s| s.ctx.origin.0.to_vec())
    })?;
    l.func_wrap(m, "self_address", |mut c: C<'_, W>, dst: i32| -> R<()> {
        context_bytes(&mut c, dst, |s| {
            s.frames
                .last()
                .map(|f| f.contract.0.to_vec())
                .unwrap_or_default()
        })
    })?;
    l.func_wrap(m, "value", |mut c: C<'_, W>, dst: i32| -> R<()> {
        context_bytes(&mut c, dst, |s| {
            s.frames
                .last()
                .map(|f| f.value.to_le_bytes().to_vec())
                .unwrap_or_default()
        })
    })?;
    l.func_wrap(m, "tx_hash", |mut c: C<'_, W>, dst: i32| -> R<()> {
        context_bytes(&mut c, dst, |s| s.ctx.tx_hash.0.to_vec())
    })?;
    l.func_wrap(m, "block_height", |mut c: C<'_, W>| -> R<i64> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        Ok(c.data().ctx.block_height as i64)
    })?;
    l.func_wrap(m, "block_timestamp", |mut c: C<'_, W>| -> R<i64> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        Ok(c.data().ctx.block_timestamp_ms as i64)
    })?;
    l.func_wrap(m, "chain_id", |mut c: C<'_, W>| -> R<i64> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        Ok(c.data().ctx.chain_id as i64)
    })?;

    l.func_wrap(
        m,
        "balance",
        |mut c: C<'_, W>, ap: i32, dst: i32| -> R<()> {
            let gas = c.data().gas().clone();
            charge(&mut c, gas.balance_read + gas.host(36))?;
            let who = Address(read_array(&mut c, ap)?);
            let b = c.data().world.balance(&who);
            let b = world_err(&mut c, b)?;
            write(&mut c, dst, &b.to_le_bytes())
        },
    )?;
    l.func_wrap(
        m,
        "transfer",
        |mut c: C<'_, W>, ap: i32, vp: i32| -> R<i32> {
            let gas = c.data().gas().clone();
            charge(&mut c, gas.transfer + gas.host(36))?;
            let to = Address(read_array(&mut c, ap)?);
            let amount = u128::from_le_bytes(read_array(&mut c, vp)?);
            let me = this(&mut c)?;
            let r = c.data_mut().world.transfer(&me, &to, amount);
            Ok(if world_err(&mut c, r)? { 0 } else { 1 })
        },
    )?;

    l.func_wrap(
        m,
        "emit_event",
        |mut c: C<'_, W>, tp: i32, tc: i32, dp: i32, dl: i32| -> R<()> {
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
        },
    )?;
    l.func_wrap(
        m,
        "set_return",
        |mut c: C<'_, W>, p: i32, len: i32| -> R<()> {
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
        },
    )?;
    l.func_wrap(m, "revert", |mut c: C<'_, W>, p: i32, len: i32| -> R<()> {
        let len = len as u32;
        if len > c.data().limits().return_data_bytes_max {
            return Err(trap(TrapKind::ReturnDataTooLarge));
        }
        let g = c.data().gas().host(u64::from(len));
        charge(&mut c, g)?;
        let bytes = read(&mut c, p, len)?;
        Err(exit(Failure::Reverted(bytes)))
    })?;
    l.func_wrap(m, "gas_left", |mut c: C<'_, W>| -> R<i64> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        let left = fuel_left(&mut c)? / c.data().gas().fuel_per_gas.max(1);
        Ok(left as i64)
    })?;

    l.func_wrap(
        m,
        "keccak256",
        |mut c: C<'_, W>, p: i32, len: i32, dst: i32| -> R<()> {
            let len = len as u32;
            let gas = c.data().gas().clone();
            check(&mut c, p, u64::from(len))?;
            charge(
                &mut c,
                gas.hash(u64::from(len)) + gas.host(u64::from(len) + 32),
            )?;
            let input = read(&mut c, p, len)?;
            write(&mut c, dst, &keccak256(&input).0)
        },
    )?;
    l.func_wrap(
        m,
        "sha3_256",
        |mut c: C<'_, W>, p: i32, len: i32, dst: i32| -> R<()> {
            let len = len as u32;
            let gas = c.data().gas().clone();
            check(&mut c, p, u64::from(len))?;
            charge(
                &mut c,
                gas.hash(u64::from(len)) + gas.host(u64::from(len) + 32),
            )?;
            let input = read(&mut c, p, len)?;
            let digest: [u8; 32] = Sha3_256::digest(&input).into();
            write(&mut c, dst, &digest)
        },
    )?;
    l.func_wrap(
        m,
        "secp256k1_recover",
        |mut c: C<'_, W>, dp: i32, sp: i32, dst: i32| -> R<i32> {
            let gas = c.data().gas().clone();
            charge(&mut c, gas.secp256k1 + gas.host(32 + 65 + 33))?;
            let digest = Hash(read_array(&mut c, dp)?);
            let sig = Signature(read_array(&mut c, sp)?);
            check(&mut c, dst, 33)?;
            match sig.recover(&digest) {
                Ok(pk) => {
                    write(&mut c, dst, &pk.0)?;
                    Ok(0)
                }
                Err(_) => Ok(1),
            }
        },
    )?;
    l.func_wrap(
        m,
        "secp256k1_verify",
        |mut c: C<'_, W>, dp: i32, sp: i32, pkp: i32| -> R<i32> {
            let gas = c.data().gas().clone();
            charge(&mut c, gas.secp256k1 + gas.host(32 + 65 + 33))?;
            let digest = Hash(read_array(&mut c, dp)?);
            let sig = Signature(read_array(&mut c, sp)?);
            let pk = PublicKey(read_array(&mut c, pkp)?);
            Ok(i32::from(pk.verify(&digest, &sig).is_ok()))
        },
    )?;

    l.func_wrap(
        m,
        "call",
        |mut c: C<'_, W>,
         ap: i32,
         mp: i32,
         ml: i32,
         argp: i32,
         argl: i32,
         vp: i32,
         gas_limit: i64|
         -> R<i32> {
            let gas = c.data().gas().clone();
            let limits = c.data().limits().clone();
            let (ml, argl) = (ml as u32, argl as u32);
            if ml > limits.method_bytes_max {
                return Err(trap(TrapKind::InvalidMethodName));
            }
            if argl > limits.args_bytes_max {
                return Err(trap(TrapKind::ArgsTooLarge));
            }
            if gas_limit < 0 {
                return Err(trap(TrapKind::NegativeGas));
            }
            charge(
                &mut c,
                gas.call_base + gas.host(20 + u64::from(ml) + u64::from(argl) + 16),
            )?;
            let contract = Address(read_array(&mut c, ap)?);
            let method = read(&mut c, mp, ml)?;
            let args = read(&mut c, argp, argl)?;
            let value = u128::from_le_bytes(read_array(&mut c, vp)?);
            let method = match String::from_utf8(method) {
                Ok(s) if valid_method(&s, limits.method_bytes_max) => s,
                _ => return Err(trap(TrapKind::InvalidMethodName)),
            };
            let budget = sub_budget(fuel_left(&mut c)?, gas.fuel(gas_limit as u64));
            let caller = this(&mut c)?;
            let call = FrameCall {
                caller,
                contract,
                method,
                args,
                value,
                gas_budget: budget,
                deploy: None,
                upgrade: false,
            };
            finish_sub_call(&mut c, call).map(|(status, _)| status)
        },
    )?;
    l.func_wrap(
        m,
        "deploy",
        |mut c: C<'_, W>,
         cp: i32,
         cl: i32,
         argp: i32,
         argl: i32,
         vp: i32,
         gas_limit: i64,
         dst: i32|
         -> R<i32> {
            let gas = c.data().gas().clone();
            let limits = c.data().limits().clone();
            let (cl, argl) = (cl as u32, argl as u32);
            if argl > limits.args_bytes_max {
                return Err(trap(TrapKind::ArgsTooLarge));
            }
            if gas_limit < 0 {
                return Err(trap(TrapKind::NegativeGas));
            }
            check(&mut c, dst, 20)?;
            charge(&mut c, gas.host(u64::from(argl) + 16))?;
            if cl as usize > limits.code_bytes_max {
                let err = crate::validate::ValidationError::CodeTooLarge {
                    len: cl as usize,
                    max: limits.code_bytes_max,
                };
                let f = Failure::Failed(FailKind::InvalidCode(err));
                let out = f.output();
                if let Ok(frame) = c.data_mut().frame_mut() {
                    frame.last_result = out;
                }
                return Ok(f.status() as i32);
            }
            charge(
                &mut c,
                gas.deploy_bytes(cl as usize) + gas.host(u64::from(cl)),
            )?;
            let code = NewCode::new(read(&mut c, cp, cl)?);
            charge(
                &mut c,
                gas.deploy_functions(&code.code)
                    .saturating_add(gas.deploy_complexity_of(|| code.complexity(&limits))),
            )?;
            let args = read(&mut c, argp, argl)?;
            let value = u128::from_le_bytes(read_array(&mut c, vp)?);
            let creator = this(&mut c)?;
            let nonce = c.data().world.nonce(&creator);
            let nonce = world_err(&mut c, nonce)?;
            let r = c
                .data_mut()
                .world
                .set_nonce(&creator, nonce.saturating_add(1));
            world_err(&mut c, r)?;
            let contract = Address::contract(&creator, nonce);
            let budget = sub_budget(fuel_left(&mut c)?, gas.fuel(gas_limit as u64));
            let call = FrameCall {
                caller: creator,
                contract,
                method: crate::abi::INIT_EXPORT.to_string(),
                args,
                value,
                gas_budget: budget,
                deploy: Some(code),
                upgrade: false,
            };
            let (status, ok) = finish_sub_call(&mut c, call)?;
            if ok {
                write(&mut c, dst, &contract.0)?;
            }
            Ok(status)
        },
    )?;
    l.func_wrap(
        m,
        "upgrade",
        |mut c: C<'_, W>, cp: i32, cl: i32, argp: i32, argl: i32, gas_limit: i64| -> R<i32> {
            let gas = c.data().gas().clone();
            let limits = c.data().limits().clone();
            let (cl, argl) = (cl as u32, argl as u32);
            if argl > limits.args_bytes_max {
                return Err(trap(TrapKind::ArgsTooLarge));
            }
            if gas_limit < 0 {
                return Err(trap(TrapKind::NegativeGas));
            }
            charge(&mut c, gas.host(u64::from(argl)))?;
            if cl as usize > limits.code_bytes_max {
                let err = crate::validate::ValidationError::CodeTooLarge {
                    len: cl as usize,
                    max: limits.code_bytes_max,
                };
                let f = Failure::Failed(FailKind::InvalidCode(err));
                let out = f.output();
                if let Ok(frame) = c.data_mut().frame_mut() {
                    frame.last_result = out;
                }
                return Ok(f.status() as i32);
            }
            charge(
                &mut c,
                gas.deploy_bytes(cl as usize) + gas.host(u64::from(cl)),
            )?;
            let code = NewCode::new(read(&mut c, cp, cl)?);
            charge(
                &mut c,
                gas.deploy_functions(&code.code)
                    .saturating_add(gas.deploy_complexity_of(|| code.complexity(&limits))),
            )?;
            let args = read(&mut c, argp, argl)?;
            // A contract replaces only its own code; who may ask it to is
            // the contract's own rule.
            let contract = this(&mut c)?;
            let budget = sub_budget(fuel_left(&mut c)?, gas.fuel(gas_limit as u64));
            let call = FrameCall {
                caller: contract,
                contract,
                method: crate::abi::MIGRATE_EXPORT.to_string(),
                args,
                value: 0,
                gas_budget: budget,
                deploy: Some(code),
                upgrade: true,
            };
            finish_sub_call(&mut c, call).map(|(status, _)| status)
        },
    )?;
    l.func_wrap(m, "result_len", |mut c: C<'_, W>| -> R<i32> {
        let g = c.data().gas().host(0);
        charge(&mut c, g)?;
        Ok(c.data().frame().map(|f| f.last_result.len()).unwrap_or(0) as i32)
    })?;
    l.func_wrap(m, "result_read", |mut c: C<'_, W>, dst: i32| -> R<()> {
        let result = c
            .data()
            .frame()
            .map(|f| f.last_result.clone())
            .unwrap_or_default();
        let g = c.data().gas().host(result.len() as u64);
        charge(&mut c, g)?;
        write(&mut c, dst, &result)
    })?;
    Ok(())
}

/// Gas a sub-call may use: what it asked for (0 = everything allowed), but
/// at most 63/64 of what is left, so the caller can always handle failure.
fn sub_budget(left: u64, requested: u64) -> u64 {
    let allowed = left - left / 64;
    if requested == 0 {
        allowed
    } else {
        requested.min(allowed)
    }
}

/// Runs a nested frame and records its output for `result_read`. Returns
/// the status code and whether it succeeded.
fn finish_sub_call<W: World + 'static>(c: &mut C<'_, W>, call: FrameCall) -> R<(i32, bool)> {
    let frame = match run_frame(&mut c.as_context_mut(), call) {
        Ok(f) => f,
        Err(e) => return Err(fatal(c, e)),
    };
    let (status, out, ok) = match frame.result {
        Ok(out) => (0, out, true),
        Err(f) => (f.status() as i32, f.output(), false),
    };
    match c.data_mut().frame_mut() {
        Ok(f) => f.last_result = out,
        Err(e) => return Err(fatal(c, e)),
    }
    Ok((status, ok))
}
