//! A storage key's writes, newest first, from the storage-history index.

use stele_state::CommittedView;
use stele_types::{Address, Hash, keccak256};

use super::keys::*;
use crate::store::StoreError;

/// One transaction's write of a storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub height: u64,
    pub tx_index: u32,
    pub tx_hash: Hash,
    /// `proof::value_hash` of the value written; `None`: deleted.
    pub value_hash: Option<Hash>,
}

/// A page of a storage key's writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Newest first.
    pub rows: Vec<HistoryRow>,
    /// The first height the index covers: older writes are not listed.
    pub indexed_from: u64,
    /// Where the next page starts (`(height, tx_index)`), if rows remain.
    pub next: Option<(u64, u32)>,
}

/// Why [`history_page`] has no answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The index does not cover the view's latest height (off, or off for
    /// a while and not indexed since).
    #[error("this node keeps no storage-history index up to height {height}")]
    Off { height: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Up to `limit` writes of `key` of `contract` at or below `start`
/// (`(height, tx_index)`, `None`: the newest), newest first, as of `view`.
/// Reads `limit + 1` rows at most.
pub fn history_page(
    view: &CommittedView,
    contract: &Address,
    key: &[u8],
    start: Option<(u64, u32)>,
    limit: usize,
) -> Result<HistoryPage, HistoryError> {
    let height = view.version();
    let coverage = coverage(view, IndexKind::StorageHistory)?
        .filter(|c| c.last == height)
        .ok_or(HistoryError::Off { height })?;
    let prefix = history_prefix(contract, &keccak256(key));
    let mut lower = prefix.clone();
    let (h, i) = start.unwrap_or((u64::MAX, u32::MAX));
    lower.extend_from_slice(&history_suffix(h, i));
    // Rows at or above the coverage's first height only: below it the
    // history has a gap.
    let mut upper = prefix.clone();
    upper.extend_from_slice(&(!coverage.from).to_be_bytes());
    upper.extend_from_slice(&[0xff; 5]);
    let mut iter = view
        .raw_iterator_cf(CF_STORAGE_HISTORY, lower.clone(), upper)
        .map_err(StoreError::from)?;
    iter.seek(&lower);
    let mut rows = Vec::new();
    let mut next = None;
    while let Some(k) = iter.key() {
        let corrupt = || StoreError::CorruptIndexRow { len: k.len() };
        let (height, tx_index) = k
            .get(HISTORY_PREFIX_BYTES..)
            .and_then(parse_history_suffix)
            .ok_or_else(corrupt)?;
        if rows.len() == limit {
            next = Some((height, tx_index));
            break;
        }
        let v = iter.value().unwrap_or_default();
        let corrupt = || StoreError::CorruptIndexRow { len: v.len() };
        let tx_hash = Hash(
            v.get(..32)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let value_hash = match (v.get(32), v.len()) {
            (Some(0), 33) => None,
            (Some(1), 65) => Some(Hash(v[33..65].try_into().map_err(|_| corrupt())?)),
            _ => return Err(corrupt().into()),
        };
        rows.push(HistoryRow {
            height,
            tx_index,
            tx_hash,
            value_hash,
        });
        iter.next();
    }
    iter.status()
        .map_err(stele_state::StateError::from)
        .map_err(StoreError::from)?;
    Ok(HistoryPage {
        rows,
        indexed_from: coverage.from,
        next,
    })
}
