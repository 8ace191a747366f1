//! The fungible token, built from contracts/token and run on the real VM.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshDeserialize;
use serde_json::json;
use stele_testkit::{Address, Contract, TestChain};

fn token() -> Contract {
    Contract::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/token"
    ))
    .unwrap()
}

#[derive(Debug, PartialEq, BorshDeserialize)]
enum TokenError {
    InsufficientBalance { have: u128, need: u128 },
    InsufficientAllowance { have: u128, need: u128 },
    NotOwner,
    SupplyOverflow,
}

fn setup() -> (TestChain, Address, Address, Address, Address) {
    let mut chain = TestChain::new();
    let owner = chain.account();
    let alice = chain.account();
    let bob = chain.account();
    let t = chain
        .deploy(
            &owner,
            &token(),
            ("Gold".to_string(), "GLD".to_string(), 18u8, 0u128),
        )
        .address();
    chain.call(&owner, &t, "mint", (alice, 1_000u128)).success();
    (chain, t, owner, alice, bob)
}

#[test]
fn metadata_mint_and_supply() {
    let (mut chain, t, owner, alice, bob) = setup();
    assert_eq!(chain.view(&t, "name", ()).decode::<String>(), "Gold");
    assert_eq!(chain.view(&t, "symbol", ()).json(), json!("GLD"));
    assert_eq!(chain.view(&t, "decimals", ()).decode::<u8>(), 18);
    assert_eq!(chain.view(&t, "total_supply", ()).decode::<u128>(), 1_000);
    let out = chain.call(&alice, &t, "mint", (alice, 1u128));
    assert_eq!(out.revert_error::<TokenError>(), TokenError::NotOwner);
    chain
        .call(&owner, &t, "mint", (bob, u128::MAX - 1_000))
        .success();
    let out = chain.call(&owner, &t, "mint", (bob, 1u128));
    assert_eq!(out.revert_error::<TokenError>(), TokenError::SupplyOverflow);
    assert_eq!(
        chain.view(&t, "total_supply", ()).decode::<u128>(),
        u128::MAX
    );
}

#[test]
fn the_initial_supply_goes_to_the_deployer() {
    let mut chain = TestChain::new();
    let owner = chain.account();
    let deployed = chain.deploy(
        &owner,
        &token(),
        ("Gold".to_string(), "GLD".to_string(), 18u8, 5_000u128),
    );
    let ev = &deployed.decoded_events()[0];
    assert_eq!(ev.name, "Transfer");
    assert_eq!(ev.fields["amount"], json!("5000"));
    let t = deployed.address();
    assert_eq!(chain.view(&t, "total_supply", ()).decode::<u128>(), 5_000);
    assert_eq!(
        chain.view(&t, "balance_of", (owner,)).decode::<u128>(),
        5_000
    );
}

#[test]
fn transfers_move_balances_and_emit_indexed_events() {
    let (mut chain, t, _, alice, bob) = setup();
    let out = chain.call(&alice, &t, "transfer", (bob, 300u128));
    out.success();
    let ev = &out.decoded_events()[0];
    assert_eq!(ev.name, "Transfer");
    assert_eq!(
        ev.fields["from"],
        json!(stele_types::Address(alice.0).to_checksum())
    );
    assert_eq!(
        ev.fields["to"],
        json!(stele_types::Address(bob.0).to_checksum())
    );
    assert_eq!(ev.fields["amount"], json!("300"));
    // Topic 2 is the recipient, padded: filterable by address.
    assert_eq!(&out.events[0].topics[2].0[..20], &bob.0);

    assert_eq!(chain.view(&t, "balance_of", (alice,)).decode::<u128>(), 700);
    assert_eq!(
        chain.storage_map::<Address, u128>(&t, "balances", &bob),
        Some(300)
    );
    let out = chain.call(&bob, &t, "transfer", (alice, 301u128));
    assert_eq!(
        out.revert_error::<TokenError>(),
        TokenError::InsufficientBalance {
            have: 300,
            need: 301
        }
    );
    assert_eq!(chain.view(&t, "balance_of", (bob,)).decode::<u128>(), 300);
}

#[test]
fn allowances_limit_transfer_from() {
    let (mut chain, t, _, alice, bob) = setup();
    let carol = chain.account();
    let out = chain.call(&bob, &t, "transfer_from", (alice, carol, 1u128));
    assert_eq!(
        out.revert_error::<TokenError>(),
        TokenError::InsufficientAllowance { have: 0, need: 1 }
    );
    let out = chain.call(&alice, &t, "approve", (bob, 250u128));
    assert_eq!(out.decoded_events()[0].name, "Approval");
    chain
        .call(&bob, &t, "transfer_from", (alice, carol, 200u128))
        .success();
    assert_eq!(
        chain.view(&t, "allowance", (alice, bob)).decode::<u128>(),
        50
    );
    assert_eq!(chain.view(&t, "balance_of", (carol,)).decode::<u128>(), 200);
    let out = chain.call(&bob, &t, "transfer_from", (alice, carol, 51u128));
    assert_eq!(
        out.revert_error::<TokenError>(),
        TokenError::InsufficientAllowance { have: 50, need: 51 }
    );
    // A failed transfer_from leaves the allowance untouched.
    assert_eq!(
        chain.view(&t, "allowance", (alice, bob)).decode::<u128>(),
        50
    );
}

#[test]
fn wasm_fits_the_size_budget() {
    let size = token().wasm.len();
    assert!(
        size <= 50 * 1024,
        "token is {size} bytes, over the 50 KB budget"
    );
}
