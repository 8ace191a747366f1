//! Caches, queries and engine-level behaviour.

mod common;

use common::*;
use stele_types::{ExecStatus, keccak256};
use stele_vm::{Action, CompileCounts, FailKind, Failure, MemoryWorld, Vm, VmConfig};

#[test]
fn corrupt_or_foreign_artifacts_are_recompiled_not_trusted() {
    on_exec_stack(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let with_dir = || {
            Vm::<MemoryWorld>::new(VmConfig {
                artifact_dir: Some(dir.path().to_path_buf()),
                ..config()
            })
            .expect("engine")
        };
        let token = token_wat();
        let vm1 = with_dir();
        let (addr, world) = deploy(&vm1, MemoryWorld::new(), &token, 0);
        let args = transfer_args(BOB, 3);
        let (expected, _) = call(&vm1, world.clone(), addr, "transfer", &args, GAS);
        let artifacts: Vec<_> = std::fs::read_dir(dir.path())
            .expect("artifact dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(artifacts.len(), 1, "one artifact written");

        // A fresh VM loads the artifact from disk, then from memory.
        let fresh = with_dir();
        let (out, _) = call(&fresh, world.clone(), addr, "transfer", &args, GAS);
        assert_eq!(out, expected);
        let (out, _) = call(&fresh, world.clone(), addr, "transfer", &args, GAS);
        assert_eq!(out, expected);
        let counts = fresh.compile_counts();
        assert_eq!(
            (counts.blocks, counts.artifacts_loaded, counts.cache_hits),
            (0, 1, 1)
        );

        // Corrupt it: the checksum fails, the code is recompiled, results hold.
        let mut bytes = std::fs::read(&artifacts[0]).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&artifacts[0], &bytes).expect("write");
        let recompiled = with_dir();
        let (out, _) = call(&recompiled, world.clone(), addr, "transfer", &args, GAS);
        assert_eq!(out, expected);
        let counts = recompiled.compile_counts();
        assert_eq!((counts.blocks, counts.artifacts_loaded), (1, 0));

        // Truncated garbage is ignored the same way.
        std::fs::write(&artifacts[0], b"STELEVM1 not an artifact").expect("write");
        let (out, _) = call(&with_dir(), world, addr, "transfer", &args, GAS);
        assert_eq!(out, expected);
        assert_eq!(keccak256(&wasm(&token)), keccak256(&wasm(&token)));
    });
}

/// Warmed pool slots make every reset zero the instance's whole memory
/// (`VmConfig::warm_slots`): nodes leave them cold.
#[test]
fn production_vms_leave_their_pool_slots_cold() {
    assert!(!VmConfig::default().warm_slots);
    assert!(!config().warm_slots);
}

#[test]
fn module_cache_is_bounded() {
    on_exec_stack(|| {
        let vm = Vm::<MemoryWorld>::new(VmConfig {
            module_cache_entries_max: 2,
            ..config()
        })
        .expect("engine");
        for i in 0..4 {
            let wat =
                format!(r#"(module (memory (export "memory") 1) (global i32 (i32.const {i})))"#);
            vm.prepare(&wasm(&wat)).expect("valid");
        }
        assert_eq!(vm.cached_modules(), 2);
    });
}

/// A deploy compiles its code on the block engine (the compile its gas
/// pays for); the query engine gets it from the warmer in the background,
/// so the contract's first query does not compile it again on the RPC path.
#[test]
fn the_first_query_after_a_deploy_does_not_compile() {
    on_exec_stack(|| {
        let vm = Vm::<MemoryWorld>::new(VmConfig {
            epoch_ticker: true,
            ..config()
        })
        .expect("engine");
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        assert_eq!(vm.compile_counts().blocks, 1);
        let args = transfer_args(BOB, 1);
        let (out, _) = vm.query(
            &ctx(ALICE),
            Action::Call {
                contract: token,
                method: "transfer",
                args: &args,
            },
            GAS,
            1_000,
            world,
        );
        assert_eq!(out.expect("no node error").status, ExecStatus::Success);
        assert_eq!(
            vm.compile_counts(),
            CompileCounts {
                blocks: 1,
                queries: 0,
                warmed: 1,
                cache_hits: 0,
                artifacts_loaded: 0,
            }
        );
    });
}

#[test]
fn query_reverts_writes_and_times_out_runaway_code() {
    on_exec_stack(|| {
        let vm = Vm::<MemoryWorld>::new(VmConfig {
            epoch_ticker: true,
            ..config()
        })
        .expect("engine");
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let before = world.storage_of(&token);
        let args = transfer_args(BOB, 1);
        let (out, world) = vm.query(
            &ctx(ALICE),
            Action::Call {
                contract: token,
                method: "transfer",
                args: &args,
            },
            GAS,
            1_000,
            world,
        );
        assert_eq!(out.expect("no node error").status, ExecStatus::Success);
        assert_eq!(world.storage_of(&token), before, "a query never writes");

        let spin =
            r#"(module (memory (export "memory") 1) (func (export "run") (loop $l (br $l))))"#;
        let (spinner, world) = deploy(&vm, world, spin, 1);
        let (out, _) = vm.query(
            &ctx(ALICE),
            Action::Call {
                contract: spinner,
                method: "run",
                args: &[],
            },
            u64::MAX / 4,
            50,
            world,
        );
        assert_eq!(
            out.expect("no node error").failure,
            Some(Failure::Failed(FailKind::Timeout))
        );
    });
}
