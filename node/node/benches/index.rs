//! Event index benchmark (see docs/benchmarks.md), printed as JSON lines.
//! Not a timed test: CI only builds it.
//!
//! Run: `cargo bench -p stele-node --bench index` (10 000 blocks), or
//! `cargo bench -p stele-node --bench index -- --blocks 1000000`.
//! `--dir PATH` keeps the database there (default: a temp dir).
//!
//! Writes `--blocks` committed blocks straight into a store (no consensus,
//! no execution) through the node's commit path with the event index on:
//! block, receipts, certificate, state version and index rows in one batch
//! per block. Each block holds `--txs` transactions (default 10) of 2
//! events each, 96 bytes of data: the first emits a `Transfer` of the
//! token contract (the hot topic: one event in every block), one event in
//! 100 blocks carries the rare topic, and the others are noise from 7
//! other contracts under 13 other topics. Then it reads all the
//! events of one topic over all the blocks, page after page with the
//! cursor form as a client would (`limit` 1 000, `events_blocks_max`
//! 10 000, the default 16 MiB response limit), each page serialised to
//! JSON as the RPC would, once through the index and once by scanning the
//! blocks (`event_page`, the handler's own code).
//!
//! Lines: `write` (blocks committed per second with the index, and for
//! comparison the first blocks again without it, into another database),
//! then one `query` line per (topic, source): pages, events, total ms, ms
//! per page.

use std::time::Instant;

use stele_client::api::{EventCursor, EventFilter};
use stele_node::index::IndexConfig;
use stele_node::index::synthetic::{SyntheticTx, commit_block};
use stele_node::rpc::{EventQuery, event_page};
use stele_node::store::{BLOCK_STORE_CFS, BlockReader};
use stele_state::{State, StateConfig};
use stele_types::{Address, Event, Hash};

const TOKEN: Address = Address([0x70; 20]);
const TRANSFER: Hash = Hash([0xaa; 32]);
const RARE: Hash = Hash([0xbb; 32]);
const LIMIT: usize = 1000;
const BLOCKS_MAX: u64 = 10_000;
/// `rpc.response_bytes_max` (16 MiB) less the JSON-RPC envelope.
const BUDGET: usize = (16 << 20) - 1024;
/// Blocks written again without the index, to compare commit speed.
const PLAIN_BLOCKS_MAX: u64 = 10_000;

fn block(height: u64, txs: u64) -> Vec<SyntheticTx> {
    (0..txs)
        .map(|tx| {
            let noise = |n: u64| Event {
                contract: Address([(height + tx + n) as u8 % 7; 20]),
                topics: vec![Hash([0x10 + ((height + tx + n) % 13) as u8; 32])],
                data: vec![2; 96],
            };
            let first = if tx == 0 {
                Event {
                    contract: TOKEN,
                    topics: vec![TRANSFER, Hash([(height % 251) as u8; 32])],
                    data: vec![1; 96],
                }
            } else {
                noise(0)
            };
            let second = if tx == 0 && height.is_multiple_of(100) {
                Event {
                    topics: vec![RARE],
                    ..noise(1)
                }
            } else {
                noise(1)
            };
            SyntheticTx {
                events: vec![first, second],
                storage_writes: Vec::new(),
            }
        })
        .collect()
}

fn open(dir: &std::path::Path) -> State {
    let mut state = State::open_with_column_families(dir, StateConfig::default(), &BLOCK_STORE_CFS)
        .expect("open the state");
    state.commit(0, &Default::default()).expect("genesis");
    state
}

/// Commits `n` blocks; blocks per second.
fn write(state: &mut State, n: u64, txs: u64, index: IndexConfig) -> f64 {
    let started = Instant::now();
    for height in 1..=n {
        commit_block(state, &index, block(height, txs)).expect("commit");
        if height % 100_000 == 0 {
            eprintln!("{height} blocks written");
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Reads every event of `filter` over `1..=to` page by page; (pages,
/// events, ms).
fn query(state: &State, filter: &EventFilter, to: u64, use_index: bool) -> (u64, u64, f64) {
    let started = Instant::now();
    let mut cursor = EventCursor::block_start(1);
    let (mut pages, mut events) = (0u64, 0u64);
    loop {
        // A view per page, as the RPC takes one per call.
        let view = state.view().expect("a version");
        let reader = BlockReader::from_view(&view);
        let q = EventQuery {
            filter: filter.clone(),
            from: 1,
            to,
            limit: LIMIT,
            cursor: Some(cursor),
            blocks_max: BLOCKS_MAX,
            budget: BUDGET,
        };
        let page = event_page(&reader, &q, use_index).expect("a page");
        let json = serde_json::to_vec(&page).expect("json");
        std::hint::black_box(json);
        pages += 1;
        events += page.events.len() as u64;
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    (pages, events, started.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let mut blocks: u64 = 10_000;
    let mut txs: u64 = 10;
    let mut dir: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--blocks" => {
                blocks = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--blocks N")
            }
            "--txs" => txs = args.next().and_then(|v| v.parse().ok()).expect("--txs N"),
            "--dir" => dir = args.next().map(Into::into),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let mut state = open(&root.join("indexed"));
    let on = IndexConfig {
        events: true,
        storage_history: false,
    };
    let indexed_per_s = write(&mut state, blocks, txs, on);
    let plain_blocks = blocks.min(PLAIN_BLOCKS_MAX);
    let plain_per_s = {
        let mut plain = open(&root.join("plain"));
        write(&mut plain, plain_blocks, txs, IndexConfig::default())
    };
    println!(
        "{{\"bench\":\"index_write\",\"blocks\":{blocks},\"txs_per_block\":{txs},\"events_per_block\":{},\"blocks_per_s_indexed\":{indexed_per_s:.0},\"plain_blocks\":{plain_blocks},\"blocks_per_s_plain\":{plain_per_s:.0}}}",
        2 * txs
    );
    let filters = [
        (
            "hot_topic",
            EventFilter {
                contract: None,
                topics: vec![Some(TRANSFER)],
            },
        ),
        (
            "rare_topic",
            EventFilter {
                contract: None,
                topics: vec![Some(RARE)],
            },
        ),
        (
            "contract_and_topic",
            EventFilter {
                contract: Some(TOKEN),
                topics: vec![Some(TRANSFER), Some(Hash([7; 32]))],
            },
        ),
    ];
    for (name, filter) in &filters {
        for use_index in [true, false] {
            let (pages, events, ms) = query(&state, filter, blocks, use_index);
            let source = if use_index { "index" } else { "scan" };
            println!(
                "{{\"bench\":\"index_query\",\"blocks\":{blocks},\"filter\":\"{name}\",\"source\":\"{source}\",\"pages\":{pages},\"events\":{events},\"total_ms\":{ms:.1},\"ms_per_page\":{:.2}}}",
                ms / pages as f64
            );
        }
    }
}
