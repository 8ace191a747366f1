//! The block feed behind every subscription: committed blocks in height
//! order from the node's broadcast channel, with the gaps of a subscriber
//! that fell behind it filled from the block store.
//!
//! A gap is read lazily on the read pool, through a view (no state lock),
//! at most `backlog_bytes_max` stored bytes at a time (at least one block),
//! so a lagging subscription holds a bounded backlog however far behind it
//! is. A subscriber more than `lag_blocks_max` blocks behind the newest
//! block is dropped: it cannot catch up by following, and the store reads
//! it would cost grow with the gap.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::errors::{internal_message, log_internal};
use super::pool::{ExecPool, PoolError};
use crate::store::{BlockReader, CommittedBlock};
use stele_exec::SharedState;

/// A busy read pool is asked again after this long.
const BUSY_RETRY_MS: u64 = 20;

/// Why a feed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FeedEnd {
    /// The node stopped publishing blocks.
    Stopped,
    /// The subscriber is `behind` blocks behind the newest, over `max`.
    Lagged { behind: u64, max: u64 },
    /// The store could not give a missed block; the failure was logged
    /// under this error id (`errors::log_internal`).
    Store(u64),
}

impl FeedEnd {
    /// What the subscriber is told (the error of its last notification).
    pub(crate) fn reason(&self) -> String {
        match self {
            FeedEnd::Stopped => "the node stopped publishing blocks".to_string(),
            FeedEnd::Lagged { behind, max } => format!(
                "subscription dropped: the subscriber fell {behind} blocks behind the chain (at most {max} are kept for a slow subscriber); subscribe again and read the missed blocks with get_block or get_events"
            ),
            FeedEnd::Store(id) => {
                format!(
                    "subscription dropped: reading a missed block failed ({})",
                    internal_message(*id)
                )
            }
        }
    }
}

/// Limits of one feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedLimits {
    pub backlog_bytes_max: usize,
    pub lag_blocks_max: u64,
}

/// Committed blocks in height order; see the module docs.
pub(crate) struct Feed {
    rx: broadcast::Receiver<Arc<CommittedBlock>>,
    /// The next height to hand out.
    next: u64,
    /// Blocks read from the store, from `next` on.
    backlog: VecDeque<(Arc<CommittedBlock>, usize)>,
    backlog_bytes: usize,
    /// The block from the channel that revealed a gap: it follows the gap.
    head: Option<Arc<CommittedBlock>>,
    state: SharedState,
    reads: Arc<ExecPool>,
    limits: FeedLimits,
}

impl Feed {
    /// A feed from height `next`; `rx` must be subscribed before `next` was
    /// read, so no block falls between.
    pub(crate) fn new(
        rx: broadcast::Receiver<Arc<CommittedBlock>>,
        next: u64,
        state: SharedState,
        reads: Arc<ExecPool>,
        limits: FeedLimits,
    ) -> Self {
        Feed {
            rx,
            next,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            head: None,
            state,
            reads,
            limits,
        }
    }

    /// Stored bytes of the blocks read ahead.
    #[cfg(test)]
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.backlog_bytes
    }

    /// The next block.
    pub(crate) async fn next(&mut self) -> Result<Arc<CommittedBlock>, FeedEnd> {
        loop {
            if let Some((b, bytes)) = self.backlog.pop_front() {
                self.backlog_bytes -= bytes;
                self.next = b.block.header.height + 1;
                return Ok(b);
            }
            if let Some(head) = self.head.take() {
                let height = head.block.header.height;
                if height < self.next {
                    continue;
                }
                if height == self.next {
                    self.next += 1;
                    return Ok(head);
                }
                let behind = height - self.next;
                if behind > self.limits.lag_blocks_max {
                    return Err(FeedEnd::Lagged {
                        behind,
                        max: self.limits.lag_blocks_max,
                    });
                }
                self.fill(height).await?;
                self.head = Some(head);
                continue;
            }
            let block = match self.rx.recv().await {
                Ok(b) => b,
                // The gap shows up as a height jump on the next block.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Err(FeedEnd::Stopped),
            };
            self.head = Some(block);
        }
    }

    /// Reads blocks from `next` on, below `until`, into the backlog: as
    /// many as fit in `backlog_bytes_max`, and at least one.
    async fn fill(&mut self, until: u64) -> Result<(), FeedEnd> {
        let (from, max) = (self.next, self.limits.backlog_bytes_max);
        let read = loop {
            // The state lock only while the view is taken.
            let view = match self.state.read() {
                Ok(state) => state.view(),
                Err(_) => return Err(FeedEnd::Store(log_internal("state lock poisoned"))),
            };
            let Some(view) = view else {
                return Err(FeedEnd::Store(log_internal("no committed version")));
            };
            let job = move || {
                let reader = BlockReader::from_view(&view);
                let mut blocks = Vec::new();
                let mut total = 0usize;
                for h in from..until {
                    match reader.committed_sized(h) {
                        Ok(Some((b, bytes))) => {
                            if !blocks.is_empty() && total + bytes > max {
                                break;
                            }
                            total += bytes;
                            blocks.push((Arc::new(b), bytes));
                        }
                        Ok(None) => return Err(format!("block {h} is not in the store")),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(blocks)
            };
            match self.reads.run(job).await {
                Ok(read) => break read,
                Err(PoolError::Busy) => {
                    // Falling further behind meanwhile ends in `Lagged`.
                    tokio::time::sleep(Duration::from_millis(BUSY_RETRY_MS)).await;
                }
                Err(PoolError::Closed) => return Err(FeedEnd::Stopped),
            }
        };
        for (b, bytes) in read.map_err(|e| FeedEnd::Store(log_internal(e)))? {
            self.backlog_bytes += bytes;
            self.backlog.push_back((b, bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::handlers::tests::chain;

    fn feed(
        rx: broadcast::Receiver<Arc<CommittedBlock>>,
        state: SharedState,
        limits: FeedLimits,
    ) -> Feed {
        let reads = ExecPool::new(1, 4, 1 << 20).expect("threads");
        Feed::new(rx, 1, state, Arc::new(reads), limits)
    }

    #[tokio::test]
    async fn a_lagging_feed_fills_the_gap_in_order_one_bounded_backlog_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, blocks) = chain(dir.path(), 12);
        // A channel of 2: publishing 12 blocks makes the reader lag.
        let (tx, rx) = broadcast::channel(2);
        let one_block = 1_000;
        let mut feed = feed(
            rx,
            state,
            FeedLimits {
                backlog_bytes_max: 2 * one_block,
                lag_blocks_max: 100,
            },
        );
        for b in &blocks {
            tx.send(b.clone()).expect("a receiver exists");
        }
        drop(tx);
        let mut heights = Vec::new();
        let mut most = 0;
        while let Ok(b) = feed.next().await {
            heights.push(b.block.header.height);
            most = most.max(feed.backlog_bytes());
        }
        assert_eq!(heights, (1..=12).collect::<Vec<u64>>());
        assert!(most > 0 && most <= 2 * one_block, "{most}");
    }

    #[tokio::test]
    async fn a_feed_too_far_behind_ends_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, blocks) = chain(dir.path(), 12);
        let (tx, rx) = broadcast::channel(2);
        let mut feed = feed(
            rx,
            state,
            FeedLimits {
                backlog_bytes_max: 1 << 20,
                lag_blocks_max: 5,
            },
        );
        for b in &blocks {
            tx.send(b.clone()).expect("a receiver exists");
        }
        // The channel kept 11 and 12; 1..=10 are missed, over the 5 allowed.
        let end = feed.next().await.expect_err("too far behind");
        assert_eq!(end, FeedEnd::Lagged { behind: 10, max: 5 });
        assert!(
            end.reason().contains("fell 10 blocks behind"),
            "{}",
            end.reason()
        );
    }
}
