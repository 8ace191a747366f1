/**
 * Encrypted key files in the Ethereum v3 keystore format, as the Rust
 * client reads and writes them (`sdk/client/src/keystore.rs`) and the
 * `stele keys` command keeps them under `~/.stele/keys`: scrypt key
 * derivation (`@noble/hashes`), AES-128-CTR (`@noble/ciphers`), and a
 * Keccak-256 MAC over the second half of the derived key and the
 * ciphertext.
 *
 * Reading checks what Rust checks, in its order, with its messages: the
 * version, cipher and KDF; the scrypt parameters, bounded (n at most
 * 2^20, r and p at most 16) so that a crafted file cannot make decryption
 * take unbounded time or memory; the hex fields and their lengths; the
 * MAC (a wrong password); the key; the file's address, when it has one.
 *
 * Writing produces the document Rust's `encrypt_keystore` produces, with
 * r = 8 and p = 1: the same fields in the same order, indented the same
 * way.
 *
 * @module
 */

import { ctr } from '@noble/ciphers/aes.js';
import { scrypt, scryptAsync } from '@noble/hashes/scrypt.js';
import { randomBytes } from '@noble/hashes/utils.js';

import type { Address } from './address.js';
import { keccak256Parts } from './hash.js';
import { bytesEqual, fromHex, toHex } from './hex.js';
import { type JsonObject, type JsonValue, asObject, asString, parseJson } from './json.js';
import { CryptoError, SecretKey } from './keys.js';

/** Largest scrypt cost accepted from a file, as log2(n) (the usual is 18). */
export const SCRYPT_LOG_N_MAX = 20;
/** Largest scrypt `r` accepted from a file. */
export const SCRYPT_R_MAX = 16;
/** Largest scrypt `p` accepted from a file. */
export const SCRYPT_P_MAX = 16;
/** Most memory scrypt may take for a file, `128·n·r` bytes: 256 MiB, what the usual n = 2^18, r = 8 takes. */
export const SCRYPT_MEMORY_BYTES_MAX = 256n << 20n;
/** Most work scrypt may do for a file, as `n·r·p`: four times the usual n = 2^18, r = 8, p = 1. */
export const SCRYPT_WORK_MAX = 1n << 23n;
/** The scrypt cost {@link encryptKeystore} uses by default, as log2(n): `stele keys new`'s. */
export const SCRYPT_LOG_N_DEFAULT = 18;

/** Why a key file could not be read or written; one case per Rust `KeystoreError`. */
export type KeystoreErrorDetail =
  /** Not JSON, or a field missing or of the wrong type (Rust's serde message differs). */
  | { readonly kind: 'json'; readonly reason: string }
  | { readonly kind: 'version'; readonly version: number }
  | { readonly kind: 'unsupported'; readonly what: 'cipher' | 'kdf'; readonly got: string }
  | { readonly kind: 'hex'; readonly what: 'salt' | 'iv' | 'ciphertext' | 'mac' }
  | { readonly kind: 'params'; readonly reason: string }
  | { readonly kind: 'wrong_password' }
  | { readonly kind: 'bad_key' }
  | { readonly kind: 'address_mismatch'; readonly file: string; readonly key: Address };

/** A string as Rust's `{:?}` shows it: quoted, with quotes, backslashes and control characters escaped. */
function rustDebugString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 0) out += '\\0';
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

function describeKeystoreError(d: KeystoreErrorDetail): string {
  switch (d.kind) {
    case 'json':
      return `invalid keystore JSON: ${d.reason}`;
    case 'version':
      return `unsupported keystore version ${d.version} (only 3)`;
    case 'unsupported':
      return `unsupported ${d.what} ${rustDebugString(d.got)}`;
    case 'hex':
      return `invalid hex in ${d.what}`;
    case 'params':
      return `scrypt parameters out of range: ${d.reason}`;
    case 'wrong_password':
      return 'wrong password (MAC mismatch)';
    case 'bad_key':
      return 'decrypted key is not a valid secret key';
    case 'address_mismatch':
      return `the file's address ${d.file} does not match its key's ${d.key.toChecksum()}`;
  }
}

/**
 * A keystore that cannot be read (or written). `message` is the Rust
 * client's message, except for `json`, whose reason is this reader's own.
 */
export class KeystoreError extends Error {
  override readonly name = 'KeystoreError';
  readonly detail: KeystoreErrorDetail;

  constructor(detail: KeystoreErrorDetail) {
    super(describeKeystoreError(detail));
    this.detail = detail;
  }
}

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

/** The fields of a v3 keystore that decryption uses. */
interface Parsed {
  readonly version: number;
  readonly address: string | null;
  readonly cipher: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly kdf: string;
  readonly dklen: number;
  readonly n: bigint;
  readonly r: number;
  readonly p: number;
  readonly salt: string;
  readonly mac: string;
}

function jsonFail(reason: string): never {
  throw new KeystoreError({ kind: 'json', reason });
}

function field(o: JsonObject, key: string, path: string): JsonValue {
  if (!Object.prototype.hasOwnProperty.call(o, key)) jsonFail(`missing field \`${key}\` in ${path}`);
  return o[key]!;
}

function u32Field(o: JsonObject, key: string, path: string): number {
  const v = field(o, key, path);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX) return v;
  return jsonFail(`${path}.${key}: expected a u32`);
}

function u64Field(o: JsonObject, key: string, path: string): bigint {
  const v = field(o, key, path);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'bigint' && v >= 0n && v <= U64_MAX) return v;
  return jsonFail(`${path}.${key}: expected a u64`);
}

/** The fields Rust's serde reads: all required but `address`; others are ignored. */
function parse(json: string): Parsed {
  try {
    const file = asObject(parseJson(json), 'keystore');
    const crypto = asObject(field(file, 'crypto', 'keystore'), 'crypto');
    const cipherparams = asObject(field(crypto, 'cipherparams', 'crypto'), 'crypto.cipherparams');
    const kdfparams = asObject(field(crypto, 'kdfparams', 'crypto'), 'crypto.kdfparams');
    const str = (o: JsonObject, key: string, path: string): string => asString(field(o, key, path), `${path}.${key}`);
    const version = u32Field(file, 'version', 'keystore');
    str(file, 'id', 'keystore');
    const address = file['address'];
    return {
      version,
      address: address === undefined || address === null ? null : asString(address, 'keystore.address'),
      cipher: str(crypto, 'cipher', 'crypto'),
      iv: str(cipherparams, 'iv', 'crypto.cipherparams'),
      ciphertext: str(crypto, 'ciphertext', 'crypto'),
      kdf: str(crypto, 'kdf', 'crypto'),
      dklen: u32Field(kdfparams, 'dklen', 'crypto.kdfparams'),
      n: u64Field(kdfparams, 'n', 'crypto.kdfparams'),
      r: u32Field(kdfparams, 'r', 'crypto.kdfparams'),
      p: u32Field(kdfparams, 'p', 'crypto.kdfparams'),
      salt: str(kdfparams, 'salt', 'crypto.kdfparams'),
      mac: str(crypto, 'mac', 'crypto'),
    };
  } catch (e) {
    if (e instanceof KeystoreError) throw e;
    // A JsonError from parseJson or a shape check.
    return jsonFail((e as Error).message);
  }
}

/** Hex with any number of leading `0x`, as Rust's reader strips them. */
function unhex(text: string, what: 'salt' | 'iv' | 'ciphertext' | 'mac'): Uint8Array {
  let digits = text;
  while (digits.startsWith('0x')) digits = digits.slice(2);
  try {
    return fromHex(`0x${digits}`);
  } catch {
    throw new KeystoreError({ kind: 'hex', what });
  }
}

/** What decryption needs once the file is checked: everything but the scrypt run. */
interface Prepared {
  readonly salt: Uint8Array;
  readonly iv: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly mac: Uint8Array;
  readonly n: number;
  readonly r: number;
  readonly p: number;
  readonly address: string | null;
}

/** The checks Rust's `decrypt_keystore` makes before deriving the key, in its order. */
function prepare(json: string): Prepared {
  const f = parse(json);
  if (f.version !== 3) throw new KeystoreError({ kind: 'version', version: f.version });
  if (f.cipher !== 'aes-128-ctr') throw new KeystoreError({ kind: 'unsupported', what: 'cipher', got: f.cipher });
  if (f.kdf !== 'scrypt') throw new KeystoreError({ kind: 'unsupported', what: 'kdf', got: f.kdf });
  if (f.dklen !== 32) throw new KeystoreError({ kind: 'params', reason: `dklen ${f.dklen} (must be 32)` });
  if (f.n < 2n || (f.n & (f.n - 1n)) !== 0n) {
    throw new KeystoreError({ kind: 'params', reason: `n ${f.n} is not a power of two` });
  }
  const logN = f.n.toString(2).length - 1;
  if (logN > SCRYPT_LOG_N_MAX || f.r === 0 || f.r > SCRYPT_R_MAX || f.p === 0 || f.p > SCRYPT_P_MAX) {
    throw new KeystoreError({
      kind: 'params',
      reason:
        `n = ${f.n}, r = ${f.r}, p = ${f.p} (at most n = 2^${SCRYPT_LOG_N_MAX}, ` +
        `r = ${SCRYPT_R_MAX}, p = ${SCRYPT_P_MAX})`,
    });
  }
  const memory = 128n * f.n * BigInt(f.r);
  if (memory > SCRYPT_MEMORY_BYTES_MAX) {
    throw new KeystoreError({
      kind: 'params',
      reason: `n = ${f.n}, r = ${f.r} needs ${memory >> 20n} MiB (128 n r bytes; at most ${SCRYPT_MEMORY_BYTES_MAX >> 20n} MiB)`,
    });
  }
  const work = f.n * BigInt(f.r) * BigInt(f.p);
  if (work > SCRYPT_WORK_MAX) {
    throw new KeystoreError({
      kind: 'params',
      reason: `n = ${f.n}, r = ${f.r}, p = ${f.p}: n r p = ${work} is over ${SCRYPT_WORK_MAX} (four times n = 2^18, r = 8, p = 1)`,
    });
  }
  const salt = unhex(f.salt, 'salt');
  const iv = unhex(f.iv, 'iv');
  const ciphertext = unhex(f.ciphertext, 'ciphertext');
  const mac = unhex(f.mac, 'mac');
  if (iv.length !== 16 || ciphertext.length !== 32) {
    throw new KeystoreError({ kind: 'params', reason: 'iv must be 16 bytes and ciphertext 32' });
  }
  checkScryptParams(logN, f.r);
  return { salt, iv, ciphertext, mac, n: Number(f.n), r: f.r, p: f.p, address: f.address };
}

/**
 * RFC 7914's bound `n < 2^(128 r / 8)`, which Rust's scrypt enforces (and
 * noble's does not): with the bounds above, only `r = 1` with `n` of 2^16
 * or more breaks it.
 */
function checkScryptParams(logN: number, r: number): void {
  if (logN >= r * 16) throw new KeystoreError({ kind: 'params', reason: 'invalid scrypt parameters' });
}

function scryptOptions(n: number, r: number, p: number): { N: number; r: number; p: number; dkLen: number; maxmem: number } {
  // Enough memory for every parameter set the bounds allow (256 MiB, plus
  // a little for p), as the Rust reader allows it.
  return { N: n, r, p, dkLen: 32, maxmem: 128 * r * (n + p + 1) };
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Keccak-256 of the derived key's second half and the ciphertext. */
function mac(derived: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return keccak256Parts([derived.subarray(16, 32), ciphertext]).toBytes();
}

function aes128Ctr(derived: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  return ctr(derived.slice(0, 16), Uint8Array.from(iv)).encrypt(data);
}

/** The decryption after the key derivation: MAC, cipher, key, address. */
function finish(p: Prepared, derived: Uint8Array): SecretKey {
  if (!bytesEqual(mac(derived, p.ciphertext), p.mac)) throw new KeystoreError({ kind: 'wrong_password' });
  const plain = aes128Ctr(derived, p.iv, p.ciphertext);
  let key: SecretKey;
  try {
    key = SecretKey.fromBytes(plain);
  } catch (e) {
    if (e instanceof CryptoError) throw new KeystoreError({ kind: 'bad_key' });
    throw e;
  } finally {
    plain.fill(0);
  }
  if (p.address !== null) {
    let given = p.address;
    while (given.startsWith('0x')) given = given.slice(2);
    if (given.toLowerCase() !== key.address().toHex().slice(2)) {
      throw new KeystoreError({ kind: 'address_mismatch', file: p.address, key: key.address() });
    }
  }
  return key;
}

/**
 * Decrypts a v3 keystore document with `password` (its UTF-8 bytes, not
 * normalised, as Rust takes them). The scrypt run yields to the event
 * loop now and then.
 *
 * @throws {KeystoreError} `wrong_password` when the MAC does not match.
 */
export async function decryptKeystore(json: string, password: string): Promise<SecretKey> {
  const p = prepare(json);
  const derived = await scryptAsync(utf8(password), p.salt, scryptOptions(p.n, p.r, p.p));
  try {
    return finish(p, derived);
  } finally {
    derived.fill(0);
  }
}

/** {@link decryptKeystore} without yielding: blocks until scrypt is done. @throws {KeystoreError} */
export function decryptKeystoreSync(json: string, password: string): SecretKey {
  const p = prepare(json);
  const derived = scrypt(utf8(password), p.salt, scryptOptions(p.n, p.r, p.p));
  try {
    return finish(p, derived);
  } finally {
    derived.fill(0);
  }
}

/** Options of {@link encryptKeystore}. */
export interface EncryptKeystoreOptions {
  /** scrypt cost as log2(n), 1 to {@link SCRYPT_LOG_N_MAX}; {@link SCRYPT_LOG_N_DEFAULT} by default. */
  readonly logN?: number;
  /** The scrypt salt; 32 random bytes by default. */
  readonly salt?: Uint8Array;
  /** The AES-128-CTR initial counter block (16 bytes); random by default. */
  readonly iv?: Uint8Array;
  /** The file's `id`; a random version 4 UUID by default. */
  readonly id?: string;
}

/** A random version 4 UUID, as Rust writes it. */
function uuid4(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b).slice(2);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

interface EncryptPlan {
  readonly logN: number;
  readonly salt: Uint8Array;
  readonly iv: Uint8Array;
  readonly id: string;
}

function plan(options: EncryptKeystoreOptions): EncryptPlan {
  const logN = options.logN ?? SCRYPT_LOG_N_DEFAULT;
  if (!Number.isInteger(logN) || logN < 0 || logN > 255) {
    throw new RangeError(`logN must be an integer from 1 to ${SCRYPT_LOG_N_MAX}, got ${String(logN)}`);
  }
  if (logN < 1 || logN > SCRYPT_LOG_N_MAX) {
    // n = 2^0 = 1 is no scrypt cost: the reader would refuse the file.
    throw new KeystoreError({ kind: 'params', reason: `log_n ${logN} is not in 1..=${SCRYPT_LOG_N_MAX}` });
  }
  const salt = options.salt ?? randomBytes(32);
  const iv = options.iv ?? randomBytes(16);
  if (!(salt instanceof Uint8Array)) throw new TypeError('salt must be a Uint8Array');
  if (!(iv instanceof Uint8Array) || iv.length !== 16) throw new RangeError('iv must be 16 bytes');
  return { logN, salt: Uint8Array.from(salt), iv: Uint8Array.from(iv), id: options.id ?? uuid4() };
}

/** The document, field for field and space for space as Rust's `serde_json::to_string_pretty`. */
function document(key: SecretKey, p: EncryptPlan, derived: Uint8Array): string {
  const secret = key.toBytes();
  const ciphertext = aes128Ctr(derived, p.iv, secret);
  secret.fill(0);
  const hex = (b: Uint8Array): string => toHex(b).slice(2);
  const file = {
    version: 3,
    id: p.id,
    address: key.address().toHex().slice(2),
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: hex(p.iv) },
      ciphertext: hex(ciphertext),
      kdf: 'scrypt',
      kdfparams: { dklen: 32, n: 2 ** p.logN, r: 8, p: 1, salt: hex(p.salt) },
      mac: hex(mac(derived, ciphertext)),
    },
  };
  return JSON.stringify(file, null, 2);
}

/**
 * Encrypts `key` with `password` as a v3 keystore document that the Rust
 * client and `stele keys import --keystore` read: scrypt with cost
 * 2^`logN`, r = 8, p = 1. The scrypt run yields to the event loop now
 * and then.
 *
 * @throws {KeystoreError} `params` when `logN` is out of range.
 */
export async function encryptKeystore(
  key: SecretKey,
  password: string,
  options: EncryptKeystoreOptions = {},
): Promise<string> {
  const p = plan(options);
  const derived = await scryptAsync(utf8(password), p.salt, scryptOptions(2 ** p.logN, 8, 1));
  try {
    return document(key, p, derived);
  } finally {
    derived.fill(0);
  }
}

/** {@link encryptKeystore} without yielding. @throws {KeystoreError} */
export function encryptKeystoreSync(key: SecretKey, password: string, options: EncryptKeystoreOptions = {}): string {
  const p = plan(options);
  const derived = scrypt(utf8(password), p.salt, scryptOptions(2 ** p.logN, 8, 1));
  try {
    return document(key, p, derived);
  } finally {
    derived.fill(0);
  }
}
