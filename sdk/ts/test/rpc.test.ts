// The JSON-RPC client against a local HTTP server that answers with the
// serde JSON Rust wrote into the vectors, checking method names and
// positional parameters as sdk/client/src/api.rs defines them.

import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import {
  Address,
  Hash,
  RpcClient,
  RpcCodes,
  RpcError,
  RpcTransportError,
  decodeSignedTransaction,
  encodeBlock,
  encodeReceipt,
  fromHex,
  parseJson,
  stringifyJson,
  toHex,
  traceFrameFromJson,
  traceSteps,
  txHash,
  type JsonValue,
} from '@stele/client';

import { loadVectors } from './support/vectors.js';

const v = loadVectors();

interface Call {
  method: string;
  params: JsonValue[];
}

/** What the server answers: a result, a JSON-RPC error, or an HTTP status. */
type Answer = { result: string } | { error: { code: number; message: string; data?: string } } | { http: number } | { raw: string };

let answer: (call: Call) => Answer = () => ({ http: 500 });
const calls: Call[] = [];
let url = '';

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    const request = parseJson(body) as { jsonrpc: string; id: number; method: string; params: JsonValue[] };
    assert.equal(request.jsonrpc, '2.0');
    const call = { method: request.method, params: request.params };
    calls.push(call);
    const a = answer(call);
    if ('http' in a) {
      res.writeHead(a.http, { 'content-type': 'text/plain' }).end('slow down');
      return;
    }
    const payload =
      'raw' in a
        ? a.raw
        : 'result' in a
          ? `{"jsonrpc":"2.0","id":${request.id},"result":${a.result}}`
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

function expectCalls(expected: Call[]): void {
  assert.deepEqual(
    calls.splice(0).map((c) => stringifyJson({ method: c.method, params: c.params })),
    expected.map((c) => stringifyJson({ method: c.method, params: c.params })),
  );
}

test('get_status reads u64 numbers past 2^53 exactly and defaults what older nodes omit', async () => {
  answer = () => ({
    result:
      '{"chain_id":18446744073709551615,"height":9007199254740993,"view":0,"peers_connected":3,' +
      '"syncing":false,"mempool_txs":0,"mempool_bytes":0}',
  });
  const status = await new RpcClient(url).getStatus();
  assert.equal(status.chainId, 18446744073709551615n);
  assert.equal(status.height, 9007199254740993n);
  assert.equal(status.fullNode, false);
  assert.equal(status.phase, 'live');
  assert.equal(status.snapshot, null);
  expectCalls([{ method: 'get_status', params: [] }]);
});

test('send_transaction sends the canonical encoding and the optional sender', async () => {
  const x = v.transactions[0]!;
  const signed = decodeSignedTransaction(fromHex(x.signed));
  answer = () => ({ result: JSON.stringify(x.hash) });
  const client = new RpcClient(url);
  const hash = await client.sendTransaction(signed);
  assert.ok(hash.equals(txHash(signed)));
  await client.sendTransaction(fromHex(x.signed), Address.parse(x.sender));
  expectCalls([
    { method: 'send_transaction', params: [x.signed, null] },
    { method: 'send_transaction', params: [x.signed, x.sender] },
  ]);
});

test('errors carry the JSON-RPC code; invalid params join the cause', async () => {
  const client = new RpcClient(url);
  const hash = Hash.parse(v.transactions[0]!.hash);
  answer = () => ({ error: { code: RpcCodes.TX_PENDING, message: 'transaction 0x.. is pending' } });
  await assert.rejects(client.getReceipt(hash), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 2011);
    assert.equal(e.method, 'get_receipt');
    assert.equal(e.message, 'transaction 0x.. is pending');
    return true;
  });
  answer = () => ({ error: { code: -32602, message: 'Invalid params', data: 'block id must be a height' } });
  await assert.rejects(client.getBlock(1n), { name: 'RpcError', code: -32602, message: 'Invalid params: block id must be a height' });
  answer = () => ({ http: 429 });
  await assert.rejects(client.getStatus(), (e: unknown) => {
    assert.ok(e instanceof RpcTransportError);
    assert.equal(e.status, 429);
    return true;
  });
  answer = () => ({ raw: '{"jsonrpc":"2.0","id":999,"result":null}' });
  await assert.rejects(client.getStatus(), { name: 'RpcTransportError', message: 'get_status: response id 999 is not 4' });
  answer = () => ({ result: '{"chain_id":-1}' });
  await assert.rejects(client.getStatus(), {
    name: 'RpcTransportError',
    message: 'get_status: unexpected answer: result.chain_id: expected a u64 number, got -1',
  });
  calls.splice(0);
});

test('a refused connection is a transport error', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(new RpcClient(`http://127.0.0.1:${port}/`).getStatus(), (e: unknown) => {
    assert.ok(e instanceof RpcTransportError);
    assert.equal(e.status, null);
    assert.match(e.message, /^get_status: request failed/);
    return true;
  });
});

test('get_block fetches the following pages and checks they continue the block', async () => {
  const x = v.blocks[v.blocks.length - 1]!;
  const cert = v.certificates[0]!.json;
  const block = parseJson(x.json) as { header: JsonValue; txs: JsonValue[] };
  assert.ok(block.txs.length > 4);
  const page = (from: number, to: number, next: number | null): string =>
    `{"hash":${JSON.stringify(x.hash)},"block":${stringifyJson({ header: block.header, txs: block.txs.slice(from, to) })},` +
    `"certificate":${cert}${from ? `,"txs_from":${from}` : ''}${next === null ? '' : `,"txs_next":${next}`}}`;
  answer = (c) => ({ result: c.params[1] === null ? page(0, 4, 4) : page(4, block.txs.length, null) });
  const info = await new RpcClient(url).getBlock(101n);
  assert.equal(toHex(encodeBlock(info.block)), x.encoding);
  assert.equal(info.hash.toString(), x.hash);
  assert.equal(info.txsNext, null);
  expectCalls([
    { method: 'get_block', params: [101, null] },
    { method: 'get_block', params: [x.hash, 4] },
  ]);
  // A page that does not continue the block is refused.
  answer = (c) => ({ result: c.params[1] === null ? page(0, 4, 5) : page(5, block.txs.length, null) });
  await assert.rejects(new RpcClient(url).getBlock(Hash.parse(x.hash)), {
    name: 'RpcTransportError',
    message: `get_block: block ${x.hash}: the next page starts at transaction 5, expected 4`,
  });
  calls.splice(0);
});

test('wait_for_receipt, call_view, get_account, get_validators and get_protocol', async () => {
  const client = new RpcClient(url);
  const r = v.receipts[2]!;
  const hash = Hash.parse(v.transactions[0]!.hash);
  const set = v.validator_sets[1]!;
  const contract = Address.parse(v.keys[0]!.address);
  answer = (c) => {
    switch (c.method) {
      case 'wait_for_receipt':
        return { result: `{"receipt":${r.json},"block_height":7,"block_hash":${JSON.stringify(hash.toString())},"index":2}` };
      case 'call_view':
        return { result: '{"height":8,"status":"reverted","gas_used":120,"output":"0x6e6f","error":"no"}' };
      case 'get_account':
        return {
          result: `{"address":${JSON.stringify(contract.toChecksum())},"height":8,"balance":"340282366920938463463374607431768211455","nonce":1,"pending_nonce":3,"code_hash":null}`,
        };
      case 'get_validators':
        return {
          result: `{"height":8,"epoch":2,"epoch_start_height":1,"validators":${set.json},"validators_hash":${JSON.stringify(set.hash)},"pending":null}`,
        };
      case 'get_protocol':
        return { result: `{"height":8,"active":${v.protocol_params[0]!.json},"scheduled":null}` };
      default:
        return { http: 404 };
    }
  };
  const receipt = await client.waitForReceipt(hash, 5000);
  assert.equal(toHex(encodeReceipt(receipt.receipt)), r.encoding);
  assert.equal(receipt.blockHeight, 7n);
  assert.equal(receipt.eventsOmitted, 0);
  const view = await client.callView(contract, 'balance_of', Uint8Array.of(1, 2), 8n);
  assert.equal(view.status, 'reverted');
  assert.deepEqual(view.output, Uint8Array.of(0x6e, 0x6f));
  assert.equal(view.error, 'no');
  const account = await client.getAccount(contract);
  assert.equal(account.balance, (1n << 128n) - 1n);
  assert.equal(account.pendingNonce, 3n);
  assert.equal(account.codeHash, null);
  const validators = await client.getValidators();
  assert.equal(validators.validators.hash().toString(), set.hash);
  assert.equal(validators.validatorsHash.toString(), set.hash);
  const protocol = await client.getProtocol(8);
  assert.equal(protocol.active.txGasBase, 21_000n);
  expectCalls([
    { method: 'wait_for_receipt', params: [hash.toString(), 5000] },
    { method: 'call_view', params: [contract.toChecksum(), 'balance_of', '0x0102', 8] },
    { method: 'get_account', params: [contract.toChecksum()] },
    { method: 'get_validators', params: [null] },
    { method: 'get_protocol', params: [8] },
  ]);
});

test('trace frames read their debug log lines, in order with their calls', () => {
  const frame = (method: string, calls: JsonValue[], logs?: JsonValue[]): JsonValue => ({
    caller: '0x' + '11'.repeat(20),
    contract: '0x' + '22'.repeat(20),
    method,
    value: '0',
    gas_budget: 1000,
    gas_used: 10,
    status: 'success',
    output: '0x',
    calls,
    ...(logs === undefined ? {} : { logs }),
  });
  const t = traceFrameFromJson(
    frame(
      'run',
      [frame('inner', [], [{ after_calls: 0, text: 'b1' }]), frame('other', [])],
      [
        { after_calls: 0, text: 'a1' },
        { after_calls: 1, text: 'a2' },
        { after_calls: 2, text: 'a3' },
      ],
    ),
  );
  const steps = traceSteps(t).map((s) => ('log' in s ? s.log : `call ${s.call.method}`));
  assert.deepEqual(steps, ['a1', 'call inner', 'a2', 'call other', 'a3']);
  assert.deepEqual(t.calls[0]?.logs, [{ afterCalls: 0, text: 'b1' }]);
  // Older nodes, and frames without lines, have no `logs`.
  assert.deepEqual(t.calls[1]?.logs, []);
  assert.throws(() => traceFrameFromJson(frame('run', [], [{ after_calls: -1, text: 'x' }])), /after_calls/);
});
