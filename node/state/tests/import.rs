//! A version imported from sorted entries (snapshot sync, ADR 0012) is the
//! version a commit of the same entries makes: the same root, the same
//! tree nodes and flat index byte for byte, and later commits on it agree.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use stele_state::{CF_FLAT, CF_NODES, CF_ROOTS, State, StateError, StateKey};
use stele_types::{Address, Hash};

use common::{reference_root, temp_state, test_config};

/// `n` entries over every namespace, with values of varied lengths.
fn entries(n: u32, salt: u8) -> BTreeMap<StateKey, Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut address = Address([salt; 20]);
            address.0[..4].copy_from_slice(&i.to_be_bytes());
            let key = match i % 4 {
                0 => StateKey::account(&address),
                1 => StateKey::code(&address),
                2 => StateKey::storage(&Address([salt; 20]), i.to_be_bytes().to_vec()),
                _ => StateKey::new(stele_state::Namespace::System, format!("sys/{i}")),
            };
            (key, vec![salt ^ (i as u8); 1 + (i as usize % 70)])
        })
        .collect()
}

/// A column family's keys and values, in order.
type Column = Vec<(Box<[u8]>, Box<[u8]>)>;

fn column(state: &State, cf: &str) -> Column {
    let cf = state.column_family(cf).unwrap();
    state
        .db()
        .unwrap()
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(Result::unwrap)
        .collect()
}

/// Imports `entries` at `version` in key-hash order.
fn import(state: &mut State, version: u64, entries: &BTreeMap<StateKey, Vec<u8>>) -> Hash {
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|(k, _)| k.hash());
    let mut importer = state.import(version).unwrap();
    for (k, v) in sorted {
        importer.push(k.clone(), v.clone()).unwrap();
    }
    importer.finish().unwrap()
}

#[test]
fn an_import_writes_exactly_what_one_commit_of_the_same_entries_writes() {
    for n in [0, 1, 2, 3, 17, 300, 3000] {
        let all = entries(n, 5);
        let (_a, mut committed) = temp_state(test_config(10));
        let writes = all
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let root = committed.commit(7, &writes).unwrap();
        let (_b, mut imported) = temp_state(test_config(10));
        assert_eq!(import(&mut imported, 7, &all), root, "{n} entries");
        assert_eq!(root, reference_root(&all));
        for cf in [CF_NODES, CF_FLAT, CF_ROOTS] {
            assert!(
                column(&committed, cf) == column(&imported, cf),
                "{cf}, {n} entries"
            );
        }
        assert_eq!(
            (imported.latest_version(), imported.oldest_version()),
            (Some(7), Some(7))
        );
        // Reads, proofs and the next commit work on it as on the other.
        for (k, v) in all.iter().take(50) {
            assert_eq!(imported.get(k, 7).unwrap().as_ref(), Some(v));
            let (_, proof) = imported.prove(k, 7).unwrap();
            proof.verify(&root, &k.hash(), Some(v)).unwrap();
        }
        let mut next: BTreeMap<StateKey, Option<Vec<u8>>> = entries(n / 2, 9)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for k in all.keys().step_by(3) {
            next.insert(k.clone(), None);
        }
        assert_eq!(
            imported.commit(8, &next).unwrap(),
            committed.commit(8, &next).unwrap()
        );
    }
}

#[test]
fn an_import_refuses_disorder_and_a_state_with_versions() {
    let all = entries(10, 1);
    let mut sorted: Vec<_> = all.iter().collect();
    sorted.sort_by_key(|(k, _)| k.hash());
    let (_dir, mut state) = temp_state(test_config(10));
    let mut importer = state.import(3).unwrap();
    importer.push(sorted[1].0.clone(), vec![1]).unwrap();
    assert!(matches!(
        importer.push(sorted[0].0.clone(), vec![1]),
        Err(StateError::ImportOutOfOrder { index: 1 })
    ));
    assert!(matches!(
        importer.push(sorted[1].0.clone(), vec![2]),
        Err(StateError::ImportOutOfOrder { .. })
    ));
    drop(importer);
    import(&mut state, 3, &all);
    assert!(matches!(
        state.import(4),
        Err(StateError::ImportIntoNonEmpty { latest: 3 })
    ));
}

#[test]
fn an_interrupted_import_leaves_nothing_behind_the_next_one() {
    // Enough to send batches to disk before the end.
    let first = entries(60_000, 2);
    let second = entries(500, 3);
    let dir = tempfile::tempdir().unwrap();
    {
        let mut state = State::open(dir.path(), test_config(10)).unwrap();
        let mut sorted: Vec<_> = first.iter().collect();
        sorted.sort_by_key(|(k, _)| k.hash());
        let mut importer = state.import(40).unwrap();
        for (k, v) in sorted {
            importer.push(k.clone(), v.clone()).unwrap();
        }
        // Dropped unfinished: batches reached the disk, no version did.
    }
    let mut state = State::open(dir.path(), test_config(10)).unwrap();
    assert_eq!(state.latest_version(), None);
    assert!(
        !column(&state, CF_FLAT).is_empty(),
        "nothing of it reached the disk"
    );
    let root = import(&mut state, 12, &second);
    let (_fresh_dir, mut fresh) = temp_state(test_config(10));
    assert_eq!(import(&mut fresh, 12, &second), root);
    for cf in [CF_NODES, CF_FLAT, CF_ROOTS] {
        assert!(column(&state, cf) == column(&fresh, cf), "{cf}");
    }
}
