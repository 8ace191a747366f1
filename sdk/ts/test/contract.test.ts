// Contracts by their on-chain ABI against a local JSON-RPC server that
// plays the node: the exact requests sent (method names and positional
// parameters as sdk/client/src/api.rs defines them), the signed
// transaction's bytes decoded back to the expected call, and the answers
// decoded by the ABI. Also the declarations abigen writes, compiled with
// tsc against the built package.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, test } from 'node:test';

import {
  Address,
  Hash,
  RpcClient,
  RpcCodes,
  RpcError,
  SecretKey,
  decodeSignedTransaction,
  fromHex,
  keccak256,
  parseJson,
  receiptToJson,
  recoverSender,
  stringifyJson,
  toHex,
  txHash,
  type Event,
  type JsonObject,
  type JsonValue,
  type Receipt,
} from '@stele/client';

// The ABI and contract modules are not exported by the package index yet:
// their types come from the built declarations, their code from the built
// modules next to this test's output (dist/test/ -> dist/).
import type * as AbiModule from '../dist/abi.js';
import type * as AbigenModule from '../dist/abigen.js';
import type * as ContractModule from '../dist/contract.js';

const load = async <T>(file: string): Promise<T> => (await import(new URL(`../${file}`, import.meta.url).href)) as T;
const { Abi, AbiError, eventTopic } = await load<typeof AbiModule>('abi.js');
const { Contract, ContractRevert } = await load<typeof ContractModule>('contract.js');
const { abiToTypeScript } = await load<typeof AbigenModule>('abigen.js');

const fixtures = parseJson(readFileSync(new URL('../../fixtures/abi.json', import.meta.url), 'utf8')) as {
  abis: { name: string; json: string }[];
};
const abiJson = (name: string): string => fixtures.abis.find((a) => a.name === name)!.json;

const CHAIN_ID = 4242n;
const KEY = SecretKey.fromBytes(new Uint8Array(32).fill(7));
const SENDER = KEY.address();
const COUNTER = Address.parse('0x5FbDB2315678afecb367f032d93F642f64180aa3');
const TOKEN = Address.parse('0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512');
const CODE_HASH = Hash.fromBytes(new Uint8Array(32).fill(0xc0));
const BLOCK_HASH = Hash.fromBytes(new Uint8Array(32).fill(0xb1));

interface Call {
  method: string;
  params: JsonValue[];
}

/** An answer: a result, or a JSON-RPC error. */
type Answer = { result: JsonValue } | { error: { code: number; message: string } };

let answer: (call: Call) => Answer = () => ({ error: { code: -32601, message: 'no answer set' } });
let calls: Call[] = [];
let url = '';

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const request = parseJson(body) as { id: number; method: string; params: JsonValue[] };
    const call = { method: request.method, params: request.params };
    calls.push(call);
    const a = answer(call);
    const payload =
      'result' in a
        ? `{"jsonrpc":"2.0","id":${request.id},"result":${stringifyJson(a.result)}}`
        : `{"jsonrpc":"2.0","id":${request.id},"error":${JSON.stringify(a.error)}}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(payload);
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
});

beforeEach(() => {
  calls = [];
});

/** Answers by method from `table`; a function gets the call. */
function answering(table: Record<string, JsonValue | ((c: Call) => Answer)>): void {
  answer = (c) => {
    const a = table[c.method];
    if (a === undefined) return { error: { code: -32601, message: `unexpected ${c.method}` } };
    return typeof a === 'function' ? a(c) : { result: a };
  };
}

const contractInfo = (address: Address, abi: string | null): JsonObject => ({
  address: address.toChecksum(),
  height: 12,
  code_hash: CODE_HASH.toString(),
  code_bytes: 24129,
  abi: abi === null ? null : parseJson(abi),
  abi_raw: abi === null ? null : toHex(new TextEncoder().encode(abi)),
});

const STATUS: JsonObject = {
  chain_id: CHAIN_ID,
  height: 12,
  view: 0,
  peers_connected: 3,
  syncing: false,
  mempool_txs: 0,
  mempool_bytes: 0,
};

const account = (pendingNonce: number): JsonObject => ({
  address: SENDER.toChecksum(),
  height: 12,
  balance: '1000000000000',
  nonce: pendingNonce,
  pending_nonce: pendingNonce,
  code_hash: null,
});

const u64le = (n: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

/** A topic: a value's bytes padded on the right to 32 bytes. */
const padded = (b: Uint8Array): Hash => {
  const t = new Uint8Array(32);
  t.set(b);
  return Hash.fromBytes(t);
};

const changed = (count: bigint): Event => ({
  contract: COUNTER,
  topics: [eventTopic('Changed'), padded(SENDER.toBytes())],
  data: u64le(count),
});

function receiptInfo(hash: Hash, r: Partial<Receipt>, extra: JsonObject = {}): JsonObject {
  return {
    receipt: receiptToJson({
      txHash: hash,
      status: 'success',
      gasUsed: 41_000n,
      events: [],
      output: new Uint8Array(0),
      contractAddress: null,
      ...r,
    }),
    block_height: 13,
    block_hash: BLOCK_HASH.toString(),
    index: 0,
    ...extra,
  };
}

/** The hash of the raw transaction a `send_transaction` call carries. */
const sentHash = (c: Call): Hash => keccak256(fromHex(c.params[0] as string));

function rpc(): RpcClient {
  return new RpcClient(url);
}

test('Contract.at reads the ABI get_contract serves, and views decode their return values', async () => {
  answering({
    get_contract: contractInfo(COUNTER, abiJson('counter')),
    call_view: (c) => ({
      result: {
        height: 12,
        status: 'success',
        gas_used: 1234,
        output: c.params[1] === 'get' ? toHex(u64le(8n)) : toHex(Uint8Array.from([1, ...SENDER.toBytes()])),
        error: null,
      },
    }),
  });
  const counter = await Contract.at(rpc(), COUNTER.toChecksum());
  assert.equal(counter.abi.name, 'counter');
  assert.deepEqual(Object.keys(counter.view).sort(), ['get', 'max', 'owner']);
  assert.deepEqual(Object.keys(counter.call).sort(), ['increment', 'migrate', 'reset', 'tip', 'upgrade']);
  assert.equal(await counter.view['get']!(), '8');
  assert.equal(await counter.view['owner']!({ height: 11n }), SENDER.toChecksum());
  assert.equal(await counter.viewMethod('get'), '8');
  assert.deepEqual(calls, [
    { method: 'get_contract', params: [COUNTER.toChecksum()] },
    { method: 'call_view', params: [COUNTER.toChecksum(), 'get', '0x', null] },
    { method: 'call_view', params: [COUNTER.toChecksum(), 'owner', '0x', 11] },
    { method: 'call_view', params: [COUNTER.toChecksum(), 'get', '0x', null] },
  ]);
});

test('without abi_raw, the ABI comes from the code, or the reason there is none', async () => {
  const section = (name: string, data: Uint8Array): number[] => {
    const n = new TextEncoder().encode(name);
    const body = [n.length, ...n, ...data];
    const leb: number[] = [];
    for (let x = body.length; ; x >>>= 7) {
      leb.push(x >= 0x80 ? (x & 0x7f) | 0x80 : x);
      if (x < 0x80) break;
    }
    return [0, ...leb, ...body];
  };
  const module = (...sections: number[][]): string => toHex(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...sections.flat()]));
  const abi = new TextEncoder().encode(abiJson('counter'));
  let code = module(section('producers', Uint8Array.of(1)), section('stele_abi', abi));
  answering({ get_contract: contractInfo(COUNTER, null), get_code: () => ({ result: code }) });
  const counter = await Contract.at(rpc(), COUNTER);
  assert.equal(counter.abi.toJson(), Abi.parse(abiJson('counter')).toJson());
  assert.deepEqual(calls, [
    { method: 'get_contract', params: [COUNTER.toChecksum()] },
    { method: 'get_code', params: [CODE_HASH.toString()] },
  ]);
  code = module(section('stele_abi', abi), section('stele_abi', abi));
  await assert.rejects(Contract.at(rpc(), COUNTER), (e: unknown) => e instanceof AbiError && e.kind === 'duplicate_abi_section');
  code = module();
  await assert.rejects(Contract.at(rpc(), COUNTER), /the module has no `stele_abi` custom section/);
  answering({ get_contract: () => ({ error: { code: RpcCodes.NOT_FOUND, message: 'no contract at that address' } }) });
  await assert.rejects(Contract.at(rpc(), COUNTER), (e: unknown) => e instanceof RpcError && e.code === RpcCodes.NOT_FOUND);
});

test('a view that reverts throws a ContractRevert with the typed error', async () => {
  const atMax = toHex(Uint8Array.from([1, 0, ...u64le(10n)]));
  answering({
    call_view: (c) => ({
      result: {
        height: 12,
        status: c.params[1] === 'max' ? 'out_of_gas' : 'reverted',
        gas_used: 77,
        output: c.params[1] === 'max' ? toHex(new TextEncoder().encode('out of gas')) : atMax,
        error: null,
      },
    }),
  });
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')));
  // `get` declares no error type: the payload stays raw.
  await assert.rejects(counter.view['get']!(), (e: unknown) => {
    assert.ok(e instanceof ContractRevert);
    assert.equal(e.message, `get: reverted with payload ${atMax}`);
    assert.deepEqual(e.revert, { kind: 'raw', raw: fromHex(atMax) });
    return true;
  });
  // Any method may run read-only, here one with a typed error.
  await assert.rejects(counter.viewMethod('increment', [1]), (e: unknown) => {
    assert.ok(e instanceof ContractRevert);
    assert.equal(e.message, 'increment: reverted with error {"AtMax":{"max":"10"}}');
    assert.equal(e.stage, 'view');
    assert.equal(e.status, 'reverted');
    assert.deepEqual(e.revert, { kind: 'error', error: { AtMax: { max: '10' } } });
    assert.equal(e.gasUsed, 77n);
    assert.equal(e.receipt, null);
    return true;
  });
  await assert.rejects(counter.view['max']!(), (e: unknown) => {
    assert.ok(e instanceof ContractRevert);
    assert.equal(e.message, 'max: out of gas: out of gas');
    assert.equal(e.revert, null);
    return true;
  });
});

test('a call estimates its gas, signs, sends, waits and decodes the return value and events', async () => {
  let sent = '';
  answering({
    get_status: STATUS,
    get_account: account(5),
    estimate_gas: { gas: 43113, status: 'success' },
    send_transaction: (c) => {
      sent = c.params[0] as string;
      return { result: sentHash(c).toString() };
    },
    wait_for_receipt: (c) => {
      // `tip` returns a u128, `increment` a u64.
      const tx = decodeSignedTransaction(fromHex(sent)).tx;
      const tip = tx.payload.kind === 'call' && tx.payload.method === 'tip';
      return {
        result: receiptInfo(Hash.parse(c.params[0] as string), {
          output: tip ? new Uint8Array(16).fill(1) : u64le(8n),
          events: [changed(8n), { contract: TOKEN, topics: [eventTopic('Other')], data: new Uint8Array(0) }],
        }),
      };
    },
  });
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')), { signer: KEY });
  const r = await counter.call['increment']!(3);
  const args = toHex(u64le(3n));
  const unsigned = {
    chain_id: Number(CHAIN_ID),
    nonce: 5,
    gas_limit: 0,
    gas_price: 1,
    payload: { kind: 'call', contract: COUNTER.toChecksum(), method: 'increment', args, value: '0' },
  };
  assert.deepEqual(calls, [
    { method: 'get_status', params: [] },
    { method: 'get_account', params: [SENDER.toChecksum()] },
    { method: 'estimate_gas', params: [{ transaction: unsigned, sender: SENDER.toChecksum() }] },
    { method: 'send_transaction', params: [sent, SENDER.toChecksum()] },
    { method: 'wait_for_receipt', params: [r.hash.toString(), 10_000] },
  ]);
  // The bytes sent are the expected call, signed by the key.
  const signed = decodeSignedTransaction(fromHex(sent));
  const payload = signed.tx.payload;
  assert.ok(payload.kind === 'call');
  assert.ok(payload.contract.equals(COUNTER));
  assert.equal(payload.method, 'increment');
  assert.equal(toHex(payload.args), args);
  assert.equal(payload.value, 0n);
  assert.equal(signed.tx.chainId, CHAIN_ID);
  assert.equal(signed.tx.nonce, 5n);
  assert.equal(signed.tx.gasLimit, 43113n);
  assert.equal(signed.tx.gasPrice, 1n);
  assert.ok(recoverSender(signed, CHAIN_ID).equals(SENDER));
  assert.ok(txHash(signed).equals(r.hash));
  // The outcome, decoded.
  assert.equal(r.returned, '8');
  assert.ok(r.sender.equals(SENDER));
  assert.equal(r.gasUsed, 41_000n);
  assert.equal(r.events.length, 1, 'only this contract’s events');
  assert.equal(r.events[0]!.name, 'Changed');
  assert.deepEqual(r.events[0]!.fields, { by: SENDER.toChecksum(), count: '8' });
  assert.equal(r.receipt.receipt.events.length, 2);

  // The chain id is read once; a given nonce, gas, price and value skip
  // the account and the estimate; arguments may be named.
  calls = [];
  const r2 = await counter.callMethod('increment', { by: '4' }, { nonce: 9n, gas: 50_000, gasPrice: 2n });
  assert.deepEqual(
    calls.map((c) => c.method),
    ['send_transaction', 'wait_for_receipt'],
  );
  const tx2 = decodeSignedTransaction(fromHex(calls[0]!.params[0] as string)).tx;
  assert.deepEqual([tx2.nonce, tx2.gasLimit, tx2.gasPrice], [9n, 50_000n, 2n]);
  assert.ok(txHash(decodeSignedTransaction(fromHex(calls[0]!.params[0] as string))).equals(r2.hash));

  calls = [];
  const other = SecretKey.fromBytes(new Uint8Array(32).fill(9));
  const tipped = await counter.call['tip']!({ signer: other, value: 1_000n, gas: 30_000n, nonce: 0 });
  assert.equal(tipped.returned, ((1n << 128n) / 255n).toString());
  const tip = decodeSignedTransaction(fromHex(calls[0]!.params[0] as string));
  assert.ok(tip.tx.payload.kind === 'call' && tip.tx.payload.value === 1_000n && tip.tx.payload.method === 'tip');
  assert.ok(recoverSender(tip, CHAIN_ID).equals(other.address()));
  assert.equal(calls[0]!.params[1], other.address().toChecksum());
});

test('a call whose dry run fails is not sent', async () => {
  const atMax = toHex(Uint8Array.from([1, 0, ...u64le(10n)]));
  answering({
    get_status: STATUS,
    get_account: account(2),
    estimate_gas: { gas: 30_512, status: 'reverted' },
    simulate_transaction: {
      height: 12,
      sender: SENDER.toChecksum(),
      status: 'reverted',
      gas_used: 30_000,
      output: atMax,
      error: null,
      events: [],
      contract_address: null,
      trace: null,
    },
  });
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')));
  await assert.rejects(counter.call['increment']!(30, { signer: KEY }), (e: unknown) => {
    assert.ok(e instanceof ContractRevert);
    assert.equal(e.stage, 'simulation');
    assert.equal(e.message, 'increment: reverted with error {"AtMax":{"max":"10"}} in the dry run; nothing was sent');
    assert.equal(e.hash, null);
    return true;
  });
  const unsigned = (gas: number): JsonObject => ({
    chain_id: Number(CHAIN_ID),
    nonce: 2,
    gas_limit: gas,
    gas_price: 1,
    payload: { kind: 'call', contract: COUNTER.toChecksum(), method: 'increment', args: toHex(u64le(30n)), value: '0' },
  });
  assert.deepEqual(calls, [
    { method: 'get_status', params: [] },
    { method: 'get_account', params: [SENDER.toChecksum()] },
    { method: 'estimate_gas', params: [{ transaction: unsigned(0), sender: SENDER.toChecksum() }] },
    { method: 'simulate_transaction', params: [{ transaction: unsigned(30_512), sender: SENDER.toChecksum() }] },
  ]);
});

test('a committed call that reverts throws with its receipt; waiting resumes after the node times out', async () => {
  let waits = 0;
  answering({
    get_status: STATUS,
    send_transaction: (c) => ({ result: sentHash(c).toString() }),
    wait_for_receipt: (c) => {
      waits++;
      if (waits === 1) return { error: { code: RpcCodes.TIMEOUT, message: 'timed out' } };
      return {
        result: receiptInfo(Hash.parse(c.params[0] as string), {
          status: 'reverted',
          output: Uint8Array.from([0, ...new TextEncoder().encode('start is above max')]),
        }),
      };
    },
  });
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')), { signer: KEY });
  await assert.rejects(counter.call['increment']!(1, { gas: 60_000, nonce: 1 }), (e: unknown) => {
    assert.ok(e instanceof ContractRevert);
    assert.equal(e.stage, 'transaction');
    assert.equal(e.message, 'increment: reverted: start is above max');
    assert.deepEqual(e.revert, { kind: 'message', message: 'start is above max' });
    assert.ok(e.hash !== null && e.receipt !== null && e.receipt.receipt.txHash.equals(e.hash));
    return true;
  });
  assert.deepEqual(
    calls.map((c) => c.method),
    ['get_status', 'send_transaction', 'wait_for_receipt', 'wait_for_receipt'],
  );
  // A node that names another hash is not believed.
  answering({ get_status: STATUS, send_transaction: Hash.ZERO.toString() });
  await assert.rejects(counter.call['increment']!(1, { gas: 60_000, nonce: 1 }), /answered 0x0{64} for the transaction/);
});

test('events a node left out of a receipt are read back with get_events', async () => {
  answering({
    get_status: STATUS,
    send_transaction: (c) => ({ result: sentHash(c).toString() }),
    wait_for_receipt: (c) => ({
      result: receiptInfo(Hash.parse(c.params[0] as string), { output: u64le(3n), events: [changed(1n)] }, { events_omitted: 2, index: 4 }),
    }),
    get_events: (c) => {
      const log = (i: number, count: bigint, tx = 4): JsonObject => ({
        block_height: 13,
        block_hash: BLOCK_HASH.toString(),
        tx_hash: Hash.ZERO.toString(),
        tx_index: tx,
        event_index: i,
        event: {
          contract: COUNTER.toChecksum(),
          topics: changed(count).topics.map((t) => t.toString()),
          data: toHex(changed(count).data),
        },
      });
      const cursor = c.params[4] as JsonObject;
      return cursor['event_index'] === 1
        ? { result: { events: [log(1, 2n)], to_height: 13, next_height: null, next: { height: 13, tx_index: 4, event_index: 2 } } }
        : { result: { events: [log(2, 3n), log(0, 9n, 5)], to_height: 13, next_height: null } };
    },
  });
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')), { signer: KEY });
  const r = await counter.call['increment']!(1, { gas: 60_000, nonce: 1 });
  assert.deepEqual(
    r.events.map((e) => e.fields),
    [1n, 2n, 3n].map((n) => ({ by: SENDER.toChecksum(), count: String(n) })),
  );
  assert.equal(r.receipt.eventsOmitted, 0);
  const filter = { contract: null, topics: [] };
  assert.deepEqual(
    calls.filter((c) => c.method === 'get_events').map((c) => c.params),
    [
      [filter, 13, 13, 2, { height: 13, tx_index: 4, event_index: 1 }],
      [filter, 13, 13, 1, { height: 13, tx_index: 4, event_index: 2 }],
    ],
  );
});

test('contract.events filters by event and topic values, reads every page and decodes', async () => {
  const from = SENDER;
  const to = Address.parse('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
  const amount = (n: bigint): Uint8Array => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  const transfer = (n: bigint): JsonObject => ({
    contract: TOKEN.toChecksum(),
    topics: [eventTopic('Transfer'), padded(from.toBytes()), padded(to.toBytes())].map((t) => t.toString()),
    data: toHex(amount(n)),
  });
  const log = (height: number, n: bigint): JsonObject => ({
    block_height: height,
    block_hash: BLOCK_HASH.toString(),
    tx_hash: Hash.ZERO.toString(),
    tx_index: 0,
    event_index: 0,
    event: transfer(n),
  });
  answering({
    get_events: (c) =>
      (c.params[4] as JsonObject)['height'] === 5
        ? { result: { events: [log(6, 10n), log(7, 20n)], to_height: 7, next_height: 8, next: { height: 8, tx_index: 0, event_index: 0 } } }
        : {
            result: {
              events: [
                log(9, 30n),
                { ...log(9, 0n), event: { contract: TOKEN.toChecksum(), topics: [Hash.ZERO.toString()], data: '0x' } },
              ],
              to_height: 20,
              next_height: null,
            },
          },
  });
  const token = new Contract(rpc(), TOKEN, Abi.parse(abiJson('token')));
  const logs = await token.events({ event: 'Transfer', topics: [from], fromHeight: 5, toHeight: 20n, pageSize: 2 });
  const filter = {
    contract: TOKEN.toChecksum(),
    topics: [eventTopic('Transfer').toString(), padded(from.toBytes()).toString()],
  };
  assert.deepEqual(
    calls.map((c) => c.params),
    [
      [filter, 5, 20, 2, { height: 5, tx_index: 0, event_index: 0 }],
      [filter, 5, 20, 2, { height: 8, tx_index: 0, event_index: 0 }],
    ],
  );
  assert.deepEqual(
    logs.slice(0, 3).map((l) => [l.blockHeight, l.name, l.fields]),
    [6n, 7n, 9n].map((h, i) => [h, 'Transfer', { from: from.toChecksum(), to: to.toChecksum(), amount: String(10 * (i + 1)) }]),
  );
  assert.equal(logs[3]!.name, null);
  assert.equal(logs[3]!.error?.kind, 'unknown_event');
  assert.ok(logs[0]!.blockHash.equals(BLOCK_HASH));

  // max stops early; topic values must fit the event.
  calls = [];
  assert.equal((await token.events({ fromHeight: 5, max: 1 })).length, 1);
  assert.deepEqual(calls[0]!.params, [{ contract: TOKEN.toChecksum(), topics: [] }, 5, null, 1, { height: 5, tx_index: 0, event_index: 0 }]);
  await assert.rejects(token.events({ event: 'Transfer', topics: ['0x12'] }), /value: address must be 0x followed by 40 hex digits/);
  await assert.rejects(token.events({ event: 'Nope' }), /the contract has no event `Nope`/);
});

test('arguments are checked against the ABI before anything is sent', async () => {
  answering({});
  const counter = new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter')), { signer: KEY });
  await assert.rejects(counter.call['increment']!(), /args: expected 1 arguments, got 0/);
  await assert.rejects(counter.call['increment']!(1, 2), /args: expected 1 arguments, got 2/);
  await assert.rejects(counter.call['increment']!(true), /arg `by`: expected u64 as a decimal string, got true/);
  // An extra argument that is not an options object is an argument.
  await assert.rejects(counter.view['get']!({ at: 1 }), /args: expected 0 arguments, got 1/);
  await assert.rejects(counter.callMethod('nope'), /the contract has no method `nope`/);
  await assert.rejects(
    new Contract(rpc(), COUNTER, Abi.parse(abiJson('counter'))).call['reset']!(),
    /reset: no signer/,
  );
  assert.deepEqual(calls, []);
});

test('abigen declarations compile against the package and type a Contract', () => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const dir = `${here}abigen-check/`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    // The client's types, as the package index will export them.
    writeFileSync(
      `${dir}client.ts`,
      "export type { Address } from '../../address.js';\nexport type { CallOptions, CallResult, ViewOptions } from '../../contract.js';\n",
    );
    for (const name of ['counter', 'token', 'amm', 'multisig', 'nft', 'escrow', 'kitchen']) {
      const ts = abiToTypeScript(Abi.parse(abiJson(name)), name[0]!.toUpperCase() + name.slice(1), { importFrom: './client.js' });
      writeFileSync(`${dir}${name}.ts`, ts);
    }
    writeFileSync(
      `${dir}use.ts`,
      [
        "import type { Contract } from '../../contract.js';",
        "import type { CounterContract, CounterErrors, CounterEvents } from './counter.js';",
        "import type { KitchenContract, Order } from './kitchen.js';",
        'export async function use(c: Contract<CounterContract>, k: Contract<KitchenContract>): Promise<string> {',
        '  const n: string = await c.view.get({ height: 3n });',
        '  const r = await c.call.increment(3n, { gas: 50_000 });',
        '  const s: string = r.returned;',
        "  const e: CounterErrors['increment'] = 'NotOwner';",
        "  const f: CounterEvents['Changed'] = { by: '0x', count: '1' };",
        "  const o: Order = (await k.call.place({ side: 'Buy', price: 1, qty: 2n, tags: [], expires: null }, ['Dot', { Circle: [1] }], [1, 'x'], null)).returned;",
        '  // @ts-expect-error: get takes no arguments',
        '  await c.view.get(1);',
        '  // @ts-expect-error: a u64 is not a boolean',
        '  await c.call.increment(true);',
        '  return n + s + JSON.stringify([e, f, o]);',
        '}',
        '',
      ].join('\n'),
    );
    const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
    const files = ['client', 'counter', 'token', 'amm', 'multisig', 'nft', 'escrow', 'kitchen', 'use'].map((f) => `${dir}${f}.ts`);
    const run = spawnSync(
      process.execPath,
      [
        tsc,
        '--ignoreConfig',
        '--noEmit',
        '--strict',
        '--exactOptionalPropertyTypes',
        '--noUncheckedIndexedAccess',
        '--noUnusedLocals',
        '--noUnusedParameters',
        '--target',
        'es2022',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--types',
        'node',
        ...files,
      ],
      { encoding: 'utf8', cwd: dir },
    );
    assert.equal(run.status, 0, `tsc: ${run.stdout}${run.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
