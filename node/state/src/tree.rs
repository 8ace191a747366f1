//! The tree algorithms (batch update, read, prove) over any node source. No
//! RocksDB here: `store` supplies the nodes and writes the result.

use stele_types::Hash;
use stele_types::proof::{ProofLeaf, SparseMerkleProof, value_hash};

use crate::error::StateError;
use std::sync::Arc;

use crate::node::{
    Child, InternalNode, LeafNode, NIBBLES_MAX, NewNode, NibblePath, Node, NodeKey, nibble,
};

/// Reads nodes, checking each against the hash its parent records.
pub trait NodeSource {
    fn node(&self, key: &NodeKey, expected: &Hash) -> Result<Node, StateError>;

    fn internal(&self, key: &NodeKey, expected: &Hash) -> Result<InternalNode, StateError> {
        match self.node(key, expected)? {
            Node::Internal(n) => Ok(n),
            Node::Leaf(_) => Err(StateError::CorruptNode {
                node: Box::new(*key),
                reason: "expected an internal node, found a leaf",
            }),
        }
    }

    fn leaf(&self, key: &NodeKey, expected: &Hash) -> Result<LeafNode, StateError> {
        match self.node(key, expected)? {
            Node::Leaf(n) => Ok(n),
            Node::Internal(_) => Err(StateError::CorruptNode {
                node: Box::new(*key),
                reason: "expected a leaf, found an internal node",
            }),
        }
    }
}

/// What one commit does to the tree.
#[derive(Debug, Default)]
pub struct TreeUpdate {
    /// The new root (always at path `[]`), `None` for the empty tree.
    pub root: Option<Child>,
    /// Nodes to write, all at the commit's version.
    pub new_nodes: Vec<(NodeKey, NewNode)>,
    /// Nodes of the previous version that the new version no longer uses.
    pub stale: Vec<NodeKey>,
}

/// Applies `updates` (sorted by key hash, unique; `None` deletes) to the tree
/// rooted at `root`, writing new nodes at `version`.
pub fn update<S: NodeSource>(
    source: &S,
    root: Option<Child>,
    version: u64,
    updates: &[(Hash, Option<&[u8]>)],
) -> Result<TreeUpdate, StateError> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let mut updater = Updater {
        source,
        version,
        new_nodes: Vec::new(),
        stale: Vec::new(),
    };
    let mut path = NibblePath::ROOT;
    let new_root = match updater.update(root, &mut path, updates)? {
        Out::Unchanged => root,
        Out::Empty => None,
        Out::Leaf(leaf) => Some(updater.write_leaf(NibblePath::ROOT, leaf)),
        Out::Internal(child) => Some(child),
    };
    Ok(TreeUpdate {
        root: new_root,
        new_nodes: updater.new_nodes,
        stale: updater.stale,
    })
}

/// Updates of at least this many keys spread the root's subtrees over two
/// threads ([`update_parallel`]).
pub const PARALLEL_UPDATES_MIN: usize = 1024;

/// [`update`], with the root's subtrees split between this thread and one
/// more when the root is an internal node and there are at least
/// [`PARALLEL_UPDATES_MIN`] updates. The subtrees under the root's 16
/// children are independent: each half is updated on its own, and the
/// root is finished from both. The result is the same as [`update`]'s
/// (the same nodes and stale keys, in another order).
pub fn update_parallel<S: NodeSource + Sync>(
    source: &S,
    root: Option<Child>,
    version: u64,
    updates: &[(Hash, Option<&[u8]>)],
) -> Result<TreeUpdate, StateError> {
    let Some(existing) = root.filter(|c| !c.leaf) else {
        return update(source, root, version, updates);
    };
    if updates.len() < PARALLEL_UPDATES_MIN {
        return update(source, root, version, updates);
    }
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let key = NodeKey {
        version: existing.version,
        path: NibblePath::ROOT,
    };
    let node = source.internal(&key, &existing.hash)?;
    // Split at the nibble boundary nearest half of the updates.
    let groups: Vec<&[Write<'_>]> = updates
        .chunk_by(|a, b| nibble(&a.0, 0) == nibble(&b.0, 0))
        .collect();
    let mut seen = 0;
    let split = groups
        .iter()
        .position(|g| {
            seen += g.len();
            seen * 2 >= updates.len()
        })
        .map_or(groups.len(), |i| i + 1);
    let (first, second) = groups.split_at(split);
    let run = |groups: &[&[Write<'_>]]| -> Result<Half, StateError> {
        let mut updater = Updater {
            source,
            version,
            new_nodes: Vec::new(),
            stale: Vec::new(),
        };
        let mut outs = Vec::with_capacity(groups.len());
        for group in groups {
            let n = nibble(&group[0].0, 0);
            let mut path = NibblePath::ROOT.child(n);
            let out = updater.update(node.child(n as usize), &mut path, group)?;
            outs.push((n as usize, out));
        }
        Ok((outs, updater.new_nodes, updater.stale))
    };
    let (a, b) = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("state-update".into())
            .spawn_scoped(s, || run(second));
        let mine = run(first);
        let theirs = match other {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: the second half runs here too.
            Err(_) => run(second),
        };
        (mine, theirs)
    });
    let (outs_a, mut new_nodes, mut stale) = a?;
    let (outs_b, new_b, stale_b) = b?;
    new_nodes.extend(new_b);
    stale.extend(stale_b);
    let mut updater = Updater {
        source,
        version,
        new_nodes,
        stale,
    };
    let mut node = node;
    let mut pending: [Option<LeafNode>; 16] = Default::default();
    let mut changed = false;
    for (n, out) in outs_a.into_iter().chain(outs_b) {
        changed |= place(&mut node, &mut pending, n, out);
    }
    let new_root = if changed {
        updater.stale.push(key);
        match updater.finish(NibblePath::ROOT, node, pending)? {
            Out::Unchanged => root,
            Out::Empty => None,
            Out::Leaf(leaf) => Some(updater.write_leaf(NibblePath::ROOT, leaf)),
            Out::Internal(child) => Some(child),
        }
    } else {
        root
    };
    Ok(TreeUpdate {
        root: new_root,
        new_nodes: updater.new_nodes,
        stale: updater.stale,
    })
}

/// One key's update: its hash and the new value (`None` deletes).
type Write<'a> = (Hash, Option<&'a [u8]>);

/// One half of a parallel update: each subtree's result by nibble, and the
/// nodes written and made stale under it.
type Half = (Vec<(usize, Out)>, Vec<(NodeKey, NewNode)>, Vec<NodeKey>);

/// Puts a subtree's result at nibble `n` of `node` (a lone leaf waits in
/// `pending`: where it is written depends on its siblings); whether
/// anything changed.
fn place(
    node: &mut InternalNode,
    pending: &mut [Option<LeafNode>; 16],
    n: usize,
    out: Out,
) -> bool {
    match out {
        Out::Unchanged => false,
        Out::Empty => {
            node.set_child(n, None);
            true
        }
        Out::Leaf(leaf) => {
            node.set_child(n, None);
            pending[n] = Some(leaf);
            true
        }
        Out::Internal(child) => {
            node.set_child(n, Some(child));
            true
        }
    }
}

/// The result of updating one subtree. A leaf is returned unwritten because
/// where it is stored depends on its siblings: a lone leaf moves up.
enum Out {
    Unchanged,
    Empty,
    Leaf(LeafNode),
    Internal(Child),
}

struct Updater<'s, S> {
    source: &'s S,
    version: u64,
    new_nodes: Vec<(NodeKey, NewNode)>,
    stale: Vec<NodeKey>,
}

impl<S: NodeSource> Updater<'_, S> {
    fn update(
        &mut self,
        existing: Option<Child>,
        path: &mut NibblePath,
        updates: &[(Hash, Option<&[u8]>)],
    ) -> Result<Out, StateError> {
        let Some(existing) = existing else {
            let inserts: Vec<(Hash, &[u8])> = updates
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect();
            return self.build(path, &inserts);
        };
        let key = NodeKey {
            version: existing.version,
            path: *path,
        };
        if existing.leaf {
            let leaf = self.source.leaf(&key, &existing.hash)?;
            let touched = updates.binary_search_by(|(k, _)| k.cmp(&leaf.key));
            let unchanged = updates.iter().all(|(k, v)| match v {
                None => *k != leaf.key,
                Some(v) => *k == leaf.key && *v == leaf.value.as_slice(),
            });
            if unchanged {
                return Ok(Out::Unchanged);
            }
            self.stale.push(key);
            let mut entries: Vec<(Hash, &[u8])> = updates
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect();
            if touched.is_err() {
                let at = entries.partition_point(|(k, _)| *k < leaf.key);
                entries.insert(at, (leaf.key, leaf.value.as_slice()));
            }
            return self.build(path, &entries);
        }
        if path.len() >= NIBBLES_MAX {
            return Err(too_deep(key));
        }
        let mut node = self.source.internal(&key, &existing.hash)?;
        let mut pending: [Option<LeafNode>; 16] = Default::default();
        let mut changed = false;
        let depth = path.len();
        for group in updates.chunk_by(|a, b| nibble(&a.0, depth) == nibble(&b.0, depth)) {
            let n = nibble(&group[0].0, depth) as usize;
            path.push(n as u8);
            let out = self.update(node.child(n), path, group)?;
            path.pop();
            changed |= place(&mut node, &mut pending, n, out);
        }
        if !changed {
            return Ok(Out::Unchanged);
        }
        self.stale.push(key);
        self.finish(*path, node, pending)
    }

    /// Builds a fresh subtree holding exactly `entries` (sorted, unique).
    fn build(
        &mut self,
        path: &mut NibblePath,
        entries: &[(Hash, &[u8])],
    ) -> Result<Out, StateError> {
        match entries {
            [] => return Ok(Out::Empty),
            [(key, value)] => {
                return Ok(Out::Leaf(LeafNode {
                    key: *key,
                    value: value.to_vec(),
                }));
            }
            _ => {}
        }
        let depth = path.len();
        assert!(
            depth < NIBBLES_MAX,
            "invariant: distinct key hashes differ within 64 nibbles"
        );
        let mut node = InternalNode::default();
        let mut pending: [Option<LeafNode>; 16] = Default::default();
        for group in entries.chunk_by(|a, b| nibble(&a.0, depth) == nibble(&b.0, depth)) {
            let n = nibble(&group[0].0, depth) as usize;
            path.push(n as u8);
            let out = self.build(path, group)?;
            path.pop();
            match out {
                Out::Leaf(leaf) => pending[n] = Some(leaf),
                Out::Internal(child) => node.set_child(n, Some(child)),
                Out::Empty | Out::Unchanged => {
                    unreachable!("invariant: a non-empty group builds a leaf or a node")
                }
            }
        }
        self.finish(*path, node, pending)
    }

    /// Turns a node's new children into its result: nothing, a lone leaf
    /// moving up, or a written internal node.
    fn finish(
        &mut self,
        path: NibblePath,
        mut node: InternalNode,
        mut pending: [Option<LeafNode>; 16],
    ) -> Result<Out, StateError> {
        let occupied: Vec<usize> = (0..16)
            .filter(|&i| node.child(i).is_some() || pending[i].is_some())
            .collect();
        match occupied.as_slice() {
            [] => return Ok(Out::Empty),
            [only] => {
                if let Some(leaf) = pending[*only].take() {
                    return Ok(Out::Leaf(leaf));
                }
                if let Some(child) = node.child(*only).filter(|c| c.leaf) {
                    let key = NodeKey {
                        version: child.version,
                        path: path.child(*only as u8),
                    };
                    let leaf = self.source.leaf(&key, &child.hash)?;
                    self.stale.push(key);
                    return Ok(Out::Leaf(leaf));
                }
            }
            _ => {}
        }
        for (n, slot) in pending.iter_mut().enumerate() {
            if let Some(leaf) = slot.take() {
                let child = self.write_leaf(path.child(n as u8), leaf);
                node.set_child(n, Some(child));
            }
        }
        let hash = node.hash_memo();
        self.new_nodes.push((
            NodeKey {
                version: self.version,
                path,
            },
            NewNode::Internal(Arc::new(node)),
        ));
        Ok(Out::Internal(Child {
            version: self.version,
            hash,
            leaf: false,
        }))
    }

    fn write_leaf(&mut self, path: NibblePath, leaf: LeafNode) -> Child {
        let hash = leaf.hash();
        self.new_nodes.push((
            NodeKey {
                version: self.version,
                path,
            },
            NewNode::Leaf(leaf),
        ));
        Child {
            version: self.version,
            hash,
            leaf: true,
        }
    }
}

/// The value of `key` in the tree rooted at `root`.
pub fn get<S: NodeSource>(
    source: &S,
    root: Option<Child>,
    key: &Hash,
) -> Result<Option<Vec<u8>>, StateError> {
    let mut current = root;
    let mut path = NibblePath::ROOT;
    while let Some(child) = current {
        let node_key = NodeKey {
            version: child.version,
            path,
        };
        if child.leaf {
            let leaf = source.leaf(&node_key, &child.hash)?;
            return Ok((leaf.key == *key).then_some(leaf.value));
        }
        if path.len() >= NIBBLES_MAX {
            return Err(too_deep(node_key));
        }
        let node = source.internal(&node_key, &child.hash)?;
        let n = nibble(key, path.len());
        current = node.child(n as usize);
        path.push(n);
    }
    Ok(None)
}

/// The value of `key` and a proof of it (or of its absence) against the root.
pub fn prove<S: NodeSource>(
    source: &S,
    root: Option<Child>,
    key: &Hash,
) -> Result<(Option<Vec<u8>>, SparseMerkleProof), StateError> {
    let mut siblings = Vec::new();
    let mut current = root;
    let mut path = NibblePath::ROOT;
    loop {
        let Some(child) = current else {
            return Ok((
                None,
                SparseMerkleProof {
                    leaf: None,
                    siblings,
                },
            ));
        };
        let node_key = NodeKey {
            version: child.version,
            path,
        };
        if child.leaf {
            let leaf = source.leaf(&node_key, &child.hash)?;
            let proof = SparseMerkleProof {
                leaf: Some(ProofLeaf {
                    key: leaf.key,
                    value_hash: value_hash(&leaf.value),
                }),
                siblings,
            };
            return Ok(((leaf.key == *key).then_some(leaf.value), proof));
        }
        if path.len() >= NIBBLES_MAX {
            return Err(too_deep(node_key));
        }
        let node = source.internal(&node_key, &child.hash)?;
        let n = nibble(key, path.len()) as usize;
        // Walk the four binary levels inside the node, stopping early at an
        // empty range or a lone leaf, exactly as `InternalNode::range_hash`
        // collapses them.
        let (mut lo, mut width) = (0usize, 16usize);
        current = loop {
            match node.range_count(lo, width) {
                (0, _) => break None,
                (1, Some((at, c))) if c.leaf => {
                    path.push(at as u8);
                    break Some(c);
                }
                _ if width == 1 => {
                    path.push(n as u8);
                    break node.child(n);
                }
                _ => {}
            }
            let half = width / 2;
            if n < lo + half {
                siblings.push(node.range_hash(lo + half, half));
            } else {
                siblings.push(node.range_hash(lo, half));
                lo += half;
            }
            width = half;
        };
    }
}

/// An internal node where none can be: 64 nibbles exhaust a key hash.
fn too_deep(node: NodeKey) -> StateError {
    StateError::CorruptNode {
        node: Box::new(node),
        reason: "internal node deeper than 64 nibbles",
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use stele_types::proof::{key_bit, leaf_hash, node_hash};

    use super::*;

    /// Nodes in memory, with the same hash check as the RocksDB source.
    #[derive(Default)]
    struct Memory(RefCell<BTreeMap<NodeKey, Node>>);

    impl NodeSource for Memory {
        fn node(&self, key: &NodeKey, expected: &Hash) -> Result<Node, StateError> {
            let node =
                self.0
                    .borrow()
                    .get(key)
                    .cloned()
                    .ok_or_else(|| StateError::MissingNode {
                        node: Box::new(*key),
                    })?;
            assert_eq!(node.hash(), *expected);
            Ok(node)
        }
    }

    fn reference(entries: &BTreeMap<Hash, Vec<u8>>) -> Hash {
        fn go(items: &[(Hash, Hash)], depth: usize) -> Hash {
            match items {
                [] => Hash::ZERO,
                [(k, v)] => leaf_hash(k, v),
                _ => {
                    let split = items.partition_point(|(k, _)| !key_bit(k, depth));
                    node_hash(
                        &go(&items[..split], depth + 1),
                        &go(&items[split..], depth + 1),
                    )
                }
            }
        }
        let items: Vec<(Hash, Hash)> = entries
            .iter()
            .map(|(k, v)| (*k, stele_types::keccak256(v)))
            .collect();
        go(&items, 0)
    }

    fn apply(
        memory: &Memory,
        root: Option<Child>,
        version: u64,
        updates: &BTreeMap<Hash, Option<Vec<u8>>>,
    ) -> Option<Child> {
        let list: Vec<(Hash, Option<&[u8]>)> =
            updates.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let out = update(memory, root, version, &list).unwrap();
        let mut nodes = memory.0.borrow_mut();
        for (k, n) in out.new_nodes {
            let n = match n {
                NewNode::Internal(n) => Node::Internal(InternalNode::clone(&n)),
                NewNode::Leaf(n) => Node::Leaf(n),
            };
            assert!(nodes.insert(k, n).is_none(), "node keys are never reused");
        }
        out.root
    }

    /// Keys that share `shared` leading nibbles and differ after.
    fn deep_key(shared: usize, tail: u8) -> Hash {
        let mut k = [0xabu8; 32];
        if shared < 64 {
            let byte = shared / 2;
            if shared.is_multiple_of(2) {
                k[byte] = (tail << 4) | 0x0b;
            } else {
                k[byte] = 0xa0 | (tail & 0x0f);
            }
        }
        Hash(k)
    }

    #[test]
    fn keys_sharing_63_nibbles_build_deep_chains_and_collapse_back() {
        let memory = Memory::default();
        let (a, b) = (deep_key(63, 1), deep_key(63, 2));
        assert_ne!(a, b);
        let mut model = BTreeMap::new();
        let mut updates = BTreeMap::new();
        for (k, v) in [
            (a, b"a".to_vec()),
            (b, b"b".to_vec()),
            (deep_key(5, 3), b"c".to_vec()),
        ] {
            model.insert(k, v.clone());
            updates.insert(k, Some(v));
        }
        let root = apply(&memory, None, 1, &updates);
        assert_eq!(root.map(|c| c.hash), Some(reference(&model)));
        for (k, v) in &model {
            assert_eq!(get(&memory, root, k).unwrap().as_ref(), Some(v));
            let (got, proof) = prove(&memory, root, k).unwrap();
            assert_eq!(got.as_ref(), Some(v));
            proof.verify(&reference(&model), k, Some(v)).unwrap();
            assert!(proof.siblings.len() <= 256);
        }
        // Deleting one deep key collapses the chain back into a lone leaf.
        model.remove(&a);
        let root = apply(&memory, root, 2, &BTreeMap::from([(a, None)]));
        assert_eq!(root.map(|c| c.hash), Some(reference(&model)));
        let (_, proof) = prove(&memory, root, &a).unwrap();
        proof.verify(&reference(&model), &a, None).unwrap();
        // `b` and the third key share 20 bits: `b`'s leaf moved up to depth 21.
        assert_eq!(proof.siblings.len(), 21, "chain was not collapsed");
    }

    #[test]
    fn random_batches_match_the_reference_root() {
        let memory = Memory::default();
        let mut root = None;
        let mut model = BTreeMap::new();
        let mut seed = 7u64;
        for version in 1..=30u64 {
            let mut updates = BTreeMap::new();
            for _ in 0..(version % 7) * 5 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Few distinct keys, many shared prefixes.
                let k = stele_types::keccak256(&(seed >> 58).to_le_bytes());
                let v = (!seed.is_multiple_of(3)).then(|| seed.to_le_bytes().to_vec());
                updates.insert(k, v);
            }
            for (k, v) in &updates {
                match v {
                    Some(v) => model.insert(*k, v.clone()),
                    None => model.remove(k),
                };
            }
            root = apply(&memory, root, version, &updates);
            assert_eq!(root.map_or(Hash::ZERO, |c| c.hash), reference(&model));
        }
    }
}
