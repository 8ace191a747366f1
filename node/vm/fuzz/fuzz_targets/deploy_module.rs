//! The whole deploy path on arbitrary bytes: validation, instrumentation and
//! Cranelift compilation through `Vm::prepare`. Slower than
//! `validate_module`, but it reaches the compiler with whatever the
//! validator lets through (huge functions, deep nesting, many locals).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stele_vm::{MemoryWorld, Vm, VmConfig};

fn vm() -> &'static Vm<MemoryWorld> {
    static VM: OnceLock<Vm<MemoryWorld>> = OnceLock::new();
    VM.get_or_init(|| {
        Vm::new(VmConfig {
            epoch_ticker: false,
            // Nothing is cached between inputs worth keeping.
            module_cache_entries_max: 1,
            ..VmConfig::default()
        })
        .unwrap_or_else(|e| panic!("engine: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = vm().prepare(data);
});
