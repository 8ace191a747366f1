// The codec's bounds and errors, beside what the Rust vectors check.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Address,
  DEFAULT_LIMITS,
  DecodeError,
  EncodeError,
  Reader,
  Writer,
  decode,
  decodeTransaction,
  encodeTransaction,
  fromHex,
  toHex,
  type DecodeErrorDetail,
  type Transaction,
} from '@stele/client';

function decodeFails(run: () => unknown, detail: DecodeErrorDetail, message: string): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof DecodeError, `expected a DecodeError, got ${String(e)}`);
    assert.deepEqual(e.detail, detail);
    assert.equal(e.message, message);
    return true;
  });
}

test('integers are fixed-width little-endian', () => {
  const w = new Writer()
    .u8(0xab)
    .u16(0x0102)
    .u32(0x01020304)
    .u64(0x0102030405060708n)
    .u128((1n << 128n) - 2n)
    .bool(true)
    .bool(false);
  const bytes = w.finish();
  assert.equal(
    toHex(bytes),
    '0xab' + '0201' + '04030201' + '0807060504030201' + 'fe' + 'ff'.repeat(15) + '01' + '00',
  );
  const r = new Reader(bytes);
  assert.equal(r.u8('a'), 0xab);
  assert.equal(r.u16('b'), 0x0102);
  assert.equal(r.u32('c'), 0x01020304);
  assert.equal(r.u64('d'), 0x0102030405060708n);
  assert.equal(r.u128('e'), (1n << 128n) - 2n);
  assert.equal(r.bool(), true);
  assert.equal(r.bool(), false);
  r.finish();
});

test('extreme values round-trip', () => {
  for (const v of [0n, 1n, (1n << 64n) - 1n, 1n << 63n]) {
    assert.equal(decode(new Writer().u64(v).finish(), (r) => r.u64('v')), v);
  }
  for (const v of [0n, (1n << 128n) - 1n, 1n << 64n, (1n << 64n) - 1n]) {
    assert.equal(decode(new Writer().u128(v).finish(), (r) => r.u128('v')), v);
  }
  assert.equal(decode(new Writer().u32(0xffff_ffff).finish(), (r) => r.u32('v')), 0xffff_ffff);
});

test('the writer refuses values outside their type', () => {
  const cases: [string, (w: Writer) => unknown][] = [
    ['u8 256', (w) => w.u8(256)],
    ['u8 -1', (w) => w.u8(-1)],
    ['u16 1.5', (w) => w.u16(1.5)],
    ['u32 2^32', (w) => w.u32(2 ** 32)],
    ['u32 NaN', (w) => w.u32(Number.NaN)],
    ['u64 -1', (w) => w.u64(-1n)],
    ['u64 2^64', (w) => w.u64(1n << 64n)],
    ['u64 given a number', (w) => w.u64(5 as unknown as bigint)],
    ['u128 2^128', (w) => w.u128(1n << 128n)],
    ['bool given 1', (w) => w.bool(1 as unknown as boolean)],
    ['fixed of the wrong length', (w) => w.fixed(new Uint8Array(19), 20, 'address')],
    ['bytes over their maximum', (w) => w.bytes(new Uint8Array(3), 2, 'blob')],
    ['a sequence over its maximum', (w) => w.seq([1, 2, 3], 2, 'items', (w, n) => w.u8(n))],
  ];
  for (const [name, run] of cases) {
    assert.throws(() => run(new Writer()), EncodeError, name);
  }
  assert.throws(() => new Writer().bytes(new Uint8Array(3), 2, 'blob'), {
    message: 'blob has length 3, over the maximum of 2',
  });
});

test('the writer grows past its first buffer without losing bytes', () => {
  const w = new Writer();
  const big = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
  w.u8(7).bytes(big, 1 << 20, 'big').fixed(new Uint8Array(20).fill(9), 20, 'x').u64(5n);
  const r = new Reader(w.finish());
  assert.equal(r.u8('a'), 7);
  assert.deepEqual(r.bytes(1 << 20, 'big'), big);
  assert.deepEqual(r.take(20, 'x'), new Uint8Array(20).fill(9));
  assert.equal(r.u64('n'), 5n);
  r.finish();
});

test('truncated input names what was being read', () => {
  decodeFails(
    () => decode(Uint8Array.of(1, 2, 3), (r) => r.u32('height')),
    { kind: 'unexpected_end', what: 'height', needed: 4, remaining: 3 },
    'unexpected end of input reading height: needed 4 bytes, 3 left',
  );
  decodeFails(
    () => decode(new Uint8Array(0), (r) => r.u8('tag')),
    { kind: 'unexpected_end', what: 'tag', needed: 1, remaining: 0 },
    'unexpected end of input reading tag: needed 1 bytes, 0 left',
  );
});

test('trailing bytes are refused', () => {
  assert.equal(decode(Uint8Array.of(1, 0, 0, 0), (r) => r.u32('v')), 1);
  decodeFails(
    () => decode(Uint8Array.of(1, 0, 0, 0, 9), (r) => r.u32('v')),
    { kind: 'trailing_bytes', count: 1 },
    '1 trailing bytes after the value',
  );
});

test('a boolean is 0 or 1 and nothing else', () => {
  decodeFails(() => decode(Uint8Array.of(2), (r) => r.bool()), { kind: 'invalid_bool', byte: 2 }, 'invalid boolean byte 2');
  decodeFails(() => decode(Uint8Array.of(0xff), (r) => r.bool()), { kind: 'invalid_bool', byte: 255 }, 'invalid boolean byte 255');
});

test('an option tag is 0 or 1', () => {
  const read = (r: Reader): number | null => r.option('memo', (r) => r.u8('memo'));
  assert.equal(decode(Uint8Array.of(0), read), null);
  assert.equal(decode(Uint8Array.of(1, 7), read), 7);
  decodeFails(() => decode(Uint8Array.of(2, 7), read), { kind: 'invalid_tag', what: 'memo', tag: 2 }, 'invalid tag 2 for memo');
  assert.deepEqual(new Writer().option(null, (w, v: number) => w.u8(v)).finish(), Uint8Array.of(0));
  assert.deepEqual(new Writer().option(7, (w, v) => w.u8(v)).finish(), Uint8Array.of(1, 7));
});

test('a length over its limit is refused before anything is read', () => {
  decodeFails(
    () => decode(Uint8Array.of(3, 0, 0, 0, 1, 2, 3), (r) => r.bytes(2, 'blob')),
    { kind: 'length_over_limit', what: 'blob', len: 3, max: 2 },
    'blob has length 3, over the maximum of 2',
  );
});

test('a length past the end of the input is refused before allocating', () => {
  // 0xffffffff bytes announced, 2 present, no limit: refused without a 4 GiB buffer.
  decodeFails(
    () => decode(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2), (r) => r.bytes(Number.MAX_SAFE_INTEGER, 'blob')),
    { kind: 'unexpected_end', what: 'blob', needed: 0xffff_ffff, remaining: 2 },
    'unexpected end of input reading blob: needed 4294967295 bytes, 2 left',
  );
  // A count is checked against the smallest size of its elements.
  let calls = 0;
  decodeFails(
    () =>
      decode(Uint8Array.of(100, 0, 0, 0, ...new Uint8Array(60)), (r) =>
        r.seq(1024, 61, 'validators', (r) => {
          calls++;
          return r.take(61, 'validator');
        }),
      ),
    { kind: 'unexpected_end', what: 'validators', needed: 6100, remaining: 60 },
    'unexpected end of input reading validators: needed 6100 bytes, 60 left',
  );
  assert.equal(calls, 0);
});

test('input over the limit is refused whole', () => {
  const limits = { ...DEFAULT_LIMITS, inputBytesMax: 2 };
  decodeFails(
    () => decode(new Uint8Array(4), (r) => r.u32('v'), limits),
    { kind: 'input_too_long', len: 4, max: 2 },
    'input is 4 bytes, over the maximum of 2',
  );
});

test('decoded bytes do not alias the input', () => {
  const input = Uint8Array.of(2, 0, 0, 0, 5, 6);
  const out = decode(input, (r) => r.bytes(10, 'blob'));
  input[4] = 0;
  assert.deepEqual(out, Uint8Array.of(5, 6));
});

const call = (method: string, argsLength = 0): Transaction => ({
  chainId: 1n,
  nonce: 0n,
  gasLimit: 1n,
  gasPrice: 1n,
  payload: {
    kind: 'call',
    contract: Address.ZERO,
    method,
    args: new Uint8Array(argsLength),
    value: 0n,
  },
});

test('transactions the node would refuse are not encoded', () => {
  assert.throws(() => encodeTransaction(call('1abc')), {
    name: 'EncodeError',
    message: 'invalid method name: method name starts with a digit',
  });
  assert.throws(() => encodeTransaction(call('')), { message: 'invalid method name: method name is empty' });
  assert.throws(() => encodeTransaction(call('a'.repeat(65))), { message: 'invalid method name: method name is too long' });
  assert.throws(() => encodeTransaction(call('get-balance')), EncodeError);
  assert.throws(() => encodeTransaction(call('café')), EncodeError);
  assert.throws(() => encodeTransaction(call('ok', 128 * 1024 + 1)), {
    message: 'call args has length 131073, over the maximum of 131072',
  });
  const max = call('m'.repeat(64), 128 * 1024);
  assert.equal(decodeTransaction(encodeTransaction(max)).payload.kind, 'call');
});

test('decoding honours smaller limits', () => {
  const bytes = encodeTransaction(call('transfer', 10));
  const limits = { ...DEFAULT_LIMITS, argsBytesMax: 9 };
  assert.throws(() => decodeTransaction(bytes, limits), {
    message: 'call args has length 10, over the maximum of 9',
  });
  assert.throws(() => decodeTransaction(bytes, { ...DEFAULT_LIMITS, methodBytesMax: 7 }), {
    message: 'method name has length 8, over the maximum of 7',
  });
});

test('a method name with a byte-order mark is not taken for a bare name', () => {
  const bytes = encodeTransaction(call('abc'));
  // Replace "abc" (length 3) with EF BB BF 61 (a BOM then "a", length 4).
  const at = 32 + 1 + 20;
  const patched = Uint8Array.from([
    ...bytes.subarray(0, at),
    4, 0, 0, 0, 0xef, 0xbb, 0xbf, 0x61,
    ...bytes.subarray(at + 4 + 3),
  ]);
  assert.throws(() => decodeTransaction(patched), {
    message: 'invalid method name: method name has a character outside [A-Za-z0-9_]',
  });
});

test('hex helpers', () => {
  assert.equal(toHex(Uint8Array.of(0, 0xab, 0xff)), '0x00abff');
  assert.deepEqual(fromHex('0xABff'), Uint8Array.of(0xab, 0xff));
  assert.deepEqual(fromHex('0X00'), Uint8Array.of(0));
  assert.deepEqual(fromHex('0x'), new Uint8Array(0));
  assert.throws(() => fromHex('abcd'), { name: 'HexError', message: 'missing 0x prefix' });
  assert.throws(() => fromHex('0xabc'), { name: 'HexError', message: 'invalid hex: odd number of digits' });
  assert.throws(() => fromHex('0xzz'), { name: 'HexError', message: 'invalid hex: invalid character "z" at position 0' });
  assert.throws(() => fromHex('0xaabb', 3), { name: 'HexError', message: 'expected 3 bytes, got 2' });
});
