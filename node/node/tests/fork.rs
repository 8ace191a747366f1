//! The testkit's fork of a live chain (`stele-testkit`, feature `fork`)
//! against a real node over JSON-RPC: contract code, accounts and storage
//! are read lazily with their proofs, writes stay in the fork, and what a
//! fork cannot do verifiably is refused.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

mod rpc_support;

use rpc_support::*;
use stele_client::Client;
use stele_node::rpc::RpcConfig;
use stele_testkit::{Fork, TestChain};
use stele_types::codec::Encode;
use stele_types::*;

const ITER_WAT: &str = include_str!("fixtures/iterate_over_deletes.wat");

async fn send(node: &TestNode, client: &Client, tx: SignedTransaction) -> Receipt {
    let hash = client.send_transaction(&tx.to_bytes()).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap().receipt;
    assert_eq!(r.status, ExecStatus::Success, "{r:?}");
    r
}

fn deploy_tx(from: u8, nonce: u64, wat: &str) -> SignedTransaction {
    let code = wat::parse_str(wat).unwrap();
    signed(
        from,
        nonce,
        10_000_000,
        TxPayload::Deploy {
            code,
            init_args: vec![],
            value: 0,
        },
    )
}

fn call_tx(
    from: u8,
    nonce: u64,
    contract: Address,
    method: &str,
    args: Vec<u8>,
) -> SignedTransaction {
    signed(
        from,
        nonce,
        10_000_000,
        TxPayload::Call {
            contract,
            method: method.into(),
            args,
            value: 0,
        },
    )
}

fn sdk(a: Address) -> stele_testkit::Address {
    stele_testkit::Address(a.0)
}

fn fork_at(url: &str, height: Option<u64>, genesis: ValidatorSet) -> Result<TestChain, String> {
    TestChain::fork(Fork {
        url: url.to_owned(),
        chain_id: CHAIN,
        genesis,
        height,
    })
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_reads_the_chain_lazily_with_proofs_and_keeps_its_writes() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let counter = send(&node, &client, deploy_tx(1, 0, COUNTER_WAT))
        .await
        .contract_address
        .unwrap();
    let iter = send(&node, &client, deploy_tx(1, 1, ITER_WAT))
        .await
        .contract_address
        .unwrap();
    send(&node, &client, call_tx(2, 0, counter, "increment", vec![])).await;
    let before_second = node.height();
    send(&node, &client, call_tx(2, 1, counter, "increment", vec![])).await;
    send(
        &node,
        &client,
        call_tx(2, 2, iter, "fill", 5u32.to_le_bytes().to_vec()),
    )
    .await;
    let height = node.height();
    let url = node.http();

    tokio::task::spawn_blocking(move || {
        let mut chain = fork_at(&url, None, validators()).unwrap();
        assert_eq!(chain.height(), height + 1);
        // The counter's code and storage come from the node.
        assert_eq!(chain.view(&sdk(counter), "get", ()).decode::<u64>(), 2);
        // Any of the chain's accounts sends, at its nonce on the chain.
        let alice = sdk(key(2).address());
        assert_eq!(chain.nonce(&alice), 3);
        let out = chain.call(&alice, &sdk(counter), "increment", ());
        assert_eq!(out.decode::<u64>(), 3);
        assert_eq!(chain.view(&sdk(counter), "get", ()).decode::<u64>(), 3);
        assert_eq!(chain.nonce(&alice), 4);
        // An account made in the fork lives beside the chain's.
        let bob = chain.account();
        assert_eq!(chain.balance(&bob), stele_testkit::DEFAULT_BALANCE);
        assert!(chain.balance(&alice) > 0);

        // Iterating a forked contract's storage cannot be proven complete:
        // refused, not answered from a partial copy.
        // (Quietly: the only test of this binary expects this panic.)
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let scan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            chain.call(&alice, &sdk(iter), "wipe_and_scan", (0u32, 1u32, 0u32))
        }));
        std::panic::set_hook(hook);
        let message = *scan.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("comes from the forked chain") && message.contains("iterate"),
            "{message}"
        );

        // A fork at an earlier height sees that height.
        let earlier = fork_at(&url, Some(before_second), validators()).unwrap();
        assert_eq!(earlier.view(&sdk(counter), "get", ()).decode::<u64>(), 1);

        // Every read is checked against the genesis set the caller trusts.
        let mut others: Vec<Validator> = (50..54u8)
            .map(|n| {
                let k = key(n);
                Validator {
                    address: k.address(),
                    public_key: k.public_key(),
                    power: 1,
                }
            })
            .collect();
        others.sort_by_key(|v| v.address);
        let strangers = ValidatorSet::new(others).unwrap();
        let refused = fork_at(&url, None, strangers).unwrap_err();
        assert!(refused.starts_with("cannot fork the chain: "), "{refused}");
    })
    .await
    .unwrap();

    // The node's state is untouched by the fork.
    let proof = client.get_storage_proof(counter, b"n", None).await.unwrap();
    assert_eq!(proof.value.unwrap().0, 2u64.to_le_bytes());
}
