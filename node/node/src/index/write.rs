//! A block's index rows, added to the batch that commits the block.

use stele_exec::StorageWrite;
use stele_state::State;
use stele_state::rocksdb::WriteBatch;
use stele_types::codec::Encode;
use stele_types::{Block, Receipt, keccak256};

use super::IndexConfig;
use super::keys::*;
use crate::store::StoreError;

/// Adds the index rows of `block` (its receipts' events; each
/// transaction's storage writes, `storage_writes[i]` for transaction `i`)
/// to `batch`, the batch that commits the block, and moves each kept
/// index's coverage to the block: extended when the block before was
/// indexed, restarted at this block otherwise. With both indexes off it
/// adds nothing. Must be called with the state's write lock held, as for
/// the commit itself (it reads the coverage the last commit wrote).
pub fn put_block(
    state: &State,
    batch: &mut WriteBatch,
    config: &IndexConfig,
    block: &Block,
    receipts: &[Receipt],
    storage_writes: &[Vec<StorageWrite>],
) -> Result<(), StoreError> {
    let height = block.header.height;
    if receipts.len() != block.txs.len() {
        return Err(StoreError::ReceiptCount {
            txs: block.txs.len(),
            receipts: receipts.len(),
        });
    }
    if config.events {
        put_events(state, batch, block, receipts)?;
        extend_coverage(state, batch, IndexKind::Events, height)?;
    }
    if config.storage_history {
        if storage_writes.len() != receipts.len() {
            return Err(StoreError::StorageWritesCount {
                txs: receipts.len(),
                writes: storage_writes.len(),
            });
        }
        put_storage_writes(state, batch, height, receipts, storage_writes)?;
        extend_coverage(state, batch, IndexKind::StorageHistory, height)?;
    }
    Ok(())
}

fn extend_coverage(
    state: &State,
    batch: &mut WriteBatch,
    kind: IndexKind,
    height: u64,
) -> Result<(), StoreError> {
    let from = match read_coverage(state, kind)? {
        Some(c) if c.last.checked_add(1) == Some(height) => c.from,
        previous => {
            // Once per start of an index (first block, or first after a
            // stretch with the index off): what it will not answer.
            tracing::info!(
                index = ?kind,
                height,
                previous_coverage = ?previous.map(|c| (c.from, c.last)),
                "index starts at this block: get_events scans blocks below it, get_storage_history lists no writes below it"
            );
            height
        }
    };
    put_coverage(state, batch, kind, Coverage { from, last: height })
}

fn put_events(
    state: &State,
    batch: &mut WriteBatch,
    block: &Block,
    receipts: &[Receipt],
) -> Result<(), StoreError> {
    let height = block.header.height;
    let block_hash = block.hash();
    let logs = state.column_family(CF_EVENT_LOGS)?;
    let by_contract = state.column_family(CF_EVENTS_BY_CONTRACT)?;
    let by_topic = state.column_family(CF_EVENTS_BY_TOPIC)?;
    for (tx_index, receipt) in receipts.iter().enumerate() {
        for (event_index, event) in receipt.events.iter().enumerate() {
            // Both fit: a block holds at most `block_txs_max` transactions
            // and a receipt `receipt_events_max` events, far below 2^32.
            let p = position(height, tx_index as u32, event_index as u32);
            let mut row = Vec::with_capacity(64 + event.data.len() + 64);
            row.extend_from_slice(&block_hash.0);
            row.extend_from_slice(&receipt.tx_hash.0);
            event.encode_to(&mut row);
            batch.put_cf(logs, p.to_be_bytes(), row);
            batch.put_cf(
                by_contract,
                with_position(&contract_prefix(&event.contract), p),
                [],
            );
            for (slot, topic) in event.topics.iter().take(TOPIC_POSITIONS_MAX).enumerate() {
                batch.put_cf(by_topic, with_position(&topic_prefix(slot, topic), p), []);
            }
        }
    }
    Ok(())
}

fn put_storage_writes(
    state: &State,
    batch: &mut WriteBatch,
    height: u64,
    receipts: &[Receipt],
    storage_writes: &[Vec<StorageWrite>],
) -> Result<(), StoreError> {
    let history = state.column_family(CF_STORAGE_HISTORY)?;
    let by_height = state.column_family(CF_STORAGE_WRITES)?;
    for (tx_index, (receipt, writes)) in receipts.iter().zip(storage_writes).enumerate() {
        let tx_index = tx_index as u32;
        for w in writes {
            let prefix = history_prefix(&w.contract, &keccak256(&w.key));
            let mut key = prefix.clone();
            key.extend_from_slice(&history_suffix(height, tx_index));
            let mut value = Vec::with_capacity(65);
            value.extend_from_slice(&receipt.tx_hash.0);
            match w.value_hash {
                Some(h) => {
                    value.push(1);
                    value.extend_from_slice(&h.0);
                }
                None => value.push(0),
            }
            batch.put_cf(history, key, value);
            let mut row = Vec::with_capacity(12 + HISTORY_PREFIX_BYTES);
            row.extend_from_slice(&height.to_be_bytes());
            row.extend_from_slice(&tx_index.to_be_bytes());
            row.extend_from_slice(&prefix);
            batch.put_cf(by_height, row, []);
        }
    }
    Ok(())
}
