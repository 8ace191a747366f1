//! Commits, versions, the flat index, the overlay and extra column families.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use stele_state::{Namespace, Overlay, State, StateError, StateKey};
use stele_types::{Address, Hash};

use common::{reference_root, temp_state, test_config};

fn storage(contract: u8, key: &[u8]) -> StateKey {
    StateKey::storage(&Address([contract; 20]), key.to_vec())
}

#[test]
fn reads_at_every_version_see_that_versions_values() {
    let (_dir, mut state) = temp_state(test_config(100));
    let k = storage(1, b"counter");
    for v in 1..=20u64 {
        let writes = BTreeMap::from([(k.clone(), Some(v.to_le_bytes().to_vec()))]);
        state.commit(v, &writes).unwrap();
    }
    for v in 1..=20u64 {
        assert_eq!(state.get(&k, v).unwrap(), Some(v.to_le_bytes().to_vec()));
    }
    assert!(matches!(
        state.get(&k, 21),
        Err(StateError::UnknownVersion { .. })
    ));
    assert!(matches!(
        state.commit(20, &BTreeMap::new()),
        Err(StateError::VersionNotIncreasing { .. })
    ));
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let k = storage(1, b"a");
    let root = {
        let mut state = State::open(dir.path(), test_config(10)).unwrap();
        state
            .commit(7, &BTreeMap::from([(k.clone(), Some(b"x".to_vec()))]))
            .unwrap()
    };
    let state = State::open(dir.path(), test_config(10)).unwrap();
    assert_eq!(state.latest_version(), Some(7));
    assert_eq!(state.root(7).unwrap(), root);
    assert_eq!(state.get(&k, 7).unwrap(), Some(b"x".to_vec()));
}

#[test]
fn empty_commit_keeps_the_root_and_delete_all_gives_the_zero_root() {
    let (_dir, mut state) = temp_state(test_config(10));
    let writes: BTreeMap<_, _> = (0..50u8)
        .map(|i| (storage(1, &[i]), Some(vec![i])))
        .collect();
    let root = state.commit(1, &writes).unwrap();
    assert_eq!(state.commit(2, &BTreeMap::new()).unwrap(), root);
    let deletes = writes.keys().map(|k| (k.clone(), None)).collect();
    assert_eq!(state.commit(3, &deletes).unwrap(), Hash::ZERO);
    assert_eq!(state.root(2).unwrap(), root);
    // Deleting absent keys changes nothing.
    let absent = BTreeMap::from([(storage(9, b"none"), None)]);
    assert_eq!(state.commit(4, &absent).unwrap(), Hash::ZERO);
}

#[test]
fn flat_index_lists_a_namespace_by_prefix_in_pages() {
    let (_dir, mut state) = temp_state(test_config(10));
    let mut writes = BTreeMap::new();
    for i in 0..30u8 {
        writes.insert(storage(1, &[b'a', i]), Some(vec![i]));
        writes.insert(storage(1, &[b'b', i]), Some(vec![i]));
        writes.insert(storage(2, &[b'a', i]), Some(vec![i]));
    }
    writes.insert(StateKey::new(Namespace::Account, vec![b'a']), Some(vec![0]));
    state.commit(1, &writes).unwrap();
    state
        .commit(2, &BTreeMap::from([(storage(1, &[b'a', 3]), None)]))
        .unwrap();
    let ns = Namespace::Storage(Address([1; 20]));
    let mut listed = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = state.iter_prefix(&ns, b"a", cursor.as_deref(), 7).unwrap();
        assert!(page.entries.len() <= 7);
        listed.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..30u8)
        .filter(|&i| i != 3)
        .map(|i| (vec![b'a', i], vec![i]))
        .collect();
    assert_eq!(listed, expected);
    let all = state.iter_prefix(&ns, b"", None, 1000).unwrap();
    assert_eq!(all.entries.len(), 59);
    assert!(all.next.is_none());
    assert!(matches!(
        state.iter_prefix(&ns, b"", None, 1_000_000),
        Err(StateError::IterLimitTooLarge { .. })
    ));
}

#[test]
fn overlay_writes_commit_to_the_same_root_as_the_reference() {
    let (_dir, mut state) = temp_state(test_config(10));
    let base: BTreeMap<_, _> = (0..10u8)
        .map(|i| (storage(1, &[i]), Some(vec![i])))
        .collect();
    state.commit(1, &base).unwrap();
    let mut overlay = Overlay::new(state.latest_snapshot());
    assert_eq!(overlay.get(&storage(1, &[4])).unwrap(), Some(vec![4]));
    overlay.put(storage(1, &[4]), b"new".to_vec());
    let call = overlay.checkpoint();
    overlay.delete(storage(1, &[5]));
    overlay.put(storage(2, b"x"), b"y".to_vec());
    overlay.revert_to(call).unwrap();
    overlay.delete(storage(1, &[6]));
    let writes = overlay.into_writes();
    let root = state.commit(2, &writes).unwrap();
    let mut model: BTreeMap<StateKey, Vec<u8>> = (0..10u8)
        .filter(|&i| i != 6)
        .map(|i| (storage(1, &[i]), vec![i]))
        .collect();
    model.insert(storage(1, &[4]), b"new".to_vec());
    assert_eq!(root, reference_root(&model));
}

#[test]
fn caller_writes_join_the_commit_batch_in_their_own_column_family() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut state =
            State::open_with_column_families(dir.path(), test_config(10), &["blocks"]).unwrap();
        let writes = BTreeMap::from([(storage(1, b"k"), Some(b"v".to_vec()))]);
        let mut prepared = state.prepare_commit(1, &writes).unwrap();
        let blocks = state.column_family("blocks").unwrap();
        prepared
            .batch_mut()
            .unwrap()
            .put_cf(blocks, b"block-1", b"header");
        let root = prepared.root();
        assert_eq!(state.apply(prepared).unwrap(), root);
        // A commit prepared on a version that has since moved on is refused.
        let stale = state.prepare_commit(2, &BTreeMap::new()).unwrap();
        state.commit(2, &BTreeMap::new()).unwrap();
        assert!(matches!(
            state.apply(stale),
            Err(StateError::StalePreparedCommit { .. })
        ));
    }
    // Reopening without naming the column family still opens it.
    let state = State::open(dir.path(), test_config(10)).unwrap();
    let blocks = state.column_family("blocks").unwrap();
    assert_eq!(
        state.db().unwrap().get_cf(blocks, b"block-1").unwrap(),
        Some(b"header".to_vec())
    );
    assert!(matches!(
        State::open_with_column_families(
            tempfile::tempdir().unwrap().path(),
            test_config(1),
            &["state_nodes"]
        ),
        Err(StateError::ReservedColumnFamily { .. })
    ));
}

#[test]
fn oversized_values_are_rejected_before_anything_is_written() {
    let (_dir, mut state) = temp_state(test_config(10));
    let max = state.config().value_bytes_max;
    let writes = BTreeMap::from([(storage(1, b"big"), Some(vec![0; max + 1]))]);
    assert!(matches!(
        state.commit(1, &writes),
        Err(StateError::ValueTooLarge { .. })
    ));
    assert_eq!(state.latest_version(), None);
}

/// Batches of 1 024 writes and more split the root's subtrees over two
/// threads: the roots are the reference roots, every value reads back
/// with a proof, through inserts, overwrites, deletes, and deletes down to
/// one key and to none.
#[test]
fn large_batches_updated_in_two_halves_give_the_reference_root() {
    use std::collections::BTreeMap;
    let (_dir, mut state) = temp_state(test_config(4));
    let key = |i: u32| storage((i % 3) as u8, &i.to_be_bytes());
    let mut model: BTreeMap<StateKey, Vec<u8>> = BTreeMap::new();
    let commit = |state: &mut stele_state::State,
                  model: &mut BTreeMap<StateKey, Vec<u8>>,
                  version: u64,
                  writes: BTreeMap<StateKey, Option<Vec<u8>>>| {
        for (k, v) in &writes {
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
        }
        let root = state.commit(version, &writes).unwrap();
        assert_eq!(root, reference_root(model), "version {version}");
        for (k, v) in model.iter().step_by(97) {
            let (value, proof) = state.prove(k, version).unwrap();
            assert_eq!(value.as_ref(), Some(v));
            proof.verify(&root, &k.hash(), value.as_deref()).unwrap();
        }
    };
    // 5 000 inserts, then 3 000 mixed writes, then all deleted but one,
    // then that one too (each batch over the threshold).
    commit(
        &mut state,
        &mut model,
        1,
        (0..5_000).map(|i| (key(i), Some(vec![1; 8]))).collect(),
    );
    let mixed = (0..3_000u32)
        .map(|i| match i % 3 {
            0 => (key(i), None),
            1 => (key(i), Some(i.to_le_bytes().to_vec())),
            _ => (key(10_000 + i), Some(vec![2; 3])),
        })
        .collect();
    commit(&mut state, &mut model, 2, mixed);
    let keep = model.keys().next().unwrap().clone();
    let all_but_one = model
        .keys()
        .filter(|k| **k != keep)
        .map(|k| (k.clone(), None))
        .collect();
    commit(&mut state, &mut model, 3, all_but_one);
    assert_eq!(model.len(), 1);
    let mut last: BTreeMap<StateKey, Option<Vec<u8>>> =
        (20_000..21_100).map(|i| (key(i), None)).collect();
    last.insert(keep, None);
    commit(&mut state, &mut model, 4, last);
    assert_eq!(state.root(4).unwrap(), stele_types::Hash::ZERO);
}
