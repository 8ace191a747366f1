//! Executing calls and deploys: frames, gas budgets, checkpoints, outcomes.

use std::sync::Arc;

use stele_types::{Address, Amount, Event, ExecStatus, keccak256};
use wasmtime::{AsContextMut, Global, Store, StoreContextMut, Trap, Val};

use crate::abi;
use crate::error::{FailKind, Failure, TrapKind, VmError};
use crate::gas::Metering;
use crate::limits::RESIDENT_PAGES;
use crate::state::{Frame, HostState, LoadError, NewCode, Runtime};
use crate::world::World;

// Defined beside the store's data, which holds them; still part of this
// module's public interface.
pub use crate::state::{CallTrace, ExecContext};

/// What to execute.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Call exported `method` of `contract` with `args`.
    Call {
        contract: Address,
        method: &'a str,
        args: &'a [u8],
    },
    /// Deploy `code` at `Address::contract(caller, nonce)` and run its
    /// `init` export (if any) with `init_args`. The caller's account nonce
    /// is the node's to manage; the VM does not change it.
    Deploy {
        code: &'a [u8],
        init_args: &'a [u8],
        nonce: u64,
    },
}

/// The result of an execution. The world passed to `execute` already holds
/// the writes if `status` is `Success`, and none of them otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: ExecStatus,
    pub gas_used: u64,
    /// Return data on success, the revert payload or the deterministic
    /// failure message otherwise.
    pub output: Vec<u8>,
    /// Events, empty unless `status` is `Success`.
    pub events: Vec<Event>,
    /// Why it did not succeed.
    pub failure: Option<Failure>,
    /// The new contract, for a successful deploy.
    pub contract_address: Option<Address>,
    /// Nested calls with gas per frame, if `ExecContext::debug` was set.
    pub trace: Option<CallTrace>,
}

/// The error a host function returns to stop its frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostExit {
    #[error("{0}")]
    Fail(Failure),
    #[error("fatal")]
    Fatal,
}

/// A call of one frame.
pub(crate) struct FrameCall {
    pub(crate) caller: Address,
    pub(crate) contract: Address,
    pub(crate) method: String,
    pub(crate) args: Vec<u8>,
    pub(crate) value: Amount,
    pub(crate) gas_budget: u64,
    /// For a deploy (or an upgrade): the code to install at `contract`
    /// first.
    pub(crate) deploy: Option<NewCode>,
    /// `deploy` replaces the code of the existing `contract`, which is the
    /// caller itself; `method` is then the new code's `migrate`.
    pub(crate) upgrade: bool,
}

/// How a frame ended.
pub(crate) struct FrameResult {
    pub(crate) result: Result<Vec<u8>, Failure>,
    pub(crate) gas_used: u64,
}

/// Runs `action` against `world` in a fresh store on `runtime`'s engine:
/// what [`Vm::execute`](crate::Vm::execute) and
/// [`Vm::query`](crate::Vm::query) do, the latter with `epoch_ticks`
/// (a wall-clock deadline on an engine with epoch interruption).
pub(crate) fn run<W: World + 'static>(
    runtime: Arc<dyn Runtime<W>>,
    ctx: &ExecContext,
    action: Action<'_>,
    gas_limit: u64,
    world: W,
    epoch_ticks: Option<u64>,
) -> (Result<Outcome, VmError>, W) {
    let state = HostState::new(world, Arc::clone(&runtime), ctx.clone());
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|s| &mut s.limiter);
    if let Some(ticks) = epoch_ticks {
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks);
    }
    let result = run_in(&mut store, &*runtime, ctx, action, gas_limit);
    let mut state = store.into_data();
    let gas = runtime.gas();
    let outcome = result.map(|(frame, contract_address)| {
        let trace = if ctx.debug { state.trace.pop() } else { None };
        let events = std::mem::take(&mut state.events);
        match frame.result {
            Ok(output) => Outcome {
                status: ExecStatus::Success,
                gas_used: gas.gas_of_fuel(frame.gas_used),
                output,
                events,
                failure: None,
                contract_address,
                trace,
            },
            Err(f) => Outcome {
                status: f.status(),
                gas_used: gas.gas_of_fuel(frame.gas_used),
                output: f.output(),
                events: Vec::new(),
                failure: Some(f),
                contract_address: None,
                trace,
            },
        }
    });
    (outcome, state.world)
}

fn run_in<W: World + 'static>(
    store: &mut Store<HostState<W>>,
    runtime: &dyn Runtime<W>,
    ctx: &ExecContext,
    action: Action<'_>,
    gas_limit: u64,
) -> Result<(FrameResult, Option<Address>), VmError> {
    let limits = runtime.limits();
    let gas = runtime.gas();
    let fuel_limit = match gas.metering {
        Metering::WasmtimeFuel => gas.fuel(gas_limit),
        // The instrumented counter is an i64: no budget exceeds it.
        Metering::Instrumented => gas.fuel(gas_limit).min(i64::MAX as u64),
    };
    set_fuel(store, fuel_limit)?;
    let fail = |kind: FailKind| FrameResult {
        result: Err(Failure::Failed(kind)),
        gas_used: 0,
    };
    match action {
        Action::Call {
            contract,
            method,
            args,
        } => {
            if args.len() > limits.args_bytes_max as usize {
                return Ok((fail(FailKind::ArgsTooLarge), None));
            }
            if !valid_method(method, limits.method_bytes_max) {
                return Ok((fail(FailKind::InvalidMethodName), None));
            }
            let call = FrameCall {
                caller: ctx.caller,
                contract,
                method: method.to_string(),
                args: args.to_vec(),
                value: ctx.value,
                gas_budget: fuel_limit,
                deploy: None,
                upgrade: false,
            };
            Ok((run_frame(&mut store.as_context_mut(), call)?, None))
        }
        Action::Deploy {
            code,
            init_args,
            nonce,
        } => {
            let new_code = NewCode::new(code.to_vec());
            let cost = gas.fuel(
                gas.deploy_bytes(code.len())
                    .saturating_add(gas.deploy_functions(code))
                    .saturating_add(gas.deploy_complexity_of(|| new_code.complexity(limits))),
            );
            if cost > fuel_limit {
                return Ok((
                    FrameResult {
                        result: Err(Failure::OutOfGas),
                        gas_used: fuel_limit,
                    },
                    None,
                ));
            }
            if init_args.len() > limits.args_bytes_max as usize {
                return Ok((fail(FailKind::ArgsTooLarge), None));
            }
            set_fuel(store, fuel_limit - cost)?;
            let address = Address::contract(&ctx.caller, nonce);
            let call = FrameCall {
                caller: ctx.caller,
                contract: address,
                method: abi::INIT_EXPORT.to_string(),
                args: init_args.to_vec(),
                value: ctx.value,
                gas_budget: fuel_limit - cost,
                deploy: Some(new_code),
                upgrade: false,
            };
            let mut frame = run_frame(&mut store.as_context_mut(), call)?;
            frame.gas_used += cost;
            let ok = frame.result.is_ok();
            Ok((frame, ok.then_some(address)))
        }
    }
}

pub(crate) fn valid_method(method: &str, max: u32) -> bool {
    stele_types::tx::validate_method_name(method, max as usize).is_ok()
}

/// Sets the fuel left to the running frame (or to the execution between
/// frames): wasmtime's store fuel, or under [`Metering::Instrumented`] the
/// running instance's gas global.
pub(crate) fn set_fuel<W: World + 'static>(
    store: &mut impl AsContextMut<Data = HostState<W>>,
    fuel: u64,
) -> Result<(), VmError> {
    let mut store = store.as_context_mut();
    let state = store.data_mut();
    if state.gas().metering == Metering::WasmtimeFuel {
        return store
            .set_fuel(fuel)
            .map_err(|_| VmError::Invariant("fuel is enabled"));
    }
    match state.frames.last().and_then(|f| f.gas) {
        Some(global) => global
            .set(&mut store, Val::I64(fuel.min(i64::MAX as u64) as i64))
            .map_err(|_| VmError::Invariant("the gas global is a mutable i64")),
        None => {
            state.fuel = fuel;
            Ok(())
        }
    }
}

/// The fuel left to the running frame (or to the execution between frames).
pub(crate) fn get_fuel<W: World + 'static>(
    store: &mut impl AsContextMut<Data = HostState<W>>,
) -> Result<u64, VmError> {
    let mut store = store.as_context_mut();
    let state = store.data();
    if state.gas().metering == Metering::WasmtimeFuel {
        return store
            .get_fuel()
            .map_err(|_| VmError::Invariant("fuel is enabled"));
    }
    match state.frames.last().and_then(|f| f.gas) {
        Some(global) => Ok(gas_global(&mut store, global)?.max(0) as u64),
        None => Ok(state.fuel),
    }
}

/// The raw value of an instrumented gas counter: below zero once the
/// instance ran out.
fn gas_global<T: 'static>(
    store: &mut impl AsContextMut<Data = T>,
    global: Global,
) -> Result<i64, VmError> {
    match global.get(store) {
        Val::I64(v) => Ok(v),
        _ => Err(VmError::Invariant("the gas global is an i64")),
    }
}

/// Runs one contract frame in its own checkpoint with `call.gas_budget`
/// (which the caller's remaining fuel must cover). On return the store's
/// fuel is the caller's fuel minus what the frame used.
pub(crate) fn run_frame<W: World + 'static>(
    store: &mut StoreContextMut<'_, HostState<W>>,
    call: FrameCall,
) -> Result<FrameResult, VmError> {
    let caller_fuel = get_fuel(store)?;
    if call.gas_budget > caller_fuel {
        return Err(VmError::Invariant("frame budget exceeds the caller's gas"));
    }
    let state = store.data_mut();
    let debug = state.ctx.debug;
    let shared = state.shared.clone();
    if debug {
        state.trace.push(CallTrace {
            caller: call.caller,
            contract: call.contract,
            method: call.method.clone(),
            value: call.value,
            gas_budget: call.gas_budget / shared.gas().fuel_per_gas.max(1),
            gas_used: 0,
            status: ExecStatus::Success,
            output: Vec::new(),
            calls: Vec::new(),
            logs: Vec::new(),
        });
    }
    state.world.checkpoint();
    let events_mark = state.events.len();
    let outcome = frame_body(store, &call);
    let state = store.data_mut();
    let result = match outcome {
        Ok(r) => r,
        Err(fatal) => {
            state.world.revert();
            return Err(fatal);
        }
    };
    if result.result.is_ok() {
        state.world.commit();
    } else {
        state.world.revert();
        state.events.truncate(events_mark);
    }
    set_fuel(store, caller_fuel - result.gas_used)?;
    if debug {
        let state = store.data_mut();
        if let Some(mut t) = state.trace.pop() {
            t.gas_used = shared.gas().gas_of_fuel(result.gas_used);
            let (status, output) = match &result.result {
                Ok(out) => (ExecStatus::Success, out.clone()),
                Err(f) => (f.status(), f.output()),
            };
            t.status = status;
            t.output = output;
            match state.trace.last_mut() {
                Some(parent) => parent.calls.push(t),
                None => state.trace.push(t),
            }
        }
    }
    Ok(result)
}

fn frame_body<W: World + 'static>(
    store: &mut StoreContextMut<'_, HostState<W>>,
    call: &FrameCall,
) -> Result<FrameResult, VmError> {
    let fail = |kind: FailKind| {
        Ok(FrameResult {
            result: Err(Failure::Failed(kind)),
            gas_used: 0,
        })
    };
    let state = store.data_mut();
    let shared = state.shared.clone();
    let limits = shared.limits();
    if state.frames.len() >= limits.call_depth_max as usize {
        return fail(FailKind::CallDepthExceeded);
    }
    // Install the code first for a deploy.
    let compiled = if let Some(new_code) = &call.deploy {
        let exists = state.world.code_hash(&call.contract)?.is_some();
        if call.upgrade && !exists {
            return fail(FailKind::NoSuchContract);
        }
        if !call.upgrade && exists {
            return fail(FailKind::ContractExists);
        }
        let hash = keccak256(&new_code.code);
        let compiled = match shared.load_new(&hash, new_code) {
            Ok(c) => c,
            Err(LoadError::Invalid(e)) => return fail(FailKind::InvalidCode(e)),
            Err(LoadError::Fatal(e)) => return Err(e),
        };
        state
            .world
            .create_contract(&call.contract, &hash, &new_code.code)?;
        compiled
    } else {
        let Some(hash) = state.world.code_hash(&call.contract)? else {
            return fail(FailKind::NoSuchContract);
        };
        match shared.load(&hash, &state.world) {
            Ok(c) => c,
            Err(LoadError::Invalid(_)) => return Err(VmError::CorruptCode),
            Err(LoadError::Fatal(e)) => return Err(e),
        }
    };
    let info = &compiled.info;
    let is_method = info.methods.contains(&call.method);
    let run_code = if call.deploy.is_some() {
        is_method
    } else {
        if !is_method || call.method == abi::INIT_EXPORT || call.method == abi::MIGRATE_EXPORT {
            return fail(FailKind::NoSuchMethod);
        }
        true
    };
    // An upgrade's migration runs in the upgrading contract by design.
    if !info.reentrant && !call.upgrade && state.frames.iter().any(|f| f.contract == call.contract)
    {
        return fail(FailKind::ReentrancyBlocked);
    }
    if call.value > 0
        && !state
            .world
            .transfer(&call.caller, &call.contract, call.value)?
    {
        return fail(FailKind::InsufficientBalance);
    }
    if !run_code {
        return Ok(FrameResult {
            result: Ok(Vec::new()),
            gas_used: 0,
        });
    }
    if state.instantiated >= limits.frames_max {
        return fail(FailKind::TooManyFrames);
    }
    // Checked here, with the limiter's own arithmetic, so that wasmtime's
    // check while instantiating can never fail.
    if !state.limiter.fits(info.initial_pages) {
        return fail(FailKind::MemoryLimit);
    }
    state.instantiated += 1;

    let gas = shared.gas();
    let fresh_pages = info.initial_pages.saturating_sub(RESIDENT_PAGES);
    let instantiate_cost = gas.fuel(
        gas.instantiate_base
            .saturating_add(gas.instantiate_page.saturating_mul(info.initial_pages))
            .saturating_add(gas.memory_page.saturating_mul(fresh_pages))
            .saturating_add(gas.instantiate_data_byte.saturating_mul(info.data_bytes)),
    );
    if instantiate_cost > call.gas_budget {
        return Ok(FrameResult {
            result: Err(Failure::OutOfGas),
            gas_used: call.gas_budget,
        });
    }
    let budget_after_instantiate = call.gas_budget - instantiate_cost;
    set_fuel(store, budget_after_instantiate)?;
    let instance = match compiled.pre.instantiate(&mut *store) {
        Ok(instance) => instance,
        Err(e) => {
            let result = match e.downcast_ref::<Trap>() {
                // A query's wall-clock backstop can fire while the engine
                // initialises the instance: that is the query's timeout,
                // not a node fault.
                Some(Trap::Interrupt) => Failure::Failed(FailKind::Timeout),
                // Initialising the instance failed on the module itself:
                // under V1 limits, a data or element segment that does not
                // fit its memory or table (V2 refuses those at deploy).
                // That is the contract's failure, the same on every node,
                // and it costs the instantiation.
                Some(trap) => classify_trap(*trap, false, || false),
                // Anything else is the node's: its instance pool or memory
                // ran out.
                None => return Err(VmError::Instantiate(e.to_string())),
            };
            return Ok(FrameResult {
                result: Err(result),
                gas_used: instantiate_cost,
            });
        }
    };
    // Whatever fuel the engine may have used while instantiating is
    // replaced by the VM's own deterministic charge above.
    set_fuel(store, budget_after_instantiate)?;
    let memory = instance.get_memory(&mut *store, abi::MEMORY_EXPORT);
    let metering = shared.gas().metering;
    let gas_counter = match metering {
        Metering::WasmtimeFuel => None,
        Metering::Instrumented => Some(instance.get_global(&mut *store, abi::GAS_EXPORT).ok_or(
            VmError::Invariant("instrumented code exports its gas counter"),
        )?),
    };
    let func = instance
        .get_typed_func::<(), ()>(&mut *store, &call.method)
        .map_err(|_| VmError::Invariant("validated method has type () -> ()"))?;
    store.data_mut().frames.push(Frame {
        contract: call.contract,
        caller: call.caller,
        value: call.value,
        input: call.args.clone(),
        memory,
        gas: gas_counter,
        return_data: Vec::new(),
        last_result: Vec::new(),
    });
    if gas_counter.is_some() {
        set_fuel(store, budget_after_instantiate)?;
    }
    let run = func.call(&mut *store, ());
    // Read while this frame is still the running one.
    let counter = match gas_counter {
        Some(global) => Some(gas_global(store, global)?),
        None => None,
    };
    let left = match counter {
        Some(c) => c.max(0) as u64,
        None => get_fuel(store)?,
    };
    let frame = store
        .as_context_mut()
        .data_mut()
        .frames
        .pop()
        .ok_or(VmError::Invariant("frame stack is balanced"))?;
    // wasmtime checks fuel at loop headers and function entries, so a
    // straight run to the end may overdraw by part of a basic block, and an
    // overdraft reads as 0. Every successful frame therefore pays one unit
    // on exit, which it can only do with fuel strictly left: a frame that
    // used its whole budget is out of gas, exactly as at a check point.
    // Instrumented metering charges every block before it runs and cannot
    // overdraw, so it pays nothing on exit.
    let mut remaining = left.min(call.gas_budget);
    let out_of_gas = counter.is_some_and(|c| c < 0);
    // Whether the frame stopped on a trap raised in Wasm code (not one a
    // host function reported).
    let mut engine_trap = false;
    let result = match run {
        Ok(()) if metering == Metering::Instrumented => Ok(frame.return_data),
        Ok(()) if remaining == 0 => Err(Failure::OutOfGas),
        Ok(()) => {
            remaining -= 1;
            Ok(frame.return_data)
        }
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<HostExit>() {
                match exit {
                    HostExit::Fail(f) => Err(f.clone()),
                    HostExit::Fatal => {
                        let state = store.data_mut();
                        return Err(state
                            .fatal
                            .take()
                            .unwrap_or(VmError::Invariant("fatal exit records its error")));
                    }
                }
            } else if let Some(trap) = e.downcast_ref::<Trap>() {
                engine_trap = true;
                Err(classify_trap(*trap, out_of_gas, || {
                    let height = instance
                        .get_global(&mut *store, abi::STACK_HEIGHT_EXPORT)
                        .map(|g| g.get(&mut *store));
                    matches!(height, Some(Val::I32(h)) if h as u32 > limits.stack_height_max)
                }))
            } else {
                engine_trap = true;
                Err(Failure::Trapped(TrapKind::Other))
            }
        }
    };
    let gas_used = match &result {
        Err(Failure::OutOfGas) => call.gas_budget,
        // The instrumented counter is stored at calls and exits only, so
        // after a trap raised in Wasm code it is stale: the frame pays its
        // whole budget. Failures a host function reports (reverts, bad
        // pointers) come after the counter was stored and are exact.
        Err(_) if engine_trap && metering == Metering::Instrumented => call.gas_budget,
        _ => call.gas_budget - remaining,
    };
    Ok(FrameResult { result, gas_used })
}

/// What a trap means. `out_of_gas`: the instrumented gas counter went below
/// zero, so an `unreachable` trap is its charge failing.
fn classify_trap(trap: Trap, out_of_gas: bool, stack_limit_hit: impl FnOnce() -> bool) -> Failure {
    let kind = match trap {
        Trap::OutOfFuel => return Failure::OutOfGas,
        Trap::UnreachableCodeReached if out_of_gas => return Failure::OutOfGas,
        Trap::Interrupt => return Failure::Failed(FailKind::Timeout),
        Trap::UnreachableCodeReached if stack_limit_hit() => TrapKind::StackLimit,
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
        Trap::IndirectCallToNull => TrapKind::UninitializedElement,
        Trap::BadSignature => TrapKind::IndirectCallType,
        Trap::IntegerOverflow => TrapKind::IntegerOverflow,
        Trap::IntegerDivisionByZero => TrapKind::DivisionByZero,
        Trap::BadConversionToInteger => TrapKind::BadConversion,
        Trap::StackOverflow => TrapKind::NativeStackOverflow,
        _ => TrapKind::Other,
    };
    Failure::Trapped(kind)
}
