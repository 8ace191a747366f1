//! Per-address token buckets (an IPv4 address or an IPv6 /64). Checked before a request is read, so a flood
//! costs the node a map lookup per request and nothing else; and a byte
//! budget per IP on every connection's socket, so a client streaming
//! WebSocket frames is slowed down before its frames are even read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn::ConnKey;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client address (an IPv4 address or an IPv6 /64, as
/// [`ConnKey`] counts them: a host holds a whole /64), at most `ips_max` of
/// them.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate_per_s: f64,
    burst: f64,
    ips_max: usize,
    buckets: Mutex<BTreeMap<ConnKey, Bucket>>,
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

    /// `ip`'s bucket, refilled up to `now`; `None` if the table is full of
    /// addresses whose buckets have not refilled yet (addresses whose
    /// bucket has refilled are forgotten first: they lose nothing).
    fn bucket<'a>(
        &self,
        buckets: &'a mut BTreeMap<ConnKey, Bucket>,
        ip: IpAddr,
        now: Instant,
    ) -> Option<&'a mut Bucket> {
        let key = ConnKey::of(ip);
        if !buckets.contains_key(&key) && buckets.len() >= self.ips_max {
            let full_after = self.burst / self.rate_per_s;
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < full_after);
            if buckets.len() >= self.ips_max {
                return None;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_s).min(self.burst);
        bucket.at = now;
        Some(bucket)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ConnKey, Bucket>> {
        // A poisoned map only holds buckets; keep using it.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `amount` tokens for `ip`, going into debt if needed, and
    /// returns how long the caller must wait for the debt to be repaid (zero
    /// while the budget lasts). An address the full table cannot track
    /// waits a whole second.
    pub(crate) fn take(&self, ip: IpAddr, amount: f64, now: Instant) -> Duration {
        let mut buckets = self.lock();
        let Some(bucket) = self.bucket(&mut buckets, ip, now) else {
            return Duration::from_secs(1);
        };
        bucket.tokens -= amount;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.rate_per_s)
        }
    }

    /// Takes one token for `ip`; false if it has none left.
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        self.allow_n(ip, 1, now)
    }

    /// Takes `n` tokens for `ip` if it has them all; false (taking none)
    /// otherwise.
    pub(crate) fn allow_n(&self, ip: IpAddr, n: u32, now: Instant) -> bool {
        let n = f64::from(n);
        let mut buckets = self.lock();
        match self.bucket(&mut buckets, ip, now) {
            Some(bucket) if bucket.tokens >= n => {
                bucket.tokens -= n;
                true
            }
            _ => false,
        }
    }
}

/// A client socket whose reads draw on its address's byte budget: after a
/// read that overdraws it, the next read waits until the debt is repaid.
/// Writes pass through.
pub(crate) struct Throttled<S> {
    inner: S,
    ip: IpAddr,
    /// `None`: not metered (a trusted proxy's connection).
    limiter: Option<Arc<RateLimiter>>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Throttled<S> {
    pub(crate) fn new(inner: S, ip: IpAddr, limiter: Option<Arc<RateLimiter>>) -> Self {
        Throttled {
            inner,
            ip,
            limiter,
            wait: None,
        }
    }
}

impl<S> Throttled<S> {
    /// Charges later reads to `ip`'s budget in `limiter` (the client a
    /// PROXY header named).
    pub(crate) fn charge_to(&mut self, ip: IpAddr, limiter: Arc<RateLimiter>) {
        self.ip = ip;
        self.limiter = Some(limiter);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(wait) = self.wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            self.wait = None;
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        // Tokio's clock (the real one outside tests), as the sleep uses.
        let now = tokio::time::Instant::now().into_std();
        let delay = match &self.limiter {
            Some(limiter) => limiter.take(self.ip, read as f64, now),
            None => std::time::Duration::ZERO,
        };
        if !delay.is_zero() {
            self.wait = Some(Box::pin(tokio::time::sleep(delay)));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
    fn one_ipv6_64_shares_one_bucket_and_mapped_ipv4_is_its_ipv4() {
        let r = RateLimiter::new(10, 20, 100);
        let t = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!((0..15).filter(|_| r.allow(a, t)).count(), 15);
        // The rest of the same /64's budget, whatever the address.
        assert_eq!((0..15).filter(|_| r.allow(b, t)).count(), 5);
        assert!(r.allow(other, t), "another /64 has its own bucket");
        let v4: IpAddr = [10, 0, 0, 7].into();
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!((0..20).filter(|_| r.allow(v4, t)).count(), 20);
        assert!(
            !r.allow(mapped, t),
            "an IPv4-mapped address is its IPv4 address"
        );
    }

    #[test]
    fn take_goes_into_debt_and_says_how_long_to_wait() {
        let r = RateLimiter::new(1_000, 2_000, 10);
        let a: IpAddr = [10, 0, 0, 1].into();
        let t = Instant::now();
        assert_eq!(r.take(a, 1_500.0, t), Duration::ZERO);
        // 500 left; taking 1 000 more leaves a debt of 500 bytes = 0.5 s.
        assert_eq!(r.take(a, 1_000.0, t), Duration::from_millis(500));
        // After the wait the debt is repaid and the budget refills.
        assert_eq!(
            r.take(a, 0.0, t + Duration::from_millis(500)),
            Duration::ZERO
        );
        assert_eq!(
            r.take(a, 1_000.0, t + Duration::from_millis(1_500)),
            Duration::ZERO
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_socket_reads_at_its_address_rate() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // 100 KB/s with a 10 KB burst: 110 KB take about a second (virtual
        // time, so nothing here depends on the machine's speed).
        let limiter = Arc::new(RateLimiter::new(100_000, 10_000, 10));
        let (mut client, server) = tokio::io::duplex(4_096);
        let mut server = Throttled::new(server, [10, 0, 0, 9].into(), Some(limiter));
        let writer = tokio::spawn(async move {
            client.write_all(&vec![7u8; 110_000]).await.unwrap();
        });
        let start = tokio::time::Instant::now();
        let mut got = vec![0u8; 110_000];
        server.read_exact(&mut got).await.unwrap();
        writer.await.unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took <= Duration::from_millis(1_100),
            "{took:?}"
        );
        assert!(got.iter().all(|b| *b == 7));
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
