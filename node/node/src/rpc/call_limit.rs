//! The per-call rate limit. An HTTP request passes the limiter (one token)
//! before it is read (see `server`); a WebSocket connection passes it once
//! at the upgrade and its bytes are metered as the socket is read
//! (`rate::Throttled`). Then every call, alone or in a batch, over HTTP or
//! WebSocket, takes its method's cost in tokens here, before the method
//! runs; the token an HTTP request took at the door pays one token of its
//! first call. A call the budget cannot pay gets `RATE_LIMITED`, and in a
//! batch only the calls past the budget do.
//!
//! Costs (tokens) follow the work a call can cause (docs/rpc.md, Limits):
//! 1 for most calls; 2 for `get_block`, `get_latest_block`,
//! `list_storage`, `get_storage_proof`, `get_account_proof` and
//! `get_storage_history` (up to a block or a page of values or index
//! rows); 16 for `trace_transaction` (up to a block's transactions run
//! again); 4 for `call_view` and `simulate_transaction`; 8 for
//! `estimate_gas` (up to 40 runs); and for `get_events` 1 plus 1 per 100
//! blocks of the range it may scan (at most `events_blocks_max`; a null
//! `to_height` counts up to the latest height). No call costs more than a
//! full bucket (`rate_burst`), so every call can pass.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{Params, Request};
use serde::Deserialize;
use serde::de::IgnoredAny;
use stele_client::api::codes;

use super::conn::Activity;
use super::errors::err;
use super::metrics::RpcMetrics;
use super::rate::RateLimiter;

/// Blocks of a `get_events` range that cost one more token.
pub(crate) const EVENTS_BLOCKS_PER_TOKEN: u64 = 100;

/// Marks the calls of a request or WebSocket connection with its client's
/// address, and the tokens already paid for them at the door.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp {
    pub(crate) ip: IpAddr,
    /// 1 for an HTTP request (its token at the door), 0 for a WebSocket
    /// connection's calls.
    pub(crate) prepaid: u32,
}

/// What a call's cost depends on besides its method and parameters.
#[derive(Debug)]
pub(crate) struct CostModel {
    /// The latest committed height, kept current from the commits channel.
    pub(crate) latest: Arc<AtomicU64>,
    pub(crate) events_blocks_max: u64,
    /// No call costs more than this (the bucket's size).
    pub(crate) cost_max: u32,
}

/// The height part of an event cursor (the rest is not needed to price it).
#[derive(Deserialize)]
struct CursorHeight {
    height: u64,
}

impl CostModel {
    /// The tokens a call of `method` with `params` takes.
    pub(crate) fn cost(&self, method: &str, params: &Params<'_>) -> u32 {
        let cost = match method {
            "get_block"
            | "get_latest_block"
            | "list_storage"
            | "get_storage_proof"
            | "get_account_proof"
            | "get_storage_history" => 2,
            "call_view" | "simulate_transaction" => 4,
            "estimate_gas" => 8,
            // Up to a whole block run again.
            "trace_transaction" => 16,
            "get_events" => 1 + self.events_blocks(params) / EVENTS_BLOCKS_PER_TOKEN,
            _ => 1,
        };
        u32::try_from(cost).unwrap_or(u32::MAX).min(self.cost_max)
    }

    /// Blocks a `get_events` call may scan; the most when its parameters
    /// do not parse (the method will refuse them anyway).
    fn events_blocks(&self, params: &Params<'_>) -> u64 {
        let most = self.events_blocks_max;
        let mut seq = params.sequence();
        let parsed = (|| {
            seq.next::<IgnoredAny>().ok()?;
            let from: u64 = seq.next().ok()?;
            let to: Option<u64> = seq.optional_next().ok()?;
            seq.next::<IgnoredAny>().ok()?;
            let cursor: Option<CursorHeight> = seq.optional_next().ok()?;
            Some((cursor.map_or(from, |c| c.height), to))
        })();
        let Some((from, to)) = parsed else {
            return most;
        };
        let to = to.unwrap_or_else(|| self.latest.load(Ordering::Relaxed));
        to.saturating_sub(from.max(1))
            .saturating_add(1)
            .min(most)
            .max(1)
    }
}

#[derive(Clone)]
pub(crate) struct CallLimitLayer {
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) metrics: Arc<RpcMetrics>,
    pub(crate) costs: Arc<CostModel>,
}

impl<S> tower::Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, service: S) -> CallLimit<S> {
        CallLimit {
            service,
            limiter: self.limiter.clone(),
            metrics: self.metrics.clone(),
            costs: self.costs.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CallLimit<S> {
    service: S,
    limiter: Arc<RateLimiter>,
    metrics: Arc<RpcMetrics>,
    costs: Arc<CostModel>,
}

impl<S> CallLimit<S> {
    /// Takes `cost` tokens, less what was prepaid, for the client; false
    /// (and counted) if they are not there. Calls without a client address
    /// (none reach here today) pass.
    fn allow(&self, client: Option<ClientIp>, cost: u32, prepaid: &mut u32) -> bool {
        let Some(ClientIp { ip, .. }) = client else {
            return true;
        };
        let paid = (*prepaid).min(cost);
        let due = cost - paid;
        if due == 0 || self.limiter.allow_n(ip, due, Instant::now()) {
            *prepaid -= paid;
            return true;
        }
        self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        false
    }
}

fn limited(cost: u32) -> jsonrpsee::types::ErrorObjectOwned {
    err(
        codes::RATE_LIMITED,
        format!("rate limit exceeded for this address (this call costs {cost} tokens)"),
    )
}

impl<S> RpcServiceT for CallLimit<S>
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
        let client = request.extensions().get::<ClientIp>().copied();
        let cost = self.costs.cost(request.method_name(), &request.params());
        let mut prepaid = client.map_or(0, |c| c.prepaid);
        let allowed = self.allow(client, cost, &mut prepaid);
        let service = self.service.clone();
        // A call in flight keeps its WebSocket from being evicted.
        let call = request
            .extensions()
            .get::<Arc<Activity>>()
            .map(Activity::call);
        async move {
            let _call = call;
            if !allowed {
                return MethodResponse::error(request.id(), limited(cost));
            }
            service.call(request).await
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Each call pays for itself; those past the budget are answered
        // with the error in their place of the batch.
        let client = batch.extensions().get::<ClientIp>().copied();
        let mut prepaid = client.map_or(0, |c| c.prepaid);
        for entry in batch.iter_mut() {
            let Ok(BatchEntry::Call(request)) = entry else {
                continue;
            };
            let cost = self.costs.cost(request.method_name(), &request.params());
            if !self.allow(client, cost, &mut prepaid) {
                let id = request.id().into_owned();
                *entry = Err(BatchEntryErr::new(id, limited(cost)));
            }
        }
        let service = self.service.clone();
        let call = batch
            .extensions()
            .get::<Arc<Activity>>()
            .map(Activity::call);
        async move {
            let _call = call;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model(latest: u64) -> CostModel {
        CostModel {
            latest: Arc::new(AtomicU64::new(latest)),
            events_blocks_max: 10_000,
            cost_max: 400,
        }
    }

    #[test]
    fn event_scans_cost_by_the_blocks_they_may_read() {
        let m = model(50_000);
        let cost = |rest: &str| {
            let json = format!(r#"[{{"contract":null,"topics":[]}},{rest}]"#);
            m.cost("get_events", &Params::new(Some(&json)))
        };
        assert_eq!(cost("1, 1, 10"), 1);
        assert_eq!(cost("1, 250, 10"), 3);
        // A null end counts up to the latest height, capped at the most
        // one call scans.
        assert_eq!(cost("49901, null, 10"), 2);
        assert_eq!(cost("1, null, 10"), 101);
        assert_eq!(
            cost(r#"1, 20000, 10, {"height": 19901, "tx_index": 0, "event_index": 0}"#),
            2
        );
        assert_eq!(
            m.cost("get_events", &Params::new(Some("[1]"))),
            101,
            "unparsable parameters cost the most"
        );
        assert_eq!(m.cost("get_status", &Params::new(None)), 1);
        assert_eq!(m.cost("estimate_gas", &Params::new(None)), 8);
        assert_eq!(m.cost("get_storage_history", &Params::new(None)), 2);
        let small = CostModel {
            cost_max: 10,
            ..model(0)
        };
        assert_eq!(small.cost("get_events", &Params::new(Some("[1]"))), 10);
    }
}
