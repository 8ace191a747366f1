//! The optional per-node index of committed blocks (`[index]` in
//! config.toml; docs/adr/0009-full-nodes.md, "Event index and storage
//! history"): events by contract and by topic, so `get_events` reads only
//! the events it returns, and per storage key the transactions that wrote
//! it (`get_storage_history`).
//!
//! Files: `keys` (column families, key layouts, the persisted coverage),
//! `write` (a block's rows, added to the block's own commit batch),
//! `prune` (deleting the rows below a height), `events` (the events of a
//! filter, read from the index) and `history` (a storage key's writes).
//!
//! Architecture invariant: index rows are written only in the atomic batch
//! that commits their block (`write::put_block`, called between
//! `store::finish_block_commit` and `State::apply_unsynced`), so an index
//! is never ahead of or behind the blocks; a reader trusts the index only
//! for the heights its persisted coverage names, read from the same
//! snapshot, and scans blocks (events) or refuses (storage history)
//! elsewhere.

mod events;
mod history;
mod keys;
mod prune;
pub mod synthetic;
#[cfg(test)]
mod tests;
mod write;

use serde::{Deserialize, Serialize};

pub use events::IndexedEvents;
pub use history::{HistoryError, HistoryPage, HistoryRow, history_page};
pub use keys::{
    CF_EVENT_LOGS, CF_EVENTS_BY_CONTRACT, CF_EVENTS_BY_TOPIC, CF_INDEX_META, CF_STORAGE_HISTORY,
    CF_STORAGE_WRITES, Coverage, IndexKind, TOPIC_POSITIONS_MAX, coverage,
};
pub use prune::{PruneStats, prune_below};
pub use write::put_block;

/// `[index]` in config.toml: which indexes this node keeps. Both are off by
/// default (validators need neither); a full node turns them on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Events by contract and by topic, for `get_events`.
    pub events: bool,
    /// The transactions that wrote each storage key, for
    /// `get_storage_history`.
    pub storage_history: bool,
}

impl IndexConfig {
    /// Whether any index is kept.
    pub fn any(&self) -> bool {
        self.events || self.storage_history
    }
}
