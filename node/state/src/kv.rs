//! The key-value stores under the state (ADR 0013): RocksDB on disk, built
//! with the `rocksdb` feature, and ordered maps in memory, always built.
//! Both hold the state's five column families and answer the same point
//! reads, atomic batches and bounded ordered iteration. The tree, the
//! proofs and the iteration order above them are the same whichever store
//! holds the bytes, so the roots are too (`tests/backends.rs` checks it).
//!
//! The memory store's tables are shared copy-on-write: a committed view
//! holds an `Arc` of the tables it read, and a write copies them only while
//! such a view is alive. Writes take `&mut`, so no lock is needed.
//!
//! A memory store may also sit over a remote chain ([`RemoteReads`], the
//! testkit's fork): a flat-index read of a key this store never wrote nor
//! deleted asks the remote, and iteration asks the remote whether it may
//! run on what is held here alone.

use std::collections::btree_map;
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::Arc;

#[cfg(feature = "rocksdb")]
use rocksdb::{ColumnFamily, DB, DBRawIterator, ReadOptions, SnapshotWithThreadMode, WriteBatch};

use stele_types::proof::{Namespace, StateKey};

use crate::error::StateError;
use crate::store::{CF_FLAT, CF_META, CF_NODES, CF_ROOTS, CF_STALE, state_key_of_flat};

/// Where a state in memory reads what it does not hold: the chain it forks
/// ([`crate::State::in_memory_over`]). The values are the remote's at one
/// height, so an implementation may cache them.
pub trait RemoteReads: Send + Sync + std::fmt::Debug {
    /// The value of `key` on the remote chain, `None` when absent there.
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String>;

    /// Whether `namespace` may be iterated over the keys held locally
    /// alone; an error refuses the iteration (the remote may hold keys
    /// there that cannot be listed verifiably).
    fn iterate(&self, namespace: &Namespace) -> Result<(), String>;
}

/// One of the state's own column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cf {
    Nodes,
    Stale,
    Roots,
    Flat,
    Meta,
}

impl Cf {
    pub(crate) const ALL: [Cf; 5] = [Cf::Nodes, Cf::Stale, Cf::Roots, Cf::Flat, Cf::Meta];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Cf::Nodes => CF_NODES,
            Cf::Stale => CF_STALE,
            Cf::Roots => CF_ROOTS,
            Cf::Flat => CF_FLAT,
            Cf::Meta => CF_META,
        }
    }

    fn by_name(name: &str) -> Option<Cf> {
        Cf::ALL.into_iter().find(|cf| cf.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// The memory store: one ordered map per column family, and the remote
/// chain it may sit over.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tables {
    tables: [Table; 5],
    remote: Option<Remote>,
}

/// A remote chain under a memory store, and the flat-index keys written or
/// deleted here, which the remote is never asked for.
#[derive(Debug, Clone)]
struct Remote {
    reads: Arc<dyn RemoteReads>,
    local: BTreeSet<Vec<u8>>,
}

impl Tables {
    fn table(&self, cf: Cf) -> &Table {
        &self.tables[cf.index()]
    }

    /// The flat-index value under `flat_key`: held here, or else the
    /// remote's.
    fn get_flat(&self, flat_key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.table(Cf::Flat).get(flat_key) {
            return Ok(Some(value.clone()));
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        if remote.local.contains(flat_key) {
            return Ok(None);
        }
        let key = state_key_of_flat(flat_key).ok_or(StateError::CorruptMeta {
            what: "flat-index key",
            reason: "not a state key",
        })?;
        remote
            .reads
            .get(&key)
            .map_err(|reason| StateError::Remote { reason })
    }

    /// Whether `namespace` may be iterated (see [`RemoteReads::iterate`]).
    fn check_iteration(&self, namespace: &Namespace) -> Result<(), StateError> {
        match &self.remote {
            Some(remote) => remote
                .reads
                .iterate(namespace)
                .map_err(|reason| StateError::Remote { reason }),
            None => Ok(()),
        }
    }

    fn apply(&mut self, ops: Vec<Op>) {
        for op in ops {
            if let (Some(remote), Op::Put(Cf::Flat, key, _) | Op::Delete(Cf::Flat, key)) =
                (&mut self.remote, &op)
            {
                remote.local.insert(key.clone());
            }
            match op {
                Op::Put(cf, key, value) => {
                    self.tables[cf.index()].insert(key, value);
                }
                Op::Delete(cf, key) => {
                    self.tables[cf.index()].remove(&key);
                }
                Op::DeleteRange(cf, from, to) => {
                    let table = &mut self.tables[cf.index()];
                    // `split_off` keeps the keys at or above `from` in
                    // `tail`; of those, the ones at or above `to` go back.
                    let mut tail = table.split_off(&from);
                    let mut kept = tail.split_off(&to);
                    table.append(&mut kept);
                    drop(tail);
                }
            }
        }
    }
}

/// Where the state's bytes live.
#[derive(Debug)]
pub(crate) enum Store {
    /// On disk; the `Arc` is shared with committed views and the background
    /// compaction.
    #[cfg(feature = "rocksdb")]
    Rocks(Arc<DB>),
    Memory(Arc<Tables>),
}

/// A memory store's write.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    /// Keys from the first (included) to the second (excluded).
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// Writes being gathered for one atomic write, with the column families
/// resolved once.
pub(crate) enum Batch<'a> {
    #[cfg(feature = "rocksdb")]
    Rocks {
        batch: WriteBatch,
        cfs: [&'a ColumnFamily; 5],
    },
    Memory(Vec<Op>, PhantomData<&'a ()>),
}

/// A finished batch, kept until it is written (a prepared commit's).
pub(crate) enum Pending {
    #[cfg(feature = "rocksdb")]
    Rocks(WriteBatch),
    Memory(Vec<Op>),
}

impl Pending {
    /// How many writes it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            #[cfg(feature = "rocksdb")]
            Pending::Rocks(batch) => batch.len(),
            Pending::Memory(ops) => ops.len(),
        }
    }
}

impl Batch<'_> {
    pub(crate) fn put(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        match self {
            #[cfg(feature = "rocksdb")]
            Batch::Rocks { batch, cfs } => batch.put_cf(cfs[cf.index()], key, value),
            Batch::Memory(ops, _) => ops.push(Op::Put(cf, key.to_vec(), value.to_vec())),
        }
    }

    pub(crate) fn delete(&mut self, cf: Cf, key: &[u8]) {
        match self {
            #[cfg(feature = "rocksdb")]
            Batch::Rocks { batch, cfs } => batch.delete_cf(cfs[cf.index()], key),
            Batch::Memory(ops, _) => ops.push(Op::Delete(cf, key.to_vec())),
        }
    }

    /// Deletes the keys from `from` (included) to `to` (excluded).
    pub(crate) fn delete_range(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        match self {
            #[cfg(feature = "rocksdb")]
            Batch::Rocks { batch, cfs } => batch.delete_range_cf(cfs[cf.index()], from, to),
            Batch::Memory(ops, _) => ops.push(Op::DeleteRange(cf, from.to_vec(), to.to_vec())),
        }
    }

    pub(crate) fn finish(self) -> Pending {
        match self {
            #[cfg(feature = "rocksdb")]
            Batch::Rocks { batch, .. } => Pending::Rocks(batch),
            Batch::Memory(ops, _) => Pending::Memory(ops),
        }
    }
}

/// Reads of the latest data, with the column families resolved once.
#[derive(Clone, Copy)]
pub(crate) enum Reader<'a> {
    #[cfg(feature = "rocksdb")]
    Rocks {
        db: &'a DB,
        cfs: [&'a ColumnFamily; 5],
    },
    Memory(&'a Tables),
}

#[cfg(feature = "rocksdb")]
fn handles(db: &DB) -> Result<[&ColumnFamily; 5], StateError> {
    let mut out = Vec::with_capacity(5);
    for cf in Cf::ALL {
        out.push(
            db.cf_handle(cf.name())
                .ok_or_else(|| StateError::MissingColumnFamily {
                    name: cf.name().to_owned(),
                })?,
        );
    }
    // Five names in, five handles out.
    out.try_into().map_err(|_| StateError::MissingColumnFamily {
        name: "state".to_owned(),
    })
}

impl Store {
    pub(crate) fn memory() -> Store {
        Store::Memory(Arc::default())
    }

    pub(crate) fn memory_over(remote: Arc<dyn RemoteReads>) -> Store {
        Store::Memory(Arc::new(Tables {
            tables: Default::default(),
            remote: Some(Remote {
                reads: remote,
                local: BTreeSet::new(),
            }),
        }))
    }

    /// Whether `namespace` may be iterated: always on disk.
    pub(crate) fn check_iteration(&self, namespace: &Namespace) -> Result<(), StateError> {
        match self {
            #[cfg(feature = "rocksdb")]
            Store::Rocks(_) => {
                let _ = namespace;
                Ok(())
            }
            Store::Memory(tables) => tables.check_iteration(namespace),
        }
    }

    pub(crate) fn reader(&self) -> Result<Reader<'_>, StateError> {
        Ok(match self {
            #[cfg(feature = "rocksdb")]
            Store::Rocks(db) => Reader::Rocks {
                db,
                cfs: handles(db)?,
            },
            Store::Memory(tables) => Reader::Memory(tables),
        })
    }

    pub(crate) fn batch(&self) -> Result<Batch<'_>, StateError> {
        Ok(match self {
            #[cfg(feature = "rocksdb")]
            Store::Rocks(db) => Batch::Rocks {
                batch: WriteBatch::default(),
                cfs: handles(db)?,
            },
            Store::Memory(_) => Batch::Memory(Vec::new(), PhantomData),
        })
    }

    /// Writes `pending` atomically; `sync` waits for the disk.
    pub(crate) fn write(&mut self, pending: Pending, sync: bool) -> Result<(), StateError> {
        match (self, pending) {
            #[cfg(feature = "rocksdb")]
            (Store::Rocks(db), Pending::Rocks(batch)) => {
                let mut opts = rocksdb::WriteOptions::default();
                opts.set_sync(sync);
                db.write_opt(batch, &opts)?;
                Ok(())
            }
            (Store::Memory(tables), Pending::Memory(ops)) => {
                let _ = sync;
                Arc::make_mut(tables).apply(ops);
                Ok(())
            }
            #[cfg(feature = "rocksdb")]
            _ => Err(StateError::ForeignBatch),
        }
    }

    /// The data as it is now, unchanged by later writes.
    pub(crate) fn snapshot(&self) -> Snap {
        match self {
            #[cfg(feature = "rocksdb")]
            Store::Rocks(db) => {
                let db = Arc::clone(db);
                let snapshot = db.snapshot();
                // SAFETY: the snapshot borrows the database, which lives in
                // the `Arc` heap allocation `db` points to. `Snap::Rocks`
                // holds that `Arc`, so the database neither moves nor closes
                // while the snapshot exists, and the snapshot field is
                // dropped before the `Arc` field. The 'static lifetime never
                // escapes: every borrow a view hands out (cursors, reads) is
                // tied to `&self`.
                #[allow(unsafe_code)]
                let snapshot = unsafe {
                    std::mem::transmute::<
                        SnapshotWithThreadMode<'_, DB>,
                        SnapshotWithThreadMode<'static, DB>,
                    >(snapshot)
                };
                Snap::Rocks { snapshot, db }
            }
            Store::Memory(tables) => Snap::Memory(Arc::clone(tables)),
        }
    }
}

impl<'a> Reader<'a> {
    /// `f` of the value of `key` in `cf`, read in place.
    pub(crate) fn get_with<T>(
        &self,
        cf: Cf,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StateError> {
        match self {
            #[cfg(feature = "rocksdb")]
            Reader::Rocks { db, cfs } => Ok(db.get_pinned_cf(cfs[cf.index()], key)?.map(|v| f(&v))),
            Reader::Memory(tables) => Ok(tables.table(cf).get(key).map(|v| f(v))),
        }
    }

    /// An unpositioned cursor over `cf`'s keys in `[lower, upper)`.
    pub(crate) fn cursor(
        &self,
        cf: Cf,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Cursor<'a> {
        match *self {
            #[cfg(feature = "rocksdb")]
            Reader::Rocks { db, cfs } => {
                Cursor::Rocks(db.raw_iterator_cf_opt(cfs[cf.index()], read_options(lower, upper)))
            }
            Reader::Memory(tables) => {
                Cursor::Memory(MemCursor::new(tables.table(cf), lower, upper))
            }
        }
    }
}

#[cfg(feature = "rocksdb")]
fn read_options(lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> ReadOptions {
    let mut opts = ReadOptions::default();
    if let Some(lower) = lower {
        opts.set_iterate_lower_bound(lower);
    }
    if let Some(upper) = upper {
        opts.set_iterate_upper_bound(upper);
    }
    opts
}

/// A snapshot of the whole store; see [`Store::snapshot`].
pub(crate) enum Snap {
    #[cfg(feature = "rocksdb")]
    Rocks {
        // Declared before `db`: fields drop in order, and the snapshot must
        // be released while the database is open.
        snapshot: SnapshotWithThreadMode<'static, DB>,
        db: Arc<DB>,
    },
    Memory(Arc<Tables>),
}

impl Snap {
    /// The value of `key` in the column family named `cf`: one of the
    /// state's, or on disk one a caller opened with the state.
    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let missing = || StateError::MissingColumnFamily {
            name: cf.to_owned(),
        };
        match self {
            #[cfg(feature = "rocksdb")]
            Snap::Rocks { snapshot, db } => {
                let handle = db.cf_handle(cf).ok_or_else(missing)?;
                Ok(snapshot.get_cf(handle, key)?)
            }
            Snap::Memory(tables) => match Cf::by_name(cf).ok_or_else(missing)? {
                Cf::Flat => tables.get_flat(key),
                cf => Ok(tables.table(cf).get(key).cloned()),
            },
        }
    }

    /// An unpositioned cursor over `cf`'s keys in `[lower, upper)`.
    pub(crate) fn cursor(
        &self,
        cf: Cf,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Result<Cursor<'_>, StateError> {
        match self {
            #[cfg(feature = "rocksdb")]
            Snap::Rocks { snapshot, db } => {
                let handle =
                    db.cf_handle(cf.name())
                        .ok_or_else(|| StateError::MissingColumnFamily {
                            name: cf.name().to_owned(),
                        })?;
                Ok(Cursor::Rocks(
                    snapshot.raw_iterator_cf_opt(handle, read_options(lower, upper)),
                ))
            }
            Snap::Memory(tables) => Ok(Cursor::Memory(MemCursor::new(
                tables.table(cf),
                lower,
                upper,
            ))),
        }
    }

    /// Whether `namespace` may be iterated: always on disk.
    pub(crate) fn check_iteration(&self, namespace: &Namespace) -> Result<(), StateError> {
        match self {
            #[cfg(feature = "rocksdb")]
            Snap::Rocks { .. } => {
                let _ = namespace;
                Ok(())
            }
            Snap::Memory(tables) => tables.check_iteration(namespace),
        }
    }

    /// A raw RocksDB iterator over the column family named `cf` (one the
    /// caller opened with the state), over `[lower, upper)`, unpositioned.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn raw_iterator(
        &self,
        cf: &str,
        lower: Vec<u8>,
        upper: Vec<u8>,
    ) -> Result<DBRawIterator<'_>, StateError> {
        match self {
            Snap::Rocks { snapshot, db } => {
                let handle = db
                    .cf_handle(cf)
                    .ok_or_else(|| StateError::MissingColumnFamily {
                        name: cf.to_owned(),
                    })?;
                Ok(snapshot.raw_iterator_cf_opt(handle, read_options(Some(lower), Some(upper))))
            }
            Snap::Memory(_) => Err(StateError::InMemory {
                what: "column families of its own caller",
            }),
        }
    }
}

/// A forward cursor over one column family's keys within bounds: seek,
/// then step. Like RocksDB's raw iterator, it reports read errors through
/// [`Cursor::status`].
pub(crate) enum Cursor<'a> {
    #[cfg(feature = "rocksdb")]
    Rocks(DBRawIterator<'a>),
    Memory(MemCursor<'a>),
}

impl Cursor<'_> {
    /// Moves to the first key at or above `key` (and the lower bound).
    pub(crate) fn seek(&mut self, key: &[u8]) {
        match self {
            #[cfg(feature = "rocksdb")]
            Cursor::Rocks(iter) => iter.seek(key),
            Cursor::Memory(cursor) => cursor.seek(key),
        }
    }

    pub(crate) fn key(&self) -> Option<&[u8]> {
        match self {
            #[cfg(feature = "rocksdb")]
            Cursor::Rocks(iter) => iter.key(),
            Cursor::Memory(cursor) => cursor.current.map(|(k, _)| k.as_slice()),
        }
    }

    pub(crate) fn value(&self) -> Option<&[u8]> {
        match self {
            #[cfg(feature = "rocksdb")]
            Cursor::Rocks(iter) => iter.value(),
            Cursor::Memory(cursor) => cursor.current.map(|(_, v)| v.as_slice()),
        }
    }

    /// Moves to the next key, if at one.
    pub(crate) fn next(&mut self) {
        match self {
            #[cfg(feature = "rocksdb")]
            Cursor::Rocks(iter) => {
                if iter.valid() {
                    iter.next();
                }
            }
            Cursor::Memory(cursor) => cursor.next(),
        }
    }

    /// The read error that stopped the cursor, if any.
    pub(crate) fn status(&self) -> Result<(), StateError> {
        match self {
            #[cfg(feature = "rocksdb")]
            Cursor::Rocks(iter) => Ok(iter.status()?),
            Cursor::Memory(_) => Ok(()),
        }
    }
}

/// A cursor over one memory table.
pub(crate) struct MemCursor<'a> {
    table: &'a Table,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    range: Option<btree_map::Range<'a, Vec<u8>, Vec<u8>>>,
    current: Option<(&'a Vec<u8>, &'a Vec<u8>)>,
}

impl<'a> MemCursor<'a> {
    fn new(table: &'a Table, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> MemCursor<'a> {
        MemCursor {
            table,
            lower,
            upper,
            range: None,
            current: None,
        }
    }

    fn seek(&mut self, key: &[u8]) {
        let start = match &self.lower {
            Some(lower) if lower.as_slice() > key => lower.as_slice(),
            _ => key,
        };
        let end = match &self.upper {
            // `BTreeMap::range` panics on an empty or reversed range.
            Some(upper) if upper.as_slice() <= start => {
                self.range = None;
                self.current = None;
                return;
            }
            Some(upper) => Bound::Excluded(upper.as_slice()),
            None => Bound::Unbounded,
        };
        let mut range = self
            .table
            .range::<[u8], (Bound<&[u8]>, Bound<&[u8]>)>((Bound::Included(start), end));
        self.current = range.next();
        self.range = Some(range);
    }

    fn next(&mut self) {
        if self.current.is_some() {
            self.current = self.range.as_mut().and_then(Iterator::next);
        }
    }
}
