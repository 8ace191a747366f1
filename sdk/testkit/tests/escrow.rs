//! The escrow on the real VM: native value at deploy, native transfers,
//! and a deadline by block height.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshDeserialize;
use stele_testkit::{Address, Contract, TestChain};

fn escrow() -> Contract {
    Contract::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/escrow"
    ))
    .unwrap()
}

#[derive(Debug, PartialEq, BorshDeserialize)]
enum State {
    Open,
    Released,
    Refunded,
}

#[derive(Debug, PartialEq, BorshDeserialize)]
enum EscrowError {
    NotAllowed,
    Closed,
    TooEarly { deadline: u64 },
    TransferFailed,
}

fn setup() -> (TestChain, Address, Address, Address, Address) {
    let mut chain = TestChain::new();
    let depositor = chain.account();
    let arbiter = chain.account();
    let beneficiary = Address([0x42; 20]);
    let deadline = chain.height() + 10;
    let e = chain
        .deploy_with_value(
            &depositor,
            &escrow(),
            (beneficiary, arbiter, deadline),
            5_000,
        )
        .address();
    assert_eq!(chain.balance(&e), 5_000);
    (chain, e, depositor, arbiter, beneficiary)
}

#[test]
fn the_arbiter_releases_to_the_beneficiary_once() {
    let (mut chain, e, _, arbiter, beneficiary) = setup();
    let stranger = chain.account();
    assert_eq!(
        chain
            .call(&stranger, &e, "release", ())
            .revert_error::<EscrowError>(),
        EscrowError::NotAllowed
    );
    chain.call(&arbiter, &e, "release", ()).success();
    assert_eq!(chain.balance(&beneficiary), 5_000);
    assert_eq!(chain.balance(&e), 0);
    assert_eq!(
        chain.view(&e, "state", ()).decode::<State>(),
        State::Released
    );
    assert_eq!(
        chain
            .call(&arbiter, &e, "release", ())
            .revert_error::<EscrowError>(),
        EscrowError::Closed
    );
}

#[test]
fn refunds_open_at_the_deadline_height() {
    let (mut chain, e, depositor, _, beneficiary) = setup();
    let deadline = chain.height() + 10 - 1; // setup's deploy block came before
    let out = chain.call(&depositor, &e, "refund", ());
    assert!(matches!(
        out.revert_error::<EscrowError>(),
        EscrowError::TooEarly { .. }
    ));
    chain.advance_blocks(20);
    assert!(chain.height() > deadline);
    let before = chain.balance(&depositor);
    let out = chain.call(&depositor, &e, "refund", ());
    out.success();
    // The refund arrived; the depositor paid only the gas.
    assert_eq!(
        chain.balance(&depositor),
        before + 5_000 - u128::from(out.gas_used)
    );
    assert_eq!(
        chain.view(&e, "state", ()).decode::<State>(),
        State::Refunded
    );
    assert_eq!(chain.balance(&beneficiary), 0);
}

#[test]
fn deploy_requires_value_and_a_future_deadline() {
    let mut chain = TestChain::new();
    let d = chain.account();
    let h = chain.height();
    assert_eq!(
        chain.deploy(&d, &escrow(), (d, d, h + 5)).revert_message(),
        "deposit some value"
    );
    let h = chain.height();
    let out = chain.deploy_with_value(&d, &escrow(), (d, d, h), 1);
    assert_eq!(out.revert_message(), "deadline is in the past");
}
