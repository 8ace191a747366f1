//! `debug_log` (from `VmLimits::V4`): paid the same traced or not, kept in
//! the trace of the frame that wrote it (in order with its calls, also
//! when the frame reverts), bounded per line and per execution, and
//! refused at deploy by limits that predate it.

mod common;

use common::*;
use stele_types::{Address, ExecStatus};
use stele_vm::{
    DEBUG_LOG_RECORD_BYTES_MAX, ExecContext, FailKind, Failure, MemoryWorld, Outcome, Vm, VmConfig,
    VmLimits,
};

/// `run` (input: callee address, then a revert flag byte) logs "a1",
/// calls the callee's `inner` (which logs "b1"), logs "a2", then reverts
/// if asked. `long` writes one byte over the line limit, `oob` a line
/// past the end of memory, `many` 100 lines of 1 000 bytes.
const LOGGER_WAT: &str = r#"(module
  (import "stele" "debug_log" (func $log (param i32 i32)))
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "a1a2b1inner")
  (func (export "run")
    (call $input_read (i32.const 0))
    (call $log (i32.const 100) (i32.const 2))
    (drop (call $call (i32.const 0) (i32.const 106) (i32.const 5)
      (i32.const 0) (i32.const 0) (i32.const 200) (i64.const 1000000)))
    (call $log (i32.const 102) (i32.const 2))
    (if (i32.load8_u (i32.const 20)) (then (call $revert (i32.const 0) (i32.const 0)))))
  (func (export "inner") (call $log (i32.const 104) (i32.const 2)))
  (func (export "long") (call $log (i32.const 0) (i32.const 4097)))
  (func (export "oob") (call $log (i32.const 65530) (i32.const 100)))
  (func (export "many") (local $i i32)
    (loop $l
      (call $log (i32.const 0) (i32.const 1000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100)))))
)"#;

fn traced() -> ExecContext {
    ExecContext {
        debug: true,
        ..ctx(ALICE)
    }
}

/// Two loggers (A at nonce 0, B at nonce 1) on a VM with `limits`.
fn setup() -> (Vm<MemoryWorld>, MemoryWorld, Address, Address) {
    let vm = vm();
    let (a, world) = deploy(&vm, MemoryWorld::new(), LOGGER_WAT, 0);
    let (b, world) = deploy(&vm, world, LOGGER_WAT, 1);
    (vm, world, a, b)
}

/// `method` with `args` on A, untraced then traced from the same world:
/// both outcomes.
fn both(method: &str, args: &[u8]) -> (Outcome, Outcome) {
    let (vm, world, a, _) = setup();
    let (plain, _) = call(&vm, world.clone(), a, method, args, GAS);
    let (traced, _) = call_ctx(&vm, world, &traced(), a, method, args, GAS);
    assert_eq!(plain.status, traced.status, "{plain:?} {traced:?}");
    assert_eq!(plain.gas_used, traced.gas_used);
    assert_eq!(plain.output, traced.output);
    assert!(plain.trace.is_none());
    (plain, traced)
}

fn run_args(callee: Address, revert: bool) -> Vec<u8> {
    let mut args = callee.0.to_vec();
    args.push(u8::from(revert));
    args
}

#[test]
fn lines_are_kept_in_the_frame_that_wrote_them_in_order_with_its_calls() {
    on_exec_stack(|| {
        for revert in [false, true] {
            let (vm, world, a, b) = setup();
            let args = run_args(b, revert);
            let (plain, _) = call(&vm, world.clone(), a, "run", &args, GAS);
            let (out, _) = call_ctx(&vm, world, &traced(), a, "run", &args, GAS);
            assert_eq!(plain.gas_used, out.gas_used);
            let status = if revert {
                ExecStatus::Reverted
            } else {
                ExecStatus::Success
            };
            assert_eq!(out.status, status);
            let trace = out.trace.expect("a traced run has a trace");
            let mine: Vec<_> = trace
                .logs
                .iter()
                .map(|l| (l.after_calls, l.text.as_str()))
                .collect();
            assert_eq!(mine, [(0, "a1"), (1, "a2")]);
            assert_eq!(trace.calls[0].logs[0].text, "b1");
            let in_order: Vec<_> = trace
                .logs_in_order()
                .into_iter()
                .map(|(frame, text)| (frame.contract, text))
                .collect();
            assert_eq!(in_order, [(a, "a1"), (b, "b1"), (a, "a2")]);
            // Never in what a block keeps.
            assert!(out.events.is_empty());
        }
    });
}

#[test]
fn a_line_is_paid_like_an_event_without_topics() {
    on_exec_stack(|| {
        let (_, with_logs) = both("many", &[]);
        assert_eq!(with_logs.status, ExecStatus::Success);
        let gas = stele_vm::GasSchedule::LATEST;
        let per_line = gas.event_base + gas.event_byte * 1_000 + gas.host(1_000);
        assert!(
            with_logs.gas_used > 100 * per_line,
            "{} gas for 100 lines of {per_line}",
            with_logs.gas_used
        );
    });
}

#[test]
fn a_line_over_the_limit_traps_and_a_bad_pointer_traps_traced_or_not() {
    on_exec_stack(|| {
        let (long, _) = both("long", &[]);
        assert_eq!(long.status, ExecStatus::Trapped);
        assert_eq!(long.output, b"trapped: debug log line too long");
        let (oob, _) = both("oob", &[]);
        assert_eq!(oob.status, ExecStatus::Trapped);
        assert_eq!(
            oob.output,
            b"trapped: host call with an out of bounds pointer"
        );
    });
}

#[test]
fn a_trace_keeps_at_most_64_kib_of_lines_and_says_it_dropped_the_rest() {
    on_exec_stack(|| {
        let (_, out) = both("many", &[]);
        let logs = out.trace.expect("traced").logs;
        let kept = DEBUG_LOG_RECORD_BYTES_MAX / 1_000;
        assert_eq!(logs.len(), kept + 1);
        assert!(logs[..kept].iter().all(|l| l.text.len() == 1_000));
        assert_eq!(logs[kept].text, "(further debug logs dropped: over 64 KiB)");
    });
}

#[test]
fn limits_before_v4_refuse_a_module_that_imports_debug_log() {
    on_exec_stack(|| {
        for limits in [VmLimits::V1, VmLimits::V2, VmLimits::V3] {
            let vm: Vm<MemoryWorld> = Vm::new(VmConfig {
                gas: stele_vm::GasSchedule::latest_for(&limits),
                limits,
                ..config()
            })
            .unwrap();
            let (out, _) = deploy_code(&vm, &wasm(LOGGER_WAT), GAS);
            let out = out.unwrap();
            assert_eq!(out.status, ExecStatus::Failed);
            assert!(
                matches!(
                    &out.failure,
                    Some(Failure::Failed(FailKind::InvalidCode(e)))
                        if e.to_string().contains("debug_log")
                ),
                "{:?}",
                out.failure
            );
        }
        assert_eq!(VmLimits::LATEST.debug_log_bytes_max, 4_096);
    });
}
