//! Column families, key layouts and the persisted coverage of the index.
//! The column families are opened with the block store's
//! (`store::BLOCK_STORE_CFS`), whether the index is on or not, so turning it
//! off and on again needs nothing but the config.
//!
//! Every key puts the height in big-endian right after its prefix (or first),
//! so the rows of a height range are one key range per prefix, for range
//! deletes when blocks are pruned.

use stele_state::CommittedView;
use stele_state::rocksdb::WriteBatch;
use stele_types::{Address, Hash};

use crate::store::StoreError;

/// What the index covers: `(height, tx_index, event_index)` as one number,
/// so positions compare and step like integers.
pub(crate) type Position = u128;

/// The index's own records: the coverage of each kind.
pub const CF_INDEX_META: &str = "index_meta";
/// Every event of an indexed block: `position` (16 bytes) -> block hash,
/// transaction hash, the event's canonical encoding.
pub const CF_EVENT_LOGS: &str = "index_event_logs";
/// `contract (20) || position (16)` -> empty.
pub const CF_EVENTS_BY_CONTRACT: &str = "index_events_by_contract";
/// `topic position (1) || topic (32) || position (16)` -> empty.
pub const CF_EVENTS_BY_TOPIC: &str = "index_events_by_topic";
/// `contract (20) || keccak256(key) (32) || !height (8) || !tx_index (4)`
/// -> transaction hash (32), then `0` (deleted) or `1` and the value hash
/// (32). Inverted height and index: newest first in key order.
pub const CF_STORAGE_HISTORY: &str = "index_storage_history";
/// The storage-history rows of each height, to find them when pruning:
/// `height (8) || tx_index (4) || contract (20) || keccak256(key) (32)` ->
/// empty.
pub const CF_STORAGE_WRITES: &str = "index_storage_writes";

/// Topic positions indexed: those a filter can name (`get_events` takes at
/// most 4 topics).
pub const TOPIC_POSITIONS_MAX: usize = 4;

/// One of the two indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Events,
    StorageHistory,
}

impl IndexKind {
    pub(crate) fn meta_key(self) -> &'static [u8] {
        match self {
            IndexKind::Events => b"events_coverage",
            IndexKind::StorageHistory => b"storage_history_coverage",
        }
    }
}

/// The heights `from..=last` whose every block is indexed: written in each
/// indexed block's batch (`last` = that block), restarted at the block when
/// the previous one was not indexed (the index was off meanwhile), raised
/// by pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub from: u64,
    pub last: u64,
}

impl Coverage {
    /// Whether every height of `start..=end` is indexed.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        self.from <= start && end <= self.last
    }

    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.from.to_be_bytes());
        out[8..].copy_from_slice(&self.last.to_be_bytes());
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Coverage> {
        let from = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let last = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16 && from <= last).then_some(Coverage { from, last })
    }
}

/// The coverage of `kind` as of `view`'s snapshot (`None`: nothing is
/// indexed). A record that does not parse is an error: the index is not
/// trusted then.
pub fn coverage(view: &CommittedView, kind: IndexKind) -> Result<Option<Coverage>, StoreError> {
    parse_coverage(view.get_cf(CF_INDEX_META, kind.meta_key())?)
}

pub(crate) fn parse_coverage(bytes: Option<Vec<u8>>) -> Result<Option<Coverage>, StoreError> {
    bytes
        .map(|b| Coverage::from_bytes(&b).ok_or(StoreError::CorruptIndexMeta { len: b.len() }))
        .transpose()
}

pub(crate) fn read_coverage(
    state: &stele_state::State,
    kind: IndexKind,
) -> Result<Option<Coverage>, StoreError> {
    let cf = state.column_family(CF_INDEX_META)?;
    let bytes = state
        .db()?
        .get_cf(cf, kind.meta_key())
        .map_err(stele_state::StateError::from)?;
    parse_coverage(bytes)
}

pub(crate) fn put_coverage(
    state: &stele_state::State,
    batch: &mut WriteBatch,
    kind: IndexKind,
    coverage: Coverage,
) -> Result<(), StoreError> {
    batch.put_cf(
        state.column_family(CF_INDEX_META)?,
        kind.meta_key(),
        coverage.to_bytes(),
    );
    Ok(())
}

pub(crate) fn position(height: u64, tx_index: u32, event_index: u32) -> Position {
    (u128::from(height) << 64) | (u128::from(tx_index) << 32) | u128::from(event_index)
}

pub(crate) fn position_parts(p: Position) -> (u64, u32, u32) {
    ((p >> 64) as u64, (p >> 32) as u32, p as u32)
}

/// `prefix || position`.
pub(crate) fn with_position(prefix: &[u8], p: Position) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 16);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&p.to_be_bytes());
    key
}

/// The position a key of `prefix_len` bytes of prefix ends with.
pub(crate) fn key_position(key: &[u8], prefix_len: usize) -> Option<Position> {
    let tail: [u8; 16] = key.get(prefix_len..)?.try_into().ok()?;
    Some(Position::from_be_bytes(tail))
}

pub(crate) fn contract_prefix(contract: &Address) -> Vec<u8> {
    contract.0.to_vec()
}

pub(crate) fn topic_prefix(slot: usize, topic: &Hash) -> Vec<u8> {
    let mut p = Vec::with_capacity(33);
    // `slot` < TOPIC_POSITIONS_MAX.
    p.push(slot as u8);
    p.extend_from_slice(&topic.0);
    p
}

/// `contract || keccak256(key)`: one storage key's rows.
pub(crate) fn history_prefix(contract: &Address, key_hash: &Hash) -> Vec<u8> {
    let mut p = Vec::with_capacity(52);
    p.extend_from_slice(&contract.0);
    p.extend_from_slice(&key_hash.0);
    p
}

/// Length of [`history_prefix`].
pub(crate) const HISTORY_PREFIX_BYTES: usize = 52;

/// The suffix of a storage-history row: newest first.
pub(crate) fn history_suffix(height: u64, tx_index: u32) -> [u8; 12] {
    let mut s = [0; 12];
    s[..8].copy_from_slice(&(!height).to_be_bytes());
    s[8..].copy_from_slice(&(!tx_index).to_be_bytes());
    s
}

pub(crate) fn parse_history_suffix(s: &[u8]) -> Option<(u64, u32)> {
    let h = u64::from_be_bytes(s.get(..8)?.try_into().ok()?);
    let i = u32::from_be_bytes(s.get(8..12)?.try_into().ok()?);
    (s.len() == 12).then_some((!h, !i))
}

/// A key above every row of `prefix` (row suffixes are 12 or 16 bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.extend_from_slice(&[0xff; 17]);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_as_height_then_transaction_then_event() {
        let a = position(7, u32::MAX, u32::MAX);
        let b = position(8, 0, 0);
        assert!(a < b);
        assert_eq!(a + 1, b);
        assert_eq!(position_parts(position(9, 3, 4)), (9, 3, 4));
        let k = with_position(b"abc", position(9, 3, 4));
        assert_eq!(key_position(&k, 3), Some(position(9, 3, 4)));
        // Newer rows sort first in the storage history.
        assert!(history_suffix(10, 0) < history_suffix(9, 5));
        assert!(history_suffix(9, 5) < history_suffix(9, 4));
        assert_eq!(parse_history_suffix(&history_suffix(9, 4)), Some((9, 4)));
        let c = Coverage { from: 3, last: 9 };
        assert_eq!(Coverage::from_bytes(&c.to_bytes()), Some(c));
        assert!(c.covers(3, 9) && !c.covers(2, 9) && !c.covers(3, 10));
    }
}
