//! Ordered iteration by raw-key prefix through the flat index, which holds
//! the latest version's values under `namespace || raw key`. The tree is keyed
//! by hashes and cannot list keys in order; this index can.

use rocksdb::{Direction, IteratorMode};
use stele_types::codec::Encode;
use stele_types::proof::Namespace;

use crate::error::StateError;
use crate::store::{CF_FLAT, State};

/// One page of an ordered listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Raw keys (without the namespace) and values, in raw-key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Pass as `start_after` to get the next page; `None` when done.
    pub next: Option<Vec<u8>>,
}

impl State {
    /// Lists up to `limit` keys of `namespace` at the latest version that
    /// start with `prefix` and sort after `start_after`.
    pub fn iter_prefix(
        &self,
        namespace: &Namespace,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, StateError> {
        if limit > self.config.iter_limit_max {
            return Err(StateError::IterLimitTooLarge {
                limit,
                max: self.config.iter_limit_max,
            });
        }
        let ns = namespace.to_bytes();
        let mut full_prefix = ns.clone();
        full_prefix.extend_from_slice(prefix);
        let mut start = full_prefix.clone();
        if let Some(after) = start_after {
            // The smallest key above `after` is `after || 0x00`.
            let mut next = ns.clone();
            next.extend_from_slice(after);
            next.push(0);
            start = start.max(next);
        }
        let mut page = Page::default();
        if limit == 0 {
            return Ok(page);
        }
        let iter = self.db.iterator_cf(
            self.cf(CF_FLAT)?,
            IteratorMode::From(&start, Direction::Forward),
        );
        for entry in iter {
            let (key, value) = entry?;
            if !key.starts_with(&full_prefix) {
                break;
            }
            if page.entries.len() == limit {
                page.next = page.entries.last().map(|(k, _)| k.clone());
                break;
            }
            page.entries
                .push((key[ns.len()..].to_vec(), value.to_vec()));
        }
        Ok(page)
    }
}
