//! The JSON-RPC API: method signatures, request and response types, and
//! error codes. JSON conventions: hashes, addresses and byte strings are
//! `0x`-hex; `u128` amounts are decimal strings; `u64` values (heights,
//! nonces, gas) are JSON numbers.

// Only the server side keeps these signatures; the client macro rewrites them.
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};
use stele_types::hex::serde_u128;
use stele_types::proof::SparseMerkleProof;
use stele_types::{
    Address, Amount, Block, BlockHeader, CommitCertificate, Event, ExecStatus, Hash,
    ProtocolParams, Receipt, SignedTransaction, Transaction, ValidatorSet,
};

/// Error codes of the API, beside the JSON-RPC 2.0 ones (-32700 parse error,
/// -32600 invalid request, -32601 method not found, -32602 invalid params,
/// -32603 internal error).
pub mod codes {
    /// `send_transaction`: the transaction's encoding is over the size limit.
    pub const TX_TOO_LARGE: i32 = 1001;
    /// The transaction bytes do not decode.
    pub const TX_MALFORMED: i32 = 1002;
    /// The transaction is for another chain.
    pub const TX_WRONG_CHAIN: i32 = 1003;
    /// The signature does not verify.
    pub const TX_BAD_SIGNATURE: i32 = 1004;
    /// The same transaction is already pending.
    pub const TX_ALREADY_KNOWN: i32 = 1005;
    /// The nonce was already used.
    pub const TX_NONCE_TOO_LOW: i32 = 1006;
    /// The nonce leaves a gap or is too far ahead.
    pub const TX_NONCE_TOO_HIGH: i32 = 1007;
    /// The sender cannot pay `gas_limit * gas_price + value`.
    pub const TX_INSUFFICIENT_FUNDS: i32 = 1008;
    /// The gas limit is over the block gas limit.
    pub const TX_GAS_LIMIT_OVER_BLOCK: i32 = 1009;
    /// The gas price is under the node's minimum.
    pub const TX_GAS_PRICE_TOO_LOW: i32 = 1010;
    /// A replacement for a pending nonce does not pay enough more.
    pub const TX_REPLACEMENT_UNDERPRICED: i32 = 1011;
    /// The sender has too many pending transactions.
    pub const TX_SENDER_FULL: i32 = 1012;
    /// The mempool is full.
    pub const TX_MEMPOOL_FULL: i32 = 1013;
    /// The gas limit does not cover the transaction's intrinsic gas.
    pub const TX_GAS_BELOW_INTRINSIC: i32 = 1014;
    /// `send_transaction` named a sender, and the signature is not its.
    pub const TX_NOT_SIGNED_BY: i32 = 1015;
    /// The sender's transactions behind a nonce gap would exceed the
    /// node's per-sender limit: send the missing nonce first.
    pub const TX_GAPPED_BYTES_OVER: i32 = 1016;
    /// The block, transaction, receipt, code or contract does not exist.
    pub const NOT_FOUND: i32 = 2001;
    /// The height is above the committed height or was pruned.
    pub const HEIGHT_UNAVAILABLE: i32 = 2002;
    /// `wait_for_receipt` timed out.
    pub const TIMEOUT: i32 = 2003;
    /// A simulated transaction could not be included in a block (nonce,
    /// funds, intrinsic gas).
    pub const TX_REJECTED: i32 = 2004;
    /// Every execution slot is busy; retry later.
    pub const BUSY: i32 = 2005;
    /// An argument is well-formed JSON but not acceptable (key too long,
    /// limit too high, both or neither of two alternatives...).
    pub const INVALID_ARGUMENT: i32 = 2006;
    /// The node failed (storage backend); not the caller's fault.
    pub const INTERNAL: i32 = 2007;
    /// A WebSocket call over the per-IP rate (HTTP requests get HTTP 429).
    pub const RATE_LIMITED: i32 = 2008;
    /// The answer would exceed the node's response limit and the method
    /// cannot page it any further (the message names the sizes and what to
    /// call instead).
    pub const RESPONSE_TOO_LARGE: i32 = 2009;
    /// `call_view` at a height older than the latest iterated contract
    /// storage, which only the latest height can do: call at the latest
    /// height.
    pub const ITERATION_UNAVAILABLE: i32 = 2010;
    /// `get_receipt` of a transaction this node holds pending: admitted,
    /// not committed yet (`wait_for_receipt` waits for it).
    pub const TX_PENDING: i32 = 2011;
    /// `get_storage_history` on a node that keeps no storage-history index
    /// up to its latest height (`[index] storage_history` is off there):
    /// ask a node that keeps one.
    pub const INDEX_OFF: i32 = 2012;
    /// The node is joining its chain by snapshot (ADR 0012): only
    /// `get_status` answers until it has.
    pub const JOINING: i32 = 2013;
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// Bytes as `0x`-hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bytes(#[serde(with = "stele_types::hex::serde_bytes")] pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

/// A block by height (JSON number) or by hash (`0x` string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum BlockId {
    Height(u64),
    Hash(Hash),
}

/// What a [`BlockId`] may be, as its parse errors say it.
pub const BLOCK_ID_EXPECTED: &str =
    "block id must be a height (0 to 2^63-1) or a 0x-prefixed 32-byte hash";

/// Heights a [`BlockId`] accepts (heights fit a signed 64-bit integer, so
/// every language's JSON reader agrees on them).
const BLOCK_HEIGHT_MAX: u64 = i64::MAX as u64;

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BlockIdVisitor)
    }
}

struct BlockIdVisitor;

fn not_a_block_id<E: serde::de::Error>(got: impl std::fmt::Display) -> E {
    E::custom(format_args!("{BLOCK_ID_EXPECTED}, not {got}"))
}

impl<'de> serde::de::Visitor<'de> for BlockIdVisitor {
    type Value = BlockId;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a height (0 to 2^63-1) or a 0x-prefixed 32-byte hash")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BlockId, E> {
        if v > BLOCK_HEIGHT_MAX {
            return Err(not_a_block_id(v));
        }
        Ok(BlockId::Height(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BlockId, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(not_a_block_id(v)),
        }
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<BlockId, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(not_a_block_id(v)),
        }
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<BlockId, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(not_a_block_id(v)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<BlockId, E> {
        Err(not_a_block_id(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BlockId, E> {
        if !v.starts_with("0x") {
            return Err(not_a_block_id(format_args!("the string {:?}", Short(v))));
        }
        v.parse()
            .map(BlockId::Hash)
            .map_err(|e| not_a_block_id(format_args!("{:?} ({e})", Short(v))))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<BlockId, E> {
        Err(not_a_block_id(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<BlockId, E> {
        Err(not_a_block_id("null"))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<BlockId, E> {
        Err(not_a_block_id("null"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<BlockId, A::Error> {
        Err(not_a_block_id("an array"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<BlockId, A::Error> {
        Err(not_a_block_id("an object"))
    }
}

/// A client's string in an error message, cut to 80 characters so a
/// megabyte-long argument does not come back whole.
struct Short<'a>(&'a str);

impl std::fmt::Debug for Short<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN_CHARS_MAX: usize = 80;
        match self.0.char_indices().nth(SHOWN_CHARS_MAX) {
            Some((end, _)) => write!(f, "{:?}...", &self.0[..end]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// In this node's mempool.
    Pending,
    /// In a committed block.
    Committed,
    /// Neither: never seen, dropped, or replaced.
    Unknown,
}

/// A transaction and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionInfo {
    pub hash: Hash,
    pub transaction: SignedTransaction,
    /// Recovered from the signature.
    pub sender: Address,
    pub state: TxState,
    /// For a committed transaction.
    pub block_height: Option<u64>,
    pub index: Option<u32>,
}

/// A committed transaction's receipt and its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInfo {
    /// The receipt; when `events_omitted` is not 0, `receipt.events` holds
    /// only the first events (the rest did not fit in the response limit).
    pub receipt: Receipt,
    pub block_height: u64,
    pub block_hash: Hash,
    pub index: u32,
    /// Events left out at the end of `receipt.events` to keep the answer
    /// within the node's response limit (absent when 0). Read them with
    /// `get_events` from [`ReceiptInfo::events_cursor`];
    /// [`crate::Client::get_receipt`] does so itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_omitted: u32,
}

impl ReceiptInfo {
    /// Where the omitted events start, for `get_events`.
    pub fn events_cursor(&self) -> EventCursor {
        EventCursor {
            height: self.block_height,
            tx_index: self.index,
            event_index: self.receipt.events.len() as u32,
        }
    }
}

/// A committed block with its hash and commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockInfo {
    pub hash: Hash,
    /// The block; `block.txs` holds the transactions from index `txs_from`
    /// on, cut where the response limit was reached when `txs_next` is set.
    pub block: Block,
    pub certificate: CommitCertificate,
    /// Index in the block of `block.txs[0]` (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub txs_from: u32,
    /// Set when `block.txs` was cut to fit the response limit: pass it as
    /// `get_block`'s `txs_from` for the rest. [`crate::Client::get_block`]
    /// does so itself and returns the whole block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txs_next: Option<u32>,
}

/// An account at the latest committed height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInfo {
    pub address: Address,
    pub height: u64,
    #[serde(with = "serde_u128")]
    pub balance: Amount,
    /// The committed nonce: the next transaction in a block must carry it.
    pub nonce: u64,
    /// The nonce after this node's pending transactions of the account: use
    /// it for the next transaction to send.
    pub pending_nonce: u64,
    /// Keccak-256 of the code, for a contract.
    pub code_hash: Option<Hash>,
}

/// A contract at the latest committed height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractInfo {
    pub address: Address,
    pub height: u64,
    pub code_hash: Hash,
    pub code_bytes: u64,
    /// The `stele_abi` custom section parsed as JSON, if present and JSON.
    pub abi: Option<serde_json::Value>,
    /// The raw `stele_abi` custom section, if present.
    pub abi_raw: Option<Bytes>,
}

/// The outcome of a read-only call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewResult {
    pub height: u64,
    pub status: ExecStatus,
    pub gas_used: u64,
    /// Return data on success; the revert payload or failure message
    /// otherwise.
    pub output: Bytes,
    /// `output` as text, when the call did not succeed and it is UTF-8.
    pub error: Option<String>,
}

/// What to simulate: either the raw signed transaction (the sender is
/// recovered from the signature), or an unsigned transaction and the
/// sender to run it as.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    pub raw: Option<Bytes>,
    pub transaction: Option<Transaction>,
    pub sender: Option<Address>,
}

/// One frame of a call trace, with gas per frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFrame {
    pub caller: Address,
    pub contract: Address,
    pub method: String,
    #[serde(with = "serde_u128")]
    pub value: Amount,
    pub gas_budget: u64,
    pub gas_used: u64,
    pub status: ExecStatus,
    pub output: Bytes,
    pub calls: Vec<TraceFrame>,
    /// What the frame wrote with `debug_log` (`stele_sdk::log!`), in order
    /// (absent when none; VM limits 4 and later). Never stored on chain:
    /// only a dry run or a replay has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<TraceLog>,
}

/// One debug log line of a [`TraceFrame`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceLog {
    /// How many of the frame's `calls` came before the line.
    pub after_calls: u32,
    pub text: String,
}

impl TraceFrame {
    /// The frame's lines and calls in the order they happened.
    pub fn steps(&self) -> Vec<TraceStep<'_>> {
        let mut out = Vec::with_capacity(self.logs.len() + self.calls.len());
        let mut logs = self.logs.iter().peekable();
        for (i, call) in self.calls.iter().enumerate() {
            while let Some(log) = logs.next_if(|l| l.after_calls as usize <= i) {
                out.push(TraceStep::Log(&log.text));
            }
            out.push(TraceStep::Call(call));
        }
        out.extend(logs.map(|l| TraceStep::Log(&l.text)));
        out
    }
}

/// A step of a frame: a log line or a nested call ([`TraceFrame::steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStep<'a> {
    Log(&'a str),
    Call(&'a TraceFrame),
}

/// A committed transaction run again on the state its block started from
/// (`trace_transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionTrace {
    pub hash: Hash,
    pub block_height: u64,
    pub index: u32,
    pub sender: Address,
    /// The replay's receipt. The node checked it equals the stored one
    /// (execution is deterministic), and refuses to answer otherwise.
    pub receipt: Receipt,
    /// The nested calls with gas per frame (absent for a transfer or a
    /// vote, or when `trace_omitted`).
    pub trace: Option<TraceFrame>,
    /// The contract storage keys the transaction wrote (writes a reverted
    /// frame undid are not here), in order of first write.
    pub storage_writes: Vec<StorageWriteInfo>,
    /// The trace was left out to fit the response limit (absent when
    /// false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub trace_omitted: bool,
}

/// A storage key a transaction wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageWriteInfo {
    pub contract: Address,
    pub key: Bytes,
    /// `proof::value_hash` of the value left (what a storage proof's leaf
    /// holds); `None` (JSON null) when the key was deleted.
    pub value_hash: Option<Hash>,
}

/// The outcome of a dry run at the latest state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationResult {
    /// The height the dry run built on; it ran as block `height + 1`.
    pub height: u64,
    pub sender: Address,
    pub status: ExecStatus,
    /// Gas this run used. As a gas limit it can be too little when the
    /// transaction makes nested calls (63/64 rule): use `estimate_gas`.
    pub gas_used: u64,
    pub output: Bytes,
    /// `output` as text, when the run did not succeed and it is UTF-8.
    pub error: Option<String>,
    pub events: Vec<Event>,
    pub contract_address: Option<Address>,
    /// The nested calls (absent for a transfer, or when `trace_omitted`).
    pub trace: Option<TraceFrame>,
    /// Events left out at the end of `events` to keep the answer within
    /// the node's response limit (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_omitted: u32,
    /// The trace was left out because it alone did not fit in the response
    /// limit (absent when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub trace_omitted: bool,
}

/// The gas a transaction needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasEstimate {
    /// The smallest gas limit with which the transaction has the same
    /// outcome as with all the gas the sender can buy (status, output,
    /// events and every nested call's status and output); use it as the
    /// gas limit. For a run out of gas even with all that gas, what that
    /// run used.
    pub gas: u64,
    /// Status of the dry run with all the gas.
    pub status: ExecStatus,
    /// False (present only then) when the search for the smallest limit
    /// hit the node's bound on simulations or time: `gas` is then a limit
    /// that was checked to give the same outcome, but a smaller one might.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub exact: bool,
}

/// A storage value with its Merkle proof, the certified header whose state
/// root the proof is against, and that header's commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageProof {
    pub contract: Address,
    pub key: Bytes,
    /// `None`: the key is absent (the proof is a non-inclusion proof).
    pub value: Option<Bytes>,
    pub proof: SparseMerkleProof,
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
}

/// An account record with its Merkle proof, the certified header whose
/// state root the proof is against, and that header's commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountProof {
    pub address: Address,
    /// The account record's canonical encoding (`stele_types::Account`:
    /// nonce, balance, code hash), the bytes the proof's leaf holds;
    /// `None`: the account does not exist (a non-inclusion proof).
    pub value: Option<Bytes>,
    pub proof: SparseMerkleProof,
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
}

/// One storage entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageEntry {
    pub key: Bytes,
    pub value: Bytes,
}

/// A page of a contract's storage, in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoragePage {
    pub height: u64,
    pub entries: Vec<StorageEntry>,
    /// Pass as `cursor` for the next page; `None` at the end.
    pub next_cursor: Option<Bytes>,
}

/// A transaction's write of a storage key (`get_storage_history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageChange {
    pub block_height: u64,
    pub tx_index: u32,
    pub tx_hash: Hash,
    /// `proof::value_hash` of the value the transaction left (what a
    /// storage proof's leaf holds); `None` (JSON null) when it deleted the
    /// key.
    pub value_hash: Option<Hash>,
}

/// A position in a storage key's history: the write of transaction
/// `tx_index` of the block at `height`. A page starts at it, inclusive,
/// and goes back in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageHistoryCursor {
    pub height: u64,
    pub tx_index: u32,
}

/// A page of a storage key's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageHistoryPage {
    /// The committed height the history was read at (complete up to it).
    pub height: u64,
    /// The first height this node's index covers: writes before it are
    /// not listed here.
    pub indexed_from: u64,
    pub changes: Vec<StorageChange>,
    /// Pass as `cursor` for the next (older) page; `None` at the end.
    pub next: Option<StorageHistoryCursor>,
}

/// The node's view of itself, for operators and load balancers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    pub chain_id: u64,
    /// A full node (ADR 0009), not a validator.
    #[serde(default)]
    pub full_node: bool,
    /// Latest committed height.
    pub height: u64,
    /// The highest height this node knows is certified (from its peers'
    /// certificates): how far the chain is, as it sees it.
    #[serde(default)]
    pub certified_height: u64,
    /// Current PBFT view.
    pub view: u64,
    pub peers_connected: u64,
    /// True while catching up: reads may be behind the chain.
    pub syncing: bool,
    pub mempool_txs: u64,
    pub mempool_bytes: u64,
    /// The lowest height whose block this node keeps (below it, only every
    /// epoch's last block): 1 unless it prunes blocks or joined by a
    /// snapshot (ADR 0012).
    #[serde(default)]
    pub blocks_from: u64,
    /// Where the node is in reaching the chain's tip.
    #[serde(default)]
    pub phase: SyncPhase,
    /// The join by snapshot, if the node tried one since it started.
    #[serde(default)]
    pub snapshot: Option<SnapshotSyncInfo>,
}

/// A node's sync phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Joining by snapshot (ADR 0012): [`StatusInfo::snapshot`] says how
    /// far; nothing else of the node runs yet.
    Snapshot,
    /// Fetching and executing blocks up to the certified height.
    Blocks,
    /// At the tip.
    #[default]
    Live,
}

/// A join by snapshot and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSyncInfo {
    /// `finding` (asking peers, fetching an index), `fetching`,
    /// `importing`, `joined`, or `no_snapshot` (none could be had: blocks
    /// sync from the genesis).
    pub phase: String,
    /// The snapshot's height (0 until one is chosen).
    pub height: u64,
    /// Its chunks, those fetched and checked, and those a previous run
    /// kept; the chunks refused (a peer sent bytes that did not check) and
    /// the bytes fetched over every snapshot tried.
    pub chunks: u64,
    pub chunks_fetched: u64,
    pub chunks_resumed: u64,
    pub chunks_refused: u64,
    pub bytes_fetched: u64,
}

/// The validator set of an epoch (ADR 0010), as the state at `height`
/// says: the set that certifies the block after `height`, and the change
/// decided in its epoch, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorsInfo {
    /// The height whose state was read.
    pub height: u64,
    pub epoch: u64,
    /// The epoch's first height.
    pub epoch_start_height: u64,
    pub validators: ValidatorSet,
    /// [`ValidatorSet::hash`] of `validators`: what a header names as
    /// `next_validators_hash` inside the epoch.
    pub validators_hash: Hash,
    /// The next epoch's set, once more than two thirds of this epoch's
    /// power voted for it.
    pub pending: Option<PendingValidators>,
}

/// A decided change of validator set, waiting for its epoch's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingValidators {
    pub validators: ValidatorSet,
    pub validators_hash: Hash,
    /// The block whose vote decided it.
    pub decided_at: u64,
    /// The current epoch's last height; the next epoch starts after it.
    pub last_height: u64,
}

/// The protocol parameters after `height` (ADR 0011): what the block
/// after it executes under, and the upgrade scheduled, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolInfo {
    /// The height whose state was read.
    pub height: u64,
    pub active: ProtocolParams,
    pub scheduled: Option<ScheduledProtocol>,
}

/// An upgrade more than two thirds of an epoch's power voted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledProtocol {
    pub params: ProtocolParams,
    /// The first height executed under `params`.
    pub activation_height: u64,
    /// The block whose vote scheduled it, and its epoch.
    pub decided_at: u64,
    pub epoch: u64,
    /// Why the answering node cannot run it (it stops after the block
    /// before `activation_height`); `None` when it can.
    pub unsupported: Option<String>,
}

/// A contract-event filter: events of `contract` (any if `None`) whose
/// topics match position by position (`None` matches anything; an event
/// with fewer topics than the filter does not match).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    pub contract: Option<Address>,
    #[serde(default)]
    pub topics: Vec<Option<Hash>>,
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        if self.contract.is_some_and(|c| c != event.contract) {
            return false;
        }
        self.topics.iter().enumerate().all(|(i, want)| match want {
            None => i < event.topics.len(),
            Some(t) => event.topics.get(i) == Some(t),
        })
    }
}

/// A block header as it is committed (subscription item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    pub hash: Hash,
    pub header: BlockHeader,
    pub tx_count: u64,
    pub gas_used: u64,
}

/// A contract event as its block is committed (subscription item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLog {
    pub block_height: u64,
    pub block_hash: Hash,
    pub tx_hash: Hash,
    pub tx_index: u32,
    /// Position of the event in its transaction.
    pub event_index: u32,
    pub event: Event,
}

/// A position in the chain's events: the event `event_index` of the
/// transaction `tx_index` of the block at `height` (whether or not it
/// matches a filter). `get_events` starts at it, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCursor {
    pub height: u64,
    pub tx_index: u32,
    pub event_index: u32,
}

impl EventCursor {
    /// The first event of the block at `height`.
    pub fn block_start(height: u64) -> Self {
        EventCursor {
            height,
            tx_index: 0,
            event_index: 0,
        }
    }
}

/// A page of past events (`get_events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPage {
    pub events: Vec<EventLog>,
    /// The last height scanned (possibly in part, when `next` is inside it).
    pub to_height: u64,
    /// The block to continue from when the page ended before the requested
    /// range did (the result limit, the response limit or the node's
    /// block-range cap was reached). Without a cursor, pages end on whole
    /// blocks, so this is exact; with one, prefer `next`.
    pub next_height: Option<u64>,
    /// Where to continue (pass as `cursor`); absent when the range is done,
    /// and in pages of the form without a cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<EventCursor>,
}

/// A transaction's status (subscription item): sent once with the current
/// state, then when it commits (with the receipt; the subscription then
/// ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxStatus {
    pub hash: Hash,
    pub state: TxState,
    pub receipt: Option<ReceiptInfo>,
}

/// The Stele JSON-RPC API. The server trait exists with the `server`
/// feature (the node's); clients get only the client side.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait SteleApi {
    /// Submits a signed transaction (its canonical encoding); returns its
    /// hash once it is admitted to the mempool. `sender`, when given, is
    /// the account that signed it: the transaction is rejected
    /// (`TX_NOT_SIGNED_BY`) if it did not, and a busy sender's
    /// transactions are checked in about half the time of a recovery.
    #[method(name = "send_transaction", with_extensions)]
    async fn send_transaction(&self, raw: Bytes, sender: Option<Address>) -> RpcResult<Hash>;

    /// A pending or committed transaction.
    #[method(name = "get_transaction")]
    async fn get_transaction(&self, hash: Hash) -> RpcResult<TransactionInfo>;

    /// The receipt of a committed transaction.
    #[method(name = "get_receipt")]
    async fn get_receipt(&self, hash: Hash) -> RpcResult<ReceiptInfo>;

    /// Waits until the transaction commits (at most `timeout_ms`, capped by
    /// the node) and returns its receipt.
    #[method(name = "wait_for_receipt")]
    async fn wait_for_receipt(&self, hash: Hash, timeout_ms: u64) -> RpcResult<ReceiptInfo>;

    /// A read-only call at the latest or a given height; nothing persists.
    #[method(name = "call_view")]
    async fn call_view(
        &self,
        contract: Address,
        method: String,
        args: Bytes,
        height: Option<u64>,
    ) -> RpcResult<ViewResult>;

    /// A dry run at the latest state, with the trace of nested calls.
    #[method(name = "simulate_transaction")]
    async fn simulate_transaction(&self, request: SimulateRequest) -> RpcResult<SimulationResult>;

    /// The smallest gas limit that gives the transaction the same outcome
    /// as all the gas the sender can buy, at the latest state.
    #[method(name = "estimate_gas")]
    async fn estimate_gas(&self, request: SimulateRequest) -> RpcResult<GasEstimate>;

    /// A committed block by height or hash, with its transactions from
    /// index `txs_from` (default 0) as far as the response limit allows.
    #[method(name = "get_block")]
    async fn get_block(&self, id: BlockId, txs_from: Option<u32>) -> RpcResult<BlockInfo>;

    /// The latest committed block.
    #[method(name = "get_latest_block")]
    async fn get_latest_block(&self) -> RpcResult<BlockInfo>;

    /// Balance, nonces and code hash of an account.
    #[method(name = "get_account")]
    async fn get_account(&self, address: Address) -> RpcResult<AccountInfo>;

    /// Code hash and ABI of a contract.
    #[method(name = "get_contract")]
    async fn get_contract(&self, address: Address) -> RpcResult<ContractInfo>;

    /// Contract code by its hash.
    #[method(name = "get_code")]
    async fn get_code(&self, code_hash: Hash) -> RpcResult<Bytes>;

    /// A storage value with a proof against a certified state root.
    #[method(name = "get_storage_proof")]
    async fn get_storage_proof(
        &self,
        contract: Address,
        key: Bytes,
        height: Option<u64>,
    ) -> RpcResult<StorageProof>;

    /// A committed transaction run again on its block's parent state, with
    /// its call trace and the storage keys it wrote, while that state is
    /// kept.
    #[method(name = "trace_transaction")]
    async fn trace_transaction(&self, hash: Hash) -> RpcResult<TransactionTrace>;

    /// An account record with a proof against a certified state root.
    #[method(name = "get_account_proof")]
    async fn get_account_proof(
        &self,
        address: Address,
        height: Option<u64>,
    ) -> RpcResult<AccountProof>;

    /// A page of a contract's storage entries whose keys start with
    /// `prefix`, after `cursor`, at the latest height.
    #[method(name = "list_storage")]
    async fn list_storage(
        &self,
        contract: Address,
        prefix: Bytes,
        cursor: Option<Bytes>,
        limit: u32,
    ) -> RpcResult<StoragePage>;

    /// Past events matching `filter` in committed blocks `from_height..=
    /// to_height` (default the latest), in order. Without `cursor`, a page
    /// ends with the block in which `limit` events were reached, before a
    /// block that would not fit in the response limit, or after the node's
    /// cap on blocks scanned per call; `next_height` says where to
    /// continue. With `cursor` (inside the range), the page starts there
    /// and ends exactly at `limit` events or at the response limit, even
    /// inside a block; `next` says where to continue.
    #[method(name = "get_events")]
    async fn get_events(
        &self,
        filter: EventFilter,
        from_height: u64,
        to_height: Option<u64>,
        limit: u32,
        cursor: Option<EventCursor>,
    ) -> RpcResult<EventPage>;

    /// The transactions that wrote `key` of `contract`, newest first, from
    /// `cursor` (inclusive; `None`: the newest), at most `limit`, from the
    /// node's storage-history index (`INDEX_OFF` where it keeps none).
    #[method(name = "get_storage_history")]
    async fn get_storage_history(
        &self,
        contract: Address,
        key: Bytes,
        limit: u32,
        cursor: Option<StorageHistoryCursor>,
    ) -> RpcResult<StorageHistoryPage>;

    /// The node's status.
    #[method(name = "get_status")]
    async fn get_status(&self) -> RpcResult<StatusInfo>;

    /// The validator set and epoch after `height` (the latest by
    /// default), with the decided change if any (ADR 0010).
    #[method(name = "get_validators")]
    async fn get_validators(&self, height: Option<u64>) -> RpcResult<ValidatorsInfo>;

    /// The protocol parameters after `height` (the latest by default) and
    /// the upgrade scheduled, if any (ADR 0011).
    #[method(name = "get_protocol")]
    async fn get_protocol(&self, height: Option<u64>) -> RpcResult<ProtocolInfo>;

    /// Every committed block (WebSocket).
    #[subscription(name = "subscribe_new_blocks" => "new_block", unsubscribe = "unsubscribe_new_blocks", with_extensions, item = NewBlock)]
    async fn subscribe_new_blocks(&self) -> SubscriptionResult;

    /// Contract events of committed blocks matching `filter` (WebSocket).
    #[subscription(name = "subscribe_events" => "event", unsubscribe = "unsubscribe_events", with_extensions, item = EventLog)]
    async fn subscribe_events(&self, filter: EventFilter) -> SubscriptionResult;

    /// A transaction's status until it commits (WebSocket).
    #[subscription(name = "subscribe_tx_status" => "tx_status", unsubscribe = "unsubscribe_tx_status", with_extensions, item = TxStatus)]
    async fn subscribe_tx_status(&self, hash: Hash) -> SubscriptionResult;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BlockId, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn frame(method: &str, calls: Vec<TraceFrame>, logs: &[(u32, &str)]) -> TraceFrame {
        TraceFrame {
            caller: Address([1; 20]),
            contract: Address([2; 20]),
            method: method.into(),
            value: 0,
            gas_budget: 1_000,
            gas_used: 10,
            status: ExecStatus::Success,
            output: Bytes(Vec::new()),
            calls,
            logs: logs
                .iter()
                .map(|&(after_calls, text)| TraceLog {
                    after_calls,
                    text: text.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_frames_log_lines_and_calls_come_in_the_order_they_happened() {
        let t = frame(
            "run",
            vec![frame("inner", vec![], &[]), frame("other", vec![], &[])],
            &[(0, "a1"), (1, "a2"), (2, "a3")],
        );
        let steps: Vec<String> = t
            .steps()
            .into_iter()
            .map(|s| match s {
                TraceStep::Log(text) => text.to_owned(),
                TraceStep::Call(c) => format!("call {}", c.method),
            })
            .collect();
        assert_eq!(steps, ["a1", "call inner", "a2", "call other", "a3"]);
        // No `logs` key when there are none, so older clients still read
        // traces without lines; one with lines round-trips.
        let plain = serde_json::to_value(frame("m", vec![], &[])).unwrap();
        assert!(plain.get("logs").is_none());
        let back: TraceFrame = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn block_ids_are_heights_up_to_2_pow_63_minus_1_or_hashes() {
        assert_eq!(parse("0"), Ok(BlockId::Height(0)));
        assert_eq!(
            parse("9223372036854775807"),
            Ok(BlockId::Height(i64::MAX as u64))
        );
        let hash = Hash([0xab; 32]);
        assert_eq!(parse(&format!("\"{hash}\"")), Ok(BlockId::Hash(hash)));
        for id in [BlockId::Height(7), BlockId::Hash(hash)] {
            assert_eq!(parse(&serde_json::to_string(&id).unwrap()), Ok(id));
        }
    }

    #[test]
    fn a_bad_block_id_names_what_a_block_id_is_and_what_came() {
        for (json, got) in [
            ("9223372036854775808", "not 9223372036854775808"),
            ("18446744073709551616", "not 1844674407370955"),
            ("-1", "not -1"),
            ("1.5", "not 1.5"),
            ("\"latest\"", "not the string \"latest\""),
            ("\"0x1234\"", "not \"0x1234\" ("),
            ("true", "not true"),
            ("null", "not null"),
            ("[1]", "not an array"),
            ("{}", "not an object"),
        ] {
            let e = parse(json).unwrap_err();
            assert!(e.starts_with(BLOCK_ID_EXPECTED), "{json}: {e}");
            assert!(e.contains(got), "{json}: {e}");
            assert!(!e.contains("untagged"), "{json}: {e}");
        }
        let long = format!("\"{}\"", "z".repeat(10_000));
        let e = parse(&long).unwrap_err();
        assert!(e.len() < 300, "{e}");
    }
}
