//! Contract calls that change nothing: `call_view`, `simulate_transaction`
//! and `estimate_gas`, run on the execution pool.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonrpsee::core::RpcResult;
use stele_client::api::*;
use stele_types::codec::Encode;
use stele_types::{Address, ExecStatus, Hash, Limits, SignedTransaction, Transaction, TxPayload};
use stele_vm::{CallTrace, WorldError};

use super::Handler;
use crate::mempool::AdmitError;
use crate::rpc::errors::{self, err, internal, invalid, too_large};
use crate::rpc::estimate;
use crate::rpc::pool::PoolError;
use crate::rpc::size;
use stele_exec::{Applied, BlockEnv, ExecError, StateWorld};

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
                        false,
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

    /// `trace_transaction`: a committed transaction run again on the state
    /// its block started from (its parent's, while kept), after the
    /// block's transactions before it, with its call trace and the storage
    /// keys it wrote. The replay's receipt must equal the stored one.
    pub(super) async fn transaction_trace(&self, hash: Hash) -> RpcResult<TransactionTrace> {
        async {
            let stored = self.receipt_info(&hash).await?.ok_or_else(|| {
                errors::not_found(format_args!("committed transaction {hash}"))
            })?;
            let height = stored.block_height;
            let parent = self.height(Some(height - 1)).map_err(|_| {
                err(
                    codes::HEIGHT_UNAVAILABLE,
                    format!(
                        "the state before block {height} is no longer kept by this node, so the transaction cannot be run again (a node with more versions kept, [storage] versions_kept, can)"
                    ),
                )
            })?;
            let block = self
                .read(move |reader| {
                    reader
                        .committed(height)
                        .map_err(internal)?
                        .ok_or_else(|| errors::not_found(format_args!("block at height {height}")))
                })
                .await?;
            let env = BlockEnv {
                height,
                timestamp_ms: block.block.header.timestamp_ms,
                proposer: block.block.header.proposer,
            };
            let base = self.base(parent);
            let executor = self.ctx.executor.clone();
            let index = stored.index as usize;
            let _replaying = self.replays.clone().try_acquire_owned().map_err(|_| {
                err(
                    codes::BUSY,
                    "another replay is running on this node; retry in a moment".to_string(),
                )
            })?;
            let replayed = self
                .exec(move || executor.replay_tx(base, &env, &block.block.txs, index))
                .await?
                .map_err(|e| match e {
                    ExecError::TxInternal { reason, .. }
                        if reason.contains(&WorldError::IterationUnavailable.to_string()) =>
                    {
                        err(
                            codes::ITERATION_UNAVAILABLE,
                            format!(
                                "the transaction iterates contract storage, which only the latest state can; it cannot be run again at height {height}"
                            ),
                        )
                    }
                    e => internal(format!("replaying block {height}: {e}")),
                })?;
            if replayed.receipt != stored.receipt {
                tracing::error!(%hash, height, "rpc: a replayed transaction's receipt differs from the stored one");
                return Err(internal(format!(
                    "the replay of {hash} gave another receipt than block {height} holds; this node's execution is not deterministic, please report it"
                )));
            }
            let result = TransactionTrace {
                hash,
                block_height: height,
                index: stored.index,
                sender: replayed.sender,
                receipt: replayed.receipt,
                trace: replayed.trace.map(frame),
                storage_writes: replayed
                    .storage_writes
                    .into_iter()
                    .map(|w| StorageWriteInfo {
                        contract: w.contract,
                        key: Bytes(w.key),
                        value_hash: w.value_hash,
                    })
                    .collect(),
                trace_omitted: false,
            };
            // A deep trace can pass the response limit alone: then it is
            // left out, as a simulation's is.
            match self.whole(result.clone(), || "the transaction's trace".into()) {
                Ok(r) => Ok(r),
                Err(_) => self.whole(
                    TransactionTrace {
                        trace: None,
                        trace_omitted: true,
                        ..result
                    },
                    || "the transaction's replay".into(),
                ),
            }
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
            let protocol = self.ctx.executor.protocol_on(&base).map_err(internal)?;
            let cap = self.config.view_gas_max.min(protocol.block_gas_max);
            // Said as what it is, not as the gas limit nothing is left for.
            if value > balance {
                return Err(err(
                    codes::TX_INSUFFICIENT_FUNDS,
                    format!("insufficient funds: {sender} has {balance} and would send {value}"),
                ));
            }
            let affordable = match tx.gas_price {
                0 => u128::from(cap),
                p => (balance - value) / u128::from(p),
            };
            let signed_len = SignedTransaction {
                tx: tx.clone(),
                signature: stele_types::Signature([0; 65]),
            }
            .to_bytes()
            .len();
            let intrinsic = protocol.intrinsic_gas(signed_len);
            if affordable < u128::from(intrinsic) {
                return Err(err(
                    codes::TX_INSUFFICIENT_FUNDS,
                    format!(
                        "insufficient funds: {sender} has {balance}; after the value {value}, it buys {affordable} gas at price {}, less than the {intrinsic} the transaction needs before it runs",
                        tx.gas_price
                    ),
                ));
            }
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
    Some(stele_abi::output_text(output))
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
        logs: t
            .logs
            .into_iter()
            .map(|l| TraceLog {
                after_calls: l.after_calls,
                text: l.text,
            })
            .collect(),
    }
}
