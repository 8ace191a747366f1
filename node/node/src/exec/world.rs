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

/// What an execution reads: a committed version (`None` is the empty
/// state), with the writes of blocks executed on it but not committed yet
/// layered on top (a block proposed while its parent is in its commit
/// round).
#[derive(Debug, Clone)]
pub struct StateBase {
    pub state: SharedState,
    pub version: Option<u64>,
    /// The uncommitted ancestors' writes, later ones applied over earlier
    /// ones: a value replaces the committed one, `None` deletes it.
    pub pending: Option<Arc<WriteSet>>,
}

fn poisoned() -> StateError {
    StateError::CorruptMeta {
        what: "state lock",
        reason: "a thread panicked while committing",
    }
}

impl StateRead for StateBase {
    fn read(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.pending.as_ref().and_then(|p| p.get(key)) {
            return Ok(value.clone());
        }
        let Some(version) = self.version else {
            return Ok(None);
        };
        self.state.read().map_err(|_| poisoned())?.get(key, version)
    }
}

/// A raw key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// Raw keys and values, in key order.
type Entries = Vec<Entry>;

/// Page size when merging the flat index with buffered writes.
const ITER_PAGE: usize = 16;

/// The first entry of `namespace` with `prefix` above `after` in `writes`
/// layered over a lower layer: a write's value replaces the lower entry
/// with its key, a delete hides it. `lower(cursor)` gives the lower layer's
/// next entries with the prefix above `cursor`, in key order, at most
/// `page` of them; fewer means the layer has no more.
fn layered_next(
    writes: &WriteSet,
    namespace: Namespace,
    prefix: &[u8],
    after: Option<&[u8]>,
    page: usize,
    mut lower: impl FnMut(Option<&[u8]>) -> Result<Entries, WorldError>,
) -> Result<Option<Entry>, WorldError> {
    let in_range = |k: &StateKey| k.namespace == namespace && k.key.starts_with(prefix);
    // The first written key with the prefix above the cursor that is not a
    // delete.
    let start = StateKey::new(namespace, after.unwrap_or(prefix).to_vec());
    let written = writes
        .range(start..)
        .take_while(|(k, _)| in_range(k))
        .filter(|(k, _)| after.is_none_or(|a| k.key.as_slice() > a))
        .find_map(|(k, v)| v.as_ref().map(|v| (k.key.clone(), v.clone())));
    // The first lower key with the prefix above the cursor that no write
    // deletes or replaces.
    let mut cursor = after.map(<[u8]>::to_vec);
    let below = 'outer: loop {
        let entries = lower(cursor.as_deref())?;
        for (k, v) in &entries {
            if !writes.contains_key(&StateKey::new(namespace, k.clone())) {
                break 'outer Some((k.clone(), v.clone()));
            }
        }
        cursor = entries.last().map(|(k, _)| k.clone());
        if entries.len() < page || cursor.is_none() {
            break None;
        }
    };
    Ok(match (written, below) {
        (Some(w), Some(b)) => Some(if w.0 <= b.0 { w } else { b }),
        (w, b) => w.or(b),
    })
}

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

    /// Merges the flat index (the latest committed version), the pending
    /// writes of uncommitted ancestors and the buffered writes: a later
    /// layer's value wins, its delete hides the entry below.
    fn storage_next(
        &self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, WorldError> {
        let namespace = Namespace::Storage(*contract);
        let committed = |cursor: Option<&[u8]>| self.base_next(&namespace, prefix, cursor);
        let writes = self.overlay.writes();
        match &self.base.pending {
            None => layered_next(writes, namespace, prefix, after, ITER_PAGE, committed),
            Some(pending) => {
                // The pending layer over the flat index, one entry at a time.
                let below = |cursor: Option<&[u8]>| {
                    layered_next(pending, namespace, prefix, cursor, ITER_PAGE, committed)
                        .map(|next| next.into_iter().collect())
                };
                layered_next(writes, namespace, prefix, after, 1, below)
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use stele_state::StateConfig;

    use super::*;

    const CONTRACT: Address = Address([7; 20]);
    const NEIGHBOUR: Address = Address([8; 20]);

    /// Keys spread over four one-byte prefixes, more of them than one page
    /// of the flat index.
    fn key(i: u8) -> Vec<u8> {
        vec![i % 4, i]
    }

    type Layer = BTreeMap<u8, Option<Vec<u8>>>;

    fn layer() -> impl Strategy<Value = Layer> {
        proptest::collection::btree_map(
            0u8..40,
            proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 1..4)),
            0..24,
        )
    }

    fn writes(layer: &Layer, contract: &Address) -> WriteSet {
        layer
            .iter()
            .map(|(k, v)| (StateKey::storage(contract, key(*k)), v.clone()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Reads and iteration see the committed entries, the uncommitted
        /// parents' writes over them and this execution's writes over
        /// both: a later value wins, a later delete hides.
        #[test]
        fn reads_and_iteration_merge_committed_pending_and_buffered_writes(
            committed in layer(),
            pending in layer(),
            buffered in layer(),
            with_pending in any::<bool>(),
            prefix in proptest::option::of(0u8..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut state = State::open(dir.path(), StateConfig::default()).unwrap();
            let mut base_writes = writes(&committed, &CONTRACT);
            // The same keys under another contract must not show through.
            base_writes.extend(writes(&committed, &NEIGHBOUR));
            state.commit(1, &base_writes).unwrap();
            let base = StateBase {
                state: Arc::new(RwLock::new(state)),
                version: Some(1),
                pending: with_pending.then(|| Arc::new(writes(&pending, &CONTRACT))),
            };
            let mut world = StateWorld::new(base);
            for (k, v) in &buffered {
                match v {
                    Some(v) => world.storage_set(&CONTRACT, &key(*k), v).unwrap(),
                    None => {
                        world.storage_remove(&CONTRACT, &key(*k)).unwrap();
                    }
                }
            }

            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let layers = if with_pending {
                vec![&committed, &pending, &buffered]
            } else {
                vec![&committed, &buffered]
            };
            for l in layers {
                for (k, v) in l {
                    match v {
                        Some(v) => model.insert(key(*k), v.clone()),
                        None => model.remove(&key(*k)),
                    };
                }
            }
            for i in 0u8..40 {
                prop_assert_eq!(
                    world.storage_get(&CONTRACT, &key(i)).unwrap(),
                    model.get(&key(i)).cloned()
                );
            }
            let prefix: Vec<u8> = prefix.map(|b| vec![b]).unwrap_or_default();
            let expected: Vec<(Vec<u8>, Vec<u8>)> =
                model.into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
            let mut seen = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            while let Some((k, v)) = world.storage_next(&CONTRACT, &prefix, after.as_deref()).unwrap() {
                prop_assert!(seen.len() < expected.len(), "iteration goes past the end");
                after = Some(k.clone());
                seen.push((k, v));
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
