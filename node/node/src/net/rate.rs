//! Token-bucket rate limiting for inbound messages (integer arithmetic).

use std::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..8).filter(|_| b.try_take(t0)).count(), 5);
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..8).filter(|_| b.try_take(t1)).count(), 3);
    }
}
