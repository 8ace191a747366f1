//! Every cap the VM enforces, in one versioned struct. The values are part of
//! the protocol: changing one is a protocol upgrade and bumps `version`.

use stele_types::Event;

/// Bytes in a page of linear memory.
pub const PAGE_BYTES: u64 = 65_536;

/// Initial pages of an instance that `GasSchedule::memory_page` does not
/// charge for: the pool keeps them resident, so touching them costs no page
/// faults, only zeroing at reuse, which `instantiate_page` pays.
pub const RESIDENT_PAGES: u64 = 16;

/// What an event counts against the event byte limits
/// ([`VmLimits::event_bytes_max`], [`VmLimits::block_event_bytes_max`]):
/// its data and 32 bytes per topic.
pub fn event_bytes(event: &Event) -> u64 {
    event.data.len() as u64 + 32 * event.topics.len() as u64
}

/// Deploy-time and run-time caps on contracts. Units are in the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmLimits {
    /// Version of this table; part of the compiled-module cache key.
    pub version: u32,

    // --- Deploy-time (upload validation) ---
    /// Largest contract code accepted.
    pub code_bytes_max: usize,
    /// Most imports (all from the `stele` host module).
    pub imports_max: u32,
    /// Most exports.
    pub exports_max: u32,
    /// Most functions defined by the module (imports excluded).
    pub functions_max: u32,
    /// Most parameters of any function type.
    pub params_max: u32,
    /// Most results of any function type.
    pub results_max: u32,
    /// Most locals declared by one function (parameters excluded).
    pub locals_max: u32,
    /// Most globals.
    pub globals_max: u32,
    /// Most tables.
    pub tables_max: u32,
    /// Most elements in a table, initial or maximum.
    pub table_elements_max: u64,
    /// Most data segments.
    pub data_segments_max: u32,
    /// Most element segments.
    pub element_segments_max: u32,
    /// Most types in the type section.
    pub types_max: u32,
    /// Largest function body.
    pub function_body_bytes_max: u32,
    /// Most 64 KiB pages of linear memory, initial, declared maximum and at
    /// run time (`memory.grow` beyond it returns -1).
    pub memory_pages_max: u64,
    /// Whether every active data segment must fit the initial memory and
    /// every active element segment the initial table, checked at deploy
    /// (from V2). Without the check such a module fails when instantiated,
    /// which the VM reports as a trap of the frame.
    pub segments_in_bounds: bool,
    /// Most targets of one `br_table` (the default target included).
    /// Cranelift refuses 65 534 and more; a published limit checked before
    /// compiling keeps every compiler version and architecture in
    /// agreement (from V2; `u32::MAX` in V1).
    pub br_table_targets_max: u32,
    /// Most compile complexity of one function
    /// ([`crate::validate::compile_complexity`]): the values it can keep
    /// live (parameters, locals and its operand-stack height) times its
    /// control flow points (`block`, `loop`, `if`, `else`, `br_if`,
    /// `br_table`, plus one; a call counts for 1/8), plus 256. Cranelift's
    /// work grows with this product, not with code size: 2 000 locals over
    /// 12 000 nested guarded blocks took 24 s and 2 GB to compile (from
    /// V2; `u64::MAX` in V1).
    pub function_complexity_max: u64,
    /// Most compile complexity of all functions of a module together.
    pub module_complexity_max: u64,

    // --- Run-time ---
    /// Most 64 KiB pages of linear memory all frames of one execution hold
    /// together (every instance lives until the execution ends); an
    /// instantiation that would pass it fails (`memory limit of the
    /// transaction reached`) and `memory.grow` past it returns -1 (from V2;
    /// `u64::MAX` in V1, where 64 frames of 16 MiB held 1 GiB).
    pub execution_memory_pages_max: u64,
    /// Deterministic stack limit per contract frame, in the instrumented
    /// stack-height units (value slots; see `instrument`).
    pub stack_height_max: u32,
    /// Most nested contract frames (a top-level call is depth 1).
    pub call_depth_max: u32,
    /// Most contract frames instantiated by one execution in total (every
    /// instance lives until the execution ends).
    pub frames_max: u32,
    /// Largest storage key.
    pub storage_key_bytes_max: u32,
    /// Largest storage value.
    pub storage_value_bytes_max: u32,
    /// Most topics in one event.
    pub event_topics_max: u32,
    /// Largest event data.
    pub event_data_bytes_max: u32,
    /// Most events in one top-level execution (all frames together).
    pub events_max: u32,
    /// Most event bytes (data plus 32 per topic) in one top-level execution,
    /// all frames together (from V2; `u64::MAX` in V1, where 1 024 events
    /// of 16 KiB made 16 MiB of receipts per transaction).
    pub event_bytes_max: u64,
    /// Most event bytes of all transactions of one block together; a
    /// transaction gets what is left (from V2; `u64::MAX` in V1).
    pub block_event_bytes_max: u64,
    /// Largest return data or revert payload.
    pub return_data_bytes_max: u32,
    /// Largest call argument blob (top-level or cross-contract).
    pub args_bytes_max: u32,
    /// Longest method name.
    pub method_bytes_max: u32,
    /// Longest line one `debug_log` call may write (from V4). 0: the host
    /// function does not exist, and a module importing it is refused at
    /// deploy as importing an unknown function (V1 to V3).
    pub debug_log_bytes_max: u32,
}

impl VmLimits {
    /// Every limits table this build knows, oldest first.
    pub const ALL: &'static [VmLimits] = &[VmLimits::V1, VmLimits::V2, VmLimits::V3, VmLimits::V4];

    /// The limits new chains get.
    pub const LATEST: VmLimits = VmLimits::V4;

    /// The limits of protocol version `version`, if this build has them.
    pub fn by_version(version: u32) -> Option<VmLimits> {
        VmLimits::ALL.iter().find(|l| l.version == version).cloned()
    }

    /// The limits of protocol version 1.
    pub const V1: VmLimits = VmLimits {
        version: 1,
        code_bytes_max: 1 << 20,
        imports_max: 64,
        exports_max: 128,
        functions_max: 10_000,
        params_max: 32,
        results_max: 1,
        locals_max: 2_048,
        globals_max: 256,
        tables_max: 1,
        table_elements_max: 4_096,
        data_segments_max: 512,
        element_segments_max: 64,
        types_max: 512,
        function_body_bytes_max: 256 << 10,
        memory_pages_max: 256,
        segments_in_bounds: false,
        br_table_targets_max: u32::MAX,
        function_complexity_max: u64::MAX,
        module_complexity_max: u64::MAX,
        stack_height_max: 32_768,
        call_depth_max: 16,
        frames_max: 64,
        execution_memory_pages_max: u64::MAX,
        storage_key_bytes_max: 256,
        storage_value_bytes_max: 64 << 10,
        event_topics_max: 4,
        event_data_bytes_max: 16 << 10,
        events_max: 1_024,
        event_bytes_max: u64::MAX,
        block_event_bytes_max: u64::MAX,
        return_data_bytes_max: 128 << 10,
        args_bytes_max: 128 << 10,
        method_bytes_max: 64,
        debug_log_bytes_max: 0,
    };

    /// The limits of protocol version 2: V1's caps, plus the deploy-time
    /// checks that close what V1 left to instantiation or to the compiler
    /// (segments in bounds, `br_table` size, compile complexity).
    pub const V2: VmLimits = VmLimits {
        version: 2,
        segments_in_bounds: true,
        br_table_targets_max: 16_384,
        // ~0.45 s and ~80 MiB of Cranelift for one function, ~0.9 s for a
        // module, on the reference machine (docs/benchmarks.md); the
        // example contracts are near 15 000 in all.
        function_complexity_max: 2_000_000,
        module_complexity_max: 4_000_000,
        event_bytes_max: 256 << 10,
        execution_memory_pages_max: 2_048,
        block_event_bytes_max: 4 << 20,
        ..VmLimits::V1
    };

    /// The limits of protocol version 3: V2's, with a frame's linear memory
    /// capped at 16 pages (1 MiB) instead of 256 (16 MiB). A load costs the
    /// same gas wherever it lands, but the time it takes grows with the
    /// memory it ranges over: a chain of dependent loads that misses every
    /// cache ran at ~56 ns per gas over 16 MiB, ~11 over 2 MiB and ~4 over
    /// 1 MiB on the reference machine (docs/benchmarks.md). The SDK's
    /// contracts (built with a 256 KiB stack) start at 5 pages.
    pub const V3: VmLimits = VmLimits {
        version: 3,
        memory_pages_max: 16,
        ..VmLimits::V2
    };

    /// The limits of protocol version 4: V3's, with the `debug_log` host
    /// function (lines of at most 4 KiB). A log line is paid like an event
    /// of no topic and is never stored: the node drops it, and a dry run,
    /// a replay or the testkit shows it in the call trace.
    pub const V4: VmLimits = VmLimits {
        version: 4,
        debug_log_bytes_max: 4 << 10,
        ..VmLimits::V3
    };

    /// Linear memory cap in bytes.
    pub fn memory_bytes_max(&self) -> usize {
        // At most 256 pages: fits any target's usize.
        (self.memory_pages_max * PAGE_BYTES) as usize
    }
}

impl Default for VmLimits {
    fn default() -> Self {
        VmLimits::LATEST
    }
}
