//! Deleted keys do not stay in the flat index's iteration path: once a
//! namespace's deletes reach the threshold the state compacts their range
//! and an iterator steps over no tombstone there.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel, set_perf_stats};
use stele_state::{Namespace, State, StateConfig, StateKey};
use stele_types::Address;

const CONTRACT: Address = Address([3; 20]);

fn key(i: u32) -> StateKey {
    StateKey::storage(&CONTRACT, i.to_be_bytes().to_vec())
}

/// Commits 2 000 keys, then deletes all but the first and last, and counts
/// the tombstones a committed view's cursor steps over from the first key
/// to the last.
fn tombstones_walked(flat_deletes_compact: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let config = StateConfig {
        flat_deletes_compact,
        ..StateConfig::default()
    };
    let mut state = State::open(dir.path(), config).unwrap();
    let all = (0..2_000).map(|i| (key(i), Some(vec![1u8; 8]))).collect();
    state.commit(1, &all).unwrap();
    let deletes = (1..1_999).map(|i| (key(i), None)).collect();
    state.commit(2, &deletes).unwrap();
    state.wait_for_compaction();

    let view = state.view().unwrap();
    let ns = Namespace::Storage(CONTRACT);
    set_perf_stats(PerfStatsLevel::EnableCount);
    let mut perf = PerfContext::default();
    perf.reset();
    let mut cursor = view.flat_cursor(&ns, &[], None).unwrap();
    assert_eq!(cursor.key().unwrap(), Some(0u32.to_be_bytes().as_slice()));
    cursor.advance();
    assert_eq!(
        cursor.key().unwrap(),
        Some(1_999u32.to_be_bytes().as_slice())
    );
    let walked = perf.metric(PerfMetric::InternalDeleteSkippedCount);
    set_perf_stats(PerfStatsLevel::Disable);
    walked
}

#[test]
fn deletes_past_the_threshold_are_compacted_away() {
    assert_eq!(tombstones_walked(256), 0);
}

#[test]
fn without_compaction_the_walk_steps_over_every_tombstone() {
    // The measure above can see tombstones: with compaction off it counts
    // all 1 998.
    assert!(tombstones_walked(0) >= 1_998);
}
