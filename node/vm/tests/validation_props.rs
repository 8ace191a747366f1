//! Deploy-time validation never panics: valid contracts mutated byte by byte
//! (flips, overwrites, insertions, deletions, truncation) either get a
//! specific `ValidationError` or pass, and whatever passes also passes the
//! stack-height instrumentation, stays valid Wasm after it, and compiles.
//! The cargo-fuzz targets in `node/vm/fuzz` do the same from raw bytes.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use stele_vm::instrument::instrument;
use stele_vm::validate::features;
use stele_vm::{GasSchedule, MemoryWorld, Vm, VmLimits, validate};

/// One VM for every case (the fuzz target keeps one in a static the same
/// way), so each case costs a compile, not an engine.
fn shared_vm() -> &'static Vm<MemoryWorld> {
    static VM: OnceLock<Vm<MemoryWorld>> = OnceLock::new();
    VM.get_or_init(vm)
}

/// Seeds that exercise most sections and operators the validator and the
/// instrumentation handle: imports, a table with elements, globals, data,
/// nested blocks, `br_table`, `call_indirect`, early `return`s, bulk
/// memory, floats, a re-entry custom section.
const RICH: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (import "stele" "storage_read" (func $read (param i32 i32 i32 i32) (result i64)))
  (import "stele" "set_return" (func $ret (param i32 i32)))
  (import "stele" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 2 4)
  (table 4 funcref)
  (global $g (mut i32) (i32.const 7))
  (global $c i64 (i64.const 99))
  (elem (i32.const 0) $double $early $double)
  (data (i32.const 16) "stele")
  (data (i32.const 64) "\00\01\02\03")
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $early (param i32) (result i32) (local i64 f64)
    (if (i32.eqz (local.get 0)) (then (return (i32.const 1))))
    (block $a (block $b (block $c
      (br_table $a $b $c (local.get 0)))
      (return (i32.const 3)))
      (global.set $g (i32.add (global.get $g) (i32.const 1))))
    (local.set 2 (f64.sqrt (f64.convert_i32_u (local.get 0))))
    (i32.trunc_sat_f64_u (local.get 2)))
  (func (export "run") (local $i i32)
    (memory.fill (i32.const 128) (i32.const 0) (i32.const 32))
    (memory.copy (i32.const 160) (i32.const 16) (i32.const 5))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (drop (call_indirect (type $t) (local.get $i) (i32.rem_u (local.get $i) (i32.const 3))))
      (br_if $l (i32.lt_u (local.get $i) (call $input_len))))
    (drop (call $read (i32.const 16) (i32.const 5) (i32.const 200) (i32.const 8)))
    (call $ret (i32.const 16) (i32.const 5)))
  (@custom "stele_reentrant" "1")
)"#;

const SMALL: &str = r#"(module
  (import "stele" "caller" (func $caller (param i32)))
  (memory (export "memory") 1)
  (func (export "init") (call $caller (i32.const 0)))
  (func (export "get") (result i32) (i32.const 5))
  (func (export "noop"))
)"#;

fn seeds() -> Vec<Vec<u8>> {
    [RICH.to_string(), SMALL.to_string(), token_wat()]
        .iter()
        .map(|w| wasm(w))
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Edit::Flip(i, m)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(code: &mut Vec<u8>, e: &Edit) {
    if code.is_empty() {
        return;
    }
    let at = |i: usize| i % code.len();
    match *e {
        Edit::Flip(i, m) => {
            let i = at(i);
            code[i] ^= m;
        }
        Edit::Set(i, b) => {
            let i = at(i);
            code[i] = b;
        }
        Edit::Insert(i, b) => {
            let i = at(i);
            code.insert(i, b);
        }
        Edit::Delete(i) => {
            let i = at(i);
            code.remove(i);
        }
        Edit::Truncate(i) => {
            let i = at(i);
            code.truncate(i);
        }
    }
}

/// The whole deploy-time pipeline on `code`; panics only on a real bug.
fn check_pipeline(vm: &Vm<MemoryWorld>, code: &[u8]) -> bool {
    // The VM's own limits, so that what passes here is what it compiles.
    let limits = vm.limits().clone();
    let Ok(info) = validate(code, &limits) else {
        return false;
    };
    for gas in GasSchedule::ALL {
        let instrumented = instrument(code, &info, limits.stack_height_max, gas)
            .unwrap_or_else(|e| panic!("validated code failed instrumentation: {e}"));
        wasmparser::Validator::new_with_features(features())
            .validate_all(&instrumented)
            .unwrap_or_else(|e| panic!("instrumented code is invalid: {e}"));
    }
    vm.prepare(code)
        .unwrap_or_else(|e| panic!("validated code failed to compile: {e}"));
    true
}

#[test]
fn the_seeds_are_valid() {
    for seed in seeds() {
        validate(&seed, &VmLimits::LATEST).unwrap();
        assert!(check_pipeline(shared_vm(), &seed));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mutated_valid_modules_never_panic_the_validator(
        seed in 0..3usize,
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut code = seeds().swap_remove(seed);
        for e in &edits {
            apply(&mut code, e);
        }
        check_pipeline(shared_vm(), &code);
    }

    #[test]
    fn arbitrary_bytes_after_the_header_never_panic_the_validator(
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut code = b"\0asm\x01\0\0\0".to_vec();
        code.extend_from_slice(&body);
        check_pipeline(shared_vm(), &code);
    }
}
