//! The high-water mark of what the node synced: a small checksummed file
//! beside the node's RocksDB (`data/consensus-mark`) holding the committed
//! height, the consensus log's next index and the view reached at a synced
//! consensus-log write. RocksDB by default opens a damaged write-ahead log
//! by dropping its tail without a word, and a copied-back database looks
//! like any other; the mark, kept apart and only ever written after the
//! database synced what it names, lets the next start see that the
//! database came back lower than it was (`check`).
//!
//! The mark is written by a thread of its own (`MarkWriter`), so the
//! driver pays no fsync for it, and at most once per [`MARK_INTERVAL`]: a
//! write is two fsyncs (the file and its directory), and a validator
//! syncs its consensus log several times per block. The mark trails the
//! database by up to that interval plus one write, so a loss of the last
//! few tens of milliseconds of synced records is not seen here (RocksDB's
//! strict recovery still sees a torn or corrupt tail).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use stele_types::hash::keccak256_parts;
use thiserror::Error;

/// File name of the mark in the data directory.
pub const MARK_FILE: &str = "consensus-mark";

/// Names the file format and separates its checksum from any other hash.
const MAGIC: &[u8; 16] = b"STELE/v1/mark\0\0\0";

/// The shortest time between two writes of the mark. Marks published in
/// between wait, and only the latest of them is written.
pub const MARK_INTERVAL: Duration = Duration::from_millis(50);

/// Magic, three u64 fields, a 32-byte checksum.
const MARK_BYTES: usize = 16 + 3 * 8 + 32;

/// What the node had synced at one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Committed height (latest state version).
    pub height: u64,
    /// The consensus log's next index ([`crate::wal::Wal::next_index`]).
    pub wal_next: u64,
    /// The replica's view.
    pub view: u64,
}

/// Why the mark cannot be read or written.
#[derive(Debug, Error)]
pub enum MarkError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the high-water mark {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: &'static str },
}

impl Mark {
    fn to_bytes(self) -> [u8; MARK_BYTES] {
        let mut out = [0u8; MARK_BYTES];
        out[..16].copy_from_slice(MAGIC);
        out[16..24].copy_from_slice(&self.height.to_le_bytes());
        out[24..32].copy_from_slice(&self.wal_next.to_le_bytes());
        out[32..40].copy_from_slice(&self.view.to_le_bytes());
        let sum = keccak256_parts(&[&out[..40]]);
        out[40..].copy_from_slice(&sum.0);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Mark, &'static str> {
        if bytes.len() != MARK_BYTES {
            return Err("wrong length");
        }
        if &bytes[..16] != MAGIC {
            return Err("unknown format");
        }
        if keccak256_parts(&[&bytes[..40]]).0 != bytes[40..] {
            return Err("checksum mismatch");
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Ok(Mark {
            height: u64_at(16),
            wal_next: u64_at(24),
            view: u64_at(32),
        })
    }

    /// Reads the mark in `data_dir`; `None` if there is none yet.
    pub fn read(data_dir: &Path) -> Result<Option<Mark>, MarkError> {
        let path = data_dir.join(MARK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Mark::from_bytes(&bytes)
                .map(Some)
                .map_err(|reason| MarkError::Corrupt { path, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MarkError::Io {
                what: "read",
                path,
                source,
            }),
        }
    }

    /// Replaces the mark in `data_dir` atomically and durably: a temporary
    /// file, synced, renamed over the old one, and the directory synced.
    pub fn write(self, data_dir: &Path) -> Result<(), MarkError> {
        let path = data_dir.join(MARK_FILE);
        let tmp = data_dir.join(format!("{MARK_FILE}.tmp"));
        let io = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| MarkError::Io { what, path, source }
        };
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&self.to_bytes())
            .map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", data_dir))
    }

    /// What the database lost against this mark, given what it came back
    /// with; `None` if it holds at least what the mark names.
    pub fn check(&self, height: u64, wal_next: u64) -> Option<DataLoss> {
        (height < self.height || wal_next < self.wal_next).then_some(DataLoss::BelowMark {
            mark: *self,
            height,
            wal_next,
        })
    }
}

/// A loss of synced data found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLoss {
    /// RocksDB found its files damaged, typically a torn or corrupt
    /// write-ahead log, which opening as RocksDB would by default cuts at
    /// the damage, dropping everything after it.
    CorruptDatabase { detail: String },
    /// The database opened, lower than the high-water mark.
    BelowMark {
        mark: Mark,
        height: u64,
        wal_next: u64,
    },
    /// The high-water mark itself is damaged, so nothing says what the
    /// database should hold.
    CorruptMark { detail: String },
}

impl DataLoss {
    /// The view the node is known to have reached, if the loss says.
    pub fn view(&self) -> Option<u64> {
        match self {
            DataLoss::BelowMark { mark, .. } => Some(mark.view),
            _ => None,
        }
    }
}

impl std::fmt::Display for DataLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataLoss::CorruptDatabase { detail } => write!(
                f,
                "the database is damaged ({detail}); a torn or corrupt write-ahead log is opened only by dropping every write after the damage, consensus records this validator signed among them"
            ),
            DataLoss::BelowMark {
                mark,
                height,
                wal_next,
            } => write!(
                f,
                "the database came back lower than this node had synced: committed height {height} (synced: {}), consensus log index {wal_next} (synced: {}); {} block(s) and {} consensus record(s) are gone, from view {} or below",
                mark.height,
                mark.wal_next,
                mark.height.saturating_sub(*height),
                mark.wal_next.saturating_sub(*wal_next),
                mark.view,
            ),
            DataLoss::CorruptMark { detail } => write!(
                f,
                "{detail}, so whether the database lost synced records cannot be told"
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    next: Option<Mark>,
    stop: bool,
}

/// Writes published marks on a thread of its own, at most once per
/// [`MARK_INTERVAL`], the latest one first (older unwritten ones are
/// skipped); on drop, writes the last one at once and stops.
#[derive(Debug)]
pub struct MarkWriter {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl MarkWriter {
    /// Starts the writer for `data_dir`; `writes` counts the writes,
    /// `failures` those that failed (each is also logged).
    pub fn start(
        data_dir: &Path,
        writes: Counter,
        failures: Counter,
    ) -> std::io::Result<MarkWriter> {
        let slot: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let dir = data_dir.to_owned();
        let theirs = slot.clone();
        let thread = std::thread::Builder::new()
            .name("stele-mark".into())
            .spawn(move || write_marks(&dir, &theirs, &writes, &failures))?;
        Ok(MarkWriter {
            slot,
            thread: Some(thread),
        })
    }

    /// Asks for `mark` to be written; call only once the database has
    /// synced everything it names.
    pub fn publish(&self, mark: Mark) {
        let (lock, wake) = &*self.slot;
        lock.lock().unwrap_or_else(PoisonError::into_inner).next = Some(mark);
        wake.notify_one();
    }
}

fn write_marks(dir: &Path, slot: &(Mutex<Slot>, Condvar), writes: &Counter, failures: &Counter) {
    let (lock, wake) = slot;
    let mut last: Option<Mark> = None;
    let mut last_write: Option<Instant> = None;
    let mut failing = false;
    loop {
        let (mark, stop) = {
            let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if s.stop {
                    break;
                }
                if s.next.is_some() {
                    let since = last_write.map_or(MARK_INTERVAL, |t| t.elapsed());
                    let Some(left) = MARK_INTERVAL.checked_sub(since).filter(|d| !d.is_zero())
                    else {
                        break;
                    };
                    s = wake
                        .wait_timeout(s, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                s = wake.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            (s.next.take(), s.stop)
        };
        if let Some(mark) = mark.filter(|m| Some(*m) != last) {
            last_write = Some(Instant::now());
            let written = mark.write(dir);
            writes.inc();
            match written {
                Ok(()) => {
                    if failing {
                        tracing::info!("the high-water mark is written again");
                        failing = false;
                    }
                    last = Some(mark);
                }
                Err(e) => {
                    failures.inc();
                    // Once per run of failures (a full disk fails every
                    // write); the counter has them all.
                    if !failing {
                        tracing::error!(error = %e, "cannot write the high-water mark; a later loss of synced data may go unseen");
                        failing = true;
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}

impl Drop for MarkWriter {
    fn drop(&mut self) {
        let (lock, wake) = &*self.slot;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panicked writer has nothing left to write.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: Mark = Mark {
        height: 460,
        wal_next: 1_234,
        view: 7,
    };

    #[test]
    fn a_mark_reads_back_and_any_damage_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Mark::read(dir.path()).expect("no mark yet"), None);
        MARK.write(dir.path()).expect("write");
        assert_eq!(Mark::read(dir.path()).expect("read"), Some(MARK));
        let path = dir.path().join(MARK_FILE);
        let good = std::fs::read(&path).expect("bytes");
        for (at, len) in [
            (20, MARK_BYTES),
            (0, MARK_BYTES),
            (MARK_BYTES - 1, MARK_BYTES),
        ] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            bad.truncate(len);
            std::fs::write(&path, &bad).expect("damage");
            assert!(matches!(
                Mark::read(dir.path()),
                Err(MarkError::Corrupt { .. })
            ));
        }
        std::fs::write(&path, &good[..MARK_BYTES - 1]).expect("cut");
        assert!(matches!(
            Mark::read(dir.path()),
            Err(MarkError::Corrupt {
                reason: "wrong length",
                ..
            })
        ));
    }

    #[test]
    fn a_database_lower_than_the_mark_in_height_or_log_is_a_loss() {
        assert_eq!(MARK.check(460, 1_234), None);
        assert_eq!(MARK.check(500, 2_000), None);
        let loss = MARK.check(0, 1_234).expect("height lost");
        assert_eq!(loss.view(), Some(7));
        assert!(loss.to_string().contains("460 block(s)"), "{loss}");
        assert!(MARK.check(460, 1_233).is_some(), "one record lost");
    }

    #[test]
    fn the_writer_writes_at_most_once_per_interval_and_keeps_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writes = Counter::default();
        let writer =
            MarkWriter::start(dir.path(), writes.clone(), Counter::default()).expect("start");
        let started = Instant::now();
        let mut height = 0;
        while started.elapsed() < 6 * MARK_INTERVAL {
            writer.publish(Mark { height, ..MARK });
            height += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        let written = writes.get();
        let spent = started.elapsed();
        let allowed = (spent.as_millis() / MARK_INTERVAL.as_millis()) as u64 + 1;
        assert!(
            (1..=allowed).contains(&written),
            "{written} writes in {spent:?} for {height} marks"
        );
        // Without another publish, the last mark still reaches the disk.
        let last = Mark {
            height: height - 1,
            ..MARK
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Mark::read(dir.path()).expect("read") != Some(last) {
            assert!(Instant::now() < deadline, "the last mark was not written");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_writer_leaves_the_last_published_mark_on_disk_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer =
            MarkWriter::start(dir.path(), Counter::default(), Counter::default()).expect("start");
        for height in 0..100 {
            writer.publish(Mark { height, ..MARK });
        }
        drop(writer);
        assert_eq!(
            Mark::read(dir.path()).expect("read"),
            Some(Mark { height: 99, ..MARK })
        );
    }
}
