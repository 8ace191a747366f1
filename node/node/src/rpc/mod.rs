//! The JSON-RPC 2.0 API over HTTP and WebSocket (see docs/rpc.md), with
//! health and status endpoints on the same port. The wire protocol itself
//! (methods, types, error codes) is defined once in `stele_client::api`.
//!
//! Architecture invariant: only this module (with `stele-client`) knows
//! about JSON-RPC; every request passes the per-IP rate limiter before any
//! other work, and contract code runs only on the bounded execution pool,
//! never on the tokio runtime.

mod call_limit;
mod config;
mod conn;
mod errors;
mod estimate;
mod events;
mod explorer;
mod feed;
mod handlers;
mod joining;
mod metrics;
mod oversize;
mod pool;
mod proxy;
mod proxy_protocol;
mod rate;
mod server;
mod size;

use std::sync::Arc;

use stele_types::{Address, Hash, SignedTransaction, ValidatorSet};

use crate::mempool::AdmitError;
use crate::store::CommittedBlock;
use stele_exec::{Executor, SharedState};

pub use config::{RpcConfig, RpcConfigError};
pub use events::{EventQuery, event_page};
pub use joining::JoiningServer;
pub use metrics::RpcMetrics;
#[cfg(test)]
pub(crate) use server::test_hooks;
pub use server::{RpcError, RpcListener, RpcServer, bind, start};
pub use stele_client::api::StatusInfo;

/// The node's transaction intake, as the RPC sees it.
pub trait TxSubmitter: Send + Sync + 'static {
    /// Verifies `raw` (as signed by `sender`, when given), admits it to the
    /// mempool and gossips it; the hash on success. May block for about
    /// 100 µs.
    fn submit(&self, raw: &[u8], sender: Option<Address>) -> Result<Hash, AdmitError>;
    /// A transaction pending in the mempool.
    fn pending(&self, hash: &Hash) -> Option<SignedTransaction>;
    /// The nonce the account's next transaction should carry, counting its
    /// pending transactions.
    fn pending_nonce(&self, address: &Address) -> u64;
}

/// The node's live status (consensus view, peers, mempool).
pub trait NodeStatus: Send + Sync + 'static {
    fn status(&self) -> StatusInfo;
    /// The highest committed height this node has learnt of from its peers
    /// (e.g. the target of its last sync), for `/health`'s lag check;
    /// `None` if it does not track one.
    fn peer_height(&self) -> Option<u64> {
        None
    }
    /// For a full node: how long since it last heard of a new certified
    /// block (`/health` calls it unready past
    /// [`RpcConfig::health_silence_ms_max`]); `None` for a validator.
    fn silent_for(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Everything the RPC reads from or hands to the node.
#[derive(Clone)]
pub struct RpcContext {
    pub chain_id: u64,
    pub genesis_hash: Hash,
    pub validators: ValidatorSet,
    pub state: SharedState,
    pub executor: Arc<Executor>,
    pub submitter: Arc<dyn TxSubmitter>,
    pub status: Arc<dyn NodeStatus>,
    /// Every committed block, sent right after it is durable.
    pub commits: tokio::sync::broadcast::Sender<Arc<CommittedBlock>>,
}

impl std::fmt::Debug for RpcContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcContext")
            .field("chain_id", &self.chain_id)
            .field("genesis_hash", &self.genesis_hash)
            .finish_non_exhaustive()
    }
}
