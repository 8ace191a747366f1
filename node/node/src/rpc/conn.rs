//! Connection admission and lifetime. A new connection must find room
//! under its address's cap (`connections_per_ip_max`) before it may take
//! one of the global slots (`connections_max`), so one address cannot
//! occupy them all. Each admitted connection has a watchdog that closes it
//! when it is idle: no complete first request within
//! `request_header_timeout_ms` (a slow or silent client), no request in
//! flight and nothing written for `idle_timeout_ms` (HTTP keep-alive), or,
//! once upgraded to WebSocket, nothing read (not even a pong to the
//! server's pings) for `idle_timeout_ms` (a dead or stuck peer).
//!
//! An "address" here is what one client controls ([`ConnKey`]): an IPv4
//! address, or an IPv6 /64, since a host is given a whole /64 and can
//! connect from any of its 2^64 addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address already has `connections_per_ip_max` open.
    PerIp,
    /// All `connections_max` slots are taken.
    Full,
}

impl Refusal {
    /// The whole HTTP answer written (best effort, never waited for) to a
    /// refused socket before it is closed.
    pub(crate) fn response(self) -> &'static [u8] {
        match self {
            Refusal::PerIp => {
                b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\ncontent-length: 43\r\nconnection: close\r\n\r\ntoo many open connections from this address"
            }
            Refusal::Full => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 33\r\nconnection: close\r\n\r\nthe server has no free connection"
            }
        }
    }
}

/// The unit `connections_per_ip_max` counts: an IPv4 address (also when
/// it arrives IPv4-mapped, `::ffff:a.b.c.d`, on a dual-stack socket), or
/// the /64 prefix of an IPv6 address, the smallest block a host is
/// normally assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ConnKey {
    V4([u8; 4]),
    /// The first 64 bits of the address.
    V6Prefix64(u64),
}

impl ConnKey {
    pub(crate) fn of(ip: IpAddr) -> ConnKey {
        match ip {
            IpAddr::V4(v4) => ConnKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ConnKey::V4(v4.octets()),
                None => ConnKey::V6Prefix64((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for ConnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ConnKey::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(o)),
            ConnKey::V6Prefix64(p) => write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(p) << 64)),
        }
    }
}

/// Open connections by address ([`ConnKey`]), and the global slots.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    per_ip_max: u32,
    /// Only addresses with an open connection: at most `connections_max`.
    open: Mutex<HashMap<ConnKey, u32>>,
    slots: Arc<Semaphore>,
}

impl ConnLimits {
    pub(crate) fn new(connections_max: u32, per_ip_max: u32) -> Self {
        ConnLimits {
            per_ip_max,
            open: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(connections_max as usize)),
        }
    }

    /// Admits a connection from `ip`: its address's ([`ConnKey`]) cap
    /// first, then a global slot. Both are given back when the slot is
    /// dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, Refusal> {
        let key = ConnKey::of(ip);
        // A poisoned map only holds counts; keep using it.
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.get(&key).copied().unwrap_or(0);
        if n >= self.per_ip_max {
            return Err(Refusal::PerIp);
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        open.insert(key, n + 1);
        Ok(ConnSlot {
            limits: self.clone(),
            key,
            _permit: permit,
        })
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&ConnKey::of(ip))
            .copied()
            .unwrap_or(0)
    }
}

/// An admitted connection's place; given back on drop.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    limits: Arc<ConnLimits>,
    key: ConnKey,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What the watchdog knows of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    born: Instant,
    /// Milliseconds after `born` when the idle clock was last reset.
    last_ms: AtomicU64,
    in_flight: AtomicU32,
    served: AtomicBool,
    websocket: AtomicBool,
    closed: AtomicBool,
    /// The wakers of the last pending read and write, woken on close.
    wakers: Mutex<[Option<Waker>; 2]>,
    /// Signalled when the socket is dropped, so the watchdog ends with it.
    gone: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            websocket: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wakers: Mutex::new([None, None]),
            gone: Notify::new(),
        }
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Marks a request as in flight until the guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// The connection is now a WebSocket: from here on, reads keep it
    /// alive.
    pub(crate) fn upgraded(&self) {
        self.websocket.store(true, Ordering::Relaxed);
        self.touch();
    }

    /// When the connection is idle enough to close, given the timeouts;
    /// `None` while an HTTP request is in flight.
    fn deadline(&self, header: Duration, idle: Duration) -> Option<Instant> {
        let websocket = self.websocket.load(Ordering::Relaxed);
        if !websocket && self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let after = if websocket || self.served.load(Ordering::Relaxed) {
            idle
        } else {
            header
        };
        let last = self.born + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(last + after)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let mut wakers = self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in wakers.iter_mut() {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn park(&self, slot: usize, cx: &Context<'_>) {
        let mut wakers = self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut wakers[slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
    }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An admitted client socket: holds the connection's slot, reports
/// activity to its watchdog, and reads end (EOF) and writes fail once the
/// watchdog closed it.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    _slot: ConnSlot,
}

impl<S> Watched<S> {
    /// Wraps `inner` and starts its watchdog; the activity is for the
    /// connection's request handler.
    pub(crate) fn new(
        inner: S,
        slot: ConnSlot,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> (Self, Arc<Activity>) {
        let activity = Arc::new(Activity::new());
        tokio::spawn(watchdog(activity.clone(), header_timeout, idle_timeout));
        let watched = Watched {
            inner,
            activity: activity.clone(),
            _slot: slot,
        };
        (watched, activity)
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.activity.gone.notify_one();
    }
}

async fn watchdog(activity: Arc<Activity>, header: Duration, idle: Duration) {
    // A deadline can move earlier (the first request done, with an idle
    // timeout below the header timeout): look again at least this often.
    let tick = header.min(idle);
    loop {
        let now = Instant::now();
        let wake = match activity.deadline(header, idle) {
            Some(at) if at <= now => {
                tracing::debug!("rpc: closing an idle connection");
                activity.close();
                return;
            }
            Some(at) => at.min(now + tick),
            None => now + tick,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = activity.gone.notified() => return,
        }
    }
}

fn aborted() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "closed by the server: idle",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.activity.is_closed() {
            // End of stream: hyper and the WebSocket reader end cleanly.
            return Poll::Ready(Ok(()));
        }
        self.activity.park(0, cx);
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.websocket.load(Ordering::Relaxed) {
            self.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.activity.is_closed() {
            return Poll::Ready(Err(aborted()));
        }
        self.activity.park(1, cx);
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        // An HTTP answer still being written keeps its connection; a
        // WebSocket peer proves it is alive by what it sends instead.
        if matches!(res, Poll::Ready(Ok(n)) if n > 0)
            && !self.activity.websocket.load(Ordering::Relaxed)
        {
            self.activity.touch();
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.activity.is_closed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_cap_is_checked_before_a_global_slot_is_taken() {
        let limits = Arc::new(ConnLimits::new(3, 2));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = limits.admit(a).expect("first");
        let _a2 = limits.admit(a).expect("second");
        assert_eq!(limits.admit(a).err(), Some(Refusal::PerIp));
        // The refused third connection took no global slot.
        let _b1 = limits.admit(b).expect("another address");
        assert_eq!(limits.admit(b).err(), Some(Refusal::Full));
        drop(a1);
        assert_eq!(limits.open_from(a), 1);
        let _b2 = limits.admit(b).expect("a freed slot");
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
        let limits = Arc::new(ConnLimits::new(8, 2));
        let _a = limits.admit(ip("2001:db8::1")).expect("first");
        let _b = limits.admit(ip("2001:db8::2")).expect("second");
        assert_eq!(
            limits.admit(ip("2001:db8::dead:beef")).err(),
            Some(Refusal::PerIp)
        );
        let _other = limits.admit(ip("2001:db8:0:1::1")).expect("another /64");
        let _v4 = limits.admit(ip("::ffff:10.0.0.1")).expect("first");
        let _v4 = limits.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(limits.admit(ip("10.0.0.1")).err(), Some(Refusal::PerIp));
    }

    #[test]
    fn the_map_forgets_addresses_without_connections() {
        let limits = Arc::new(ConnLimits::new(8, 8));
        let a: IpAddr = [10, 0, 0, 1].into();
        drop(limits.admit(a).expect("admitted"));
        assert_eq!(limits.open_from(a), 0);
        assert!(limits.open.lock().expect("lock").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_and_one_in_flight_is_not() {
        use tokio::io::AsyncReadExt;
        let limits = Arc::new(ConnLimits::new(8, 8));
        let slot = limits.admit([10, 0, 0, 1].into()).expect("admitted");
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
        let limits = Arc::new(ConnLimits::new(8, 8));
        let slot = limits.admit([10, 0, 0, 1].into()).expect("admitted");
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
}
