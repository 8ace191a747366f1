//! Deterministic sample values shared by the conformance and property tests.
#![allow(dead_code)]

use stele_types::*;

pub const CHAIN_ID: u64 = 0x57e1e;

pub fn key(n: u8) -> SecretKey {
    let mut b = [0u8; 32];
    b[31] = n;
    SecretKey::from_bytes(&b).expect("small scalars are valid keys")
}

pub fn sample_tx() -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID,
        nonce: 7,
        gas_limit: 100_000,
        gas_price: 2,
        payload: TxPayload::Call {
            contract: Address([0x11; 20]),
            method: "transfer".into(),
            args: vec![1, 2, 3, 4],
            value: 1_000,
        },
    }
    .sign(&key(1))
}

pub fn sample_header() -> BlockHeader {
    BlockHeader {
        chain_id: CHAIN_ID,
        height: 42,
        epoch: 2,
        view: 3,
        parent_hash: keccak256(b"parent"),
        tx_root: list_root(&[sample_tx().hash()]),
        state_root: keccak256(b"state"),
        receipts_root: list_root(&[sample_receipt().hash()]),
        timestamp_ms: 1_767_225_600_000,
        proposer: key(2).address(),
        next_validators_hash: keccak256(b"next validators"),
    }
}

pub fn sample_receipt() -> Receipt {
    Receipt {
        tx_hash: sample_tx().hash(),
        status: ExecStatus::Success,
        gas_used: 21_337,
        events: vec![Event {
            contract: Address([0x11; 20]),
            topics: vec![keccak256(b"Transfer")],
            data: vec![9, 9],
        }],
        output: vec![1],
        contract_address: None,
    }
}

pub fn validator_set(n: u8) -> (Vec<SecretKey>, ValidatorSet) {
    let mut keys: Vec<SecretKey> = (1..=n).map(key).collect();
    keys.sort_by_key(|k| k.address());
    let validators = keys
        .iter()
        .map(|k| Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: 1,
        })
        .collect();
    (keys, ValidatorSet::new(validators).expect("valid set"))
}

pub fn certificate(header: &BlockHeader, keys: &[SecretKey], signers: &[u32]) -> CommitCertificate {
    let mut cert = CommitCertificate {
        height: header.height,
        epoch: header.epoch,
        view: header.view,
        block_hash: header.hash(),
        signatures: vec![],
    };
    let digest = cert.digest(header.chain_id);
    cert.signatures = signers
        .iter()
        .map(|&i| CommitSignature {
            validator: i,
            signature: keys[i as usize].sign_digest(&digest),
        })
        .collect();
    cert
}
