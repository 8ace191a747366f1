//! VM benchmarks, printed as JSON lines (not a timed test; CI only builds
//! it). Run: `cargo bench -p stele-vm --bench vm`.
//!
//! - `transfer_call`: cached module, fresh store + instantiate + one
//!   token-transfer-like call (3 storage reads, 2 writes, 1 event), gas on.
//! - `fuel_overhead`: the same compute loop with fuel on and off.
//! - `compile_100kb`: validate + instrument + compile per 100 KB of Wasm.
//! - `host_call`: cost of one host call (`gas_left`) over a plain loop.
//! - `calibration`: ns per gas for Wasm compute, host calls, storage and
//!   hashing; 1 gas is meant to be about 1 ns.

use std::time::Instant;

use stele_types::{Address, Hash};
use stele_vm::{Action, ExecContext, MemoryWorld, Vm, VmConfig};
use wasmtime::{Engine, Instance, Module, Store};

const ALICE: Address = Address([0xa1; 20]);
const BOB: Address = Address([0xb0; 20]);

fn ctx() -> ExecContext {
    ExecContext {
        origin: ALICE,
        caller: ALICE,
        value: 0,
        block_height: 1,
        block_timestamp_ms: 0,
        chain_id: 1,
        tx_hash: Hash::ZERO,
        debug: false,
    }
}

const TOKEN: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "caller" (func $caller (param i32)))
  (import "stele" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "stele" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "init")
    (call $caller (i32.const 0))
    (i64.store (i32.const 64) (i64.const 1000000000))
    (call $storage_write (i32.const 0) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func $bal (param $k i32) (result i64)
    (if (result i64)
      (i64.eq (call $storage_read (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)) (i64.const -1))
      (then (i64.const 0)) (else (i64.load (i32.const 64)))))
  (func $set (param $k i32) (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_write (local.get $k) (i32.const 20) (i32.const 64) (i32.const 8)))
  (func (export "transfer") (local $from i64) (local $amt i64)
    (call $caller (i32.const 0))
    (call $input_read (i32.const 32))
    (local.set $amt (i64.load (i32.const 52)))
    (local.set $from (call $bal (i32.const 0)))
    (if (i64.lt_u (local.get $from) (local.get $amt)) (then (call $revert (i32.const 0) (i32.const 0))))
    (call $set (i32.const 0) (i64.sub (local.get $from) (local.get $amt)))
    (call $set (i32.const 32) (i64.add (call $bal (i32.const 32)) (local.get $amt)))
    (call $emit_event (i32.const 128) (i32.const 1) (i32.const 52) (i32.const 8))
    (call $set_return (i32.const 64) (i32.const 8)))
)"#;

/// A compute loop: `n` iterations of integer mixing, in an exported
/// `(param i64) (result i64)` function (for raw wasmtime) and a `run`
/// method reading `n` from a constant (for the VM).
fn compute_wat(n: u64, host_call: bool) -> String {
    let call = if host_call {
        "(drop (call $gas_left))"
    } else {
        ""
    };
    format!(
        r#"(module
  (import "stele" "gas_left" (func $gas_left (result i64)))
  (memory (export "memory") 1)
  (func $mix (export "mix") (param $n i64) (result i64) (local $x i64)
    (local.set $x (i64.const 0x9e3779b97f4a7c15))
    (block $done (loop $l
      (br_if $done (i64.eqz (local.get $n)))
      {call}
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 31))))
      (local.set $x (i64.mul (local.get $x) (i64.const 0xbf58476d1ce4e5b9)))
      (local.set $x (i64.add (local.get $x) (local.get $n)))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (local.get $x))
  (func (export "run") (drop (call $mix (i64.const {n}))))
)"#
    )
}

fn storage_wat(n: u32) -> String {
    format!(
        r#"(module
  (import "stele" "storage_write" (func $w (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (local $i i32)
    (loop $l
      (i32.store (i32.const 0) (local.get $i))
      (call $w (i32.const 0) (i32.const 32) (i32.const 64) (i32.const 32))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))
)"#
    )
}

fn keccak_wat(n: u32) -> String {
    format!(
        r#"(module
  (import "stele" "keccak256" (func $k (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (local $i i32)
    (loop $l
      (call $k (i32.const 0) (i32.const 4096) (i32.const 8192))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))
)"#
    )
}

fn vm() -> Vm<MemoryWorld> {
    Vm::new(VmConfig {
        epoch_ticker: false,
        ..VmConfig::default()
    })
    .expect("engine")
}

/// Deploys `wat` and returns (vm, contract, world).
fn setup(wat: &str) -> (Vm<MemoryWorld>, Address, MemoryWorld) {
    let vm = vm();
    let code = wat::parse_str(wat).expect("wat");
    let (out, world) = vm.execute(
        &ctx(),
        Action::Deploy {
            code: &code,
            init_args: &[],
            nonce: 0,
        },
        u64::MAX / 4,
        MemoryWorld::new(),
    );
    let out = out.expect("deploy");
    assert!(out.status.is_success(), "{out:?}");
    (vm, out.contract_address.expect("address"), world)
}

/// Runs `method` once; returns (seconds, gas used, world).
fn time_call(
    vm: &Vm<MemoryWorld>,
    c: Address,
    method: &str,
    args: &[u8],
    world: MemoryWorld,
) -> (f64, u64, MemoryWorld) {
    let start = Instant::now();
    let (out, world) = vm.execute(
        &ctx(),
        Action::Call {
            contract: c,
            method,
            args,
        },
        u64::MAX / 4,
        world,
    );
    let secs = start.elapsed().as_secs_f64();
    let out = out.expect("call");
    assert!(out.status.is_success(), "{out:?}");
    (secs, out.gas_used, world)
}

fn transfer_call() {
    let (vm, token, mut world) = setup(TOKEN);
    let mut args = BOB.0.to_vec();
    args.extend_from_slice(&1u64.to_le_bytes());
    let mut gas = 0;
    for _ in 0..200 {
        let (_, g, w) = time_call(&vm, token, "transfer", &args, world);
        world = w;
        gas = g;
    }
    let n = 5_000;
    let start = Instant::now();
    for _ in 0..n {
        let (_, _, w) = time_call(&vm, token, "transfer", &args, world);
        world = w;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        r#"{{"bench":"transfer_call","us_per_call":{us:.2},"gas_per_call":{gas},"target_us":20}}"#
    );
}

fn raw_run(engine: &Engine, module: &Module, n: i64) -> f64 {
    let mut store = Store::new(engine, ());
    let _ = store.set_fuel(u64::MAX / 2);
    store.set_epoch_deadline(u64::MAX / 2);
    let imports = [wasmtime::Func::wrap(&mut store, || 0i64).into()];
    let instance = Instance::new(&mut store, module, &imports).expect("instantiate");
    let f = instance
        .get_typed_func::<i64, i64>(&mut store, "mix")
        .expect("mix");
    let start = Instant::now();
    let _ = f.call(&mut store, n).expect("run");
    start.elapsed().as_secs_f64()
}

fn fuel_overhead() {
    let code = wat::parse_str(compute_wat(1, false)).expect("wat");
    let limits = stele_vm::VmLimits::V1;
    let info = stele_vm::validate(&code, &limits).expect("valid");
    let instrumented = stele_vm::instrument::instrument(&code, &info, limits.stack_height_max)
        .expect("instrument");
    let cfg = VmConfig {
        epoch_ticker: false,
        ..VmConfig::default()
    };
    let mut on = stele_vm::engine_config(&cfg);
    on.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
    let mut off = stele_vm::engine_config(&cfg);
    off.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
    off.consume_fuel(false);
    let e_on = Engine::new(&on).expect("engine");
    let e_off = Engine::new(&off).expect("engine");
    let m_on = Module::from_binary(&e_on, &instrumented).expect("compile");
    let m_off = Module::from_binary(&e_off, &instrumented).expect("compile");
    let n = 50_000_000;
    let best = |e: &Engine, m: &Module| (0..5).map(|_| raw_run(e, m, n)).fold(f64::MAX, f64::min);
    let t_on = best(&e_on, &m_on);
    let t_off = best(&e_off, &m_off);
    println!(
        r#"{{"bench":"fuel_overhead","iterations":{n},"ms_fuel_on":{:.1},"ms_fuel_off":{:.1},"overhead_pct":{:.1},"target_pct":25}}"#,
        t_on * 1e3,
        t_off * 1e3,
        (t_on / t_off - 1.0) * 100.0
    );
}

fn compile_100kb() {
    // ~100 KB of varied functions; each round changes a constant so the
    // code hash differs and nothing is cached.
    let vm = vm();
    let mut total = 0.0;
    let mut bytes = 0;
    let rounds = 5;
    for r in 0..rounds {
        let mut wat = String::from(r#"(module (memory (export "memory") 1)"#);
        for i in 0..1_150 {
            wat.push_str(&format!(
                "(func (param i64) (result i64) (local i64)
                   (local.set 1 (i64.mul (local.get 0) (i64.const {})))
                   (if (result i64) (i64.gt_u (local.get 1) (i64.const {i}))
                     (then (i64.xor (local.get 1) (i64.shr_u (local.get 1) (i64.const 7))))
                     (else (i64.add (local.get 1) (i64.const {r})))))",
                i * 7 + r
            ));
        }
        wat.push(')');
        let code = wat::parse_str(&wat).expect("wat");
        bytes = code.len();
        let start = Instant::now();
        vm.prepare(&code).expect("valid");
        total += start.elapsed().as_secs_f64();
        if r == 0 {
            // Phase split of one round: validation, instrumentation, codegen.
            let limits = stele_vm::VmLimits::V1;
            let t = Instant::now();
            let info = stele_vm::validate(&code, &limits).expect("valid");
            let t_validate = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let inst = stele_vm::instrument::instrument(&code, &info, limits.stack_height_max)
                .expect("instrument");
            let t_instrument = t.elapsed().as_secs_f64();
            let engine =
                Engine::new(&stele_vm::engine_config(&VmConfig::default())).expect("engine");
            let t = Instant::now();
            let _ = Module::from_binary(&engine, &inst).expect("compile");
            let t_compile = t.elapsed().as_secs_f64();
            println!(
                r#"{{"bench":"compile_phases","ms_validate":{:.1},"ms_instrument":{:.1},"ms_cranelift":{:.1}}}"#,
                t_validate * 1e3,
                t_instrument * 1e3,
                t_compile * 1e3
            );
        }
    }
    let ms = total * 1e3 / rounds as f64;
    println!(
        r#"{{"bench":"compile_100kb","code_bytes":{bytes},"ms_per_module":{ms:.1},"ms_per_100kb":{:.1}}}"#,
        ms * 100_000.0 / bytes as f64
    );
}

fn host_call_and_calibration() {
    let n = 2_000_000u64;
    let (vm, plain, world) = setup(&compute_wat(n, false));
    let (t_plain, g_plain, _) = time_call(&vm, plain, "run", &[], world.clone());
    let (t_plain, g_plain) = (0..3).fold((t_plain, g_plain), |acc, _| {
        let (t, g, _) = time_call(&vm, plain, "run", &[], world.clone());
        (acc.0.min(t), g)
    });
    let (vm2, hosty, world2) = setup(&compute_wat(n, true));
    let (t_host, g_host) = (0..4).fold((f64::MAX, 0), |acc, _| {
        let (t, g, _) = time_call(&vm2, hosty, "run", &[], world2.clone());
        (acc.0.min(t), g)
    });
    let ns_per_host_call = (t_host - t_plain) * 1e9 / n as f64;
    let gas_per_host_call = (g_host - g_plain) as f64 / n as f64;
    println!(
        r#"{{"bench":"host_call","ns_per_call":{ns_per_host_call:.1},"gas_per_call":{gas_per_host_call:.0}}}"#
    );

    let sw = 20_000;
    let (vm3, s, world3) = setup(&storage_wat(sw));
    let (t_store, g_store, _) = time_call(&vm3, s, "run", &[], world3);
    let kn = 2_000;
    let (vm4, k, world4) = setup(&keccak_wat(kn));
    let (t_keccak, g_keccak, _) = time_call(&vm4, k, "run", &[], world4);
    println!(
        r#"{{"bench":"calibration","ns_per_gas_wasm":{:.3},"ns_per_gas_host_call":{:.3},"ns_per_gas_storage_write_memoryworld":{:.3},"ns_per_gas_keccak_4k":{:.3}}}"#,
        t_plain * 1e9 / g_plain as f64,
        (t_host - t_plain) * 1e9 / (g_host - g_plain) as f64,
        t_store * 1e9 / g_store as f64,
        t_keccak * 1e9 / g_keccak as f64,
    );
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less args; only
    // measure when invoked by `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    std::thread::Builder::new()
        .stack_size(stele_vm::EXEC_THREAD_STACK_BYTES)
        .spawn(|| {
            transfer_call();
            host_call_and_calibration();
            fuel_overhead();
            compile_100kb();
        })
        .expect("spawn")
        .join()
        .expect("bench thread");
}
