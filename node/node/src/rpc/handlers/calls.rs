//! Contract calls that change nothing: `call_view`, `simulate_transaction`
//! and `estimate_gas`, run on the execution pool.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonrpsee::core::RpcResult;
use stele_client::api::*;
use stele_types::{Address, ExecStatus, Limits, SignedTransaction, Transaction, TxPayload};
use stele_vm::CallTrace;

use super::Handler;
use crate::mempool::AdmitError;
use crate::rpc::errors::{self, err, internal, invalid, too_large};
use crate::rpc::estimate;
use crate::rpc::pool::PoolError;
use crate::rpc::size;
use stele_exec::{Applied, BlockEnv, StateWorld};

impl Handler {
    /// `call_view`: a read-only call at a committed height.
    pub(super) async fn view_call(
        &self,
        contract: Address,
        method: String,
        args: Bytes,
        height: Option<u64>,
    ) -> RpcResult<ViewResult> {
        async {
            self.reach(height).await?;
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

    /// `simulate_transaction`: a dry run as the next block, with its trace.
    pub(super) async fn simulation(&self, request: SimulateRequest) -> RpcResult<SimulationResult> {
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

    /// `estimate_gas`: the least gas limit with which the transaction succeeds.
    pub(super) async fn gas_estimate(&self, request: SimulateRequest) -> RpcResult<GasEstimate> {
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
                TxPayload::VoteValidators { .. } | TxPayload::VoteUpgrade { .. } => 0,
            };
            let block_gas_max = self
                .ctx
                .executor
                .protocol_on(&base)
                .map_err(internal)?
                .block_gas_max;
            let cap = self.config.view_gas_max.min(block_gas_max);
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
