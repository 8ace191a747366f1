//! The AMM pool between two token contracts on the real VM: cross-contract
//! calls, revert propagation and the VM's reentrancy rules.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshDeserialize;
use stele_testkit::{Address, Contract, TestChain};

fn build(name: &str) -> Contract {
    Contract::build(format!(
        "{}/../../contracts/{name}",
        env!("CARGO_MANIFEST_DIR")
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

#[derive(Debug, PartialEq, BorshDeserialize)]
enum AmmError {
    UnknownToken,
    Slippage { out: u128, min_out: u128 },
    EmptyPool,
    ZeroAmount,
    TokenFailed(Option<TokenError>),
    Reentrant,
    Overflow,
}

struct Setup {
    chain: TestChain,
    a: Address,
    b: Address,
    pool: Address,
    lp: Address,
    trader: Address,
}

fn setup() -> Setup {
    let token = build("token");
    let mut chain = TestChain::new();
    let owner = chain.account();
    let lp = chain.account();
    let trader = chain.account();
    let a = chain
        .deploy(
            &owner,
            &token,
            ("A".to_string(), "A".to_string(), 0u8, 0u128),
        )
        .address();
    let b = chain
        .deploy(
            &owner,
            &token,
            ("B".to_string(), "B".to_string(), 0u8, 0u128),
        )
        .address();
    for t in [a, b] {
        chain
            .call(&owner, &t, "mint", (lp, 1_000_000u128))
            .success();
        chain
            .call(&owner, &t, "mint", (trader, 10_000u128))
            .success();
    }
    let pool = chain.deploy(&owner, &build("amm"), (a, b)).address();
    for t in [a, b] {
        chain
            .call(&lp, &t, "approve", (pool, 1_000_000u128))
            .success();
    }
    let shares = chain.call(&lp, &pool, "add_liquidity", (100_000u128, 200_000u128));
    assert_eq!(shares.decode::<u128>(), 100_000);
    Setup {
        chain,
        a,
        b,
        pool,
        lp,
        trader,
    }
}

fn balance(chain: &TestChain, token: &Address, who: &Address) -> u128 {
    chain.view(token, "balance_of", (*who,)).decode()
}

#[test]
fn swap_moves_tokens_through_both_contracts() {
    let Setup {
        mut chain,
        a,
        b,
        pool,
        trader,
        ..
    } = setup();
    chain
        .call(&trader, &a, "approve", (pool, 1_000u128))
        .success();
    let out = chain.call(&trader, &pool, "swap", (a, 1_000u128, 1_900u128));
    // 1000 * 0.997 * 200000 / (100000 + 997) = 1974.3...
    assert_eq!(out.decode::<u128>(), 1_974);
    // Token events come from the token contracts, the swap event from the pool.
    let names: Vec<String> = out.decoded_events().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["Transfer", "Transfer", "Swap"]);
    let trace = out.trace.as_ref().unwrap();
    assert_eq!(trace.calls.len(), 2, "two nested token calls");
    assert_eq!(balance(&chain, &a, &trader), 9_000);
    assert_eq!(balance(&chain, &b, &trader), 11_974);
    assert_eq!(
        chain.view(&pool, "reserves", ()).decode::<(u128, u128)>(),
        (101_000, 198_026)
    );
    assert_eq!(balance(&chain, &b, &pool), 198_026);
}

#[test]
fn a_failing_token_call_reverts_the_whole_swap() {
    let Setup {
        mut chain,
        a,
        b,
        pool,
        trader,
        ..
    } = setup();
    // No allowance: the token's typed error comes back through the pool.
    let out = chain.call(&trader, &pool, "swap", (a, 1_000u128, 0u128));
    assert_eq!(
        out.revert_error::<AmmError>(),
        AmmError::TokenFailed(Some(TokenError::InsufficientAllowance {
            have: 0,
            need: 1_000
        }))
    );
    // Slippage: the pull already succeeded inside the frame, and is rolled back.
    chain
        .call(&trader, &a, "approve", (pool, 1_000u128))
        .success();
    let out = chain.call(&trader, &pool, "swap", (a, 1_000u128, 5_000u128));
    assert_eq!(
        out.revert_error::<AmmError>(),
        AmmError::Slippage {
            out: 1_974,
            min_out: 5_000
        }
    );
    assert_eq!(balance(&chain, &a, &trader), 10_000);
    assert_eq!(
        chain.view(&a, "allowance", (trader, pool)).decode::<u128>(),
        1_000
    );
    assert_eq!(
        chain.view(&pool, "reserves", ()).decode::<(u128, u128)>(),
        (100_000, 200_000)
    );
    // A token the pool does not hold.
    let out = chain.call(&trader, &pool, "swap", (Address([7; 20]), 1u128, 0u128));
    assert_eq!(out.revert_error::<AmmError>(), AmmError::UnknownToken);
    let _ = b;
}

#[test]
fn liquidity_shares_are_proportional() {
    let Setup {
        mut chain,
        a,
        b,
        pool,
        lp,
        ..
    } = setup();
    let other = chain.account();
    let owner_calls: [(Address, u128); 2] = [(a, 10_000), (b, 20_000)];
    // `lp` holds plenty; send some to `other` to add liquidity.
    for (t, amount) in owner_calls {
        chain.call(&lp, &t, "transfer", (other, amount)).success();
        chain.call(&other, &t, "approve", (pool, amount)).success();
    }
    let shares = chain.call(&other, &pool, "add_liquidity", (10_000u128, 20_000u128));
    assert_eq!(shares.decode::<u128>(), 10_000);
    assert_eq!(
        chain.view(&pool, "shares_of", (other,)).decode::<u128>(),
        10_000
    );
    let out = chain.call(&other, &pool, "add_liquidity", (0u128, 1u128));
    assert_eq!(out.revert_error::<AmmError>(), AmmError::ZeroAmount);
}

#[test]
fn a_failed_nested_call_rolls_back_the_pool() {
    // Make the pool's "token b" the pool itself: add_liquidity's second
    // pull calls the pool, which has no `transfer_from`; the pool maps the
    // failure to its typed error and every write of the transaction,
    // including the first token's successful pull, is rolled back.
    let mut chain = TestChain::new();
    let owner = chain.account();
    let t = chain
        .deploy(
            &owner,
            &build("token"),
            ("T".to_string(), "T".to_string(), 0u8, 0u128),
        )
        .address();
    let owner_t = stele_types::Address(owner.0);
    let predicted = Address(stele_types::Address::contract(&owner_t, chain.nonce(&owner)).0);
    let pool = chain
        .deploy(&owner, &build("amm"), (t, predicted))
        .address();
    assert_eq!(pool, predicted);
    chain.call(&owner, &t, "mint", (owner, 10u128)).success();
    chain.call(&owner, &t, "approve", (pool, 10u128)).success();
    let out = chain.call(&owner, &pool, "add_liquidity", (1u128, 1u128));
    assert_eq!(out.revert_error::<AmmError>(), AmmError::TokenFailed(None));
    let inner = &out.trace.as_ref().unwrap().calls;
    assert_eq!(inner.len(), 2);
    let msg = String::from_utf8_lossy(&inner[1].output).into_owned();
    assert_eq!(msg, "failed: no such method", "{:?}", inner[1].status);
    // The first pull succeeded in its frame and was rolled back with the pool's.
    assert_eq!(balance(&chain, &t, &owner), 10);
}

#[test]
fn a_token_that_re_enters_the_pool_is_refused_by_the_vm() {
    // The pool trades a hostile token (contracts/reentrant_token) against a
    // real one. Armed, the hostile token's transfer_from calls the pool's
    // swap again while the first swap is running; the VM refuses that
    // nested call (the pool did not opt in to re-entry), so the second swap
    // never runs and the first completes once.
    let token = build("token");
    let hostile = build("reentrant_token");
    let amm = build("amm");
    let mut chain = TestChain::new();
    let owner = chain.account();
    let trader = chain.account();
    let h = chain.deploy(&owner, &hostile, ()).address();
    let b = chain
        .deploy(
            &owner,
            &token,
            ("B".to_string(), "B".to_string(), 0u8, 1_000_000u128),
        )
        .address();
    let pool = chain.deploy(&owner, &amm, (h, b)).address();
    chain
        .call(&owner, &b, "approve", (pool, 1_000_000u128))
        .success();
    chain
        .call(&owner, &pool, "add_liquidity", (100_000u128, 200_000u128))
        .success();
    chain.call(&owner, &h, "arm", ()).success();

    let out = chain.call(&trader, &pool, "swap", (h, 1_000u128, 1u128));
    out.success();
    assert_eq!(
        chain.view(&h, "reentry_status", ()).decode::<Option<u32>>(),
        Some(1),
        "the nested swap was not refused by the VM"
    );
    // The trace shows the refused frame under the token's transfer_from.
    let trace = out.trace.as_ref().unwrap();
    let from = &trace.calls[0];
    assert_eq!(from.method, "transfer_from");
    let nested = &from.calls[0];
    assert_eq!(
        (nested.method.as_str(), nested.contract.0),
        ("swap", pool.0)
    );
    assert!(
        String::from_utf8_lossy(&nested.output).contains("reentrant call blocked"),
        "{nested:?}"
    );
    // One swap happened: the reserves moved once.
    let (ra, rb) = chain.view(&pool, "reserves", ()).decode::<(u128, u128)>();
    assert_eq!(ra, 101_000);
    assert!(rb < 200_000 && rb > 198_000, "{rb}");
}
