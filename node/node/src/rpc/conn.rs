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
//! Timeouts alone do not keep slots free from a client that reconnects as
//! soon as it is closed, so when all `connections_max` slots are taken a
//! newcomer does not simply get 503: the least useful open connection is
//! closed in its place ([`Eviction`] lists the candidates in the order
//! they go). A connection with an HTTP request being served, or a
//! WebSocket that reads what it is sent and holds a subscription or has a
//! call in flight, is never closed for a newcomer; only when every
//! connection is like that is the newcomer refused.
//!
//! An "address" here is what one client controls ([`ConnKey`]): an IPv4
//! address, or an IPv6 /64, since a host is given a whole /64 and can
//! connect from any of its 2^64 addresses.

//!
//! The socket wrapper and its watchdog are in `watched`; the tests in
//! `tests`.

#[cfg(test)]
mod tests;
mod watched;

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub(crate) use watched::Watched;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ConnKey {
    V4([u8; 4]),
    /// The first 64 bits of the address.
    V6Prefix64(u64),
}

impl ConnKey {
    /// The key of `ip`: the source the QUIC transport counts handshakes
    /// against too ([`crate::net::source_of`]).
    pub(crate) fn of(ip: IpAddr) -> ConnKey {
        match crate::net::source_of(ip) {
            IpAddr::V4(v4) => ConnKey::V4(v4.octets()),
            IpAddr::V6(v6) => ConnKey::V6Prefix64((v6.to_bits() >> 64) as u64),
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

/// The wider block a [`ConnKey`] belongs to, for choosing whom to close
/// for a newcomer: an IPv4 /24 or an IPv6 /48 (what one site or one
/// rented server range usually holds), so that an attacker spread over
/// many addresses of one network loses its connections first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Subnet {
    V4([u8; 3]),
    /// The first 48 bits of the address.
    V6Prefix48(u64),
}

impl Subnet {
    pub(crate) fn of(key: ConnKey) -> Subnet {
        match key {
            ConnKey::V4([a, b, c, _]) => Subnet::V4([a, b, c]),
            ConnKey::V6Prefix64(p) => Subnet::V6Prefix48(p >> 16),
        }
    }
}

/// Why an open connection was closed to admit a newcomer, in the order
/// the kinds go: every connection of a kind before any of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Eviction {
    /// An HTTP connection whose request has not fully arrived: no complete
    /// first request head yet, or a request body still arriving (a slow
    /// body is no better than a slow head). Oldest first.
    IncompleteRequest,
    /// An HTTP keep-alive connection with no request in flight (or with an
    /// answer its client does not read). Longest idle first.
    IdleKeepAlive,
    /// A WebSocket whose client does not read: a write to it has been
    /// pending for `write_stalled`, or it has not even answered a ping for
    /// `ws_silent`. Its calls and subscriptions do not protect it: nothing
    /// they produce reaches the client. Longest silent first.
    WsNotReading,
    /// A WebSocket that reads but holds no subscription and has no call in
    /// flight. Longest unused first.
    WsIdle,
}

impl Eviction {
    pub(crate) const ALL: [Eviction; 4] = [
        Eviction::IncompleteRequest,
        Eviction::IdleKeepAlive,
        Eviction::WsNotReading,
        Eviction::WsIdle,
    ];

    /// The `reason` label of `rpc_connections_evicted_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Eviction::IncompleteRequest => "incomplete_request",
            Eviction::IdleKeepAlive => "idle_keep_alive",
            Eviction::WsNotReading => "ws_not_reading",
            Eviction::WsIdle => "ws_idle",
        }
    }
}

/// When a WebSocket counts as not reading ([`Eviction::WsNotReading`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvictPolicy {
    /// Nothing read from the client for this long: it has missed a ping
    /// (two ping intervals; a reading client answers every ping).
    pub(crate) ws_silent: Duration,
    /// A write to the client pending this long: its receive window and our
    /// send buffer are full.
    pub(crate) write_stalled: Duration,
}

impl EvictPolicy {
    /// The policy for pings every `ws_ping_interval`.
    pub(crate) fn new(ws_ping_interval: Duration) -> Self {
        EvictPolicy {
            ws_silent: ws_ping_interval.saturating_mul(2),
            write_stalled: Duration::from_millis(WRITE_STALLED_MS),
        }
    }
}

/// A write pending this long means the client has stopped reading: an
/// honest client drains a burst of notifications in well under a second.
const WRITE_STALLED_MS: u64 = 1_000;

/// An open connection that may be closed for a newcomer, and its rank
/// (lowest goes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    id: u64,
    why: Eviction,
    /// Oldest (or longest idle) first within a kind.
    since: Instant,
    subnet_conns: u32,
    key_conns: u32,
}

impl Candidate {
    /// The kind first; then, from the network (/24, /48) and then the
    /// address holding the most connections, so that many connections
    /// from one place lose before a lone client's; then the oldest.
    fn rank(&self) -> (Eviction, Reverse<u32>, Reverse<u32>, Instant, u64) {
        (
            self.why,
            Reverse(self.subnet_conns),
            Reverse(self.key_conns),
            self.since,
            self.id,
        )
    }
}

/// Open connections by address ([`ConnKey`]) and network ([`Subnet`]).
#[derive(Debug, Default)]
struct Table {
    /// Only addresses with an open connection: at most `connections_max`.
    per_key: HashMap<ConnKey, u32>,
    per_subnet: HashMap<Subnet, u32>,
    /// Every admitted connection not yet dropped or evicted, by id.
    open: HashMap<u64, (ConnKey, Arc<Activity>)>,
    next_id: u64,
}

impl Table {
    fn insert(&mut self, key: ConnKey, activity: Arc<Activity>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_key.entry(key).or_insert(0) += 1;
        *self.per_subnet.entry(Subnet::of(key)).or_insert(0) += 1;
        self.open.insert(id, (key, activity));
        id
    }

    /// Forgets connection `id`; its activity if it was still counted.
    fn remove(&mut self, id: u64) -> Option<Arc<Activity>> {
        let (key, activity) = self.open.remove(&id)?;
        self.uncount(key);
        Some(activity)
    }

    fn uncount(&mut self, key: ConnKey) {
        fn dec<K: Eq + std::hash::Hash>(map: &mut HashMap<K, u32>, k: K) {
            if let Some(n) = map.get_mut(&k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&k);
                }
            }
        }
        dec(&mut self.per_key, key);
        dec(&mut self.per_subnet, Subnet::of(key));
    }

    /// Counts open connection `id` under `key` instead of its old key
    /// (nothing if it is gone).
    fn rekey(&mut self, id: u64, key: ConnKey) {
        let Some(entry) = self.open.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut entry.0, key);
        self.uncount(old);
        *self.per_key.entry(key).or_insert(0) += 1;
        *self.per_subnet.entry(Subnet::of(key)).or_insert(0) += 1;
    }

    /// The connection to close for a newcomer, if any may be closed. One
    /// pass over the open connections (at most `connections_max`), made
    /// only when all slots are taken.
    fn victim(&self, now: Instant, policy: &EvictPolicy) -> Option<Candidate> {
        self.open
            .iter()
            .filter_map(|(&id, (key, activity))| {
                let (why, since) = activity.evictable(now, policy)?;
                Some(Candidate {
                    id,
                    why,
                    since,
                    subnet_conns: self.per_subnet.get(&Subnet::of(*key)).copied().unwrap_or(0),
                    key_conns: self.per_key.get(key).copied().unwrap_or(0),
                })
            })
            .min_by_key(Candidate::rank)
    }
}

/// A connection admitted by [`ConnLimits::admit`].
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) slot: ConnSlot,
    /// The open connection closed to make room for this one, and why.
    pub(crate) evicted: Option<Eviction>,
}

/// Open connections by address ([`ConnKey`]), and the global slots.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    connections_max: usize,
    per_ip_max: u32,
    policy: EvictPolicy,
    table: Mutex<Table>,
}

impl ConnLimits {
    pub(crate) fn new(connections_max: u32, per_ip_max: u32, policy: EvictPolicy) -> Self {
        ConnLimits {
            connections_max: connections_max as usize,
            per_ip_max,
            policy,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A poisoned table only holds counts and handles; keep using it.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `ip`: its address's ([`ConnKey`]) cap
    /// first (unless `uncapped`: a trusted proxy's), then a global slot; when none is free, the least useful open
    /// connection ([`Eviction`]) is closed and its slot given to this one.
    /// The slot is given back when dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, uncapped: bool) -> Result<Admitted, Refusal> {
        let key = ConnKey::of(ip);
        let mut table = self.table();
        if !uncapped && table.per_key.get(&key).copied().unwrap_or(0) >= self.per_ip_max {
            return Err(Refusal::PerIp);
        }
        let mut evicted = None;
        if table.open.len() >= self.connections_max {
            let victim = table
                .victim(Instant::now(), &self.policy)
                .ok_or(Refusal::Full)?;
            if let Some(activity) = table.remove(victim.id) {
                // Its socket ends at once (reads see EOF, writes fail); its
                // slot is this newcomer's from now on.
                activity.close();
            }
            evicted = Some(victim.why);
        }
        let activity = Arc::new(Activity::new());
        let id = table.insert(key, activity.clone());
        Ok(Admitted {
            slot: ConnSlot {
                limits: self.clone(),
                id,
                activity,
            },
            evicted,
        })
    }

    /// Counts connection `id` as `ip`'s from now on, under `ip`'s cap.
    fn rekey(&self, id: u64, ip: IpAddr) -> Result<(), Refusal> {
        let key = ConnKey::of(ip);
        let mut table = self.table();
        match table.open.get(&id) {
            // Closed for a newcomer meanwhile: its socket ends anyway.
            None => return Ok(()),
            Some((old, _)) if *old == key => return Ok(()),
            Some(_) => {}
        }
        if table.per_key.get(&key).copied().unwrap_or(0) >= self.per_ip_max {
            return Err(Refusal::PerIp);
        }
        table.rekey(id, key);
        Ok(())
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> u32 {
        self.table()
            .per_key
            .get(&ConnKey::of(ip))
            .copied()
            .unwrap_or(0)
    }
}

/// An admitted connection's place; given back on drop (unless it was
/// given to a newcomer when this connection was evicted).
#[derive(Debug)]
pub(crate) struct ConnSlot {
    limits: Arc<ConnLimits>,
    id: u64,
    activity: Arc<Activity>,
}

impl ConnSlot {
    /// Counts this connection as `ip`'s from now on (the client a PROXY
    /// header named, where it was admitted as its proxy's): under `ip`'s
    /// `connections_per_ip_max`, and by `ip` when a connection is chosen to
    /// close for a newcomer. Refused when `ip` has as many open already
    /// (the connection then stays counted as before, to be closed).
    pub(crate) fn rekey(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.limits.rekey(self.id, ip)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limits.table().remove(self.id);
    }
}

/// What the watchdog, and the choice of a connection to close for a
/// newcomer, know of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    born: Instant,
    /// Milliseconds after `born` when the idle clock was last reset.
    last_ms: AtomicU64,
    /// Milliseconds after `born` when a request or call last started or
    /// ended (or the upgrade to WebSocket).
    used_ms: AtomicU64,
    /// Milliseconds after `born` since when a write has been pending;
    /// `NOT_STALLED` when the last write went through.
    stalled_ms: AtomicU64,
    in_flight: AtomicU32,
    /// HTTP requests in flight whose body is still arriving.
    receiving: AtomicU32,
    /// Open subscriptions of a WebSocket.
    subscriptions: AtomicU32,
    served: AtomicBool,
    websocket: AtomicBool,
    closed: AtomicBool,
    /// The wakers of the last pending read and write, woken on close.
    wakers: Mutex<[Option<Waker>; 2]>,
    /// Signalled when the socket is dropped, so the watchdog ends with it.
    gone: Notify,
}

const NOT_STALLED: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            used_ms: AtomicU64::new(0),
            stalled_ms: AtomicU64::new(NOT_STALLED),
            in_flight: AtomicU32::new(0),
            receiving: AtomicU32::new(0),
            subscriptions: AtomicU32::new(0),
            served: AtomicBool::new(false),
            websocket: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wakers: Mutex::new([None, None]),
            gone: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.born + Duration::from_millis(ms)
    }

    fn touch(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    fn used(&self) {
        self.used_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Marks a request as in flight until the guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        self.used();
        InFlight(self.clone())
    }

    /// Marks the request in flight as still receiving its body until the
    /// guard is dropped: until then it does not protect its connection.
    pub(crate) fn receiving(self: &Arc<Self>) -> Receiving {
        self.receiving.fetch_add(1, Ordering::Relaxed);
        Receiving(self.clone())
    }

    /// Marks a WebSocket call (or an HTTP call, already in flight) as in
    /// flight until the guard is dropped. Unlike [`Activity::request`] it
    /// leaves the idle clock alone: a WebSocket's is what it reads.
    pub(crate) fn call(self: &Arc<Self>) -> Call {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.used();
        Call(self.clone())
    }

    /// Counts an open subscription until the guard is dropped.
    pub(crate) fn subscribed(self: &Arc<Self>) -> Subscribed {
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        self.used();
        Subscribed(self.clone())
    }

    /// The connection is now a WebSocket: from here on, reads keep it
    /// alive.
    pub(crate) fn upgraded(&self) {
        self.websocket.store(true, Ordering::Relaxed);
        self.touch();
        self.used();
    }

    /// Whether this connection may be closed for a newcomer, why, and
    /// since when it has been so (the earliest goes first); see
    /// [`Eviction`].
    fn evictable(&self, now: Instant, policy: &EvictPolicy) -> Option<(Eviction, Instant)> {
        if self.is_closed() {
            return None;
        }
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let last = self.at(self.last_ms.load(Ordering::Relaxed));
        if self.websocket.load(Ordering::Relaxed) {
            let stalled = match self.stalled_ms.load(Ordering::Relaxed) {
                NOT_STALLED => None,
                ms => Some(self.at(ms)).filter(|&t| now >= t + policy.write_stalled),
            };
            let silent = (now >= last + policy.ws_silent).then_some(last);
            if let Some(since) = [stalled, silent].into_iter().flatten().min() {
                return Some((Eviction::WsNotReading, since));
            }
            if in_flight == 0 && self.subscriptions.load(Ordering::Relaxed) == 0 {
                let since = self.at(self.used_ms.load(Ordering::Relaxed));
                return Some((Eviction::WsIdle, since));
            }
            return None;
        }
        if !self.served.load(Ordering::Relaxed) {
            return Some((Eviction::IncompleteRequest, self.born));
        }
        if self.receiving.load(Ordering::Relaxed) > 0 {
            let since = self.at(self.used_ms.load(Ordering::Relaxed));
            return Some((Eviction::IncompleteRequest, since));
        }
        if in_flight == 0 {
            return Some((Eviction::IdleKeepAlive, last));
        }
        None
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
        self.0.used();
    }
}

/// A request whose body is still arriving.
pub(crate) struct Receiving(Arc<Activity>);

impl Drop for Receiving {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call in flight.
pub(crate) struct Call(Arc<Activity>);

impl Drop for Call {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.used();
    }
}

/// An open subscription.
pub(crate) struct Subscribed(Arc<Activity>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Ordering::Relaxed);
        self.0.used();
    }
}
