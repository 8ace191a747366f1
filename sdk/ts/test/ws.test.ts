// The WebSocket client against a local `ws` server that speaks the node's
// JSON-RPC subscription protocol as node/node/src/rpc serves it through
// jsonrpsee: a subscribe call answers with a numeric subscription id; each
// item is {"jsonrpc":"2.0","method":<notification>,"params":{"subscription":
// <id>,"result":<item>}}; a subscription the node ends gets a last
// notification with "error":"<reason>" in place of "result"; a tx_status
// subscription ends silently after its committed item; unsubscribe answers
// true or false. Items are the serde forms of NewBlock, EventLog and TxStatus
// (sdk/client/src/api.rs).

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

import { WebSocket, WebSocketServer } from 'ws';

import {
  Address,
  type BlockHeader,
  Hash,
  type JsonObject,
  type JsonValue,
  type Receipt,
  RpcError,
  RpcTransportError,
  SecretKey,
  type SignedTransaction,
  blockHeaderHash,
  blockToJson,
  decodeSignedTransaction,
  encodeSignedTransaction,
  eventToJson,
  fromHex,
  keccak256,
  parseJson,
  receiptToJson,
  signTransaction,
  stringifyJson,
  toHex,
  txHash,
} from '@stele/client';

// The WebSocket client is not exported from the package index yet; load it
// from the build beside this test (dist/ws.js), with its declared types.
import type * as Ws from '../dist/ws.js';

const { WsClient, SubscriptionError } = (await import(new URL('../ws.js', import.meta.url).href)) as typeof Ws;

const CHAIN_ID = 7n;
const CONTRACT = Address.parse('0x5FbDB2315678afecb367f032d93F642f64180aa3');
const TOPIC_A = keccak256(new TextEncoder().encode('Transfer'));
const TOPIC_B = keccak256(new TextEncoder().encode('Approval'));
const KEY = SecretKey.fromBytes(keccak256(new TextEncoder().encode('ws test key')).toBytes());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface MockBlock {
  readonly hash: Hash;
  readonly header: BlockHeader;
  readonly txs: SignedTransaction[];
  readonly receipts: Receipt[];
}

interface Sub {
  readonly kind: 'new_block' | 'event' | 'tx_status';
  readonly filter?: { contract: string | null; topics: (string | null)[] };
  readonly hash?: string;
}

interface Position {
  height: bigint;
  tx: number;
  ev: number;
}

const before = (a: Position, b: Position): boolean =>
  a.height !== b.height ? a.height < b.height : a.tx !== b.tx ? a.tx < b.tx : a.ev < b.ev;

/** A node as its RPC server behaves, over a chain of made-up blocks. */
class MockNode {
  blocks: MockBlock[] = [];
  readonly calls: { method: string; params: JsonValue[] }[] = [];
  port = 0;
  /** On subscribe_new_blocks, send the last this many blocks at once (as a node behind a balancer might). */
  replay = 0;
  /** Answer get_status this much later (with the height it had when asked). */
  statusDelayMs = 0;
  readonly #pending = new Map<string, SignedTransaction>();
  #nonce = 0n;
  #seed: number;
  #wss: WebSocketServer | null = null;
  readonly #subs = new Map<WebSocket, Map<number, Sub>>();
  readonly #muted = new Set<WebSocket>();

  constructor(seed = 0) {
    this.#seed = seed;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get height(): bigint {
    return BigInt(this.blocks.length);
  }

  get connections(): number {
    return this.#subs.size;
  }

  subscriptions(kind: Sub['kind']): number {
    let n = 0;
    for (const m of this.#subs.values()) for (const s of m.values()) if (s.kind === kind) n++;
    return n;
  }

  callsOf(method: string): JsonValue[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.params);
  }

  async start(): Promise<void> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: this.port });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    this.port = (wss.address() as AddressInfo).port;
    this.#wss = wss;
    wss.on('connection', (ws) => {
      this.#subs.set(ws, new Map());
      ws.on('message', (data) => {
        if (!this.#muted.has(ws)) this.#handle(ws, String(data));
      });
      ws.on('close', () => {
        this.#subs.delete(ws);
        this.#muted.delete(ws);
      });
    });
  }

  /** Drops every connection at the TCP level and stops listening. */
  async stop(): Promise<void> {
    const wss = this.#wss;
    if (wss === null) return;
    this.#wss = null;
    for (const ws of wss.clients) ws.terminate();
    this.#subs.clear();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  /** From now on, the open connections get no answer and no item (a dead link). */
  mute(): void {
    for (const ws of this.#subs.keys()) this.#muted.add(ws);
  }

  /** Starts a new chain (what a reset devnet serves). */
  reset(seed: number): void {
    this.blocks = [];
    this.#seed = seed;
  }

  /** Commits `n` blocks, each with `txs` new transactions (and those sent), and publishes them. */
  produce(n: number, txs = 0): void {
    for (let i = 0; i < n; i++) {
      const height = this.height + 1n;
      const list = [...this.#pending.values()];
      this.#pending.clear();
      for (let t = 0; t < txs; t++) list.push(this.#sign());
      const receipts: Receipt[] = list.map((tx, j) => ({
        txHash: txHash(tx),
        status: 'success',
        gasUsed: 21_000n + height * 10n + BigInt(j),
        events: [
          { contract: CONTRACT, topics: [TOPIC_A], data: new Uint8Array([Number(height % 256n), j]) },
          { contract: CONTRACT, topics: [TOPIC_B], data: new Uint8Array([j]) },
          { contract: CONTRACT, topics: [TOPIC_A, TOPIC_B], data: new Uint8Array() },
        ],
        output: new Uint8Array(),
        contractAddress: null,
      }));
      const header: BlockHeader = {
        chainId: CHAIN_ID,
        height,
        epoch: 0n,
        view: 0n,
        parentHash: this.blocks.at(-1)?.hash ?? Hash.ZERO,
        txRoot: Hash.ZERO,
        stateRoot: keccak256(new Uint8Array([this.#seed])),
        receiptsRoot: Hash.ZERO,
        timestampMs: 1_700_000_000_000n + height * 500n + BigInt(this.#seed),
        proposer: KEY.address(),
        nextValidatorsHash: Hash.ZERO,
      };
      const block: MockBlock = { hash: blockHeaderHash(header), header, txs: list, receipts };
      this.blocks.push(block);
      this.#publish(block);
    }
  }

  #sign(): SignedTransaction {
    return signTransaction(
      {
        chainId: CHAIN_ID,
        nonce: this.#nonce++,
        gasLimit: 30_000n,
        gasPrice: 1n,
        payload: { kind: 'transfer', to: CONTRACT, amount: 1n },
      },
      KEY,
    );
  }

  /** Ends every subscription of `kind` with the node's error notification. */
  endSubscriptions(kind: Sub['kind'], reason: string): void {
    for (const [ws, subs] of this.#subs) {
      for (const [id, s] of subs) {
        if (s.kind !== kind) continue;
        subs.delete(id);
        this.#notifyError(ws, kind, id, reason);
      }
    }
  }

  /** Every event matching `filter` from `from` on, in chain order. */
  events(filter: Sub['filter'], from: Position): { at: Position; json: JsonObject }[] {
    const out: { at: Position; json: JsonObject }[] = [];
    for (const b of this.blocks) {
      b.receipts.forEach((r, tx) =>
        r.events.forEach((e, ev) => {
          const at = { height: b.header.height, tx, ev };
          if (before(at, from) || !matches(filter, e.contract.toChecksum(), e.topics.map((t) => t.toString()))) return;
          out.push({
            at,
            json: {
              block_height: b.header.height,
              block_hash: b.hash.toString(),
              tx_hash: r.txHash.toString(),
              tx_index: tx,
              event_index: ev,
              event: eventToJson(e),
            },
          });
        }),
      );
    }
    return out;
  }

  #publish(b: MockBlock): void {
    for (const [ws, subs] of this.#subs) {
      if (this.#muted.has(ws)) continue;
      for (const [id, s] of subs) {
        if (s.kind === 'new_block') {
          this.#notify(ws, 'new_block', id, newBlockJson(b));
        } else if (s.kind === 'event') {
          for (const e of this.events(s.filter, { height: b.header.height, tx: 0, ev: 0 })) {
            if (e.at.height === b.header.height) this.#notify(ws, 'event', id, e.json);
          }
        } else {
          const i = b.receipts.findIndex((r) => r.txHash.toString() === s.hash);
          if (i >= 0) {
            this.#notify(ws, 'tx_status', id, { hash: s.hash!, state: 'committed', receipt: receiptInfoJson(b, i) });
            subs.delete(id);
          }
        }
      }
    }
  }

  #notify(ws: WebSocket, method: string, id: number, result: JsonValue): void {
    ws.send(stringifyJson({ jsonrpc: '2.0', method, params: { subscription: id, result } }));
  }

  #notifyError(ws: WebSocket, method: string, id: number, error: string): void {
    ws.send(stringifyJson({ jsonrpc: '2.0', method, params: { subscription: id, error } }));
  }

  #handle(ws: WebSocket, text: string): void {
    const req = parseJson(text) as JsonObject;
    assert.equal(req['jsonrpc'], '2.0');
    const id = req['id'] as number;
    const method = req['method'] as string;
    const params = req['params'] as JsonValue[];
    assert.ok(Array.isArray(params), 'positional params');
    this.calls.push({ method, params });
    const ok = (result: JsonValue): void => ws.send(stringifyJson({ jsonrpc: '2.0', id, result }));
    const fail = (code: number, message: string): void =>
      ws.send(stringifyJson({ jsonrpc: '2.0', id, error: { code, message } }));
    const subs = this.#subs.get(ws)!;
    const subscribe = (sub: Sub): number => {
      // jsonrpsee's RandomIntegerIdProvider: a random integer below 2^53.
      const subId = Math.floor(Math.random() * 2 ** 53);
      subs.set(subId, sub);
      ok(subId);
      return subId;
    };
    switch (method) {
      case 'get_status': {
        const answer = (result: JsonValue): void => {
          if (this.statusDelayMs > 0) setTimeout(() => ok(result), this.statusDelayMs);
          else ok(result);
        };
        return answer({
          chain_id: CHAIN_ID,
          full_node: false,
          height: this.height,
          certified_height: this.height,
          view: 0,
          peers_connected: 3,
          syncing: false,
          mempool_txs: this.#pending.size,
          mempool_bytes: 0,
          blocks_from: 1,
          phase: 'live',
          snapshot: null,
        });
      }
      case 'get_account':
        return ok({
          address: params[0]!,
          height: this.height,
          balance: '340282366920938463463374607431768211455',
          nonce: 3,
          pending_nonce: 4,
          code_hash: null,
        });
      case 'get_block': {
        const h = params[0];
        const b = typeof h === 'number' || typeof h === 'bigint' ? this.blocks[Number(h) - 1] : undefined;
        if (b === undefined) return fail(2002, `height ${String(h)} is above the committed height ${this.height}`);
        return ok(blockInfoJson(b));
      }
      case 'get_receipt': {
        for (const b of this.blocks) {
          const i = b.receipts.findIndex((r) => r.txHash.toString() === params[0]);
          if (i >= 0) return ok(receiptInfoJson(b, i));
        }
        return fail(2001, `transaction ${String(params[0])} not found`);
      }
      case 'send_transaction': {
        const tx = decodeSignedTransaction(fromHex(params[0] as string));
        const hash = txHash(tx).toString();
        this.#pending.set(hash, tx);
        return ok(hash);
      }
      case 'get_events': {
        const [filter, from, to, limit, cursor] = params as [JsonObject, bigint, bigint | null, number, JsonObject | null];
        const top = to ?? this.height;
        if (top > this.height) return fail(2002, `height ${top} is above the committed height ${this.height}`);
        const c = cursor ?? { height: from, tx_index: 0, event_index: 0 };
        const start = { height: BigInt(c['height'] as number), tx: c['tx_index'] as number, ev: c['event_index'] as number };
        const all = this.events(filterOf(filter), start).filter((e) => e.at.height <= BigInt(top));
        const page = all.slice(0, limit);
        const last = page.at(-1);
        const more = all.length > limit && last !== undefined;
        return ok({
          events: page.map((e) => e.json),
          to_height: more ? last.at.height : top,
          next_height: null,
          ...(more ? { next: { height: last.at.height, tx_index: last.at.tx, event_index: last.at.ev + 1 } } : {}),
        });
      }
      case 'subscribe_new_blocks': {
        const subId = subscribe({ kind: 'new_block' });
        if (this.replay > 0) {
          for (const b of this.blocks.slice(-this.replay)) this.#notify(ws, 'new_block', subId, newBlockJson(b));
        }
        return;
      }
      case 'subscribe_events': {
        const filter = filterOf(params[0] as JsonObject);
        if (filter.topics.length > 4) return fail(2006, 'an event has at most 4 topics');
        subscribe({ kind: 'event', filter });
        return;
      }
      case 'subscribe_tx_status': {
        const hash = params[0] as string;
        const subId = subscribe({ kind: 'tx_status', hash });
        for (const b of this.blocks) {
          const i = b.receipts.findIndex((r) => r.txHash.toString() === hash);
          if (i >= 0) {
            this.#notify(ws, 'tx_status', subId, { hash, state: 'committed', receipt: receiptInfoJson(b, i) });
            subs.delete(subId);
            return;
          }
        }
        this.#notify(ws, 'tx_status', subId, { hash, state: this.#pending.has(hash) ? 'pending' : 'unknown', receipt: null });
        return;
      }
      case 'unsubscribe_new_blocks':
      case 'unsubscribe_events':
      case 'unsubscribe_tx_status':
        return ok(subs.delete(params[0] as number));
      default:
        return fail(-32601, 'Method not found');
    }
  }
}

function filterOf(v: JsonObject): { contract: string | null; topics: (string | null)[] } {
  return { contract: (v['contract'] as string | null) ?? null, topics: (v['topics'] as (string | null)[]) ?? [] };
}

function matches(filter: Sub['filter'], contract: string, topics: string[]): boolean {
  if (filter === undefined) return true;
  if (filter.contract !== null && filter.contract.toLowerCase() !== contract.toLowerCase()) return false;
  return filter.topics.every((t, i) => i < topics.length && (t === null || t === topics[i]));
}

function newBlockJson(b: MockBlock): JsonObject {
  return {
    hash: b.hash.toString(),
    header: blockToJson({ header: b.header, txs: [] })['header'] as JsonObject,
    tx_count: BigInt(b.txs.length),
    gas_used: b.receipts.reduce((s, r) => s + r.gasUsed, 0n),
  };
}

function blockInfoJson(b: MockBlock): JsonObject {
  return {
    hash: b.hash.toString(),
    block: blockToJson({ header: b.header, txs: b.txs }),
    certificate: { height: b.header.height, epoch: 0, view: 0, block_hash: b.hash.toString(), signatures: [] },
    txs_from: 0,
    txs_next: null,
  };
}

function receiptInfoJson(b: MockBlock, i: number): JsonObject {
  return {
    receipt: receiptToJson(b.receipts[i]!),
    block_height: b.header.height,
    block_hash: b.hash.toString(),
    index: i,
    events_omitted: 0,
  };
}

const fast = { initialDelayMs: 10, maxDelayMs: 80 };

/** A hung subscription fails its test instead of the whole run. */
const LIMIT = { timeout: 20_000 };

async function withNode(
  fn: (node: MockNode, client: InstanceType<typeof WsClient>) => Promise<void>,
  options: Ws.WsClientOptions = {},
): Promise<void> {
  const node = new MockNode();
  await node.start();
  node.produce(3);
  const client = new WsClient(node.url, { WebSocket, reconnect: fast, ...options });
  try {
    await fn(node, client);
  } finally {
    client.close();
    await node.stop();
  }
}

async function take<T>(sub: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await sub.next();
    if (r.done === true) throw new Error(`the subscription ended after ${out.length} items`);
    out.push(r.value);
  }
  return out;
}

const heights = (blocks: readonly Ws.NewBlock[]): bigint[] => blocks.map((b) => b.header.height);
const range = (from: bigint, to: bigint): bigint[] => {
  const out: bigint[] = [];
  for (let h = from; h <= to; h++) out.push(h);
  return out;
};

test('typed calls over WebSocket, with the node errors and codes', LIMIT, async () => {
  await withNode(async (node, client) => {
    const status = await client.getStatus();
    assert.equal(status.chainId, CHAIN_ID);
    assert.equal(status.height, 3n);
    const account = await client.getAccount(CONTRACT);
    assert.equal(account.balance, (1n << 128n) - 1n);
    assert.equal(account.pendingNonce, 4n);
    const block = await client.getBlock(2n);
    assert.ok(block.hash.equals(node.blocks[1]!.hash));
    assert.ok(block.block.header.parentHash.equals(node.blocks[0]!.hash));
    await assert.rejects(client.getBlock(99n), (e: unknown) => {
      assert.ok(e instanceof RpcError);
      assert.equal(e.code, 2002);
      assert.equal(e.method, 'get_block');
      return true;
    });
    await assert.rejects(client.call('no_such_method', []), { name: 'RpcError', code: -32601 });
    // Several calls in flight on one connection, answered by id.
    const many = await Promise.all([1n, 2n, 3n, 1n].map((h) => client.getBlock(h)));
    assert.deepEqual(
      many.map((b) => b.block.header.height),
      [1n, 2n, 3n, 1n],
    );
    assert.ok(client.connected);
    assert.deepEqual(node.callsOf('get_block').at(-1), [1, null]);
  });
});

test('an http:// URL is turned into the ws:// one; a refused connection is a transport error', LIMIT, async () => {
  const node = new MockNode();
  await node.start();
  const port = node.port;
  await node.stop();
  const client = new WsClient(`http://127.0.0.1:${port}/`, { WebSocket });
  assert.equal(client.url, `ws://127.0.0.1:${port}/`);
  await assert.rejects(client.getStatus(), (e: unknown) => {
    assert.ok(e instanceof RpcTransportError);
    assert.equal(e.method, 'get_status');
    return true;
  });
  client.close();
  await assert.rejects(client.getStatus(), /the client is closed/);
  if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
    assert.throws(() => new WsClient('ws://127.0.0.1:1'), /no global WebSocket/);
  }
});

test('new blocks arrive in order as the node publishes them; unsubscribe names the id', LIMIT, async () => {
  await withNode(async (node, client) => {
    const sub = await client.subscribeNewBlocks();
    assert.equal(typeof sub.id, 'number');
    const id = sub.id;
    node.produce(3, 1);
    const got = await take(sub, 3);
    assert.deepEqual(heights(got), [4n, 5n, 6n]);
    for (const b of got) {
      const m = node.blocks[Number(b.header.height) - 1]!;
      assert.ok(b.hash.equals(m.hash));
      assert.equal(b.txCount, 1n);
      assert.equal(b.gasUsed, m.receipts[0]!.gasUsed);
    }
    assert.deepEqual(sub.stats, { live: 3, filled: 0, skipped: 0, resubscribed: 0 });
    await sub.unsubscribe();
    assert.deepEqual(node.callsOf('unsubscribe_new_blocks'), [[id]]);
    assert.equal(node.subscriptions('new_block'), 0);
    assert.deepEqual(await sub.next(), { value: undefined, done: true });
  });
});

test('fromHeight reads past blocks over RPC, then follows live', LIMIT, async () => {
  await withNode(async (node, client) => {
    node.produce(5, 2); // up to 8
    const sub = await client.subscribeNewBlocks({ fromHeight: 2 });
    const past = await take(sub, 7);
    assert.deepEqual(heights(past), range(2n, 8n));
    // Read back: the gas of a block is the sum of its receipts'.
    const b5 = node.blocks[4]!;
    assert.equal(past[3]!.gasUsed, b5.receipts[0]!.gasUsed + b5.receipts[1]!.gasUsed);
    assert.equal(past[3]!.txCount, 2n);
    node.produce(2);
    assert.deepEqual(heights(await take(sub, 2)), [9n, 10n]);
    assert.equal(sub.stats.filled, 7);
    assert.equal(sub.stats.live, 2);
    await sub.return?.();
  });
});

test('the server drops the connection and comes back: resubscribed, the gap read by height, no duplicate', LIMIT, async () => {
  const events: Ws.ConnectionEvent[] = [];
  await withNode(
    async (node, client) => {
      const sub = await client.subscribeNewBlocks();
      const firstId = sub.id;
      node.produce(2);
      const got = await take(sub, 2); // 4, 5
      await node.stop();
      node.produce(4, 1); // 6..9 committed while the client is away
      await waitFor('a failed reconnect attempt', () => events.some((e) => e.type === 'retry'));
      assert.equal(sub.id, null);
      node.replay = 3; // the new subscription first repeats 7, 8, 9
      await node.start();
      await waitFor('the resubscription', () => sub.stats.resubscribed === 1);
      node.produce(2); // 10, 11 live
      got.push(...(await take(sub, 6)));
      assert.deepEqual(heights(got), range(4n, 11n));
      for (let i = 1; i < got.length; i++) assert.ok(got[i]!.header.parentHash.equals(got[i - 1]!.hash));
      assert.notEqual(sub.id, firstId);
      assert.ok(sub.stats.filled >= 4, JSON.stringify(sub.stats));
      assert.ok(sub.stats.skipped >= 3, JSON.stringify(sub.stats)); // the replayed ones
      // The gap was read by height over the new connection.
      const read = node.callsOf('get_block').map((p) => p[0]);
      for (const h of [6, 7, 8, 9]) assert.ok(read.includes(h), `get_block(${h}) in ${JSON.stringify(read)}`);
      assert.equal(got[2]!.gasUsed, node.blocks[5]!.receipts[0]!.gasUsed);
      assert.deepEqual(
        events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]),
        ['open', 'close', 'retry', 'open'],
      );
      assert.ok(events.some((e) => e.type === 'open' && e.reconnected));
      await sub.unsubscribe();
    },
    { onConnection: (e) => events.push(e) },
  );
});

test('a subscription the node ends with an error is subscribed again and its gap filled', LIMIT, async () => {
  await withNode(async (node, client) => {
    const sub = await client.subscribeNewBlocks();
    node.produce(1);
    const got = await take(sub, 1);
    node.endSubscriptions(
      'new_block',
      'subscription dropped: the subscriber fell 1100 blocks behind the chain (at most 1024 are kept for a slow subscriber); subscribe again and read the missed blocks with get_block or get_events',
    );
    node.produce(3); // published to nobody
    await waitFor('the resubscription', () => sub.stats.resubscribed === 1);
    node.produce(1);
    got.push(...(await take(sub, 4)));
    assert.deepEqual(heights(got), range(4n, 8n));
    assert.match(sub.lastEnd ?? '', /fell 1100 blocks behind/);
    assert.equal(node.connections, 1); // the same connection
  });
});

test('a slow consumer: the queue stays bounded and the blocks it could not hold are read back in order', LIMIT, async () => {
  await withNode(
    async (node, client) => {
      const sub = await client.subscribeNewBlocks();
      node.produce(100, 1);
      await waitFor('every notification', () => sub.stats.live + sub.stats.skipped === 100);
      assert.equal(sub.queued, 8);
      assert.equal(sub.stats.live, 8);
      const got: Ws.NewBlock[] = [];
      while (got.length < 100) {
        got.push(...(await take(sub, 1)));
        assert.ok(sub.queued <= 8, `queued ${sub.queued}`);
      }
      assert.deepEqual(heights(got), range(4n, 103n));
      assert.equal(sub.stats.filled, 92);
      for (const b of got) {
        const m = node.blocks[Number(b.header.height) - 1]!;
        assert.ok(b.hash.equals(m.hash));
        assert.equal(b.gasUsed, m.receipts[0]!.gasUsed);
      }
      // Back in step: the next block comes live again.
      node.produce(1);
      assert.deepEqual(heights(await take(sub, 1)), [104n]);
      assert.equal(sub.stats.live, 9);
    },
    { queueMax: 8 },
  );
});

test('events: a filter, a drop, and the missed events read with get_events from a cursor', LIMIT, async () => {
  await withNode(
    async (node, client) => {
      const filter = { contract: CONTRACT, topics: [TOPIC_A] };
      const sub = await client.subscribeEvents(filter);
      assert.deepEqual(node.callsOf('subscribe_events'), [[{ contract: CONTRACT.toChecksum(), topics: [TOPIC_A.toString()] }]]);
      node.produce(2, 2); // heights 4, 5: 2 txs x 2 matching events each, over the queue's 4
      const got = await take(sub, 8);
      node.produce(1, 1); // height 6: 2 matching events
      got.push(...(await take(sub, 1))); // stop inside block 6, caught up with the node
      await node.stop();
      node.produce(3, 3);
      // The new subscription's first events come before the node's height
      // does: they must wait for the events missed before them.
      node.statusDelayMs = 100;
      await node.start();
      await waitFor('the new subscription', () => node.subscriptions('event') === 1);
      node.produce(1, 1);
      await waitFor('the resubscription', () => sub.stats.resubscribed === 1);
      node.statusDelayMs = 0;
      const expected = node.events(
        { contract: CONTRACT.toChecksum(), topics: [TOPIC_A.toString()] },
        { height: 4n, tx: 0, ev: 0 },
      );
      got.push(...(await take(sub, expected.length - got.length)));
      assert.deepEqual(
        got.map((e) => [e.blockHeight, e.txIndex, e.eventIndex]),
        expected.map((e) => [e.at.height, e.at.tx, e.at.ev]),
      );
      for (const e of got) {
        assert.ok(e.event.contract.equals(CONTRACT));
        assert.ok(e.event.topics[0]!.equals(TOPIC_A));
      }
      // Small pages: the cursor carried from page to page.
      const cursors = node.callsOf('get_events').map((p) => p[4]);
      assert.ok(cursors.length >= 2 && cursors.every((c) => c !== null), JSON.stringify(cursors));
      assert.ok(sub.stats.filled > 0);
    },
    { queueMax: 4 },
  );
});

test('a subscription the node refuses is an RpcError with its code', LIMIT, async () => {
  await withNode(async (_node, client) => {
    const topics = [TOPIC_A, null, null, null, null];
    await assert.rejects(client.subscribeEvents({ topics }), { name: 'RpcError', code: 2006, message: 'an event has at most 4 topics' });
  });
});

test('tx_status: the current state, then committed with the receipt, then the end; deduplicated across a drop', LIMIT, async () => {
  await withNode(async (node, client) => {
    const tx = signTransaction(
      { chainId: CHAIN_ID, nonce: 0n, gasLimit: 30_000n, gasPrice: 1n, payload: { kind: 'transfer', to: CONTRACT, amount: 5n } },
      SecretKey.fromBytes(keccak256(new Uint8Array([9])).toBytes()),
    );
    const hash = await client.sendTransaction(tx);
    assert.ok(hash.equals(txHash(tx)));
    assert.deepEqual(node.callsOf('send_transaction'), [[toHex(encodeSignedTransaction(tx)), null]]);
    const sub = await client.subscribeTxStatus(hash);
    const [first] = await take(sub, 1);
    assert.equal(first!.state, 'pending');
    assert.equal(first!.receipt, null);
    // A drop: the node sends the current state again, which is not repeated.
    await node.stop();
    await node.start();
    await waitFor('the resubscription', () => sub.stats.resubscribed === 1);
    await waitFor('the repeated state', () => sub.stats.skipped === 1);
    node.produce(1);
    const [done] = await take(sub, 1);
    assert.equal(done!.state, 'committed');
    assert.equal(done!.receipt?.blockHeight, 4n);
    assert.ok(done!.receipt?.receipt.txHash.equals(hash));
    assert.deepEqual(await sub.next(), { value: undefined, done: true });
    // The node ended it after the commit: nothing to unsubscribe.
    await sub.unsubscribe();
    assert.deepEqual(node.callsOf('unsubscribe_tx_status'), []);
  });
});

test('callbacks: forEach delivers in order and stops when the subscription ends', LIMIT, async () => {
  await withNode(async (node, client) => {
    const sub = await client.subscribeNewBlocks();
    const seen: bigint[] = [];
    const done = sub.forEach(async (b) => {
      seen.push(b.header.height);
      await sleep(1);
      if (seen.length === 3) await sub.unsubscribe();
    });
    node.produce(5);
    await done;
    assert.deepEqual(seen, [4n, 5n, 6n]);
    // A callback that throws ends the subscription with its error.
    const sub2 = await client.subscribeNewBlocks();
    const failing = sub2.forEach(() => {
      throw new Error('consumer failed');
    });
    node.produce(1);
    await assert.rejects(failing, /consumer failed/);
    await waitFor('the unsubscribe', () => node.subscriptions('new_block') === 0);
  });
});

test('a node that now serves another chain ends the subscription with a SubscriptionError', LIMIT, async () => {
  await withNode(async (node, client) => {
    const sub = await client.subscribeNewBlocks();
    node.produce(1);
    await take(sub, 1); // 4
    await node.stop();
    node.reset(1);
    node.produce(6); // a new chain, higher
    await node.start();
    await assert.rejects(take(sub, 1), (e: unknown) => {
      assert.ok(e instanceof SubscriptionError);
      assert.match(e.message, /block 5 .* names parent .* not the block 4 delivered before/);
      return true;
    });
    assert.deepEqual(await sub.next(), { value: undefined, done: true });
  });
});

test('without reconnect, a drop ends the subscription with a transport error', LIMIT, async () => {
  await withNode(
    async (node, client) => {
      const sub = await client.subscribeNewBlocks();
      await node.stop();
      await assert.rejects(take(sub, 1), (e: unknown) => e instanceof RpcTransportError);
      await node.start();
      // Calls still connect again on demand.
      assert.equal((await client.getStatus()).height, 3n);
    },
    { reconnect: false },
  );
});

test('a dead link that never closes is found by the heartbeat and replaced', LIMIT, async () => {
  await withNode(
    async (node, client) => {
      const sub = await client.subscribeNewBlocks();
      node.mute();
      node.produce(2); // lost on the dead link
      await waitFor('the resubscription', () => sub.stats.resubscribed === 1, 5_000);
      node.produce(1);
      assert.deepEqual(heights(await take(sub, 3)), [4n, 5n, 6n]);
    },
    { heartbeatMs: 100 },
  );
});

test('close() ends subscriptions and fails calls in flight', LIMIT, async () => {
  await withNode(async (node, client) => {
    const sub = await client.subscribeNewBlocks();
    const waiting = sub.next();
    node.mute();
    const call = client.getStatus();
    client.close();
    assert.deepEqual(await waiting, { value: undefined, done: true });
    await assert.rejects(call, (e: unknown) => e instanceof RpcTransportError);
    assert.equal(client.connected, false);
  });
});
