//! VM benchmarks, printed as JSON lines (not a timed test; CI only builds
//! it). Run: `cargo bench -p stele-vm --bench vm`.
//!
//! - `transfer_call`: cached module, fresh store + instantiate + one
//!   token-transfer-like call (3 storage reads, 2 writes, 1 event), gas on.
//! - `metering`: integer, memory and call-heavy loops on raw wasmtime with
//!   fuel, epoch checks and stack-height instrumentation switched on one at
//!   a time, against the engine `Vm` uses.
//! - `compile_100kb`: validate + instrument + compile per 100 KB of Wasm.
//! - `host_call`: cost of one host call (`gas_left`) over a plain loop.
//! - `calibration`: ns per gas for Wasm compute, host calls, storage and
//!   hashing; 1 gas is meant to be about 1 ns.
//! - `many_contracts`: `STELE_BENCH_CONTRACTS` (default 1 000) distinct
//!   token contracts of a real contract's size, called in turn through the
//!   module cache: cold deploy cost, calls/s, the cache's hit rate, with a
//!   cache that holds them all and with one that holds a quarter (loading
//!   from the artifact directory, or compiling again without one).

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
        event_bytes_left: u64::MAX,
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

/// A `run` method looping `n` times over `body` (which may use `$i`),
/// after an optional `setup` in `init`; imports everything it might need.
fn loop_wat(n: u64, setup: &str, body: &str, data: &str) -> String {
    format!(
        r#"(module
  (import "stele" "gas_left" (func $gas_left (result i64)))
  (import "stele" "storage_read" (func $read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "storage_write" (func $write (param i32 i32 i32 i32)))
  (import "stele" "keccak256" (func $keccak (param i32 i32 i32)))
  (import "stele" "secp256k1_verify" (func $verify (param i32 i32 i32) (result i32)))
  (import "stele" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  {data}
  (func $fib (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add (call $fib (i64.sub (local.get $n) (i64.const 1)))
                     (call $fib (i64.sub (local.get $n) (i64.const 2)))))))
  (func (export "init") {setup})
  (func (export "noop"))
  (func (export "run") (local $i i32) (local $x i64)
    (local.set $x (i64.const 0x9e3779b97f4a7c15))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i64.store (i32.const 40000) (local.get $x)))
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

/// Workloads for the metering overhead: each exports `(param i64) (result
/// i64)` functions run through raw wasmtime. `{PAD}` is replaced by a
/// function of varying size that moves the workloads' machine code (see
/// [`PLACEMENTS`]).
const METER_WAT: &str = r#"(module
  (import "stele" "gas_left" (func $gas_left (result i64)))
  (memory (export "memory") 1)
  {PAD}
  (func $mix (export "mix") (param $n i64) (result i64) (local $x i64)
    (local.set $x (i64.const 0x9e3779b97f4a7c15))
    (block $done (loop $l
      (br_if $done (i64.eqz (local.get $n)))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 31))))
      (local.set $x (i64.mul (local.get $x) (i64.const 0xbf58476d1ce4e5b9)))
      (local.set $x (i64.add (local.get $x) (local.get $n)))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (local.get $x))
  (func (export "mem") (param $n i64) (result i64) (local $i i32) (local $acc i64)
    (block $done (loop $l
      (br_if $done (i64.eqz (local.get $n)))
      (local.set $acc (i64.add (local.get $acc)
        (i64.load (i32.and (local.get $i) (i32.const 0xfff8)))))
      (i64.store (i32.and (i32.add (local.get $i) (i32.const 4096)) (i32.const 0xfff8))
        (local.get $acc))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (local.get $acc))
  ;; The same work as a loop that tests at its end and repeats with
  ;; `br_if`, the shape LLVM gives most loops.
  (func (export "mem_br_if") (param $n i64) (result i64) (local $i i32) (local $acc i64)
    (if (i64.eqz (local.get $n)) (then (return (i64.const 0))))
    (loop $l
      (local.set $acc (i64.add (local.get $acc)
        (i64.load (i32.and (local.get $i) (i32.const 0xfff8)))))
      (i64.store (i32.and (i32.add (local.get $i) (i32.const 4096)) (i32.const 0xfff8))
        (local.get $acc))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br_if $l (i64.ne (local.tee $n (i64.sub (local.get $n) (i64.const 1))) (i64.const 0))))
    (local.get $acc))
  (func $fib (export "fib") (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add (call $fib (i64.sub (local.get $n) (i64.const 1)))
                     (call $fib (i64.sub (local.get $n) (i64.const 2)))))))
  (func (export "run"))
)"#;

/// Runs export `name` of `module` once with argument `n`; seconds.
fn raw_run(engine: &Engine, module: &Module, name: &str, n: i64) -> f64 {
    let mut store = Store::new(engine, ());
    let _ = store.set_fuel(u64::MAX / 2);
    store.set_epoch_deadline(u64::MAX / 2);
    let imports = [wasmtime::Func::wrap(&mut store, || 0i64).into()];
    let instance = Instance::new(&mut store, module, &imports).expect("instantiate");
    if let Some(gas) = instance.get_global(&mut store, stele_vm::abi::GAS_EXPORT) {
        gas.set(&mut store, wasmtime::Val::I64(i64::MAX / 2))
            .expect("gas global");
    }
    let f = instance
        .get_typed_func::<i64, i64>(&mut store, name)
        .expect("export");
    let start = Instant::now();
    let _ = f.call(&mut store, n).expect("run");
    start.elapsed().as_secs_f64()
}

/// [`METER_WAT`] with its workloads' code moved by a padding function of
/// `placement` blocks of arithmetic.
fn meter_wat(placement: usize) -> String {
    let mut pad = String::from("(func (export \"pad\") (param $x i64) (result i64) (local.get $x)");
    for i in 0..placement * 5 {
        pad.push_str(&format!(
            " (i64.mul (i64.const {})) (i64.xor (local.get $x))",
            2 * i + 3
        ));
    }
    pad.push(')');
    METER_WAT.replace("{PAD}", &pad)
}

/// Where the metering cost comes from: the same workloads on raw wasmtime
/// under engine configurations that differ in one thing at a time, best of
/// [`ROUNDS`] interleaved runs each. `plain` has no fuel, no epoch checks and no stack-height
/// instrumentation; `vm_v2` is what `Vm` compiles for block execution under
/// `GasSchedule::V2` (wasmtime fuel), `vm` under the latest schedule
/// (Stele's own metering instrumentation, no fuel); `stack_instr` is the
/// stack limit alone (V2's form), so `vm` minus `stack_instr` is the cost of
/// gas metering itself.
///
/// A tight loop's speed on this hardware depends on where its machine code
/// lands (the same loop differs by up to ~25% between placements), so each
/// workload runs in [`PLACEMENTS`] modules whose code sits at different
/// offsets; `pct_*` is the mean over placements of each placement's
/// overhead, `pct_vm_min`/`pct_vm_max` its range for `vm`.
fn metering_overhead() {
    let limits = stele_vm::VmLimits::V1;
    let v2 = stele_vm::GasSchedule::V2;
    let latest = stele_vm::GasSchedule::LATEST;
    let cfg = VmConfig {
        epoch_ticker: false,
        ..VmConfig::default()
    };
    let engine = |fuel: bool, epoch: bool| {
        let mut c = stele_vm::engine_config(&cfg);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
        c.consume_fuel(fuel);
        c.epoch_interruption(epoch);
        Engine::new(&c).expect("engine")
    };
    // (label, fuel, epoch, stele instrumentation)
    let configs = [
        ("plain", false, false, None),
        // The stack limit alone.
        ("stack_instr", false, false, Some(&v2)),
        ("fuel", true, false, None),
        ("epoch", false, true, None),
        // The V2 block engine: wasmtime fuel and the stack instrumentation.
        ("vm_v2", true, false, Some(&v2)),
        // The latest block engine: Stele's metering and stack limit, no fuel.
        ("vm", false, false, Some(&latest)),
    ];
    let engines: Vec<Engine> = configs.iter().map(|c| engine(c.1, c.2)).collect();
    // compiled[placement][config]
    let compiled: Vec<Vec<Module>> = (0..PLACEMENTS)
        .map(|placement| {
            let code = wat::parse_str(meter_wat(placement)).expect("wat");
            let info = stele_vm::validate(&code, &limits).expect("valid");
            configs
                .iter()
                .zip(&engines)
                .map(|((_, _, _, gas), e)| {
                    let wasm = match gas {
                        Some(gas) => stele_vm::instrument::instrument(
                            &code,
                            &info,
                            limits.stack_height_max,
                            gas,
                        )
                        .expect("instrument"),
                        None => code.clone(),
                    };
                    Module::from_binary(e, &wasm).expect("compile")
                })
                .collect()
        })
        .collect();
    let workloads = [
        ("mix", 30_000_000i64),
        ("mem", 30_000_000),
        ("mem_br_if", 30_000_000),
        ("fib", 30),
    ];
    for (name, n) in workloads {
        // Rounds interleave the configurations and placements, so a slow
        // spell of the machine hits them all alike; each keeps its best.
        let mut best = vec![vec![f64::MAX; configs.len()]; PLACEMENTS];
        for _ in 0..ROUNDS {
            for (p, modules) in compiled.iter().enumerate() {
                for (c, (e, m)) in engines.iter().zip(modules).enumerate() {
                    best[p][c] = best[p][c].min(raw_run(e, m, name, n));
                }
            }
        }
        let mut line = format!(
            r#"{{"bench":"metering","workload":"{name}","n":{n},"placements":{PLACEMENTS}"#
        );
        let pct = |p: usize, c: usize| (best[p][c] / best[p][0] - 1.0) * 100.0;
        for (c, (label, ..)) in configs.iter().enumerate() {
            let ms = best.iter().map(|b| b[c]).sum::<f64>() / PLACEMENTS as f64 * 1e3;
            let mean = (0..PLACEMENTS).map(|p| pct(p, c)).sum::<f64>() / PLACEMENTS as f64;
            line.push_str(&format!(r#","ms_{label}":{ms:.1},"pct_{label}":{mean:.1}"#));
        }
        let vm = configs.len() - 1;
        let range = (0..PLACEMENTS).map(|p| pct(p, vm));
        let (lo, hi) = range.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        line.push_str(&format!(
            r#","pct_vm_min":{lo:.1},"pct_vm_max":{hi:.1},"target_pct":25}}"#
        ));
        println!("{line}");
    }
}

/// Code placements each metering workload is measured at.
const PLACEMENTS: usize = 6;

/// Rounds of the metering workloads (each configuration keeps its best).
const ROUNDS: usize = 15;

/// A module of `n` small functions (the worst shape per byte: per-function
/// overhead dominates); `salt` changes constants so hashes differ.
fn small_functions_wat(n: usize, salt: usize) -> String {
    let mut wat = String::from(r#"(module (memory (export "memory") 1)"#);
    for i in 0..n {
        wat.push_str(&format!(
            "(func (param i64) (result i64) (local i64)
               (local.set 1 (i64.mul (local.get 0) (i64.const {})))
               (if (result i64) (i64.gt_u (local.get 1) (i64.const {i}))
                 (then (i64.xor (local.get 1) (i64.shr_u (local.get 1) (i64.const 7))))
                 (else (i64.add (local.get 1) (i64.const {salt})))))",
            i * 7 + salt
        ));
    }
    wat.push(')');
    wat
}

/// A module of `n` large functions: loops over memory, branches, calls to
/// the previous function, like compiled contract code.
fn large_functions_wat(n: usize, salt: usize) -> String {
    let mut wat = String::from(r#"(module (memory (export "memory") 1)"#);
    for i in 0..n {
        let call = (i > 0).then(|| format!("{}", i - 1));
        wat.push_str(&loop_function("", call.as_deref(), i, salt, 0, true));
    }
    wat.push(')');
    wat
}

/// [`TOKEN`] made distinct by `id` (a data segment) and padded with
/// `pad` functions of [`large_functions_wat`]'s shape without its branches
/// (~1.7 KB each), working above the token's own memory, so that it
/// compiles like a contract of that size.
fn padded_token_wat(id: usize, pad: usize) -> String {
    let mut wat = TOKEN.trim_end().trim_end_matches(')').to_string();
    wat.push_str(&format!(r#"(data (i32.const 900) "{id:08}")"#));
    for i in 0..pad {
        let call = (i > 0).then(|| format!("$pad{}", i - 1));
        let name = format!("$pad{i}");
        wat.push_str(&loop_function(&name, call.as_deref(), i, id, 1024, false));
    }
    wat.push(')');
    wat
}

/// One function `(param i64) (result i64)` named `name` (may be empty):
/// twelve loops loading from `base` and storing to `2 * base` (plus a
/// branch in each when `branch`), returning their sum plus what `callee`
/// returns for the same argument (the argument itself without one).
fn loop_function(
    name: &str,
    callee: Option<&str>,
    i: usize,
    salt: usize,
    base: usize,
    branch: bool,
) -> String {
    let mut wat = format!("(func {name} (param i64) (result i64) (local i64 i32)");
    for j in 0..12 {
        let branch = if branch {
            format!(
                "(if (i64.gt_u (local.get 1) (i64.const {}))
                   (then (local.set 1 (i64.rotl (local.get 1) (i64.const 13))))
                   (else (local.set 1 (i64.sub (local.get 1) (i64.const {salt})))))",
                i * 1000 + j
            )
        } else {
            String::new()
        };
        wat.push_str(&format!(
            "(local.set 2 (i32.const 0))
             (loop $l{j}
               (local.set 1 (i64.add (local.get 1)
                 (i64.mul (i64.load offset={} (i32.and (local.get 2) (i32.const 0xff8)))
                          (i64.const {}))))
               (i64.store offset={} (i32.and (local.get 2) (i32.const 0xff8))
                 (i64.xor (local.get 1) (i64.shr_u (local.get 1) (i64.const {}))))
               {branch}
               (local.set 2 (i32.add (local.get 2) (i32.const 8)))
               (br_if $l{j} (i32.lt_u (local.get 2) (i32.const {}))))",
            base + j * 8,
            i * 31 + j + salt,
            2 * base + j * 16,
            (j % 60) + 1,
            64 + j
        ));
    }
    let call = match callee {
        Some(f) => format!("(call {f} (local.get 0))"),
        None => "(local.get 0)".to_string(),
    };
    wat.push_str(&format!("(i64.add (local.get 1) {call}))"));
    wat
}

/// Many distinct contracts through the module cache (see the module docs):
/// per cache setting, the deploys (each compiles its module, cold), then
/// rounds of one `transfer` per contract in turn.
fn many_contracts() {
    let contracts: usize = std::env::var("STELE_BENCH_CONTRACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    // 19 padding functions: about the 33 KB of the SDK's token contract.
    let codes: Vec<Vec<u8>> = (0..contracts)
        .map(|id| wat::parse_str(padded_token_wat(id, 19)).expect("wat"))
        .collect();
    let code_bytes = codes.iter().map(Vec::len).sum::<usize>() / contracts.max(1);
    let mut args = BOB.0.to_vec();
    args.extend_from_slice(&1u64.to_le_bytes());
    let quarter = (contracts / 4).max(1);
    for (setting, entries, artifacts, rounds) in [
        ("cache_holds_all", contracts + 24, true, 3),
        ("cache_holds_a_quarter", quarter, true, 3),
        ("cache_holds_a_quarter_no_artifacts", quarter, false, 1),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = Vm::<MemoryWorld>::new(VmConfig {
            epoch_ticker: false,
            module_cache_entries_max: entries,
            artifact_dir: artifacts.then(|| dir.path().to_path_buf()),
            ..VmConfig::default()
        })
        .expect("engine");
        let mut world = MemoryWorld::new();
        let mut addresses = Vec::with_capacity(contracts);
        let start = Instant::now();
        for (nonce, code) in codes.iter().enumerate() {
            let (out, w) = vm.execute(
                &ctx(),
                Action::Deploy {
                    code,
                    init_args: &[],
                    nonce: nonce as u64,
                },
                u64::MAX / 4,
                world,
            );
            world = w;
            let out = out.expect("deploy");
            assert!(out.status.is_success(), "{out:?}");
            addresses.push(out.contract_address.expect("address"));
        }
        let deploy_ms = start.elapsed().as_secs_f64() * 1e3 / contracts as f64;
        let before = vm.compile_counts();
        let start = Instant::now();
        for _ in 0..rounds {
            for &c in &addresses {
                let (_, _, w) = time_call(&vm, c, "transfer", &args, world);
                world = w;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let after = vm.compile_counts();
        let calls = (rounds * contracts) as f64;
        let hits = after.cache_hits - before.cache_hits;
        let loaded = after.artifacts_loaded - before.artifacts_loaded;
        let compiled = after.blocks - before.blocks;
        println!(
            r#"{{"bench":"many_contracts","setting":"{setting}","contracts":{contracts},"code_bytes":{code_bytes},"cache_entries":{entries},"deploy_ms_per_contract":{deploy_ms:.2},"calls":{calls},"calls_per_s":{:.0},"us_per_call":{:.1},"cache_hit_rate":{:.3},"artifact_loads":{loaded},"compiles":{compiled}}}"#,
            calls / secs,
            secs * 1e6 / calls,
            hits as f64 / calls,
        );
    }
}

/// Deploy-side cost per byte of code: `Vm::prepare` (validation,
/// instrumentation, compilation) on fresh code, for two shapes, plus the
/// phase split and the Cranelift time at each optimisation level.
fn compile_100kb() {
    let vm = vm();
    let limits = stele_vm::VmLimits::V1;
    type MakeWat = fn(usize) -> String;
    let shapes: [(&str, MakeWat); 2] = [
        ("small_functions", |salt| small_functions_wat(1_150, salt)),
        ("large_functions", |salt| large_functions_wat(60, salt)),
    ];
    let schedule = stele_vm::GasSchedule::default();
    for (shape, make) in shapes {
        let rounds = 3;
        let mut total = 0.0;
        let mut bytes = 0;
        let mut functions = 0;
        let mut gas = 0;
        for r in 0..rounds {
            let code = wat::parse_str(make(r)).expect("wat");
            bytes = code.len();
            gas = schedule.deploy(&code, &limits);
            let start = Instant::now();
            vm.prepare(&code).expect("valid");
            total += start.elapsed().as_secs_f64();
            functions = stele_vm::validate(&code, &limits)
                .expect("valid")
                .function_costs
                .len();
        }
        let s_per_byte = total / rounds as f64 / bytes as f64;
        println!(
            r#"{{"bench":"compile","shape":"{shape}","code_bytes":{bytes},"functions":{functions},"ms_per_module":{:.1},"ms_per_100kb":{:.1},"ns_per_byte":{:.0},"gas_per_module":{gas},"ns_per_gas":{:.3}}}"#,
            total * 1e3 / rounds as f64,
            s_per_byte * 1e8,
            s_per_byte * 1e9,
            total * 1e9 / rounds as f64 / gas as f64,
        );

        // Phase split of one more module, and Cranelift at each opt level.
        let code = wat::parse_str(make(99)).expect("wat");
        let t = Instant::now();
        let info = stele_vm::validate(&code, &limits).expect("valid");
        let t_validate = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let inst =
            stele_vm::instrument::instrument(&code, &info, limits.stack_height_max, &schedule)
                .expect("instrument");
        let t_instrument = t.elapsed().as_secs_f64();
        let mut line = format!(
            r#"{{"bench":"compile_phases","shape":"{shape}","ms_validate":{:.1},"ms_instrument":{:.1}"#,
            t_validate * 1e3,
            t_instrument * 1e3
        );
        for (label, level) in [
            ("vm", None),
            ("speed", Some(wasmtime::OptLevel::Speed)),
            ("none", Some(wasmtime::OptLevel::None)),
        ] {
            let mut c = stele_vm::engine_config(&VmConfig::default());
            if let Some(level) = level {
                c.cranelift_opt_level(level);
            }
            let engine = Engine::new(&c).expect("engine");
            let t = Instant::now();
            let _ = Module::from_binary(&engine, &inst).expect("compile");
            line.push_str(&format!(
                r#","ms_cranelift_{label}":{:.1}"#,
                t.elapsed().as_secs_f64() * 1e3
            ));
        }
        line.push('}');
        println!("{line}");
    }
}

/// Host call overhead and the gas calibration: for each category, a
/// contract method doing `n` units of that work, timed (best of 3) against
/// the gas it is charged. 1 gas should be about the same time everywhere.
fn host_call_and_calibration() {
    let secret = stele_types::SecretKey::from_bytes(&[7; 32]).expect("key");
    let digest = stele_types::keccak256(b"calibration");
    let sig = secret.sign_digest(&digest);
    let hex = |b: &[u8]| b.iter().map(|x| format!("\\{x:02x}")).collect::<String>();
    let sig_data = format!(
        r#"(data (i32.const 1000) "{}") (data (i32.const 1100) "{}") (data (i32.const 1200) "{}")"#,
        hex(&digest.0),
        hex(&sig.0),
        hex(&secret.public_key().0)
    );
    let mix = "(local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 31))))
               (local.set $x (i64.mul (local.get $x) (i64.const 0xbf58476d1ce4e5b9)))
               (local.set $x (i64.add (local.get $x) (i64.extend_i32_u (local.get $i))))";
    let write_key = "(i32.store (i32.const 0) (local.get $i))
                     (call $write (i32.const 0) (i32.const 32) (i32.const 64) (i32.const 32))";
    // (name, n, init, body, data)
    let workloads: Vec<(&str, u64, &str, String, String)> = vec![
        ("wasm_integer", 2_000_000, "", mix.to_string(), String::new()),
        (
            "wasm_memory",
            2_000_000,
            "",
            "(local.set $x (i64.add (local.get $x) (i64.load (i32.and (local.get $i) (i32.const 0x7ff8)))))
             (i64.store (i32.and (i32.add (local.get $i) (i32.const 8192)) (i32.const 0x7ff8)) (local.get $x))"
                .to_string(),
            String::new(),
        ),
        (
            "wasm_calls",
            20,
            "",
            "(local.set $x (i64.add (local.get $x) (call $fib (i64.const 20))))".to_string(),
            String::new(),
        ),
        ("host_gas_left", 2_000_000, "", "(local.set $x (i64.add (local.get $x) (call $gas_left)))".to_string(), String::new()),
        (
            "storage_read",
            200_000,
            "(call $write (i32.const 0) (i32.const 32) (i32.const 64) (i32.const 32))",
            "(drop (call $read (i32.const 0) (i32.const 32) (i32.const 64) (i32.const 32)))".to_string(),
            String::new(),
        ),
        ("storage_write", 50_000, "", write_key.to_string(), String::new()),
        ("keccak_4k", 5_000, "", "(call $keccak (i32.const 0) (i32.const 4096) (i32.const 8192))".to_string(), String::new()),
        (
            "event_1k",
            // Under the 256 KiB of event bytes a transaction may emit.
            200,
            "",
            "(call $emit (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 1024))".to_string(),
            String::new(),
        ),
        (
            "secp256k1_verify",
            300,
            "",
            "(local.set $x (i64.add (local.get $x) (i64.extend_i32_u (call $verify (i32.const 1000) (i32.const 1100) (i32.const 1200)))))".to_string(),
            sig_data,
        ),
    ];
    let mut summary = Vec::new();
    for (name, n, init, body, data) in &workloads {
        let (vm, c, world) = setup(&loop_wat(*n, init, body, data));
        let (mut t, mut g) = (f64::MAX, 0);
        for _ in 0..3 {
            let (ti, gi, _) = time_call(&vm, c, "run", &[], world.clone());
            t = t.min(ti);
            g = gi;
        }
        let ns_per_gas = t * 1e9 / g as f64;
        println!(
            r#"{{"bench":"calibration","category":"{name}","units":{n},"ns_per_unit":{:.1},"gas_per_unit":{:.1},"ns_per_gas":{ns_per_gas:.3}}}"#,
            t * 1e9 / *n as f64,
            g as f64 / *n as f64,
        );
        summary.push((name.to_string(), ns_per_gas));
    }
    // Instantiation: a whole `execute` of an empty method (store, pooled
    // instance, call, teardown) against its gas.
    let (vm, c, mut world) = setup(&loop_wat(1, "", "", ""));
    let mut gas = 0;
    for _ in 0..200 {
        let (_, g, w) = time_call(&vm, c, "noop", &[], world);
        world = w;
        gas = g;
    }
    let n = 5_000;
    let start = Instant::now();
    for _ in 0..n {
        let (_, _, w) = time_call(&vm, c, "noop", &[], world);
        world = w;
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / n as f64;
    println!(
        r#"{{"bench":"calibration","category":"instantiate_call","units":1,"ns_per_unit":{ns:.0},"gas_per_unit":{gas},"ns_per_gas":{:.3}}}"#,
        ns / gas as f64
    );
    summary.push(("instantiate_call".to_string(), ns / gas as f64));
    let min = summary.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    let max = summary.iter().map(|s| s.1).fold(0.0, f64::max);
    let cats: Vec<String> = summary
        .iter()
        .map(|(k, v)| format!(r#""{k}":{v:.3}"#))
        .collect();
    println!(
        r#"{{"bench":"calibration_summary","ns_per_gas":{{{}}},"min":{min:.3},"max":{max:.3},"spread":{:.2}}}"#,
        cats.join(","),
        max / min
    );

    // Host call overhead: the integer loop with and without a `gas_left`.
    let n = 2_000_000u64;
    let best = |body: &str| {
        let (vm, c, world) = setup(&loop_wat(n, "", body, ""));
        (0..3).fold((f64::MAX, 0), |acc, _| {
            let (t, g, _) = time_call(&vm, c, "run", &[], world.clone());
            (acc.0.min(t), g)
        })
    };
    let (t_plain, g_plain) = best(mix);
    let (t_host, g_host) = best(&format!("{mix} (drop (call $gas_left))"));
    println!(
        r#"{{"bench":"host_call","ns_per_call":{:.1},"gas_per_call":{:.0}}}"#,
        (t_host - t_plain) * 1e9 / n as f64,
        (g_host - g_plain) as f64 / n as f64
    );
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less args; only
    // measure when invoked by `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // `cargo bench -p stele-vm --bench vm -- NAME` runs only the benches
    // whose name contains NAME.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let benches: [(&str, fn()); 5] = [
        ("transfer_call", transfer_call),
        ("calibration", host_call_and_calibration),
        ("metering", metering_overhead),
        ("compile_100kb", compile_100kb),
        ("many_contracts", many_contracts),
    ];
    std::thread::Builder::new()
        .stack_size(stele_vm::EXEC_THREAD_STACK_BYTES)
        .spawn(move || {
            for (name, bench) in benches {
                if only.as_deref().is_none_or(|o| name.contains(o)) {
                    bench();
                }
            }
        })
        .expect("spawn")
        .join()
        .expect("bench thread");
}
