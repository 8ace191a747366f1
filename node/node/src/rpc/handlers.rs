//! The methods of `stele_client::api::SteleApi` over the node's state, block
//! store, executor and mempool: the `Handler`, its shared helpers (state
//! versions, heights, the read pool, the response budget) and one child
//! module per area of the API, which `api` dispatches to.

mod api;
mod calls;
mod events;
mod history;
mod reads;
mod subscriptions;
#[cfg(test)]
pub(crate) mod tests;
mod tx;

use std::sync::{Arc, RwLockReadGuard};

use jsonrpsee::core::RpcResult;
use serde::Serialize;
use stele_client::api::*;
use stele_state::{CommittedView, State};
use stele_types::BlockHeader;

use super::RpcContext;
use super::config::RpcConfig;
use super::errors::{err, internal, too_large};
use super::metrics::RpcMetrics;
use super::pool::{ExecPool, PoolError};
use super::rate::RateLimiter;
use super::size::{self, ENVELOPE_BYTES};
use crate::store::BlockReader;
use stele_exec::StateBase;

/// Bytes a `tx_status` item adds around its receipt (hash, state, field
/// names), with room to spare.
const TX_STATUS_OVERHEAD: usize = 256;

/// Tokens a `send_transaction` refused for the caller's own fault (bytes
/// that do not decode, another chain, a bad signature, a sender without
/// the funds, ...) costs on top of its call's one: checking it was as much
/// work as admitting it, and only a flood refuses that often.
pub(crate) const REFUSED_SUBMISSION_TOKENS: u32 = 9;

/// The thread pools of the RPC's heavy work.
#[derive(Debug)]
pub(crate) struct Pools {
    /// Views, simulations and estimates.
    pub(crate) exec: ExecPool,
    /// Block-store reads (scans, blocks, receipts, subscription backlogs).
    pub(crate) reads: ExecPool,
    /// Checks of submitted transactions.
    pub(crate) admits: ExecPool,
}

/// The server side of the API.
pub(crate) struct Handler {
    config: RpcConfig,
    ctx: RpcContext,
    metrics: Arc<RpcMetrics>,
    pool: Arc<ExecPool>,
    /// Block-store reads (scans, blocks, receipts, subscription backlogs).
    reads: Arc<ExecPool>,
    admits: Arc<ExecPool>,
    /// The per-address call budget, charged again for refused submissions.
    limiter: Arc<RateLimiter>,
    /// Replays (`trace_transaction`) running at once: each can run up to a
    /// whole block again, so they take at most this many of the execution
    /// threads, whoever asks; more are refused with `BUSY` at once.
    replays: Arc<tokio::sync::Semaphore>,
}

/// Replays running at once ([`Handler::replays`]).
pub(crate) const REPLAYS_MAX: usize = 1;

/// Longest a read waits for this node to commit a block it knows is
/// certified ([`Handler::reach`]).
const BEHIND_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// ...and only for a block this few ahead of its latest.
const BEHIND_WAIT_BLOCKS_MAX: u64 = 64;

impl Handler {
    pub(crate) fn new(
        config: RpcConfig,
        ctx: RpcContext,
        metrics: Arc<RpcMetrics>,
        pools: Pools,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Handler {
            config,
            ctx,
            metrics,
            pool: Arc::new(pools.exec),
            reads: Arc::new(pools.reads),
            admits: Arc::new(pools.admits),
            limiter,
            replays: Arc::new(tokio::sync::Semaphore::new(REPLAYS_MAX)),
        }
    }

    /// A view of the latest committed version: the state lock is held only
    /// while it is taken.
    fn view(&self) -> RpcResult<CommittedView> {
        self.state()?
            .view()
            .ok_or_else(|| internal("the state has no committed version"))
    }

    /// Runs `f` on the read pool with a reader of `view`'s blocks: a long
    /// read neither holds the state lock nor occupies the runtime.
    async fn read_with<T: Send + 'static>(
        &self,
        view: CommittedView,
        f: impl FnOnce(BlockReader<'_>) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        self.reads
            .run(move || f(BlockReader::from_view(&view)))
            .await
            .map_err(|e| match e {
                PoolError::Busy => err(
                    codes::BUSY,
                    "every block-read slot is busy; retry later".to_string(),
                ),
                PoolError::Closed => internal("the read pool is shut down"),
            })?
    }

    /// [`Handler::read_with`] on the latest committed version.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(BlockReader<'_>) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let view = self.view()?;
        self.read_with(view, f).await
    }

    /// Bytes a result may take: the response limit less the envelope.
    fn budget(&self) -> usize {
        (self.config.response_bytes_max as usize).saturating_sub(ENVELOPE_BYTES)
    }

    /// `info` cut to the response budget less `overhead` (what wraps it).
    fn fit_receipt(&self, info: ReceiptInfo, overhead: usize) -> RpcResult<ReceiptInfo> {
        size::fit_receipt(info, self.budget().saturating_sub(overhead))
            .map_err(|e| too_large(&e, ""))
    }

    /// `value` if it fits in the response budget, else `RESPONSE_TOO_LARGE`.
    fn whole<T: Serialize>(&self, value: T, what: impl FnOnce() -> String) -> RpcResult<T> {
        size::whole(value, self.budget(), what).map_err(|e| too_large(&e, ""))
    }

    fn state(&self) -> RpcResult<RwLockReadGuard<'_, State>> {
        self.ctx
            .state
            .read()
            .map_err(|_| internal("state lock poisoned"))
    }

    /// The latest committed height (0: genesis only).
    fn latest(&self) -> RpcResult<u64> {
        self.state()?
            .latest_version()
            .ok_or_else(|| internal("the state has no committed version"))
    }

    /// Read your write across nodes: a read that names a height this node
    /// has not committed yet, but knows is certified, or the very next one
    /// (a full node a block behind the one a client learnt from another
    /// node behind the same balancer, which may not have heard of it yet),
    /// waits for it: at most [`BEHIND_WAIT`], and only if it is at most
    /// [`BEHIND_WAIT_BLOCKS_MAX`] blocks ahead. Otherwise, or past the
    /// wait, the read goes on and answers as it would have.
    async fn reach(&self, height: Option<u64>) -> RpcResult<()> {
        let Some(h) = height else {
            return Ok(());
        };
        let latest = self.latest()?;
        let certified = self.ctx.status.peer_height().is_some_and(|p| h <= p);
        if h > latest && (certified || h == latest + 1) {
            self.wait_until_committed(h).await?;
        }
        Ok(())
    }

    /// Waits, at most [`BEHIND_WAIT`], until this node has committed
    /// `target`, if it is at most [`BEHIND_WAIT_BLOCKS_MAX`] blocks ahead of
    /// its latest; whether it was behind.
    async fn wait_until_committed(&self, target: u64) -> RpcResult<bool> {
        // Subscribed before the height is read, so no commit falls between.
        let mut commits = self.ctx.commits.subscribe();
        let latest = self.latest()?;
        if target <= latest || target - latest > BEHIND_WAIT_BLOCKS_MAX {
            return Ok(false);
        }
        let deadline = tokio::time::Instant::now() + BEHIND_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, commits.recv()).await {
                Ok(Ok(block)) if block.block.header.height < target => {}
                // There, lagged behind the feed (so far along), or out of
                // time: look again either way.
                _ => return Ok(true),
            }
        }
    }

    /// `height`, or the latest, checked to be available.
    fn height(&self, height: Option<u64>) -> RpcResult<u64> {
        let state = self.state()?;
        let latest = state
            .latest_version()
            .ok_or_else(|| internal("the state has no committed version"))?;
        let h = height.unwrap_or(latest);
        if h > latest {
            return Err(err(
                codes::HEIGHT_UNAVAILABLE,
                format!("height {h} is above the committed height {latest}"),
            ));
        }
        if let Some(oldest) = state.oldest_version()
            && h < oldest
        {
            return Err(err(
                codes::HEIGHT_UNAVAILABLE,
                format!("height {h} was pruned; the oldest kept is {oldest}"),
            ));
        }
        Ok(h)
    }

    fn header(&self, height: u64) -> RpcResult<Option<BlockHeader>> {
        let view = self.view()?;
        Ok(BlockReader::from_view(&view)
            .block(height)
            .map_err(internal)?
            .map(|b| b.header))
    }

    fn base(&self, height: u64) -> StateBase {
        StateBase::at(&self.ctx.state, Some(height), None)
    }

    /// The latest committed version through a view of it, and its height:
    /// one version for the whole request, however many blocks commit
    /// meanwhile.
    fn latest_base(&self) -> RpcResult<(u64, StateBase)> {
        let base = StateBase::latest(&self.ctx.state, None);
        let height = base
            .version
            .ok_or_else(|| internal("the state has no committed version"))?;
        Ok((height, base))
    }

    /// The base for a read at `height` (default: the latest).
    fn base_at(&self, height: Option<u64>) -> RpcResult<(u64, StateBase)> {
        match height {
            None => self.latest_base(),
            Some(h) => {
                let h = self.height(Some(h))?;
                Ok((h, self.base(h)))
            }
        }
    }
}
