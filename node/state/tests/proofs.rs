//! Proofs from the store verify with `stele-types` alone; proofs for another
//! key, value or root, or with any byte flipped, fail.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use stele_state::{Namespace, SparseMerkleProof, StateKey};
use stele_types::codec::{Encode, Limits, decode};
use stele_types::{Address, Hash};

use common::{temp_state, test_config};

fn key(i: u32) -> StateKey {
    StateKey::storage(&Address([9; 20]), i.to_le_bytes().to_vec())
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

#[test]
fn inclusion_and_non_inclusion_proofs_verify_against_the_root() {
    let (_dir, mut state) = temp_state(test_config(10));
    let writes: BTreeMap<_, _> = (0..300).map(|i| (key(i), Some(value(i)))).collect();
    let root = state.commit(1, &writes).unwrap();
    for i in 0..300 {
        let (got, proof) = state.prove(&key(i), 1).unwrap();
        assert_eq!(got, Some(value(i)));
        proof
            .verify(&root, &key(i).hash(), Some(&value(i)))
            .unwrap();
    }
    for i in 300..400 {
        let (got, proof) = state.prove(&key(i), 1).unwrap();
        assert_eq!(got, None);
        proof.verify(&root, &key(i).hash(), None).unwrap();
    }
}

#[test]
fn proofs_of_empty_and_single_key_trees_verify() {
    let (_dir, mut state) = temp_state(test_config(10));
    let root = state.commit(1, &BTreeMap::new()).unwrap();
    assert_eq!(root, Hash::ZERO);
    let (_, proof) = state.prove(&key(1), 1).unwrap();
    proof.verify(&root, &key(1).hash(), None).unwrap();
    let root = state
        .commit(2, &BTreeMap::from([(key(1), Some(value(1)))]))
        .unwrap();
    let (_, proof) = state.prove(&key(1), 2).unwrap();
    proof
        .verify(&root, &key(1).hash(), Some(&value(1)))
        .unwrap();
    let (_, proof) = state.prove(&key(2), 2).unwrap();
    proof.verify(&root, &key(2).hash(), None).unwrap();
}

#[test]
fn proofs_fail_for_another_key_value_or_root_and_for_any_flipped_byte() {
    let (_dir, mut state) = temp_state(test_config(10));
    let writes: BTreeMap<_, _> = (0..64).map(|i| (key(i), Some(value(i)))).collect();
    let root = state.commit(1, &writes).unwrap();
    let other_root = state
        .commit(2, &BTreeMap::from([(key(0), Some(b"changed".to_vec()))]))
        .unwrap();
    let limits = Limits::default();
    for (i, present) in [(3u32, true), (17, true), (1000, false), (1001, false)] {
        let (_, proof) = state.prove(&key(i), 1).unwrap();
        let k = key(i).hash();
        let v = present.then(|| value(i));
        proof.verify(&root, &k, v.as_deref()).unwrap();
        // Another key, another value, another root.
        assert!(
            proof
                .verify(&root, &key(i + 1).hash(), v.as_deref())
                .is_err()
        );
        assert!(proof.verify(&root, &k, Some(b"other")).is_err());
        if present {
            assert!(proof.verify(&root, &k, None).is_err());
        }
        assert!(proof.verify(&other_root, &k, v.as_deref()).is_err());
        // Any byte of the encoding flipped: either it no longer decodes or it
        // no longer verifies.
        let bytes = proof.to_bytes();
        for at in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut forged = bytes.clone();
                forged[at] ^= mask;
                if let Ok(p) = decode::<SparseMerkleProof>(&forged, &limits) {
                    assert!(
                        p.verify(&root, &k, v.as_deref()).is_err(),
                        "flipping byte {at} with {mask:#x} still verifies"
                    );
                }
            }
        }
    }
}

#[test]
fn proof_json_round_trips_and_still_verifies() {
    let (_dir, mut state) = temp_state(test_config(10));
    let writes: BTreeMap<_, _> = (0..20).map(|i| (key(i), Some(value(i)))).collect();
    let root = state.commit(1, &writes).unwrap();
    let (_, proof) = state.prove(&key(5), 1).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    let back: SparseMerkleProof = serde_json::from_str(&json).unwrap();
    back.verify(&root, &key(5).hash(), Some(&value(5))).unwrap();
    let account = StateKey::new(Namespace::Account, vec![1]);
    let (_, proof) = state.prove(&account, 1).unwrap();
    proof.verify(&root, &account.hash(), None).unwrap();
}

/// A cut of the committed tree into parts by key-hash prefix
/// (`stele_types::snapshot`) rebuilds the root the store computed, so a
/// snapshot's parts can be checked against a certified root alone.
#[test]
fn a_cut_of_the_committed_tree_rebuilds_its_root() {
    use stele_types::snapshot::{Cut, Part, Prefix, subtree_hash};
    let (_dir, mut state) = temp_state(test_config(10));
    let writes: BTreeMap<_, _> = (0..1000).map(|i| (key(i), Some(value(i)))).collect();
    let root = state.commit(1, &writes).unwrap();
    let mut leaves: Vec<(Hash, Hash)> = (0..1000)
        .map(|i| (key(i).hash(), stele_types::keccak256(&value(i))))
        .collect();
    leaves.sort();
    for bits in [0u16, 1, 4, 8, 12] {
        let parts = (0u32..1 << bits)
            .map(|n| {
                let mut path = Hash::ZERO;
                path.0[..4].copy_from_slice(&(n << (32 - u32::from(bits.max(1)))).to_be_bytes());
                let prefix = Prefix::of(&path, bits).unwrap();
                let mine: Vec<_> = leaves
                    .iter()
                    .filter(|(k, _)| prefix.contains(k))
                    .copied()
                    .collect();
                Part {
                    prefix,
                    leaves: mine.len() as u64,
                    hash: subtree_hash(&mine, usize::from(bits)),
                }
            })
            .collect();
        Cut { parts }.verify(&root).unwrap();
    }
}
