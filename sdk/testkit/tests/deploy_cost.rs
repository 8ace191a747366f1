//! What deploying each example contract costs under the default gas
//! schedule: priced like compiling it, and a third of a block at most.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use stele_testkit::{Contract, ExecStatus, TestChain};

#[test]
fn example_deploys_are_priced_like_compilation_and_fit_a_third_of_a_block() {
    for name in ["token", "counter", "amm", "multisig", "nft"] {
        let contract = Contract::build(format!(
            "{}/../../contracts/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut chain = TestChain::new();
        let owner = chain.account();
        // Constructor arguments differ; deploying the code is what costs.
        let out = chain.deploy_json(&owner, &contract, example_args(name, &owner));
        assert_eq!(out.status, ExecStatus::Success, "{name}");
        // Priced like its compilation: about a millisecond of Cranelift per
        // 10 KB of these contracts, i.e. millions of gas...
        let per_byte = out.gas_used / contract.wasm.len() as u64;
        assert!(
            (2_000..=10_000).contains(&per_byte),
            "{name}: {per_byte} gas/byte"
        );
        // ...yet a third of a block holds it.
        assert!(
            out.gas_used <= BLOCK_GAS_MAX / 3,
            "{name}: {}",
            out.gas_used
        );
    }
}

/// `block_gas_max` of the default genesis.
const BLOCK_GAS_MAX: u64 = 400_000_000;

fn example_args(name: &str, owner: &stele_testkit::Address) -> serde_json::Value {
    let o: String = std::iter::once("0x".to_string())
        .chain(owner.0.iter().map(|b| format!("{b:02x}")))
        .collect();
    match name {
        "token" => serde_json::json!(["Token", "TOK", 18, "1000"]),
        "counter" => serde_json::json!([0, 10]),
        "amm" => serde_json::json!([o, "0x00000000000000000000000000000000000000aa"]),
        "multisig" => serde_json::json!([[o], 1]),
        _ => serde_json::json!([]),
    }
}
