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

#[test]
fn schedules_are_pinned() {
    on_exec_stack(|| {
        assert_eq!(token_costs(GasSchedule::V1), (153_370, 39_090));
        assert_eq!(token_costs(GasSchedule::V2), (4_141_747, 38_249));
        assert_eq!(token_costs(GasSchedule::V3), (4_141_745, 38_240));
    });
}
