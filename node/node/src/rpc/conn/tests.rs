//! Tests of connection admission, eviction and the watchdog.

use super::*;

fn limits(connections_max: u32, per_ip_max: u32) -> Arc<ConnLimits> {
    Arc::new(ConnLimits::new(
        connections_max,
        per_ip_max,
        EvictPolicy::new(Duration::from_millis(500)),
    ))
}

/// Admits a connection from `ip` and gives it a request in flight, so
/// that it cannot be evicted.
fn admit_busy(limits: &Arc<ConnLimits>, ip: IpAddr) -> (ConnSlot, InFlight) {
    let admitted = limits.admit(ip, false).expect("admitted");
    assert_eq!(admitted.evicted, None);
    let busy = admitted.slot.activity.request();
    (admitted.slot, busy)
}

#[test]
fn a_trusted_proxy_is_not_held_to_the_address_cap_but_is_to_the_total() {
    let limits = limits(3, 1);
    let proxy: IpAddr = [10, 0, 0, 1].into();
    let _c1 = limits.admit(proxy, true).expect("admitted");
    let _c2 = limits
        .admit(proxy, true)
        .expect("admitted past the address cap");
    assert_eq!(limits.admit(proxy, false).err(), Some(Refusal::PerIp));
    assert_eq!(limits.open_from(proxy), 2);
}

#[test]
fn a_proxied_connection_rekeyed_to_its_client_counts_under_the_clients_cap() {
    let limits = limits(4, 1);
    let proxy: IpAddr = [10, 0, 0, 1].into();
    let client: IpAddr = [203, 0, 113, 7].into();
    let first = limits.admit(proxy, true).expect("admitted").slot;
    let second = limits.admit(proxy, true).expect("admitted").slot;
    assert_eq!(first.rekey(client), Ok(()));
    assert_eq!((limits.open_from(proxy), limits.open_from(client)), (1, 1));
    // Again to the same key: nothing changes.
    assert_eq!(first.rekey(client), Ok(()));
    assert_eq!(limits.open_from(client), 1);
    // The client's second connection through the proxy is over its cap;
    // the refused one stays the proxy's until it is dropped.
    assert_eq!(second.rekey(client), Err(Refusal::PerIp));
    assert_eq!((limits.open_from(proxy), limits.open_from(client)), (1, 1));
    drop(second);
    drop(first);
    assert_eq!((limits.open_from(proxy), limits.open_from(client)), (0, 0));
    assert!(limits.table().per_subnet.is_empty());
}

#[test]
fn the_address_cap_is_checked_before_a_global_slot_is_taken() {
    let limits = limits(3, 2);
    let a: IpAddr = [10, 0, 0, 1].into();
    let b: IpAddr = [10, 0, 0, 2].into();
    let a1 = admit_busy(&limits, a);
    let _a2 = admit_busy(&limits, a);
    assert_eq!(limits.admit(a, false).err(), Some(Refusal::PerIp));
    // The refused third connection took no global slot.
    let _b1 = admit_busy(&limits, b);
    assert_eq!(limits.admit(b, false).err(), Some(Refusal::Full));
    drop(a1);
    assert_eq!(limits.open_from(a), 1);
    let _b2 = admit_busy(&limits, b);
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn candidates_go_by_kind_then_crowded_network_then_age() {
    let t0 = Instant::now();
    let c = |id, why, since_ms, subnet_conns, key_conns| Candidate {
        id,
        why,
        since: at(t0, since_ms),
        subnet_conns,
        key_conns,
    };
    let pick = |cands: &[Candidate]| cands.iter().min_by_key(|c| c.rank()).map(|c| c.id);
    // A head-less connection goes before an older idle keep-alive, and
    // that before any WebSocket.
    assert_eq!(
        pick(&[
            c(1, Eviction::WsIdle, 0, 9, 9),
            c(2, Eviction::WsNotReading, 0, 9, 9),
            c(3, Eviction::IdleKeepAlive, 0, 1, 1),
            c(4, Eviction::IncompleteRequest, 50, 1, 1),
        ]),
        Some(4)
    );
    assert_eq!(
        pick(&[
            c(1, Eviction::WsIdle, 0, 9, 9),
            c(2, Eviction::WsNotReading, 10, 1, 1),
        ]),
        Some(2)
    );
    // Within a kind: a lone newcomer is kept while a crowded /24 has a
    // candidate, however new that one is.
    assert_eq!(
        pick(&[
            c(1, Eviction::IncompleteRequest, 0, 1, 1),
            c(2, Eviction::IncompleteRequest, 90, 25, 1),
        ]),
        Some(2)
    );
    // Then the crowded address, then the oldest.
    assert_eq!(
        pick(&[
            c(1, Eviction::IncompleteRequest, 0, 25, 1),
            c(2, Eviction::IncompleteRequest, 90, 25, 5),
        ]),
        Some(2)
    );
    assert_eq!(
        pick(&[
            c(1, Eviction::IdleKeepAlive, 90, 3, 3),
            c(2, Eviction::IdleKeepAlive, 10, 3, 3),
        ]),
        Some(2)
    );
    assert_eq!(pick(&[]), None);
}

#[test]
fn subnets_are_ipv4_24s_and_ipv6_48s() {
    let net = |s: &str| Subnet::of(ConnKey::of(ip(s)));
    assert_eq!(net("192.0.2.7"), net("192.0.2.200"));
    assert_ne!(net("192.0.2.7"), net("192.0.3.7"));
    assert_eq!(net("::ffff:192.0.2.7"), net("192.0.2.9"));
    assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:ffff::1"));
    assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:2:2::1"));
}

#[tokio::test(start_paused = true)]
async fn a_full_server_closes_the_least_useful_connection_for_a_newcomer() {
    let limits = limits(4, 4);
    let attacker: IpAddr = [10, 0, 0, 1].into();
    // A busy connection, an answered keep-alive, and two that never
    // sent a request, the second from a crowded address.
    let (_busy, _in_flight) = admit_busy(&limits, [10, 0, 1, 1].into());
    let keep_alive = limits.admit([10, 0, 2, 1].into(), false).expect("admitted");
    drop(keep_alive.slot.activity.request());
    let lone = limits.admit([10, 0, 3, 1].into(), false).expect("admitted");
    tokio::time::advance(Duration::from_millis(10)).await;
    let silent = limits.admit(attacker, false).expect("admitted");
    assert_eq!(limits.table().open.len(), 4);

    // Every network holds one connection: the newcomer takes the
    // oldest head-less one, `lone`.
    let first = limits.admit(attacker, false).expect("evicts");
    assert_eq!(first.evicted, Some(Eviction::IncompleteRequest));
    assert!(lone.slot.activity.is_closed());
    assert!(!silent.slot.activity.is_closed());
    assert_eq!(limits.open_from([10, 0, 3, 1].into()), 0);
    // Dropping the evicted socket later gives back nothing twice.
    drop(lone);
    assert_eq!(limits.table().open.len(), 4);

    // Now the attacker's address holds two head-less connections: its
    // own newest goes before the keep-alive.
    let second = limits.admit([10, 0, 4, 1].into(), false).expect("evicts");
    assert_eq!(second.evicted, Some(Eviction::IncompleteRequest));
    assert!(silent.slot.activity.is_closed() != first.slot.activity.is_closed());
    assert_eq!(limits.open_from(attacker), 1);
    assert!(!keep_alive.slot.activity.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_protects_its_connection_and_a_slow_body_does_not() {
    let limits = limits(2, 2);
    let (_busy, _in_flight) = admit_busy(&limits, [10, 0, 1, 1].into());
    let slow = limits.admit([10, 0, 2, 1].into(), false).expect("admitted");
    let request = slow.slot.activity.request();
    let body = slow.slot.activity.receiving();
    tokio::time::advance(Duration::from_secs(5)).await;
    // The body is still arriving: it goes.
    let newcomer = limits.admit([10, 0, 3, 1].into(), false).expect("evicts");
    assert_eq!(newcomer.evicted, Some(Eviction::IncompleteRequest));
    assert!(slow.slot.activity.is_closed());
    drop((body, request));
    // The newcomer's request is in flight: nothing is left to evict.
    let _newcomer_busy = newcomer.slot.activity.request();
    assert_eq!(
        limits.admit([10, 0, 4, 1].into(), false).err(),
        Some(Refusal::Full)
    );
}

/// A WebSocket connection admitted from `ip`, upgraded.
fn websocket(limits: &Arc<ConnLimits>, ip: [u8; 4]) -> Admitted {
    let admitted = limits.admit(ip.into(), false).expect("admitted");
    drop(admitted.slot.activity.request());
    admitted.slot.activity.upgraded();
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_reading_subscriber_is_kept_and_a_silent_or_unused_websocket_is_not() {
    let limits = limits(3, 3);
    let reading = websocket(&limits, [10, 0, 1, 1]);
    let _sub = reading.slot.activity.subscribed();
    let silent = websocket(&limits, [10, 0, 2, 1]);
    let _silent_sub = silent.slot.activity.subscribed();
    let unused = websocket(&limits, [10, 0, 3, 1]);
    // 600 ms: the reading one answered a ping (a read), the others
    // did not; the silent one has missed two ping intervals after
    // 1 s.
    tokio::time::advance(Duration::from_millis(600)).await;
    reading.slot.activity.touch();
    tokio::time::advance(Duration::from_millis(600)).await;
    reading.slot.activity.touch();
    unused.slot.activity.touch();
    let first = limits.admit([10, 0, 4, 1].into(), false).expect("evicts");
    assert_eq!(first.evicted, Some(Eviction::WsNotReading));
    assert!(silent.slot.activity.is_closed());
    let _first_busy = first.slot.activity.request();
    let second = limits.admit([10, 0, 5, 1].into(), false).expect("evicts");
    assert_eq!(second.evicted, Some(Eviction::WsIdle));
    assert!(unused.slot.activity.is_closed());
    let _second_busy = second.slot.activity.request();
    assert_eq!(
        limits.admit([10, 0, 6, 1].into(), false).err(),
        Some(Refusal::Full)
    );
    assert!(!reading.slot.activity.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_websocket_whose_writes_stall_is_not_reading() {
    let limits = limits(1, 1);
    let ws = websocket(&limits, [10, 0, 1, 1]);
    let _sub = ws.slot.activity.subscribed();
    ws.slot
        .activity
        .stalled_ms
        .store(ws.slot.activity.now_ms(), Ordering::Relaxed);
    // Its pongs still arrive, but a write has been pending for 1 s.
    tokio::time::advance(Duration::from_millis(400)).await;
    ws.slot.activity.touch();
    assert_eq!(
        limits.admit([10, 0, 2, 1].into(), false).err(),
        Some(Refusal::Full)
    );
    tokio::time::advance(Duration::from_millis(700)).await;
    ws.slot.activity.touch();
    let newcomer = limits.admit([10, 0, 2, 1].into(), false).expect("evicts");
    assert_eq!(newcomer.evicted, Some(Eviction::WsNotReading));
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a test address")
}

#[test]
fn ipv6_addresses_are_keyed_by_their_64_bit_prefix() {
    let key = |s: &str| ConnKey::of(ip(s));
    assert_eq!(
        key("2001:db8:1:2::1"),
        key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    );
    assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:8000::"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:8001:2::1"));
    assert_eq!(key("2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
    assert_ne!(key("::1"), key("127.0.0.1"));
}

#[test]
fn ipv4_mapped_ipv6_addresses_are_keyed_as_the_ipv4_address() {
    let key = |s: &str| ConnKey::of(ip(s));
    assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    // Not one /64 for the whole IPv4 internet.
    assert_ne!(key("::ffff:192.0.2.7"), key("::ffff:192.0.2.8"));
    assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
}

#[test]
fn one_ipv6_64_shares_one_address_cap() {
    let limits = limits(8, 2);
    let _a = limits.admit(ip("2001:db8::1"), false).expect("first");
    let _b = limits.admit(ip("2001:db8::2"), false).expect("second");
    assert_eq!(
        limits.admit(ip("2001:db8::dead:beef"), false).err(),
        Some(Refusal::PerIp)
    );
    let _other = limits
        .admit(ip("2001:db8:0:1::1"), false)
        .expect("another /64");
    let _v4 = limits.admit(ip("::ffff:10.0.0.1"), false).expect("first");
    let _v4 = limits.admit(ip("10.0.0.1"), false).expect("second");
    assert_eq!(
        limits.admit(ip("10.0.0.1"), false).err(),
        Some(Refusal::PerIp)
    );
}

#[test]
fn the_map_forgets_addresses_without_connections() {
    let limits = limits(8, 8);
    let a: IpAddr = [10, 0, 0, 1].into();
    drop(limits.admit(a, false).expect("admitted"));
    assert_eq!(limits.open_from(a), 0);
    let table = limits.table();
    assert!(table.per_key.is_empty() && table.per_subnet.is_empty() && table.open.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_and_one_in_flight_is_not() {
    use tokio::io::AsyncReadExt;
    let limits = limits(8, 8);
    let slot = limits
        .admit([10, 0, 0, 1].into(), false)
        .expect("admitted")
        .slot;
    let (_client, server) = tokio::io::duplex(64);
    let header = Duration::from_millis(100);
    let idle = Duration::from_millis(1_000);
    let (mut watched, activity) = Watched::new(server, slot, header, idle);
    let busy = activity.request();
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    assert!(!activity.is_closed(), "a request in flight keeps it");
    drop(busy);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!activity.is_closed(), "idle for less than the timeout");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(activity.is_closed());
    let mut buf = [0u8; 8];
    assert_eq!(watched.read(&mut buf).await.expect("eof"), 0);
    drop(watched);
    assert_eq!(limits.open_from([10, 0, 0, 1].into()), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_a_first_request_is_closed_at_the_header_timeout() {
    let limits = limits(8, 8);
    let slot = limits
        .admit([10, 0, 0, 1].into(), false)
        .expect("admitted")
        .slot;
    let (_client, server) = tokio::io::duplex(64);
    let (_watched, activity) = Watched::new(
        server,
        slot,
        Duration::from_millis(100),
        Duration::from_secs(60),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(activity.is_closed());
}
