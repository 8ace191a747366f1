//! The validator transport on real QUIC sockets on loopback.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use stele_node::net::*;
use stele_types::{SecretKey, Validator, ValidatorSet};
use tokio::time::{Instant, sleep, timeout};

const CHAIN: u64 = 77;
const WAIT: Duration = Duration::from_secs(15);

fn key(n: u16) -> SecretKey {
    stele_fixtures::key(u64::from(n) + 1)
}

fn set_of(keys: &[SecretKey]) -> ValidatorSet {
    let mut v: Vec<Validator> = keys
        .iter()
        .map(|k| Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: 1,
        })
        .collect();
    v.sort_by_key(|v| v.address);
    ValidatorSet::new(v).unwrap()
}

struct Node {
    net: Network,
    rx: InboundQueues,
}

fn sockets(n: usize) -> Vec<UdpSocket> {
    (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect()
}

fn start_all(keys: &[SecretKey], set: &ValidatorSet, configs: &[NetConfig]) -> Vec<Node> {
    let socks = sockets(keys.len());
    let infos: Vec<PeerInfo> = keys
        .iter()
        .zip(&socks)
        .map(|(k, s)| PeerInfo {
            address: k.address(),
            socket: s.local_addr().unwrap(),
        })
        .collect();
    keys.iter()
        .zip(socks)
        .zip(configs)
        .map(|((k, sock), cfg)| {
            let (net, rx) = Network::start_on(
                cfg.clone(),
                k.clone(),
                CHAIN,
                set.clone(),
                sock,
                infos.clone(),
            )
            .unwrap();
            Node { net, rx }
        })
        .collect()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// Next message on `channel`, skipping connection events.
async fn next_message(rx: &mut InboundQueues) -> (stele_types::Address, Channel, Vec<u8>) {
    loop {
        match timeout(WAIT, rx.events.recv()).await.unwrap().unwrap() {
            Inbound::Message {
                from,
                channel,
                payload,
                ..
            } => return (from, channel, payload),
            Inbound::EpochAhead { .. } => panic!("the transport reports no epochs"),
            Inbound::PeerConnected(_) | Inbound::PeerDisconnected(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_exchange_consensus_gossip_and_sync() {
    let keys: Vec<SecretKey> = (0..4).map(key).collect();
    let set = set_of(&keys);
    let mut nodes = start_all(&keys, &set, &vec![NetConfig::default(); 4]);
    until("full mesh", || {
        nodes.iter().all(|n| n.net.connected().len() == 3)
    })
    .await;

    for (i, node) in nodes.iter().enumerate() {
        node.net
            .broadcast(Channel::Consensus, Arc::from(vec![i as u8; 100]));
        node.net
            .broadcast(Channel::Gossip, Arc::from(vec![i as u8; 10]));
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let (from, channel, payload) = next_message(&mut node.rx).await;
            let sender = keys.iter().position(|k| k.address() == from).unwrap();
            assert_ne!(sender, i, "a node never hears itself");
            assert!(payload.iter().all(|b| *b == sender as u8));
            seen.push((sender, channel));
        }
        seen.sort();
        let mut expected: Vec<(usize, Channel)> = (0..4)
            .filter(|s| *s != i)
            .flat_map(|s| [(s, Channel::Consensus), (s, Channel::Gossip)])
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    // Block sync: node 0 asks node 1, which answers from its sync queue.
    let (first, rest) = nodes.split_at_mut(1);
    let server = &mut rest[0];
    let responder = tokio::spawn({
        let mut rx = std::mem::replace(&mut server.rx.sync, tokio::sync::mpsc::channel(1).1);
        async move {
            if let Some(InboundSync {
                request, respond, ..
            }) = rx.recv().await
            {
                let mut response = request.clone();
                response.reverse();
                respond.respond(response);
            }
        }
    });
    let response = first[0]
        .net
        .request(&keys[1].address(), b"height 7")
        .await
        .unwrap();
    assert_eq!(response, b"7 thgieh");
    responder.await.unwrap();
    for n in &nodes {
        n.net.shutdown().await;
    }
}

/// A node that does not keep up with consensus messages (a flood, or a
/// driver busy with a block) still answers block-sync requests: they have
/// their own queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_are_delivered_while_the_event_queue_is_full() {
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let set = set_of(&keys);
    let small = NetConfig {
        inbound_queue_max: 2,
        ..NetConfig::default()
    };
    let mut nodes = start_all(&keys, &set, &[NetConfig::default(), small]);
    until("connected", || nodes[0].net.connected().len() == 1).await;
    // Nobody reads node 1's events: the queue fills and its reader waits.
    for i in 0..64u8 {
        nodes[0].net.send(
            &keys[1].address(),
            Channel::Consensus,
            Arc::from(vec![i; 100]),
        );
    }
    // Full (its first event is the connection), and one more message
    // read, waiting for room.
    let metrics = nodes[1].net.metrics();
    until("the event queue full", || {
        nodes[1].rx.events.len() == 2 && metrics.msgs_in(Channel::Consensus) >= 2
    })
    .await;
    let mut sync = std::mem::replace(&mut nodes[1].rx.sync, tokio::sync::mpsc::channel(1).1);
    let responder = tokio::spawn(async move {
        if let Some(InboundSync { respond, .. }) = sync.recv().await {
            respond.respond(b"answered".to_vec());
        }
    });
    let response = timeout(WAIT, nodes[0].net.request(&keys[1].address(), b"blocks"))
        .await
        .expect("the sync request waited behind the full event queue")
        .unwrap();
    assert_eq!(response, b"answered");
    responder.await.unwrap();
    assert_eq!(
        nodes[1].rx.events.len(),
        2,
        "the event queue stayed full throughout"
    );
    for n in &nodes {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_validator_set_cannot_connect_where_no_follower_is_taken() {
    let validator = key(0);
    // The outsider must be the dialer: the lower address dials.
    let outsider = (1..500)
        .map(key)
        .find(|k| k.address() < validator.address())
        .unwrap();
    let real_set = set_of(std::slice::from_ref(&validator));
    // The outsider believes it is a validator.
    let fake_set = set_of(&[validator.clone(), outsider.clone()]);
    let socks = sockets(2);
    let v_addr = socks[0].local_addr().unwrap();
    let mut socks = socks.into_iter();
    let no_followers = NetConfig {
        followers_max: 0,
        ..NetConfig::default()
    };
    let (v_net, mut v_rx) = Network::start_on(
        no_followers,
        validator.clone(),
        CHAIN,
        real_set,
        socks.next().unwrap(),
        vec![],
    )
    .unwrap();
    let (o_net, _o_rx) = Network::start_on(
        NetConfig::default(),
        outsider.clone(),
        CHAIN,
        fake_set,
        socks.next().unwrap(),
        vec![PeerInfo {
            address: validator.address(),
            socket: v_addr,
        }],
    )
    .unwrap();
    let metrics = v_net.metrics();
    until("refused handshakes", || metrics.handshake_failures() >= 2).await;
    assert!(metrics.followers_refused() >= 2);
    assert!(v_net.connected_peers().is_empty());
    assert!(o_net.connected().is_empty());
    o_net.broadcast(Channel::Consensus, Arc::from(vec![1u8; 10]));
    sleep(Duration::from_millis(200)).await;
    assert!(
        v_rx.events.try_recv().is_err(),
        "nothing from the outsider arrives"
    );
    o_net.shutdown().await;
    v_net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_stops_the_stream_and_is_counted() {
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let set = set_of(&keys);
    let strict = NetConfig {
        consensus_frame_bytes_max: 1024,
        ..NetConfig::default()
    };
    let mut nodes = start_all(&keys, &set, &[NetConfig::default(), strict]);
    until("connection", || {
        nodes.iter().all(|n| n.net.connected().len() == 1)
    })
    .await;
    let to = keys[1].address();
    nodes[0]
        .net
        .send(&to, Channel::Consensus, Arc::from(vec![9u8; 4096]));
    let metrics = nodes[1].net.metrics();
    until("oversized drop", || {
        metrics.dropped(DropReason::Oversized) == 1
    })
    .await;
    // The sender reopens its stream; small messages flow again.
    let deadline = Instant::now() + WAIT;
    let got = loop {
        nodes[0]
            .net
            .send(&to, Channel::Consensus, Arc::from(vec![1u8; 10]));
        if let Ok(Some(Inbound::Message { payload, .. })) =
            timeout(Duration::from_millis(100), nodes[1].rx.events.recv()).await
        {
            break payload;
        }
        assert!(Instant::now() < deadline, "no message after the reset");
    };
    assert_eq!(got, vec![1u8; 10]);
    assert_eq!(metrics.dropped(DropReason::Oversized), 1);
    for n in &nodes {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_is_reconnected() {
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let set = set_of(&keys);
    let mut nodes = start_all(&keys, &set, &vec![NetConfig::default(); 2]);
    until("connection", || {
        nodes.iter().all(|n| n.net.connected().len() == 1)
    })
    .await;
    // Restart whichever node is not the dialer, on the same port.
    let (dialer, listener) = if keys[0].address() < keys[1].address() {
        (0, 1)
    } else {
        (1, 0)
    };
    let port = nodes[listener].net.local_addr().unwrap();
    let old = nodes.remove(listener);
    let dialer = if dialer > listener {
        dialer - 1
    } else {
        dialer
    };
    old.net.shutdown().await;
    drop(old);
    until("disconnect", || nodes[dialer].net.connected().is_empty()).await;
    // The old endpoint releases its socket once its last task has ended.
    let deadline = Instant::now() + WAIT;
    let (restarted, mut rx) = loop {
        match Network::start(
            NetConfig::default(),
            keys[listener].clone(),
            CHAIN,
            set.clone(),
            port,
            vec![],
        ) {
            Ok(started) => break started,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        sleep(Duration::from_millis(20)).await;
    };
    until("reconnect", || {
        restarted.connected().len() == 1 && nodes[dialer].net.connected().len() == 1
    })
    .await;
    nodes[dialer].net.send(
        &keys[listener].address(),
        Channel::Consensus,
        Arc::from(vec![5u8; 5]),
    );
    let (from, channel, payload) = next_message(&mut rx).await;
    assert_eq!(
        (from, channel, payload),
        (
            keys[1 - listener].address(),
            Channel::Consensus,
            vec![5u8; 5]
        )
    );
    restarted.shutdown().await;
    nodes[dialer].net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_mixed_sizes_arrives_whole_and_in_order() {
    // Queued messages leave in shared stream writes (small ones copied
    // together, large ones in place); the receiver must still see each
    // message once, whole, in the order it was sent.
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let set = set_of(&keys);
    let mut nodes = start_all(&keys, &set, &vec![NetConfig::default(); 2]);
    until("connected", || {
        nodes.iter().all(|n| n.net.connected().len() == 1)
    })
    .await;
    let to = keys[1].address();
    let size = |i: usize| match i % 50 {
        0 => 200 << 10,
        7 => (64 << 10) + 1,
        _ => 1 + i % 300,
    };
    let message = |i: usize| -> Vec<u8> {
        let mut m = (i as u32).to_le_bytes().to_vec();
        m.resize(size(i).max(4), (i % 251) as u8);
        m
    };
    let count = 400;
    for i in 0..count {
        nodes[0]
            .net
            .send(&to, Channel::Consensus, Arc::from(message(i)));
    }
    for i in 0..count {
        let (from, channel, payload) = next_message(&mut nodes[1].rx).await;
        assert_eq!((from, channel), (keys[0].address(), Channel::Consensus));
        assert_eq!(payload, message(i), "message {i}");
    }
}

/// Starts one validator's transport on `sock` knowing `peers`.
fn start_one(
    config: NetConfig,
    key: &SecretKey,
    set: &ValidatorSet,
    sock: UdpSocket,
    peers: Vec<PeerInfo>,
) -> Node {
    let (net, rx) =
        Network::start_on(config, key.clone(), CHAIN, set.clone(), sock, peers).unwrap();
    Node { net, rx }
}

/// Two keys, the first with the lower address (the dialer).
fn dialer_and_listener() -> (SecretKey, SecretKey) {
    let (a, b) = (key(0), key(1));
    if a.address() < b.address() {
        (a, b)
    } else {
        (b, a)
    }
}

/// A QUIC client on another loopback address (`from`, e.g. 127.0.0.2) that
/// completes the TLS handshake with `target` and then never proves a key:
/// it holds `attempts` such connections open at all times until aborted.
fn stalled_handshake_flood(
    from: std::net::Ipv4Addr,
    target: std::net::SocketAddr,
    attempts: usize,
) -> tokio::task::JoinSet<()> {
    let mut endpoint = quinn::Endpoint::client((from, 0).into()).unwrap();
    endpoint.set_default_client_config(testing::client_config().unwrap());
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..attempts {
        let endpoint = endpoint.clone();
        flood.spawn(async move {
            loop {
                match endpoint.connect(target, "stele-validator").unwrap().await {
                    // Hold it without a word until the listener gives up.
                    Ok(conn) => {
                        conn.closed().await;
                    }
                    Err(_) => sleep(Duration::from_millis(50)).await,
                }
            }
        });
    }
    flood
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_stalled_handshakes_from_one_host_does_not_lock_out_a_validator() {
    let (dialer, listener) = dialer_and_listener();
    let set = set_of(&[dialer.clone(), listener.clone()]);
    let socks = sockets(2);
    let l_addr = socks[1].local_addr().unwrap();
    let mut socks = socks.into_iter();
    let d_sock = socks.next().unwrap();
    let l = start_one(
        NetConfig::default(),
        &listener,
        &set,
        socks.next().unwrap(),
        vec![],
    );
    // More stalled handshakes than the listener has slots in total.
    let attacker = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let mut flood =
        stalled_handshake_flood(attacker, l_addr, 2 * NetConfig::default().handshakes_max);
    let metrics = l.net.metrics();
    until("the flood to reach its cap", || {
        metrics.handshakes_refused(Refusal::SourceBusy) > 0
    })
    .await;

    // A validator that comes back while the flood goes on connects at once,
    // well before any stalled handshake times out.
    let started = Instant::now();
    let d = start_one(
        NetConfig::default(),
        &dialer,
        &set,
        d_sock,
        vec![PeerInfo {
            address: listener.address(),
            socket: l_addr,
        }],
    );
    until("the validator to connect", || d.net.connected().len() == 1).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "connecting took {took:?} under the flood"
    );
    assert!(metrics.handshakes_refused(Refusal::SourceBusy) > 0);
    flood.abort_all();
    d.net.shutdown().await;
    l.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_filling_every_slot_from_many_hosts_do_not_lock_out_a_known_validator() {
    let (dialer, listener) = dialer_and_listener();
    let set = set_of(&[dialer.clone(), listener.clone()]);
    let socks = sockets(2);
    let d_info = PeerInfo {
        address: dialer.address(),
        socket: socks[0].local_addr().unwrap(),
    };
    let l_info = PeerInfo {
        address: listener.address(),
        socket: socks[1].local_addr().unwrap(),
    };
    let mut socks = socks.into_iter();
    let d_sock = socks.next().unwrap();
    // The listener knows where the dialer lives (its configured peers).
    let l = start_one(
        NetConfig::default(),
        &listener,
        &set,
        socks.next().unwrap(),
        vec![d_info],
    );
    let config = NetConfig::default();
    // More hosts, each up to its own cap, than the table holds.
    let hosts = config.handshakes_max / config.handshakes_per_source_max + 4;
    let mut floods: Vec<_> = (0..hosts)
        .map(|i| {
            let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + i as u8);
            stalled_handshake_flood(from, l_info.socket, config.handshakes_per_source_max + 2)
        })
        .collect();
    let metrics = l.net.metrics();
    until("the table to fill", || {
        metrics.handshakes_refused(Refusal::Busy) > 0
    })
    .await;

    let started = Instant::now();
    let d = start_one(config.clone(), &dialer, &set, d_sock, vec![l_info]);
    until("the validator to connect", || d.net.connected().len() == 1).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "connecting took {took:?}");
    for f in &mut floods {
        f.abort_all();
    }
    d.net.shutdown().await;
    l.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_unvalidated_sources_are_retried_and_validators_still_connect() {
    let (dialer, listener) = dialer_and_listener();
    let set = set_of(&[dialer.clone(), listener.clone()]);
    // Every attempt counts as "under load".
    let strict = NetConfig {
        handshakes_retry_above: 0,
        ..NetConfig::default()
    };
    let mut nodes = start_all(&[dialer, listener], &set, &[NetConfig::default(), strict]);
    until("connection", || {
        nodes.iter().all(|n| n.net.connected().len() == 1)
    })
    .await;
    assert!(
        nodes[1]
            .net
            .metrics()
            .handshakes_refused(Refusal::RetryFirst)
            >= 1
    );
    for n in &mut nodes {
        n.net.shutdown().await;
    }
}

/// Writes `count` frames of `payload` on a new consensus stream of `conn`.
async fn consensus_stream(conn: &quinn::Connection, count: usize, payload: &[u8]) {
    let mut send = conn.open_uni().await.unwrap();
    let mut bytes = vec![Channel::Consensus as u8];
    for _ in 0..count {
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(payload);
    }
    send.write_all(&bytes).await.unwrap();
    send.finish().unwrap();
}

/// Messages delivered to `rx` until it has been quiet for a while.
async fn drain_messages(rx: &mut InboundQueues) -> usize {
    let mut n = 0;
    while let Ok(Some(ev)) = timeout(Duration::from_millis(500), rx.events.recv()).await {
        if matches!(ev, Inbound::Message { .. }) {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_more_streams_or_reconnecting_does_not_raise_a_peers_allowance() {
    let (byzantine, listener) = dialer_and_listener();
    let set = set_of(&[byzantine.clone(), listener.clone()]);
    let burst = 20;
    let config = NetConfig {
        peer_msgs_per_sec: 1,
        peer_msgs_burst: burst,
        ..NetConfig::default()
    };
    let sock = sockets(1).pop().unwrap();
    let to = PeerInfo {
        address: listener.address(),
        socket: sock.local_addr().unwrap(),
    };
    let mut l = start_one(config, &listener, &set, sock, vec![]);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();

    // Five streams, each sending the whole burst.
    let conn = testing::dial_as(&endpoint, &byzantine, CHAIN, &set, &to)
        .await
        .unwrap();
    for _ in 0..5 {
        consensus_stream(&conn, burst as usize, b"vote").await;
    }
    let first = drain_messages(&mut l.rx).await;
    assert!(
        (burst as usize..=burst as usize + 3).contains(&first),
        "{first} messages delivered from five streams; the allowance is {burst}"
    );

    // A new connection with the same key draws on the same allowance.
    let again = testing::dial_as(&endpoint, &byzantine, CHAIN, &set, &to)
        .await
        .unwrap();
    consensus_stream(&again, burst as usize, b"vote").await;
    let second = drain_messages(&mut l.rx).await;
    assert!(second <= 3, "{second} messages after reconnecting");
    let dropped = l.net.metrics().dropped(DropReason::RateLimited);
    assert_eq!(dropped as usize, 6 * burst as usize - first - second);
    again.close(0u32.into(), b"");
    conn.close(0u32.into(), b"");
    l.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_is_redialled_well_before_the_idle_timeout() {
    // The dialer reaches the listener through a relay, so the listener can
    // "crash" (go silent without closing anything) and come back on another
    // socket with the same key: the relay then forwards to the new one.
    let (dialer, listener) = dialer_and_listener();
    let set = set_of(&[dialer.clone(), listener.clone()]);
    let config = NetConfig::default();
    let socks = sockets(3);
    let first_addr = socks[1].local_addr().unwrap();
    let second_addr = socks[2].local_addr().unwrap();
    let relay = stele_cluster::relay::Relay::start(first_addr, 7)
        .await
        .unwrap();
    let mut socks = socks.into_iter();
    let d = start_one(
        config.clone(),
        &dialer,
        &set,
        socks.next().unwrap(),
        vec![PeerInfo {
            address: listener.address(),
            socket: relay.front_addr(),
        }],
    );
    let old = start_one(
        config.clone(),
        &listener,
        &set,
        socks.next().unwrap(),
        vec![],
    );
    until("connection", || {
        d.net.connected().len() == 1 && old.net.connected().len() == 1
    })
    .await;

    let crashed = Instant::now();
    let mut new = start_one(
        config.clone(),
        &listener,
        &set,
        socks.next().unwrap(),
        vec![],
    );
    relay.set_target(second_addr);
    until("the restarted listener to be reconnected", || {
        new.net.connected().len() == 1
    })
    .await;
    // The dialer may not have switched to the new connection yet when the
    // listener has (the listener finishes the handshake first); what it
    // sends meanwhile is lost, as the node expects (it resends on
    // `PeerConnected`). Send until a message arrives.
    let (from, payload) = loop {
        d.net.send(
            &listener.address(),
            Channel::Consensus,
            Arc::from(vec![3u8; 3]),
        );
        match timeout(Duration::from_millis(50), new.rx.events.recv()).await {
            Ok(Some(Inbound::Message { from, payload, .. })) => break (from, payload),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("the transport stopped"),
        }
        assert!(crashed.elapsed() < WAIT, "no message from the dialer");
    };
    assert_eq!((from, payload), (dialer.address(), vec![3u8; 3]));
    let took = crashed.elapsed();
    assert!(
        took < config.idle_timeout / 3,
        "reconnection took {took:?}; the idle timeout is {:?}",
        config.idle_timeout
    );
    d.net.shutdown().await;
    new.net.shutdown().await;
    old.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dialer_supersedes_its_stale_connection_at_once() {
    // The first dialer process reaches the listener through a relay that
    // is then cut: it "crashes" without closing anything. Its successor,
    // same key, dials directly; the listener must switch to it at once.
    let (dialer, listener) = dialer_and_listener();
    let set = set_of(&[dialer.clone(), listener.clone()]);
    let config = NetConfig::default();
    let socks = sockets(3);
    let l_addr = socks[0].local_addr().unwrap();
    let relay = stele_cluster::relay::Relay::start(l_addr, 9).await.unwrap();
    let mut socks = socks.into_iter();
    let l = start_one(
        config.clone(),
        &listener,
        &set,
        socks.next().unwrap(),
        vec![],
    );
    let via = |socket| {
        vec![PeerInfo {
            address: listener.address(),
            socket,
        }]
    };
    let old = start_one(
        config.clone(),
        &dialer,
        &set,
        socks.next().unwrap(),
        via(relay.front_addr()),
    );
    until("connection", || {
        old.net.connected().len() == 1 && l.net.connected().len() == 1
    })
    .await;

    relay.set_rule(stele_cluster::relay::LinkRule::CUT);
    let crashed = Instant::now();
    let mut new = start_one(
        config.clone(),
        &dialer,
        &set,
        socks.next().unwrap(),
        via(l_addr),
    );
    until("the successor to connect", || {
        new.net.connected().len() == 1
    })
    .await;
    // The listener now sends on the new connection.
    l.net.send(
        &dialer.address(),
        Channel::Consensus,
        Arc::from(vec![4u8; 4]),
    );
    let (from, _, payload) = next_message(&mut new.rx).await;
    assert_eq!((from, payload), (listener.address(), vec![4u8; 4]));
    let took = crashed.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(l.net.connected(), vec![dialer.address()]);
    assert_eq!(l.net.metrics().peers_connected(), 1);
    new.net.shutdown().await;
    old.net.shutdown().await;
    l.net.shutdown().await;
}

/// Consensus messages delivered to `rx` and kept (with their charges)
/// until it has been quiet for a while.
async fn hold_messages(rx: &mut InboundQueues, held: &mut Vec<Inbound>) {
    while let Ok(Some(ev)) = timeout(Duration::from_millis(500), rx.events.recv()).await {
        if matches!(ev, Inbound::Message { .. }) {
            held.push(ev);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_queue_more_than_its_byte_budget_of_untaken_messages() {
    let (byzantine, listener) = dialer_and_listener();
    let set = set_of(&[byzantine.clone(), listener.clone()]);
    let frame = 64 << 10;
    let config = NetConfig {
        consensus_frame_bytes_max: frame,
        peer_consensus_queued_bytes_max: 4 * frame,
        ..NetConfig::default()
    };
    let sock = sockets(1).pop().unwrap();
    let to = PeerInfo {
        address: listener.address(),
        socket: sock.local_addr().unwrap(),
    };
    let mut l = start_one(config, &listener, &set, sock, vec![]);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = testing::dial_as(&endpoint, &byzantine, CHAIN, &set, &to)
        .await
        .unwrap();
    // 32 frames at the maximum, eight times the budget, on two streams.
    let payload = vec![7u8; frame];
    for _ in 0..2 {
        consensus_stream(&conn, 16, &payload).await;
    }

    // The node takes nothing in: four frames fit, the rest wait.
    let mut held = Vec::new();
    hold_messages(&mut l.rx, &mut held).await;
    assert_eq!(held.len(), 4, "messages queued past a budget of 4 frames");
    let metrics = l.net.metrics();
    assert!(metrics.budget_waits(Channel::Consensus) >= 1);

    // Taking them in makes room for the next four, and so on to the end.
    let mut delivered = 0;
    while !held.is_empty() {
        delivered += held.len();
        held.clear();
        hold_messages(&mut l.rx, &mut held).await;
        assert!(held.len() <= 4, "{} messages queued", held.len());
    }
    assert_eq!(delivered, 32);
    conn.close(0u32.into(), b"");
    l.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_sync_requests_are_served_no_faster_than_its_budget() {
    let (byzantine, listener) = dialer_and_listener();
    let set = set_of(&[byzantine.clone(), listener.clone()]);
    let config = NetConfig {
        sync_requests_per_sec: 20,
        sync_requests_burst: 2,
        ..NetConfig::default()
    };
    let sock = sockets(1).pop().unwrap();
    let to = PeerInfo {
        address: listener.address(),
        socket: sock.local_addr().unwrap(),
    };
    let Node { net, mut rx } = start_one(config, &listener, &set, sock, vec![]);
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered = served.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.sync.recv().await {
            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            req.respond.respond(vec![0; 10]);
        }
    });
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = testing::dial_as(&endpoint, &byzantine, CHAIN, &set, &to)
        .await
        .unwrap();

    // The burst of 2 at once, then 10 more at 20/s: at least 500 ms.
    let started = Instant::now();
    for _ in 0..12 {
        let response = testing::sync_request(&conn, b"any request", 1 << 20)
            .await
            .unwrap();
        assert_eq!(response, vec![0; 10]);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450),
        "12 requests served in {elapsed:?}"
    );
    assert_eq!(served.load(std::sync::atomic::Ordering::Relaxed), 12);
    assert!(net.metrics().budget_waits(Channel::Sync) >= 9);
    conn.close(0u32.into(), b"");
    net.shutdown().await;
}

/// The transport of `validator`, alone in `set`, with `config`; where to
/// dial it, and a client endpoint to dial from.
fn lone_validator(
    validator: &SecretKey,
    set: &ValidatorSet,
    config: NetConfig,
) -> (Network, InboundQueues, PeerInfo, quinn::Endpoint) {
    let (net, rx) = Network::start_on(
        config,
        validator.clone(),
        CHAIN,
        set.clone(),
        sockets(1).pop().unwrap(),
        vec![],
    )
    .unwrap();
    let to = PeerInfo {
        address: validator.address(),
        socket: net.local_addr().unwrap(),
    };
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    (net, rx, to, endpoint)
}

/// Starts a full node's transport (its key outside `set`) that dials
/// `validator`.
fn start_follower(key: &SecretKey, set: &ValidatorSet, validator: PeerInfo) -> Node {
    let (net, rx) = Network::start_on(
        NetConfig::default(),
        key.clone(),
        CHAIN,
        set.clone(),
        sockets(1).pop().unwrap(),
        vec![validator],
    )
    .unwrap();
    Node { net, rx }
}

/// Next message on `channel`, within `within`; `None` if none came.
async fn message_within(rx: &mut InboundQueues, within: Duration) -> Option<(Channel, Vec<u8>)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, rx.events.recv()).await {
            Ok(Some(Inbound::Message {
                channel, payload, ..
            })) => return Some((channel, payload)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_gets_pushed_blocks_and_gossip_but_nothing_of_consensus() {
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let set = set_of(&keys);
    let mut validators = start_all(&keys, &set, &vec![NetConfig::default(); 2]);
    until("validators connect", || {
        validators.iter().all(|n| n.net.connected().len() == 1)
    })
    .await;
    let full_key = key(100);
    let v0 = PeerInfo {
        address: keys[0].address(),
        socket: validators[0].net.local_addr().unwrap(),
    };
    let mut full = start_follower(&full_key, &set, v0);
    let v = &validators[0].net.clone();
    until("the follower connects", || {
        v.connected_peers().contains(&full_key.address())
    })
    .await;
    // A follower is no validator: not in `connected`, counted apart.
    assert_eq!(v.connected(), vec![keys[1].address()]);
    assert_eq!(v.metrics().followers_connected(), 1);
    assert_eq!(v.metrics().peers_connected(), 1);
    assert!(full.net.connected().contains(&keys[0].address()));

    // Consensus broadcast reaches the other validator, not the follower;
    // a pushed block reaches the follower, not the other validator.
    v.broadcast(Channel::Consensus, Arc::from(b"vote".to_vec()));
    v.broadcast(Channel::Blocks, Arc::from(b"block 1".to_vec()));
    v.send(
        &full_key.address(),
        Channel::Consensus,
        Arc::from(b"direct".to_vec()),
    );
    assert_eq!(
        message_within(&mut full.rx, WAIT).await,
        Some((Channel::Blocks, b"block 1".to_vec()))
    );
    let (_, channel, payload) = next_message(&mut validators[1].rx).await;
    assert_eq!((channel, payload), (Channel::Consensus, b"vote".to_vec()));
    assert_eq!(
        message_within(&mut full.rx, Duration::from_millis(300)).await,
        None,
        "no consensus reaches a follower"
    );
    assert!(v.metrics().dropped(DropReason::NotAllowed) >= 1);

    // A full node's gossip reaches the validator; its consensus frames
    // (sent on a raw stream, as a hostile follower would) do not.
    full.net
        .broadcast(Channel::Gossip, Arc::from(b"tx".to_vec()));
    full.net
        .broadcast(Channel::Consensus, Arc::from(b"forged vote".to_vec()));
    let (from, channel, payload) = next_message(&mut validators[0].rx).await;
    assert_eq!(
        (from, channel, payload),
        (full_key.address(), Channel::Gossip, b"tx".to_vec())
    );
    let before = v.metrics().dropped(DropReason::NotAllowed);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let to = PeerInfo {
        address: keys[0].address(),
        socket: v.local_addr().unwrap(),
    };
    let raw_key = key(101);
    let conn = testing::dial_as(&endpoint, &raw_key, CHAIN, &set, &to)
        .await
        .unwrap();
    let mut stream = testing::open_channel(&conn, Channel::Consensus)
        .await
        .unwrap();
    let _ = testing::write_frames(&mut stream, &[b"forged vote".to_vec()]).await;
    until("the forged stream is refused", || {
        v.metrics().dropped(DropReason::NotAllowed) > before
    })
    .await;
    assert_eq!(
        message_within(&mut validators[0].rx, Duration::from_millis(300)).await,
        None,
        "no consensus from a follower reaches the node"
    );
    conn.close(0u32.into(), b"done");
    full.net.shutdown().await;
    for n in &validators {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_beyond_the_cap_or_off_the_allow_list_are_refused() {
    let validator = key(0);
    let set = set_of(std::slice::from_ref(&validator));
    let allowed = key(100);
    let config = NetConfig {
        followers_max: 1,
        followers_allowed: vec![allowed.address(), key(101).address()],
        ..NetConfig::default()
    };
    let (v_net, _v_rx, to, endpoint) = lone_validator(&validator, &set, config);
    // Off the allow list.
    let stranger = testing::dial_as(&endpoint, &key(102), CHAIN, &set, &to).await;
    assert!(stranger.is_err(), "a key off the allow list is refused");
    // The one slot.
    let first = testing::dial_as(&endpoint, &allowed, CHAIN, &set, &to)
        .await
        .unwrap();
    until("the follower registers", || {
        v_net.metrics().followers_connected() == 1
    })
    .await;
    // Allowed, but the slot is taken.
    let second = testing::dial_as(&endpoint, &key(101), CHAIN, &set, &to).await;
    assert!(second.is_err(), "no second follower past the cap");
    assert!(v_net.metrics().followers_refused() >= 2);
    // The holder of the slot may reconnect (a restart replaces its
    // connection).
    let again = testing::dial_as(&endpoint, &allowed, CHAIN, &set, &to)
        .await
        .unwrap();
    until("the old connection is replaced", || {
        first.close_reason().is_some()
    })
    .await;
    assert_eq!(v_net.metrics().followers_connected(), 1);
    again.close(0u32.into(), b"done");
    until("the follower leaves", || {
        v_net.metrics().followers_connected() == 0
    })
    .await;
    v_net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_take_every_follower_slot() {
    let validator = key(0);
    let set = set_of(std::slice::from_ref(&validator));
    let config = NetConfig {
        followers_per_source_max: 2,
        ..NetConfig::default()
    };
    let (v_net, _v_rx, to, endpoint) = lone_validator(&validator, &set, config);
    let mut held = Vec::new();
    for n in 0..2 {
        held.push(
            testing::dial_as(&endpoint, &key(110 + n), CHAIN, &set, &to)
                .await
                .unwrap(),
        );
    }
    until("two followers", || {
        v_net.metrics().followers_connected() == 2
    })
    .await;
    let third = testing::dial_as(&endpoint, &key(112), CHAIN, &set, &to).await;
    assert!(third.is_err(), "a third key from the same host is refused");
    assert_eq!(v_net.metrics().followers_connected(), 2);
    assert!(v_net.metrics().followers_refused() >= 1);
    // A follower already connected may still reconnect.
    let again = testing::dial_as(&endpoint, &key(110), CHAIN, &set, &to).await;
    assert!(again.is_ok());
    drop(held);
    v_net.shutdown().await;
}
