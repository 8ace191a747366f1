//! Conformance vectors for the TypeScript light client in `sdk/ts`
//! (`src/proof.ts` and `src/light.ts`).
//!
//! This test builds a real state with this crate (accounts, contract code,
//! contract storage, a system record), commits it over a few versions, and
//! writes to a JSON document:
//!
//! - state keys of every namespace with their encodings and tree keys, and
//!   account records with their encodings;
//! - proofs the store produced for present and absent keys (ending at a
//!   leaf of another key or at an empty subtree), in the trees of every
//!   size from empty to about seventy keys, with their encodings and serde
//!   JSON;
//! - forged proofs (flipped sibling, wrong value, wrong key, truncated,
//!   extended, off-path leaf, too many siblings...) with the `ProofError`
//!   Rust gives for each, and proof encodings that must not decode;
//! - a chain of three epochs over that state (headers whose state roots
//!   are the store's, certificates signed by each epoch's validators) and
//!   the JSON-RPC answers a node gives for it (`get_validators`,
//!   `get_block`, `get_storage_proof`), plus forged answers with the error
//!   Rust's verification gives, for a fake node in the TypeScript tests.
//!
//! With `STELE_WRITE_VECTORS=1` it writes `sdk/ts/fixtures/proofs.json`;
//! otherwise it regenerates the document in memory and fails unless the
//! committed file is identical.
//!
//! JSON conventions as `node/types/tests/ts_vectors.rs`: bytes, hashes and
//! keys are `0x` lowercase hex, addresses EIP-55, `u64` and `u128` decimal
//! strings; a member named `json` or `answer` holds serde JSON (the shape
//! of the JSON-RPC API) as a string.
#![allow(clippy::unwrap_used)] // a test: any failure is a bug to see

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stele_state::{Namespace, ProofError, SparseMerkleProof, State, StateKey};
use stele_types::codec::{Encode, Limits, decode};
use stele_types::hash::domain;
use stele_types::proof::{PROOF_SIBLINGS_MAX, value_hash};
use stele_types::{
    Account, Address, Block, BlockHeader, CommitCertificate, CommitSignature, Hash, SecretKey,
    Validator, ValidatorSet, keccak256,
};

use common::{temp_state, test_config};

const CHAIN_ID: u64 = 0x57e1e;
/// The checkpoint interval: epochs end at its multiples.
const K: u64 = 4;
/// The last committed height of the sample chain.
const TIP: u64 = 12;
/// The sample chain's epochs: 0 is heights 1..=4, 1 is 5..=8, 2 is 9 on.
const LAST_EPOCH: u64 = 2;
/// The height whose block decided the change that ends epoch `e`.
const DECIDED_AT: [u64; 2] = [3, 6];

fn hx(bytes: &[u8]) -> Value {
    Value::String(stele_types::hex::encode(bytes))
}

fn dec(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn text(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

/// The serde JSON of a value, as a string (`serde` itself is not a
/// dependency of this crate, so no generic function can name its trait).
macro_rules! serde_text {
    ($value:expr) => {
        Value::String(serde_json::to_string($value).unwrap())
    };
}

fn key(n: u8) -> SecretKey {
    let mut b = [0u8; 32];
    b[31] = n;
    SecretKey::from_bytes(&b).unwrap()
}

// ---------------------------------------------------------------------------
/// An account record (`stele_types::Account`, as the executor stores it).
fn account_bytes(nonce: u64, balance: u128, code_hash: Option<Hash>) -> Vec<u8> {
    Account {
        nonce,
        balance,
        code_hash,
    }
    .to_bytes()
}

// ---------------------------------------------------------------------------
// The sample state.

fn contract(n: u8) -> Address {
    Address::contract(&key(1).address(), u64::from(n))
}

fn code(n: u8) -> Vec<u8> {
    let mut c = b"\0asm\x01\0\0\0".to_vec();
    c.push(n);
    c
}

fn slot(i: u32) -> Vec<u8> {
    format!("slot-{i}").into_bytes()
}

/// A storage key of 200 bytes.
fn long_key() -> Vec<u8> {
    (0..200u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn account_of(n: u8, version: u64) -> Vec<u8> {
    match n {
        // The sender of every block.
        1 => account_bytes(
            version,
            1_000_000_000_000_000_000_000_000 - u128::from(version),
            None,
        ),
        6 => account_bytes(0, u128::MAX, None),
        _ => account_bytes(u64::from(n), 10u128.pow(18) * u128::from(n), None),
    }
}

fn contract_account(n: u8) -> Vec<u8> {
    account_bytes(1, 5_000 * u128::from(n), Some(keccak256(&code(n))))
}

type Writes = BTreeMap<StateKey, Option<Vec<u8>>>;

fn genesis_writes() -> Writes {
    let mut w = Writes::new();
    for n in 1..=6u8 {
        w.insert(StateKey::account(&key(n).address()), Some(account_of(n, 0)));
    }
    for n in 1..=2u8 {
        w.insert(StateKey::account(&contract(n)), Some(contract_account(n)));
        w.insert(
            StateKey::new(Namespace::Code, keccak256(&code(n)).0.to_vec()),
            Some(code(n)),
        );
    }
    for i in 0..40 {
        w.insert(
            StateKey::storage(&contract(1), slot(i)),
            Some(format!("value-{i}").into_bytes()),
        );
    }
    w.insert(
        StateKey::storage(&contract(1), vec![0x00]),
        Some(Vec::new()),
    );
    w.insert(
        StateKey::storage(&contract(1), long_key()),
        Some(b"long".to_vec()),
    );
    for i in 0..5 {
        w.insert(
            StateKey::storage(&contract(2), slot(i)),
            Some(format!("other-{i}").into_bytes()),
        );
    }
    w.insert(
        StateKey::new(Namespace::System, b"validators".to_vec()),
        Some(set_of(0).1.to_bytes()),
    );
    w
}

fn block_writes(height: u64) -> Writes {
    let mut w = Writes::new();
    w.insert(
        StateKey::account(&key(1).address()),
        Some(account_of(1, height)),
    );
    w.insert(
        StateKey::storage(&contract(1), b"counter".to_vec()),
        Some(height.to_le_bytes().to_vec()),
    );
    let i = u32::try_from(height).unwrap();
    w.insert(
        StateKey::storage(&contract(1), slot(i)),
        Some(format!("value-{i}-at-{height}").into_bytes()),
    );
    if height == 6 {
        w.insert(StateKey::storage(&contract(1), slot(30)), None);
    }
    if height == 10 {
        w.insert(
            StateKey::storage(&contract(1), b"late-key".to_vec()),
            Some(b"late".to_vec()),
        );
    }
    w
}

/// The sample state at versions 0 (the genesis) to `TIP`, and its roots.
fn sample_state() -> (tempfile::TempDir, State, Vec<Hash>) {
    let (dir, mut state) = temp_state(test_config(TIP + 1));
    let mut roots = vec![state.commit(0, &genesis_writes()).unwrap()];
    for h in 1..=TIP {
        roots.push(state.commit(h, &block_writes(h)).unwrap());
    }
    (dir, state, roots)
}

// ---------------------------------------------------------------------------
// JSON forms.

fn namespace_json(ns: &Namespace) -> Value {
    serde_json::to_value(ns).unwrap()
}

fn state_key_json(k: &StateKey) -> Value {
    json!({ "namespace": namespace_json(&k.namespace), "key": hx(&k.key) })
}

fn proof_fields(proof: &SparseMerkleProof) -> Value {
    json!({
        "json": serde_text!(proof),
        "encoding": hx(&proof.to_bytes()),
        "leaf": proof.leaf.map(|l| json!({
            "key": text(l.key),
            "value_hash": text(l.value_hash),
        })),
        "siblings": proof.siblings.len(),
    })
}

fn proof_error_kind(e: &ProofError) -> &'static str {
    match e {
        ProofError::TooManySiblings { .. } => "too_many_siblings",
        ProofError::WrongLeafKey { .. } => "wrong_leaf_key",
        ProofError::WrongValue { .. } => "wrong_value",
        ProofError::KeyPresent { .. } => "key_present",
        ProofError::LeafOffPath { .. } => "leaf_off_path",
        ProofError::RootMismatch { .. } => "root_mismatch",
    }
}

fn cert_error_kind(e: &stele_types::CertificateError) -> &'static str {
    use stele_types::CertificateError as E;
    match e {
        E::NotSorted(_) => "not_sorted",
        E::UnknownValidator(_) => "unknown_validator",
        E::BadSignature { .. } => "bad_signature",
        E::NoQuorum { .. } => "no_quorum",
        E::WrongBlock { .. } => "wrong_block",
        E::WrongHeight { .. } => "wrong_height",
        E::WrongEpoch { .. } => "wrong_epoch",
    }
}

// ---------------------------------------------------------------------------
// State keys and account records.

fn state_keys() -> Value {
    let c = contract(1);
    let keys = [
        StateKey::new(Namespace::System, b"validators".to_vec()),
        StateKey::new(Namespace::System, Vec::new()),
        StateKey::account(&key(1).address()),
        StateKey::account(&Address([0; 20])),
        StateKey::code(&c),
        StateKey::new(Namespace::Code, keccak256(&code(1)).0.to_vec()),
        StateKey::storage(&c, slot(5)),
        StateKey::storage(&c, vec![0x00]),
        StateKey::storage(&c, Vec::new()),
        StateKey::storage(&c, long_key()),
        StateKey::storage(&contract(2), slot(5)),
        StateKey::storage(&c, vec![0xab; 1024]),
    ];
    Value::Array(
        keys.iter()
            .map(|k| {
                let mut ns = Vec::new();
                k.namespace.encode_to(&mut ns);
                assert_eq!(ns.len(), k.namespace.encoded_len());
                json!({
                    "namespace": namespace_json(&k.namespace),
                    "key": hx(&k.key),
                    "namespace_encoding": hx(&ns),
                    "encoding": hx(&k.to_bytes()),
                    "hash": text(k.hash()),
                    "json": serde_text!(k),
                })
            })
            .collect(),
    )
}

fn accounts() -> Value {
    let cases: [(&str, u64, u128, Option<Hash>); 5] = [
        (
            "the executor's pinned record",
            3,
            1_000,
            Some(Hash([0xab; 32])),
        ),
        ("a new account", 0, 0, None),
        ("a funded account", 7, 10u128.pow(24), None),
        ("the largest balance and nonce", u64::MAX, u128::MAX, None),
        ("a contract", 1, 5_000, Some(keccak256(&code(1)))),
    ];
    Value::Array(
        cases
            .iter()
            .map(|(name, nonce, balance, code_hash)| {
                json!({
                    "name": name,
                    "nonce": dec(nonce),
                    "balance": dec(balance),
                    "code_hash": code_hash.map(text),
                    "encoding": hx(&account_bytes(*nonce, *balance, *code_hash)),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Proofs from the store.

/// One proof the store made: the key, the version, the value and the proof.
struct Made {
    name: String,
    /// `sample`: the sample state, whose roots are the document's `roots`;
    /// `small`: a tree of at most two keys.
    tree: &'static str,
    version: u64,
    root: Hash,
    key: StateKey,
    value: Option<Vec<u8>>,
    proof: SparseMerkleProof,
}

fn prove(state: &State, roots: &[Hash], name: &str, key: StateKey, version: u64) -> Made {
    let (value, proof) = state.prove(&key, version).unwrap();
    let root = roots[version as usize];
    proof.verify(&root, &key.hash(), value.as_deref()).unwrap();
    Made {
        name: name.to_string(),
        tree: "sample",
        version,
        root,
        key,
        value,
        proof,
    }
}

fn made_json(m: &Made) -> Value {
    let mut v = json!({
        "name": m.name,
        "tree": m.tree,
        "version": dec(m.version),
        "root": text(m.root),
        "state_key": state_key_json(&m.key),
        "key_hash": text(m.key.hash()),
        "value": m.value.as_ref().map(|v| hx(v)),
        "proof": proof_fields(&m.proof),
    });
    if m.key.namespace == Namespace::Account {
        v["account"] = Value::Bool(true);
    }
    v
}

/// The first absent storage key of `contract(1)` named `absent-{i}` whose
/// proof at `version` ends at a leaf (`at_leaf`) or at an empty subtree.
fn absent_key(state: &State, version: u64, at_leaf: bool) -> StateKey {
    (0..10_000u32)
        .map(|i| StateKey::storage(&contract(1), format!("absent-{i}").into_bytes()))
        .find(|k| {
            let (value, proof) = state.prove(k, version).unwrap();
            value.is_none() && proof.leaf.is_some() == at_leaf
        })
        .unwrap()
}

fn store_proofs(state: &State, roots: &[Hash]) -> Vec<Made> {
    let c1 = contract(1);
    let mut out = vec![
        prove(
            state,
            roots,
            "account present",
            StateKey::account(&key(1).address()),
            TIP,
        ),
        prove(
            state,
            roots,
            "account with the largest balance",
            StateKey::account(&key(6).address()),
            TIP,
        ),
        prove(
            state,
            roots,
            "contract account",
            StateKey::account(&c1),
            TIP,
        ),
        prove(
            state,
            roots,
            "account absent",
            StateKey::account(&key(99).address()),
            TIP,
        ),
        prove(
            state,
            roots,
            "code present",
            StateKey::new(Namespace::Code, keccak256(&code(2)).0.to_vec()),
            TIP,
        ),
        prove(
            state,
            roots,
            "system record present",
            StateKey::new(Namespace::System, b"validators".to_vec()),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage present",
            StateKey::storage(&c1, slot(5)),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage present, rewritten at the tip",
            StateKey::storage(&c1, slot(12)),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage present, the value before it was rewritten",
            StateKey::storage(&c1, slot(12)),
            11,
        ),
        prove(
            state,
            roots,
            "storage present, an empty value",
            StateKey::storage(&c1, vec![0x00]),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage present, a 200-byte key",
            StateKey::storage(&c1, long_key()),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage counter at height 1",
            StateKey::storage(&c1, b"counter".to_vec()),
            1,
        ),
        prove(
            state,
            roots,
            "storage absent, never written",
            StateKey::storage(&c1, b"never".to_vec()),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage absent, deleted at height 6",
            StateKey::storage(&c1, slot(30)),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage present before its deletion",
            StateKey::storage(&c1, slot(30)),
            5,
        ),
        prove(
            state,
            roots,
            "storage absent, written later",
            StateKey::storage(&c1, b"late-key".to_vec()),
            9,
        ),
        prove(
            state,
            roots,
            "storage present once written",
            StateKey::storage(&c1, b"late-key".to_vec()),
            10,
        ),
        prove(
            state,
            roots,
            "storage absent in the other contract's namespace",
            StateKey::storage(&contract(2), slot(20)),
            TIP,
        ),
        prove(
            state,
            roots,
            "storage absent in the genesis state",
            StateKey::storage(&c1, b"counter".to_vec()),
            0,
        ),
    ];
    let at_leaf = absent_key(state, TIP, true);
    out.push(prove(
        state,
        roots,
        "storage absent, the path ends at another key's leaf",
        at_leaf,
        TIP,
    ));
    let at_empty = absent_key(state, TIP, false);
    out.push(prove(
        state,
        roots,
        "storage absent, the path ends at an empty subtree",
        at_empty,
        TIP,
    ));
    out
}

/// Proofs from trees of zero, one and two keys.
fn small_tree_proofs() -> Vec<Made> {
    let (_dir, mut state) = temp_state(test_config(10));
    let a = StateKey::storage(&contract(1), slot(1));
    let b = StateKey::storage(&contract(1), slot(2));
    let roots = vec![
        state.commit(0, &Writes::new()).unwrap(),
        state
            .commit(1, &Writes::from([(a.clone(), Some(b"a".to_vec()))]))
            .unwrap(),
        state
            .commit(2, &Writes::from([(b.clone(), Some(b"b".to_vec()))]))
            .unwrap(),
    ];
    assert_eq!(roots[0], Hash::ZERO);
    let mut out = vec![
        prove(&state, &roots, "empty tree", a.clone(), 0),
        prove(&state, &roots, "one-key tree, the key", a.clone(), 1),
        prove(&state, &roots, "one-key tree, another key", b.clone(), 1),
        prove(&state, &roots, "two-key tree, the first key", a, 2),
        prove(&state, &roots, "two-key tree, the second key", b, 2),
    ];
    for m in &mut out {
        m.name = format!("small tree: {}", m.name);
        m.tree = "small";
    }
    out
}

/// The refusal of `proof` for `key` holding `value` under `root`.
fn forged(
    name: &str,
    proof: &SparseMerkleProof,
    root: Hash,
    key: Hash,
    value: Option<&[u8]>,
) -> Value {
    let e = proof.verify(&root, &key, value).unwrap_err();
    json!({
        "name": name,
        "root": text(root),
        "key_hash": text(key),
        "value": value.map(hx),
        "proof": proof_fields(proof),
        "kind": proof_error_kind(&e),
        "error": text(&e),
    })
}

fn flip(h: &Hash, byte: usize, mask: u8) -> Hash {
    let mut b = h.0;
    b[byte] ^= mask;
    Hash(b)
}

fn forged_proofs(made: &[Made], roots: &[Hash]) -> Value {
    let find = |name: &str| made.iter().find(|m| m.name == name).unwrap();
    let present = find("storage present");
    let other = find("storage present, a 200-byte key");
    let at_leaf = find("storage absent, the path ends at another key's leaf");
    let at_empty = find("storage absent, the path ends at an empty subtree");
    let late = find("storage absent, written later");
    let account = find("account present");
    let (root, k, v) = (present.root, present.key.hash(), present.value.as_deref());
    assert!(present.proof.siblings.len() >= 3);
    let mut out = Vec::new();

    let mut p = present.proof.clone();
    p.siblings[0] = flip(&p.siblings[0], 0, 0x80);
    out.push(forged(
        "a flipped bit in the root's sibling",
        &p,
        root,
        k,
        v,
    ));
    let mut p = present.proof.clone();
    let last = p.siblings.len() - 1;
    p.siblings[last] = flip(&p.siblings[last], 31, 0x01);
    out.push(forged(
        "a flipped bit in the leaf's sibling",
        &p,
        root,
        k,
        v,
    ));
    let mut p = present.proof.clone();
    p.siblings.swap(0, 1);
    out.push(forged("two siblings swapped", &p, root, k, v));
    out.push(forged(
        "another value",
        &present.proof,
        root,
        k,
        Some(b"value-6"),
    ));
    out.push(forged(
        "an empty value for a non-empty one",
        &present.proof,
        root,
        k,
        Some(b""),
    ));
    out.push(forged(
        "another key's hash",
        &present.proof,
        root,
        other.key.hash(),
        other.value.as_deref(),
    ));
    out.push(forged(
        "a present key claimed absent",
        &present.proof,
        root,
        k,
        None,
    ));
    let mut p = present.proof.clone();
    let leaf = p.leaf.as_mut().unwrap();
    leaf.value_hash = value_hash(b"value-6");
    out.push(forged(
        "the leaf's value hash replaced, the value too",
        &p,
        root,
        k,
        Some(b"value-6"),
    ));
    let mut p = present.proof.clone();
    p.siblings.remove(0);
    out.push(forged(
        "truncated: the root's sibling removed",
        &p,
        root,
        k,
        v,
    ));
    let mut p = present.proof.clone();
    p.siblings.pop();
    out.push(forged(
        "truncated: the leaf's sibling removed",
        &p,
        root,
        k,
        v,
    ));
    let mut p = present.proof.clone();
    p.siblings.push(Hash::ZERO);
    out.push(forged(
        "extended: a zero sibling added under the leaf",
        &p,
        root,
        k,
        v,
    ));
    let mut p = present.proof.clone();
    p.siblings.clear();
    out.push(forged("truncated: no siblings", &p, root, k, v));
    out.push(forged(
        "another version's root",
        &present.proof,
        roots[5],
        k,
        v,
    ));
    let p = SparseMerkleProof {
        leaf: present.proof.leaf,
        siblings: vec![Hash::ZERO; PROOF_SIBLINGS_MAX + 1],
    };
    out.push(forged("257 siblings", &p, root, k, v));
    let p = SparseMerkleProof {
        leaf: None,
        siblings: present.proof.siblings.clone(),
    };
    out.push(forged(
        "the leaf removed from a present key's proof",
        &p,
        root,
        k,
        v,
    ));

    let (ka, ra) = (at_leaf.key.hash(), at_leaf.root);
    out.push(forged(
        "an absence proof claimed as a presence",
        &at_leaf.proof,
        ra,
        ka,
        Some(b"x"),
    ));
    let mut p = at_leaf.proof.clone();
    p.siblings[0] = flip(&p.siblings[0], 5, 0x10);
    out.push(forged(
        "an absence proof with a flipped sibling",
        &p,
        ra,
        ka,
        None,
    ));
    let mut p = at_leaf.proof.clone();
    let leaf = p.leaf.as_mut().unwrap();
    // A leaf that parts from the queried key at the root: off its path.
    leaf.key = flip(&ka, 0, 0x80);
    out.push(forged(
        "an absence proof whose leaf is off the key's path",
        &p,
        ra,
        ka,
        None,
    ));
    let mut p = at_leaf.proof.clone();
    p.leaf.as_mut().unwrap().key = ka;
    out.push(forged(
        "an absence proof whose leaf is the queried key",
        &p,
        ra,
        ka,
        None,
    ));

    let (ke, re) = (at_empty.key.hash(), at_empty.root);
    out.push(forged(
        "an empty-subtree proof claimed as a presence",
        &at_empty.proof,
        re,
        ke,
        Some(b"x"),
    ));
    let mut p = at_empty.proof.clone();
    let last = p.siblings.len() - 1;
    p.siblings[last] = flip(&p.siblings[last], 9, 0x02);
    out.push(forged(
        "an empty-subtree proof with a flipped sibling",
        &p,
        re,
        ke,
        None,
    ));
    out.push(forged(
        "an absence proof against a root where the key is present",
        &late.proof,
        roots[10],
        late.key.hash(),
        None,
    ));
    out.push(forged(
        "an absence proof for another key",
        &at_empty.proof,
        re,
        StateKey::storage(&contract(1), slot(5)).hash(),
        None,
    ));
    let wrong_account = account_bytes(TIP, 1, None);
    out.push(forged(
        "an account record with another balance",
        &account.proof,
        account.root,
        account.key.hash(),
        Some(&wrong_account),
    ));
    let code_ns = StateKey::new(Namespace::Code, key(1).address().0.to_vec());
    out.push(forged(
        "an account proof used for the same address in another namespace",
        &account.proof,
        account.root,
        code_ns.hash(),
        account.value.as_deref(),
    ));
    Value::Array(out)
}

fn refused<T: stele_types::Decode + std::fmt::Debug>(ty: &str, name: &str, bytes: &[u8]) -> Value {
    let e = decode::<T>(bytes, &Limits::default()).unwrap_err();
    json!({ "type": ty, "name": name, "bytes": hx(bytes), "error": text(e) })
}

fn invalid_encodings(made: &[Made]) -> Value {
    let present = made.iter().find(|m| m.name == "storage present").unwrap();
    let bytes = present.proof.to_bytes();
    let mut out = vec![
        refused::<SparseMerkleProof>("proof", "empty input", &[]),
        refused::<SparseMerkleProof>("proof", "an option tag of 2", &[2, 0, 0, 0, 0]),
        refused::<SparseMerkleProof>("proof", "a leaf cut short", &bytes[..40]),
        refused::<SparseMerkleProof>("proof", "no sibling count", &bytes[..65]),
        refused::<SparseMerkleProof>(
            "proof",
            "the last sibling cut short",
            &bytes[..bytes.len() - 1],
        ),
        refused::<SparseMerkleProof>("proof", "more siblings counted than present", &{
            let mut b = bytes.clone();
            b.truncate(bytes.len() - 32);
            b
        }),
    ];
    let mut trailing = bytes.clone();
    trailing.push(0);
    out.push(refused::<SparseMerkleProof>(
        "proof",
        "a trailing byte",
        &trailing,
    ));
    let mut over = vec![0u8];
    over.extend_from_slice(&257u32.to_le_bytes());
    over.extend(std::iter::repeat_n(0u8, 257 * 32));
    out.push(refused::<SparseMerkleProof>("proof", "257 siblings", &over));
    out.push(refused::<StateKey>(
        "state_key",
        "namespace tag 4",
        &[4, 0, 0, 0, 0],
    ));
    out.push(refused::<StateKey>(
        "state_key",
        "a storage namespace cut short",
        &[3, 1, 2, 3],
    ));
    let mut long = vec![1u8];
    long.extend_from_slice(&1025u32.to_le_bytes());
    long.extend(std::iter::repeat_n(7u8, 1025));
    out.push(refused::<StateKey>("state_key", "a 1025-byte key", &long));
    out.push(refused::<StateKey>(
        "state_key",
        "a key cut short",
        &[1, 3, 0, 0, 0, 1, 2],
    ));
    Value::Array(out)
}

// ---------------------------------------------------------------------------
// The chain: three epochs over the sample state.

/// The validator set of epoch `e` and its members' keys, in set order.
fn set_of(e: u64) -> (Vec<SecretKey>, ValidatorSet) {
    let members: &[(u8, u64)] = match e {
        0 => &[(1, 1), (2, 1), (3, 1), (4, 1)],
        1 => &[(2, 1), (3, 1), (4, 2), (5, 1), (6, 1)],
        2 => &[(5, 3), (6, 1), (7, 1), (8, 1)],
        // Keys no epoch has: the forger's.
        _ => &[(20, 1), (21, 1), (22, 1), (23, 1)],
    };
    with_members(members)
}

fn with_members(members: &[(u8, u64)]) -> (Vec<SecretKey>, ValidatorSet) {
    let mut list: Vec<(SecretKey, u64)> = members.iter().map(|&(n, p)| (key(n), p)).collect();
    list.sort_by_key(|(k, _)| k.address());
    let validators = list
        .iter()
        .map(|(k, p)| Validator {
            address: k.address(),
            public_key: k.public_key(),
            power: *p,
        })
        .collect();
    (
        list.into_iter().map(|(k, _)| k).collect(),
        ValidatorSet::new(validators).unwrap(),
    )
}

/// The epoch of block `height` (at least 1).
fn epoch_of(height: u64) -> u64 {
    ((height - 1) / K).min(LAST_EPOCH)
}

fn epoch_start(e: u64) -> u64 {
    e * K + 1
}

/// Signature indexes of a quorum of `set` for `height`: all but one
/// member, the one left out turning with the height, when the rest hold a
/// quorum; else everyone.
fn signers_for(set: &ValidatorSet, height: u64) -> Vec<u32> {
    let n = set.len() as u64;
    let out = height % n;
    let rest: Vec<u32> = (0..n).filter(|&i| i != out).map(|i| i as u32).collect();
    let power: u64 = rest
        .iter()
        .map(|&i| set.get(i as usize).unwrap().power)
        .sum();
    if power >= set.quorum_power() {
        rest
    } else {
        (0..n as u32).collect()
    }
}

fn sign(header: &BlockHeader, keys: &[SecretKey], signers: &[u32]) -> CommitCertificate {
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

struct Chain {
    headers: Vec<BlockHeader>,
    certificates: Vec<CommitCertificate>,
}

impl Chain {
    fn header(&self, h: u64) -> &BlockHeader {
        &self.headers[h as usize - 1]
    }

    fn certificate(&self, h: u64) -> &CommitCertificate {
        &self.certificates[h as usize - 1]
    }
}

fn chain(roots: &[Hash]) -> Chain {
    let mut headers: Vec<BlockHeader> = Vec::new();
    let mut certificates = Vec::new();
    for h in 1..=TIP {
        let e = epoch_of(h);
        let (keys, set) = set_of(e);
        let view = h % 3;
        let header = BlockHeader {
            chain_id: CHAIN_ID,
            height: h,
            epoch: e,
            view,
            parent_hash: headers.last().map_or(Hash::ZERO, BlockHeader::hash),
            tx_root: Hash::ZERO,
            state_root: roots[h as usize],
            receipts_root: Hash::ZERO,
            timestamp_ms: 1_767_225_600_000 + 1_000 * h,
            proposer: set.primary(view).address,
            next_validators_hash: set_of(epoch_of(h + 1)).1.hash(),
        };
        let cert = sign(&header, &keys, &signers_for(&set, h));
        cert.verify_header(&header, &set).unwrap();
        headers.push(header);
        certificates.push(cert);
    }
    Chain {
        headers,
        certificates,
    }
}

fn block_info(header: &BlockHeader, cert: &CommitCertificate) -> Value {
    let block = Block {
        header: header.clone(),
        txs: vec![],
    };
    assert_eq!(block.compute_tx_root(), header.tx_root);
    json!({
        "hash": text(header.hash()),
        "block": serde_json::to_value(&block).unwrap(),
        "certificate": serde_json::to_value(cert).unwrap(),
    })
}

fn validators_info(at: u64, set: &ValidatorSet, pending: Option<&ValidatorSet>) -> Value {
    let e = epoch_of(at + 1);
    json!({
        "height": at,
        "epoch": e,
        "epoch_start_height": epoch_start(e),
        "validators": serde_json::to_value(set).unwrap(),
        "validators_hash": text(set.hash()),
        "pending": pending.map(|next| json!({
            "validators": serde_json::to_value(next).unwrap(),
            "validators_hash": text(next.hash()),
            "decided_at": DECIDED_AT[e as usize],
            "last_height": epoch_start(e + 1) - 1,
        })),
    })
}

/// The node's `get_validators` answer after `at`.
fn validators_answer(at: u64) -> Value {
    let e = epoch_of(at + 1);
    let pending = (e < LAST_EPOCH && at >= DECIDED_AT[e as usize]).then(|| set_of(e + 1).1);
    validators_info(at, &set_of(e).1, pending.as_ref())
}

fn storage_answer(
    contract: &Address,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &SparseMerkleProof,
    header: &BlockHeader,
    cert: &CommitCertificate,
) -> Value {
    json!({
        "contract": text(contract),
        "key": hx(key),
        "value": value.map(hx),
        "proof": serde_json::to_value(proof).unwrap(),
        "header": serde_json::to_value(header).unwrap(),
        "certificate": serde_json::to_value(cert).unwrap(),
    })
}

fn compact(v: &Value) -> Value {
    Value::String(serde_json::to_string(v).unwrap())
}

/// What a verified read reports, as the light client returns it.
fn verified_by(header: &BlockHeader, cert: &CommitCertificate) -> Value {
    let set = set_of(header.epoch).1;
    let power: u64 = cert
        .signatures
        .iter()
        .map(|s| set.get(s.validator as usize).unwrap().power)
        .sum();
    json!({
        "height": dec(header.height),
        "epoch": dec(header.epoch),
        "block_hash": text(header.hash()),
        "state_root": text(header.state_root),
        "signers": cert.signatures.len(),
        "validators": set.len(),
        "power": dec(power),
        "total_power": dec(set.total_power()),
        "quorum_power": dec(set.quorum_power()),
    })
}

struct Read {
    name: &'static str,
    contract: Address,
    key: Vec<u8>,
    /// `None`: the latest height.
    height: Option<u64>,
}

fn reads() -> Vec<Read> {
    let c1 = contract(1);
    let read = |name, contract, key: &[u8], height| Read {
        name,
        contract,
        key: key.to_vec(),
        height,
    };
    vec![
        read("a value at the latest height", c1, b"counter", None),
        read("a value in epoch 0", c1, b"counter", Some(2)),
        read("a value at epoch 0's last block", c1, &slot(4), Some(4)),
        read("a value at epoch 1's first block", c1, &slot(5), Some(5)),
        read("a value in epoch 1", c1, &slot(7), Some(7)),
        read("a value in epoch 2", c1, b"late-key", Some(10)),
        // The read the forged answers replace.
        read(
            "a value in epoch 2, read by the forged cases",
            c1,
            &slot(7),
            Some(10),
        ),
        read("an absent key in epoch 2", c1, &slot(30), Some(11)),
        read(
            "a key absent before it was written",
            c1,
            b"late-key",
            Some(9),
        ),
        read("an empty value", c1, &[0x00], Some(12)),
        read("the other contract", contract(2), &slot(3), Some(8)),
    ]
}

/// Account reads (`get_account_proof` answers) and what they verify to.
fn account_reads(state: &State, chain: &Chain) -> Value {
    let reads: [(&str, Address, Option<u64>); 5] = [
        ("the sender of every block, latest", key(1).address(), None),
        ("the sender in epoch 0", key(1).address(), Some(3)),
        (
            "an account with the largest balance",
            key(6).address(),
            Some(7),
        ),
        ("a contract's record", contract(2), Some(10)),
        (
            "an account that does not exist",
            key(40).address(),
            Some(11),
        ),
    ];
    let reads = reads
        .iter()
        .map(|&(name, address, height)| {
            let h = height.unwrap_or(TIP);
            let sk = StateKey::account(&address);
            let (value, proof) = state.prove(&sk, h).unwrap();
            let (header, cert) = (chain.header(h), chain.certificate(h));
            let account = value
                .as_ref()
                .map(|v| decode::<Account>(v, &Limits::default()).unwrap());
            json!({
                "name": name,
                "address": text(address),
                "height": height.map(dec),
                "account": account.map(|a| json!({
                    "nonce": dec(a.nonce),
                    "balance": dec(a.balance),
                    "code_hash": a.code_hash.map(text),
                })),
                "answer": compact(&account_answer(&address, value.as_deref(), &proof, header, cert)),
                "verified_by": verified_by(header, cert),
            })
        })
        .collect::<Vec<_>>();
    // Forged answers to a read of key(1)'s account at height 10.
    let h = 10;
    let me = key(1).address();
    let sk = StateKey::account(&me);
    let (value, proof) = state.prove(&sk, h).unwrap();
    let value = value.unwrap();
    let (header, cert) = (chain.header(h), chain.certificate(h));
    let richer = {
        let mut a = decode::<Account>(&value, &Limits::default()).unwrap();
        a.balance += 1;
        a.to_bytes()
    };
    let e = proof
        .verify(&header.state_root, &sk.hash(), Some(&richer))
        .unwrap_err();
    let other = key(2).address();
    let (other_value, other_proof) = state.prove(&StateKey::account(&other), h).unwrap();
    let forged = vec![
        json!({
            "name": "the balance is not the proven one",
            "address": text(me),
            "height": dec(h),
            "answer": compact(&account_answer(&me, Some(&richer), &proof, header, cert)),
            "error": { "kind": "proof", "reason": proof_error_kind(&e), "cause": text(&e) },
        }),
        json!({
            "name": "the node answers for another account",
            "address": text(me),
            "height": dec(h),
            "answer": compact(&account_answer(&other, other_value.as_deref(), &other_proof, header, cert)),
            "error": { "kind": "wrong_answer" },
        }),
        json!({
            "name": "the node answers at another height",
            "address": text(me),
            "height": dec(h),
            "answer": compact(&account_answer(
                &me,
                state.prove(&sk, h - 1).unwrap().0.as_deref(),
                &state.prove(&sk, h - 1).unwrap().1,
                chain.header(h - 1),
                chain.certificate(h - 1),
            )),
            "error": { "kind": "wrong_answer" },
        }),
    ];
    json!({ "reads": reads, "forged": forged })
}

fn account_answer(
    address: &Address,
    value: Option<&[u8]>,
    proof: &SparseMerkleProof,
    header: &BlockHeader,
    cert: &CommitCertificate,
) -> Value {
    json!({
        "address": text(address),
        "value": value.map(hx),
        "proof": serde_json::to_value(proof).unwrap(),
        "header": serde_json::to_value(header).unwrap(),
        "certificate": serde_json::to_value(cert).unwrap(),
    })
}

fn light(state: &State, chain: &Chain) -> Value {
    let genesis = set_of(0).1;
    let sets: Vec<Value> = (0..=LAST_EPOCH)
        .map(|e| {
            let (keys, set) = set_of(e);
            json!({
                "epoch": dec(e),
                "start_height": dec(epoch_start(e)),
                "json": serde_text!(&set),
                "hash": text(set.hash()),
                "secret_keys": keys.iter().map(|k| hx(&k.to_bytes())).collect::<Vec<_>>(),
                "total_power": dec(set.total_power()),
                "quorum_power": dec(set.quorum_power()),
            })
        })
        .collect();
    let validators: Vec<Value> = (0..=TIP)
        .map(|at| json!({ "height": dec(at), "answer": compact(&validators_answer(at)) }))
        .collect();
    let blocks: Vec<Value> = (1..=TIP)
        .map(|h| {
            let (header, cert) = (chain.header(h), chain.certificate(h));
            json!({
                "height": dec(h),
                "hash": text(header.hash()),
                "answer": compact(&block_info(header, cert)),
            })
        })
        .collect();
    let verified: Vec<Value> = reads()
        .iter()
        .map(|r| {
            let h = r.height.unwrap_or(TIP);
            let sk = StateKey::storage(&r.contract, r.key.clone());
            let (value, proof) = state.prove(&sk, h).unwrap();
            let (header, cert) = (chain.header(h), chain.certificate(h));
            proof
                .verify(&header.state_root, &sk.hash(), value.as_deref())
                .unwrap();
            json!({
                "name": r.name,
                "contract": text(r.contract),
                "key": hx(&r.key),
                "height": r.height.map(dec),
                "value": value.as_ref().map(|v| hx(v)),
                "answer": compact(&storage_answer(&r.contract, &r.key, value.as_deref(), &proof, header, cert)),
                "verified_by": verified_by(header, cert),
            })
        })
        .collect();
    json!({
        "chain_id": dec(CHAIN_ID),
        "checkpoint_interval": dec(K),
        "tip": dec(TIP),
        "genesis": serde_text!(&genesis),
        "sets": sets,
        "validators": validators,
        "blocks": blocks,
        "reads": verified,
        "forged": forged_answers(state, chain),
        "accounts": account_reads(state, chain),
    })
}

/// An answer a lying node gives in place of the true one.
fn replaced(method: &str, height: Option<u64>, answer: &Value) -> Value {
    json!({ "method": method, "height": height.map(dec), "answer": compact(answer) })
}

/// Forged answers to a read of `slot(7)` at height 10 (epoch 2), each with
/// the check of Rust's `verify_storage_proof` or
/// `Client::validators_for_block` that refuses it.
fn forged_answers(state: &State, chain: &Chain) -> Value {
    let c1 = contract(1);
    let h = 10;
    let k = slot(7);
    let sk = StateKey::storage(&c1, k.clone());
    let (value, proof) = state.prove(&sk, h).unwrap();
    let value = value.unwrap();
    let (header, cert) = (chain.header(h), chain.certificate(h));
    let (keys2, set2) = set_of(2);
    let forger = set_of(9).0;
    let mut out = Vec::new();
    let mut case = |name: &str, replace: Vec<Value>, error: Value| {
        out.push(json!({
            "name": name,
            "contract": text(c1),
            "key": hx(&k),
            "height": dec(h),
            "replace": replace,
            "error": error,
        }));
    };
    let proof_error = |p: &SparseMerkleProof, v: Option<&[u8]>| {
        let e = p.verify(&header.state_root, &sk.hash(), v).unwrap_err();
        json!({ "kind": "proof", "reason": proof_error_kind(&e), "cause": text(&e) })
    };
    let cert_error = |hd: &BlockHeader, c: &CommitCertificate, set: &ValidatorSet| {
        let e = c.verify_header(hd, set).unwrap_err();
        json!({ "kind": "certificate", "reason": cert_error_kind(&e), "cause": text(&e) })
    };
    let storage =
        |v: Option<&[u8]>, p: &SparseMerkleProof, hd: &BlockHeader, c: &CommitCertificate| {
            replaced(
                "get_storage_proof",
                Some(h),
                &storage_answer(&c1, &k, v, p, hd, c),
            )
        };

    let mut p = proof.clone();
    p.siblings[1] = flip(&p.siblings[1], 3, 0x04);
    case(
        "the proof has a flipped sibling",
        vec![storage(Some(&value), &p, header, cert)],
        proof_error(&p, Some(&value)),
    );
    case(
        "the value is not the proven one",
        vec![storage(Some(b"forged"), &proof, header, cert)],
        proof_error(&proof, Some(b"forged")),
    );
    case(
        "a present key is answered as absent",
        vec![storage(None, &proof, header, cert)],
        proof_error(&proof, None),
    );
    let mut p = proof.clone();
    p.siblings.remove(0);
    case(
        "the proof is truncated",
        vec![storage(Some(&value), &p, header, cert)],
        proof_error(&p, Some(&value)),
    );

    // The certificate signed by keys outside the epoch's set.
    let forged_cert = sign(header, &forger, &[0, 1, 2]);
    case(
        "the certificate is signed by non-members",
        vec![storage(Some(&value), &proof, header, &forged_cert)],
        cert_error(header, &forged_cert, &set2),
    );
    let few = sign(header, &keys2, &[1, 2]);
    case(
        "the certificate has no quorum",
        vec![storage(Some(&value), &proof, header, &few)],
        cert_error(header, &few, &set2),
    );
    let mut other = sign(header, &keys2, &[0, 1]);
    other.signatures.swap(0, 1);
    case(
        "the certificate's signatures are not sorted",
        vec![storage(Some(&value), &proof, header, &other)],
        cert_error(header, &other, &set2),
    );
    // A header with another state root, under the true block's certificate.
    let mut lie = header.clone();
    lie.state_root = keccak256(b"forged state");
    case(
        "the header is not the certified one",
        vec![storage(Some(&value), &proof, &lie, cert)],
        cert_error(&lie, cert, &set2),
    );
    // A header of another chain, properly certified by the same keys.
    let mut foreign = header.clone();
    foreign.chain_id = CHAIN_ID + 1;
    let foreign_cert = sign(&foreign, &keys2, &signers_for(&set2, h));
    case(
        "the header is of another chain",
        vec![storage(Some(&value), &proof, &foreign, &foreign_cert)],
        json!({ "kind": "wrong_chain", "expected": dec(CHAIN_ID), "got": dec(CHAIN_ID + 1) }),
    );

    // The chain of sets. The node names a set of forged keys for epoch 1.
    let (fake_keys, fake) = set_of(9);
    let lie = validators_info(4, &fake, None);
    case(
        "the node gives another set for epoch 1",
        vec![replaced("get_validators", Some(4), &lie)],
        json!({
            "kind": "set_chain",
            "height": dec(4),
            "reason": "the header names another next set",
        }),
    );
    // ... and a forged last block of epoch 0 naming it, signed by the
    // forged keys: the genesis set does not certify it.
    let mut last0 = chain.header(4).clone();
    last0.next_validators_hash = fake.hash();
    let last0_cert = sign(&last0, &fake_keys, &[0, 1, 2]);
    let e = last0_cert.verify_header(&last0, &set_of(0).1).unwrap_err();
    case(
        "a forged last block of epoch 0 names a forged set",
        vec![
            replaced("get_validators", Some(4), &lie),
            replaced("get_block", Some(4), &block_info(&last0, &last0_cert)),
        ],
        json!({
            "kind": "set_chain",
            "height": dec(4),
            "reason": text(&e),
            "cause": { "reason": cert_error_kind(&e), "cause": text(&e) },
        }),
    );
    // Epoch 1's last block certified by too little of epoch 1's power.
    let (keys1, set1) = set_of(1);
    let weak = sign(chain.header(8), &keys1, &[0, 1]);
    let e = weak.verify_header(chain.header(8), &set1).unwrap_err();
    case(
        "epoch 1's last block lacks a quorum",
        vec![replaced(
            "get_block",
            Some(8),
            &block_info(chain.header(8), &weak),
        )],
        json!({
            "kind": "set_chain",
            "height": dec(8),
            "reason": text(&e),
            "cause": { "reason": cert_error_kind(&e), "cause": text(&e) },
        }),
    );
    // The node hides epoch 1: it says epoch 2 follows epoch 0.
    let mut skip = validators_answer(7);
    skip["epoch"] = json!(0);
    case(
        "the node skips an epoch",
        vec![replaced("get_validators", Some(7), &skip)],
        json!({
            "kind": "set_chain",
            "height": dec(9),
            "reason": "epoch 2 follows epoch 0",
        }),
    );
    let mut rising = validators_answer(7);
    rising["epoch"] = json!(3);
    case(
        "the epochs rise towards the genesis",
        vec![replaced("get_validators", Some(7), &rising)],
        json!({
            "kind": "set_chain",
            "height": dec(7),
            "reason": "the epochs do not fall towards the genesis",
        }),
    );
    let mut impossible = validators_answer(9);
    impossible["epoch_start_height"] = json!(11);
    case(
        "the node gives an epoch start above the height",
        vec![replaced("get_validators", Some(9), &impossible)],
        json!({
            "kind": "set_chain",
            "height": dec(9),
            "reason": "the node gives an impossible epoch start",
        }),
    );
    let mut wrong_epoch = chain.header(4).clone();
    wrong_epoch.epoch = 1;
    let wrong_epoch_cert = sign(&wrong_epoch, &set_of(0).0, &[0, 1, 2]);
    case(
        "epoch 0's last block says another epoch",
        vec![replaced(
            "get_block",
            Some(4),
            &block_info(&wrong_epoch, &wrong_epoch_cert),
        )],
        json!({
            "kind": "set_chain",
            "height": dec(4),
            "reason": "the last block is of another chain or epoch",
        }),
    );
    Value::Array(out)
}

// ---------------------------------------------------------------------------

fn document() -> String {
    let (_dir, state, roots) = sample_state();
    let mut made = store_proofs(&state, &roots);
    made.extend(small_tree_proofs());
    let chain = chain(&roots);
    let doc = json!({
        "about": "Stele proof and light-client vectors for sdk/ts, written by node/state/tests/ts_proof_vectors.rs; do not edit by hand (STELE_WRITE_VECTORS=1 cargo test -p stele-state --test ts_proof_vectors)",
        "version": 1,
        "domains": {
            "state_key": hx(domain::STATE_KEY),
            "state_leaf": hx(domain::STATE_LEAF),
            "state_node": hx(domain::STATE_NODE),
        },
        "limits": {
            "proof_siblings_max": PROOF_SIBLINGS_MAX,
            "state_key_bytes_max": stele_types::proof::STATE_KEY_BYTES_MAX,
        },
        "state_keys": state_keys(),
        "accounts": accounts(),
        "roots": roots.iter().map(text).collect::<Vec<_>>(),
        "proofs": made.iter().map(made_json).collect::<Vec<_>>(),
        "forged": forged_proofs(&made, &roots),
        "invalid_encodings": invalid_encodings(&made),
        "light": light(&state, &chain),
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap();
    out.push('\n');
    out
}

#[test]
fn typescript_proof_vectors_match_the_rust_types() {
    stele_fixtures::check_ts_vectors(
        "proofs.json",
        &document(),
        "cargo test -p stele-state --test ts_proof_vectors",
    );
}
