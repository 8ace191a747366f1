//! Hostile modules: each must fail (or succeed) the same way, with the same
//! gas, on every run and on fresh engines, and never harm the node.

mod common;

use common::*;
use stele_types::ExecStatus;
use stele_vm::{
    FailKind, Failure, MemoryWorld, Outcome, TrapKind, ValidationError, VmLimits, World,
};

/// Runs `method` of `wat` three times: twice on one VM (the second from the
/// module cache) and once on a fresh engine; asserts identical outcomes.
fn run_deterministic(wat: &str, method: &str, args: &[u8], gas: u64) -> Outcome {
    run_deterministic_under(VmLimits::LATEST, wat, method, args, gas)
}

/// [`run_deterministic`] on VMs running `limits`.
fn run_deterministic_under(
    limits: VmLimits,
    wat: &str,
    method: &str,
    args: &[u8],
    gas: u64,
) -> Outcome {
    let vm = || {
        stele_vm::Vm::new(stele_vm::VmConfig {
            gas: stele_vm::GasSchedule::latest_for(&limits),
            limits: limits.clone(),
            ..config()
        })
        .expect("engine config is valid")
    };
    let vm1 = vm();
    let (addr, world) = deploy(&vm1, MemoryWorld::new(), wat, 0);
    let (a, _) = call(&vm1, world.clone(), addr, method, args, gas);
    let (b, _) = call(&vm1, world.clone(), addr, method, args, gas);
    let vm2 = vm();
    let (c, _) = call(&vm2, world, addr, method, args, gas);
    assert_eq!(a, b, "repeated run differs");
    assert_eq!(a, c, "fresh engine differs");
    a
}

fn deploy_error(wat_or_wasm: &[u8]) -> ValidationError {
    // Enough for the deploy cost of the largest fixtures (1 MiB of code,
    // 100k functions), so validation is what rejects them.
    let (out, _) = deploy_code(&vm(), wat_or_wasm, 100_000_000_000);
    match out.expect("no node error").failure {
        Some(Failure::Failed(FailKind::InvalidCode(e))) => e,
        other => panic!("expected invalid code, got {other:?}"),
    }
}

#[test]
fn infinite_loop_runs_out_of_gas_at_the_limit() {
    on_exec_stack(|| {
        let wat = r#"(module (memory (export "memory") 1)
            (func (export "run") (loop $l (br $l))))"#;
        let out = run_deterministic(wat, "run", &[], 2_000_000);
        assert_eq!(out.status, ExecStatus::OutOfGas);
        assert_eq!(out.gas_used, 2_000_000);
    });
}

#[test]
fn deep_recursion_hits_the_deterministic_stack_limit() {
    on_exec_stack(|| {
        let wat = r#"(module (memory (export "memory") 1)
            (func $f (param i64) (call $f (i64.add (local.get 0) (i64.const 1))))
            (func (export "run") (call $f (i64.const 0))))"#;
        let out = run_deterministic(wat, "run", &[], 50_000_000);
        assert_eq!(out.failure, Some(Failure::Trapped(TrapKind::StackLimit)));
        assert_eq!(out.output, b"trapped: stack height limit exceeded");
        // A trap raised in Wasm code uses the frame's whole budget.
        assert_eq!(out.gas_used, 50_000_000);
    });
}

#[test]
fn memory_grow_past_the_cap_fails_the_same_way_every_time() {
    on_exec_stack(|| {
        // Grows one page at a time until refused; returns the final size.
        let wat = r#"(module
            (import "stele" "set_return" (func $set_return (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "run")
              (if (i32.ne (memory.grow (i32.const 257)) (i32.const -1)) (then unreachable))
              (block $done (loop $l
                (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
                (br $l)))
              (i32.store (i32.const 0) (memory.size))
              (call $set_return (i32.const 0) (i32.const 4))))"#;
        let out = run_deterministic(wat, "run", &[], 50_000_000);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        let pages = u32::from_le_bytes(out.output[..4].try_into().unwrap());
        assert_eq!(u64::from(pages), VmLimits::LATEST.memory_pages_max);
        assert_eq!(pages, 16);
        // V5 prices pages as resident: it runs only with frames that fit.
        assert_eq!(
            stele_vm::GasSchedule::latest_for(&VmLimits::V3),
            stele_vm::GasSchedule::V5
        );
        assert_eq!(
            stele_vm::GasSchedule::latest_for(&VmLimits::V2),
            stele_vm::GasSchedule::V4
        );
        assert!(
            stele_vm::GasSchedule::V5
                .check_limits(&VmLimits::V2)
                .is_err()
        );
        assert!(
            stele_vm::Vm::<MemoryWorld>::new(stele_vm::VmConfig {
                limits: VmLimits::V2,
                ..config()
            })
            .is_err()
        );
        // Chains on V2 keep their 256 pages.
        let out = run_deterministic_under(VmLimits::V2, wat, "run", &[], 50_000_000);
        let pages = u32::from_le_bytes(out.output[..4].try_into().unwrap());
        assert_eq!(pages, 256);
        let just_over = wasm(r#"(module (memory (export "memory") 17))"#);
        assert!(matches!(
            deploy_error(&just_over),
            ValidationError::MemoryTooLarge {
                what: "initial size",
                pages: 17,
                max: 16
            }
        ));

        let declared = wasm(r#"(module (memory (export "memory") 1 100000))"#);
        assert!(matches!(
            deploy_error(&declared),
            ValidationError::MemoryTooLarge {
                what: "maximum size",
                ..
            }
        ));
        let initial = wasm(r#"(module (memory (export "memory") 1000))"#);
        assert!(matches!(
            deploy_error(&initial),
            ValidationError::MemoryTooLarge {
                what: "initial size",
                ..
            }
        ));
    });
}

#[test]
fn huge_table_is_rejected_at_deploy() {
    let code = wasm(r#"(module (memory (export "memory") 1) (table 1000000 funcref))"#);
    assert!(matches!(
        deploy_error(&code),
        ValidationError::TableTooLarge {
            elements: 1_000_000,
            ..
        }
    ));
}

#[test]
fn hundred_thousand_functions_are_rejected_at_deploy() {
    let mut wat = String::from(r#"(module (memory (export "memory") 1)"#);
    for _ in 0..100_000 {
        wat.push_str("(func)");
    }
    wat.push(')');
    let code = wasm(&wat);
    assert_eq!(
        deploy_error(&code),
        ValidationError::TooMany {
            what: "functions",
            count: 100_000,
            max: 10_000
        }
    );
}

#[test]
fn huge_parameter_count_is_rejected_before_compilation() {
    let params = "i32 ".repeat(1000);
    let code = wasm(&format!(
        r#"(module (memory (export "memory") 1) (func (param {params})))"#
    ));
    assert!(matches!(
        deploy_error(&code),
        ValidationError::TooMany {
            what: "function parameters",
            ..
        }
    ));
}

#[test]
fn unknown_and_foreign_imports_are_rejected() {
    let unknown =
        wasm(r#"(module (import "stele" "launch_missiles" (func)) (memory (export "memory") 1))"#);
    assert_eq!(
        deploy_error(&unknown),
        ValidationError::UnknownHostFunction {
            name: "launch_missiles".into()
        }
    );
    let foreign = wasm(r#"(module (import "env" "abort" (func)) (memory (export "memory") 1))"#);
    assert!(matches!(
        deploy_error(&foreign),
        ValidationError::ImportOutsideHostModule { .. }
    ));
    let wrong_sig = wasm(
        r#"(module (import "stele" "gas_left" (func (result i32))) (memory (export "memory") 1))"#,
    );
    assert!(matches!(
        deploy_error(&wrong_sig),
        ValidationError::HostFunctionSignature { .. }
    ));
    let memory_import =
        wasm(r#"(module (import "stele" "memory" (memory 1)) (export "memory" (memory 0)))"#);
    assert!(matches!(
        deploy_error(&memory_import),
        ValidationError::NonFunctionImport { .. }
    ));
}

#[test]
fn start_function_missing_memory_and_features_are_rejected() {
    let start = wasm(r#"(module (memory (export "memory") 1) (func $s) (start $s))"#);
    assert_eq!(deploy_error(&start), ValidationError::StartFunction);
    let no_memory = wasm(r#"(module (func (export "run")))"#);
    assert_eq!(
        deploy_error(&no_memory),
        ValidationError::MissingExport("memory")
    );
    let simd = wasm(
        r#"(module (memory (export "memory") 1)
        (func (result v128) (v128.const i64x2 0 0)))"#,
    );
    assert!(matches!(
        deploy_error(&simd),
        ValidationError::InvalidWasm { .. }
    ));
    let reserved = wasm(r#"(module (memory (export "memory") 1) (func (export "__stele_x")))"#);
    assert!(matches!(
        deploy_error(&reserved),
        ValidationError::ReservedExport(_)
    ));
    let too_big = vec![0u8; VmLimits::V1.code_bytes_max + 1];
    assert!(matches!(
        deploy_error(&too_big),
        ValidationError::CodeTooLarge { .. }
    ));
}

#[test]
fn float_nans_are_canonical() {
    on_exec_stack(|| {
        let wat = r#"(module
            (import "stele" "set_return" (func $set_return (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "run")
              (f64.store (i32.const 0) (f64.div (f64.const 0) (f64.const 0)))
              (f32.store (i32.const 8)
                (f32.add (f32.reinterpret_i32 (i32.const 0x7fc00001)) (f32.const 1)))
              (f64.store (i32.const 12) (f64.sqrt (f64.const -1)))
              (f32.store (i32.const 20)
                (f32.mul (f32.reinterpret_i32 (i32.const 0xffc12345)) (f32.const 2)))
              (call $set_return (i32.const 0) (i32.const 24))))"#;
        let out = run_deterministic(wat, "run", &[], GAS);
        let o = &out.output;
        assert_eq!(
            u64::from_le_bytes(o[0..8].try_into().unwrap()),
            0x7ff8_0000_0000_0000
        );
        assert_eq!(
            u32::from_le_bytes(o[8..12].try_into().unwrap()),
            0x7fc0_0000
        );
        assert_eq!(
            u64::from_le_bytes(o[12..20].try_into().unwrap()),
            0x7ff8_0000_0000_0000
        );
        assert_eq!(
            u32::from_le_bytes(o[20..24].try_into().unwrap()),
            0x7fc0_0000
        );
    });
}

/// `neg`, `abs` and `copysign` are bit operations: they keep a NaN's
/// payload and change only its sign, the same way on every node (docs/vm.md).
#[test]
fn sign_operations_keep_nan_payloads() {
    on_exec_stack(|| {
        let wat = r#"(module
            (import "stele" "set_return" (func $set_return (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "run")
              (f32.store (i32.const 0) (f32.neg (f32.reinterpret_i32 (i32.const 0x7fc12345))))
              (f32.store (i32.const 4) (f32.abs (f32.reinterpret_i32 (i32.const 0xffc12345))))
              (f32.store (i32.const 8)
                (f32.copysign (f32.reinterpret_i32 (i32.const 0x7fc12345)) (f32.const -1)))
              (f64.store (i32.const 12)
                (f64.neg (f64.reinterpret_i64 (i64.const 0x7ff8000000012345))))
              (call $set_return (i32.const 0) (i32.const 20))))"#;
        let out = run_deterministic(wat, "run", &[], GAS);
        let o = &out.output;
        let word = |i: usize| u32::from_le_bytes(o[i..i + 4].try_into().unwrap());
        assert_eq!(word(0), 0xffc1_2345);
        assert_eq!(word(4), 0x7fc1_2345);
        assert_eq!(word(8), 0xffc1_2345);
        assert_eq!(
            u64::from_le_bytes(o[12..20].try_into().unwrap()),
            0xfff8_0000_0001_2345
        );
    });
}

#[test]
fn out_of_bounds_host_pointers_trap_the_contract() {
    on_exec_stack(|| {
        for body in [
            "(call $caller (i32.const 65530))",
            "(call $storage_write (i32.const -16) (i32.const 8) (i32.const 0) (i32.const 1))",
            "(call $storage_write (i32.const 0) (i32.const 8) (i32.const 65535) (i32.const 100))",
            "(call $set_return (i32.const 65000) (i32.const 1000))",
            "(call $input_read (i32.const 65535))",
        ] {
            let wat = format!(
                r#"(module {IMPORTS} (memory (export "memory") 1)
                   (func (export "run") {body}))"#
            );
            let out = run_deterministic(&wat, "run", b"four", GAS);
            assert_eq!(
                out.failure,
                Some(Failure::Trapped(TrapKind::HostPointerOutOfBounds)),
                "{body}"
            );
        }
    });
}

#[test]
fn oversized_events_and_return_data_trap() {
    on_exec_stack(|| {
        let cases = [
            (
                "(call $emit_event (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16385))",
                TrapKind::EventDataTooLarge,
            ),
            (
                "(call $emit_event (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0))",
                TrapKind::EventTopics,
            ),
            (
                "(call $set_return (i32.const 0) (i32.const 131073))",
                TrapKind::ReturnDataTooLarge,
            ),
            (
                "(call $revert (i32.const 0) (i32.const 131073))",
                TrapKind::ReturnDataTooLarge,
            ),
            (
                "(loop $l (call $emit_event (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (br $l))",
                TrapKind::TooManyEvents,
            ),
            // 16 events of 16 KiB are the most one transaction may emit.
            (
                "(loop $l (call $emit_event (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16384)) (br $l))",
                TrapKind::EventBytes,
            ),
        ];
        for (body, kind) in cases {
            let wat = format!(
                r#"(module {IMPORTS} (memory (export "memory") 4)
                   (func (export "run") {body}))"#
            );
            let out = run_deterministic(&wat, "run", &[], 100_000_000);
            assert_eq!(out.failure, Some(Failure::Trapped(kind)), "{body}");
            assert!(out.events.is_empty());
        }
    });
}

/// Re-entrant contract that calls itself until the depth limit; at each
/// level it first recurses in Wasm to near the stack limit, so the native
/// stack is at its deterministic worst case at every depth.
fn bomb_wat(recurse: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "run")
  (func $deep (param $n i32)
    (if (i32.eqz (local.get $n))
      (then
        (call $self_address (i32.const 0))
        (i32.store8 (i32.const 200)
          (call $call (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 300) (i64.const 0)))
        ;; count depth in storage via the result chain: return 1 + callee's
        (call $result_read (i32.const 201)))
      (else (call $deep (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "run")
    (call $deep (i32.const {recurse}))
    (call $set_return (i32.const 200) (i32.add (i32.const 1) (call $result_len))))
  (@custom "stele_reentrant" "")
)"#
    )
}

#[test]
fn call_depth_bomb_stops_at_the_depth_limit_deterministically() {
    on_exec_stack(|| {
        // `run` costs 9 units and each `$deep` frame 17 (1 param + 8
        // operand slots + 8 overhead): 9 + 1_901 * 17 = 32_326 of 32_768.
        let out = run_deterministic(&bomb_wat(1_900), "run", &[], 2_000_000_000);
        assert_eq!(out.status, ExecStatus::Success, "{:?}", out.failure);
        // Output: status of each level's call, innermost failure message last.
        let depth = VmLimits::V1.call_depth_max as usize;
        assert!(
            out.output[..depth - 1].iter().all(|s| *s == 0),
            "{:?}",
            &out.output[..depth]
        );
        assert_eq!(out.output[depth - 1], ExecStatus::Failed as u8);
        assert_eq!(&out.output[depth..], b"failed: call depth limit exceeded");
    });
}

#[test]
fn reentrancy_is_blocked_unless_the_contract_opts_in() {
    on_exec_stack(|| {
        // `ping` calls the proxy-style callee given in its input, which calls
        // `pong` back on the first contract.
        let victim = format!(
            r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "bounce")
  (func (export "ping")
    (call $input_read (i32.const 0))
    (i32.store8 (i32.const 200)
      (call $call (i32.const 0) (i32.const 100) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const 300) (i64.const 0)))
    (call $result_read (i32.const 201))
    (call $set_return (i32.const 200) (i32.add (i32.const 1) (call $result_len))))
  (func (export "pong") (call $set_return (i32.const 100) (i32.const 2)))
)"#
        );
        let attacker = format!(
            r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "pong")
  (func (export "bounce")
    (call $caller (i32.const 0))
    (i32.store8 (i32.const 200)
      (call $call (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 300) (i64.const 0)))
    (call $result_read (i32.const 201))
    (call $set_return (i32.const 200) (i32.add (i32.const 1) (call $result_len))))
)"#
        );
        let vm = vm();
        let (v, world) = deploy(&vm, MemoryWorld::new(), &victim, 0);
        let (a, world) = deploy(&vm, world, &attacker, 1);
        let (out, world) = call(&vm, world, v, "ping", &a.0, GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output[0], 0, "the attacker ran");
        assert_eq!(out.output[1], ExecStatus::Failed as u8);
        assert_eq!(&out.output[2..], b"failed: reentrant call blocked");

        let opted_in = victim.replacen(")\n)", ")\n  (@custom \"stele_reentrant\" \"\")\n)", 1);
        let opted_in = if opted_in == victim {
            victim.trim_end().trim_end_matches(')').to_string()
                + "(@custom \"stele_reentrant\" \"\"))"
        } else {
            opted_in
        };
        let (v2, world) = deploy(&vm, world, &opted_in, 2);
        let (out, _) = call(&vm, world, v2, "ping", &a.0, GAS);
        assert_eq!(out.output[..2], [0, 0], "{out:?}");
        // `pong` returns the first two bytes at 100 in the victim: "bo".
        assert_eq!(&out.output[2..], b"bo");
    });
}

#[test]
fn outcomes_and_gas_are_identical_across_fresh_engines() {
    on_exec_stack(|| {
        let a = run_once(&token_wat(), "transfer", &transfer_args(BOB, 5), GAS);
        let b = run_once(&token_wat(), "transfer", &transfer_args(BOB, 5), GAS);
        assert_eq!(a, b);
        assert_eq!(a.status, ExecStatus::Success);
    });
}

#[test]
fn sequential_call_loop_is_capped_per_transaction_without_exhausting_the_node() {
    on_exec_stack(|| {
        // Calls `balance_of` on the contract in its input 100 times; returns
        // the number of successes and the last status.
        let looper = format!(
            r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "balance_of")
  (func (export "run") (local $i i32) (local $ok i32) (local $s i32)
    (call $input_read (i32.const 0))
    (loop $l
      (local.set $s (call $call (i32.const 0) (i32.const 100) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const 300) (i64.const 100000)))
      (if (i32.eqz (local.get $s)) (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    (i32.store (i32.const 400) (local.get $ok))
    (i32.store (i32.const 404) (local.get $s))
    (call $set_return (i32.const 400) (i32.const 8)))
)"#
        );
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let (l, world) = deploy(&vm, world, &looper, 1);
        let (out, _) = call(&vm, world, l, "run", &token.0, 1_000_000_000);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        let ok = u32::from_le_bytes(out.output[0..4].try_into().expect("4 bytes"));
        let last = u32::from_le_bytes(out.output[4..8].try_into().expect("4 bytes"));
        assert_eq!(ok, VmLimits::V1.frames_max - 1);
        assert_eq!(last, ExecStatus::Failed as u32);
    });
}

/// A VM running the limits of protocol version 1, which leave segment
/// bounds to instantiation.
fn vm_v1() -> stele_vm::Vm<MemoryWorld> {
    stele_vm::Vm::new(stele_vm::VmConfig {
        gas: stele_vm::GasSchedule::latest_for(&VmLimits::V1),
        limits: VmLimits::V1,
        ..config()
    })
    .expect("engine config is valid")
}

/// Modules whose active segments do not fit their memory or table: with
/// `init`, and without it (so a V1 deploy stores the code and the failure
/// comes at the first call).
fn segment_bombs() -> Vec<(&'static str, String, TrapKind)> {
    let data = r#"(memory (export "memory") 1) (data (i32.const 65535) "XY")"#;
    let elem = r#"(memory (export "memory") 1) (table 2 funcref)
                  (elem (i32.add (i32.const 1) (i32.const 1)) $f)"#;
    let mut cases = Vec::new();
    for (what, body, kind) in [
        ("data", data, TrapKind::MemoryOutOfBounds),
        ("element", elem, TrapKind::TableOutOfBounds),
    ] {
        cases.push((
            what,
            format!(r#"(module {body} (func $f) (func (export "init")) (func (export "run")))"#),
            kind,
        ));
    }
    cases
}

#[test]
fn segments_past_their_memory_or_table_are_rejected_at_deploy() {
    for (what, wat, _) in segment_bombs() {
        let error = deploy_error(&wasm(&wat));
        assert!(
            matches!(error, ValidationError::SegmentOutOfBounds { what: w, index: 0, .. } if w == what),
            "{what}: {error}"
        );
    }
    // Exactly at the end is fine: 65 534 + 2 = one page.
    let fits = r#"(module (memory (export "memory") 1) (data (i32.const 65534) "XY")
                  (table 2 funcref) (elem (i32.const 1) $f) (func $f) (func (export "run")))"#;
    on_exec_stack(|| {
        let out = run_deterministic(fits, "run", &[], GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
    });
}

#[test]
fn segments_past_their_memory_or_table_trap_under_v1_limits() {
    on_exec_stack(|| {
        for (what, wat, kind) in segment_bombs() {
            let code = wasm(&wat);
            let deploy_v1 = |vm: &stele_vm::Vm<MemoryWorld>| {
                let (out, world) = deploy_code(vm, &code, GAS);
                (
                    out.expect("a contract's failure is never a node error"),
                    world,
                )
            };
            let (out, world) = deploy_v1(&vm_v1());
            assert_eq!(out.failure, Some(Failure::Trapped(kind)), "{what}");
            assert_eq!(deploy_v1(&vm_v1()).0, out, "{what}: fresh engine differs");
            // The deploy's cost plus one instantiation, nothing stored.
            assert!(out.gas_used < GAS, "{what}: {}", out.gas_used);
            let address = stele_types::Address::contract(&ALICE, 0);
            assert_eq!(world.code_hash(&address), Ok(None), "{what}: code stored");

            // Without `init` the V1 deploy stores the code; each call traps.
            let no_init = wat.replace(r#"(func (export "init"))"#, "");
            let vm = vm_v1();
            let (addr, world) = deploy(&vm, MemoryWorld::new(), &no_init, 0);
            let (a, _) = call(&vm, world.clone(), addr, "run", &[], GAS);
            let (b, _) = call(&vm_v1(), world, addr, "run", &[], GAS);
            assert_eq!(a.failure, Some(Failure::Trapped(kind)), "{what}");
            assert_eq!(a, b, "{what}: fresh engine differs");
            // The instantiation's cost: base, one page, the data bytes.
            let data_bytes = if what == "data" { 2 } else { 0 };
            // (one page is within the resident ones, so no memory_page).
            assert_eq!(a.gas_used, 10_000 + 500 + data_bytes, "{what}");
        }
    });
}

#[test]
fn huge_br_table_is_refused_by_a_published_limit_before_compiling() {
    let max = VmLimits::LATEST.br_table_targets_max;
    let table = |targets: u32| {
        let labels = "0 ".repeat(targets as usize);
        wasm(&format!(
            r#"(module (memory (export "memory") 1)
               (func (export "run") (block (br_table {labels} (i32.const 0)))))"#
        ))
    };
    // `table(n)` has n labels, the last of them the default target.
    on_exec_stack(|| {
        let (out, _) = deploy_code(&vm(), &table(max), 100_000_000_000);
        assert_eq!(out.expect("no node error").status, ExecStatus::Success);
    });
    assert_eq!(
        deploy_error(&table(max + 1)),
        ValidationError::TooMany {
            what: "br_table targets",
            count: u64::from(max) + 1,
            max: u64::from(max),
        }
    );
    // What the compiler itself refuses is far above the limit.
    assert!(matches!(
        deploy_error(&table(70_000)),
        ValidationError::TooMany {
            what: "br_table targets",
            ..
        }
    ));
}

/// One function with `locals` i64 locals and `blocks` nested blocks, each
/// left early by a `br_if` (two control flow points per block).
fn guarded_blocks(locals: u32, blocks: u32) -> String {
    let mut body = String::new();
    for i in 0..blocks {
        let (a, b) = (i % locals, (i * 7 + 1) % locals);
        body.push_str(&format!(
            "(block (br_if 0 (i64.eqz (local.get {a}))) (local.set {b} (local.get {a}))"
        ));
    }
    body.push_str(&")".repeat(blocks as usize));
    format!("(func (local {}) {body})", "i64 ".repeat(locals as usize))
}

#[test]
fn compile_bombs_are_refused_by_their_complexity_before_compiling() {
    let limits = VmLimits::LATEST;
    let module = |funcs: &[String]| {
        wasm(&format!(
            r#"(module (memory (export "memory") 1) {} (func (export "run")))"#,
            funcs.concat()
        ))
    };
    // Like the module issue 23 measured at ~90 s and 4.4 GB of Cranelift
    // (as many blocks as fit one function body).
    let bomb = module(&[guarded_blocks(2_000, 17_000)]);
    let error = deploy_error(&bomb);
    assert!(
        matches!(
            error,
            ValidationError::TooMany {
                what: "function compile complexity",
                max,
                ..
            } if max == limits.function_complexity_max
        ),
        "{error}"
    );
    // Live values x control points + 256: (500 locals + 1 stack slot) x
    // (2 x 2 000 + 1) + 256 is just over the limit, 5 blocks fewer under.
    assert!(matches!(
        deploy_error(&module(&[guarded_blocks(500, 2_000)])),
        ValidationError::TooMany {
            what: "function compile complexity",
            count: 2_004_757,
            ..
        }
    ));
    let under = wasm(&format!(
        r#"(module (memory (export "memory") 1) {})"#,
        guarded_blocks(500, 1_995)
    ));
    let info = stele_vm::validate(&under, &limits).expect("under the limit");
    assert_eq!(info.function_complexity, 501 * 3_991 + 256);
    // Functions under the limit each, over it together.
    let near = guarded_blocks(400, 1_900);
    let many: Vec<String> = (0..3).map(|_| near.clone()).collect();
    assert!(matches!(
        deploy_error(&module(&many)),
        ValidationError::TooMany {
            what: "module compile complexity",
            ..
        }
    ));
    // Values live across calls count too, at an eighth of a branch: 2 000
    // locals across 20 000 calls is about 5 M.
    let mut calls = String::new();
    for i in 0..20_000 {
        calls.push_str(&format!(
            "(local.set {} (call $f (local.get {})))",
            i % 2_000,
            i % 2_000
        ));
    }
    let across_calls = wasm(&format!(
        r#"(module (memory (export "memory") 1)
           (func $f (param i64) (result i64) (local.get 0))
           (func (local {}) {calls}))"#,
        "i64 ".repeat(2_000)
    ));
    assert!(matches!(
        deploy_error(&across_calls),
        ValidationError::TooMany {
            what: "function compile complexity",
            ..
        }
    ));
    // Ordinary nesting deploys.
    on_exec_stack(|| {
        let code = module(&[guarded_blocks(50, 200)]);
        let (out, _) = deploy_code(&vm(), &code, 100_000_000_000);
        assert_eq!(out.expect("no node error").status, ExecStatus::Success);
    });
}

#[test]
fn the_frames_of_one_transaction_share_a_memory_cap() {
    on_exec_stack(|| {
        // Each frame holds 256 pages (16 MiB) and calls itself; the output
        // is each level's call status, then the innermost failure.
        let wat = format!(
            r#"(module {IMPORTS}
  (memory (export "memory") 256)
  (data (i32.const 100) "run")
  (func (export "run")
    (call $self_address (i32.const 0))
    (i32.store8 (i32.const 200)
      (call $call (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 300) (i64.const 0)))
    (call $result_read (i32.const 201))
    (call $set_return (i32.const 200) (i32.add (i32.const 1) (call $result_len))))
  (@custom "stele_reentrant" ""))"#
        );
        // V2's frames may hold 16 MiB each; V3's hold at most 1 MiB, so
        // its call depth and frame count bind before this cap.
        let out = run_deterministic_under(VmLimits::V2, &wat, "run", &[], 2_000_000_000);
        assert_eq!(out.status, ExecStatus::Success, "{:?}", out.failure);
        // 2 048 pages hold eight such frames; the ninth is refused.
        let frames = (VmLimits::V2.execution_memory_pages_max / 256) as usize;
        assert_eq!(frames, 8);
        assert!(
            out.output[..frames - 1].iter().all(|s| *s == 0),
            "{:?}",
            out.output
        );
        assert_eq!(out.output[frames - 1], ExecStatus::Failed as u8);
        assert_eq!(
            &out.output[frames..],
            b"failed: memory limit of the transaction reached"
        );
    });
}

#[test]
fn a_deploy_pays_its_compile_complexity_before_it_compiles() {
    on_exec_stack(|| {
        // A function just under the per-function limit (2 001 501 units),
        // ~0.35 s of Cranelift on the reference machine.
        let code = wasm(&format!(
            r#"(module (memory (export "memory") 1) {} (func (export "run")))"#,
            guarded_blocks(500, 1_995)
        ));
        let latest = stele_vm::GasSchedule::LATEST;
        let limits = VmLimits::LATEST;
        let info = stele_vm::validate(&code, &limits).unwrap();
        assert!(info.complexity > 2_000_000, "{}", info.complexity);
        let without = latest.deploy_bytes(code.len()) + latest.deploy_functions(&code);
        let full = latest.deploy(&code, &limits);
        assert_eq!(full - without, 100 * info.complexity);

        // One gas short: out of gas, charged the whole limit.
        let (out, _) = deploy_code(&vm(), &code, full - 1);
        let out = out.unwrap();
        assert_eq!(
            (out.status, out.gas_used),
            (ExecStatus::OutOfGas, full - 1),
            "{out:?}"
        );
        // Exactly enough: deployed, for exactly that (no `init` to run).
        let (out, _) = deploy_code(&vm(), &code, full);
        let out = out.unwrap();
        assert_eq!((out.status, out.gas_used), (ExecStatus::Success, full));
        // Schedules before V5 did not price it.
        let v4 = stele_vm::Vm::<MemoryWorld>::new(stele_vm::VmConfig {
            gas: stele_vm::GasSchedule::V4,
            ..config()
        })
        .unwrap();
        let (out, _) = deploy_code(&v4, &code, full);
        assert_eq!(out.unwrap().gas_used, without);
    });
}
