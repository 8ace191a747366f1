//! The ABI format, `from_wasm`, and JSON <-> Borsh conversion checked
//! against the `borsh` crate's own encoding.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use borsh::BorshSerialize;
use serde_json::json;
use stele_abi::*;

fn abi() -> Abi {
    let doc = json!({
        "abi_version": 1,
        "name": "token",
        "version": "0.1.0",
        "methods": [
            {"name": "init", "kind": "init", "args": [{"name": "supply", "type": "u128"}], "returns": "unit"},
            {"name": "transfer", "kind": "call", "payable": false,
             "args": [{"name": "to", "type": "address"}, {"name": "amount", "type": "u128"}],
             "returns": "bool", "error": {"defined": "TokenError"}},
            {"name": "order", "kind": "call", "payable": true,
             "args": [{"name": "o", "type": {"defined": "Order"}}, {"name": "tags", "type": {"vec": "string"}},
                      {"name": "memo", "type": {"option": "bytes"}}, {"name": "h", "type": {"array": ["u8", 4]}},
                      {"name": "pair", "type": {"tuple": ["i64", "u16"]}}],
             "returns": {"vec": {"defined": "Side"}}},
            {"name": "balance_of", "kind": "view", "args": [{"name": "who", "type": "address"}], "returns": "u128"}
        ],
        "events": [
            {"name": "Transfer", "topics": [{"name": "from", "type": "address"}, {"name": "memo", "type": "string"}],
             "data": [{"name": "amount", "type": "u128"}]}
        ],
        "types": [
            {"kind": "struct", "name": "Order", "fields": {"named": [
                {"name": "side", "type": {"defined": "Side"}}, {"name": "price", "type": "u64"}, {"name": "ok", "type": "bool"}]}},
            {"kind": "enum", "name": "Side", "variants": [
                {"name": "Buy", "fields": "unit"}, {"name": "Sell", "fields": {"unnamed": ["u32"]}},
                {"name": "Limit", "fields": {"named": [{"name": "max", "type": "i8"}]}}]},
            {"kind": "enum", "name": "TokenError", "variants": [
                {"name": "Insufficient", "fields": {"named": [{"name": "have", "type": "u128"}, {"name": "need", "type": "u128"}]}},
                {"name": "Paused", "fields": "unit"}]}
        ]
    });
    Abi::from_json(doc.to_string().as_bytes()).unwrap()
}

#[derive(BorshSerialize)]
enum Side {
    #[allow(dead_code)]
    Buy,
    Sell(u32),
    Limit {
        max: i8,
    },
}

#[derive(BorshSerialize)]
struct Order {
    side: Side,
    price: u64,
    ok: bool,
}

#[derive(BorshSerialize)]
enum TokenError {
    Insufficient { have: u128, need: u128 },
}

const ADDR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn addr_bytes() -> [u8; 20] {
    let mut b = [0u8; 20];
    b.copy_from_slice(&stele_types::hex::decode(ADDR).unwrap());
    b
}

#[test]
fn args_by_name_and_by_position_match_borsh() {
    let abi = abi();
    let expected = borsh::to_vec(&(addr_bytes(), 10u128.pow(30))).unwrap();
    let by_name = abi
        .encode_args(
            "transfer",
            &json!({"amount": "1000000000000000000000000000000", "to": ADDR}),
        )
        .unwrap();
    let by_pos = abi
        .encode_args(
            "transfer",
            &json!([ADDR.to_lowercase(), "1000000000000000000000000000000"]),
        )
        .unwrap();
    assert_eq!(by_name, expected);
    assert_eq!(by_pos, expected);
    let back = abi.decode_args("transfer", &expected).unwrap();
    assert_eq!(
        back,
        json!({"to": ADDR, "amount": "1000000000000000000000000000000"})
    );
}

#[test]
fn nested_user_types_round_trip() {
    let abi = abi();
    let args = json!({
        "o": {"side": {"Limit": {"max": -3}}, "price": "18446744073709551615", "ok": true},
        "tags": ["a", "β"],
        "memo": "0x0102",
        "h": "0xdeadbeef",
        "pair": ["-5", 7]
    });
    let bytes = abi.encode_args("order", &args).unwrap();
    let expected = borsh::to_vec(&(
        Order {
            side: Side::Limit { max: -3 },
            price: u64::MAX,
            ok: true,
        },
        vec!["a".to_string(), "β".to_string()],
        Some(vec![1u8, 2]),
        [0xdeu8, 0xad, 0xbe, 0xef],
        (-5i64, 7u16),
    ))
    .unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(abi.decode_args("order", &bytes).unwrap(), args);

    let ret = borsh::to_vec(&vec![Side::Sell(9), Side::Limit { max: 1 }]).unwrap();
    assert_eq!(
        abi.decode_return("order", &ret).unwrap(),
        json!([{"Sell": [9]}, {"Limit": {"max": 1}}])
    );
}

#[test]
fn bad_args_get_specific_errors() {
    let abi = abi();
    let err = |v| abi.encode_args("transfer", &v).unwrap_err().to_string();
    assert_eq!(
        err(json!({"to": ADDR, "amount": true})),
        "arg `amount`: expected u128 as a decimal string, got true"
    );
    assert_eq!(
        err(json!({"to": ADDR, "amount": "1.5"})),
        "arg `amount`: expected u128 as a decimal string, got \"1.5\""
    );
    assert_eq!(err(json!({"to": ADDR})), "arg `amount`: missing");
    assert_eq!(
        err(json!({"to": ADDR, "amount": "1", "x": 1})),
        "args: unknown field `x`"
    );
    assert_eq!(err(json!([ADDR])), "args: expected 2 arguments, got 1");
    assert!(
        err(json!({"to": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "amount": "1"}))
            .contains("checksum")
    );
    assert!(err(json!({"to": "0x12", "amount": "1"})).starts_with("arg `to`: address must be"));
    assert_eq!(
        abi.encode_args("nope", &json!([])).unwrap_err(),
        AbiError::UnknownMethod("nope".into())
    );
    let e = abi
        .encode_args("order", &json!({"o": {"side": "Short", "price": "1", "ok": true}, "tags": [], "memo": null, "h": "0x00", "pair": ["1", 1]}))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "arg `o`.side: `Side` has no variant `Short`");
}

#[test]
fn decoding_is_bounded_and_strict() {
    let abi = abi();
    // Trailing bytes, short input, bad bool, a huge announced length.
    assert!(
        abi.decode_return("balance_of", &[0; 17])
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    assert!(
        abi.decode_return("balance_of", &[0; 3])
            .unwrap_err()
            .to_string()
            .contains("ends early")
    );
    assert!(
        abi.decode_return("transfer", &[2])
            .unwrap_err()
            .to_string()
            .contains("invalid bool")
    );
    let huge = u32::MAX.to_le_bytes();
    assert!(abi.decode_return("order", &huge).is_err());
    // Many zero-sized elements are capped rather than looped over forever.
    let unit_vec = TypeRef::Vec(Box::new(TypeRef::Unit));
    let e = abi.decode_value(&unit_vec, &huge).unwrap_err().to_string();
    assert!(e.contains("more than"), "{e}");
}

#[test]
fn reverts_decode_by_tag() {
    let abi = abi();
    let mut msg = vec![REVERT_MESSAGE];
    msg.extend_from_slice(b"not owner");
    assert_eq!(
        abi.decode_revert("transfer", &msg).unwrap(),
        Revert::Message("not owner".into())
    );
    let mut typed = vec![REVERT_ERROR];
    typed.extend(borsh::to_vec(&TokenError::Insufficient { have: 1, need: 2 }).unwrap());
    assert_eq!(
        abi.decode_revert("transfer", &typed).unwrap(),
        Revert::Error(json!({"Insufficient": {"have": "1", "need": "2"}}))
    );
    // A method without an error type, and foreign payloads, stay raw.
    assert_eq!(
        abi.decode_revert("balance_of", &typed).unwrap(),
        Revert::Raw(typed.clone())
    );
    assert_eq!(
        abi.decode_revert("transfer", &[7, 1]).unwrap(),
        Revert::Raw(vec![7, 1])
    );
}

#[test]
fn events_decode_padded_and_hashed_topics() {
    let abi = abi();
    let mut from = [0u8; 32];
    from[..20].copy_from_slice(&addr_bytes());
    let memo = stele_types::keccak256(&borsh::to_vec("hello").unwrap()).0;
    let data = borsh::to_vec(&5u128).unwrap();
    let ev = abi
        .decode_event(&[event_topic("Transfer"), from, memo], &data)
        .unwrap();
    assert_eq!(ev.name, "Transfer");
    assert_eq!(ev.fields["from"], json!(ADDR));
    assert_eq!(ev.fields["memo"], json!(stele_types::hex::encode(&memo)));
    assert_eq!(ev.fields["amount"], json!("5"));
    assert!(matches!(
        abi.decode_event(&[[1; 32]], &data),
        Err(AbiError::UnknownEvent(_))
    ));
    from[31] = 1;
    assert!(
        abi.decode_event(&[event_topic("Transfer"), from, memo], &data)
            .is_err()
    );
}

#[test]
fn inconsistent_abis_are_rejected() {
    let mut doc: serde_json::Value = serde_json::from_str(&abi().to_json()).unwrap();
    assert_eq!(Abi::from_json(doc.to_string().as_bytes()).unwrap(), abi());
    doc["methods"][1]["error"] = json!({"defined": "Missing"});
    let e = Abi::from_json(doc.to_string().as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("type `Missing` is not defined"),
        "{e}"
    );
    doc["methods"][1]["error"] = json!(null);
    doc["abi_version"] = json!(2);
    assert!(Abi::from_json(doc.to_string().as_bytes()).is_err());
    doc["abi_version"] = json!(1);
    doc["methods"][2]["name"] = json!("transfer");
    assert!(
        Abi::from_json(doc.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate method")
    );
    assert!(matches!(
        Abi::from_json(b"{\"abi_version\": 1"),
        Err(AbiError::InvalidJson(_))
    ));
}

fn module_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m = wasm_encoder::Module::new();
    for (name, data) in sections {
        m.section(&wasm_encoder::CustomSection {
            name: (*name).into(),
            data: (*data).into(),
        });
    }
    m.finish()
}

#[test]
fn from_wasm_finds_the_section() {
    let json = abi().to_json();
    let wasm = module_with(&[("producers", b"x"), (ABI_SECTION, json.as_bytes())]);
    assert_eq!(Abi::from_wasm(&wasm).unwrap(), abi());
    assert_eq!(
        Abi::from_wasm(&module_with(&[])),
        Err(AbiError::NoAbiSection)
    );
    let two = module_with(&[
        (ABI_SECTION, json.as_bytes()),
        (ABI_SECTION, json.as_bytes()),
    ]);
    assert_eq!(Abi::from_wasm(&two), Err(AbiError::DuplicateAbiSection));
    let big = vec![b' '; ABI_SECTION_BYTES_MAX + 1];
    assert!(matches!(
        Abi::from_wasm(&module_with(&[(ABI_SECTION, &big)])),
        Err(AbiError::AbiTooLarge { .. })
    ));
    assert!(matches!(
        Abi::from_wasm(b"\0asm\x01\0\0\0\x00\xff"),
        Err(AbiError::InvalidWasm(_))
    ));
    assert!(matches!(
        Abi::from_wasm(b"junk"),
        Err(AbiError::InvalidWasm(_))
    ));
}

#[test]
fn abi_section_gives_the_json_as_written() {
    // Not an ABI, yet returned as is: the section is read, not parsed.
    let wasm = module_with(&[("producers", b"x"), (ABI_SECTION, b"{not json")]);
    assert_eq!(abi_section(&wasm), Ok(Some(&b"{not json"[..])));
    assert_eq!(abi_section(&module_with(&[("producers", b"x")])), Ok(None));
    let two = module_with(&[(ABI_SECTION, b"{}"), (ABI_SECTION, b"{}")]);
    assert_eq!(abi_section(&two), Err(AbiError::DuplicateAbiSection));
    assert!(matches!(
        abi_section(b"junk"),
        Err(AbiError::InvalidWasm(_))
    ));
}
