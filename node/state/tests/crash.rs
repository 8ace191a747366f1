//! Crash safety: a child process commits (and prunes) in a loop and is killed
//! with SIGKILL at random moments; after each kill the reopened state's latest
//! version must be intact: its root recomputes from the model and every read,
//! proof and flat-index listing agrees.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stele_state::{Namespace, State, StateConfig, StateKey, WalRecovery};
use stele_types::Address;

use common::{reference_root, test_config};

const DIR_ENV: &str = "STELE_STATE_CRASH_DIR";
/// Set for a child that commits with `State::apply_unsynced`.
const UNSYNCED_ENV: &str = "STELE_STATE_CRASH_UNSYNCED";
const KEYS: u32 = 400;
const CONTRACT: Address = Address([0x42; 20]);

fn key(i: u32) -> StateKey {
    StateKey::storage(&CONTRACT, i.to_be_bytes().to_vec())
}

/// The writes of version `v`: a deterministic function of `v` alone, so the
/// parent can replay any prefix of versions.
fn writes_for(v: u64) -> BTreeMap<StateKey, Option<Vec<u8>>> {
    let mut writes = BTreeMap::new();
    for j in 0..40u64 {
        let i = ((v * 37 + j * 11) % u64::from(KEYS)) as u32;
        writes.insert(key(i), Some(v.to_le_bytes().to_vec()));
    }
    for j in 0..5u64 {
        let i = ((v * 53 + j * 7) % u64::from(KEYS)) as u32;
        writes.insert(key(i), None);
    }
    writes
}

fn model_at(latest: u64) -> BTreeMap<StateKey, Vec<u8>> {
    let mut model = BTreeMap::new();
    for v in 1..=latest {
        for (k, value) in writes_for(v) {
            match value {
                Some(value) => model.insert(k, value),
                None => model.remove(&k),
            };
        }
    }
    model
}

/// Run as a child process only: commits and prunes until killed.
#[test]
fn child_commits_until_killed() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let unsynced = std::env::var(UNSYNCED_ENV).is_ok_and(|v| v == "1");
    let mut state = State::open(&dir, test_config(3)).unwrap();
    let mut v = state.latest_version().unwrap_or(0) + 1;
    loop {
        if unsynced {
            let prepared = state.prepare_commit(v, &writes_for(v)).unwrap();
            state.apply_unsynced(prepared).unwrap();
        } else {
            state.commit(v, &writes_for(v)).unwrap();
        }
        state.prune().unwrap();
        v += 1;
    }
}

#[test]
fn latest_version_survives_sigkill_during_commits() {
    sigkill_rounds(false);
}

#[test]
fn unsynced_commits_survive_sigkill_too() {
    // The process dies, the operating system does not: a write that
    // returned is in its buffers and is read back after the restart.
    sigkill_rounds(true);
}

/// Opens the state after a kill as the node does (ADR 0007): refusing a
/// damaged log first, then, since a kill in the middle of a log write can
/// tear its last record (which held nothing that was synced), without the
/// damaged tail.
fn reopen(dir: &std::path::Path) -> State {
    match State::open(dir, test_config(3)) {
        Ok(state) => state,
        Err(e) if e.is_corruption() => {
            let lenient = StateConfig {
                wal_recovery: WalRecovery::DropDamagedTail,
                ..test_config(3)
            };
            State::open(dir, lenient).unwrap()
        }
        Err(e) => panic!("cannot open the state after a kill: {e}"),
    }
}

fn sigkill_rounds(unsynced: bool) {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("crash test seed {seed}");
    let mut rng = seed;
    let mut last_latest = 0;
    let started = Instant::now();
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_commits_until_killed", "--nocapture"])
            .env(DIR_ENV, dir.path())
            .env(UNSYNCED_ENV, if unsynced { "1" } else { "" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 350));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "child exited by itself: {status}");

        let state = reopen(dir.path());
        let Some(latest) = state.latest_version() else {
            continue;
        };
        assert!(
            latest >= last_latest,
            "round {round}: latest went backwards"
        );
        last_latest = latest;
        let model = model_at(latest);
        let root = state.root(latest).unwrap();
        assert_eq!(
            root,
            reference_root(&model),
            "round {round}, version {latest}"
        );
        for i in 0..KEYS {
            let k = key(i);
            assert_eq!(state.get(&k, latest).unwrap().as_ref(), model.get(&k));
        }
        for i in [0, 1, KEYS / 2] {
            let k = key(i);
            let (value, proof) = state.prove(&k, latest).unwrap();
            proof.verify(&root, &k.hash(), value.as_deref()).unwrap();
        }
        let listed = state
            .iter_prefix(&Namespace::Storage(CONTRACT), b"", None, 10_000)
            .unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .map(|(k, v)| (k.key.clone(), v.clone()))
            .collect();
        assert_eq!(listed.entries, expected);
        // Every retained version is still readable.
        let oldest = state.oldest_version().unwrap();
        for v in oldest..=latest {
            assert_eq!(state.root(v).unwrap(), reference_root(&model_at(v)));
        }
    }
    assert!(last_latest > 0, "the child never committed");
    println!(
        "crash rounds took {:?}, reached version {last_latest}",
        started.elapsed()
    );
}
