//! A missing or corrupt node on disk is an error, never a panic or a wrong
//! answer.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use stele_state::rocksdb::IteratorMode;
use stele_state::{CF_NODES, State, StateError, StateKey};
use stele_types::Address;

use common::{temp_state, uncached_config};

fn key(i: u32) -> StateKey {
    StateKey::storage(&Address([3; 20]), i.to_le_bytes().to_vec())
}

fn node_keys(state: &State) -> Vec<Vec<u8>> {
    let cf = state.column_family(CF_NODES).unwrap();
    state
        .db()
        .unwrap()
        .iterator_cf(cf, IteratorMode::Start)
        .map(|e| e.unwrap().0.to_vec())
        .collect()
}

/// Every read and proof is either right or an error.
fn check_reads(state: &State, expected: &BTreeMap<StateKey, Vec<u8>>) -> usize {
    let mut errors = 0;
    for i in 0..60 {
        let k = key(i);
        match state.get(&k, 1) {
            Ok(v) => assert_eq!(v.as_ref(), expected.get(&k), "wrong answer for key {i}"),
            Err(
                StateError::MissingNode { .. }
                | StateError::CorruptNode { .. }
                | StateError::NodeHashMismatch { .. },
            ) => errors += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
        if let Ok((v, _)) = state.prove(&k, 1) {
            assert_eq!(v.as_ref(), expected.get(&k));
        }
    }
    errors
}

#[test]
fn deleted_node_gives_missing_node_error() {
    let (_dir, mut state) = temp_state(uncached_config());
    let expected: BTreeMap<_, _> = (0..40).map(|i| (key(i), vec![i as u8; 3])).collect();
    let writes = expected
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    state.commit(1, &writes).unwrap();
    let cf = state.column_family(CF_NODES).unwrap();
    for node in node_keys(&state) {
        let bytes = state.db().unwrap().get_cf(cf, &node).unwrap().unwrap();
        state.db().unwrap().delete_cf(cf, &node).unwrap();
        assert!(
            check_reads(&state, &expected) > 0,
            "deleting a node went unnoticed"
        );
        let err = state.get(&key(0), 1).err();
        if let Some(e) = err {
            assert!(e.to_string().contains("missing"), "{e}");
        }
        state.db().unwrap().put_cf(cf, &node, bytes).unwrap();
    }
    assert_eq!(check_reads(&state, &expected), 0);
}

#[test]
fn corrupt_node_bytes_give_an_error_not_a_wrong_answer() {
    let (_dir, mut state) = temp_state(uncached_config());
    let expected: BTreeMap<_, _> = (0..40).map(|i| (key(i), vec![i as u8; 3])).collect();
    let writes = expected
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    state.commit(1, &writes).unwrap();
    let cf = state.column_family(CF_NODES).unwrap();
    for node in node_keys(&state) {
        let bytes = state.db().unwrap().get_cf(cf, &node).unwrap().unwrap();
        let mut forgeries = vec![Vec::new(), bytes[..bytes.len() - 1].to_vec()];
        for at in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            let mut f = bytes.clone();
            f[at] ^= 0x10;
            forgeries.push(f);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        forgeries.push(longer);
        for forged in forgeries {
            state.db().unwrap().put_cf(cf, &node, &forged).unwrap();
            assert!(
                check_reads(&state, &expected) > 0,
                "corruption went unnoticed"
            );
        }
        state.db().unwrap().put_cf(cf, &node, bytes).unwrap();
    }
    assert_eq!(check_reads(&state, &expected), 0);
}

#[test]
fn commit_on_a_corrupt_tree_fails_cleanly() {
    let (_dir, mut state) = temp_state(uncached_config());
    let writes = (0..40).map(|i| (key(i), Some(vec![1]))).collect();
    state.commit(1, &writes).unwrap();
    let cf = state.column_family(CF_NODES).unwrap();
    for node in node_keys(&state) {
        state.db().unwrap().delete_cf(cf, &node).unwrap();
    }
    let more = (0..40).map(|i| (key(i), Some(vec![2]))).collect();
    assert!(matches!(
        state.commit(2, &more),
        Err(StateError::MissingNode { .. })
    ));
    assert_eq!(state.latest_version(), Some(1));
}
