//! Rate-limited reporting of requests refused for their size. A line per
//! refusal would let any client write the node's log as fast as it can
//! send: the first refusal after a quiet interval is logged at once, the
//! rest of the interval only counted, and the count logged when the
//! interval ends (`flush`, from a timer).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often at most a line about oversized requests is written.
pub(crate) const OVERSIZE_LOG_INTERVAL_MS: u64 = 60_000;

#[derive(Debug)]
pub(crate) struct OversizeLog {
    interval: Duration,
    limit_bytes: u32,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// When the last line was written.
    logged_at: Option<Instant>,
    /// Refusals since then, not written yet.
    unreported: u64,
    /// The address of the last of them.
    last_from: Option<IpAddr>,
}

impl OversizeLog {
    pub(crate) fn new(limit_bytes: u32, interval: Duration) -> Self {
        OversizeLog {
            interval,
            limit_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records a request from `from` refused for its size; the line to log
    /// now, if one is due.
    pub(crate) fn refused(&self, from: IpAddr, now: Instant) -> Option<String> {
        let mut inner = self.lock();
        let quiet = inner
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if quiet && inner.unreported == 0 {
            inner.logged_at = Some(now);
            return Some(format!(
                "rpc: refused a request from {from} over body_bytes_max ({} bytes); further refusals are counted and logged at most every {} s",
                self.limit_bytes,
                self.interval.as_secs()
            ));
        }
        inner.unreported += 1;
        inner.last_from = Some(from);
        if quiet {
            return self.report(&mut inner, now);
        }
        None
    }

    /// The line for refusals not logged yet, once the interval since the
    /// last line has passed.
    pub(crate) fn flush(&self, now: Instant) -> Option<String> {
        let mut inner = self.lock();
        let due = inner
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if due && inner.unreported > 0 {
            return self.report(&mut inner, now);
        }
        None
    }

    fn report(&self, inner: &mut Inner, now: Instant) -> Option<String> {
        let line = format!(
            "rpc: refused {} more requests over body_bytes_max ({} bytes) since the last report, the last from {}",
            inner.unreported,
            self.limit_bytes,
            inner
                .last_from
                .map_or_else(|| "?".to_string(), |ip| ip.to_string())
        );
        inner.unreported = 0;
        inner.logged_at = Some(now);
        Some(line)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A counter and two fields: usable whatever panicked.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_flood_of_oversized_requests_writes_one_line_per_interval_with_its_count() {
        let log = OversizeLog::new(1024, Duration::from_secs(60));
        let t0 = Instant::now();
        let first = log.refused(IP, t0).unwrap();
        assert!(
            first.contains("1024 bytes") && first.contains("127.0.0.1"),
            "{first}"
        );
        // 10 000 more within the interval: not one line.
        for i in 0..10_000u64 {
            let at = t0 + Duration::from_millis(i % 59_000);
            assert_eq!(log.refused(IP, at), None);
            assert_eq!(log.flush(at), None);
        }
        // The interval over, the timer writes the count once.
        let t1 = t0 + Duration::from_secs(60);
        let line = log.flush(t1).unwrap();
        assert!(line.contains("refused 10000 more"), "{line}");
        assert_eq!(log.flush(t1 + Duration::from_secs(120)), None);
        // Within the next interval: counted; a refusal after it writes the
        // count itself, without waiting for the timer.
        assert_eq!(log.refused(IP, t1 + Duration::from_secs(1)), None);
        let line = log.refused(IP, t1 + Duration::from_secs(61)).unwrap();
        assert!(line.contains("refused 2 more"), "{line}");
        // After a quiet interval, the next refusal is logged at once again.
        let line = log.refused(IP, t1 + Duration::from_secs(200)).unwrap();
        assert!(line.contains("refused a request"), "{line}");
    }
}
