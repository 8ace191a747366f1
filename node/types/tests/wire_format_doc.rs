//! `docs/wire-format.md` against the codec: the worked example's bytes,
//! digest, hash and addresses, and the payload tags, as printed there. A
//! failure means the page and the format disagree; fix whichever is wrong.

mod common;

use common::{CHAIN_ID, key, sample_tx};
use stele_types::codec::Encode;
use stele_types::{Address, ProtocolParams, TxPayload, keccak256_parts};

const DOC: &str = include_str!("../../../docs/wire-format.md");

/// The lines of the `## {title}` section.
fn section(title: &str) -> Vec<&'static str> {
    let heading = format!("## {title}");
    DOC.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

/// The ```text blocks of a section, each as its non-empty lines.
fn text_blocks(lines: &[&'static str]) -> Vec<Vec<&'static str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&'static str>> = None;
    for line in lines {
        match (&mut current, *line) {
            (None, "```text") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), l) if !l.trim().is_empty() => block.push(l),
            _ => {}
        }
    }
    blocks
}

fn hex(bytes: &[u8]) -> String {
    stele_types::hex::encode(bytes)
}

/// The hex of a block whose lines each start with hex digits.
fn block_bytes(block: &[&str]) -> Vec<u8> {
    let digits: String = block
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    stele_types::hex::decode(&format!("0x{digits}")).unwrap_or_else(|e| panic!("{digits}: {e}"))
}

/// The value (last word) of the line of a block starting with `label`.
fn labelled(block: &[&'static str], label: &str) -> &'static str {
    block
        .iter()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no line `{label}` in the results block"))
}

#[test]
fn worked_example_in_wire_format_md_matches_the_codec() {
    let blocks = text_blocks(&section("Worked example"));
    assert_eq!(blocks.len(), 3, "transaction, signature, results");
    let signed = sample_tx();
    let unsigned = block_bytes(&blocks[0]);
    let signature = block_bytes(&blocks[1]);
    assert_eq!(
        hex(&unsigned),
        hex(&signed.tx.to_bytes()),
        "the transaction's bytes"
    );
    assert_eq!(unsigned.len(), 89);
    assert_eq!(hex(&signature), hex(&signed.signature.0), "the signature");
    let whole = [unsigned, signature].concat();
    assert_eq!(hex(&whole), hex(&signed.to_bytes()));
    assert_eq!(whole.len(), 154);

    let results = &blocks[2];
    let digest = keccak256_parts(&[
        b"STELE/v1/tx\0",
        &CHAIN_ID.to_le_bytes(),
        &signed.tx.to_bytes(),
    ]);
    assert_eq!(digest, signed.tx.signing_digest());
    assert_eq!(labelled(results, "signing digest"), digest.to_string());
    assert_eq!(
        labelled(results, "transaction hash"),
        signed.hash().to_string()
    );
    assert_eq!(labelled(results, "sender"), key(1).address().to_string());
    assert_eq!(signed.verify(CHAIN_ID), Ok(key(1).address()));
    assert_eq!(
        labelled(results, "contract at nonce 0"),
        Address::contract(&key(1).address(), 0).to_string()
    );

    let sent = format!("[\"{}\"]", hex(&whole));
    assert!(
        DOC.contains(&sent),
        "the send_transaction example sends {sent}"
    );
}

#[test]
fn payload_tags_in_wire_format_md_match_the_codec() {
    let a = Address([7; 20]);
    let params = ProtocolParams {
        gas_schedule_version: 1,
        vm_limits_version: 1,
        block_gas_max: 1,
        block_bytes_max: 1,
        block_txs_max: 1,
        tx_gas_base: 1,
        tx_gas_per_byte: 1,
        view_timeout_ms: 1,
        view_timeout_max_ms: 1,
    };
    assert_eq!(params.to_bytes().len(), 64);
    let payloads = [
        ("transfer", TxPayload::Transfer { to: a, amount: 1 }),
        (
            "deploy",
            TxPayload::Deploy {
                code: vec![],
                init_args: vec![],
                value: 0,
            },
        ),
        (
            "call",
            TxPayload::Call {
                contract: a,
                method: "m".into(),
                args: vec![],
                value: 0,
            },
        ),
        (
            "vote_validators",
            TxPayload::VoteValidators {
                epoch: 0,
                validators: vec![],
                possession: vec![],
            },
        ),
        (
            "vote_upgrade",
            TxPayload::VoteUpgrade {
                epoch: 0,
                activation_height: 0,
                params,
            },
        ),
    ];
    // Rows `| tag | `kind` | fields |` of the payload table.
    let rows: Vec<(u8, &str)> = section("Payloads")
        .into_iter()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let tag = cells.get(1)?.parse().ok()?;
            Some((tag, cells.get(2)?.trim_matches('`')))
        })
        .collect();
    assert_eq!(rows.len(), payloads.len(), "one row per payload kind");
    for (name, payload) in &payloads {
        let row = rows.iter().find(|(_, kind)| kind == name);
        let Some((tag, _)) = row else {
            panic!("no row for `{name}`")
        };
        assert_eq!(payload.to_bytes()[0], *tag, "the tag of `{name}`");
    }
}
