//! Architecture invariant: the light crates stay light. Each row names a
//! crate and what must never appear in its normal (non-dev) dependency tree,
//! so a contract test, a dApp or a tool that only runs blocks does not
//! compile the network stack, the storage engine or the VM it does not use.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::process::Command;

const NETWORK: &[&str] = &["tokio", "quinn", "jsonrpsee", "axum", "hyper"];
const STORAGE: &[&str] = &["rocksdb", "librocksdb-sys"];
const VM: &[&str] = &["wasmtime"];
const NODE_CRATES: &[&str] = &["stele-node", "stele-consensus"];

/// (crate, groups of banned dependencies).
const RULES: &[(&str, &[&[&str]])] = &[
    ("stele-types", &[NETWORK, STORAGE, VM, NODE_CRATES]),
    ("stele-consensus", &[NETWORK, STORAGE, VM, &["stele-node"]]),
    ("stele-abi", &[NETWORK, STORAGE, VM, NODE_CRATES]),
    ("stele-sdk", &[NETWORK, STORAGE, VM, NODE_CRATES]),
    (
        "stele-client",
        &[STORAGE, VM, NODE_CRATES, &["jsonrpsee-server", "stele-vm"]],
    ),
    ("stele-state", &[NETWORK, VM, NODE_CRATES]),
    ("stele-vm", &[NETWORK, STORAGE, NODE_CRATES]),
    // The executor and the testkit run on a state in memory unless a crate
    // asks for RocksDB (ADR 0013): a contract project does not build it.
    ("stele-exec", &[NETWORK, STORAGE, NODE_CRATES]),
    ("stele-testkit", &[NETWORK, STORAGE, NODE_CRATES]),
];

fn normal_tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn light_crates_do_not_pull_in_what_they_do_not_use() {
    let mut broken = Vec::new();
    for (package, groups) in RULES {
        let tree = normal_tree(package);
        assert!(
            tree.first().is_some_and(|p| p == package),
            "unexpected tree for {package}: {tree:?}"
        );
        for banned in groups.iter().flat_map(|g| g.iter()) {
            if tree.iter().any(|p| p == banned) {
                broken.push(format!("{package} depends on {banned}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_client_still_speaks_http() {
    // Guards the rule above against a tree that is empty for another reason.
    assert!(
        normal_tree("stele-client")
            .iter()
            .any(|p| p == "jsonrpsee-http-client")
    );
}
