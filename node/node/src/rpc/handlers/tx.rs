//! Transactions and receipts: `send_transaction`, `get_transaction`,
//! `get_receipt`, `wait_for_receipt` and the status a `tx_status`
//! subscription reports.

use std::time::Duration;

use jsonrpsee::Extensions;
use jsonrpsee::core::RpcResult;
use stele_client::api::*;
use stele_types::{Address, Hash};

use super::{Handler, REFUSED_SUBMISSION_TOKENS, TX_STATUS_OVERHEAD};

use crate::rpc::call_limit::ClientIp;
use crate::rpc::errors::{self, err, internal, not_found};
use crate::rpc::feed::FeedEnd;
use crate::rpc::pool::PoolError;
use crate::store::CommittedBlock;

impl Handler {
    /// `send_transaction`: checks `raw` on the admission pool and admits it.
    pub(super) async fn submit(
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

    /// `get_transaction`: a committed or pending transaction.
    pub(super) async fn transaction(&self, hash: Hash) -> RpcResult<TransactionInfo> {
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

    /// `get_receipt`: the receipt of a committed transaction. Read your
    /// write: a node a little behind the chain (a full node that has not
    /// committed the latest block it heard of) waits to catch up before it
    /// answers that it has none, and a transaction it holds pending gets
    /// `TX_PENDING`, not `NOT_FOUND`.
    pub(super) async fn receipt(&self, hash: Hash) -> RpcResult<ReceiptInfo> {
        if let Some(r) = self.receipt_info(&hash).await? {
            return self.fit_receipt(r, 0);
        }
        if self.wait_for_certified().await?
            && let Some(r) = self.receipt_info(&hash).await?
        {
            return self.fit_receipt(r, 0);
        }
        if self.ctx.submitter.pending(&hash).is_some() {
            return Err(err(
                codes::TX_PENDING,
                format!(
                    "transaction {hash} is pending: admitted, not committed yet (wait_for_receipt waits for it)"
                ),
            ));
        }
        Err(not_found(format_args!("receipt of {hash}")))
    }

    /// Waits until this node has committed the highest certified height
    /// it has heard of ([`Handler::wait_until_committed`]); whether it was
    /// behind.
    async fn wait_for_certified(&self) -> RpcResult<bool> {
        match self.ctx.status.peer_height() {
            Some(target) => self.wait_until_committed(target).await,
            None => Ok(false),
        }
    }

    /// `wait_for_receipt`: the receipt, once the transaction commits.
    pub(super) async fn await_receipt(
        &self,
        hash: Hash,
        timeout_ms: u64,
    ) -> RpcResult<ReceiptInfo> {
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

    pub(super) async fn receipt_info(&self, hash: &Hash) -> RpcResult<Option<ReceiptInfo>> {
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

    pub(super) async fn tx_status(&self, hash: &Hash) -> RpcResult<TxStatus> {
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
}

/// The receipt of the transaction `hash` in a block just committed, if it
/// holds it.
pub(super) fn receipt_in(block: &CommittedBlock, hash: &Hash) -> Option<ReceiptInfo> {
    let index = block.receipts.iter().position(|r| r.tx_hash == *hash)?;
    Some(ReceiptInfo {
        receipt: block.receipts[index].clone(),
        block_height: block.block.header.height,
        block_hash: block.certificate.block_hash,
        index: index as u32,
        events_omitted: 0,
    })
}
