//! Admission of inbound connection attempts, before any work is done for
//! them: a cap on handshakes in flight, in total and per source, address
//! validation (QUIC Retry) under load, and a log of refused sources that
//! writes one line per source per interval, so an attacker cannot flood it.
//!
//! Until a peer has proven a validator's key, all it holds is a handshake
//! slot; these rules keep a flood of unauthenticated attempts from holding
//! all of them while real validators try to reconnect.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why an inbound connection attempt got no handshake slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    /// Under load and the source address is not validated yet: answered
    /// with a QUIC Retry, which a real peer follows at once.
    RetryFirst,
    /// The source already has `handshakes_per_source_max` in flight.
    SourceBusy,
    /// `handshakes_max` handshakes are in flight (a known validator's
    /// source still gets its own share).
    Busy,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [Refusal::RetryFirst, Refusal::SourceBusy, Refusal::Busy];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::RetryFirst => "retry",
            Refusal::SourceBusy => "source_busy",
            Refusal::Busy => "busy",
        }
    }
}

/// The source an attempt is counted against: an IPv4 address, or the /64
/// of an IPv6 one (one host usually holds a whole /64). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Sources with handshakes in flight; at most `handshakes_max` entries.
    per_source: BTreeMap<IpAddr, usize>,
}

/// Handshake slots, in total and per source.
#[derive(Debug, Clone)]
pub struct Admission {
    counts: Arc<Mutex<Counts>>,
    total_max: usize,
    per_source_max: usize,
    retry_above: usize,
    /// Sources of the validators we were configured with. They are exempt
    /// from the total cap (not from their own), so strangers filling the
    /// table from many addresses cannot lock them out; in flight there are
    /// then at most `total_max + per_source_max * reserved.len()`.
    reserved: BTreeSet<IpAddr>,
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    // Every update is a pair of counter changes made together under the
    // lock; a panic cannot happen between them.
    counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Admission {
    /// `validators`: the addresses of the validators we know, whose sources
    /// keep their share when the table is full.
    pub fn new(
        total_max: usize,
        per_source_max: usize,
        retry_above: usize,
        validators: impl IntoIterator<Item = IpAddr>,
    ) -> Admission {
        Admission {
            counts: Arc::default(),
            total_max,
            per_source_max,
            retry_above,
            reserved: validators.into_iter().map(source_of).collect(),
        }
    }

    /// A handshake slot for an attempt from `ip`, or why not. `needs_retry`
    /// says the attempt's address is not validated and a Retry may be sent.
    pub fn admit(&self, ip: IpAddr, needs_retry: bool) -> Result<Slot, Refusal> {
        let source = source_of(ip);
        let mut counts = lock(&self.counts);
        if needs_retry && counts.total >= self.retry_above {
            return Err(Refusal::RetryFirst);
        }
        let from_source = counts.per_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.per_source_max {
            return Err(Refusal::SourceBusy);
        }
        if counts.total >= self.total_max && !self.reserved.contains(&source) {
            return Err(Refusal::Busy);
        }
        counts.total += 1;
        counts.per_source.insert(source, from_source + 1);
        Ok(Slot {
            counts: self.counts.clone(),
            source,
        })
    }

    /// Handshakes in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        lock(&self.counts).total
    }
}

/// A handshake slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.per_source.remove(&self.source);
            }
        }
    }
}

/// Sources remembered by [`RefusalLog`]; past it, refusals from new
/// sources are counted but not logged until old entries expire.
const LOGGED_SOURCES_MAX: usize = 256;

/// Decides which refusals get a log line: the first from a source, then
/// at most one per interval, carrying how many went unlogged meanwhile.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    /// Per source: when it was last logged, refusals since.
    sources: BTreeMap<IpAddr, (Instant, u64)>,
}

impl RefusalLog {
    pub fn new(interval: Duration) -> RefusalLog {
        RefusalLog {
            interval,
            sources: BTreeMap::new(),
        }
    }

    /// Records a refusal from `ip`; returns `Some(unlogged)` if this one
    /// should be logged, with the number of refusals from that source not
    /// logged since its last line.
    pub fn refused(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        let source = source_of(ip);
        if let Some((last, unlogged)) = self.sources.get_mut(&source) {
            if now.saturating_duration_since(*last) < self.interval {
                *unlogged += 1;
                return None;
            }
            let n = *unlogged;
            *last = now;
            *unlogged = 0;
            return Some(n);
        }
        if self.sources.len() >= LOGGED_SOURCES_MAX {
            let interval = self.interval;
            self.sources
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < interval);
            if self.sources.len() >= LOGGED_SOURCES_MAX {
                return None;
            }
        }
        self.sources.insert(source, (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn a_source_gets_at_most_its_share_and_slots_come_back_when_dropped() {
        let a = Admission::new(10, 2, 100, []);
        let s1 = a.admit(v4(1), false).unwrap();
        let _s2 = a.admit(v4(1), false).unwrap();
        assert_eq!(a.admit(v4(1), false).unwrap_err(), Refusal::SourceBusy);
        let _other = a.admit(v4(2), false).unwrap();
        drop(s1);
        let s3 = a.admit(v4(1), false).unwrap();
        assert_eq!(a.in_flight(), 3);
        drop(s3);
        assert_eq!(a.in_flight(), 2);
    }

    #[test]
    fn the_total_is_capped_and_unvalidated_sources_retry_under_load() {
        let a = Admission::new(3, 4, 2, []);
        let _s: Vec<Slot> = (1..=2).map(|i| a.admit(v4(i), true).unwrap()).collect();
        assert_eq!(a.admit(v4(3), true).unwrap_err(), Refusal::RetryFirst);
        let _s3 = a.admit(v4(3), false).unwrap();
        assert_eq!(a.admit(v4(4), false).unwrap_err(), Refusal::Busy);
    }

    #[test]
    fn a_known_validators_source_keeps_its_share_when_the_table_is_full() {
        let validator = v4(9);
        let a = Admission::new(2, 2, 100, [validator]);
        let _full: Vec<Slot> = (1..=2).map(|i| a.admit(v4(i), false).unwrap()).collect();
        assert_eq!(a.admit(v4(3), false).unwrap_err(), Refusal::Busy);
        let _v1 = a.admit(validator, false).unwrap();
        let _v2 = a.admit(validator, false).unwrap();
        assert_eq!(a.admit(validator, false).unwrap_err(), Refusal::SourceBusy);
        assert_eq!(a.in_flight(), 4);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let a = Admission::new(10, 1, 100, []);
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _s = a.admit(x, false).unwrap();
        assert_eq!(a.admit(y, false).unwrap_err(), Refusal::SourceBusy);
        assert!(a.admit(z, false).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_of(mapped), v4(1));
    }

    #[test]
    fn a_refused_source_is_logged_once_per_interval_with_a_count() {
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.refused(v4(1), t0), Some(0));
        for _ in 0..50 {
            assert_eq!(log.refused(v4(1), t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(log.refused(v4(2), t0), Some(0));
        assert_eq!(log.refused(v4(1), t0 + Duration::from_secs(10)), Some(50));
    }

    #[test]
    fn the_refusal_log_remembers_a_bounded_number_of_sources() {
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let logged = (0..2 * LOGGED_SOURCES_MAX as u32)
            .filter(|i| log.refused(IpAddr::V4(Ipv4Addr::from(*i)), t0).is_some())
            .count();
        assert_eq!(logged, LOGGED_SOURCES_MAX);
        assert!(log.sources.len() <= LOGGED_SOURCES_MAX);
        // Once the interval has passed, new sources are logged again.
        let later = t0 + Duration::from_secs(10);
        assert!(
            log.refused(IpAddr::V4(Ipv4Addr::from(u32::MAX)), later)
                .is_some()
        );
    }
}
