//! The engine: wasmtime configured for determinism, the host linker,
//! compiled-module loading through the caches, and [`Vm`], whose `execute`
//! and `query` hand a store to [`crate::exec`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use stele_types::{Hash, keccak256, keccak256_parts};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
    WasmFeatures,
};

use crate::cache::{DiskCache, Lru};
use crate::error::VmError;
use crate::exec::{self, Action, ExecContext, Outcome};
use crate::gas::{GasSchedule, Metering};
use crate::instrument::instrument;
use crate::limits::{PAGE_BYTES, VmLimits};
use crate::state::{Compiled, HostState, LoadError, NewCode, Runtime};
use crate::validate::{ModuleInfo, ValidationError, validate};
use crate::warm::{InFlight, WarmQueue};
use crate::world::World;

/// Version of the instrumentation pass; part of the artifact cache key.
pub const INSTRUMENTATION_VERSION: u32 = 3;

/// Native stack wasmtime lets one execution use (all nested frames
/// together). The deterministic limits (`stack_height_max` x
/// `call_depth_max`) stay well below it; see `docs/vm.md`.
pub const NATIVE_WASM_STACK_BYTES: usize = 24 << 20;

/// Stack the thread calling `execute` must have: the wasm stack plus room
/// for the host frames between nested calls.
pub const EXEC_THREAD_STACK_BYTES: usize = 32 << 20;

/// Bytes of a freed linear-memory slot kept resident (zeroed in place).
pub const MEMORY_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Re-exported from [`crate::limits`], where the gas schedule reads it too.
pub use crate::limits::RESIDENT_PAGES;

const _: () = assert!(RESIDENT_PAGES * PAGE_BYTES <= MEMORY_KEEP_RESIDENT_BYTES as u64);

/// Bytes of a freed table slot kept resident.
pub const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// Epoch ticker period for the read-only query backstop.
pub const EPOCH_TICK_MS: u64 = 10;

/// Node-local settings of the VM (none of them affect results or gas).
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Protocol limits.
    pub limits: VmLimits,
    /// Protocol gas schedule.
    pub gas: GasSchedule,
    /// Most compiled modules kept in memory.
    pub module_cache_entries_max: usize,
    /// Most bytes of compiled code kept in memory.
    pub module_cache_bytes_max: usize,
    /// Directory for compiled artifacts, if any.
    pub artifact_dir: Option<PathBuf>,
    /// Most instances alive at once in the pooling allocator. Each
    /// execution holds up to `VmLimits::frames_max` until it ends, so this
    /// bounds how many executions can run at once; exhausting it is a
    /// node-side `VmError`, never a consensus outcome. The query engine
    /// (with `epoch_ticker`) has a pool of the same size of its own.
    pub pool_instances_max: u32,
    /// Whether to build the query engine and run its epoch ticker thread:
    /// the wall-clock backstop of `Vm::query`. Without it, queries run on
    /// the block engine, bounded by their gas cap only.
    pub epoch_ticker: bool,
    /// Whether to fault in the first [`RESIDENT_PAGES`] of every pool slot
    /// when an engine is built (see [`warm_slots`]). Off by default.
    ///
    /// Either way a slot keeps a page resident once something has touched
    /// it (`linear_memory_keep_resident` covers all [`RESIDENT_PAGES`]), so
    /// page faults there are a one-time cost per slot, at most what this
    /// warm-up costs (the adversarial benchmark's `pool_warm_once`).
    /// Warming pays it up front, but then every slot's pages are present,
    /// and a freed slot is reset by zeroing every present page of the
    /// instance's memory: the kernel's page map cannot tell which of them
    /// were written without userfaultfd write protection, which wasmtime
    /// does not use. An SDK contract (5 pages) then zeroed 320 KiB per call
    /// instead of the few pages it touched: 12.8 against 7.6 us a call on
    /// the VM alone. Costs `pool_instances_max` MiB of memory per engine, for good.
    /// Node-local: results and gas do not depend on it.
    pub warm_slots: bool,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            limits: VmLimits::LATEST,
            gas: GasSchedule::LATEST,
            module_cache_entries_max: 1_024,
            module_cache_bytes_max: 512 << 20,
            artifact_dir: None,
            pool_instances_max: 256,
            epoch_ticker: true,
            warm_slots: false,
        }
    }
}

/// One engine with its host linker and compiled-module caches. Code compiled
/// by one engine only runs on that engine.
pub(crate) struct Shared<W: World + 'static> {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState<W>>,
    pub(crate) limits: VmLimits,
    pub(crate) gas: GasSchedule,
    cache: Mutex<Lru<Arc<Compiled<W>>>>,
    disk: Option<DiskCache>,
    /// The block engine's: where deployed code goes to be compiled for the
    /// query engine ([`crate::warm`]).
    warm_queue: Option<WarmQueue>,
    /// The query engine's: the code its warmer holds, which a query waits
    /// for rather than compiling it too.
    warmed_by: Option<Arc<InFlight>>,
    /// Modules compiled for executions (not from an artifact or a cache).
    compiled_executing: AtomicU64,
    /// Modules compiled ahead of use (`prepare`, `warm`, the warmer).
    compiled_warming: AtomicU64,
    /// Execution loads served by the memory cache.
    cache_hits: AtomicU64,
    /// Modules deserialized from the artifact directory.
    artifacts_loaded: AtomicU64,
}

/// What a compile was for, to count it ([`Vm::compile_counts`]).
#[derive(Debug, Clone, Copy)]
enum Cause {
    Executing,
    Warming,
}

/// Modules compiled so far by one [`Vm`] (loads from an artifact or a
/// cache are not compiles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileCounts {
    /// By executions on the block engine (a deploy's priced compile, a cold
    /// cache), and by queries when there is no query engine.
    pub blocks: u64,
    /// By queries and dry runs on the query engine: unpriced compiles on
    /// the RPC path.
    pub queries: u64,
    /// Ahead of use, on either engine: `Vm::prepare`, `Vm::warm` and the
    /// query engine's background compile of deployed code.
    pub warmed: u64,
    /// Loads by executions on the block engine that found the module in
    /// the memory cache (with [`Self::blocks`] and
    /// [`Self::artifacts_loaded`], the cache's hit rate).
    pub cache_hits: u64,
    /// Modules deserialized from the artifact directory, either engine.
    pub artifacts_loaded: u64,
}

/// The Stele VM over world type `W`. Cheap to share by reference across
/// threads; compiled modules are cached inside.
///
/// It holds two engines: one for block execution (no epoch checks) and,
/// when the epoch ticker runs, one for read-only queries (epoch checks as a
/// wall-clock backstop). Both meter gas the same way.
/// Each compiles and caches contracts on first use; code a block deploys is
/// also compiled for the query engine in the background ([`crate::warm`]).
pub struct Vm<W: World + 'static> {
    pub(crate) shared: Arc<Shared<W>>,
    pub(crate) query_shared: Option<Arc<Shared<W>>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl<W: World + 'static> std::fmt::Debug for Vm<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("limits_version", &self.shared.limits.version)
            .field("gas_version", &self.shared.gas.version)
            .finish_non_exhaustive()
    }
}

/// The wasmtime configuration every validator uses to execute blocks: fuel
/// metering when the gas schedule counts in wasmtime fuel (none when the
/// instrumentation meters gas itself), no epoch checks (they are a wall-clock mechanism, and their
/// check at every loop header and function entry costs time for nothing
/// in block execution). Read-only queries use [`query_engine_config`].
pub fn engine_config(config: &VmConfig) -> Config {
    let mut c = Config::new();
    c.consume_fuel(config.gas.metering == Metering::WasmtimeFuel)
        .operator_cost(config.gas.operator_cost())
        .cranelift_nan_canonicalization(true)
        // Data segments are copied eagerly, never mapped copy-on-write, so
        // instantiation does the same work everywhere (wasmtime #14331);
        // its gas is charged by the VM, not by fuel.
        .memory_init_cow(false)
        .epoch_interruption(false)
        .max_wasm_stack(NATIVE_WASM_STACK_BYTES)
        // Async is never used, but when another crate enables wasmtime's
        // `async` feature the engine insists on this ordering.
        .async_stack_size(EXEC_THREAD_STACK_BYTES)
        .wasm_backtrace_max_frames(None)
        .wasm_multi_value(true)
        .wasm_extended_const(true)
        .wasm_bulk_memory(true)
        .wasm_relaxed_simd(false)
        .wasm_simd(false)
        .wasm_tail_call(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_custom_page_sizes(false)
        .wasm_wide_arithmetic(false)
        .wasm_stack_switching(false);
    for feature in [
        WasmFeatures::GC,
        WasmFeatures::FUNCTION_REFERENCES,
        WasmFeatures::EXCEPTIONS,
        WasmFeatures::LEGACY_EXCEPTIONS,
        WasmFeatures::REFERENCE_TYPES,
        WasmFeatures::THREADS,
        WasmFeatures::SHARED_EVERYTHING_THREADS,
        WasmFeatures::COMPONENT_MODEL,
    ] {
        c.wasm_features(feature, false);
    }
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(config.pool_instances_max)
        .total_memories(config.pool_instances_max)
        .total_tables(config.pool_instances_max)
        .max_memories_per_module(1)
        .max_tables_per_module(config.limits.tables_max)
        .table_elements(config.limits.table_elements_max as usize)
        .max_memory_size(config.limits.memory_bytes_max())
        // Reset a freed slot by zeroing its dirty pages in place instead of
        // `madvise`-ing them away, so the next instance of the slot takes no
        // page faults; the kernel's page map (PAGEMAP_SCAN, Linux 6.7+)
        // finds the dirty pages, else the first bytes are zeroed. Node-local;
        // results and gas are unaffected.
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES)
        .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
        .pagemap_scan(Enabled::Auto);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Faults in the first [`RESIDENT_PAGES`] of every slot of `engine`'s
/// instance pool: instantiates a module with that much memory in each slot
/// at once (live instances never share a slot), writes every page, and
/// drops them. The pool then zeroes those pages in place when a slot is
/// freed (`linear_memory_keep_resident`) instead of returning them to the
/// kernel, so they stay resident for every later instance of any module.
/// Pages a module's data image maps are the exception: they fault in again
/// from the image, paid by `GasSchedule::instantiate_data_byte`.
pub fn warm_slots(engine: &Engine, config: &VmConfig) -> Result<(), VmError> {
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction,
        MemorySection, MemoryType, Module as Encoded, TypeSection,
    };
    let bytes = RESIDENT_PAGES * PAGE_BYTES;
    let mut module = Encoded::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: RESIDENT_PAGES,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut exports = ExportSection::new();
    exports.export("touch", ExportKind::Func, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut touch = Function::new([]);
    touch
        .instruction(&Instruction::I32Const(0))
        .instruction(&Instruction::I32Const(1))
        .instruction(&Instruction::I32Const(bytes as i32))
        .instruction(&Instruction::MemoryFill(0))
        .instruction(&Instruction::End);
    code.function(&touch);
    module.section(&code);
    let warm_err = |e: wasmtime::Error| VmError::Engine(format!("warming the instance pool: {e}"));
    let module = Module::new(engine, module.finish()).map_err(warm_err)?;
    let mut store = wasmtime::Store::new(engine, ());
    if config.gas.metering == Metering::WasmtimeFuel {
        store.set_fuel(u64::MAX).map_err(warm_err)?;
    }
    store.set_epoch_deadline(u64::from(u32::MAX));
    for _ in 0..config.pool_instances_max {
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).map_err(warm_err)?;
        instance
            .get_typed_func::<(), ()>(&mut store, "touch")
            .and_then(|f| f.call(&mut store, ()))
            .map_err(warm_err)?;
    }
    Ok(())
}

/// The configuration of the engine for read-only queries: the block
/// engine's plus epoch interruption, the wall-clock backstop of
/// [`Vm::query`](crate::Vm::query). Gas is metered exactly as in blocks;
/// only runaway queries differ (they stop with a timeout).
pub fn query_engine_config(config: &VmConfig) -> Config {
    let mut c = engine_config(config);
    c.epoch_interruption(true);
    c
}

impl<W: World + 'static> Vm<W> {
    /// A VM with `config`.
    pub fn new(config: VmConfig) -> Result<Self, VmError> {
        config
            .gas
            .check_limits(&config.limits)
            .map_err(VmError::Config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (query_shared, ticker, warm_queue) = if config.epoch_ticker {
            let in_flight = Arc::new(InFlight::default());
            let mut query = Shared::new(&config, query_engine_config(&config))?;
            query.warmed_by = Some(Arc::clone(&in_flight));
            let query = Arc::new(query);
            let warmer = Arc::clone(&query);
            let compile = move |hash: &Hash, code: &[u8]| {
                // Code the deploy refused never reaches the queue; a failure
                // here only means the first query compiles (and reports) it
                // itself.
                let _ = warmer.warm_one(hash, code);
            };
            // The warmer gets the stack an execution thread has, so a compile
            // there has the room it has anywhere else.
            let warm_queue =
                crate::warm::spawn(compile, EXEC_THREAD_STACK_BYTES, in_flight, stop.clone())
                    .map_err(|e| VmError::Engine(format!("starting the query warmer: {e}")))?;
            let engine = query.engine.clone();
            let stop = stop.clone();
            let ticker = std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                    engine.increment_epoch();
                }
            });
            (Some(query), Some(ticker), Some(warm_queue))
        } else {
            (None, None, None)
        };
        let mut shared = Shared::new(&config, engine_config(&config))?;
        shared.warm_queue = warm_queue;
        let shared = Arc::new(shared);
        Ok(Vm {
            shared,
            query_shared,
            stop,
            ticker,
        })
    }

    /// Executes `action` against `world` with `gas_limit` and returns the
    /// outcome and the world (which holds the writes iff the outcome is a
    /// success). Must run on a thread with at least
    /// [`EXEC_THREAD_STACK_BYTES`](crate::EXEC_THREAD_STACK_BYTES) of stack.
    ///
    /// `Err` means the node itself failed (state backend error): no receipt
    /// may be produced and the world must be discarded.
    pub fn execute(
        &self,
        ctx: &ExecContext,
        action: Action<'_>,
        gas_limit: u64,
        world: W,
    ) -> (Result<Outcome, VmError>, W) {
        self.run(ctx, action, gas_limit, world, None)
    }

    /// A read-only query (or dry run): like `execute`, but every write is
    /// reverted, and a wall-clock `timeout_ms` stops runaway code (epoch
    /// interruption on a separate query engine, which is not deterministic
    /// and therefore never used for blocks). Gas is metered exactly as in a
    /// block. Without the query engine (`VmConfig::epoch_ticker` off) only
    /// the gas cap bounds the query.
    pub fn query(
        &self,
        ctx: &ExecContext,
        action: Action<'_>,
        gas_limit: u64,
        timeout_ms: u64,
        mut world: W,
    ) -> (Result<Outcome, VmError>, W) {
        world.checkpoint();
        let ticks = timeout_ms.div_ceil(EPOCH_TICK_MS).max(1);
        let (outcome, mut world) = self.run(ctx, action, gas_limit, world, Some(ticks));
        world.revert();
        (outcome, world)
    }

    fn run(
        &self,
        ctx: &ExecContext,
        action: Action<'_>,
        gas_limit: u64,
        world: W,
        epoch_ticks: Option<u64>,
    ) -> (Result<Outcome, VmError>, W) {
        // Queries run on the engine with epoch checks when there is one.
        let (shared, epoch_ticks) = match (epoch_ticks, &self.query_shared) {
            (Some(ticks), Some(q)) => (q, Some(ticks)),
            _ => (&self.shared, None),
        };
        let runtime: Arc<dyn Runtime<W>> = shared.clone();
        exec::run(runtime, ctx, action, gas_limit, world, epoch_ticks)
    }

    /// The protocol limits in force.
    pub fn limits(&self) -> &VmLimits {
        &self.shared.limits
    }

    /// The gas schedule in force.
    pub fn gas_schedule(&self) -> &GasSchedule {
        &self.shared.gas
    }

    /// Validates, instruments and compiles `code` without deploying it
    /// (e.g. to pre-warm the cache or check an upload).
    pub fn prepare(&self, code: &[u8]) -> Result<(), ValidationError> {
        self.shared.prepare(&keccak256(code), code)
    }

    /// Loads the compiled module of `code` into every engine of this VM: from
    /// the artifact directory when it holds one, else by validating,
    /// instrumenting and compiling it (and storing the artifact). A node
    /// calls this for every stored contract before it takes part in
    /// consensus, so no block or query pays for a compile after a restart
    /// or a wiped artifact directory.
    pub fn warm(&self, code: &[u8]) -> Result<(), ValidationError> {
        let hash = keccak256(code);
        std::iter::once(&self.shared)
            .chain(&self.query_shared)
            .try_for_each(|shared| shared.prepare(&hash, code))
    }

    /// Modules compiled so far, by engine and cause.
    pub fn compile_counts(&self) -> CompileCounts {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let engines = std::iter::once(&self.shared).chain(&self.query_shared);
        CompileCounts {
            blocks: count(&self.shared.compiled_executing),
            queries: self
                .query_shared
                .as_ref()
                .map_or(0, |q| count(&q.compiled_executing)),
            warmed: engines.clone().map(|e| count(&e.compiled_warming)).sum(),
            cache_hits: count(&self.shared.cache_hits),
            artifacts_loaded: engines.map(|e| count(&e.artifacts_loaded)).sum(),
        }
    }

    /// Number of modules in the in-memory cache.
    pub fn cached_modules(&self) -> usize {
        self.shared.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

impl<W: World + 'static> Drop for Vm<W> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn engine_key(engine: &Engine, config: &VmConfig) -> Hash {
    use std::hash::{Hash as _, Hasher};
    // DefaultHasher::new() has fixed keys, so this is stable for a given
    // build; the cache is node-local and a changed key only costs a compile.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    keccak256_parts(&[
        b"stele-vm artifact",
        &h.finish().to_le_bytes(),
        &config.gas.version.to_le_bytes(),
        &config.limits.version.to_le_bytes(),
        &INSTRUMENTATION_VERSION.to_le_bytes(),
    ])
}

/// What an execution reaches its engine through (see [`crate::state`]).
impl<W: World + 'static> Runtime<W> for Shared<W> {
    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn limits(&self) -> &VmLimits {
        &self.limits
    }

    fn gas(&self) -> &GasSchedule {
        &self.gas
    }

    /// From the memory cache, the artifact directory, or by compiling the
    /// world's copy of the code.
    fn load(&self, code_hash: &Hash, world: &W) -> Result<Arc<Compiled<W>>, LoadError> {
        if let Some(c) = self.cached(code_hash) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(c);
        }
        let code = world
            .code(code_hash)
            .map_err(|e| LoadError::Fatal(e.into()))?
            .ok_or(LoadError::Fatal(VmError::CorruptCode))?;
        let info = validate(&code, &self.limits).map_err(LoadError::Invalid)?;
        self.compile(code_hash, &code, info, Cause::Executing)
    }

    /// On the block engine, valid code also goes to the query engine's
    /// warmer.
    fn load_new(&self, code_hash: &Hash, new: &NewCode) -> Result<Arc<Compiled<W>>, LoadError> {
        let compiled = match self.cached(code_hash) {
            Some(c) => c,
            None => {
                let info = new
                    .validated(&self.limits)
                    .clone()
                    .map_err(LoadError::Invalid)?;
                self.compile(code_hash, &new.code, info, Cause::Executing)?
            }
        };
        if let Some(queue) = &self.warm_queue {
            queue.push(*code_hash, &new.code);
        }
        Ok(compiled)
    }
}

impl<W: World + 'static> Shared<W> {
    fn new(config: &VmConfig, engine_config: Config) -> Result<Self, VmError> {
        let engine = Engine::new(&engine_config).map_err(|e| VmError::Engine(e.to_string()))?;
        if config.warm_slots {
            warm_slots(&engine, config)?;
        }
        let mut linker = Linker::new(&engine);
        crate::host::link(&mut linker).map_err(|e| VmError::Engine(e.to_string()))?;
        let disk = match &config.artifact_dir {
            Some(dir) => Some(
                DiskCache::new(dir, engine_key(&engine, config))
                    .map_err(|e| VmError::Engine(format!("artifact dir: {e}")))?,
            ),
            None => None,
        };
        Ok(Shared {
            engine,
            linker,
            limits: config.limits.clone(),
            gas: config.gas.clone(),
            cache: Mutex::new(Lru::new(
                config.module_cache_entries_max,
                config.module_cache_bytes_max,
            )),
            disk,
            warm_queue: None,
            warmed_by: None,
            compiled_executing: AtomicU64::new(0),
            compiled_warming: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            artifacts_loaded: AtomicU64::new(0),
        })
    }

    /// The compiled contract for `code_hash` from the memory cache, after
    /// waiting for the warmer if it holds the code.
    fn cached(&self, code_hash: &Hash) -> Option<Arc<Compiled<W>>> {
        let get = || self.cache.lock().ok().and_then(|mut c| c.get(code_hash));
        if let Some(c) = get() {
            return Some(c);
        }
        let warmer = self.warmed_by.as_ref()?;
        let wait = Duration::from_millis(crate::warm::QUERY_WARM_WAIT_MS);
        if warmer.wait_for(code_hash, wait) {
            get()
        } else {
            None
        }
    }

    /// Loads `code` ahead of use, without waiting for the warmer (which
    /// calls this).
    pub(crate) fn warm_one(
        &self,
        code_hash: &Hash,
        code: &[u8],
    ) -> Result<Arc<Compiled<W>>, LoadError> {
        if let Some(c) = self.cache.lock().ok().and_then(|mut c| c.get(code_hash)) {
            return Ok(c);
        }
        let info = validate(code, &self.limits).map_err(LoadError::Invalid)?;
        self.compile(code_hash, code, info, Cause::Warming)
    }

    /// The validated `code` (`info` is its validation) from the artifact
    /// directory or compiled, into the memory cache.
    fn compile(
        &self,
        code_hash: &Hash,
        code: &[u8],
        info: ModuleInfo,
        cause: Cause,
    ) -> Result<Arc<Compiled<W>>, LoadError> {
        let module = match self.load_artifact(code_hash) {
            Some(m) => {
                self.artifacts_loaded.fetch_add(1, Ordering::Relaxed);
                m
            }
            None => {
                let instrumented = instrument(code, &info, self.limits.stack_height_max, &self.gas)
                    .map_err(LoadError::Invalid)?;
                let module = Module::from_binary(&self.engine, &instrumented).map_err(|_| {
                    LoadError::Invalid(ValidationError::InvalidWasm {
                        offset: 0,
                        message: "rejected by the compiler".to_string(),
                    })
                })?;
                match cause {
                    Cause::Executing => &self.compiled_executing,
                    Cause::Warming => &self.compiled_warming,
                }
                .fetch_add(1, Ordering::Relaxed);
                if let (Some(disk), Ok(bytes)) = (&self.disk, module.serialize()) {
                    disk.store(code_hash, &bytes);
                }
                module
            }
        };
        let size = {
            let r = module.image_range();
            (r.end as usize).saturating_sub(r.start as usize)
        };
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Fatal(VmError::Instantiate(e.to_string())))?;
        let compiled = Arc::new(Compiled { pre, info });
        if let Ok(mut c) = self.cache.lock() {
            c.insert(*code_hash, compiled.clone(), size.max(code.len()));
        }
        Ok(compiled)
    }

    /// [`Runtime::load`] of `code` for callers that only need to know whether
    /// it loads (a node-side failure reads as invalid code).
    fn prepare(&self, code_hash: &Hash, code: &[u8]) -> Result<(), ValidationError> {
        match self.warm_one(code_hash, code) {
            Ok(_) => Ok(()),
            Err(LoadError::Invalid(e)) => Err(e),
            Err(LoadError::Fatal(e)) => Err(ValidationError::InvalidWasm {
                offset: 0,
                message: e.to_string(),
            }),
        }
    }

    fn load_artifact(&self, code_hash: &Hash) -> Option<Module> {
        let bytes = self.disk.as_ref()?.load(code_hash)?;
        // SAFETY: `Module::deserialize` trusts its input to be an artifact
        // this wasmtime produced. `DiskCache::load` only returns bytes whose
        // Keccak-256 checksum (written beside them by `DiskCache::store`
        // after `Module::serialize`) matches, and whose header names this
        // code hash and this engine key (wasmtime's compatibility hash, the
        // gas, limits and instrumentation versions). A torn write, bit rot or
        // an artifact from another engine or schedule is therefore detected
        // and recompiled, never deserialized. The directory is the node's own
        // and is as trusted as its binary.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(&self.engine, &bytes) };
        module.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stele_types::{Address, Hash};
    use wasmtime::{Store, ValType};

    use super::*;
    use crate::abi::{HOST_FUNCTIONS, HOST_MODULE, Ty};
    use crate::memory_world::MemoryWorld;
    use crate::state::ExecContext;

    /// `(params, results)` by host function name.
    type Signatures = BTreeMap<String, (Vec<Ty>, Vec<Ty>)>;

    fn abi_ty(t: &ValType) -> Ty {
        match t {
            ValType::I32 => Ty::I32,
            ValType::I64 => Ty::I64,
            other => panic!("a host function takes or returns {other:?}, not in the ABI"),
        }
    }

    /// What `vm`'s block-engine linker defines, with the signatures wasmtime
    /// derived from the Rust functions.
    fn linked(vm: &Vm<MemoryWorld>) -> Signatures {
        let shared = Arc::clone(&vm.shared);
        let ctx = ExecContext {
            origin: Address([1; 20]),
            caller: Address([1; 20]),
            value: 0,
            block_height: 1,
            block_timestamp_ms: 0,
            chain_id: 1,
            tx_hash: Hash([0; 32]),
            debug: false,
            event_bytes_left: u64::MAX,
        };
        let state = HostState::new(MemoryWorld::new(), shared.clone(), ctx);
        let mut store = Store::new(&shared.engine, state);
        let items: Vec<_> = shared
            .linker
            .iter(&mut store)
            .map(|(module, name, item)| (module.to_string(), name.to_string(), item))
            .collect();
        let mut signatures = Signatures::new();
        for (module, name, item) in items {
            assert_eq!(
                module, HOST_MODULE,
                "{name} is linked outside the host module"
            );
            let ty = item
                .into_func()
                .expect("host items are functions")
                .ty(&store);
            let params = ty.params().map(|t| abi_ty(&t)).collect();
            let results = ty.results().map(|t| abi_ty(&t)).collect();
            let previous = signatures.insert(name.clone(), (params, results));
            assert!(previous.is_none(), "{name} is linked twice");
        }
        signatures
    }

    #[test]
    fn linked_host_functions_are_exactly_the_abi_table() {
        let vm = Vm::new(VmConfig {
            pool_instances_max: 70,
            epoch_ticker: false,
            warm_slots: false,
            ..VmConfig::default()
        })
        .expect("the default configuration builds");
        let linked = linked(&vm);
        let mut abi = Signatures::new();
        for (name, params, results) in HOST_FUNCTIONS {
            let previous = abi.insert(name.to_string(), (params.to_vec(), results.to_vec()));
            assert!(previous.is_none(), "{name} is in the ABI table twice");
        }
        let missing: Vec<_> = abi.keys().filter(|n| !linked.contains_key(*n)).collect();
        let extra: Vec<_> = linked.keys().filter(|n| !abi.contains_key(*n)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "in the ABI but not linked: {missing:?}; linked but not in the ABI: {extra:?}"
        );
        for (name, signature) in &abi {
            assert_eq!(&linked[name], signature, "signature of {name}");
        }
    }
}
