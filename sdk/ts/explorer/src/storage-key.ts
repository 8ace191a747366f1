/**
 * Storage keys of contracts written with the Rust SDK (docs/contracts.md,
 * "Storage"): a `#[contract]` field lives at the prefix
 * `[len(name)] ++ name`; an `Item<T>` at the prefix itself, a `Map<K, V>`
 * entry at `prefix ++ StorageKey(k)`, where `StorageKey` is the
 * order-preserving encoding: unsigned integers big-endian, signed ones
 * big-endian with the sign bit flipped, `bool` one byte, `Address` its 20
 * bytes, `String` and `Vec<u8>` a big-endian `u32` length then the bytes,
 * tuples their parts in order.
 *
 * @module
 */

import { Address, concatBytes, fromHex } from './sdk.js';

/** The key types the form offers. */
export const KEY_TYPES = ['address', 'u8', 'u16', 'u32', 'u64', 'u128', 'i32', 'i64', 'bool', 'string', 'bytes'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

const utf8 = new TextEncoder();

/** The prefix of the field called `name`. */
export function fieldPrefix(name: string): Uint8Array {
  const bytes = utf8.encode(name);
  if (bytes.length === 0 || bytes.length > 255) throw new Error('a field name is 1 to 255 bytes');
  return concatBytes(Uint8Array.of(bytes.length), bytes);
}

function bigEndian(v: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function integer(text: string, what: string): bigint {
  const t = text.trim();
  if (!/^-?[0-9]+$/.test(t)) throw new Error(`${what}: not an integer: ${JSON.stringify(text)}`);
  return BigInt(t);
}

/** One part of a map key, encoded as `StorageKey`. */
export function encodeKeyPart(type: KeyType, text: string): Uint8Array {
  const t = text.trim();
  switch (type) {
    case 'address':
      return Address.parse(t).toBytes();
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u64':
    case 'u128': {
      const bits = Number(type.slice(1));
      const n = integer(t, type);
      if (n < 0n || n >= 1n << BigInt(bits)) throw new Error(`${type}: out of range: ${t}`);
      return bigEndian(n, bits / 8);
    }
    case 'i32':
    case 'i64': {
      const bits = BigInt(type.slice(1));
      const n = integer(t, type);
      const half = 1n << (bits - 1n);
      if (n < -half || n >= half) throw new Error(`${type}: out of range: ${t}`);
      // Two's complement with the sign bit flipped: n + 2^(bits-1).
      return bigEndian(n + half, Number(bits) / 8);
    }
    case 'bool':
      if (t !== 'true' && t !== 'false') throw new Error(`bool: expected true or false, got ${JSON.stringify(text)}`);
      return Uint8Array.of(t === 'true' ? 1 : 0);
    case 'string': {
      const b = utf8.encode(text);
      return concatBytes(bigEndian(BigInt(b.length), 4), b);
    }
    case 'bytes': {
      const b = fromHex(t);
      return concatBytes(bigEndian(BigInt(b.length), 4), b);
    }
  }
}

/**
 * The key of a map entry: `prefix ++ parts`, where `types` and `values`
 * list a tuple key's parts (one each for a plain key).
 */
export function mapKey(field: string, types: readonly KeyType[], values: readonly string[]): Uint8Array {
  if (types.length !== values.length) throw new Error(`the key has ${types.length} parts, ${values.length} values given`);
  return concatBytes(fieldPrefix(field), ...types.map((t, i) => encodeKeyPart(t, values[i]!)));
}
