/**
 * Contract ABIs (`sdk/abi`, `docs/contracts.md` section 7): the JSON
 * document a contract embeds in its Wasm custom section `stele_abi`, and
 * the conversions it drives, byte for byte as the Rust `stele-abi` crate:
 *
 * - {@link Abi.parse} reads and validates a document with Rust's limits
 *   and messages ({@link AbiError});
 * - {@link Abi.encodeArgs} turns a method's arguments (a JSON array in
 *   order, or an object by name) into the Borsh call input;
 * - {@link Abi.decodeReturn}, {@link Abi.decodeRevert} and
 *   {@link Abi.decodeEvent} turn outputs, revert payloads and events back
 *   into the same JSON values as Rust;
 * - {@link eventTopic} and {@link Abi.topicOf} compute event topics, and
 *   {@link abiSection} finds the ABI in a module.
 *
 * JSON forms: `u64`, `i64`, `u128` and `i128` are decimal strings (integer
 * numbers and `bigint`s are accepted on input); smaller integers are
 * numbers (digit strings accepted on input); addresses are `0x` hex
 * (EIP-55 on output, checked on input when mixed case); `bytes` and
 * `[u8; N]` are `0x` hex; an option is `null` or the value; tuples and
 * tuple structs are arrays; structs are objects; enum values are
 * `"Variant"` or `{"Variant": fields}`. On input an {@link Address} and a
 * `Uint8Array` stand for their hex strings.
 *
 * Numbers as Rust's JSON reads them: an integer up to 64 bits (`u64` or
 * `i64`) is an integer, anything else a floating point number, which no
 * integer type accepts; so integers of more than 64 bits must be decimal
 * strings, and `i64`/`i128` refuse positive numbers past `i64::MAX`
 * (strings are fine). Here a `number` that is an integer is one (except
 * `-0`; Rust reads `1.0` and `1e3` as floats, which JavaScript cannot
 * tell apart), a `bigint` of up to 64 bits is one, and a larger `bigint`
 * stands for its decimal string. Decoded objects list their keys in
 * declaration order (Rust's JSON maps sort them; JSON objects are
 * unordered).
 *
 * @module
 */

import { Address, AddressError } from './address.js';
import { Hash, keccak256 } from './hash.js';
import { concatBytes, toHex } from './hex.js';
import { type JsonObject, type JsonValue, stringifyJson } from './json.js';

/** Version of the ABI document format this module reads and writes. */
export const ABI_VERSION = 1;
/** Name of the custom section holding the ABI JSON. */
export const ABI_SECTION = 'stele_abi';
/** Name of the custom section that opts a contract into re-entry. */
export const REENTRANT_SECTION = 'stele_reentrant';
/** Largest ABI section read. */
export const ABI_SECTION_BYTES_MAX = 256 * 1024;
/** Revert payload tag: a UTF-8 message follows. */
export const REVERT_MESSAGE = 0;
/** Revert payload tag: the Borsh encoding of the method's error type follows. */
export const REVERT_ERROR = 1;

/** Most methods, events or type definitions an ABI may list. */
const ITEMS_MAX = 1024;
/** Most fields or variants of one item. */
const FIELDS_MAX = 256;
/** Deepest nesting of a type reference. */
const TYPE_DEPTH_MAX = 32;
/** Most non-signature topics of an event. */
const TOPIC_FIELDS_MAX = 3;
/** Deepest nesting of values converted. */
const VALUE_DEPTH_MAX = 64;
/** Most values one decode produces. */
const VALUES_MAX = 1 << 20;

const U32_MAX = 0xffff_ffffn;
const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const I128_MIN = -(1n << 127n);
const I128_MAX = (1n << 127n) - 1n;

// ---------------------------------------------------------------------------
// Errors

/** Which `AbiError` of Rust this is. */
export type AbiErrorKind =
  | 'invalid_wasm'
  | 'no_abi_section'
  | 'duplicate_abi_section'
  | 'abi_too_large'
  | 'invalid_json'
  | 'invalid'
  | 'unknown_method'
  | 'value'
  | 'decode'
  | 'unknown_event';

/**
 * Why an ABI could not be read or a value could not be converted; the
 * message is Rust's `AbiError` message. For `invalid_json`, Rust's message
 * ends with the JSON reader's position (`at line 1 column 5`), which this
 * one leaves out.
 */
export class AbiError extends Error {
  override readonly name = 'AbiError';
  readonly kind: AbiErrorKind;
  /** For `value` and `decode`: the offending value's path (``arg `amount` ``, `return.owner`). */
  readonly path: string | null;
  /**
   * The variable part of the message: for `value` and `decode` what is
   * wrong with the value, for `invalid_json` the JSON reader's reason, for
   * `invalid` the inconsistency, for `unknown_method` the method, for
   * `unknown_event` the topic, for `invalid_wasm` the parser's reason.
   */
  readonly detail: string;

  private constructor(kind: AbiErrorKind, message: string, detail: string, path: string | null = null) {
    super(message);
    this.kind = kind;
    this.detail = detail;
    this.path = path;
  }

  static invalidWasm(reason: string): AbiError {
    return new AbiError('invalid_wasm', `not a valid Wasm module: ${reason}`, reason);
  }
  static noAbiSection(): AbiError {
    return new AbiError('no_abi_section', 'the module has no `stele_abi` custom section', '');
  }
  static duplicateAbiSection(): AbiError {
    return new AbiError('duplicate_abi_section', 'the module has more than one `stele_abi` custom section', '');
  }
  static abiTooLarge(len: number, max: number): AbiError {
    return new AbiError('abi_too_large', `the \`stele_abi\` section is ${len} bytes, over the maximum of ${max}`, `${len}`);
  }
  static invalidJson(reason: string): AbiError {
    return new AbiError('invalid_json', `the ABI is not valid JSON for this format: ${reason}`, reason);
  }
  static invalid(reason: string): AbiError {
    return new AbiError('invalid', `the ABI is inconsistent: ${reason}`, reason);
  }
  static unknownMethod(name: string): AbiError {
    return new AbiError('unknown_method', `the contract has no method \`${name}\``, name);
  }
  static value(path: string, msg: string): AbiError {
    return new AbiError('value', `${path}: ${msg}`, msg, path);
  }
  static decode(path: string, msg: string): AbiError {
    return new AbiError('decode', `${path}: ${msg}`, msg, path);
  }
  static unknownEvent(topic: string): AbiError {
    return new AbiError('unknown_event', `no event of this contract has the first topic ${topic}`, topic);
  }
}

// ---------------------------------------------------------------------------
// The document

/** The type names without parameters. */
export type PrimitiveType =
  | 'unit'
  | 'bool'
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  | 'u128'
  | 'i8'
  | 'i16'
  | 'i32'
  | 'i64'
  | 'i128'
  | 'string'
  | 'bytes'
  | 'address';

/**
 * A reference to a type; in JSON `"u64"`, `{"vec": T}`, `{"option": T}`,
 * `{"array": [T, n]}`, `{"tuple": [T, ...]}`, `{"defined": "Name"}`.
 */
export type TypeRef =
  | { readonly kind: PrimitiveType }
  | { readonly kind: 'vec'; readonly of: TypeRef }
  | { readonly kind: 'option'; readonly of: TypeRef }
  | { readonly kind: 'array'; readonly of: TypeRef; readonly length: number }
  | { readonly kind: 'tuple'; readonly items: readonly TypeRef[] }
  | { readonly kind: 'defined'; readonly name: string };

/** A named, typed value: an argument, or a struct or event field. */
export interface Field {
  readonly name: string;
  readonly type: TypeRef;
}

/** Fields of a struct or variant: none, named, or positional. */
export type Fields =
  | { readonly kind: 'unit' }
  | { readonly kind: 'named'; readonly fields: readonly Field[] }
  | { readonly kind: 'unnamed'; readonly types: readonly TypeRef[] };

/** One variant of an enum. */
export interface Variant {
  readonly name: string;
  readonly fields: Fields;
}

/** A user struct or enum. */
export type TypeDef =
  | { readonly kind: 'struct'; readonly name: string; readonly fields: Fields }
  | { readonly kind: 'enum'; readonly name: string; readonly variants: readonly Variant[] };

/** How a method may be invoked. */
export type MethodKind = 'init' | 'call' | 'view';

/** One exported method. */
export interface Method {
  /** Export name (`init` for the constructor). */
  readonly name: string;
  readonly kind: MethodKind;
  /** Whether a native value may be attached. */
  readonly payable: boolean;
  /** Arguments in declaration order. */
  readonly args: readonly Field[];
  /** Type of the return value (`unit` for none). */
  readonly returns: TypeRef;
  /** Error type of a method returning `Result<T, E>`, or `null`. */
  readonly error: TypeRef | null;
}

/** An event a contract emits. */
export interface EventDef {
  readonly name: string;
  /** Indexed fields, one topic each after the name topic (at most 3). */
  readonly topics: readonly Field[];
  /** Fields in the event data, Borsh-encoded as a tuple. */
  readonly data: readonly Field[];
}

/**
 * A value to encode: JSON, where an {@link Address} stands for its
 * checksummed string and a `Uint8Array` for its `0x` hex.
 */
export type AbiInput =
  | JsonValue
  | Address
  | Uint8Array
  | readonly AbiInput[]
  | { readonly [key: string]: AbiInput };

/** A decoded revert payload. */
export type Revert =
  /** Tag 0: a message (`require!`, panics, SDK checks). */
  | { readonly kind: 'message'; readonly message: string }
  /** Tag 1: the method's typed error, as JSON. */
  | { readonly kind: 'error'; readonly error: JsonValue }
  /** Not in the SDK convention (or the method declares no error type). */
  | { readonly kind: 'raw'; readonly raw: Uint8Array };

/** A decoded event. */
export interface DecodedEvent {
  readonly name: string;
  /**
   * Topic fields then data fields, by name. A topic field whose type is
   * not fixed-size within 32 bytes is only known by its hash (`0x` hex).
   */
  readonly fields: JsonObject;
}

/** The JSON form Rust gives a revert: `{"message"}`, `{"error"}` or `{"raw"}`. */
export function revertToJson(r: Revert): JsonObject {
  switch (r.kind) {
    case 'message':
      return { message: r.message };
    case 'error':
      return { error: r.error };
    case 'raw':
      return { raw: toHex(r.raw) };
  }
}

// ---------------------------------------------------------------------------
// Text forms as the Rust side writes them

const utf8Encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Code point order, as Rust orders `String`s (byte order of their UTF-8). */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * A finite `f64` as Rust's JSON writer prints it: the shortest digits,
 * plain with `.0` for decimal exponents -5 to 15, else `d.ddde+N`.
 */
function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const sign = v < 0 ? '-' : '';
  const [mantissa = '', exponent = '0'] = Math.abs(v).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const e = Number(exponent);
  if (e >= -5 && e <= 15) {
    if (digits.length - 1 <= e) return `${sign}${digits}${'0'.repeat(e - digits.length + 1)}.0`;
    if (e >= 0) return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
    return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  }
  const lead = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${lead}e${e < 0 ? '-' : '+'}${Math.abs(e)}`;
}

/** A string as Rust's `{:?}` writes it (control and format characters escaped). */
function rustDebugString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 0) out += '\\0';
    else if (
      c < 0x20 ||
      (c >= 0x7f && c <= 0x9f) ||
      c === 0xad ||
      (c >= 0x200b && c <= 0x200f) ||
      (c >= 0x2028 && c <= 0x202e) ||
      (c >= 0x2060 && c <= 0x206f) ||
      c === 0xfeff ||
      (c >= 0xd800 && c <= 0xdfff)
    ) {
      out += `\\u{${c.toString(16)}}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** A value to encode, or `undefined` where JavaScript left a hole. */
type In = AbiInput | undefined;

/** `v` as a JSON integer Rust would see (`as_u64` / `as_i64`), or its float. */
function jsonNumber(v: In): { int: bigint } | { float: number } | null {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Object.is(v, -0) && v >= -(2 ** 63) && v < 2 ** 64) return { int: BigInt(v) };
    return { float: v };
  }
  if (typeof v === 'bigint') {
    if (v >= I64_MIN && v <= U64_MAX) return { int: v };
    return { float: Number(v) };
  }
  return null;
}

function isObject(v: In): v is { readonly [key: string]: AbiInput } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Address);
}

function showFull(v: In): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return JSON.stringify(v);
  const n = jsonNumber(v);
  if (n !== null) return 'int' in n ? n.int.toString() : formatFloat(n.float);
  if (v instanceof Address) return JSON.stringify(v.toChecksum());
  if (v instanceof Uint8Array) return JSON.stringify(toHex(v));
  if (Array.isArray(v)) return `[${(v as readonly In[]).map(showFull).join(',')}]`;
  const o = v as { readonly [key: string]: AbiInput };
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort(compareCodePoints);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${showFull(o[k])}`).join(',')}}`;
}

/** A value shortened for an error message, as Rust's `show`. */
function show(v: In): string {
  const s = showFull(v);
  const chars = Array.from(s);
  return chars.length > 64 ? `${chars.slice(0, 61).join('')}...` : s;
}

// ---------------------------------------------------------------------------
// Reading the document: the rules and messages of Rust's JSON reader and
// of the serde forms of the Rust types, so a document Rust refuses is
// refused here for the same reason.

class JsonFail extends Error {}

const fail = (message: string): never => {
  throw new JsonFail(message);
};

/** A buffered JSON value, for the parts Rust reads in two passes. */
type Content =
  | { readonly t: 'null' }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'u64'; readonly v: bigint }
  | { readonly t: 'i64'; readonly v: bigint }
  | { readonly t: 'f64'; readonly v: number }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'seq'; readonly v: readonly Content[] }
  | { readonly t: 'map'; readonly v: readonly (readonly [string, Content])[] };

type JsonNum = { readonly t: 'u64' | 'i64'; readonly v: bigint } | { readonly t: 'f64'; readonly v: number };

function unexpectedNum(n: JsonNum): string {
  return n.t === 'f64' ? `floating point \`${formatFloat(n.v)}\`` : `integer \`${n.v}\``;
}

function unexpectedContent(c: Content): string {
  switch (c.t) {
    case 'null':
      return 'null';
    case 'bool':
      return `boolean \`${c.v}\``;
    case 'u64':
    case 'i64':
    case 'f64':
      return unexpectedNum(c);
    case 'str':
      return `string ${rustDebugString(c.v)}`;
    case 'seq':
      return 'sequence';
    case 'map':
      return 'map';
  }
}

function oneOf(names: readonly string[]): string {
  if (names.length === 1) return `\`${names[0]}\``;
  if (names.length === 2) return `\`${names[0]}\` or \`${names[1]}\``;
  return `one of ${names.map((n) => `\`${n}\``).join(', ')}`;
}

const unknownField = (k: string, names: readonly string[]): never =>
  fail(`unknown field \`${k}\`, expected ${oneOf(names)}`);
const unknownVariant = (k: string, names: readonly string[]): never =>
  fail(`unknown variant \`${k}\`, expected ${oneOf(names)}`);
const invalidType = (unexp: string, exp: string): never => fail(`invalid type: ${unexp}, expected ${exp}`);

const SPACE = new Set([0x20, 0x0a, 0x09, 0x0d]);

/** Rust's JSON reader over bytes, deserializing as it reads. */
class JsonIn {
  readonly #b: Uint8Array;
  #at = 0;
  #depth = 128;

  constructor(bytes: Uint8Array) {
    this.#b = bytes;
  }

  /** The next non-space byte, not consumed; -1 at the end. */
  ws(): number {
    while (this.#at < this.#b.length && SPACE.has(this.#b[this.#at]!)) this.#at++;
    return this.#at < this.#b.length ? this.#b[this.#at]! : -1;
  }

  eat(): void {
    this.#at++;
  }

  #next(): number {
    return this.#at < this.#b.length ? this.#b[this.#at++]! : -1;
  }

  #peek(): number {
    return this.#at < this.#b.length ? this.#b[this.#at]! : -1;
  }

  /** Enters an array or object (the reader allows 127 levels). */
  nest<T>(body: () => T): T {
    this.#depth--;
    if (this.#depth === 0) fail('recursion limit exceeded');
    this.eat();
    const out = body();
    this.#depth++;
    return out;
  }

  end(): void {
    if (this.ws() !== -1) fail('trailing characters');
  }

  ident(rest: string): void {
    for (let i = 0; i < rest.length; i++) {
      const c = this.#next();
      if (c === -1) fail('EOF while parsing a value');
      if (c !== rest.charCodeAt(i)) fail('expected ident');
    }
  }

  /** A string; the reader is at its opening quote. */
  string(): string {
    this.eat();
    const out: number[] = [];
    for (;;) {
      const c = this.#next();
      if (c === -1) fail('EOF while parsing a string');
      if (c === 0x22) break;
      if (c === 0x5c) this.#escape(out);
      else if (c < 0x20) fail('control character (\\u0000-\\u001F) found while parsing a string');
      else out.push(c);
    }
    try {
      return utf8.decode(Uint8Array.from(out));
    } catch {
      return fail('invalid unicode code point');
    }
  }

  #hex4(): number {
    if (this.#at + 4 > this.#b.length) {
      this.#at = this.#b.length;
      fail('EOF while parsing a string');
    }
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.#b[this.#at++]!;
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 87 : c >= 0x41 && c <= 0x46 ? c - 55 : -1;
      if (d < 0) fail('invalid escape');
      n = n * 16 + d;
    }
    return n;
  }

  #escape(out: number[]): void {
    const c = this.#next();
    const simple: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };
    if (c === -1) fail('EOF while parsing a string');
    const s = simple[c];
    if (s !== undefined) {
      out.push(s);
      return;
    }
    if (c !== 0x75) fail('invalid escape');
    let n = this.#hex4();
    if (n >= 0xdc00 && n <= 0xdfff) fail('lone leading surrogate in hex escape');
    if (n >= 0xd800 && n <= 0xdbff) {
      const p = this.#peek();
      if (p === -1) fail('EOF while parsing a string');
      this.eat();
      if (p !== 0x5c) fail('unexpected end of hex escape');
      const u = this.#peek();
      if (u === -1) fail('EOF while parsing a string');
      this.eat();
      if (u !== 0x75) fail('unexpected end of hex escape');
      const low = this.#hex4();
      if (low < 0xdc00 || low > 0xdfff) fail('lone leading surrogate in hex escape');
      n = 0x10000 + ((n - 0xd800) << 10) + (low - 0xdc00);
    }
    out.push(...utf8Encoder.encode(String.fromCodePoint(n)));
  }

  /** A number; the reader is past its `-`, if any. */
  number(positive: boolean): JsonNum {
    const start = this.#at;
    const first = this.#next();
    if (first === -1) fail('EOF while parsing a value');
    const digit = (c: number): boolean => c >= 0x30 && c <= 0x39;
    if (first === 0x30) {
      if (digit(this.#peek())) fail('invalid number');
    } else if (digit(first)) {
      while (digit(this.#peek())) this.eat();
    } else {
      fail('invalid number');
    }
    let float = false;
    if (this.#peek() === 0x2e) {
      float = true;
      this.eat();
      let any = false;
      while (digit(this.#peek())) {
        this.eat();
        any = true;
      }
      if (!any) fail(this.#peek() === -1 ? 'EOF while parsing a value' : 'invalid number');
    }
    const e = this.#peek();
    if (e === 0x65 || e === 0x45) {
      float = true;
      this.eat();
      const sign = this.#peek();
      if (sign === 0x2b || sign === 0x2d) this.eat();
      const d = this.#next();
      if (d === -1) fail('EOF while parsing a value');
      if (!digit(d)) fail('invalid number');
      while (digit(this.#peek())) this.eat();
    }
    const text = String.fromCharCode(...this.#b.subarray(start, this.#at));
    if (!float) {
      const n = BigInt(text);
      if (positive && n <= U64_MAX) return { t: 'u64', v: n };
      if (!positive && n !== 0n && -n >= I64_MIN) return { t: 'i64', v: -n };
    }
    const f = Number(text) * (positive ? 1 : -1);
    if (!Number.isFinite(f)) fail('number out of range');
    return { t: 'f64', v: f };
  }

  /** What an unexpected value is, for an "invalid type" message (scalars are read). */
  unexpected(): string {
    const c = this.ws();
    switch (c) {
      case 0x6e:
        this.eat();
        this.ident('ull');
        return 'null';
      case 0x74:
        this.eat();
        this.ident('rue');
        return 'boolean `true`';
      case 0x66:
        this.eat();
        this.ident('alse');
        return 'boolean `false`';
      case 0x2d:
        this.eat();
        return unexpectedNum(this.number(false));
      case 0x22:
        return `string ${rustDebugString(this.string())}`;
      case 0x5b:
        return 'sequence';
      case 0x7b:
        return 'map';
      default:
        if (c >= 0x30 && c <= 0x39) return unexpectedNum(this.number(true));
        return fail('expected value');
    }
  }

  invalid(exp: string): never {
    return invalidType(this.unexpected(), exp);
  }

  /** The next value's first byte; fails at the end of the input. */
  peekValue(): number {
    const c = this.ws();
    if (c === -1) fail('EOF while parsing a value');
    return c;
  }

  /** Whether an array has another element (the reader is inside it). */
  hasElement(first: boolean): boolean {
    const c = this.ws();
    if (c === -1) fail('EOF while parsing a list');
    if (c === 0x5d) return false;
    if (first) return true;
    if (c !== 0x2c) fail('expected `,` or `]`');
    this.eat();
    const d = this.ws();
    if (d === 0x5d) fail('trailing comma');
    if (d === -1) fail('EOF while parsing a value');
    return true;
  }

  endSeq(): void {
    const c = this.ws();
    if (c === 0x5d) {
      this.eat();
      return;
    }
    if (c === 0x2c) {
      this.eat();
      fail(this.ws() === 0x5d ? 'trailing comma' : 'trailing characters');
    }
    fail(c === -1 ? 'EOF while parsing a list' : 'trailing characters');
  }

  /** The next key of an object (the reader is inside it), or `null` at its end. */
  key(first: boolean): string | null {
    const c = this.ws();
    if (c === -1) fail('EOF while parsing an object');
    if (c === 0x7d) return null;
    if (first) {
      if (c !== 0x22) fail('key must be a string');
    } else {
      if (c !== 0x2c) fail('expected `,` or `}`');
      this.eat();
      const d = this.ws();
      if (d === 0x7d) fail('trailing comma');
      if (d === -1) fail('EOF while parsing a value');
      if (d !== 0x22) fail('key must be a string');
    }
    return this.string();
  }

  colon(): void {
    const c = this.ws();
    if (c === -1) fail('EOF while parsing an object');
    if (c !== 0x3a) fail('expected `:`');
    this.eat();
  }

  endMap(): void {
    const c = this.ws();
    if (c === 0x7d) {
      this.eat();
      return;
    }
    fail(c === 0x2c ? 'trailing comma' : c === -1 ? 'EOF while parsing an object' : 'trailing characters');
  }

  /** Any value, buffered. */
  content(): Content {
    const c = this.peekValue();
    switch (c) {
      case 0x6e:
        this.eat();
        this.ident('ull');
        return { t: 'null' };
      case 0x74:
        this.eat();
        this.ident('rue');
        return { t: 'bool', v: true };
      case 0x66:
        this.eat();
        this.ident('alse');
        return { t: 'bool', v: false };
      case 0x2d:
        this.eat();
        return this.number(false);
      case 0x22:
        return { t: 'str', v: this.string() };
      case 0x5b: {
        const items = this.nest(() => {
          const out: Content[] = [];
          for (let first = true; this.hasElement(first); first = false) out.push(this.content());
          return out;
        });
        this.endSeq();
        return { t: 'seq', v: items };
      }
      case 0x7b: {
        const entries = this.nest(() => {
          const out: [string, Content][] = [];
          for (let k = this.key(true); k !== null; k = this.key(false)) {
            this.colon();
            out.push([k, this.content()]);
          }
          return out;
        });
        this.endMap();
        return { t: 'map', v: entries };
      }
      default:
        if (c >= 0x30 && c <= 0x39) return this.number(true);
        return fail('expected value');
    }
  }

  // Primitive types, read in place.

  u32(): number {
    const c = this.peekValue();
    let n: JsonNum;
    if (c === 0x2d) {
      this.eat();
      n = this.number(false);
    } else if (c >= 0x30 && c <= 0x39) {
      n = this.number(true);
    } else {
      return this.invalid('u32');
    }
    return u32Of(n);
  }

  bool(): boolean {
    const c = this.peekValue();
    if (c === 0x74 || c === 0x66) {
      this.eat();
      this.ident(c === 0x74 ? 'rue' : 'alse');
      return c === 0x74;
    }
    return this.invalid('a boolean');
  }

  str(): string {
    return this.peekValue() === 0x22 ? this.string() : this.invalid('a string');
  }

  seq<T>(item: () => T): T[] {
    if (this.peekValue() !== 0x5b) return this.invalid('a sequence');
    const out = this.nest(() => {
      const items: T[] = [];
      for (let first = true; this.hasElement(first); first = false) items.push(item());
      return items;
    });
    this.endSeq();
    return out;
  }

  /** `null` or the value. */
  option<T>(item: () => T): T | null {
    if (this.peekValue() === 0x6e) {
      this.eat();
      this.ident('ull');
      return null;
    }
    return item();
  }

  /** A variant name (a string). */
  identifier(names: readonly string[]): string {
    if (this.peekValue() !== 0x22) return this.invalid('variant identifier');
    const name = this.string();
    if (!names.includes(name)) unknownVariant(name, names);
    return name;
  }
}

function u32Of(n: JsonNum): number {
  if (n.t === 'f64') return invalidType(unexpectedNum(n), 'u32');
  if (n.v < 0n || n.v > U32_MAX) fail(`invalid value: integer \`${n.v}\`, expected u32`);
  return Number(n.v);
}

/** How a struct field is read: its name, whether it may be left out, and its reader. */
interface FieldSpec<S, C> {
  readonly name: string;
  readonly optional: boolean;
  readonly stream: (r: JsonIn) => S;
  readonly content: (c: Content) => C;
}

/** A struct read in place, from an object or (as serde allows) an array. */
function streamStruct(
  r: JsonIn,
  expecting: string,
  specs: readonly FieldSpec<unknown, unknown>[],
): Map<string, unknown> {
  const names = specs.map((s) => s.name);
  const c = r.peekValue();
  const got = new Map<string, unknown>();
  if (c === 0x5b) {
    r.nest(() => {
      let first = true;
      specs.forEach((s, i) => {
        if (r.hasElement(first)) {
          first = false;
          got.set(s.name, s.stream(r));
        } else if (!s.optional) {
          fail(`invalid length ${i}, expected ${expecting} with ${specs.length} elements`);
        }
      });
    });
    r.endSeq();
    return got;
  }
  if (c !== 0x7b) return r.invalid(expecting);
  r.nest(() => {
    for (let k = r.key(true); k !== null; k = r.key(false)) {
      const spec = specs.find((s) => s.name === k);
      if (spec === undefined) unknownField(k, names);
      else {
        if (got.has(k)) fail(`duplicate field \`${k}\``);
        r.colon();
        got.set(k, spec.stream(r));
      }
    }
    for (const s of specs) if (!s.optional && !got.has(s.name)) fail(`missing field \`${s.name}\``);
  });
  r.endMap();
  return got;
}

/** A struct from a buffered value. */
function contentStruct(
  c: Content,
  expecting: string,
  specs: readonly FieldSpec<unknown, unknown>[],
): Map<string, unknown> {
  const names = specs.map((s) => s.name);
  const got = new Map<string, unknown>();
  if (c.t === 'seq') {
    specs.forEach((s, i) => {
      const item = c.v[i];
      if (item !== undefined) got.set(s.name, s.content(item));
      else if (!s.optional) fail(`invalid length ${i}, expected ${expecting} with ${specs.length} elements`);
    });
    if (c.v.length > specs.length) {
      const n = specs.length;
      fail(`invalid length ${c.v.length}, expected ${n} element${n === 1 ? '' : 's'} in sequence`);
    }
    return got;
  }
  if (c.t !== 'map') return invalidType(unexpectedContent(c), expecting);
  for (const [k, v] of c.v) {
    const spec = specs.find((s) => s.name === k);
    if (spec === undefined) unknownField(k, names);
    else {
      if (got.has(k)) fail(`duplicate field \`${k}\``);
      got.set(k, spec.content(v));
    }
  }
  for (const s of specs) if (!s.optional && !got.has(s.name)) fail(`missing field \`${s.name}\``);
  return got;
}

function contentString(c: Content): string {
  return c.t === 'str' ? c.v : invalidType(unexpectedContent(c), 'a string');
}

function contentU32(c: Content): number {
  return c.t === 'u64' || c.t === 'i64' || c.t === 'f64' ? u32Of(c) : invalidType(unexpectedContent(c), 'u32');
}

function contentSeq<T>(c: Content, item: (c: Content) => T): T[] {
  return c.t === 'seq' ? c.v.map(item) : invalidType(unexpectedContent(c), 'a sequence');
}

/** How an enum variant's value is shaped in serde's externally tagged form. */
interface VariantSpec<T> {
  readonly name: string;
  readonly shape: 'unit' | 'newtype' | 'tuple';
  readonly stream: (r: JsonIn) => T;
  readonly content: (c: Content) => T;
}

/** An externally tagged enum read in place: `"Unit"` or `{"Variant": value}`. */
function streamEnum<T>(r: JsonIn, specs: readonly VariantSpec<T>[]): T {
  const names = specs.map((s) => s.name);
  const c = r.peekValue();
  if (c === 0x22) {
    const name = r.string();
    const spec = specs.find((s) => s.name === name) ?? unknownVariant(name, names);
    if (spec.shape !== 'unit') invalidType('unit variant', `${spec.shape} variant`);
    return spec.stream(r);
  }
  if (c !== 0x7b) return fail('expected value');
  const value = r.nest(() => {
    const name = r.identifier(names);
    r.colon();
    const spec = specs.find((s) => s.name === name)!;
    if (spec.shape === 'unit') {
      if (r.peekValue() !== 0x6e) r.invalid('unit');
      r.eat();
      r.ident('ull');
    }
    return spec.stream(r);
  });
  const end = r.ws();
  if (end === -1) fail('EOF while parsing an object');
  if (end !== 0x7d) fail('expected value');
  r.eat();
  return value;
}

/** An externally tagged enum from a buffered value. */
function contentEnum<T>(c: Content, specs: readonly VariantSpec<T>[]): T {
  const names = specs.map((s) => s.name);
  let name: string;
  let value: Content | null;
  if (c.t === 'map') {
    const only = c.v[0];
    if (only === undefined || c.v.length > 1) return fail('invalid value: map, expected map with a single key');
    [name, value] = only;
  } else if (c.t === 'str') {
    name = c.v;
    value = null;
  } else {
    return invalidType(unexpectedContent(c), 'string or map');
  }
  const spec = specs.find((s) => s.name === name) ?? unknownVariant(name, names);
  if (value === null) {
    if (spec.shape !== 'unit') invalidType('unit variant', `${spec.shape} variant`);
    return spec.content({ t: 'null' });
  }
  if (spec.shape === 'unit' && value.t !== 'null') invalidType(unexpectedContent(value), 'unit');
  if (spec.shape === 'tuple' && value.t !== 'seq') invalidType(unexpectedContent(value), 'tuple variant');
  return spec.content(value);
}

const PRIMITIVES: readonly PrimitiveType[] = [
  'unit',
  'bool',
  'u8',
  'u16',
  'u32',
  'u64',
  'u128',
  'i8',
  'i16',
  'i32',
  'i64',
  'i128',
  'string',
  'bytes',
  'address',
];

const ARRAY_EXPECTING = 'tuple variant TypeRef::Array';

const TYPE_REF_SPECS: readonly VariantSpec<TypeRef>[] = [
  ...PRIMITIVES.map(
    (kind): VariantSpec<TypeRef> => ({ name: kind, shape: 'unit', stream: () => ({ kind }), content: () => ({ kind }) }),
  ),
  {
    name: 'vec',
    shape: 'newtype',
    stream: (r) => ({ kind: 'vec', of: streamTypeRef(r) }),
    content: (c) => ({ kind: 'vec', of: contentTypeRef(c) }),
  },
  {
    name: 'option',
    shape: 'newtype',
    stream: (r) => ({ kind: 'option', of: streamTypeRef(r) }),
    content: (c) => ({ kind: 'option', of: contentTypeRef(c) }),
  },
  {
    name: 'array',
    shape: 'tuple',
    stream: (r) => {
      if (r.peekValue() !== 0x5b) return r.invalid(ARRAY_EXPECTING);
      const t = r.nest((): TypeRef => {
        if (!r.hasElement(true)) fail(`invalid length 0, expected ${ARRAY_EXPECTING} with 2 elements`);
        const of = streamTypeRef(r);
        if (!r.hasElement(false)) fail(`invalid length 1, expected ${ARRAY_EXPECTING} with 2 elements`);
        return { kind: 'array', of, length: r.u32() };
      });
      r.endSeq();
      return t;
    },
    content: (c) => {
      const items = c.t === 'seq' ? c.v : [];
      const [a, b] = items;
      if (a === undefined) return fail(`invalid length 0, expected ${ARRAY_EXPECTING} with 2 elements`);
      const of = contentTypeRef(a);
      if (b === undefined) return fail(`invalid length 1, expected ${ARRAY_EXPECTING} with 2 elements`);
      const length = contentU32(b);
      if (items.length > 2) fail(`invalid length ${items.length}, expected 2 elements in sequence`);
      return { kind: 'array', of, length };
    },
  },
  {
    name: 'tuple',
    shape: 'newtype',
    stream: (r) => ({ kind: 'tuple', items: r.seq(() => streamTypeRef(r)) }),
    content: (c) => ({ kind: 'tuple', items: contentSeq(c, contentTypeRef) }),
  },
  {
    name: 'defined',
    shape: 'newtype',
    stream: (r) => ({ kind: 'defined', name: r.str() }),
    content: (c) => ({ kind: 'defined', name: contentString(c) }),
  },
];

function streamTypeRef(r: JsonIn): TypeRef {
  return streamEnum(r, TYPE_REF_SPECS);
}

function contentTypeRef(c: Content): TypeRef {
  return contentEnum(c, TYPE_REF_SPECS);
}

const FIELD_SPECS: readonly FieldSpec<unknown, unknown>[] = [
  { name: 'name', optional: false, stream: (r) => r.str(), content: contentString },
  { name: 'type', optional: false, stream: streamTypeRef, content: contentTypeRef },
];

function fieldOf(got: Map<string, unknown>): Field {
  return { name: got.get('name') as string, type: got.get('type') as TypeRef };
}

const streamField = (r: JsonIn): Field => fieldOf(streamStruct(r, 'struct Field', FIELD_SPECS));
const contentField = (c: Content): Field => fieldOf(contentStruct(c, 'struct Field', FIELD_SPECS));

const never = (): never => fail('internal: not read in place');

const FIELDS_SPECS: readonly VariantSpec<Fields>[] = [
  { name: 'unit', shape: 'unit', stream: never, content: () => ({ kind: 'unit' }) },
  {
    name: 'named',
    shape: 'newtype',
    stream: never,
    content: (c) => ({ kind: 'named', fields: contentSeq(c, contentField) }),
  },
  {
    name: 'unnamed',
    shape: 'newtype',
    stream: never,
    content: (c) => ({ kind: 'unnamed', types: contentSeq(c, contentTypeRef) }),
  },
];

const VARIANT_SPECS: readonly FieldSpec<unknown, unknown>[] = [
  { name: 'name', optional: false, stream: never, content: contentString },
  { name: 'fields', optional: false, stream: never, content: (c) => contentEnum(c, FIELDS_SPECS) },
];

function contentVariant(c: Content): Variant {
  const got = contentStruct(c, 'struct Variant', VARIANT_SPECS);
  return { name: got.get('name') as string, fields: got.get('fields') as Fields };
}

/** A type definition: serde's internally tagged form, `{"kind": "struct", ...}`. */
function streamTypeDef(r: JsonIn): TypeDef {
  const kinds = ['struct', 'enum'];
  const c = r.peekValue();
  let read: { kind: string; rest: Content };
  if (c === 0x7b) {
    read = r.nest(() => {
      let kind: string | null = null;
      const out: [string, Content][] = [];
      for (let k = r.key(true); k !== null; k = r.key(false)) {
        if (k === 'kind') {
          if (kind !== null) fail('duplicate field `kind`');
          r.colon();
          kind = r.identifier(kinds);
        } else {
          r.colon();
          out.push([k, r.content()]);
        }
      }
      return { kind: kind ?? fail('missing field `kind`'), rest: { t: 'map', v: out } };
    });
    r.endMap();
  } else if (c === 0x5b) {
    read = r.nest(() => {
      if (!r.hasElement(true)) fail('missing field `kind`');
      const kind = r.identifier(kinds);
      const out: Content[] = [];
      while (r.hasElement(false)) out.push(r.content());
      return { kind, rest: { t: 'seq', v: out } };
    });
    r.endSeq();
  } else {
    return r.invalid('internally tagged enum TypeDef');
  }
  const { kind, rest } = read;
  if (kind === 'struct') {
    const got = contentStruct(rest, 'struct variant TypeDef::Struct', [
      { name: 'name', optional: false, stream: never, content: contentString },
      { name: 'fields', optional: false, stream: never, content: (c) => contentEnum(c, FIELDS_SPECS) },
    ]);
    return { kind: 'struct', name: got.get('name') as string, fields: got.get('fields') as Fields };
  }
  const got = contentStruct(rest, 'struct variant TypeDef::Enum', [
    { name: 'name', optional: false, stream: never, content: contentString },
    { name: 'variants', optional: false, stream: never, content: (c) => contentSeq(c, contentVariant) },
  ]);
  return { kind: 'enum', name: got.get('name') as string, variants: got.get('variants') as Variant[] };
}

const METHOD_KINDS: readonly VariantSpec<MethodKind>[] = (['init', 'call', 'view'] as const).map((kind) => ({
  name: kind,
  shape: 'unit',
  stream: () => kind,
  content: () => kind,
}));

const METHOD_SPECS: readonly FieldSpec<unknown, unknown>[] = [
  { name: 'name', optional: false, stream: (r) => r.str(), content: never },
  { name: 'kind', optional: false, stream: (r) => streamEnum(r, METHOD_KINDS), content: never },
  { name: 'payable', optional: true, stream: (r) => r.bool(), content: never },
  { name: 'args', optional: false, stream: (r) => r.seq(() => streamField(r)), content: never },
  { name: 'returns', optional: false, stream: streamTypeRef, content: never },
  { name: 'error', optional: true, stream: (r) => r.option(() => streamTypeRef(r)), content: never },
];

function streamMethod(r: JsonIn): Method {
  const got = streamStruct(r, 'struct Method', METHOD_SPECS);
  return {
    name: got.get('name') as string,
    kind: got.get('kind') as MethodKind,
    payable: (got.get('payable') as boolean | undefined) ?? false,
    args: got.get('args') as Field[],
    returns: got.get('returns') as TypeRef,
    error: (got.get('error') as TypeRef | null | undefined) ?? null,
  };
}

const EVENT_SPECS: readonly FieldSpec<unknown, unknown>[] = [
  { name: 'name', optional: false, stream: (r) => r.str(), content: never },
  { name: 'topics', optional: true, stream: (r) => r.seq(() => streamField(r)), content: never },
  { name: 'data', optional: true, stream: (r) => r.seq(() => streamField(r)), content: never },
];

function streamEvent(r: JsonIn): EventDef {
  const got = streamStruct(r, 'struct Event', EVENT_SPECS);
  return {
    name: got.get('name') as string,
    topics: (got.get('topics') as Field[] | undefined) ?? [],
    data: (got.get('data') as Field[] | undefined) ?? [],
  };
}

const ABI_SPECS: readonly FieldSpec<unknown, unknown>[] = [
  { name: 'abi_version', optional: false, stream: (r) => r.u32(), content: never },
  { name: 'name', optional: false, stream: (r) => r.str(), content: never },
  { name: 'version', optional: false, stream: (r) => r.str(), content: never },
  { name: 'methods', optional: false, stream: (r) => r.seq(() => streamMethod(r)), content: never },
  { name: 'events', optional: true, stream: (r) => r.seq(() => streamEvent(r)), content: never },
  { name: 'types', optional: true, stream: (r) => r.seq(() => streamTypeDef(r)), content: never },
];

function readJson<T>(input: string | Uint8Array, read: (r: JsonIn) => T): T {
  const bytes = typeof input === 'string' ? utf8Encoder.encode(input) : input;
  const r = new JsonIn(bytes);
  try {
    const out = read(r);
    r.end();
    return out;
  } catch (e) {
    if (e instanceof JsonFail) throw AbiError.invalidJson(e.message);
    throw e;
  }
}

/**
 * A type reference from its JSON text (`"u64"`, `{"vec": "address"}`...).
 *
 * @throws {AbiError} `invalid_json`.
 */
export function parseTypeRef(json: string | Uint8Array): TypeRef {
  return readJson(json, streamTypeRef);
}

// ---------------------------------------------------------------------------
// Writing the document, as Rust's `Abi::to_json`

function typeRefJson(t: TypeRef): string {
  switch (t.kind) {
    case 'vec':
    case 'option':
      return `{"${t.kind}":${typeRefJson(t.of)}}`;
    case 'array':
      return `{"array":[${typeRefJson(t.of)},${t.length}]}`;
    case 'tuple':
      return `{"tuple":[${t.items.map(typeRefJson).join(',')}]}`;
    case 'defined':
      return `{"defined":${JSON.stringify(t.name)}}`;
    default:
      return `"${t.kind}"`;
  }
}

/** The JSON text of a type reference, as Rust writes it. */
export function typeRefToJson(t: TypeRef): string {
  return typeRefJson(t);
}

const fieldJson = (f: Field): string => `{"name":${JSON.stringify(f.name)},"type":${typeRefJson(f.type)}}`;
const fieldsJson = (f: readonly Field[]): string => `[${f.map(fieldJson).join(',')}]`;

function shapeJson(f: Fields): string {
  switch (f.kind) {
    case 'unit':
      return '"unit"';
    case 'named':
      return `{"named":${fieldsJson(f.fields)}}`;
    case 'unnamed':
      return `{"unnamed":[${f.types.map(typeRefJson).join(',')}]}`;
  }
}

/** A type reference as TypeScript-like text (`vec<u8>`), for messages. */
export function typeRefName(t: TypeRef): string {
  switch (t.kind) {
    case 'vec':
    case 'option':
      return `${t.kind}<${typeRefName(t.of)}>`;
    case 'array':
      return `[${typeRefName(t.of)}; ${t.length}]`;
    case 'tuple':
      return `(${t.items.map(typeRefName).join(', ')})`;
    case 'defined':
      return t.name;
    default:
      return t.kind;
  }
}

// ---------------------------------------------------------------------------
// Encoding

/** Bytes appended in chunks. */
class Sink {
  readonly #parts: Uint8Array[] = [];

  push(...bytes: number[]): void {
    this.#parts.push(Uint8Array.from(bytes));
  }

  bytes(b: Uint8Array): void {
    this.#parts.push(b);
  }

  le(v: bigint, width: number): void {
    const out = new Uint8Array(width);
    let x = BigInt.asUintN(width * 8, v);
    for (let i = 0; i < width; i++) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    this.#parts.push(out);
  }

  finish(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}

/** ASCII digits, 1 to 40 of them. */
function digits(s: string): string | null {
  return s.length > 0 && s.length <= 40 && /^[0-9]+$/.test(s) ? s : null;
}

/** `as_u64` of a JSON number, or a digit string below `max`. */
function smallUint(v: In, max: bigint): bigint | null {
  let n: bigint;
  if (typeof v === 'string') {
    const d = digits(v);
    if (d === null) return null;
    n = BigInt(d);
    if (n > U64_MAX) return null;
  } else {
    const j = jsonNumber(v);
    if (j === null || !('int' in j) || j.int < 0n) return null;
    n = j.int;
  }
  return n <= max ? n : null;
}

/** `as_i64` of a JSON number, or a signed decimal string in the `i64` range. */
function smallInt(v: In): bigint | null {
  if (typeof v === 'string') {
    const n = bigInt(v);
    return n !== null && n >= I64_MIN && n <= I64_MAX ? n : null;
  }
  const j = jsonNumber(v);
  return j !== null && 'int' in j && j.int <= I64_MAX ? j.int : null;
}

/** `as_u64` of a JSON number, or a `u128` digit string. */
function bigUint(v: In): bigint | null {
  if (typeof v === 'string') {
    const d = digits(v);
    if (d === null) return null;
    const n = BigInt(d);
    return n <= U128_MAX ? n : null;
  }
  const j = jsonNumber(v);
  return j !== null && 'int' in j && j.int >= 0n ? j.int : null;
}

/** `as_i64` of a JSON number, or an `i128` decimal string (`-` allowed). */
function bigInt(v: In): bigint | null {
  if (typeof v === 'string') {
    const neg = v.startsWith('-');
    const d = digits(neg ? v.slice(1) : v);
    if (d === null) return null;
    const n = neg ? -BigInt(d) : BigInt(d);
    return n >= I128_MIN && n <= I128_MAX ? n : null;
  }
  const j = jsonNumber(v);
  return j !== null && 'int' in j && j.int <= I64_MAX ? j.int : null;
}

/** `0x` (or `0X`) hex of any even length, as Rust's `hex::decode`. */
function hexBytes(v: In): Uint8Array | null {
  if (typeof v !== 'string' || !(v.startsWith('0x') || v.startsWith('0X'))) return null;
  const d = v.slice(2);
  if (d.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(d)) return null;
  const out = new Uint8Array(d.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(d.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function has(o: { readonly [key: string]: AbiInput }, k: string): boolean {
  return Object.hasOwn(o, k) && o[k] !== undefined;
}

/** The first key of `o` (in Rust's sorted order) that `known` lacks. */
function unknownKey(o: { readonly [key: string]: AbiInput }, known: readonly string[]): string | undefined {
  return Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort(compareCodePoints)
    .find((k) => !known.includes(k));
}

class Encoder {
  readonly #abi: Abi;
  readonly out = new Sink();

  constructor(abi: Abi) {
    this.#abi = abi;
  }

  named(fields: readonly Field[], o: { readonly [key: string]: AbiInput }, at: string, path: (f: Field) => string): void {
    const k = unknownKey(
      o,
      fields.map((f) => f.name),
    );
    if (k !== undefined) throw AbiError.value(at, `unknown field \`${k}\``);
    for (const f of fields) {
      if (!has(o, f.name)) throw AbiError.value(path(f), 'missing');
      this.value(path(f), f.type, o[f.name], 1);
    }
  }

  value(path: string, ty: TypeRef, v: In, depth: number): void {
    if (depth > VALUE_DEPTH_MAX) throw AbiError.value(path, 'value nested too deeply');
    const expected = (what: string): AbiError => AbiError.value(path, `expected ${what}, got ${show(v)}`);
    const out = this.out;
    switch (ty.kind) {
      case 'unit':
        if (v !== null) throw expected('null');
        return;
      case 'bool':
        if (typeof v !== 'boolean') throw expected('a boolean');
        out.push(v ? 1 : 0);
        return;
      case 'u8':
        out.le(smallUint(v, 0xffn) ?? throwIt(expected('u8 (0..=255)')), 1);
        return;
      case 'u16':
        out.le(smallUint(v, 0xffffn) ?? throwIt(expected('u16 (0..=65535)')), 2);
        return;
      case 'u32':
        out.le(smallUint(v, U32_MAX) ?? throwIt(expected('u32')), 4);
        return;
      case 'i8': {
        const n = smallInt(v) ?? throwIt(expected('i8'));
        if (n < -128n || n > 127n) throw expected('i8 (-128..=127)');
        out.le(n, 1);
        return;
      }
      case 'i16': {
        const n = smallInt(v) ?? throwIt(expected('i16'));
        if (n < -32768n || n > 32767n) throw expected('i16');
        out.le(n, 2);
        return;
      }
      case 'i32': {
        const n = smallInt(v) ?? throwIt(expected('i32'));
        if (n < -(2n ** 31n) || n >= 2n ** 31n) throw expected('i32');
        out.le(n, 4);
        return;
      }
      case 'u64': {
        const n = bigUint(v) ?? throwIt(expected('u64 as a decimal string'));
        if (n > U64_MAX) throw expected('u64 (at most 18446744073709551615)');
        out.le(n, 8);
        return;
      }
      case 'u128':
        out.le(bigUint(v) ?? throwIt(expected('u128 as a decimal string')), 16);
        return;
      case 'i64': {
        const n = bigInt(v) ?? throwIt(expected('i64 as a decimal string'));
        if (n < I64_MIN || n > I64_MAX) throw expected('i64 in range');
        out.le(n, 8);
        return;
      }
      case 'i128':
        out.le(bigInt(v) ?? throwIt(expected('i128 as a decimal string')), 16);
        return;
      case 'string':
        if (typeof v !== 'string') throw expected('a string');
        this.#bytes(path, utf8Encoder.encode(v));
        return;
      case 'bytes':
        this.#bytes(path, hexBytes(v) ?? throwIt(expected('bytes as 0x-prefixed hex')));
        return;
      case 'address': {
        if (typeof v !== 'string') throw expected('an address as 0x-prefixed hex');
        let a: Address;
        try {
          a = Address.parse(v);
        } catch (e) {
          if (e instanceof AddressError) throw AbiError.value(path, `${e.message}, got ${show(v)}`);
          throw e;
        }
        out.bytes(a.toBytes());
        return;
      }
      case 'array': {
        if (ty.of.kind === 'u8') {
          const b = hexBytes(v);
          if (b === null || b.length !== ty.length) throw expected(`${ty.length} bytes as 0x-prefixed hex`);
          out.bytes(b);
          return;
        }
        if (!Array.isArray(v) || v.length !== ty.length) throw expected(`an array of ${ty.length} elements`);
        (v as readonly In[]).forEach((item, i) => this.value(`${path}[${i}]`, ty.of, item, depth + 1));
        return;
      }
      case 'vec':
        if (!Array.isArray(v)) throw expected('an array');
        out.le(BigInt(v.length), 4);
        (v as readonly In[]).forEach((item, i) => this.value(`${path}[${i}]`, ty.of, item, depth + 1));
        return;
      case 'option':
        if (v === null) {
          out.push(0);
        } else {
          out.push(1);
          this.value(path, ty.of, v, depth + 1);
        }
        return;
      case 'tuple':
        if (!Array.isArray(v) || v.length !== ty.items.length) throw expected(`an array of ${ty.items.length} elements`);
        ty.items.forEach((t, i) => this.value(`${path}[${i}]`, t, (v as readonly In[])[i], depth + 1));
        return;
      case 'defined': {
        const name = ty.name;
        const def = this.#abi.typeDef(name);
        if (def === null) throw AbiError.value(path, `type \`${name}\` is not defined`);
        if (def.kind === 'struct') {
          this.#fields(path, name, def.fields, v, depth);
          return;
        }
        let vname: string;
        let body: In;
        if (typeof v === 'string') {
          vname = v;
          body = null;
        } else if (isObject(v) && Object.keys(v).filter((k) => v[k] !== undefined).length === 1) {
          vname = Object.keys(v).find((k) => v[k] !== undefined)!;
          body = v[vname];
        } else {
          throw expected(`a \`${name}\` variant as "Name" or {"Name": fields}`);
        }
        const i = def.variants.findIndex((x) => x.name === vname);
        if (i < 0) throw AbiError.value(path, `\`${name}\` has no variant \`${vname}\``);
        out.push(i);
        this.#fields(`${path}.${vname}`, vname, def.variants[i]!.fields, body, depth);
        return;
      }
    }
  }

  #fields(path: string, name: string, fields: Fields, v: In, depth: number): void {
    if (fields.kind === 'unit' && v === null) return;
    if (fields.kind === 'named' && isObject(v)) {
      const k = unknownKey(
        v,
        fields.fields.map((f) => f.name),
      );
      if (k !== undefined) throw AbiError.value(path, `\`${name}\` has no field \`${k}\``);
      for (const f of fields.fields) {
        const p = `${path}.${f.name}`;
        if (!has(v, f.name)) throw AbiError.value(p, 'missing');
        this.value(p, f.type, v[f.name], depth + 1);
      }
      return;
    }
    if (fields.kind === 'unnamed' && Array.isArray(v) && v.length === fields.types.length) {
      fields.types.forEach((t, i) => this.value(`${path}[${i}]`, t, (v as readonly In[])[i], depth + 1));
      return;
    }
    switch (fields.kind) {
      case 'unit':
        throw AbiError.value(path, `expected null for \`${name}\`, got ${show(v)}`);
      case 'named':
        throw AbiError.value(path, `expected an object for \`${name}\`, got ${show(v)}`);
      case 'unnamed':
        throw AbiError.value(path, `expected an array of ${fields.types.length} elements for \`${name}\`, got ${show(v)}`);
    }
  }

  #bytes(path: string, b: Uint8Array): void {
    if (b.length > 0xffff_ffff) throw AbiError.value(path, 'longer than 2^32-1 bytes');
    this.out.le(BigInt(b.length), 4);
    this.out.bytes(b);
  }
}

function throwIt(e: Error): never {
  throw e;
}

// ---------------------------------------------------------------------------
// Decoding

class Decoder {
  readonly #abi: Abi;
  readonly #bytes: Uint8Array;
  #pos = 0;
  #values = 0;

  constructor(abi: Abi, bytes: Uint8Array) {
    this.#abi = abi;
    this.#bytes = bytes;
  }

  finish(path: string): void {
    if (this.#pos !== this.#bytes.length) {
      throw AbiError.decode(path, `${this.#bytes.length - this.#pos} trailing bytes`);
    }
  }

  #take(path: string, n: number): Uint8Array {
    if (this.#pos + n > this.#bytes.length) {
      throw AbiError.decode(path, `input ends early: need ${n} bytes at offset ${this.#pos}`);
    }
    const s = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return s;
  }

  #uint(path: string, width: number): bigint {
    const b = this.#take(path, width);
    let n = 0n;
    for (let i = width - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
    return n;
  }

  #int(path: string, width: number): bigint {
    return BigInt.asIntN(width * 8, this.#uint(path, width));
  }

  #len(path: string): number {
    return Number(this.#uint(path, 4));
  }

  value(path: string, ty: TypeRef, depth: number): JsonValue {
    if (depth > VALUE_DEPTH_MAX) throw AbiError.decode(path, 'value nested too deeply');
    this.#values++;
    if (this.#values > VALUES_MAX) throw AbiError.decode(path, `more than ${VALUES_MAX} values`);
    switch (ty.kind) {
      case 'unit':
        return null;
      case 'bool': {
        const b = this.#take(path, 1)[0]!;
        if (b > 1) throw AbiError.decode(path, `invalid bool byte ${b}`);
        return b === 1;
      }
      case 'u8':
        return Number(this.#uint(path, 1));
      case 'u16':
        return Number(this.#uint(path, 2));
      case 'u32':
        return Number(this.#uint(path, 4));
      case 'i8':
        return Number(this.#int(path, 1));
      case 'i16':
        return Number(this.#int(path, 2));
      case 'i32':
        return Number(this.#int(path, 4));
      case 'u64':
        return this.#uint(path, 8).toString();
      case 'i64':
        return this.#int(path, 8).toString();
      case 'u128':
        return this.#uint(path, 16).toString();
      case 'i128':
        return this.#int(path, 16).toString();
      case 'string': {
        const n = this.#len(path);
        const b = this.#take(path, n);
        try {
          return utf8.decode(b);
        } catch {
          throw AbiError.decode(path, 'string is not UTF-8');
        }
      }
      case 'bytes': {
        const n = this.#len(path);
        return toHex(this.#take(path, n));
      }
      case 'address':
        return Address.fromBytes(this.#take(path, 20)).toChecksum();
      case 'array':
        if (ty.of.kind === 'u8') return toHex(this.#take(path, ty.length));
        return this.#seq(path, ty.of, ty.length, depth);
      case 'vec':
        return this.#seq(path, ty.of, this.#len(path), depth);
      case 'option': {
        const tag = this.#take(path, 1)[0]!;
        if (tag === 0) return null;
        if (tag === 1) return this.value(path, ty.of, depth + 1);
        throw AbiError.decode(path, `invalid option tag ${tag}`);
      }
      case 'tuple':
        return ty.items.map((t, i) => this.value(`${path}[${i}]`, t, depth + 1));
      case 'defined': {
        const name = ty.name;
        const def = this.#abi.typeDef(name);
        if (def === null) throw AbiError.decode(path, `type \`${name}\` is not defined`);
        if (def.kind === 'struct') return this.#fields(path, def.fields, depth);
        const i = this.#take(path, 1)[0]!;
        const v = def.variants[i];
        if (v === undefined) throw AbiError.decode(path, `\`${name}\` has no variant index ${i}`);
        if (v.fields.kind === 'unit') return v.name;
        const body = this.#fields(`${path}.${v.name}`, v.fields, depth);
        const out: JsonObject = {};
        setKey(out, v.name, body);
        return out;
      }
    }
  }

  #seq(path: string, t: TypeRef, n: number, depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(`${path}[${i}]`, t, depth + 1));
    return out;
  }

  #fields(path: string, fields: Fields, depth: number): JsonValue {
    switch (fields.kind) {
      case 'unit':
        return null;
      case 'named': {
        const out: JsonObject = {};
        for (const f of fields.fields) setKey(out, f.name, this.value(`${path}.${f.name}`, f.type, depth + 1));
        return out;
      }
      case 'unnamed':
        return fields.types.map((t, i) => this.value(`${path}[${i}]`, t, depth + 1));
    }
  }
}

/** Sets `o[k]`, as data even for a `__proto__` key. */
function setKey(o: JsonObject, k: string, v: JsonValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------
// The ABI

/** Converts an input to the JSON value it stands for (addresses and bytes to hex). */
function normalize(v: AbiInput | undefined): In {
  if (typeof v === 'bigint' && (v < I64_MIN || v > U64_MAX)) return v.toString();
  if (v instanceof Address) return v.toChecksum();
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return (v as readonly (AbiInput | undefined)[]).map(normalize) as AbiInput[];
  if (isObject(v)) {
    const out: { [key: string]: AbiInput } = {};
    for (const k of Object.keys(v)) {
      const x = normalize(v[k]);
      if (x !== undefined) Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

function topicBytes(t: Hash | Uint8Array): Uint8Array {
  const b = t instanceof Hash ? t.toBytes() : t;
  if (!(b instanceof Uint8Array) || b.length !== 32) throw new RangeError('an event topic is 32 bytes');
  return b;
}

/** First topic of the event called `name`: the Keccak-256 of its name. */
export function eventTopic(name: string): Hash {
  return keccak256(utf8Encoder.encode(name));
}

/** A contract's interface, as embedded in its Wasm. Immutable. */
export class Abi {
  /** Format version, {@link ABI_VERSION}. */
  readonly abiVersion: number;
  /** Contract (crate) name. */
  readonly name: string;
  /** Contract (crate) version. */
  readonly version: string;
  readonly methods: readonly Method[];
  readonly events: readonly EventDef[];
  /** Definitions of the user structs and enums the methods and events use. */
  readonly types: readonly TypeDef[];
  readonly #types = new Map<string, TypeDef>();
  readonly #methods = new Map<string, Method>();
  /** Events by the hex of their first topic (the first of a name, as Rust's search). */
  readonly #byTopic = new Map<string, EventDef>();

  private constructor(
    abiVersion: number,
    name: string,
    version: string,
    methods: readonly Method[],
    events: readonly EventDef[],
    types: readonly TypeDef[],
  ) {
    this.abiVersion = abiVersion;
    this.name = name;
    this.version = version;
    this.methods = methods;
    this.events = events;
    this.types = types;
    for (const t of types) if (!this.#types.has(t.name)) this.#types.set(t.name, t);
    for (const m of methods) if (!this.#methods.has(m.name)) this.#methods.set(m.name, m);
    for (const e of events) {
      const topic = eventTopic(e.name).toString();
      if (!this.#byTopic.has(topic)) this.#byTopic.set(topic, e);
    }
  }

  /**
   * Parses and validates an ABI document (JSON text or its UTF-8 bytes),
   * as Rust's `Abi::from_json`.
   *
   * @throws {AbiError} `invalid_json` or `invalid`.
   */
  static parse(json: string | Uint8Array): Abi {
    const got = readJson(json, (r) => streamStruct(r, 'struct Abi', ABI_SPECS));
    const abi = new Abi(
      got.get('abi_version') as number,
      got.get('name') as string,
      got.get('version') as string,
      got.get('methods') as Method[],
      (got.get('events') as EventDef[] | undefined) ?? [],
      (got.get('types') as TypeDef[] | undefined) ?? [],
    );
    abi.#validate();
    return abi;
  }

  /**
   * An ABI from its parsed JSON (such as `get_contract`'s `abi` member),
   * validated as {@link Abi.parse} does.
   *
   * @throws {AbiError} `invalid_json` or `invalid`.
   */
  static fromJsonValue(doc: JsonValue): Abi {
    return Abi.parse(stringifyJson(doc));
  }

  /**
   * Reads and validates the ABI from the `stele_abi` custom section of a
   * contract's Wasm, as Rust's `Abi::from_wasm`.
   *
   * @throws {AbiError}
   */
  static fromWasm(wasm: Uint8Array): Abi {
    const section = abiSection(wasm);
    if (section === null) throw AbiError.noAbiSection();
    return Abi.parse(section);
  }

  /** The document as compact JSON, as Rust's `Abi::to_json`. */
  toJson(): string {
    const method = (m: Method): string =>
      `{"name":${JSON.stringify(m.name)},"kind":"${m.kind}","payable":${m.payable},"args":${fieldsJson(m.args)},"returns":${typeRefJson(m.returns)}${
        m.error === null ? '' : `,"error":${typeRefJson(m.error)}`
      }}`;
    const event = (e: EventDef): string =>
      `{"name":${JSON.stringify(e.name)},"topics":${fieldsJson(e.topics)},"data":${fieldsJson(e.data)}}`;
    const typeDef = (t: TypeDef): string =>
      t.kind === 'struct'
        ? `{"kind":"struct","name":${JSON.stringify(t.name)},"fields":${shapeJson(t.fields)}}`
        : `{"kind":"enum","name":${JSON.stringify(t.name)},"variants":[${t.variants
            .map((v) => `{"name":${JSON.stringify(v.name)},"fields":${shapeJson(v.fields)}}`)
            .join(',')}]}`;
    return `{"abi_version":${this.abiVersion},"name":${JSON.stringify(this.name)},"version":${JSON.stringify(
      this.version,
    )},"methods":[${this.methods.map(method).join(',')}],"events":[${this.events.map(event).join(
      ',',
    )}],"types":[${this.types.map(typeDef).join(',')}]}`;
  }

  /**
   * The method called `name`.
   *
   * @throws {AbiError} `unknown_method`.
   */
  method(name: string): Method {
    return this.#methods.get(name) ?? throwIt(AbiError.unknownMethod(name));
  }

  /** The definition of the user type called `name`, or `null`. */
  typeDef(name: string): TypeDef | null {
    return this.#types.get(name) ?? null;
  }

  /** The event called `name`, or `null`. */
  event(name: string): EventDef | null {
    return this.events.find((e) => e.name === name) ?? null;
  }

  #validate(): void {
    const invalid = (m: string): never => throwIt(AbiError.invalid(m));
    if (this.abiVersion !== ABI_VERSION) invalid(`abi_version ${this.abiVersion} is not the supported ${ABI_VERSION}`);
    for (const [what, n] of [
      ['methods', this.methods.length],
      ['events', this.events.length],
      ['types', this.types.length],
    ] as const) {
      if (n > ITEMS_MAX) invalid(`${n} ${what}, over the maximum of ${ITEMS_MAX}`);
    }
    unique(
      'method',
      this.methods.map((m) => m.name),
    );
    unique(
      'event',
      this.events.map((e) => e.name),
    );
    unique(
      'type',
      this.types.map((t) => t.name),
    );
    if (this.methods.filter((m) => m.kind === 'init').length > 1) invalid('more than one init method');
    for (const m of this.methods) {
      if ((m.kind === 'init') !== (m.name === 'init')) invalid(`method \`${m.name}\`: only \`init\` is the constructor`);
      this.#checkFields(`method \`${m.name}\``, m.args);
      this.#checkRef(`method \`${m.name}\` return`, m.returns, 0);
      if (m.error !== null) this.#checkRef(`method \`${m.name}\` error`, m.error, 0);
    }
    for (const e of this.events) {
      if (e.topics.length > TOPIC_FIELDS_MAX) {
        invalid(`event \`${e.name}\` has ${e.topics.length} topic fields, over the maximum of ${TOPIC_FIELDS_MAX}`);
      }
      this.#checkFields(`event \`${e.name}\``, e.topics);
      this.#checkFields(`event \`${e.name}\``, e.data);
    }
    for (const t of this.types) {
      const at = `type \`${t.name}\``;
      if (t.kind === 'struct') {
        this.#checkShape(at, t.fields);
      } else {
        if (t.variants.length > FIELDS_MAX) invalid(`${at}: too many variants`);
        unique(
          'variant',
          t.variants.map((v) => v.name),
        );
        for (const v of t.variants) this.#checkShape(`${at} variant \`${v.name}\``, v.fields);
      }
    }
  }

  #checkShape(at: string, fields: Fields): void {
    if (fields.kind === 'named') this.#checkFields(at, fields.fields);
    if (fields.kind === 'unnamed') {
      if (fields.types.length > FIELDS_MAX) throw AbiError.invalid(`${at}: too many fields`);
      for (const t of fields.types) this.#checkRef(at, t, 0);
    }
  }

  #checkFields(at: string, fields: readonly Field[]): void {
    if (fields.length > FIELDS_MAX) throw AbiError.invalid(`${at}: too many fields`);
    unique(
      'field',
      fields.map((f) => f.name),
    );
    for (const f of fields) this.#checkRef(`${at} field \`${f.name}\``, f.type, 0);
  }

  #checkRef(at: string, ty: TypeRef, depth: number): void {
    if (depth > TYPE_DEPTH_MAX) throw AbiError.invalid(`${at}: type nested too deeply`);
    switch (ty.kind) {
      case 'vec':
      case 'option':
      case 'array':
        this.#checkRef(at, ty.of, depth + 1);
        return;
      case 'tuple':
        if (ty.items.length > FIELDS_MAX) throw AbiError.invalid(`${at}: tuple too long`);
        for (const t of ty.items) this.#checkRef(at, t, depth + 1);
        return;
      case 'defined':
        if (this.typeDef(ty.name) === null) throw AbiError.invalid(`${at}: type \`${ty.name}\` is not defined`);
        return;
      default:
        return;
    }
  }

  /**
   * Encodes the arguments of `method` from a JSON array (in order) or
   * object (by name); `null` stands for no arguments.
   *
   * @throws {AbiError} `unknown_method` or `value`.
   */
  encodeArgs(method: string, args: AbiInput): Uint8Array {
    const m = this.method(method);
    const enc = new Encoder(this);
    const path = (f: Field): string => `arg \`${f.name}\``;
    const v = normalize(args);
    if (v === null && m.args.length === 0) return new Uint8Array(0);
    if (Array.isArray(v)) {
      const items = v as readonly In[];
      if (items.length !== m.args.length) {
        throw AbiError.value('args', `expected ${m.args.length} arguments, got ${items.length}`);
      }
      m.args.forEach((f, i) => enc.value(path(f), f.type, items[i], 0));
    } else if (isObject(v)) {
      enc.named(m.args, v, 'args', path);
    } else {
      throw AbiError.value('args', `expected an object or array of arguments, got ${show(v)}`);
    }
    return enc.out.finish();
  }

  /**
   * Encodes one value of `ty`.
   *
   * @throws {AbiError} `value`.
   */
  encodeValue(ty: TypeRef, value: AbiInput): Uint8Array {
    const enc = new Encoder(this);
    enc.value('value', ty, normalize(value), 0);
    return enc.out.finish();
  }

  /**
   * Decodes one Borsh value of `ty` (the whole input).
   *
   * @throws {AbiError} `decode`.
   */
  decodeValue(ty: TypeRef, bytes: Uint8Array): JsonValue {
    const dec = new Decoder(this, bytes);
    const v = dec.value('value', ty, 0);
    dec.finish('value');
    return v;
  }

  /**
   * Decodes the arguments of `method` (call input) to an object by name.
   *
   * @throws {AbiError} `unknown_method` or `decode`.
   */
  decodeArgs(method: string, input: Uint8Array): JsonObject {
    const m = this.method(method);
    const dec = new Decoder(this, input);
    const out: JsonObject = {};
    for (const f of m.args) setKey(out, f.name, dec.value(`arg \`${f.name}\``, f.type, 0));
    dec.finish('args');
    return out;
  }

  /**
   * Decodes the return data of a successful call of `method`.
   *
   * @throws {AbiError} `unknown_method` or `decode`.
   */
  decodeReturn(method: string, output: Uint8Array): JsonValue {
    const m = this.method(method);
    const dec = new Decoder(this, output);
    const v = dec.value('return', m.returns, 0);
    dec.finish('return');
    return v;
  }

  /**
   * Decodes the output of a reverted call of `method` by the SDK's tag
   * convention: a message, the method's typed error, or the raw payload.
   *
   * @throws {AbiError} `unknown_method`, or `decode` when a typed error
   *   does not decode.
   */
  decodeRevert(method: string, payload: Uint8Array): Revert {
    const m = this.method(method);
    const raw = (): Revert => ({ kind: 'raw', raw: Uint8Array.from(payload) });
    if (payload[0] === REVERT_MESSAGE) {
      try {
        return { kind: 'message', message: utf8.decode(payload.subarray(1)) };
      } catch {
        return raw();
      }
    }
    if (payload[0] === REVERT_ERROR && m.error !== null) {
      const dec = new Decoder(this, payload.subarray(1));
      const v = dec.value('error', m.error, 0);
      dec.finish('error');
      return { kind: 'error', error: v };
    }
    return raw();
  }

  /**
   * Decodes an event of this contract from its topics and data.
   *
   * @throws {AbiError} `unknown_event` or `decode`.
   */
  decodeEvent(topics: readonly (Hash | Uint8Array)[], data: Uint8Array): DecodedEvent {
    const ts = topics.map(topicBytes);
    const first = ts[0];
    if (first === undefined) throw AbiError.unknownEvent('(none)');
    const event = this.#byTopic.get(toHex(first));
    if (event === undefined) throw AbiError.unknownEvent(toHex(first));
    if (ts.length !== event.topics.length + 1) {
      throw AbiError.decode('topics', `event \`${event.name}\` has ${event.topics.length + 1} topics, got ${ts.length}`);
    }
    const fields: JsonObject = {};
    event.topics.forEach((f, i) => {
      const topic = ts[i + 1]!;
      const path = `topic \`${f.name}\``;
      const n = this.fixedSize(f.type);
      let v: JsonValue;
      if (n !== null && n <= 32) {
        if (topic.subarray(n).some((b) => b !== 0)) throw AbiError.decode(path, 'padding bytes are not zero');
        const dec = new Decoder(this, topic.subarray(0, n));
        v = dec.value(path, f.type, 0);
        dec.finish(path);
      } else {
        v = toHex(topic);
      }
      setKey(fields, f.name, v);
    });
    const dec = new Decoder(this, data);
    for (const f of event.data) setKey(fields, f.name, dec.value(`data \`${f.name}\``, f.type, 0));
    dec.finish('data');
    return { name: event.name, fields };
  }

  /**
   * Size of every encoding of `ty` if it is always the same, else `null`.
   * Topic fields of such types up to 32 bytes are stored padded, others
   * hashed.
   */
  fixedSize(ty: TypeRef): number | null {
    const n = this.#fixed(ty, 0);
    return n === null ? null : Number(n);
  }

  #fixed(ty: TypeRef, depth: number): bigint | null {
    if (depth > VALUE_DEPTH_MAX) return null;
    const sum = (ts: readonly TypeRef[]): bigint | null => {
      let total = 0n;
      for (const t of ts) {
        const n = this.#fixed(t, depth + 1);
        if (n === null) return null;
        total += n;
      }
      return total;
    };
    switch (ty.kind) {
      case 'unit':
        return 0n;
      case 'bool':
      case 'u8':
      case 'i8':
        return 1n;
      case 'u16':
      case 'i16':
        return 2n;
      case 'u32':
      case 'i32':
        return 4n;
      case 'u64':
      case 'i64':
        return 8n;
      case 'u128':
      case 'i128':
        return 16n;
      case 'address':
        return 20n;
      case 'array': {
        const n = this.#fixed(ty.of, depth + 1);
        if (n === null) return null;
        const total = n * BigInt(ty.length);
        return total > U64_MAX ? null : total;
      }
      case 'tuple':
        return sum(ty.items);
      case 'defined': {
        const def = this.typeDef(ty.name);
        if (def === null || def.kind === 'enum') return null;
        switch (def.fields.kind) {
          case 'unit':
            return 0n;
          case 'named':
            return sum(def.fields.fields.map((f) => f.type));
          case 'unnamed':
            return sum(def.fields.types);
        }
        return null;
      }
      default:
        return null;
    }
  }

  /**
   * The topic a `#[topic]` field of type `ty` holding `value` gets: its
   * Borsh encoding zero-padded on the right to 32 bytes when the type is
   * fixed-size within 32 bytes, else the Keccak-256 of the encoding.
   *
   * @throws {AbiError} `value`.
   */
  topicOf(ty: TypeRef, value: AbiInput): Hash {
    const enc = this.encodeValue(ty, value);
    const n = this.fixedSize(ty);
    if (n !== null && n <= 32) {
      const out = new Uint8Array(32);
      out.set(enc);
      return Hash.fromBytes(out);
    }
    return keccak256(enc);
  }

  /**
   * Topics that select the event `name` in a filter: its name topic, then
   * for each value given (in topic-field order) its topic, or `null` (any).
   *
   * @throws {AbiError} `value` (or `invalid` for an unknown event or too many values).
   */
  eventFilterTopics(name: string, values: readonly (AbiInput | undefined)[] = []): (Hash | null)[] {
    const e = this.event(name);
    if (e === null) throw AbiError.invalid(`the contract has no event \`${name}\``);
    if (values.length > e.topics.length) {
      throw AbiError.invalid(`event \`${name}\` has ${e.topics.length} topic fields, got ${values.length} values`);
    }
    return [
      eventTopic(name),
      ...values.map((v, i) => (v === undefined || v === null ? null : this.topicOf(e.topics[i]!.type, v))),
    ];
  }
}

function unique(what: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw AbiError.invalid(`duplicate ${what} \`${n}\``);
    seen.add(n);
  }
}

// ---------------------------------------------------------------------------
// Wasm

function leb32(b: Uint8Array, at: number): [number, number] {
  let result = 0;
  for (let i = 0; i < 5; i++) {
    if (at + i >= b.length) throw AbiError.invalidWasm(`unexpected end-of-file (at offset 0x${(at + i).toString(16)})`);
    const byte = b[at + i]!;
    if (i === 4 && byte > 0x0f) throw AbiError.invalidWasm(`invalid var_u32 (at offset 0x${(at + i).toString(16)})`);
    result += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [result, at + i + 1];
  }
  throw AbiError.invalidWasm(`invalid var_u32 (at offset 0x${(at + 4).toString(16)})`);
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const WASM_VERSION = [0x01, 0x00, 0x00, 0x00];
/** The highest section id of a core module (tag). */
const SECTION_ID_MAX = 13;

/**
 * The ABI JSON as written in a contract's Wasm (its one `stele_abi`
 * custom section, at most {@link ABI_SECTION_BYTES_MAX}), not yet parsed;
 * `null` when the module has no such section. Only the header and the
 * sections' framing are read (the code is not), so the `invalid_wasm`
 * messages are this reader's own.
 *
 * @throws {AbiError} `invalid_wasm`, `duplicate_abi_section` or `abi_too_large`.
 */
export function abiSection(wasm: Uint8Array): Uint8Array | null {
  const eof = (at: number): AbiError => AbiError.invalidWasm(`unexpected end-of-file (at offset 0x${at.toString(16)})`);
  for (let i = 0; i < 4; i++) {
    if (i >= wasm.length) throw eof(i);
    if (wasm[i] !== WASM_MAGIC[i]) throw AbiError.invalidWasm('magic header not detected: bad magic number (at offset 0x0)');
  }
  for (let i = 4; i < 8; i++) {
    if (i >= wasm.length) throw eof(i);
    if (wasm[i] !== WASM_VERSION[i - 4]) throw AbiError.invalidWasm('unknown binary version (at offset 0x4)');
  }
  let found: Uint8Array | null = null;
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at]!;
    if (id > SECTION_ID_MAX) throw AbiError.invalidWasm(`malformed section id: ${id} (at offset 0x${at.toString(16)})`);
    const [size, start] = leb32(wasm, at + 1);
    const end = start + size;
    if (end > wasm.length) throw eof(wasm.length);
    if (id === 0) {
      const [nameLen, nameAt] = leb32(wasm.subarray(0, end), start);
      if (nameAt + nameLen > end) throw eof(end);
      let name: string;
      try {
        name = utf8.decode(wasm.subarray(nameAt, nameAt + nameLen));
      } catch {
        throw AbiError.invalidWasm(`malformed UTF-8 encoding (at offset 0x${nameAt.toString(16)})`);
      }
      if (name === ABI_SECTION) {
        if (found !== null) throw AbiError.duplicateAbiSection();
        const data = wasm.subarray(nameAt + nameLen, end);
        if (data.length > ABI_SECTION_BYTES_MAX) throw AbiError.abiTooLarge(data.length, ABI_SECTION_BYTES_MAX);
        found = data;
      }
    }
    at = end;
  }
  return found === null ? null : Uint8Array.from(found);
}
