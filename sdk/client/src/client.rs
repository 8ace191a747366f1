//! The typed client: an HTTP client for calls and, when connected over
//! WebSocket, subscriptions.

use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Error as RpcClientError, Subscription};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use stele_types::{Account, Address, Hash, ValidatorSet};
use thiserror::Error;

use crate::api::*;
use crate::verify::{VerifyError, verify_account_proof, verify_storage_proof};

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
    /// The node acknowledged a transaction under another hash than the
    /// Keccak-256 of the bytes sent.
    #[error("the node answered hash {answered} for transaction {sent}")]
    HashMismatch { sent: Hash, answered: Hash },
    /// A transaction sent did not commit within the time waited; it may
    /// still commit later.
    #[error("transaction {hash} did not commit within {timeout:?}")]
    NotCommitted { hash: Hash, timeout: Duration },
    /// A paged answer could not be completed (the node's pages did not
    /// continue each other).
    #[error("incomplete answer: {0}")]
    Incomplete(String),
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
            RpcClientError::Call(obj) => {
                // Invalid params carry the cause in `data` (a string), the
                // message being only "Invalid params".
                let cause = obj
                    .data()
                    .and_then(|d| serde_json::from_str::<String>(d.get()).ok());
                let message = match cause {
                    Some(cause) => format!("{}: {cause}", obj.message()),
                    None => obj.message().to_string(),
                };
                ClientError::Rpc {
                    code: obj.code(),
                    message,
                }
            }
            other => ClientError::Transport(other.to_string()),
        }
    }
}

enum Transport {
    Http(HttpClient),
    Ws(WsClient),
}

/// Most epochs [`Client::validators_for_block`] walks from the genesis.
pub const EPOCH_WALK_MAX: usize = 10_000;

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

/// Largest answer the client reads. The node keeps every answer within its
/// `response_bytes_max` (16 MiB by default) by paging; this leaves room for
/// nodes configured higher without letting one allocate without bound.
pub const RESPONSE_BYTES_MAX: u32 = 64 << 20;

/// Events asked for per `get_events` call when completing a receipt.
const RECEIPT_EVENTS_PAGE: u32 = 500;

/// Longest single `wait_for_receipt` call of [`Client::wait_for_commit`];
/// shorter than the node's default cap (60 s), so a node configured lower
/// is asked again rather than trusted to wait.
const WAIT_SLICE_MS: u64 = 10_000;

/// Pages read to complete one receipt or block; each page makes progress,
/// so this only stops a node that answers inconsistently.
const PAGES_MAX: usize = 100_000;

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
            Transport::Ws(
                WsClientBuilder::default()
                    .max_response_size(RESPONSE_BYTES_MAX)
                    .build(url)
                    .await?,
            )
        } else {
            Transport::Http(
                HttpClientBuilder::default()
                    .max_response_size(RESPONSE_BYTES_MAX)
                    .build(url)?,
            )
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

    /// The whole receipt of a committed transaction: events the node left
    /// out of its answer (a receipt over its response limit) are read with
    /// `get_events` and put back, so `events_omitted` is 0.
    pub async fn get_receipt(&self, hash: Hash) -> Result<ReceiptInfo, ClientError> {
        let info = call!(self, get_receipt(hash))?;
        self.complete_receipt(info).await
    }

    /// The node's answer to `get_receipt` as it is: a receipt over the
    /// response limit has `events_omitted` events left out.
    pub async fn get_receipt_page(&self, hash: Hash) -> Result<ReceiptInfo, ClientError> {
        call!(self, get_receipt(hash))
    }

    /// Waits on the node until `hash` commits, at most `timeout_ms` (the
    /// node caps it); the whole receipt, as [`Client::get_receipt`].
    pub async fn wait_for_receipt(
        &self,
        hash: Hash,
        timeout_ms: u64,
    ) -> Result<ReceiptInfo, ClientError> {
        let info = call!(self, wait_for_receipt(hash, timeout_ms))?;
        self.complete_receipt(info).await
    }

    /// Sends the signed transaction `raw` and waits until it commits, at
    /// most `timeout`; its whole receipt, as [`Client::get_receipt`].
    /// `sender`, when given, names the account that signed `raw` (as
    /// [`Client::send_transaction_from`]). The node's acknowledgement must
    /// name the hash of `raw`.
    pub async fn send_and_wait(
        &self,
        raw: &[u8],
        sender: Option<Address>,
        timeout: Duration,
    ) -> Result<ReceiptInfo, ClientError> {
        let hash = stele_types::keccak256(raw);
        let answered = call!(self, send_transaction(Bytes::from(raw), sender))?;
        if answered != hash {
            return Err(ClientError::HashMismatch {
                sent: hash,
                answered,
            });
        }
        self.wait_for_commit(hash, timeout).await
    }

    /// Waits until `hash` commits, at most `timeout` however long that is
    /// (the node caps each `wait_for_receipt`, so this asks again until the
    /// deadline); the whole receipt, as [`Client::get_receipt`].
    pub async fn wait_for_commit(
        &self,
        hash: Hash,
        timeout: Duration,
    ) -> Result<ReceiptInfo, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::NotCommitted { hash, timeout });
            }
            let slice_ms = u64::try_from(left.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, WAIT_SLICE_MS);
            match self.wait_for_receipt(hash, slice_ms).await {
                Err(ClientError::Rpc { code, .. }) if code == codes::TIMEOUT => continue,
                other => return other,
            }
        }
    }

    /// Reads the events a node left out of `info` and appends them.
    pub async fn complete_receipt(
        &self,
        mut info: ReceiptInfo,
    ) -> Result<ReceiptInfo, ClientError> {
        let mut cursor = Some(info.events_cursor());
        let mut pages = 0;
        while info.events_omitted > 0 {
            let Some(at) =
                cursor.filter(|c| c.height == info.block_height && c.tx_index == info.index)
            else {
                break;
            };
            pages += 1;
            if pages > PAGES_MAX {
                break;
            }
            let limit = info.events_omitted.min(RECEIPT_EVENTS_PAGE);
            let page = call!(
                self,
                get_events(
                    EventFilter::default(),
                    info.block_height,
                    Some(info.block_height),
                    limit,
                    Some(at)
                )
            )?;
            for log in page.events {
                if log.tx_index != info.index || info.events_omitted == 0 {
                    break;
                }
                info.receipt.events.push(log.event);
                info.events_omitted -= 1;
            }
            cursor = page.next;
        }
        if info.events_omitted > 0 {
            return Err(ClientError::Incomplete(format!(
                "receipt of {}: the node returned {} events and {} more could not be read",
                info.receipt.tx_hash,
                info.receipt.events.len(),
                info.events_omitted
            )));
        }
        Ok(info)
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

    /// The whole block: transactions the node left out of its answer (a
    /// block over its response limit) are read page by page and put back.
    pub async fn get_block(&self, id: BlockId) -> Result<BlockInfo, ClientError> {
        let info = call!(self, get_block(id, None))?;
        self.complete_block(info).await
    }

    /// One page of a block: its transactions from index `txs_from`, as many
    /// as fit in the node's response limit (`txs_next` says where the rest
    /// start).
    pub async fn get_block_page(
        &self,
        id: BlockId,
        txs_from: u32,
    ) -> Result<BlockInfo, ClientError> {
        call!(self, get_block(id, Some(txs_from)))
    }

    /// The latest committed block, whole (as [`Client::get_block`]).
    pub async fn get_latest_block(&self) -> Result<BlockInfo, ClientError> {
        let info = call!(self, get_latest_block())?;
        self.complete_block(info).await
    }

    async fn complete_block(&self, mut info: BlockInfo) -> Result<BlockInfo, ClientError> {
        let id = BlockId::Hash(info.hash);
        let mut pages = 0;
        while let Some(from) = info.txs_next {
            pages += 1;
            let expected = info.txs_from as usize + info.block.txs.len();
            if pages > PAGES_MAX || from as usize != expected {
                return Err(ClientError::Incomplete(format!(
                    "block {}: the node's next page starts at transaction {from}, expected {expected}",
                    info.hash
                )));
            }
            let page = self.get_block_page(id, from).await?;
            if page.hash != info.hash || page.txs_from != from || page.block.txs.is_empty() {
                return Err(ClientError::Incomplete(format!(
                    "block {}: the page from transaction {from} does not continue it",
                    info.hash
                )));
            }
            info.block.txs.extend(page.block.txs);
            info.txs_next = page.txs_next;
        }
        if info.txs_from != 0 {
            return Err(ClientError::Incomplete(format!(
                "block {}: the node's answer starts at transaction {}",
                info.hash, info.txs_from
            )));
        }
        Ok(info)
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
    /// is checked against a header certified by the set of its epoch, which
    /// is found from `genesis` (the genesis validator set) by
    /// [`Client::validators_for_block`].
    pub async fn get_storage_verified(
        &self,
        chain_id: u64,
        genesis: &ValidatorSet,
        contract: Address,
        key: &[u8],
        height: Option<u64>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let proof = self.get_storage_proof(contract, key, height).await?;
        crate::verify::check_storage_answer(&proof, &contract, key, height)?;
        let set = self
            .validators_for_block(proof.header.height, chain_id, genesis)
            .await?;
        verify_storage_proof(&proof, chain_id, &set)?;
        Ok(proof.value.map(|v| v.0))
    }

    /// A committed transaction run again on its block's parent state:
    /// its call trace with gas per frame and the storage keys it wrote.
    pub async fn trace_transaction(&self, hash: Hash) -> Result<TransactionTrace, ClientError> {
        call!(self, trace_transaction(hash))
    }

    pub async fn get_account_proof(
        &self,
        address: Address,
        height: Option<u64>,
    ) -> Result<AccountProof, ClientError> {
        call!(self, get_account_proof(address, height))
    }

    /// An account record that does not rely on trusting the node, checked
    /// as [`Client::get_storage_verified`] checks a storage value; `None`
    /// when the account is proven not to exist. Returns the certified
    /// header's height with it.
    pub async fn get_account_verified(
        &self,
        chain_id: u64,
        genesis: &ValidatorSet,
        address: Address,
        height: Option<u64>,
    ) -> Result<(u64, Option<Account>), ClientError> {
        let proof = self.get_account_proof(address, height).await?;
        crate::verify::check_account_answer(&proof, &address, height)?;
        let set = self
            .validators_for_block(proof.header.height, chain_id, genesis)
            .await?;
        let account = verify_account_proof(&proof, chain_id, &set)?;
        Ok((proof.header.height, account))
    }

    /// A page of the transactions that wrote `key` of `contract`, newest
    /// first, from `cursor` (inclusive; `None`: the newest); continue with
    /// the page's `next`. Only nodes that keep the storage-history index
    /// answer (`codes::INDEX_OFF` elsewhere).
    pub async fn get_storage_history(
        &self,
        contract: Address,
        key: &[u8],
        limit: u32,
        cursor: Option<StorageHistoryCursor>,
    ) -> Result<StorageHistoryPage, ClientError> {
        call!(
            self,
            get_storage_history(contract, Bytes::from(key), limit, cursor)
        )
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

    /// Past events, pages ending on whole blocks (continue from
    /// `next_height`). A block whose matching events alone exceed the
    /// node's response limit is refused with `RESPONSE_TOO_LARGE`; read it
    /// with [`Client::get_events_page`].
    pub async fn get_events(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
    ) -> Result<EventPage, ClientError> {
        call!(
            self,
            get_events(filter, from_height, to_height, limit, None)
        )
    }

    /// Past events from `cursor` (the start of `from_height` when `None`):
    /// pages end exactly at `limit` events or the node's response limit,
    /// even inside a block; continue with `page.next` until it is `None`.
    pub async fn get_events_page(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
        cursor: Option<EventCursor>,
    ) -> Result<EventPage, ClientError> {
        let cursor = cursor.unwrap_or(EventCursor::block_start(from_height.max(1)));
        call!(
            self,
            get_events(filter, from_height, to_height, limit, Some(cursor))
        )
    }

    pub async fn get_status(&self) -> Result<StatusInfo, ClientError> {
        call!(self, get_status())
    }

    /// The validator set and epoch after `height` (the latest by default).
    pub async fn get_validators(&self, height: Option<u64>) -> Result<ValidatorsInfo, ClientError> {
        call!(self, get_validators(height))
    }

    /// The protocol parameters after `height` (the latest by default) and
    /// the upgrade scheduled (ADR 0011).
    pub async fn get_protocol(&self, height: Option<u64>) -> Result<ProtocolInfo, ClientError> {
        call!(self, get_protocol(height))
    }

    /// The validator set that certifies block `height`, trusting only
    /// `genesis` (the genesis set of chain `chain_id`), not this node
    /// (ADR 0010). It finds the epochs' boundaries below `height` with
    /// `get_validators`, then walks them from the genesis: each epoch's
    /// last block must be certified, in that epoch, by the set known for
    /// it, and its header must name the next set the node gives. One
    /// block and two small reads per epoch.
    /// It stops past [`EPOCH_WALK_MAX`] epochs, so a node cannot keep a
    /// client reading by claiming a long chain of epochs.
    pub async fn validators_for_block(
        &self,
        height: u64,
        chain_id: u64,
        genesis: &ValidatorSet,
    ) -> Result<ValidatorSet, ClientError> {
        let broken = |height: u64, reason: String| VerifyError::SetChain { height, reason };
        // The first heights of the epochs up to `height`'s, newest first.
        let mut starts = Vec::new();
        let mut at = height.saturating_sub(1);
        loop {
            let info = self.get_validators(Some(at)).await?;
            if info.epoch == 0 {
                break;
            }
            if info.epoch_start_height == 0 || info.epoch_start_height > at + 1 {
                return Err(broken(at, "the node gives an impossible epoch start".into()).into());
            }
            // Epochs strictly fall as the walk goes down, which also bounds
            // it by the first epoch's number.
            if starts.last().is_some_and(|(later, _)| info.epoch >= *later) {
                return Err(broken(at, "the epochs do not fall towards the genesis".into()).into());
            }
            if starts.len() == EPOCH_WALK_MAX {
                return Err(broken(
                    at,
                    format!("more than {EPOCH_WALK_MAX} epochs to walk from the genesis"),
                )
                .into());
            }
            starts.push((info.epoch, info.epoch_start_height));
            at = info.epoch_start_height.saturating_sub(2);
            if info.epoch_start_height < 2 {
                break;
            }
        }
        let mut set = genesis.clone();
        let mut epoch = 0;
        for (next_epoch, start) in starts.into_iter().rev() {
            if next_epoch != epoch + 1 {
                return Err(
                    broken(start, format!("epoch {next_epoch} follows epoch {epoch}")).into(),
                );
            }
            let last = start - 1;
            let block = self.get_block(BlockId::Height(last)).await?;
            let header = &block.block.header;
            if header.chain_id != chain_id || header.epoch != epoch {
                return Err(
                    broken(last, "the last block is of another chain or epoch".into()).into(),
                );
            }
            block
                .certificate
                .verify_header(header, &set)
                .map_err(|e| broken(last, e.to_string()))?;
            let next = self.get_validators(Some(last)).await?.validators;
            if next.hash() != header.next_validators_hash {
                return Err(broken(last, "the header names another next set".into()).into());
            }
            set = next;
            epoch = next_epoch;
        }
        Ok(set)
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
