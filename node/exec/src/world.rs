//! The VM's [`World`] over the Merkle state's overlay.
//!
//! Accounts live under `StateKey::account(address)` as an [`Account`]
//! record, code under [`code_key`] by hash, and each contract's storage in
//! its own `Namespace::Storage(address)`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use stele_state::{Checkpoint, CommittedView, Overlay, State, StateError, StateRead, WriteSet};
use stele_types::codec::Encode;
use stele_types::proof::value_hash;
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
    /// A view of `version` taken while it was the latest: reads and
    /// iteration go through it, without the state's lock and unchanged by
    /// commits made meanwhile. Without one (an older version) reads walk
    /// the tree and iteration is refused (`WorldError::IterationUnavailable`:
    /// the tree is ordered by key hash, and only the latest version has a
    /// flat index to list keys in order).
    pub view: Option<Arc<CommittedView>>,
    /// The uncommitted ancestors' writes, later ones applied over earlier
    /// ones: a value replaces the committed one, `None` deletes it.
    pub pending: Option<Arc<WriteSet>>,
}

impl StateBase {
    /// A base on the latest committed version, through a view of it.
    pub fn latest(state: &SharedState, pending: Option<Arc<WriteSet>>) -> Self {
        let (version, view) = match state.read() {
            Ok(guard) => (guard.latest_version(), guard.view().map(Arc::new)),
            // Reads through this base report the poisoned lock.
            Err(_) => (None, None),
        };
        StateBase {
            state: Arc::clone(state),
            version,
            view,
            pending,
        }
    }

    /// A base on `version`: through a view when it is the latest, else
    /// reading the tree at that version (no iteration).
    pub fn at(state: &SharedState, version: Option<u64>, pending: Option<Arc<WriteSet>>) -> Self {
        let view = match state.read() {
            Ok(guard) if version.is_some() && guard.latest_version() == version => {
                guard.view().map(Arc::new)
            }
            _ => None,
        };
        StateBase {
            state: Arc::clone(state),
            version,
            view,
            pending,
        }
    }
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
        match &self.view {
            Some(view) => view.get(key),
            None => self.state.read().map_err(|_| poisoned())?.get(key, version),
        }
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

/// Most bytes of keys [`Gaps`] remembers before it starts over.
const GAPS_BYTES_MAX: usize = 8 << 20;

/// The stretches of a namespace's keys already walked in the layers below
/// the execution's own writes (the uncommitted ancestors' writes over the
/// committed view): a gap from `start` to `found` holds no live key below
/// `found` (`None`: none to the namespace's end). Those layers do not
/// change during an execution, so each stretch of deleted keys in them
/// (tombstones in RocksDB, deletes in the pending writes, neither priced,
/// as how many remain is not the chain's to say) is walked about once per
/// execution however often its transactions iterate there. Only speed
/// depends on this; answers never do.
#[derive(Debug, Default)]
struct Gaps {
    gaps: BTreeMap<StateKey, Option<Vec<u8>>>,
    bytes: usize,
}

impl Gaps {
    /// The first live key at or above `from`, if a remembered gap covers it.
    fn lookup(&self, namespace: Namespace, from: &[u8]) -> Option<Option<Vec<u8>>> {
        let (start, found) = self
            .gaps
            .range(..=StateKey::new(namespace, from.to_vec()))
            .next_back()?;
        if start.namespace != namespace {
            return None;
        }
        // Gaps never partly overlap: one that starts inside another ends
        // where it does. So the nearest start below `from` decides.
        match found {
            Some(found) if from > found.as_slice() => None,
            _ => Some(found.clone()),
        }
    }

    /// The first remembered gap's start above `from`, where a walk from
    /// `from` can stop and take that gap's answer.
    fn next_start(&self, namespace: Namespace, from: &[u8]) -> Option<Vec<u8>> {
        use std::ops::Bound;
        let from = StateKey::new(namespace, from.to_vec());
        let (start, _) = self
            .gaps
            .range((Bound::Excluded(from), Bound::Unbounded))
            .next()?;
        (start.namespace == namespace).then(|| start.key.clone())
    }

    fn remember(&mut self, namespace: Namespace, from: &[u8], found: Option<&[u8]>) {
        let bytes = from.len() + found.map_or(0, <[u8]>::len) + 64;
        if self.bytes + bytes > GAPS_BYTES_MAX {
            self.gaps.clear();
            self.bytes = 0;
        }
        self.bytes += bytes;
        self.gaps.insert(
            StateKey::new(namespace, from.to_vec()),
            found.map(<[u8]>::to_vec),
        );
    }
}

/// The first live key at or above `from` and below `until` (`None`: the
/// namespace's end) in `namespace`, in the pending writes over the
/// committed view (either may be absent).
fn lower_walk(
    view: Option<&CommittedView>,
    pending: Option<&WriteSet>,
    namespace: Namespace,
    from: &[u8],
    until: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, WorldError> {
    let mut pending = pending.map(|p| {
        p.range(StateKey::new(namespace, from.to_vec())..)
            .take_while(move |(k, _)| {
                k.namespace == namespace && until.is_none_or(|u| k.key.as_slice() < u)
            })
            .map(|(k, v)| (k.key.as_slice(), v.as_deref()))
            .peekable()
    });
    let mut committed = match view {
        Some(view) => Some(
            view.flat_cursor_between(&namespace, from, until)
                .map_err(world_err)?,
        ),
        None => None,
    };
    loop {
        let mid = pending.as_mut().and_then(|p| p.peek().copied());
        let low = match &committed {
            Some(c) => c.key().map_err(world_err)?,
            None => None,
        };
        // The pending writes decide when they hold the smaller key, or the
        // same one (their write overrides the committed entry).
        match (mid, low) {
            (Some((k, v)), low) if low.is_none_or(|l| k <= l) => {
                if v.is_some() {
                    return Ok(Some(k.to_vec()));
                }
                if low == Some(k)
                    && let Some(c) = committed.as_mut()
                {
                    c.advance();
                }
                if let Some(p) = pending.as_mut() {
                    p.next();
                }
            }
            (_, Some(k)) => return Ok(Some(k.to_vec())),
            (_, None) => return Ok(None),
        }
    }
}

/// The first entry above the cursor in `buffer` over the lower layers
/// (`lower(from)` gives their first live key at or above `from`, `value`
/// the value of such a key), the
/// buffer's value replacing the one below and its delete hiding it. The
/// buffer's deletes the walk passes are counted (and the walk stops after
/// `skip_max` of them); what the lower layers step over is not, as it
/// depends on what is committed yet.
fn merged_next<'a>(
    mut buffer: std::iter::Peekable<impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>>,
    prefix: &[u8],
    after: Option<&[u8]>,
    mut lower: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, WorldError>,
    value: impl Fn(&[u8]) -> Result<Vec<u8>, WorldError>,
    skip_max: u64,
) -> Result<Option<Next>, WorldError> {
    let mut from = match after {
        Some(a) => {
            let mut above = a.to_vec();
            above.push(0);
            above.max(prefix.to_vec())
        }
        None => prefix.to_vec(),
    };
    let mut low = lower(&from)?.filter(|k| k.starts_with(prefix));
    let mut skipped = 0u64;
    loop {
        let top = buffer.peek().copied();
        let low_key = low.as_deref();
        let Some(key) = [top.map(|t| t.0), low_key].into_iter().flatten().min() else {
            return Ok(Some(Next {
                entry: None,
                skipped,
            }));
        };
        let key = key.to_vec();
        let top_here = top.is_some_and(|t| t.0 == key.as_slice());
        let low_here = low_key == Some(key.as_slice());
        if top_here {
            if let Some(value) = top.and_then(|t| t.1) {
                return Ok(Some(Next {
                    entry: Some((key, value.to_vec())),
                    skipped,
                }));
            }
            skipped += 1;
            if skipped > skip_max {
                return Ok(None);
            }
            buffer.next();
        } else if low_here {
            let value = value(&key)?;
            return Ok(Some(Next {
                entry: Some((key, value)),
                skipped,
            }));
        }
        if low_here {
            from = key;
            from.push(0);
            low = lower(&from)?.filter(|k| k.starts_with(prefix));
        }
    }
}

/// A storage key a transaction wrote, and what it left there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StorageWrite {
    pub contract: Address,
    pub key: Vec<u8>,
    /// `proof::value_hash` of the value the transaction left (the hash a
    /// storage proof's leaf carries), `None` if it deleted the key.
    pub value_hash: Option<Hash>,
}

/// The contract storage keys the current transaction wrote with a write
/// that was not reverted: a key enters at its first write and leaves when a
/// checkpoint opened before that write is reverted. Bounded by the
/// transaction's distinct keys, as the overlay is.
#[derive(Debug, Default)]
struct TxKeys {
    /// Whether to record at all.
    on: bool,
    set: std::collections::BTreeSet<StateKey>,
    /// The keys in the order they entered `set`, so a revert can take out
    /// exactly those that entered after its checkpoint.
    log: Vec<StateKey>,
    /// `log`'s length at each open checkpoint.
    marks: Vec<usize>,
}

impl TxKeys {
    fn wrote(&mut self, key: &StateKey) {
        if self.on && !self.set.contains(key) {
            self.set.insert(key.clone());
            self.log.push(key.clone());
        }
    }

    fn checkpoint(&mut self) {
        self.marks.push(self.log.len());
    }

    fn revert(&mut self) {
        if let Some(mark) = self.marks.pop() {
            for key in self.log.drain(mark..) {
                self.set.remove(&key);
            }
        }
    }

    fn commit(&mut self) {
        self.marks.pop();
    }
}

/// Accounts, code and contract storage for one execution, over an overlay.
#[derive(Debug)]
pub struct StateWorld {
    overlay: Overlay<StateBase>,
    base: StateBase,
    checkpoints: Vec<Checkpoint>,
    gaps: RefCell<Gaps>,
    tx_keys: TxKeys,
}

fn world_err(e: impl std::fmt::Display) -> WorldError {
    WorldError::Backend(e.to_string())
}

impl StateWorld {
    pub fn new(base: StateBase) -> Self {
        StateWorld {
            overlay: Overlay::new(base.clone()),
            base,
            checkpoints: Vec::new(),
            gaps: RefCell::new(Gaps::default()),
            tx_keys: TxKeys::default(),
        }
    }

    /// Whether transactions' storage writes are recorded (off by default).
    pub fn record_storage_writes(&mut self, on: bool) {
        self.tx_keys.on = on;
    }

    /// Starts recording the storage keys of a new transaction (forgets
    /// those of the previous one).
    pub fn begin_tx(&mut self) {
        self.tx_keys = TxKeys {
            on: self.tx_keys.on,
            ..TxKeys::default()
        };
    }

    /// The contract storage keys the transaction since
    /// [`StateWorld::begin_tx`] wrote and did not revert, in (contract,
    /// key) order, each with the hash of the value it left (`None`:
    /// deleted). A key written with the value it already held counts: this
    /// records writes, not differences.
    pub fn take_tx_storage_writes(&mut self) -> Vec<StorageWrite> {
        let on = self.tx_keys.on;
        let keys = std::mem::replace(
            &mut self.tx_keys,
            TxKeys {
                on,
                ..TxKeys::default()
            },
        );
        keys.set
            .into_iter()
            .filter_map(|key| {
                let Namespace::Storage(contract) = key.namespace else {
                    return None;
                };
                // A key in the set has a write that was not reverted, so it
                // is buffered.
                let value = self.overlay.writes().get(&key)?;
                Some(StorageWrite {
                    contract,
                    value_hash: value.as_deref().map(value_hash),
                    key: key.key,
                })
            })
            .collect()
    }

    /// The account record of `address` (default if absent).
    pub fn account(&self, address: &Address) -> Result<Account, WorldError> {
        match self
            .overlay
            .get(&StateKey::account(address))
            .map_err(world_err)?
        {
            Some(bytes) => decode(&bytes, &Limits::default())
                .map_err(|e| WorldError::Backend(format!("account {address} is corrupt: {e}"))),
            None => Ok(Account::default()),
        }
    }

    pub fn set_account(&mut self, address: &Address, account: &Account) {
        self.overlay
            .put(StateKey::account(address), account.to_bytes());
    }

    /// A chain-level record (namespace `System`).
    pub fn system_get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, WorldError> {
        debug_assert!(matches!(key.namespace, Namespace::System));
        self.overlay.get(key).map_err(world_err)
    }

    /// Writes a chain-level record.
    pub fn system_put(&mut self, key: StateKey, value: Vec<u8>) {
        debug_assert!(matches!(key.namespace, Namespace::System));
        self.overlay.put(key, value);
    }

    /// Deletes a chain-level record.
    pub fn system_delete(&mut self, key: StateKey) {
        debug_assert!(matches!(key.namespace, Namespace::System));
        self.overlay.delete(key);
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
        let key = StateKey::storage(contract, key);
        self.tx_keys.wrote(&key);
        self.overlay.put(key, value.to_vec());
        Ok(())
    }

    fn storage_remove(&mut self, contract: &Address, key: &[u8]) -> Result<bool, WorldError> {
        let existed = self.storage_get(contract, key)?.is_some();
        if existed {
            let key = StateKey::storage(contract, key);
            self.tx_keys.wrote(&key);
            self.overlay.delete(key);
        }
        Ok(existed)
    }

    /// Merges the committed view, the pending writes of uncommitted
    /// ancestors and the buffered writes: a later layer's value wins, its
    /// delete hides the entry below.
    fn storage_next(
        &self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
        skip_max: u64,
    ) -> Result<Option<Next>, WorldError> {
        let namespace = Namespace::Storage(*contract);
        if self.base.version.is_some() && self.base.view.is_none() {
            return Err(WorldError::IterationUnavailable);
        }
        let view = self.base.view.as_deref();
        let pending = self.base.pending.as_deref();
        let lower = |from: &[u8]| {
            if let Some(found) = self.gaps.borrow().lookup(namespace, from) {
                return Ok(found);
            }
            // Walk only up to the next gap already walked, and take its
            // answer from there: each deleted stretch is stepped over once,
            // whichever way the calls approach it.
            let until = self.gaps.borrow().next_start(namespace, from);
            let mut found = lower_walk(view, pending, namespace, from, until.as_deref())?;
            if found.is_none()
                && let Some(until) = &until
            {
                let known = self.gaps.borrow().lookup(namespace, until);
                found = match known {
                    Some(answer) => answer,
                    None => lower_walk(view, pending, namespace, until, None)?,
                };
            }
            self.gaps
                .borrow_mut()
                .remember(namespace, from, found.as_deref());
            Ok(found)
        };
        let value = |key: &[u8]| {
            let key = StateKey::new(namespace, key.to_vec());
            let value = match pending.and_then(|p| p.get(&key)) {
                Some(value) => value.clone(),
                None => match view {
                    Some(v) => v.get(&key).map_err(world_err)?,
                    None => None,
                },
            };
            // `lower` only gives keys live in these layers.
            value.ok_or_else(|| {
                WorldError::Backend(format!("storage key {key:?} vanished during iteration"))
            })
        };
        let buffer = written(self.overlay.writes(), namespace, prefix, after);
        merged_next(buffer, prefix, after, lower, value, skip_max)
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
        self.tx_keys.checkpoint();
    }

    fn revert(&mut self) {
        if let Some(cp) = self.checkpoints.pop() {
            // The handle came from this overlay and is the innermost open
            // one, so this cannot fail.
            let _ = self.overlay.revert_to(cp);
            self.tx_keys.revert();
        }
    }

    fn commit(&mut self) {
        if let Some(cp) = self.checkpoints.pop() {
            let _ = self.overlay.discard(cp);
            self.tx_keys.commit();
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
            // A second committed block: its deletes leave tombstones in the
            // flat index for the walk to step over.
            committed_later in layer(),
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
            state.commit(2, &writes(&committed_later, &CONTRACT)).unwrap();
            let state = Arc::new(RwLock::new(state));
            let base = StateBase::at(
                &state,
                Some(2),
                with_pending.then(|| Arc::new(writes(&pending, &CONTRACT))),
            );
            // A block committed after the view was taken changes nothing
            // this execution reads.
            let mut clobber = writes(&committed, &CONTRACT);
            clobber.extend(writes(&pending, &CONTRACT));
            for value in clobber.values_mut() {
                *value = None;
            }
            clobber.insert(StateKey::storage(&CONTRACT, vec![0, 200]), Some(vec![1]));
            state.write().unwrap().commit(3, &clobber).unwrap();
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
                vec![&committed, &committed_later, &pending]
            } else {
                vec![&committed, &committed_later]
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
            // From every key, last first: each call's walk ends where an
            // earlier one started, taking its answer.
            let answer_after = |world: &StateWorld, after: &[u8]| {
                world
                    .storage_next(&CONTRACT, &prefix, Some(after), u64::MAX)
                    .unwrap()
                    .unwrap()
                    .entry
            };
            for i in (0u8..40).rev() {
                let after = key(i);
                let want = expected.iter().find(|(k, _)| *k > after).cloned();
                prop_assert_eq!(answer_after(&world, &after), want);
            }
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
            prop_assert_eq!(&seen, &expected);
            // Again, now from what the first pass remembered, and from
            // every key in between (the middle of the gaps it walked).
            for i in 0u8..40 {
                let after = key(i);
                let want = expected.iter().find(|(k, _)| *k > after).cloned();
                prop_assert_eq!(answer_after(&world, &after), want);
            }
        }
    }
}
