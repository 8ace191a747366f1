//! The index's coverage, storage history and pruning on a real RocksDB.

use std::sync::RwLock;

use stele_exec::StorageWrite;
use stele_state::{State, StateConfig};
use stele_types::proof::value_hash;
use stele_types::{Address, Event, Hash};

use super::keys::*;
use super::prune::prune_below_chunked;
use super::synthetic::{SyntheticTx, commit_block};
use super::*;
use crate::store::{BLOCK_STORE_CFS, CommittedBlock};

const C: Address = Address([7; 20]);

fn open(dir: &std::path::Path) -> State {
    let mut state = State::open_with_column_families(dir, StateConfig::default(), &BLOCK_STORE_CFS)
        .expect("state");
    state.commit(0, &Default::default()).expect("genesis");
    state
}

const BOTH: IndexConfig = IndexConfig {
    events: true,
    storage_history: true,
};

/// A block whose one transaction emits an event with topic `height % 3`
/// and writes key `k` (deletes it when the height is a multiple of 5)
/// and key `h<height>`.
fn block_at(height: u64) -> Vec<SyntheticTx> {
    let k = StorageWrite {
        contract: C,
        key: b"k".to_vec(),
        value_hash: (!height.is_multiple_of(5)).then(|| value_hash(&height.to_le_bytes())),
    };
    let own = StorageWrite {
        contract: C,
        key: format!("h{height}").into_bytes(),
        value_hash: Some(value_hash(b"x")),
    };
    vec![
        SyntheticTx::default(),
        SyntheticTx {
            events: vec![Event {
                contract: C,
                topics: vec![Hash([(height % 3) as u8; 32])],
                data: vec![1, 2, 3],
            }],
            storage_writes: vec![k, own],
        },
    ]
}

fn commit(state: &mut State, config: &IndexConfig, height: u64) -> CommittedBlock {
    assert_eq!(state.latest_version(), Some(height - 1));
    commit_block(state, config, block_at(height)).expect("commit")
}

#[test]
fn coverage_restarts_at_the_first_block_indexed_after_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = open(dir.path());
    let events_only = IndexConfig {
        events: true,
        storage_history: false,
    };
    for h in 1..=5 {
        commit(&mut state, &BOTH, h);
    }
    commit(&mut state, &events_only, 6);
    commit(&mut state, &IndexConfig::default(), 7);
    for h in 8..=9 {
        commit(&mut state, &BOTH, h);
    }
    let view = state.view().expect("view");
    let c = |kind| {
        coverage(&view, kind)
            .expect("coverage")
            .map(|c| (c.from, c.last))
    };
    assert_eq!(c(IndexKind::Events), Some((8, 9)));
    assert_eq!(c(IndexKind::StorageHistory), Some((8, 9)));
    // The history below the gap is not offered.
    let page = history_page(&view, &C, b"k", None, 100).expect("history");
    assert_eq!(page.indexed_from, 8);
    assert_eq!(
        page.rows.iter().map(|r| r.height).collect::<Vec<_>>(),
        [9, 8]
    );
    assert_eq!(page.next, None);
}

#[test]
fn storage_history_lists_writes_newest_first_in_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = open(dir.path());
    let mut blocks = vec![];
    for h in 1..=12 {
        blocks.push(commit(&mut state, &BOTH, h));
    }
    let view = state.view().expect("view");
    let mut seen = vec![];
    let mut start = None;
    loop {
        let page = history_page(&view, &C, b"k", start, 5).expect("history");
        assert_eq!(page.indexed_from, 1);
        assert!(page.rows.len() <= 5);
        seen.extend(page.rows);
        match page.next {
            Some(n) => start = Some(n),
            None => break,
        }
    }
    let expected: Vec<HistoryRow> = (1..=12u64)
        .rev()
        .map(|h| HistoryRow {
            height: h,
            tx_index: 1,
            tx_hash: blocks[h as usize - 1].receipts[1].tx_hash,
            value_hash: (!h.is_multiple_of(5)).then(|| value_hash(&h.to_le_bytes())),
        })
        .collect();
    assert_eq!(seen, expected);
    // A cursor inside the history starts there, inclusive.
    let rows = history_page(&view, &C, b"k", Some((7, 1)), 2)
        .expect("history")
        .rows;
    assert_eq!(rows.iter().map(|r| r.height).collect::<Vec<_>>(), [7, 6]);
    let rows = history_page(&view, &C, b"k", Some((7, 0)), 2)
        .expect("history")
        .rows;
    assert_eq!(rows.iter().map(|r| r.height).collect::<Vec<_>>(), [6, 5]);
    // Another key, another contract: their own rows only.
    let rows = history_page(&view, &C, b"h3", None, 10)
        .expect("history")
        .rows;
    assert_eq!(rows.len(), 1);
    let rows = history_page(&view, &Address([8; 20]), b"k", None, 10)
        .expect("history")
        .rows;
    assert!(rows.is_empty());
    // A block committed without the index: the history is off up to the
    // latest height, and says so.
    drop(view);
    commit(&mut state, &IndexConfig::default(), 13);
    let view = state.view().expect("view");
    assert!(matches!(
        history_page(&view, &C, b"k", None, 10),
        Err(HistoryError::Off { height: 13 })
    ));
}

/// The keys of `cf` and the height each row is of.
fn heights(state: &State, cf: &str) -> Vec<u64> {
    let handle = state.column_family(cf).expect("cf");
    state
        .db()
        .unwrap()
        .iterator_cf(handle, stele_state::rocksdb::IteratorMode::Start)
        .map(|kv| {
            let (key, _) = kv.expect("row");
            match cf {
                CF_EVENT_LOGS | CF_STORAGE_WRITES => {
                    u64::from_be_bytes(key[..8].try_into().expect("height"))
                }
                CF_EVENTS_BY_CONTRACT => position_parts(key_position(&key, 20).expect("p")).0,
                CF_EVENTS_BY_TOPIC => position_parts(key_position(&key, 33).expect("p")).0,
                _ => {
                    parse_history_suffix(&key[HISTORY_PREFIX_BYTES..])
                        .expect("suffix")
                        .0
                }
            }
        })
        .collect()
}

#[test]
fn pruning_deletes_every_index_row_below_a_height_and_nothing_above() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = open(dir.path());
    for h in 1..=40 {
        commit(&mut state, &BOTH, h);
    }
    let cfs = [
        CF_EVENT_LOGS,
        CF_EVENTS_BY_CONTRACT,
        CF_EVENTS_BY_TOPIC,
        CF_STORAGE_HISTORY,
        CF_STORAGE_WRITES,
    ];
    let before: Vec<Vec<u64>> = cfs.iter().map(|cf| heights(&state, cf)).collect();
    let state = RwLock::new(state);
    // Chunks of 7 rows: several chunks, each ending on a whole height.
    let stats = prune_below_chunked(&state, 25, 7).expect("prune");
    assert_eq!(stats.events, 24);
    assert_eq!(stats.storage_writes, 48);
    let state = state.into_inner().expect("lock");
    for (cf, before) in cfs.iter().zip(before) {
        let after = heights(&state, cf);
        let kept: Vec<u64> = before.into_iter().filter(|h| *h >= 25).collect();
        let mut sorted = after.clone();
        sorted.sort();
        let mut kept_sorted = kept.clone();
        kept_sorted.sort();
        assert_eq!(sorted, kept_sorted, "{cf}");
    }
    let view = state.view().expect("view");
    for kind in [IndexKind::Events, IndexKind::StorageHistory] {
        let c = coverage(&view, kind).expect("coverage").expect("some");
        assert_eq!((c.from, c.last), (25, 40));
    }
    let page = history_page(&view, &C, b"k", None, 100).expect("history");
    assert_eq!(page.indexed_from, 25);
    assert_eq!(page.rows.last().map(|r| r.height), Some(25));
    // Pruning again below the same height finds nothing.
    drop(view);
    let state = RwLock::new(state);
    assert_eq!(
        prune_below_chunked(&state, 25, 7).expect("prune"),
        PruneStats::default()
    );
}
