//! Calls and deploys: nested frames (`call`, `deploy`, `upgrade`) and the
//! result the last of them left (`result_len`, `result_read`).

use stele_types::Address;
use wasmtime::AsContextMut;

use crate::abi::{HOST_MODULE, INIT_EXPORT, MIGRATE_EXPORT};
use crate::error::{FailKind, Failure, TrapKind};
use crate::exec::{FrameCall, run_frame, valid_method};
use crate::gas::GasSchedule;
use crate::limits::VmLimits;
use crate::state::NewCode;
use crate::validate::ValidationError;
use crate::world::World;

use super::mem::{check, read, read_array, write};
use super::{C, L, R, charge, fatal, fuel_left, this, trap, world_err};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "call", call::<W>)?;
    l.func_wrap(HOST_MODULE, "deploy", deploy::<W>)?;
    l.func_wrap(HOST_MODULE, "upgrade", upgrade::<W>)?;
    l.func_wrap(HOST_MODULE, "result_len", result_len::<W>)?;
    l.func_wrap(HOST_MODULE, "result_read", result_read::<W>)?;
    Ok(())
}

// The ABI fixes the parameters (`docs/vm.md`).
#[allow(clippy::too_many_arguments)]
fn call<W: World + 'static>(
    mut c: C<'_, W>,
    ap: i32,
    mp: i32,
    ml: i32,
    argp: i32,
    argl: i32,
    vp: i32,
    gas_limit: i64,
) -> R<i32> {
    let gas = c.data().gas().clone();
    let limits = c.data().limits().clone();
    let (ml, argl) = (ml as u32, argl as u32);
    if ml > limits.method_bytes_max {
        return Err(trap(TrapKind::InvalidMethodName));
    }
    check_sub_call(&limits, argl, gas_limit)?;
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
}

// The ABI fixes the parameters (`docs/vm.md`).
#[allow(clippy::too_many_arguments)]
fn deploy<W: World + 'static>(
    mut c: C<'_, W>,
    cp: i32,
    cl: i32,
    argp: i32,
    argl: i32,
    vp: i32,
    gas_limit: i64,
    dst: i32,
) -> R<i32> {
    let gas = c.data().gas().clone();
    let limits = c.data().limits().clone();
    let (cl, argl) = (cl as u32, argl as u32);
    check_sub_call(&limits, argl, gas_limit)?;
    check(&mut c, dst, 20)?;
    charge(&mut c, gas.host(u64::from(argl) + 16))?;
    let code = match new_code(&mut c, cp, cl, &gas, &limits)? {
        Ok(code) => code,
        Err(status) => return Ok(status),
    };
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
        method: INIT_EXPORT.to_string(),
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
}

fn upgrade<W: World + 'static>(
    mut c: C<'_, W>,
    cp: i32,
    cl: i32,
    argp: i32,
    argl: i32,
    gas_limit: i64,
) -> R<i32> {
    let gas = c.data().gas().clone();
    let limits = c.data().limits().clone();
    let (cl, argl) = (cl as u32, argl as u32);
    check_sub_call(&limits, argl, gas_limit)?;
    charge(&mut c, gas.host(u64::from(argl)))?;
    let code = match new_code(&mut c, cp, cl, &gas, &limits)? {
        Ok(code) => code,
        Err(status) => return Ok(status),
    };
    let args = read(&mut c, argp, argl)?;
    // A contract replaces only its own code; who may ask it to is
    // the contract's own rule.
    let contract = this(&mut c)?;
    let budget = sub_budget(fuel_left(&mut c)?, gas.fuel(gas_limit as u64));
    let call = FrameCall {
        caller: contract,
        contract,
        method: MIGRATE_EXPORT.to_string(),
        args,
        value: 0,
        gas_budget: budget,
        deploy: Some(code),
        upgrade: true,
    };
    finish_sub_call(&mut c, call).map(|(status, _)| status)
}

fn result_len<W: World + 'static>(mut c: C<'_, W>) -> R<i32> {
    let g = c.data().gas().host(0);
    charge(&mut c, g)?;
    Ok(c.data().frame().map(|f| f.last_result.len()).unwrap_or(0) as i32)
}

fn result_read<W: World + 'static>(mut c: C<'_, W>, dst: i32) -> R<()> {
    let result = c
        .data()
        .frame()
        .map(|f| f.last_result.clone())
        .unwrap_or_default();
    let g = c.data().gas().host(result.len() as u64);
    charge(&mut c, g)?;
    write(&mut c, dst, &result)
}

/// Traps on what every sub-call refuses before it costs anything: args
/// over their limit, a negative gas budget.
fn check_sub_call(limits: &VmLimits, argl: u32, gas_limit: i64) -> R<()> {
    if argl > limits.args_bytes_max {
        return Err(trap(TrapKind::ArgsTooLarge));
    }
    if gas_limit < 0 {
        return Err(trap(TrapKind::NegativeGas));
    }
    Ok(())
}

/// The `cl` bytes of code at `cp` that a `deploy` or `upgrade` installs,
/// paid for (bytes, then functions and compile complexity). Code over the
/// size limit is the sub-call's failure, not a trap: `Ok(Err(status))`,
/// with the reason left for `result_read`.
fn new_code<W: World + 'static>(
    c: &mut C<'_, W>,
    cp: i32,
    cl: u32,
    gas: &GasSchedule,
    limits: &VmLimits,
) -> R<Result<NewCode, i32>> {
    if cl as usize > limits.code_bytes_max {
        let err = ValidationError::CodeTooLarge {
            len: cl as usize,
            max: limits.code_bytes_max,
        };
        let f = Failure::Failed(FailKind::InvalidCode(err));
        let out = f.output();
        if let Ok(frame) = c.data_mut().frame_mut() {
            frame.last_result = out;
        }
        return Ok(Err(f.status() as i32));
    }
    charge(c, gas.deploy_bytes(cl as usize) + gas.host(u64::from(cl)))?;
    let code = NewCode::new(read(c, cp, cl)?);
    charge(
        c,
        gas.deploy_functions(&code.code)
            .saturating_add(gas.deploy_complexity_of(|| code.complexity(limits))),
    )?;
    Ok(Ok(code))
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
