//! The one `SteleApiServer` impl (jsonrpsee's macro wants a single impl):
//! each method delegates to the area module that implements it.

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use stele_client::api::*;
use stele_types::{Address, Hash};

use super::Handler;

#[async_trait]
impl SteleApiServer for Handler {
    async fn send_transaction(
        &self,
        ext: &Extensions,
        raw: Bytes,
        sender: Option<Address>,
    ) -> RpcResult<Hash> {
        self.submit(ext, raw, sender).await
    }

    async fn get_transaction(&self, hash: Hash) -> RpcResult<TransactionInfo> {
        self.transaction(hash).await
    }

    async fn get_receipt(&self, hash: Hash) -> RpcResult<ReceiptInfo> {
        self.receipt(hash).await
    }

    async fn wait_for_receipt(&self, hash: Hash, timeout_ms: u64) -> RpcResult<ReceiptInfo> {
        self.await_receipt(hash, timeout_ms).await
    }

    async fn call_view(
        &self,
        contract: Address,
        method: String,
        args: Bytes,
        height: Option<u64>,
    ) -> RpcResult<ViewResult> {
        self.view_call(contract, method, args, height).await
    }

    async fn simulate_transaction(&self, request: SimulateRequest) -> RpcResult<SimulationResult> {
        self.simulation(request).await
    }

    async fn estimate_gas(&self, request: SimulateRequest) -> RpcResult<GasEstimate> {
        self.gas_estimate(request).await
    }

    async fn get_block(&self, id: BlockId, txs_from: Option<u32>) -> RpcResult<BlockInfo> {
        self.block(id, txs_from).await
    }

    async fn get_latest_block(&self) -> RpcResult<BlockInfo> {
        self.latest_block().await
    }

    async fn get_account(&self, address: Address) -> RpcResult<AccountInfo> {
        self.account(address).await
    }

    async fn get_contract(&self, address: Address) -> RpcResult<ContractInfo> {
        self.contract(address).await
    }

    async fn get_code(&self, code_hash: Hash) -> RpcResult<Bytes> {
        self.code(code_hash).await
    }

    async fn get_storage_proof(
        &self,
        contract: Address,
        key: Bytes,
        height: Option<u64>,
    ) -> RpcResult<StorageProof> {
        self.storage_proof(contract, key, height).await
    }

    async fn trace_transaction(&self, hash: Hash) -> RpcResult<TransactionTrace> {
        self.transaction_trace(hash).await
    }

    async fn get_account_proof(
        &self,
        address: Address,
        height: Option<u64>,
    ) -> RpcResult<AccountProof> {
        self.account_proof(address, height).await
    }

    async fn get_events(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
        cursor: Option<EventCursor>,
    ) -> RpcResult<EventPage> {
        self.events_page(filter, from_height, to_height, limit, cursor)
            .await
    }

    async fn list_storage(
        &self,
        contract: Address,
        prefix: Bytes,
        cursor: Option<Bytes>,
        limit: u32,
    ) -> RpcResult<StoragePage> {
        self.storage_page(contract, prefix, cursor, limit).await
    }

    async fn get_storage_history(
        &self,
        contract: Address,
        key: Bytes,
        limit: u32,
        cursor: Option<StorageHistoryCursor>,
    ) -> RpcResult<StorageHistoryPage> {
        self.storage_history(contract, key, limit, cursor).await
    }

    async fn get_status(&self) -> RpcResult<StatusInfo> {
        self.node_status().await
    }

    async fn get_validators(&self, height: Option<u64>) -> RpcResult<ValidatorsInfo> {
        self.validators_at(height).await
    }

    async fn get_protocol(&self, height: Option<u64>) -> RpcResult<ProtocolInfo> {
        self.protocol_at(height).await
    }

    async fn subscribe_new_blocks(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        self.follow_new_blocks(pending, ext).await
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        filter: EventFilter,
    ) -> SubscriptionResult {
        self.follow_events(pending, ext, filter).await
    }

    async fn subscribe_tx_status(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        hash: Hash,
    ) -> SubscriptionResult {
        self.follow_tx_status(pending, ext, hash).await
    }
}
