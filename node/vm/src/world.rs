//! The state the VM executes against. The Merkle state's overlay implements
//! [`World`]; [`MemoryWorld`](crate::MemoryWorld) is an in-memory one for
//! tests and the SDK testkit.

use stele_types::{Address, Amount, Hash};
use thiserror::Error;

/// Why the world could not answer. Never caused by a contract alone: it
/// aborts the whole execution and the node must not produce a receipt for
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorldError {
    /// The state backend failed (I/O, corruption).
    #[error("state backend failed: {0}")]
    Backend(String),
    /// The world reads a version older than the latest, whose keys cannot
    /// be listed in order (only the latest version has a flat index): a
    /// read-only call at an older height that iterates storage. Blocks
    /// always execute on the latest version, so only such calls meet it.
    #[error("storage iteration is only available at the latest height")]
    IterationUnavailable,
}

/// A storage entry: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One step of prefix iteration ([`World::storage_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// The entry found; `None` past the last key with the prefix.
    pub entry: Option<Entry>,
    /// Keys deleted in this world's write buffer (earlier in the same block,
    /// for the node's world) that the step walked past. It depends only on
    /// the buffer and the cursor, never on how the state below is stored,
    /// so every node counts the same and gas can be charged for it.
    pub skipped: u64,
}

/// Contract storage, balances, nonces and code, with nested checkpoints.
///
/// Every change made after [`World::checkpoint`] is undone by
/// [`World::revert`] or kept by [`World::commit`]; checkpoints nest like a
/// stack. The VM balances every checkpoint it opens.
pub trait World {
    /// Value stored under `key` by `contract`.
    fn storage_get(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, WorldError>;
    /// Whether `contract` has a value under `key`.
    fn storage_has(&self, contract: &Address, key: &[u8]) -> Result<bool, WorldError> {
        Ok(self.storage_get(contract, key)?.is_some())
    }
    /// Stores `value` under `key`.
    fn storage_set(
        &mut self,
        contract: &Address,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), WorldError>;
    /// Removes `key`; returns whether it existed.
    fn storage_remove(&mut self, contract: &Address, key: &[u8]) -> Result<bool, WorldError>;
    /// The first entry of `contract` in key order whose key starts with
    /// `prefix` and is greater than `after` (or, without `after`, the first
    /// one with the prefix). This is the cursor of prefix iteration.
    ///
    /// `None` when more than `skip_max` keys deleted in this world's write
    /// buffer lie between the cursor and the answer: the walk stops there,
    /// so its work is bounded by what the caller can pay for.
    fn storage_next(
        &self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
        skip_max: u64,
    ) -> Result<Option<Next>, WorldError>;

    /// Native balance of `account`.
    fn balance(&self, account: &Address) -> Result<Amount, WorldError>;
    /// Moves `amount` from `from` to `to`; returns `false` (changing
    /// nothing) if `from` has less than `amount`.
    fn transfer(
        &mut self,
        from: &Address,
        to: &Address,
        amount: Amount,
    ) -> Result<bool, WorldError>;

    /// Nonce of `account` (for a contract: how many contracts it deployed).
    fn nonce(&self, account: &Address) -> Result<u64, WorldError>;
    /// Sets the nonce of `account`.
    fn set_nonce(&mut self, account: &Address, nonce: u64) -> Result<(), WorldError>;

    /// Hash of the code deployed at `contract`, if it is a contract.
    fn code_hash(&self, contract: &Address) -> Result<Option<Hash>, WorldError>;
    /// Code with Keccak-256 `code_hash`.
    fn code(&self, code_hash: &Hash) -> Result<Option<Vec<u8>>, WorldError>;
    /// Makes `contract` a contract running `code` (whose hash is `code_hash`).
    fn create_contract(
        &mut self,
        contract: &Address,
        code_hash: &Hash,
        code: &[u8],
    ) -> Result<(), WorldError>;

    /// Opens a nested checkpoint.
    fn checkpoint(&mut self);
    /// Undoes everything since the innermost open checkpoint and closes it.
    fn revert(&mut self);
    /// Keeps everything since the innermost open checkpoint and closes it.
    fn commit(&mut self);
}
