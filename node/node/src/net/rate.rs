//! Token-bucket rate limiting for inbound messages and block-sync serving
//! (integer arithmetic, time passed in: the tests run on virtual time).

use std::time::{Duration, Instant};

use super::config::NetConfig;

const NANOS_PER_TOKEN: u128 = 1_000_000_000;

/// A token bucket: `rate` tokens per second up to `burst`. Tokens are kept
/// in billionths so refills of a fraction of a token are not lost.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: u128,
    burst_nanos: u128,
    nanos: u128,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst_nanos = u128::from(burst.max(1)) * NANOS_PER_TOKEN;
        TokenBucket {
            rate_per_sec: u128::from(rate_per_sec),
            burst_nanos,
            nanos: burst_nanos,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = now;
        self.nanos = (self.nanos + elapsed * self.rate_per_sec).min(self.burst_nanos);
        if self.nanos >= NANOS_PER_TOKEN {
            self.nanos -= NANOS_PER_TOKEN;
            true
        } else {
            false
        }
    }
}

/// A token bucket that can go into debt: a cost known only afterwards (the
/// bytes of a response) is charged in full, and the bucket is not ready
/// again until the rate has paid the debt off. Balances are in billionths
/// of a token.
#[derive(Debug, Clone)]
struct DebtBucket {
    rate_per_sec: u128,
    burst_nanos: i128,
    nanos: i128,
    last: Instant,
}

impl DebtBucket {
    fn new(rate_per_sec: u64, burst: u64, now: Instant) -> Self {
        let burst_nanos = to_i128(u128::from(burst.max(1)) * NANOS_PER_TOKEN);
        DebtBucket {
            rate_per_sec: u128::from(rate_per_sec.max(1)),
            burst_nanos,
            nanos: burst_nanos,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let added = to_i128(elapsed.saturating_mul(self.rate_per_sec));
        self.nanos = self.nanos.saturating_add(added).min(self.burst_nanos);
    }

    /// How long until the bucket holds `tokens` (zero: now).
    fn wait(&mut self, tokens: u64, now: Instant) -> Duration {
        self.refill(now);
        let need = to_i128(u128::from(tokens) * NANOS_PER_TOKEN);
        let missing = need.saturating_sub(self.nanos);
        if missing <= 0 {
            return Duration::ZERO;
        }
        // Rounded up, so waiting that long is always enough.
        let nanos = (missing.unsigned_abs()).div_ceil(self.rate_per_sec);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Takes `tokens`, into debt if need be.
    fn take(&mut self, tokens: u64, now: Instant) {
        self.refill(now);
        let cost = to_i128(u128::from(tokens) * NANOS_PER_TOKEN);
        self.nanos = self.nanos.saturating_sub(cost);
    }
}

fn to_i128(v: u128) -> i128 {
    i128::try_from(v).unwrap_or(i128::MAX)
}

/// What one peer may ask of our block store: requests per second (each
/// costs a token before it is served) and response bytes per second (each
/// response is charged once its size is known; while the peer is in debt
/// its next request waits). A request that is not ready waits, holding one
/// of the peer's `sync_streams_max` stream slots, so at most that many
/// wait and none is served beyond the budget.
#[derive(Debug, Clone)]
pub struct SyncBudget {
    requests: DebtBucket,
    bytes: DebtBucket,
}

impl SyncBudget {
    pub fn new(config: &NetConfig, now: Instant) -> Self {
        SyncBudget {
            requests: DebtBucket::new(
                u64::from(config.sync_requests_per_sec),
                u64::from(config.sync_requests_burst),
                now,
            ),
            // A full response must always fit the burst, or a peer could
            // never be served one.
            bytes: DebtBucket::new(
                config.sync_response_bytes_per_sec,
                config
                    .sync_response_bytes_burst
                    .max(config.sync_response_bytes_max as u64),
                now,
            ),
        }
    }

    /// Starts serving a request if the peer's budget allows it now;
    /// otherwise says how long to wait before asking again.
    pub fn try_start(&mut self, now: Instant) -> Result<(), Duration> {
        let wait = self.requests.wait(1, now).max(self.bytes.wait(0, now));
        if wait.is_zero() {
            self.requests.take(1, now);
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Charges a response of `bytes` to the peer.
    pub fn charge(&mut self, bytes: usize, now: Instant) {
        self.bytes.take(bytes as u64, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..8).filter(|_| b.try_take(t0)).count(), 5);
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..8).filter(|_| b.try_take(t1)).count(), 3);
    }

    fn sync_config() -> NetConfig {
        NetConfig {
            sync_requests_per_sec: 10,
            sync_requests_burst: 4,
            sync_response_bytes_per_sec: 1_000,
            sync_response_bytes_burst: 2_000,
            sync_response_bytes_max: 1_000,
            ..NetConfig::default()
        }
    }

    /// Serves requests as fast as the budget allows for `secs` of virtual
    /// time, each answered with `response` bytes; returns how many.
    fn served_in(budget: &mut SyncBudget, t0: Instant, secs: u64, response: usize) -> u64 {
        let mut now = t0;
        let end = t0 + Duration::from_secs(secs);
        let mut served = 0;
        while now < end {
            match budget.try_start(now) {
                Ok(()) => {
                    budget.charge(response, now);
                    served += 1;
                }
                Err(wait) => {
                    assert!(!wait.is_zero());
                    now += wait;
                }
            }
        }
        served
    }

    #[test]
    fn sync_requests_are_served_at_the_burst_then_at_the_request_rate() {
        let t0 = Instant::now();
        let mut budget = SyncBudget::new(&sync_config(), t0);
        for _ in 0..4 {
            assert_eq!(budget.try_start(t0), Ok(()));
        }
        assert_eq!(budget.try_start(t0), Err(Duration::from_millis(100)));
        // Empty responses: only the request rate binds. 10 s at 10/s.
        let served = served_in(&mut budget, t0, 10, 0);
        assert!((99..=101).contains(&served), "{served} requests in 10 s");
    }

    #[test]
    fn sync_responses_are_served_at_the_byte_rate_and_a_debt_delays_the_next_request() {
        let t0 = Instant::now();
        let mut budget = SyncBudget::new(&sync_config(), t0);
        assert_eq!(budget.try_start(t0), Ok(()));
        // 5,000 bytes against a 2,000 burst: 3,000 in debt, 3 s at 1,000/s.
        budget.charge(5_000, t0);
        assert_eq!(budget.try_start(t0), Err(Duration::from_secs(3)));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(budget.try_start(t1), Ok(()));
        // Responses of 500 bytes: the byte rate (2/s) binds, not the
        // request rate (10/s). 20 s after the debt: about 40, plus the burst.
        let mut budget = SyncBudget::new(&sync_config(), t0);
        let served = served_in(&mut budget, t0, 20, 500);
        assert!((40..=46).contains(&served), "{served} responses in 20 s");
    }

    #[test]
    fn a_response_larger_than_the_byte_burst_is_still_served() {
        let t0 = Instant::now();
        let config = NetConfig {
            sync_response_bytes_burst: 10,
            ..sync_config()
        };
        let mut budget = SyncBudget::new(&config, t0);
        assert_eq!(budget.try_start(t0), Ok(()));
        budget.charge(1_000, t0);
        // The burst is raised to one full response: not in debt.
        assert_eq!(budget.try_start(t0), Ok(()));
    }
}
