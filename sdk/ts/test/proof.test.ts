// Checks every vector of fixtures/proofs.json that node/state/tests/
// ts_proof_vectors.rs wrote from the real state store: state keys and
// their tree keys, account records, proofs of present and absent keys
// (verified, re-encoded and decoded byte for byte), forged proofs refused
// with Rust's error, and encodings refused with Rust's message.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Address, DecodeError, Hash, JsonError, fromHex, parseJson, toHex } from '@stele/client';

// src/index.ts does not export proof.ts yet: load it from the build beside
// the compiled tests (dist/), typed by its declarations.
const proof = (await import(new URL('../proof.js', import.meta.url).href)) as typeof import('../dist/proof.js');

type Hex = string;
type Dec = string;
type NamespaceJson = { kind: 'system' | 'account' | 'code' } | { kind: 'storage'; contract: string };

interface ProofFields {
  json: string;
  encoding: Hex;
  leaf: { key: Hex; value_hash: Hex } | null;
  siblings: number;
}

interface Vectors {
  version: number;
  domains: { state_key: Hex; state_leaf: Hex; state_node: Hex };
  limits: { proof_siblings_max: number; state_key_bytes_max: number };
  state_keys: {
    namespace: NamespaceJson;
    key: Hex;
    namespace_encoding: Hex;
    encoding: Hex;
    hash: Hex;
    json: string;
  }[];
  accounts: { name: string; nonce: Dec; balance: Dec; code_hash: Hex | null; encoding: Hex }[];
  roots: Hex[];
  proofs: {
    name: string;
    tree: 'sample' | 'small';
    version: Dec;
    root: Hex;
    state_key: { namespace: NamespaceJson; key: Hex };
    key_hash: Hex;
    value: Hex | null;
    proof: ProofFields;
    account?: boolean;
  }[];
  forged: {
    name: string;
    root: Hex;
    key_hash: Hex;
    value: Hex | null;
    proof: ProofFields;
    kind: string;
    error: string;
  }[];
  invalid_encodings: { type: 'proof' | 'state_key'; name: string; bytes: Hex; error: string }[];
}

const v = JSON.parse(readFileSync(new URL('../../fixtures/proofs.json', import.meta.url), 'utf8')) as Vectors;

function namespaceFromJson(n: NamespaceJson): import('../dist/proof.js').Namespace {
  return n.kind === 'storage' ? { kind: 'storage', contract: Address.parse(n.contract) } : { kind: n.kind };
}

const stateKey = (k: { namespace: NamespaceJson; key: Hex }): import('../dist/proof.js').StateKey => ({
  namespace: namespaceFromJson(k.namespace),
  key: fromHex(k.key),
});

const proofOf = (p: ProofFields): import('../dist/proof.js').SparseMerkleProof => proof.proofFromJson(parseJson(p.json));

/** The proof as plain strings, so two proofs compare by value. */
const plainProof = (p: import('../dist/proof.js').SparseMerkleProof): unknown => ({
  leaf: p.leaf === null ? null : [p.leaf.key.toString(), p.leaf.valueHash.toString()],
  siblings: p.siblings.map((h) => h.toString()),
});

function throwsWith(run: () => unknown, type: new (...args: never[]) => Error, message: string): Error {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof type, `expected a ${type.name} "${message}", got ${String(caught)}`);
  assert.equal(caught.message, message);
  return caught;
}

test('the proof vectors are version 1 and cover every case', () => {
  assert.equal(v.version, 1);
  assert.ok(v.state_keys.length >= 10);
  assert.ok(v.proofs.length >= 20);
  assert.ok(v.forged.length >= 20);
  assert.ok(v.invalid_encodings.length >= 10);
  const kinds = new Set(v.forged.map((f) => f.kind));
  for (const k of ['too_many_siblings', 'wrong_leaf_key', 'wrong_value', 'key_present', 'leaf_off_path', 'root_mismatch']) {
    assert.ok(kinds.has(k), `no forged proof refused as ${k}`);
  }
  // Present keys, absent keys ending at another leaf, and at an empty subtree.
  assert.ok(v.proofs.some((p) => p.value !== null));
  assert.ok(v.proofs.some((p) => p.value === null && p.proof.leaf !== null));
  assert.ok(v.proofs.some((p) => p.value === null && p.proof.leaf === null && p.proof.siblings > 0));
  assert.ok(v.proofs.some((p) => p.proof.siblings === 0));
});

test('domain tags and limits equal Rust', () => {
  assert.equal(toHex(proof.STATE_DOMAIN.KEY), v.domains.state_key);
  assert.equal(toHex(proof.STATE_DOMAIN.LEAF), v.domains.state_leaf);
  assert.equal(toHex(proof.STATE_DOMAIN.NODE), v.domains.state_node);
  assert.equal(proof.PROOF_SIBLINGS_MAX, v.limits.proof_siblings_max);
  assert.equal(proof.STATE_KEY_BYTES_MAX, v.limits.state_key_bytes_max);
});

test(`state keys: ${v.state_keys.length} vectors`, (t) => {
  for (const x of v.state_keys) {
    const k = stateKey(x);
    assert.equal(toHex(proof.encodeNamespace(k.namespace)), x.namespace_encoding);
    assert.equal(toHex(proof.encodeStateKey(k)), x.encoding);
    assert.equal(proof.stateKeyHash(k).toString(), x.hash);
    const back = proof.decodeStateKey(fromHex(x.encoding));
    assert.ok(proof.stateKeyEquals(back, k));
    assert.equal(toHex(back.key), x.key);
    // The serde JSON the node uses.
    const json = parseJson(x.json) as { namespace: NamespaceJson; key: Hex };
    assert.deepEqual(proof.namespaceToJson(k.namespace), json.namespace);
    assert.equal(json.key, x.key);
  }
  // The constructors build the keys the node builds.
  const byHash = new Set(v.state_keys.map((x) => x.hash));
  for (const x of v.state_keys) {
    const k = stateKey(x);
    const ns = k.namespace;
    let built: import('../dist/proof.js').StateKey;
    if (ns.kind === 'storage') built = proof.storageStateKey(ns.contract, k.key);
    else if (ns.kind === 'system') built = proof.systemStateKey(k.key);
    else if (ns.kind === 'account' && k.key.length === 20) built = proof.accountStateKey(Address.fromBytes(k.key));
    else if (ns.kind === 'code' && k.key.length === 20) built = proof.codeStateKey(Address.fromBytes(k.key));
    else if (ns.kind === 'code' && k.key.length === 32) built = proof.codeHashStateKey(Hash.fromBytes(k.key));
    else continue;
    assert.ok(byHash.has(proof.stateKeyHash(built).toString()));
  }
  t.diagnostic(`matched ${v.state_keys.length} state keys`);
});

test(`account records: ${v.accounts.length} vectors`, (t) => {
  for (const x of v.accounts) {
    const account = {
      nonce: BigInt(x.nonce),
      balance: BigInt(x.balance),
      codeHash: x.code_hash === null ? null : Hash.parse(x.code_hash),
    };
    assert.equal(toHex(proof.encodeAccount(account)), x.encoding, x.name);
    const back = proof.decodeAccount(fromHex(x.encoding));
    assert.equal(back.nonce, account.nonce);
    assert.equal(back.balance, account.balance);
    assert.equal(back.codeHash?.toString() ?? null, x.code_hash);
  }
  t.diagnostic(`matched ${v.accounts.length} account records`);
});

test(`proofs from the store: ${v.proofs.length} vectors verify`, (t) => {
  let present = 0;
  let absent = 0;
  let accounts = 0;
  for (const x of v.proofs) {
    const k = stateKey(x.state_key);
    const keyHash = Hash.parse(x.key_hash);
    assert.equal(proof.stateKeyHash(k).toString(), x.key_hash, x.name);
    const p = proofOf(x.proof);
    assert.equal(p.siblings.length, x.proof.siblings, x.name);
    assert.equal(toHex(proof.encodeProof(p)), x.proof.encoding, x.name);
    assert.deepEqual(plainProof(proof.decodeProof(fromHex(x.proof.encoding))), plainProof(p), x.name);
    assert.deepEqual(proof.proofToJson(p), parseJson(x.proof.json), x.name);
    const root = Hash.parse(x.root);
    if (x.tree === 'sample') assert.equal(root.toString(), v.roots[Number(x.version)], x.name);
    else if (x.version === '0') assert.ok(root.equals(Hash.ZERO), 'the empty tree has root zero');
    const value = x.value === null ? null : fromHex(x.value);
    proof.verifyProof(p, root, keyHash, value);
    proof.verifyStateProof(p, root, k, value);
    assert.equal(proof.proofRoot(p, keyHash).toString(), x.root, x.name);
    if (k.namespace.kind === 'storage') {
      proof.verifyStorageValue(p, root, k.namespace.contract, k.key, value);
    }
    if (x.account === true) {
      const address = Address.fromBytes(k.key);
      const account = value === null ? null : proof.decodeAccount(value);
      proof.verifyAccountProof(p, root, address, account);
      if (account !== null) {
        assert.throws(
          () => proof.verifyAccountProof(p, root, address, { ...account, balance: account.balance ^ 1n }),
          proof.ProofError,
        );
      }
      accounts++;
    }
    if (value === null) absent++;
    else present++;
  }
  t.diagnostic(`verified ${present} proofs of present keys and ${absent} of absent keys (${accounts} accounts)`);
});

test(`forged proofs: ${v.forged.length} vectors refused with Rust's error`, (t) => {
  const kinds = new Map<string, number>();
  for (const x of v.forged) {
    const p = proofOf(x.proof);
    const value = x.value === null ? null : fromHex(x.value);
    const e = throwsWith(
      () => proof.verifyProof(p, Hash.parse(x.root), Hash.parse(x.key_hash), value),
      proof.ProofError,
      x.error,
    ) as InstanceType<typeof proof.ProofError>;
    assert.equal(e.detail.kind, x.kind, x.name);
    kinds.set(x.kind, (kinds.get(x.kind) ?? 0) + 1);
  }
  t.diagnostic(
    `refused ${v.forged.length} forged proofs: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`,
  );
});

test(`invalid encodings: ${v.invalid_encodings.length} vectors refused with Rust's message`, (t) => {
  for (const x of v.invalid_encodings) {
    const bytes = fromHex(x.bytes);
    const run = x.type === 'proof' ? () => proof.decodeProof(bytes) : () => proof.decodeStateKey(bytes);
    throwsWith(run, DecodeError, x.error);
  }
  t.diagnostic(`refused ${v.invalid_encodings.length} encodings`);
});

test('proof JSON is read as strictly as serde reads it', () => {
  const good = v.proofs[0]!.proof.json;
  const o = parseJson(good) as Record<string, unknown>;
  assert.throws(() => proof.proofFromJson(parseJson(JSON.stringify({ ...o, extra: 1 }))), JsonError);
  assert.throws(() => proof.proofFromJson(parseJson(JSON.stringify({ siblings: [] }))), JsonError);
  assert.throws(
    () => proof.proofFromJson(parseJson(JSON.stringify({ leaf: { key: Hash.ZERO.toString() }, siblings: [] }))),
    JsonError,
  );
  assert.throws(() => proof.proofFromJson(parseJson('{"leaf":null,"siblings":["0x00"]}')), JsonError);
  // Encoding refuses what decoding would refuse.
  const tooMany = { leaf: null, siblings: Array.from({ length: 257 }, () => Hash.ZERO) };
  assert.throws(() => proof.encodeProof(tooMany));
});

test('bits and prefixes follow the key hash from its first byte\'s top bit', () => {
  const k = Hash.parse(`0x80${'00'.repeat(30)}01`);
  assert.equal(proof.keyBit(k, 0), true);
  assert.equal(proof.keyBit(k, 1), false);
  assert.equal(proof.keyBit(k, 255), true);
  assert.equal(proof.commonPrefixBits(k, k), 256);
  assert.equal(proof.commonPrefixBits(k, Hash.ZERO), 0);
  assert.equal(proof.commonPrefixBits(Hash.parse(`0x${'00'.repeat(31)}01`), Hash.ZERO), 255);
  assert.equal(proof.commonPrefixBits(Hash.parse(`0x0010${'00'.repeat(30)}`), Hash.ZERO), 11);
});
