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
