/**
 * Hex text forms, as Stele's Rust types print and parse them: `0x` followed
 * by lowercase hex on output; `0x` or `0X` and either case on input.
 *
 * @module
 */

/** Why a hex string was refused. The messages match the Rust node's. */
export class HexError extends Error {
  override readonly name = 'HexError';
  /** `missing_prefix`, `invalid` (odd length or a non-hex digit) or `wrong_length`. */
  readonly kind: 'missing_prefix' | 'invalid' | 'wrong_length';

  constructor(kind: HexError['kind'], message: string) {
    super(message);
    this.kind = kind;
  }
}

const DIGITS = '0123456789abcdef';

/** `0x` followed by the lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '0x';
  for (const b of bytes) {
    out += DIGITS[b >> 4]! + DIGITS[b & 0x0f]!;
  }
  return out;
}

function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/**
 * Parses `0x`-prefixed hex (either case). With `expectedLength`, the result
 * must be exactly that many bytes.
 *
 * @throws {HexError} when the prefix is missing, a digit is not hex, the
 *   digit count is odd, or the length is not `expectedLength`.
 */
export function fromHex(text: string, expectedLength?: number): Uint8Array {
  if (typeof text !== 'string' || !(text.startsWith('0x') || text.startsWith('0X'))) {
    throw new HexError('missing_prefix', 'missing 0x prefix');
  }
  const digits = text.length - 2;
  if (digits % 2 !== 0) {
    throw new HexError('invalid', 'invalid hex: odd number of digits');
  }
  const out = new Uint8Array(digits / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(text.charCodeAt(2 + 2 * i));
    const lo = nibble(text.charCodeAt(3 + 2 * i));
    if (hi < 0 || lo < 0) {
      const at = hi < 0 ? 2 * i : 2 * i + 1;
      throw new HexError(
        'invalid',
        `invalid hex: invalid character ${JSON.stringify(text[2 + at])} at position ${at}`,
      );
    }
    out[i] = (hi << 4) | lo;
  }
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new HexError('wrong_length', `expected ${expectedLength} bytes, got ${out.length}`);
  }
  return out;
}

/** Whether two byte strings are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/** Lexicographic order of two byte strings, as Rust orders `[u8; N]`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The concatenation of `parts`. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Checks that `bytes` is a `Uint8Array` of exactly `length` bytes. */
export function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array`);
  }
  if (bytes.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes, got ${bytes.length}`);
  }
}
