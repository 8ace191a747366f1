//! `stele-node start` as an operator runs it: a port clash is a clear error
//! at once, before the node opens its data or starts consensus.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_stele-node");

fn node(args: &[&str]) -> Output {
    Command::new(NODE).args(args).output().unwrap()
}

/// A one-validator testnet in `dir`; the home of its validator.
fn one_validator(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("net");
    let run = node(&[
        "testnet",
        "--validators",
        "1",
        "--accounts",
        "0",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.join("node0")
}

/// Replaces `key = ...` in `[section]` of the home's config.toml.
fn set(home: &Path, section: &str, key: &str, value: &str) {
    let path = home.join("config.toml");
    let mut doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let table = doc
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    table.insert(key.into(), value.into());
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
}

fn start_fails_at_once(home: &Path) -> String {
    let started = Instant::now();
    let run = node(&["start", "--home", home.to_str().unwrap()]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "the node started: {stderr}");
    // Before the listeners were bound first, the clash showed after the
    // node had opened its data and run consensus for a while.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {stderr}");
    assert!(
        !home.join("data").exists(),
        "the node opened its data: {stderr}"
    );
    stderr
}

#[test]
fn an_rpc_port_in_use_stops_the_start_at_once_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let home = one_validator(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    set(&home, "p2p", "listen", "127.0.0.1:0");
    set(&home, "rpc", "listen", &addr);
    let stderr = start_fails_at_once(&home);
    assert!(
        stderr.contains(&format!("cannot listen for JSON-RPC on {addr}")),
        "{stderr}"
    );
}

#[test]
fn a_metrics_port_in_use_stops_the_start_at_once_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let home = one_validator(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    set(&home, "p2p", "listen", "127.0.0.1:0");
    set(&home, "rpc", "listen", "127.0.0.1:0");
    set(&home, "metrics", "listen", &addr);
    let stderr = start_fails_at_once(&home);
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {addr}")),
        "{stderr}"
    );
}
