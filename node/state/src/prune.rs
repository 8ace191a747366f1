//! Pruning: drop versions older than the last `versions_kept`, deleting only
//! nodes the stale-node index proves unreachable from every kept version.
//!
//! A node listed as stale since version `s` belongs to version `s - 1` and to
//! no later version (node keys are never reused), so once the oldest kept
//! version is at least `s`, nothing can reach it.

use crate::error::StateError;
use crate::kv::Cf;
use crate::node::NodeKey;
use crate::store::{META_OLDEST, State};

/// What one call to [`State::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// The oldest version still readable afterwards.
    pub oldest_version: Option<u64>,
    /// Tree nodes deleted.
    pub nodes_deleted: usize,
}

impl State {
    /// Keeps the last `versions_kept` versions readable and deletes the rest.
    pub fn prune(&mut self) -> Result<PruneStats, StateError> {
        let (Some(latest), Some(oldest)) = (self.latest, self.oldest) else {
            return Ok(PruneStats::default());
        };
        let kept = self.config.versions_kept.max(1);
        let new_oldest = latest.saturating_sub(kept - 1).max(oldest);
        if new_oldest > oldest {
            // Retire the versions first (synced): if we crash while deleting
            // nodes below, the stale entries are still there to finish with.
            let mut batch = self.store.batch()?;
            batch.put(Cf::Meta, META_OLDEST, &new_oldest.to_le_bytes());
            batch.delete_range(Cf::Roots, &oldest.to_be_bytes(), &new_oldest.to_be_bytes());
            let batch = batch.finish();
            self.store.write(batch, true)?;
            self.oldest = Some(new_oldest);
        }
        let nodes_deleted = self.delete_stale_nodes(new_oldest)?;
        Ok(PruneStats {
            oldest_version: self.oldest,
            nodes_deleted,
        })
    }

    /// Deletes every node stale since a version `<= oldest`, with its index
    /// entry, in batches of at most `prune_batch_nodes_max`.
    fn delete_stale_nodes(&mut self, oldest: u64) -> Result<usize, StateError> {
        let batch_max = self.config.prune_batch_nodes_max.max(1);
        let mut deleted = 0;
        loop {
            let (batch, in_batch) = self.stale_batch(oldest, batch_max)?;
            if in_batch == 0 {
                return Ok(deleted);
            }
            self.store.write(batch, false)?;
            deleted += in_batch;
            if in_batch < batch_max {
                return Ok(deleted);
            }
        }
    }

    /// The deletes of up to `batch_max` nodes stale since a version
    /// `<= oldest`, with their index entries, and how many nodes.
    fn stale_batch(
        &self,
        oldest: u64,
        batch_max: usize,
    ) -> Result<(crate::kv::Pending, usize), StateError> {
        let reader = self.store.reader()?;
        let mut cursor = reader.cursor(Cf::Stale, None, None);
        cursor.seek(&[]);
        let mut batch = self.store.batch()?;
        let mut in_batch = 0;
        while let Some(key) = cursor.key() {
            let corrupt = StateError::CorruptMeta {
                what: "stale-node index entry",
                reason: "malformed key",
            };
            let since_bytes: [u8; 8] = key
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or(corrupt)?;
            if u64::from_be_bytes(since_bytes) > oldest {
                break;
            }
            let node = NodeKey::from_db_key(&key[8..]).ok_or(StateError::CorruptMeta {
                what: "stale-node index entry",
                reason: "malformed node key",
            })?;
            batch.delete(Cf::Nodes, &node.to_db_key());
            batch.delete(Cf::Stale, key);
            in_batch += 1;
            if in_batch == batch_max {
                break;
            }
            cursor.next();
        }
        cursor.status()?;
        Ok((batch.finish(), in_batch))
    }
}
