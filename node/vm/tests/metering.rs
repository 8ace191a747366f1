//! Stele's own gas metering (`Metering::Instrumented`, schedule V3 and
//! later): what is charged, when, and how running out is reported.

mod common;

use common::*;
use stele_types::ExecStatus;
use stele_vm::gas::Metering;
use stele_vm::{Failure, GasSchedule, MemoryWorld, Outcome, TrapKind};

const V3: GasSchedule = GasSchedule::V3;

/// A contract with one method `run` whose body is `body`.
fn method(body: &str) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (func (export "run") (local $i i32) (local $x i64)
    {body}))"#
    )
}

fn run(body: &str, gas: u64) -> Outcome {
    run_once(&method(body), "run", &[], gas)
}

/// Gas of a successful `run` of `body`.
fn gas_of(body: &str) -> u64 {
    let out = run(body, GAS);
    assert_eq!(out.status, ExecStatus::Success, "{out:?}");
    out.gas_used
}

/// A loop of `n` iterations, each costing `body` plus the loop's own
/// operators.
fn counted_loop(n: u32, body: &str) -> String {
    closed_loop(n, body, "(br $l)")
}

/// [`counted_loop`] with `back_edge` as the branch that repeats it.
fn closed_loop(n: u32, body: &str, back_edge: &str) -> String {
    format!(
        r#"(block $done (loop $l
          (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
          {body}
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          {back_edge}))"#
    )
}

#[test]
fn the_latest_schedule_meters_by_instrumentation() {
    assert_eq!(GasSchedule::LATEST, GasSchedule::V5);
    assert_eq!(GasSchedule::LATEST.metering, Metering::Instrumented);
    assert_eq!(V3.metering, Metering::Instrumented);
    assert_eq!(GasSchedule::V1.metering, Metering::WasmtimeFuel);
    assert_eq!(GasSchedule::V2.metering, Metering::WasmtimeFuel);
}

#[test]
fn straight_line_code_pays_for_each_operator() {
    on_exec_stack(|| {
        // `i32.const` costs one unit of fuel, `drop` none; 800 more pairs
        // are 800 units, 100 gas at 8 units to the gas.
        let pairs = |n: usize| "(drop (i32.const 1))".repeat(n);
        let base = gas_of(&pairs(8));
        let more = gas_of(&pairs(808));
        assert_eq!(more - base, 800 / V3.fuel_per_gas);
    });
}

#[test]
fn each_loop_iteration_is_charged() {
    on_exec_stack(|| {
        let work = "(local.set $x (i64.add (local.get $x) (i64.const 3)))";
        let g1 = gas_of(&counted_loop(8_000, work));
        let g2 = gas_of(&counted_loop(16_000, work));
        let g3 = gas_of(&counted_loop(24_000, work));
        // Linear in the iterations, and each one charged in full: the
        // loop's operators (local.get, i32.const, i32.ge_u, br_if, the
        // work's 4, the increment's 4, br) are 13 units.
        assert_eq!(g3 - g2, g2 - g1);
        assert_eq!(g2 - g1, 8_000 * 13 / V3.fuel_per_gas);
    });
}

#[test]
fn out_of_gas_stops_a_loop_and_uses_the_whole_limit() {
    on_exec_stack(|| {
        let out = run("(loop $l (br $l))", 300_000);
        assert_eq!(out.status, ExecStatus::OutOfGas, "{out:?}");
        assert_eq!(out.failure, Some(Failure::OutOfGas));
        assert_eq!(out.gas_used, 300_000);
        // The same limit always stops at the same point.
        assert_eq!(run("(loop $l (br $l))", 300_000), out);
    });
}

#[test]
fn a_contracts_own_unreachable_is_a_trap_not_out_of_gas() {
    on_exec_stack(|| {
        let out = run("(drop (i32.const 1)) unreachable", GAS);
        assert_eq!(out.failure, Some(Failure::Trapped(TrapKind::Unreachable)));
        assert_eq!(out.status, ExecStatus::Trapped);
    });
}

#[test]
fn a_trap_in_wasm_code_uses_the_whole_budget() {
    on_exec_stack(|| {
        // A long loop, then an out-of-bounds load: the counter is stored at
        // calls and exits only, so a trap cannot make the loop cheaper than
        // it was; the frame pays everything it was given.
        let work = "(local.set $x (i64.add (local.get $x) (i64.const 3)))";
        let looped = format!(
            "{} (drop (i64.load (i32.const 70000)))",
            counted_loop(80_000, work)
        );
        let out = run(&looped, GAS);
        assert_eq!(
            out.failure,
            Some(Failure::Trapped(TrapKind::MemoryOutOfBounds))
        );
        assert_eq!(out.gas_used, GAS);
        let out = run("(drop (i32.div_u (i32.const 1) (i32.const 0)))", GAS);
        assert_eq!(
            out.failure,
            Some(Failure::Trapped(TrapKind::DivisionByZero))
        );
        assert_eq!(out.gas_used, GAS);
    });
}

#[test]
fn failures_reported_by_the_host_are_charged_exactly() {
    on_exec_stack(|| {
        // A revert and a bad pointer given to a host function stop the
        // frame after the counter was stored: they pay for what ran.
        let work = "(local.set $x (i64.add (local.get $x) (i64.const 3)))";
        let revert = |n: u32| {
            let out = run(
                &format!(
                    "{} (call $revert (i32.const 0) (i32.const 4))",
                    counted_loop(n, work)
                ),
                GAS,
            );
            assert_eq!(out.status, ExecStatus::Reverted, "{out:?}");
            out.gas_used
        };
        assert_eq!(revert(16_000) - revert(8_000), 8_000 * 13 / V3.fuel_per_gas);
        assert!(revert(8_000) < GAS / 2);
        let out = run("(call $set_return (i32.const 65000) (i32.const 1000))", GAS);
        assert_eq!(
            out.failure,
            Some(Failure::Trapped(TrapKind::HostPointerOutOfBounds))
        );
        assert!(out.gas_used < GAS / 2, "{out:?}");
    });
}

#[test]
fn bulk_memory_is_charged_per_byte_before_it_runs() {
    on_exec_stack(|| {
        let fill =
            |len: u32| format!("(memory.fill (i32.const 0) (i32.const 7) (i32.const {len}))");
        let copy =
            |len: u32| format!("(memory.copy (i32.const 0) (i32.const 100) (i32.const {len}))");
        let per_byte = u64::from(V3.memory_bulk_per_byte);
        assert_eq!(
            gas_of(&fill(16_384)) - gas_of(&fill(8_192)),
            8_192 * per_byte / V3.fuel_per_gas
        );
        assert_eq!(
            gas_of(&copy(16_384)) - gas_of(&copy(8_192)),
            8_192 * per_byte / V3.fuel_per_gas
        );
        // Too little gas for the bytes: out of gas before any is written.
        let out = run(&fill(65_536), 7_000);
        assert_eq!(out.status, ExecStatus::OutOfGas, "{out:?}");
        assert_eq!(out.gas_used, 7_000);
    });
}

#[test]
fn memory_grow_is_charged_per_page_requested() {
    on_exec_stack(|| {
        let grow = |pages: u32| format!("(drop (memory.grow (i32.const {pages})))");
        // The operator's own price per page plus, from V4, the page itself.
        let latest = GasSchedule::LATEST;
        let per_page = u64::from(latest.memory_grow_per_page) + latest.fuel(latest.memory_page);
        assert_eq!(
            gas_of(&grow(9)) - gas_of(&grow(1)),
            8 * per_page / latest.fuel_per_gas
        );
        // A refused request (past the cap) is charged the same way.
        assert_eq!(
            gas_of(&grow(257)) - gas_of(&grow(1)),
            256 * per_page / latest.fuel_per_gas
        );
    });
}

#[test]
fn host_calls_see_and_charge_the_instrumented_counter() {
    on_exec_stack(|| {
        // gas_left read around a loop of n iterations: what it moved by is
        // the loop's cost plus the second call's, so host charges and the
        // instrumented counter are one account.
        let seen = |n: u32| {
            let body = format!(
                r#"(local.set $x (call $gas_left))
                {}
                (i64.store (i32.const 0) (i64.sub (local.get $x) (call $gas_left)))
                (call $set_return (i32.const 0) (i32.const 8))"#,
                counted_loop(n, "")
            );
            let out = run(&body, GAS);
            assert_eq!(out.status, ExecStatus::Success, "{out:?}");
            u64::from_le_bytes(out.output[..8].try_into().expect("8 bytes"))
        };
        let per_iteration = 9;
        assert_eq!(
            seen(16_000) - seen(8_000),
            8_000 * per_iteration / V3.fuel_per_gas
        );
        let floor = 8_000 * per_iteration / V3.fuel_per_gas + V3.host(0);
        let s = seen(8_000);
        assert!((floor..floor + 64).contains(&s), "{s} vs {floor}");
    });
}

#[test]
fn fuel_schedules_and_the_instrumented_one_agree_on_a_token_transfer_within_a_few_percent() {
    on_exec_stack(|| {
        let gas_under = |gas: GasSchedule| {
            let vm: stele_vm::Vm<MemoryWorld> =
                stele_vm::Vm::new(stele_vm::VmConfig { gas, ..config() }).expect("engine");
            let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
            let (out, _) = call(&vm, world, token, "transfer", &transfer_args(BOB, 5), GAS);
            assert_eq!(out.status, ExecStatus::Success, "{out:?}");
            out.gas_used
        };
        let v2 = gas_under(GasSchedule::V2);
        let v3 = gas_under(GasSchedule::V3);
        // Host prices are the same; only where operators are counted moves.
        assert!(v2.abs_diff(v3) * 100 < v2 * 3, "V2 {v2} vs V3 {v3}");
    });
}

#[test]
fn a_limit_beyond_the_counter_is_capped_not_wrapped() {
    on_exec_stack(|| {
        let out = run("(drop (i32.const 1))", u64::MAX);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert!(out.gas_used < 100_000, "{out:?}");
    });
}

#[test]
fn a_taken_br_if_has_paid_for_the_rest_of_its_block() {
    on_exec_stack(|| {
        let body = |cond: u32| {
            format!(
                "(block $b (br_if $b (i32.const {cond})) {})",
                "(drop (i32.const 1))".repeat(800)
            )
        };
        assert_eq!(gas_of(&body(1)), gas_of(&body(0)));
    });
}

#[test]
fn a_loop_pays_the_same_whichever_branch_repeats_it() {
    on_exec_stack(|| {
        // A `br` back edge pays the header's charge before it jumps (and
        // the loop's entry before it enters); `br_if` and `br_table` back
        // edges leave it at the header. Either way each iteration costs
        // its operators: 8 units of loop plus the back edge's own.
        for (back_edge, units) in [
            ("(br $l)", 9),
            ("(br_if $l (i32.const 1))", 10),
            ("(br_table $l $done (i32.const 0))", 10),
        ] {
            let g1 = gas_of(&closed_loop(8_000, "", back_edge));
            let g2 = gas_of(&closed_loop(16_000, "", back_edge));
            assert_eq!(g2 - g1, 8_000 * units / V3.fuel_per_gas, "{back_edge}");
            // The limit it needs exactly is enough and one gas less is not.
            let exact = run(&closed_loop(16_000, "", back_edge), g2);
            assert_eq!(exact.status, ExecStatus::Success, "{back_edge}: {exact:?}");
            let short = run(&closed_loop(16_000, "", back_edge), g2 - 1);
            assert_eq!(short.failure, Some(Failure::OutOfGas), "{back_edge}");
            assert_eq!(short.gas_used, g2 - 1, "{back_edge}");
        }
    });
}

#[test]
fn running_out_at_a_back_edge_is_out_of_gas_not_a_trap() {
    on_exec_stack(|| {
        // Nested loops, the inner one repeated by `br` from inside a block:
        // every limit below what the run needs stops it as out of gas.
        let body = r#"(block $done (loop $outer
              (br_if $done (i32.ge_u (local.get $i) (i32.const 50)))
              (local.set $x (i64.const 0))
              (block $inner_done (loop $inner
                (block $b
                  (br_if $inner_done (i64.ge_u (local.get $x) (i64.const 40)))
                  (local.set $x (i64.add (local.get $x) (i64.const 1))))
                (br $inner)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $outer)))"#;
        let need = gas_of(body);
        for short in [need - 1, need - 7, need / 2, need / 3 + 1] {
            let out = run(body, short);
            assert_eq!(out.failure, Some(Failure::OutOfGas), "{short}: {out:?}");
            assert_eq!(out.gas_used, short);
        }
    });
}

#[test]
fn loops_with_parameters_and_results_keep_their_values() {
    on_exec_stack(|| {
        // A loop carrying (i, sum) as parameters, repeated by `br` from a
        // nested block, inside a block with a result: the back edge's
        // charge must leave the carried values in place.
        let sum_to = |n: u32| {
            let body = format!(
                r#"(i64.store (i32.const 0)
                  (block $out (result i64)
                    (i32.const 0) (i64.const 0)
                    (loop $l (param i32 i64) (result i64)
                      (local.set $x)
                      (local.set $i)
                      (block $next
                        (br_if $next (i32.lt_u (local.get $i) (i32.const {n})))
                        (br $out (local.get $x)))
                      (i32.add (local.get $i) (i32.const 1))
                      (i64.add (local.get $x) (i64.extend_i32_u (local.get $i)))
                      (br $l))))
                (call $set_return (i32.const 0) (i32.const 8))"#
            );
            let out = run(&body, GAS);
            assert_eq!(out.status, ExecStatus::Success, "{out:?}");
            let sum = u64::from_le_bytes(out.output[..8].try_into().expect("8 bytes"));
            (sum, out.gas_used)
        };
        let (s1, g1) = sum_to(1_000);
        let (s2, g2) = sum_to(2_000);
        let (s3, g3) = sum_to(3_000);
        assert_eq!((s1, s2, s3), (499_500, 1_999_000, 4_498_500));
        assert_eq!(g3 - g2, g2 - g1);
        assert!(g2 > g1);
    });
}
