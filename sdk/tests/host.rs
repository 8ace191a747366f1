//! SDK logic on the host mock: storage layout and ordered iteration, key
//! encoding order, events, reverts and the ABI a contract describes.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use stele_sdk::__rt::{ContractState, StorageField};
use stele_sdk::abi::{AbiType, TypeRegistry};
use stele_sdk::prelude::*;
use stele_sdk::testing::{self, Mock};
use stele_sdk::{Event, StorageKey};

#[contract]
#[derive(Debug)]
pub struct Book {
    title: Item<String>,
    pages: Map<(Address, u64), u32>,
    log: Vector<i64>,
}

#[data]
#[derive(Debug, PartialEq)]
pub enum Shape {
    Dot,
    Line(u32),
    Box { w: u16, h: Option<u16> },
}

#[event]
#[derive(Debug)]
pub struct Moved {
    #[topic]
    pub who: Address,
    #[topic]
    pub tag: String,
    pub to: (i32, i32),
}

#[test]
fn storage_fields_live_at_their_prefixes() {
    testing::reset(Mock::default());
    let book = Book::__load();
    book.title.set(&"Dune".to_string());
    assert_eq!(book.title.get().as_deref(), Some("Dune"));
    let stored = testing::with(|m| m.storage.clone());
    assert_eq!(
        stored.get(b"\x05title".as_slice()),
        Some(&borsh::to_vec("Dune").unwrap())
    );
    assert!(book.title.remove());
    assert_eq!(book.title.get(), None);
}

#[test]
fn map_iterates_in_key_order_by_prefix() {
    testing::reset(Mock::default());
    let book = Book::__load();
    let (a, b) = (Address([1; 20]), Address([2; 20]));
    for (who, page) in [(b, 1u64), (a, 300), (a, 2), (b, 0), (a, 256)] {
        book.pages.set(&(who, page), &(page as u32 * 10));
    }
    let a_pages: Vec<u64> = book.pages.iter_prefix(&a).map(|((_, p), _)| p).collect();
    assert_eq!(a_pages, [2, 256, 300]);
    let all: Vec<((Address, u64), u32)> = book.pages.iter().collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[3], ((b, 0), 0));
    assert!(book.pages.remove(&(a, 256)));
    assert!(!book.pages.contains(&(a, 256)));
    assert_eq!(book.pages.iter_prefix(&a).count(), 2);
}

#[test]
fn vector_pushes_pops_and_indexes() {
    testing::reset(Mock::default());
    let book = Book::__load();
    for v in [-1i64, 5, 9] {
        book.log.push(&v);
    }
    assert_eq!(book.log.len(), 3);
    assert_eq!(book.log.get(1), Some(5));
    assert_eq!(book.log.get(3), None);
    assert_eq!(book.log.pop(), Some(9));
    assert_eq!(book.log.iter().collect::<Vec<_>>(), [-1, 5]);
    let err = testing::catch_revert(|| book.log.set(7, &0)).unwrap_err();
    assert_eq!(&err[1..], b"vector index out of range");
}

#[test]
fn key_encoding_preserves_order() {
    fn enc<K: StorageKey>(k: K) -> Vec<u8> {
        let mut out = Vec::new();
        k.write_key(&mut out);
        out
    }
    assert!(enc(-5i64) < enc(-1i64) && enc(-1i64) < enc(0i64) && enc(0i64) < enc(7i64));
    assert!(enc(255u64) < enc(256u64));
    assert!(enc("b".to_string()) < enc("aa".to_string()));
    let mut bytes = enc((Address([3; 20]), -9i32)).leak() as &[u8];
    assert_eq!(
        <(Address, i32)>::read_key(&mut bytes),
        Some((Address([3; 20]), -9))
    );
    assert!(bytes.is_empty());
    let mut short: &[u8] = &[1, 2];
    assert_eq!(u64::read_key(&mut short), None);
}

#[test]
fn events_have_name_and_typed_topics() {
    testing::reset(Mock::default());
    let who = Address([9; 20]);
    emit(&Moved {
        who,
        tag: "x".to_string(),
        to: (1, -1),
    });
    let (topics, data) = testing::with(|m| m.events[0].clone());
    assert_eq!(topics[0], env::keccak256(b"Moved"));
    assert_eq!(topics[0], Moved::TOPIC);
    assert_eq!(&topics[1][..20], &who.0);
    assert_eq!(topics[1][20..], [0u8; 12]);
    assert_eq!(topics[2], env::keccak256(&borsh::to_vec("x").unwrap()));
    assert_eq!(data, borsh::to_vec(&(1i32, -1i32)).unwrap());
}

#[test]
fn reverts_carry_tagged_payloads() {
    testing::reset(Mock::default());
    let msg = testing::catch_revert(|| require!(1 + 1 == 3, "math")).unwrap_err();
    assert_eq!(msg, b"\0math");
    let typed = testing::catch_revert(|| env::revert_with(&Shape::Line(4))).unwrap_err();
    assert_eq!(typed[0], 1);
    assert_eq!(
        borsh::from_slice::<Shape>(&typed[1..]).unwrap(),
        Shape::Line(4)
    );
}

#[test]
fn abi_descriptions_are_valid_for_stele_abi_shapes() {
    let mut reg = TypeRegistry::default();
    assert_eq!(Vec::<u8>::type_ref(&mut reg), "\"bytes\"");
    assert_eq!(<[u8; 32]>::type_ref(&mut reg), "{\"array\":[\"u8\",32]}");
    assert_eq!(Shape::type_ref(&mut reg), "{\"defined\":\"Shape\"}");
    let mut b = stele_sdk::abi::AbiBuilder::new("book", "0.1.0");
    b.method(
        "draw",
        "call",
        true,
        &[("s", Shape::type_ref)],
        <Option<Shape>>::type_ref,
        None,
    );
    b.event::<Moved>();
    let json = b.finish();
    assert!(json.contains("{\"kind\":\"enum\",\"name\":\"Shape\",\"variants\":[{\"name\":\"Dot\",\"fields\":\"unit\"}"), "{json}");
    assert!(json.contains("\"topics\":[{\"name\":\"who\",\"type\":\"address\"},{\"name\":\"tag\",\"type\":\"string\"}]"), "{json}");
    // stele-abi reads it, and encodes values exactly as Borsh does here.
    let abi = stele_abi::Abi::from_json(json.as_bytes()).unwrap();
    let arg = abi
        .encode_args("draw", &serde_json::json!([{"Box": {"w": 3, "h": null}}]))
        .unwrap();
    assert_eq!(arg, borsh::to_vec(&Shape::Box { w: 3, h: None }).unwrap());
}

#[test]
fn item_prefix_is_the_field_name() {
    let i = Item::<u8>::with_prefix(b"\x01x");
    testing::reset(Mock::default());
    i.set(&3);
    assert_eq!(
        testing::with(|m| m.storage.get(b"\x01x".as_slice()).cloned()),
        Some(vec![3])
    );
}

#[test]
fn hashes_and_signature_checks_answer_as_the_vm() {
    use stele_types::{Hash, SecretKey};
    assert_eq!(
        stele_types::hex::encode(&env::sha3_256(b"")),
        "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
    );
    let key = SecretKey::from_bytes(&[7; 32]).unwrap();
    let digest = env::keccak256(b"pay 5 to bob");
    let sig = key.sign_digest(&Hash(digest)).0;
    let public = key.public_key().0;
    assert_eq!(env::secp256k1_recover(&digest, &sig), Some(public));
    assert!(env::secp256k1_verify(&digest, &sig, &public));
    // The flipped-v twin: plain ECDSA passes it, recovery names another key.
    let mut twin = sig;
    twin[64] ^= 1;
    assert!(env::secp256k1_verify(&digest, &twin, &public));
    assert_ne!(env::secp256k1_recover(&digest, &twin), Some(public));
    // Another digest, a malformed v.
    let other = env::keccak256(b"pay 6 to bob");
    assert!(!env::secp256k1_verify(&other, &sig, &public));
    let mut bad = sig;
    bad[64] = 7;
    assert_eq!(env::secp256k1_recover(&digest, &bad), None);
    assert!(!env::secp256k1_verify(&digest, &bad, &public));
}

mod mocked_calls {
    use stele_sdk::prelude::*;
    use stele_sdk::testing::{self, Mock, Reply};

    #[data]
    #[derive(Debug, PartialEq)]
    pub enum TokenError {
        InsufficientBalance { have: u128 },
    }

    #[stele_sdk::interface]
    pub trait Token {
        fn transfer(&mut self, to: Address, amount: u128) -> Result<(), TokenError>;
        fn balance_of(&self, who: Address) -> u128;
    }

    #[test]
    fn a_unit_test_mocks_the_contracts_its_code_calls() {
        let token = Address([7; 20]);
        let me = Address([1; 20]);
        let bob = Address([2; 20]);
        testing::reset(Mock {
            self_address: me,
            balances: [(me, 100)].into_iter().collect(),
            ..Mock::default()
        });
        testing::mock_call(token, "balance_of", |_| Reply::returns(&42u128));
        testing::mock_call(token, "transfer", |call| {
            let (_to, amount): (Address, u128) = borsh::from_slice(&call.args).unwrap();
            if amount > 10 {
                Reply::reverts_with(&TokenError::InsufficientBalance { have: 10 })
            } else {
                Reply::returns(&())
            }
        });
        let t = TokenRef::new(token);
        assert_eq!(t.balance_of(bob).or_revert(), 42);
        assert!(t.transfer(bob, 5).is_ok());
        assert!(matches!(
            t.transfer(bob, 50),
            Err(CallError::Error(TokenError::InsufficientBalance {
                have: 10
            }))
        ));
        // Value goes with a successful call only.
        assert!(t.with_value(30).balance_of(bob).is_ok());
        assert_eq!(testing::with(|m| m.balances[&me]), 70);
        // What was not mocked fails, and every call is on record.
        let other = OtherRef::new(Address([9; 20]));
        assert!(matches!(other.ping(), Err(CallError::Failed { .. })));
        let made = testing::calls();
        assert_eq!(made.len(), 5);
        assert_eq!((made[2].method.as_str(), made[3].value), ("transfer", 30));
    }

    #[stele_sdk::interface]
    pub trait Other {
        fn ping(&self);
    }
}
