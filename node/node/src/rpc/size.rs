//! Keeping every answer within the response limit (`response_bytes_max`).
//!
//! jsonrpsee refuses an answer over the limit with a generic "Response is
//! too big"; a receipt with 1 024 events of 16 KiB, a block of large
//! transactions or a page of 64 KiB storage values would get that. Instead,
//! each method whose answer grows with chain data measures what it returns
//! and pages or cuts it at the budget, marking what it left out; whatever
//! cannot be cut is refused with `RESPONSE_TOO_LARGE`, naming the sizes.

use std::io;

use serde::Serialize;
use stele_client::api::{BlockInfo, ReceiptInfo, SimulationResult};

/// Bytes kept out of the budget for the JSON-RPC envelope around a result
/// (`{"jsonrpc":"2.0","id":…,"result":…}`, or a subscription
/// notification's): room for an id of up to 900 characters.
pub(crate) const ENVELOPE_BYTES: usize = 1024;

/// The smallest `response_bytes_max` a node accepts: every item a page is
/// made of fits in it with room to spare (a transaction with 1 MiB of code
/// is ~2.3 MB as JSON, a receipt without its events ~0.3 MB, an event
/// ~33 KB), so every page makes progress.
pub(crate) const RESPONSE_BYTES_MIN: u32 = 4 << 20;

/// Counts the bytes written to it.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `value` as JSON (`usize::MAX` if it does not serialize,
/// which then never fits).
pub(crate) fn json_len(value: &impl Serialize) -> usize {
    let mut c = Counter(0);
    match serde_json::to_writer(&mut c, value) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// How many leading `items` fit in `room` bytes as elements of a JSON
/// array (each counted with a separating comma).
pub(crate) fn fitting_prefix<T: Serialize>(items: &[T], room: usize) -> usize {
    let mut used = 0usize;
    for (n, item) in items.iter().enumerate() {
        used = used.saturating_add(json_len(item).saturating_add(1));
        if used > room {
            return n;
        }
    }
    items.len()
}

/// An answer that cannot be cut to fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {bytes} bytes as JSON, over this node's response budget of {budget} bytes")]
pub(crate) struct TooLarge {
    pub what: String,
    pub bytes: usize,
    pub budget: usize,
}

/// `value` as it is if it fits in `budget`, else [`TooLarge`].
pub(crate) fn whole<T: Serialize>(
    value: T,
    budget: usize,
    what: impl FnOnce() -> String,
) -> Result<T, TooLarge> {
    let bytes = json_len(&value);
    if bytes <= budget {
        Ok(value)
    } else {
        Err(TooLarge {
            what: what(),
            bytes,
            budget,
        })
    }
}

/// `info` with as many of its receipt's events as fit in `budget`; the
/// rest are counted in `events_omitted` (read with `get_events`).
pub(crate) fn fit_receipt(mut info: ReceiptInfo, budget: usize) -> Result<ReceiptInfo, TooLarge> {
    if json_len(&info) <= budget {
        return Ok(info);
    }
    let mut events = std::mem::take(&mut info.receipt.events);
    // Measured with the largest count the field can show.
    info.events_omitted = u32::MAX;
    let base = json_len(&info);
    let room = budget.checked_sub(base).ok_or_else(|| TooLarge {
        what: format!("the receipt of {} without its events", info.receipt.tx_hash),
        bytes: base,
        budget,
    })?;
    let n = fitting_prefix(&events, room);
    info.events_omitted = (events.len() - n) as u32;
    events.truncate(n);
    info.receipt.events = events;
    Ok(info)
}

/// `result` within `budget`: when it does not fit, the trace is left out
/// if it alone is too large, and then as many events as fit are kept (the
/// rest counted in `events_omitted`).
pub(crate) fn fit_simulation(
    mut result: SimulationResult,
    budget: usize,
) -> Result<SimulationResult, TooLarge> {
    if json_len(&result) <= budget {
        return Ok(result);
    }
    let mut events = std::mem::take(&mut result.events);
    result.events_omitted = u32::MAX;
    if json_len(&result) > budget {
        result.trace = None;
        result.trace_omitted = true;
    }
    let base = json_len(&result);
    let room = budget.checked_sub(base).ok_or_else(|| TooLarge {
        what: "the simulation's result without its events and trace".into(),
        bytes: base,
        budget,
    })?;
    let n = fitting_prefix(&events, room);
    result.events_omitted = (events.len() - n) as u32;
    events.truncate(n);
    result.events = events;
    Ok(result)
}

/// `info` (a whole block) with its transactions from index `from`, as many
/// as fit in `budget`; `txs_next` says where the rest start. `None` when
/// `from` is past the block's last transaction.
pub(crate) fn fit_block(
    mut info: BlockInfo,
    from: u32,
    budget: usize,
) -> Option<Result<BlockInfo, TooLarge>> {
    let count = info.block.txs.len();
    if from as usize > count {
        return None;
    }
    let mut txs = std::mem::take(&mut info.block.txs).split_off(from as usize);
    info.txs_from = from;
    info.txs_next = Some(u32::MAX);
    let base = json_len(&info);
    let Some(room) = budget.checked_sub(base) else {
        return Some(Err(TooLarge {
            what: format!("block {} without its transactions", info.hash),
            bytes: base,
            budget,
        }));
    };
    let n = fitting_prefix(&txs, room);
    if n == 0 && !txs.is_empty() {
        return Some(Err(TooLarge {
            what: format!("transaction {from} of block {}", info.hash),
            bytes: json_len(&txs[0]),
            budget: room,
        }));
    }
    let end = from as usize + n;
    info.txs_next = (end < count).then_some(end as u32);
    txs.truncate(n);
    info.block.txs = txs;
    Some(Ok(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_serialized_length() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": "x\"y"});
        assert_eq!(json_len(&v), serde_json::to_vec(&v).map_or(0, |b| b.len()));
    }

    #[test]
    fn fitting_prefix_counts_commas_and_stops_before_the_overflowing_item() {
        let items = vec!["aa".to_string(); 10]; // 4 bytes each, 5 with a comma
        assert_eq!(fitting_prefix(&items, 0), 0);
        assert_eq!(fitting_prefix(&items, 4), 0);
        assert_eq!(fitting_prefix(&items, 5), 1);
        assert_eq!(fitting_prefix(&items, 24), 4);
        assert_eq!(fitting_prefix(&items, 1000), 10);
    }

    fn block(txs: usize, args_bytes: usize) -> BlockInfo {
        use stele_types::*;
        let mut k = [0u8; 32];
        k[31] = 1;
        let key = SecretKey::from_bytes(&k).expect("a valid key");
        let txs = (0..txs as u64)
            .map(|nonce| {
                Transaction {
                    chain_id: 1,
                    nonce,
                    gas_limit: 1,
                    gas_price: 1,
                    payload: TxPayload::Call {
                        contract: Address([2; 20]),
                        method: "m".into(),
                        args: vec![7; args_bytes],
                        value: 0,
                    },
                }
                .sign(&key)
            })
            .collect();
        let block = Block {
            header: BlockHeader {
                chain_id: 1,
                height: 1,
                epoch: 0,
                view: 0,
                parent_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                timestamp_ms: 1,
                proposer: Address([1; 20]),
                next_validators_hash: Hash::ZERO,
            },
            txs,
        };
        BlockInfo {
            hash: block.hash(),
            certificate: CommitCertificate {
                height: 1,
                epoch: 0,
                view: 0,
                block_hash: block.hash(),
                signatures: vec![],
            },
            block,
            txs_from: 0,
            txs_next: None,
        }
    }

    #[test]
    fn block_pages_cover_every_transaction_once_within_the_budget() {
        let whole = block(10, 1000);
        let budget = json_len(&whole) / 3;
        let mut from = 0;
        let mut txs = Vec::new();
        let mut pages = 0;
        loop {
            let page = fit_block(whole.clone(), from, budget).unwrap().unwrap();
            assert!(json_len(&page) <= budget, "page {pages}");
            assert_eq!(page.txs_from, from);
            txs.extend(page.block.txs);
            pages += 1;
            match page.txs_next {
                Some(next) => from = next,
                None => break,
            }
        }
        assert!(pages >= 3, "{pages}");
        assert_eq!(txs, whole.block.txs);
        // A block that fits comes whole, as before.
        assert_eq!(
            fit_block(whole.clone(), 0, usize::MAX),
            Some(Ok(whole.clone()))
        );
        assert_eq!(fit_block(whole.clone(), 11, budget), None);
        assert!(fit_block(whole, 0, 2000).unwrap().is_err());
    }

    #[test]
    fn whole_refuses_what_does_not_fit_and_names_it() {
        assert_eq!(whole(vec![1u8; 3], 7, || "x".into()), Ok(vec![1, 1, 1]));
        let e = whole(vec![1u8; 3], 6, || "the code".into()).unwrap_err();
        assert_eq!((e.bytes, e.budget), (7, 6));
        assert!(e.to_string().starts_with("the code is 7 bytes"), "{e}");
    }
}
