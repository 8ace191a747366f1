//! State keys and Merkle proof verification for the state tree
//! (`stele-state` builds the tree and its proofs; this verifier needs no
//! RocksDB, so dApps and the CLI can check a read against a state root).
//!
//! The tree is a sparse Merkle tree over 256-bit key hashes, defined as a
//! binary tree with single-leaf subtrees collapsed (see
//! `docs/adr/0003-merkle-state.md`): for the set `S` of (key hash, value)
//! pairs whose key hashes start with a given bit prefix,
//!
//! - `S` empty: [`Hash::ZERO`];
//! - `S` one pair: `leaf_hash(key, keccak256(value))`;
//! - otherwise: `node_hash(root(S with next bit 0), root(S with next bit 1))`.
//!
//! `stele-state` stores it as a 16-ary tree (four binary levels per node), but
//! the root and the proofs are those of this binary definition, so a proof has
//! one 32-byte sibling per binary level above the key's leaf: about
//! `log2(keys) + 2` of them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, put_bytes, put_option, put_seq};
use crate::hash::{Hash, domain, keccak256, keccak256_parts};
use crate::hex::serde_bytes;

/// Longest raw state key (a contract storage key, an account address, ...).
pub const STATE_KEY_BYTES_MAX: usize = 1024;

/// Most siblings in a proof: one per bit of a key hash.
pub const PROOF_SIBLINGS_MAX: usize = 256;

/// Which part of the state a key belongs to. Each namespace is its own key
/// space: the same raw key in two namespaces gives two unrelated key hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "contract", rename_all = "snake_case")]
pub enum Namespace {
    /// Chain-level records kept by the node (e.g. the validator set).
    System,
    /// Accounts: balance and nonce, keyed by address.
    Account,
    /// Contract code, keyed by contract address.
    Code,
    /// One contract's storage, keyed by the contract's own storage keys.
    Storage(Address),
}

impl Namespace {
    /// Encoded length of `self`, which is fixed by its tag, so a namespace
    /// followed by a raw key is never ambiguous.
    pub fn encoded_len(&self) -> usize {
        match self {
            Namespace::Storage(_) => 21,
            _ => 1,
        }
    }
}

impl Encode for Namespace {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Namespace::System => out.push(0),
            Namespace::Account => out.push(1),
            Namespace::Code => out.push(2),
            Namespace::Storage(contract) => {
                out.push(3);
                contract.encode_to(out);
            }
        }
    }
}

impl Decode for Namespace {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("namespace")? {
            0 => Namespace::System,
            1 => Namespace::Account,
            2 => Namespace::Code,
            3 => Namespace::Storage(Address::decode_from(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "namespace",
                    tag,
                });
            }
        })
    }
}

/// A key of the state: a namespace and a raw key inside it. The tree is keyed
/// by [`StateKey::hash`]; the raw key is kept beside it for ordered iteration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateKey {
    pub namespace: Namespace,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

impl StateKey {
    /// A key in `namespace`.
    pub fn new(namespace: Namespace, key: impl Into<Vec<u8>>) -> StateKey {
        StateKey {
            namespace,
            key: key.into(),
        }
    }

    /// The account record of `address`.
    pub fn account(address: &Address) -> StateKey {
        StateKey::new(Namespace::Account, address.0.to_vec())
    }

    /// The code of contract `address`.
    pub fn code(address: &Address) -> StateKey {
        StateKey::new(Namespace::Code, address.0.to_vec())
    }

    /// Storage slot `key` of `contract`.
    pub fn storage(contract: &Address, key: impl Into<Vec<u8>>) -> StateKey {
        StateKey::new(Namespace::Storage(*contract), key)
    }

    /// The 256-bit tree key: `keccak256(STATE_KEY tag || namespace || key)`.
    pub fn hash(&self) -> Hash {
        let mut ns = Vec::with_capacity(21);
        self.namespace.encode_to(&mut ns);
        keccak256_parts(&[domain::STATE_KEY, &ns, &self.key])
    }
}

impl Encode for StateKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.namespace.encode_to(out);
        put_bytes(out, &self.key);
    }
}

impl Decode for StateKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StateKey {
            namespace: Namespace::decode_from(r)?,
            key: r.bytes(STATE_KEY_BYTES_MAX, "state key")?,
        })
    }
}

/// Hash of a stored value, as committed to by its leaf.
pub fn value_hash(value: &[u8]) -> Hash {
    keccak256(value)
}

/// Hash of a leaf holding `value_hash` under `key`.
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    keccak256_parts(&[domain::STATE_LEAF, &key.0, &value_hash.0])
}

/// Hash of a binary inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    keccak256_parts(&[domain::STATE_NODE, &left.0, &right.0])
}

/// Bit `i` of `key`, most significant bit of byte 0 first (bit 0 picks the
/// root's left or right half).
pub fn key_bit(key: &Hash, i: usize) -> bool {
    (key.0[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// Number of leading bits `a` and `b` share.
pub fn common_prefix_bits(a: &Hash, b: &Hash) -> usize {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return i * 8 + diff.leading_zeros() as usize;
        }
    }
    256
}

/// The leaf a proof ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofLeaf {
    /// The leaf's key hash: the queried key for an inclusion proof, another
    /// key sharing the path for a non-inclusion proof.
    pub key: Hash,
    /// Hash of the leaf's value.
    pub value_hash: Hash,
}

impl Encode for ProofLeaf {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.key.encode_to(out);
        self.value_hash.encode_to(out);
    }
}

impl Decode for ProofLeaf {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProofLeaf {
            key: Hash::decode_from(r)?,
            value_hash: Hash::decode_from(r)?,
        })
    }
}

/// A proof that a key has a given value, or no value, under a state root.
///
/// The path from the root follows the key's bits; `siblings[i]` is the hash
/// of the other child at depth `i`. The path ends at `leaf`, or at an empty
/// subtree when `leaf` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseMerkleProof {
    pub leaf: Option<ProofLeaf>,
    pub siblings: Vec<Hash>,
}

/// Why a proof does not show what it was asked to show.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    #[error("proof has {len} siblings, over the maximum of {max}")]
    TooManySiblings { len: usize, max: usize },
    #[error("proof leaf is for key {leaf_key}, not the queried key {key}")]
    WrongLeafKey { key: Hash, leaf_key: Hash },
    #[error("proof leaf for key {key} holds a different value")]
    WrongValue { key: Hash },
    #[error("proof shows key {key} is present, but absence was claimed")]
    KeyPresent { key: Hash },
    #[error(
        "proof leaf {leaf_key} shares only {shared_bits} bits with {key}, fewer than its depth {depth}"
    )]
    LeafOffPath {
        key: Hash,
        leaf_key: Hash,
        shared_bits: usize,
        depth: usize,
    },
    #[error("proof computes root {computed}, expected {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
}

impl SparseMerkleProof {
    /// Checks that under `root`, `key` holds `value` (`None`: is absent).
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&[u8]>) -> Result<(), ProofError> {
        if self.siblings.len() > PROOF_SIBLINGS_MAX {
            return Err(ProofError::TooManySiblings {
                len: self.siblings.len(),
                max: PROOF_SIBLINGS_MAX,
            });
        }
        let depth = self.siblings.len();
        match (&self.leaf, value) {
            (Some(leaf), Some(value)) => {
                if leaf.key != *key {
                    return Err(ProofError::WrongLeafKey {
                        key: *key,
                        leaf_key: leaf.key,
                    });
                }
                if leaf.value_hash != value_hash(value) {
                    return Err(ProofError::WrongValue { key: *key });
                }
            }
            (Some(leaf), None) => {
                if leaf.key == *key {
                    return Err(ProofError::KeyPresent { key: *key });
                }
                // The other leaf must sit on the queried key's path, or the
                // proof says nothing about where the queried key would be.
                let shared_bits = common_prefix_bits(&leaf.key, key);
                if shared_bits < depth {
                    return Err(ProofError::LeafOffPath {
                        key: *key,
                        leaf_key: leaf.key,
                        shared_bits,
                        depth,
                    });
                }
            }
            (None, Some(_)) => return Err(ProofError::WrongValue { key: *key }),
            (None, None) => {}
        }
        let computed = self.root_for(key);
        if computed != *root {
            return Err(ProofError::RootMismatch {
                expected: *root,
                computed,
            });
        }
        Ok(())
    }

    /// Checks that `key` holds `value` under `root`.
    pub fn verify_inclusion(
        &self,
        root: &Hash,
        key: &Hash,
        value: &[u8],
    ) -> Result<(), ProofError> {
        self.verify(root, key, Some(value))
    }

    /// Checks that `key` is absent under `root`.
    pub fn verify_exclusion(&self, root: &Hash, key: &Hash) -> Result<(), ProofError> {
        self.verify(root, key, None)
    }

    /// The root this proof implies along `key`'s path.
    fn root_for(&self, key: &Hash) -> Hash {
        let mut current = match &self.leaf {
            Some(leaf) => leaf_hash(&leaf.key, &leaf.value_hash),
            None => Hash::ZERO,
        };
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            current = if key_bit(key, depth) {
                node_hash(sibling, &current)
            } else {
                node_hash(&current, sibling)
            };
        }
        current
    }
}

impl Encode for SparseMerkleProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_option(out, &self.leaf);
        put_seq(out, &self.siblings);
    }
}

impl Decode for SparseMerkleProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SparseMerkleProof {
            leaf: r.option("proof leaf", ProofLeaf::decode_from)?,
            siblings: r.seq(PROOF_SIBLINGS_MAX, 32, "proof siblings", Hash::decode_from)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Limits, decode};

    fn two_leaf_tree() -> (Hash, Hash, Hash, Hash, Hash) {
        // Keys differing in bit 0: the root is one inner node over two leaves.
        let mut a = [0u8; 32];
        a[31] = 1;
        let mut b = [0u8; 32];
        b[0] = 0x80;
        let (a, b) = (Hash(a), Hash(b));
        let la = leaf_hash(&a, &value_hash(b"va"));
        let lb = leaf_hash(&b, &value_hash(b"vb"));
        (a, b, la, lb, node_hash(&la, &lb))
    }

    #[test]
    fn inclusion_proof_verifies_and_rejects_other_values_keys_and_roots() {
        let (a, b, _la, lb, root) = two_leaf_tree();
        let proof = SparseMerkleProof {
            leaf: Some(ProofLeaf {
                key: a,
                value_hash: value_hash(b"va"),
            }),
            siblings: vec![lb],
        };
        proof.verify(&root, &a, Some(b"va")).unwrap();
        assert!(proof.verify(&root, &a, Some(b"vx")).is_err());
        assert!(proof.verify(&root, &b, Some(b"va")).is_err());
        assert!(proof.verify(&root, &a, None).is_err());
        assert!(proof.verify(&Hash::ZERO, &a, Some(b"va")).is_err());
    }

    #[test]
    fn non_inclusion_proof_through_an_empty_subtree_verifies() {
        let (a, _b, la, lb, root) = two_leaf_tree();
        // A key under `a`'s leaf position: shares bit 0 (=0) with `a`.
        let c = Hash([0x01; 32]);
        let proof = SparseMerkleProof {
            leaf: Some(ProofLeaf {
                key: a,
                value_hash: value_hash(b"va"),
            }),
            siblings: vec![lb],
        };
        proof.verify(&root, &c, None).unwrap();
        assert!(proof.verify(&root, &c, Some(b"va")).is_err());
        let empty = SparseMerkleProof {
            leaf: None,
            siblings: vec![],
        };
        empty.verify(&Hash::ZERO, &c, None).unwrap();
        assert!(empty.verify(&la, &c, None).is_err());
    }

    #[test]
    fn non_inclusion_leaf_off_the_key_path_is_rejected() {
        let (a, b, la, _lb, root) = two_leaf_tree();
        // Claim `b`'s leaf where `a`'s path goes: the prefix check refuses it
        // before hashing.
        let proof = SparseMerkleProof {
            leaf: Some(ProofLeaf {
                key: b,
                value_hash: value_hash(b"vb"),
            }),
            siblings: vec![la],
        };
        assert!(matches!(
            proof.verify(&root, &a, None),
            Err(ProofError::LeafOffPath { .. })
        ));
    }

    #[test]
    fn proof_codec_round_trips_and_rejects_trailing_bytes() {
        let (a, _b, _la, lb, _root) = two_leaf_tree();
        let proof = SparseMerkleProof {
            leaf: Some(ProofLeaf {
                key: a,
                value_hash: value_hash(b"va"),
            }),
            siblings: vec![lb, Hash::ZERO],
        };
        let bytes = proof.to_bytes();
        assert_eq!(bytes.len(), 1 + 64 + 4 + 64);
        let limits = Limits::default();
        assert_eq!(decode::<SparseMerkleProof>(&bytes, &limits), Ok(proof));
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<SparseMerkleProof>(&long, &limits).is_err());
    }

    #[test]
    fn proof_json_round_trips() {
        let (a, _b, _la, lb, _root) = two_leaf_tree();
        let proof = SparseMerkleProof {
            leaf: Some(ProofLeaf {
                key: a,
                value_hash: value_hash(b"va"),
            }),
            siblings: vec![lb],
        };
        let json = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            serde_json::from_str::<SparseMerkleProof>(&json).unwrap(),
            proof
        );
    }

    #[test]
    fn namespaces_separate_key_spaces_and_round_trip() {
        let contract = Address([7; 20]);
        let keys = [
            StateKey::new(Namespace::System, b"k".to_vec()),
            StateKey::new(Namespace::Account, b"k".to_vec()),
            StateKey::new(Namespace::Code, b"k".to_vec()),
            StateKey::storage(&contract, b"k".to_vec()),
        ];
        let limits = Limits::default();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(decode::<StateKey>(&k.to_bytes(), &limits).as_ref(), Ok(k));
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(&serde_json::from_str::<StateKey>(&json).unwrap(), k);
            for other in &keys[i + 1..] {
                assert_ne!(k.hash(), other.hash());
            }
        }
    }
}
