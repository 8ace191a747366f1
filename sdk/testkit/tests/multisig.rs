//! The multisig wallet on the real VM, calling the counter contract.
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
enum MultisigError {
    NotOwner,
    NoSuchProposal,
    AlreadyApproved,
    AlreadyExecuted,
    NotEnoughApprovals { have: u32, need: u32 },
    CallFailed { status: u8, output: Vec<u8> },
}

#[test]
fn two_of_three_execute_a_call_to_another_contract() {
    let mut chain = TestChain::new();
    let [a, b, c, outsider] = [
        chain.account(),
        chain.account(),
        chain.account(),
        chain.account(),
    ];
    let wallet = chain
        .deploy(&a, &build("multisig"), (vec![a, b, c], 2u32))
        .address();
    let counter = chain
        .deploy(&outsider, &build("counter"), (0u64, 5u64))
        .address();

    let args = borsh::to_vec(&(3u64,)).unwrap();
    let id = chain
        .call(
            &a,
            &wallet,
            "propose",
            (counter, "increment".to_string(), args, 0u128),
        )
        .decode::<u32>();
    let early = chain.call(&a, &wallet, "execute", (id,));
    assert_eq!(
        early.revert_error::<MultisigError>(),
        MultisigError::NotEnoughApprovals { have: 1, need: 2 }
    );
    assert_eq!(
        chain
            .call(&a, &wallet, "approve", (id,))
            .revert_error::<MultisigError>(),
        MultisigError::AlreadyApproved
    );
    assert_eq!(
        chain
            .call(&outsider, &wallet, "approve", (id,))
            .revert_error::<MultisigError>(),
        MultisigError::NotOwner
    );
    assert_eq!(chain.call(&b, &wallet, "approve", (id,)).decode::<u32>(), 2);

    let out = chain.call(&c, &wallet, "execute", (id,));
    let ret = out.decode::<Vec<u8>>();
    assert_eq!(u64::try_from_slice(&ret).unwrap(), 3);
    // The counter saw the wallet as its caller.
    let ev = &out.decoded_events()[0];
    assert_eq!(
        ev.fields["by"],
        serde_json::json!(stele_types::Address(wallet.0).to_checksum())
    );
    assert_eq!(chain.view(&counter, "get", ()).decode::<u64>(), 3);
    assert_eq!(
        chain
            .call(&c, &wallet, "execute", (id,))
            .revert_error::<MultisigError>(),
        MultisigError::AlreadyExecuted
    );
}

#[test]
fn a_failing_call_reverts_the_execution() {
    let mut chain = TestChain::new();
    let [a, b] = [chain.account(), chain.account()];
    let wallet = chain
        .deploy(&a, &build("multisig"), (vec![a, b], 1u32))
        .address();
    let counter = chain.deploy(&a, &build("counter"), (0u64, 1u64)).address();
    let args = borsh::to_vec(&(2u64,)).unwrap();
    let id = chain
        .call(
            &a,
            &wallet,
            "propose",
            (counter, "increment".to_string(), args, 0u128),
        )
        .decode::<u32>();
    let out = chain.call(&b, &wallet, "execute", (id,));
    match out.revert_error::<MultisigError>() {
        // Status 1 (reverted) with the counter's typed error (tag 1, AtMax { max: 1 }).
        MultisigError::CallFailed { status, output } => {
            assert_eq!(status, 1);
            assert_eq!(output, [&[1u8, 0][..], &1u64.to_le_bytes()].concat());
        }
        other => panic!("unexpected {other:?}"),
    }
    // The revert undid `executed`, so the proposal can run once fixed.
    assert!(
        !chain.view(&wallet, "proposal", (id,)).json()["executed"]
            .as_bool()
            .unwrap()
    );
    assert_eq!(
        chain
            .deploy(&a, &build("multisig"), (Vec::<Address>::new(), 1u32))
            .revert_message(),
        "1 to 32 owners"
    );

    // A proposal calling the wallet itself re-enters it: the VM blocks that
    // (the wallet has no `stele_reentrant` section).
    let args = borsh::to_vec(&(0u32,)).unwrap();
    let id = chain
        .call(
            &a,
            &wallet,
            "propose",
            (wallet, "approve".to_string(), args, 0u128),
        )
        .decode::<u32>();
    match chain
        .call(&a, &wallet, "execute", (id,))
        .revert_error::<MultisigError>()
    {
        MultisigError::CallFailed { status, output } => {
            assert_eq!(status, 4);
            assert_eq!(
                String::from_utf8_lossy(&output),
                "failed: reentrant call blocked"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}
