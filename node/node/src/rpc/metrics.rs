//! The RPC server's counters, and the middleware that counts every call by
//! method and every error in one place, for calls alone and in batches, over
//! HTTP and WebSocket (subscriptions included).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::Request;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::conn::Eviction;

/// Every method name, for the per-method counters.
pub(crate) const METHODS: [&str; 22] = [
    "send_transaction",
    "get_transaction",
    "get_receipt",
    "wait_for_receipt",
    "call_view",
    "simulate_transaction",
    "estimate_gas",
    "get_block",
    "get_latest_block",
    "get_account",
    "get_contract",
    "get_code",
    "get_storage_proof",
    "get_account_proof",
    "trace_transaction",
    "list_storage",
    "get_events",
    "get_storage_history",
    "get_status",
    "subscribe_new_blocks",
    "subscribe_events",
    "subscribe_tx_status",
];

/// The `reason` labels of `proxy_headers_refused` (`ProxyHeaderError::label`).
const PROXY_HEADER_REFUSALS: [&str; 2] = ["malformed", "incomplete"];

/// Counters the node renders into Prometheus.
#[derive(Debug)]
pub struct RpcMetrics {
    /// Calls by method name (every name in the API is present).
    pub requests: BTreeMap<&'static str, AtomicU64>,
    /// Calls that ended in an error (refused by the rate limit or not).
    pub errors: AtomicU64,
    /// HTTP requests and WebSocket calls refused by the rate limiter.
    pub rate_limited: AtomicU64,
    /// Connections refused because `connections_max` were open.
    pub connections_refused: AtomicU64,
    /// Connections refused because their address had
    /// `connections_per_ip_max` open.
    pub connections_refused_per_ip: AtomicU64,
    /// Open connections closed to admit a newcomer while `connections_max`
    /// were open, by reason (`incomplete_request`, `idle_keep_alive`,
    /// `ws_not_reading`, `ws_idle`; every reason is present).
    pub connections_evicted: BTreeMap<&'static str, AtomicU64>,
    /// Open WebSocket subscriptions.
    pub active_subscriptions: AtomicU64,
    /// Subscriptions ended because the subscriber fell too far behind.
    pub subscriptions_lagged: AtomicU64,
    /// HTTP requests (including WebSocket upgrades and health checks).
    pub http_requests: AtomicU64,
    /// HTTP requests refused with 413 for a body over `body_bytes_max`.
    pub oversized_requests: AtomicU64,
    /// Connections from a trusted proxy closed for want of a well-formed
    /// PROXY protocol header (`rpc.proxy_protocol`), by reason
    /// (`malformed`, `incomplete`; both present).
    pub proxy_headers_refused: BTreeMap<&'static str, AtomicU64>,
}

impl RpcMetrics {
    pub(super) fn new() -> Self {
        RpcMetrics {
            requests: METHODS.iter().map(|m| (*m, AtomicU64::new(0))).collect(),
            errors: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_refused_per_ip: AtomicU64::new(0),
            connections_evicted: Eviction::ALL
                .iter()
                .map(|e| (e.label(), AtomicU64::new(0)))
                .collect(),
            active_subscriptions: AtomicU64::new(0),
            subscriptions_lagged: AtomicU64::new(0),
            http_requests: AtomicU64::new(0),
            oversized_requests: AtomicU64::new(0),
            proxy_headers_refused: PROXY_HEADER_REFUSALS
                .iter()
                .map(|r| (*r, AtomicU64::new(0)))
                .collect(),
        }
    }

    fn call(&self, method: &str) {
        if let Some(c) = self.requests.get(method) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn evicted(&self, why: Eviction) {
        if let Some(c) = self.connections_evicted.get(why.label()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connections evicted for `reason` so far (a label of
    /// `connections_evicted`).
    pub fn evicted_of(&self, reason: &str) -> u64 {
        self.connections_evicted
            .get(reason)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub(super) fn proxy_header_refused(&self, reason: &'static str) {
        if let Some(c) = self.proxy_headers_refused.get(reason) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connections refused for want of a well-formed PROXY header, for
    /// `reason` (`malformed` or `incomplete`).
    pub fn proxy_headers_refused_of(&self, reason: &str) -> u64 {
        self.proxy_headers_refused
            .get(reason)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Calls of `method` so far.
    pub fn requests_of(&self, method: &str) -> u64 {
        self.requests
            .get(method)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Counts the calls that pass the rate limit (it sits inside
/// `CallLimitLayer`) and those of them that end in an error.
#[derive(Clone)]
pub(crate) struct CallCountLayer(pub(crate) Arc<RpcMetrics>);

impl<S> tower::Layer<S> for CallCountLayer {
    type Service = CallCount<S>;

    fn layer(&self, service: S) -> CallCount<S> {
        CallCount {
            service,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CallCount<S> {
    service: S,
    metrics: Arc<RpcMetrics>,
}

/// One answer of a batch response, read only for whether it is an error.
#[derive(Deserialize)]
struct Answer {
    error: Option<IgnoredAny>,
}

/// Errors among the answers of a batch response (0 if it does not parse
/// as one, as for a batch refused whole).
fn batch_errors(response: &MethodResponse) -> u64 {
    serde_json::from_str::<Vec<Answer>>(response.as_ref()).map_or(0, |answers| {
        answers.iter().filter(|a| a.error.is_some()).count() as u64
    })
}

impl<S> RpcServiceT for CallCount<S>
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
        self.metrics.call(request.method_name());
        let (service, metrics) = (self.service.clone(), self.metrics.clone());
        async move {
            let response = service.call(request).await;
            if response.is_error() {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
            }
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Entries the rate limit refused are errors already in place; they
        // are neither calls nor errors here.
        let mut refused = 0u64;
        for entry in batch.iter() {
            match entry {
                Ok(BatchEntry::Call(request)) => self.metrics.call(request.method_name()),
                Ok(BatchEntry::Notification(_)) => {}
                Err(_) => refused += 1,
            }
        }
        let (service, metrics) = (self.service.clone(), self.metrics.clone());
        async move {
            let response = service.batch(batch).await;
            let errors = batch_errors(&response).saturating_sub(refused);
            metrics.errors.fetch_add(errors, Ordering::Relaxed);
            response
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(n)
    }
}
