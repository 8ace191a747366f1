//! Architecture invariant: a dApp that links `stele-client` gets neither
//! the node's storage engine nor its VM nor the RPC server.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::process::Command;

#[test]
fn the_client_has_no_rocksdb_wasmtime_or_server_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "stele-client",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.contains("jsonrpsee-http-client"),
        "unexpected tree:\n{tree}"
    );
    for banned in [
        "rocksdb",
        "wasmtime",
        "jsonrpsee-server",
        "stele-node",
        "stele-vm",
    ] {
        assert!(
            !tree.lines().any(|l| l.contains(banned)),
            "stele-client depends on {banned}:\n{tree}"
        );
    }
}
