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
//! Today the backends are validators; once full nodes exist they are what
//! belongs behind the balancer.
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
    let mut config = ClusterConfig::new(env!("CARGO_BIN_EXE_stele-node"), validators);
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
    let all: Vec<usize> = (0..validators).collect();
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

/// A killed backend is marked DOWN within seconds (in both backends of the
/// HTTP configuration), every request then goes to the other and
/// succeeds, and the restarted node is taken back.
#[test]
fn a_killed_backend_is_marked_down_within_seconds_and_traffic_goes_to_the_other() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        // Four validators: with one down the others stay ready (/health
        // needs 2f peers).
        let mut cluster = cluster_with_rate(4, 100_000, &[]).await;
        let backends = [cluster.rpc_addr(1), cluster.rpc_addr(2)];
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
        cluster.kill(1).unwrap();
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

        cluster.restart(1).await.unwrap();
        let up = lb
            .wait_status("stele_http", 0, "UP", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(down < Duration::from_secs(5), "DOWN after {down:?}");
        assert!(up < Duration::from_secs(10), "UP after {up:?}");
    });
}

/// A WebSocket through HAProxy (the sticky backend) is upgraded and its
/// subscription receives every new block for several seconds.
#[test]
fn a_websocket_subscription_through_haproxy_receives_new_blocks() {
    let (_one, runtime) = exclusive_runtime();
    runtime.block_on(async {
        let cluster = cluster_with_rate(1, 100_000, &[]).await;
        let lb = Haproxy::start(Mode::Http, &[cluster.rpc_addr(0)], LB_SOURCE.into())
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
