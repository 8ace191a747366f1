/**
 * State keys and Merkle proofs of the state tree, as the node defines
 * them (`node/types/src/proof.rs`, ADR 0003): a proof that a key holds a
 * value, or no value, under a state root, checked with the same rules and
 * refused with the same messages as in Rust.
 *
 * The state is a sparse Merkle tree over the 256-bit hashes of the state
 * keys, defined as a binary tree whose single-leaf subtrees are collapsed:
 * an empty subtree is {@link Hash.ZERO}, a subtree of one entry is that
 * entry's leaf hash, and any other subtree is the node hash of its two
 * halves split on the next bit of the key hash. A proof holds one sibling
 * hash per binary level from the root down to the leaf it ends at (or to
 * the empty subtree where an absent key would be).
 *
 * Accounts live under {@link accountStateKey}, as an {@link Account}
 * record; a contract's storage under {@link storageStateKey}.
 *
 * @module
 */

import { Address } from './address.js';
import { DEFAULT_LIMITS, DecodeError, type Limits, type Reader, type Writer, decode, encode } from './codec.js';
import { Hash, keccak256, keccak256Parts } from './hash.js';
import { bytesEqual, toHex } from './hex.js';
import { JsonError, type JsonObject, type JsonValue, asArray, asHash, asObject } from './json.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * The domain tags of the state tree (`STELE/v1/...` and a NUL byte): of a
 * hashed state key, of a leaf, and of a binary inner node.
 */
export const STATE_DOMAIN = Object.freeze({
  KEY: ascii('STELE/v1/state-key\0'),
  LEAF: ascii('STELE/v1/state-leaf\0'),
  NODE: ascii('STELE/v1/state-node\0'),
});

/** Longest raw state key (a contract storage key, an address...). */
export const STATE_KEY_BYTES_MAX = 1024;

/** Most siblings in a proof: one per bit of a key hash. */
export const PROOF_SIBLINGS_MAX = 256;

/**
 * The part of the state a key belongs to. Every namespace is its own key
 * space: one raw key in two namespaces gives two unrelated tree keys.
 */
export type Namespace =
  /** Chain-level records kept by the node (the validator set...). */
  | { readonly kind: 'system' }
  /** Accounts: nonce, balance and code hash, keyed by address. */
  | { readonly kind: 'account' }
  /** Contract code, keyed by its hash. */
  | { readonly kind: 'code' }
  /** One contract's storage, keyed by the contract's own keys. */
  | { readonly kind: 'storage'; readonly contract: Address };

const NAMESPACE_TAGS = { system: 0, account: 1, code: 2, storage: 3 } as const;

/** A key of the state: a namespace and a raw key inside it. */
export interface StateKey {
  readonly namespace: Namespace;
  readonly key: Uint8Array;
}

/** The account record of `address`. */
export function accountStateKey(address: Address): StateKey {
  return { namespace: { kind: 'account' }, key: address.toBytes() };
}

/** Storage key `key` of `contract`. */
export function storageStateKey(contract: Address, key: Uint8Array): StateKey {
  return { namespace: { kind: 'storage', contract }, key: Uint8Array.from(key) };
}

/**
 * The code record named by a contract address (Rust's `StateKey::code`).
 * The executor keeps contract code under its hash instead (see
 * {@link codeHashStateKey}).
 */
export function codeStateKey(address: Address): StateKey {
  return { namespace: { kind: 'code' }, key: address.toBytes() };
}

/** Where contract code with hash `codeHash` is kept; contracts with the same code share it. */
export function codeHashStateKey(codeHash: Hash): StateKey {
  return { namespace: { kind: 'code' }, key: codeHash.toBytes() };
}

/** A chain-level record of the node. */
export function systemStateKey(key: Uint8Array): StateKey {
  return { namespace: { kind: 'system' }, key: Uint8Array.from(key) };
}

export function writeNamespace(w: Writer, ns: Namespace): void {
  w.u8(NAMESPACE_TAGS[ns.kind], 'namespace');
  if (ns.kind === 'storage') w.fixed(ns.contract.toBytes(), 20, 'address');
}

export function readNamespace(r: Reader): Namespace {
  const tag = r.u8('namespace');
  switch (tag) {
    case 0:
      return { kind: 'system' };
    case 1:
      return { kind: 'account' };
    case 2:
      return { kind: 'code' };
    case 3:
      return { kind: 'storage', contract: Address.fromBytes(r.take(20, 'address')) };
    default:
      throw new DecodeError({ kind: 'invalid_tag', what: 'namespace', tag });
  }
}

export function encodeNamespace(ns: Namespace): Uint8Array {
  return encode(ns, writeNamespace);
}

export function writeStateKey(w: Writer, k: StateKey): void {
  writeNamespace(w, k.namespace);
  w.bytes(k.key, STATE_KEY_BYTES_MAX, 'state key');
}

export function readStateKey(r: Reader): StateKey {
  return { namespace: readNamespace(r), key: r.bytes(STATE_KEY_BYTES_MAX, 'state key') };
}

/** The canonical encoding of a state key: its namespace, then the length-prefixed raw key. */
export function encodeStateKey(k: StateKey): Uint8Array {
  return encode(k, writeStateKey);
}

/** @throws {DecodeError} */
export function decodeStateKey(bytes: Uint8Array, limits?: Limits): StateKey {
  return decode(bytes, readStateKey, limits);
}

/**
 * The 256-bit tree key of `k`: Keccak-256 of the key tag, the namespace's
 * encoding, and the raw key (not length-prefixed: the namespace's length
 * is fixed by its tag).
 */
export function stateKeyHash(k: StateKey): Hash {
  return keccak256Parts([STATE_DOMAIN.KEY, encodeNamespace(k.namespace), k.key]);
}

/** The serde JSON form of a namespace: `{"kind": "storage", "contract": "0x..."}` or `{"kind": "account"}`. */
export function namespaceToJson(ns: Namespace): JsonObject {
  return ns.kind === 'storage' ? { kind: ns.kind, contract: ns.contract.toChecksum() } : { kind: ns.kind };
}

// ---------------------------------------------------------------------------
// Hashing.

/** Hash of a stored value, as its leaf commits to it. */
export function valueHash(value: Uint8Array): Hash {
  return keccak256(value);
}

/** Hash of a leaf holding a value with hash `valueHash` under tree key `key`. */
export function leafHash(key: Hash, valueHash: Hash): Hash {
  return keccak256Parts([STATE_DOMAIN.LEAF, key.toBytes(), valueHash.toBytes()]);
}

/** Hash of a binary inner node. */
export function nodeHash(left: Hash, right: Hash): Hash {
  return keccak256Parts([STATE_DOMAIN.NODE, left.toBytes(), right.toBytes()]);
}

/** Bit `i` of a tree key, the most significant bit of byte 0 first (bit 0 picks the root's half). */
export function keyBit(key: Hash, i: number): boolean {
  const bytes = key.toBytes();
  return ((bytes[i >> 3]! >> (7 - (i & 7))) & 1) === 1;
}

/** How many leading bits `a` and `b` share (256 when equal). */
export function commonPrefixBits(a: Hash, b: Hash): number {
  const x = a.toBytes();
  const y = b.toBytes();
  for (let i = 0; i < 32; i++) {
    const diff = x[i]! ^ y[i]!;
    if (diff !== 0) return i * 8 + Math.clz32(diff) - 24;
  }
  return 256;
}

// ---------------------------------------------------------------------------
// Proofs.

/** The leaf a proof ends at. */
export interface ProofLeaf {
  /** The queried key for an inclusion proof; another key on its path for a non-inclusion proof. */
  readonly key: Hash;
  /** Hash of the leaf's value. */
  readonly valueHash: Hash;
}

/**
 * A proof that a key has a value, or none, under a state root. The path
 * from the root follows the key's bits; `siblings[i]` is the hash of the
 * other child at depth `i`. The path ends at `leaf`, or at an empty
 * subtree when `leaf` is `null`.
 */
export interface SparseMerkleProof {
  readonly leaf: ProofLeaf | null;
  readonly siblings: readonly Hash[];
}

const readHash = (r: Reader): Hash => Hash.fromBytes(r.take(32, 'Hash'));

export function writeProof(w: Writer, p: SparseMerkleProof): void {
  w.option(p.leaf, (w, leaf) => {
    w.fixed(leaf.key.toBytes(), 32, 'leaf key');
    w.fixed(leaf.valueHash.toBytes(), 32, 'leaf value hash');
  });
  w.seq(p.siblings, PROOF_SIBLINGS_MAX, 'proof siblings', (w, h) => {
    w.fixed(h.toBytes(), 32, 'sibling');
  });
}

export function readProof(r: Reader): SparseMerkleProof {
  return {
    leaf: r.option('proof leaf', (r) => ({ key: readHash(r), valueHash: readHash(r) })),
    siblings: r.seq(PROOF_SIBLINGS_MAX, 32, 'proof siblings', readHash),
  };
}

/** The canonical encoding: an option tag and the leaf, then the siblings with a `u32` count. */
export function encodeProof(p: SparseMerkleProof): Uint8Array {
  return encode(p, writeProof);
}

/** @throws {DecodeError} with Rust's message for the same bytes. */
export function decodeProof(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): SparseMerkleProof {
  return decode(bytes, readProof, limits);
}

function onlyKeys(o: JsonObject, keys: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new JsonError(`${path}: unknown field ${JSON.stringify(k)}`);
  }
}

/**
 * A proof from its serde JSON form, `{"leaf": {"key", "value_hash"} |
 * null, "siblings": [...]}`; unknown fields are refused, as in Rust.
 *
 * @throws {JsonError}
 */
export function proofFromJson(v: JsonValue, path = 'proof'): SparseMerkleProof {
  const o = asObject(v, path);
  onlyKeys(o, ['leaf', 'siblings'], path);
  if (!('leaf' in o)) throw new JsonError(`${path}: missing field "leaf"`);
  const leafJson = o['leaf'];
  let leaf: ProofLeaf | null = null;
  if (leafJson !== null && leafJson !== undefined) {
    const l = asObject(leafJson, `${path}.leaf`);
    onlyKeys(l, ['key', 'value_hash'], `${path}.leaf`);
    leaf = { key: asHash(l['key'], `${path}.leaf.key`), valueHash: asHash(l['value_hash'], `${path}.leaf.value_hash`) };
  }
  const siblings = asArray(o['siblings'], `${path}.siblings`).map((x, i) => asHash(x, `${path}.siblings[${i}]`));
  return { leaf, siblings };
}

export function proofToJson(p: SparseMerkleProof): JsonObject {
  return {
    leaf: p.leaf === null ? null : { key: p.leaf.key.toString(), value_hash: p.leaf.valueHash.toString() },
    siblings: p.siblings.map((h) => h.toString()),
  };
}

/** Why a proof does not show what it was asked to show; one case per Rust `ProofError`. */
export type ProofErrorDetail =
  | { readonly kind: 'too_many_siblings'; readonly len: number; readonly max: number }
  | { readonly kind: 'wrong_leaf_key'; readonly key: Hash; readonly leafKey: Hash }
  | { readonly kind: 'wrong_value'; readonly key: Hash }
  | { readonly kind: 'key_present'; readonly key: Hash }
  | {
      readonly kind: 'leaf_off_path';
      readonly key: Hash;
      readonly leafKey: Hash;
      readonly sharedBits: number;
      readonly depth: number;
    }
  | { readonly kind: 'root_mismatch'; readonly expected: Hash; readonly computed: Hash };

function describeProofError(d: ProofErrorDetail): string {
  switch (d.kind) {
    case 'too_many_siblings':
      return `proof has ${d.len} siblings, over the maximum of ${d.max}`;
    case 'wrong_leaf_key':
      return `proof leaf is for key ${d.leafKey.toString()}, not the queried key ${d.key.toString()}`;
    case 'wrong_value':
      return `proof leaf for key ${d.key.toString()} holds a different value`;
    case 'key_present':
      return `proof shows key ${d.key.toString()} is present, but absence was claimed`;
    case 'leaf_off_path':
      return (
        `proof leaf ${d.leafKey.toString()} shares only ${d.sharedBits} bits with ` +
        `${d.key.toString()}, fewer than its depth ${d.depth}`
      );
    case 'root_mismatch':
      return `proof computes root ${d.computed.toString()}, expected ${d.expected.toString()}`;
  }
}

/** A proof that does not hold. `message` is the Rust node's message. */
export class ProofError extends Error {
  override readonly name = 'ProofError';
  readonly detail: ProofErrorDetail;

  constructor(detail: ProofErrorDetail) {
    super(describeProofError(detail));
    this.detail = detail;
  }
}

/**
 * The root `proof` implies along the path of tree key `key`: its leaf (or
 * the empty subtree) hashed up through the siblings, each on the side the
 * key's bit at that depth does not take.
 */
export function proofRoot(proof: SparseMerkleProof, key: Hash): Hash {
  let current = proof.leaf === null ? Hash.ZERO : leafHash(proof.leaf.key, proof.leaf.valueHash);
  for (let depth = proof.siblings.length - 1; depth >= 0; depth--) {
    const sibling = proof.siblings[depth]!;
    current = keyBit(key, depth) ? nodeHash(sibling, current) : nodeHash(current, sibling);
  }
  return current;
}

/**
 * Checks that under `root`, tree key `key` holds `value` (`null`: is
 * absent), with Rust's checks in Rust's order: the sibling count; for a
 * value, a leaf of that key with that value's hash; for an absence, no
 * leaf of that key and any leaf on the key's path; then the root.
 *
 * @throws {ProofError}
 */
export function verifyProof(proof: SparseMerkleProof, root: Hash, key: Hash, value: Uint8Array | null): void {
  const depth = proof.siblings.length;
  if (depth > PROOF_SIBLINGS_MAX) {
    throw new ProofError({ kind: 'too_many_siblings', len: depth, max: PROOF_SIBLINGS_MAX });
  }
  const leaf = proof.leaf;
  if (leaf !== null && value !== null) {
    if (!leaf.key.equals(key)) throw new ProofError({ kind: 'wrong_leaf_key', key, leafKey: leaf.key });
    if (!leaf.valueHash.equals(valueHash(value))) throw new ProofError({ kind: 'wrong_value', key });
  } else if (leaf !== null) {
    if (leaf.key.equals(key)) throw new ProofError({ kind: 'key_present', key });
    // The other leaf must sit on the queried key's path, or the proof says
    // nothing about where the queried key would be.
    const sharedBits = commonPrefixBits(leaf.key, key);
    if (sharedBits < depth) {
      throw new ProofError({ kind: 'leaf_off_path', key, leafKey: leaf.key, sharedBits, depth });
    }
  } else if (value !== null) {
    throw new ProofError({ kind: 'wrong_value', key });
  }
  const computed = proofRoot(proof, key);
  if (!computed.equals(root)) throw new ProofError({ kind: 'root_mismatch', expected: root, computed });
}

/** Checks that `stateKey` holds `value` (`null`: is absent) under `root`. @throws {ProofError} */
export function verifyStateProof(
  proof: SparseMerkleProof,
  root: Hash,
  stateKey: StateKey,
  value: Uint8Array | null,
): void {
  verifyProof(proof, root, stateKeyHash(stateKey), value);
}

/** Checks storage key `key` of `contract` holds `value` (`null`: is absent) under `root`. @throws {ProofError} */
export function verifyStorageValue(
  proof: SparseMerkleProof,
  root: Hash,
  contract: Address,
  key: Uint8Array,
  value: Uint8Array | null,
): void {
  verifyProof(proof, root, stateKeyHash(storageStateKey(contract, key)), value);
}

// ---------------------------------------------------------------------------
// Account records.

/** An account record (`stele_exec::account::Account`): externally owned, or a contract. */
export interface Account {
  /** Transactions sent (externally owned) or contracts created (contract). */
  readonly nonce: bigint;
  readonly balance: bigint;
  /** Keccak-256 of the contract's code; `null` for a plain account. */
  readonly codeHash: Hash | null;
}

export function writeAccount(w: Writer, a: Account): void {
  w.u64(a.nonce, 'nonce');
  w.u128(a.balance, 'balance');
  w.option(a.codeHash, (w, h) => w.fixed(h.toBytes(), 32, 'code hash'));
}

export function readAccount(r: Reader): Account {
  return {
    nonce: r.u64('nonce'),
    balance: r.u128('balance'),
    codeHash: r.option('code hash', readHash),
  };
}

/** The record's encoding: nonce (`u64`), balance (`u128`), then the optional code hash. */
export function encodeAccount(a: Account): Uint8Array {
  return encode(a, writeAccount);
}

/** @throws {DecodeError} */
export function decodeAccount(bytes: Uint8Array, limits?: Limits): Account {
  return decode(bytes, readAccount, limits);
}

/**
 * Checks that under `root` the account at `address` is `account`
 * (`null`: there is none).
 *
 * @throws {ProofError}
 */
export function verifyAccountProof(
  proof: SparseMerkleProof,
  root: Hash,
  address: Address,
  account: Account | null,
): void {
  verifyProof(proof, root, stateKeyHash(accountStateKey(address)), account === null ? null : encodeAccount(account));
}

/** Whether two state keys are the same key. */
export function stateKeyEquals(a: StateKey, b: StateKey): boolean {
  return bytesEqual(encodeStateKey(a), encodeStateKey(b));
}

/** A readable form of a state key, for messages: `storage(0x...)/0x...`. */
export function describeStateKey(k: StateKey): string {
  const ns = k.namespace.kind === 'storage' ? `storage(${k.namespace.contract.toChecksum()})` : k.namespace.kind;
  return `${ns}/${toHex(k.key)}`;
}
