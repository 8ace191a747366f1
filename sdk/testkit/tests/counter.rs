//! The tutorial counter, built from contracts/counter and run on the real VM.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshDeserialize;
use serde_json::json;
use stele_testkit::{Address, Contract, ExecStatus, Revert, TestChain};

fn counter() -> Contract {
    Contract::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/counter"
    ))
    .unwrap()
}

#[derive(Debug, PartialEq, BorshDeserialize)]
enum CounterError {
    AtMax { max: u64 },
    NotOwner,
}

#[test]
fn increments_emits_and_caps_with_a_typed_error() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let bob = chain.account();
    let c = chain.deploy(&alice, &counter(), (5u64, 10u64)).address();
    assert_eq!(chain.view(&c, "get", ()).decode::<u64>(), 5);
    assert_eq!(
        chain.view(&c, "owner", ()).decode::<Option<Address>>(),
        Some(alice)
    );

    let out = chain.call(&bob, &c, "increment", (3u64,));
    assert_eq!(out.decode::<u64>(), 8);
    assert!(out.gas_used > 21_000);
    let events = out.decoded_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "Changed");
    assert_eq!(events[0].fields["count"], json!("8"));

    let out = chain.call(&bob, &c, "increment", (3u64,));
    assert_eq!(
        out.revert_error::<CounterError>(),
        CounterError::AtMax { max: 10 }
    );
    assert_eq!(out.revert(), Revert::Error(json!({"AtMax": {"max": "10"}})));
    assert!(out.events.is_empty());
    assert_eq!(chain.view(&c, "get", ()).json(), json!("8"));
    assert_eq!(chain.storage_item::<u64>(&c, "count"), Some(8));
}

#[test]
fn only_the_owner_resets() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let bob = chain.account();
    let c = chain.deploy(&alice, &counter(), (1u64, 10u64)).address();
    assert_eq!(
        chain
            .call(&bob, &c, "reset", ())
            .revert_error::<CounterError>(),
        CounterError::NotOwner
    );
    chain.call(&alice, &c, "reset", ()).success();
    assert_eq!(chain.view(&c, "get", ()).decode::<u64>(), 0);
}

#[test]
fn constructor_checks_and_bad_input_revert_with_messages() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let out = chain.deploy(&alice, &counter(), (11u64, 10u64));
    assert_eq!(out.revert_message(), "start is above max");
    let c = chain
        .deploy_json(&alice, &counter(), json!({"start": "0", "max": "3"}))
        .address();
    // Input that is not the argument tuple.
    assert_eq!(
        chain.call(&alice, &c, "increment", (1u8,)).revert_message(),
        "arguments do not decode"
    );
    assert_eq!(
        chain.call(&alice, &c, "get", (1u64,)).revert_message(),
        "arguments do not decode"
    );
    // Value on a non-payable method; a payable one takes it.
    let out = chain.call_with_value(&alice, &c, "increment", (1u64,), 5);
    assert_eq!(out.revert_message(), "method is not payable");
    let out = chain.call_with_value(&alice, &c, "tip", (), 7);
    assert_eq!(out.decode::<u128>(), 7);
    assert_eq!(chain.balance(&c), 7);
    // The constructor is not callable afterwards; unknown methods fail.
    chain
        .call(&alice, &c, "init", (0u64, 1u64))
        .assert_failure(ExecStatus::Failed, "");
    chain
        .call(&alice, &c, "nope", ())
        .assert_failure(ExecStatus::Failed, "");
    // JSON arguments through the ABI.
    assert_eq!(
        chain
            .call_json(&alice, &c, "increment", json!({"by": "2"}))
            .json(),
        json!("2")
    );
}

#[test]
fn out_of_gas_rolls_back() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let c = chain.deploy(&alice, &counter(), (0u64, 10u64)).address();
    chain.set_gas_limit(21_000 + 16 * 200 + 5_000);
    chain
        .call(&alice, &c, "increment", (1u64,))
        .assert_failure(ExecStatus::OutOfGas, "out of gas");
    chain.set_gas_limit(stele_testkit::DEFAULT_GAS_LIMIT);
    assert_eq!(chain.view(&c, "get", ()).decode::<u64>(), 0);
}

/// `wasm` with a custom section appended: the same behaviour under another
/// code hash, i.e. "the next version" for an upgrade test.
fn next_version(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm.to_vec();
    let name = b"version";
    let payload = b"2";
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

#[test]
fn the_owner_upgrades_the_code_and_the_migration_runs() {
    let mut chain = TestChain::new();
    let alice = chain.account();
    let bob = chain.account();
    let v1 = counter();
    let c = chain.deploy(&alice, &v1, (5u64, 10u64)).address();
    chain.call(&bob, &c, "increment", (3u64,)).success();
    let v2 = next_version(&v1.wasm);

    let out = chain.call(&bob, &c, "upgrade", (v2.clone(), 100u64));
    assert_eq!(out.revert_error::<CounterError>(), CounterError::NotOwner);

    // A migration that fails leaves the old code and reverts the upgrade.
    let out = chain.call(&alice, &c, "upgrade", (v2.clone(), 7u64));
    assert_eq!(out.revert_message(), "the new max is below the count");
    assert_eq!(chain.code_hash(&c), Some(v1.code_hash));
    assert_eq!(chain.view(&c, "max", ()).decode::<u64>(), 10);

    chain
        .call(&alice, &c, "upgrade", (v2.clone(), 100u64))
        .success();
    assert_eq!(chain.code_hash(&c), Some(stele_types::keccak256(&v2)));
    assert_eq!(chain.view(&c, "max", ()).decode::<u64>(), 100);
    // State survived the upgrade; the new cap applies.
    assert_eq!(
        chain.call(&bob, &c, "increment", (50u64,)).decode::<u64>(),
        58
    );
    // `migrate` runs only through an upgrade.
    let out = chain.call(&alice, &c, "migrate", (1_000u64,));
    assert_eq!(out.status, ExecStatus::Failed, "{out:?}");
    assert_eq!(chain.view(&c, "max", ()).decode::<u64>(), 100);
}
