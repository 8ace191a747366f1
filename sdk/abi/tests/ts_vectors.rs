//! Conformance vectors for the TypeScript ABI code in `sdk/ts`
//! (`src/abi.ts`).
//!
//! This test runs the Rust ABI over a set of ABIs (the example contracts'
//! as `stele-build` embeds them, and a "kitchen" ABI with every type form)
//! and writes what it gives: argument JSON and its exact Borsh bytes,
//! return bytes and their JSON, revert payloads and events decoded, event
//! topics, the ABIs' canonical JSON, and every refusal with its error kind
//! and message. The TypeScript tests check every vector, so the two cannot
//! drift.
//!
//! With `STELE_WRITE_VECTORS=1` it writes `sdk/ts/fixtures/abi.json`;
//! otherwise it regenerates the document in memory and fails unless the
//! committed file is identical.
//!
//! Conventions: bytes are `0x` lowercase hex; JSON values are written as
//! they are (integers past 2^53 stay JSON numbers, which the TypeScript
//! reader keeps exact as `bigint`s); a refusal is `{"kind", "error"}` with
//! the `AbiError` variant in snake case and its message.
#![allow(clippy::unwrap_used)] // tests: a failure here is a test failure

use serde_json::{Value, json};
use stele_abi::*;

/// The example contracts' ABIs, as `stele-build` embeds them in their Wasm
/// (`contracts/*`).
const EXAMPLES: [(&str, &str); 6] = [
    (
        "counter",
        r#"{"abi_version":1,"name":"counter","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":false,"args":[{"name":"start","type":"u64"},{"name":"max","type":"u64"}],"returns":"unit"},{"name":"increment","kind":"call","payable":false,"args":[{"name":"by","type":"u64"}],"returns":"u64","error":{"defined":"CounterError"}},{"name":"reset","kind":"call","payable":false,"args":[],"returns":"unit","error":{"defined":"CounterError"}},{"name":"upgrade","kind":"call","payable":false,"args":[{"name":"code","type":"bytes"},{"name":"new_max","type":"u64"}],"returns":"unit","error":{"defined":"CounterError"}},{"name":"migrate","kind":"call","payable":false,"args":[{"name":"new_max","type":"u64"}],"returns":"unit"},{"name":"tip","kind":"call","payable":true,"args":[],"returns":"u128"},{"name":"get","kind":"view","payable":false,"args":[],"returns":"u64"},{"name":"max","kind":"view","payable":false,"args":[],"returns":"u64"},{"name":"owner","kind":"view","payable":false,"args":[],"returns":{"option":"address"}}],"events":[{"name":"Changed","topics":[{"name":"by","type":"address"}],"data":[{"name":"count","type":"u64"}]}],"types":[{"kind":"enum","name":"CounterError","variants":[{"name":"AtMax","fields":{"named":[{"name":"max","type":"u64"}]}},{"name":"NotOwner","fields":"unit"}]}]}"#,
    ),
    (
        "token",
        r#"{"abi_version":1,"name":"token","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":false,"args":[{"name":"name","type":"string"},{"name":"symbol","type":"string"},{"name":"decimals","type":"u8"},{"name":"initial_supply","type":"u128"}],"returns":"unit"},{"name":"mint","kind":"call","payable":false,"args":[{"name":"to","type":"address"},{"name":"amount","type":"u128"}],"returns":"unit","error":{"defined":"TokenError"}},{"name":"transfer","kind":"call","payable":false,"args":[{"name":"to","type":"address"},{"name":"amount","type":"u128"}],"returns":"unit","error":{"defined":"TokenError"}},{"name":"approve","kind":"call","payable":false,"args":[{"name":"spender","type":"address"},{"name":"amount","type":"u128"}],"returns":"unit"},{"name":"transfer_from","kind":"call","payable":false,"args":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"amount","type":"u128"}],"returns":"unit","error":{"defined":"TokenError"}},{"name":"balance_of","kind":"view","payable":false,"args":[{"name":"who","type":"address"}],"returns":"u128"},{"name":"allowance","kind":"view","payable":false,"args":[{"name":"owner","type":"address"},{"name":"spender","type":"address"}],"returns":"u128"},{"name":"total_supply","kind":"view","payable":false,"args":[],"returns":"u128"},{"name":"name","kind":"view","payable":false,"args":[],"returns":"string"},{"name":"symbol","kind":"view","payable":false,"args":[],"returns":"string"},{"name":"decimals","kind":"view","payable":false,"args":[],"returns":"u8"},{"name":"owner","kind":"view","payable":false,"args":[],"returns":{"option":"address"}}],"events":[{"name":"Transfer","topics":[{"name":"from","type":"address"},{"name":"to","type":"address"}],"data":[{"name":"amount","type":"u128"}]},{"name":"Approval","topics":[{"name":"owner","type":"address"},{"name":"spender","type":"address"}],"data":[{"name":"amount","type":"u128"}]}],"types":[{"kind":"enum","name":"TokenError","variants":[{"name":"InsufficientBalance","fields":{"named":[{"name":"have","type":"u128"},{"name":"need","type":"u128"}]}},{"name":"InsufficientAllowance","fields":{"named":[{"name":"have","type":"u128"},{"name":"need","type":"u128"}]}},{"name":"NotOwner","fields":"unit"},{"name":"SupplyOverflow","fields":"unit"}]}]}"#,
    ),
    (
        "amm",
        r#"{"abi_version":1,"name":"amm","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":false,"args":[{"name":"token_a","type":"address"},{"name":"token_b","type":"address"}],"returns":"unit"},{"name":"add_liquidity","kind":"call","payable":false,"args":[{"name":"amount_a","type":"u128"},{"name":"amount_b","type":"u128"}],"returns":"u128","error":{"defined":"AmmError"}},{"name":"swap","kind":"call","payable":false,"args":[{"name":"token_in","type":"address"},{"name":"amount_in","type":"u128"},{"name":"min_out","type":"u128"}],"returns":"u128","error":{"defined":"AmmError"}},{"name":"reserves","kind":"view","payable":false,"args":[],"returns":{"tuple":["u128","u128"]}},{"name":"shares_of","kind":"view","payable":false,"args":[{"name":"who","type":"address"}],"returns":"u128"}],"events":[{"name":"Swap","topics":[{"name":"trader","type":"address"},{"name":"token_in","type":"address"}],"data":[{"name":"amount_in","type":"u128"},{"name":"amount_out","type":"u128"}]}],"types":[{"kind":"enum","name":"AmmError","variants":[{"name":"UnknownToken","fields":"unit"},{"name":"Slippage","fields":{"named":[{"name":"out","type":"u128"},{"name":"min_out","type":"u128"}]}},{"name":"EmptyPool","fields":"unit"},{"name":"ZeroAmount","fields":"unit"},{"name":"TokenFailed","fields":{"unnamed":[{"option":{"defined":"TokenError"}}]}},{"name":"Reentrant","fields":"unit"},{"name":"Overflow","fields":"unit"}]},{"kind":"enum","name":"TokenError","variants":[{"name":"InsufficientBalance","fields":{"named":[{"name":"have","type":"u128"},{"name":"need","type":"u128"}]}},{"name":"InsufficientAllowance","fields":{"named":[{"name":"have","type":"u128"},{"name":"need","type":"u128"}]}},{"name":"NotOwner","fields":"unit"},{"name":"SupplyOverflow","fields":"unit"}]}]}"#,
    ),
    (
        "multisig",
        r#"{"abi_version":1,"name":"multisig","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":false,"args":[{"name":"owners","type":{"vec":"address"}},{"name":"threshold","type":"u32"}],"returns":"unit"},{"name":"propose","kind":"call","payable":false,"args":[{"name":"target","type":"address"},{"name":"method","type":"string"},{"name":"args","type":"bytes"},{"name":"value","type":"u128"}],"returns":"u32","error":{"defined":"MultisigError"}},{"name":"approve","kind":"call","payable":false,"args":[{"name":"id","type":"u32"}],"returns":"u32","error":{"defined":"MultisigError"}},{"name":"execute","kind":"call","payable":false,"args":[{"name":"id","type":"u32"}],"returns":"bytes","error":{"defined":"MultisigError"}},{"name":"proposal","kind":"view","payable":false,"args":[{"name":"id","type":"u32"}],"returns":{"option":{"defined":"Proposal"}}},{"name":"threshold","kind":"view","payable":false,"args":[],"returns":"u32"}],"events":[],"types":[{"kind":"enum","name":"MultisigError","variants":[{"name":"NotOwner","fields":"unit"},{"name":"NoSuchProposal","fields":"unit"},{"name":"AlreadyApproved","fields":"unit"},{"name":"AlreadyExecuted","fields":"unit"},{"name":"NotEnoughApprovals","fields":{"named":[{"name":"have","type":"u32"},{"name":"need","type":"u32"}]}},{"name":"CallFailed","fields":{"named":[{"name":"status","type":"u8"},{"name":"output","type":"bytes"}]}}]},{"kind":"struct","name":"Proposal","fields":{"named":[{"name":"target","type":"address"},{"name":"method","type":"string"},{"name":"args","type":"bytes"},{"name":"value","type":"u128"},{"name":"approvals","type":"u32"},{"name":"executed","type":"bool"}]}}]}"#,
    ),
    (
        "nft",
        r#"{"abi_version":1,"name":"nft","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":false,"args":[],"returns":"unit"},{"name":"mint","kind":"call","payable":false,"args":[{"name":"to","type":"address"},{"name":"id","type":"u64"}],"returns":"unit","error":{"defined":"NftError"}},{"name":"transfer","kind":"call","payable":false,"args":[{"name":"to","type":"address"},{"name":"id","type":"u64"}],"returns":"unit","error":{"defined":"NftError"}},{"name":"owner_of","kind":"view","payable":false,"args":[{"name":"id","type":"u64"}],"returns":{"option":"address"}},{"name":"tokens_of","kind":"view","payable":false,"args":[{"name":"owner","type":"address"},{"name":"after","type":{"option":"u64"}}],"returns":{"vec":"u64"}}],"events":[{"name":"Transfer","topics":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"id","type":"u64"}],"data":[]}],"types":[{"kind":"enum","name":"NftError","variants":[{"name":"NotMinter","fields":"unit"},{"name":"AlreadyMinted","fields":"unit"},{"name":"NoSuchToken","fields":"unit"},{"name":"NotTokenOwner","fields":"unit"}]}]}"#,
    ),
    (
        "escrow",
        r#"{"abi_version":1,"name":"escrow","version":"0.1.0","methods":[{"name":"init","kind":"init","payable":true,"args":[{"name":"beneficiary","type":"address"},{"name":"arbiter","type":"address"},{"name":"deadline","type":"u64"}],"returns":"unit"},{"name":"release","kind":"call","payable":false,"args":[],"returns":"unit","error":{"defined":"EscrowError"}},{"name":"refund","kind":"call","payable":false,"args":[],"returns":"unit","error":{"defined":"EscrowError"}},{"name":"state","kind":"view","payable":false,"args":[],"returns":{"defined":"State"}}],"events":[{"name":"Settled","topics":[{"name":"to","type":"address"}],"data":[{"name":"amount","type":"u128"}]}],"types":[{"kind":"enum","name":"EscrowError","variants":[{"name":"NotAllowed","fields":"unit"},{"name":"Closed","fields":"unit"},{"name":"TooEarly","fields":{"named":[{"name":"deadline","type":"u64"}]}},{"name":"TransferFailed","fields":"unit"}]},{"kind":"enum","name":"State","variants":[{"name":"Open","fields":"unit"},{"name":"Released","fields":"unit"},{"name":"Refunded","fields":"unit"}]}]}"#,
    ),
];

/// An ABI with every type form: all integer widths, strings, bytes,
/// addresses, fixed arrays (of bytes and of other types, and empty), nested
/// vectors and options, tuples (and the empty one), named, tuple and unit
/// structs, enums with unit, tuple and named variants, a recursive type,
/// and events with padded, exact and hashed topics. Written by hand, with
/// the optional members left out in places.
const KITCHEN: &str = r#"{
  "abi_version": 1,
  "name": "kitchen",
  "version": "1.2.3",
  "methods": [
    {"name": "init", "kind": "init", "payable": true,
     "args": [{"name": "owner", "type": "address"}], "returns": "unit"},
    {"name": "ints", "kind": "call",
     "args": [{"name": "a", "type": "u8"}, {"name": "b", "type": "u16"}, {"name": "c", "type": "u32"},
              {"name": "d", "type": "u64"}, {"name": "e", "type": "u128"}, {"name": "f", "type": "i8"},
              {"name": "g", "type": "i16"}, {"name": "h", "type": "i32"}, {"name": "i", "type": "i64"},
              {"name": "j", "type": "i128"}],
     "returns": {"tuple": ["u64", "i128"]}},
    {"name": "misc", "kind": "call", "payable": false,
     "args": [{"name": "flag", "type": "bool"}, {"name": "text", "type": "string"},
              {"name": "blob", "type": "bytes"}, {"name": "who", "type": "address"},
              {"name": "hash", "type": {"array": ["u8", 4]}}, {"name": "triple", "type": {"array": ["u16", 3]}},
              {"name": "grid", "type": {"vec": {"vec": "u32"}}}, {"name": "maybe", "type": {"option": {"option": "u8"}}},
              {"name": "empty", "type": {"tuple": []}}, {"name": "nothing", "type": "unit"},
              {"name": "zero", "type": {"array": ["u8", 0]}}],
     "returns": {"vec": {"option": "address"}}},
    {"name": "place", "kind": "call", "payable": true,
     "args": [{"name": "order", "type": {"defined": "Order"}}, {"name": "shapes", "type": {"vec": {"defined": "Shape"}}},
              {"name": "pair", "type": {"defined": "Pair"}}, {"name": "marker", "type": {"defined": "Marker"}}],
     "returns": {"defined": "Order"}, "error": {"defined": "KitchenError"}},
    {"name": "tree", "kind": "view", "args": [{"name": "root", "type": {"defined": "Node"}}], "returns": "u32"},
    {"name": "get", "kind": "view", "args": [], "returns": "u64"},
    {"name": "fail", "kind": "call", "args": [], "returns": "unit", "error": "string"},
    {"name": "points", "kind": "view", "args": [], "returns": {"array": [{"defined": "Point"}, 2]}},
    {"name": "chain", "kind": "view", "args": [{"name": "c", "type": {"defined": "Chain"}}], "returns": "unit"}
  ],
  "events": [
    {"name": "Placed",
     "topics": [{"name": "who", "type": "address"}, {"name": "id", "type": "u64"}, {"name": "memo", "type": "string"}],
     "data": [{"name": "order", "type": {"defined": "Order"}}, {"name": "note", "type": {"option": "string"}}]},
    {"name": "Fixed",
     "topics": [{"name": "point", "type": {"defined": "Point"}}, {"name": "key", "type": {"array": ["u8", 32]}},
                {"name": "flag", "type": "bool"}],
     "data": []},
    {"name": "Hashed",
     "topics": [{"name": "wide", "type": {"array": ["u64", 5]}}, {"name": "shape", "type": {"defined": "Shape"}},
                {"name": "maybe", "type": {"option": "u8"}}],
     "data": [{"name": "n", "type": "i128"}]},
    {"name": "Small",
     "topics": [{"name": "neg", "type": "i16"}, {"name": "pair", "type": {"tuple": ["u8", "i8"]}},
                {"name": "marker", "type": {"defined": "Marker"}}]},
    {"name": "Clash", "topics": [{"name": "x", "type": "u8"}], "data": [{"name": "x", "type": "u16"}]},
    {"name": "Bare"}
  ],
  "types": [
    {"kind": "struct", "name": "Order", "fields": {"named": [
      {"name": "side", "type": {"defined": "Side"}}, {"name": "price", "type": "u64"}, {"name": "qty", "type": "u128"},
      {"name": "tags", "type": {"vec": "string"}}, {"name": "expires", "type": {"option": "u64"}}]}},
    {"kind": "enum", "name": "Side", "variants": [{"name": "Buy", "fields": "unit"}, {"name": "Sell", "fields": "unit"}]},
    {"kind": "enum", "name": "Shape", "variants": [
      {"name": "Dot", "fields": "unit"},
      {"name": "Circle", "fields": {"unnamed": ["u32"]}},
      {"name": "Rect", "fields": {"named": [{"name": "w", "type": "u16"}, {"name": "h", "type": "u16"}]}},
      {"name": "Both", "fields": {"unnamed": [{"defined": "Pair"}, {"defined": "Marker"}]}}]},
    {"kind": "struct", "name": "Pair", "fields": {"unnamed": ["u8", "string"]}},
    {"kind": "struct", "name": "Marker", "fields": "unit"},
    {"kind": "struct", "name": "Point", "fields": {"named": [{"name": "x", "type": "i32"}, {"name": "y", "type": "i32"}]}},
    {"kind": "struct", "name": "Node", "fields": {"named": [
      {"name": "value", "type": "u32"}, {"name": "children", "type": {"vec": {"defined": "Node"}}}]}},
    {"kind": "enum", "name": "KitchenError", "variants": [
      {"name": "Rejected", "fields": {"named": [{"name": "reason", "type": "string"}, {"name": "code", "type": "u16"}]}},
      {"name": "Limit", "fields": {"unnamed": ["u128", "u128"]}},
      {"name": "Closed", "fields": "unit"}]},
    {"kind": "enum", "name": "Chain", "variants": [
      {"name": "End", "fields": "unit"}, {"name": "Next", "fields": {"unnamed": [{"defined": "Chain"}]}}]}
  ]
}
"#;

const ADDR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const ADDR2: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

fn hx(bytes: &[u8]) -> Value {
    Value::String(stele_types::hex::encode(bytes))
}

fn kind(e: &AbiError) -> &'static str {
    match e {
        AbiError::InvalidWasm(_) => "invalid_wasm",
        AbiError::NoAbiSection => "no_abi_section",
        AbiError::DuplicateAbiSection => "duplicate_abi_section",
        AbiError::AbiTooLarge { .. } => "abi_too_large",
        AbiError::InvalidJson(_) => "invalid_json",
        AbiError::Invalid(_) => "invalid",
        AbiError::UnknownMethod(_) => "unknown_method",
        AbiError::Value { .. } => "value",
        AbiError::Decode { .. } => "decode",
        AbiError::UnknownEvent(_) => "unknown_event",
    }
}

/// `entry` with the outcome: `ok(value)` merged in, or the refusal.
fn outcome<T>(mut entry: Value, result: Result<T, AbiError>, ok: impl FnOnce(T) -> Value) -> Value {
    let extra = match result {
        Ok(v) => ok(v),
        Err(e) => json!({"kind": kind(&e), "error": e.to_string()}),
    };
    if let (Value::Object(m), Value::Object(x)) = (&mut entry, extra) {
        m.extend(x);
    }
    entry
}

struct Abis(Vec<(String, Abi)>);

impl Abis {
    fn new() -> Abis {
        let mut list: Vec<(String, Abi)> = EXAMPLES
            .iter()
            .map(|(name, json)| (name.to_string(), Abi::from_json(json.as_bytes()).unwrap()))
            .collect();
        list.push((
            "kitchen".into(),
            Abi::from_json(KITCHEN.as_bytes()).unwrap(),
        ));
        Abis(list)
    }

    fn get(&self, name: &str) -> &Abi {
        &self.0.iter().find(|(n, _)| n == name).unwrap().1
    }
}

fn ty(json: &Value) -> TypeRef {
    serde_json::from_value(json.clone()).unwrap()
}

fn abis_section() -> Value {
    let mut out = Vec::new();
    for (name, json) in EXAMPLES.iter().copied().chain([("kitchen", KITCHEN)]) {
        let abi = Abi::from_json(json.as_bytes()).unwrap();
        assert_eq!(Abi::from_json(abi.to_json().as_bytes()).unwrap(), abi);
        out.push(json!({"name": name, "json": json, "canonical": abi.to_json()}));
    }
    Value::Array(out)
}

/// Method arguments: by name, by position, `null`, and refused ones.
fn args_section(abis: &Abis) -> Value {
    let cases: Vec<(&str, &str, Value)> = vec![
        ("counter", "init", json!({"start": 5, "max": "10"})),
        ("counter", "init", json!([5, 10])),
        ("counter", "increment", json!(["18446744073709551615"])),
        ("counter", "increment", json!([18446744073709551615u64])),
        ("counter", "get", Value::Null),
        ("counter", "get", json!([])),
        ("counter", "get", json!({})),
        (
            "counter",
            "upgrade",
            json!({"code": "0x0061736d01000000", "new_max": 7}),
        ),
        ("counter", "upgrade", json!({"code": "0X", "new_max": 0})),
        (
            "token",
            "init",
            json!(["Stele Token", "STL", 18, "1000000000000000000000000"]),
        ),
        (
            "token",
            "transfer",
            json!({"to": ADDR, "amount": "340282366920938463463374607431768211455"}),
        ),
        ("token", "transfer", json!([ADDR.to_lowercase(), 1])),
        (
            "token",
            "transfer",
            json!([ADDR.to_uppercase().replacen("0X", "0x", 1), "0"]),
        ),
        (
            "token",
            "transfer_from",
            json!([ADDR, ADDR2, "12345678901234567890"]),
        ),
        (
            "amm",
            "swap",
            json!({"token_in": ADDR2, "amount_in": "1000", "min_out": 990}),
        ),
        ("multisig", "init", json!([[ADDR, ADDR2], 2])),
        (
            "multisig",
            "init",
            json!({"owners": [], "threshold": 4294967295u64}),
        ),
        (
            "multisig",
            "propose",
            json!([ADDR, "transfer", "0xdeadbeef", "0"]),
        ),
        ("nft", "tokens_of", json!([ADDR, null])),
        ("nft", "tokens_of", json!([ADDR, "42"])),
        ("nft", "tokens_of", json!({"owner": ADDR, "after": 0})),
        ("escrow", "init", json!([ADDR, ADDR2, 1_700_000_000_000u64])),
        (
            "kitchen",
            "ints",
            json!([
                255,
                65535,
                4294967295u64,
                "18446744073709551615",
                "340282366920938463463374607431768211455",
                -128,
                -32768,
                -2147483648i64,
                "-9223372036854775808",
                "-170141183460469231731687303715884105728"
            ]),
        ),
        (
            "kitchen",
            "ints",
            json!({"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "f": 127, "g": 32767, "h": 2147483647,
                   "i": 9223372036854775807i64, "j": "170141183460469231731687303715884105727"}),
        ),
        (
            "kitchen",
            "ints",
            json!([
                "7",
                "65535",
                "4294967295",
                "007",
                "0000000000000000000000000000000000000001",
                "-5",
                "-0",
                "12",
                -9223372036854775808i64,
                -1
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!({"flag": true, "text": "héllo, wörld ✓ 🦀", "blob": "0x00ff10", "who": ADDR,
                   "hash": "0xDEADbeef", "triple": [1, "2", 65535], "grid": [[], [1], [2, 3]],
                   "maybe": 5, "empty": [], "nothing": null, "zero": "0x"}),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "place",
            json!({
                "order": {"side": "Buy", "price": "100", "qty": 5, "tags": ["a", "b"], "expires": null},
                "shapes": ["Dot", {"Dot": null}, {"Circle": [7]}, {"Rect": {"w": 3, "h": 4}},
                           {"Both": [[1, "x"], null]}],
                "pair": [9, "nine"],
                "marker": null
            }),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": {"Sell": null}, "price": 1, "qty": "2", "tags": [], "expires": "3"}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "tree",
            json!([{"value": 1, "children": [{"value": 2, "children": []},
                                            {"value": 3, "children": [{"value": 4, "children": []}]}]}]),
        ),
        // Refused: arity, shape, unknown method and fields.
        ("counter", "init", json!([5])),
        ("counter", "init", json!([5, 10, 15])),
        ("counter", "init", Value::Null),
        ("counter", "init", json!("5")),
        ("counter", "init", json!(true)),
        ("counter", "init", json!({"start": 5})),
        ("counter", "init", json!({"start": 5, "max": 10, "min": 0})),
        (
            "counter",
            "init",
            json!({"start": 5, "max": 10, "zeta": 1, "alpha": 2}),
        ),
        ("counter", "nope", json!([])),
        ("counter", "get", json!([1])),
        ("counter", "get", json!({"x": 1})),
        // Refused: wrong types and out-of-range integers.
        ("counter", "increment", json!([true])),
        ("counter", "increment", json!(["18446744073709551616"])),
        ("counter", "increment", json!([-1])),
        ("counter", "increment", json!(["-1"])),
        ("counter", "increment", json!([1.5])),
        ("counter", "increment", json!([1e20])),
        ("counter", "increment", json!(["0x10"])),
        ("counter", "increment", json!([" 1"])),
        ("counter", "increment", json!(["+1"])),
        ("counter", "increment", json!([""])),
        ("counter", "increment", json!([null])),
        ("counter", "increment", json!([[1]])),
        ("counter", "increment", json!([{"by": 1}])),
        ("token", "init", json!(["a", "b", 256, "1"])),
        ("token", "init", json!(["a", "b", -1, "1"])),
        ("token", "init", json!(["a", "b", "256", "1"])),
        ("token", "init", json!([1, "b", 1, "1"])),
        (
            "token",
            "init",
            json!(["a", "b", 1, "340282366920938463463374607431768211456"]),
        ),
        (
            "token",
            "init",
            json!(["a", "b", 1, "00000000000000000000000000000000000000001"]),
        ),
        ("token", "init", json!(["a", "b", 1, -5])),
        (
            "token",
            "init",
            json!(["a", "b", 1, 18446744073709551615u64]),
        ),
        ("multisig", "init", json!([[ADDR], 4294967296u64])),
        ("multisig", "init", json!([[ADDR], "x"])),
        ("multisig", "init", json!([ADDR, 1])),
        ("multisig", "init", json!([[ADDR, 5], 1])),
        // Refused: addresses and bytes.
        (
            "token",
            "transfer",
            json!(["0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "1"]),
        ),
        ("token", "transfer", json!(["0x12", "1"])),
        (
            "token",
            "transfer",
            json!(["5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "1"]),
        ),
        (
            "token",
            "transfer",
            json!(["0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", "1"]),
        ),
        (
            "token",
            "transfer",
            json!(["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", "1"]),
        ),
        ("token", "transfer", json!([42, "1"])),
        ("token", "transfer", json!([null, "1"])),
        ("counter", "upgrade", json!({"code": "0x123", "new_max": 1})),
        ("counter", "upgrade", json!({"code": "dead", "new_max": 1})),
        ("counter", "upgrade", json!({"code": "0xzz", "new_max": 1})),
        ("counter", "upgrade", json!({"code": [1, 2], "new_max": 1})),
        (
            "counter",
            "upgrade",
            json!({"code": "this is a long string that will be cut short in the error message, past 64 characters", "new_max": 1}),
        ),
        (
            "counter",
            "upgrade",
            json!({"code": "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", "new_max": 1}),
        ),
        (
            "counter",
            "upgrade",
            json!({"code": {"z": 1, "a": [true, null, 1.5, "q\"\n\u{1}"]}, "new_max": 1}),
        ),
        // Refused: kitchen types, with the path of the offending value.
        ("kitchen", "ints", json!([0, 65536, 0, 0, 0, 0, 0, 0, 0, 0])),
        ("kitchen", "ints", json!([0, 0, -1, 0, 0, 0, 0, 0, 0, 0])),
        ("kitchen", "ints", json!([0, 0, 0, 0, 0, 128, 0, 0, 0, 0])),
        ("kitchen", "ints", json!([0, 0, 0, 0, 0, "x", 0, 0, 0, 0])),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, 0, -32769, 0, 0, 0]),
        ),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, 0, 0, 2147483648u64, 0, 0]),
        ),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, 0, 0, 0, "9223372036854775808", 0]),
        ),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, 0, 0, 0, 18446744073709551615u64, 0]),
        ),
        (
            "kitchen",
            "ints",
            json!([
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                "170141183460469231731687303715884105728"
            ]),
        ),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, 0, 0, 0, 0, 18446744073709551615u64]),
        ),
        ("kitchen", "ints", json!([0, 0, 0, 0, 0, 0, 0, 0, 0, "--1"])),
        (
            "kitchen",
            "ints",
            json!([0, 0, 0, 0, 0, "-129", 0, 0, 0, 0]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                1,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x000000",
                [0, 0, 0],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                [0, 0, 0, 0],
                [0, 0, 0],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 65536],
                [],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [[1], [2, "x"]],
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                {},
                null,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                256,
                [],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                null,
                [1],
                null,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                null,
                [],
                0,
                "0x"
            ]),
        ),
        (
            "kitchen",
            "misc",
            json!([
                false,
                "",
                "0x",
                ADDR2,
                "0x00000000",
                [0, 0, 0],
                [],
                null,
                [],
                null,
                "0x00"
            ]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Short", "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null, "extra": 1}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": []}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([[1, 2, 3, 4, 5], [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": {"Buy": 1}, "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": {"Buy": null, "Sell": null}, "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": {}, "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": 0, "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, ["Circle"], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Circle": 7}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Rect": {"w": 1}}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Rect": {"w": 1, "h": 2, "d": 3}}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Rect": [1, 2]}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Both": [[1, 2], null]}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [{"Both": [[1, "x"], 0]}], [0, ""], null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [], {"0": 0, "1": ""}, null]),
        ),
        (
            "kitchen",
            "place",
            json!([{"side": "Buy", "price": 1, "qty": 1, "tags": [], "expires": null}, [], [0, ""], {}]),
        ),
        (
            "kitchen",
            "tree",
            json!([{"value": 1, "children": [{"value": 2, "children": [{"value": -1, "children": []}]}]}]),
        ),
    ];
    let mut out = Vec::new();
    for (name, method, args) in cases {
        let abi = abis.get(name);
        let entry = json!({"abi": name, "method": method, "args": args});
        out.push(outcome(entry, abi.encode_args(method, &args), |bytes| {
            let decoded = abi.decode_args(method, &bytes).unwrap();
            json!({"bytes": hx(&bytes), "decoded": decoded})
        }));
    }
    Value::Array(out)
}

/// The recursive `Node` of the kitchen ABI nested `levels` deep:
/// `{"value": 0, "children": []}` inside `levels` times
/// `{"value": 1, "children": [inner]}`.
fn node(levels: usize) -> Value {
    let mut v = json!({"value": 0, "children": []});
    for _ in 0..levels {
        v = json!({"value": 1, "children": [v]});
    }
    v
}

/// The recursive `Chain` of the kitchen ABI nested `levels` deep: `"End"`
/// inside `levels` times `{"Next": [inner]}`. Each level is one level of
/// value nesting, where a `Node` level is two.
fn chain(levels: usize) -> Value {
    let mut v = json!("End");
    for _ in 0..levels {
        v = json!({ "Next": [v] });
    }
    v
}

/// A recursive shape: its name, the method and argument taking it, how it
/// is built, and the depths tried.
type DeepCase = (
    &'static str,
    &'static str,
    &'static str,
    fn(usize) -> Value,
    [usize; 3],
);

/// Arguments nested around the depth limit, by position and by name
/// (which start one level apart: a `Chain` 64 deep passes by position
/// only); the values are built by [`node`] and [`chain`].
fn deep_args_section(abis: &Abis) -> Value {
    let kitchen = abis.get("kitchen");
    let mut out = Vec::new();
    let cases: [DeepCase; 2] = [
        ("node", "tree", "root", node, [30, 31, 32]),
        ("chain", "chain", "c", chain, [63, 64, 65]),
    ];
    for (shape, method, arg, build, levels) in cases {
        for n in levels {
            for by in ["position", "name"] {
                let mut named = serde_json::Map::new();
                named.insert(arg.to_string(), build(n));
                let args = match by {
                    "position" => json!([build(n)]),
                    _ => Value::Object(named.clone()),
                };
                let entry = json!({"abi": "kitchen", "method": method, "shape": shape, "levels": n, "by": by});
                out.push(outcome(
                    entry,
                    kitchen.encode_args(method, &args),
                    |bytes| {
                        assert_eq!(
                            kitchen.decode_args(method, &bytes),
                            Ok(Value::Object(named.clone()))
                        );
                        json!({ "bytes": hx(&bytes) })
                    },
                ));
            }
        }
    }
    Value::Array(out)
}

/// Single values of every type: encoded, then decoded back.
fn values_section(abis: &Abis) -> Value {
    let cases: Vec<(Value, Value)> = vec![
        (json!("unit"), Value::Null),
        (json!("unit"), json!(0)),
        (json!("bool"), json!(true)),
        (json!("bool"), json!("true")),
        (json!("u8"), json!(255)),
        (json!("u8"), json!("255")),
        (json!("u8"), json!(256)),
        // Floating point numbers, refused with Rust's way of printing them.
        (json!("u8"), json!(0.001)),
        (json!("u8"), json!(1e-7)),
        (json!("u8"), json!(-2.5)),
        (json!("u8"), json!(123.456)),
        (json!("u8"), json!(5e-324)),
        (json!("u8"), json!(1e300)),
        (json!("u8"), json!(1234567.125)),
        (json!("u64"), json!(2e19)),
        (json!("u16"), json!(65535)),
        (json!("u32"), json!(4294967295u64)),
        (json!("u32"), json!(4294967296u64)),
        (json!("u64"), json!(0)),
        (json!("u64"), json!("18446744073709551615")),
        (json!("u64"), json!(-1)),
        (
            json!("u128"),
            json!("340282366920938463463374607431768211455"),
        ),
        (json!("u128"), json!(18446744073709551615u64)),
        (json!("u128"), json!(-1)),
        (json!("i8"), json!(-128)),
        (json!("i8"), json!("-128")),
        (json!("i8"), json!(-129)),
        (json!("i8"), json!(9223372036854775808u64)),
        (json!("i16"), json!(-32768)),
        (json!("i32"), json!(-2147483648i64)),
        (json!("i64"), json!(-9223372036854775808i64)),
        (json!("i64"), json!("9223372036854775807")),
        (json!("i64"), json!(9223372036854775808u64)),
        (
            json!("i128"),
            json!("-170141183460469231731687303715884105728"),
        ),
        (json!("i128"), json!(-1)),
        (json!("i128"), json!("-")),
        (
            json!("i128"),
            json!("-00000000000000000000000000000000000000001"),
        ),
        (
            json!("i128"),
            json!("-0000000000000000000000000000000000000001"),
        ),
        (json!("string"), json!("")),
        (json!("string"), json!("a\u{0}b\"c\\d\u{7f}é")),
        (json!("string"), json!(["a"])),
        (json!("bytes"), json!("0xABCDEF")),
        (json!("bytes"), json!("0x")),
        (json!("bytes"), json!("0xabc")),
        (json!("address"), json!(ADDR)),
        (
            json!("address"),
            json!("0x0000000000000000000000000000000000000000"),
        ),
        (json!({"vec": "u8"}), json!([1, 2, 3])),
        (json!({"vec": "u8"}), json!("0x010203")),
        (json!({"array": ["u8", 3]}), json!("0x010203")),
        (json!({"array": ["u8", 3]}), json!([1, 2, 3])),
        (json!({"array": ["u32", 2]}), json!([1, 2])),
        (json!({"array": ["u32", 0]}), json!([])),
        (json!({"array": ["unit", 3]}), json!([null, null, null])),
        (json!({"option": "u8"}), Value::Null),
        (json!({"option": "u8"}), json!(7)),
        (json!({"option": {"option": "u8"}}), Value::Null),
        (json!({"option": "unit"}), Value::Null),
        (json!({"option": {"vec": "bool"}}), json!([true, false])),
        (json!({"tuple": []}), json!([])),
        (
            json!({"tuple": ["u8", "string", "bool"]}),
            json!([1, "x", false]),
        ),
        (json!({"tuple": ["u8", "string"]}), json!([1])),
        (json!({"tuple": ["u8"]}), json!(1)),
        (json!({"defined": "Point"}), json!({"x": -1, "y": 2})),
        (json!({"defined": "Point"}), json!({"y": 2, "x": -1})),
        (json!({"defined": "Point"}), json!([-1, 2])),
        (json!({"defined": "Pair"}), json!([1, "one"])),
        (json!({"defined": "Pair"}), json!({"0": 1, "1": "one"})),
        (json!({"defined": "Marker"}), Value::Null),
        (json!({"defined": "Marker"}), json!({})),
        (json!({"defined": "Shape"}), json!("Dot")),
        (
            json!({"defined": "Shape"}),
            json!({"Rect": {"h": 2, "w": 1}}),
        ),
        (
            json!({"defined": "Shape"}),
            json!({"Circle": [4294967295u64]}),
        ),
        (json!({"defined": "Shape"}), json!("Circle")),
        (json!({"defined": "Shape"}), json!({"Circle": null})),
        (json!({"defined": "Shape"}), json!("Square")),
        (json!({"defined": "Shape"}), json!({"Rect": {}})),
        (json!({"defined": "Shape"}), json!(["Dot"])),
        (json!({"defined": "Missing"}), json!(1)),
        (json!({"vec": {"defined": "Missing"}}), json!([])),
        (json!({"vec": {"defined": "Missing"}}), json!([1])),
        (
            json!({"defined": "KitchenError"}),
            json!({"Limit": ["1", "2"]}),
        ),
        (
            json!({"defined": "KitchenError"}),
            json!({"Rejected": {"reason": "no", "code": 404}}),
        ),
    ];
    let kitchen = abis.get("kitchen");
    let mut out = Vec::new();
    for (t, value) in cases {
        let r = ty(&t);
        let entry = json!({"abi": "kitchen", "type": t, "value": value});
        out.push(outcome(entry, kitchen.encode_value(&r, &value), |bytes| {
            json!({"bytes": hx(&bytes), "decoded": kitchen.decode_value(&r, &bytes).unwrap()})
        }));
    }
    Value::Array(out)
}

/// Bytes decoded as one value, and refused ones.
fn decode_section(abis: &Abis) -> Value {
    let long = {
        let mut b = 3u32.to_le_bytes().to_vec();
        b.extend_from_slice(&[0xf0, 0x9f, 0xa6, 0x80, 0xff]);
        b
    };
    let cases: Vec<(Value, Vec<u8>)> = vec![
        (json!("bool"), vec![0]),
        (json!("bool"), vec![2]),
        (json!("bool"), vec![]),
        (json!("u8"), vec![1, 2]),
        (json!("u16"), vec![0xff]),
        (json!("u64"), vec![0xff; 8]),
        (json!("i64"), vec![0, 0, 0, 0, 0, 0, 0, 0x80]),
        (json!("u128"), vec![0xff; 16]),
        (json!("i128"), vec![0xff; 16]),
        (json!("i8"), vec![0x80]),
        (json!("i16"), vec![0xff, 0x7f]),
        (json!("i32"), vec![0, 0, 0, 0x80]),
        (json!("string"), vec![2, 0, 0, 0, b'h', b'i']),
        (json!("string"), vec![2, 0, 0, 0, 0xc3, 0x28]),
        (json!("string"), vec![3, 0, 0, 0, 0xef, 0xbb, 0xbf]),
        (json!("string"), vec![5, 0, 0, 0, b'a']),
        (json!("string"), vec![1, 0, 0]),
        (json!("bytes"), long.clone()),
        (json!("bytes"), vec![0xff, 0xff, 0xff, 0xff]),
        (json!("address"), vec![0x11; 20]),
        (json!("address"), vec![0x11; 19]),
        (json!({"vec": "unit"}), vec![0xff, 0xff, 0xff, 0xff]),
        (json!({"vec": "u16"}), vec![2, 0, 0, 0, 1, 0, 2]),
        (
            json!({"vec": {"vec": "u8"}}),
            vec![1, 0, 0, 0, 2, 0, 0, 0, 7, 8],
        ),
        (json!({"array": ["u8", 4]}), vec![1, 2, 3, 4]),
        (json!({"array": ["u8", 4]}), vec![1, 2, 3]),
        (json!({"array": ["bool", 2]}), vec![1, 3]),
        (json!({"array": ["unit", 5]}), vec![]),
        (json!({"option": "u8"}), vec![0]),
        (json!({"option": "u8"}), vec![1, 9]),
        (json!({"option": "u8"}), vec![2, 9]),
        (json!({"option": {"option": "u8"}}), vec![1, 0]),
        (json!({"option": {"option": "u8"}}), vec![1, 1, 3]),
        (json!({"tuple": ["u8", "bool"]}), vec![1, 5]),
        (json!({"defined": "Shape"}), vec![0]),
        (json!({"defined": "Shape"}), vec![1, 4, 0, 0, 0]),
        (json!({"defined": "Shape"}), vec![2, 1, 0, 2, 0]),
        (json!({"defined": "Shape"}), vec![3, 5, 1, 0, 0, 0, b'z']),
        (json!({"defined": "Shape"}), vec![4]),
        (json!({"defined": "Shape"}), vec![2, 1, 0]),
        (json!({"defined": "Marker"}), vec![]),
        (json!({"defined": "Pair"}), vec![1, 0, 0, 0, 0]),
        (
            json!({"defined": "Node"}),
            vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        ),
        (json!({"defined": "Missing"}), vec![]),
    ];
    let kitchen = abis.get("kitchen");
    let mut out = Vec::new();
    for (t, bytes) in cases {
        let r = ty(&t);
        let entry = json!({"abi": "kitchen", "type": t, "bytes": hx(&bytes)});
        out.push(outcome(
            entry,
            kitchen.decode_value(&r, &bytes),
            |v| json!({"value": v}),
        ));
    }
    // A value nested past the depth limit: 65 options.
    let mut deep = json!("u8");
    for _ in 0..65 {
        deep = json!({ "option": deep });
    }
    let mut bytes = vec![1u8; 65];
    bytes.push(9);
    let entry = json!({"abi": "kitchen", "type": deep, "bytes": hx(&bytes)});
    out.push(outcome(
        entry,
        kitchen.decode_value(&ty(&deep), &bytes),
        |v| json!({"value": v}),
    ));
    Value::Array(out)
}

/// Return values of methods, and refused return bytes.
fn returns_section(abis: &Abis) -> Value {
    let kitchen = abis.get("kitchen");
    let order = kitchen
        .encode_value(
            &ty(&json!({"defined": "Order"})),
            &json!({"side": "Sell", "price": "18446744073709551615", "qty": "1", "tags": ["x"], "expires": 9}),
        )
        .unwrap();
    let mut addrs = 3u32.to_le_bytes().to_vec();
    addrs.push(1);
    addrs.extend_from_slice(&[0xab; 20]);
    addrs.push(0);
    addrs.push(1);
    addrs.extend_from_slice(&[0x00; 20]);
    let mut ints = u64::MAX.to_le_bytes().to_vec();
    ints.extend_from_slice(&i128::MIN.to_le_bytes());
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("counter", "get", 8u64.to_le_bytes().to_vec()),
        ("counter", "get", vec![8]),
        ("counter", "get", vec![0; 9]),
        ("counter", "init", vec![]),
        ("counter", "init", vec![0]),
        ("counter", "owner", vec![0]),
        ("counter", "owner", [vec![1], vec![0x5a; 20]].concat()),
        ("counter", "tip", u128::MAX.to_le_bytes().to_vec()),
        ("counter", "nope", vec![]),
        (
            "token",
            "name",
            [vec![5, 0, 0, 0], b"Stele".to_vec()].concat(),
        ),
        ("token", "decimals", vec![18]),
        (
            "amm",
            "reserves",
            [1u128.to_le_bytes(), 2u128.to_le_bytes()].concat(),
        ),
        ("multisig", "proposal", vec![0]),
        (
            "multisig",
            "proposal",
            [
                vec![1],
                vec![0x22; 20],
                vec![3, 0, 0, 0],
                b"run".to_vec(),
                vec![2, 0, 0, 0, 0xca, 0xfe],
                5u128.to_le_bytes().to_vec(),
                vec![2, 0, 0, 0, 1],
            ]
            .concat(),
        ),
        ("multisig", "execute", vec![0, 0, 0, 0]),
        (
            "nft",
            "tokens_of",
            [
                vec![2, 0, 0, 0],
                1u64.to_le_bytes().to_vec(),
                2u64.to_le_bytes().to_vec(),
            ]
            .concat(),
        ),
        ("escrow", "state", vec![2]),
        ("escrow", "state", vec![3]),
        ("kitchen", "ints", ints),
        ("kitchen", "misc", addrs),
        ("kitchen", "place", order),
        (
            "kitchen",
            "points",
            [
                (-1i32).to_le_bytes(),
                2i32.to_le_bytes(),
                3i32.to_le_bytes(),
                (-4i32).to_le_bytes(),
            ]
            .concat(),
        ),
        ("kitchen", "points", vec![0; 15]),
    ];
    let mut out = Vec::new();
    for (name, method, bytes) in cases {
        let abi = abis.get(name);
        let entry = json!({"abi": name, "method": method, "bytes": hx(&bytes)});
        out.push(outcome(
            entry,
            abi.decode_return(method, &bytes),
            |v| json!({"value": v}),
        ));
    }
    Value::Array(out)
}

/// Revert payloads decoded by the tag convention.
fn reverts_section(abis: &Abis) -> Value {
    let tagged = |tag: u8, body: &[u8]| [vec![tag], body.to_vec()].concat();
    let kitchen = abis.get("kitchen");
    let err = |v: Value| {
        kitchen
            .encode_value(&ty(&json!({"defined": "KitchenError"})), &v)
            .unwrap()
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "counter",
            "increment",
            tagged(REVERT_MESSAGE, b"start is above max"),
        ),
        (
            "counter",
            "increment",
            tagged(REVERT_MESSAGE, "ünïcode ✓".as_bytes()),
        ),
        ("counter", "increment", tagged(REVERT_MESSAGE, b"")),
        (
            "counter",
            "increment",
            tagged(REVERT_MESSAGE, &[0xff, 0xfe]),
        ),
        (
            "counter",
            "increment",
            tagged(REVERT_ERROR, &[0, 10, 0, 0, 0, 0, 0, 0, 0]),
        ),
        ("counter", "increment", tagged(REVERT_ERROR, &[1])),
        ("counter", "increment", tagged(REVERT_ERROR, &[2])),
        ("counter", "increment", tagged(REVERT_ERROR, &[1, 0])),
        ("counter", "increment", tagged(REVERT_ERROR, &[0, 10])),
        ("counter", "increment", vec![]),
        ("counter", "increment", vec![7, 1, 2]),
        ("counter", "get", tagged(REVERT_ERROR, &[1])),
        (
            "counter",
            "get",
            tagged(REVERT_MESSAGE, b"method is not payable"),
        ),
        ("counter", "nope", vec![0]),
        (
            "token",
            "transfer",
            tagged(
                REVERT_ERROR,
                &[
                    0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0,
                ],
            ),
        ),
        ("amm", "swap", tagged(REVERT_ERROR, &[4, 1, 2])),
        ("amm", "swap", tagged(REVERT_ERROR, &[4, 0])),
        (
            "kitchen",
            "place",
            tagged(
                REVERT_ERROR,
                &err(json!({"Rejected": {"reason": "sold out", "code": 409}})),
            ),
        ),
        (
            "kitchen",
            "place",
            tagged(
                REVERT_ERROR,
                &err(json!({"Limit": ["1", "340282366920938463463374607431768211455"]})),
            ),
        ),
        (
            "kitchen",
            "place",
            tagged(REVERT_ERROR, &err(json!("Closed"))),
        ),
        (
            "kitchen",
            "fail",
            tagged(REVERT_ERROR, &[2, 0, 0, 0, b'n', b'o']),
        ),
        ("kitchen", "fail", tagged(REVERT_ERROR, &[2, 0, 0, 0, b'n'])),
    ];
    let mut out = Vec::new();
    for (name, method, payload) in cases {
        let abi = abis.get(name);
        let entry = json!({"abi": name, "method": method, "payload": hx(&payload)});
        out.push(outcome(
            entry,
            abi.decode_revert(method, &payload),
            |r| json!({"revert": serde_json::to_value(r).unwrap()}),
        ));
    }
    Value::Array(out)
}

/// The topic of a `#[topic]` field of type `t` holding `value`: its Borsh
/// encoding zero-padded to 32 bytes when the type is fixed-size and at
/// most 32 bytes, else the encoding's Keccak-256.
fn topic_of(abi: &Abi, t: &TypeRef, value: &Value) -> [u8; 32] {
    let enc = abi.encode_value(t, value).unwrap();
    match abi.fixed_size(t, 0) {
        Some(n) if n <= 32 => {
            let mut out = [0u8; 32];
            out[..enc.len()].copy_from_slice(&enc);
            out
        }
        _ => stele_types::keccak256(&enc).0,
    }
}

/// Event topics computed from typed values.
fn topics_section(abis: &Abis) -> Value {
    let kitchen = abis.get("kitchen");
    let cases: Vec<(Value, Value)> = vec![
        (json!("address"), json!(ADDR)),
        (json!("u64"), json!("1")),
        (
            json!("u128"),
            json!("340282366920938463463374607431768211455"),
        ),
        (json!("i16"), json!(-2)),
        (json!("bool"), json!(true)),
        (json!("string"), json!("hello")),
        (json!("bytes"), json!("0x")),
        (
            json!({"array": ["u8", 32]}),
            json!(format!("0x{}", "ab".repeat(32))),
        ),
        (
            json!({"array": ["u8", 33]}),
            json!(format!("0x{}", "ab".repeat(33))),
        ),
        (json!({"array": ["u64", 4]}), json!([1, 2, 3, 4])),
        (json!({"array": ["u64", 5]}), json!([1, 2, 3, 4, 5])),
        (json!({"tuple": ["u8", "i8"]}), json!([1, -1])),
        (json!({"defined": "Point"}), json!({"x": 1, "y": -1})),
        (json!({"defined": "Marker"}), Value::Null),
        (json!({"defined": "Shape"}), json!("Dot")),
        (json!({"defined": "Pair"}), json!([1, "a"])),
        (json!({"option": "u8"}), json!(1)),
        (json!("unit"), Value::Null),
    ];
    let mut out = Vec::new();
    for (t, value) in cases {
        let r = ty(&t);
        out.push(json!({
            "abi": "kitchen",
            "type": t,
            "value": value,
            "fixed_size": kitchen.fixed_size(&r, 0),
            "topic": hx(&topic_of(kitchen, &r, &value)),
        }));
    }
    Value::Array(out)
}

fn event_names() -> Value {
    let names = [
        "Transfer", "Approval", "Changed", "Swap", "Placed", "", "ünï",
    ];
    Value::Array(
        names
            .iter()
            .map(|n| json!({"name": n, "topic": hx(&event_topic(n))}))
            .collect(),
    )
}

/// Events decoded from their topics and data, and refused ones.
fn events_section(abis: &Abis) -> Value {
    // (abi, event, topic values, data values): the topics and data are
    // built from the values with the event's field types.
    type Emit<'a> = (&'a str, &'a str, Vec<Value>, Vec<Value>);
    let emits: Vec<Emit> = vec![
        (
            "token",
            "Transfer",
            vec![json!(ADDR), json!(ADDR2)],
            vec![json!("1000")],
        ),
        ("counter", "Changed", vec![json!(ADDR)], vec![json!("8")]),
        (
            "nft",
            "Transfer",
            vec![json!(ADDR), json!(ADDR2), json!("18446744073709551615")],
            vec![],
        ),
        (
            "amm",
            "Swap",
            vec![json!(ADDR), json!(ADDR2)],
            vec![json!("5"), json!("4")],
        ),
        (
            "kitchen",
            "Placed",
            vec![json!(ADDR), json!(7), json!("memo")],
            vec![
                json!({"side": "Buy", "price": 1, "qty": 2, "tags": [], "expires": null}),
                json!("note"),
            ],
        ),
        (
            "kitchen",
            "Fixed",
            vec![
                json!({"x": -5, "y": 6}),
                json!(format!("0x{}", "cd".repeat(32))),
                json!(false),
            ],
            vec![],
        ),
        (
            "kitchen",
            "Hashed",
            vec![json!([1, 2, 3, 4, 5]), json!({"Circle": [3]}), json!(null)],
            vec![json!("-1")],
        ),
        (
            "kitchen",
            "Small",
            vec![json!(-300), json!([255, -128]), Value::Null],
            vec![],
        ),
        ("kitchen", "Clash", vec![json!(1)], vec![json!(2)]),
        ("kitchen", "Bare", vec![], vec![]),
    ];
    let mut out = Vec::new();
    let mut push = |name: &str, topics: Vec<[u8; 32]>, data: Vec<u8>| {
        let abi = abis.get(name);
        let entry = json!({
            "abi": name,
            "topics": topics.iter().map(|t| hx(t)).collect::<Vec<_>>(),
            "data": hx(&data),
        });
        out.push(outcome(
            entry,
            abi.decode_event(&topics, &data),
            |ev| json!({"decoded": serde_json::to_value(ev).unwrap()}),
        ));
    };
    let build = |name: &str, event: &str, tv: &[Value], dv: &[Value]| {
        let abi = abis.get(name);
        let e = abi.events.iter().find(|e| e.name == event).unwrap();
        let mut topics = vec![event_topic(event)];
        for (f, v) in e.topics.iter().zip(tv) {
            topics.push(topic_of(abi, &f.ty, v));
        }
        let mut data = Vec::new();
        for (f, v) in e.data.iter().zip(dv) {
            data.extend(abi.encode_value(&f.ty, v).unwrap());
        }
        (topics, data)
    };
    for (name, event, tv, dv) in &emits {
        let (topics, data) = build(name, event, tv, dv);
        push(name, topics, data);
    }
    // Refused: no topics, an unknown first topic, a topic too many or too
    // few, non-zero padding, bad padded values, short or long data.
    let (t, d) = build("token", "Transfer", &emits[0].2, &emits[0].3);
    push("token", vec![], d.clone());
    push("token", vec![[0x11; 32]], d.clone());
    push("token", vec![t[0], t[1]], d.clone());
    push("token", vec![t[0], t[1], t[2], t[2]], d.clone());
    let mut bad = t.clone();
    bad[2][31] = 1;
    push("token", bad, d.clone());
    push("token", t.clone(), d[..15].to_vec());
    push("token", t.clone(), [d.clone(), vec![0]].concat());
    push("counter", t.clone(), d.clone());
    let (t, d) = build("kitchen", "Fixed", &emits[5].2, &emits[5].3);
    let mut bad = t.clone();
    bad[3][0] = 2;
    push("kitchen", bad, d.clone());
    let (t, d) = build("kitchen", "Small", &emits[7].2, &emits[7].3);
    let mut bad = t.clone();
    bad[3][0] = 1;
    push("kitchen", bad, d);
    let (t, _) = build("kitchen", "Placed", &emits[4].2, &emits[4].3);
    push("kitchen", t, vec![1, 2, 3]);
    Value::Array(out)
}

/// ABIs that must be refused, and some that are accepted though odd.
fn invalid_abis_section() -> Value {
    let base = |extra: &str| {
        format!(r#"{{"abi_version":1,"name":"x","version":"0","methods":[{extra}]}}"#)
    };
    let m = |name: &str, kind: &str, args: &str, returns: &str| {
        format!(r#"{{"name":"{name}","kind":"{kind}","args":[{args}],"returns":{returns}}}"#)
    };
    let with_types = |methods: &str, types: &str| {
        format!(
            r#"{{"abi_version":1,"name":"x","version":"0","methods":[{methods}],"types":[{types}]}}"#
        )
    };
    let with_events = |events: &str| {
        format!(r#"{{"abi_version":1,"name":"x","version":"0","methods":[],"events":[{events}]}}"#)
    };
    let cases: Vec<String> = vec![
        // Accepted.
        r#"{"abi_version":1,"name":"","version":"","methods":[]}"#.into(),
        r#"{"methods":[],"version":"v","name":"n","abi_version":1,"types":[],"events":[]}"#.into(),
        base(&m("get", "view", "", r#""u64""#)),
        base(&m(
            "get",
            "view",
            r#"{"name":"a","type":{"u64":null}}"#,
            r#""unit""#,
        )),
        base(r#"{"name":"f","kind":"call","args":[],"returns":"unit","error":null}"#),
        base(r#"{"name":"f","kind":"call","payable":true,"args":[],"returns":"unit"}"#),
        r#"["abi_version"]"#.into(),
        r#"[1,"n","v",[]]"#.into(),
        r#"[1,"n","v",[["get","view",false,[["a","u8"]],"u64",null]],[["E",[],[]]],[]]"#.into(),
        // Syntax errors.
        r#"{"abi_version": 1"#.into(),
        "".into(),
        "{\"abi_version\":1,}".into(),
        "{\"abi_version\":1,\"name\":\"x\",\"version\":\"0\",\"methods\":[]} x".into(),
        "\u{feff}{\"abi_version\":1,\"name\":\"x\",\"version\":\"0\",\"methods\":[]}".into(),
        "{'abi_version':1}".into(),
        "{\"abi_version\":01}".into(),
        "{\"name\":\"a\u{1}\"}".into(),
        "{\"name\":\"\\x\"}".into(),
        "{\"abi_version\":1,\"name\":\"x\",\"version\":\"0\",\"methods\":[],}".into(),
        "{\"abi_version\":1,\"name\":\"x\",\"version\":\"0\",\"methods\":[1,]}".into(),
        // The document's shape.
        "null".into(),
        "5".into(),
        "\"abi\"".into(),
        "{}".into(),
        r#"{"abi_version":1}"#.into(),
        r#"{"abi_version":1,"name":"x","version":"0"}"#.into(),
        r#"{"abi_version":1,"name":"x","version":"0","methods":[],"extra":true}"#.into(),
        r#"{"abi_version":1,"name":"x","name":"y","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":"1","name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":1.0,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":-1,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":4294967296,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":18446744073709551616,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":null,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":1,"name":5,"version":"0","methods":[]}"#.into(),
        r#"{"abi_version":1,"name":"x","version":"0","methods":{}}"#.into(),
        r#"{"abi_version":1,"name":"x","version":"0","methods":null}"#.into(),
        r#"{"abi_version":1,"name":"x","version":"0","methods":[],"events":null}"#.into(),
        r#"{"abi_version":2,"name":"x","version":"0","methods":[]}"#.into(),
        r#"{"abi_version":0,"name":"x","version":"0","methods":[]}"#.into(),
        r#"[]"#.into(),
        r#"[1,"n","v",[],[],[],7]"#.into(),
        // Methods.
        base("1"),
        base(r#"{"name":"f"}"#),
        base(r#"{"name":"f","kind":"call","args":[]}"#),
        base(r#"{"name":"f","kind":"pure","args":[],"returns":"unit"}"#),
        base(r#"{"name":"f","kind":5,"args":[],"returns":"unit"}"#),
        base(r#"{"name":"f","kind":"call","args":[],"returns":"unit","payable":"yes"}"#),
        base(r#"{"name":"f","kind":"call","args":[],"returns":"unit","view":true}"#),
        base(r#"{"name":"f","kind":{"call":null},"args":[],"returns":"unit"}"#),
        base(&m("init", "call", "", r#""unit""#)),
        base(&m("setup", "init", "", r#""unit""#)),
        base(&format!(
            "{},{}",
            m("f", "call", "", r#""unit""#),
            m("f", "view", "", r#""u8""#)
        )),
        base(&m(
            "f",
            "call",
            r#"{"name":"a","type":"u8"},{"name":"a","type":"u16"}"#,
            r#""unit""#,
        )),
        base(&m("f", "call", r#"{"name":"a"}"#, r#""unit""#)),
        base(&m(
            "f",
            "call",
            r#"{"name":"a","type":"u8","doc":"x"}"#,
            r#""unit""#,
        )),
        // Type references.
        base(&m("f", "call", "", r#""u256""#)),
        base(&m("f", "call", "", r#""Vec""#)),
        base(&m("f", "call", "", r#""vec""#)),
        base(&m("f", "call", "", r#""array""#)),
        base(&m("f", "call", "", r#"{"vec":"u8","option":"u8"}"#)),
        base(&m("f", "call", "", "{}")),
        base(&m("f", "call", "", "5")),
        base(&m("f", "call", "", "null")),
        base(&m("f", "call", "", "[\"u8\"]")),
        base(&m("f", "call", "", r#"{"u8":5}"#)),
        base(&m("f", "call", "", r#"{"array":["u8"]}"#)),
        base(&m("f", "call", "", r#"{"array":["u8",4,5]}"#)),
        base(&m("f", "call", "", r#"{"array":["u8",-1]}"#)),
        base(&m("f", "call", "", r#"{"array":{"t":"u8"}}"#)),
        base(&m("f", "call", "", r#"{"tuple":"u8"}"#)),
        base(&m("f", "call", "", r#"{"defined":5}"#)),
        base(&m("f", "call", "", r#"{"defined":"Missing"}"#)),
        base(&m(
            "f",
            "call",
            r#"{"name":"a","type":{"vec":{"defined":"Missing"}}}"#,
            r#""unit""#,
        )),
        base(r#"{"name":"f","kind":"call","args":[],"returns":"unit","error":{"defined":"E"}}"#),
        // Type definitions.
        with_types("", r#"{"kind":"struct","name":"S","fields":"unit"}"#),
        with_types("", r#"{"kind":"struct","name":"S","fields":{"named":[]}}"#),
        with_types("", r#"{"name":"S","fields":"unit","kind":"struct"}"#),
        with_types("", r#"{"kind":"struct","name":"S"}"#),
        with_types("", r#"{"name":"S","fields":"unit"}"#),
        with_types("", r#"{"kind":"union","name":"S","fields":"unit"}"#),
        with_types("", r#"{"kind":5,"name":"S","fields":"unit"}"#),
        with_types(
            "",
            r#"{"kind":"struct","kind":"enum","name":"S","fields":"unit"}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":"unit","extra":1}"#,
        ),
        with_types("", r#"{"kind":"struct","name":"S","variants":[]}"#),
        with_types("", r#"{"kind":"struct","name":5,"fields":"unit"}"#),
        with_types("", r#"{"kind":"struct","name":"S","fields":"named"}"#),
        with_types("", r#"{"kind":"struct","name":"S","fields":{"tuple":[]}}"#),
        with_types("", r#"{"kind":"struct","name":"S","fields":5}"#),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"named":[],"unnamed":[]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":["u999"]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[{"vec":"u8","x":1}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[{"array":["u8",1,2]}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[{"array":["u8"]}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[5]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":["vec"]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[{"u8":null}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"unnamed":[{"u8":1}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"named":[{"name":"a","type":"u8"},{"name":"a","type":"u8"}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"named":[{"name":"a"}]}}"#,
        ),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":{"named":[{"name":"a","type":{"defined":"T"}}]}}"#,
        ),
        with_types("", r#"{"kind":"enum","name":"E","variants":[]}"#),
        with_types(
            "",
            r#"{"kind":"enum","name":"E","variants":[{"name":"A","fields":"unit"},{"name":"A","fields":"unit"}]}"#,
        ),
        with_types(
            "",
            r#"{"kind":"enum","name":"E","variants":[{"name":"A"}]}"#,
        ),
        with_types(
            "",
            r#"{"kind":"enum","name":"E","variants":[{"name":"A","fields":"unit","x":0}]}"#,
        ),
        with_types(
            "",
            r#"{"kind":"enum","name":"E","variants":[{"name":"A","fields":{"unnamed":[{"defined":"T"}]}}]}"#,
        ),
        with_types("", r#"{"kind":"enum","name":"E","fields":"unit"}"#),
        with_types(
            "",
            r#"{"kind":"struct","name":"S","fields":"unit"},{"kind":"enum","name":"S","variants":[]}"#,
        ),
        with_types("", r#"["struct","S","unit"]"#),
        with_types("", r#""S""#),
        // Events.
        with_events(r#"{"name":"E"}"#),
        with_events(r#"{"name":"E","topics":null}"#),
        with_events(r#"{"name":"E"},{"name":"E"}"#),
        with_events(
            r#"{"name":"E","topics":[{"name":"a","type":"u8"},{"name":"b","type":"u8"},{"name":"c","type":"u8"},{"name":"d","type":"u8"}]}"#,
        ),
        with_events(
            r#"{"name":"E","topics":[{"name":"a","type":"u8"}],"data":[{"name":"a","type":"u8"}]}"#,
        ),
        with_events(r#"{"name":"E","data":[{"name":"a","type":"u8"},{"name":"a","type":"u8"}]}"#),
        with_events(r#"{"name":"E","topics":[{"name":"a","type":{"defined":"X"}}]}"#),
        with_events(r#"{"name":"E","indexed":[]}"#),
    ];
    let mut out = Vec::new();
    for json in cases {
        let entry = json!({"json": json});
        out.push(outcome(
            entry,
            Abi::from_json(json.as_bytes()),
            |abi| json!({"canonical": abi.to_json()}),
        ));
    }
    // Not UTF-8.
    let bytes = b"{\"abi_version\":1,\"name\":\"\xff\",\"version\":\"0\",\"methods\":[]}";
    out.push(outcome(
        json!({"json_hex": hx(bytes)}),
        Abi::from_json(bytes),
        |abi| json!({"canonical": abi.to_json()}),
    ));
    Value::Array(out)
}

/// The limits, at and just past each: the documents are built by the rule
/// `limit_document` states (the TypeScript test builds the same).
fn limit_document(what: &str, n: usize) -> String {
    let list = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(",");
    let doc = |methods: String, events: String, types: String| {
        format!(
            r#"{{"abi_version":1,"name":"x","version":"0","methods":[{methods}],"events":[{events}],"types":[{types}]}}"#
        )
    };
    match what {
        "methods" => doc(
            list(&|i| format!(r#"{{"name":"m{i}","kind":"call","args":[],"returns":"unit"}}"#)),
            String::new(),
            String::new(),
        ),
        "events" => doc(
            String::new(),
            list(&|i| format!(r#"{{"name":"e{i}"}}"#)),
            String::new(),
        ),
        "types" => doc(
            String::new(),
            String::new(),
            list(&|i| format!(r#"{{"kind":"struct","name":"t{i}","fields":"unit"}}"#)),
        ),
        "args" => doc(
            format!(
                r#"{{"name":"m","kind":"call","args":[{}],"returns":"unit"}}"#,
                list(&|i| format!(r#"{{"name":"a{i}","type":"u8"}}"#))
            ),
            String::new(),
            String::new(),
        ),
        "variants" => doc(
            String::new(),
            String::new(),
            format!(
                r#"{{"kind":"enum","name":"E","variants":[{}]}}"#,
                list(&|i| format!(r#"{{"name":"v{i}","fields":"unit"}}"#))
            ),
        ),
        "unnamed" => doc(
            String::new(),
            String::new(),
            format!(
                r#"{{"kind":"struct","name":"S","fields":{{"unnamed":[{}]}}}}"#,
                list(&|_| r#""u8""#.to_string())
            ),
        ),
        "tuple" => doc(
            format!(
                r#"{{"name":"m","kind":"view","args":[],"returns":{{"tuple":[{}]}}}}"#,
                list(&|_| r#""u8""#.to_string())
            ),
            String::new(),
            String::new(),
        ),
        "topics" => doc(
            String::new(),
            format!(
                r#"{{"name":"E","topics":[{}]}}"#,
                list(&|i| format!(r#"{{"name":"t{i}","type":"u8"}}"#))
            ),
            String::new(),
        ),
        "depth" => {
            let mut t = r#""u8""#.to_string();
            for _ in 0..n {
                t = format!(r#"{{"vec":{t}}}"#);
            }
            doc(
                format!(r#"{{"name":"m","kind":"view","args":[],"returns":{t}}}"#),
                String::new(),
                String::new(),
            )
        }
        _ => unreachable!("{what}"),
    }
}

fn limits_section() -> Value {
    let mut out = Vec::new();
    for (what, max) in [
        ("methods", 1024),
        ("events", 1024),
        ("types", 1024),
        ("args", 256),
        ("variants", 256),
        ("unnamed", 256),
        ("tuple", 256),
        ("topics", 3),
        ("depth", 32),
    ] {
        for n in [max, max + 1] {
            let json = limit_document(what, n);
            let entry = json!({"what": what, "count": n, "bytes": json.len()});
            out.push(outcome(
                entry,
                Abi::from_json(json.as_bytes()),
                |_| json!({"ok": true}),
            ));
        }
    }
    Value::Array(out)
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

/// Finding the ABI section in a module.
fn wasm_section() -> Value {
    let counter = EXAMPLES[0].1.as_bytes();
    let mut with_code = wasm_encoder::Module::new();
    let mut types = wasm_encoder::TypeSection::new();
    types.ty().function([], []);
    with_code.section(&types);
    let mut funcs = wasm_encoder::FunctionSection::new();
    funcs.function(0);
    with_code.section(&funcs);
    let mut code = wasm_encoder::CodeSection::new();
    let mut f = wasm_encoder::Function::new([]);
    f.instructions().end();
    code.function(&f);
    with_code.section(&code);
    with_code.section(&wasm_encoder::CustomSection {
        name: ABI_SECTION.into(),
        data: counter.into(),
    });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "the ABI after another custom section",
            module_with(&[("producers", b"x"), (ABI_SECTION, counter)]),
        ),
        ("after a function's code", with_code.finish()),
        (
            "the stele_reentrant section beside it",
            module_with(&[(REENTRANT_SECTION, b""), (ABI_SECTION, counter)]),
        ),
        ("no ABI section", module_with(&[("producers", b"x")])),
        ("an empty module", module_with(&[])),
        (
            "two ABI sections",
            module_with(&[(ABI_SECTION, b"{}"), (ABI_SECTION, b"{}")]),
        ),
        (
            "a section that is not an ABI",
            module_with(&[(ABI_SECTION, b"{not json")]),
        ),
        (
            "a name that only starts like it",
            module_with(&[("stele_abi2", counter)]),
        ),
    ];
    let mut out = Vec::new();
    for (what, wasm) in cases {
        let section = abi_section(&wasm);
        let entry = json!({"what": what, "wasm": hx(&wasm)});
        let entry = outcome(
            entry,
            section,
            |s| json!({"section": s.map(hx).unwrap_or(Value::Null)}),
        );
        out.push(outcome(
            entry,
            Abi::from_wasm(&wasm),
            |abi| json!({"canonical": abi.to_json()}),
        ));
    }
    Value::Array(out)
}

/// Modules the section reader refuses. Only the kind is checked: the
/// messages are the Wasm parser's own.
fn invalid_wasm_section() -> Value {
    let big = vec![b' '; ABI_SECTION_BYTES_MAX + 1];
    let too_large = abi_section(&module_with(&[(ABI_SECTION, &big)])).unwrap_err();
    let mut out = vec![json!({
        "what": "an ABI section one byte over the maximum",
        "section_bytes": big.len(),
        "kind": kind(&too_large),
        "error": too_large.to_string(),
    })];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not a module", b"junk".to_vec()),
        ("an empty input", vec![]),
        ("a bad version", b"\0asm\x02\0\0\0".to_vec()),
        ("a truncated section", b"\0asm\x01\0\0\0\x00\xff".to_vec()),
        (
            "a section longer than the input",
            b"\0asm\x01\0\0\0\x00\x05\x01a".to_vec(),
        ),
        (
            "a custom section name longer than the section",
            b"\0asm\x01\0\0\0\x00\x02\x05a".to_vec(),
        ),
        (
            "a custom section name that is not UTF-8",
            b"\0asm\x01\0\0\0\x00\x02\x01\xff".to_vec(),
        ),
    ];
    for (what, wasm) in cases {
        let e = abi_section(&wasm).unwrap_err();
        out.push(
            json!({"what": what, "wasm": hx(&wasm), "kind": kind(&e), "error": e.to_string()}),
        );
    }
    Value::Array(out)
}

fn document() -> String {
    let abis = Abis::new();
    let doc = json!({
        "about": "Stele ABI conformance vectors for sdk/ts, written by sdk/abi/tests/ts_vectors.rs; do not edit by hand (STELE_WRITE_VECTORS=1 cargo test -p stele-abi --test ts_vectors)",
        "version": 1,
        "limits": {
            "abi_version": ABI_VERSION,
            "abi_section": ABI_SECTION,
            "abi_section_bytes_max": ABI_SECTION_BYTES_MAX,
            "revert_message": REVERT_MESSAGE,
            "revert_error": REVERT_ERROR,
        },
        "abis": abis_section(),
        "args": args_section(&abis),
        "deep_args": deep_args_section(&abis),
        "values": values_section(&abis),
        "decode": decode_section(&abis),
        "returns": returns_section(&abis),
        "reverts": reverts_section(&abis),
        "event_names": event_names(),
        "topics": topics_section(&abis),
        "events": events_section(&abis),
        "invalid_abis": invalid_abis_section(),
        "abi_limits": limits_section(),
        "wasm": wasm_section(),
        "invalid_wasm": invalid_wasm_section(),
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("the document serializes");
    out.push('\n');
    out
}

#[test]
fn typescript_abi_vectors_match_the_rust_abi() {
    stele_fixtures::check_ts_vectors(
        "abi.json",
        &document(),
        "cargo test -p stele-abi --test ts_vectors",
    );
}
