//! Model-based property test: random put/delete/commit/prune sequences against
//! a `BTreeMap` model per version and a from-scratch reference root.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use stele_state::{Namespace, StateError, StateKey};
use stele_types::Address;

use common::{reference_root, temp_state, test_config};

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Commit,
    Prune,
}

/// A small key universe spread over namespaces, so keys collide on hash
/// prefixes and both namespaces and contracts are exercised.
fn universe_key(i: u8) -> StateKey {
    let raw = vec![i / 3, i];
    match i % 3 {
        0 => StateKey::new(Namespace::Account, raw),
        1 => StateKey::storage(&Address([1; 20]), raw),
        _ => StateKey::storage(&Address([2; 20]), raw),
    }
}

const UNIVERSE: u8 = 40;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..UNIVERSE, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0..UNIVERSE).prop_map(Op::Delete),
        2 => Just(Op::Commit),
        1 => Just(Op::Prune),
    ]
}

fn cases() -> u32 {
    std::env::var("STELE_STATE_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn tree_matches_model_and_reference_root_through_commits_and_prunes(
        versions_kept in 1u64..5,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let (_dir, mut state) = temp_state(test_config(versions_kept));
        let mut pending: BTreeMap<StateKey, Option<Vec<u8>>> = BTreeMap::new();
        let mut current: BTreeMap<StateKey, Vec<u8>> = BTreeMap::new();
        let mut versions: BTreeMap<u64, (BTreeMap<StateKey, Vec<u8>>, stele_types::Hash)> =
            BTreeMap::new();
        let mut next_version = 1u64;
        for op in ops.into_iter().chain([Op::Commit, Op::Prune]) {
            match op {
                Op::Put(k, v) => { pending.insert(universe_key(k), Some(v)); }
                Op::Delete(k) => { pending.insert(universe_key(k), None); }
                Op::Commit => {
                    for (k, v) in &pending {
                        match v {
                            Some(v) => current.insert(k.clone(), v.clone()),
                            None => current.remove(k),
                        };
                    }
                    let root = state.commit(next_version, &std::mem::take(&mut pending)).unwrap();
                    prop_assert_eq!(root, reference_root(&current));
                    for i in 0..UNIVERSE {
                        let key = universe_key(i);
                        prop_assert_eq!(state.get(&key, next_version).unwrap(), current.get(&key).cloned());
                    }
                    versions.insert(next_version, (current.clone(), root));
                    // Skip a height now and then: versions need only grow.
                    next_version += 1 + u64::from(next_version.is_multiple_of(5));
                }
                Op::Prune => {
                    state.prune().unwrap();
                    let oldest = state.oldest_version();
                    for (&v, (model, root)) in &versions {
                        if Some(v) < oldest {
                            let pruned = matches!(state.root(v), Err(StateError::VersionPruned { .. }));
                            prop_assert!(pruned);
                            continue;
                        }
                        prop_assert_eq!(state.root(v).unwrap(), *root);
                        for i in 0..UNIVERSE {
                            let key = universe_key(i);
                            prop_assert_eq!(state.get(&key, v).unwrap(), model.get(&key).cloned());
                        }
                    }
                    // Versions that were kept are exactly the last `versions_kept` heights.
                    if let (Some(latest), Some(oldest)) = (state.latest_version(), oldest) {
                        prop_assert_eq!(oldest, latest.saturating_sub(versions_kept - 1).max(1));
                    }
                }
            }
        }
    }
}

fn write_set() -> impl Strategy<Value = BTreeMap<StateKey, Option<Vec<u8>>>> {
    proptest::collection::btree_map(
        (0..UNIVERSE).prop_map(universe_key),
        proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 0..6)),
        0..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// What a validator relies on to propose a block while its parent is in
    /// its commit round: the root after the parent's and the child's write
    /// sets taken together (the child's winning) is the root after
    /// committing them one after the other.
    #[test]
    fn a_root_over_two_write_sets_at_once_is_the_root_after_both_commits(
        base in write_set(),
        parent in write_set(),
        child in write_set(),
    ) {
        let (_dir, mut state) = temp_state(test_config(8));
        state.commit(1, &base).unwrap();
        let mut both = parent.clone();
        both.extend(child.clone());
        let at_once = state.prepare_commit(3, &both).unwrap().root();
        state.commit(2, &parent).unwrap();
        let one_by_one = state.commit(3, &child).unwrap();
        prop_assert_eq!(at_once, one_by_one);
    }
}
