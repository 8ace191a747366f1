//! Mempool tests: admission errors, replacement, eviction, selection, a
//! model-based property test and a bounded-memory flood.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::collections::BTreeMap;

use proptest::prelude::*;
use stele_node::mempool::*;
use stele_node::sender_keys::SenderKeys;
use stele_types::{
    Address, Amount, Encode, Hash, Limits, SecretKey, SignedTransaction, Transaction, TxPayload,
};

const CHAIN: u64 = 9;

#[derive(Default)]
struct Accounts(BTreeMap<Address, AccountState>);

impl AccountView for Accounts {
    fn account(&self, address: &Address) -> AccountState {
        self.0.get(address).copied().unwrap_or_default()
    }
}

fn key(n: u16) -> SecretKey {
    let mut b = [0u8; 32];
    b[30..].copy_from_slice(&(n + 1).to_be_bytes());
    SecretKey::from_bytes(&b).unwrap()
}

fn tx(key: &SecretKey, nonce: u64, gas_price: u64) -> VerifiedTx {
    let signed = Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit: 21_000,
        gas_price,
        payload: TxPayload::Transfer {
            to: Address([7; 20]),
            amount: 5,
        },
    }
    .sign(key);
    VerifiedTx::new(signed, CHAIN).unwrap()
}

fn funded(keys: &[SecretKey]) -> Accounts {
    let mut a = Accounts::default();
    for k in keys {
        a.0.insert(
            k.address(),
            AccountState {
                nonce: 0,
                balance: 1 << 60,
            },
        );
    }
    a
}

/// The model tests price every transaction at a flat 21 000 gas, so
/// intrinsic gas is off here; `gas_below_intrinsic_is_refused` checks it.
fn config() -> MempoolConfig {
    MempoolConfig {
        tx_gas_base: 0,
        tx_gas_per_byte: 0,
        ..MempoolConfig::new(CHAIN)
    }
}

const ROOMY: BlockLimits = BlockLimits {
    gas_max: u64::MAX,
    bytes_max: usize::MAX,
    txs_max: usize::MAX,
};

#[test]
fn a_batch_decides_as_one_by_one() {
    let cfg = config();
    let limits = Limits::default();
    let keys = SenderKeys::new(8);
    // Key 1 gets a table (three of its named transactions admitted).
    for nonce in 0..3 {
        let raw = tx(&key(1), nonce, 1).tx.to_bytes();
        let vtx = verify_raw_as(&raw, &cfg, &limits, Some((key(1).address(), &keys))).unwrap();
        keys.admitted(&vtx.sender);
    }
    let good1 = tx(&key(1), 5, 1).tx.to_bytes();
    let good2 = tx(&key(2), 0, 1).tx.to_bytes();
    let mut bad_v = good1.clone();
    let n = bad_v.len();
    bad_v[n - 1] = 7;
    let mut wrong_chain = tx(&key(1), 6, 1).tx;
    wrong_chain.tx.chain_id = CHAIN + 1;
    let wrong_chain = wrong_chain.tx.sign(&key(1)).to_bytes();
    let items: Vec<(&[u8], Option<Address>)> = vec![
        (&good1, Some(key(1).address())),
        (&good1, Some(key(2).address())),
        (&good2, Some(key(2).address())),
        (&good2, Some(key(1).address())),
        (&good2, None),
        (&bad_v, Some(key(1).address())),
        (&bad_v, None),
        (&good1[..10], Some(key(1).address())),
        (&wrong_chain, Some(key(1).address())),
    ];
    let one_by_one: Vec<Result<VerifiedTx, AdmitError>> = items
        .iter()
        .map(|(raw, claim)| verify_raw_as(raw, &cfg, &limits, claim.map(|c| (c, &keys))))
        .collect();
    let batch = verify_raw_batch(&items, &cfg, &limits, &keys);
    let summary =
        |r: &[Result<VerifiedTx, AdmitError>]| -> Vec<Result<(Hash, Address), AdmitError>> {
            r.iter()
                .map(|v| v.as_ref().map(|v| (v.hash, v.sender)).map_err(Clone::clone))
                .collect()
        };
    assert_eq!(summary(&batch), summary(&one_by_one));
    assert!(matches!(
        &summary(&batch)[..5],
        [
            Ok(_),
            Err(AdmitError::NotSignedBy(_)),
            Ok(_),
            Err(AdmitError::NotSignedBy(_)),
            Ok(_)
        ]
    ));
    assert!(verify_raw_batch(&[], &cfg, &limits, &keys).is_empty());
}

#[test]
fn stateless_checks_name_the_problem() {
    let k = key(1);
    let cfg = config();
    let limits = Limits::default();
    let good = tx(&k, 0, 1).tx.to_bytes();
    assert!(verify_raw(&good, &cfg, &limits).is_ok());
    assert!(matches!(
        verify_raw(&good[..good.len() - 1], &cfg, &limits),
        Err(AdmitError::Malformed(_))
    ));
    let mut bad_sig = good.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] = 7; // recovery id out of range
    assert!(matches!(
        verify_raw(&bad_sig, &cfg, &limits),
        Err(AdmitError::BadSignature(_))
    ));
    let other_chain = MempoolConfig::new(CHAIN + 1);
    assert_eq!(
        verify_raw(&good, &other_chain, &limits),
        Err(AdmitError::WrongChain {
            expected: CHAIN + 1,
            got: CHAIN
        })
    );
    let small = MempoolConfig {
        tx_bytes_max: 10,
        ..config()
    };
    assert!(matches!(
        verify_raw(&good, &small, &limits),
        Err(AdmitError::TooLarge { max: 10, .. })
    ));
}

#[test]
fn gas_below_intrinsic_is_refused() {
    let k = key(1);
    let accounts = funded(std::slice::from_ref(&k));
    let mut pool = Mempool::new(MempoolConfig::new(CHAIN));
    let low = tx(&k, 0, 1);
    let low_bytes = low.bytes;
    let intrinsic = 21_000 + 16 * low_bytes as u64;
    assert_eq!(
        pool.insert(low, &accounts),
        Err(AdmitError::GasBelowIntrinsic {
            gas_limit: 21_000,
            intrinsic
        })
    );
    let enough = VerifiedTx::new(
        Transaction {
            chain_id: CHAIN,
            nonce: 0,
            gas_limit: intrinsic,
            gas_price: 1,
            payload: TxPayload::Transfer {
                to: Address([7; 20]),
                amount: 5,
            },
        }
        .sign(&k),
        CHAIN,
    )
    .unwrap();
    assert_eq!(
        enough.bytes, low_bytes,
        "the gas limit has a fixed-width encoding"
    );
    assert!(pool.insert(enough, &accounts).is_ok());
}

#[test]
fn stateful_checks_name_the_problem() {
    let k = key(1);
    let mut accounts = funded(std::slice::from_ref(&k));
    accounts.0.get_mut(&k.address()).unwrap().nonce = 5;
    let mut pool = Mempool::new(config());
    assert_eq!(
        pool.insert(tx(&k, 4, 1), &accounts),
        Err(AdmitError::NonceTooLow {
            expected: 5,
            got: 4
        })
    );
    assert_eq!(
        pool.insert(tx(&k, 70, 1), &accounts),
        Err(AdmitError::NonceTooHigh {
            expected: 5,
            max: 69,
            got: 70
        })
    );
    assert_eq!(
        pool.insert(tx(&k, 5, 0), &accounts),
        Err(AdmitError::GasPriceTooLow { min: 1, got: 0 })
    );
    let poor = key(2);
    assert!(matches!(
        pool.insert(tx(&poor, 0, 1), &accounts),
        Err(AdmitError::InsufficientFunds { balance: 0, .. })
    ));
    let ok = tx(&k, 5, 10);
    assert_eq!(pool.insert(ok.clone(), &accounts), Ok(vec![]));
    assert_eq!(
        pool.insert(ok.clone(), &accounts),
        Err(AdmitError::AlreadyKnown(ok.hash))
    );
    // Signing is deterministic, so the same transaction signed again is
    // the same transaction.
    assert_eq!(
        pool.insert(tx(&k, 5, 10), &accounts),
        Err(AdmitError::AlreadyKnown(ok.hash))
    );
    let mut big_gas = tx(&k, 6, 1);
    big_gas.tx.tx.gas_limit = u64::MAX;
    let big_gas = VerifiedTx::new(big_gas.tx.tx.sign(&k), CHAIN).unwrap();
    assert!(matches!(
        pool.insert(big_gas, &accounts),
        Err(AdmitError::GasLimitOverBlock { .. })
    ));
    pool.check_invariants();
}

#[test]
fn replacement_needs_a_ten_percent_bump() {
    let k = key(1);
    let accounts = funded(std::slice::from_ref(&k));
    let mut pool = Mempool::new(config());
    let first = tx(&k, 0, 100);
    pool.insert(first.clone(), &accounts).unwrap();
    assert_eq!(
        pool.insert(tx(&k, 0, 109), &accounts),
        Err(AdmitError::ReplacementUnderpriced {
            old: 100,
            required: 110,
            got: 109
        })
    );
    let second = tx(&k, 0, 110);
    pool.insert(second.clone(), &accounts).unwrap();
    assert!(!pool.contains(&first.hash));
    assert!(pool.contains(&second.hash));
    assert_eq!(pool.len(), 1);
    pool.check_invariants();
}

#[test]
fn full_pool_evicts_the_cheapest_tail_and_rejects_cheap_newcomers() {
    let keys: Vec<SecretKey> = (0..4).map(key).collect();
    let accounts = funded(&keys);
    let mut pool = Mempool::new(MempoolConfig {
        txs_max: 3,
        ..config()
    });
    let a0 = tx(&keys[0], 0, 5);
    let a1 = tx(&keys[0], 1, 1);
    let b0 = tx(&keys[1], 0, 3);
    for t in [&a0, &a1, &b0] {
        pool.insert(t.clone(), &accounts).unwrap();
    }
    assert_eq!(
        pool.insert(tx(&keys[2], 0, 1), &accounts),
        Err(AdmitError::Full { got: 1 })
    );
    // Price 2 beats a1 (price 1, the tail of sender 0).
    let c0 = tx(&keys[2], 0, 2);
    assert_eq!(pool.insert(c0.clone(), &accounts), Ok(vec![a1.hash]));
    // Price 4 needs to evict the cheapest tail: c0 (2).
    let d0 = tx(&keys[3], 0, 4);
    assert_eq!(pool.insert(d0, &accounts), Ok(vec![c0.hash]));
    assert!(pool.contains(&a0.hash) && pool.contains(&b0.hash));
    pool.check_invariants();
}

#[test]
fn select_respects_nonce_order_price_and_block_limits() {
    let keys: Vec<SecretKey> = (0..3).map(key).collect();
    let mut accounts = funded(&keys);
    let mut pool = Mempool::new(config());
    let a = [tx(&keys[0], 0, 1), tx(&keys[0], 1, 50), tx(&keys[0], 2, 1)];
    let b = [tx(&keys[1], 0, 10), tx(&keys[1], 1, 10)];
    let c_gap = tx(&keys[2], 1, 100); // nonce 0 missing: not executable
    for t in a.iter().chain(&b).chain([&c_gap]) {
        pool.insert(t.clone(), &accounts).unwrap();
    }
    let picked: Vec<Hash> = pool
        .select(ROOMY, &accounts)
        .iter()
        .map(SignedTransaction::hash)
        .collect();
    assert_eq!(
        picked,
        vec![b[0].hash, b[1].hash, a[0].hash, a[1].hash, a[2].hash]
    );
    let limited = pool.select(
        BlockLimits {
            gas_max: 21_000 * 3,
            ..ROOMY
        },
        &accounts,
    );
    assert_eq!(limited.len(), 3);
    // The sender's balance covers only one transaction's cost.
    accounts.0.get_mut(&keys[1].address()).unwrap().balance = 21_000 * 10 + 5;
    let picked: Vec<Hash> = pool
        .select(ROOMY, &accounts)
        .iter()
        .map(SignedTransaction::hash)
        .collect();
    assert_eq!(picked, vec![b[0].hash, a[0].hash, a[1].hash, a[2].hash]);
}

#[test]
fn committed_block_removes_its_txs_and_stale_ones() {
    let keys: Vec<SecretKey> = (0..2).map(key).collect();
    let mut accounts = funded(&keys);
    let mut pool = Mempool::new(config());
    let a = [tx(&keys[0], 0, 1), tx(&keys[0], 1, 1), tx(&keys[0], 2, 1)];
    for t in &a {
        pool.insert(t.clone(), &accounts).unwrap();
    }
    // Another validator's block used nonces 0 and 1 with other transactions.
    accounts.0.get_mut(&keys[0].address()).unwrap().nonce = 2;
    let other = tx(&keys[0], 0, 7);
    let dropped = pool.on_block_committed(&[(other.hash, keys[0].address())], &accounts);
    assert_eq!(dropped, 2);
    assert_eq!(pool.len(), 1);
    assert!(pool.contains(&a[2].hash));
    assert_eq!(pool.pending_nonce(&keys[0].address(), &accounts), 3);
    pool.check_invariants();
}

#[derive(Debug, Clone)]
enum Op {
    Insert { sender: u16, nonce: u64, price: u64 },
    Commit { sender: u16, nonce: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..5, 0u64..6, 1u64..6).prop_map(|(sender, nonce, price)| Op::Insert { sender, nonce, price }),
        1 => (0u16..5, 0u64..4).prop_map(|(sender, nonce)| Op::Commit { sender, nonce }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The pool's contents always equal a simple model's: a map from
    /// (sender, nonce) to gas price, updated by what insert reports.
    #[test]
    fn pool_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let keys: Vec<SecretKey> = (0..5).map(key).collect();
        let mut accounts = funded(&keys);
        let cfg = MempoolConfig { txs_max: 8, sender_txs_max: 3, nonce_ahead_max: 4, ..config() };
        let mut pool = Mempool::new(cfg.clone());
        let mut model: BTreeMap<(u16, u64), (u64, Hash)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert { sender, nonce, price } => {
                    let vtx = tx(&keys[sender as usize], nonce, price);
                    let account = accounts.account(&keys[sender as usize].address());
                    let held = model.range((sender, 0)..(sender + 1, 0)).count();
                    let existing = model.get(&(sender, nonce)).copied();
                    match pool.insert(vtx.clone(), &accounts) {
                        Ok(evicted) => {
                            prop_assert!(nonce >= account.nonce && nonce <= account.nonce + 4);
                            if let Some((old, _)) = existing {
                                prop_assert!(price >= old + (old / 10).max(1));
                            } else {
                                prop_assert!(held < 3);
                            }
                            for h in evicted {
                                let k = *model.iter().find(|(_, v)| v.1 == h).expect("evicted a held tx").0;
                                prop_assert!(model[&k].0 < price);
                                model.remove(&k);
                            }
                            model.insert((sender, nonce), (price, vtx.hash));
                        }
                        Err(AdmitError::NonceTooLow { .. }) => prop_assert!(nonce < account.nonce),
                        Err(AdmitError::NonceTooHigh { .. }) => prop_assert!(nonce > account.nonce + 4),
                        Err(AdmitError::AlreadyKnown(_)) => prop_assert_eq!(existing.map(|e| e.0), Some(price)),
                        Err(AdmitError::ReplacementUnderpriced { .. }) => prop_assert!(existing.is_some()),
                        Err(AdmitError::SenderFull { .. }) => prop_assert!(existing.is_none() && held >= 3),
                        Err(AdmitError::Full { .. }) => prop_assert!(model.len() >= 8),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Commit { sender, nonce } => {
                    let addr = keys[sender as usize].address();
                    let state = accounts.0.get_mut(&addr).unwrap();
                    state.nonce = state.nonce.max(nonce);
                    let new_nonce = state.nonce;
                    pool.on_block_committed(&[(Hash::ZERO, addr)], &accounts);
                    model.retain(|(s, n), _| *s != sender || *n >= new_nonce);
                }
            }
            pool.check_invariants();
            let held: Vec<Hash> = model.values().map(|v| v.1).collect();
            prop_assert_eq!(pool.len(), held.len());
            for h in &held {
                prop_assert!(pool.contains(h));
            }
            // Selection is gap-free per sender and starts at the account nonce.
            let mut next: BTreeMap<Address, u64> = BTreeMap::new();
            for t in pool.select(ROOMY, &accounts) {
                let sender = t.verify(CHAIN).unwrap();
                let expected = next.entry(sender).or_insert_with(|| accounts.account(&sender).nonce);
                prop_assert_eq!(t.tx.nonce, *expected);
                *expected += 1;
            }
        }
    }
}

/// A flood from 1k senders into a pool capped at 5k transactions: the pool
/// stays within its count and byte caps throughout. CI floods 25k
/// (signing dominates the time); `STELE_FLOOD_TXS=100000` for the long run.
#[test]
fn flood_keeps_the_pool_within_its_caps() {
    let count: usize = std::env::var("STELE_FLOOD_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let senders = 1000u16;
    let keys: Vec<SecretKey> = (0..senders).map(key).collect();
    let accounts = funded(&keys);
    let cfg = MempoolConfig {
        txs_max: 5_000,
        bytes_max: 5_000 * 200,
        sender_txs_max: 100,
        nonce_ahead_max: 100,
        ..config()
    };
    let mut pool = Mempool::new(cfg.clone());
    let mut admitted = 0usize;
    for i in 0..count {
        let sender = (i % senders as usize) as u16;
        let nonce = (i / senders as usize) as u64;
        let price = 1 + (i as u64 * 7919) % 1000;
        // Signing dominates this test's time; sign once per tx, verify via
        // the real stateless path.
        let raw = Transaction {
            chain_id: CHAIN,
            nonce,
            gas_limit: 21_000,
            gas_price: price,
            payload: TxPayload::Transfer {
                to: Address([1; 20]),
                amount: 1 as Amount,
            },
        }
        .sign(&keys[sender as usize])
        .to_bytes();
        let vtx = verify_raw(&raw, &cfg, &Limits::default()).unwrap();
        if pool.insert(vtx, &accounts).is_ok() {
            admitted += 1;
        }
        assert!(pool.len() <= cfg.txs_max);
        assert!(pool.bytes() <= cfg.bytes_max);
    }
    pool.check_invariants();
    assert!(admitted >= cfg.txs_max.min(count));
    let block = pool.select(
        BlockLimits {
            gas_max: 21_000 * 5_000,
            bytes_max: 1 << 22,
            txs_max: 5_000,
        },
        &accounts,
    );
    assert!(!block.is_empty());
}
