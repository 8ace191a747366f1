//! Tree nodes and their storage encoding.
//!
//! The tree is stored 16-ary: an internal node covers one nibble of the key
//! hash and holds up to 16 children. Its hash is the root of the binary tree
//! (four levels) over those children with single-leaf subtrees collapsed, so
//! the stored tree commits to exactly the binary tree defined in
//! `stele_types::proof`.
//!
//! Nodes are stored under `NodeKey = version (u64 BE) || nibble count || packed
//! nibbles`: a commit writes keys that all start with its version, which keeps
//! RocksDB writes near-sequential, and no node is ever overwritten.

use std::fmt;
use std::sync::Arc;

use stele_types::Hash;
use stele_types::proof::{leaf_hash, node_hash, value_hash};

/// Most nibbles in a path: 64 nibbles make up a 256-bit key hash.
pub const NIBBLES_MAX: usize = 64;

/// A path of at most [`NIBBLES_MAX`] nibbles from the root, packed two to
/// a byte (high nibble first) in a fixed array: a value, never an
/// allocation, since a batch update makes and drops one per node it
/// visits.
///
/// Invariant: the nibbles past `len` are zero, so the derived equality and
/// hash see only the path, and ordering by `(packed, len)` is the
/// lexicographic order of the nibble sequences.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NibblePath {
    packed: [u8; NIBBLES_MAX / 2],
    len: u8,
}

impl NibblePath {
    /// The root's path.
    pub const ROOT: NibblePath = NibblePath {
        packed: [0; NIBBLES_MAX / 2],
        len: 0,
    };

    /// The path of these nibbles (each `0..16`), `None` if one is not a
    /// nibble or there are more than [`NIBBLES_MAX`].
    pub fn from_nibbles(nibbles: &[u8]) -> Option<NibblePath> {
        if nibbles.len() > NIBBLES_MAX {
            return None;
        }
        let mut path = NibblePath::ROOT;
        for &n in nibbles {
            if n >= 16 {
                return None;
            }
            path.push(n);
        }
        Some(path)
    }

    /// The first `depth` nibbles of `key` (`depth` at most 64).
    pub fn prefix_of(key: &Hash, depth: usize) -> NibblePath {
        let depth = depth.min(NIBBLES_MAX);
        let mut packed = [0u8; NIBBLES_MAX / 2];
        packed[..depth / 2].copy_from_slice(&key.0[..depth / 2]);
        if depth % 2 == 1 {
            packed[depth / 2] = key.0[depth / 2] & 0xf0;
        }
        NibblePath {
            packed,
            len: depth as u8,
        }
    }

    /// Number of nibbles.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nibble `i` (`i < len`).
    pub fn get(&self, i: usize) -> u8 {
        let byte = self.packed[i / 2];
        if i.is_multiple_of(2) {
            byte >> 4
        } else {
            byte & 0x0f
        }
    }

    /// Appends nibble `n` (`< 16`). Panics past [`NIBBLES_MAX`]: the tree
    /// checks depth before it descends, so that is a bug, not input.
    pub fn push(&mut self, n: u8) {
        let i = self.len();
        assert!(i < NIBBLES_MAX, "invariant: paths are at most 64 nibbles");
        debug_assert!(n < 16);
        if i.is_multiple_of(2) {
            self.packed[i / 2] = n << 4;
        } else {
            self.packed[i / 2] |= n & 0x0f;
        }
        self.len += 1;
    }

    /// Removes the last nibble (none on the root's path).
    pub fn pop(&mut self) {
        let Some(i) = self.len().checked_sub(1) else {
            return;
        };
        if i.is_multiple_of(2) {
            self.packed[i / 2] = 0;
        } else {
            self.packed[i / 2] &= 0xf0;
        }
        self.len -= 1;
    }

    /// This path with nibble `n` appended.
    pub fn child(mut self, n: u8) -> NibblePath {
        self.push(n);
        self
    }

    /// The nibbles in order.
    pub fn nibbles(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The packed bytes that hold the path (the last one half used for an
    /// odd length).
    fn packed_bytes(&self) -> &[u8] {
        &self.packed[..self.len().div_ceil(2)]
    }
}

impl fmt::Debug for NibblePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for nibble in self.nibbles() {
            write!(f, "{nibble:x}")?;
        }
        f.write_str("]")
    }
}

/// Where a node is stored: the version that wrote it and its nibble path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeKey {
    pub version: u64,
    pub path: NibblePath,
}

/// Hashes the path's used bytes only (the rest are zero): most cached
/// nodes are a few nibbles deep, and the node cache hashes a key on every
/// lookup.
impl std::hash::Hash for NodeKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.version);
        state.write_u8(self.path.len);
        state.write(self.path.packed_bytes());
    }
}

/// Most bytes of [`NodeKey::to_db_key`]: version, count, 32 packed bytes.
pub(crate) const DB_KEY_BYTES_MAX: usize = 9 + NIBBLES_MAX / 2;

/// A node's database key, on the stack ([`NodeKey::to_db_key`]).
#[derive(Clone, Copy)]
pub struct DbNodeKey {
    bytes: [u8; DB_KEY_BYTES_MAX],
    len: u8,
}

impl std::ops::Deref for DbNodeKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for DbNodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl AsRef<[u8]> for DbNodeKey {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl NodeKey {
    /// The database key: version big-endian, nibble count, packed nibbles
    /// (an odd count leaves the last byte's low nibble zero).
    pub fn to_db_key(&self) -> DbNodeKey {
        let packed = self.path.packed_bytes();
        let mut bytes = [0u8; DB_KEY_BYTES_MAX];
        bytes[..8].copy_from_slice(&self.version.to_be_bytes());
        bytes[8] = self.path.len;
        bytes[9..9 + packed.len()].copy_from_slice(packed);
        DbNodeKey {
            bytes,
            len: (9 + packed.len()) as u8,
        }
    }

    /// Parses a database key, rejecting anything [`Self::to_db_key`] would not
    /// produce.
    pub fn from_db_key(bytes: &[u8]) -> Option<NodeKey> {
        let version = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let len = *bytes.get(8)? as usize;
        let packed = bytes.get(9..)?;
        if len > NIBBLES_MAX || packed.len() != len.div_ceil(2) {
            return None;
        }
        if len % 2 == 1 && packed[len / 2] & 0x0f != 0 {
            return None;
        }
        let mut path = NibblePath::ROOT;
        path.packed[..packed.len()].copy_from_slice(packed);
        path.len = len as u8;
        Some(NodeKey { version, path })
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}/", self.version)?;
        for nibble in self.path.nibbles() {
            write!(f, "{nibble:x}")?;
        }
        Ok(())
    }
}

/// Nibble `depth` of `key`, high nibble of byte 0 first.
pub fn nibble(key: &Hash, depth: usize) -> u8 {
    let byte = key.0[depth / 2];
    if depth.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

/// A child pointer: the child lives at `(version, parent path + nibble)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub version: u64,
    pub hash: Hash,
    pub leaf: bool,
}

/// A node with up to 16 children, one per nibble, and the hashes of the
/// binary subtrees over them computed so far.
///
/// The memo makes an update cheap: a node whose children changed in one
/// place recomputes the four binary hashes above that child and reuses the
/// eleven others (4 Keccak-256 instead of up to 15). It is only ever a
/// cache of [`InternalNode::range_hash`]: the children can change only
/// through [`InternalNode::set_child`], which forgets the memo above the
/// child, so a memo never disagrees with the children. It is not stored
/// and not part of equality.
#[derive(Debug, Clone, Default)]
pub struct InternalNode {
    children: [Option<Child>; 16],
    /// `memo[i]`: the hash of binary subtree `i` in heap order (1: all 16
    /// children, 2 and 3: the halves, 4..8: the quarters, 8..16: the
    /// pairs); index 0 is unused. `None`: not computed since the children
    /// under it last changed.
    memo: [Option<Hash>; 16],
}

impl PartialEq for InternalNode {
    fn eq(&self, other: &Self) -> bool {
        self.children == other.children
    }
}

impl Eq for InternalNode {}

/// A key hash and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafNode {
    pub key: Hash,
    pub value: Vec<u8>,
}

/// A stored tree node. Not boxed: nodes are short-lived values moved once
/// from decoding to use, and most of them are internal nodes anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Node {
    Internal(InternalNode),
    Leaf(LeafNode),
}

const TAG_INTERNAL: u8 = 0;
const TAG_LEAF: u8 = 1;

impl LeafNode {
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.key, &value_hash(&self.value))
    }
}

/// The memo index of the binary subtree over children `lo..lo + width`.
fn memo_index(lo: usize, width: usize) -> usize {
    16 / width + lo / width
}

impl InternalNode {
    /// A node with these children.
    #[cfg(test)]
    pub fn with_children(children: [Option<Child>; 16]) -> InternalNode {
        InternalNode {
            children,
            memo: Default::default(),
        }
    }

    /// The children, one per nibble.
    #[cfg(test)]
    pub fn children(&self) -> &[Option<Child>; 16] {
        &self.children
    }

    /// The child at nibble `n`.
    pub fn child(&self, n: usize) -> Option<Child> {
        self.children[n]
    }

    /// Sets the child at nibble `n`, forgetting the memoized hashes of the
    /// binary subtrees that hold it.
    pub fn set_child(&mut self, n: usize, child: Option<Child>) {
        if self.children[n] == child {
            return;
        }
        self.children[n] = child;
        let mut width = 2;
        while width <= 16 {
            self.memo[memo_index(n - n % width, width)] = None;
            width *= 2;
        }
    }

    /// Root of the binary tree over the children (see the module docs),
    /// reusing the memo without adding to it.
    #[cfg(test)]
    pub fn hash(&self) -> Hash {
        self.range_hash(0, 16)
    }

    /// [`InternalNode::hash`], remembering every binary subtree's hash for
    /// the next time (see the type's docs).
    pub fn hash_memo(&mut self) -> Hash {
        self.range_hash_memo(0, 16)
    }

    fn range_hash_memo(&mut self, lo: usize, width: usize) -> Hash {
        if width > 1
            && let Some(hash) = self.memo[memo_index(lo, width)]
        {
            return hash;
        }
        let hash = match self.range_count(lo, width) {
            (0, _) => Hash::ZERO,
            (1, Some((_, child))) if child.leaf || width == 1 => child.hash,
            _ => {
                let half = width / 2;
                let left = self.range_hash_memo(lo, half);
                let right = self.range_hash_memo(lo + half, half);
                node_hash(&left, &right)
            }
        };
        if width > 1 {
            self.memo[memo_index(lo, width)] = Some(hash);
        }
        hash
    }

    /// Number of children in `lo..lo + width`, and the last one seen.
    pub fn range_count(&self, lo: usize, width: usize) -> (usize, Option<(usize, Child)>) {
        let mut count = 0;
        let mut last = None;
        for (i, child) in self.children[lo..lo + width].iter().enumerate() {
            if let Some(c) = child {
                count += 1;
                last = Some((lo + i, *c));
            }
        }
        (count, last)
    }

    /// Hash of the binary subtree over children `lo..lo + width` (`width` a
    /// power of two): empty is zero, a lone leaf is the leaf itself.
    pub fn range_hash(&self, lo: usize, width: usize) -> Hash {
        if width > 1
            && let Some(hash) = self.memo[memo_index(lo, width)]
        {
            return hash;
        }
        match self.range_count(lo, width) {
            (0, _) => Hash::ZERO,
            (1, Some((_, child))) if child.leaf || width == 1 => child.hash,
            _ => {
                let half = width / 2;
                node_hash(
                    &self.range_hash(lo, half),
                    &self.range_hash(lo + half, half),
                )
            }
        }
    }

    pub fn child_count(&self) -> usize {
        self.children.iter().flatten().count()
    }

    /// [`Node::encode`] of this node as an internal node.
    pub fn encode(&self) -> Vec<u8> {
        let mut present = 0u16;
        let mut leaves = 0u16;
        let mut out = Vec::with_capacity(5 + 40 * self.child_count());
        out.extend_from_slice(&[TAG_INTERNAL, 0, 0, 0, 0]);
        for (i, child) in self.children.iter().enumerate() {
            if let Some(c) = child {
                present |= 1 << i;
                if c.leaf {
                    leaves |= 1 << i;
                }
                out.extend_from_slice(&c.version.to_le_bytes());
                out.extend_from_slice(&c.hash.0);
            }
        }
        out[1..3].copy_from_slice(&present.to_le_bytes());
        out[3..5].copy_from_slice(&leaves.to_le_bytes());
        out
    }
}

/// A node a commit writes: internal nodes already shared, for the node
/// cache, so that a batch of thousands moves pointers, not kilobytes.
#[derive(Debug, Clone)]
pub enum NewNode {
    Internal(Arc<InternalNode>),
    Leaf(LeafNode),
}

impl NewNode {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            NewNode::Internal(n) => n.encode(),
            NewNode::Leaf(n) => n.encode(),
        }
    }
}

impl LeafNode {
    /// [`Node::encode`] of this node as a leaf.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33 + self.value.len());
        out.push(TAG_LEAF);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.value);
        out
    }
}

impl Node {
    #[cfg(test)]
    pub fn hash(&self) -> Hash {
        match self {
            Node::Internal(n) => n.hash(),
            Node::Leaf(n) => n.hash(),
        }
    }

    /// Storage encoding. Internal: tag, present-children bitmap (u16 LE),
    /// leaf-children bitmap (u16 LE), then per child in nibble order its
    /// version (u64 LE) and hash. Leaf: tag, key hash, then the value to the
    /// end. (Commits encode their [`NewNode`]s; the snapshot import
    /// writes nodes it builds.)
    #[cfg(any(test, feature = "rocksdb"))]
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Internal(n) => n.encode(),
            Node::Leaf(n) => n.encode(),
        }
    }

    /// Parses [`Self::encode`]'s output; the reason says what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Node, &'static str> {
        match bytes.first() {
            Some(&TAG_INTERNAL) => {
                let header = bytes.get(1..5).ok_or("truncated internal node header")?;
                let present = u16::from_le_bytes([header[0], header[1]]);
                let leaves = u16::from_le_bytes([header[2], header[3]]);
                if leaves & !present != 0 {
                    return Err("leaf bitmap marks an absent child");
                }
                let mut body = &bytes[5..];
                if body.len() != 40 * present.count_ones() as usize {
                    return Err("internal node length does not match its bitmap");
                }
                let mut node = InternalNode::default();
                // A fresh node: its memo is empty, so filling the slots
                // directly cannot leave it stale.
                for (i, slot) in node.children.iter_mut().enumerate() {
                    if present & (1 << i) != 0 {
                        let (entry, rest) = body.split_at(40);
                        body = rest;
                        let mut version = [0u8; 8];
                        version.copy_from_slice(&entry[..8]);
                        let mut hash = [0u8; 32];
                        hash.copy_from_slice(&entry[8..]);
                        *slot = Some(Child {
                            version: u64::from_le_bytes(version),
                            hash: Hash(hash),
                            leaf: leaves & (1 << i) != 0,
                        });
                    }
                }
                Ok(Node::Internal(node))
            }
            Some(&TAG_LEAF) => {
                let key = bytes.get(1..33).ok_or("truncated leaf key")?;
                let mut k = [0u8; 32];
                k.copy_from_slice(key);
                Ok(Node::Leaf(LeafNode {
                    key: Hash(k),
                    value: bytes[33..].to_vec(),
                }))
            }
            Some(_) => Err("unknown node tag"),
            None => Err("empty node"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(nibbles: &[u8]) -> NibblePath {
        NibblePath::from_nibbles(nibbles).unwrap()
    }

    /// The database key's bytes are pinned: stored trees are read with it.
    #[test]
    fn node_key_bytes_are_pinned_round_trip_and_reject_bad_padding() {
        let key = NodeKey {
            version: 0x0102,
            path: path(&[0xa, 0xb, 0xc]),
        };
        assert_eq!(&*key.to_db_key(), &[0, 0, 0, 0, 0, 0, 1, 2, 3, 0xab, 0xc0]);
        let root = NodeKey {
            version: 7,
            path: NibblePath::ROOT,
        };
        assert_eq!(&*root.to_db_key(), &[0, 0, 0, 0, 0, 0, 0, 7, 0]);
        for len in [0usize, 1, 2, 7, 63, 64] {
            let nibbles: Vec<u8> = (0..len).map(|i| (i % 16) as u8).collect();
            let key = NodeKey {
                version: 42,
                path: path(&nibbles),
            };
            assert_eq!(key.path.nibbles().collect::<Vec<_>>(), nibbles);
            let bytes = key.to_db_key();
            assert_eq!(bytes.len(), 9 + len.div_ceil(2));
            assert_eq!(NodeKey::from_db_key(&bytes), Some(key));
        }
        let mut odd = NodeKey {
            version: 1,
            path: path(&[3]),
        }
        .to_db_key()
        .to_vec();
        *odd.last_mut().unwrap() |= 1;
        assert_eq!(NodeKey::from_db_key(&odd), None);
        assert_eq!(NodeKey::from_db_key(&[0; 8]), None);
        let mut long = vec![0u8; 8];
        long.push(65);
        long.extend([0u8; 33]);
        assert_eq!(NodeKey::from_db_key(&long), None);
        assert_eq!(NibblePath::from_nibbles(&[16]), None);
        assert_eq!(NibblePath::from_nibbles(&[0; 65]), None);
    }

    proptest::proptest! {
        /// Push, pop, prefixes and order behave as on a vector of nibbles.
        #[test]
        fn nibble_paths_behave_as_nibble_vectors(
            a in proptest::collection::vec(0u8..16, 0..=64),
            b in proptest::collection::vec(0u8..16, 0..=64),
            pops in 0usize..70,
            bytes in proptest::array::uniform32(proptest::num::u8::ANY),
            depth in 0usize..=64,
        ) {
            let (pa, pb) = (path(&a), path(&b));
            proptest::prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            proptest::prop_assert_eq!(pa == pb, a == b);
            let (mut p, mut v) = (pa, a.clone());
            for _ in 0..pops {
                p.pop();
                v.pop();
            }
            proptest::prop_assert_eq!(p, path(&v));
            if let Some(&n) = b.first() && v.len() < 64 {
                v.push(n);
                proptest::prop_assert_eq!(p.child(n), path(&v));
            }
            let hash = Hash(bytes);
            let prefix: Vec<u8> = (0..depth).map(|d| nibble(&hash, d)).collect();
            proptest::prop_assert_eq!(NibblePath::prefix_of(&hash, depth), path(&prefix));
        }
    }

    #[test]
    fn node_encoding_round_trips() {
        let mut internal = InternalNode::default();
        internal.set_child(
            3,
            Some(Child {
                version: 7,
                hash: Hash([1; 32]),
                leaf: true,
            }),
        );
        internal.set_child(
            15,
            Some(Child {
                version: 9,
                hash: Hash([2; 32]),
                leaf: false,
            }),
        );
        let leaf = LeafNode {
            key: Hash([5; 32]),
            value: b"value".to_vec(),
        };
        for node in [Node::Internal(internal), Node::Leaf(leaf)] {
            assert_eq!(Node::decode(&node.encode()), Ok(node));
        }
        assert!(Node::decode(&[0, 1, 0, 2, 0]).is_err());
        assert!(Node::decode(&[9]).is_err());
    }

    #[test]
    fn lone_leaf_child_collapses_into_its_parent_hash() {
        let mut node = InternalNode::default();
        let child = Child {
            version: 1,
            hash: Hash([9; 32]),
            leaf: true,
        };
        node.set_child(6, Some(child));
        assert_eq!(node.hash_memo(), child.hash);
        node.set_child(
            6,
            Some(Child {
                leaf: false,
                ..child
            }),
        );
        assert_ne!(node.hash_memo(), child.hash);
    }

    proptest::proptest! {
        /// Whatever the order of changes, the memoized hash is the hash
        /// computed from scratch.
        #[test]
        fn the_memoized_hash_is_the_hash_from_scratch(
            changes in proptest::collection::vec(
                (0usize..16, proptest::option::of((0u8..4, proptest::bool::ANY))),
                1..60,
            ),
            hash_every in 1usize..5,
        ) {
            let mut node = InternalNode::default();
            for (i, (n, child)) in changes.into_iter().enumerate() {
                let child = child.map(|(h, leaf)| Child {
                    version: 1,
                    hash: Hash([h; 32]),
                    leaf,
                });
                node.set_child(n, child);
                if i % hash_every == 0 {
                    let fresh = InternalNode::with_children(*node.children()).hash();
                    proptest::prop_assert_eq!(node.hash(), fresh);
                    proptest::prop_assert_eq!(node.hash_memo(), fresh);
                }
            }
        }
    }
}
