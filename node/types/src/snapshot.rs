//! The state tree cut into parts by key-hash prefix, each part checkable
//! on its own against a certified state root: the ground snapshot sync
//! stands on (issue 28).
//!
//! A [`Cut`] lists subtrees whose key-hash prefixes cover the key space
//! exactly once, in key order, each with its leaf count and hash under the
//! tree's rules (`docs/adr/0003-merkle-state.md`: empty is zero, one leaf
//! is its leaf hash, more split on the next bit). [`Cut::root`] rebuilds
//! the root from the parts alone, so a cut checked once against a
//! certified root vouches for every part, and [`Part::check`] checks the
//! leaves a peer sends for one part without any other part.

use crate::hash::Hash;
use crate::proof::{key_bit, leaf_hash, node_hash};

/// Bits in a key hash.
pub const KEY_BITS: u16 = 256;

/// The keys whose hashes start with the first `bits` bits of `path`
/// (the bits after them zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    bits: u16,
    path: Hash,
}

impl Prefix {
    /// The whole key space.
    pub const ALL: Prefix = Prefix {
        bits: 0,
        path: Hash::ZERO,
    };

    /// The first `bits` bits of `key`; `None` beyond [`KEY_BITS`].
    pub fn of(key: &Hash, bits: u16) -> Option<Prefix> {
        if bits > KEY_BITS {
            return None;
        }
        let mut path = Hash::ZERO;
        let whole = usize::from(bits / 8);
        path.0[..whole].copy_from_slice(&key.0[..whole]);
        let rest = bits % 8;
        if rest > 0 {
            path.0[whole] = key.0[whole] & (0xff << (8 - rest));
        }
        Some(Prefix { bits, path })
    }

    pub fn bits(&self) -> u16 {
        self.bits
    }

    /// The prefix's bits, the rest zero.
    pub fn path(&self) -> &Hash {
        &self.path
    }

    /// Whether `key` starts with this prefix.
    pub fn contains(&self, key: &Hash) -> bool {
        Prefix::of(key, self.bits).is_some_and(|p| p == *self)
    }

    /// The two halves one bit longer; `None` at full length.
    pub fn halves(&self) -> Option<(Prefix, Prefix)> {
        if self.bits >= KEY_BITS {
            return None;
        }
        let mut right = self.path;
        let i = usize::from(self.bits);
        right.0[i / 8] |= 0x80 >> (i % 8);
        let bits = self.bits + 1;
        Some((
            Prefix {
                bits,
                path: self.path,
            },
            Prefix { bits, path: right },
        ))
    }
}

/// One part of a cut: the subtree of the keys under `prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub prefix: Prefix,
    /// How many leaves (keys) it holds.
    pub leaves: u64,
    /// Its hash under the tree's rules: zero when empty, the leaf's hash
    /// for one leaf.
    pub hash: Hash,
}

/// Why a cut or a part's leaves do not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CutError {
    #[error("the parts do not cover the key space once in key order (at part {index})")]
    NotACover { index: usize },
    #[error("part {index} is empty but its hash is not zero")]
    EmptyNotZero { index: usize },
    #[error("more than 2^64 leaves")]
    TooManyLeaves,
    #[error("the parts make root {got}, not {expected}")]
    WrongRoot { expected: Hash, got: Hash },
    #[error("{got} leaves sent for a part of {expected}")]
    WrongCount { expected: u64, got: u64 },
    #[error("leaf {index} is not under the part's prefix or not in key order")]
    LeafOutOfPlace { index: usize },
    #[error("the leaves make {got}, not the part's hash {expected}")]
    WrongHash { expected: Hash, got: Hash },
}

/// A cut of the state tree: parts covering the key space once, in key
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub parts: Vec<Part>,
}

impl Cut {
    /// The root the parts make, or why they are no cut.
    pub fn root(&self) -> Result<Hash, CutError> {
        let mut next = 0;
        let (_, root) = combine(&self.parts, &mut next, Prefix::ALL)?;
        if next != self.parts.len() {
            return Err(CutError::NotACover { index: next });
        }
        Ok(root)
    }

    /// Checks the cut against the certified `root`.
    pub fn verify(&self, root: &Hash) -> Result<(), CutError> {
        let got = self.root()?;
        if got != *root {
            return Err(CutError::WrongRoot {
                expected: *root,
                got,
            });
        }
        Ok(())
    }
}

/// The leaf count and hash of the subtree under `at`, from the parts
/// starting at `parts[*next]`, which it consumes.
fn combine(parts: &[Part], next: &mut usize, at: Prefix) -> Result<(u64, Hash), CutError> {
    let index = *next;
    let part = parts.get(index).ok_or(CutError::NotACover { index })?;
    if part.prefix == at {
        if part.leaves == 0 && part.hash != Hash::ZERO {
            return Err(CutError::EmptyNotZero { index });
        }
        *next += 1;
        return Ok((part.leaves, part.hash));
    }
    // The part must lie strictly inside `at` to split it further.
    if part.prefix.bits <= at.bits || !at.contains(&part.prefix.path) {
        return Err(CutError::NotACover { index });
    }
    let (left, right) = at.halves().ok_or(CutError::NotACover { index })?;
    let (l, left_hash) = combine(parts, next, left)?;
    let (r, right_hash) = combine(parts, next, right)?;
    let leaves = l.checked_add(r).ok_or(CutError::TooManyLeaves)?;
    let hash = match (l, r) {
        (0, 0) => Hash::ZERO,
        // A lone leaf moves up: its subtree's hash is the leaf's.
        (1, 0) => left_hash,
        (0, 1) => right_hash,
        _ => node_hash(&left_hash, &right_hash),
    };
    Ok((leaves, hash))
}

/// The hash of the subtree at depth `depth` holding `leaves` (key hash,
/// value hash), sorted by key hash and sharing their first `depth` bits.
pub fn subtree_hash(leaves: &[(Hash, Hash)], depth: usize) -> Hash {
    match leaves {
        [] => Hash::ZERO,
        [(key, value_hash)] => leaf_hash(key, value_hash),
        _ if depth >= usize::from(KEY_BITS) => Hash::ZERO,
        _ => {
            let split = leaves.partition_point(|(k, _)| !key_bit(k, depth));
            node_hash(
                &subtree_hash(&leaves[..split], depth + 1),
                &subtree_hash(&leaves[split..], depth + 1),
            )
        }
    }
}

impl Part {
    /// Checks the leaves (key hash, value hash) a peer sent for this part:
    /// all of them, under its prefix, in strict key order, making its hash.
    pub fn check(&self, leaves: &[(Hash, Hash)]) -> Result<(), CutError> {
        let got = leaves.len() as u64;
        if got != self.leaves {
            return Err(CutError::WrongCount {
                expected: self.leaves,
                got,
            });
        }
        for (index, (key, _)) in leaves.iter().enumerate() {
            let ordered = index == 0 || leaves[index - 1].0 < *key;
            if !ordered || !self.prefix.contains(key) {
                return Err(CutError::LeafOutOfPlace { index });
            }
        }
        let got = subtree_hash(leaves, usize::from(self.prefix.bits));
        if got != self.hash {
            return Err(CutError::WrongHash {
                expected: self.hash,
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keccak256;

    /// `n` leaves with pseudo-random keys, sorted.
    fn leaves(n: u32) -> Vec<(Hash, Hash)> {
        let mut out: Vec<(Hash, Hash)> = (0..n)
            .map(|i| {
                (
                    keccak256(&i.to_le_bytes()),
                    keccak256(format!("v{i}").as_bytes()),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The cut of `all` into parts of at most `max` leaves (split deeper
    /// where a subtree holds more).
    fn cut(all: &[(Hash, Hash)], max: usize) -> (Cut, Vec<Vec<(Hash, Hash)>>) {
        fn go(
            all: &[(Hash, Hash)],
            at: Prefix,
            max: usize,
            parts: &mut Vec<Part>,
            chunks: &mut Vec<Vec<(Hash, Hash)>>,
        ) {
            let mine: Vec<_> = all
                .iter()
                .filter(|(k, _)| at.contains(k))
                .copied()
                .collect();
            if mine.len() <= max {
                parts.push(Part {
                    prefix: at,
                    leaves: mine.len() as u64,
                    hash: subtree_hash(&mine, usize::from(at.bits())),
                });
                chunks.push(mine);
                return;
            }
            let (l, r) = at.halves().unwrap();
            go(&mine, l, max, parts, chunks);
            go(&mine, r, max, parts, chunks);
        }
        let (mut parts, mut chunks) = (Vec::new(), Vec::new());
        go(all, Prefix::ALL, max, &mut parts, &mut chunks);
        (Cut { parts }, chunks)
    }

    #[test]
    fn any_cut_rebuilds_the_root_and_every_part_checks_alone() {
        for n in [0, 1, 2, 3, 17, 500] {
            let all = leaves(n);
            let root = subtree_hash(&all, 0);
            for max in [1, 2, 7, 64, 1000] {
                let (cut, chunks) = cut(&all, max);
                cut.verify(&root).unwrap();
                for (part, chunk) in cut.parts.iter().zip(&chunks) {
                    part.check(chunk).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_bad_cut_or_a_bad_chunk_is_refused() {
        let all = leaves(200);
        let root = subtree_hash(&all, 0);
        let (good, chunks) = cut(&all, 16);
        assert!(good.parts.len() > 8);
        // A part missing, repeated, or out of order.
        let mut missing = good.clone();
        missing.parts.remove(3);
        assert!(matches!(missing.root(), Err(CutError::NotACover { .. })));
        let mut repeated = good.clone();
        repeated.parts.insert(3, repeated.parts[3]);
        assert!(matches!(repeated.root(), Err(CutError::NotACover { .. })));
        let mut swapped = good.clone();
        swapped.parts.swap(2, 3);
        assert!(swapped.root().is_err());
        // A part's hash or count changed: another root.
        let mut lied = good.clone();
        lied.parts[1].hash = keccak256(b"lie");
        assert!(matches!(
            lied.verify(&root),
            Err(CutError::WrongRoot { .. })
        ));
        let mut empty = good.clone();
        empty.parts[1].leaves = 0;
        assert!(empty.verify(&root).is_err());
        // A chunk with a leaf changed, dropped, added or from elsewhere.
        let part = &good.parts[1];
        let chunk = &chunks[1];
        let mut changed = chunk.clone();
        changed[0].1 = keccak256(b"other value");
        assert!(matches!(
            part.check(&changed),
            Err(CutError::WrongHash { .. })
        ));
        assert!(matches!(
            part.check(&chunk[1..]),
            Err(CutError::WrongCount { .. })
        ));
        let mut foreign = chunk.clone();
        foreign[0] = chunks[5][0];
        assert!(part.check(&foreign).is_err());
        let mut unordered = chunk.clone();
        unordered.reverse();
        if unordered.len() > 1 {
            assert!(matches!(
                part.check(&unordered),
                Err(CutError::LeafOutOfPlace { .. })
            ));
        }
    }

    #[test]
    fn prefixes_split_and_contain_as_bits_say() {
        let key = Hash([0b1010_1100; 32]);
        let p = Prefix::of(&key, 3).unwrap();
        assert_eq!(p.path().0[0], 0b1010_0000);
        assert!(p.contains(&key));
        let (l, r) = p.halves().unwrap();
        assert_eq!((l.path().0[0], r.path().0[0]), (0b1010_0000, 0b1011_0000));
        assert!(l.contains(&key) && !r.contains(&key));
        assert!(Prefix::of(&key, 257).is_none());
        let full = Prefix::of(&key, 256).unwrap();
        assert!(full.halves().is_none() && full.contains(&key));
    }
}
