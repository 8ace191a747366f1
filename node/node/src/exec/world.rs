//! The VM's [`World`] over the Merkle state's overlay.
//!
//! Accounts live under `StateKey::account(address)` as an [`Account`]
//! record, code under [`code_key`] by hash, and each contract's storage in
//! its own `Namespace::Storage(address)`.

use std::sync::{Arc, RwLock};

use stele_state::{Checkpoint, Overlay, State, StateError, StateRead, WriteSet};
use stele_types::codec::Encode;
use stele_types::proof::{Namespace, StateKey};
use stele_types::{Address, Amount, Hash, Limits, decode};
use stele_vm::{World, WorldError};

use super::account::{Account, code_key};

/// The node's state, shared between the executor, RPC and the committer.
pub type SharedState = Arc<RwLock<State>>;

/// The version an execution reads from; `None` is the empty state.
#[derive(Debug, Clone)]
pub struct StateBase {
    pub state: SharedState,
    pub version: Option<u64>,
}

fn poisoned() -> StateError {
    StateError::CorruptMeta {
        what: "state lock",
        reason: "a thread panicked while committing",
    }
}

impl StateRead for StateBase {
    fn read(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        let Some(version) = self.version else {
            return Ok(None);
        };
        self.state.read().map_err(|_| poisoned())?.get(key, version)
    }
}

/// Raw keys and values, in key order.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Page size when merging the flat index with buffered writes.
const ITER_PAGE: usize = 16;

/// Accounts, code and contract storage for one execution, over an overlay.
#[derive(Debug)]
pub struct StateWorld {
    overlay: Overlay<StateBase>,
    base: StateBase,
    checkpoints: Vec<Checkpoint>,
}

fn world_err(e: impl std::fmt::Display) -> WorldError {
    WorldError(e.to_string())
}

impl StateWorld {
    pub fn new(base: StateBase) -> Self {
        StateWorld {
            overlay: Overlay::new(base.clone()),
            base,
            checkpoints: Vec::new(),
        }
    }

    /// The account record of `address` (default if absent).
    pub fn account(&self, address: &Address) -> Result<Account, WorldError> {
        match self
            .overlay
            .get(&StateKey::account(address))
            .map_err(world_err)?
        {
            Some(bytes) => decode(&bytes, &Limits::default())
                .map_err(|e| WorldError(format!("account {address} is corrupt: {e}"))),
            None => Ok(Account::default()),
        }
    }

    pub fn set_account(&mut self, address: &Address, account: &Account) {
        self.overlay
            .put(StateKey::account(address), account.to_bytes());
    }

    /// Writes made so far.
    pub fn writes(&self) -> &WriteSet {
        self.overlay.writes()
    }

    /// The buffered writes, for the commit.
    pub fn into_writes(self) -> WriteSet {
        self.overlay.into_writes()
    }

    /// Next key of `namespace` with `prefix` above `after` in the base's
    /// flat index, skipping nothing.
    fn base_next(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Entries, WorldError> {
        let state = self.base.state.read().map_err(|_| world_err(poisoned()))?;
        if state.latest_version() != self.base.version {
            return Err(WorldError(
                "storage iteration is only available at the latest height".into(),
            ));
        }
        Ok(state
            .iter_prefix(namespace, prefix, after, ITER_PAGE)
            .map_err(world_err)?
            .entries)
    }
}

impl World for StateWorld {
    fn storage_get(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, WorldError> {
        self.overlay
            .get(&StateKey::storage(contract, key))
            .map_err(world_err)
    }

    fn storage_set(
        &mut self,
        contract: &Address,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), WorldError> {
        self.overlay
            .put(StateKey::storage(contract, key), value.to_vec());
        Ok(())
    }

    fn storage_remove(&mut self, contract: &Address, key: &[u8]) -> Result<bool, WorldError> {
        let existed = self.storage_get(contract, key)?.is_some();
        if existed {
            self.overlay.delete(StateKey::storage(contract, key));
        }
        Ok(existed)
    }

    /// Merges the flat index (the latest committed version) with the
    /// buffered writes: a buffered value wins, a buffered delete hides the
    /// committed entry.
    fn storage_next(
        &self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, WorldError> {
        let namespace = Namespace::Storage(*contract);
        let writes = self.overlay.writes();
        let above = |k: &[u8]| after.is_none_or(|a| k > a);
        // The first buffered key with the prefix above the cursor.
        let start = StateKey::new(namespace, after.unwrap_or(prefix).to_vec());
        let buffered = writes
            .range(start..)
            .take_while(|(k, _)| k.namespace == namespace && k.key.starts_with(prefix))
            .find(|(k, _)| above(&k.key));
        // The first committed key with the prefix above the cursor that no
        // buffered write deletes or replaces.
        let mut cursor = after.map(<[u8]>::to_vec);
        let committed = 'outer: loop {
            let page = self.base_next(&namespace, prefix, cursor.as_deref())?;
            if page.is_empty() {
                break None;
            }
            for (k, v) in &page {
                if !writes.contains_key(&StateKey::new(namespace, k.clone())) {
                    break 'outer Some((k.clone(), v.clone()));
                }
            }
            cursor = page.last().map(|(k, _)| k.clone());
            if page.len() < ITER_PAGE {
                break None;
            }
        };
        // Buffered deletes are skipped by moving past them.
        let mut buffered = buffered.map(|(k, v)| (k.key.clone(), v.clone()));
        while let Some((k, None)) = &buffered {
            let k = k.clone();
            buffered = writes
                .range(StateKey::new(namespace, k.clone())..)
                .take_while(|(sk, _)| sk.namespace == namespace && sk.key.starts_with(prefix))
                .find(|(sk, _)| sk.key > k)
                .map(|(sk, v)| (sk.key.clone(), v.clone()));
        }
        Ok(match (buffered, committed) {
            (Some((bk, Some(bv))), Some((ck, cv))) => {
                if bk <= ck {
                    Some((bk, bv))
                } else {
                    Some((ck, cv))
                }
            }
            (Some((bk, Some(bv))), None) => Some((bk, bv)),
            (_, committed) => committed,
        })
    }

    fn balance(&self, account: &Address) -> Result<Amount, WorldError> {
        Ok(self.account(account)?.balance)
    }

    fn transfer(
        &mut self,
        from: &Address,
        to: &Address,
        amount: Amount,
    ) -> Result<bool, WorldError> {
        let mut sender = self.account(from)?;
        if sender.balance < amount {
            return Ok(false);
        }
        if from == to {
            return Ok(true);
        }
        let mut receiver = self.account(to)?;
        let Some(credited) = receiver.balance.checked_add(amount) else {
            // Total supply fits in u128, so this cannot happen on a valid
            // chain; refuse rather than wrap.
            return Ok(false);
        };
        sender.balance -= amount;
        receiver.balance = credited;
        self.set_account(from, &sender);
        self.set_account(to, &receiver);
        Ok(true)
    }

    fn nonce(&self, account: &Address) -> Result<u64, WorldError> {
        Ok(self.account(account)?.nonce)
    }

    fn set_nonce(&mut self, account: &Address, nonce: u64) -> Result<(), WorldError> {
        let mut a = self.account(account)?;
        a.nonce = nonce;
        self.set_account(account, &a);
        Ok(())
    }

    fn code_hash(&self, contract: &Address) -> Result<Option<Hash>, WorldError> {
        Ok(self.account(contract)?.code_hash)
    }

    fn code(&self, code_hash: &Hash) -> Result<Option<Vec<u8>>, WorldError> {
        self.overlay.get(&code_key(code_hash)).map_err(world_err)
    }

    fn create_contract(
        &mut self,
        contract: &Address,
        code_hash: &Hash,
        code: &[u8],
    ) -> Result<(), WorldError> {
        let mut a = self.account(contract)?;
        a.code_hash = Some(*code_hash);
        self.set_account(contract, &a);
        if self.code(code_hash)?.is_none() {
            self.overlay.put(code_key(code_hash), code.to_vec());
        }
        Ok(())
    }

    fn checkpoint(&mut self) {
        let cp = self.overlay.checkpoint();
        self.checkpoints.push(cp);
    }

    fn revert(&mut self) {
        if let Some(cp) = self.checkpoints.pop() {
            // The handle came from this overlay and is the innermost open
            // one, so this cannot fail.
            let _ = self.overlay.revert_to(cp);
        }
    }

    fn commit(&mut self) {
        if let Some(cp) = self.checkpoints.pop() {
            let _ = self.overlay.discard(cp);
        }
    }
}

/// The mempool reads nonces and balances at the base version. A state
/// backend error reads as an empty account, so the transaction is refused
/// (never admitted on a guess).
impl crate::mempool::AccountView for StateBase {
    fn account(&self, address: &Address) -> crate::mempool::AccountState {
        match StateWorld::new(self.clone()).account(address) {
            Ok(a) => crate::mempool::AccountState {
                nonce: a.nonce,
                balance: a.balance,
            },
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot read account for the mempool");
                crate::mempool::AccountState::default()
            }
        }
    }
}
