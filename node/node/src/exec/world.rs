//! The VM's [`World`] over the Merkle state's overlay.
//!
//! Accounts live under `StateKey::account(address)` as an [`Account`]
//! record, code under [`code_key`] by hash, and each contract's storage in
//! its own `Namespace::Storage(address)`.

use std::sync::{Arc, RwLock};

use stele_state::{Checkpoint, FlatCursor, Overlay, State, StateError, StateRead, WriteSet};
use stele_types::codec::Encode;
use stele_types::proof::{Namespace, StateKey};
use stele_types::{Address, Amount, Hash, Limits, decode};
use stele_vm::{Next, World, WorldError};

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

/// One layer's writes of `namespace` with `prefix` above `after`, in key
/// order: `Some(value)` for a value, `None` for a delete.
fn written<'a>(
    writes: &'a WriteSet,
    namespace: Namespace,
    prefix: &'a [u8],
    after: Option<&'a [u8]>,
) -> std::iter::Peekable<impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>> {
    let from = match after {
        Some(a) if a > prefix => a,
        _ => prefix,
    };
    let start = StateKey::new(namespace, from.to_vec());
    writes
        .range(start..)
        .take_while(move |(k, _)| k.namespace == namespace && k.key.starts_with(prefix))
        .filter(move |(k, _)| after.is_none_or(|a| k.key.as_slice() > a))
        .map(|(k, v)| (k.key.as_slice(), v.as_deref()))
        .peekable()
}

/// The first entry above the cursor in `buffer` over `pending` over the
/// committed flat index, each layer's value replacing the ones below it
/// and its delete hiding them. One merge walk: every layer moves forward
/// only, so a step's work is the keys it passes. The buffer's deletes it
/// passes are counted (and the walk stops after `skip_max` of them); the
/// lower layers' are not, as they depend on what is committed yet.
fn merged_next<'a>(
    mut buffer: std::iter::Peekable<impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>>,
    mut pending: Option<std::iter::Peekable<impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>>>,
    mut committed: Option<FlatCursor<'_>>,
    skip_max: u64,
) -> Result<Option<Next>, WorldError> {
    let mut skipped = 0u64;
    loop {
        let top = buffer.peek().copied();
        let mid = pending.as_mut().and_then(|p| p.peek().copied());
        let low = match &committed {
            Some(c) => c.key().map_err(world_err)?,
            None => None,
        };
        let Some(key) = [top.map(|t| t.0), mid.map(|m| m.0), low]
            .into_iter()
            .flatten()
            .min()
        else {
            return Ok(Some(Next {
                entry: None,
                skipped,
            }));
        };
        let key = key.to_vec();
        let at = |k: Option<&[u8]>| k == Some(key.as_slice());
        // The topmost layer holding the key decides.
        let value: Option<Vec<u8>> = if at(top.map(|t| t.0)) {
            top.and_then(|t| t.1).map(<[u8]>::to_vec)
        } else if at(mid.map(|m| m.0)) {
            mid.and_then(|m| m.1).map(<[u8]>::to_vec)
        } else {
            committed
                .as_ref()
                .and_then(FlatCursor::value)
                .map(<[u8]>::to_vec)
        };
        if let Some(value) = value {
            return Ok(Some(Next {
                entry: Some((key, value)),
                skipped,
            }));
        }
        if at(top.map(|t| t.0)) {
            skipped += 1;
            if skipped > skip_max {
                return Ok(None);
            }
            buffer.next();
        }
        let (mid_here, low_here) = (at(mid.map(|m| m.0)), at(low));
        if let Some(p) = pending.as_mut().filter(|_| mid_here) {
            p.next();
        }
        if let Some(c) = committed.as_mut().filter(|_| low_here) {
            c.advance();
        }
    }
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
        skip_max: u64,
    ) -> Result<Option<Next>, WorldError> {
        let namespace = Namespace::Storage(*contract);
        let state = self.base.state.read().map_err(|_| world_err(poisoned()))?;
        if state.latest_version() != self.base.version {
            return Err(WorldError(
                "storage iteration is only available at the latest height".into(),
            ));
        }
        let committed = match self.base.version {
            Some(_) => Some(
                state
                    .flat_cursor(&namespace, prefix, after)
                    .map_err(world_err)?,
            ),
            None => None,
        };
        let pending = self
            .base
            .pending
            .as_deref()
            .map(|p| written(p, namespace, prefix, after));
        let buffer = written(self.overlay.writes(), namespace, prefix, after);
        merged_next(buffer, pending, committed, skip_max)
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
                vec![&committed, &pending]
            } else {
                vec![&committed]
            };
            for l in layers {
                for (k, v) in l {
                    match v {
                        Some(v) => model.insert(key(*k), v.clone()),
                        None => model.remove(&key(*k)),
                    };
                }
            }
            // The buffer's deletes: keys that existed below and were removed.
            let mut deleted = std::collections::BTreeSet::new();
            for (k, v) in &buffered {
                match v {
                    Some(v) => {
                        model.insert(key(*k), v.clone());
                    }
                    None => {
                        if model.remove(&key(*k)).is_some() {
                            deleted.insert(key(*k));
                        }
                    }
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
            loop {
                let next = world
                    .storage_next(&CONTRACT, &prefix, after.as_deref(), u64::MAX)
                    .unwrap()
                    .unwrap();
                // Exactly the buffer's deletes between the cursor and the
                // answer are paid for, however the layers below hold them.
                let passed = deleted
                    .iter()
                    .filter(|k| k.starts_with(&prefix))
                    .filter(|k| after.as_ref().is_none_or(|a| *k > a))
                    .filter(|k| next.entry.as_ref().is_none_or(|(n, _)| *k < n))
                    .count() as u64;
                prop_assert_eq!(next.skipped, passed);
                if passed > 0 {
                    // One fewer allowed stops the walk.
                    prop_assert_eq!(
                        world
                            .storage_next(&CONTRACT, &prefix, after.as_deref(), passed - 1)
                            .unwrap(),
                        None
                    );
                }
                let Some((k, v)) = next.entry else { break };
                prop_assert!(seen.len() < expected.len(), "iteration goes past the end");
                after = Some(k.clone());
                seen.push((k, v));
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
