//! The NFT contract on the real VM: mint, transfer, owner_of, and the
//! tokens of an owner by prefix iteration over the real Merkle state.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshDeserialize;
use stele_testkit::{Address, Contract, TestChain};

fn nft() -> Contract {
    Contract::build(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/nft")).unwrap()
}

#[derive(Debug, PartialEq, BorshDeserialize)]
enum NftError {
    NotMinter,
    AlreadyMinted,
    NoSuchToken,
    NotTokenOwner,
}

#[test]
fn mint_transfer_and_list_by_owner() {
    let mut chain = TestChain::new();
    let minter = chain.account();
    let alice = chain.account();
    let bob = chain.account();
    let n = chain.deploy(&minter, &nft(), ()).address();
    for id in [300u64, 2, 256, 7] {
        chain.call(&minter, &n, "mint", (alice, id)).success();
    }
    chain.call(&minter, &n, "mint", (bob, 1u64)).success();
    assert_eq!(
        chain
            .view(&n, "tokens_of", (alice, None::<u64>))
            .decode::<Vec<u64>>(),
        [2, 7, 256, 300]
    );
    assert_eq!(
        chain
            .view(&n, "tokens_of", (alice, Some(7u64)))
            .decode::<Vec<u64>>(),
        [256, 300]
    );

    let out = chain.call(&alice, &n, "transfer", (bob, 256u64));
    let ev = &out.decoded_events()[0];
    assert_eq!(ev.fields["id"], serde_json::json!("256"));
    assert_eq!(
        chain
            .view(&n, "owner_of", (256u64,))
            .decode::<Option<Address>>(),
        Some(bob)
    );
    assert_eq!(
        chain
            .view(&n, "tokens_of", (bob, None::<u64>))
            .decode::<Vec<u64>>(),
        [1, 256]
    );
    assert_eq!(
        chain
            .view(&n, "tokens_of", (alice, None::<u64>))
            .decode::<Vec<u64>>(),
        [2, 7, 300]
    );
    assert_eq!(
        chain
            .view(&n, "owner_of", (9u64,))
            .decode::<Option<Address>>(),
        None
    );
}

#[test]
fn failures_are_typed() {
    let mut chain = TestChain::new();
    let minter = chain.account();
    let alice = chain.account();
    let n = chain.deploy(&minter, &nft(), ()).address();
    assert_eq!(
        chain
            .call(&alice, &n, "mint", (alice, 1u64))
            .revert_error::<NftError>(),
        NftError::NotMinter
    );
    chain.call(&minter, &n, "mint", (alice, 1u64)).success();
    assert_eq!(
        chain
            .call(&minter, &n, "mint", (minter, 1u64))
            .revert_error::<NftError>(),
        NftError::AlreadyMinted
    );
    assert_eq!(
        chain
            .call(&minter, &n, "transfer", (minter, 1u64))
            .revert_error::<NftError>(),
        NftError::NotTokenOwner
    );
    assert_eq!(
        chain
            .call(&alice, &n, "transfer", (minter, 5u64))
            .revert_error::<NftError>(),
        NftError::NoSuchToken
    );
}
