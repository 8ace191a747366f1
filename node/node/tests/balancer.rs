//! Nodes behind HAProxy configured from the shipped `docs/haproxy.cfg`
//! (HTTP mode, `X-Forwarded-For`) and `docs/haproxy-tcp.cfg` (TCP mode,
//! PROXY protocol v2): real `stele-node` processes (`stele-cluster`), real
//! HAProxy (`stele_cluster::haproxy`; Debian's package, installed by
//! `scripts/env.sh`). Each node sees the balancer's clients by their own
//! addresses, a dead node is taken out of rotation within seconds, and a
//! WebSocket subscription lives through the balancer.
//!
//! HAProxy connects to the nodes from 127.0.0.9, the one address the
//! nodes trust as a proxy; the harness's own calls come from 127.0.0.1
//! and the test's clients from 127.0.0.2 and up (all of 127.0.0.0/8 is
//! loopback), so each is a client address of its own.
//!
//! The rate-limit tests put one validator behind the balancer; the rest
//! put full nodes there (ADR 0009), in front of validators that serve no
//! client.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stele_client::Client;
use stele_cluster::cluster::{Cluster, ClusterConfig};
use stele_cluster::haproxy::{Haproxy, Mode};
use stele_cluster::rawnet;
use tokio::io::AsyncWriteExt;

/// The address HAProxy connects to the nodes from.
const LB_SOURCE: [u8; 4] = [127, 0, 0, 9];

/// One cluster at a time in this binary (they share two cores).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive_runtime() -> (MutexGuard<'static, ()>, tokio::runtime::Runtime) {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    (one, runtime)
}

/// `validators` validators that trust the balancer's address as a proxy,
/// with `rate_per_s` requests a second per client address (twice that at
/// once) and the `[rpc]` keys `rpc`, once every node has committed a
/// block.
async fn cluster_with_rate(
    validators: usize,
    rate_per_s: u32,
    rpc: &[(&str, toml::Value)],
) -> Cluster {
    cluster_of(validators, 0, rate_per_s, rpc).await
}

/// [`cluster_with_rate`] with `full_nodes` full nodes beside the
/// validators.
async fn cluster_of(
    validators: usize,
    full_nodes: usize,
    rate_per_s: u32,
    rpc: &[(&str, toml::Value)],
) -> Cluster {
    let mut config = ClusterConfig::new(env!("CARGO_BIN_EXE_stele-node"), validators);
    config.full_nodes = full_nodes;
    config.rpc_rate_per_s = rate_per_s;
    config.relays = false;
    config.log_level = "warn".into();
    config.rpc_extra.insert(
        "trusted_proxies".into(),
        toml::Value::Array(vec![IpAddr::from(LB_SOURCE).to_string().into()]),
    );
    for (k, v) in rpc {
        config.rpc_extra.insert((*k).into(), v.clone());
    }
    let cluster = Cluster::start(config).await.unwrap();
    let all: Vec<usize> = (0..cluster.len()).collect();
    cluster
        .wait_height(&all, 1, Duration::from_secs(60))
        .await
        .unwrap();
    cluster
}

const GET_STATUS: &str = r#"{"jsonrpc":"2.0","id":1,"method":"get_status","params":[]}"#;

/// A `get_status` POST from `source` through `lb` on a new connection,
/// with `X-Forwarded-For: forged` if given; the HTTP status.
async fn status_from(source: [u8; 4], lb: SocketAddr, forged: Option<&str>) -> u16 {
    let mut s = rawnet::connect_from(source.into(), lb, None).await.unwrap();
    let forged = forged.map_or(String::new(), |f| format!("X-Forwarded-For: {f}\r\n"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: stele\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{forged}Connection: close\r\n\r\n{GET_STATUS}",
        GET_STATUS.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), rawnet::read_answer(&mut s))
        .await
        .unwrap()
        .unwrap();
    answer.status
}

/// Client `a` spends its budget (until two 429s in a row: every backend
/// refuses it), bounded by `tries`; how many requests passed.
async fn exhaust(a: [u8; 4], lb: SocketAddr, tries: usize) -> usize {
    let (mut passed, mut refused_in_a_row) = (0, 0);
    for _ in 0..tries {
        match status_from(a, lb, None).await {
            200 => {
                passed += 1;
                refused_in_a_row = 0;
            }
            429 => {
                refused_in_a_row += 1;
                if refused_in_a_row == 2 {
                    return passed;
                }
            }
            other => panic!("unexpected HTTP {other}"),
        }
    }
    panic!("{a:?} was never refused in {tries} requests");
}

/// The per-address checks through a balancer: a client that spends its
/// budget is refused, forging `X-Forwarded-For` does not help it, and
/// another client is served meanwhile.
async fn each_client_has_its_own_budget(lb: SocketAddr) {
    let (a, b) = ([127, 0, 0, 2], [127, 0, 0, 3]);
    let passed = exhaust(a, lb, 100).await;
    assert!(passed >= 5, "{passed} passed before the limit");
    assert_eq!(status_from(a, lb, Some("127.0.0.200")).await, 429);
    assert_eq!(status_from(b, lb, None).await, 200);
    assert_eq!(status_from(b, lb, None).await, 200);
}

/// HTTP mode: the node reads each client from the `X-Forwarded-For`
/// HAProxy adds, so one client spending its rate limit through the
/// balancer does not lock out another.
#[test]
fn through_haproxy_in_http_mode_each_forwarded_client_has_its_own_rate_limit() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        // 5 tokens a second, 10 at once, per address.
        let cluster = cluster_with_rate(1, 5, &[]).await;
        let lb = Haproxy::start(Mode::Http, &[cluster.rpc_addr(0)], LB_SOURCE.into())
            .await
            .unwrap();
        lb.wait_status("stele_http", 0, "UP", Duration::from_secs(5))
            .await
            .unwrap();
        each_client_has_its_own_budget(lb.addr()).await;
        // The balancer's own health checks (its own bucket) kept it UP.
        assert_eq!(lb.status("stele_http", 0).await.unwrap(), "UP");
    });
}

/// TCP mode with `send-proxy-v2` and `rpc.proxy_protocol`: the node reads
/// each client from the PROXY header, for the rate limit and the
/// per-address connection cap; the health checks (LOCAL) pass.
#[test]
fn through_haproxy_in_tcp_mode_the_proxy_header_names_each_client() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let cluster = cluster_with_rate(
            1,
            5,
            &[
                ("proxy_protocol", true.into()),
                ("connections_per_ip_max", 4.into()),
            ],
        )
        .await;
        let lb = Haproxy::start(Mode::Tcp, &[cluster.rpc_addr(0)], LB_SOURCE.into())
            .await
            .unwrap();
        lb.wait_status("stele_tcp", 0, "UP", Duration::from_secs(5))
            .await
            .unwrap();
        each_client_has_its_own_budget(lb.addr()).await;
        // Four connections held open by one client through the balancer;
        // its fifth is refused by the node, another client's is not.
        let c = [127, 0, 0, 4];
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(
                rawnet::connect_from(c.into(), lb.addr(), None)
                    .await
                    .unwrap(),
            );
        }
        // HAProxy opens each backend connection (and sends its header) as
        // the client connects; give them a moment to arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut fifth = rawnet::connect_from(c.into(), lb.addr(), None)
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), rawnet::read_answer(&mut fifth))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.status, 429);
        assert!(
            String::from_utf8_lossy(&answer.body).contains("too many open connections"),
            "{answer:?}"
        );
        assert_eq!(status_from([127, 0, 0, 5], lb.addr(), None).await, 200);
        drop(held);
        assert_eq!(lb.status("stele_tcp", 0).await.unwrap(), "UP");
    });
}

/// A killed backend (a full node) is marked DOWN within seconds (in both
/// backends of the HTTP configuration), every request then goes to the
/// other and succeeds, and the restarted node is taken back.
#[test]
fn a_killed_backend_is_marked_down_within_seconds_and_traffic_goes_to_the_other() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let mut cluster = cluster_of(1, 2, 100_000, &[]).await;
        let (f0, f1) = (cluster.full_node(0), cluster.full_node(1));
        let backends = [cluster.rpc_addr(f0), cluster.rpc_addr(f1)];
        let lb = Haproxy::start(Mode::Http, &backends, LB_SOURCE.into())
            .await
            .unwrap();
        for i in 0..2 {
            lb.wait_status("stele_http", i, "UP", Duration::from_secs(5))
                .await
                .unwrap();
        }
        let client = Client::connect(&lb.http_url()).await.unwrap();
        for _ in 0..4 {
            client.get_status().await.unwrap();
        }
        let before = lb.server("stele_http", 0).await.unwrap().sessions;
        assert!(before > 0, "round robin never reached node0");

        // SIGKILL the node behind server node0.
        cluster.kill(f0).unwrap();
        let down = lb
            .wait_status("stele_http", 0, "DOWN", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(lb.status("stele_ws", 0).await.unwrap(), "DOWN");
        let served_before = lb.server("stele_http", 1).await.unwrap().sessions;
        for _ in 0..10 {
            client.get_status().await.unwrap();
        }
        assert_eq!(lb.server("stele_http", 0).await.unwrap().sessions, before);
        // Each request is a session of its own (HTTP mode).
        assert_eq!(
            lb.server("stele_http", 1).await.unwrap().sessions,
            served_before + 10
        );

        cluster.restart(f0).await.unwrap();
        let up = lb
            .wait_status("stele_http", 0, "UP", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(down < Duration::from_secs(5), "DOWN after {down:?}");
        assert!(up < Duration::from_secs(10), "UP after {up:?}");
    });
}

/// A WebSocket through HAProxy (the sticky backend) to a full node is
/// upgraded and its subscription receives every new block for several
/// seconds.
#[test]
fn a_websocket_subscription_through_haproxy_receives_new_blocks() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let cluster = cluster_of(1, 1, 100_000, &[]).await;
        let full = cluster.rpc_addr(cluster.full_node(0));
        let lb = Haproxy::start(Mode::Http, &[full], LB_SOURCE.into())
            .await
            .unwrap();
        lb.wait_status("stele_http", 0, "UP", Duration::from_secs(5))
            .await
            .unwrap();
        let client = Client::connect(&lb.ws_url()).await.unwrap();
        let mut blocks = client.subscribe_new_blocks().await.unwrap();
        let start = Instant::now();
        let mut heights = Vec::new();
        while start.elapsed() < Duration::from_secs(3) {
            let block = tokio::time::timeout(Duration::from_secs(5), blocks.next())
                .await
                .expect("a block within 5 s")
                .expect("the subscription is open")
                .unwrap();
            heights.push(block.header.height);
        }
        // An empty block every 300 ms: about ten in three seconds, each
        // the next height.
        assert!(heights.len() >= 5, "{heights:?}");
        assert!(heights.windows(2).all(|w| w[1] == w[0] + 1), "{heights:?}");
        assert!(lb.server("stele_ws", 0).await.unwrap().sessions >= 1);
        assert_eq!(lb.server("stele_http", 0).await.unwrap().sessions, 0);
    });
}

/// The chain's genesis validator set, read from the cluster's testnet.
fn validator_set(cluster: &Cluster) -> (u64, stele_types::ValidatorSet) {
    let genesis =
        stele_node::genesis::Genesis::load(&cluster.root().join("net/node0/genesis.json")).unwrap();
    (genesis.chain_id, genesis.validators)
}

/// `call` until it succeeds (at most `tries` times, a moment apart): what
/// a client does with a read that met a node on its way down.
async fn retried<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    tries: usize,
    mut call: impl FnMut() -> F,
) -> T {
    let mut last = String::new();
    for _ in 0..tries {
        match call().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("failed {tries} times: {last}");
}

/// Issue 26's topology on real processes: 4 validators, 2 full nodes,
/// HAProxy in front of the full nodes. A client through the balancer
/// deploys a contract, calls it, follows its events on a WebSocket and
/// reads a storage proof it verifies against the genesis validators; one
/// full node is killed and restarted meanwhile, and the client meets no
/// error beyond a retried read; every answer agrees with the validators'
/// chain.
#[test]
fn a_client_through_haproxy_and_full_nodes_deploys_calls_subscribes_and_verifies() {
    use stele_client::api::EventFilter;
    use stele_client::{Signer, TxBuilder, verify_storage_proof};
    use stele_types::{Address, Hash, codec::Encode};

    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let mut cluster = cluster_of(4, 2, 100_000, &[]).await;
        let (f0, f1) = (cluster.full_node(0), cluster.full_node(1));
        let backends = [cluster.rpc_addr(f0), cluster.rpc_addr(f1)];
        let lb = Haproxy::start(Mode::Http, &backends, LB_SOURCE.into())
            .await
            .unwrap();
        for i in 0..2 {
            lb.wait_status("stele_http", i, "UP", Duration::from_secs(10))
                .await
                .unwrap();
        }
        let (chain_id, validators) = validator_set(&cluster);
        let http = Client::connect(&lb.http_url()).await.unwrap();
        let ws = Client::connect(&lb.ws_url()).await.unwrap();
        let signer = Signer::new(cluster.accounts[0].key.clone());
        let tx = |nonce: u64| TxBuilder::new(chain_id).nonce(nonce).gas_limit(10_000_000);
        let wait = Duration::from_secs(30);

        // Deploy, through the balancer.
        let code = wat::parse_str(stele_fixtures::COUNTER_WAT).unwrap();
        let (deploy, _, _) = signer.sign(tx(0).deploy(code, Vec::new(), 0));
        let receipt = http
            .send_and_wait(&deploy.to_bytes(), None, wait)
            .await
            .unwrap();
        let contract: Address = receipt
            .receipt
            .contract_address
            .unwrap_or_else(|| panic!("not deployed: {receipt:?}"));

        // Its events, on a WebSocket kept on one full node (sticky).
        let topic = Hash([b'T'; 32]);
        let mut events = ws
            .subscribe_events(EventFilter {
                contract: Some(contract),
                topics: vec![Some(topic)],
            })
            .await
            .unwrap();
        // Kill the full node that does not hold the WebSocket.
        let ws_on_f0 = lb.server("stele_ws", 0).await.unwrap().sessions > 0;
        let (victim, victim_server) = if ws_on_f0 { (f1, 1) } else { (f0, 0) };
        cluster.kill(victim).unwrap();

        // Calls while it is down, then after it is back: sends succeed
        // (the balancer retries a refused connection elsewhere).
        let mut heights = Vec::new();
        for nonce in 1..=4u64 {
            if nonce == 3 {
                cluster.restart(victim).await.unwrap();
            }
            let (call, _, _) = signer.sign(tx(nonce).call(contract, "increment", Vec::new(), 0));
            let r = http
                .send_and_wait(&call.to_bytes(), None, wait)
                .await
                .unwrap();
            heights.push(r.block_height);
        }
        for n in 1..=4u64 {
            let event = tokio::time::timeout(wait, events.next())
                .await
                .expect("an event within 30 s")
                .expect("the subscription is open")
                .unwrap();
            assert_eq!(event.event.data, n.to_le_bytes(), "event {n}");
        }
        lb.wait_status("stele_http", victim_server, "UP", Duration::from_secs(30))
            .await
            .unwrap();

        // A storage proof through the balancer, checked against the
        // genesis validators: nobody on the path is trusted. At the last
        // call's height: the balancer may pick a full node a block behind
        // the one that saw the receipt, which answers once it has it.
        let last = *heights.last().unwrap();
        let proof = retried(25, || http.get_storage_proof(contract, b"n", Some(last))).await;
        verify_storage_proof(&proof, chain_id, &validators).unwrap();
        assert_eq!(proof.value.unwrap().0, 4u64.to_le_bytes());
        // Full nodes keep the indexes: the key's four writes, newest first,
        // and its events from the index (again once the node has `last`).
        let history = retried(25, || async {
            let page = http
                .get_storage_history(contract, b"n", 10, None)
                .await
                .map_err(|e| e.to_string())?;
            match page.changes.first().map(|c| c.block_height) {
                Some(h) if h == last => Ok(page),
                newest => Err(format!("the newest write is at {newest:?}, not yet {last}")),
            }
        })
        .await;
        let written: Vec<u64> = history.changes.iter().map(|c| c.block_height).collect();
        let mut newest_first = heights.clone();
        newest_first.reverse();
        assert_eq!(written, newest_first);
        let filter = EventFilter {
            contract: Some(contract),
            topics: vec![Some(topic)],
        };
        let page = retried(25, || async {
            let page = http
                .get_events(filter.clone(), 1, None, 100)
                .await
                .map_err(|e| e.to_string())?;
            match page.events.len() {
                4 => Ok(page),
                n => Err(format!("{n} events indexed, not yet 4")),
            }
        })
        .await;
        assert_eq!(page.events.len(), 4);

        // Every block the calls landed in is the validators' block.
        let validator = cluster.client(0);
        for h in heights {
            let id = stele_client::api::BlockId::Height(h);
            let through = retried(5, || http.get_block(id)).await;
            let direct = retried(10, || validator.get_block(id)).await;
            assert_eq!(through.hash, direct.hash, "height {h}");
        }
        // The restarted full node caught up and serves the same chain.
        let top = validator.get_status().await.unwrap().height;
        cluster
            .wait_height(&[victim], top, Duration::from_secs(30))
            .await
            .unwrap();
        let id = stele_client::api::BlockId::Height(top);
        assert_eq!(
            cluster.client(victim).get_block(id).await.unwrap().hash,
            validator.get_block(id).await.unwrap().hash
        );
        let status = cluster.client(victim).get_status().await.unwrap();
        assert!(status.full_node);
    });
}

/// A full node stopped for 30 s (SIGSTOP) reports not ready from the
/// moment it runs again until it has caught up, and the balancer sends it
/// no traffic meanwhile.
#[test]
fn a_paused_full_node_is_unready_until_it_catches_up_and_gets_no_traffic() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let mut cluster = cluster_of(1, 1, 100_000, &[]).await;
        let full = cluster.full_node(0);
        let lb = Haproxy::start(Mode::Http, &[cluster.rpc_addr(full)], LB_SOURCE.into())
            .await
            .unwrap();
        lb.wait_status("stele_http", 0, "UP", Duration::from_secs(10))
            .await
            .unwrap();
        cluster.pause(full).unwrap();
        lb.wait_status("stele_http", 0, "DOWN", Duration::from_secs(10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let sessions = lb.server("stele_http", 0).await.unwrap().sessions;
        cluster.resume(full).unwrap();
        let rpc = cluster.rpc_addr(full);
        let validator = cluster.client(0);
        let (mut unready, deadline) = (0, Instant::now() + Duration::from_secs(60));
        loop {
            let (code, body) = health(rpc).await;
            if code == 200 {
                // Ready only once within the lag allowed (16 blocks).
                let at = cluster.client(full).get_status().await.unwrap().height;
                let chain = validator.get_status().await.unwrap().height;
                assert!(
                    chain <= at + 16 + 2,
                    "ready at {at} with the chain at {chain}"
                );
                break;
            }
            assert_eq!(code, 503, "{body}");
            unready += 1;
            assert!(Instant::now() < deadline, "never ready again: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(unready > 0, "ready at once after a 30 s pause");
        // Nothing reached it through the balancer while it was behind.
        assert_eq!(lb.server("stele_http", 0).await.unwrap().sessions, sessions);
        lb.wait_status("stele_http", 0, "UP", Duration::from_secs(10))
            .await
            .unwrap();
    });
}

/// `GET /health` on `rpc`: the HTTP status and body.
async fn health(rpc: SocketAddr) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let Ok(mut s) = tokio::net::TcpStream::connect(rpc).await else {
        return (0, "no connection".into());
    };
    let request = "GET /health HTTP/1.1\r\nHost: stele\r\nConnection: close\r\n\r\n";
    if s.write_all(request.as_bytes()).await.is_err() {
        return (0, "write failed".into());
    }
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}
