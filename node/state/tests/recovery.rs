//! What opening does with a damaged RocksDB write-ahead log: refused under
//! `WalRecovery::Strict` (the default) with an error that says so, opened
//! without the damaged tail under `WalRecovery::DropDamagedTail`.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stele_state::{Namespace, State, StateConfig, StateKey, WalRecovery};

use common::test_config;

fn commit_versions(dir: &Path, versions: u64) {
    let mut state = State::open(dir, test_config(100)).unwrap();
    for v in 0..versions {
        let mut writes = BTreeMap::new();
        writes.insert(
            StateKey::new(Namespace::System, v.to_be_bytes().to_vec()),
            Some(vec![7u8; 64]),
        );
        state.commit(v, &writes).unwrap();
    }
}

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn with(recovery: WalRecovery) -> StateConfig {
    StateConfig {
        wal_recovery: recovery,
        ..test_config(100)
    }
}

#[test]
fn a_torn_log_tail_is_refused_strictly_and_dropped_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    commit_versions(dir.path(), 10);
    let log = newest_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let err = State::open(dir.path(), with(WalRecovery::Strict)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(!err.is_locked(), "{err}");
    let state = State::open(dir.path(), with(WalRecovery::DropDamagedTail)).unwrap();
    assert_eq!(state.latest_version(), Some(8), "the last commit is gone");
    drop(state);
    // Opened once without its tail, the database is whole again.
    let state = State::open(dir.path(), with(WalRecovery::Strict)).unwrap();
    assert_eq!(state.latest_version(), Some(8));
}

#[test]
fn a_second_open_of_an_open_database_says_it_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = State::open(dir.path(), test_config(100)).unwrap();
    let err = State::open(dir.path(), test_config(100)).unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(!err.is_corruption(), "{err}");
}
