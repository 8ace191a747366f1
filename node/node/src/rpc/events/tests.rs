//! The index answers `get_events` exactly as the scan does: same events,
//! same order, same page ends and cursors, same errors, on a few hundred
//! blocks of random events and random filters, ranges, limits, budgets and
//! cursors.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use stele_client::api::{EventCursor, EventFilter, EventLog, EventPage};
use stele_state::{CommittedView, State, StateConfig};
use stele_types::{Address, Event, Hash};

use super::{EventQuery, event_page};
use crate::index::synthetic::{SyntheticTx, commit_block};
use crate::index::{IndexConfig, IndexKind, IndexedEvents, coverage};
use crate::store::{BLOCK_STORE_CFS, BlockReader};

const BLOCKS: u64 = 300;
/// Blocks below this were committed with the index off.
const INDEXED_FROM: u64 = 20;

fn contract(i: u64) -> Address {
    Address([10 + i as u8; 20])
}

fn topic(i: u64) -> Hash {
    Hash([100 + i as u8; 32])
}

/// SplitMix64: the chain's events from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_block(rng: &mut Rng) -> Vec<SyntheticTx> {
    (0..rng.below(4))
        .map(|_| SyntheticTx {
            events: (0..rng.below(4))
                .map(|_| Event {
                    contract: contract(rng.below(3)),
                    topics: (0..rng.below(4)).map(|_| topic(rng.below(4))).collect(),
                    data: vec![7; rng.below(300) as usize],
                })
                .collect(),
            storage_writes: Vec::new(),
        })
        .collect()
}

fn chain(dir: &std::path::Path) -> State {
    let mut state = State::open_with_column_families(dir, StateConfig::default(), &BLOCK_STORE_CFS)
        .expect("state");
    state.commit(0, &Default::default()).expect("genesis");
    let mut rng = Rng(26);
    for height in 1..=BLOCKS {
        let config = IndexConfig {
            events: height >= INDEXED_FROM,
            storage_history: false,
        };
        commit_block(&mut state, &config, random_block(&mut rng)).expect("commit");
    }
    state
}

#[derive(Debug, Clone)]
struct Query {
    filter: EventFilter,
    from: u64,
    to: Option<u64>,
    limit: usize,
    blocks_max: u64,
    budget: usize,
    cursor: Option<EventCursor>,
}

fn query() -> impl Strategy<Value = Query> {
    let filter = (
        proptest::option::of(0u64..4),
        proptest::collection::vec(proptest::option::of(0u64..5), 0..=4),
    )
        .prop_map(|(c, topics)| EventFilter {
            contract: c.map(contract),
            topics: topics.into_iter().map(|t| t.map(topic)).collect(),
        });
    (
        filter,
        1..=BLOCKS,
        proptest::option::of(0..BLOCKS),
        1usize..12,
        1u64..150,
        300usize..8000,
        proptest::option::of((0..BLOCKS, 0u32..4, 0u32..4)),
    )
        .prop_map(|(filter, from, to, limit, blocks_max, budget, cursor)| {
            let to = to.map(|t| t.max(from));
            let end = to.unwrap_or(BLOCKS);
            Query {
                filter,
                from,
                to,
                limit,
                blocks_max,
                budget,
                cursor: cursor.map(|(h, tx_index, event_index)| EventCursor {
                    height: from + h % (end - from + 1),
                    tx_index,
                    event_index,
                }),
            }
        })
}

/// A page as the handler reads it, through the index where it may be
/// used, or by the scan; and whether the index was used.
fn page(view: &CommittedView, q: &Query, indexed: bool) -> (Result<EventPage, String>, bool) {
    let reader = BlockReader::from_view(view);
    let query = EventQuery {
        filter: q.filter.clone(),
        from: q.from,
        to: q.to.unwrap_or(view.version()),
        limit: q.limit,
        cursor: q.cursor,
        blocks_max: q.blocks_max,
        budget: q.budget,
    };
    let start = q.cursor.unwrap_or(EventCursor::block_start(q.from));
    let last = query.to.min(start.height.saturating_add(q.blocks_max - 1));
    let covered = coverage(view, IndexKind::Events)
        .expect("coverage")
        .is_some_and(|c| c.covers(start.height, last));
    let narrows = IndexedEvents::new(view, &q.filter, start, last)
        .expect("index")
        .is_some();
    let result = event_page(&reader, &query, indexed);
    (
        result.map_err(|e| format!("{e:?}")),
        indexed && covered && narrows,
    )
}

/// Every page of the cursor form from `from`, joined.
fn walk(view: &CommittedView, q: &Query, indexed: bool) -> Result<Vec<EventLog>, String> {
    let mut q = q.clone();
    q.cursor = Some(EventCursor::block_start(q.from));
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let (page, _) = page(view, &q, indexed);
        let page = page?;
        all.extend(page.events);
        match page.next {
            Some(next) => q.cursor = Some(next),
            None => return Ok(all),
        }
    }
    Err("the walk did not end".into())
}

#[test]
fn the_index_answers_get_events_exactly_as_the_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = chain(dir.path());
    let view = state.view().expect("a version");
    assert_eq!(
        coverage(&view, IndexKind::Events)
            .expect("coverage")
            .map(|c| (c.from, c.last)),
        Some((INDEXED_FROM, BLOCKS))
    );
    let mut runner = TestRunner::new(Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    });
    let served = std::cell::Cell::new(0u32);
    runner
        .run(&query(), |q| {
            let (by_index, used) = page(&view, &q, true);
            let (by_scan, _) = page(&view, &q, false);
            prop_assert_eq!(&by_index, &by_scan, "{:?}", q);
            if used {
                served.set(served.get() + 1);
            }
            prop_assert_eq!(walk(&view, &q, true), walk(&view, &q, false), "{:?}", q);
            Ok(())
        })
        .expect("index and scan agree");
    // Most filters name something and most ranges are covered: the index
    // really answered.
    assert!(
        served.get() > 200,
        "the index served {} pages",
        served.get()
    );
}
