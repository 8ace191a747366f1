//! Prometheus metrics of the node, served at `/metrics`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use stele_consensus::Counters;
use tokio::sync::watch;

use crate::net::{Channel, DropReason, NetMetrics, Refusal};
use crate::precheck::{PrecheckCounters, PrecheckDrop};
use crate::rpc::RpcMetrics;

type Labels = Vec<(&'static str, &'static str)>;

/// Garbage from a validator that the node, past the transport, drops:
/// counted in `messages_dropped{reason}` beside the transport's drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerGarbage {
    /// A gossip frame that is not a gossiped transaction, or whose
    /// transaction does not decode or is over the size limit.
    GossipUndecodable,
    /// A gossiped transaction signed for another chain.
    GossipWrongChain,
    /// A gossiped transaction whose signature does not verify, or does not
    /// match the sender the peer named.
    GossipBadSignature,
    /// A block-sync request that does not decode.
    SyncMalformed,
    /// A pushed or synced block that does not decode, or whose certificate
    /// does not verify against the validator set or does not certify it.
    BlockUncertified,
    /// A snapshot index or chunk, asked for while joining, that does not
    /// check against the certified root (ADR 0012).
    SnapshotInvalid,
}

impl PeerGarbage {
    pub const ALL: [PeerGarbage; 6] = [
        PeerGarbage::GossipUndecodable,
        PeerGarbage::GossipWrongChain,
        PeerGarbage::GossipBadSignature,
        PeerGarbage::SyncMalformed,
        PeerGarbage::BlockUncertified,
        PeerGarbage::SnapshotInvalid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PeerGarbage::GossipUndecodable => "gossip_undecodable",
            PeerGarbage::GossipWrongChain => "gossip_wrong_chain",
            PeerGarbage::GossipBadSignature => "gossip_bad_signature",
            PeerGarbage::SyncMalformed => "sync_malformed",
            PeerGarbage::BlockUncertified => "block_uncertified",
            PeerGarbage::SnapshotInvalid => "snapshot_invalid",
        }
    }
}

/// Every metric the node exports.
pub struct NodeMetrics {
    registry: Mutex<Registry>,
    net: Arc<NetMetrics>,
    pub height: Gauge,
    pub view: Gauge,
    pub view_changes: Counter,
    pub txs_committed: Counter,
    pub mempool_txs: Gauge,
    pub mempool_bytes: Gauge,
    /// Transactions in the mempool behind a nonce gap.
    pub mempool_gapped_txs: Gauge,
    /// Gapped transactions dropped at their TTL (`Mempool::expired_total`).
    pub mempool_expired: Counter,
    pub gossip_dropped: Counter,
    pub equivocations: Counter,
    /// Blocks executed (proposed or validated) on an uncommitted parent.
    pub pipelined_blocks: Counter,
    /// Transactions a proposer dropped because executing them failed inside
    /// the node (never a contract's doing; see `ExecError::TxInternal`).
    pub txs_dropped_internal: Counter,
    /// Proposal (or validation) to commit, seconds.
    pub commit_latency: Histogram,
    /// Difference of consecutive block timestamps, seconds.
    pub block_interval: Histogram,
    /// Executing a block (validation, proposal, or a certified block this
    /// node had not executed: a synced one), seconds.
    pub exec_seconds: Histogram,
    /// Writing a committed block and its state, seconds.
    pub storage_seconds: Histogram,
    /// Consensus-log writes that were synced to disk, seconds.
    pub wal_sync_seconds: Histogram,
    /// Pruning old state versions (on the driver's path), seconds.
    pub prune_seconds: Histogram,
    /// Making a snapshot for peers (ADR 0012, on a thread of its own),
    /// seconds.
    pub snapshot_seconds: Histogram,
    /// The newest snapshot kept: its height and its bytes.
    pub snapshot_height: Gauge,
    pub snapshot_bytes: Gauge,
    /// Snapshot chunks served to peers, and their bytes.
    pub snapshot_chunks_served: Counter,
    pub snapshot_chunk_bytes_served: Counter,
    /// Joining by snapshot: the height joined at (0: none), the chunks
    /// fetched and checked and their bytes, the chunks refused.
    pub snapshot_sync_height: Gauge,
    pub snapshot_sync_chunks_fetched: Counter,
    pub snapshot_sync_chunk_bytes_fetched: Counter,
    pub snapshot_sync_chunks_refused: Counter,
    /// Starts on which the database had lost data it synced and the
    /// operator accepted it (`--accept-data-loss`).
    pub data_loss_accepted: Counter,
    /// High-water mark writes, and those that failed (`mark`).
    pub mark_writes: Counter,
    pub mark_write_failures: Counter,
    /// Proposed blocks this node refused, by `BlockRejected::reason`.
    blocks_rejected: Family<Labels, Counter>,
    peers_connected: Gauge,
    followers_connected: Gauge,
    followers_refused: Gauge,
    messages_in: Family<Labels, Gauge>,
    messages_out: Family<Labels, Gauge>,
    dropped: Family<Labels, Gauge>,
    handshakes_refused: Family<Labels, Gauge>,
    consensus_dropped: Family<Labels, Gauge>,
    /// Counters of the consensus pre-check (`precheck`).
    pub precheck: Arc<PrecheckCounters>,
    precheck_dropped: Family<Labels, Gauge>,
    signatures_verified: Gauge,
    peer_garbage: [AtomicU64; PeerGarbage::ALL.len()],
    budget_waits: Family<Labels, Gauge>,
    /// Set once the RPC server's counters are exported ([`Self::export_rpc`]).
    rpc_exported: OnceLock<()>,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

fn seconds() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl NodeMetrics {
    pub fn new(net: Arc<NetMetrics>) -> NodeMetrics {
        let m = NodeMetrics {
            registry: Mutex::new(Registry::with_prefix("stele")),
            net,
            height: Gauge::default(),
            view: Gauge::default(),
            view_changes: Counter::default(),
            txs_committed: Counter::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            mempool_gapped_txs: Gauge::default(),
            mempool_expired: Counter::default(),
            gossip_dropped: Counter::default(),
            equivocations: Counter::default(),
            pipelined_blocks: Counter::default(),
            txs_dropped_internal: Counter::default(),
            commit_latency: seconds(),
            block_interval: seconds(),
            exec_seconds: seconds(),
            storage_seconds: seconds(),
            wal_sync_seconds: seconds(),
            prune_seconds: seconds(),
            snapshot_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            snapshot_height: Gauge::default(),
            snapshot_bytes: Gauge::default(),
            snapshot_chunks_served: Counter::default(),
            snapshot_chunk_bytes_served: Counter::default(),
            snapshot_sync_height: Gauge::default(),
            snapshot_sync_chunks_fetched: Counter::default(),
            snapshot_sync_chunk_bytes_fetched: Counter::default(),
            snapshot_sync_chunks_refused: Counter::default(),
            data_loss_accepted: Counter::default(),
            mark_writes: Counter::default(),
            mark_write_failures: Counter::default(),
            blocks_rejected: Family::default(),
            peers_connected: Gauge::default(),
            followers_connected: Gauge::default(),
            followers_refused: Gauge::default(),
            messages_in: Family::default(),
            messages_out: Family::default(),
            dropped: Family::default(),
            handshakes_refused: Family::default(),
            consensus_dropped: Family::default(),
            precheck: Arc::default(),
            precheck_dropped: Family::default(),
            signatures_verified: Gauge::default(),
            peer_garbage: Default::default(),
            budget_waits: Family::default(),
            rpc_exported: OnceLock::new(),
        };
        {
            let mut r = m.registry();
            r.register(
                "height",
                "Height of the last committed block",
                m.height.clone(),
            );
            r.register("view", "Current consensus view", m.view.clone());
            r.register("view_changes", "View changes seen", m.view_changes.clone());
            r.register(
                "pipelined_blocks",
                "Blocks executed on a parent still in its commit round",
                m.pipelined_blocks.clone(),
            );
            r.register(
                "txs_dropped_internal",
                "Transactions dropped by this proposer because executing them failed inside the node",
                m.txs_dropped_internal.clone(),
            );
            r.register(
                "txs_committed",
                "Transactions committed (rate() gives tx/s)",
                m.txs_committed.clone(),
            );
            r.register(
                "mempool_txs",
                "Transactions in the mempool",
                m.mempool_txs.clone(),
            );
            r.register(
                "mempool_bytes",
                "Bytes in the mempool",
                m.mempool_bytes.clone(),
            );
            r.register(
                "mempool_gapped_txs",
                "Transactions in the mempool behind a nonce gap (no block can include them yet)",
                m.mempool_gapped_txs.clone(),
            );
            r.register(
                "mempool_expired",
                "Transactions dropped from the mempool still behind a nonce gap after mempool.gapped_ttl_blocks",
                m.mempool_expired.clone(),
            );
            r.register(
                "gossip_dropped",
                "Gossiped transactions dropped because verification was saturated",
                m.gossip_dropped.clone(),
            );
            r.register(
                "equivocations",
                "Conflicting signed messages seen from validators",
                m.equivocations.clone(),
            );
            r.register(
                "commit_latency_seconds",
                "From a block's proposal or validation to its commit",
                m.commit_latency.clone(),
            );
            r.register(
                "block_interval_seconds",
                "Difference of consecutive block timestamps",
                m.block_interval.clone(),
            );
            r.register(
                "execution_seconds",
                "Executing a block",
                m.exec_seconds.clone(),
            );
            r.register(
                "storage_commit_seconds",
                "Writing a block with its state",
                m.storage_seconds.clone(),
            );
            r.register(
                "wal_sync_seconds",
                "Consensus-log writes synced to disk (the votes that must survive a power loss)",
                m.wal_sync_seconds.clone(),
            );
            r.register(
                "prune_seconds",
                "Pruning old state versions, which holds the state lock and delays the next block",
                m.prune_seconds.clone(),
            );
            r.register(
                "snapshot_seconds",
                "Making a state snapshot for peers, on a thread of its own (ADR 0012)",
                m.snapshot_seconds.clone(),
            );
            r.register(
                "snapshot_height",
                "Height of the newest state snapshot this node keeps (0: none)",
                m.snapshot_height.clone(),
            );
            r.register(
                "snapshot_bytes",
                "Bytes of the newest state snapshot this node keeps",
                m.snapshot_bytes.clone(),
            );
            r.register(
                "snapshot_chunks_served",
                "State snapshot chunks served to joining peers",
                m.snapshot_chunks_served.clone(),
            );
            r.register(
                "snapshot_chunk_bytes_served",
                "Bytes of the state snapshot chunks served to joining peers",
                m.snapshot_chunk_bytes_served.clone(),
            );
            r.register(
                "snapshot_sync_height",
                "Height of the snapshot this node joined by since it started (0: none)",
                m.snapshot_sync_height.clone(),
            );
            r.register(
                "snapshot_sync_chunks_fetched",
                "State snapshot chunks fetched from peers and checked while joining",
                m.snapshot_sync_chunks_fetched.clone(),
            );
            r.register(
                "snapshot_sync_chunk_bytes_fetched",
                "Bytes of the state snapshot chunks fetched and checked while joining",
                m.snapshot_sync_chunk_bytes_fetched.clone(),
            );
            r.register(
                "snapshot_sync_chunks_refused",
                "State snapshot chunks refused while joining: their bytes did not check (the sender is left out)",
                m.snapshot_sync_chunks_refused.clone(),
            );
            r.register(
                "data_loss_accepted",
                "Starts on which the database had lost data it synced and the operator accepted it (--accept-data-loss)",
                m.data_loss_accepted.clone(),
            );
            r.register(
                "mark_writes",
                "Writes of the high-water mark (at most one per 50 ms, each two fsyncs)",
                m.mark_writes.clone(),
            );
            r.register(
                "mark_write_failures",
                "Failed writes of the high-water mark (a later loss of synced data may go unseen)",
                m.mark_write_failures.clone(),
            );
            r.register(
                "blocks_rejected",
                "Proposed blocks this node refused, by reason",
                m.blocks_rejected.clone(),
            );
            r.register(
                "peers_connected",
                "Validators connected",
                m.peers_connected.clone(),
            );
            r.register(
                "followers_connected",
                "Followers (full nodes) connected",
                m.followers_connected.clone(),
            );
            r.register(
                "followers_refused",
                "Followers refused: every follower slot taken, or off the allow list",
                m.followers_refused.clone(),
            );
            r.register(
                "messages_in",
                "Messages received by channel",
                m.messages_in.clone(),
            );
            r.register(
                "messages_out",
                "Messages sent by channel",
                m.messages_out.clone(),
            );
            r.register(
                "messages_dropped",
                "Transport messages dropped by reason",
                m.dropped.clone(),
            );
            r.register(
                "peer_budget_waits",
                "Times a validator had to wait for its budget, by channel (consensus, gossip: its queued inbound bytes were at the budget; sync: its block-sync request was over the sync budget)",
                m.budget_waits.clone(),
            );
            r.register(
                "handshakes_refused",
                "Inbound connection attempts given no handshake slot, by reason (retry: answered with a QUIC Retry first)",
                m.handshakes_refused.clone(),
            );
            r.register(
                "consensus_precheck_dropped",
                "Consensus messages dropped before reaching the replica, by reason (before any signature check, except bad_signature)",
                m.precheck_dropped.clone(),
            );
            r.register(
                "consensus_signatures_verified",
                "Consensus message signatures checked off the driver and found good",
                m.signatures_verified.clone(),
            );
            r.register(
                "consensus_messages_dropped",
                "Consensus messages dropped by reason",
                m.consensus_dropped.clone(),
            );
        }
        m
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Exports the RPC server's counters (`stele_rpc_*`), read at each
    /// scrape. A node has one RPC server: a second call is ignored, so no
    /// metric is ever exported twice.
    pub fn export_rpc(&self, rpc: Arc<RpcMetrics>) {
        if self.rpc_exported.set(()).is_ok() {
            self.registry()
                .register_collector(Box::new(RpcCollector(rpc)));
        }
    }

    /// Counts a refused block under its `reason` label.
    pub fn record_block_rejected(&self, reason: &'static str) {
        self.blocks_rejected
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// Blocks refused for `reason` so far.
    pub fn blocks_rejected(&self, reason: &'static str) -> u64 {
        self.blocks_rejected
            .get_or_create(&vec![("reason", reason)])
            .get()
    }

    /// Counts one piece of garbage from a peer.
    pub fn record_peer_garbage(&self, reason: PeerGarbage) {
        self.peer_garbage[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Garbage from peers dropped for `reason` so far.
    pub fn peer_garbage(&self, reason: PeerGarbage) -> u64 {
        load(&self.peer_garbage[reason as usize])
    }

    /// Copies the replica's drop counters into the exported gauges.
    pub fn record_consensus_counters(&self, c: &Counters) {
        let set = |reason: &'static str, v: u64| {
            self.consensus_dropped
                .get_or_create(&vec![("reason", reason)])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set("oversized", c.dropped_oversized);
        set("malformed", c.dropped_malformed);
        set("non_validator", c.dropped_non_validator);
        set("bad_signature", c.dropped_bad_signature);
        set("wrong_epoch", c.dropped_wrong_epoch);
        set("wrong_view", c.dropped_wrong_view);
        set("out_of_window", c.dropped_out_of_window);
        set("invalid", c.dropped_invalid);
        set("duplicate", c.duplicates);
        set("unneeded_vote", c.unneeded_votes);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let n = &self.net;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.peers_connected.set(as_i64(n.peers_connected()));
        self.followers_connected
            .set(as_i64(n.followers_connected()));
        self.followers_refused.set(as_i64(n.followers_refused()));
        for ch in Channel::ALL {
            let labels = vec![("channel", ch.name())];
            self.messages_in
                .get_or_create(&labels)
                .set(as_i64(n.msgs_in(ch)));
            self.messages_out
                .get_or_create(&labels)
                .set(as_i64(n.msgs_out(ch)));
        }
        for reason in DropReason::ALL {
            self.dropped
                .get_or_create(&vec![("reason", reason.name())])
                .set(as_i64(n.dropped(reason)));
        }
        self.dropped
            .get_or_create(&vec![("reason", "handshake_failed")])
            .set(as_i64(n.handshake_failures()));
        for reason in PeerGarbage::ALL {
            self.dropped
                .get_or_create(&vec![("reason", reason.name())])
                .set(as_i64(self.peer_garbage(reason)));
        }
        for ch in Channel::ALL {
            self.budget_waits
                .get_or_create(&vec![("channel", ch.name())])
                .set(as_i64(n.budget_waits(ch)));
        }
        for reason in PrecheckDrop::ALL {
            self.precheck_dropped
                .get_or_create(&vec![("reason", reason.name())])
                .set(as_i64(self.precheck.dropped(reason)));
        }
        self.signatures_verified
            .set(as_i64(self.precheck.verified()));
        for reason in Refusal::ALL {
            self.handshakes_refused
                .get_or_create(&vec![("reason", reason.name())])
                .set(as_i64(n.handshakes_refused(reason)));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry());
        out
    }
}

/// The RPC server's counters as Prometheus metrics, read when scraped.
#[derive(Debug)]
struct RpcCollector(Arc<RpcMetrics>);

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn const_counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

impl Collector for RpcCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let m = &self.0;
        {
            let mut calls = encoder.encode_descriptor(
                "rpc_calls",
                "JSON-RPC calls by method (subscriptions included) that passed the rate limiter",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (method, count) in &m.requests {
                ConstCounter::new(load(count))
                    .encode(calls.encode_family(&[("method", *method)])?)?;
            }
        }
        const_counter(
            &mut encoder,
            "rpc_call_errors",
            "JSON-RPC calls answered with an error",
            load(&m.errors),
        )?;
        const_counter(
            &mut encoder,
            "rpc_http_requests",
            "HTTP requests to the RPC port (WebSocket upgrades, /health and /status included)",
            load(&m.http_requests),
        )?;
        const_counter(
            &mut encoder,
            "rpc_rate_limited",
            "HTTP requests (429) and calls (2008) refused by the per-address rate limiter",
            load(&m.rate_limited),
        )?;
        const_counter(
            &mut encoder,
            "rpc_oversized_requests",
            "HTTP requests refused with 413 for a body over [rpc] body_bytes_max",
            load(&m.oversized_requests),
        )?;
        {
            let mut refused = encoder.encode_descriptor(
                "rpc_proxy_headers_refused",
                "RPC connections from a trusted proxy closed for want of a well-formed PROXY protocol header ([rpc] proxy_protocol), by reason (malformed: wrong bytes; incomplete: the connection ended or timed out within the header)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, count) in &m.proxy_headers_refused {
                ConstCounter::new(load(count))
                    .encode(refused.encode_family(&[("reason", *reason)])?)?;
            }
        }
        {
            let mut refused = encoder.encode_descriptor(
                "rpc_connections_refused",
                "RPC connections refused and closed at once, by reason (per_ip: connections_per_ip_max open from the address; full: connections_max open)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, count) in [
                ("per_ip", &m.connections_refused_per_ip),
                ("full", &m.connections_refused),
            ] {
                ConstCounter::new(load(count))
                    .encode(refused.encode_family(&[("reason", reason)])?)?;
            }
        }
        {
            let mut evicted = encoder.encode_descriptor(
                "rpc_connections_evicted",
                "Open RPC connections closed to admit a new one while connections_max were open, by reason (incomplete_request: no complete request yet; idle_keep_alive: HTTP with no request in flight; ws_not_reading: a WebSocket that neither reads nor answers pings; ws_idle: a WebSocket with no subscription and no call in flight)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, count) in &m.connections_evicted {
                ConstCounter::new(load(count))
                    .encode(evicted.encode_family(&[("reason", *reason)])?)?;
            }
        }
        let active =
            ConstGauge::new(i64::try_from(load(&m.active_subscriptions)).unwrap_or(i64::MAX));
        active.encode(encoder.encode_descriptor(
            "rpc_subscriptions_active",
            "Open WebSocket subscriptions",
            None,
            active.metric_type(),
        )?)?;
        const_counter(
            &mut encoder,
            "rpc_subscriptions_lagged",
            "Subscriptions ended because the subscriber fell more than subscription_lag_blocks_max behind",
            load(&m.subscriptions_lagged),
        )
    }
}

/// Serves `GET /metrics` on `listen` until `shutdown` turns true.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<NodeMetrics>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    serve_on(crate::listen::bind_tcp(listen)?, metrics, shutdown).await
}

/// Serves `GET /metrics` on a listener bound beforehand
/// ([`crate::listen::bind_tcp`]), on the runtime this is awaited on, until
/// `shutdown` turns true.
pub async fn serve_on(
    listener: std::net::TcpListener,
    metrics: Arc<NodeMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(addr)
}
