//! Reads for the full-node benchmark: a flood of the calls dApps make
//! (views, event queries, block reads, block subscriptions) against full
//! nodes or the balancer in front of them, and a probe of how far full
//! nodes trail a validator (each block's arrival on a full node's
//! subscription against its arrival on the validator's).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde::Serialize;
use stele_client::Client;
use stele_client::api::EventFilter;
use stele_types::Address;
use tokio::task::JoinHandle;

use crate::bench::Latency;

/// Blocks a flood's `get_events` call spans (ending at the latest).
const EVENTS_SPAN_BLOCKS: u64 = 100;
/// Most heights a lag probe remembers per node.
const PROBE_HEIGHTS_MAX: usize = 1 << 20;

/// What a read flood did.
#[derive(Debug, Clone, Serialize)]
pub struct ReadsReport {
    pub readers: usize,
    /// The URLs read from (full nodes, or the balancer).
    pub targets: Vec<String>,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_s: f64,
    pub views: u64,
    pub event_queries: u64,
    pub block_reads: u64,
    /// Block subscriptions held open, one per reader.
    pub subscriptions: usize,
    pub blocks_notified: u64,
    /// The first failed call's error, if any.
    pub first_error: Option<String>,
    /// When the reads went straight to the validators: their CPU time as
    /// a share of one core over the load (reads and writes), and calls/s
    /// per core of it.
    pub targets_cpu_share: Option<f64>,
    pub calls_per_core: Option<f64>,
}

/// A running read flood.
#[derive(Debug)]
pub struct ReadFlood {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
    readers: usize,
    targets: Vec<String>,
    subscriptions: usize,
}

#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    errors: AtomicU64,
    views: AtomicU64,
    events: AtomicU64,
    blocks: AtomicU64,
    notified: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counts {
    fn failed(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(error);
    }
}

/// A view to call: a contract, its method and encoded arguments.
#[derive(Debug, Clone)]
pub struct View {
    pub contract: Address,
    pub method: String,
    pub args: Vec<u8>,
}

impl ReadFlood {
    /// Starts `readers` readers, reader `i` on `targets[i % len]` (HTTP
    /// for calls, a WebSocket for its block subscription): of every ten
    /// calls, eight are `view` (or `get_account` of its contract without
    /// one), one a `get_events` of the contract over the last
    /// [`EVENTS_SPAN_BLOCKS`] blocks, one `get_latest_block`; every call is
    /// the view if `views_only`.
    pub async fn start(
        targets: Vec<String>,
        readers: usize,
        view: Option<View>,
        views_only: bool,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut tasks = Vec::with_capacity(2 * readers);
        let mut subscriptions = 0;
        for i in 0..readers {
            let target = &targets[i % targets.len()];
            let http = Client::connect(&format!("http://{target}"))
                .await
                .map_err(|e| anyhow!("{target}: {e}"))?;
            let ws = Client::connect(&format!("ws://{target}"))
                .await
                .map_err(|e| anyhow!("{target}: {e}"))?;
            let mut blocks = ws
                .subscribe_new_blocks()
                .await
                .map_err(|e| anyhow!("{target} subscription: {e}"))?;
            subscriptions += 1;
            let (stop_s, counts_s) = (stop.clone(), counts.clone());
            tasks.push(tokio::spawn(async move {
                // Holds the WebSocket open while it drains.
                let _ws = ws;
                while !stop_s.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(500), blocks.next()).await {
                        Ok(Some(Ok(_))) => {
                            counts_s.notified.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => break,
                        Err(_) => {}
                    }
                }
            }));
            let (stop_r, counts_r, view) = (stop.clone(), counts.clone(), view.clone());
            tasks.push(tokio::spawn(async move {
                let mut n: u64 = i as u64;
                while !stop_r.load(Ordering::Relaxed) {
                    // A views-only flood stays on the view (`n % 10 >= 2`).
                    n = if views_only { 2 } else { n + 1 };
                    let result = read_once(&http, n, view.as_ref(), &counts_r).await;
                    counts_r.calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = result {
                        counts_r.failed(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }));
        }
        Ok(ReadFlood {
            stop,
            counts,
            tasks,
            started: Instant::now(),
            readers,
            targets,
            subscriptions,
        })
    }

    /// Stops the readers and reports.
    pub async fn stop(self) -> ReadsReport {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        for t in self.tasks {
            let _ = t.await;
        }
        let c = &self.counts;
        let calls = c.calls.load(Ordering::Relaxed);
        ReadsReport {
            readers: self.readers,
            targets: self.targets,
            calls,
            errors: c.errors.load(Ordering::Relaxed),
            calls_per_s: if elapsed > 0.0 {
                calls as f64 / elapsed
            } else {
                0.0
            },
            views: c.views.load(Ordering::Relaxed),
            event_queries: c.events.load(Ordering::Relaxed),
            block_reads: c.blocks.load(Ordering::Relaxed),
            subscriptions: self.subscriptions,
            blocks_notified: c.notified.load(Ordering::Relaxed),
            first_error: c
                .first_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            targets_cpu_share: None,
            calls_per_core: None,
        }
    }
}

/// One call of the mix.
async fn read_once(
    client: &Client,
    n: u64,
    view: Option<&View>,
    counts: &Counts,
) -> Result<(), String> {
    let failed = |what: &str, e: stele_client::ClientError| format!("{what}: {e}");
    match n % 10 {
        0 => {
            counts.blocks.fetch_add(1, Ordering::Relaxed);
            client
                .get_latest_block()
                .await
                .map(drop)
                .map_err(|e| failed("get_latest_block", e))
        }
        1 => {
            counts.events.fetch_add(1, Ordering::Relaxed);
            let status = client
                .get_status()
                .await
                .map_err(|e| failed("get_status", e))?;
            let from = status.height.saturating_sub(EVENTS_SPAN_BLOCKS).max(1);
            let filter = EventFilter {
                contract: view.map(|v| v.contract),
                topics: Vec::new(),
            };
            client
                .get_events(filter, from, Some(status.height.max(1)), 100)
                .await
                .map(drop)
                .map_err(|e| failed("get_events", e))
        }
        _ => {
            counts.views.fetch_add(1, Ordering::Relaxed);
            match view {
                Some(v) => client
                    .call_view(v.contract, &v.method, &v.args, None)
                    .await
                    .map(drop)
                    .map_err(|e| failed("call_view", e)),
                None => client
                    .get_account(Address([7; 20]))
                    .await
                    .map(drop)
                    .map_err(|e| failed("get_account", e)),
            }
        }
    }
}

/// When each block reached each probed node's subscription.
#[derive(Debug)]
pub struct LagProbe {
    stop: Arc<AtomicBool>,
    /// The reference node's arrivals, then each full node's.
    tasks: Vec<JoinHandle<BTreeMap<u64, Instant>>>,
}

impl LagProbe {
    /// Subscribes to new blocks on `reference` (a validator) and on each of
    /// `followers`, all `host:port`.
    pub async fn start(reference: String, followers: Vec<String>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for target in std::iter::once(reference).chain(followers) {
            let ws = Client::connect(&format!("ws://{target}"))
                .await
                .map_err(|e| anyhow!("{target}: {e}"))?;
            let mut blocks = ws
                .subscribe_new_blocks()
                .await
                .map_err(|e| anyhow!("{target} subscription: {e}"))?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let _ws = ws;
                let mut seen = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) && seen.len() < PROBE_HEIGHTS_MAX {
                    match tokio::time::timeout(Duration::from_millis(500), blocks.next()).await {
                        Ok(Some(Ok(block))) => {
                            seen.entry(block.header.height).or_insert_with(Instant::now);
                        }
                        Ok(_) => break,
                        Err(_) => {}
                    }
                }
                seen
            }));
        }
        Ok(LagProbe { stop, tasks })
    }

    /// Stops probing; the percentiles, over every height both saw, of how
    /// much later a full node got each block than the reference (0 when
    /// earlier).
    pub async fn stop(self) -> Option<Latency> {
        self.stop.store(true, Ordering::Relaxed);
        let mut seen = Vec::new();
        for t in self.tasks {
            seen.push(t.await.unwrap_or_default());
        }
        let (reference, followers) = seen.split_first()?;
        let mut lags: Vec<Duration> = followers
            .iter()
            .flat_map(|f| {
                f.iter().filter_map(|(h, at)| {
                    reference.get(h).map(|r| at.saturating_duration_since(*r))
                })
            })
            .collect();
        if lags.is_empty() {
            return None;
        }
        lags.sort();
        Some(crate::bench::latency_of(&lags))
    }
}
