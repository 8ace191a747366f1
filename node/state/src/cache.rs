//! A bounded in-memory cache of internal nodes that are known good: read from
//! disk and verified against their parent's hash, or written by a commit that
//! was applied. The upper levels of the tree are touched by every block, so
//! this saves a RocksDB read and up to 15 Keccak-256 per touched node.
//!
//! Node keys are never reused (a version is written at most once), so a cached
//! node can never go stale; pruned nodes just age out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::node::{InternalNode, NodeKey};

/// Two generations: lookups promote from `cold` to `hot`; when `hot` is full
/// it becomes `cold` and the old `cold` is dropped. An approximate LRU with
/// O(1) operations and at most `nodes_max` entries. The maps are only looked
/// up, never iterated, so their order cannot leak into anything.
#[derive(Debug, Default)]
struct Generations {
    // Shared, not copied: a node with its memo is over a kilobyte, and
    // the maps move their values when they grow.
    hot: HashMap<NodeKey, Arc<InternalNode>>,
    cold: HashMap<NodeKey, Arc<InternalNode>>,
}

/// Shared by readers and the committer.
#[derive(Debug, Default)]
pub struct NodeCache {
    inner: Mutex<Generations>,
    generation_max: usize,
}

impl NodeCache {
    /// A cache of at most `nodes_max` internal nodes (0 disables it).
    pub fn new(nodes_max: usize) -> NodeCache {
        NodeCache {
            inner: Mutex::new(Generations::default()),
            generation_max: nodes_max / 2,
        }
    }

    pub fn get(&self, key: &NodeKey) -> Option<Arc<InternalNode>> {
        if self.generation_max == 0 {
            return None;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(node) = g.hot.get(key) {
            return Some(Arc::clone(node));
        }
        let node = g.cold.remove(key)?;
        Self::insert_locked(&mut g, self.generation_max, key.clone(), Arc::clone(&node));
        Some(node)
    }

    /// Forgets the nodes a commit made stale: no later version reaches
    /// them, so keeping them would only push live nodes out.
    pub fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a NodeKey>) {
        if self.generation_max == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if g.hot.remove(key).is_none() {
                g.cold.remove(key);
            }
        }
    }

    pub fn insert(&self, key: NodeKey, node: Arc<InternalNode>) {
        if self.generation_max == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Self::insert_locked(&mut g, self.generation_max, key, node);
    }

    fn insert_locked(
        g: &mut Generations,
        generation_max: usize,
        key: NodeKey,
        node: Arc<InternalNode>,
    ) {
        if g.hot.len() >= generation_max {
            g.cold = std::mem::take(&mut g.hot);
        }
        g.hot.insert(key, node);
    }
}
