//! The typed client: an HTTP client for calls and, when connected over
//! WebSocket, subscriptions.

use jsonrpsee::core::client::{ClientT, Error as RpcClientError, Subscription};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use stele_types::{Address, Hash, ValidatorSet};
use thiserror::Error;

use crate::api::*;
use crate::verify::{VerifyError, verify_storage_proof};

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The node answered with a JSON-RPC error; `code` is one of
    /// [`crate::api::codes`] or a JSON-RPC 2.0 code.
    #[error("node error {code}: {message}")]
    Rpc { code: i32, message: String },
    /// Transport, protocol or decoding failure.
    #[error("transport: {0}")]
    Transport(String),
    #[error("subscriptions need a WebSocket connection (ws:// or wss://)")]
    NoWebSocket,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("contract {0} has no stele_abi section")]
    NoAbi(Address),
    #[error("ABI: {0}")]
    Abi(#[from] stele_abi::AbiError),
}

impl ClientError {
    /// The JSON-RPC error code, if the node answered with an error.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<RpcClientError> for ClientError {
    fn from(e: RpcClientError) -> Self {
        match e {
            RpcClientError::Call(obj) => ClientError::Rpc {
                code: obj.code(),
                message: obj.message().to_string(),
            },
            other => ClientError::Transport(other.to_string()),
        }
    }
}

enum Transport {
    Http(HttpClient),
    Ws(WsClient),
}

/// A connection to one node. `http://` URLs support calls; `ws://` URLs
/// support calls and subscriptions.
pub struct Client {
    inner: Transport,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Transport::Http(_) => "http",
            Transport::Ws(_) => "ws",
        };
        f.debug_struct("Client").field("transport", &kind).finish()
    }
}

macro_rules! call {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match &$self.inner {
            Transport::Http(c) => SteleApiClient::$method(c, $($arg),*).await,
            Transport::Ws(c) => SteleApiClient::$method(c, $($arg),*).await,
        }
        .map_err(ClientError::from)
    };
}

impl Client {
    /// Connects to `url` (`http://`, `https://`, `ws://` or `wss://`).
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        let inner = if url.starts_with("ws://") || url.starts_with("wss://") {
            Transport::Ws(WsClientBuilder::default().build(url).await?)
        } else {
            Transport::Http(HttpClientBuilder::default().build(url)?)
        };
        Ok(Client { inner })
    }

    /// Sends a raw JSON-RPC request (for methods or parameters this client
    /// does not type).
    pub async fn raw_request(
        &self,
        method: &str,
        params: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut p = jsonrpsee::core::params::ArrayParams::new();
        for v in params {
            p.insert(v)
                .map_err(|e| ClientError::Transport(e.to_string()))?;
        }
        Ok(match &self.inner {
            Transport::Http(c) => c.request(method, p).await?,
            Transport::Ws(c) => c.request(method, p).await?,
        })
    }

    pub async fn send_transaction(&self, raw: &[u8]) -> Result<Hash, ClientError> {
        call!(self, send_transaction(Bytes::from(raw), None))
    }

    /// [`Client::send_transaction`] naming the account that signed `raw`:
    /// the node rejects it if that account did not, and checks a busy
    /// sender's signatures in about half the time of a recovery.
    pub async fn send_transaction_from(
        &self,
        raw: &[u8],
        sender: Address,
    ) -> Result<Hash, ClientError> {
        call!(self, send_transaction(Bytes::from(raw), Some(sender)))
    }

    pub async fn get_transaction(&self, hash: Hash) -> Result<TransactionInfo, ClientError> {
        call!(self, get_transaction(hash))
    }

    pub async fn get_receipt(&self, hash: Hash) -> Result<ReceiptInfo, ClientError> {
        call!(self, get_receipt(hash))
    }

    /// Waits on the node until `hash` commits, at most `timeout_ms` (the
    /// node caps it).
    pub async fn wait_for_receipt(
        &self,
        hash: Hash,
        timeout_ms: u64,
    ) -> Result<ReceiptInfo, ClientError> {
        call!(self, wait_for_receipt(hash, timeout_ms))
    }

    pub async fn call_view(
        &self,
        contract: Address,
        method: &str,
        args: &[u8],
        height: Option<u64>,
    ) -> Result<ViewResult, ClientError> {
        call!(
            self,
            call_view(contract, method.to_string(), Bytes::from(args), height)
        )
    }

    pub async fn simulate_transaction(
        &self,
        request: SimulateRequest,
    ) -> Result<SimulationResult, ClientError> {
        call!(self, simulate_transaction(request))
    }

    pub async fn estimate_gas(&self, request: SimulateRequest) -> Result<GasEstimate, ClientError> {
        call!(self, estimate_gas(request))
    }

    pub async fn get_block(&self, id: BlockId) -> Result<BlockInfo, ClientError> {
        call!(self, get_block(id))
    }

    pub async fn get_latest_block(&self) -> Result<BlockInfo, ClientError> {
        call!(self, get_latest_block())
    }

    pub async fn get_account(&self, address: Address) -> Result<AccountInfo, ClientError> {
        call!(self, get_account(address))
    }

    pub async fn get_contract(&self, address: Address) -> Result<ContractInfo, ClientError> {
        call!(self, get_contract(address))
    }

    pub async fn get_code(&self, code_hash: Hash) -> Result<Vec<u8>, ClientError> {
        call!(self, get_code(code_hash)).map(|b| b.0)
    }

    pub async fn get_storage_proof(
        &self,
        contract: Address,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<StorageProof, ClientError> {
        call!(self, get_storage_proof(contract, Bytes::from(key), height))
    }

    /// A storage value that does not rely on trusting the node: the proof
    /// is checked against a header certified by `validators`.
    pub async fn get_storage_verified(
        &self,
        chain_id: u64,
        validators: &ValidatorSet,
        contract: Address,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let proof = self.get_storage_proof(contract, key, height).await?;
        verify_storage_proof(&proof, chain_id, validators)?;
        Ok(proof.value.map(|v| v.0))
    }

    pub async fn list_storage(
        &self,
        contract: Address,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        limit: u32,
    ) -> Result<StoragePage, ClientError> {
        call!(
            self,
            list_storage(
                contract,
                Bytes::from(prefix),
                cursor.map(Bytes::from),
                limit
            )
        )
    }

    pub async fn get_events(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
    ) -> Result<EventPage, ClientError> {
        call!(self, get_events(filter, from_height, to_height, limit))
    }

    pub async fn get_status(&self) -> Result<StatusInfo, ClientError> {
        call!(self, get_status())
    }

    fn ws(&self) -> Result<&WsClient, ClientError> {
        match &self.inner {
            Transport::Ws(c) => Ok(c),
            Transport::Http(_) => Err(ClientError::NoWebSocket),
        }
    }

    /// Every committed block.
    pub async fn subscribe_new_blocks(&self) -> Result<Subscription<NewBlock>, ClientError> {
        Ok(SteleApiClient::subscribe_new_blocks(self.ws()?).await?)
    }

    /// Contract events matching `filter` as their blocks commit.
    pub async fn subscribe_events(
        &self,
        filter: EventFilter,
    ) -> Result<Subscription<EventLog>, ClientError> {
        Ok(SteleApiClient::subscribe_events(self.ws()?, filter).await?)
    }

    /// The status of `hash` now, then when it commits.
    pub async fn subscribe_tx_status(
        &self,
        hash: Hash,
    ) -> Result<Subscription<TxStatus>, ClientError> {
        Ok(SteleApiClient::subscribe_tx_status(self.ws()?, hash).await?)
    }
}
