/**
 * secp256k1 keys and recoverable signatures, with the rules of the Rust
 * node (`node/types/src/crypto.rs`). The curve arithmetic is
 * `@noble/curves`.
 *
 * A {@link Signature} is 65 bytes `r || s || v`: `r` and `s` big-endian,
 * `s` in the lower half of the group order (the high-S twin of a signature
 * is refused), and `v` the recovery id, 0 or 1. Signing is deterministic
 * (RFC 6979), so a key signs a digest to the same bytes as the node would.
 *
 * @module
 */

import { secp256k1 } from '@noble/curves/secp256k1.js';

import { Address } from './address.js';
import { Hash } from './hash.js';
import { bytesEqual, checkLength, compareBytes, concatBytes, fromHex, toHex } from './hex.js';

const ORDER: bigint = secp256k1.Point.Fn.ORDER;
const HALF_ORDER: bigint = ORDER >> 1n;

/** The kinds of {@link CryptoError}, one per Rust `CryptoError`. */
export type CryptoErrorKind =
  | 'invalid_secret_key'
  | 'invalid_public_key'
  | 'malformed_signature'
  | 'high_s'
  | 'invalid_recovery_id'
  | 'bad_signature';

/** Why a key or signature was refused. The messages match the Rust node's. */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  readonly kind: CryptoErrorKind;
  /** The refused `v` byte, for `invalid_recovery_id`. */
  readonly recoveryId: number | null;

  constructor(kind: CryptoErrorKind, recoveryId: number | null = null) {
    super(cryptoMessage(kind, recoveryId));
    this.kind = kind;
    this.recoveryId = recoveryId;
  }
}

function cryptoMessage(kind: CryptoErrorKind, v: number | null): string {
  switch (kind) {
    case 'invalid_secret_key':
      return 'invalid secret key';
    case 'invalid_public_key':
      return 'invalid public key';
    case 'malformed_signature':
      return 'malformed signature';
    case 'high_s':
      return 'signature s value is in the upper half of the curve order (high-S)';
    case 'invalid_recovery_id':
      return `invalid recovery id ${v ?? ''}`;
    case 'bad_signature':
      return 'signature does not verify';
  }
}

function bigFromBytes(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(toHex(bytes));
}

/** A 65-byte recoverable ECDSA signature `r || s || v`. Immutable. */
export class Signature {
  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** A signature from its 65 bytes (copied; not checked until used). */
  static fromBytes(bytes: Uint8Array): Signature {
    checkLength(bytes, 65, 'a signature');
    return new Signature(Uint8Array.from(bytes));
  }

  /** Parses `0x` + 130 hex digits. @throws {HexError} */
  static parse(text: string): Signature {
    return new Signature(fromHex(text, 65));
  }

  /** A copy of the 65 bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** The recovery id byte `v`. */
  get v(): number {
    return this.#bytes[64]!;
  }

  toString(): string {
    return toHex(this.#bytes);
  }

  toJSON(): string {
    return this.toString();
  }

  equals(other: Signature): boolean {
    return bytesEqual(this.#bytes, other.#bytes);
  }

  /**
   * The checks Rust makes before any verification or recovery, in its
   * order: `r` and `s` in `1..n-1`, then `s` low, then `v` 0 or 1.
   */
  parts(): { r: bigint; s: bigint; v: 0 | 1 } {
    const r = bigFromBytes(this.#bytes.subarray(0, 32));
    const s = bigFromBytes(this.#bytes.subarray(32, 64));
    if (r === 0n || r >= ORDER || s === 0n || s >= ORDER) {
      throw new CryptoError('malformed_signature');
    }
    if (s > HALF_ORDER) throw new CryptoError('high_s');
    const v = this.v;
    if (v !== 0 && v !== 1) throw new CryptoError('invalid_recovery_id', v);
    return { r, s, v };
  }

  /**
   * The public key that made this signature over `digest`, after the form
   * checks of {@link Signature.parts}.
   *
   * @throws {CryptoError}
   */
  recoverPublicKey(digest: Hash): PublicKey {
    return PublicKey.fromBytes(this.#recoverPoint(digest).toBytes(true));
  }

  /** The address of the key that made this signature over `digest`. @throws {CryptoError} */
  recoverAddress(digest: Hash): Address {
    return Address.fromUncompressedPublicKey(this.#recoverPoint(digest).toBytes(false));
  }

  #recoverPoint(digest: Hash): ReturnType<typeof secp256k1.Point.fromBytes> {
    const { r, s, v } = this.parts();
    try {
      return new secp256k1.Signature(r, s, v).recoverPublicKey(digest.toBytes());
    } catch {
      // No curve point has x = r, or the result is the identity.
      throw new CryptoError('bad_signature');
    }
  }
}

/** A compressed SEC1 secp256k1 public key (33 bytes). Immutable. */
export class PublicKey {
  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** A public key from its 33 bytes (copied; {@link PublicKey.validate} checks it). */
  static fromBytes(bytes: Uint8Array): PublicKey {
    checkLength(bytes, 33, 'a compressed public key');
    return new PublicKey(Uint8Array.from(bytes));
  }

  /** Parses `0x` + 66 hex digits. @throws {HexError} */
  static parse(text: string): PublicKey {
    return new PublicKey(fromHex(text, 33));
  }

  #point(): ReturnType<typeof secp256k1.Point.fromBytes> {
    try {
      return secp256k1.Point.fromBytes(this.#bytes);
    } catch {
      throw new CryptoError('invalid_public_key');
    }
  }

  /** @throws {CryptoError} unless the bytes are a point on the curve. */
  validate(): void {
    this.#point();
  }

  /**
   * The account address of this key. An invalid key (which
   * {@link PublicKey.validate} refuses) maps to the zero address, as in Rust.
   */
  address(): Address {
    let point;
    try {
      point = this.#point();
    } catch {
      return Address.ZERO;
    }
    return Address.fromUncompressedPublicKey(point.toBytes(false));
  }

  /**
   * Verifies `signature` over `digest` against this key: the form checks
   * of {@link Signature.parts}, then that the signature recovers to this
   * key, as Rust's `PublicKey::verify` checks it (`v` included, so each
   * key and digest have one valid signature encoding).
   *
   * @throws {CryptoError}
   */
  verify(digest: Hash, signature: Signature): void {
    this.#point();
    // Recover and compare: `v` counts, as in Rust's `PublicKey::verify`,
    // so a signature has one valid encoding (plain ECDSA verification
    // would also pass it with `v` flipped).
    if (!signature.recoverPublicKey(digest).equals(this)) throw new CryptoError('bad_signature');
  }

  /** A copy of the 33 bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  toString(): string {
    return toHex(this.#bytes);
  }

  toJSON(): string {
    return this.toString();
  }

  equals(other: PublicKey): boolean {
    return bytesEqual(this.#bytes, other.#bytes);
  }

  compare(other: PublicKey): number {
    return compareBytes(this.#bytes, other.#bytes);
  }
}

/**
 * A secp256k1 signing key. Its string form shows the address, never the
 * secret.
 */
export class SecretKey {
  readonly #bytes: Uint8Array;
  #public: PublicKey | null = null;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /**
   * A key from its 32-byte big-endian scalar; zero and values at or above
   * the group order are refused.
   *
   * @throws {CryptoError} `invalid_secret_key`
   */
  static fromBytes(bytes: Uint8Array): SecretKey {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new CryptoError('invalid_secret_key');
    }
    if (!secp256k1.utils.isValidSecretKey(bytes)) throw new CryptoError('invalid_secret_key');
    return new SecretKey(Uint8Array.from(bytes));
  }

  /** Parses `0x` + 64 hex digits. @throws {HexError | CryptoError} */
  static parse(text: string): SecretKey {
    return SecretKey.fromBytes(fromHex(text, 32));
  }

  /** A fresh key from the platform's secure random source. */
  static generate(): SecretKey {
    return new SecretKey(secp256k1.utils.randomSecretKey());
  }

  /** A copy of the 32-byte scalar. Handle with care. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  publicKey(): PublicKey {
    this.#public ??= PublicKey.fromBytes(secp256k1.getPublicKey(this.#bytes, true));
    return this.#public;
  }

  address(): Address {
    return this.publicKey().address();
  }

  /**
   * Signs a 32-byte digest: deterministic (RFC 6979), low-S, `r || s || v`.
   * The caller builds the digest with a domain tag (see
   * {@link DOMAIN}), so a signature is bound to one kind of message.
   */
  signDigest(digest: Hash): Signature {
    // noble's recovered format is `v || r || s`.
    const sig = secp256k1.sign(digest.toBytes(), this.#bytes, {
      prehash: false,
      lowS: true,
      format: 'recovered',
      extraEntropy: false,
    });
    const v = sig[0]!;
    if (v > 1) {
      // r >= n happens with negligible probability; Rust refuses such ids.
      throw new CryptoError('invalid_recovery_id', v);
    }
    return Signature.fromBytes(concatBytes(sig.subarray(1, 65), Uint8Array.of(v)));
  }

  toString(): string {
    return `SecretKey(${this.address().toChecksum()})`;
  }

  toJSON(): string {
    return this.toString();
  }

  /** Node's `util.inspect` form: never the secret. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
