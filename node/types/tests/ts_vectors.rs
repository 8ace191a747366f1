//! Conformance vectors for the TypeScript client in `sdk/ts`.
//!
//! This test builds, from the Rust types, a JSON document of sample values
//! with their exact encodings, hashes, digests and signatures, the
//! certificates that must verify and those that must not (with the reason),
//! and the inputs that must be refused. The TypeScript tests check every
//! vector against their own implementation, so the two cannot drift.
//!
//! With `STELE_WRITE_VECTORS=1` it writes `sdk/ts/fixtures/vectors.json`;
//! otherwise it regenerates the document in memory and fails unless the
//! committed file is identical.
//!
//! JSON conventions: bytes, hashes, keys and signatures are `0x` lowercase
//! hex; addresses are EIP-55 strings; every `u64` and `u128` is a decimal
//! string (JSON numbers lose precision past 2^53); `u32` and `u8` are
//! numbers. A `json` member holds the value's serde JSON form (the shape
//! the JSON-RPC API uses) as a string, so big `u64` numbers survive.

mod common;

use std::fmt::Debug;

use common::{CHAIN_ID, certificate, key, sample_header, sample_receipt, sample_tx, validator_set};
use serde_json::{Value, json};
use stele_types::*;

/// The secp256k1 group order, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

fn hx(bytes: &[u8]) -> Value {
    Value::String(stele_types::hex::encode(bytes))
}

fn dec(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn text(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn serde_text<T: serde::Serialize>(value: &T) -> Value {
    Value::String(serde_json::to_string(value).expect("test values serialize"))
}

/// `a - b` for 32-byte big-endian numbers with `a >= b`.
fn sub_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

/// A key whose 32 secret bytes are all `n`.
fn filled_key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32]).expect("[n; 32] is below the order for small n")
}

/// The largest valid secret key, n - 1.
fn last_key() -> SecretKey {
    let mut one = [0u8; 32];
    one[31] = 1;
    SecretKey::from_bytes(&sub_be(&ORDER, &one)).expect("n - 1 is a valid key")
}

/// The same signature with `s` replaced by `n - s` and `v` flipped: the
/// malleable twin that Rust refuses as high-S.
fn high_s_twin(sig: &Signature) -> Signature {
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig.0[32..64]);
    let mut out = sig.0;
    out[32..64].copy_from_slice(&sub_be(&ORDER, &s));
    out[64] ^= 1;
    Signature(out)
}

fn key_json(k: &SecretKey) -> Value {
    json!({
        "secret_key": hx(&k.to_bytes()),
        "public_key": hx(&k.public_key().0),
        "address": text(k.address()),
        "address_bytes": hx(&k.address().0),
    })
}

fn keys() -> Value {
    let mut all: Vec<SecretKey> = (1..=5).map(filled_key).collect();
    all.extend([1, 2, 7, 255].map(key));
    all.push(last_key());
    Value::Array(all.iter().map(key_json).collect())
}

fn addresses() -> Value {
    let mut valid = Vec::new();
    let spec = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];
    let mut samples: Vec<Address> = spec
        .iter()
        .map(|s| s.parse().expect("EIP-55 spec vectors parse"))
        .collect();
    samples.extend([Address([0; 20]), Address([0xff; 20]), Address([0x11; 20])]);
    samples.push(key(1).address());
    for a in &samples {
        let checksum = a.to_checksum();
        let digits = &checksum[2..];
        for form in [
            checksum.clone(),
            format!("0x{}", digits.to_ascii_lowercase()),
            format!("0x{}", digits.to_ascii_uppercase()),
        ] {
            assert_eq!(form.parse::<Address>(), Ok(*a), "{form}");
            valid.push(json!({ "text": form, "bytes": hx(&a.0), "checksum": checksum }));
        }
    }

    let mut invalid = Vec::new();
    let mut refuse = |s: String, kind: &str| {
        let err = s.parse::<Address>().expect_err("must be refused");
        let matches_kind = match kind {
            "format" => err == AddressError::Format,
            _ => matches!(err, AddressError::Checksum { .. }),
        };
        assert!(matches_kind, "{s}: {err}");
        invalid.push(json!({ "text": s, "reason": kind, "error": text(err) }));
    };
    for a in &samples[..4] {
        let checksum = a.to_checksum();
        // Swap the case of one letter, then of the last letter: still mixed
        // case, but no longer the checksum.
        for pick in [0usize, 1] {
            let letters: Vec<usize> = checksum
                .char_indices()
                .skip(2)
                .filter(|(_, c)| c.is_ascii_alphabetic())
                .map(|(i, _)| i)
                .collect();
            let at = if pick == 0 {
                letters[0]
            } else {
                letters[letters.len() - 1]
            };
            let mut bytes = checksum.clone().into_bytes();
            bytes[at] ^= 0x20;
            refuse(String::from_utf8(bytes).expect("still ASCII"), "checksum");
        }
    }
    let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    refuse(good[2..].to_string(), "format");
    refuse(format!("0X{}", &good[2..]), "format");
    refuse(good[..41].to_string(), "format");
    refuse(format!("{good}0"), "format");
    refuse(format!("0x{}g", &good[2..41]), "format");
    refuse(format!("0x{} ", &good[2..41]), "format");
    refuse(String::new(), "format");
    refuse("0x".to_string(), "format");
    json!({ "valid": valid, "invalid": invalid })
}

fn recovery_case(name: &str, digest: &Hash, sig: &Signature) -> Value {
    let (recovers, error) = match sig.recover_address(digest) {
        Ok(a) => (text(a), Value::Null),
        Err(e) => (Value::Null, text(e)),
    };
    let public_key = match sig.recover(digest) {
        Ok(pk) => hx(&pk.0),
        Err(_) => Value::Null,
    };
    json!({
        "name": name,
        "digest": text(digest),
        "signature": text(sig),
        "recovers": recovers,
        "public_key": public_key,
        "error": error,
    })
}

fn signatures() -> Value {
    let signer = key(7);
    let mut out = Vec::new();
    for (i, message) in [&b"message"[..], b"", b"stele"].iter().enumerate() {
        let d = keccak256(message);
        let sig = signer.sign_digest(&d);
        out.push(json!({
            "name": format!("signed by key 7, message {i}"),
            "secret_key": hx(&signer.to_bytes()),
            "digest": text(d),
            "signature": text(sig),
            "recovers": text(signer.address()),
            "public_key": hx(&signer.public_key().0),
            "error": Value::Null,
        }));
    }
    let d = keccak256(b"message");
    let sig = signer.sign_digest(&d);
    out.push(recovery_case(
        "another digest recovers another address",
        &keccak256(b"other"),
        &sig,
    ));
    let mut flipped_v = sig;
    flipped_v.0[64] ^= 1;
    out.push(recovery_case(
        "flipped v recovers another address",
        &d,
        &flipped_v,
    ));
    out.push(recovery_case("high-S twin", &d, &high_s_twin(&sig)));
    for v in [2u8, 3, 4, 27, 28, 255] {
        let mut bad = sig;
        bad.0[64] = v;
        out.push(recovery_case(&format!("v = {v}"), &d, &bad));
    }
    let mut r_zero = sig;
    r_zero.0[..32].fill(0);
    out.push(recovery_case("r = 0", &d, &r_zero));
    let mut s_zero = sig;
    s_zero.0[32..64].fill(0);
    out.push(recovery_case("s = 0", &d, &s_zero));
    let mut r_order = sig;
    r_order.0[..32].copy_from_slice(&ORDER);
    out.push(recovery_case("r = n", &d, &r_order));
    let mut s_max = sig;
    s_max.0[32..64].fill(0xff);
    out.push(recovery_case("s = 2^256 - 1", &d, &s_max));
    // The smallest r that is no point's x coordinate.
    let mut off_curve = None;
    for x in 1u8..=255 {
        let mut bytes = [0u8; 65];
        bytes[31] = x;
        bytes[63] = 1;
        let candidate = Signature(bytes);
        if candidate.recover(&d) == Err(CryptoError::BadSignature) {
            off_curve = Some(candidate);
            break;
        }
    }
    let off_curve = off_curve.expect("some small x is not on the curve");
    out.push(recovery_case("r is not on the curve", &d, &off_curve));
    Value::Array(out)
}

fn validator_json(v: &Validator) -> Value {
    json!({
        "address": text(v.address),
        "public_key": hx(&v.public_key.0),
        "power": dec(v.power),
    })
}

fn params_json(p: &ProtocolParams) -> Value {
    json!({
        "gas_schedule_version": p.gas_schedule_version,
        "vm_limits_version": p.vm_limits_version,
        "block_gas_max": dec(p.block_gas_max),
        "block_bytes_max": dec(p.block_bytes_max),
        "block_txs_max": dec(p.block_txs_max),
        "tx_gas_base": dec(p.tx_gas_base),
        "tx_gas_per_byte": dec(p.tx_gas_per_byte),
        "view_timeout_ms": dec(p.view_timeout_ms),
        "view_timeout_max_ms": dec(p.view_timeout_max_ms),
    })
}

fn payload_json(p: &TxPayload) -> Value {
    match p {
        TxPayload::Transfer { to, amount } => {
            json!({ "kind": "transfer", "to": text(to), "amount": dec(amount) })
        }
        TxPayload::Deploy {
            code,
            init_args,
            value,
        } => json!({
            "kind": "deploy",
            "code": hx(code),
            "init_args": hx(init_args),
            "value": dec(value),
        }),
        TxPayload::Call {
            contract,
            method,
            args,
            value,
        } => json!({
            "kind": "call",
            "contract": text(contract),
            "method": method,
            "args": hx(args),
            "value": dec(value),
        }),
        TxPayload::VoteValidators {
            epoch,
            validators,
            possession,
        } => json!({
            "kind": "vote_validators",
            "epoch": dec(epoch),
            "validators": validators.iter().map(validator_json).collect::<Vec<_>>(),
            "possession": possession.iter().map(text).collect::<Vec<_>>(),
        }),
        TxPayload::VoteUpgrade {
            epoch,
            activation_height,
            params,
        } => json!({
            "kind": "vote_upgrade",
            "epoch": dec(epoch),
            "activation_height": dec(activation_height),
            "params": params_json(params),
        }),
    }
}

fn tx_json(tx: &Transaction) -> Value {
    json!({
        "chain_id": dec(tx.chain_id),
        "nonce": dec(tx.nonce),
        "gas_limit": dec(tx.gas_limit),
        "gas_price": dec(tx.gas_price),
        "payload": payload_json(&tx.payload),
    })
}

fn sample_params() -> ProtocolParams {
    ProtocolParams {
        gas_schedule_version: 5,
        vm_limits_version: 3,
        block_gas_max: 400_000_000,
        block_bytes_max: 8 << 20,
        block_txs_max: 10_000,
        tx_gas_base: 21_000,
        tx_gas_per_byte: 16,
        view_timeout_ms: 2_000,
        view_timeout_max_ms: 60_000,
    }
}

/// Five keys' validators (keys 1 to 5), sorted, for a vote adding key 5 to
/// the set of keys 1 to 4.
fn vote_validators_tx() -> Transaction {
    let (keys, next) = validator_set(5);
    let (_, current) = validator_set(4);
    let epoch = 3;
    let change = validator_change_hash(CHAIN_ID, epoch, &next);
    let possession = keys
        .iter()
        .filter(|k| current.index_of(&k.address()).is_none())
        .map(|k| k.sign_digest(&change))
        .collect();
    Transaction {
        chain_id: CHAIN_ID,
        nonce: 12,
        gas_limit: 1_000_000,
        gas_price: 1,
        payload: TxPayload::VoteValidators {
            epoch,
            validators: next.validators().to_vec(),
            possession,
        },
    }
}

fn sample_transactions() -> Vec<(&'static str, SecretKey, Transaction)> {
    let base = |nonce: u64, payload: TxPayload| Transaction {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 100_000,
        gas_price: 2,
        payload,
    };
    let mut code = b"\0asm\x01\0\0\0".to_vec();
    code.extend((0..=255u8).cycle().take(300));
    vec![
        (
            "transfer",
            filled_key(1),
            Transaction {
                chain_id: CHAIN_ID,
                nonce: 0,
                gas_limit: 21_000,
                gas_price: 1,
                payload: TxPayload::Transfer {
                    to: filled_key(2).address(),
                    amount: 1_000_000_000_000_000_000,
                },
            },
        ),
        (
            "transfer with every number at its maximum",
            filled_key(2),
            Transaction {
                chain_id: u64::MAX,
                nonce: u64::MAX,
                gas_limit: u64::MAX,
                gas_price: u64::MAX,
                payload: TxPayload::Transfer {
                    to: Address([0xff; 20]),
                    amount: u128::MAX,
                },
            },
        ),
        (
            "transfer of zero to the zero address",
            last_key(),
            base(
                1,
                TxPayload::Transfer {
                    to: Address([0; 20]),
                    amount: 0,
                },
            ),
        ),
        (
            "deploy without arguments",
            filled_key(3),
            base(
                2,
                TxPayload::Deploy {
                    code: code.clone(),
                    init_args: vec![],
                    value: 0,
                },
            ),
        ),
        (
            "deploy with arguments and value",
            filled_key(3),
            base(
                3,
                TxPayload::Deploy {
                    code: b"\0asm\x01\0\0\0".to_vec(),
                    init_args: vec![0xde, 0xad, 0xbe, 0xef],
                    value: 5_000,
                },
            ),
        ),
        ("call (the conformance fixture)", key(1), sample_tx().tx),
        (
            "call with a 64-byte method name and no arguments",
            filled_key(4),
            base(
                4,
                TxPayload::Call {
                    contract: key(2).address(),
                    method: format!("_{}", "aZ9".repeat(21)),
                    args: vec![],
                    value: u128::from(u64::MAX) + 1,
                },
            ),
        ),
        (
            "call with a one-letter method",
            filled_key(5),
            base(
                5,
                TxPayload::Call {
                    contract: Address([0x42; 20]),
                    method: "x".into(),
                    args: vec![0; 70],
                    value: 0,
                },
            ),
        ),
        ("vote for a validator set", key(1), vote_validators_tx()),
        (
            "vote for an empty validator list",
            key(2),
            base(
                6,
                TxPayload::VoteValidators {
                    epoch: 0,
                    validators: vec![],
                    possession: vec![],
                },
            ),
        ),
        (
            "vote for a protocol upgrade",
            key(7),
            base(
                7,
                TxPayload::VoteUpgrade {
                    epoch: 9,
                    activation_height: 123_456,
                    params: sample_params(),
                },
            ),
        ),
    ]
}

fn transactions() -> Value {
    let mut out = Vec::new();
    for (name, k, tx) in sample_transactions() {
        let unsigned = tx.to_bytes();
        assert_eq!(
            decode::<Transaction>(&unsigned, &Limits::DEFAULT),
            Ok(tx.clone())
        );
        let digest = tx.signing_digest();
        let signed = tx.clone().sign(&k);
        let bytes = signed.to_bytes();
        assert_eq!(
            decode::<SignedTransaction>(&bytes, &Limits::DEFAULT),
            Ok(signed.clone())
        );
        let sender = signed.verify(tx.chain_id).expect("freshly signed");
        assert_eq!(sender, k.address());
        let other_chain = tx.chain_id.wrapping_add(1);
        let wrong_chain = signed
            .verify(other_chain)
            .expect_err("another chain is refused");
        let mut bad_v = signed.clone();
        bad_v.signature.0[64] = 2;
        let bad_v_error = bad_v.verify(tx.chain_id).expect_err("v = 2 is refused");
        out.push(json!({
            "name": name,
            "secret_key": hx(&k.to_bytes()),
            "tx": tx_json(&tx),
            "unsigned": hx(&unsigned),
            "signing_digest": text(digest),
            "signature": text(signed.signature),
            "signed": hx(&bytes),
            "hash": text(signed.hash()),
            "sender": text(sender),
            "max_cost": tx.max_cost().map_or(Value::Null, dec),
            "wrong_chain": { "chain_id": dec(other_chain), "error": text(wrong_chain) },
            "bad_v": { "signed": hx(&bad_v.to_bytes()), "error": text(bad_v_error) },
            "json": serde_text(&signed),
        }));
    }
    Value::Array(out)
}

fn header_json(h: &BlockHeader) -> Value {
    json!({
        "chain_id": dec(h.chain_id),
        "height": dec(h.height),
        "epoch": dec(h.epoch),
        "view": dec(h.view),
        "parent_hash": text(h.parent_hash),
        "tx_root": text(h.tx_root),
        "state_root": text(h.state_root),
        "receipts_root": text(h.receipts_root),
        "timestamp_ms": dec(h.timestamp_ms),
        "proposer": text(h.proposer),
        "next_validators_hash": text(h.next_validators_hash),
    })
}

fn sample_headers() -> Vec<(&'static str, BlockHeader)> {
    let sample = sample_header();
    let (_, set4) = validator_set(4);
    vec![
        ("the conformance fixture", sample.clone()),
        (
            "the next block",
            BlockHeader {
                height: sample.height + 1,
                parent_hash: sample.hash(),
                view: 0,
                timestamp_ms: sample.timestamp_ms + 500,
                next_validators_hash: set4.hash(),
                ..sample.clone()
            },
        ),
        (
            "first block of a chain",
            BlockHeader {
                chain_id: 1,
                height: 1,
                epoch: 0,
                view: 0,
                parent_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                state_root: keccak256(b"genesis state"),
                receipts_root: Hash::ZERO,
                timestamp_ms: 0,
                proposer: key(1).address(),
                next_validators_hash: validator_set(1).1.hash(),
            },
        ),
        (
            "every number at its maximum",
            BlockHeader {
                chain_id: u64::MAX,
                height: u64::MAX,
                epoch: u64::MAX,
                view: u64::MAX,
                parent_hash: Hash([0xff; 32]),
                tx_root: Hash([0xee; 32]),
                state_root: Hash([0xdd; 32]),
                receipts_root: Hash([0xcc; 32]),
                timestamp_ms: u64::MAX,
                proposer: Address([0xff; 20]),
                next_validators_hash: Hash([0xbb; 32]),
            },
        ),
    ]
}

fn headers() -> Value {
    let mut out = Vec::new();
    for (name, h) in sample_headers() {
        let bytes = h.to_bytes();
        assert_eq!(
            decode::<BlockHeader>(&bytes, &Limits::DEFAULT),
            Ok(h.clone())
        );
        out.push(json!({
            "name": name,
            "header": header_json(&h),
            "encoding": hx(&bytes),
            "hash": text(h.hash()),
            "json": serde_text(&h),
        }));
    }
    Value::Array(out)
}

/// A set of the keys `ns` with the given powers, sorted by address.
fn weighted_set(ns: &[u8], powers: &[u64]) -> (Vec<SecretKey>, ValidatorSet) {
    let mut members: Vec<(SecretKey, u64)> =
        ns.iter().zip(powers).map(|(&n, &p)| (key(n), p)).collect();
    members.sort_by_key(|(k, _)| k.address());
    let validators = members
        .iter()
        .map(|(k, power)| Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: *power,
        })
        .collect();
    let keys = members.into_iter().map(|(k, _)| k).collect();
    (keys, ValidatorSet::new(validators).expect("valid set"))
}

fn sample_sets() -> Vec<(&'static str, Vec<SecretKey>, ValidatorSet)> {
    let (k1, s1) = validator_set(1);
    let (k4, s4) = validator_set(4);
    let (k7, s7) = validator_set(7);
    let (kw, sw) = weighted_set(&[11, 12, 13, 14], &[1, 2, 3, 4]);
    let (kb, sb) = weighted_set(&[21, 22], &[u64::MAX - 1, 1]);
    vec![
        ("one validator", k1, s1),
        ("four validators of equal power", k4, s4),
        ("seven validators of equal power", k7, s7),
        ("four validators of powers 1, 2, 3 and 4", kw, sw),
        ("two validators whose powers sum to 2^64 - 1", kb, sb),
    ]
}

fn validator_sets() -> Value {
    let mut out = Vec::new();
    for (name, keys, set) in sample_sets() {
        let bytes = set.to_bytes();
        assert_eq!(
            decode::<ValidatorSet>(&bytes, &Limits::DEFAULT),
            Ok(set.clone())
        );
        out.push(json!({
            "name": name,
            "validators": set.validators().iter().map(validator_json).collect::<Vec<_>>(),
            "secret_keys": keys.iter().map(|k| hx(&k.to_bytes())).collect::<Vec<_>>(),
            "encoding": hx(&bytes),
            "hash": text(set.hash()),
            "total_power": dec(set.total_power()),
            "quorum_power": dec(set.quorum_power()),
            "weak_quorum_power": dec(set.weak_quorum_power()),
            "json": serde_text(&set),
        }));
    }
    Value::Array(out)
}

fn cert_json(c: &CommitCertificate) -> Value {
    json!({
        "height": dec(c.height),
        "epoch": dec(c.epoch),
        "view": dec(c.view),
        "block_hash": text(c.block_hash),
        "signatures": c.signatures.iter().map(|s| json!({
            "validator": s.validator,
            "signature": text(s.signature),
        })).collect::<Vec<_>>(),
    })
}

fn reason(e: &CertificateError) -> &'static str {
    match e {
        CertificateError::NotSorted(_) => "not_sorted",
        CertificateError::UnknownValidator(_) => "unknown_validator",
        CertificateError::BadSignature { .. } => "bad_signature",
        CertificateError::NoQuorum { .. } => "no_quorum",
        CertificateError::WrongBlock { .. } => "wrong_block",
        CertificateError::WrongHeight { .. } => "wrong_height",
        CertificateError::WrongEpoch { .. } => "wrong_epoch",
    }
}

/// The indexes, ascending, of the validators with these powers.
fn with_power(set: &ValidatorSet, powers: &[u64]) -> Vec<u32> {
    (0..set.len() as u32)
        .filter(|&i| powers.contains(&set.validators()[i as usize].power))
        .collect()
}

/// Signs `cert` again over its own digest with `keys[index]` per signer.
fn resign(cert: &mut CommitCertificate, chain_id: u64, keys: &[SecretKey]) {
    let digest = cert.digest(chain_id);
    for s in &mut cert.signatures {
        s.signature = keys[s.validator as usize].sign_digest(&digest);
    }
}

fn certificates() -> Value {
    let headers = sample_headers();
    let sets = sample_sets();
    let header = &headers[0].1;
    let next_header = &headers[1].1;
    let (keys4, _) = (&sets[1].1, &sets[1].2);
    let outsider = key(9);
    let mut cases: Vec<(String, usize, usize, CommitCertificate)> = Vec::new();
    let mut add = |name: &str, h: usize, s: usize, c: CommitCertificate| {
        cases.push((name.to_string(), h, s, c));
    };

    add(
        "the conformance fixture: signers 0, 1 and 3 of 4",
        0,
        1,
        certificate(header, keys4, &[0, 1, 3]),
    );
    add(
        "all four signers",
        0,
        1,
        certificate(header, keys4, &[0, 1, 2, 3]),
    );
    add(
        "signers 1, 2 and 3 of 4 for the next block",
        1,
        1,
        certificate(next_header, keys4, &[1, 2, 3]),
    );
    add(
        "the only validator of a set of one",
        2,
        0,
        certificate(&headers[2].1, &sets[0].1, &[0]),
    );
    add(
        "five of seven",
        0,
        2,
        certificate(header, &sets[2].1, &[0, 2, 3, 5, 6]),
    );
    add(
        "four of seven is too little power",
        0,
        2,
        certificate(header, &sets[2].1, &[0, 2, 3, 5]),
    );
    add(
        "weighted: powers 3 and 4 make a quorum of 7 out of 10",
        0,
        3,
        certificate(header, &sets[3].1, &with_power(&sets[3].2, &[3, 4])),
    );
    add(
        "weighted: powers 1, 2 and 3 are too little",
        0,
        3,
        certificate(header, &sets[3].1, &with_power(&sets[3].2, &[1, 2, 3])),
    );
    add(
        "power near 2^64: the heavy validator alone",
        3,
        4,
        certificate(&headers[3].1, &sets[4].1, &[0]),
    );
    add(
        "two signers of four are too little power",
        0,
        1,
        certificate(header, keys4, &[0, 1]),
    );
    add("no signature at all", 0, 1, certificate(header, keys4, &[]));
    add(
        "unsorted indexes",
        0,
        1,
        certificate(header, keys4, &[0, 2, 1]),
    );
    add(
        "a duplicate index",
        0,
        1,
        certificate(header, keys4, &[0, 1, 1, 2]),
    );
    let mut unknown = certificate(header, keys4, &[0, 1, 2]);
    unknown.signatures[2].validator = 4;
    add("an index past the set", 0, 1, unknown);
    let mut far = certificate(header, keys4, &[0, 1, 2]);
    far.signatures[2].validator = u32::MAX;
    add("index 2^32 - 1", 0, 1, far);
    let mut outside = certificate(header, keys4, &[0, 1, 2]);
    outside.signatures[2].signature = outsider.sign_digest(&outside.digest(header.chain_id));
    add("a signature by a key outside the set", 0, 1, outside);
    let mut swapped = certificate(header, keys4, &[0, 1, 2]);
    swapped.signatures[1].signature = swapped.signatures[0].signature;
    add("validator 0's signature under index 1", 0, 1, swapped);
    for (name, at) in [
        ("a flipped byte in r", 5usize),
        ("a flipped byte in s", 40),
        ("a flipped top byte of s (high-S)", 32),
    ] {
        let mut c = certificate(header, keys4, &[0, 1, 2]);
        c.signatures[1].signature.0[at] ^= 0x80;
        add(name, 0, 1, c);
    }
    let mut twin = certificate(header, keys4, &[0, 1, 2]);
    twin.signatures[0].signature = high_s_twin(&twin.signatures[0].signature);
    add("the high-S twin of a valid signature", 0, 1, twin);
    let mut v_two = certificate(header, keys4, &[0, 1, 2]);
    v_two.signatures[2].signature.0[64] = 2;
    add("v = 2", 0, 1, v_two);
    let mut r_zero = certificate(header, keys4, &[0, 1, 2]);
    r_zero.signatures[0].signature.0[..32].fill(0);
    add("r = 0", 0, 1, r_zero);
    // The other recovery id: plain ECDSA verification would pass it (same
    // r and s); Stele's verification is recovery's, so it is refused and a
    // certificate has one valid encoding.
    let mut v_flipped = certificate(header, keys4, &[0, 1, 2]);
    v_flipped.signatures[1].signature.0[64] ^= 1;
    add(
        "v flipped (the signature recovers to another key)",
        0,
        1,
        v_flipped,
    );
    let mut other_chain = certificate(header, keys4, &[0, 1, 2]);
    resign(&mut other_chain, header.chain_id + 1, keys4);
    add("signed for another chain", 0, 1, other_chain);
    add(
        "another block's certificate",
        1,
        1,
        certificate(header, keys4, &[0, 1, 2]),
    );
    let mut other_hash = certificate(header, keys4, &[0, 1, 2]);
    other_hash.block_hash = keccak256(b"another block");
    resign(&mut other_hash, header.chain_id, keys4);
    add("signatures over another block hash", 0, 1, other_hash);
    let mut other_height = certificate(header, keys4, &[0, 1, 2]);
    other_height.height += 1;
    resign(&mut other_height, header.chain_id, keys4);
    add("the right hash at another height", 0, 1, other_height);
    let mut other_epoch = certificate(header, keys4, &[0, 1, 2]);
    other_epoch.epoch += 1;
    resign(&mut other_epoch, header.chain_id, keys4);
    add("another epoch", 0, 1, other_epoch);
    let mut other_view = certificate(header, keys4, &[0, 1, 2]);
    other_view.view += 7;
    resign(&mut other_view, header.chain_id, keys4);
    add("another view is still the block's commit", 0, 1, other_view);
    add(
        "signers of the four-validator set checked against the seven",
        0,
        2,
        certificate(header, keys4, &[0, 1, 2]),
    );

    let all_keys: Vec<SecretKey> = sets
        .iter()
        .flat_map(|(_, keys, _)| keys.iter().cloned())
        .chain([outsider])
        .collect();
    let mut out = Vec::new();
    for (name, h, s, cert) in cases {
        let header = &headers[h].1;
        let set = &sets[s].2;
        let bytes = cert.to_bytes();
        assert_eq!(
            decode::<CommitCertificate>(&bytes, &Limits::DEFAULT),
            Ok(cert.clone())
        );
        let digest = cert.digest(header.chain_id);
        // Which test key made each signature over this digest, if any.
        let signed_by: Vec<Value> = cert
            .signatures
            .iter()
            .map(|cs| {
                all_keys
                    .iter()
                    .find(|k| k.sign_digest(&digest) == cs.signature)
                    .map_or(Value::Null, |k| hx(&k.to_bytes()))
            })
            .collect();
        let result = cert.verify_header(header, set);
        let (reason, error) = match &result {
            Ok(()) => (Value::Null, Value::Null),
            Err(e) => (text(reason(e)), text(e)),
        };
        out.push(json!({
            "name": name,
            "header_index": h,
            "validator_set_index": s,
            "certificate": cert_json(&cert),
            "encoding": hx(&bytes),
            "hash": text(keccak256(&bytes)),
            "digest": text(digest),
            "signed_by": signed_by,
            "valid": result.is_ok(),
            "reason": reason,
            "error": error,
            "json": serde_text(&cert),
        }));
    }
    Value::Array(out)
}

fn status_name(s: ExecStatus) -> &'static str {
    match s {
        ExecStatus::Success => "success",
        ExecStatus::Reverted => "reverted",
        ExecStatus::OutOfGas => "out_of_gas",
        ExecStatus::Trapped => "trapped",
        ExecStatus::Failed => "failed",
    }
}

fn event_json(e: &Event) -> Value {
    json!({
        "contract": text(e.contract),
        "topics": e.topics.iter().map(text).collect::<Vec<_>>(),
        "data": hx(&e.data),
    })
}

fn receipts() -> Value {
    let sample = sample_receipt();
    let deployer = filled_key(3).address();
    let samples = vec![
        ("the conformance fixture", sample.clone()),
        (
            "a deploy with its contract address",
            Receipt {
                tx_hash: keccak256(b"deploy"),
                status: ExecStatus::Success,
                gas_used: 1_234_567,
                events: vec![],
                output: vec![],
                contract_address: Some(Address::contract(&deployer, 2)),
            },
        ),
        (
            "four events, one with four topics",
            Receipt {
                tx_hash: keccak256(b"events"),
                status: ExecStatus::Success,
                gas_used: u64::MAX,
                events: vec![
                    Event {
                        contract: Address([0x11; 20]),
                        topics: vec![],
                        data: vec![],
                    },
                    Event {
                        contract: key(1).address(),
                        topics: (0..4u8).map(|i| keccak256(&[i])).collect(),
                        data: vec![0xab; 100],
                    },
                    Event {
                        contract: Address([0x22; 20]),
                        topics: vec![keccak256(b"Approval")],
                        data: vec![1],
                    },
                    sample.events[0].clone(),
                ],
                output: b"ok".to_vec(),
                contract_address: None,
            },
        ),
        (
            "reverted",
            Receipt {
                tx_hash: keccak256(b"reverted"),
                status: ExecStatus::Reverted,
                gas_used: 30_000,
                events: vec![],
                output: b"insufficient balance".to_vec(),
                contract_address: None,
            },
        ),
        (
            "out of gas",
            Receipt {
                tx_hash: keccak256(b"out of gas"),
                status: ExecStatus::OutOfGas,
                gas_used: 100_000,
                events: vec![],
                output: vec![],
                contract_address: None,
            },
        ),
        (
            "trapped",
            Receipt {
                tx_hash: keccak256(b"trapped"),
                status: ExecStatus::Trapped,
                gas_used: 777,
                events: vec![],
                output: b"unreachable".to_vec(),
                contract_address: None,
            },
        ),
        (
            "failed",
            Receipt {
                tx_hash: keccak256(b"failed"),
                status: ExecStatus::Failed,
                gas_used: 0,
                events: vec![],
                output: b"no such method".to_vec(),
                contract_address: None,
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, r) in samples {
        let bytes = r.to_bytes();
        assert_eq!(decode::<Receipt>(&bytes, &Limits::DEFAULT), Ok(r.clone()));
        out.push(json!({
            "name": name,
            "receipt": {
                "tx_hash": text(r.tx_hash),
                "status": status_name(r.status),
                "status_code": r.status as u8,
                "gas_used": dec(r.gas_used),
                "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
                "output": hx(&r.output),
                "contract_address": r.contract_address.map_or(Value::Null, text),
            },
            "event_encodings": r.events.iter().map(|e| hx(&e.to_bytes())).collect::<Vec<_>>(),
            "encoding": hx(&bytes),
            "hash": text(r.hash()),
            "json": serde_text(&r),
        }));
    }
    Value::Array(out)
}

fn blocks() -> Value {
    let txs: Vec<SignedTransaction> = sample_transactions()
        .into_iter()
        .map(|(_, k, tx)| tx.sign(&k))
        .collect();
    let mut out = Vec::new();
    for (name, count) in [
        ("no transactions", 0usize),
        ("one transaction", 1),
        ("three transactions", 3),
        ("every sample transaction", txs.len()),
    ] {
        let mut block = Block {
            header: BlockHeader {
                height: 100 + count as u64,
                ..sample_header()
            },
            txs: txs[..count].to_vec(),
        };
        block.header.tx_root = block.compute_tx_root();
        let bytes = block.to_bytes();
        assert_eq!(decode::<Block>(&bytes, &Limits::DEFAULT), Ok(block.clone()));
        out.push(json!({
            "name": name,
            "header": header_json(&block.header),
            "txs": block.txs.iter().map(|t| hx(&t.to_bytes())).collect::<Vec<_>>(),
            "tx_hashes": block.txs.iter().map(|t| text(t.hash())).collect::<Vec<_>>(),
            "tx_root": text(block.header.tx_root),
            "encoding": hx(&bytes),
            "hash": text(block.hash()),
            "json": serde_text(&block),
        }));
    }
    Value::Array(out)
}

fn list_roots() -> Value {
    let mut out = Vec::new();
    for n in [0u8, 1, 2, 3, 4, 5, 7, 8, 9] {
        let items: Vec<Hash> = (0..n).map(|i| keccak256(&[i])).collect();
        out.push(json!({
            "items": items.iter().map(text).collect::<Vec<_>>(),
            "root": text(list_root(&items)),
        }));
    }
    Value::Array(out)
}

fn protocol_params() -> Value {
    let samples = [
        sample_params(),
        ProtocolParams {
            gas_schedule_version: u32::MAX,
            vm_limits_version: 0,
            block_gas_max: u64::MAX,
            block_bytes_max: 64 << 20,
            block_txs_max: 1,
            tx_gas_base: 0,
            tx_gas_per_byte: u64::MAX,
            view_timeout_ms: 1_000,
            view_timeout_max_ms: 3_600_000,
        },
    ];
    let mut out = Vec::new();
    for p in samples {
        let bytes = p.to_bytes();
        assert_eq!(
            decode::<ProtocolParams>(&bytes, &Limits::DEFAULT),
            Ok(p.clone())
        );
        out.push(json!({
            "params": params_json(&p),
            "encoding": hx(&bytes),
            "hash": text(p.hash()),
            "json": serde_text(&p),
        }));
    }
    Value::Array(out)
}

fn contract_addresses() -> Value {
    let mut out = Vec::new();
    for (creator, nonce) in [
        (key(1).address(), 0u64),
        (key(1).address(), 1),
        (filled_key(3).address(), 2),
        (Address([0; 20]), u64::MAX),
    ] {
        out.push(json!({
            "creator": text(creator),
            "nonce": dec(nonce),
            "address": text(Address::contract(&creator, nonce)),
        }));
    }
    Value::Array(out)
}

fn validator_changes() -> Value {
    let sets = sample_sets();
    let mut out = Vec::new();
    for (chain_id, epoch, index) in [(CHAIN_ID, 3u64, 1usize), (1, 0, 0), (u64::MAX, u64::MAX, 3)] {
        out.push(json!({
            "chain_id": dec(chain_id),
            "epoch": dec(epoch),
            "validator_set_index": index,
            "hash": text(validator_change_hash(chain_id, epoch, &sets[index].2)),
        }));
    }
    Value::Array(out)
}

/// The error decoding `bytes` as a `T` gives; panics if it decodes.
fn refused<T: Decode + Debug>(ty: &str, name: &str, bytes: &[u8]) -> Value {
    let err = decode::<T>(bytes, &Limits::DEFAULT).expect_err(name);
    json!({ "type": ty, "name": name, "bytes": hx(bytes), "error": text(err) })
}

fn u32_le(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

fn invalid_encodings() -> Value {
    let mut out = Vec::new();
    let tx = sample_transactions()[0].2.clone();
    let tx_bytes = tx.to_bytes();
    let signed = sample_tx();
    let signed_bytes = signed.to_bytes();

    let mut trailing = tx_bytes.clone();
    trailing.push(0);
    out.push(refused::<Transaction>(
        "transaction",
        "a trailing byte",
        &trailing,
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "truncated amount",
        &tx_bytes[..tx_bytes.len() - 1],
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "truncated chain id",
        &tx_bytes[..3],
    ));
    out.push(refused::<Transaction>("transaction", "empty input", &[]));
    out.push(refused::<Transaction>(
        "transaction",
        "no payload",
        &tx_bytes[..32],
    ));
    for tag in [5u8, 0xff] {
        let mut bad = tx_bytes.clone();
        bad[32] = tag;
        out.push(refused::<Transaction>(
            "transaction",
            &format!("payload tag {tag}"),
            &bad,
        ));
    }
    let mut trailing = signed_bytes.clone();
    trailing.extend([1, 2]);
    out.push(refused::<SignedTransaction>(
        "signed_transaction",
        "two trailing bytes",
        &trailing,
    ));
    out.push(refused::<SignedTransaction>(
        "signed_transaction",
        "truncated signature",
        &signed_bytes[..signed_bytes.len() - 1],
    ));
    out.push(refused::<SignedTransaction>(
        "signed_transaction",
        "an unsigned transaction",
        &signed.tx.to_bytes(),
    ));

    // Payload bodies after a valid 32-byte prefix.
    let prefix = &tx_bytes[..32];
    let with = |body: &[u8]| [prefix, body].concat();
    let call = |method: &[u8]| {
        let mut b = vec![2u8];
        b.extend([0x11; 20]);
        b.extend(u32_le(method.len() as u32));
        b.extend(method);
        b.extend(u32_le(0));
        b.extend([0u8; 16]);
        with(&b)
    };
    out.push(refused::<Transaction>(
        "transaction",
        "a method name starting with a digit",
        &call(b"1abc"),
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "an empty method name",
        &call(b""),
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "a method name with a dash",
        &call(b"get-balance"),
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "a method name that is not UTF-8",
        &call(&[0x66, 0xff, 0x66]),
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "a UTF-8 method name outside ASCII",
        &call("caf\u{e9}".as_bytes()),
    ));
    out.push(refused::<Transaction>(
        "transaction",
        "a 65-byte method name",
        &call(&[b'a'; 65]),
    ));
    let mut deploy = vec![1u8];
    deploy.extend(u32_le((1 << 20) + 1));
    out.push(refused::<Transaction>(
        "transaction",
        "code over the 1 MiB limit",
        &with(&deploy),
    ));
    let mut deploy = vec![1u8];
    deploy.extend(u32_le(1000));
    deploy.extend([0, 1, 2]);
    out.push(refused::<Transaction>(
        "transaction",
        "code length past the end of the input",
        &with(&deploy),
    ));
    let mut deploy = vec![1u8];
    deploy.extend(u32_le(0));
    deploy.extend(u32_le((128 << 10) + 1));
    out.push(refused::<Transaction>(
        "transaction",
        "init args over the 128 KiB limit",
        &with(&deploy),
    ));
    let mut vote = vec![3u8];
    vote.extend(7u64.to_le_bytes());
    vote.extend(u32_le(1025));
    out.push(refused::<Transaction>(
        "transaction",
        "1025 validators in a vote",
        &with(&vote),
    ));
    let mut vote = vec![3u8];
    vote.extend(7u64.to_le_bytes());
    vote.extend(u32_le(2));
    vote.extend([0u8; 61]);
    out.push(refused::<Transaction>(
        "transaction",
        "two validators announced, one present",
        &with(&vote),
    ));
    let mut vote = vec![3u8];
    vote.extend(7u64.to_le_bytes());
    vote.extend(u32_le(0));
    vote.extend(u32_le(1));
    vote.extend([0u8; 64]);
    out.push(refused::<Transaction>(
        "transaction",
        "a possession proof one byte short",
        &with(&vote),
    ));
    let mut upgrade = vec![4u8];
    upgrade.extend(1u64.to_le_bytes());
    upgrade.extend(2u64.to_le_bytes());
    upgrade.extend(&sample_params().to_bytes()[..63]);
    out.push(refused::<Transaction>(
        "transaction",
        "truncated protocol parameters",
        &with(&upgrade),
    ));

    let header = sample_header().to_bytes();
    let mut trailing = header.clone();
    trailing.push(0xaa);
    out.push(refused::<BlockHeader>(
        "block_header",
        "a trailing byte",
        &trailing,
    ));
    out.push(refused::<BlockHeader>(
        "block_header",
        "truncated proposer",
        &header[..32 + 128 + 8 + 10],
    ));
    let mut block = header.clone();
    block.extend(u32_le(20_001));
    out.push(refused::<Block>("block", "20001 transactions", &block));
    let mut block = header.clone();
    block.extend(u32_le(1));
    block.extend(vec![0u8; 121]);
    out.push(refused::<Block>(
        "block",
        "one transaction announced, 121 bytes present",
        &block,
    ));

    let receipt = sample_receipt().to_bytes();
    let mut bad = receipt.clone();
    bad[32] = 5;
    out.push(refused::<Receipt>("receipt", "exec status 5", &bad));
    let mut bad = receipt.clone();
    let last = bad.len() - 1;
    bad[last] = 2;
    out.push(refused::<Receipt>(
        "receipt",
        "option tag 2 for the contract address",
        &bad,
    ));
    let mut bad = receipt.clone();
    bad[last] = 1;
    out.push(refused::<Receipt>(
        "receipt",
        "a contract address announced, none present",
        &bad,
    ));
    let mut trailing = receipt.clone();
    trailing.push(0);
    out.push(refused::<Receipt>("receipt", "a trailing byte", &trailing));
    let mut many = receipt[..32 + 1 + 8].to_vec();
    many.extend(u32_le(1025));
    out.push(refused::<Receipt>("receipt", "1025 events", &many));
    let mut output = receipt[..32 + 1 + 8].to_vec();
    output.extend(u32_le(0));
    output.extend(u32_le((128 << 10) + 1));
    out.push(refused::<Receipt>(
        "receipt",
        "output over the 128 KiB limit",
        &output,
    ));
    let mut event = vec![0x11u8; 20];
    event.extend(u32_le(5));
    event.extend([0u8; 32 * 5]);
    event.extend(u32_le(0));
    out.push(refused::<Event>("event", "five topics", &event));
    let mut event = vec![0x11u8; 20];
    event.extend(u32_le(0));
    event.extend(u32_le((16 << 10) + 1));
    out.push(refused::<Event>(
        "event",
        "data over the 16 KiB limit",
        &event,
    ));
    let mut event = vec![0x11u8; 20];
    event.extend(u32_le(1));
    event.extend([0u8; 31]);
    out.push(refused::<Event>("event", "a topic one byte short", &event));

    let (_, set) = validator_set(4);
    let set_bytes = set.to_bytes();
    let mut swapped = set.validators().to_vec();
    swapped.swap(0, 1);
    let mut unsorted = u32_le(4);
    for v in &swapped {
        unsorted.extend(v.to_bytes());
    }
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "validators out of address order",
        &unsorted,
    ));
    let mut dup = u32_le(2);
    dup.extend(set.validators()[0].to_bytes());
    dup.extend(set.validators()[0].to_bytes());
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "the same validator twice",
        &dup,
    ));
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "no validator",
        &u32_le(0),
    ));
    let mut zero = set.validators()[0].clone();
    zero.power = 0;
    let mut zero_bytes = u32_le(1);
    zero_bytes.extend(zero.to_bytes());
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "zero voting power",
        &zero_bytes,
    ));
    let mut mismatch = set.validators()[0].clone();
    mismatch.address = set.validators()[1].address;
    let mut mismatch_bytes = u32_le(1);
    mismatch_bytes.extend(mismatch.to_bytes());
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "an address that is not its key's",
        &mismatch_bytes,
    ));
    let mut bad_key = set.validators()[0].clone();
    bad_key.public_key = PublicKey([5; 33]);
    let mut bad_key_bytes = u32_le(1);
    bad_key_bytes.extend(bad_key.to_bytes());
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "a public key that is not a point",
        &bad_key_bytes,
    ));
    let (_, heavy) = weighted_set(&[21, 22], &[u64::MAX - 1, 1]);
    let mut overflow = heavy.validators().to_vec();
    overflow[1].power = 2;
    let mut overflow_bytes = u32_le(2);
    for v in &overflow {
        overflow_bytes.extend(v.to_bytes());
    }
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "total power over 2^64 - 1",
        &overflow_bytes,
    ));
    let mut trailing = set_bytes.clone();
    trailing.push(0);
    out.push(refused::<ValidatorSet>(
        "validator_set",
        "a trailing byte",
        &trailing,
    ));

    let (keys, _) = validator_set(4);
    let cert = certificate(&sample_header(), &keys, &[0, 1, 2]).to_bytes();
    let mut many = cert[..8 * 3 + 32].to_vec();
    many.extend(u32_le(1025));
    out.push(refused::<CommitCertificate>(
        "commit_certificate",
        "1025 signatures",
        &many,
    ));
    out.push(refused::<CommitCertificate>(
        "commit_certificate",
        "truncated last signature",
        &cert[..cert.len() - 1],
    ));
    let mut trailing = cert.clone();
    trailing.push(0);
    out.push(refused::<CommitCertificate>(
        "commit_certificate",
        "a trailing byte",
        &trailing,
    ));
    out.push(refused::<ProtocolParams>(
        "protocol_params",
        "one byte short",
        &sample_params().to_bytes()[..63],
    ));
    Value::Array(out)
}

fn document() -> String {
    let doc = json!({
        "about": "Stele conformance vectors for sdk/ts, written by node/types/tests/ts_vectors.rs; do not edit by hand (STELE_WRITE_VECTORS=1 cargo test -p stele-types --test ts_vectors)",
        "version": 1,
        "chain_id": dec(CHAIN_ID),
        "limits": {
            "input_bytes_max": Limits::DEFAULT.input_bytes_max,
            "code_bytes_max": Limits::DEFAULT.code_bytes_max,
            "args_bytes_max": Limits::DEFAULT.args_bytes_max,
            "method_bytes_max": Limits::DEFAULT.method_bytes_max,
            "block_txs_max": Limits::DEFAULT.block_txs_max,
            "event_topics_max": Limits::DEFAULT.event_topics_max,
            "event_data_bytes_max": Limits::DEFAULT.event_data_bytes_max,
            "receipt_events_max": Limits::DEFAULT.receipt_events_max,
            "output_bytes_max": Limits::DEFAULT.output_bytes_max,
            "validators_max": Limits::DEFAULT.validators_max,
        },
        "keys": keys(),
        "addresses": addresses(),
        "signatures": signatures(),
        "transactions": transactions(),
        "headers": headers(),
        "validator_sets": validator_sets(),
        "certificates": certificates(),
        "receipts": receipts(),
        "blocks": blocks(),
        "list_roots": list_roots(),
        "protocol_params": protocol_params(),
        "contract_addresses": contract_addresses(),
        "validator_changes": validator_changes(),
        "invalid_encodings": invalid_encodings(),
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("the document serializes");
    out.push('\n');
    out
}

#[test]
fn typescript_vectors_match_the_rust_types() {
    stele_fixtures::check_ts_vectors(
        "vectors.json",
        &document(),
        "cargo test -p stele-types --test ts_vectors",
    );
}
