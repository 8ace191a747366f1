//! An in-memory [`World`] on `BTreeMap`s with an undo journal, for tests and
//! the SDK testkit until the Merkle state's overlay is wired in.

use std::collections::BTreeMap;
use std::ops::Bound;

use stele_types::{Address, Amount, Hash};

use crate::world::{Next, World, WorldError};

#[derive(Debug, Clone)]
enum Undo {
    Storage(Address, Vec<u8>, Option<Vec<u8>>),
    Balance(Address, Amount),
    Nonce(Address, u64),
    Contract(Address, Option<Hash>),
    Code(Hash, Option<Vec<u8>>),
}

/// In-memory world state with nested checkpoints.
#[derive(Debug, Clone, Default)]
pub struct MemoryWorld {
    storage: BTreeMap<(Address, Vec<u8>), Vec<u8>>,
    balances: BTreeMap<Address, Amount>,
    nonces: BTreeMap<Address, u64>,
    contracts: BTreeMap<Address, Hash>,
    codes: BTreeMap<Hash, Vec<u8>>,
    journal: Vec<Undo>,
    checkpoints: Vec<usize>,
}

impl MemoryWorld {
    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a balance directly (genesis / test setup).
    pub fn set_balance(&mut self, account: Address, amount: Amount) {
        self.balances.insert(account, amount);
    }

    /// Number of open checkpoints (0 once an execution has finished).
    pub fn open_checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// All storage entries of `contract`, in key order.
    pub fn storage_of(&self, contract: &Address) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.storage
            .range((*contract, Vec::new())..)
            .take_while(|((c, _), _)| c == contract)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    fn record(&mut self, undo: Undo) {
        if !self.checkpoints.is_empty() {
            self.journal.push(undo);
        }
    }
}

impl World for MemoryWorld {
    fn storage_get(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, WorldError> {
        Ok(self.storage.get(&(*contract, key.to_vec())).cloned())
    }

    fn storage_set(
        &mut self,
        contract: &Address,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), WorldError> {
        let old = self
            .storage
            .insert((*contract, key.to_vec()), value.to_vec());
        self.record(Undo::Storage(*contract, key.to_vec(), old));
        Ok(())
    }

    fn storage_remove(&mut self, contract: &Address, key: &[u8]) -> Result<bool, WorldError> {
        let old = self.storage.remove(&(*contract, key.to_vec()));
        let existed = old.is_some();
        if existed {
            self.record(Undo::Storage(*contract, key.to_vec(), old));
        }
        Ok(existed)
    }

    fn storage_next(
        &self,
        contract: &Address,
        prefix: &[u8],
        after: Option<&[u8]>,
        _skip_max: u64,
    ) -> Result<Option<Next>, WorldError> {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded((*contract, a.to_vec())),
            _ => Bound::Included((*contract, prefix.to_vec())),
        };
        let entry = self
            .storage
            .range((start, Bound::Unbounded))
            .next()
            .filter(|((c, k), _)| c == contract && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()));
        // Removals here take the entry out at once: nothing to walk past.
        Ok(Some(Next { entry, skipped: 0 }))
    }

    fn balance(&self, account: &Address) -> Result<Amount, WorldError> {
        Ok(self.balances.get(account).copied().unwrap_or(0))
    }

    fn transfer(
        &mut self,
        from: &Address,
        to: &Address,
        amount: Amount,
    ) -> Result<bool, WorldError> {
        let from_balance = self.balance(from)?;
        let Some(new_from) = from_balance.checked_sub(amount) else {
            return Ok(false);
        };
        self.record(Undo::Balance(*from, from_balance));
        self.balances.insert(*from, new_from);
        let to_balance = self.balance(to)?;
        self.record(Undo::Balance(*to, to_balance));
        // Total supply fits in u128, so a credit cannot overflow.
        self.balances.insert(*to, to_balance.saturating_add(amount));
        Ok(true)
    }

    fn nonce(&self, account: &Address) -> Result<u64, WorldError> {
        Ok(self.nonces.get(account).copied().unwrap_or(0))
    }

    fn set_nonce(&mut self, account: &Address, nonce: u64) -> Result<(), WorldError> {
        let old = self.nonce(account)?;
        self.record(Undo::Nonce(*account, old));
        self.nonces.insert(*account, nonce);
        Ok(())
    }

    fn code_hash(&self, contract: &Address) -> Result<Option<Hash>, WorldError> {
        Ok(self.contracts.get(contract).copied())
    }

    fn code(&self, code_hash: &Hash) -> Result<Option<Vec<u8>>, WorldError> {
        Ok(self.codes.get(code_hash).cloned())
    }

    fn create_contract(
        &mut self,
        contract: &Address,
        code_hash: &Hash,
        code: &[u8],
    ) -> Result<(), WorldError> {
        let old_code = self.codes.insert(*code_hash, code.to_vec());
        self.record(Undo::Code(*code_hash, old_code));
        let old = self.contracts.insert(*contract, *code_hash);
        self.record(Undo::Contract(*contract, old));
        Ok(())
    }

    fn checkpoint(&mut self) {
        self.checkpoints.push(self.journal.len());
    }

    fn revert(&mut self) {
        let Some(mark) = self.checkpoints.pop() else {
            return;
        };
        while self.journal.len() > mark {
            let Some(undo) = self.journal.pop() else {
                break;
            };
            match undo {
                Undo::Storage(c, k, Some(v)) => {
                    self.storage.insert((c, k), v);
                }
                Undo::Storage(c, k, None) => {
                    self.storage.remove(&(c, k));
                }
                Undo::Balance(a, v) => {
                    self.balances.insert(a, v);
                }
                Undo::Nonce(a, v) => {
                    self.nonces.insert(a, v);
                }
                Undo::Contract(a, Some(h)) => {
                    self.contracts.insert(a, h);
                }
                Undo::Contract(a, None) => {
                    self.contracts.remove(&a);
                }
                Undo::Code(h, Some(c)) => {
                    self.codes.insert(h, c);
                }
                Undo::Code(h, None) => {
                    self.codes.remove(&h);
                }
            }
        }
    }

    fn commit(&mut self) {
        self.checkpoints.pop();
        if self.checkpoints.is_empty() {
            self.journal.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_checkpoints_revert_only_the_inner_changes() {
        let a = Address([1; 20]);
        let mut w = MemoryWorld::new();
        w.checkpoint();
        w.storage_set(&a, b"k", b"outer").unwrap();
        w.checkpoint();
        w.storage_set(&a, b"k", b"inner").unwrap();
        w.storage_set(&a, b"k2", b"x").unwrap();
        w.revert();
        assert_eq!(w.storage_get(&a, b"k").unwrap(), Some(b"outer".to_vec()));
        assert_eq!(w.storage_get(&a, b"k2").unwrap(), None);
        w.commit();
        assert_eq!(w.open_checkpoints(), 0);
        assert_eq!(w.storage_get(&a, b"k").unwrap(), Some(b"outer".to_vec()));
    }

    #[test]
    fn storage_next_walks_a_prefix_in_key_order() {
        let a = Address([1; 20]);
        let b = Address([2; 20]);
        let mut w = MemoryWorld::new();
        for k in [&b"p/2"[..], b"p/1", b"q", b"p/3", b"o"] {
            w.storage_set(&a, k, k).unwrap();
        }
        w.storage_set(&b, b"p/0", b"other").unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        while let Some((k, _)) = w
            .storage_next(&a, b"p/", cursor.as_deref(), 0)
            .unwrap()
            .and_then(|next| next.entry)
        {
            seen.push(k.clone());
            cursor = Some(k);
        }
        assert_eq!(
            seen,
            vec![b"p/1".to_vec(), b"p/2".to_vec(), b"p/3".to_vec()]
        );
    }
}
