//! The contract ABI: names and signatures of the host functions a contract
//! may import from the `stele` module, and the exports the VM looks for.
//! `docs/vm.md` documents the semantics of each.

/// The only module a contract may import from.
pub const HOST_MODULE: &str = "stele";
/// The linear memory every contract must export.
pub const MEMORY_EXPORT: &str = "memory";
/// Optional constructor, run once at deploy and never callable afterwards.
pub const INIT_EXPORT: &str = "init";
/// Optional migration hook, run only by an `upgrade` of the contract to
/// this code and never callable otherwise.
pub const MIGRATE_EXPORT: &str = "migrate";
/// Custom section whose presence opts a contract in to being re-entered.
pub const REENTRANT_SECTION: &str = "stele_reentrant";
/// Export-name prefix reserved for the VM's instrumentation.
pub const RESERVED_EXPORT_PREFIX: &str = "__stele";
/// Export holding the instrumented stack height (added at deploy).
pub const STACK_HEIGHT_EXPORT: &str = "__stele_stack_height";
/// Export holding the instrumented gas counter, in fuel units (added at
/// deploy under instrumented metering).
pub const GAS_EXPORT: &str = "__stele_gas";

/// A Wasm value type in a host function signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
}

use Ty::{I32, I64};

/// `(name, params, results)` of every host function.
pub const HOST_FUNCTIONS: &[(&str, &[Ty], &[Ty])] = &[
    ("input_len", &[], &[I32]),
    ("input_read", &[I32], &[]),
    ("storage_read", &[I32, I32, I32, I32], &[I64]),
    ("storage_write", &[I32, I32, I32, I32], &[]),
    ("storage_remove", &[I32, I32], &[I32]),
    ("storage_has", &[I32, I32], &[I32]),
    (
        "storage_next",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I64],
    ),
    ("caller", &[I32], &[]),
    ("origin", &[I32], &[]),
    ("self_address", &[I32], &[]),
    ("value", &[I32], &[]),
    ("block_height", &[], &[I64]),
    ("block_timestamp", &[], &[I64]),
    ("chain_id", &[], &[I64]),
    ("tx_hash", &[I32], &[]),
    ("balance", &[I32, I32], &[]),
    ("transfer", &[I32, I32], &[I32]),
    ("emit_event", &[I32, I32, I32, I32], &[]),
    ("set_return", &[I32, I32], &[]),
    ("revert", &[I32, I32], &[]),
    ("gas_left", &[], &[I64]),
    ("keccak256", &[I32, I32, I32], &[]),
    ("sha3_256", &[I32, I32, I32], &[]),
    ("secp256k1_recover", &[I32, I32, I32], &[I32]),
    ("secp256k1_verify", &[I32, I32, I32], &[I32]),
    ("call", &[I32, I32, I32, I32, I32, I32, I64], &[I32]),
    ("deploy", &[I32, I32, I32, I32, I32, I64, I32], &[I32]),
    ("upgrade", &[I32, I32, I32, I32, I64], &[I32]),
    ("result_len", &[], &[I32]),
    ("result_read", &[I32], &[]),
    (DEBUG_LOG, &[I32, I32], &[]),
];

/// The host function that writes a debug log line (from `VmLimits::V4`;
/// see [`crate::VmLimits::debug_log_bytes_max`]).
pub const DEBUG_LOG: &str = "debug_log";

/// Signature of host function `name`, if `limits` have it: every one
/// does, except [`DEBUG_LOG`] under limits without debug logs, where a
/// module importing it is refused as before it existed.
pub fn host_function(
    name: &str,
    limits: &crate::VmLimits,
) -> Option<(&'static [Ty], &'static [Ty])> {
    if name == DEBUG_LOG && limits.debug_log_bytes_max == 0 {
        return None;
    }
    HOST_FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (*p, *r))
}
