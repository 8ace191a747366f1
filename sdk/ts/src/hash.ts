/**
 * Keccak-256, the one hash function of the Stele protocol, the 32-byte
 * {@link Hash}, the domain tags every hashed or signed preimage starts with,
 * and the list Merkle root of block transactions and receipts.
 *
 * @module
 */

import { keccak_256 } from '@noble/hashes/sha3.js';

import { bytesEqual, checkLength, fromHex, toHex } from './hex.js';

/** A 32-byte Keccak-256 digest. Immutable. */
export class Hash {
  /** The all-zero hash: the genesis block's parent, an empty list's root. */
  static readonly ZERO: Hash = new Hash(new Uint8Array(32));

  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** A hash from its 32 bytes (copied). */
  static fromBytes(bytes: Uint8Array): Hash {
    checkLength(bytes, 32, 'a hash');
    return new Hash(Uint8Array.from(bytes));
  }

  /**
   * Parses `0x` + 64 hex digits.
   * @throws {HexError} on anything else.
   */
  static parse(text: string): Hash {
    return new Hash(fromHex(text, 32));
  }

  /** A copy of the 32 bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** `0x` + 64 lowercase hex digits, as Rust prints a hash. */
  toString(): string {
    return toHex(this.#bytes);
  }

  /** The JSON form: the same hex string. */
  toJSON(): string {
    return this.toString();
  }

  equals(other: Hash): boolean {
    return bytesEqual(this.#bytes, other.#bytes);
  }
}

/** Keccak-256 of `data`. */
export function keccak256(data: Uint8Array): Hash {
  return Hash.fromBytes(keccak_256(data));
}

/** Keccak-256 of the concatenation of `parts`, without copying them. */
export function keccak256Parts(parts: readonly Uint8Array[]): Hash {
  const h = keccak_256.create();
  for (const part of parts) h.update(part);
  return Hash.fromBytes(h.digest());
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * Domain tags (`STELE/v1/...` and a NUL byte): every hashed or signed
 * preimage starts with one, so no hash or signature can be taken for
 * another kind of object.
 */
export const DOMAIN = Object.freeze({
  TX: ascii('STELE/v1/tx\0'),
  BLOCK_HEADER: ascii('STELE/v1/block-header\0'),
  RECEIPT: ascii('STELE/v1/receipt\0'),
  LIST_LEAF: ascii('STELE/v1/list-leaf\0'),
  LIST_NODE: ascii('STELE/v1/list-node\0'),
  CONTRACT_ADDRESS: ascii('STELE/v1/contract-address\0'),
  VALIDATOR_SET: ascii('STELE/v1/validator-set\0'),
  VALIDATOR_CHANGE: ascii('STELE/v1/validator-change\0'),
  CONSENSUS: ascii('STELE/v1/consensus\0'),
});

/**
 * Root of the binary Merkle tree over an ordered list of hashes (a block's
 * transaction or receipt hashes): leaves and inner nodes carry their own
 * domain tags, an odd node moves up a level unchanged, and the empty list
 * has root {@link Hash.ZERO}.
 */
export function listRoot(items: readonly Hash[]): Hash {
  if (items.length === 0) return Hash.ZERO;
  let level = items.map((h) => keccak256Parts([DOMAIN.LIST_LEAF, h.toBytes()]));
  while (level.length > 1) {
    const next: Hash[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i]!;
      const right = level[i + 1];
      next.push(
        right === undefined
          ? left
          : keccak256Parts([DOMAIN.LIST_NODE, left.toBytes(), right.toBytes()]),
      );
    }
    level = next;
  }
  return level[0]!;
}
