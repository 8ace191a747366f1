//! The executor's view of state during a block: reads fall through to a base
//! version, writes are buffered, and nested checkpoints let a contract
//! sub-call's writes be reverted. The buffered writes then go to
//! [`State::commit`](crate::State::commit).

use std::cell::RefCell;
use std::collections::BTreeMap;

use stele_types::proof::StateKey;

use crate::error::StateError;
use crate::store::State;

/// Buffered writes of a block: `None` deletes.
pub type WriteSet = BTreeMap<StateKey, Option<Vec<u8>>>;

/// Something an [`Overlay`] can read through to.
pub trait StateRead {
    fn read(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError>;
}

/// A retained version of a [`State`]; `version: None` is the empty state
/// before the first commit.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub state: &'a State,
    pub version: Option<u64>,
}

impl StateRead for Snapshot<'_> {
    fn read(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match self.version {
            Some(v) => self.state.get(key, v),
            None => Ok(None),
        }
    }
}

impl State {
    /// The latest version as an overlay base.
    pub fn latest_snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            state: self,
            version: self.latest,
        }
    }
}

/// An in-memory base, for tests and tools.
impl StateRead for BTreeMap<StateKey, Vec<u8>> {
    fn read(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.get(key).cloned())
    }
}

/// A checkpoint handle: its depth in the overlay's checkpoint stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint(usize);

/// Reads and buffered writes over a base, with nested checkpoints.
#[derive(Debug)]
pub struct Overlay<R> {
    base: R,
    writes: WriteSet,
    /// Base reads, cached so a block reads each key from disk once.
    reads: RefCell<BTreeMap<StateKey, Option<Vec<u8>>>>,
    /// Previous buffered entry of each write made while a checkpoint is open
    /// (`None`: the key had no buffered write).
    journal: Vec<(StateKey, Option<Option<Vec<u8>>>)>,
    /// Journal length at each open checkpoint.
    checkpoints: Vec<usize>,
}

impl<R: StateRead> Overlay<R> {
    pub fn new(base: R) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
            reads: RefCell::new(BTreeMap::new()),
            journal: Vec::new(),
            checkpoints: Vec::new(),
        }
    }

    /// The current value of `key`: the buffered write, else the base's.
    pub fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.writes.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.reads.borrow().get(key) {
            return Ok(value.clone());
        }
        let value = self.base.read(key)?;
        self.reads.borrow_mut().insert(key.clone(), value.clone());
        Ok(value)
    }

    /// Buffers `key = value`.
    pub fn put(&mut self, key: StateKey, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    /// Buffers the deletion of `key`.
    pub fn delete(&mut self, key: StateKey) {
        self.write(key, None);
    }

    fn write(&mut self, key: StateKey, value: Option<Vec<u8>>) {
        let previous = self.writes.insert(key.clone(), value);
        if !self.checkpoints.is_empty() {
            self.journal.push((key, previous));
        }
    }

    /// Opens a checkpoint (e.g. before a contract sub-call).
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.checkpoints.push(self.journal.len());
        Checkpoint(self.checkpoints.len() - 1)
    }

    /// Undoes every write since `checkpoint` and closes it and any checkpoint
    /// opened after it.
    pub fn revert_to(&mut self, checkpoint: Checkpoint) -> Result<(), StateError> {
        let mark = self.close(checkpoint)?;
        for (key, previous) in self.journal.drain(mark..).rev() {
            match previous {
                Some(value) => self.writes.insert(key, value),
                None => self.writes.remove(&key),
            };
        }
        Ok(())
    }

    /// Keeps the writes since `checkpoint` and closes it and any checkpoint
    /// opened after it (the sub-call succeeded).
    pub fn discard(&mut self, checkpoint: Checkpoint) -> Result<(), StateError> {
        self.close(checkpoint)?;
        if self.checkpoints.is_empty() {
            self.journal.clear();
        }
        Ok(())
    }

    fn close(&mut self, checkpoint: Checkpoint) -> Result<usize, StateError> {
        let open = self.checkpoints.len();
        if checkpoint.0 >= open {
            return Err(StateError::UnknownCheckpoint {
                depth: checkpoint.0,
                open,
            });
        }
        let mark = self.checkpoints[checkpoint.0];
        self.checkpoints.truncate(checkpoint.0);
        Ok(mark)
    }

    /// The buffered writes so far.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// The buffered writes, for [`State::commit`]; open checkpoints count as
    /// kept.
    pub fn into_writes(self) -> WriteSet {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_types::proof::Namespace;

    fn key(k: &str) -> StateKey {
        StateKey::new(Namespace::System, k.as_bytes().to_vec())
    }

    #[test]
    fn nested_checkpoints_revert_only_their_own_writes() {
        let mut base = BTreeMap::new();
        base.insert(key("a"), b"base".to_vec());
        let mut o = Overlay::new(base);
        o.put(key("a"), b"1".to_vec());
        let outer = o.checkpoint();
        o.put(key("a"), b"2".to_vec());
        o.put(key("b"), b"2".to_vec());
        let inner = o.checkpoint();
        o.delete(key("a"));
        o.put(key("c"), b"3".to_vec());
        assert_eq!(o.get(&key("a")).unwrap(), None);
        o.revert_to(inner).unwrap();
        assert_eq!(o.get(&key("a")).unwrap(), Some(b"2".to_vec()));
        assert_eq!(o.get(&key("c")).unwrap(), None);
        o.revert_to(outer).unwrap();
        assert_eq!(o.get(&key("a")).unwrap(), Some(b"1".to_vec()));
        assert_eq!(o.get(&key("b")).unwrap(), None);
        assert!(o.revert_to(outer).is_err());
    }

    #[test]
    fn discarded_checkpoint_keeps_writes_for_the_outer_revert() {
        let mut o = Overlay::new(BTreeMap::new());
        let outer = o.checkpoint();
        let inner = o.checkpoint();
        o.put(key("x"), b"1".to_vec());
        o.discard(inner).unwrap();
        assert_eq!(o.get(&key("x")).unwrap(), Some(b"1".to_vec()));
        o.revert_to(outer).unwrap();
        assert_eq!(o.get(&key("x")).unwrap(), None);
        assert!(o.into_writes().is_empty());
    }
}
