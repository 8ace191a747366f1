//! The gas schedule: what every Wasm operator and every host call costs. One
//! versioned table; gas results are part of the protocol, so any change to a
//! number here is a protocol upgrade and bumps `version`.
//!
//! Unit: 1 gas is meant to be about 1 ns of work on the reference machine
//! (2 cores, x86_64). Gas is counted in fuel, `fuel_per_gas` units of fuel
//! to the gas: a Wasm operator costs one unit of fuel (more for the
//! operators listed below) and a host call `fuel_per_gas` times its gas
//! price. Storage is priced above its CPU cost because it also costs Merkle
//! hashing and disk at commit. How operators are counted is the schedule's
//! [`Metering`]: wasmtime fuel (V1, V2) or Stele's own instrumentation (V3).
//!
//! [`GasSchedule::V1`] counted one gas per fuel and is kept for chains that
//! started on it. The calibration bench (`cargo bench -p stele-vm --bench
//! vm`, docs/benchmarks.md) showed a Wasm operator is closer to 0.15 ns than
//! 1 ns, secp256k1 was priced ~50x below its cost, deploys (Cranelift
//! compilation) two to three orders of magnitude below theirs, and events
//! above theirs; [`GasSchedule::V2`] corrects those. [`GasSchedule::V3`]
//! keeps V2's prices and counts them with Stele's own instrumentation,
//! which costs memory- and call-heavy code far less than wasmtime fuel; new
//! chains use it.

use wasmparser::Operator;
use wasmtime::OperatorCost;

/// How Wasm operators are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    /// wasmtime fuel ([`GasSchedule::operator_cost`]); checked at loop
    /// headers and function entries, with a call into the runtime on the
    /// out-of-fuel path (V1, V2).
    WasmtimeFuel,
    /// Stele's own deploy-time instrumentation (`instrument`): every metered
    /// block charges its cost up front to a counter kept in a local, stored
    /// to an exported global, and traps with `unreachable` when the counter
    /// goes negative (V3). Same unit as fuel.
    Instrumented,
}

/// Gas costs, versioned: [`GasSchedule::LATEST`] for a new chain, the one
/// its genesis names for an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasSchedule {
    /// Version of this table; part of the compiled-module cache key.
    pub version: u32,
    /// How Wasm operators are counted.
    pub metering: Metering,

    // --- Wasm operators (fuel) ---
    /// `call` (the callee's instrumented prologue is charged separately).
    pub op_call: u8,
    /// `call_indirect`.
    pub op_call_indirect: u8,
    /// Integer division and remainder.
    pub op_int_div: u8,
    /// Integer multiplication (counted under [`Metering::Instrumented`];
    /// the wasmtime-fuel schedules charge every plain operator 1).
    pub op_int_mul: u8,
    /// Float division and square root.
    pub op_float_div_sqrt: u8,
    /// Every other float operator that yields a float or converts one
    /// (arithmetic, min/max, rounding, conversions, promotion, truncation
    /// to integers): each result goes through NaN canonicalization, so a
    /// dependent chain costs far more than integer code. Sign operations
    /// (`abs`, `neg`, `copysign`), comparisons and reinterpretations stay
    /// plain. Counted under [`Metering::Instrumented`] like `op_int_mul`.
    pub op_float: u8,
    /// `memory.grow`, flat part.
    pub op_memory_grow: u8,
    /// `memory.grow`, per page requested.
    pub memory_grow_per_page: u8,
    /// `memory.copy` / `memory.fill` / `memory.init`, per byte.
    pub memory_bulk_per_byte: u8,

    // --- Host calls ---
    /// Every host call, before anything else.
    pub host_call_base: u64,
    /// Per byte copied between guest memory and the host, either way.
    pub host_byte: u64,
    /// Storage read (`storage_read`, `storage_has`), flat.
    pub storage_read_base: u64,
    /// Storage read, per byte of key and value.
    pub storage_read_byte: u64,
    /// Storage write, flat.
    pub storage_write_base: u64,
    /// Storage write, per byte of key and value.
    pub storage_write_byte: u64,
    /// Storage delete, flat (plus `storage_read_byte` per key byte).
    pub storage_delete_base: u64,
    /// Each item returned by prefix iteration (plus `storage_read_byte` per
    /// byte of its key and value).
    pub storage_iter_item: u64,
    /// Each key deleted earlier in the same block that prefix iteration
    /// walks past to find the next entry (from V4; 0 before).
    pub storage_iter_skip: u64,
    /// Balance query.
    pub balance_read: u64,
    /// Native transfer.
    pub transfer: u64,
    /// Emitting an event, flat.
    pub event_base: u64,
    /// Per event topic.
    pub event_topic: u64,
    /// Per byte of event data.
    pub event_byte: u64,
    /// Keccak-256 / SHA3-256, flat.
    pub hash_base: u64,
    /// Keccak-256 / SHA3-256, per input byte.
    pub hash_byte: u64,
    /// secp256k1 public-key recovery or verification.
    pub secp256k1: u64,
    /// Instantiating a contract (each frame), flat.
    pub instantiate_base: u64,
    /// Instantiating, per byte of data segments copied into memory.
    pub instantiate_data_byte: u64,
    /// Instantiating, per initial page of linear memory.
    pub instantiate_page: u64,
    /// Every page of linear memory an execution takes by `memory.grow`
    /// (pages requested) or at instantiation beyond the first
    /// [`RESIDENT_PAGES`](crate::limits::RESIDENT_PAGES): the work of first
    /// touching it (16 page faults and zeroing, ~25 us on the reference
    /// VM), paid whether or not the code touches it (from V4; 0 before).
    pub memory_page: u64,
    /// `memory_page` is the price of a page the node keeps resident (the
    /// zeroing before its slot is reused), not of a fresh one's first
    /// touch, so this schedule may run only with limits that keep a
    /// frame's memory within [`RESIDENT_PAGES`](crate::limits::RESIDENT_PAGES)
    /// (`VmLimits::V3` and later; from V5). [`GasSchedule::check_limits`]
    /// says whether a pair fits.
    pub memory_resident_only: bool,
    /// A cross-contract call, flat (plus `instantiate_*`).
    pub call_base: u64,
    /// Deploying code from a contract or a transaction, flat.
    pub deploy_base: u64,
    /// Deploying, per byte of code (validation, instrumentation, compilation).
    pub deploy_code_byte: u64,
    /// Deploying, per function the code defines (compilation has a large
    /// per-function cost on top of its per-byte one).
    pub deploy_function: u64,
    /// Deploying, per unit of the module's compile complexity
    /// ([`crate::validate::compile_complexity`], summed over its
    /// functions): what the compiler's time grows with (from V5; 0 before).
    pub deploy_complexity_unit: u64,

    // --- Unit ---
    /// Units of wasmtime fuel per gas: a Wasm operator costs 1/`fuel_per_gas`
    /// gas (times its operator cost above). Gas used is rounded up.
    pub fuel_per_gas: u64,
}

impl GasSchedule {
    /// Schedule of protocol version 1.
    pub const V1: GasSchedule = GasSchedule {
        version: 1,
        metering: Metering::WasmtimeFuel,
        op_call: 4,
        op_call_indirect: 6,
        op_int_div: 4,
        op_int_mul: 1,
        op_float_div_sqrt: 6,
        op_float: 1,
        op_memory_grow: 100,
        memory_grow_per_page: 200,
        memory_bulk_per_byte: 1,
        host_call_base: 60,
        host_byte: 1,
        storage_read_base: 2_000,
        storage_read_byte: 4,
        storage_write_base: 10_000,
        storage_write_byte: 40,
        storage_delete_base: 5_000,
        storage_iter_item: 2_000,
        storage_iter_skip: 0,
        balance_read: 1_000,
        transfer: 5_000,
        event_base: 1_000,
        event_topic: 400,
        event_byte: 8,
        hash_base: 300,
        hash_byte: 6,
        secp256k1: 60_000,
        instantiate_base: 10_000,
        instantiate_data_byte: 1,
        instantiate_page: 500,
        memory_page: 0,
        memory_resident_only: false,
        call_base: 10_000,
        deploy_base: 100_000,
        deploy_code_byte: 40,
        deploy_function: 0,
        deploy_complexity_unit: 0,
        fuel_per_gas: 1,
    };

    /// Schedule of protocol version 2: calibrated on the reference machine
    /// (docs/benchmarks.md, "Wasm VM"). Eight units of fuel to the gas, so a
    /// plain Wasm operator costs 1/8 gas (~0.1-0.2 ns each, measured); calls
    /// cost 12 gas for their spill of fuel and the stack-height prologue;
    /// host calls keep V1's prices except secp256k1 (~0.2-0.5 ms measured),
    /// deploys (Cranelift: ~0.1-0.3 ms per function plus ~1-3 us per byte,
    /// measured under load) and events (CPU ~0.03 ns/gas under V1; they stay
    /// priced above CPU because receipts are stored and served).
    pub const V2: GasSchedule = GasSchedule {
        version: 2,
        metering: Metering::WasmtimeFuel,
        op_call: 96,
        op_call_indirect: 112,
        op_int_div: 8,
        op_int_mul: 1,
        op_float_div_sqrt: 12,
        op_float: 1,
        op_memory_grow: 255,
        memory_grow_per_page: 255,
        memory_bulk_per_byte: 1,
        host_call_base: 40,
        host_byte: 1,
        storage_read_base: 2_000,
        storage_read_byte: 4,
        storage_write_base: 10_000,
        storage_write_byte: 40,
        storage_delete_base: 5_000,
        storage_iter_item: 2_000,
        storage_iter_skip: 0,
        balance_read: 1_000,
        transfer: 5_000,
        event_base: 500,
        event_topic: 200,
        event_byte: 4,
        hash_base: 300,
        hash_byte: 6,
        secp256k1: 400_000,
        instantiate_base: 10_000,
        instantiate_data_byte: 1,
        instantiate_page: 500,
        memory_page: 0,
        memory_resident_only: false,
        call_base: 10_000,
        deploy_base: 1_000_000,
        deploy_code_byte: 3_000,
        deploy_function: 150_000,
        deploy_complexity_unit: 0,
        fuel_per_gas: 8,
    };

    /// Schedule of protocol version 3: V2's prices, counted by Stele's own
    /// instrumentation instead of wasmtime fuel ([`Metering::Instrumented`]).
    /// wasmtime's fuel check calls into the runtime on its out-of-fuel path,
    /// which forces every value live across a loop into a callee-saved
    /// register or the stack; the instrumented check traps instead and
    /// costs memory- and call-heavy code 2-3x less (docs/benchmarks.md).
    ///
    /// Calls are the one price that moves: V2's 96 paid for wasmtime
    /// saving and reloading fuel around every call and for the stack
    /// limit's charged instructions; with both gone a call measured about
    /// 2.6x cheaper per gas than integer code at 96, so V3 charges 32 (48
    /// for `call_indirect`, which also checks the signature).
    pub const V3: GasSchedule = GasSchedule {
        version: 3,
        metering: Metering::Instrumented,
        op_call: 32,
        op_call_indirect: 48,
        ..GasSchedule::V2
    };

    /// Schedule of protocol version 4: V3, plus a price for each deleted
    /// key prefix iteration walks past. Under V3 a step of `storage_next`
    /// was flat-priced however many keys deleted earlier in the block lay
    /// before its answer, so a transaction could delete many keys and then
    /// iterate over them repeatedly for little gas (issue 23); now every
    /// skipped key is paid, and a step stops as soon as its gas runs out.
    ///
    /// It also prices memory: V3 charged 32 gas for a 64 KiB page that
    /// takes ~25 us to touch for the first time (page faults and zeroing),
    /// so code growing memory and writing one byte per 4 KiB ran at ~250
    /// ns per gas. V4 charges `memory_page` (30 000) for every page grown
    /// and every initial page past the resident ones: ~0.9-1.2 ns per gas
    /// on such code (the adversarial benchmark), so a block at the gas
    /// limit cannot spend much more than 2 s on it.
    pub const V4: GasSchedule = GasSchedule {
        version: 4,
        storage_iter_skip: 200,
        memory_page: 30_000,
        ..GasSchedule::V3
    };

    /// Schedule of protocol version 5: V4, plus a price for what compiling
    /// a module costs. Cranelift's time grows with the values a function
    /// keeps live times its control flow points, not with its size: under
    /// V4 a 38 KB module at the edge of `VmLimits::V2`'s complexity limits
    /// paid ~120 M gas for its bytes and took ~0.9 s to compile (~7.5 ns
    /// per gas). V5 adds 100 gas per unit of compile complexity (~0.2 us
    /// a unit on the reference machine), ~400 M for that module, which
    /// brings the worst compile to ~1.7 ns per gas. An example contract
    /// (9 000-15 000 units) pays ~1-1.5 M more.
    ///
    /// It also prices the operators whose time a dependent chain exposes
    /// (the adversarial benchmark's instruction classes): a float result
    /// (canonicalized) took ~5-8 ns per gas at 1 fuel, integer division
    /// ~2.4 at 8, multiplication ~1.3 at 1, where integer addition takes
    /// ~0.25. V5 charges 16 fuel (two gas) for float arithmetic and
    /// conversions, 48 for float division and square root, 24 for integer
    /// division and remainder and 4 for integer multiplication: ~1-1.3 ns
    /// per gas for each chain.
    ///
    /// And memory is priced for frames that fit the pages the node keeps
    /// resident (`VmLimits::V3`: at most 16), which take no page faults:
    /// an initial page costs 2 500 instead of 500 (the node zeroes the
    /// pages an instance dirtied before its slot is used again, ~45 us for
    /// 16 pages written through, ~2.5 ns per gas at 500), and a grown page
    /// 5 000 instead of 30 000 (~5 us each). It runs only with such limits
    /// ([`GasSchedule::check_limits`]).
    pub const V5: GasSchedule = GasSchedule {
        version: 5,
        deploy_complexity_unit: 100,
        op_int_mul: 4,
        op_int_div: 24,
        op_float: 16,
        op_float_div_sqrt: 48,
        instantiate_page: 2_500,
        memory_page: 5_000,
        memory_resident_only: true,
        ..GasSchedule::V4
    };

    /// The schedule new chains use.
    pub const LATEST: GasSchedule = GasSchedule::V5;

    /// Every schedule this build knows, oldest first.
    pub const ALL: &'static [GasSchedule] = &[
        GasSchedule::V1,
        GasSchedule::V2,
        GasSchedule::V3,
        GasSchedule::V4,
        GasSchedule::V5,
    ];

    /// The schedule of protocol version `version`, if this build has it. A
    /// chain names its schedule in genesis; nodes must run exactly that one.
    pub fn by_version(version: u32) -> Option<GasSchedule> {
        GasSchedule::ALL
            .iter()
            .find(|g| g.version == version)
            .cloned()
    }

    /// The newest schedule this build has that runs with `limits`
    /// ([`GasSchedule::check_limits`]): [`GasSchedule::LATEST`], or V4 for
    /// limits whose frames may outgrow the resident pages V5 prices.
    pub fn latest_for(limits: &crate::VmLimits) -> GasSchedule {
        GasSchedule::ALL
            .iter()
            .rev()
            .find(|g| g.check_limits(limits).is_ok())
            .cloned()
            .unwrap_or(GasSchedule::V1)
    }

    /// Whether this schedule prices memory right for `limits`: one whose
    /// page price assumes resident pages needs frames of at most
    /// [`RESIDENT_PAGES`](crate::limits::RESIDENT_PAGES).
    pub fn check_limits(&self, limits: &crate::VmLimits) -> Result<(), String> {
        if self.memory_resident_only && limits.memory_pages_max > crate::limits::RESIDENT_PAGES {
            return Err(format!(
                "gas schedule {} prices memory for frames of at most {} pages, but VM limits {} allow {}",
                self.version,
                crate::limits::RESIDENT_PAGES,
                limits.version,
                limits.memory_pages_max
            ));
        }
        Ok(())
    }

    /// The wasmtime fuel table for Wasm operators under this schedule.
    pub fn operator_cost(&self) -> OperatorCost {
        let mut c = OperatorCost::new();
        c.Call = self.op_call;
        c.CallIndirect = self.op_call_indirect;
        for op in [
            &mut c.I32DivS,
            &mut c.I32DivU,
            &mut c.I32RemS,
            &mut c.I32RemU,
            &mut c.I64DivS,
            &mut c.I64DivU,
            &mut c.I64RemS,
            &mut c.I64RemU,
        ] {
            *op = self.op_int_div;
        }
        for op in [&mut c.F32Div, &mut c.F64Div, &mut c.F32Sqrt, &mut c.F64Sqrt] {
            *op = self.op_float_div_sqrt;
        }
        c.MemoryGrow = self.op_memory_grow;
        c.variable.memory_grow_per_page = self.memory_grow_per_page;
        c.variable.memory_copy_per_byte = self.memory_bulk_per_byte;
        c.variable.memory_fill_per_byte = self.memory_bulk_per_byte;
        c.variable.memory_init_per_byte = self.memory_bulk_per_byte;
        c
    }

    /// Fuel of `op` under [`Metering::Instrumented`], charged with its
    /// metered block before the block runs. The same table as
    /// [`GasSchedule::operator_cost`] gives wasmtime: structural operators
    /// that generate no code are free, everything else costs one unit or
    /// its listed price.
    pub fn op_fuel(&self, op: &Operator<'_>) -> u64 {
        let fuel = match op {
            Operator::Nop
            | Operator::Drop
            | Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::Unreachable
            | Operator::Return
            | Operator::Else
            | Operator::End => 0,
            Operator::Call { .. } => self.op_call,
            Operator::CallIndirect { .. } => self.op_call_indirect,
            Operator::I32DivS
            | Operator::I32DivU
            | Operator::I32RemS
            | Operator::I32RemU
            | Operator::I64DivS
            | Operator::I64DivU
            | Operator::I64RemS
            | Operator::I64RemU => self.op_int_div,
            Operator::F32Div | Operator::F64Div | Operator::F32Sqrt | Operator::F64Sqrt => {
                self.op_float_div_sqrt
            }
            Operator::I32Mul | Operator::I64Mul => self.op_int_mul,
            Operator::F32Add
            | Operator::F32Sub
            | Operator::F32Mul
            | Operator::F32Min
            | Operator::F32Max
            | Operator::F32Ceil
            | Operator::F32Floor
            | Operator::F32Trunc
            | Operator::F32Nearest
            | Operator::F64Add
            | Operator::F64Sub
            | Operator::F64Mul
            | Operator::F64Min
            | Operator::F64Max
            | Operator::F64Ceil
            | Operator::F64Floor
            | Operator::F64Trunc
            | Operator::F64Nearest
            | Operator::F32ConvertI32S
            | Operator::F32ConvertI32U
            | Operator::F32ConvertI64S
            | Operator::F32ConvertI64U
            | Operator::F64ConvertI32S
            | Operator::F64ConvertI32U
            | Operator::F64ConvertI64S
            | Operator::F64ConvertI64U
            | Operator::F32DemoteF64
            | Operator::F64PromoteF32
            | Operator::I32TruncF32S
            | Operator::I32TruncF32U
            | Operator::I32TruncF64S
            | Operator::I32TruncF64U
            | Operator::I64TruncF32S
            | Operator::I64TruncF32U
            | Operator::I64TruncF64S
            | Operator::I64TruncF64U
            | Operator::I32TruncSatF32S
            | Operator::I32TruncSatF32U
            | Operator::I32TruncSatF64S
            | Operator::I32TruncSatF64U
            | Operator::I64TruncSatF32S
            | Operator::I64TruncSatF32U
            | Operator::I64TruncSatF64S
            | Operator::I64TruncSatF64U => self.op_float,
            Operator::MemoryGrow { .. } => self.op_memory_grow,
            _ => 1,
        };
        u64::from(fuel)
    }

    /// Fuel per unit of `op`'s run-time size under
    /// [`Metering::Instrumented`] (pages for `memory.grow`, bytes or
    /// elements for bulk operations; the size is the operand on top of the
    /// stack), or 0 when its cost is static.
    pub fn op_fuel_per_unit(&self, op: &Operator<'_>) -> u64 {
        let fuel = match op {
            Operator::MemoryGrow { .. } => {
                return u64::from(self.memory_grow_per_page)
                    .saturating_add(self.fuel(self.memory_page));
            }
            Operator::MemoryCopy { .. }
            | Operator::MemoryFill { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::TableFill { .. }
            | Operator::TableGrow { .. } => self.memory_bulk_per_byte,
            _ => 0,
        };
        u64::from(fuel)
    }

    /// Cost of a host call that copies `bytes` across the boundary.
    pub fn host(&self, bytes: u64) -> u64 {
        self.host_call_base
            .saturating_add(self.host_byte.saturating_mul(bytes))
    }

    /// Fuel for `gas`.
    pub fn fuel(&self, gas: u64) -> u64 {
        gas.saturating_mul(self.fuel_per_gas)
    }

    /// Gas for `fuel`, rounded up.
    pub fn gas_of_fuel(&self, fuel: u64) -> u64 {
        fuel.div_ceil(self.fuel_per_gas.max(1))
    }

    /// The part of a deploy's cost known from the code's length alone,
    /// charged before the code is read.
    pub fn deploy_bytes(&self, code_len: usize) -> u64 {
        self.deploy_base
            .saturating_add(self.deploy_code_byte.saturating_mul(code_len as u64))
    }

    /// The per-function part of a deploy's cost. The count is read from
    /// the function section's header (invalid code counts what it claims, or
    /// nothing; validation rejects it afterwards).
    pub fn deploy_functions(&self, code: &[u8]) -> u64 {
        if self.deploy_function == 0 {
            return 0;
        }
        self.deploy_function.saturating_mul(defined_functions(code))
    }

    /// The compile-complexity part of a deploy's cost under `limits`
    /// (nothing for code they refuse: the deploy fails on validation
    /// before anything is compiled).
    pub fn deploy_complexity(&self, code: &[u8], limits: &crate::VmLimits) -> u64 {
        self.deploy_complexity_of(|| {
            crate::validate::validate(code, limits)
                .ok()
                .map(|info| info.complexity)
        })
    }

    /// [`GasSchedule::deploy_complexity`] from the code's validation:
    /// `complexity` gives `ModuleInfo::complexity`, or `None` for code the
    /// limits refuse. It is called only by schedules that price
    /// complexity, so a deploy path can validate lazily, once, and keep the
    /// result for compiling.
    pub fn deploy_complexity_of(&self, complexity: impl FnOnce() -> Option<u64>) -> u64 {
        if self.deploy_complexity_unit == 0 {
            return 0;
        }
        complexity().map_or(0, |c| self.deploy_complexity_unit.saturating_mul(c))
    }

    /// Gas charged for deploying `code` under `limits`, before the
    /// constructor runs.
    pub fn deploy(&self, code: &[u8], limits: &crate::VmLimits) -> u64 {
        self.deploy_bytes(code.len())
            .saturating_add(self.deploy_functions(code))
            .saturating_add(self.deploy_complexity(code, limits))
    }

    /// Cost of hashing `len` bytes.
    pub fn hash(&self, len: u64) -> u64 {
        self.hash_base
            .saturating_add(self.hash_byte.saturating_mul(len))
    }
}

impl Default for GasSchedule {
    fn default() -> Self {
        GasSchedule::LATEST
    }
}

/// Functions a module declares in its function section, from the section
/// headers only (function bodies are not parsed).
fn defined_functions(code: &[u8]) -> u64 {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(code) {
        match payload {
            Ok(Payload::FunctionSection(s)) => return u64::from(s.count()),
            Ok(Payload::CodeSectionStart { .. }) | Ok(Payload::End(_)) | Err(_) => return 0,
            Ok(_) => {}
        }
    }
    0
}
