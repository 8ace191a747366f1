//! Ordered iteration by raw-key prefix through the flat index, which holds
//! the latest version's values under `namespace || raw key`. The tree is keyed
//! by hashes and cannot list keys in order; this index can.

use stele_types::codec::Encode;
use stele_types::proof::Namespace;

use crate::error::StateError;
use crate::kv::{Cf, Cursor};
use crate::store::State;

/// One page of an ordered listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Raw keys (without the namespace) and values, in raw-key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Pass as `start_after` to get the next page; `None` when done.
    pub next: Option<Vec<u8>>,
}

/// A forward cursor over the keys of one namespace that start with a prefix,
/// in the flat index (at the latest version, or in a
/// [`crate::CommittedView`]): one seek, then one step per entry, each key
/// read in place (a value is copied only when asked for). Iteration stops at
/// the end of the prefix inside the store (RocksDB's
/// `iterate_upper_bound`), so entries and deletions past it are never
/// visited.
pub struct FlatCursor<'a> {
    iter: Cursor<'a>,
    ns_len: usize,
    full_prefix: Vec<u8>,
}

impl std::fmt::Debug for FlatCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatCursor").finish_non_exhaustive()
    }
}

/// Where a prefix's keys lie in the flat index.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    ns_len: usize,
    /// The namespace's encoding, then the prefix.
    full_prefix: Vec<u8>,
    /// The smallest key above them all, if any.
    pub(crate) end: Option<Vec<u8>>,
}

/// The bounds of the keys of namespace `ns` (encoded) starting with `prefix`.
pub(crate) fn prefix_bounds(ns: &[u8], prefix: &[u8]) -> Bounds {
    let mut full_prefix = ns.to_vec();
    full_prefix.extend_from_slice(prefix);
    Bounds {
        ns_len: ns.len(),
        end: prefix_end(&full_prefix),
        full_prefix,
    }
}

impl<'a> FlatCursor<'a> {
    /// Positions `iter` (made with `bounds.end` as its upper bound) at the
    /// first key within `bounds` above `after`.
    pub(crate) fn start(
        mut iter: Cursor<'a>,
        bounds: Bounds,
        after: Option<&[u8]>,
    ) -> Result<FlatCursor<'a>, StateError> {
        let ns = &bounds.full_prefix[..bounds.ns_len];
        iter.seek(&start_key(ns, &bounds.full_prefix, after));
        iter.status()?;
        Ok(FlatCursor {
            iter,
            ns_len: bounds.ns_len,
            full_prefix: bounds.full_prefix,
        })
    }

    /// The raw key (without the namespace) at the cursor; `None` past the
    /// last key with the prefix.
    pub fn key(&self) -> Result<Option<&[u8]>, StateError> {
        match self.iter.key() {
            Some(k) if k.starts_with(&self.full_prefix) => Ok(Some(&k[self.ns_len..])),
            _ => {
                self.iter.status()?;
                Ok(None)
            }
        }
    }

    /// The value at the cursor (with [`FlatCursor::key`] not `None`).
    pub fn value(&self) -> Option<&[u8]> {
        self.iter.value()
    }

    /// Moves to the next key.
    pub fn advance(&mut self) {
        self.iter.next();
    }

    /// Moves to the first key at or above `raw` (a raw key without the
    /// namespace); never backwards past the prefix's start.
    pub fn seek(&mut self, raw: &[u8]) -> Result<(), StateError> {
        let mut key = self.full_prefix[..self.ns_len].to_vec();
        key.extend_from_slice(raw);
        self.iter.seek(&key.max(self.full_prefix.clone()));
        self.iter.status()?;
        Ok(())
    }
}

/// Refuses a page size over the configured most.
pub(crate) fn check_page_limit(limit: usize, max: usize) -> Result<(), StateError> {
    if limit > max {
        return Err(StateError::IterLimitTooLarge { limit, max });
    }
    Ok(())
}

/// Up to `limit` entries from `cursor`, and where the next page starts.
pub(crate) fn list_page(mut cursor: FlatCursor<'_>, limit: usize) -> Result<Page, StateError> {
    let mut page = Page::default();
    if limit == 0 {
        return Ok(page);
    }
    while let Some(key) = cursor.key()? {
        if page.entries.len() == limit {
            page.next = page.entries.last().map(|(k, _)| k.clone());
            break;
        }
        let key = key.to_vec();
        let value = cursor.value().unwrap_or_default().to_vec();
        page.entries.push((key, value));
        cursor.advance();
    }
    Ok(page)
}

/// The smallest key above every key that starts with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The first flat-index key of `ns` with `full_prefix` above `after`.
fn start_key(ns: &[u8], full_prefix: &[u8], after: Option<&[u8]>) -> Vec<u8> {
    let mut start = full_prefix.to_vec();
    if let Some(after) = after {
        // The smallest key above `after` is `after || 0x00`.
        let mut next = ns.to_vec();
        next.extend_from_slice(after);
        next.push(0);
        start = start.max(next);
    }
    start
}

impl State {
    /// A cursor over the keys of `namespace` at the latest version that
    /// start with `prefix`, positioned at the first one above `after`.
    pub fn flat_cursor(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<FlatCursor<'_>, StateError> {
        self.store.check_iteration(namespace)?;
        let bounds = prefix_bounds(&namespace.to_bytes(), prefix);
        let iter = self
            .store
            .reader()?
            .cursor(Cf::Flat, None, bounds.end.clone());
        FlatCursor::start(iter, bounds, after)
    }

    /// Lists up to `limit` keys of `namespace` at the latest version that
    /// start with `prefix` and sort after `start_after`.
    pub fn iter_prefix(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, StateError> {
        check_page_limit(limit, self.config.iter_limit_max)?;
        let cursor = self.flat_cursor(namespace, prefix, start_after)?;
        list_page(cursor, limit)
    }
}
