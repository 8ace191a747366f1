/**
 * 20-byte account and contract addresses, written with the EIP-55 mixed-case
 * checksum as the Rust node writes them.
 *
 * @module
 */

import { u64Bytes } from './codec.js';
import { DOMAIN, keccak256, keccak256Parts } from './hash.js';
import { bytesEqual, checkLength, compareBytes, toHex } from './hex.js';

/** Why an address string was refused. The messages match the Rust node's. */
export class AddressError extends Error {
  override readonly name = 'AddressError';
  /** `format`: not `0x` + 40 hex digits; `checksum`: mixed case that is not EIP-55. */
  readonly kind: 'format' | 'checksum';
  /** For a checksum mismatch, the correctly checksummed form. */
  readonly expected: string | null;

  constructor(kind: 'format' | 'checksum', expected: string | null = null) {
    super(
      kind === 'format'
        ? 'address must be 0x followed by 40 hex digits'
        : `address checksum mismatch (EIP-55): expected ${expected ?? ''}`,
    );
    this.kind = kind;
    this.expected = expected;
  }
}

const HEX_DIGITS = /^[0-9a-fA-F]{40}$/;

/**
 * An account or contract address: the last 20 bytes of the Keccak-256 of
 * an account's uncompressed public key (without its `0x04` prefix), or of
 * a contract's creator and creation nonce. Immutable.
 */
export class Address {
  /** The zero address, which no key has. */
  static readonly ZERO: Address = new Address(new Uint8Array(20));

  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** An address from its 20 bytes (copied). */
  static fromBytes(bytes: Uint8Array): Address {
    checkLength(bytes, 20, 'an address');
    return new Address(Uint8Array.from(bytes));
  }

  /**
   * Parses `0x` + 40 hex digits. All-lowercase or all-uppercase digits are
   * taken as unchecksummed; mixed case must be the EIP-55 checksum.
   *
   * @throws {AddressError}
   */
  static parse(text: string): Address {
    if (typeof text !== 'string' || !text.startsWith('0x')) throw new AddressError('format');
    const digits = text.slice(2);
    if (!HEX_DIGITS.test(digits)) throw new AddressError('format');
    const bytes = new Uint8Array(20);
    for (let i = 0; i < 20; i++) bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
    const address = new Address(bytes);
    if (/[a-f]/.test(digits) && /[A-F]/.test(digits)) {
      const expected = address.toChecksum();
      if (expected !== text) throw new AddressError('checksum', expected);
    }
    return address;
  }

  /**
   * The address of the account whose uncompressed SEC1 public key (65
   * bytes, starting `0x04`) is `uncompressed`.
   */
  static fromUncompressedPublicKey(uncompressed: Uint8Array): Address {
    checkLength(uncompressed, 65, 'an uncompressed public key');
    if (uncompressed[0] !== 0x04) throw new RangeError('an uncompressed public key starts with 0x04');
    return new Address(keccak256(uncompressed.subarray(1)).toBytes().slice(12));
  }

  /** The address of the contract `creator` creates with its `nonce`. */
  static contract(creator: Address, nonce: bigint): Address {
    const digest = keccak256Parts([DOMAIN.CONTRACT_ADDRESS, creator.#bytes, u64Bytes(nonce)]);
    return new Address(digest.toBytes().slice(12));
  }

  /** A copy of the 20 bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** `0x` and EIP-55 mixed-case checksummed hex. */
  toChecksum(): string {
    const lower = toHex(this.#bytes).slice(2);
    const digest = keccak256(Uint8Array.from(lower, (c) => c.charCodeAt(0))).toBytes();
    let out = '0x';
    for (let i = 0; i < lower.length; i++) {
      const c = lower[i]!;
      const nibble = (digest[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
      out += c >= 'a' && nibble >= 8 ? c.toUpperCase() : c;
    }
    return out;
  }

  /** The lowercase hex form. */
  toHex(): string {
    return toHex(this.#bytes);
  }

  /** The EIP-55 form, as Rust displays an address. */
  toString(): string {
    return this.toChecksum();
  }

  /** The JSON form: the EIP-55 string. */
  toJSON(): string {
    return this.toChecksum();
  }

  equals(other: Address): boolean {
    return bytesEqual(this.#bytes, other.#bytes);
  }

  /** Byte order, as validator sets are sorted. */
  compare(other: Address): number {
    return compareBytes(this.#bytes, other.#bytes);
  }
}
