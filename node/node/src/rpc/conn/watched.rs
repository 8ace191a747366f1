//! `Watched`, the admitted client socket: it reports reads and writes to
//! its connection's `Activity`, and its watchdog closes it when idle.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::{Activity, ConnSlot, NOT_STALLED};

/// An admitted client socket: holds the connection's slot, reports
/// activity to its watchdog, and reads end (EOF) and writes fail once the
/// watchdog closed it.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    slot: ConnSlot,
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
        let activity = slot.activity.clone();
        tokio::spawn(watchdog(activity.clone(), header_timeout, idle_timeout));
        let watched = Watched {
            inner,
            activity: activity.clone(),
            slot,
        };
        (watched, activity)
    }
}

impl<S> Watched<S> {
    /// The wrapped socket (reads and writes through it bypass the
    /// watchdog's bookkeeping).
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The connection's slot.
    pub(crate) fn slot(&self) -> &ConnSlot {
        &self.slot
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
        if activity.is_closed() {
            // Evicted for a newcomer.
            return;
        }
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
        "closed by the server: idle, or evicted for a new connection",
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
        match res {
            Poll::Pending => {
                let now = self.activity.now_ms();
                // Only the first pending write after one that went through
                // starts the stall.
                let _ = self.activity.stalled_ms.compare_exchange(
                    NOT_STALLED,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(Ok(n)) if n > 0 => {
                self.activity
                    .stalled_ms
                    .store(NOT_STALLED, Ordering::Relaxed);
            }
            Poll::Ready(_) => {}
        }
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
