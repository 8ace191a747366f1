//! Deleting the index rows below a height, for block pruning (issue 28:
//! when blocks below a height are deleted, their index rows go too).
//!
//! First the coverage is raised to the height (under the state's write
//! lock, so no commit's coverage update interleaves), so that from then on
//! no reader uses a row below it; then the rows are deleted with range
//! deletes, one chunk of heights at a time, each chunk its own batch and
//! its own short read lock. A crash in between leaves rows below the
//! coverage, which nothing reads and the next call deletes.

use std::collections::BTreeSet;
use std::sync::RwLock;

use stele_state::rocksdb::WriteBatch;
use stele_state::{State, StateError};

use super::keys::*;
use crate::store::StoreError;

/// Rows read per chunk before its range deletes are written.
const PRUNE_CHUNK_ROWS: usize = 4096;

/// What [`prune_below`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneStats {
    /// Events whose rows were deleted.
    pub events: u64,
    /// Storage-history rows deleted.
    pub storage_writes: u64,
}

/// Deletes every index row of the blocks below `height` and raises both
/// coverages to start at `height` at the lowest. Bounded memory (a chunk's
/// distinct prefixes); the state's lock is held only to raise the coverage
/// and for one chunk's reads at a time.
pub fn prune_below(state: &RwLock<State>, height: u64) -> Result<PruneStats, StoreError> {
    prune_below_chunked(state, height, PRUNE_CHUNK_ROWS)
}

/// [`prune_below`] with chunks of `chunk_rows` rows.
pub(super) fn prune_below_chunked(
    state: &RwLock<State>,
    height: u64,
    chunk_rows: usize,
) -> Result<PruneStats, StoreError> {
    {
        let state = state.write().map_err(|_| poisoned())?;
        let mut batch = WriteBatch::default();
        for kind in [IndexKind::Events, IndexKind::StorageHistory] {
            match read_coverage(&state, kind)? {
                Some(c) if c.from < height && height <= c.last => {
                    put_coverage(&state, &mut batch, kind, Coverage { from: height, ..c })?
                }
                Some(c) if c.last < height => {
                    batch.delete_cf(state.column_family(CF_INDEX_META)?, kind.meta_key())
                }
                _ => {}
            }
        }
        state.db()?.write(batch).map_err(StateError::from)?;
    }
    let mut stats = PruneStats::default();
    loop {
        let (events, done) = prune_chunk(state, height, Chunk::Events, chunk_rows)?;
        stats.events += events;
        if done {
            break;
        }
    }
    loop {
        let (writes, done) = prune_chunk(state, height, Chunk::StorageWrites, chunk_rows)?;
        stats.storage_writes += writes;
        if done {
            break;
        }
    }
    Ok(stats)
}

fn poisoned() -> StoreError {
    StoreError::State(StateError::CorruptMeta {
        what: "state lock",
        reason: "a thread panicked while committing",
    })
}

#[derive(Clone, Copy)]
enum Chunk {
    Events,
    StorageWrites,
}

/// Deletes the rows of the lowest heights below `height`, about
/// [`PRUNE_CHUNK_ROWS`] of them (whole heights); how many, and whether
/// none below `height` remain.
fn prune_chunk(
    state: &RwLock<State>,
    height: u64,
    chunk: Chunk,
    chunk_rows: usize,
) -> Result<(u64, bool), StoreError> {
    let state = state.read().map_err(|_| poisoned())?;
    let list_cf = match chunk {
        Chunk::Events => CF_EVENT_LOGS,
        Chunk::StorageWrites => CF_STORAGE_WRITES,
    };
    let list = state.column_family(list_cf)?;
    let mut opts = stele_state::rocksdb::ReadOptions::default();
    opts.set_iterate_upper_bound(height.to_be_bytes().to_vec());
    let mut iter = state.db()?.raw_iterator_cf_opt(list, opts);
    iter.seek_to_first();
    let mut prefixes: BTreeSet<(u8, Vec<u8>)> = BTreeSet::new();
    let mut rows = 0u64;
    let mut end = height;
    let mut last_height = None;
    while let Some(key) = iter.key() {
        let row_height = key
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or(StoreError::CorruptIndexRow { len: key.len() })?;
        if rows as usize >= chunk_rows && last_height != Some(row_height) {
            // Stop at a height boundary: every row below `end` is seen.
            end = row_height;
            break;
        }
        last_height = Some(row_height);
        rows += 1;
        match chunk {
            Chunk::Events => {
                let value = iter.value().unwrap_or_default();
                // block hash (32), tx hash (32), then the event: contract
                // (20) and its topics (a 4-byte count, then 32 each).
                let event = value
                    .get(64..)
                    .ok_or(StoreError::CorruptIndexRow { len: value.len() })?;
                let decoded: stele_types::Event =
                    stele_types::decode(event, &stele_types::Limits::DEFAULT)
                        .map_err(|_| StoreError::CorruptIndexRow { len: value.len() })?;
                prefixes.insert((0, contract_prefix(&decoded.contract)));
                for (slot, topic) in decoded.topics.iter().take(TOPIC_POSITIONS_MAX).enumerate() {
                    prefixes.insert((1, topic_prefix(slot, topic)));
                }
            }
            Chunk::StorageWrites => {
                let prefix = key
                    .get(12..12 + HISTORY_PREFIX_BYTES)
                    .ok_or(StoreError::CorruptIndexRow { len: key.len() })?;
                prefixes.insert((2, prefix.to_vec()));
            }
        }
        iter.next();
    }
    iter.status().map_err(StateError::from)?;
    let done = end == height;
    if rows == 0 {
        return Ok((0, true));
    }
    let mut batch = WriteBatch::default();
    for (kind, prefix) in &prefixes {
        match kind {
            0 | 1 => {
                let cf = if *kind == 0 {
                    CF_EVENTS_BY_CONTRACT
                } else {
                    CF_EVENTS_BY_TOPIC
                };
                batch.delete_range_cf(
                    state.column_family(cf)?,
                    with_position(prefix, 0),
                    with_position(prefix, position(end, 0, 0)),
                );
            }
            _ => {
                // Newest first: heights below `end` are the keys from
                // `!(end - 1)` to the prefix's end.
                let mut from = prefix.clone();
                from.extend_from_slice(&history_suffix(end - 1, u32::MAX));
                batch.delete_range_cf(
                    state.column_family(CF_STORAGE_HISTORY)?,
                    from,
                    prefix_end(prefix),
                );
            }
        }
    }
    // Both lists' keys start with the height.
    batch.delete_range_cf(list, Vec::new(), end.to_be_bytes().to_vec());
    state.db()?.write(batch).map_err(StateError::from)?;
    Ok((rows, done))
}
