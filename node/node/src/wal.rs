//! The consensus safety log: the records the PBFT replica asks to persist,
//! in a column family of the node's RocksDB, each write synced before the
//! call returns (so a signed message is durable before it is sent).

use stele_consensus::{MessageLimits, Record};
use stele_state::rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use stele_state::{State, StateError};
use stele_types::codec::Encode;
use thiserror::Error;

/// Column family of the log: key = 8-byte big-endian sequence number.
pub const CF_WAL: &str = "consensus_wal";

/// Why the log cannot be read or written.
#[derive(Debug, Error)]
pub enum WalError {
    #[error("consensus log storage: {0}")]
    Storage(String),
    #[error("consensus log entry {index} is corrupt: {reason}")]
    Corrupt { index: u64, reason: String },
}

impl From<stele_state::rocksdb::Error> for WalError {
    fn from(e: stele_state::rocksdb::Error) -> Self {
        WalError::Storage(e.to_string())
    }
}

impl From<StateError> for WalError {
    fn from(e: StateError) -> Self {
        WalError::Storage(e.to_string())
    }
}

/// Append-only, compactable log of [`Record`]s.
#[derive(Debug)]
pub struct Wal {
    next: u64,
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl Wal {
    /// Reads every record in order and positions the log after them.
    pub fn open(state: &State, limits: &MessageLimits) -> Result<(Wal, Vec<Record>), WalError> {
        let cf = state.column_family(CF_WAL)?;
        let mut records = Vec::new();
        let mut next = 0;
        for item in state.db().iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let index = key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| WalError::Corrupt {
                    index: next,
                    reason: "key is not 8 bytes".into(),
                })?;
            let record = Record::decode(&value, limits).map_err(|e| WalError::Corrupt {
                index,
                reason: e.to_string(),
            })?;
            records.push(record);
            next = index + 1;
        }
        Ok((Wal { next }, records))
    }

    /// Appends `records` and syncs them to disk before returning.
    pub fn append(&mut self, state: &State, records: &[Record]) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        let cf = state.column_family(CF_WAL)?;
        let mut batch = WriteBatch::default();
        for (i, record) in (self.next..).zip(records) {
            batch.put_cf(cf, i.to_be_bytes(), record.to_bytes());
        }
        state.db().write_opt(batch, &synced())?;
        self.next += records.len() as u64;
        Ok(())
    }

    /// Deletes the records made obsolete by a stable checkpoint at
    /// `stable_seq` in `view`.
    pub fn compact(
        &mut self,
        state: &State,
        limits: &MessageLimits,
        stable_seq: u64,
        view: u64,
    ) -> Result<usize, WalError> {
        let cf = state.column_family(CF_WAL)?;
        let mut batch = WriteBatch::default();
        let mut dropped = 0;
        for item in state.db().iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let record = Record::decode(&value, limits).map_err(|e| WalError::Corrupt {
                index: 0,
                reason: e.to_string(),
            })?;
            if record.obsolete(stable_seq, view) {
                batch.delete_cf(cf, key);
                dropped += 1;
            }
        }
        if dropped > 0 {
            state.db().write_opt(batch, &synced())?;
        }
        Ok(dropped)
    }
}
