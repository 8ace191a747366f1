//! The `stele-node` binary as an operator meets it (issue 24, item 10):
//! secret files readable by their owner only, a clear message for a second
//! node on a running home, and logs without colour codes when they do not
//! go to a terminal.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_stele-node");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn testnet_writes_funded_and_validator_keys_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let done = run(&[
        "testnet",
        "--validators",
        "2",
        "--accounts",
        "2",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(mode(&out.join("accounts.json")), 0o600);
    for node in ["node0", "node1"] {
        assert_eq!(mode(&out.join(node).join("node_key.json")), 0o600);
    }
    // Written once: a second run refuses to overwrite it.
    let again = run(&["testnet", "--output", out.to_str().unwrap()]);
    assert!(!again.status.success());
}

/// Kills the child when dropped (the test's own process only).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    // A port free for both the QUIC (UDP) and the RPC (TCP) listener.
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A one-validator home in `dir` on free ports.
fn init_home(dir: &Path) -> String {
    let home = dir.join("home").to_str().unwrap().to_owned();
    let p2p = format!("127.0.0.1:{}", free_port());
    let rpc = format!("127.0.0.1:{}", free_port());
    let init = run(&["init", "--home", &home, "--p2p", &p2p, "--rpc", &rpc]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    home
}

/// Starts `stele-node start --home home extra..` with its log piped, and
/// waits until it logs `wanted`; returns the process and the lines so far.
fn start_until(home: &str, extra: &[&str], wanted: &str) -> (Running, Vec<String>) {
    let mut node = Running(
        Command::new(BIN)
            .args(["start", "--home", home])
            .args(extra)
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = node.0.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if lines_tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut logged = Vec::new();
    while !logged.iter().any(|l: &String| l.contains(wanted)) {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => logged.push(line),
            Err(e) => panic!("no {wanted:?} in the log ({e}): {logged:#?}"),
        }
    }
    (node, logged)
}

#[test]
fn a_second_node_on_a_running_home_is_told_so_and_piped_logs_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let home = init_home(dir.path());
    let home = home.as_str();
    let (first, logged) = start_until(home, &[], "starting validator");
    assert!(
        logged.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a piped log: {logged:#?}"
    );

    let second = run(&["start", "--home", home]);
    let err = text(&second.stderr);
    assert!(!second.status.success(), "{err}");
    // The home is locked before the ports are bound, so the second
    // process is told who holds the home, not that the RPC port is taken;
    // a second node on the same data directory from another home meets
    // the database lock (tests/disk.rs).
    assert!(
        err.contains(&format!(
            "another stele-node is using {home} (pid {})",
            first.0.id()
        )),
        "{err}"
    );
    assert!(!err.contains("cannot listen"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped log: {err}"
    );
    // Nor may a reset delete the data under the running node.
    let reset = run(&["reset", "--home", home, "--yes"]);
    let err = text(&reset.stderr);
    assert!(!reset.status.success(), "{err}");
    assert!(err.contains("another stele-node is using"), "{err}");
    assert!(Path::new(home).join("data").exists());
}

#[test]
fn a_killed_node_with_a_cut_log_refuses_to_start_until_started_with_accept_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    let home = init_home(dir.path());
    let home = home.as_str();
    let (node, _) = start_until(home, &[], "starting validator");
    // Some blocks on disk, then SIGKILL (our own child).
    std::thread::sleep(Duration::from_millis(1_500));
    drop(node);
    let db = Path::new(home).join("data").join("db");
    let mut logs: Vec<_> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let log = logs.pop().unwrap();
    // Cut the log in half: writes the node had synced (and counted in its
    // high-water mark) are gone. (A tail torn past the last synced write
    // alone is dropped without asking: tests/disk.rs.)
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let refused = run(&["start", "--home", home]);
    let err = text(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("the database is damaged") && err.contains("--accept-data-loss"),
        "{err}"
    );
    let (_node, logged) = start_until(home, &["--accept-data-loss"], "starting validator");
    assert!(
        logged
            .iter()
            .any(|l| l.contains("ERROR") && l.contains("lost data it had synced")),
        "{logged:#?}"
    );
}
