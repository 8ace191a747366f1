//! Every gas schedule a chain may run stays exactly as it was: the same
//! deploy and call cost the same gas under each version, pinned here. A
//! change to these numbers is a protocol change (a new schedule version).
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

mod common;

use common::*;
use stele_types::ExecStatus;
use stele_vm::{Action, GasSchedule, MemoryWorld, Vm, VmConfig};

/// Deploys the token fixture and makes one transfer under `gas`; returns
/// (deploy gas, transfer gas).
fn token_costs(gas: GasSchedule) -> (u64, u64) {
    let vm: Vm<MemoryWorld> = Vm::new(VmConfig { gas, ..config() }).unwrap();
    let code = wasm(&token_wat());
    let (deployed, world) = vm.execute(
        &ctx(ALICE),
        Action::Deploy {
            code: &code,
            init_args: &[],
            nonce: 0,
        },
        GAS,
        MemoryWorld::new(),
    );
    let deployed = deployed.unwrap();
    assert_eq!(deployed.status, ExecStatus::Success, "{deployed:?}");
    let token = deployed.contract_address.unwrap();
    let (out, _) = call(&vm, world, token, "transfer", &transfer_args(BOB, 5), GAS);
    assert_eq!(out.status, ExecStatus::Success, "{out:?}");
    (deployed.gas_used, out.gas_used)
}

/// A loop over memory with a conditional exit, a call per iteration and a
/// bulk fill: gas of one run under `gas`.
fn loop_cost(gas: GasSchedule) -> u64 {
    let vm: Vm<MemoryWorld> = Vm::new(VmConfig { gas, ..config() }).unwrap();
    let wat = r#"(module
      (memory (export "memory") 1)
      (func $step (param $i i32) (result i32)
        (i32.add (local.get $i) (i32.const 8)))
      (func (export "run") (local $i i32) (local $acc i64)
        (memory.fill (i32.const 0) (i32.const 1) (i32.const 4096))
        (block $done (loop $l
          (br_if $done (i32.ge_u (local.get $i) (i32.const 4000)))
          (local.set $acc (i64.add (local.get $acc) (i64.load (local.get $i))))
          (local.set $i (call $step (local.get $i)))
          (br $l)))
        (i64.store (i32.const 0) (local.get $acc))))"#;
    let (addr, world) = deploy(&vm, MemoryWorld::new(), wat, 0);
    let (out, _) = call(&vm, world, addr, "run", &[], GAS);
    assert_eq!(out.status, ExecStatus::Success, "{out:?}");
    out.gas_used
}

#[test]
fn schedules_are_pinned() {
    on_exec_stack(|| {
        assert_eq!(token_costs(GasSchedule::V1), (153_370, 39_090));
        assert_eq!(token_costs(GasSchedule::V2), (4_141_747, 38_249));
        assert_eq!(token_costs(GasSchedule::V3), (4_141_729, 38_136));
        assert_eq!(loop_cost(GasSchedule::V1), 30_621);
        assert_eq!(loop_cost(GasSchedule::V2), 18_766);
        assert_eq!(loop_cost(GasSchedule::V3), 13_956);
    });
}
