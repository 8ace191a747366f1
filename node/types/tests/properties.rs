//! Property tests for the codec and signatures. They double as the CI-run
//! fallback of the `cargo fuzz` targets in `node/types/fuzz`.

mod common;

use common::*;
use proptest::prelude::*;
use stele_types::*;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn method() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,63}"
}

fn payload() -> impl Strategy<Value = TxPayload> {
    prop_oneof![
        (address(), any::<u128>()).prop_map(|(to, amount)| TxPayload::Transfer { to, amount }),
        (bytes(300), bytes(40), any::<u128>()).prop_map(|(code, init_args, value)| {
            TxPayload::Deploy {
                code,
                init_args,
                value,
            }
        }),
        (address(), method(), bytes(40), any::<u128>()).prop_map(
            |(contract, method, args, value)| TxPayload::Call {
                contract,
                method,
                args,
                value,
            }
        ),
        (any::<u64>(), 1..5u8, 0..3usize).prop_map(|(epoch, n, proofs)| {
            let mut validators: Vec<Validator> = (1..=n)
                .map(|i| {
                    let k = SecretKey::from_bytes(&[i; 32]).expect("a small scalar is a key");
                    Validator {
                        address: k.address(),
                        public_key: k.public_key(),
                        power: u64::from(i),
                    }
                })
                .collect();
            validators.sort_by_key(|v| v.address);
            TxPayload::VoteValidators {
                epoch,
                validators,
                possession: vec![Signature([7; 65]); proofs],
            }
        }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<[u64; 7]>(),
            any::<(u32, u32)>()
        )
            .prop_map(|(epoch, activation_height, n, (gas, limits))| {
                TxPayload::VoteUpgrade {
                    epoch,
                    activation_height,
                    params: stele_types::ProtocolParams {
                        gas_schedule_version: gas,
                        vm_limits_version: limits,
                        block_gas_max: n[0],
                        block_bytes_max: n[1],
                        block_txs_max: n[2],
                        tx_gas_base: n[3],
                        tx_gas_per_byte: n[4],
                        view_timeout_ms: n[5],
                        view_timeout_max_ms: n[6],
                    },
                }
            }),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        payload(),
    )
        .prop_map(
            |(chain_id, nonce, gas_limit, gas_price, payload)| Transaction {
                chain_id,
                nonce,
                gas_limit,
                gas_price,
                payload,
            },
        )
}

fn signed_tx() -> impl Strategy<Value = SignedTransaction> {
    (transaction(), 1u8..=255).prop_map(|(tx, k)| tx.sign(&key(k)))
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (any::<[u64; 4]>(), hash(), hash(), hash(), hash(), address()).prop_map(
        |(
            [chain_id, height, view, timestamp_ms],
            parent_hash,
            tx_root,
            state_root,
            receipts_root,
            proposer,
        )| {
            BlockHeader {
                chain_id,
                height,
                epoch: 0,
                view,
                parent_hash,
                tx_root,
                state_root,
                receipts_root,
                timestamp_ms,
                proposer,
                next_validators_hash: Hash::ZERO,
            }
        },
    )
}

fn event() -> impl Strategy<Value = Event> {
    (
        address(),
        proptest::collection::vec(hash(), 0..=4),
        bytes(64),
    )
        .prop_map(|(contract, topics, data)| Event {
            contract,
            topics,
            data,
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        hash(),
        prop_oneof![
            Just(ExecStatus::Success),
            Just(ExecStatus::Reverted),
            Just(ExecStatus::OutOfGas),
            Just(ExecStatus::Trapped),
            Just(ExecStatus::Failed),
        ],
        any::<u64>(),
        proptest::collection::vec(event(), 0..4),
        bytes(64),
        proptest::option::of(address()),
    )
        .prop_map(
            |(tx_hash, status, gas_used, events, output, contract_address)| Receipt {
                tx_hash,
                status,
                gas_used,
                events,
                output,
                contract_address,
            },
        )
}

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = value.to_bytes();
    let back: T = decode(&bytes, &Limits::default()).expect("own encoding decodes");
    assert_eq!(&back, value);
    // Canonical: re-encoding gives the same bytes.
    assert_eq!(back.to_bytes(), bytes);
    // A trailing byte is always rejected.
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode::<T>(&longer, &Limits::default()),
        Err(DecodeError::TrailingBytes(1))
    );
    // Every strict prefix fails cleanly.
    for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut < bytes.len() {
            assert!(decode::<T>(&bytes[..cut], &Limits::default()).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn signed_transactions_round_trip(tx in signed_tx()) {
        round_trip(&tx);
        let json = serde_json::to_string(&tx).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTransaction>(&json).unwrap(), tx);
    }

    #[test]
    fn headers_round_trip(h in header()) {
        round_trip(&h);
    }

    #[test]
    fn blocks_round_trip(h in header(), txs in proptest::collection::vec(signed_tx(), 0..4)) {
        round_trip(&Block { header: h, txs });
    }

    #[test]
    fn receipts_round_trip(r in receipt()) {
        round_trip(&r);
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);
    }

    #[test]
    fn certificates_round_trip(h in header(), signers in proptest::collection::btree_set(0u32..4, 0..=4)) {
        let (keys, _) = validator_set(4);
        let signers: Vec<u32> = signers.into_iter().collect();
        round_trip(&certificate(&h, &keys, &signers));
    }

    #[test]
    fn validator_sets_round_trip(n in 1u8..12) {
        let (_, set) = validator_set(n);
        round_trip(&set);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in bytes(512)) {
        let limits = Limits::default();
        let _ = decode::<SignedTransaction>(&data, &limits);
        let _ = decode::<Block>(&data, &limits);
        let _ = decode::<BlockHeader>(&data, &limits);
        let _ = decode::<Receipt>(&data, &limits);
        let _ = decode::<CommitCertificate>(&data, &limits);
        let _ = decode::<ValidatorSet>(&data, &limits);
    }

    #[test]
    fn mutated_encodings_never_panic(tx in signed_tx(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = tx.to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = decode::<SignedTransaction>(&bytes, &Limits::default()) {
            prop_assert_eq!(decoded.to_bytes(), bytes);
        }
    }

    #[test]
    fn signature_over_a_mutated_transaction_fails(tx in signed_tx(), nonce_delta in 1u64..u64::MAX) {
        let signer = tx.verify(tx.tx.chain_id).expect("freshly signed");
        let mut mutated = tx.clone();
        mutated.tx.nonce = mutated.tx.nonce.wrapping_add(nonce_delta);
        // Recovery may yield some other key or fail outright; never the signer.
        prop_assert_ne!(mutated.verify(tx.tx.chain_id).ok(), Some(signer));
        let mut other_chain = tx.clone();
        other_chain.tx.chain_id = other_chain.tx.chain_id.wrapping_add(1);
        prop_assert_ne!(other_chain.verify(other_chain.tx.chain_id).ok(), Some(signer));
    }

    #[test]
    fn high_s_twin_of_any_signature_is_rejected(tx in signed_tx()) {
        let sig = k256::ecdsa::Signature::from_slice(&tx.signature.0[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = k256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let mut twin = tx.clone();
        twin.signature.0[..64].copy_from_slice(&high.to_bytes());
        twin.signature.0[64] ^= 1;
        prop_assert_eq!(
            twin.verify(tx.tx.chain_id),
            Err(TxError::Signature(CryptoError::HighS))
        );
    }
}

/// The smallest transaction of every kind, many of them and nothing else,
/// makes a block that decodes: the bound a block's decoder puts on its
/// count from the bytes left must not refuse it.
#[test]
fn a_block_of_the_smallest_transactions_of_each_kind_decodes() {
    let smallest = [
        TxPayload::Transfer {
            to: Address([0; 20]),
            amount: 0,
        },
        TxPayload::Deploy {
            code: Vec::new(),
            init_args: Vec::new(),
            value: 0,
        },
        TxPayload::Call {
            contract: Address([0; 20]),
            method: "m".into(),
            args: Vec::new(),
            value: 0,
        },
        TxPayload::VoteValidators {
            epoch: 0,
            validators: Vec::new(),
            possession: Vec::new(),
        },
    ];
    for payload in smallest {
        let tx = Transaction {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 0,
            gas_price: 0,
            payload,
        }
        .sign(&key(1));
        let block = Block {
            header: sample_header(),
            txs: vec![tx; 50],
        };
        let decoded: Block = decode(&block.to_bytes(), &Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{:?}: {e}", block.txs[0].tx.payload));
        assert_eq!(decoded, block);
    }
}

#[test]
fn limits_bound_decoding() {
    let tx = Transaction {
        chain_id: 1,
        nonce: 0,
        gas_limit: 1,
        gas_price: 1,
        payload: TxPayload::Deploy {
            code: vec![0; 100],
            init_args: vec![],
            value: 0,
        },
    }
    .sign(&key(3));
    let limits = Limits {
        code_bytes_max: 99,
        ..Limits::default()
    };
    assert_eq!(
        decode::<SignedTransaction>(&tx.to_bytes(), &limits),
        Err(DecodeError::LengthOverLimit {
            what: "contract code",
            len: 100,
            max: 99
        })
    );
}

#[test]
fn invalid_method_names_are_rejected_when_decoding() {
    for bad in ["", "9lives", "has space", "é"] {
        let tx = Transaction {
            chain_id: 1,
            nonce: 0,
            gas_limit: 1,
            gas_price: 1,
            payload: TxPayload::Call {
                contract: Address([1; 20]),
                method: bad.into(),
                args: vec![],
                value: 0,
            },
        }
        .sign(&key(3));
        assert!(
            matches!(
                decode::<SignedTransaction>(&tx.to_bytes(), &Limits::default()),
                Err(DecodeError::Invalid {
                    what: "method name",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}
