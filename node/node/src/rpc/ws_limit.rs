//! The rate limiter for calls on WebSocket connections. An HTTP request
//! passes the limiter before it is read (see `server`); a WebSocket
//! connection passes it once at the upgrade, its bytes are metered as the
//! socket is read (`rate::Throttled`, before any frame is parsed), and then
//! every call (every entry of a batch) takes a token here, before the
//! method runs.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{Id, Request};
use stele_client::api::codes;

use super::errors::err;
use super::rate::RateLimiter;
use super::server::RpcMetrics;

/// Marks the calls of a WebSocket connection with its client's address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsClientIp(pub(crate) IpAddr);

#[derive(Clone)]
pub(crate) struct WsLimitLayer {
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) metrics: Arc<RpcMetrics>,
}

impl<S> tower::Layer<S> for WsLimitLayer {
    type Service = WsLimit<S>;

    fn layer(&self, service: S) -> WsLimit<S> {
        WsLimit {
            service,
            limiter: self.limiter.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct WsLimit<S> {
    service: S,
    limiter: Arc<RateLimiter>,
    metrics: Arc<RpcMetrics>,
}

impl<S> WsLimit<S> {
    /// Takes `n` tokens for `ip`; false (and counted) if they are not there.
    fn allow(&self, ip: Option<WsClientIp>, n: usize) -> bool {
        let Some(WsClientIp(ip)) = ip else {
            return true;
        };
        let now = Instant::now();
        if (0..n.max(1)).all(|_| self.limiter.allow(ip, now)) {
            return true;
        }
        self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        false
    }
}

fn limited() -> jsonrpsee::types::ErrorObjectOwned {
    err(
        codes::RATE_LIMITED,
        "rate limit exceeded for this address".to_string(),
    )
}

impl<S> RpcServiceT for WsLimit<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let allowed = self.allow(request.extensions().get::<WsClientIp>().copied(), 1);
        let service = self.service.clone();
        async move {
            if !allowed {
                return MethodResponse::error(request.id(), limited());
            }
            service.call(request).await
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let ip = batch.extensions().get::<WsClientIp>().copied();
        let allowed = self.allow(ip, batch.len());
        let service = self.service.clone();
        async move {
            if !allowed {
                return MethodResponse::error(Id::Null, limited());
            }
            service.batch(batch).await
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(n)
    }
}
