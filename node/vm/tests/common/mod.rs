//! Shared helpers for the VM's integration tests.
#![allow(dead_code)]

use stele_types::{Address, Hash};
use stele_vm::{Action, EXEC_THREAD_STACK_BYTES, ExecContext, MemoryWorld, Outcome, Vm, VmConfig};

pub const ALICE: Address = Address([0xa1; 20]);
pub const BOB: Address = Address([0xb0; 20]);
pub const GAS: u64 = 10_000_000;

/// The VM configuration of these tests: no query engine, and no warmed
/// pool slots (warming faults in a MiB per slot when each VM is built,
/// which made the tests ten times slower; results and gas never depend on
/// it).
pub fn config() -> VmConfig {
    VmConfig {
        pool_instances_max: 70,
        epoch_ticker: false,
        warm_slots: false,
        ..VmConfig::default()
    }
}

pub fn vm() -> Vm<MemoryWorld> {
    Vm::new(config()).expect("engine config is valid")
}

pub fn ctx(caller: Address) -> ExecContext {
    ExecContext {
        origin: caller,
        caller,
        value: 0,
        block_height: 7,
        block_timestamp_ms: 1_700_000_000_000,
        chain_id: 42,
        tx_hash: Hash([0x77; 32]),
        debug: false,
        event_bytes_left: u64::MAX,
    }
}

/// Runs `f` on a thread with the stack `execute` requires.
pub fn on_exec_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(EXEC_THREAD_STACK_BYTES)
            .spawn_scoped(s, f)
            .expect("spawn executor thread")
            .join()
            .expect("executor thread panicked")
    })
}

pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("fixture is valid WAT")
}

/// Deploys `code` from ALICE with nonce 0 and `gas` on an empty world; the
/// outcome as the VM gives it.
pub fn deploy_code(
    vm: &Vm<MemoryWorld>,
    code: &[u8],
    gas: u64,
) -> (Result<Outcome, stele_vm::VmError>, MemoryWorld) {
    vm.execute(
        &ctx(ALICE),
        Action::Deploy {
            code,
            init_args: &[],
            nonce: 0,
        },
        gas,
        MemoryWorld::new(),
    )
}

/// Deploys `wat` from ALICE with nonce `nonce`; panics unless it succeeds.
pub fn deploy(
    vm: &Vm<MemoryWorld>,
    world: MemoryWorld,
    wat: &str,
    nonce: u64,
) -> (Address, MemoryWorld) {
    let code = wasm(wat);
    let (out, world) = vm.execute(
        &ctx(ALICE),
        Action::Deploy {
            code: &code,
            init_args: &[],
            nonce,
        },
        GAS,
        world,
    );
    let out = out.expect("no node error");
    assert_eq!(
        out.status,
        stele_types::ExecStatus::Success,
        "deploy failed: {out:?}"
    );
    (
        out.contract_address.expect("deploy returns an address"),
        world,
    )
}

pub fn call(
    vm: &Vm<MemoryWorld>,
    world: MemoryWorld,
    contract: Address,
    method: &str,
    args: &[u8],
    gas: u64,
) -> (Outcome, MemoryWorld) {
    call_ctx(vm, world, &ctx(ALICE), contract, method, args, gas)
}

pub fn call_ctx(
    vm: &Vm<MemoryWorld>,
    world: MemoryWorld,
    ctx: &ExecContext,
    contract: Address,
    method: &str,
    args: &[u8],
    gas: u64,
) -> (Outcome, MemoryWorld) {
    let (out, world) = vm.execute(
        ctx,
        Action::Call {
            contract,
            method,
            args,
        },
        gas,
        world,
    );
    assert_eq!(world.open_checkpoints(), 0, "checkpoints are balanced");
    (out.expect("no node error"), world)
}

/// Deploys `wat` on a fresh VM and world and calls `method` once.
pub fn run_once(wat: &str, method: &str, args: &[u8], gas: u64) -> Outcome {
    let vm = vm();
    let (addr, world) = deploy(&vm, MemoryWorld::new(), wat, 0);
    call(&vm, world, addr, method, args, gas).0
}

/// The host imports most fixtures use.
pub const IMPORTS: &str = r#"
  (import "stele" "input_len" (func $input_len (result i32)))
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "caller" (func $caller (param i32)))
  (import "stele" "self_address" (func $self_address (param i32)))
  (import "stele" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "stele" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "result_len" (func $result_len (result i32)))
  (import "stele" "result_read" (func $result_read (param i32)))
  (import "stele" "gas_left" (func $gas_left (result i64)))
"#;

/// A token-transfer-like contract: `init` gives the deployer 1_000_000;
/// `transfer(to: [u8; 20], amount: u64 LE)` moves balance and emits an
/// event; `balance_of(who: [u8; 20])` returns a u64 LE.
pub fn token_wat() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 256) "insufficient")
  (func (export "init")
    (call $caller (i32.const 0))
    (i64.store (i32.const 64) (i64.const 1000000))
    (call $storage_write (i32.const 0) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func $bal (param $k i32) (result i64)
    (if (result i64)
      (i64.eq (call $storage_read (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)) (i64.const -1))
      (then (i64.const 0))
      (else (i64.load (i32.const 64)))))
  (func $set (param $k i32) (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_write (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func (export "transfer") (local $from i64) (local $amt i64)
    (if (i32.ne (call $input_len) (i32.const 28)) (then unreachable))
    (call $caller (i32.const 0))
    (call $input_read (i32.const 32))
    (local.set $amt (i64.load (i32.const 52)))
    (local.set $from (call $bal (i32.const 0)))
    (if (i64.lt_u (local.get $from) (local.get $amt))
      (then (call $revert (i32.const 256) (i32.const 12))))
    (call $set (i32.const 0) (i64.sub (local.get $from) (local.get $amt)))
    (call $set (i32.const 32) (i64.add (call $bal (i32.const 32)) (local.get $amt)))
    (call $emit_event (i32.const 128) (i32.const 1) (i32.const 52) (i32.const 8))
    (i64.store (i32.const 64) (i64.sub (local.get $from) (local.get $amt)))
    (call $set_return (i32.const 64) (i32.const 8)))
  (func (export "balance_of")
    (call $input_read (i32.const 32))
    (i64.store (i32.const 64) (call $bal (i32.const 32)))
    (call $set_return (i32.const 64) (i32.const 8)))
)"#
    )
}

pub fn transfer_args(to: Address, amount: u64) -> Vec<u8> {
    let mut a = to.0.to_vec();
    a.extend_from_slice(&amount.to_le_bytes());
    a
}
