/**
 * Stele's canonical binary codec, byte for byte as the Rust node's
 * (`node/types/src/codec.rs`, ADR 0001): integers are fixed-width
 * little-endian; lengths and counts are `u32` little-endian; a `bool` is
 * one byte, 0 or 1; enum and option tags are one byte. Every value has one
 * encoding, and decoding refuses anything else: out-of-range tags,
 * non-0/1 booleans, lengths over their limit, truncated input and
 * trailing bytes.
 *
 * `u64` and `u128` values are `bigint`s; `u8`, `u16` and `u32` are
 * `number`s.
 *
 * @module
 */

/** Maximum sizes enforced while decoding (and encoding), as Rust's `Limits`. */
export interface Limits {
  /** Largest whole input {@link decode} accepts. */
  readonly inputBytesMax: number;
  /** Largest contract code in a deploy transaction. */
  readonly codeBytesMax: number;
  /** Largest call or constructor argument blob. */
  readonly argsBytesMax: number;
  /** Longest method name. */
  readonly methodBytesMax: number;
  /** Most transactions in one block. */
  readonly blockTxsMax: number;
  /** Most topics in one event. */
  readonly eventTopicsMax: number;
  /** Largest event data blob. */
  readonly eventDataBytesMax: number;
  /** Most events in one receipt. */
  readonly receiptEventsMax: number;
  /** Largest return data or error payload in a receipt. */
  readonly outputBytesMax: number;
  /** Most validators in a set, or signatures in a certificate. */
  readonly validatorsMax: number;
}

/** Rust's `Limits::DEFAULT`: sized for one transaction or one block. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  inputBytesMax: 64 * 1024 * 1024,
  codeBytesMax: 1024 * 1024,
  argsBytesMax: 128 * 1024,
  methodBytesMax: 64,
  blockTxsMax: 20_000,
  eventTopicsMax: 4,
  eventDataBytesMax: 16 * 1024,
  receiptEventsMax: 1024,
  outputBytesMax: 128 * 1024,
  validatorsMax: 1024,
});

/** What exactly was wrong with the input; one case per Rust `DecodeError`. */
export type DecodeErrorDetail =
  | { readonly kind: 'input_too_long'; readonly len: number; readonly max: number }
  | {
      readonly kind: 'unexpected_end';
      readonly what: string;
      readonly needed: number;
      readonly remaining: number;
    }
  | {
      readonly kind: 'length_over_limit';
      readonly what: string;
      readonly len: number;
      readonly max: number;
    }
  | { readonly kind: 'invalid_tag'; readonly what: string; readonly tag: number }
  | { readonly kind: 'invalid_bool'; readonly byte: number }
  | { readonly kind: 'trailing_bytes'; readonly count: number }
  | { readonly kind: 'invalid'; readonly what: string; readonly reason: string };

function describe(d: DecodeErrorDetail): string {
  switch (d.kind) {
    case 'input_too_long':
      return `input is ${d.len} bytes, over the maximum of ${d.max}`;
    case 'unexpected_end':
      return `unexpected end of input reading ${d.what}: needed ${d.needed} bytes, ${d.remaining} left`;
    case 'length_over_limit':
      return `${d.what} has length ${d.len}, over the maximum of ${d.max}`;
    case 'invalid_tag':
      return `invalid tag ${d.tag} for ${d.what}`;
    case 'invalid_bool':
      return `invalid boolean byte ${d.byte}`;
    case 'trailing_bytes':
      return `${d.count} trailing bytes after the value`;
    case 'invalid':
      return `invalid ${d.what}: ${d.reason}`;
  }
}

/**
 * Bytes that are not a canonical encoding. `message` is the Rust node's
 * message for the same input; `detail` holds the parts.
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly detail: DecodeErrorDetail;

  constructor(detail: DecodeErrorDetail) {
    super(describe(detail));
    this.detail = detail;
  }
}

/** A value that cannot be encoded: out of its type's range or over a limit. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
const U32_MAX = 0xffff_ffff;

/**
 * A cursor over untrusted input that checks every length before using it:
 * no length prefix can make it allocate more than the input holds.
 */
export class Reader {
  readonly #buf: Uint8Array;
  #pos = 0;
  /** The limits this reader enforces. */
  readonly limits: Limits;

  constructor(buf: Uint8Array, limits: Limits = DEFAULT_LIMITS) {
    if (!(buf instanceof Uint8Array)) throw new TypeError('input must be a Uint8Array');
    this.#buf = buf;
    this.limits = limits;
  }

  /** Bytes not yet read. */
  remaining(): number {
    return this.#buf.length - this.#pos;
  }

  /** @throws {DecodeError} if any bytes are left. */
  finish(): void {
    const left = this.remaining();
    if (left !== 0) throw new DecodeError({ kind: 'trailing_bytes', count: left });
  }

  /** The next `n` bytes (a copy). */
  take(n: number, what: string): Uint8Array {
    const remaining = this.remaining();
    if (n > remaining) {
      throw new DecodeError({ kind: 'unexpected_end', what, needed: n, remaining });
    }
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  #view(n: number, what: string): DataView {
    const bytes = this.take(n, what);
    return new DataView(bytes.buffer, bytes.byteOffset, n);
  }

  u8(what: string): number {
    return this.take(1, what)[0]!;
  }

  u16(what: string): number {
    return this.#view(2, what).getUint16(0, true);
  }

  u32(what: string): number {
    return this.#view(4, what).getUint32(0, true);
  }

  u64(what: string): bigint {
    return this.#view(8, what).getBigUint64(0, true);
  }

  u128(what: string): bigint {
    const v = this.#view(16, what);
    return v.getBigUint64(0, true) | (v.getBigUint64(8, true) << 64n);
  }

  /** A `bool`: 0 or 1, nothing else. */
  bool(): boolean {
    const b = this.u8('bool');
    if (b === 0) return false;
    if (b === 1) return true;
    throw new DecodeError({ kind: 'invalid_bool', byte: b });
  }

  /**
   * A `u32` length prefix, checked against `max` and against the bytes
   * left (each element takes at least `elemBytesMin` bytes).
   */
  len(max: number, elemBytesMin: number, what: string): number {
    const len = this.u32(what);
    if (len > max) throw new DecodeError({ kind: 'length_over_limit', what, len, max });
    const needed = len * Math.max(elemBytesMin, 1);
    const remaining = this.remaining();
    if (needed > remaining) {
      throw new DecodeError({ kind: 'unexpected_end', what, needed, remaining });
    }
    return len;
  }

  /** A length-prefixed byte string of at most `max` bytes. */
  bytes(max: number, what: string): Uint8Array {
    const len = this.len(max, 1, what);
    return this.take(len, what);
  }

  /**
   * A length-prefixed sequence of at most `max` elements, each at least
   * `elemBytesMin` bytes long when encoded.
   */
  seq<T>(max: number, elemBytesMin: number, what: string, item: (r: Reader) => T): T[] {
    const len = this.len(max, elemBytesMin, what);
    const out: T[] = [];
    for (let i = 0; i < len; i++) out.push(item(this));
    return out;
  }

  /** An option tag (0 = none, 1 = some) and the value if present. */
  option<T>(what: string, item: (r: Reader) => T): T | null {
    const tag = this.u8(what);
    if (tag === 0) return null;
    if (tag === 1) return item(this);
    throw new DecodeError({ kind: 'invalid_tag', what, tag });
  }
}

/**
 * Decodes exactly one value from `bytes` with `read`, refusing input over
 * `limits.inputBytesMax` and trailing bytes.
 *
 * @throws {DecodeError}
 */
export function decode<T>(
  bytes: Uint8Array,
  read: (r: Reader) => T,
  limits: Limits = DEFAULT_LIMITS,
): T {
  if (bytes.length > limits.inputBytesMax) {
    throw new DecodeError({ kind: 'input_too_long', len: bytes.length, max: limits.inputBytesMax });
  }
  const r = new Reader(bytes, limits);
  const value = read(r);
  r.finish();
  return value;
}

function checkInt(v: number, max: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new EncodeError(`${what} must be an integer from 0 to ${max}, got ${String(v)}`);
  }
}

function checkBig(v: bigint, max: bigint, what: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > max) {
    throw new EncodeError(`${what} must be a bigint from 0 to ${max}, got ${String(v)}`);
  }
}

/**
 * Builds a canonical encoding. Every method checks its value's range (and
 * the given maximum for lengths), so what it writes always decodes.
 */
export class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  /** Grows the buffer for `n` more bytes; returns where they go. Read `#buf` only after. */
  #reserve(n: number): number {
    const at = this.#len;
    if (at + n > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < at + n) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(0, at));
      this.#buf = grown;
    }
    this.#len = at + n;
    return at;
  }

  #view(n: number): [DataView, number] {
    const at = this.#reserve(n);
    return [new DataView(this.#buf.buffer), at];
  }

  u8(v: number, what = 'u8'): this {
    checkInt(v, 0xff, what);
    const at = this.#reserve(1);
    this.#buf[at] = v;
    return this;
  }

  u16(v: number, what = 'u16'): this {
    checkInt(v, 0xffff, what);
    const [view, at] = this.#view(2);
    view.setUint16(at, v, true);
    return this;
  }

  u32(v: number, what = 'u32'): this {
    checkInt(v, U32_MAX, what);
    const [view, at] = this.#view(4);
    view.setUint32(at, v, true);
    return this;
  }

  u64(v: bigint, what = 'u64'): this {
    checkBig(v, U64_MAX, what);
    const [view, at] = this.#view(8);
    view.setBigUint64(at, v, true);
    return this;
  }

  u128(v: bigint, what = 'u128'): this {
    checkBig(v, U128_MAX, what);
    const [view, at] = this.#view(16);
    view.setBigUint64(at, v & U64_MAX, true);
    view.setBigUint64(at + 8, v >> 64n, true);
    return this;
  }

  bool(v: boolean): this {
    if (typeof v !== 'boolean') throw new EncodeError(`bool must be a boolean, got ${String(v)}`);
    return this.u8(v ? 1 : 0);
  }

  /** Exactly `length` raw bytes (a hash, an address, a signature...). */
  fixed(bytes: Uint8Array, length: number, what: string): this {
    if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
      throw new EncodeError(`${what} must be ${length} bytes`);
    }
    const at = this.#reserve(length);
    this.#buf.set(bytes, at);
    return this;
  }

  /** A `u32` length prefix of at most `max`. */
  len(n: number, max: number, what: string): this {
    if (n > max) throw new EncodeError(`${what} has length ${n}, over the maximum of ${max}`);
    return this.u32(n, `${what} length`);
  }

  /** A length-prefixed byte string of at most `max` bytes. */
  bytes(data: Uint8Array, max: number, what: string): this {
    if (!(data instanceof Uint8Array)) throw new EncodeError(`${what} must be a Uint8Array`);
    this.len(data.length, max, what);
    const at = this.#reserve(data.length);
    this.#buf.set(data, at);
    return this;
  }

  /** A length-prefixed sequence of at most `max` items. */
  seq<T>(items: readonly T[], max: number, what: string, write: (w: Writer, item: T) => void): this {
    if (!Array.isArray(items)) throw new EncodeError(`${what} must be an array`);
    this.len(items.length, max, what);
    for (const item of items) write(this, item);
    return this;
  }

  /** An option tag (0 for `null`, 1 then the value otherwise). */
  option<T>(value: T | null, write: (w: Writer, item: T) => void): this {
    if (value === null || value === undefined) return this.u8(0);
    this.u8(1);
    write(this, value);
    return this;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** The encoding (a copy). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Runs `write` on a fresh {@link Writer} and returns the bytes. */
export function encode<T>(value: T, write: (w: Writer, value: T) => void): Uint8Array {
  const w = new Writer();
  write(w, value);
  return w.finish();
}

/** The 8 little-endian bytes of a `u64`. */
export function u64Bytes(v: bigint): Uint8Array {
  return new Writer().u64(v).finish();
}
