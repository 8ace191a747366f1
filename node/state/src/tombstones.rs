//! Keeping deleted keys out of iteration's way.
//!
//! Deleting a key from the flat index leaves a RocksDB tombstone that every
//! iterator passing that spot steps over until a compaction drops it. How
//! many remain depends on RocksDB's compactions, not on the chain, so the
//! walk cannot be priced in gas; it has to stay short instead. The state
//! counts the flat-index deletes of each namespace (a contract's storage,
//! the accounts, ...) since that namespace's range was last compacted, and
//! once one reaches [`crate::StateConfig::flat_deletes_compact`] it compacts
//! the span of those deletes in a background thread. That flushes the
//! memtable and rewrites the overlapping files down to the last level,
//! where the tombstones are dropped (a committed view taken before keeps
//! its own, until it is released). The counts live in memory: deletes made
//! before a restart are left to RocksDB's own compactions.
//!
//! Within one execution the walks are also remembered (the VM's world keeps
//! the gaps it has walked, see `stele-exec`'s `world`), so a block
//! steps over each remaining tombstone about once, however often its
//! transactions iterate there.

use std::collections::BTreeMap;

#[cfg(feature = "rocksdb")]
use rocksdb::{BottommostLevelCompaction, CompactOptions, DB};
use stele_types::codec::Encode;
use stele_types::proof::StateKey;

/// The deleted raw keys of each namespace: the smallest, the largest and how
/// many, keyed by the namespace's encoding.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tombstones {
    by_namespace: BTreeMap<Vec<u8>, Span>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    first: Vec<u8>,
    last: Vec<u8>,
    count: u64,
}

/// A flat-index key range to compact, both ends included.
#[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
pub(crate) type Range = (Vec<u8>, Vec<u8>);

impl Tombstones {
    /// Counts the delete of `key`.
    pub(crate) fn record(&mut self, key: &StateKey) {
        let ns = key.namespace.to_bytes();
        let raw = key.key.as_slice();
        match self.by_namespace.get_mut(&ns) {
            Some(span) => {
                if raw < span.first.as_slice() {
                    span.first = raw.to_vec();
                }
                if raw > span.last.as_slice() {
                    span.last = raw.to_vec();
                }
                span.count += 1;
            }
            None => {
                self.by_namespace.insert(
                    ns,
                    Span {
                        first: raw.to_vec(),
                        last: raw.to_vec(),
                        count: 1,
                    },
                );
            }
        }
    }

    /// Adds another set of deletes (a commit's) to these.
    pub(crate) fn merge(&mut self, other: Tombstones) {
        for (ns, span) in other.by_namespace {
            match self.by_namespace.get_mut(&ns) {
                Some(mine) => {
                    if span.first < mine.first {
                        mine.first = span.first;
                    }
                    if span.last > mine.last {
                        mine.last = span.last;
                    }
                    mine.count = mine.count.saturating_add(span.count);
                }
                None => {
                    self.by_namespace.insert(ns, span);
                }
            }
        }
    }

    /// Removes and returns the flat-index ranges of the namespaces with at
    /// least `threshold` deletes.
    #[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
    pub(crate) fn take_due(&mut self, threshold: u64) -> Vec<Range> {
        let due: Vec<Vec<u8>> = self
            .by_namespace
            .iter()
            .filter(|(_, span)| span.count >= threshold)
            .map(|(ns, _)| ns.clone())
            .collect();
        due.into_iter()
            .filter_map(|ns| {
                let span = self.by_namespace.remove(&ns)?;
                let mut first = ns.clone();
                first.extend_from_slice(&span.first);
                let mut last = ns;
                last.extend_from_slice(&span.last);
                Some((first, last))
            })
            .collect()
    }
}

/// Compacts each range of the flat index (column family `flat_cf`) down to
/// the last level, so the tombstones in it are dropped. Runs on a
/// background thread; a failure only leaves the tombstones for RocksDB's
/// own compactions.
#[cfg(feature = "rocksdb")]
pub(crate) fn compact(db: &DB, flat_cf: &str, ranges: &[Range]) {
    let Some(cf) = db.cf_handle(flat_cf) else {
        return;
    };
    let mut opts = CompactOptions::default();
    // Other manual compactions (pruning's, an operator's) may run too.
    opts.set_exclusive_manual_compaction(false);
    // Rewrite the last level's files too: a file moved down whole (as a
    // small database's only file is) keeps its tombstones otherwise.
    opts.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
    for (first, last) in ranges {
        // The end bound is exclusive: compact up to the key just after
        // `last`.
        let mut end = last.clone();
        end.push(0);
        db.compact_range_cf_opt(cf, Some(first), Some(&end), &opts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_types::Address;

    fn key(contract: u8, raw: &[u8]) -> StateKey {
        StateKey::storage(&Address([contract; 20]), raw)
    }

    #[test]
    fn spans_grow_and_only_due_namespaces_are_taken() {
        let mut t = Tombstones::default();
        for raw in [b"m".as_slice(), b"c", b"x"] {
            t.record(&key(1, raw));
        }
        let mut other = Tombstones::default();
        other.record(&key(1, b"a"));
        other.record(&key(2, b"q"));
        t.merge(other);
        assert_eq!(t.take_due(5), Vec::<Range>::new());
        let due = t.take_due(4);
        let ns = key(1, b"").namespace.to_bytes();
        let (mut first, mut last) = (ns.clone(), ns);
        first.extend_from_slice(b"a");
        last.extend_from_slice(b"x");
        assert_eq!(due, vec![(first, last)]);
        // Taken spans start again from zero; the other namespace stays.
        assert_eq!(t.take_due(1).len(), 1);
        assert!(t.take_due(1).is_empty());
    }
}
