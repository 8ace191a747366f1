// Checks every vector the Rust ABI wrote to fixtures/abi.json
// (sdk/abi/tests/ts_vectors.rs): ABIs parsed and written back, arguments
// encoded to the exact Borsh bytes and decoded back, values, return data,
// reverts and events decoded to the same JSON, event topics, the limits,
// the ABI section of Wasm modules, and every refusal with Rust's error kind
// and message (the JSON reader's position left out).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Address, Hash, fromHex, parseJson, stringifyJson, toHex, type JsonObject, type JsonValue } from '@stele/client';

// The ABI module is not exported by the package index yet: its types come
// from the built declarations and its code from the built module next to
// this test's output (dist/test/ -> dist/abi.js).
import type * as AbiModule from '../dist/abi.js';

const { ABI_SECTION, ABI_SECTION_BYTES_MAX, ABI_VERSION, Abi, AbiError, REVERT_ERROR, REVERT_MESSAGE, abiSection, eventTopic, parseTypeRef, revertToJson } =
  (await import(new URL('../abi.js', import.meta.url).href)) as typeof AbiModule;
type Abi = AbiModule.Abi;

const v = asObj(parseJson(readFileSync(new URL('../../fixtures/abi.json', import.meta.url), 'utf8')));

function asObj(x: JsonValue | undefined): JsonObject {
  assert.ok(typeof x === 'object' && x !== null && !Array.isArray(x), 'expected an object');
  return x;
}

function list(key: string): JsonObject[] {
  const items = v[key];
  assert.ok(Array.isArray(items), key);
  return items.map(asObj);
}

function str(o: JsonObject, key: string): string {
  const s = o[key];
  assert.equal(typeof s, 'string', `${key} in ${stringifyJson(o).slice(0, 200)}`);
  return s as string;
}

const abis = new Map<string, Abi>();
for (const a of list('abis')) abis.set(str(a, 'name'), Abi.parse(str(a, 'json')));
const abi = (o: JsonObject): Abi => abis.get(str(o, 'abi')) ?? assert.fail(`no ABI ${str(o, 'abi')}`);
const typeOf = (o: JsonObject) => parseTypeRef(stringifyJson(o['type'] ?? null));

/** Rust's message without the JSON reader's position. */
const withoutPosition = (m: string): string => m.replace(/ at line \d+ column \d+$/, '');

/**
 * Runs `run` for the vector `o`: a vector with an `error` must throw an
 * AbiError of its kind and message; otherwise `check` gets the result.
 */
function expect<T>(o: JsonObject, run: () => T, check: (got: T) => void): 'ok' | 'refused' {
  const label = stringifyJson(o).slice(0, 300);
  if (o['error'] === undefined) {
    check(run());
    return 'ok';
  }
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof AbiError, `${label}: ${String(e)}`);
    assert.equal(e.kind, str(o, 'kind'), label);
    assert.equal(e.message, withoutPosition(str(o, 'error')), label);
    return true;
  });
  return 'refused';
}

function counted(results: readonly ('ok' | 'refused')[]): string {
  const ok = results.filter((r) => r === 'ok').length;
  return `${ok} matched, ${results.length - ok} refused alike`;
}

test('the vectors are version 1, with the limits of Rust', () => {
  assert.equal(v['version'], 1);
  const limits = asObj(v['limits']);
  assert.equal(limits['abi_version'], ABI_VERSION);
  assert.equal(limits['abi_section'], ABI_SECTION);
  assert.equal(limits['abi_section_bytes_max'], ABI_SECTION_BYTES_MAX);
  assert.equal(limits['revert_message'], REVERT_MESSAGE);
  assert.equal(limits['revert_error'], REVERT_ERROR);
  for (const [key, min] of [
    ['abis', 7],
    ['args', 100],
    ['values', 60],
    ['decode', 40],
    ['returns', 20],
    ['reverts', 20],
    ['events', 20],
    ['invalid_abis', 100],
    ['abi_limits', 18],
    ['wasm', 8],
  ] as const) {
    assert.ok(list(key).length >= min, `${key}: ${list(key).length} vectors`);
  }
});

test(`abis: ${list('abis').length} documents parse and write back as Rust's canonical JSON`, (t) => {
  for (const a of list('abis')) {
    const parsed = Abi.parse(str(a, 'json'));
    assert.equal(parsed.toJson(), str(a, 'canonical'), str(a, 'name'));
    assert.equal(Abi.parse(parsed.toJson()).toJson(), str(a, 'canonical'));
    assert.equal(Abi.fromJsonValue(parseJson(str(a, 'json'))).toJson(), str(a, 'canonical'));
  }
  t.diagnostic(`${list('abis').length} ABIs`);
});

test(`args: ${list('args').length} argument lists encode to Rust's bytes or are refused alike`, (t) => {
  const results = list('args').map((o) =>
    expect(
      o,
      () => abi(o).encodeArgs(str(o, 'method'), o['args'] ?? null),
      (bytes) => {
        assert.equal(toHex(bytes), str(o, 'bytes'), stringifyJson(o['args'] ?? null));
        assert.deepEqual(abi(o).decodeArgs(str(o, 'method'), bytes), o['decoded']);
      },
    ),
  );
  t.diagnostic(counted(results));
});

/** The recursive values of the deep vectors, by the rules ts_vectors.rs states. */
function node(levels: number): JsonObject {
  let n: JsonObject = { value: 0, children: [] };
  for (let i = 0; i < levels; i++) n = { value: 1, children: [n] };
  return n;
}

function chain(levels: number): JsonValue {
  let c: JsonValue = 'End';
  for (let i = 0; i < levels; i++) c = { Next: [c] };
  return c;
}

test(`deep args: ${list('deep_args').length} values around the depth limit, by position and by name`, (t) => {
  const results = list('deep_args').map((o) => {
    const levels = Number(o['levels']);
    const [name, value] = o['shape'] === 'node' ? ['root', node(levels)] : ['c', chain(levels)];
    const named: JsonObject = { [name]: value };
    return expect(
      o,
      () => abi(o).encodeArgs(str(o, 'method'), o['by'] === 'position' ? [value] : named),
      (bytes) => {
        assert.equal(toHex(bytes), str(o, 'bytes'));
        assert.deepEqual(abi(o).decodeArgs(str(o, 'method'), bytes), named);
      },
    );
  });
  t.diagnostic(counted(results));
});

test(`values: ${list('values').length} single values encode and decode as Rust`, (t) => {
  const results = list('values').map((o) =>
    expect(
      o,
      () => abi(o).encodeValue(typeOf(o), o['value'] ?? null),
      (bytes) => {
        assert.equal(toHex(bytes), str(o, 'bytes'), stringifyJson(o));
        assert.deepEqual(abi(o).decodeValue(typeOf(o), bytes), o['decoded']);
      },
    ),
  );
  t.diagnostic(counted(results));
});

test(`decode: ${list('decode').length} byte strings decode as Rust`, (t) => {
  const results = list('decode').map((o) =>
    expect(
      o,
      () => abi(o).decodeValue(typeOf(o), fromHex(str(o, 'bytes'))),
      (value) => assert.deepEqual(value, o['value'], stringifyJson(o)),
    ),
  );
  t.diagnostic(counted(results));
});

test(`returns: ${list('returns').length} return values decode as Rust`, (t) => {
  const results = list('returns').map((o) =>
    expect(
      o,
      () => abi(o).decodeReturn(str(o, 'method'), fromHex(str(o, 'bytes'))),
      (value) => assert.deepEqual(value, o['value'], stringifyJson(o)),
    ),
  );
  t.diagnostic(counted(results));
});

test(`reverts: ${list('reverts').length} payloads decode by the tag convention as Rust`, (t) => {
  const results = list('reverts').map((o) =>
    expect(
      o,
      () => abi(o).decodeRevert(str(o, 'method'), fromHex(str(o, 'payload'))),
      (r) => assert.deepEqual(revertToJson(r), o['revert'], stringifyJson(o)),
    ),
  );
  t.diagnostic(counted(results));
});

test(`event names: ${list('event_names').length} first topics`, () => {
  for (const o of list('event_names')) assert.equal(eventTopic(str(o, 'name')).toString(), str(o, 'topic'));
});

test(`topics: ${list('topics').length} topic values padded or hashed as Rust`, () => {
  for (const o of list('topics')) {
    const a = abi(o);
    const ty = typeOf(o);
    assert.equal(a.fixedSize(ty), o['fixed_size'], stringifyJson(o));
    assert.equal(a.topicOf(ty, o['value'] ?? null).toString(), str(o, 'topic'), stringifyJson(o));
  }
});

test(`events: ${list('events').length} events decode as Rust or are refused alike`, (t) => {
  const results = list('events').map((o) => {
    const topics = (o['topics'] as string[]).map((h) => Hash.parse(h));
    return expect(
      o,
      () => abi(o).decodeEvent(topics, fromHex(str(o, 'data'))),
      (ev) => assert.deepEqual({ name: ev.name, fields: ev.fields }, o['decoded'], stringifyJson(o)),
    );
  });
  // Raw 32-byte topics work as well as hashes.
  const first = list('events')[0]!;
  const raw = (first['topics'] as string[]).map((h) => fromHex(h));
  assert.deepEqual(abi(first).decodeEvent(raw, fromHex(str(first, 'data'))).fields, asObj(first['decoded'])['fields']);
  t.diagnostic(counted(results));
});

test(`invalid ABIs: ${list('invalid_abis').length} documents accepted or refused for Rust's reason`, (t) => {
  const results = list('invalid_abis').map((o) => {
    const input = o['json'] === undefined ? fromHex(str(o, 'json_hex')) : str(o, 'json');
    return expect(
      o,
      () => Abi.parse(input),
      (a) => assert.equal(a.toJson(), str(o, 'canonical')),
    );
  });
  t.diagnostic(counted(results));
});

/** The documents of the limit vectors, by the rule ts_vectors.rs states. */
function limitDocument(what: string, n: number): string {
  const items = (f: (i: number) => string): string => Array.from({ length: n }, (_, i) => f(i)).join(',');
  const doc = (methods: string, events: string, types: string): string =>
    `{"abi_version":1,"name":"x","version":"0","methods":[${methods}],"events":[${events}],"types":[${types}]}`;
  switch (what) {
    case 'methods':
      return doc(items((i) => `{"name":"m${i}","kind":"call","args":[],"returns":"unit"}`), '', '');
    case 'events':
      return doc('', items((i) => `{"name":"e${i}"}`), '');
    case 'types':
      return doc('', '', items((i) => `{"kind":"struct","name":"t${i}","fields":"unit"}`));
    case 'args':
      return doc(`{"name":"m","kind":"call","args":[${items((i) => `{"name":"a${i}","type":"u8"}`)}],"returns":"unit"}`, '', '');
    case 'variants':
      return doc('', '', `{"kind":"enum","name":"E","variants":[${items((i) => `{"name":"v${i}","fields":"unit"}`)}]}`);
    case 'unnamed':
      return doc('', '', `{"kind":"struct","name":"S","fields":{"unnamed":[${items(() => '"u8"')}]}}`);
    case 'tuple':
      return doc(`{"name":"m","kind":"view","args":[],"returns":{"tuple":[${items(() => '"u8"')}]}}`, '', '');
    case 'topics':
      return doc('', `{"name":"E","topics":[${items((i) => `{"name":"t${i}","type":"u8"}`)}]}`, '');
    case 'depth': {
      let t = '"u8"';
      for (let i = 0; i < n; i++) t = `{"vec":${t}}`;
      return doc(`{"name":"m","kind":"view","args":[],"returns":${t}}`, '', '');
    }
    default:
      return assert.fail(what);
  }
}

test(`ABI limits: ${list('abi_limits').length} documents at and past each limit`, () => {
  for (const o of list('abi_limits')) {
    const json = limitDocument(str(o, 'what'), Number(o['count']));
    assert.equal(json.length, o['bytes'], `${str(o, 'what')} ${String(o['count'])}: not the document Rust built`);
    expect(o, () => Abi.parse(json), () => {});
  }
});

test(`wasm: ${list('wasm').length} modules, the ABI section found or refused as Rust`, (t) => {
  for (const o of list('wasm')) {
    const wasm = fromHex(str(o, 'wasm'));
    if (o['section'] !== undefined) {
      const s = abiSection(wasm);
      assert.equal(s === null ? null : toHex(s), o['section'], str(o, 'what'));
    } else {
      assert.throws(() => abiSection(wasm), (e: unknown) => e instanceof AbiError && e.kind === o['kind']);
    }
    expect(o, () => Abi.fromWasm(wasm), (a) => assert.equal(a.toJson(), str(o, 'canonical')));
  }
  for (const o of list('invalid_wasm')) {
    const size = o['section_bytes'];
    if (typeof size === 'number') {
      // A module with one custom section `stele_abi` of `size` spaces.
      const name = new TextEncoder().encode(ABI_SECTION);
      const body = new Uint8Array(1 + name.length + size).fill(0x20);
      body[0] = name.length;
      body.set(name, 1);
      const leb: number[] = [];
      for (let n = body.length; ; n >>>= 7) {
        leb.push(n >= 0x80 ? (n & 0x7f) | 0x80 : n);
        if (n < 0x80) break;
      }
      const wasm = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, ...leb, ...body]);
      expect(o, () => abiSection(wasm), () => {});
      continue;
    }
    // The messages are the Wasm parser's own: only the kind must agree.
    assert.throws(
      () => abiSection(fromHex(str(o, 'wasm'))),
      (e: unknown) => e instanceof AbiError && e.kind === str(o, 'kind'),
      str(o, 'what'),
    );
  }
  t.diagnostic(`${list('wasm').length} modules read, ${list('invalid_wasm').length} refused`);
});

test('inputs may be addresses, byte arrays and bigints', () => {
  const token = abis.get('token')!;
  const to = Address.parse('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
  assert.deepEqual(
    token.encodeArgs('transfer', [to, 10n ** 30n]),
    token.encodeArgs('transfer', [to.toChecksum(), '1000000000000000000000000000000']),
  );
  const counter = abis.get('counter')!;
  assert.deepEqual(counter.encodeArgs('upgrade', { code: Uint8Array.of(1, 2), new_max: 7n }), fromHex('0x0200000001020700000000000000'));
  // Holes are refused, never taken for null.
  assert.throws(() => counter.encodeArgs('increment', [undefined as unknown as null]), /arg `by`: expected u64 as a decimal string, got undefined/);
});
