//! Keccak-256 hashing, the one hash function of the protocol.

use sha3::{Digest, Keccak256};

use crate::hex::hex_newtype;

/// A 32-byte Keccak-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

hex_newtype!(Hash, 32);

impl Hash {
    /// The all-zero hash, used as the parent of the genesis block and as the
    /// root of an empty tree.
    pub const ZERO: Hash = Hash([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Keccak-256 of `data`.
pub fn keccak256(data: &[u8]) -> Hash {
    Hash(Keccak256::digest(data).into())
}

/// Keccak-256 over the concatenation of `parts`, without copying them.
pub fn keccak256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Keccak256::new();
    for part in parts {
        h.update(part);
    }
    Hash(h.finalize().into())
}

/// Domain tags: every hashed or signed preimage starts with one of these, so
/// no hash or signature can be taken for another kind of object.
pub mod domain {
    pub const TX: &[u8] = b"STELE/v1/tx\0";
    pub const BLOCK_HEADER: &[u8] = b"STELE/v1/block-header\0";
    pub const RECEIPT: &[u8] = b"STELE/v1/receipt\0";
    pub const LIST_LEAF: &[u8] = b"STELE/v1/list-leaf\0";
    pub const LIST_NODE: &[u8] = b"STELE/v1/list-node\0";
    pub const CONTRACT_ADDRESS: &[u8] = b"STELE/v1/contract-address\0";
    pub const VALIDATOR_SET: &[u8] = b"STELE/v1/validator-set\0";
    /// A proposed next validator set (ADR 0010): the tag, the chain id, the
    /// epoch, then the set's hash. Validators vote for it; its new keys sign
    /// it to prove possession.
    pub const VALIDATOR_CHANGE: &[u8] = b"STELE/v1/validator-change\0";
    /// Prefix of every consensus message the replicas sign; the message kind
    /// follows as one byte.
    pub const CONSENSUS: &[u8] = b"STELE/v1/consensus\0";
    /// Hashed state key: the tag, the namespace encoding, then the raw key.
    pub const STATE_KEY: &[u8] = b"STELE/v1/state-key\0";
    /// Leaf of the state tree: the tag, the key hash, then the value hash.
    pub const STATE_LEAF: &[u8] = b"STELE/v1/state-leaf\0";
    /// Binary inner node of the state tree: the tag, then left and right.
    pub const STATE_NODE: &[u8] = b"STELE/v1/state-node\0";
}

/// Root of a binary Merkle tree over an ordered list of hashes (transactions
/// or receipts of a block). Leaves and inner nodes carry different domain
/// tags; an odd node is promoted unchanged to the next level; the empty list
/// has root [`Hash::ZERO`]. The length is not ambiguous because a leaf hash
/// can never equal an inner-node hash without a Keccak collision.
pub fn list_root(items: &[Hash]) -> Hash {
    if items.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = items
        .iter()
        .map(|h| keccak256_parts(&[domain::LIST_LEAF, &h.0]))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => keccak256_parts(&[domain::LIST_NODE, &l.0, &r.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_empty_input_matches_the_standard_vector() {
        assert_eq!(
            keccak256(b"").to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn list_root_depends_on_order_and_membership() {
        let a = keccak256(b"a");
        let b = keccak256(b"b");
        let c = keccak256(b"c");
        assert_eq!(list_root(&[]), Hash::ZERO);
        assert_ne!(list_root(&[a]), a);
        assert_ne!(list_root(&[a, b]), list_root(&[b, a]));
        assert_ne!(list_root(&[a, b]), list_root(&[a, b, c]));
        assert_eq!(list_root(&[a, b, c]), list_root(&[a, b, c]));
    }
}
