//! The data of one execution's wasmtime store ([`HostState`]) and what it
//! holds: the context, the frame stack, events, the resource limiter, and
//! the [`Runtime`] through which a running frame reaches its engine.
//!
//! Architecture invariant: this module imports none of `exec`, `host` and
//! `vm` (they import it). The engine's linker and compiled code name
//! `HostState`, so `HostState` names the engine only through the
//! [`Runtime`] trait, which `vm::Shared` implements.

use std::cell::OnceCell;
use std::sync::Arc;

use stele_types::{Address, Amount, Event, ExecStatus, Hash};
use wasmtime::{Engine, Global, InstancePre, Memory, ResourceLimiter};

use crate::error::VmError;
use crate::gas::GasSchedule;
use crate::limits::{PAGE_BYTES, VmLimits};
use crate::validate::{ModuleInfo, ValidationError, validate};
use crate::world::World;

/// The block and transaction a call runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecContext {
    /// The account that signed the transaction.
    pub origin: Address,
    /// The direct caller of the top-level frame (the origin for a
    /// transaction).
    pub caller: Address,
    /// Native tokens attached, moved from `caller` to the contract first.
    pub value: Amount,
    pub block_height: u64,
    /// Block timestamp in milliseconds since the Unix epoch.
    pub block_timestamp_ms: u64,
    pub chain_id: u64,
    pub tx_hash: Hash,
    /// Record a trace of nested calls with gas per frame.
    pub debug: bool,
    /// Most event bytes (data plus 32 per topic) this execution may emit
    /// beyond the VM's own per-execution limit: what is left of the block's
    /// (`VmLimits::block_event_bytes_max`), or `u64::MAX` outside blocks.
    pub event_bytes_left: u64,
}

/// One frame of the debug trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTrace {
    pub caller: Address,
    pub contract: Address,
    pub method: String,
    pub value: Amount,
    pub gas_budget: u64,
    pub gas_used: u64,
    pub status: ExecStatus,
    /// Return data, revert payload or failure message.
    pub output: Vec<u8>,
    pub calls: Vec<CallTrace>,
    /// What the frame wrote with `debug_log`, in order, kept even when the
    /// frame failed (see [`DEBUG_LOG_RECORD_BYTES_MAX`]).
    pub logs: Vec<DebugLog>,
}

/// One `debug_log` line of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugLog {
    /// How many of the frame's [`CallTrace::calls`] came before it, to put
    /// the frame's lines and its calls' in the order they happened.
    pub after_calls: u32,
    /// The line (bytes that are not UTF-8 replaced).
    pub text: String,
}

/// Most log bytes one traced execution records, all frames together; the
/// lines past it are paid for but not kept, and one last line says so.
/// Not part of the protocol: nothing recorded reaches a receipt or a root.
pub const DEBUG_LOG_RECORD_BYTES_MAX: usize = 64 << 10;

/// The last line of an execution whose logs passed
/// [`DEBUG_LOG_RECORD_BYTES_MAX`].
pub const DEBUG_LOG_DROPPED: &str = "(further debug logs dropped: over 64 KiB)";

impl CallTrace {
    /// Every log line of this frame and the frames it called, in the order
    /// they were written, each with the frame that wrote it.
    pub fn logs_in_order(&self) -> Vec<(&CallTrace, &str)> {
        let mut out = Vec::new();
        self.push_logs(&mut out);
        out
    }

    fn push_logs<'a>(&'a self, out: &mut Vec<(&'a CallTrace, &'a str)>) {
        let mut logs = self.logs.iter().peekable();
        for (i, call) in self.calls.iter().enumerate() {
            while let Some(log) = logs.next_if(|l| l.after_calls as usize <= i) {
                out.push((self, &log.text));
            }
            call.push_logs(out);
        }
        for log in logs {
            out.push((self, &log.text));
        }
    }
}

/// What an execution needs of the engine it runs on: the protocol's limits
/// and gas schedule, and compiled contracts. A trait so that the store's
/// data, which the engine's linker names, does not name the engine.
pub(crate) trait Runtime<W: World + 'static>: Send + Sync {
    /// The wasmtime engine the execution's store and code belong to.
    fn engine(&self) -> &Engine;
    fn limits(&self) -> &VmLimits;
    fn gas(&self) -> &GasSchedule;
    /// The compiled contract for `code_hash`, from the caches or by
    /// compiling `world`'s copy of its code.
    fn load(&self, code_hash: &Hash, world: &W) -> Result<Arc<Compiled<W>>, LoadError>;
    /// [`Runtime::load`] of code being deployed, using its validation
    /// (made at most once, see [`NewCode`]).
    fn load_new(&self, code_hash: &Hash, new: &NewCode) -> Result<Arc<Compiled<W>>, LoadError>;
}

/// A contract ready to instantiate.
pub(crate) struct Compiled<W: World + 'static> {
    pub(crate) pre: InstancePre<HostState<W>>,
    pub(crate) info: ModuleInfo,
}

/// Code being deployed (or upgraded to), validated at most once: for
/// pricing its compile complexity (schedules that charge it) and for
/// compiling it. Validation runs at the first of the two that needs it.
#[derive(Debug)]
pub(crate) struct NewCode {
    pub(crate) code: Vec<u8>,
    validated: OnceCell<Result<ModuleInfo, ValidationError>>,
}

impl NewCode {
    pub(crate) fn new(code: Vec<u8>) -> Self {
        NewCode {
            code,
            validated: OnceCell::new(),
        }
    }

    /// The code's validation under `limits` (every caller passes the
    /// VM's one set of limits).
    pub(crate) fn validated(&self, limits: &VmLimits) -> &Result<ModuleInfo, ValidationError> {
        self.validated.get_or_init(|| validate(&self.code, limits))
    }

    /// Its `ModuleInfo::complexity`, `None` if `limits` refuse it: what
    /// [`GasSchedule::deploy_complexity_of`] asks for.
    pub(crate) fn complexity(&self, limits: &VmLimits) -> Option<u64> {
        self.validated(limits)
            .as_ref()
            .ok()
            .map(|info| info.complexity)
    }
}

/// Why code could not be loaded.
pub(crate) enum LoadError {
    Invalid(ValidationError),
    Fatal(VmError),
}

/// One running contract frame.
pub(crate) struct Frame {
    pub(crate) contract: Address,
    pub(crate) caller: Address,
    pub(crate) value: Amount,
    pub(crate) input: Vec<u8>,
    pub(crate) memory: Option<Memory>,
    /// The instance's gas counter under
    /// [`Metering::Instrumented`](crate::gas::Metering::Instrumented).
    pub(crate) gas: Option<Global>,
    pub(crate) return_data: Vec<u8>,
    pub(crate) last_result: Vec<u8>,
}

/// Store data of one execution.
pub struct HostState<W: World + 'static> {
    pub(crate) world: W,
    pub(crate) shared: Arc<dyn Runtime<W>>,
    pub(crate) ctx: ExecContext,
    pub(crate) frames: Vec<Frame>,
    pub(crate) events: Vec<Event>,
    pub(crate) fatal: Option<VmError>,
    /// Fuel left while no frame runs, under
    /// [`Metering::Instrumented`](crate::gas::Metering::Instrumented)
    /// (wasmtime's store fuel plays this part otherwise).
    pub(crate) fuel: u64,
    /// Frames instantiated so far in this execution.
    pub(crate) instantiated: u32,
    pub(crate) trace: Vec<CallTrace>,
    /// Log bytes recorded in `trace` so far.
    pub(crate) log_bytes: usize,
    pub(crate) limiter: ExecLimiter,
}

impl<W: World + 'static> std::fmt::Debug for HostState<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("depth", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl<W: World + 'static> HostState<W> {
    /// The state of a new execution against `world` on `shared`'s engine.
    pub(crate) fn new(world: W, shared: Arc<dyn Runtime<W>>, ctx: ExecContext) -> Self {
        let limiter = ExecLimiter::new(shared.limits());
        HostState {
            world,
            shared,
            ctx,
            frames: Vec::new(),
            events: Vec::new(),
            fatal: None,
            fuel: 0,
            instantiated: 0,
            trace: Vec::new(),
            log_bytes: 0,
            limiter,
        }
    }

    pub(crate) fn gas(&self) -> &GasSchedule {
        self.shared.gas()
    }

    pub(crate) fn limits(&self) -> &VmLimits {
        self.shared.limits()
    }

    pub(crate) fn frame(&self) -> Result<&Frame, VmError> {
        self.frames
            .last()
            .ok_or(VmError::Invariant("host call outside a frame"))
    }

    pub(crate) fn frame_mut(&mut self) -> Result<&mut Frame, VmError> {
        self.frames
            .last_mut()
            .ok_or(VmError::Invariant("host call outside a frame"))
    }
}

/// wasmtime's resource limiter for one execution: each memory and table
/// within its cap, and the memory of all frames together within
/// `VmLimits::execution_memory_pages_max`.
#[derive(Debug)]
pub(crate) struct ExecLimiter {
    memory_bytes_max: usize,
    execution_memory_bytes_max: u64,
    /// Bytes of linear memory the execution's instances hold.
    memory_bytes: u64,
    table_elements_max: usize,
    instances_max: usize,
}

impl ExecLimiter {
    fn new(limits: &VmLimits) -> Self {
        ExecLimiter {
            memory_bytes_max: limits.memory_bytes_max(),
            execution_memory_bytes_max: limits
                .execution_memory_pages_max
                .saturating_mul(PAGE_BYTES),
            memory_bytes: 0,
            table_elements_max: limits.table_elements_max as usize,
            instances_max: limits.frames_max as usize,
        }
    }

    /// Whether `pages` more pages fit the execution's memory.
    pub(crate) fn fits(&self, pages: u64) -> bool {
        self.fits_bytes(pages.saturating_mul(PAGE_BYTES))
    }

    fn fits_bytes(&self, bytes: u64) -> bool {
        self.memory_bytes.saturating_add(bytes) <= self.execution_memory_bytes_max
    }
}

impl ResourceLimiter for ExecLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current) as u64;
        if desired > self.memory_bytes_max || !self.fits_bytes(more) {
            return Ok(false);
        }
        self.memory_bytes += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements_max)
    }

    fn instances(&self) -> usize {
        self.instances_max
    }

    fn tables(&self) -> usize {
        self.instances_max
    }

    fn memories(&self) -> usize {
        self.instances_max
    }
}
