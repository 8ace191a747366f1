//! Committed views: the latest version as it was when the view was taken,
//! read without the state's lock and unchanged by later commits.
//!
//! A view pins a snapshot of the whole store (a RocksDB snapshot on disk,
//! the tables' `Arc` in memory), so its flat-index reads and iteration see
//! exactly the version current when it was taken, however many blocks
//! commit meanwhile. Executions and RPC reads hold one
//! for their duration; a commit never waits for them. A view keeps the
//! data it sees from compaction, so views are for the length of one
//! execution or request, not for keeping.

use stele_types::codec::Encode;
use stele_types::proof::{Namespace, StateKey};

use crate::error::StateError;
use crate::flat::{FlatCursor, Page, check_page_limit, list_page, prefix_bounds};
use crate::kv::{Cf, Snap};
use crate::store::{CF_FLAT, State, flat_key};

/// The latest committed version at one moment; see the module docs.
pub struct CommittedView {
    snap: Snap,
    version: u64,
    iter_limit_max: usize,
}

impl std::fmt::Debug for CommittedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedView")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl State {
    /// A view of the latest version, `None` before the first commit.
    pub fn view(&self) -> Option<CommittedView> {
        let version = self.latest?;
        Some(CommittedView {
            snap: self.store.snapshot(),
            version,
            iter_limit_max: self.config.iter_limit_max,
        })
    }
}

impl CommittedView {
    /// The version this view shows.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Most entries one [`CommittedView::iter_prefix`] page may ask for.
    pub fn iter_limit_max(&self) -> usize {
        self.iter_limit_max
    }

    /// The value of `key` at this version (from the flat index: one
    /// read, no tree walk).
    pub fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        self.snap.get(CF_FLAT, &flat_key(key))
    }

    /// The value of `key` in the column family `cf` (one opened with the
    /// state, e.g. the node's block store) as of this view's snapshot:
    /// data written to the same batch as this version, read without the
    /// state's lock.
    pub fn get_cf(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.snap.get(cf, key)
    }

    /// A raw iterator over the column family `cf` (one opened with the
    /// state) at this view's snapshot, over keys from `lower` (included)
    /// to `upper` (excluded), unpositioned: seek before reading. The
    /// bounds stop RocksDB itself, so nothing outside them is stepped over.
    /// An error for a state in memory.
    #[cfg(feature = "rocksdb")]
    pub fn raw_iterator_cf(
        &self,
        cf: &str,
        lower: Vec<u8>,
        upper: Vec<u8>,
    ) -> Result<rocksdb::DBRawIterator<'_>, StateError> {
        self.snap.raw_iterator(cf, lower, upper)
    }

    /// A cursor over the keys of `namespace` that start with `prefix`,
    /// positioned at the first one above `after` (see [`FlatCursor`]).
    pub fn flat_cursor(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<FlatCursor<'_>, StateError> {
        self.snap.check_iteration(namespace)?;
        let bounds = prefix_bounds(&namespace.to_bytes(), prefix);
        let iter = self.snap.cursor(Cf::Flat, None, bounds.end.clone())?;
        FlatCursor::start(iter, bounds, after)
    }

    /// A cursor over the keys of `namespace` from `from` (raw, included)
    /// up to `until` (excluded; `None`: the namespace's end). The store
    /// stops at `until` itself, so nothing past it is stepped over.
    pub fn flat_cursor_between(
        &self,
        namespace: &Namespace,
        from: &[u8],
        until: Option<&[u8]>,
    ) -> Result<FlatCursor<'_>, StateError> {
        self.snap.check_iteration(namespace)?;
        let ns = namespace.to_bytes();
        let mut bounds = prefix_bounds(&ns, &[]);
        if let Some(until) = until {
            let mut end = ns;
            end.extend_from_slice(until);
            bounds.end = Some(end);
        }
        let iter = self.snap.cursor(Cf::Flat, None, bounds.end.clone())?;
        let mut cursor = FlatCursor::start(iter, bounds, None)?;
        cursor.seek(from)?;
        Ok(cursor)
    }

    /// Lists up to `limit` keys of `namespace` that start with `prefix` and
    /// sort after `start_after`, like [`State::iter_prefix`].
    pub fn iter_prefix(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, StateError> {
        check_page_limit(limit, self.iter_limit_max)?;
        let cursor = self.flat_cursor(namespace, prefix, start_after)?;
        list_page(cursor, limit)
    }
}
