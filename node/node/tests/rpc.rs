//! The JSON-RPC server on loopback against a real chain (RocksDB state,
//! wasmtime executor, mempool, certified blocks), through `stele-client`:
//! every method, the error paths, WebSocket subscriptions, storage proofs,
//! the rate limiter, exact gas estimates on nested calls and answers kept
//! within the response limit.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

mod rpc_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use rpc_support::*;
use stele_client::abi::Decoded;
use stele_client::api::{
    BlockId, EventFilter, ReceiptInfo, SimulateRequest, SimulationResult, TraceFrame, TxState,
    codes,
};
use stele_client::{
    Client, TxBuilder, VerifyError, check_account_answer, verify_account_proof,
    verify_storage_proof,
};
use stele_node::rpc::RpcConfig;
use stele_types::codec::Encode;
use stele_types::*;

fn code(r: Result<impl std::fmt::Debug, stele_client::ClientError>) -> i32 {
    match r {
        Err(e) => e.code().unwrap_or_else(|| panic!("not an RPC error: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Deploys the counter from account 1 (nonce 0) and commits it.
async fn deploy_counter(node: &TestNode, client: &Client) -> Address {
    deploy(node, client, 1, 0, counter_code()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_blocks_and_accounts_through_the_client() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();

    // Genesis only: no block yet.
    assert_eq!(code(client.get_latest_block().await), codes::NOT_FOUND);

    let to = key(9).address();
    let (_, raw, hash) = stele_client::Signer::new(key(2)).sign(
        TxBuilder::new(CHAIN)
            .gas_limit(30_000)
            .gas_price(2)
            .transfer(to, 77),
    );
    assert_eq!(client.send_transaction(&raw).await.unwrap(), hash);

    let info = client.get_transaction(hash).await.unwrap();
    assert_eq!(info.state, TxState::Pending);
    assert_eq!(info.sender, key(2).address());
    assert_eq!(
        client
            .get_account(key(2).address())
            .await
            .unwrap()
            .pending_nonce,
        1
    );
    assert_eq!(code(client.get_receipt(hash).await), codes::TX_PENDING);

    // A waiter started before the commit sees it.
    let waiter = {
        let url = node.http();
        tokio::spawn(async move {
            let c = Client::connect(&url).await.unwrap();
            c.wait_for_receipt(hash, 10_000).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let block = node.commit().await;
    let waited = waiter.await.unwrap().unwrap();
    assert_eq!(waited.block_height, 1);
    assert_eq!(waited.receipt.tx_hash, hash);
    assert_eq!(waited.block_hash, block.block.hash());
    // And one started after it returns at once.
    assert_eq!(client.wait_for_receipt(hash, 10).await.unwrap(), waited);

    let info = client.get_transaction(hash).await.unwrap();
    assert_eq!(info.state, TxState::Committed);
    assert_eq!((info.block_height, info.index), (Some(1), Some(0)));
    assert_eq!(client.get_receipt(hash).await.unwrap(), waited);

    let by_height = client.get_block(BlockId::Height(1)).await.unwrap();
    let by_hash = client
        .get_block(BlockId::Hash(by_height.hash))
        .await
        .unwrap();
    let latest = client.get_latest_block().await.unwrap();
    assert_eq!(by_height, by_hash);
    assert_eq!(by_height, latest);
    assert_eq!(by_height.block, block.block);
    by_height
        .certificate
        .verify_header(&by_height.block.header, &validators())
        .unwrap();

    let account = client.get_account(to).await.unwrap();
    assert_eq!(
        (account.balance, account.nonce, account.code_hash),
        (77, 0, None)
    );
    let sender = client.get_account(key(2).address()).await.unwrap();
    assert_eq!(sender.nonce, 1);
    assert_eq!(sender.pending_nonce, 1);
    assert_eq!(
        sender.balance,
        10u128.pow(24) - 77 - u128::from(waited.receipt.gas_used) * 2
    );

    let status = client.get_status().await.unwrap();
    assert_eq!(
        (status.chain_id, status.height, status.mempool_txs),
        (CHAIN, 1, 0)
    );

    // One epoch, its set the genesis one, no change decided (ADR 0010).
    let set = client.get_validators(None).await.unwrap();
    assert_eq!(
        (set.height, set.epoch, set.epoch_start_height, &set.pending),
        (1, 0, 1, &None)
    );
    assert_eq!(set.validators, validators());
    assert_eq!(set.validators_hash, validators().hash());
    assert_eq!(client.get_validators(Some(0)).await.unwrap().height, 0);

    let metrics = node.server.metrics();
    assert_eq!(metrics.requests_of("send_transaction"), 1);
    assert!(metrics.requests_of("get_receipt") >= 2);
    assert!(metrics.errors.load(Ordering::Relaxed) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_views_simulations_and_storage() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;

    let info = client.get_contract(contract).await.unwrap();
    assert_eq!(info.abi.as_ref().unwrap()["name"], "counter");
    // The ABI decodes views through the client.
    let abi = client.get_abi(contract).await.unwrap();
    let got = client
        .call_view_json(&abi, contract, "get", &serde_json::json!([]), None)
        .await
        .unwrap();
    assert!(
        matches!(&got, Decoded::Returned(v) if *v == serde_json::json!(0) || *v == serde_json::json!("0")),
        "{got:?}"
    );
    // The deploy compiled the code for blocks and the query engine got it
    // from the warmer: the first view compiled nothing.
    let compiles = node.executor.vm().compile_counts();
    assert_eq!((compiles.blocks, compiles.queries), (1, 0), "{compiles:?}");
    let failed = client
        .call_view_json(&abi, contract, "fail", &serde_json::json!([]), None)
        .await
        .unwrap();
    assert!(matches!(failed, Decoded::Reverted(_)), "{failed:?}");
    assert!(matches!(
        client
            .call_view_json(&abi, contract, "get", &serde_json::json!([1]), None)
            .await,
        Err(stele_client::ClientError::Abi(_))
    ));
    assert_eq!(
        client.get_code(info.code_hash).await.unwrap(),
        counter_code()
    );
    assert_eq!(info.code_bytes, counter_code().len() as u64);

    // Simulate a call as account 2 (unsigned), then estimate and send it
    // with exactly the estimated gas.
    let b = TxBuilder::new(CHAIN).gas_limit(1_000_000).gas_price(3);
    let call = b.call(contract, "increment", vec![], 0);
    let sim = client
        .simulate_transaction(SimulateRequest {
            transaction: Some(call.clone()),
            sender: Some(key(2).address()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sim.status, ExecStatus::Success);
    assert_eq!(sim.output.0, 1u64.to_le_bytes());
    assert_eq!(sim.events.len(), 1);
    let trace = sim.trace.unwrap();
    assert_eq!(
        (trace.contract, trace.method.as_str()),
        (contract, "increment")
    );
    assert!(trace.gas_used > 0 && trace.gas_used < sim.gas_used);
    // Nothing persisted.
    assert_eq!(
        client
            .call_view(contract, "get", &[], None)
            .await
            .unwrap()
            .output
            .0,
        0u64.to_le_bytes()
    );

    let est = client
        .estimate_gas(SimulateRequest {
            transaction: Some(call.clone()),
            sender: Some(key(2).address()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((est.gas, est.status), (sim.gas_used, ExecStatus::Success));
    let signer = stele_client::Signer::new(key(2));
    let (_, raw, hash) = signer.sign(b.clone().gas_limit(est.gas).call(
        contract,
        "increment",
        vec![],
        0,
    ));
    // The signed form simulates the same.
    let signed_sim = client
        .simulate_transaction(SimulateRequest {
            raw: Some(raw.clone().into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (signed_sim.sender, signed_sim.gas_used),
        (key(2).address(), est.gas)
    );
    client.send_transaction(&raw).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap();
    assert_eq!(
        (r.receipt.status, r.receipt.gas_used),
        (ExecStatus::Success, est.gas)
    );

    // Views at the latest and an earlier height.
    let now = client.call_view(contract, "get", &[], None).await.unwrap();
    assert_eq!(
        (now.height, now.output.0.clone()),
        (2, 1u64.to_le_bytes().to_vec())
    );
    let before = client
        .call_view(contract, "get", &[], Some(1))
        .await
        .unwrap();
    assert_eq!(before.output.0, 0u64.to_le_bytes());
    let failed = client.call_view(contract, "fail", &[], None).await.unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (ExecStatus::Reverted, Some("no"))
    );
    // Stopped by the gas cap or the wall-clock backstop, whichever first.
    let spin = client.call_view(contract, "spin", &[], None).await.unwrap();
    assert_ne!(spin.status, ExecStatus::Success);
    let missing = client.call_view(contract, "nope", &[], None).await.unwrap();
    assert_eq!(missing.status, ExecStatus::Failed);

    // A reverting simulation reports the decoded revert.
    let sim = client
        .simulate_transaction(SimulateRequest {
            transaction: Some(b.clone().nonce(1).call(contract, "fail", vec![], 0)),
            sender: Some(key(2).address()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (sim.status, sim.error.as_deref()),
        (ExecStatus::Reverted, Some("no"))
    );

    let page = client.list_storage(contract, b"", None, 10).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].key.0, b"n");
    assert_eq!(page.entries[0].value.0, 1u64.to_le_bytes());
    assert_eq!(page.next_cursor, None);
    let empty = client.list_storage(contract, b"x", None, 10).await.unwrap();
    assert!(empty.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_transaction_names_every_rejection() {
    let node = TestNode::start(RpcConfig {
        body_bytes_max: 4 << 20,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let transfer = |from: u8, nonce: u64, gas: u64, amount: Amount| {
        signed(
            from,
            nonce,
            gas,
            TxPayload::Transfer {
                to: key(9).address(),
                amount,
            },
        )
    };
    let send = |tx: SignedTransaction| {
        let client = &client;
        async move { client.send_transaction(&tx.to_bytes()).await }
    };

    assert_eq!(
        code(client.send_transaction(&[1, 2, 3]).await),
        codes::TX_MALFORMED
    );
    assert_eq!(
        code(client.send_transaction(&vec![0; 1100 << 10]).await),
        codes::TX_TOO_LARGE
    );
    let mut wrong_chain = transfer(1, 0, 30_000, 1);
    wrong_chain.tx.chain_id = 1;
    let wrong_chain = wrong_chain.tx.sign(&key(1));
    assert_eq!(code(send(wrong_chain).await), codes::TX_WRONG_CHAIN);
    let mut bad_sig = transfer(1, 0, 30_000, 1);
    bad_sig.signature.0[64] = 7;
    assert_eq!(code(send(bad_sig.clone()).await), codes::TX_BAD_SIGNATURE);
    assert_eq!(
        code(
            client
                .send_transaction_from(&bad_sig.to_bytes(), key(1).address())
                .await
        ),
        codes::TX_BAD_SIGNATURE
    );
    // Named as signed by another account: refused, whether or not that
    // account's key is known to the node yet.
    for nonce in 0..4 {
        let raw = transfer(2, nonce, 30_000, 1).to_bytes();
        assert_eq!(
            code(client.send_transaction_from(&raw, key(3).address()).await),
            codes::TX_NOT_SIGNED_BY
        );
    }
    assert_eq!(
        code(send(transfer(7, 0, 30_000, 1)).await),
        codes::TX_INSUFFICIENT_FUNDS
    );
    assert_eq!(
        code(send(transfer(1, 0, 60_000_000, 1)).await),
        codes::TX_GAS_LIMIT_OVER_BLOCK
    );
    assert_eq!(
        code(send(transfer(1, 0, 21_000, 1)).await),
        codes::TX_GAS_BELOW_INTRINSIC
    );
    let mut cheap = transfer(1, 0, 30_000, 1);
    cheap.tx.gas_price = 0;
    assert_eq!(
        code(send(cheap.tx.sign(&key(1))).await),
        codes::TX_GAS_PRICE_TOO_LOW
    );
    assert_eq!(
        code(send(transfer(1, 500, 30_000, 1)).await),
        codes::TX_NONCE_TOO_HIGH
    );
    // Behind a nonce gap a sender may park 2 MiB (two ~1 MB deploys), no
    // more.
    let parked = |nonce: u64| {
        let code = vec![0; 1000 << 10];
        signed(
            3,
            nonce,
            17_000_000,
            TxPayload::Deploy {
                code,
                init_args: Vec::new(),
                value: 0,
            },
        )
    };
    send(parked(40)).await.unwrap();
    send(parked(41)).await.unwrap();
    assert_eq!(code(send(parked(42)).await), codes::TX_GAPPED_BYTES_OVER);

    send(transfer(1, 0, 30_000, 1)).await.unwrap();
    assert_eq!(
        code(send(transfer(1, 0, 30_000, 1)).await),
        codes::TX_ALREADY_KNOWN
    );
    // Naming the right sender: admitted, by recovery for the first few and
    // from the sender's prepared key after; a wrong one is still refused
    // once the node holds the named sender's key.
    for nonce in 0..6 {
        let raw = transfer(2, nonce, 30_000, 1).to_bytes();
        client
            .send_transaction_from(&raw, key(2).address())
            .await
            .unwrap();
        let other = transfer(3, nonce, 30_000, 1).to_bytes();
        assert_eq!(
            code(client.send_transaction_from(&other, key(2).address()).await),
            codes::TX_NOT_SIGNED_BY
        );
    }
    assert_eq!(
        code(send(transfer(1, 0, 30_000, 2)).await),
        codes::TX_REPLACEMENT_UNDERPRICED
    );
    node.commit().await;
    assert_eq!(
        code(send(transfer(1, 0, 30_000, 3)).await),
        codes::TX_NONCE_TOO_LOW
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_errors_are_specific() {
    let node = TestNode::start(RpcConfig {
        wait_for_receipt_timeout_ms_max: 200,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let nothing = Hash([7; 32]);
    let contract = deploy_counter(&node, &client).await;

    assert_eq!(
        code(client.get_transaction(nothing).await),
        codes::NOT_FOUND
    );
    assert_eq!(code(client.get_receipt(nothing).await), codes::NOT_FOUND);
    assert_eq!(
        code(client.get_block(BlockId::Height(9)).await),
        codes::NOT_FOUND
    );
    assert_eq!(
        code(client.get_block(BlockId::Height(0)).await),
        codes::NOT_FOUND
    );
    assert_eq!(
        code(client.get_block(BlockId::Hash(nothing)).await),
        codes::NOT_FOUND
    );
    assert_eq!(code(client.get_code(nothing).await), codes::NOT_FOUND);
    assert_eq!(
        code(client.get_contract(key(9).address()).await),
        codes::NOT_FOUND
    );
    // The timeout is capped by the node (200 ms here, asked 60 s).
    let started = std::time::Instant::now();
    assert_eq!(
        code(client.wait_for_receipt(nothing, 60_000).await),
        codes::TIMEOUT
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    assert_eq!(
        code(client.call_view(contract, "get", &[], Some(5)).await),
        codes::HEIGHT_UNAVAILABLE
    );
    assert_eq!(
        code(client.get_storage_proof(contract, b"n", Some(0)).await),
        codes::HEIGHT_UNAVAILABLE
    );
    assert_eq!(
        code(client.get_storage_proof(contract, b"", None).await),
        codes::INVALID_ARGUMENT
    );
    assert_eq!(
        code(client.get_storage_proof(contract, &[0; 257], None).await),
        codes::INVALID_ARGUMENT
    );
    assert_eq!(
        code(client.list_storage(contract, b"", None, 0).await),
        codes::INVALID_ARGUMENT
    );
    assert_eq!(
        code(client.list_storage(contract, b"", None, 100_000).await),
        codes::INVALID_ARGUMENT
    );

    let tx = TxBuilder::new(CHAIN).call(contract, "get", vec![], 0);
    let neither = SimulateRequest::default();
    assert_eq!(
        code(client.simulate_transaction(neither).await),
        codes::INVALID_ARGUMENT
    );
    let both = SimulateRequest {
        raw: Some(vec![1].into()),
        transaction: Some(tx.clone()),
        sender: Some(key(1).address()),
    };
    assert_eq!(
        code(client.estimate_gas(both).await),
        codes::INVALID_ARGUMENT
    );
    let malformed = SimulateRequest {
        raw: Some(vec![1, 2].into()),
        ..Default::default()
    };
    assert_eq!(
        code(client.simulate_transaction(malformed).await),
        codes::TX_MALFORMED
    );
    let stale_nonce = SimulateRequest {
        transaction: Some(tx.clone()),
        sender: Some(key(1).address()),
        ..Default::default()
    };
    assert_eq!(
        code(client.simulate_transaction(stale_nonce).await),
        codes::TX_REJECTED
    );
    let mut other_chain = tx.clone();
    other_chain.chain_id = 1;
    let other_chain = SimulateRequest {
        transaction: Some(other_chain),
        sender: Some(key(2).address()),
        ..Default::default()
    };
    assert_eq!(
        code(client.simulate_transaction(other_chain).await),
        codes::TX_WRONG_CHAIN
    );
    let over_cap = SimulateRequest {
        transaction: Some(TxBuilder::new(CHAIN).gas_limit(u64::MAX).call(
            contract,
            "get",
            vec![],
            0,
        )),
        sender: Some(key(2).address()),
        ..Default::default()
    };
    assert_eq!(
        code(client.simulate_transaction(over_cap).await),
        codes::INVALID_ARGUMENT
    );

    // Malformed parameters are JSON-RPC invalid params.
    let bad = client
        .raw_request("get_block", vec![serde_json::json!("0x1234")])
        .await;
    assert_eq!(code(bad), -32602);
    // An out-of-range height says what a block id is (the client shows the
    // cause the node puts in the error's data).
    for id in [serde_json::json!(u64::MAX), serde_json::json!(-1)] {
        let e = client
            .raw_request("get_block", vec![id.clone()])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(-32602), "{id}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(stele_client::api::BLOCK_ID_EXPECTED) && !text.contains("untagged"),
            "{id}: {text}"
        );
    }
    let bad = client.raw_request("no_such_method", vec![]).await;
    assert_eq!(code(bad), -32601);
    // Subscriptions need a WebSocket.
    assert!(matches!(
        client.subscribe_new_blocks().await,
        Err(stele_client::ClientError::NoWebSocket)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscriptions_see_blocks_events_and_tx_status() {
    let node = TestNode::start(RpcConfig {
        events_blocks_max: 2,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.ws()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;

    let topic = Hash([b'T'; 32]);
    let mut events = client
        .subscribe_events(EventFilter {
            contract: Some(contract),
            topics: vec![Some(topic)],
        })
        .await
        .unwrap();
    let mut other_topic = client
        .subscribe_events(EventFilter {
            contract: Some(contract),
            topics: vec![Some(Hash([1; 32]))],
        })
        .await
        .unwrap();
    let mut blocks = client.subscribe_new_blocks().await.unwrap();
    assert_eq!(
        node.server
            .metrics()
            .active_subscriptions
            .load(Ordering::Relaxed),
        3
    );

    let tx = signed(
        2,
        0,
        1_000_000,
        TxPayload::Call {
            contract,
            method: "increment".into(),
            args: vec![],
            value: 0,
        },
    );
    let hash = client.send_transaction(&tx.to_bytes()).await.unwrap();
    let mut status = client.subscribe_tx_status(hash).await.unwrap();
    let first = status.next().await.unwrap().unwrap();
    assert_eq!(first.state, TxState::Pending);

    let block = node.commit().await;
    let wait = Duration::from_secs(10);
    let log = tokio::time::timeout(wait, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((log.tx_hash, log.block_height, log.tx_index), (hash, 2, 0));
    assert_eq!(log.event.contract, contract);
    assert_eq!(log.event.topics, vec![topic]);
    assert_eq!(log.event.data, 1u64.to_le_bytes());
    let nb = tokio::time::timeout(wait, blocks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (nb.hash, nb.header.height, nb.tx_count),
        (block.block.hash(), 2, 1)
    );
    let done = tokio::time::timeout(wait, status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.state, TxState::Committed);
    assert_eq!(done.receipt.unwrap().receipt.tx_hash, hash);

    // An empty block: the event filter with another topic saw nothing.
    node.commit().await;
    let nb = tokio::time::timeout(wait, blocks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(nb.header.height, 3);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other_topic.next())
            .await
            .is_err()
    );

    // The same event, asked for afterwards; pages continue where told.
    let filter = EventFilter {
        contract: Some(contract),
        topics: vec![Some(topic)],
    };
    // Two blocks per call here: the page stops at 2 and says to go on.
    let page = client
        .get_events(filter.clone(), 1, None, 10)
        .await
        .unwrap();
    assert_eq!(page.events, vec![log.clone()]);
    assert_eq!((page.to_height, page.next_height), (2, Some(3)));
    let first = client
        .get_events(filter.clone(), 0, Some(2), 1)
        .await
        .unwrap();
    assert_eq!(first.events, vec![log]);
    assert_eq!((first.to_height, first.next_height), (2, None));
    let none = client
        .get_events(filter.clone(), 3, None, 10)
        .await
        .unwrap();
    assert!(none.events.is_empty());
    assert_eq!(
        code(client.get_events(filter.clone(), 1, Some(99), 10).await),
        codes::HEIGHT_UNAVAILABLE
    );
    assert_eq!(
        code(client.get_events(filter.clone(), 1, None, 0).await),
        codes::INVALID_ARGUMENT
    );
    assert_eq!(
        code(client.get_events(filter, 3, Some(2), 10).await),
        codes::INVALID_ARGUMENT
    );
    assert_eq!(node.server.metrics().requests_of("get_events"), 6);

    events.unsubscribe().await.unwrap();
    other_topic.unsubscribe().await.unwrap();
    blocks.unsubscribe().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        node.server
            .metrics()
            .active_subscriptions
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_proofs_verify_and_tampered_ones_do_not() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let sender = key(2).address();
    let tx = signed(
        2,
        0,
        1_000_000,
        TxPayload::Call {
            contract,
            method: "increment".into(),
            args: vec![],
            value: 0,
        },
    );
    client.send_transaction(&tx.to_bytes()).await.unwrap();
    node.commit().await;
    let vs = validators();

    // The latest record, as `get_account` reads it.
    let proof = client.get_account_proof(sender, None).await.unwrap();
    assert_eq!(proof.header.height, 2);
    let account = verify_account_proof(&proof, CHAIN, &vs).unwrap().unwrap();
    let info = client.get_account(sender).await.unwrap();
    assert_eq!((account.nonce, account.balance), (1, info.balance));
    assert_eq!(account.code_hash, None);
    // Before its transaction, through the checked read.
    let (height, before) = client
        .get_account_verified(CHAIN, &vs, sender, Some(1))
        .await
        .unwrap();
    assert_eq!((height, before.unwrap().nonce), (1, 0));
    // A contract's record names its code; a stranger is proven absent.
    let c = client.get_account_proof(contract, None).await.unwrap();
    let code_hash = verify_account_proof(&c, CHAIN, &vs)
        .unwrap()
        .unwrap()
        .code_hash;
    assert_eq!(
        code_hash,
        Some(client.get_contract(contract).await.unwrap().code_hash)
    );
    let stranger = key(77).address();
    let absent = client.get_account_proof(stranger, None).await.unwrap();
    assert_eq!(absent.value, None);
    assert_eq!(verify_account_proof(&absent, CHAIN, &vs), Ok(None));

    // Tampered answers.
    let mut t = proof.clone();
    t.value = Some(
        Account {
            balance: account.balance + 1,
            ..account
        }
        .to_bytes()
        .into(),
    );
    assert!(matches!(
        verify_account_proof(&t, CHAIN, &vs),
        Err(VerifyError::Proof(_))
    ));
    let mut t = proof.clone();
    t.value = None;
    assert!(matches!(
        verify_account_proof(&t, CHAIN, &vs),
        Err(VerifyError::Proof(_))
    ));
    let mut t = proof.clone();
    t.header.state_root = Hash([1; 32]);
    assert!(matches!(
        verify_account_proof(&t, CHAIN, &vs),
        Err(VerifyError::Certificate(_))
    ));
    // The stranger's absence proof offered for the sender holds for the
    // stranger only.
    let mut t = absent.clone();
    t.address = sender;
    assert!(verify_account_proof(&t, CHAIN, &vs).is_err());
    assert_eq!(
        check_account_answer(&absent, &sender, None),
        Err(VerifyError::WrongAnswer { what: "address" })
    );
    assert_eq!(
        check_account_answer(&proof, &sender, Some(1)),
        Err(VerifyError::WrongAnswer { what: "height" })
    );
    assert_eq!(
        code(client.get_account_proof(sender, Some(0)).await),
        codes::HEIGHT_UNAVAILABLE
    );
    assert_eq!(
        code(client.get_account_proof(sender, Some(99)).await),
        codes::HEIGHT_UNAVAILABLE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_proofs_verify_and_tampered_ones_do_not() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let tx = signed(
        2,
        0,
        1_000_000,
        TxPayload::Call {
            contract,
            method: "increment".into(),
            args: vec![],
            value: 0,
        },
    );
    client.send_transaction(&tx.to_bytes()).await.unwrap();
    node.commit().await;
    let vs = validators();

    let proof = client
        .get_storage_proof(contract, b"n", None)
        .await
        .unwrap();
    assert_eq!(proof.header.height, 2);
    assert_eq!(proof.value.as_ref().unwrap().0, 1u64.to_le_bytes());
    verify_storage_proof(&proof, CHAIN, &vs).unwrap();
    let value = client
        .get_storage_verified(CHAIN, &vs, contract, b"n", Some(1))
        .await
        .unwrap();
    assert_eq!(value, None, "before the increment, the key was absent");
    let absent = client
        .get_storage_proof(contract, b"zz", None)
        .await
        .unwrap();
    assert_eq!(absent.value, None);
    verify_storage_proof(&absent, CHAIN, &vs).unwrap();

    let mut t = proof.clone();
    t.value = Some(vec![9; 8].into());
    assert!(matches!(
        verify_storage_proof(&t, CHAIN, &vs),
        Err(VerifyError::Proof(_))
    ));
    let mut t = proof.clone();
    t.value = None;
    assert!(matches!(
        verify_storage_proof(&t, CHAIN, &vs),
        Err(VerifyError::Proof(_))
    ));
    let mut t = absent.clone();
    t.value = Some(vec![0].into());
    assert!(verify_storage_proof(&t, CHAIN, &vs).is_err());
    let mut t = proof.clone();
    t.header.state_root = Hash([1; 32]);
    assert!(matches!(
        verify_storage_proof(&t, CHAIN, &vs),
        Err(VerifyError::Certificate(_))
    ));
    let mut t = proof.clone();
    t.certificate.signatures.truncate(2);
    assert!(matches!(
        verify_storage_proof(&t, CHAIN, &vs),
        Err(VerifyError::Certificate(CertificateError::NoQuorum { .. }))
    ));
    let mut t = proof.clone();
    t.certificate.signatures[0].signature.0[0] ^= 1;
    assert!(verify_storage_proof(&t, CHAIN, &vs).is_err());
    let stranger = ValidatorSet::new(vec![Validator {
        address: key(50).address(),
        public_key: key(50).public_key(),
        power: 1,
    }])
    .unwrap();
    assert!(verify_storage_proof(&proof, CHAIN, &stranger).is_err());
    assert!(matches!(
        verify_storage_proof(&proof, CHAIN + 1, &vs),
        Err(VerifyError::WrongChain { .. })
    ));
    // A node answering another question with a proof that holds: the
    // absent key's proof for "n", the proof of height 2 for height 1.
    use stele_client::check_storage_answer;
    assert_eq!(
        check_storage_answer(&proof, &contract, b"n", Some(2)),
        Ok(())
    );
    assert_eq!(
        check_storage_answer(&absent, &contract, b"n", None),
        Err(VerifyError::WrongAnswer { what: "key" })
    );
    assert_eq!(
        check_storage_answer(&proof, &contract, b"n", Some(1)),
        Err(VerifyError::WrongAnswer { what: "height" })
    );
    assert_eq!(
        check_storage_answer(&proof, &Address([7; 20]), b"n", None),
        Err(VerifyError::WrongAnswer { what: "contract" })
    );
}

/// A minimal HTTP/1.1 exchange; returns the status line and headers, and
/// the body.
async fn http(addr: std::net::SocketAddr, request: String) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_replayed_with_their_trace_and_writes() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let call = |from, nonce, method: &str| {
        signed(
            from,
            nonce,
            1_000_000,
            TxPayload::Call {
                contract,
                method: method.into(),
                args: vec![],
                value: 0,
            },
        )
    };
    // One block: an increment, a call that reverts, a transfer, and a
    // second increment that sees the first one's write.
    let txs = [
        call(2, 0, "increment"),
        call(3, 0, "fail"),
        signed(
            1,
            1,
            30_000,
            TxPayload::Transfer {
                to: key(9).address(),
                amount: 1,
            },
        ),
        call(2, 1, "increment"),
    ];
    for tx in &txs {
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    let block = node.commit().await;
    assert_eq!(block.receipts.len(), 4);

    let second = client.trace_transaction(txs[3].hash()).await.unwrap();
    assert_eq!((second.block_height, second.index), (2, 3));
    assert_eq!(second.sender, key(2).address());
    assert_eq!(second.receipt, block.receipts[3]);
    assert_eq!(second.receipt.output, 2u64.to_le_bytes());
    let frame = second.trace.unwrap();
    assert_eq!(
        (frame.contract, frame.method.as_str(), frame.status),
        (contract, "increment", ExecStatus::Success)
    );
    assert!(frame.gas_used > 0 && frame.gas_used <= second.receipt.gas_used);
    assert_eq!(second.storage_writes.len(), 1);
    let w = &second.storage_writes[0];
    assert_eq!((w.contract, w.key.0.as_slice()), (contract, &b"n"[..]));
    assert_eq!(
        w.value_hash,
        Some(stele_types::proof::value_hash(&2u64.to_le_bytes()))
    );

    let failed = client.trace_transaction(txs[1].hash()).await.unwrap();
    assert_eq!(failed.receipt, block.receipts[1]);
    let frame = failed.trace.unwrap();
    assert_eq!(
        (frame.status, frame.output.0.as_slice()),
        (ExecStatus::Reverted, &b"no"[..])
    );
    assert!(failed.storage_writes.is_empty());

    let transfer = client.trace_transaction(txs[2].hash()).await.unwrap();
    assert_eq!(transfer.receipt, block.receipts[2]);
    assert_eq!(transfer.trace, None);

    assert_eq!(
        code(client.trace_transaction(Hash([7; 32])).await),
        codes::NOT_FOUND
    );
    assert_eq!(node.server.metrics().requests_of("trace_transaction"), 4);

    // A replay runs a block again: one at a time, the next refused at once.
    let spin = signed(
        3,
        1,
        45_000_000,
        TxPayload::Call {
            contract,
            method: "spin".into(),
            args: vec![],
            value: 0,
        },
    );
    client.send_transaction(&spin.to_bytes()).await.unwrap();
    node.commit().await;
    let c = [
        Client::connect(&node.http()).await.unwrap(),
        Client::connect(&node.http()).await.unwrap(),
        Client::connect(&node.http()).await.unwrap(),
    ];
    let h = spin.hash();
    // Four at once overlap (a replay of 45 M gas takes a while); a slow
    // machine could serialize them, so a few rounds are allowed.
    let mut busy_seen = false;
    for _ in 0..5 {
        let (a, b, d, e) = tokio::join!(
            client.trace_transaction(h),
            c[0].trace_transaction(h),
            c[1].trace_transaction(h),
            c[2].trace_transaction(h)
        );
        let all = [a, b, d, e];
        assert!(all.iter().any(Result::is_ok), "{all:?}");
        for r in &all {
            match r {
                Ok(t) => assert_eq!(t.receipt.status, ExecStatus::OutOfGas),
                Err(e) => assert_eq!(e.code(), Some(codes::BUSY), "{e}"),
            }
        }
        if all.iter().any(Result::is_err) {
            busy_seen = true;
            break;
        }
    }
    assert!(busy_seen, "concurrent replays were never refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_status_subscription_hears_that_its_transaction_was_replaced() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.ws()).await.unwrap();
    let transfer = |gas_price| {
        Transaction {
            chain_id: CHAIN,
            nonce: 0,
            gas_limit: 30_000,
            gas_price,
            payload: TxPayload::Transfer {
                to: key(9).address(),
                amount: 5,
            },
        }
        .sign(&key(3))
    };
    let first = transfer(3);
    let hash = client.send_transaction(&first.to_bytes()).await.unwrap();
    let mut status = client.subscribe_tx_status(hash).await.unwrap();
    let wait = Duration::from_secs(10);
    let now = tokio::time::timeout(wait, status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(now.state, TxState::Pending);
    // The same nonce at a higher price takes its place, and commits.
    let second = transfer(4);
    let replacement = client.send_transaction(&second.to_bytes()).await.unwrap();
    let block = node.commit().await;
    assert_eq!(block.receipts.len(), 1);
    assert_eq!(block.receipts[0].tx_hash, replacement);
    let gone = tokio::time::timeout(wait, status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((gone.state, gone.receipt), (TxState::Unknown, None));
    // Nothing more until something changes: another block is silent.
    node.commit().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), status.next())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_is_served_only_when_turned_on() {
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let node = TestNode::start(RpcConfig {
        explorer: true,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let (head, body) = http(addr, get("/explorer/")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(body.contains("./explorer.js"), "{body}");
    let (head, body) = http(addr, get("/explorer/explorer.js")).await;
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(body.len() > 10_000);
    let (head, _) = http(addr, get("/explorer")).await;
    assert!(head.starts_with("http/1.1 308"), "{head}");
    assert!(head.contains("location: /explorer/"), "{head}");
    let (head, _) = http(addr, get("/explorer/../genesis.json")).await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    // JSON-RPC on the same port is untouched.
    let client = Client::connect(&node.http()).await.unwrap();
    assert_eq!(client.get_status().await.unwrap().height, 0);

    let off = TestNode::start(RpcConfig::default()).await;
    let (head, body) = http(off.server.local_addr(), get("/explorer/")).await;
    assert!(!head.starts_with("http/1.1 200"), "{head}");
    assert!(!body.contains("explorer.js"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_cors() {
    let node = TestNode::start(RpcConfig {
        cors_origins: vec!["https://app.example".into()],
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let (head, body) = http(
        addr,
        "GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "ok");
    let (head, body) = http(
        addr,
        "GET /status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let status: stele_client::api::StatusInfo = serde_json::from_str(&body).unwrap();
    assert_eq!((status.height, status.peers_connected), (0, 3));

    let preflight = "OPTIONS / HTTP/1.1\r\nhost: x\r\norigin: https://app.example\r\naccess-control-request-method: POST\r\nconnection: close\r\n\r\n";
    let (head, _) = http(addr, preflight.into()).await;
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(head.contains("access-control-allow-methods"), "{head}");
    let rpc = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;
    let post = |origin: &str| {
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\norigin: {origin}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{rpc}",
            rpc.len()
        )
    };
    let (head, body) = http(addr, post("https://app.example")).await;
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(body.contains("\"chain_id\":4242"), "{body}");
    let (head, _) = http(addr, post("https://evil.example")).await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_flood_hits_the_rate_limiter_and_the_chain_goes_on() {
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 5,
        rate_burst: 10,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let mut limited = 0;
    for _ in 0..50 {
        if let Err(e) = client.get_status().await {
            // HTTP 429 is a transport error, not a JSON-RPC one.
            assert_eq!(e.code(), None, "{e}");
            limited += 1;
        }
    }
    assert!(limited >= 35, "only {limited} of 50 were limited");
    let metrics = node.server.metrics();
    assert_eq!(metrics.rate_limited.load(Ordering::Relaxed), limited);
    assert!(metrics.requests_of("get_status") <= 15);
    // Blocks keep committing meanwhile, and the address recovers.
    node.commit().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.get_status().await.unwrap().height, 1);

    let addr = node.server.local_addr();
    let server = node.server;
    server.stop();
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_calls_are_rate_limited_per_call() {
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 5,
        rate_burst: 10,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.ws()).await.unwrap();
    let mut limited = 0;
    for _ in 0..40 {
        match client.get_status().await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(codes::RATE_LIMITED), "{e}");
                limited += 1;
            }
        }
    }
    // The upgrade took one token, so at most 9 calls passed.
    assert!(limited >= 30, "only {limited} of 40 were limited");
    assert_eq!(
        node.server.metrics().rate_limited.load(Ordering::Relaxed),
        limited
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_simulation_stops_at_the_wall_clock_backstop() {
    // Gas enough for about a second of spinning; the 200 ms backstop stops
    // it (well after instantiation, even on a loaded machine, so it stops
    // inside Wasm code).
    let node = TestNode::start(RpcConfig {
        exec_timeout_ms: 200,
        view_gas_max: 2_000_000_000,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let b = TxBuilder::new(CHAIN).gas_limit(2_000_000_000).gas_price(1);
    let sim = client
        .simulate_transaction(SimulateRequest {
            transaction: Some(b.nonce(0).call(contract, "spin", vec![], 0)),
            sender: Some(key(2).address()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sim.status, ExecStatus::Failed, "{sim:?}");
    assert_eq!(
        sim.error.as_deref(),
        Some("failed: query timed out"),
        "{sim:?}"
    );
    // Stopped inside Wasm code, the frame is charged its whole budget.
    assert_eq!(sim.gas_used, 2_000_000_000, "{sim:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_execution_pool_is_refused_as_busy() {
    // One execution thread and one queue slot: of eight spinning views sent
    // at once, at most two are taken; the rest are refused at once with
    // BUSY instead of piling up. Once the burst is over, views run again.
    let node = TestNode::start(RpcConfig {
        exec_threads: 1,
        exec_queue_max: 1,
        exec_timeout_ms: 300,
        view_gas_max: 10_000_000_000,
        ..RpcConfig::default()
    })
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let calls = (0..8).map(|_| client.call_view(contract, "spin", &[], None));
    let results = futures_join_all(calls).await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Some(codes::BUSY)))
        .count();
    let ran = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(busy + ran, 8, "{results:?}");
    assert!(busy >= 6, "only {busy} of 8 were refused: {results:?}");
    let get = client.call_view(contract, "get", &[], None).await.unwrap();
    assert_eq!(get.status, ExecStatus::Success);
}

/// Polls every future to completion concurrently (no extra crate needed).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

/// Deploys `code` from account `from` (at `nonce`) and commits it.
async fn deploy(node: &TestNode, client: &Client, from: u8, nonce: u64, code: Vec<u8>) -> Address {
    let tx = signed(
        from,
        nonce,
        10_000_000,
        TxPayload::Deploy {
            code,
            init_args: vec![],
            value: 0,
        },
    );
    let hash = client.send_transaction(&tx.to_bytes()).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap();
    assert_eq!(r.receipt.status, ExecStatus::Success, "{r:?}");
    r.receipt.contract_address.unwrap()
}

/// Calls itself (it opts in to re-entry). `nest` takes n (8 bytes LE),
/// recurses n levels with all the gas allowed, the innermost level burning
/// ~75 000 gas, reverts with "deep call failed" if its nested call failed,
/// and returns n. `deepest` recurses while more than 300 000 gas is left
/// (or until the call depth limit) and returns the depth below it.
const NEST_WAT: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "self_address" (func $self (param i32)))
  (import "stele" "call" (func $call (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "stele" "result_read" (func $result_read (param i32)))
  (import "stele" "set_return" (func $ret (param i32 i32)))
  (import "stele" "revert" (func $revert (param i32 i32)))
  (import "stele" "gas_left" (func $gas_left (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 96) "nest")
  (data (i32.const 112) "deepest")
  (data (i32.const 160) "deep call failed")
  (func $return_depth (param $d i64)
    (i64.store (i32.const 128) (local.get $d))
    (call $ret (i32.const 128) (i32.const 8)))
  (func (export "nest")
    (local $n i64) (local $i i32)
    (call $input_read (i32.const 32))
    (local.set $n (i64.load (i32.const 32)))
    (if (i64.eqz (local.get $n))
      (then
        (local.set $i (i32.const 100000))
        (loop $burn
          (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (br_if $burn (local.get $i)))
        (call $return_depth (i64.const 0))
        (return)))
    (call $self (i32.const 0))
    (i64.store (i32.const 48) (i64.sub (local.get $n) (i64.const 1)))
    (if (call $call (i32.const 0) (i32.const 96) (i32.const 4) (i32.const 48) (i32.const 8)
          (i32.const 64) (i64.const 0))
      (then (call $revert (i32.const 160) (i32.const 16))))
    (call $result_read (i32.const 128))
    (call $return_depth (i64.add (i64.load (i32.const 128)) (i64.const 1))))
  (func (export "deepest")
    (if (i64.lt_u (call $gas_left) (i64.const 300000))
      (then (call $return_depth (i64.const 0)) (return)))
    (call $self (i32.const 0))
    (if (call $call (i32.const 0) (i32.const 112) (i32.const 7) (i32.const 48) (i32.const 0)
          (i32.const 64) (i64.const 0))
      (then (call $return_depth (i64.const 0)) (return)))
    (call $result_read (i32.const 128))
    (call $return_depth (i64.add (i64.load (i32.const 128)) (i64.const 1))))
  (@custom "stele_reentrant" "1"))"#;

/// What must not change between a run and its estimate: status, output,
/// events and every frame's depth, target, status and output (not gas).
type Outcome = (
    ExecStatus,
    Vec<u8>,
    usize,
    Vec<(usize, String, ExecStatus, Vec<u8>)>,
);

fn outcome(s: &SimulationResult) -> Outcome {
    fn walk(f: &TraceFrame, depth: usize, out: &mut Vec<(usize, String, ExecStatus, Vec<u8>)>) {
        out.push((depth, f.method.clone(), f.status, f.output.0.clone()));
        for c in &f.calls {
            walk(c, depth + 1, out);
        }
    }
    let mut frames = Vec::new();
    if let Some(t) = &s.trace {
        walk(t, 1, &mut frames);
    }
    (s.status, s.output.0.clone(), s.events.len(), frames)
}

fn depth(s: &SimulationResult) -> u64 {
    u64::from_le_bytes(s.output.0[..8].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_gas_is_the_smallest_limit_with_the_same_outcome_on_nested_calls() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy(&node, &client, 3, 0, wat::parse_str(NEST_WAT).unwrap()).await;
    let sender = key(2).address();
    let signer = stele_client::Signer::new(key(2));
    let request = |tx: Transaction| SimulateRequest {
        transaction: Some(tx),
        sender: Some(sender),
        ..Default::default()
    };
    let simulate = |b: TxBuilder, gas: u64, method: &'static str, args: Vec<u8>| {
        let req = request(b.gas_limit(gas).call(contract, method, args, 0));
        let client = &client;
        async move { client.simulate_transaction(req).await.unwrap() }
    };

    // Eight levels deep, the innermost doing the work.
    let b = TxBuilder::new(CHAIN).gas_price(1).nonce(0);
    let args = 8u64.to_le_bytes().to_vec();
    let plenty = simulate(b.clone(), 50_000_000, "nest", args.clone()).await;
    assert_eq!(plenty.status, ExecStatus::Success, "{plenty:?}");
    assert_eq!(depth(&plenty), 8);
    // The premise: the gas a run with plenty used is not enough as a limit
    // (each caller keeps a 64th back, so the innermost runs out).
    let tight = simulate(b.clone(), plenty.gas_used, "nest", args.clone()).await;
    assert_eq!(
        (tight.status, tight.error.as_deref()),
        (ExecStatus::Reverted, Some("deep call failed"))
    );
    let est = client
        .estimate_gas(request(b.clone().gas_limit(1).call(
            contract,
            "nest",
            args.clone(),
            0,
        )))
        .await
        .unwrap();
    assert_eq!(
        (est.status, est.exact),
        (ExecStatus::Success, true),
        "{est:?}"
    );
    assert!(est.gas > plenty.gas_used, "{est:?} {}", plenty.gas_used);
    let at = simulate(b.clone(), est.gas, "nest", args.clone()).await;
    assert_eq!(outcome(&at), outcome(&plenty));
    let below = simulate(b.clone(), est.gas - 1, "nest", args.clone()).await;
    assert_ne!(outcome(&below), outcome(&plenty), "{below:?}");
    // On chain with the estimate as the limit.
    let (_, raw, hash) = signer.sign(b.clone().gas_limit(est.gas).call(contract, "nest", args, 0));
    client.send_transaction(&raw).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap();
    assert_eq!(
        (r.receipt.status, r.receipt.output),
        (ExecStatus::Success, 8u64.to_le_bytes().to_vec())
    );

    // A chain that goes as deep as the gas allows: the estimate reaches the
    // depth a run with all the gas reaches, one gas less does not.
    let b = b.nonce(1);
    let at_cap = simulate(b.clone(), 1_000_000_000, "deepest", vec![]).await;
    assert_eq!(at_cap.status, ExecStatus::Success, "{at_cap:?}");
    let deepest = depth(&at_cap);
    assert!(deepest >= 14, "{at_cap:?}");
    let tight = simulate(b.clone(), at_cap.gas_used, "deepest", vec![]).await;
    assert!(depth(&tight) < deepest, "{tight:?}");
    let est = client
        .estimate_gas(request(b.clone().gas_limit(1).call(
            contract,
            "deepest",
            vec![],
            0,
        )))
        .await
        .unwrap();
    assert_eq!(
        (est.status, est.exact),
        (ExecStatus::Success, true),
        "{est:?}"
    );
    let at = simulate(b.clone(), est.gas, "deepest", vec![]).await;
    assert_eq!(outcome(&at), outcome(&at_cap));
    let below = simulate(b.clone(), est.gas - 1, "deepest", vec![]).await;
    assert_ne!(outcome(&below), outcome(&at_cap), "{below:?}");
    let (_, raw, hash) = signer.sign(b.gas_limit(est.gas).call(contract, "deepest", vec![], 0));
    client.send_transaction(&raw).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap();
    assert_eq!(
        (r.receipt.status, r.receipt.output),
        (ExecStatus::Success, deepest.to_le_bytes().to_vec())
    );
}

/// Large data on demand. `emit(count, size, tag)` (three u32 LE) emits
/// `count` events with the topic 32 x 'E' and `size` bytes of data that
/// start with `tag` and the event's index; `fill(count, size, first)`
/// writes `count` values of `size` bytes (starting with their key) under
/// the 4-byte LE keys `first`, `first + 1`, ...; `noop` ignores its
/// arguments.
const BULK_WAT: &str = r#"(module
  (import "stele" "input_read" (func $input_read (param i32)))
  (import "stele" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (import "stele" "storage_write" (func $write (param i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 32) "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE")
  (func (export "emit")
    (local $i i32)
    (call $input_read (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
        (i32.store (i32.const 65536) (i32.load (i32.const 8)))
        (i32.store (i32.const 65540) (local.get $i))
        (call $emit (i32.const 32) (i32.const 1) (i32.const 65536) (i32.load (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "fill")
    (local $i i32)
    (call $input_read (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
        (i32.store (i32.const 64) (i32.add (i32.load (i32.const 8)) (local.get $i)))
        (i32.store (i32.const 65536) (i32.load (i32.const 64)))
        (call $write (i32.const 64) (i32.const 4) (i32.const 65536) (i32.load (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "noop")))"#;

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn json_len(v: &impl serde::Serialize) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_the_response_limit_are_paged_and_nothing_is_lost() {
    // The smallest limit a node accepts, so the test data stays small.
    const LIMIT: usize = 4 << 20;
    // V1 limits: chains on them can hold 16 MiB of events per transaction
    // (V2 caps a transaction at 256 KiB and a block at 4 MiB).
    let node = TestNode::start_with_limits(
        RpcConfig {
            response_bytes_max: LIMIT as u32,
            ..RpcConfig::default()
        },
        stele_vm::VmLimits::V1,
    )
    .await;
    let client = Client::connect(&node.http()).await.unwrap();
    let ws = Client::connect(&node.ws()).await.unwrap();
    let bulk = deploy(&node, &client, 1, 0, wat::parse_str(BULK_WAT).unwrap()).await;
    let call = |from: u8, nonce: u64, gas: u64, method: &str, args: Vec<u8>| {
        signed(
            from,
            nonce,
            gas,
            TxPayload::Call {
                contract: bulk,
                method: method.into(),
                args,
                value: 0,
            },
        )
    };

    // Receipts: two transactions of 160 events of 16 KiB, ~5.3 MB of JSON
    // each, ~10.6 MB for the block.
    let emits = [2u8, 3].map(|from| {
        call(
            from,
            0,
            20_000_000,
            "emit",
            u32s(&[160, 16 << 10, u32::from(from)]),
        )
    });
    for tx in &emits {
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    let mut status = ws.subscribe_tx_status(emits[0].hash()).await.unwrap();
    assert_eq!(
        status.next().await.unwrap().unwrap().state,
        TxState::Pending
    );
    let block = node.commit().await;
    let height = block.block.header.height;
    for (i, tx) in emits.iter().enumerate() {
        let expected = &block.receipts[i];
        assert_eq!(
            (expected.status, expected.events.len()),
            (ExecStatus::Success, 160)
        );
        // The node's answer fits and says what it left out...
        let raw = client
            .raw_request("get_receipt", vec![serde_json::json!(tx.hash())])
            .await
            .unwrap();
        assert!(json_len(&raw) <= LIMIT, "{}", json_len(&raw));
        let page: ReceiptInfo = serde_json::from_value(raw).unwrap();
        let kept = page.receipt.events.len();
        assert!(
            kept > 0 && page.events_omitted > 0,
            "{kept} {}",
            page.events_omitted
        );
        assert_eq!(kept + page.events_omitted as usize, 160);
        assert_eq!(page.receipt.events[..], expected.events[..kept]);
        // ...and the client reads the rest.
        let whole = client.get_receipt(tx.hash()).await.unwrap();
        assert_eq!((&whole.receipt, whole.events_omitted), (expected, 0));
        assert_eq!(whole.receipt.hash(), expected.hash());
        let waited = client.wait_for_receipt(tx.hash(), 1_000).await.unwrap();
        assert_eq!(waited, whole);
    }
    let committed = tokio::time::timeout(Duration::from_secs(10), status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(committed.state, TxState::Committed);
    assert!(json_len(&committed) <= LIMIT);
    let r = committed.receipt.unwrap();
    assert!(r.events_omitted > 0);
    assert_eq!(
        ws.complete_receipt(r).await.unwrap().receipt,
        block.receipts[0]
    );

    // Events through the cursor: pages at the limit, none lost.
    let all: Vec<(u32, u32, Event)> = block
        .receipts
        .iter()
        .enumerate()
        .flat_map(|(t, r)| {
            r.events
                .iter()
                .enumerate()
                .map(move |(e, ev)| (t as u32, e as u32, ev.clone()))
        })
        .collect();
    let any = EventFilter::default();
    let (mut got, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = client
            .get_events_page(any.clone(), height, Some(height), 1000, cursor)
            .await
            .unwrap();
        assert!(json_len(&page) <= LIMIT, "{}", json_len(&page));
        pages += 1;
        got.extend(
            page.events
                .into_iter()
                .map(|l| (l.tx_index, l.event_index, l.event)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(got, all);
    // A count limit ends a page exactly, inside a transaction.
    let seven = client
        .get_events_page(any.clone(), height, None, 7, None)
        .await
        .unwrap();
    assert_eq!(seven.events.len(), 7);
    let next = seven.next.unwrap();
    assert_eq!(
        (next.height, next.tx_index, next.event_index),
        (height, 0, 7)
    );
    // Without a cursor pages are whole blocks: this block alone does not
    // fit, which is said, and a page before it stops short of it.
    assert_eq!(
        code(client.get_events(any.clone(), height, None, 1000).await),
        codes::RESPONSE_TOO_LARGE
    );
    let before = client.get_events(any.clone(), 1, None, 1000).await.unwrap();
    assert!(before.events.is_empty());
    assert_eq!((before.next_height, before.next), (Some(height), None));

    // A simulation keeps what fits and counts the rest.
    let sim = client
        .simulate_transaction(SimulateRequest {
            raw: Some(
                call(2, 1, 20_000_000, "emit", u32s(&[160, 16 << 10, 9]))
                    .to_bytes()
                    .into(),
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sim.status, ExecStatus::Success);
    assert!(
        sim.events_omitted > 0 && !sim.trace_omitted,
        "{}",
        sim.events_omitted
    );
    assert_eq!(sim.events.len() + sim.events_omitted as usize, 160);
    assert!(json_len(&sim) <= LIMIT);

    // Storage: 32 values of 64 KiB, ~4.2 MB of JSON in one listing.
    for (nonce, first) in [(1, 0), (2, 16)] {
        let tx = call(1, nonce, 48_000_000, "fill", u32s(&[16, 64 << 10, first]));
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let (mut entries, mut cursor, mut pages) = (Vec::new(), None::<Vec<u8>>, 0);
    loop {
        let page = client
            .list_storage(bulk, b"", cursor.as_deref(), 256)
            .await
            .unwrap();
        assert!(json_len(&page) <= LIMIT, "{}", json_len(&page));
        pages += 1;
        entries.extend(page.entries);
        match page.next_cursor {
            Some(c) => cursor = Some(c.0),
            None => break,
        }
    }
    assert!(pages >= 2, "{pages} pages");
    let mut keys: Vec<u32> = entries
        .iter()
        .map(|e| {
            assert_eq!(e.value.0.len(), 64 << 10);
            assert_eq!(e.value.0[..4], e.key.0[..]);
            u32::from_le_bytes(e.key.0[..].try_into().unwrap())
        })
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..32).collect::<Vec<u32>>());

    // A block of 20 transactions of 120 KiB, ~4.9 MB of JSON: pages of
    // transactions, which the client joins.
    for nonce in 1..=20 {
        let tx = call(3, nonce, 2_500_000, "noop", vec![nonce as u8; 120 << 10]);
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    let big = node.commit().await;
    assert_eq!(big.block.txs.len(), 20);
    let id = BlockId::Height(big.block.header.height);
    let first = client.get_block_page(id, 0).await.unwrap();
    assert!(json_len(&first) <= LIMIT, "{}", json_len(&first));
    let next = first.txs_next.unwrap();
    assert_eq!(next as usize, first.block.txs.len());
    assert_eq!(first.block.txs[..], big.block.txs[..next as usize]);
    let rest = client.get_block_page(id, next).await.unwrap();
    assert_eq!(rest.txs_from, next);
    let whole = client.get_block(id).await.unwrap();
    assert_eq!((&whole.block, whole.txs_next), (&big.block, None));
    assert_eq!(client.get_latest_block().await.unwrap(), whole);
    assert_eq!(
        code(client.get_block_page(id, 21).await),
        codes::INVALID_ARGUMENT
    );
}

/// A view that iterates storage reads one version from start to end, while
/// blocks commit under it (it used to fail with an internal error once the
/// latest height moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_iterate_one_version_while_blocks_commit() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let code = wat::parse_str(include_str!("fixtures/iterate_over_deletes.wat")).unwrap();
    let contract = deploy(&node, &client, 1, 0, code).await;
    let u32_args =
        |args: &[u32]| -> Vec<u8> { args.iter().flat_map(|a| a.to_le_bytes()).collect() };
    let fill = signed(
        1,
        1,
        50_000_000,
        TxPayload::Call {
            contract,
            method: "fill".into(),
            args: u32_args(&[300]),
            value: 0,
        },
    );
    client.send_transaction(&fill.to_bytes()).await.unwrap();
    node.commit().await;

    let committer = async {
        for _ in 0..30 {
            node.commit().await;
        }
    };
    let viewer = async {
        let mut heights = Vec::new();
        for _ in 0..30 {
            let view = client
                .call_view(contract, "wipe_and_scan", &u32_args(&[0, 300, 0]), None)
                .await
                .unwrap();
            assert_eq!(view.status, ExecStatus::Success, "{view:?}");
            heights.push(view.height);
        }
        heights
    };
    let ((), heights) = tokio::join!(committer, viewer);
    assert!(heights.windows(2).all(|w| w[0] <= w[1]), "{heights:?}");
}

/// Only the latest height can list keys in order: a view at an older height
/// that iterates storage gets its own code and says so (it used to be an
/// internal error); reads of single keys at that height still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_iterating_at_an_older_height_gets_iteration_unavailable() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let code = wat::parse_str(include_str!("fixtures/iterate_over_deletes.wat")).unwrap();
    let contract = deploy(&node, &client, 1, 0, code).await;
    let fill = signed(
        1,
        1,
        50_000_000,
        TxPayload::Call {
            contract,
            method: "fill".into(),
            args: u32s(&[10]),
            value: 0,
        },
    );
    client.send_transaction(&fill.to_bytes()).await.unwrap();
    let filled = node.commit().await.block.header.height;
    let latest = node.commit().await.block.header.height;
    assert!(filled < latest);

    // [deletes, steps, revert]: three steps of iteration.
    let scan = u32s(&[0, 3, 0]);
    match client
        .call_view(contract, "wipe_and_scan", &scan, Some(filled))
        .await
    {
        Err(stele_client::ClientError::Rpc { code, message }) => {
            assert_eq!(code, codes::ITERATION_UNAVAILABLE);
            assert_eq!(
                message,
                format!(
                    "storage iteration is only available at the latest height; this call ran at height {filled} and iterated storage (call at the latest height instead)"
                )
            );
        }
        other => panic!("expected ITERATION_UNAVAILABLE, got {other:?}"),
    }
    // The same view at the latest height, by number or by default.
    for height in [Some(latest), None] {
        let view = client
            .call_view(contract, "wipe_and_scan", &scan, height)
            .await
            .unwrap();
        assert_eq!(
            (view.status, view.height),
            (ExecStatus::Success, latest),
            "{view:?}"
        );
    }
    // Deleting a key reads it, without iterating: fine at the older height.
    let view = client
        .call_view(contract, "wipe_and_scan", &u32s(&[1, 0, 0]), Some(filled))
        .await
        .unwrap();
    assert_eq!(
        (view.status, view.height),
        (ExecStatus::Success, filled),
        "{view:?}"
    );
}

/// A TCP connection to `addr` from the loopback address `source`
/// (127.0.0.0/8 is all loopback, so each is another client address).
async fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or resets it), within
/// `within`; what was read.
async fn read_until_closed(s: &mut tokio::net::TcpStream, within: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "still open after {within:?}");
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_cannot_lock_out_others() {
    // 40 slots in all, 32 per address: before the per-address cap, 40 idle
    // connections from one address took every slot.
    let node = TestNode::start(RpcConfig {
        connections_max: 40,
        connections_per_ip_max: 32,
        // Long enough for the checks below on a loaded machine.
        request_header_timeout_ms: 3_000,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(connect_from([127, 0, 0, 1], addr).await);
    }
    // The 33rd to 40th from the same address are refused at once, with 429.
    let started = std::time::Instant::now();
    for _ in 32..40 {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        let answer = read_until_closed(&mut s, Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(answer.ends_with("too many open connections from this address"));
    }
    assert!(started.elapsed() < Duration::from_millis(2_000));
    let metrics = node.server.metrics();
    assert_eq!(
        metrics.connections_refused_per_ip.load(Ordering::Relaxed),
        8
    );
    // Another address is served meanwhile.
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    use tokio::io::AsyncWriteExt;
    other
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut other, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Eight idle ones from a second address fill the 40 slots (once the
    // answered connection's slot is given back, just after its close); a
    // third address is still served: the oldest silent connection of the
    // address holding the most is closed for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = Vec::new();
    for _ in 0..8 {
        second.push(connect_from([127, 0, 0, 2], addr).await);
    }
    let mut third = connect_from([127, 0, 0, 3], addr).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 0);
    assert_eq!(metrics.evicted_of("incomplete_request"), 1);
    let oldest = read_until_closed(&mut idle[0], Duration::from_secs(2)).await;
    assert_eq!(oldest, "");
    drop(second);
    // The silent connections are closed at the header timeout, and their
    // address is served again.
    for mut s in idle {
        let answer = read_until_closed(&mut s, Duration::from_secs(6)).await;
        assert_eq!(answer, "");
    }
    let client = Client::connect(&node.http()).await.unwrap();
    assert_eq!(client.get_status().await.unwrap().height, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_and_silent_websockets_are_closed_and_live_ones_are_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = TestNode::start(RpcConfig {
        idle_timeout_ms: 1_500,
        ws_ping_interval_ms: 200,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    // One answered request on a keep-alive connection, then silence.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let answered = std::time::Instant::now();
    let rest = read_until_closed(&mut s, Duration::from_secs(6)).await;
    assert_eq!(rest, "");
    let after = answered.elapsed();
    assert!(
        after >= Duration::from_millis(1_400),
        "closed after {after:?}"
    );
    // A WebSocket client answers the server's pings and stays connected
    // well past the idle timeout.
    let ws = Client::connect(&node.ws()).await.unwrap();
    // One that never answers (a dead peer, as far as the server can tell)
    // is pinged, then closed.
    let mut dead = RawWs::connect(addr).await;
    let opened = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(ws.get_status().await.unwrap().height, 0);
    let next = tokio::time::timeout(Duration::from_secs(5), dead.next_text()).await;
    assert_eq!(next.unwrap(), None, "a silent WebSocket is closed");
    assert!(dead.pings > 0);
    assert!(opened.elapsed() >= Duration::from_millis(1_400));
}

/// A JSON-RPC POST of `body` from the loopback address `source`, on its
/// own connection; the JSON answer.
async fn post(source: [u8; 4], addr: std::net::SocketAddr, body: &str) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let mut s = connect_from(source, addr).await;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let (head, answer) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(answer).unwrap()
}

fn error_code(answer: &serde_json::Value) -> Option<i64> {
    answer["error"]["code"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_an_http_batch_pays_and_event_scans_pay_by_range() {
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 1,
        rate_burst: 20,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    // 20 tokens: the request takes one at the door, which pays the first
    // call; 19 more calls pass and the last 3 of 23 are refused in place.
    let calls: Vec<String> = (0..23)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"get_status","params":[]}}"#))
        .collect();
    let answer = post([127, 0, 0, 1], addr, &format!("[{}]", calls.join(","))).await;
    let answers = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(answers.len(), 23);
    let limited: Vec<i64> = answers
        .iter()
        .filter(|a| error_code(a) == Some(i64::from(codes::RATE_LIMITED)))
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(limited, vec![20, 21, 22], "{answer}");
    let metrics = node.server.metrics();
    assert_eq!(metrics.rate_limited.load(Ordering::Relaxed), 3);
    // The refused calls are neither calls nor errors in the counters.
    assert_eq!(metrics.requests_of("get_status"), 20);
    assert_eq!(metrics.errors.load(Ordering::Relaxed), 0);

    // From another address (a full bucket): a scan of 1 500 blocks costs
    // 16 tokens (1 + 1 per 100 blocks), so of 20 tokens one such call
    // passes (the range is above the chain: it is refused, but after
    // paying) and a second is rate limited, while a cheap call still
    // passes.
    let scan = r#"{"jsonrpc":"2.0","id":1,"method":"get_events","params":[{"contract":null,"topics":[]},1,1500,10]}"#;
    let a = post([127, 0, 0, 2], addr, scan).await;
    assert_eq!(
        error_code(&a),
        Some(i64::from(codes::HEIGHT_UNAVAILABLE)),
        "{a}"
    );
    let a = post([127, 0, 0, 2], addr, scan).await;
    assert_eq!(error_code(&a), Some(i64::from(codes::RATE_LIMITED)), "{a}");
    let status = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;
    let a = post([127, 0, 0, 2], addr, status).await;
    assert_eq!(a["result"]["chain_id"], 4242, "{a}");
    assert_eq!(metrics.requests_of("get_events"), 1);
    assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);

    // A batch counts each of its calls, and each error among them.
    let unknown = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"get_receipt","params":["{}"]}}"#,
        Hash([9; 32])
    );
    let answer = post([127, 0, 0, 3], addr, &format!("[{status},{unknown}]")).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    assert_eq!(metrics.requests_of("get_status"), 22);
    assert_eq!(metrics.requests_of("get_receipt"), 1);
    assert_eq!(metrics.errors.load(Ordering::Relaxed), 2);
}

/// A minimal WebSocket client on a socket with a small receive buffer, so
/// that a test can stop reading and have the server notice soon.
struct RawWs {
    s: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// Pings received (never answered).
    pings: usize,
}

impl RawWs {
    async fn connect(addr: std::net::SocketAddr) -> RawWs {
        RawWs::connect_from([127, 0, 0, 1], addr).await
    }

    /// Connects from the loopback address `source` (see `connect_from`).
    async fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind((source, 0).into()).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(
            b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        assert!(buf.starts_with(b"HTTP/1.1 101"));
        buf.drain(..head_end);
        RawWs { s, buf, pings: 0 }
    }

    /// Sends a text frame (masked with a zero key, as a client must mask).
    async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        let mut frame = vec![0x81u8];
        let len = text.len();
        assert!(len < 65_536);
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(text.as_bytes());
        self.s.write_all(&frame).await.unwrap();
    }

    /// The next text message (pings and other control frames skipped);
    /// `None` when the connection ends.
    async fn next_text(&mut self) -> Option<String> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                match opcode {
                    1 => return Some(String::from_utf8(payload).unwrap()),
                    8 => return None,
                    9 => self.pings += 1,
                    _ => {}
                }
                continue;
            }
            let mut chunk = [0u8; 65_536];
            match self.s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// (opcode, payload, bytes used) of a whole unmasked frame at the start of
/// `buf`.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let opcode = buf.first()? & 0x0f;
    let (len, at) = match buf.get(1)? & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((opcode, payload, at + len))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_too_far_behind_is_dropped_with_the_reason() {
    let node = TestNode::start(RpcConfig {
        ws_buffer_messages_max: 4,
        send_buffer_bytes: 16 << 10,
        subscription_lag_blocks_max: 8,
        ..RpcConfig::default()
    })
    .await;
    let mut ws = RawWs::connect(node.server.local_addr()).await;
    ws.send(r#"{"jsonrpc":"2.0","id":1,"method":"subscribe_new_blocks","params":[]}"#)
        .await;
    let subscribed = ws.next_text().await.unwrap();
    assert!(subscribed.contains("\"result\""), "{subscribed}");
    // The subscriber stops reading while blocks commit: the socket's
    // buffers fill, then the connection's queue, then the subscription
    // falls behind the commits channel, more than 8 blocks.
    for _ in 0..300 {
        node.commit().await;
    }
    let metrics = node.server.metrics();
    let mut heights = Vec::new();
    let reason = loop {
        let text = tokio::time::timeout(Duration::from_secs(10), ws.next_text())
            .await
            .unwrap_or_else(|_| panic!("no reason after {heights:?}"))
            .unwrap_or_else(|| panic!("closed without a reason after {heights:?}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(e) = v["params"]["error"].as_str() {
            break e.to_string();
        }
        heights.push(v["params"]["result"]["header"]["height"].as_u64().unwrap());
    };
    assert!(reason.contains("blocks behind the chain"), "{reason}");
    // What it got before was in order and without a gap.
    assert!(!heights.is_empty());
    assert!(heights.windows(2).all(|w| w[1] == w[0] + 1), "{heights:?}");
    assert!(*heights.last().unwrap() < 300);
    assert_eq!(metrics.subscriptions_lagged.load(Ordering::Relaxed), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(metrics.active_subscriptions.load(Ordering::Relaxed), 0);
    // The connection stays usable: the client may subscribe again.
    ws.send(r#"{"jsonrpc":"2.0","id":2,"method":"get_status","params":[]}"#)
        .await;
    let status = ws.next_text().await.unwrap();
    assert!(status.contains("\"height\":300"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_peers_and_a_height_close_to_theirs() {
    let node = TestNode::start(RpcConfig {
        health_lag_blocks_max: 16,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let health = || async {
        http(
            addr,
            "GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into(),
        )
        .await
    };
    for _ in 0..3 {
        node.commit().await;
    }
    let (head, body) = health().await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "ok");
    // Four validators: with itself, two peers make a quorum by count.
    node.status.peers.store(1, Ordering::Relaxed);
    let (head, body) = health().await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert_eq!(body, "too few peers: 1 connected, 2 needed");
    node.status.peers.store(0, Ordering::Relaxed);
    assert!(health().await.0.starts_with("http/1.1 503"));
    node.status.peers.store(2, Ordering::Relaxed);
    assert!(health().await.0.starts_with("http/1.1 200"));
    // 180 blocks behind what the peers committed, though not syncing.
    node.status.peer_height.store(183, Ordering::Relaxed);
    let (head, body) = health().await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert_eq!(
        body,
        "behind: committed height 3, peers at 183 (more than 16 blocks)"
    );
    // Within the allowed lag.
    node.status.peer_height.store(19, Ordering::Relaxed);
    assert!(health().await.0.starts_with("http/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_413_and_are_counted() {
    use tokio::io::AsyncWriteExt;
    let node = TestNode::start(RpcConfig::default()).await;
    let addr = node.server.local_addr();
    let declared = (2 << 20) + 1;
    for _ in 0..20 {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        let head = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let text = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }
    assert_eq!(
        node.server
            .metrics()
            .oversized_requests
            .load(Ordering::Relaxed),
        20
    );
    // A request within the limit still passes.
    let ok = post(
        [127, 0, 0, 1],
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#,
    )
    .await;
    assert!(ok["result"]["chain_id"].is_u64(), "{ok}");
}

/// A JSON-RPC call of `wait_for_receipt` for a transaction that never
/// comes, written on `s`: a request that stays in flight for `ms`.
async fn send_slow_request(s: &mut tokio::net::TcpStream, ms: u64) {
    use tokio::io::AsyncWriteExt;
    let hash = serde_json::to_string(&Hash([0xee; 32])).unwrap();
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"wait_for_receipt","params":[{hash},{ms}]}}"#);
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
}

/// Whether the server has closed `s` (EOF or reset) within `within`;
/// false if it is still open then. Reads and drops what arrives.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_slot_is_taken_an_idle_connection_makes_room_and_a_busy_one_does_not() {
    use tokio::io::AsyncWriteExt;
    let node = TestNode::start(RpcConfig {
        connections_max: 8,
        connections_per_ip_max: 4,
        // Nothing is closed by a timeout during the test.
        request_header_timeout_ms: 30_000,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let metrics = node.server.metrics();
    // A request in flight for 3 s, then 7 silent connections (one with
    // half a request head): 4 from one /24, 3 from another.
    let mut slow = connect_from([127, 0, 1, 1], addr).await;
    send_slow_request(&mut slow, 3_000).await;
    let mut crowded = Vec::new();
    for i in 0..4 {
        crowded.push(connect_from([127, 0, 2, 1 + i], addr).await);
    }
    crowded[3]
        .write_all(b"POST / HTTP/1.1\r\nhos")
        .await
        .unwrap();
    let mut other = Vec::new();
    for _ in 0..3 {
        other.push(connect_from([127, 0, 3, 1], addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 0);

    // Four honest clients from elsewhere are served, one after the other;
    // each takes the slot of a silent connection of the crowded /24,
    // oldest first, while the attacker there reconnects at once.
    let status = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;
    for round in 0..4u8 {
        let answer = post([127, 0, 9, 1 + round], addr, status).await;
        assert_eq!(answer["result"]["chain_id"], 4242, "{answer}");
        let evicted = round as usize;
        assert!(
            closed_within(&mut crowded[evicted], Duration::from_secs(2)).await,
            "the oldest silent connection of the crowded /24 is closed"
        );
        // The attacker reconnects at once, into the slot the honest client
        // freed (given a moment to be given back).
        tokio::time::sleep(Duration::from_millis(100)).await;
        crowded[evicted] = connect_from([127, 0, 2, 1 + round], addr).await;
    }
    assert_eq!(metrics.evicted_of("incomplete_request"), 4);
    assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 0);
    for s in &mut other {
        assert!(!closed_within(s, Duration::from_millis(10)).await);
    }
    // The request in flight was kept and is answered (a timeout error).
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":1"#), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_gets_503_when_every_connection_has_a_request_in_flight() {
    let node = TestNode::start(RpcConfig {
        connections_max: 4,
        connections_per_ip_max: 4,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let mut busy = Vec::new();
    for i in 0..4 {
        let mut s = connect_from([127, 0, 1, 1 + i], addr).await;
        send_slow_request(&mut s, 3_000).await;
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut newcomer = connect_from([127, 0, 9, 1], addr).await;
    let answer = read_until_closed(&mut newcomer, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let metrics = node.server.metrics();
    assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 1);
    assert!(
        metrics
            .connections_evicted
            .values()
            .all(|c| c.load(Ordering::Relaxed) == 0)
    );
    for mut s in busy {
        let answer = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_do_not_read_make_room_and_reading_ones_are_kept() {
    let node = TestNode::start(RpcConfig {
        connections_max: 6,
        connections_per_ip_max: 8,
        // Pings every 200 ms: a client silent for 400 ms does not read.
        ws_ping_interval_ms: 200,
        idle_timeout_ms: 30_000,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let metrics = node.server.metrics();
    // Two subscribers that read (the client answers pings).
    let mut readers = Vec::new();
    for _ in 0..2 {
        let c = Client::connect(&node.ws()).await.unwrap();
        let sub = c.subscribe_new_blocks().await.unwrap();
        readers.push((c, sub));
    }
    // Four that subscribe 8 times each, then read nothing, not even pings.
    let mut stuck = Vec::new();
    for i in 0..4u8 {
        let mut ws = RawWs::connect_from([127, 0, 3, 1 + i], addr).await;
        for id in 0..8 {
            ws.send(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"subscribe_new_blocks","params":[]}}"#
            ))
            .await;
            let answer = ws.next_text().await.unwrap();
            assert!(answer.contains("\"result\""), "{answer}");
        }
        stuck.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // Every slot is taken; each new subscriber (reading) takes the place
    // of one that does not read.
    for _ in 0..4 {
        let c = Client::connect(&node.ws()).await.unwrap_or_else(|e| {
            let evicted: Vec<_> = metrics
                .connections_evicted
                .iter()
                .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
                .collect();
            panic!(
                "{e}: per_ip {} full {} rate {} evicted {evicted:?}",
                metrics.connections_refused_per_ip.load(Ordering::Relaxed),
                metrics.connections_refused.load(Ordering::Relaxed),
                metrics.rate_limited.load(Ordering::Relaxed)
            )
        });
        let sub = c.subscribe_new_blocks().await.unwrap();
        readers.push((c, sub));
    }
    assert_eq!(metrics.evicted_of("ws_not_reading"), 4);
    for ws in &mut stuck {
        let end = tokio::time::timeout(Duration::from_secs(5), ws.next_text()).await;
        assert_eq!(end.unwrap(), None, "an evicted subscriber is closed");
    }
    // Now every connection is a reading subscriber: a newcomer gets 503.
    let mut newcomer = connect_from([127, 0, 9, 1], addr).await;
    let answer = read_until_closed(&mut newcomer, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 1);
    // All six readers still get their blocks.
    node.commit().await;
    for (_, sub) in &mut readers {
        let block = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(block.header.height, 1);
    }
}

/// One POST from `source` on its own connection: the status line and the
/// body.
async fn post_status(source: [u8; 4], addr: std::net::SocketAddr, body: &str) -> (String, String) {
    post_forwarded(source, addr, body, None).await
}

/// Posts `body` from `source`, with `X-Forwarded-For: forwarded_for` if
/// given; the status line and the answer.
async fn post_forwarded(
    source: [u8; 4],
    addr: std::net::SocketAddr,
    body: &str,
    forwarded_for: Option<&str>,
) -> (String, String) {
    use tokio::io::AsyncWriteExt;
    let mut s = connect_from(source, addr).await;
    let forwarded = forwarded_for.map_or(String::new(), |f| format!("x-forwarded-for: {f}\r\n"));
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{forwarded}connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let (head, answer) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    (status, answer.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_submissions_cost_ten_tokens_and_admitted_ones_one() {
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 1,
        rate_burst: 20,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let submit = |tx: SignedTransaction| {
        let raw = hex::encode(&tx.to_bytes());
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"send_transaction","params":["{raw}"]}}"#)
    };
    let transfer = |from: &SecretKey, nonce: u64| {
        Transaction {
            chain_id: CHAIN,
            nonce,
            gas_limit: 30_000,
            gas_price: 1,
            payload: TxPayload::Transfer {
                to: key(9).address(),
                amount: 1,
            },
        }
        .sign(from)
    };
    // Validly signed by accounts that hold nothing: each refusal costs its
    // call's token and 9 more, so two spend the whole burst of 20 and the
    // address is turned away at the door.
    for _ in 0..2 {
        let (status, body) = post_status(
            [127, 0, 0, 3],
            addr,
            &submit(transfer(&SecretKey::generate(), 0)),
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(
            body.contains(&codes::TX_INSUFFICIENT_FUNDS.to_string()),
            "{body}"
        );
    }
    let (status, _) = post_status(
        [127, 0, 0, 3],
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#,
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 429"), "{status}");
    // A funded account's admitted transfers cost one token each: ten pass
    // and the address still has budget left.
    for nonce in 0..10 {
        let (status, body) =
            post_status([127, 0, 0, 4], addr, &submit(transfer(&key(1), nonce))).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(body.contains("\"result\""), "{body}");
    }
    let (status, _) = post_status(
        [127, 0, 0, 4],
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#,
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

/// Behind a trusted proxy every client has its own rate-limit bucket, read
/// from `X-Forwarded-For`; anyone else's header is a claim and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_trusted_proxy_are_limited_each_and_nobody_else_is_believed() {
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 1,
        rate_burst: 2,
        trusted_proxies: vec![[127, 0, 0, 1].into()],
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let status = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;
    // A request's token at the door pays its one call: two per client.
    for client in ["203.0.113.7", "203.0.113.8"] {
        for _ in 0..2 {
            let (head, answer) = post_forwarded([127, 0, 0, 1], addr, status, Some(client)).await;
            assert!(head.starts_with("HTTP/1.1 200"), "{head} {answer}");
            assert!(answer.contains("\"result\""), "{answer}");
        }
        let (head, _) = post_forwarded([127, 0, 0, 1], addr, status, Some(client)).await;
        assert!(head.starts_with("HTTP/1.1 429"), "{client}: {head}");
    }
    // The proxy's own requests (no header) have their own bucket too.
    let (head, _) = post_forwarded([127, 0, 0, 1], addr, status, None).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // From an untrusted source, whatever it names, its own bucket counts.
    for (i, claimed) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let (head, _) = post_forwarded([127, 0, 0, 2], addr, status, Some(claimed)).await;
        assert_eq!(head.starts_with("HTTP/1.1 200"), i < 2, "{claimed}: {head}");
    }
}

/// A PROXY protocol v2 header (command PROXY, TCP over IPv4) naming
/// `client` as the source, written by hand from the specification.
fn proxy_v2(client: ([u8; 4], u16)) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(client.0);
    h.extend([127, 0, 0, 1]);
    h.extend(client.1.to_be_bytes());
    h.extend(8545u16.to_be_bytes());
    h
}

/// The same with the LOCAL command (a health check of the proxy's own).
fn proxy_v2_local() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x20, 0x00, 0, 0]);
    h
}

/// `prefix`, then a `get_status` POST, from `source` on its own connection;
/// what the server wrote before it closed.
async fn post_after(source: [u8; 4], addr: std::net::SocketAddr, prefix: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;
    let mut s = connect_from(source, addr).await;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The server may close as soon as it has read a bad prefix.
    let _ = s.write_all(&[prefix, request.as_bytes()].concat()).await;
    read_until_closed(&mut s, Duration::from_secs(10)).await
}

/// With `proxy_protocol`, a trusted proxy's connections name their client
/// in a PROXY header: rate limits and the per-address connection cap count
/// that client; the proxy's own (LOCAL) connections count as the proxy; a
/// connection from the proxy without a well-formed header is closed and
/// counted; and from anyone else the same header is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_named_by_a_trusted_proxys_proxy_header_are_limited_each() {
    use tokio::io::AsyncWriteExt;
    let node = TestNode::start(RpcConfig {
        rate_per_ip_per_s: 1,
        rate_burst: 2,
        connections_per_ip_max: 2,
        request_header_timeout_ms: 1_500,
        trusted_proxies: vec![[127, 0, 0, 1].into(), [127, 0, 0, 3].into()],
        proxy_protocol: true,
        ..RpcConfig::default()
    })
    .await;
    let addr = node.server.local_addr();
    let metrics = node.server.metrics();
    // Two requests' worth of tokens per client, each on its own bucket.
    for client in [[203, 0, 113, 7], [203, 0, 113, 8]] {
        for _ in 0..2 {
            let answer = post_after([127, 0, 0, 1], addr, &proxy_v2((client, 4711))).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.contains("\"result\""), "{answer}");
        }
        let answer = post_after([127, 0, 0, 1], addr, &proxy_v2((client, 4712))).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{client:?}: {answer}");
    }
    // The proxy's own connections (LOCAL) have the proxy's bucket.
    let answer = post_after([127, 0, 0, 1], addr, &proxy_v2_local()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The connection cap counts the named client: two held open, the third
    // is refused with 429, and another client is served meanwhile.
    let mut held = Vec::new();
    for port in [1, 2] {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        s.write_all(&proxy_v2(([198, 51, 100, 1], port)))
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = post_after([127, 0, 0, 1], addr, &proxy_v2(([198, 51, 100, 1], 3))).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.ends_with("too many open connections from this address"));
    assert_eq!(
        metrics.connections_refused_per_ip.load(Ordering::Relaxed),
        1
    );
    let answer = post_after([127, 0, 0, 1], addr, &proxy_v2(([198, 51, 100, 2], 1))).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    // From the proxy, no header (or a v2 header over the bound) is closed
    // without an answer, and counted.
    assert_eq!(post_after([127, 0, 0, 1], addr, b"").await, "");
    let mut long = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    long.extend([0x21, 0x11, 0xff, 0xff]);
    assert_eq!(post_after([127, 0, 0, 1], addr, &long).await, "");
    assert_eq!(metrics.proxy_headers_refused_of("malformed"), 2);
    // Half a header is closed at the header timeout.
    let mut half = connect_from([127, 0, 0, 1], addr).await;
    half.write_all(&proxy_v2(([198, 51, 100, 3], 1))[..10])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        read_until_closed(&mut half, Duration::from_secs(5)).await,
        ""
    );
    assert!(started.elapsed() >= Duration::from_millis(1_000));
    assert_eq!(metrics.proxy_headers_refused_of("incomplete"), 1);
    // A header naming a trusted proxy (a chain of proxies): that proxy's
    // connections are not held to the address cap (two are open already),
    // and its `X-Forwarded-For` names the client, here one with a fresh
    // bucket.
    let mut held = Vec::new();
    for port in [1, 2] {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        s.write_all(&proxy_v2(([127, 0, 0, 3], port)))
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let chained = [
        proxy_v2(([127, 0, 0, 3], 5)),
        b"GET /health HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 192.0.2.1\r\nconnection: close\r\n\r\n".to_vec(),
    ]
    .concat();
    for i in 0..3 {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        s.write_all(&chained).await.unwrap();
        let answer = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert_eq!(answer.starts_with("HTTP/1.1 200"), i < 2, "{i}: {answer}");
    }
    drop(held);
    // From an untrusted address, a header is no header: HTTP refuses the
    // bytes, and nothing is counted as a proxy's.
    let answer = post_after([127, 0, 0, 2], addr, &proxy_v2(([203, 0, 113, 9], 1))).await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(metrics.proxy_headers_refused_of("malformed"), 2);
}

/// `get_storage_history` lists the transactions that wrote a key, newest
/// first, with the hash a storage proof's leaf holds, in pages; a reverted
/// write is not listed; a node whose index stops short of its latest height
/// says the index is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_history_lists_the_writes_of_a_key_newest_first() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let contract = deploy_counter(&node, &client).await;
    let call = |from: u8, nonce: u64, method: &str| {
        signed(
            from,
            nonce,
            1_000_000,
            TxPayload::Call {
                contract,
                method: method.into(),
                args: vec![],
                value: 0,
            },
        )
    };
    let mut hashes = vec![];
    for (from, nonce) in [(2, 0), (3, 0), (2, 1)] {
        let tx = call(from, nonce, "increment");
        hashes.push(client.send_transaction(&tx.to_bytes()).await.unwrap());
        // A reverted write in the same block: not a change.
        if from == 3 {
            client
                .send_transaction(&call(3, 1, "fail").to_bytes())
                .await
                .unwrap();
        }
        node.commit().await;
    }
    let page = client
        .get_storage_history(contract, b"n", 10, None)
        .await
        .unwrap();
    assert_eq!((page.height, page.indexed_from, page.next), (4, 1, None));
    let got: Vec<(u64, Hash, Option<Hash>)> = page
        .changes
        .iter()
        .map(|c| (c.block_height, c.tx_hash, c.value_hash))
        .collect();
    let vh = |n: u64| Some(proof::value_hash(&n.to_le_bytes()));
    assert_eq!(
        got,
        vec![
            (4, hashes[2], vh(3)),
            (3, hashes[1], vh(2)),
            (2, hashes[0], vh(1))
        ]
    );
    // The newest change's hash is the one a proof of the key shows.
    let proof = client
        .get_storage_proof(contract, b"n", None)
        .await
        .unwrap();
    assert_eq!(
        proof::value_hash(&proof.value.unwrap().0),
        page.changes[0].value_hash.unwrap()
    );
    // Pages of one, joined, are the same list.
    let mut joined = vec![];
    let mut cursor = None;
    loop {
        let p = client
            .get_storage_history(contract, b"n", 1, cursor)
            .await
            .unwrap();
        joined.extend(p.changes);
        match p.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(joined, page.changes);
    // The largest page is allowed; one more is not (below).
    let most = client
        .get_storage_history(contract, b"n", 1000, None)
        .await
        .unwrap();
    assert_eq!(most.changes, page.changes);
    for (key, limit) in [(&b""[..], 1), (&[0u8; 257][..], 1), (b"n", 0), (b"n", 1001)] {
        assert_eq!(
            code(client.get_storage_history(contract, key, limit, None).await),
            codes::INVALID_ARGUMENT
        );
    }
    // A block committed with the index off: the node's history is no
    // longer complete, and it says so.
    *node.index.lock().unwrap() = Default::default();
    node.commit().await;
    let e = client
        .get_storage_history(contract, b"n", 10, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::INDEX_OFF));
    assert!(e.to_string().contains("storage_history is off"), "{e}");
}

/// Read your write across nodes: a read naming the next height, or a
/// height the node knows is certified and has not committed yet, waits
/// (bounded) for it instead of answering "above the committed height";
/// one further ahead answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_height_about_to_commit_waits_for_it() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    let next = client.get_status().await.unwrap().height + 1;
    let asked = {
        let url = node.http();
        tokio::spawn(async move {
            let c = Client::connect(&url).await.unwrap();
            c.get_block(BlockId::Height(next)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let committed = node.commit().await;
    let got = asked.await.unwrap().unwrap();
    assert_eq!(got.hash, committed.block.hash());
    // Two ahead, unheard of: refused at once.
    let started = std::time::Instant::now();
    assert_eq!(
        code(client.get_block(BlockId::Height(next + 2)).await),
        codes::NOT_FOUND
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // Heard of (the peers' certified height), not committed: waited for.
    node.status.peer_height.store(next + 1, Ordering::Relaxed);
    let asked = {
        let url = node.http();
        tokio::spawn(async move {
            let c = Client::connect(&url).await.unwrap();
            c.get_events(EventFilter::default(), 1, Some(next + 1), 10)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.commit().await;
    let page = asked.await.unwrap().unwrap();
    assert_eq!(page.to_height, next + 1);
}

/// ADR 0010 through the RPC: validators vote a fifth one in, then one of
/// the first out; each epoch's blocks are certified by its set, which
/// `get_validators` serves and a client holding only the genesis set
/// reaches by walking every earlier epoch's certified last block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_follows_the_chain_of_validator_sets_from_the_genesis() {
    // Four state versions kept: the heights of the epochs' ends get pruned.
    let node = TestNode::start_keeping(RpcConfig::default(), 4).await;
    let client = Client::connect(&node.http()).await.unwrap();
    // Fund the validators and the joiner, who pay for their votes.
    for (nonce, to) in (100..=104).enumerate() {
        let tx = signed(
            1,
            nonce as u64,
            100_000,
            TxPayload::Transfer {
                to: key(to).address(),
                amount: 10u128.pow(20),
            },
        );
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let mut five: Vec<Validator> = (100..=104)
        .map(|n| Validator {
            address: key(n).address(),
            public_key: key(n).public_key(),
            power: 1,
        })
        .collect();
    five.sort_by_key(|v| v.address);
    let five = ValidatorSet::new(five).unwrap();
    let proof = key(104).sign_digest(&validator_change_hash(CHAIN, 0, &five));
    for voter in [100, 101, 102] {
        let vote = signed(
            voter,
            0,
            1_000_000,
            TxPayload::VoteValidators {
                epoch: 0,
                validators: five.validators().to_vec(),
                possession: vec![proof],
            },
        );
        client.send_transaction(&vote.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let decided = client.get_validators(None).await.unwrap();
    assert_eq!(decided.epoch, 0);
    let pending = decided.pending.expect("three of four voted");
    assert_eq!((pending.decided_at, pending.last_height), (2, 16));
    assert_eq!(pending.validators, five);
    while node.height() < 17 {
        node.commit().await;
    }
    let now = client.get_validators(None).await.unwrap();
    assert_eq!(
        (
            now.epoch,
            now.epoch_start_height,
            &now.validators,
            &now.pending
        ),
        (1, 17, &five, &None)
    );
    // The client trusts the genesis set only.
    let genesis = validators();
    assert_eq!(
        client
            .validators_for_block(16, CHAIN, &genesis)
            .await
            .unwrap(),
        genesis
    );
    let set = client
        .validators_for_block(17, CHAIN, &genesis)
        .await
        .unwrap();
    assert_eq!(set, five);
    let block = client.get_block(BlockId::Height(17)).await.unwrap();
    assert_eq!(block.certificate.epoch, 1);
    block
        .certificate
        .verify_header(&block.block.header, &set)
        .unwrap();
    assert!(
        block
            .certificate
            .verify_header(&block.block.header, &genesis)
            .is_err()
    );
    // A set the genesis does not lead to is refused.
    let stranger = ValidatorSet::new(vec![Validator {
        address: key(9).address(),
        public_key: key(9).public_key(),
        power: 1,
    }])
    .unwrap();
    assert!(matches!(
        client.validators_for_block(17, CHAIN, &stranger).await,
        Err(stele_client::ClientError::Verify(VerifyError::SetChain {
            height: 16,
            ..
        }))
    ));

    // Epoch 2: validator 100 leaves, by four of the five.
    let four = ValidatorSet::new(
        five.validators()
            .iter()
            .filter(|v| v.address != key(100).address())
            .cloned()
            .collect(),
    )
    .unwrap();
    for (voter, nonce) in [(101, 1), (102, 1), (103, 0), (104, 0)] {
        let vote = signed(
            voter,
            nonce,
            1_000_000,
            TxPayload::VoteValidators {
                epoch: 1,
                validators: four.validators().to_vec(),
                possession: vec![],
            },
        );
        client.send_transaction(&vote.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let pending = client.get_validators(None).await.unwrap().pending;
    assert_eq!(pending.map(|p| p.last_height), Some(32));
    while node.height() < 35 {
        node.commit().await;
    }
    for (height, set) in [
        (16, &genesis),
        (17, &five),
        (32, &five),
        (33, &four),
        (35, &four),
    ] {
        assert_eq!(
            &client
                .validators_for_block(height, CHAIN, &genesis)
                .await
                .unwrap(),
            set,
            "block {height}"
        );
    }

    // Once the state of those heights is pruned, the epoch history answers
    // the same, and the walk from the genesis still works.
    let mut before = Vec::new();
    for h in 0..=35 {
        before.push(client.get_validators(Some(h)).await.unwrap());
    }
    while node.height() < 40 {
        node.commit().await;
    }
    node.state.write().unwrap().prune().unwrap();
    let oldest = node.state.read().unwrap().oldest_version().unwrap();
    assert!(oldest > 35, "pruned to {oldest}");
    for (h, info) in before.iter().enumerate() {
        assert_eq!(
            &client.get_validators(Some(h as u64)).await.unwrap(),
            info,
            "height {h}"
        );
    }
    assert_eq!(
        client
            .validators_for_block(35, CHAIN, &genesis)
            .await
            .unwrap(),
        four
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_protocol_shows_the_scheduled_upgrade_and_then_the_new_parameters() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    for (nonce, to) in (100..=103).enumerate() {
        let tx = signed(
            1,
            nonce as u64,
            100_000,
            TxPayload::Transfer {
                to: key(to).address(),
                amount: 10u128.pow(20),
            },
        );
        client.send_transaction(&tx.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let genesis = client.get_protocol(None).await.unwrap();
    assert_eq!((genesis.height, &genesis.scheduled), (1, &None));
    let next = ProtocolParams {
        tx_gas_base: 30_000,
        ..genesis.active.clone()
    };
    for voter in [100, 101, 102] {
        let vote = signed(
            voter,
            0,
            1_000_000,
            TxPayload::VoteUpgrade {
                epoch: 0,
                activation_height: 40,
                params: next.clone(),
            },
        );
        client.send_transaction(&vote.to_bytes()).await.unwrap();
    }
    node.commit().await;
    let scheduled = client.get_protocol(None).await.unwrap();
    assert_eq!(scheduled.active, genesis.active);
    let s = scheduled.scheduled.expect("three of four voted");
    assert_eq!(
        (
            &s.params,
            s.activation_height,
            s.decided_at,
            s.epoch,
            &s.unsupported
        ),
        (&next, 40, 2, 0, &None)
    );
    // The state at height 1 knew nothing of it.
    assert_eq!(client.get_protocol(Some(1)).await.unwrap(), genesis);
    while node.height() < 39 {
        node.commit().await;
    }
    let now = client.get_protocol(None).await.unwrap();
    assert_eq!((&now.active, &now.scheduled), (&next, &None));
    // Block 40 charges the new base.
    let tx = signed(
        1,
        4,
        100_000,
        TxPayload::Transfer {
            to: key(2).address(),
            amount: 1,
        },
    );
    let hash = client.send_transaction(&tx.to_bytes()).await.unwrap();
    node.commit().await;
    let r = client.get_receipt(hash).await.unwrap();
    assert_eq!(r.block_height, 40);
    assert_eq!(r.receipt.gas_used, next.intrinsic_gas(tx.to_bytes().len()));
}

/// ADR 0012: a height whose block was pruned says so (not "not found"),
/// and `get_status` names the lowest block the node keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_block_is_answered_as_pruned() {
    let node = TestNode::start(RpcConfig::default()).await;
    let client = Client::connect(&node.http()).await.unwrap();
    for _ in 0..10 {
        node.commit().await;
    }
    assert_eq!(client.get_status().await.unwrap().blocks_from, 1);
    stele_node::store::prune_blocks_below(&node.state, 6).unwrap();
    let pruned = client.get_block(BlockId::Height(3)).await;
    let message = format!("{pruned:?}");
    assert_eq!(code(pruned), codes::HEIGHT_UNAVAILABLE);
    assert!(
        message.contains("pruned") && message.contains("from 6"),
        "{message}"
    );
    assert!(client.get_block(BlockId::Height(6)).await.is_ok());
    assert_eq!(client.get_status().await.unwrap().blocks_from, 6);
}
