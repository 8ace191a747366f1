//! `get_storage_history`: a storage key's writes, newest first, from the
//! storage-history index, read on the read pool through one view.

use jsonrpsee::core::RpcResult;
use stele_client::api::*;
use stele_types::Address;

use super::Handler;
use crate::index::{HistoryError, history_page};
use crate::rpc::errors::{err, internal, invalid};
use crate::rpc::size::json_len;

/// Storage keys are 1..=256 bytes (docs/vm.md).
const STORAGE_KEY_BYTES_MAX: usize = 256;
/// Largest `get_storage_history` page (a change is ~250 bytes as JSON).
pub(crate) const STORAGE_HISTORY_LIMIT_MAX: u32 = 1000;

impl Handler {
    /// `get_storage_history`: a page of the writes of `key` of `contract`.
    pub(super) async fn storage_history(
        &self,
        contract: Address,
        key: Bytes,
        limit: u32,
        cursor: Option<StorageHistoryCursor>,
    ) -> RpcResult<StorageHistoryPage> {
        if key.0.is_empty() || key.0.len() > STORAGE_KEY_BYTES_MAX {
            return Err(invalid(format!(
                "storage keys are 1 to {STORAGE_KEY_BYTES_MAX} bytes, got {}",
                key.0.len()
            )));
        }
        if limit == 0 || limit > STORAGE_HISTORY_LIMIT_MAX {
            return Err(invalid(format!(
                "limit must be 1 to {STORAGE_HISTORY_LIMIT_MAX}, got {limit}"
            )));
        }
        let budget = self.budget();
        let view = self.view()?;
        self.read_with(view, move |reader| {
            let Some(view) = reader.view() else {
                return Err(internal("a history read without a view"));
            };
            let height = view.version();
            let start = cursor.map(|c| (c.height, c.tx_index));
            let page = history_page(view, &contract, &key.0, start, limit as usize).map_err(
                |e| match e {
                    HistoryError::Off { height } => err(
                        codes::INDEX_OFF,
                        format!(
                            "this node keeps no storage-history index up to its latest height {height} ([index] storage_history is off here); ask a node that keeps one"
                        ),
                    ),
                    HistoryError::Store(e) => internal(e),
                },
            )?;
            let mut out = StorageHistoryPage {
                height,
                indexed_from: page.indexed_from,
                changes: Vec::with_capacity(page.rows.len()),
                next: page.next.map(|(height, tx_index)| StorageHistoryCursor {
                    height,
                    tx_index,
                }),
            };
            // Far below the smallest response limit at the largest page,
            // but measured anyway: a page ends where the next change would
            // not fit.
            let mut bytes = json_len(&out);
            for row in page.rows {
                let change = StorageChange {
                    block_height: row.height,
                    tx_index: row.tx_index,
                    tx_hash: row.tx_hash,
                    value_hash: row.value_hash,
                };
                bytes += json_len(&change) + 1;
                if bytes > budget {
                    out.next = Some(StorageHistoryCursor {
                        height: row.height,
                        tx_index: row.tx_index,
                    });
                    break;
                }
                out.changes.push(change);
            }
            Ok(out)
        })
        .await
    }
}
