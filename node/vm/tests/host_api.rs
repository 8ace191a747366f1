//! The host API, cross-contract calls, deploys, gas and checkpoints.

mod common;

use common::*;
use stele_types::{Address, ExecStatus, Hash, SecretKey, keccak256};
use stele_vm::{Action, FailKind, Failure, MemoryWorld, TrapKind, World};

#[test]
fn token_transfer_moves_balance_emits_event_and_reverts_on_insufficient_funds() {
    on_exec_stack(|| {
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        assert_eq!(token, Address::contract(&ALICE, 0));
        let (out, world) = call(&vm, world, token, "transfer", &transfer_args(BOB, 250), GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output, 999_750u64.to_le_bytes());
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].contract, token);
        assert_eq!(out.events[0].data, 250u64.to_le_bytes());
        let (out, world) = call(&vm, world, token, "balance_of", &BOB.0, GAS);
        assert_eq!(out.output, 250u64.to_le_bytes());

        let before = world.storage_of(&token);
        let (out, world) = call(
            &vm,
            world,
            token,
            "transfer",
            &transfer_args(BOB, 5_000_000),
            GAS,
        );
        assert_eq!(out.status, ExecStatus::Reverted);
        assert_eq!(out.output, b"insufficient");
        assert!(out.events.is_empty());
        assert!(out.gas_used > 0 && out.gas_used < GAS);
        assert_eq!(
            world.storage_of(&token),
            before,
            "a revert leaves storage unchanged"
        );
    });
}

#[test]
fn out_of_gas_reverts_writes_and_uses_the_whole_limit() {
    on_exec_stack(|| {
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let before = world.storage_of(&token);
        let (ok, _) = call(
            &vm,
            world.clone(),
            token,
            "transfer",
            &transfer_args(BOB, 1),
            GAS,
        );
        // Every limit below what the call needs runs out at the same point.
        for gas in [ok.gas_used - 1, ok.gas_used / 2, 15_000, 1] {
            let (out, w) = call(
                &vm,
                world.clone(),
                token,
                "transfer",
                &transfer_args(BOB, 1),
                gas,
            );
            assert_eq!(out.status, ExecStatus::OutOfGas, "gas {gas}");
            assert_eq!(out.gas_used, gas);
            assert_eq!(w.storage_of(&token), before);
        }
        let (out, _) = call(
            &vm,
            world,
            token,
            "transfer",
            &transfer_args(BOB, 1),
            ok.gas_used,
        );
        assert_eq!(out.status, ExecStatus::Success);
        assert_eq!(out.gas_used, ok.gas_used);
    });
}

#[test]
fn calls_to_missing_contracts_methods_and_init_fail_cleanly() {
    on_exec_stack(|| {
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let (out, world) = call(&vm, world, BOB, "transfer", &[], GAS);
        assert_eq!(out.failure, Some(Failure::Failed(FailKind::NoSuchContract)));
        let (out, world) = call(&vm, world, token, "nope", &[], GAS);
        assert_eq!(out.failure, Some(Failure::Failed(FailKind::NoSuchMethod)));
        let (out, world) = call(&vm, world, token, "init", &[], GAS);
        assert_eq!(out.failure, Some(Failure::Failed(FailKind::NoSuchMethod)));
        let (out, _) = call(&vm, world, token, "bad-name", &[], GAS);
        assert_eq!(
            out.failure,
            Some(Failure::Failed(FailKind::InvalidMethodName))
        );
        assert_eq!(out.status, ExecStatus::Failed);
        assert_eq!(out.output, b"failed: invalid method name");
    });
}

const CONTEXT_WAT: &str = r#"(module
  (import "stele" "caller" (func $caller (param i32)))
  (import "stele" "origin" (func $origin (param i32)))
  (import "stele" "self_address" (func $self (param i32)))
  (import "stele" "value" (func $value (param i32)))
  (import "stele" "tx_hash" (func $tx_hash (param i32)))
  (import "stele" "block_height" (func $height (result i64)))
  (import "stele" "block_timestamp" (func $ts (result i64)))
  (import "stele" "chain_id" (func $chain (result i64)))
  (import "stele" "balance" (func $balance (param i32 i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "ctx")
    (call $caller (i32.const 0))
    (call $origin (i32.const 20))
    (call $self (i32.const 40))
    (call $value (i32.const 60))
    (call $tx_hash (i32.const 76))
    (i64.store (i32.const 108) (call $height))
    (i64.store (i32.const 116) (call $ts))
    (i64.store (i32.const 124) (call $chain))
    (call $balance (i32.const 40) (i32.const 132))
    (call $set_return (i32.const 0) (i32.const 148)))
)"#;

#[test]
fn context_functions_report_the_call_context() {
    on_exec_stack(|| {
        let vm = vm();
        let mut world = MemoryWorld::new();
        world.set_balance(ALICE, 1_000);
        let (c, world) = deploy(&vm, world, CONTEXT_WAT, 0);
        let mut cx = ctx(ALICE);
        cx.value = 300;
        let (out, world) = call_ctx(&vm, world, &cx, c, "ctx", &[], GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        let o = &out.output;
        assert_eq!(&o[0..20], &ALICE.0);
        assert_eq!(&o[20..40], &ALICE.0);
        assert_eq!(&o[40..60], &c.0);
        assert_eq!(&o[60..76], &300u128.to_le_bytes());
        assert_eq!(&o[76..108], &[0x77; 32]);
        assert_eq!(&o[108..116], &7u64.to_le_bytes());
        assert_eq!(&o[116..124], &1_700_000_000_000u64.to_le_bytes());
        assert_eq!(&o[124..132], &42u64.to_le_bytes());
        assert_eq!(&o[132..148], &300u128.to_le_bytes());
        assert_eq!(world.balance(&ALICE).unwrap(), 700);

        cx.value = 5_000;
        let (out, world) = call_ctx(&vm, world, &cx, c, "ctx", &[], GAS);
        assert_eq!(
            out.failure,
            Some(Failure::Failed(FailKind::InsufficientBalance))
        );
        assert_eq!(world.balance(&ALICE).unwrap(), 700);
    });
}

const STORAGE_WAT: &str = r#"(module
  (import "stele" "storage_write" (func $write (param i32 i32 i32 i32)))
  (import "stele" "storage_remove" (func $remove (param i32 i32) (result i32)))
  (import "stele" "storage_has" (func $has (param i32 i32) (result i32)))
  (import "stele" "storage_next" (func $next (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "p/b" "p/a" "q/z" "p/c" "p/")
  ;; writes four keys, removes p/b, then walks prefix "p/" writing each
  ;; (key ++ value) at 1000.. and returns them
  (func (export "run") (local $out i32) (local $r i64) (local $clen i32)
    (call $write (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 1))
    (call $write (i32.const 3) (i32.const 3) (i32.const 3) (i32.const 2))
    (call $write (i32.const 6) (i32.const 3) (i32.const 6) (i32.const 3))
    (call $write (i32.const 9) (i32.const 3) (i32.const 9) (i32.const 1))
    (if (i32.ne (call $remove (i32.const 0) (i32.const 3)) (i32.const 1)) (then unreachable))
    (if (i32.ne (call $remove (i32.const 0) (i32.const 3)) (i32.const 0)) (then unreachable))
    (if (i32.ne (call $has (i32.const 3) (i32.const 3)) (i32.const 1)) (then unreachable))
    (local.set $out (i32.const 1000))
    (local.set $clen (i32.const 0))
    (block $done
      (loop $l
        ;; cursor lives at 500
        (local.set $r (call $next (i32.const 12) (i32.const 2) (i32.const 500) (local.get $clen)
                                  (local.get $out) (i32.const 16) (i32.add (local.get $out) (i32.const 3)) (i32.const 16)))
        (br_if $done (i64.eq (local.get $r) (i64.const -1)))
        (local.set $clen (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))
        (memory.copy (i32.const 500) (local.get $out) (local.get $clen))
        (local.set $out (i32.add (local.get $out)
          (i32.add (local.get $clen) (i32.wrap_i64 (i64.and (local.get $r) (i64.const 0xffffffff))))))
        (br $l)))
    (call $set_return (i32.const 1000) (i32.sub (local.get $out) (i32.const 1000))))
)"#;

#[test]
fn storage_set_remove_has_and_ordered_prefix_iteration() {
    on_exec_stack(|| {
        let out = run_once(STORAGE_WAT, "run", &[], GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        // p/a -> "p/", p/c -> "p", in key order; p/b was removed, q/z is outside.
        assert_eq!(out.output, b"p/ap/p/cp".to_vec());
    });
}

const CRYPTO_WAT: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "keccak256" (func $keccak (param i32 i32 i32)))
  (import "stele" "sha3_256" (func $sha3 (param i32 i32 i32)))
  (import "stele" "secp256k1_recover" (func $recover (param i32 i32 i32) (result i32)))
  (import "stele" "secp256k1_verify" (func $verify (param i32 i32 i32) (result i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  ;; input: digest(32) sig(65) at 0..97; output: keccak(digest) sha3(digest) status pubkey(33) verify
  (func (export "run")
    (call $input_read (i32.const 0))
    (call $keccak (i32.const 0) (i32.const 32) (i32.const 200))
    (call $sha3 (i32.const 0) (i32.const 32) (i32.const 232))
    (i32.store8 (i32.const 264) (call $recover (i32.const 0) (i32.const 32) (i32.const 265)))
    (i32.store8 (i32.const 298) (call $verify (i32.const 0) (i32.const 32) (i32.const 265)))
    (call $set_return (i32.const 200) (i32.const 99)))
)"#;

#[test]
fn crypto_host_functions_match_stele_types() {
    on_exec_stack(|| {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let digest = keccak256(b"message");
        let sig = key.sign_digest(&digest);
        let mut input = digest.0.to_vec();
        input.extend_from_slice(&sig.0);
        let out = run_once(CRYPTO_WAT, "run", &input, GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        let o = &out.output;
        assert_eq!(&o[0..32], &keccak256(&digest.0).0);
        use sha3::Digest;
        let sha: [u8; 32] = sha3::Sha3_256::digest(digest.0).into();
        assert_eq!(&o[32..64], &sha);
        assert_eq!(o[64], 0, "recovery succeeds");
        assert_eq!(&o[65..98], &key.public_key().0);
        assert_eq!(o[98], 1, "signature verifies");

        let mut bad = input.clone();
        bad[40] ^= 1;
        let out = run_once(CRYPTO_WAT, "run", &bad, GAS);
        assert_eq!(out.output[98], 0, "tampered signature does not verify");
    });
}

/// Caller contract: `run(callee[20], method_len u8, method, rest=args)`
/// calls the callee with all its gas and returns status byte ++ result.
fn proxy_wat() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (func (export "run") (local $len i32) (local $status i32)
    (local.set $len (call $input_len))
    (call $input_read (i32.const 100))
    ;; value (16 zero bytes) at 0
    (local.set $status (call $call (i32.const 100) (i32.const 121) (i32.load8_u (i32.const 120))
       (i32.add (i32.const 121) (i32.load8_u (i32.const 120)))
       (i32.sub (local.get $len) (i32.add (i32.const 21) (i32.load8_u (i32.const 120))))
       (i32.const 0) (i64.const 0)))
    ;; remember that we ran, to check rollback of the caller's own writes
    (i32.store8 (i32.const 2000) (local.get $status))
    (call $storage_write (i32.const 2000) (i32.const 1) (i32.const 2000) (i32.const 1))
    (call $result_read (i32.const 2001))
    (call $set_return (i32.const 2000) (i32.add (i32.const 1) (call $result_len))))
)"#
    )
}

fn proxy_args(callee: Address, method: &str, args: &[u8]) -> Vec<u8> {
    let mut a = callee.0.to_vec();
    a.push(method.len() as u8);
    a.extend_from_slice(method.as_bytes());
    a.extend_from_slice(args);
    a
}

#[test]
fn cross_contract_call_returns_data_and_failed_callee_writes_roll_back() {
    on_exec_stack(|| {
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let (proxy, world) = deploy(&vm, world, &proxy_wat(), 1);
        // The proxy holds no tokens, so its transfer reverts inside the callee.
        let before = world.storage_of(&token);
        let args = proxy_args(token, "transfer", &transfer_args(BOB, 10));
        let (out, world) = call(&vm, world, proxy, "run", &args, GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output[0], ExecStatus::Reverted as u8);
        assert_eq!(&out.output[1..], b"insufficient");
        assert_eq!(world.storage_of(&token), before);
        assert_eq!(
            world.storage_of(&proxy).len(),
            1,
            "the caller's own write stays"
        );

        // A successful callee's return data reaches the caller.
        let args = proxy_args(token, "balance_of", &ALICE.0);
        let (out, _) = call(&vm, world, proxy, "run", &args, GAS);
        assert_eq!(out.output[0], 0);
        assert_eq!(&out.output[1..], &1_000_000u64.to_le_bytes());
    });
}

#[test]
fn debug_trace_records_nested_frames_with_gas() {
    on_exec_stack(|| {
        let vm = vm();
        let (token, world) = deploy(&vm, MemoryWorld::new(), &token_wat(), 0);
        let (proxy, world) = deploy(&vm, world, &proxy_wat(), 1);
        let mut cx = ctx(ALICE);
        cx.debug = true;
        let args = proxy_args(token, "balance_of", &ALICE.0);
        let (out, _) = call_ctx(&vm, world, &cx, proxy, "run", &args, GAS);
        let trace = out.trace.expect("debug mode records a trace");
        assert_eq!(trace.contract, proxy);
        assert_eq!(trace.gas_used, out.gas_used);
        assert_eq!(trace.calls.len(), 1);
        let inner = &trace.calls[0];
        assert_eq!(
            (inner.contract, inner.method.as_str()),
            (token, "balance_of")
        );
        assert_eq!(inner.status, ExecStatus::Success);
        assert!(inner.gas_used > 0 && inner.gas_used < trace.gas_used);
    });
}

const FACTORY_WAT_TEMPLATE: &str = r#"(module
  (import "stele" "deploy" (func $deploy (param i32 i32 i32 i32 i32 i64 i32) (result i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "CODE")
  (func (export "make")
    (i32.store8 (i32.const 0)
      (call $deploy (i32.const 1024) (i32.const LEN) (i32.const 0) (i32.const 0) (i32.const 100) (i64.const 0) (i32.const 1)))
    (call $set_return (i32.const 0) (i32.const 21)))
)"#;

#[test]
fn contracts_deploy_contracts_at_nonce_derived_addresses() {
    on_exec_stack(|| {
        let vm = vm();
        let child = wasm(&token_wat());
        let escaped: String = child.iter().map(|b| format!("\\{b:02x}")).collect();
        let factory = FACTORY_WAT_TEMPLATE
            .replace("CODE", &escaped)
            .replace("LEN", &child.len().to_string());
        let (f, world) = deploy(&vm, MemoryWorld::new(), &factory, 0);
        let (out, world) = call(&vm, world, f, "make", &[], GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output[0], 0);
        let first = Address::contract(&f, 0);
        assert_eq!(&out.output[1..21], &first.0);
        assert_eq!(world.code_hash(&first).unwrap(), Some(keccak256(&child)));
        // The child's init ran with the factory as caller.
        assert_eq!(world.storage_of(&first)[0].0, f.0.to_vec());
        let (out, world) = call(&vm, world, f, "make", &[], GAS);
        assert_eq!(&out.output[1..21], &Address::contract(&f, 1).0);
        assert_eq!(world.nonce(&f).unwrap(), 2);
    });
}

#[test]
fn deploy_of_invalid_code_fails_with_a_specific_error() {
    on_exec_stack(|| {
        let vm = vm();
        let (out, world) = vm.execute(
            &ctx(ALICE),
            Action::Deploy {
                code: b"\0asm\x01\0\0\0garbage",
                init_args: &[],
                nonce: 0,
            },
            GAS,
            MemoryWorld::new(),
        );
        let out = out.unwrap();
        assert_eq!(out.status, ExecStatus::Failed);
        assert!(matches!(
            out.failure,
            Some(Failure::Failed(FailKind::InvalidCode(_)))
        ));
        assert_eq!(
            world.code_hash(&Address::contract(&ALICE, 0)).unwrap(),
            None
        );
        let _ = Hash::ZERO;
    });
}

#[test]
fn gas_left_decreases_and_reports_remaining_fuel() {
    on_exec_stack(|| {
        let wat = r#"(module
          (import "stele" "gas_left" (func $gas_left (result i64)))
          (import "stele" "set_return" (func $set_return (param i32 i32)))
          (memory (export "memory") 1)
          (func (export "run")
            (i64.store (i32.const 0) (call $gas_left))
            (i64.store (i32.const 8) (call $gas_left))
            (call $set_return (i32.const 0) (i32.const 16))))"#;
        let out = run_once(wat, "run", &[], 1_000_000);
        let a = u64::from_le_bytes(out.output[0..8].try_into().unwrap());
        let b = u64::from_le_bytes(out.output[8..16].try_into().unwrap());
        assert!(a < 1_000_000 && b < a);
        // In gas, not fuel: only instantiation and two host calls are gone.
        assert!(a > 980_000, "{a}");
        let _ = TrapKind::Other;
    });
}

const UPGRADER_WAT_TEMPLATE: &str = r#"(module
  (import "stele" "upgrade" (func $upgrade (param i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1) "\01")
  (data (i32.const 1024) "CODE")
  (func (export "up")
    (i32.store8 (i32.const 0)
      (call $upgrade (i32.const 1024) (i32.const LEN) (i32.const 0) (i32.const 0) (i64.const 0)))
    (call $set_return (i32.const 0) (i32.const 1)))
  (func (export "which") (call $set_return (i32.const 1) (i32.const 1)))
)"#;

/// The code upgraded to: `which` answers 2; `migrate` runs MIGRATE.
const UPGRADED_WAT_TEMPLATE: &str = r#"(module
  (import "stele" "set_return" (func $set_return (param i32 i32)))
  (import "stele" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\02m1")
  (func (export "which") (call $set_return (i32.const 0) (i32.const 1)))
  (func (export "migrate") MIGRATE)
)"#;

fn upgrader(migrate: &str) -> (String, Vec<u8>) {
    let next = wasm(&UPGRADED_WAT_TEMPLATE.replace("MIGRATE", migrate));
    let escaped: String = next.iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = UPGRADER_WAT_TEMPLATE
        .replace("CODE", &escaped)
        .replace("LEN", &next.len().to_string());
    (wat, next)
}

#[test]
fn a_contract_upgrades_its_code_and_the_new_code_migrates() {
    on_exec_stack(|| {
        let vm = vm();
        let (wat, next) = upgrader(
            "(call $storage_write (i32.const 1) (i32.const 1) (i32.const 2) (i32.const 1))",
        );
        let (c, world) = deploy(&vm, MemoryWorld::new(), &wat, 0);
        let (out, world) = call(&vm, world, c, "which", &[], GAS);
        assert_eq!(out.output, [1]);
        let (out, world) = call(&vm, world, c, "up", &[], GAS);
        assert_eq!(
            (out.status, out.output.clone()),
            (ExecStatus::Success, vec![0]),
            "{out:?}"
        );
        assert_eq!(world.code_hash(&c).unwrap(), Some(keccak256(&next)));
        // The migration ran in the contract's own storage.
        assert_eq!(world.storage_of(&c), vec![(b"m".to_vec(), b"1".to_vec())]);
        let (out, world) = call(&vm, world, c, "which", &[], GAS);
        assert_eq!(out.output, [2]);
        // `migrate` only runs through an upgrade.
        let (out, _) = call(&vm, world, c, "migrate", &[], GAS);
        assert_eq!(out.status, ExecStatus::Failed, "{out:?}");
    });
}

#[test]
fn a_failed_migration_keeps_the_old_code() {
    on_exec_stack(|| {
        let vm = vm();
        let (wat, _) = upgrader("(unreachable)");
        let (c, world) = deploy(&vm, MemoryWorld::new(), &wat, 0);
        let before = world.code_hash(&c).unwrap();
        let (out, world) = call(&vm, world, c, "up", &[], GAS);
        // The call succeeds and reports the migration's status (trapped).
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output, [ExecStatus::Trapped as u8]);
        assert_eq!(world.code_hash(&c).unwrap(), before);
        assert!(world.storage_of(&c).is_empty());
        let (out, _) = call(&vm, world, c, "which", &[], GAS);
        assert_eq!(out.output, [1]);
    });
}

#[test]
fn an_upgrade_to_invalid_code_is_refused_with_the_reason() {
    on_exec_stack(|| {
        let vm = vm();
        let wat = UPGRADER_WAT_TEMPLATE
            .replace("CODE", "\\00asm\\ff")
            .replace("LEN", "5");
        let (c, world) = deploy(&vm, MemoryWorld::new(), &wat, 0);
        let before = world.code_hash(&c).unwrap();
        let (out, world) = call(&vm, world, c, "up", &[], GAS);
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output, [ExecStatus::Failed as u8]);
        assert_eq!(world.code_hash(&c).unwrap(), before);
    });
}
