//! Builds the example counter with cargo for wasm32: the ABI is embedded,
//! only allowed sections remain, the code hash is the chain's, and two
//! copies of the source in different directories give identical bytes.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use std::path::{Path, PathBuf};

use stele_build::{BuildOptions, build};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A standalone workspace holding a copy of contracts/counter.
fn copy_counter(dir: &Path) -> PathBuf {
    let contracts = repo().join("contracts");
    let ws = std::fs::read_to_string(contracts.join("Cargo.toml")).unwrap();
    let members_start = ws.find("members = [").unwrap();
    let members_end = members_start + ws[members_start..].find(']').unwrap() + 1;
    let ws = format!(
        "{}members = [\"counter\"]{}",
        &ws[..members_start],
        &ws[members_end..]
    )
    .replace(
        "path = \"../sdk\"",
        &format!("path = \"{}\"", repo().join("sdk").display()),
    );
    std::fs::write(dir.join("Cargo.toml"), ws).unwrap();
    std::fs::copy(contracts.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::create_dir_all(dir.join("counter/src")).unwrap();
    for f in ["Cargo.toml", "src/lib.rs"] {
        std::fs::copy(
            contracts.join("counter").join(f),
            dir.join("counter").join(f),
        )
        .unwrap();
    }
    dir.join("counter")
}

#[test]
fn builds_are_reproducible_across_directories() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out_a = build(&copy_counter(a.path()), &BuildOptions::default()).unwrap();
    let out_b = build(&copy_counter(b.path()), &BuildOptions::default()).unwrap();
    assert_eq!(out_a.code_hash, out_b.code_hash);
    assert!(
        out_a.wasm == out_b.wasm,
        "two directories gave different bytes"
    );

    // The output is what the chain hashes and what stele-abi reads.
    assert_eq!(out_a.code_hash, stele_types::keccak256(&out_a.wasm));
    assert_eq!(out_a.size, out_a.wasm.len());
    assert_eq!(std::fs::read(&out_a.path).unwrap(), out_a.wasm);
    let abi = stele_abi::Abi::from_wasm(&out_a.wasm).unwrap();
    assert_eq!(abi, out_a.abi);
    assert_eq!(abi.name, "counter");
    let increment = abi.method("increment").unwrap();
    assert_eq!(
        increment.error,
        Some(stele_abi::TypeRef::Defined("CounterError".into()))
    );
    assert_eq!(
        abi.method("init").unwrap().kind,
        stele_abi::MethodKind::Init
    );
    assert!(abi.method("tip").unwrap().payable);
    assert_eq!(abi.events[0].name, "Changed");

    // Only the ABI custom section is left, and no reserved export.
    let mut customs = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(&out_a.wasm) {
        match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => customs.push(c.name().to_string()),
            wasmparser::Payload::ExportSection(s) => {
                for e in s {
                    assert!(!e.unwrap().name.starts_with("__stele"));
                }
            }
            _ => {}
        }
    }
    assert_eq!(customs, ["stele_abi"]);
}

#[test]
fn a_crate_that_is_not_a_contract_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = build(dir.path(), &BuildOptions::default()).unwrap_err();
    assert!(err.to_string().contains("Cargo.toml"), "{err}");
}
