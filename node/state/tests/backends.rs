//! The two stores under the state (ADR 0013) give the same answers: the
//! same write sets committed to a state on RocksDB and to one in memory
//! give equal roots, values at every retained version, proofs, pruning,
//! ordered pages (at the latest version and in a view held across
//! commits) and cursors over ranges, deletes and overwrites included.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use stele_state::{CommittedView, Namespace, State, StateConfig, StateError, StateKey};
use stele_types::Address;

use common::{reference_root, temp_state};

/// Keys over three namespaces, with shared raw-key prefixes so pages and
/// cursors cross many neighbours.
fn key(i: u8) -> StateKey {
    let raw = vec![i % 4, i];
    match i % 3 {
        0 => StateKey::new(Namespace::Account, raw),
        1 => StateKey::storage(&Address([1; 20]), raw),
        _ => StateKey::storage(&Address([2; 20]), raw),
    }
}

const UNIVERSE: u8 = 48;

fn namespaces() -> [Namespace; 3] {
    [Namespace::Account, key(1).namespace, key(2).namespace]
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    /// Delete every key of one namespace (what a contract clearing its
    /// storage does), leaving a run of deletes to iterate over.
    Clear(u8),
    Commit,
    Prune,
    /// Take a view, kept and read after later commits.
    View,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..UNIVERSE, proptest::collection::vec(any::<u8>(), 0..5)).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0..UNIVERSE).prop_map(Op::Delete),
        1 => (0..3u8).prop_map(Op::Clear),
        3 => Just(Op::Commit),
        1 => Just(Op::Prune),
        1 => Just(Op::View),
    ]
}

fn config(versions_kept: u64) -> StateConfig {
    StateConfig {
        versions_kept,
        block_cache_bytes: 1 << 20,
        // Compact after a few deletes, so the disk store's background
        // compaction runs during the sequence too.
        flat_deletes_compact: 4,
        // A node cache small enough to evict during the sequence: nodes
        // come back from it decoded and encoded, and from the store.
        node_cache_bytes_max: 24 << 10,
        ..StateConfig::default()
    }
}

fn cases() -> u32 {
    std::env::var("STELE_STATE_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

/// Keys and values read, in order.
type Reads = Vec<(Vec<u8>, Vec<u8>)>;

/// Every page of every namespace and prefix, in small pages, through the
/// latest version of `state`.
fn latest_pages(state: &State) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for ns in namespaces() {
        for prefix in [&[][..], &[1][..], &[3, 7][..], &[9][..]] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = state.iter_prefix(&ns, prefix, after.as_deref(), 3).unwrap();
                out.extend(page.entries);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
    }
    out
}

/// The same through a view, plus cursors over raw-key ranges with seeks.
fn view_reads(view: &CommittedView) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for ns in namespaces() {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = view.iter_prefix(&ns, &[], after.as_deref(), 2).unwrap();
            out.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for (from, until) in [
            (&[0][..], Some(&[2][..])),
            (&[1, 5][..], None),
            (&[3][..], Some(&[3][..])),
            (&[2][..], Some(&[1][..])),
        ] {
            let mut cursor = view.flat_cursor_between(&ns, from, until).unwrap();
            while let Some(k) = cursor.key().unwrap() {
                out.push((k.to_vec(), cursor.value().unwrap_or_default().to_vec()));
                cursor.advance();
            }
            // A seek backwards stays within the namespace.
            let mut cursor = view.flat_cursor_between(&ns, &[2], None).unwrap();
            cursor.seek(&[]).unwrap();
            out.push((
                cursor.key().unwrap().unwrap_or_default().to_vec(),
                Vec::new(),
            ));
        }
        let entries: Vec<u8> = (0..UNIVERSE).filter(|i| key(*i).namespace == ns).collect();
        for i in entries {
            out.push((vec![i], view.get(&key(i)).unwrap().unwrap_or_default()));
        }
    }
    out
}

fn pruned_or_root(state: &State, version: u64) -> Result<stele_types::Hash, String> {
    match state.root(version) {
        Ok(root) => Ok(root),
        Err(e @ (StateError::VersionPruned { .. } | StateError::UnknownVersion { .. })) => {
            Err(e.to_string())
        }
        Err(e) => panic!("root of {version}: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn disk_and_memory_give_the_same_roots_proofs_pages_and_views(
        versions_kept in 1u64..4,
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        let (_dir, mut disk) = temp_state(config(versions_kept));
        let mut memory = State::in_memory(config(versions_kept));
        prop_assert!(memory.is_in_memory() && !disk.is_in_memory());
        let mut pending: BTreeMap<StateKey, Option<Vec<u8>>> = BTreeMap::new();
        let mut current: BTreeMap<StateKey, Vec<u8>> = BTreeMap::new();
        // (on disk, in memory, what both read when taken)
        let mut views: Vec<(CommittedView, CommittedView, Reads)> = Vec::new();
        let mut version = 1u64;
        for op in ops.into_iter().chain([Op::Commit, Op::View, Op::Prune]) {
            match op {
                Op::Put(k, v) => { pending.insert(key(k), Some(v)); }
                Op::Delete(k) => { pending.insert(key(k), None); }
                Op::Clear(ns) => {
                    for i in (0..UNIVERSE).filter(|i| i % 3 == ns) {
                        pending.insert(key(i), None);
                    }
                }
                Op::Commit => {
                    for (k, v) in &pending {
                        match v {
                            Some(v) => current.insert(k.clone(), v.clone()),
                            None => current.remove(k),
                        };
                    }
                    let writes = std::mem::take(&mut pending);
                    let on_disk = disk.commit(version, &writes).unwrap();
                    let in_memory = memory.commit(version, &writes).unwrap();
                    prop_assert_eq!(on_disk, in_memory);
                    prop_assert_eq!(on_disk, reference_root(&current));
                    for i in 0..UNIVERSE {
                        let k = key(i);
                        prop_assert_eq!(disk.prove(&k, version).unwrap(), memory.prove(&k, version).unwrap());
                    }
                    prop_assert_eq!(latest_pages(&disk), latest_pages(&memory));
                    version += 1 + u64::from(version.is_multiple_of(4));
                }
                Op::Prune => {
                    let d = disk.prune().unwrap();
                    let m = memory.prune().unwrap();
                    prop_assert_eq!(d, m);
                    for v in 1..version {
                        prop_assert_eq!(pruned_or_root(&disk, v), pruned_or_root(&memory, v));
                        if disk.root(v).is_ok() {
                            for i in 0..UNIVERSE {
                                let k = key(i);
                                prop_assert_eq!(disk.get(&k, v).unwrap(), memory.get(&k, v).unwrap());
                            }
                        }
                    }
                }
                Op::View => {
                    if let (Some(d), Some(m)) = (disk.view(), memory.view()) {
                        let seen = view_reads(&d);
                        prop_assert_eq!(&seen, &view_reads(&m));
                        views.push((d, m, seen));
                    }
                }
            }
        }
        // Views taken earlier still read what they read then, in both.
        for (d, m, seen) in &views {
            prop_assert_eq!(d.version(), m.version());
            prop_assert_eq!(&view_reads(d), seen);
            prop_assert_eq!(&view_reads(m), seen);
        }
    }
}

#[test]
fn a_state_in_memory_has_no_column_families_of_its_callers() {
    let mut state = State::in_memory(StateConfig::default());
    assert!(matches!(state.db(), Err(StateError::InMemory { .. })));
    let writes = BTreeMap::from([(key(1), Some(b"v".to_vec()))]);
    let mut prepared = state.prepare_commit(1, &writes).unwrap();
    assert!(matches!(
        prepared.batch_mut(),
        Err(StateError::InMemory { .. })
    ));
    state.apply(prepared).unwrap();
    let view = state.view().unwrap();
    assert!(matches!(
        view.get_cf("blocks", b"k"),
        Err(StateError::MissingColumnFamily { .. })
    ));
    assert!(matches!(
        view.raw_iterator_cf("blocks", Vec::new(), vec![0xff]),
        Err(StateError::InMemory { .. })
    ));
    assert_eq!(view.get(&key(1)).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn a_commit_prepared_by_one_store_is_refused_by_the_other() {
    let (_dir, mut disk) = temp_state(config(2));
    let memory = State::in_memory(config(2));
    let writes = BTreeMap::from([(key(3), Some(b"x".to_vec()))]);
    let prepared = memory.prepare_commit(1, &writes).unwrap();
    assert!(matches!(
        disk.apply(prepared),
        Err(StateError::ForeignBatch)
    ));
    assert_eq!(disk.latest_version(), None);
}

/// A remote chain for a state in memory: fixed values, the keys asked,
/// and the namespaces that may not be iterated.
#[derive(Debug, Default)]
struct FakeRemote {
    values: BTreeMap<StateKey, Vec<u8>>,
    asked: std::sync::Mutex<Vec<StateKey>>,
    no_iteration: Vec<Namespace>,
}

impl stele_state::RemoteReads for FakeRemote {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        self.asked.lock().unwrap().push(key.clone());
        if key.key == b"broken" {
            return Err("the node did not answer".into());
        }
        Ok(self.values.get(key).cloned())
    }

    fn iterate(&self, namespace: &Namespace) -> Result<(), String> {
        match self.no_iteration.contains(namespace) {
            true => Err("cannot list a forked contract's storage".into()),
            false => Ok(()),
        }
    }
}

#[test]
fn a_state_over_a_remote_reads_what_it_does_not_hold_from_it() {
    let contract = Address([1; 20]);
    let held = |raw: &[u8]| StateKey::storage(&contract, raw);
    let remote = std::sync::Arc::new(FakeRemote {
        values: BTreeMap::from([
            (held(b"a"), b"remote a".to_vec()),
            (held(b"b"), b"remote b".to_vec()),
            (held(b"c"), b"remote c".to_vec()),
        ]),
        no_iteration: vec![Namespace::Storage(contract)],
        ..FakeRemote::default()
    });
    let mut state = State::in_memory_over(StateConfig::default(), remote.clone());
    // Written here: "a" overwritten, "b" deleted, "d" new.
    let writes = BTreeMap::from([
        (held(b"a"), Some(b"local a".to_vec())),
        (held(b"b"), None),
        (held(b"d"), Some(b"local d".to_vec())),
    ]);
    state.commit(1, &writes).unwrap();
    let view = state.view().unwrap();
    assert_eq!(view.get(&held(b"a")).unwrap(), Some(b"local a".to_vec()));
    assert_eq!(view.get(&held(b"b")).unwrap(), None);
    assert_eq!(view.get(&held(b"c")).unwrap(), Some(b"remote c".to_vec()));
    assert_eq!(view.get(&held(b"d")).unwrap(), Some(b"local d".to_vec()));
    assert_eq!(view.get(&held(b"e")).unwrap(), None);
    // The remote was asked only for what was never written here.
    assert_eq!(*remote.asked.lock().unwrap(), [held(b"c"), held(b"e")]);
    // Its errors and refusals are the state's errors, never a wrong answer.
    assert!(matches!(
        view.get(&held(b"broken")),
        Err(StateError::Remote { reason }) if reason == "the node did not answer"
    ));
    assert!(matches!(
        view.flat_cursor_between(&Namespace::Storage(contract), b"", None),
        Err(StateError::Remote { .. })
    ));
    assert!(matches!(
        state.iter_prefix(&Namespace::Storage(contract), b"", None, 10),
        Err(StateError::Remote { .. })
    ));
    // Another namespace iterates over what is held here.
    let page = view
        .iter_prefix(&Namespace::Storage(Address([2; 20])), b"", None, 10)
        .unwrap();
    assert!(page.entries.is_empty());
}
