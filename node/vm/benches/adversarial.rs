//! The worst modules we can write for each resource, printed as JSON lines
//! (not a timed test; CI only builds it). Run:
//! `cargo bench -p stele-vm --bench adversarial [-- CASE...]`.
//!
//! Compile cases: each runs in a child process of this binary (so its peak
//! memory is its own) and reports validate + instrument + compile time and
//! the child's peak resident memory under V1 limits (no complexity limit),
//! and whether the latest limits refuse it. The target: any module the
//! latest limits accept compiles in at most 1 s and 256 MiB on the 2-core
//! reference machine.
//!
//! - `bomb_LOCALS_x_BLOCKS`: one function with LOCALS i64 locals and BLOCKS
//!   nested blocks, each left early by a `br_if` on a local and setting
//!   another local, so every local is live across every block edge (the
//!   module issue 23 measured at ~90 s and 4.4 GB is about
//!   `bomb_2000_x_12000`, as many blocks as fit one 256 KiB body).
//! - `wide_LOCALS_x_BLOCKS`: the same blocks in sequence instead of nested.
//! - `br_table_N`: one `br_table` with N targets.
//! - `functions_N`: N small functions (the per-function cost).
//!
//! Execution cases (`exec`): fresh executions on the block engine (after one
//! untimed run, except in `_cold` cases), each reporting ns per gas; the
//! target is within 10x of a token transfer's.
//!
//! Each runs under the latest limits (V3: a frame's memory is at most 1 MiB)
//! unless its name ends in `_v2` (V2's 16 MiB, for chains that keep it).
//!
//! - `touch_pages`: grow memory to its cap and write one byte per 4 KiB.
//! - `chase_16mib_v2`, `chase_2mib_v2`, `chase_1mib`: pointer chases, every
//!   load dependent on the last (over 16 MiB, each a cache and TLB miss).
//! - `touch_initial`: as many initial pages as allowed (16; 256 in
//!   `touch_initial_v2`), one byte written per 4 KiB.
//! - `touch_frames`: the same in every frame the transaction may open
//!   (a re-entrant contract calling itself 63 times).
//! - `touch_initial_frames_cold`: every frame's initial pages written, once,
//!   on a fresh VM: each frame's pool slot is cold, so its pages fault in.
//!   A slot keeps its pages resident after, so this is a one-time cost per
//!   slot; `pool_warm_once` times faulting in every slot's resident pages
//!   (`VmConfig::warm_slots`), the most such faults can ever cost an engine.
//! - `int_add`, `int_mul`, `int_div`, `float_add`, `float_mul`,
//!   `float_div`, `float_sqrt`, `float_convert`, `call_direct`,
//!   `call_indirect`,
//!   `memory_fill_64k`, `memory_copy_64k`, `host_gas_left`, `keccak_32`,
//!   `keccak_128k`, `secp256k1_recover`, `storage_write_64k`,
//!   `storage_read_64k`, `set_return_128k`: one instruction class or host
//!   call repeated until 200 M gas runs out (`CLASS_CASES`).
//! - `calls_LOCALS_x_CALLS`: LOCALS i64 locals all live across CALLS calls.
//! - `straight_F_x_K`: F functions of K KiB of straight-line code each
//!   (the per-byte cost; `straight_4_x_250` is about the largest module).
//!
//! After the execution cases, `worst_block`: the slowest of them under the
//! latest limits (the one-time `_cold` cases aside), how long a block of a
//! new chain's gas limit (400 M) spent on it would take, and that plus
//! `pool_warm_once` (the target: at most 2 s).

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use stele_vm::{MemoryWorld, Vm, VmConfig, VmLimits};

/// One function with `locals` i64 locals and `blocks` guarded blocks, nested
/// or in sequence.
fn guarded_blocks(locals: u32, blocks: u32, nested: bool) -> String {
    let mut body = String::new();
    for i in 0..blocks {
        let a = i % locals;
        let b = (i * 7 + 1) % locals;
        let _ = write!(
            body,
            "(block (br_if 0 (i64.eqz (local.get {a}))) (local.set {b} (i64.add (local.get {b}) (local.get {a})))"
        );
        if !nested {
            body.push(')');
        }
    }
    if nested {
        body.push_str(&")".repeat(blocks as usize));
    }
    // Every local is read at the end, so all of them stay live throughout.
    let mut sum = String::from("(local.get 0)");
    for l in 1..locals {
        sum = format!("(i64.add {sum} (local.get {l}))");
    }
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "run") (local {locals_decl})
    {body}
    (i64.store (i32.const 0) {sum})))"#,
        locals_decl = "i64 ".repeat(locals as usize),
    )
}

/// `funcs` functions of about `kib` KiB each of straight-line arithmetic
/// over 16 locals (no control flow at all).
fn straight(funcs: u32, kib: u32) -> String {
    let mut m = String::from(r#"(module (memory (export "memory") 1)"#);
    // Each statement is 7 bytes: local.get, local.get, i64.add, local.set.
    let statements = kib * 1024 / 7;
    for _ in 0..funcs {
        m.push_str("(func (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)");
        for i in 0..statements {
            let _ = write!(
                m,
                "(local.set {} (i64.add (local.get {}) (local.get {})))",
                i % 16,
                (i + 3) % 16,
                (i + 7) % 16
            );
        }
        m.push(')');
    }
    m.push(')');
    m
}

/// One function with `locals` i64 locals, all live, across `calls` calls.
fn calls(locals: u32, calls: u32) -> String {
    let mut body = String::new();
    for i in 0..calls {
        let a = i % locals;
        let _ = write!(body, "(local.set {a} (call $f (local.get {a})))");
    }
    let mut sum = String::from("(local.get 0)");
    for l in 1..locals {
        sum = format!("(i64.add {sum} (local.get {l}))");
    }
    format!(
        r#"(module (memory (export "memory") 1)
  (func $f (param i64) (result i64) (local.get 0))
  (func (export "run") (local {locals_decl})
    {body}
    (i64.store (i32.const 0) {sum})))"#,
        locals_decl = "i64 ".repeat(locals as usize),
    )
}

fn br_table(targets: u32) -> String {
    let labels = "0 ".repeat(targets as usize);
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "run") (block (br_table {labels} (i32.const 0)))))"#
    )
}

fn functions(n: u32) -> String {
    let mut m = String::from(r#"(module (memory (export "memory") 1)"#);
    for i in 0..n {
        let _ = write!(
            m,
            "(func (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))"
        );
    }
    m.push(')');
    m
}

/// The module of a compile case, by name.
fn compile_case(name: &str) -> Option<Vec<u8>> {
    let nums: Vec<u32> = name
        .split(['_', 'x'])
        .filter_map(|p| p.parse().ok())
        .collect();
    let wat = match (name.split('_').next()?, nums.as_slice()) {
        ("bomb", [l, b]) => guarded_blocks(*l, *b, true),
        ("wide", [l, b]) => guarded_blocks(*l, *b, false),
        ("brtable", [n]) => br_table(*n),
        ("functions", [n]) => functions(*n),
        ("straight", [f, k]) => straight(*f, *k),
        ("calls", [l, n]) => calls(*l, *n),
        _ => return None,
    };
    wat::parse_str(&wat).ok()
}

const COMPILE_CASES: &[&str] = &[
    "bomb_100_x_1000",
    "bomb_500_x_1995",
    "bomb_500_x_2000",
    "bomb_2000_x_2000",
    "bomb_1000_x_2000",
    "bomb_2000_x_5000",
    "bomb_2000_x_12000",
    "wide_2000_x_12000",
    "brtable_16384",
    "functions_10000",
    "straight_1_x_250",
    "straight_4_x_250",
    "calls_2000_x_2000",
    "calls_2000_x_7900",
    "calls_2000_x_20000",
];

/// Peak resident memory of this process, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Child mode: compile one case and print its JSON line.
fn compile_child(name: &str) {
    let Some(code) = compile_case(name) else {
        println!(r#"{{"case":"{name}","error":"unknown case"}}"#);
        return;
    };
    let latest = match stele_vm::validate(&code, &stele_vm::VmLimits::LATEST) {
        Ok(_) => "accepted".to_string(),
        Err(e) => format!("refused: {e}").replace('"', "'"),
    };
    let vm: Vm<MemoryWorld> = match Vm::new(VmConfig {
        epoch_ticker: false,
        limits: stele_vm::VmLimits::V1,
        gas: stele_vm::GasSchedule::latest_for(&stele_vm::VmLimits::V1),
        ..VmConfig::default()
    }) {
        Ok(vm) => vm,
        Err(e) => {
            println!(r#"{{"case":"{name}","error":"{e}"}}"#);
            return;
        }
    };
    let base = peak_rss_kib().unwrap_or(0);
    let started = Instant::now();
    let result = vm.prepare(&code);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let peak = peak_rss_kib().unwrap_or(0);
    let outcome = match result {
        Ok(()) => "compiled".to_string(),
        Err(e) => format!("refused: {e}").replace('"', "'"),
    };
    println!(
        r#"{{"bench":"compile","case":"{name}","code_bytes":{},"latest_limits":"{latest}","outcome":"{outcome}","ms":{ms:.1},"peak_rss_mib":{},"rss_before_mib":{}}}"#,
        code.len(),
        peak / 1024,
        base / 1024
    );
}

/// The compile complexity of real contracts (`.wasm` files in `dir`), to
/// set the limits against.
fn contracts(dir: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("cannot read {dir}");
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(code) = std::fs::read(&path) else {
            continue;
        };
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string());
        match stele_vm::validate(&code, &stele_vm::VmLimits::V1) {
            Ok(info) => println!(
                r#"{{"bench":"contract","case":"{}","code_bytes":{},"functions":{},"complexity":{},"function_complexity_max":{}}}"#,
                name.unwrap_or_default(),
                code.len(),
                info.function_costs.len(),
                info.complexity,
                info.function_complexity
            ),
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
}

const ALICE: stele_types::Address = stele_types::Address([0xa1; 20]);

fn ctx() -> stele_vm::ExecContext {
    stele_vm::ExecContext {
        origin: ALICE,
        caller: ALICE,
        value: 0,
        block_height: 1,
        block_timestamp_ms: 0,
        chain_id: 1,
        tx_hash: stele_types::Hash::ZERO,
        debug: false,
        event_bytes_left: u64::MAX,
    }
}

/// Grows memory one page at a time until refused (at most `pages_max`),
/// writing one byte per 4 KiB of each new page; then, in `touch_frames`,
/// calls itself again until the transaction's frames run out.
const TOUCH: &str = r#"(module
  (import "stele" "self_address" (func $self (param i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "touch_frames")
  (func $touch (local $p i32) (local $a i32)
    (block $done (loop $grow
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (local.set $a (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)))
      (local.set $p (i32.const 0))
      (loop $page
        (i32.store8 (i32.add (local.get $a) (local.get $p)) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br_if $page (i32.lt_u (local.get $p) (i32.const 65536))))
      (br $grow))))
  (func (export "touch_pages") (call $touch))
  (func (export "touch_frames")
    (call $touch)
    (call $self (i32.const 0))
    (drop (call $call (i32.const 0) (i32.const 100) (i32.const 12) (i32.const 0) (i32.const 0)
                      (i32.const 200) (i64.const 0))))
  (@custom "stele_reentrant" "")
)"#;

/// A pointer chase over `pages` pages: a cycle through every 64-byte line
/// in an order that defeats the prefetcher (a stride of 4 093 lines, a
/// prime), built first, then followed for 4 M dependent loads.
fn chase(pages: u32) -> String {
    let lines = pages * 1024;
    format!(
        r#"(module
  (memory (export "memory") {pages})
  (func (export "run") (local $i i32) (local $p i32) (local $n i32)
    (loop $build
      (i32.store (i32.shl (local.get $i) (i32.const 6))
        (i32.shl (i32.rem_u (i32.add (local.get $i) (i32.const 4093)) (i32.const {lines})) (i32.const 6)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $build (i32.lt_u (local.get $i) (i32.const {lines}))))
    (loop $chase
      (local.set $p (i32.load (local.get $p)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $chase (i32.lt_u (local.get $n) (i32.const 4000000))))
    (i32.store (i32.const 0) (local.get $p))))"#
    )
}

/// `pages` initial pages, one byte written per 4 KiB.
fn touch_initial(pages: u64) -> String {
    let bytes = pages * 65_536;
    format!(
        r#"(module
  (memory (export "memory") {pages})
  (func (export "run") (local $p i32)
    (loop $l
      (i32.store8 (local.get $p) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get $p) (i32.const {bytes}))))))"#
    )
}

/// Host imports the instruction-class cases use.
const CLASS_IMPORTS: &str = r#"
  (import "stele" "gas_left" (func $gas_left (result i64)))
  (import "stele" "keccak256" (func $keccak (param i32 i32 i32)))
  (import "stele" "secp256k1_recover" (func $recover (param i32 i32 i32) (result i32)))
  (import "stele" "storage_write" (func $write (param i32 i32 i32 i32)))
  (import "stele" "storage_read" (func $read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))"#;

/// One instruction class or host call at a time, repeated until the gas
/// runs out: `(name, body of the loop)`. Memory is 16 pages (1 MiB), the
/// table holds `$nop`, locals `$i` (i32), `$x` (i64), `$f` (f64).
const CLASS_CASES: &[(&str, &str)] = &[
    // A dependent chain of 64-bit divisions (the slowest integer op).
    (
        "int_div",
        "(local.set $x (i64.div_u (i64.const -1) (i64.or (local.get $x) (i64.const 3))))",
    ),
    (
        "float_sqrt",
        "(local.set $f (f64.sqrt (f64.add (local.get $f) (f64.const 1))))",
    ),
    // Dependent chains of one operator each (NaN canonicalization follows
    // every float result).
    (
        "int_add",
        "(local.set $x (i64.add (local.get $x) (i64.const 3)))",
    ),
    (
        "int_mul",
        "(local.set $x (i64.mul (local.get $x) (i64.const 3)))",
    ),
    (
        "float_add",
        "(local.set $f (f64.add (local.get $f) (f64.const 1.5)))",
    ),
    (
        "float_mul",
        "(local.set $f (f64.mul (local.get $f) (f64.const 1.0000001)))",
    ),
    (
        "float_div",
        "(local.set $f (f64.div (local.get $f) (f64.const 1.0000001)))",
    ),
    (
        "float_convert",
        "(local.set $f (f64.convert_i64_s (i64.trunc_sat_f64_s (f64.add (local.get $f) (f64.const 1.5)))))",
    ),
    ("call_direct", "(call $nop)"),
    ("call_indirect", "(call_indirect (type $v) (i32.const 0))"),
    (
        "memory_fill_64k",
        "(memory.fill (i32.const 0) (local.get $i) (i32.const 65536))",
    ),
    (
        "memory_copy_64k",
        "(memory.copy (i32.const 0) (i32.const 65536) (i32.const 65536))",
    ),
    ("host_gas_left", "(drop (call $gas_left))"),
    (
        "keccak_32",
        "(call $keccak (i32.const 0) (i32.const 32) (i32.const 0))",
    ),
    (
        "keccak_128k",
        "(call $keccak (i32.const 0) (i32.const 131072) (i32.const 0))",
    ),
    // A signature that recovers (r is a valid x coordinate): full work.
    (
        "secp256k1_recover",
        "(drop (call $recover (i32.const 0) (i32.const 32) (i32.const 200)))",
    ),
    // 64 KiB values under ever new keys.
    (
        "storage_write_64k",
        "(i32.store (i32.const 300) (local.get $i)) (local.set $i (i32.add (local.get $i) (i32.const 1))) (call $write (i32.const 300) (i32.const 4) (i32.const 65536) (i32.const 65536))",
    ),
    (
        "storage_read_64k",
        "(drop (call $read (i32.const 300) (i32.const 4) (i32.const 65536) (i32.const 65536)))",
    ),
    (
        "set_return_128k",
        "(call $set_return (i32.const 0) (i32.const 131072))",
    ),
];

/// The module of one [`CLASS_CASES`] entry: `run` writes one 64 KiB value
/// (for the read case), then repeats `body` until the gas runs out.
fn class_case(body: &str) -> String {
    format!(
        r#"(module {CLASS_IMPORTS}
  (type $v (func))
  (memory (export "memory") 16)
  (table 1 funcref)
  (elem (i32.const 0) $nop)
  ;; A digest, then a signature whose r (the generator's x) is on the
  ;; curve, with s = 1 and recovery id 0.
  (data (i32.const 0) "\11\22\33\44\55\66\77\88\99\aa\bb\cc\dd\ee\ff\01\11\22\33\44\55\66\77\88\99\aa\bb\cc\dd\ee\ff\01")
  (data (i32.const 32) "\79\be\66\7e\f9\dc\bb\ac\55\a0\62\95\ce\87\0b\07\02\9b\fc\db\2d\ce\28\d9\59\f2\81\5b\16\f8\17\98")
  (data (i32.const 64) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01\00")
  (func $nop)
  (func (export "run") (local $i i32) (local $x i64) (local $f f64)
    (call $write (i32.const 300) (i32.const 4) (i32.const 65536) (i32.const 65536))
    (loop $l {body} (br $l))))"#
    )
}

/// Every frame a transaction can nest, each with `pages` initial pages
/// written one byte per 4 KiB: run once on a fresh VM, so every frame's
/// pool slot is cold (its pages fault in), as an attacker can arrange by
/// spreading calls over many modules.
fn touch_initial_frames(pages: u64) -> String {
    let bytes = pages * 65_536;
    format!(
        r#"(module
  (import "stele" "self_address" (func $self (param i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 100) "run")
  (func (export "run") (local $p i32)
    (local.set $p (i32.const 4096))
    (loop $l
      (i32.store8 (local.get $p) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get $p) (i32.const {bytes}))))
    (call $self (i32.const 0))
    (drop (call $call (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 0)
                      (i32.const 200) (i64.const 0))))
  (@custom "stele_reentrant" ""))"#
    )
}

/// Runs `method` of `wat` `runs` times on fresh executions under `limits`
/// (after an untimed one unless `name` ends in `_cold`); prints gas, ns and
/// ns per gas.
fn exec_case(name: &str, limits: VmLimits, wat: &str, method: &str, runs: u32) -> Option<f64> {
    exec_case_gas(name, limits, wat, method, runs, 2_000_000_000)
}

/// [`exec_case`] with `gas_limit` for each execution; the case's ns per
/// gas.
fn exec_case_gas(
    name: &str,
    limits: VmLimits,
    wat: &str,
    method: &str,
    runs: u32,
    gas_limit: u64,
) -> Option<f64> {
    let vm: Vm<MemoryWorld> = match Vm::new(VmConfig {
        epoch_ticker: false,
        gas: stele_vm::GasSchedule::latest_for(&limits),
        limits,
        ..VmConfig::default()
    }) {
        Ok(vm) => vm,
        Err(e) => {
            eprintln!("{name}: {e}");
            return None;
        }
    };
    let Ok(code) = wat::parse_str(wat) else {
        eprintln!("{name}: bad fixture");
        return None;
    };
    let deploy = stele_vm::Action::Deploy {
        code: &code,
        init_args: &[],
        nonce: 0,
    };
    let (out, world) = vm.execute(&ctx(), deploy, 10_000_000_000, MemoryWorld::new());
    let Some(contract) = out.ok().and_then(|o| o.contract_address) else {
        eprintln!("{name}: deploy failed");
        return None;
    };
    let call = stele_vm::Action::Call {
        contract,
        method,
        args: &[],
    };
    // One untimed run first faults in the pool slots the case uses, except
    // in the `_cold` cases, which time exactly that (once per slot; see
    // `pool_warm_once`).
    if !name.ends_with("_cold") {
        let _ = vm.execute(&ctx(), call, gas_limit, world.clone());
    }
    let mut gas = 0;
    let mut status = String::new();
    let started = Instant::now();
    for _ in 0..runs {
        let (out, _) = vm.execute(&ctx(), call, gas_limit, world.clone());
        match out {
            Ok(o) => {
                gas = o.gas_used;
                status = format!("{:?}", o.status);
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return None;
            }
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(runs);
    let ns_per_gas = ns / gas.max(1) as f64;
    println!(
        r#"{{"bench":"exec","case":"{name}","status":"{status}","gas":{gas},"ns":{ns:.0},"ns_per_gas":{ns_per_gas:.2},"peak_rss_mib":{}}}"#,
        peak_rss_kib().unwrap_or(0) / 1024
    );
    Some(ns_per_gas)
}

/// `block_gas_max` of a new chain's genesis (`stele-node`'s
/// `ChainParams::default`).
const BLOCK_GAS_MAX: u64 = 400_000_000;

/// The slowest gas a new chain can be made to run, and the worst block:
/// the block gas limit spent on it (the target: at most 2 s).
/// Page faults in cold pool slots are left out of the ns per gas: they
/// happen once per slot, and all of them together cost at most
/// `pool_warm_once`, which the block's time adds.
#[derive(Default)]
struct Worst {
    case: String,
    ns_per_gas: f64,
    pool_warm_once_s: f64,
}

impl Worst {
    fn see(&mut self, name: &str, ns_per_gas: Option<f64>) {
        if name.ends_with("_cold") {
            return;
        }
        if let Some(n) = ns_per_gas
            && n > self.ns_per_gas
        {
            self.case = name.to_string();
            self.ns_per_gas = n;
        }
    }

    fn print(&self) {
        if self.case.is_empty() {
            return;
        }
        let steady = self.ns_per_gas * BLOCK_GAS_MAX as f64 / 1e9;
        println!(
            concat!(
                r#"{{"bench":"worst_block","case":"{}","ns_per_gas":{:.2},"block_gas_max":{},"#,
                r#""steady_seconds":{:.2},"pool_warm_once_seconds":{:.3},"seconds":{:.2}}}"#
            ),
            self.case,
            self.ns_per_gas,
            BLOCK_GAS_MAX,
            steady,
            self.pool_warm_once_s,
            steady + self.pool_warm_once_s,
        );
    }
}

/// How long building an engine takes with its pool's slots warmed, less
/// without (best of three each): faulting in the first `RESIDENT_PAGES` of
/// every slot, the most that cold slots' page faults can add up to.
fn pool_warm_once() -> Option<f64> {
    let build = |warm_slots: bool| -> Option<f64> {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let vm = Vm::<MemoryWorld>::new(VmConfig {
                epoch_ticker: false,
                warm_slots,
                ..VmConfig::default()
            });
            let s = t.elapsed().as_secs_f64();
            if let Err(e) = vm {
                eprintln!("pool_warm_once: {e}");
                return None;
            }
            best = best.min(s);
        }
        Some(best)
    };
    let once = (build(true)? - build(false)?).max(0.0);
    let config = VmConfig::default();
    println!(
        r#"{{"bench":"pool_warm_once","slots":{},"pages_per_slot":{},"ms":{:.1}}}"#,
        config.pool_instances_max,
        stele_vm::limits::RESIDENT_PAGES,
        once * 1e3
    );
    Some(once)
}

fn exec_cases(wanted: &[&String]) {
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()));
    let latest = VmLimits::LATEST;
    // Only what new chains run counts for the worst block (`_v2` cases
    // run under older limits).
    let mut worst = Worst::default();
    if run("pool_warm_once") {
        worst.pool_warm_once_s = pool_warm_once().unwrap_or(0.0);
    }
    let mut see = |name: &str, ns: Option<f64>| {
        if !name.ends_with("_v2") {
            worst.see(name, ns);
        }
    };
    if run("touch_pages") {
        see(
            "touch_pages",
            exec_case("touch_pages", latest.clone(), TOUCH, "touch_pages", 20),
        );
    }
    for (name, limits) in [
        ("touch_initial", &latest),
        ("touch_initial_v2", &VmLimits::V2),
    ] {
        if run(name) {
            let wat = touch_initial(limits.memory_pages_max);
            see(name, exec_case(name, limits.clone(), &wat, "run", 20));
        }
    }
    for (name, limits, pages) in [
        ("chase_16mib_v2", &VmLimits::V2, 256),
        ("chase_2mib_v2", &VmLimits::V2, 32),
        ("chase_1mib", &latest, 16),
    ] {
        if run(name) {
            see(
                name,
                exec_case(name, limits.clone(), &chase(pages), "run", 3),
            );
        }
    }
    for (name, limits) in [
        ("touch_frames", &latest),
        ("touch_frames_v2", &VmLimits::V2),
    ] {
        if run(name) {
            see(
                name,
                exec_case(name, limits.clone(), TOUCH, "touch_frames", 3),
            );
        }
    }
    for (name, limits) in [
        ("touch_initial_frames_cold", &latest),
        ("touch_initial_frames_cold_v2", &VmLimits::V2),
    ] {
        if run(name) {
            let wat = touch_initial_frames(limits.memory_pages_max.min(32));
            see(name, exec_case(name, limits.clone(), &wat, "run", 1));
        }
    }
    for (name, body) in CLASS_CASES {
        if run(name) {
            let ns = exec_case_gas(
                name,
                latest.clone(),
                &class_case(body),
                "run",
                3,
                200_000_000,
            );
            see(name, ns);
        }
    }
    worst.print();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(dir) = std::env::var("STELE_CONTRACTS_DIR") {
        contracts(&dir);
    }
    if let [flag, name] = args.as_slice()
        && flag == "--compile-child"
    {
        compile_child(name);
        return;
    }
    // `cargo bench` passes `--bench`; anything else names cases to run.
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this benchmark's executable");
        return;
    };
    exec_cases(&wanted);
    for case in COMPILE_CASES {
        if !wanted.is_empty() && !wanted.iter().any(|w| case.contains(w.as_str())) {
            continue;
        }
        let child = Command::new(&me)
            .args(["--compile-child", case])
            .env_remove("STELE_CONTRACTS_DIR")
            .output();
        match child {
            Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
            Err(e) => eprintln!("{case}: {e}"),
        }
    }
}
