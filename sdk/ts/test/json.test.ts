// The JSON forms: the serde JSON text Rust wrote into the vectors must
// parse to the same values (same encodings) and print back identically.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  JsonError,
  blockFromJson,
  blockHeaderFromJson,
  blockHeaderToJson,
  blockToJson,
  commitCertificateFromJson,
  commitCertificateToJson,
  encodeBlock,
  encodeBlockHeader,
  encodeCommitCertificate,
  encodeProtocolParams,
  encodeReceipt,
  encodeSignedTransaction,
  encodeValidatorSet,
  parseJson,
  protocolParamsFromJson,
  protocolParamsToJson,
  receiptFromJson,
  receiptToJson,
  signedTransactionFromJson,
  signedTransactionToJson,
  stringifyJson,
  toHex,
  validatorSetFromJson,
  validatorSetToJson,
  type JsonValue,
} from '@stele/client';

import { loadVectors } from './support/vectors.js';

const v = loadVectors();

test('parseJson keeps integers past 2^53 exact', () => {
  assert.deepEqual(parseJson('[18446744073709551615, 9007199254740991, 9007199254740993, -1, 1.5, 1e3]'), [
    18446744073709551615n,
    9007199254740991,
    9007199254740993n,
    -1,
    1.5,
    1000,
  ]);
  assert.equal(stringifyJson(parseJson('{"a":[18446744073709551615,null,true,"x\\n\\u00e9"]}')), '{"a":[18446744073709551615,null,true,"x\\né"]}');
});

test('parseJson refuses what is not JSON', () => {
  for (const bad of ['', '{', '[1,]', '{"a":1,}', '01', '1.', '"\\x"', '"a', 'nul', '[1] 2', '{a:1}', '"\u0001"', '[' .repeat(200) + ']'.repeat(200)]) {
    assert.throws(() => parseJson(bad), JsonError, JSON.stringify(bad));
  }
});

test('parseJson keeps "__proto__" as data', () => {
  const o = parseJson('{"__proto__": {"polluted": 1}}') as Record<string, JsonValue>;
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ['__proto__']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

function roundTrip<T>(
  name: string,
  text: string,
  fromJson: (v: JsonValue) => T,
  toJson: (t: T) => JsonValue,
  encode: (t: T) => Uint8Array,
  encoding: string,
): void {
  const value = fromJson(parseJson(text));
  assert.equal(toHex(encode(value)), encoding, name);
  assert.equal(stringifyJson(toJson(value)), text, name);
}

test(`Rust's serde JSON of every vector parses to the same bytes and prints back identically`, (t) => {
  let n = 0;
  for (const x of v.transactions) {
    roundTrip(x.name, x.json, (j) => signedTransactionFromJson(j), signedTransactionToJson, encodeSignedTransaction, x.signed);
    n++;
  }
  for (const x of v.headers) {
    roundTrip(x.name, x.json, (j) => blockHeaderFromJson(j), blockHeaderToJson, encodeBlockHeader, x.encoding);
    n++;
  }
  for (const x of v.validator_sets) {
    roundTrip(x.name, x.json, (j) => validatorSetFromJson(j), validatorSetToJson, encodeValidatorSet, x.encoding);
    n++;
  }
  for (const x of v.certificates) {
    roundTrip(x.name, x.json, (j) => commitCertificateFromJson(j), commitCertificateToJson, encodeCommitCertificate, x.encoding);
    n++;
  }
  for (const x of v.receipts) {
    roundTrip(x.name, x.json, (j) => receiptFromJson(j), receiptToJson, encodeReceipt, x.encoding);
    n++;
  }
  for (const x of v.blocks) {
    roundTrip(x.name, x.json, (j) => blockFromJson(j), blockToJson, encodeBlock, x.encoding);
    n++;
  }
  for (const x of v.protocol_params) {
    roundTrip('params', x.json, (j) => protocolParamsFromJson(j), protocolParamsToJson, encodeProtocolParams, x.encoding);
    n++;
  }
  t.diagnostic(`matched the JSON form of ${n} vectors`);
});

test('a value of the wrong shape names its path', () => {
  const tx = parseJson(v.transactions[0]!.json) as Record<string, JsonValue>;
  const bad = (mutate: (o: Record<string, Record<string, JsonValue>>) => void, message: string): void => {
    const copy = parseJson(stringifyJson(tx)) as Record<string, Record<string, JsonValue>>;
    mutate(copy);
    assert.throws(() => signedTransactionFromJson(copy as unknown as JsonValue), { name: 'JsonError', message });
  };
  bad((o) => (o['tx']!['nonce'] = -1), 'transaction.tx.nonce: expected a u64 number, got -1');
  bad((o) => (o['tx']!['nonce'] = 18446744073709551616n), 'transaction.tx.nonce: expected a u64 number, got 18446744073709551616');
  bad((o) => (o['tx']!['gas_limit'] = '5'), 'transaction.tx.gas_limit: expected a u64 number, got "5"');
  bad(
    (o) => ((o['tx']!['payload'] as Record<string, JsonValue>)['amount'] = 5),
    'transaction.tx.payload.amount: expected a decimal u128 string, got 5',
  );
  bad(
    (o) => ((o['tx']!['payload'] as Record<string, JsonValue>)['kind'] = 'mint'),
    'transaction.tx.payload.kind: expected a payload kind, got "mint"',
  );
  bad(
    (o) => ((o as Record<string, JsonValue>)['signature'] = '0x12'),
    'transaction.signature: expected a 0x-hex 65-byte signature: expected 65 bytes, got 1',
  );
});
