//! The methods of `stele_client::api::SteleApi` over the node's state, block
//! store, executor and mempool.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::{Extensions, PendingSubscriptionSink, SubscriptionSink};
use serde::Serialize;
use stele_client::api::*;
use stele_state::{CommittedView, State, StateRead};
use stele_types::proof::{Namespace, StateKey};
use stele_types::{
    Address, BlockHeader, ExecStatus, Hash, Limits, SignedTransaction, Transaction, TxPayload,
};
use stele_vm::CallTrace;

use super::RpcContext;
use super::call_limit::ClientIp;
use super::config::RpcConfig;
use super::conn::{Activity, Subscribed};
use super::errors::{self, err, internal, invalid, not_found, too_large};
use super::estimate;
use super::events::EventScan;
use super::feed::{Feed, FeedEnd, FeedLimits};
use super::metrics::RpcMetrics;
use super::pool::{ExecPool, PoolError};
use super::rate::RateLimiter;
use super::size::{self, ENVELOPE_BYTES, json_len};
use crate::mempool::AdmitError;
use crate::store::{BlockReader, CommittedBlock};
use stele_exec::{Applied, BlockEnv, StateBase, StateWorld, code_key};

/// Storage keys are 1..=256 bytes (docs/vm.md).
const STORAGE_KEY_BYTES_MAX: usize = 256;
/// Bytes a `tx_status` item adds around its receipt (hash, state, field
/// names), with room to spare.
const TX_STATUS_OVERHEAD: usize = 256;
/// Bytes a `list_storage` page adds around its entries, with room for the
/// largest cursor.
const STORAGE_PAGE_OVERHEAD: usize = 1024;

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
}

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

    async fn receipt_info(&self, hash: &Hash) -> RpcResult<Option<ReceiptInfo>> {
        let hash = *hash;
        self.read(move |reader| {
            let Some((loc, receipt)) = reader.receipt(&hash).map_err(internal)? else {
                return Ok(None);
            };
            let cert = reader
                .certificate(loc.height)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("block {} has no certificate", loc.height)))?;
            Ok(Some(ReceiptInfo {
                receipt,
                block_height: loc.height,
                block_hash: cert.block_hash,
                index: loc.index,
                events_omitted: 0,
            }))
        })
        .await
    }

    async fn exec<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> RpcResult<T> {
        self.pool.run(f).await.map_err(|e| match e {
            PoolError::Busy => err(
                codes::BUSY,
                "every execution slot is busy; retry later".to_string(),
            ),
            PoolError::Closed => internal("the execution pool is shut down"),
        })
    }

    /// The transaction and sender a simulation runs.
    fn simulated(&self, request: SimulateRequest) -> RpcResult<(Transaction, Address)> {
        let (tx, sender) = match request {
            SimulateRequest {
                raw: Some(raw),
                transaction: None,
                sender: None,
            } => {
                let signed: SignedTransaction = stele_types::decode(&raw.0, &Limits::default())
                    .map_err(|e| err(codes::TX_MALFORMED, format!("malformed transaction: {e}")))?;
                let sender = signed
                    .verify(self.ctx.chain_id)
                    .map_err(|e| errors::admit(&AdmitError::from(e)))?;
                (signed.tx, sender)
            }
            SimulateRequest {
                raw: None,
                transaction: Some(tx),
                sender: Some(sender),
            } => (tx, sender),
            _ => {
                return Err(invalid(
                    "give either `raw` (a signed transaction) or `transaction` and `sender`",
                ));
            }
        };
        if tx.chain_id != self.ctx.chain_id {
            return Err(err(
                codes::TX_WRONG_CHAIN,
                format!(
                    "transaction is for chain {}, this chain is {}",
                    tx.chain_id, self.ctx.chain_id
                ),
            ));
        }
        if tx.gas_limit > self.config.view_gas_max {
            return Err(invalid(format!(
                "gas limit {} is over this node's simulation cap {}",
                tx.gas_limit, self.config.view_gas_max
            )));
        }
        Ok((tx, sender))
    }

    /// The environment of the block after `height`, for dry runs.
    fn next_block_env(&self, height: u64) -> RpcResult<BlockEnv> {
        let parent_ts = self.header(height)?.map_or(0, |h| h.timestamp_ms);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ok(BlockEnv {
            height: height + 1,
            timestamp_ms: now.max(parent_ts + 1),
            proposer: Address([0; 20]),
        })
    }

    /// Runs `tx` as `sender` on the latest state, as the next block.
    async fn simulate(&self, tx: Transaction, sender: Address) -> RpcResult<(u64, Applied)> {
        let (height, base) = self.latest_base()?;
        let env = self.next_block_env(height)?;
        let executor = self.ctx.executor.clone();
        let timeout_ms = self.config.exec_timeout_ms;
        let applied = self
            .exec(move || executor.simulate(StateWorld::new(base), &env, &tx, sender, timeout_ms))
            .await?
            .map_err(errors::apply)?;
        Ok((height, applied))
    }

    fn feed(&self) -> RpcResult<Feed> {
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

    async fn tx_status(&self, hash: &Hash) -> RpcResult<TxStatus> {
        if let Some(receipt) = self.receipt_info(hash).await? {
            return Ok(TxStatus {
                hash: *hash,
                state: TxState::Committed,
                receipt: Some(self.fit_receipt(receipt, TX_STATUS_OVERHEAD)?),
            });
        }
        let state = if self.ctx.submitter.pending(hash).is_some() {
            TxState::Pending
        } else {
            TxState::Unknown
        };
        Ok(TxStatus {
            hash: *hash,
            state,
            receipt: None,
        })
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

/// A committed block with its transactions from `txs_from`, as many as fit
/// in `budget` bytes.
fn block_page(b: CommittedBlock, txs_from: u32, budget: usize) -> RpcResult<BlockInfo> {
    let count = b.block.txs.len();
    let info = BlockInfo {
        hash: b.block.hash(),
        block: b.block,
        certificate: b.certificate,
        txs_from: 0,
        txs_next: None,
    };
    match size::fit_block(info, txs_from, budget) {
        Some(page) => page.map_err(|e| too_large(&e, "")),
        None => Err(invalid(format!(
            "txs_from {txs_from} is past the block's {count} transactions"
        ))),
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

fn failure_text(status: ExecStatus, output: &[u8]) -> Option<String> {
    if status.is_success() {
        return None;
    }
    Some(match std::str::from_utf8(output) {
        Ok(s) => s.to_string(),
        Err(_) => stele_types::hex::encode(output),
    })
}

fn frame(t: CallTrace) -> TraceFrame {
    TraceFrame {
        caller: t.caller,
        contract: t.contract,
        method: t.method,
        value: t.value,
        gas_budget: t.gas_budget,
        gas_used: t.gas_used,
        status: t.status,
        output: Bytes(t.output),
        calls: t.calls.into_iter().map(frame).collect(),
    }
}

#[async_trait]
impl SteleApiServer for Handler {
    async fn send_transaction(
        &self,
        ext: &Extensions,
        raw: Bytes,
        sender: Option<Address>,
    ) -> RpcResult<Hash> {
        let submitter = self.ctx.submitter.clone();
        match self
            .admits
            .run(move || submitter.submit(&raw.0, sender))
            .await
        {
            Ok(Ok(hash)) => Ok(hash),
            Ok(Err(e)) => {
                if e.is_submitters_fault()
                    && let Some(client) = ext.get::<ClientIp>()
                {
                    // Debt is allowed: the address's next calls wait.
                    self.limiter.take(
                        client.ip,
                        f64::from(REFUSED_SUBMISSION_TOKENS),
                        std::time::Instant::now(),
                    );
                }
                Err(errors::admit(&e))
            }
            Err(PoolError::Busy) => Err(err(
                codes::BUSY,
                "every transaction-check slot is busy; retry later".to_string(),
            )),
            Err(PoolError::Closed) => Err(internal("the admission pool is shut down")),
        }
    }

    async fn get_transaction(&self, hash: Hash) -> RpcResult<TransactionInfo> {
        async {
            // The whole block is read and decoded: on the read pool.
            let chain_id = self.ctx.chain_id;
            let committed = self
                .read(move |reader| {
                    let Some(loc) = reader.tx_location(&hash).map_err(internal)? else {
                        return Ok(None);
                    };
                    let tx = reader
                        .block(loc.height)
                        .map_err(internal)?
                        .and_then(|b| b.txs.into_iter().nth(loc.index as usize))
                        .ok_or_else(|| {
                            internal(format!("transaction index of {hash} is dangling"))
                        })?;
                    let sender = tx.verify(chain_id).map_err(internal)?;
                    Ok(Some(TransactionInfo {
                        hash,
                        transaction: tx,
                        sender,
                        state: TxState::Committed,
                        block_height: Some(loc.height),
                        index: Some(loc.index),
                    }))
                })
                .await?;
            if let Some(info) = committed {
                return self.whole(info, || format!("transaction {hash}"));
            }
            let tx = self
                .ctx
                .submitter
                .pending(&hash)
                .ok_or_else(|| not_found(format_args!("transaction {hash}")))?;
            let sender = tx.verify(self.ctx.chain_id).map_err(internal)?;
            Ok(TransactionInfo {
                hash,
                transaction: tx,
                sender,
                state: TxState::Pending,
                block_height: None,
                index: None,
            })
        }
        .await
    }

    async fn get_receipt(&self, hash: Hash) -> RpcResult<ReceiptInfo> {
        self.receipt_info(&hash)
            .await
            .and_then(|r| r.ok_or_else(|| not_found(format_args!("receipt of {hash}"))))
            .and_then(|r| self.fit_receipt(r, 0))
    }

    async fn wait_for_receipt(&self, hash: Hash, timeout_ms: u64) -> RpcResult<ReceiptInfo> {
        let timeout_ms = timeout_ms.min(self.config.wait_for_receipt_timeout_ms_max);
        async {
            let mut feed = self.feed()?;
            if let Some(r) = self.receipt_info(&hash).await? {
                return self.fit_receipt(r, 0);
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
            loop {
                match tokio::time::timeout_at(deadline, feed.next()).await {
                    Ok(Ok(block)) => {
                        if let Some(info) = receipt_in(&block, &hash) {
                            return self.fit_receipt(info, 0);
                        }
                    }
                    Ok(Err(FeedEnd::Lagged { .. })) => {
                        // Far behind (a stalled runtime): look in the store
                        // and follow from the chain's head again.
                        feed = self.feed()?;
                        if let Some(r) = self.receipt_info(&hash).await? {
                            return self.fit_receipt(r, 0);
                        }
                    }
                    Ok(Err(FeedEnd::Store(id))) => {
                        return Err(err(codes::INTERNAL, errors::internal_message(id)));
                    }
                    Ok(Err(end)) => return Err(internal(end.reason())),
                    Err(_) => {
                        return Err(err(
                            codes::TIMEOUT,
                            format!("transaction {hash} was not committed within {timeout_ms} ms"),
                        ));
                    }
                }
            }
        }
        .await
    }

    async fn call_view(
        &self,
        contract: Address,
        method: String,
        args: Bytes,
        height: Option<u64>,
    ) -> RpcResult<ViewResult> {
        async {
            let (height, base) = self.base_at(height)?;
            let header = self.header(height)?;
            let env = BlockEnv {
                height,
                timestamp_ms: header.as_ref().map_or(0, |h| h.timestamp_ms),
                proposer: header.map_or(Address([0; 20]), |h| h.proposer),
            };
            let executor = self.ctx.executor.clone();
            let (gas, timeout) = (self.config.view_gas_max, self.config.exec_timeout_ms);
            let outcome = self
                .exec(move || {
                    executor.view(
                        base,
                        &env,
                        Address([0; 20]),
                        contract,
                        &method,
                        &args.0,
                        gas,
                        timeout,
                    )
                })
                .await?
                .map_err(errors::apply)?;
            let result = ViewResult {
                height,
                status: outcome.status,
                gas_used: outcome.gas_used,
                error: failure_text(outcome.status, &outcome.output),
                output: Bytes(outcome.output),
            };
            self.whole(result, || "the view's result".into())
        }
        .await
    }

    async fn simulate_transaction(&self, request: SimulateRequest) -> RpcResult<SimulationResult> {
        async {
            let (tx, sender) = self.simulated(request)?;
            let (height, Applied { receipt, trace }) = self.simulate(tx, sender).await?;
            let result = SimulationResult {
                height,
                sender,
                status: receipt.status,
                gas_used: receipt.gas_used,
                error: failure_text(receipt.status, &receipt.output),
                output: Bytes(receipt.output),
                events: receipt.events,
                contract_address: receipt.contract_address,
                trace: trace.map(frame),
                events_omitted: 0,
                trace_omitted: false,
            };
            size::fit_simulation(result, self.budget()).map_err(|e| too_large(&e, ""))
        }
        .await
    }

    async fn estimate_gas(&self, request: SimulateRequest) -> RpcResult<GasEstimate> {
        async {
            let (mut tx, sender) = self.simulated(request)?;
            // Run with as much gas as the sender can buy (within the caps),
            // so the estimate does not depend on the limit the caller chose.
            let (height, base) = self.latest_base()?;
            let balance = StateWorld::new(base.clone())
                .account(&sender)
                .map_err(internal)?
                .balance;
            let value = match &tx.payload {
                TxPayload::Transfer { amount, .. } => *amount,
                TxPayload::Deploy { value, .. } | TxPayload::Call { value, .. } => *value,
            };
            let cap = self
                .config
                .view_gas_max
                .min(self.ctx.executor.config().block_gas_max);
            let affordable = match tx.gas_price {
                0 => u128::from(cap),
                p => balance.saturating_sub(value) / u128::from(p),
            };
            let limit = u64::try_from(affordable.min(u128::from(cap))).unwrap_or(cap);
            tx.gas_limit = limit;
            let env = self.next_block_env(height)?;
            let executor = self.ctx.executor.clone();
            let timeout_ms = self.config.exec_timeout_ms;
            // One job for every run, so a search is not refused half-way
            // (BUSY) and holds one execution thread, not several.
            self.exec(move || {
                estimate::estimate(limit, timeout_ms, |gas_limit, timeout_ms| {
                    let tx = Transaction {
                        gas_limit,
                        ..tx.clone()
                    };
                    let world = StateWorld::new(base.clone());
                    executor.simulate(world, &env, &tx, sender, timeout_ms)
                })
            })
            .await?
            .map_err(errors::apply)
        }
        .await
    }

    async fn get_block(&self, id: BlockId, txs_from: Option<u32>) -> RpcResult<BlockInfo> {
        let budget = self.budget();
        self.read(move |reader| {
            let height = match id {
                BlockId::Height(h) => h,
                BlockId::Hash(hash) => reader
                    .height_of(&hash)
                    .map_err(internal)?
                    .ok_or_else(|| not_found(format_args!("block {hash}")))?,
            };
            let b = reader
                .committed(height)
                .map_err(internal)?
                .ok_or_else(|| not_found(format_args!("block at height {height}")))?;
            block_page(b, txs_from.unwrap_or(0), budget)
        })
        .await
    }

    async fn get_latest_block(&self) -> RpcResult<BlockInfo> {
        let budget = self.budget();
        self.read(move |reader| {
            let height = reader.committed_height().unwrap_or(0);
            let b = reader
                .committed(height)
                .map_err(internal)?
                .ok_or_else(|| not_found("a committed block (only the genesis state exists)"))?;
            block_page(b, 0, budget)
        })
        .await
    }

    async fn get_account(&self, address: Address) -> RpcResult<AccountInfo> {
        (|| {
            let (height, base) = self.latest_base()?;
            let account = StateWorld::new(base).account(&address).map_err(internal)?;
            let pending = self.ctx.submitter.pending_nonce(&address);
            Ok(AccountInfo {
                address,
                height,
                balance: account.balance,
                nonce: account.nonce,
                pending_nonce: pending.max(account.nonce),
                code_hash: account.code_hash,
            })
        })()
    }

    async fn get_contract(&self, address: Address) -> RpcResult<ContractInfo> {
        (|| {
            let (height, base) = self.latest_base()?;
            let account = StateWorld::new(base.clone())
                .account(&address)
                .map_err(internal)?;
            let code_hash = account
                .code_hash
                .ok_or_else(|| not_found(format_args!("contract at {address}")))?;
            // Through the same view: no lock, the same version.
            let code = base
                .read(&code_key(&code_hash))
                .map_err(internal)?
                .ok_or_else(|| internal(format!("code {code_hash} of {address} is missing")))?;
            // The section as `Abi::from_wasm` finds it: a module with two,
            // or one over the size limit, shows no ABI.
            let abi_raw = stele_abi::abi_section(&code).ok().flatten();
            let info = ContractInfo {
                address,
                height,
                code_hash,
                code_bytes: code.len() as u64,
                abi: abi_raw.and_then(|raw| serde_json::from_slice(raw).ok()),
                abi_raw: abi_raw.map(Bytes::from),
            };
            self.whole(info, || format!("the contract at {address}"))
        })()
    }

    async fn get_code(&self, code_hash: Hash) -> RpcResult<Bytes> {
        (|| {
            let view = self.view()?;
            view.get(&code_key(&code_hash))
                .map_err(internal)?
                .map(Bytes)
                .ok_or_else(|| not_found(format_args!("code {code_hash}")))
                .and_then(|code| self.whole(code, || format!("code {code_hash}")))
        })()
    }

    async fn get_storage_proof(
        &self,
        contract: Address,
        key: Bytes,
        height: Option<u64>,
    ) -> RpcResult<StorageProof> {
        async {
            if key.0.is_empty() || key.0.len() > STORAGE_KEY_BYTES_MAX {
                return Err(invalid(format!(
                    "storage keys are 1 to {STORAGE_KEY_BYTES_MAX} bytes, got {}",
                    key.0.len()
                )));
            }
            let height = self.height(height)?;
            if height == 0 {
                return Err(err(
                    codes::HEIGHT_UNAVAILABLE,
                    "the genesis state (height 0) has no certified header; ask for height 1 or later",
                ));
            }
            // The proof walks the tree at `height` under the state lock
            // (one bounded path); the block is read through a view.
            let (value, proof) = self
                .state()?
                .prove(&StateKey::storage(&contract, key.0.clone()), height)
                .map_err(internal)?;
            let (header, certificate) = self
                .read(move |reader| {
                    let missing = || not_found(format_args!("block at height {height}"));
                    let header = reader.block(height).map_err(internal)?.ok_or_else(missing)?;
                    let certificate = reader
                        .certificate(height)
                        .map_err(internal)?
                        .ok_or_else(missing)?;
                    Ok((header.header, certificate))
                })
                .await?;
            let proof = StorageProof {
                contract,
                key,
                value: value.map(Bytes),
                proof,
                header,
                certificate,
            };
            self.whole(proof, || "the storage proof".into())
        }
        .await
    }

    async fn get_events(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
        cursor: Option<EventCursor>,
    ) -> RpcResult<EventPage> {
        async {
            let max = self.config.events_limit_max;
            if limit == 0 || limit > max {
                return Err(invalid(format!("limit must be 1 to {max}, got {limit}")));
            }
            if filter.topics.len() > 4 {
                return Err(invalid("an event has at most 4 topics"));
            }
            // One version for the whole scan, read through its snapshot
            // on the read pool: a commit never waits for a scan.
            let view = self.view()?;
            let latest = view.version();
            let to = to_height.unwrap_or(latest);
            if to > latest {
                return Err(err(
                    codes::HEIGHT_UNAVAILABLE,
                    format!("height {to} is above the committed height {latest}"),
                ));
            }
            let from = from_height.max(1);
            if from > to {
                return Err(invalid(format!(
                    "from_height {from_height} is above to_height {to}"
                )));
            }
            if let Some(c) = cursor
                && !(from..=to).contains(&c.height)
            {
                return Err(invalid(format!(
                    "cursor height {} is outside from_height..=to_height ({from}..={to})",
                    c.height
                )));
            }
            let blocks_max = self.config.events_blocks_max;
            let budget = self.budget().saturating_sub(json_len(&EventPage {
                events: Vec::new(),
                to_height: u64::MAX,
                next_height: Some(u64::MAX),
                next: Some(EventCursor {
                    height: u64::MAX,
                    tx_index: u32::MAX,
                    event_index: u32::MAX,
                }),
            }));
            self.read_with(view, move |reader| {
                let scan = EventScan {
                    reader,
                    filter: &filter,
                    limit: limit as usize,
                    to,
                    blocks_max,
                    budget,
                };
                match cursor {
                    Some(at) => scan.cursor_page(at),
                    None => scan.block_page(from),
                }
            })
            .await
        }
        .await
    }

    async fn list_storage(
        &self,
        contract: Address,
        prefix: Bytes,
        cursor: Option<Bytes>,
        limit: u32,
    ) -> RpcResult<StoragePage> {
        (|| {
            let max = self.config.list_storage_limit_max;
            if limit == 0 || limit > max {
                return Err(invalid(format!("limit must be 1 to {max}, got {limit}")));
            }
            if prefix.0.len() > STORAGE_KEY_BYTES_MAX
                || cursor
                    .as_ref()
                    .is_some_and(|c| c.0.len() > STORAGE_KEY_BYTES_MAX)
            {
                return Err(invalid(format!(
                    "prefix and cursor are at most {STORAGE_KEY_BYTES_MAX} bytes"
                )));
            }
            // A view of the latest version: the listing holds no lock a
            // commit needs.
            let (height, base) = self.latest_base()?;
            let view = base
                .view
                .ok_or_else(|| internal("no view of the latest version"))?;
            let limit = (limit as usize).min(view.iter_limit_max());
            let page = view
                .iter_prefix(
                    &Namespace::Storage(contract),
                    &prefix.0,
                    cursor.as_ref().map(|c| c.0.as_slice()),
                    limit,
                )
                .map_err(internal)?;
            // Cut at the response budget: the cursor of a cut page is the
            // last key it holds (the next page starts strictly after it).
            let room = self.budget().saturating_sub(STORAGE_PAGE_OVERHEAD);
            let mut entries = Vec::with_capacity(page.entries.len());
            let mut bytes = 0usize;
            let total = page.entries.len();
            for (key, value) in page.entries {
                let entry = StorageEntry {
                    key: Bytes(key),
                    value: Bytes(value),
                };
                bytes = bytes.saturating_add(json_len(&entry) + 1);
                if bytes > room {
                    break;
                }
                entries.push(entry);
            }
            let next_cursor = if entries.len() < total {
                // At the minimum response limit a 64 KiB value fits many
                // times over, so a page holds at least one entry.
                match entries.last() {
                    Some(last) => Some(last.key.clone()),
                    None => {
                        return Err(err(
                            codes::RESPONSE_TOO_LARGE,
                            "a single storage entry exceeds this node's response budget",
                        ));
                    }
                }
            } else {
                page.next.map(Bytes)
            };
            Ok(StoragePage {
                height,
                entries,
                next_cursor,
            })
        })()
    }

    async fn get_status(&self) -> RpcResult<StatusInfo> {
        let mut status = self.ctx.status.status();
        status.chain_id = self.ctx.chain_id;
        Ok(status)
    }

    async fn subscribe_new_blocks(
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

    async fn subscribe_events(
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

    async fn subscribe_tx_status(
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
        loop {
            let Some(block) = self.next_block(&sink, &mut feed).await? else {
                return Ok(());
            };
            if let Some(info) = receipt_in(&block, &hash) {
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
    }
}

/// The receipt of the transaction `hash` in a block just committed, if it
/// holds it.
fn receipt_in(block: &CommittedBlock, hash: &Hash) -> Option<ReceiptInfo> {
    let index = block.receipts.iter().position(|r| r.tx_hash == *hash)?;
    Some(ReceiptInfo {
        receipt: block.receipts[index].clone(),
        block_height: block.block.header.height,
        block_hash: block.certificate.block_hash,
        index: index as u32,
        events_omitted: 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::RwLock;

    use stele_state::StateConfig;
    use stele_types::{Address, Block, BlockHeader, CommitCertificate, Hash};

    use super::*;
    use crate::store::{BLOCK_STORE_CFS, prepare_block_commit};

    /// `n` empty blocks committed to a fresh state with the block store.
    pub(crate) fn chain(
        dir: &std::path::Path,
        n: u64,
    ) -> (stele_exec::SharedState, Vec<Arc<CommittedBlock>>) {
        let mut state =
            State::open_with_column_families(dir, StateConfig::default(), &BLOCK_STORE_CFS)
                .expect("state");
        let writes = Default::default();
        let genesis = state.prepare_commit(0, &writes).expect("genesis");
        state.apply(genesis).expect("apply genesis");
        let mut blocks: Vec<Arc<CommittedBlock>> = Vec::new();
        for height in 1..=n {
            let parent = blocks.last().map_or(Hash::ZERO, |b| b.block.hash());
            blocks.push(append_empty(&mut state, height, parent));
        }
        (Arc::new(RwLock::new(state)), blocks)
    }

    /// Commits an empty block at `height` on `parent`.
    pub(crate) fn append_empty(
        state: &mut State,
        height: u64,
        parent: Hash,
    ) -> Arc<CommittedBlock> {
        let writes = Default::default();
        let root = state
            .prepare_commit(height, &writes)
            .expect("prepare")
            .root();
        let block = Block {
            header: BlockHeader {
                chain_id: 1,
                height,
                view: 0,
                parent_hash: parent,
                tx_root: Hash::ZERO,
                state_root: root,
                receipts_root: Hash::ZERO,
                timestamp_ms: height,
                proposer: Address([1; 20]),
            },
            txs: Vec::new(),
        };
        let certificate = CommitCertificate {
            height,
            view: 0,
            block_hash: block.hash(),
            signatures: Vec::new(),
        };
        let prepared =
            prepare_block_commit(state, &block, &[], &certificate, &writes).expect("block commit");
        state.apply(prepared).expect("apply");
        Arc::new(CommittedBlock {
            block,
            receipts: Vec::new(),
            certificate,
        })
    }

    #[test]
    fn a_block_reader_on_a_view_lets_commits_through_and_keeps_its_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, blocks) = chain(dir.path(), 3);
        let view = state.read().expect("lock").view().expect("a version");
        let reader = BlockReader::from_view(&view);
        assert_eq!(
            reader.committed(2).expect("read").as_ref(),
            Some(&*blocks[1])
        );
        // The reader holds no lock: a block commits while it reads.
        let fourth = {
            let mut guard = state.try_write().expect("no reader holds the lock");
            append_empty(&mut guard, 4, blocks[2].block.hash())
        };
        assert_eq!(reader.committed_height(), Some(3));
        assert_eq!(reader.committed(4).expect("read"), None);
        assert_eq!(
            reader.committed(3).expect("read").as_ref(),
            Some(&*blocks[2])
        );
        let guard = state.read().expect("lock");
        assert_eq!(
            BlockReader::new(&guard)
                .committed(4)
                .expect("read")
                .as_ref(),
            Some(&*fourth)
        );
    }
}
