//! A bounded in-memory cache of internal nodes that are known good: read from
//! disk and verified against their parent's hash, or written by a commit that
//! was applied. The upper levels of the tree are touched by every block, so
//! this saves a RocksDB read and up to 15 Keccak-256 per touched node.
//!
//! Node keys are never reused (a version is written at most once), so a cached
//! node can never go stale; pruned nodes just age out.
//!
//! The budget is in bytes. Most internal nodes of a large tree are near the
//! leaves and have two or three children: a decoded node is about 1.3 KB
//! whatever its children (16 slots and the memo of its binary hashes),
//! while its storage encoding is 40 bytes a child. Nodes with few children
//! are therefore kept encoded, which lets the cache hold every internal
//! node of a tree about four times larger; their memo is recomputed when
//! they change, a few hashes for so few children. Nodes with many
//! children, the upper levels that every block touches, are kept decoded
//! with their memo.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

use crate::node::{InternalNode, Node, NodeKey};

/// Nodes with at most this many children are kept encoded.
pub const PACKED_CHILDREN_MAX: usize = 6;

/// A cached node ([`Entry::copied`], or [`Entry::packed`] from the
/// encoding a commit wrote). Both forms are shared, not copied: the maps
/// move their values when they grow, and a lookup takes a reference out
/// under the lock and makes its copy after it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Decoded, with its memo.
    Full(Arc<InternalNode>),
    /// [`Node::encode`] of an internal node.
    Packed(Arc<[u8]>),
}

impl Entry {
    /// The form [`NodeCache`] keeps a copy of `node` in.
    pub fn copied(node: &InternalNode) -> Entry {
        if Self::is_packed(node) {
            Entry::Packed(node.encode().into())
        } else {
            Entry::Full(Arc::new(node.clone()))
        }
    }

    /// Whether `node` is kept encoded.
    pub fn is_packed(node: &InternalNode) -> bool {
        node.child_count() <= PACKED_CHILDREN_MAX
    }

    /// A node kept encoded: `encoded` is [`InternalNode::encode`] of a good
    /// node for which [`Self::is_packed`] holds.
    pub fn packed(encoded: Vec<u8>) -> Entry {
        Entry::Packed(encoded.into())
    }

    /// Bytes this entry holds, the map's own share included (key, value
    /// and about a word of table overhead).
    fn bytes(&self) -> usize {
        let slot = size_of::<NodeKey>() + size_of::<Entry>() + 8;
        slot + match self {
            // Each allocation holds the two reference counts too.
            Entry::Full(_) => size_of::<InternalNode>() + 16,
            Entry::Packed(bytes) => bytes.len() + 16,
        }
    }

    fn node(&self) -> Option<InternalNode> {
        match self {
            Entry::Full(node) => Some(InternalNode::clone(node)),
            // Encoded by `Entry::new` from a good node: it decodes. Should
            // it not, the caller reads the node from disk and checks it.
            Entry::Packed(bytes) => match Node::decode(bytes) {
                Ok(Node::Internal(node)) => Some(node),
                _ => None,
            },
        }
    }
}

/// Two generations: lookups promote from `cold` to `hot`; when `hot` is full
/// it becomes `cold` and the old `cold` is dropped. An approximate LRU with
/// O(1) operations and at most twice `generation_bytes_max`. The maps are
/// only looked up, never iterated, so their order cannot leak into
/// anything.
#[derive(Debug, Default)]
struct Generations {
    hot: HashMap<NodeKey, Entry>,
    cold: HashMap<NodeKey, Entry>,
    hot_bytes: usize,
}

/// Shared by readers and the committer.
#[derive(Debug, Default)]
pub struct NodeCache {
    inner: Mutex<Generations>,
    generation_bytes_max: usize,
}

impl NodeCache {
    /// A cache of at most about `bytes_max` bytes of nodes (0 disables it).
    pub fn new(bytes_max: usize) -> NodeCache {
        NodeCache {
            inner: Mutex::new(Generations::default()),
            generation_bytes_max: bytes_max / 2,
        }
    }

    /// A copy of the node at `key`, if cached.
    pub fn get(&self, key: &NodeKey) -> Option<InternalNode> {
        if self.generation_bytes_max == 0 {
            return None;
        }
        let entry = {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match g.hot.get(key) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = g.cold.remove(key)?;
                    self.insert_locked(&mut g, *key, entry.clone());
                    entry
                }
            }
        };
        entry.node()
    }

    /// Forgets the nodes a commit made stale: no later version reaches
    /// them, so keeping them would only push live nodes out.
    pub fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a NodeKey>) {
        if self.generation_bytes_max == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            match g.hot.remove(key) {
                Some(entry) => g.hot_bytes = g.hot_bytes.saturating_sub(entry.bytes()),
                None => {
                    g.cold.remove(key);
                }
            }
        }
    }

    pub fn insert_entry(&self, key: NodeKey, entry: Entry) {
        if self.generation_bytes_max == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.insert_locked(&mut g, key, entry);
    }

    fn insert_locked(&self, g: &mut Generations, key: NodeKey, entry: Entry) {
        let bytes = entry.bytes();
        if g.hot_bytes + bytes > self.generation_bytes_max {
            g.cold = std::mem::take(&mut g.hot);
            g.hot_bytes = 0;
        }
        g.hot_bytes += bytes;
        if let Some(old) = g.hot.insert(key, entry) {
            g.hot_bytes = g.hot_bytes.saturating_sub(old.bytes());
        }
    }

    /// Nodes cached, and how many of them are kept encoded.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let all = g.hot.values().chain(g.cold.values());
        let packed = all
            .clone()
            .filter(|e| matches!(e, Entry::Packed(_)))
            .count();
        (all.count(), packed)
    }
}

#[cfg(test)]
mod tests {
    use stele_types::Hash;

    use super::*;
    use crate::node::{Child, NibblePath};

    fn node(children: usize) -> Arc<InternalNode> {
        let mut node = InternalNode::default();
        for i in 0..children {
            node.set_child(
                i,
                Some(Child {
                    version: i as u64,
                    hash: Hash([i as u8 + 1; 32]),
                    leaf: i % 2 == 0,
                }),
            );
        }
        node.hash_memo();
        Arc::new(node)
    }

    fn key(version: u64) -> NodeKey {
        NodeKey {
            version,
            path: NibblePath::ROOT.child(3),
        }
    }

    /// Either form gives back the node it was given, children and hash.
    #[test]
    fn packed_and_full_nodes_come_back_the_same() {
        let cache = NodeCache::new(1 << 20);
        for children in [1, 2, PACKED_CHILDREN_MAX, PACKED_CHILDREN_MAX + 1, 16] {
            let original = node(children);
            cache.insert_entry(key(children as u64), Entry::copied(&original));
            let mut got = cache.get(&key(children as u64)).unwrap();
            assert_eq!(got, *original);
            assert_eq!(got.hash_memo(), InternalNode::clone(&original).hash_memo());
        }
        assert_eq!(cache.counts(), (5, 3));
    }

    /// The byte budget bounds the cache: small nodes fit many times more.
    #[test]
    fn the_byte_budget_bounds_what_is_kept() {
        let budget = 200_000;
        let cache = NodeCache::new(budget);
        for v in 0..10_000 {
            cache.insert_entry(key(v), Entry::copied(&node(16)));
        }
        let (full, _) = cache.counts();
        assert!(full * 1_300 <= budget, "{full} decoded nodes");
        let cache = NodeCache::new(budget);
        for v in 0..10_000 {
            cache.insert_entry(key(v), Entry::copied(&node(2)));
        }
        let (small, packed) = cache.counts();
        assert_eq!(small, packed);
        assert!(small >= 5 * full, "{small} packed against {full} decoded");
        assert!(small * 150 <= budget, "{small} packed nodes");
        // Recent nodes survive, forgotten ones are gone.
        assert!(cache.get(&key(9_999)).is_some());
        cache.forget([&key(9_999)]);
        assert!(cache.get(&key(9_999)).is_none());
        assert!(NodeCache::new(0).get(&key(1)).is_none());
    }
}
