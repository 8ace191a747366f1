//! Per-IP token buckets. Checked before a request is read, so a flood
//! costs the node a map lookup per request and nothing else.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by IP address, at most `ips_max` of them.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate_per_s: f64,
    burst: f64,
    ips_max: usize,
    buckets: Mutex<BTreeMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(rate_per_s: u32, burst: u32, ips_max: usize) -> Self {
        RateLimiter {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst),
            ips_max,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes one token for `ip`; false if it has none left.
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        // A poisoned map only holds buckets; keep using it.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(&ip) && buckets.len() >= self.ips_max {
            // Forget addresses whose bucket has refilled: they lose nothing.
            let full_after = self.burst / self.rate_per_s;
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < full_after);
            if buckets.len() >= self.ips_max {
                return false;
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_s).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_per_ip() {
        let r = RateLimiter::new(10, 20, 100);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t = Instant::now();
        assert_eq!((0..25).filter(|_| r.allow(a, t)).count(), 20);
        assert!(r.allow(b, t), "another address has its own bucket");
        assert!(!r.allow(a, t + Duration::from_millis(50)));
        assert!(r.allow(a, t + Duration::from_millis(150)));
    }

    #[test]
    fn table_is_bounded_and_forgets_idle_addresses() {
        let r = RateLimiter::new(10, 10, 2);
        let t = Instant::now();
        assert!(r.allow([1, 1, 1, 1].into(), t));
        assert!(r.allow([1, 1, 1, 2].into(), t));
        assert!(
            !r.allow([1, 1, 1, 3].into(), t),
            "table full of active addresses"
        );
        assert!(r.allow([1, 1, 1, 3].into(), t + Duration::from_secs(2)));
    }
}
