//! Shared test helpers: a naive from-scratch reference root and state setup.
#![allow(dead_code)]

use std::collections::BTreeMap;

use stele_state::{State, StateConfig, StateKey};
use stele_types::hash::domain;
use stele_types::{Hash, keccak256, keccak256_parts};

/// The state root computed from scratch by the binary definition, written
/// independently of the crate: empty is zero, one entry is its leaf, more
/// split on the next bit of the key hash.
pub fn reference_root(entries: &BTreeMap<StateKey, Vec<u8>>) -> Hash {
    let mut items: Vec<(Hash, Hash)> = entries
        .iter()
        .map(|(k, v)| (k.hash(), keccak256(v)))
        .collect();
    items.sort();
    subtree(&items, 0)
}

fn bit(key: &Hash, i: usize) -> bool {
    key.0[i / 8] & (0x80 >> (i % 8)) != 0
}

fn subtree(items: &[(Hash, Hash)], depth: usize) -> Hash {
    match items {
        [] => Hash::ZERO,
        [(key, value_hash)] => keccak256_parts(&[domain::STATE_LEAF, &key.0, &value_hash.0]),
        _ => {
            let split = items.partition_point(|(k, _)| !bit(k, depth));
            let left = subtree(&items[..split], depth + 1);
            let right = subtree(&items[split..], depth + 1);
            keccak256_parts(&[domain::STATE_NODE, &left.0, &right.0])
        }
    }
}

/// A state in a fresh temporary directory (kept alive by the returned guard).
pub fn temp_state(config: StateConfig) -> (tempfile::TempDir, State) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = State::open(dir.path(), config).expect("open state");
    (dir, state)
}

/// Small-cache config so tests open quickly.
pub fn test_config(versions_kept: u64) -> StateConfig {
    StateConfig {
        versions_kept,
        block_cache_bytes: 1 << 20,
        ..StateConfig::default()
    }
}

/// Without the node cache, so every read goes to disk (corruption tests).
pub fn uncached_config() -> StateConfig {
    StateConfig {
        node_cache_bytes_max: 0,
        ..test_config(10)
    }
}
