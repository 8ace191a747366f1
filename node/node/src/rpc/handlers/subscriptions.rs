//! Subscriptions: new blocks, events and a transaction's status, each
//! following the feed of committed blocks.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::{Extensions, PendingSubscriptionSink, SubscriptionSink};
use serde::Serialize;
use stele_client::api::*;
use stele_types::Hash;

use super::tx::receipt_in;
use super::{Handler, TX_STATUS_OVERHEAD};
use crate::rpc::conn::{Activity, Subscribed};
use crate::rpc::errors::invalid;
use crate::rpc::feed::{Feed, FeedEnd, FeedLimits};
use crate::rpc::metrics::RpcMetrics;
use crate::store::CommittedBlock;

impl Handler {
    /// `subscribe_new_blocks`: every committed block's header and totals.
    pub(super) async fn follow_new_blocks(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        let mut feed = self.feed()?;
        let Some((sink, _guard)) = self.accept(pending, ext).await else {
            return Ok(());
        };
        loop {
            let Some(block) = self.next_block(&sink, &mut feed).await? else {
                return Ok(());
            };
            let item = NewBlock {
                hash: block.certificate.block_hash,
                header: block.block.header.clone(),
                tx_count: block.block.txs.len() as u64,
                gas_used: block.receipts.iter().map(|r| r.gas_used).sum(),
            };
            if !send(&sink, &item).await {
                return Ok(());
            }
        }
    }

    /// `subscribe_events`: every committed event matching `filter`.
    pub(super) async fn follow_events(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        filter: EventFilter,
    ) -> SubscriptionResult {
        if filter.topics.len() > 4 {
            pending
                .reject(invalid("an event has at most 4 topics"))
                .await;
            return Ok(());
        }
        let mut feed = self.feed()?;
        let Some((sink, _guard)) = self.accept(pending, ext).await else {
            return Ok(());
        };
        loop {
            let Some(block) = self.next_block(&sink, &mut feed).await? else {
                return Ok(());
            };
            for (tx_index, receipt) in block.receipts.iter().enumerate() {
                for (event_index, event) in receipt.events.iter().enumerate() {
                    if !filter.matches(event) {
                        continue;
                    }
                    let item = EventLog {
                        block_height: block.block.header.height,
                        block_hash: block.certificate.block_hash,
                        tx_hash: receipt.tx_hash,
                        tx_index: tx_index as u32,
                        event_index: event_index as u32,
                        event: event.clone(),
                    };
                    if !send(&sink, &item).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// `subscribe_tx_status`: a transaction's status now, each change
    /// after a block (`pending` once it reaches this node's pool, `unknown`
    /// once it left the pool without being committed: dropped or
    /// replaced), and `committed`, which ends it.
    pub(super) async fn follow_tx_status(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        hash: Hash,
    ) -> SubscriptionResult {
        let mut feed = self.feed()?;
        let now = self.tx_status(&hash).await?;
        let Some((sink, _guard)) = self.accept(pending, ext).await else {
            return Ok(());
        };
        let committed = now.state == TxState::Committed;
        if !send(&sink, &now).await || committed {
            return Ok(());
        }
        let mut last = now.state;
        loop {
            let Some(block) = self.next_block(&sink, &mut feed).await? else {
                return Ok(());
            };
            let Some(info) = receipt_in(&block, &hash) else {
                // The pool also changes between blocks (a replacement);
                // its state is looked at once a block.
                let state = if self.ctx.submitter.pending(&hash).is_some() {
                    TxState::Pending
                } else {
                    TxState::Unknown
                };
                if state != last {
                    last = state;
                    let item = TxStatus {
                        hash,
                        state,
                        receipt: None,
                    };
                    if !send(&sink, &item).await {
                        return Ok(());
                    }
                }
                continue;
            };
            // Cannot fail at the minimum response limit; without a
            // receipt the subscriber still learns the commit.
            let item = TxStatus {
                hash,
                state: TxState::Committed,
                receipt: self.fit_receipt(info, TX_STATUS_OVERHEAD).ok(),
            };
            send(&sink, &item).await;
            return Ok(());
        }
    }

    pub(super) fn feed(&self) -> RpcResult<Feed> {
        // Subscribe before reading the height, so no block falls between.
        let rx = self.ctx.commits.subscribe();
        Ok(Feed::new(
            rx,
            self.latest()? + 1,
            self.ctx.state.clone(),
            self.reads.clone(),
            FeedLimits {
                backlog_bytes_max: self.config.subscription_backlog_bytes_max,
                lag_blocks_max: self.config.subscription_lag_blocks_max,
            },
        ))
    }

    /// The next block of a subscription's feed, or why it ends (`Ok(None)`:
    /// the subscriber left; `Err`: the error it is told).
    async fn next_block(
        &self,
        sink: &SubscriptionSink,
        feed: &mut Feed,
    ) -> Result<Option<Arc<CommittedBlock>>, String> {
        let next = tokio::select! {
            _ = sink.closed() => return Ok(None),
            b = feed.next() => b,
        };
        match next {
            Ok(b) => Ok(Some(b)),
            Err(FeedEnd::Stopped) => Ok(None),
            Err(end) => {
                if let FeedEnd::Lagged { .. } = end {
                    self.metrics
                        .subscriptions_lagged
                        .fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(reason = %end.reason(), "rpc: subscription ended");
                Err(end.reason())
            }
        }
    }

    /// Accepts a subscription of the connection whose request carried
    /// `ext`.
    async fn accept(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> Option<(SubscriptionSink, SubGuard)> {
        // Counted before the client can learn the subscription id.
        self.metrics
            .active_subscriptions
            .fetch_add(1, Ordering::Relaxed);
        // A subscription keeps its connection from being evicted while the
        // client reads.
        let held = ext.get::<Arc<Activity>>().map(Activity::subscribed);
        let guard = SubGuard {
            metrics: self.metrics.clone(),
            _held: held,
        };
        let sink = pending.accept().await.ok()?;
        Some((sink, guard))
    }
}

/// Counts an open subscription until dropped, in the metrics and on its
/// connection.
struct SubGuard {
    metrics: Arc<RpcMetrics>,
    _held: Option<Subscribed>,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        self.metrics
            .active_subscriptions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends `item`; false if the subscriber is gone.
async fn send(sink: &SubscriptionSink, item: &impl Serialize) -> bool {
    match serde_json::value::to_raw_value(item) {
        Ok(raw) => sink.send(raw).await.is_ok(),
        Err(_) => false,
    }
}
