//! The consensus safety log: the records the PBFT replica asks to persist,
//! in a column family of the node's RocksDB. Every append is written before
//! the call returns (so a signed message outlives a crash of the process
//! before it is sent) and synced when one of its records needs it
//! ([`Record::needs_sync`]); a sync also makes every earlier write durable.
//!
//! Records written without a sync can be lost only if the host goes down.
//! The log keeps the host's boot id to tell the two apart at the next start
//! ([`Wal::unsynced_lost`]).

use std::collections::BTreeMap;

use stele_consensus::{MessageLimits, Record, Retention};
use stele_state::rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use stele_state::{State, StateError};
use stele_types::codec::Encode;
use thiserror::Error;

/// Column family of the log: key = 8-byte big-endian sequence number.
pub const CF_WAL: &str = "consensus_wal";

/// Key of the boot id of the host that last opened the log (not 8 bytes
/// long, so never a record's key).
const BOOT_KEY: &[u8] = b"host boot id";

/// Key of the index after the last record, written by compaction (not 8
/// bytes long either): a compaction may delete the last records, and the
/// index must not go back, since the high-water mark (`mark`) compares it.
const NEXT_KEY: &[u8] = b"next index";

/// Where Linux publishes an id that changes at every boot.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// This boot's id, if the host publishes one.
fn current_boot_id() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID_PATH).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

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
    /// Every record in the log by index, with what makes it obsolete:
    /// compaction decides from this alone, without reading records back
    /// or walking over the deleted ones.
    live: BTreeMap<u64, Retention>,
    unsynced_lost: bool,
    /// This boot's id, written (synced) with the first append after open:
    /// together with whatever the replica records first (after a lossy
    /// restart, that it sits out its view), so a crash in between cannot
    /// hide a loss from the next start.
    boot_stamp: Option<Vec<u8>>,
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl Wal {
    /// Reads every record in order and positions the log after them; the
    /// first append records this host's boot id.
    pub fn open(state: &State, limits: &MessageLimits) -> Result<(Wal, Vec<Record>), WalError> {
        Self::open_on_boot(state, limits, current_boot_id())
    }

    /// [`open`](Self::open) with the boot id given (`None`: unknown).
    pub fn open_on_boot(
        state: &State,
        limits: &MessageLimits,
        boot_id: Option<String>,
    ) -> Result<(Wal, Vec<Record>), WalError> {
        let cf = state.column_family(CF_WAL)?;
        let mut records = Vec::new();
        let mut live = BTreeMap::new();
        let mut next = 0;
        let mut last_boot: Option<Vec<u8>> = None;
        for item in state.db()?.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            if key.as_ref() == BOOT_KEY {
                last_boot = Some(value.to_vec());
                continue;
            }
            if key.as_ref() == NEXT_KEY {
                let stored = value
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| WalError::Corrupt {
                        index: next,
                        reason: "the stored next index is not 8 bytes".into(),
                    })?;
                next = next.max(stored);
                continue;
            }
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
            live.insert(index, record.retention());
            records.push(record);
            next = next.max(index.saturating_add(1));
        }
        // Unsynced records survive unless the host went down since they
        // were written: same boot, nothing lost. An unknown boot (no id
        // then or now) counts as a restart of the host; a log without any
        // record and stamp is new.
        let unsynced_lost = match (&boot_id, &last_boot) {
            (_, None) => !records.is_empty(),
            (Some(now), Some(then)) => now.as_bytes() != then.as_slice(),
            (None, Some(_)) => true,
        };
        Ok((
            Wal {
                next,
                live,
                unsynced_lost,
                boot_stamp: Some(boot_id.unwrap_or_default().into_bytes()),
            },
            records,
        ))
    }

    /// Whether records written without a sync before this start may be
    /// missing: the host restarted (or its boot id is unknown) since the log
    /// was last opened. The replica must then sign no PRE-PREPARE or
    /// PREPARE in its current view ([`stele_consensus::Input::Restart`]).
    pub fn unsynced_lost(&self) -> bool {
        self.unsynced_lost
    }

    /// The index the next record gets: one past every record ever
    /// appended, compacted ones included.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Records, in one synced write, that this log lost records it had
    /// synced (the operator accepted the loss at start): `lost_view`, the
    /// highest view the node is known to have reached, as a
    /// [`Record::LostView`], and the boot stamp deleted, so that every
    /// start until the replica's own first records are synced is treated
    /// as a host crash. From here on [`unsynced_lost`](Self::unsynced_lost)
    /// is true. Returns the record appended, if any, for the replica's
    /// replay.
    pub fn record_loss(
        &mut self,
        state: &State,
        lost_view: Option<u64>,
    ) -> Result<Option<Record>, WalError> {
        let cf = state.column_family(CF_WAL)?;
        let mut batch = WriteBatch::default();
        batch.delete_cf(cf, BOOT_KEY);
        let record = lost_view.map(Record::LostView);
        if let Some(r) = &record {
            batch.put_cf(cf, self.next.to_be_bytes(), r.to_bytes());
        }
        state.db()?.write_opt(batch, &synced())?;
        if let Some(r) = &record {
            self.live.insert(self.next, r.retention());
            self.next += 1;
        }
        self.unsynced_lost = true;
        Ok(record)
    }

    /// Appends `records` in one write, synced to disk before returning if
    /// any of them needs it; returns whether it was synced.
    pub fn append(&mut self, state: &State, records: &[Record]) -> Result<bool, WalError> {
        if records.is_empty() {
            return Ok(false);
        }
        let cf = state.column_family(CF_WAL)?;
        let mut batch = WriteBatch::default();
        for (i, record) in (self.next..).zip(records) {
            batch.put_cf(cf, i.to_be_bytes(), record.to_bytes());
        }
        let stamp = self.boot_stamp.take();
        if let Some(id) = &stamp {
            batch.put_cf(cf, BOOT_KEY, id);
        }
        let sync = stamp.is_some() || records.iter().any(Record::needs_sync);
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        if let Err(e) = state.db()?.write_opt(batch, &opts) {
            self.boot_stamp = stamp;
            return Err(e.into());
        }
        for (i, record) in (self.next..).zip(records) {
            self.live.insert(i, record.retention());
        }
        self.next += records.len() as u64;
        Ok(sync)
    }

    /// Deletes every record, in one synced write: the log of a finished
    /// epoch (ADR 0010), which no replica will replay.
    pub fn clear(&mut self, state: &State) -> Result<usize, WalError> {
        self.compact(state, u64::MAX, u64::MAX)
    }

    /// Deletes the records made obsolete by a stable checkpoint at
    /// `stable_seq` in `view`, in one synced write; returns how many. The
    /// obsolete records before the first one kept go as one range.
    pub fn compact(
        &mut self,
        state: &State,
        stable_seq: u64,
        view: u64,
    ) -> Result<usize, WalError> {
        // One pass: the obsolete indices in order, and the first kept one.
        let mut obsolete = Vec::new();
        let mut kept_from = None;
        for (i, r) in &self.live {
            if r.obsolete(stable_seq, view) {
                obsolete.push(*i);
            } else if kept_from.is_none() {
                kept_from = Some(*i);
            }
        }
        if obsolete.is_empty() {
            return Ok(0);
        }
        let kept_from = kept_from.unwrap_or(self.next);
        let cf = state.column_family(CF_WAL)?;
        let mut batch = WriteBatch::default();
        let prefix = obsolete.partition_point(|i| *i < kept_from);
        if let (Some(first), true) = (obsolete.first(), prefix > 0) {
            batch.delete_range_cf(cf, first.to_be_bytes(), kept_from.to_be_bytes());
        }
        for i in &obsolete[prefix..] {
            batch.delete_cf(cf, i.to_be_bytes());
        }
        batch.put_cf(cf, NEXT_KEY, self.next.to_be_bytes());
        state.db()?.write_opt(batch, &synced())?;
        for i in &obsolete {
            self.live.remove(i);
        }
        Ok(obsolete.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_consensus::CheckpointProof;
    use stele_state::StateConfig;
    use stele_types::Hash;

    fn record(seq: u64) -> Record {
        Record::Stable(CheckpointProof {
            seq,
            block_hash: Hash([seq as u8; 32]),
            votes: Vec::new(),
        })
    }

    /// The state and its consensus log at `dir`, on one boot, with the
    /// records found.
    fn open_at(dir: &std::path::Path) -> (State, Wal, Vec<Record>) {
        let state = State::open_with_column_families(dir, StateConfig::default(), &[CF_WAL])
            .expect("state opens");
        let (wal, found) =
            Wal::open_on_boot(&state, &limits(), Some("boot".into())).expect("log opens");
        (state, wal, found)
    }

    fn limits() -> MessageLimits {
        MessageLimits {
            message_bytes_max: 1 << 20,
            payload_bytes_max: 1 << 20,
            validators_max: 4,
            window_seqs_max: 16,
        }
    }

    /// Opens the log on `boot`, appends `records`, and closes it.
    fn session(
        dir: &std::path::Path,
        boot: Option<&str>,
        records: &[Record],
    ) -> (bool, Vec<Record>) {
        let state = State::open_with_column_families(dir, StateConfig::default(), &[CF_WAL])
            .expect("state opens");
        let (mut wal, found) =
            Wal::open_on_boot(&state, &limits(), boot.map(str::to_owned)).expect("log opens");
        wal.append(&state, records).expect("append");
        (wal.unsynced_lost(), found)
    }

    #[test]
    fn only_a_new_or_unknown_boot_may_have_lost_unsynced_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        assert_eq!(
            session(path, Some("boot-a"), &[record(1), record(2)]),
            (false, vec![])
        );
        // A start that appends nothing leaves the old stamp: a host crash
        // after it is still seen at the next start.
        assert!(session(path, Some("boot-x"), &[]).0);
        assert!(session(path, Some("boot-y"), &[]).0);
        // The same boot: a process restart keeps every written record.
        let (lost, found) = session(path, Some("boot-a"), &[record(3)]);
        assert!(!lost);
        assert_eq!(
            found,
            vec![record(1), record(2)],
            "the boot id is not a record"
        );
        // Another boot, or none known: records written unsynced may be gone.
        assert!(session(path, Some("boot-b"), &[record(4)]).0);
        assert!(!session(path, Some("boot-b"), &[]).0);
        assert!(session(path, None, &[record(5)]).0);
        assert!(session(path, None, &[]).0, "an unknown boot never matches");
    }

    #[test]
    fn compaction_deletes_exactly_the_obsolete_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || open_at(dir.path());
        let (state, mut wal, _) = open();
        // A stable proof is obsolete once the stable checkpoint is above it.
        wal.append(&state, &[record(1), record(5), record(2), record(3)])
            .expect("append");
        // Index 0 goes as a range, index 2 on its own (5 is kept between).
        assert_eq!(wal.compact(&state, 3, 0).expect("compact"), 2);
        assert_eq!(wal.compact(&state, 3, 0).expect("compact"), 0);
        drop((state, wal));
        let (state, mut wal, found) = open();
        assert_eq!(found, vec![record(5), record(3)]);
        wal.append(&state, &[record(6)]).expect("append");
        // One range over indices 1..4, across the hole at 2.
        assert_eq!(wal.compact(&state, 6, 0).expect("compact"), 2);
        drop((state, wal));
        let (state, mut wal, found) = open();
        assert_eq!(found, vec![record(6)]);
        wal.append(&state, &[record(7)]).expect("append");
        drop((state, wal));
        assert_eq!(
            open().2,
            vec![record(6), record(7)],
            "indices go on after the last"
        );
    }

    #[test]
    fn the_next_index_survives_a_compaction_of_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || open_at(dir.path());
        let (state, mut wal, _) = open();
        wal.append(&state, &[record(1), record(2)]).expect("append");
        assert_eq!(wal.compact(&state, 3, 0).expect("compact"), 2);
        drop((state, wal));
        let (_, wal, found) = open();
        assert!(found.is_empty());
        assert_eq!(wal.next_index(), 2, "the index never goes back");
    }

    #[test]
    fn a_recorded_loss_makes_every_start_lossy_until_the_next_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        session(path, Some("boot-a"), &[record(1)]);
        {
            let state = State::open_with_column_families(path, StateConfig::default(), &[CF_WAL])
                .expect("state opens");
            let (mut wal, _) =
                Wal::open_on_boot(&state, &limits(), Some("boot-a".into())).expect("log opens");
            assert!(!wal.unsynced_lost());
            let lost = wal.record_loss(&state, Some(9)).expect("record loss");
            assert_eq!(lost, Some(Record::LostView(9)));
            assert!(wal.unsynced_lost());
        }
        // Same boot, yet the loss is remembered until an append stamps it.
        let (lost, found) = session(path, Some("boot-a"), &[]);
        assert!(lost);
        assert_eq!(found, vec![record(1), Record::LostView(9)]);
        assert!(session(path, Some("boot-a"), &[record(2)]).0);
        assert!(!session(path, Some("boot-a"), &[]).0);
    }
}
