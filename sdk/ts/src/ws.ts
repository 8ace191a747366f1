/**
 * The node's JSON-RPC API over WebSocket (`ws://host:port/`, the HTTP
 * port): every typed method of {@link RpcMethods}, and the subscriptions
 * `subscribe_new_blocks`, `subscribe_events` and `subscribe_tx_status`
 * (`sdk/client/src/api.rs`), read as async iterators or with callbacks.
 *
 * The wire: a call is `{"jsonrpc":"2.0","id":N,"method":..,"params":[..]}`;
 * a subscribe call answers with the subscription id (the node's ids are
 * JSON numbers; strings are accepted too); then each item comes as
 * `{"jsonrpc":"2.0","method":"new_block","params":{"subscription":ID,"result":{..}}}`,
 * and a subscription the node ends (a subscriber too far behind) gets a
 * last notification with `"error":"<why>"` in place of `result`.
 *
 * What this client adds:
 *
 * - **Reconnect.** When the connection drops while subscriptions are open,
 *   the client reconnects with exponential backoff (250 ms doubling up to
 *   10 s, each delay a random 50 to 100 % of that) and subscribes again. A
 *   subscription the node ended with an error is subscribed again too.
 *   Calls in flight when the connection drops fail with an
 *   {@link RpcTransportError} and are not sent again (the client cannot
 *   know whether a `send_transaction` was admitted).
 * - **No gap, no duplicate.** A block or event subscription knows the
 *   next height (or event position) it owes its consumer. After every
 *   (re)subscription it asks the node's height, and reads what lies
 *   between over RPC (`get_block` by height, `get_events` with a cursor)
 *   before it lets live notifications through again; notifications it
 *   already delivered are skipped. Consecutive blocks must link by
 *   `parentHash`, or the subscription ends with a
 *   {@link SubscriptionError} (the node now serves another chain).
 * - **Bounded memory.** Each subscription queues at most `queueMax` items
 *   (256 by default). A notification that finds the queue full is not
 *   kept: the subscription only notes how far the chain got, and once its
 *   consumer has room again reads the missed items over RPC, at most a
 *   queue's worth at a time. A slow consumer therefore sees every item in
 *   order, later, and costs a bounded queue plus one RPC read per missed
 *   block (a block's `gasUsed` is read back as the sum of its receipts'
 *   gas, one `get_receipt` per transaction). If the node no longer keeps a
 *   missed block (pruned below `blocksFrom`), the subscription ends with
 *   the node's error. A `tx_status` subscription keeps only the latest
 *   states.
 *
 * In browsers the global `WebSocket` is used; in Node.js 20 pass one, e.g.
 * `new WsClient(url, { WebSocket })` with `import { WebSocket } from 'ws'`.
 * Close the client ({@link WsClient.close}) to let a Node.js process exit.
 *
 * @module
 */

import { txHash } from './tx.js';
import type { BlockHeader } from './block.js';
import type { Hash } from './hash.js';
import {
  JsonError,
  type JsonObject,
  type JsonValue,
  asHash,
  asObject,
  asString,
  asU64,
  blockHeaderFromJson,
  parseJson,
  stringifyJson,
} from './json.js';
import {
  type EventCursor,
  type EventFilter,
  type EventLog,
  type ReceiptInfo,
  RpcCodes,
  RpcError,
  RpcMethods,
  RpcTransportError,
  type TxState,
  eventFilterToJson,
  eventLogFromJson,
  receiptInfoFromJson,
  responseResult,
} from './rpc.js';

// ---------------------------------------------------------------------------
// The WebSocket this client drives.

/**
 * The part of the WHATWG `WebSocket` this client uses: browsers' and the
 * `ws` package's both fit. Text frames must arrive as strings (or bytes of
 * UTF-8).
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A `WebSocket` class: the global one in browsers, `ws`'s in Node.js. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

interface MessageEventLike {
  readonly data?: unknown;
}
interface CloseEventLike {
  readonly code?: number;
  readonly reason?: string;
}
interface ErrorEventLike {
  readonly message?: string;
  readonly error?: unknown;
}

// ---------------------------------------------------------------------------
// Options, items and errors.

/** How the client reconnects after the connection drops. */
export interface ReconnectOptions {
  /** The first delay (default 250 ms). */
  readonly initialDelayMs?: number;
  /** The longest delay (default 10 000 ms). */
  readonly maxDelayMs?: number;
  /** Each failed attempt multiplies the delay by this (default 2). */
  readonly factor?: number;
  /**
   * Failed attempts in a row after which open subscriptions end with an
   * {@link RpcTransportError} (default: never give up).
   */
  readonly attemptsMax?: number;
}

/** What the client tells `onConnection` about its connection. */
export type ConnectionEvent =
  | { readonly type: 'open'; readonly reconnected: boolean }
  | { readonly type: 'close'; readonly code: number; readonly reason: string; readonly reconnecting: boolean }
  | { readonly type: 'retry'; readonly attempt: number; readonly delayMs: number; readonly error: Error };

export interface WsClientOptions {
  /** The WebSocket class; the global `WebSocket` by default (none in Node.js 20). */
  readonly WebSocket?: WebSocketConstructor;
  /** Fail a call with no answer after this long (no limit by default). */
  readonly timeoutMs?: number;
  /** Give up a connection attempt after this long (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
  /** Reconnection after a drop; `false`: subscriptions end when it drops. */
  readonly reconnect?: ReconnectOptions | false;
  /** Items each subscription queues for its consumer (default 256). */
  readonly queueMax?: number;
  /**
   * While subscriptions are open and nothing was received for this long,
   * the client calls `get_status`, and reconnects if no answer comes
   * within as long again (default 30 000 ms; 0: never).
   */
  readonly heartbeatMs?: number;
  /** Told when the connection opens, closes or a reconnect attempt fails. */
  readonly onConnection?: (event: ConnectionEvent) => void;
}

/** A committed block (`subscribe_new_blocks`). */
export interface NewBlock {
  readonly hash: Hash;
  readonly header: BlockHeader;
  readonly txCount: bigint;
  /** Gas used by all its transactions. */
  readonly gasUsed: bigint;
}

/** A transaction's status (`subscribe_tx_status`). */
export interface TxStatus {
  readonly hash: Hash;
  readonly state: TxState;
  /** With `committed` (cut to the node's response limit as `get_receipt`). */
  readonly receipt: ReceiptInfo | null;
}

/** Counters of one subscription. */
export interface SubscriptionStats {
  /** Items delivered from the node's notifications. */
  readonly live: number;
  /** Items read back over RPC (after a reconnect, or for a slow consumer). */
  readonly filled: number;
  /** Notifications not queued: already delivered, or caught up over RPC instead. */
  readonly skipped: number;
  /** Times the subscription was made again (after a drop or the node's end). */
  readonly resubscribed: number;
}

/**
 * A subscription: an async iterator of its items (`for await`), or
 * {@link Subscription.forEach} with a callback. Breaking out of the loop,
 * {@link Subscription.unsubscribe} or the client's `close()` end it.
 */
export interface Subscription<T> extends AsyncIterableIterator<T> {
  /** `new_block`, `event` or `tx_status`. */
  readonly notification: string;
  /** The node's id of the subscription now, `null` while it has none. */
  readonly id: JsonValue | null;
  /** Items queued for the consumer, at most the client's `queueMax`. */
  readonly queued: number;
  readonly stats: SubscriptionStats;
  /** Why the node last ended the subscription (it was then subscribed again), if it did. */
  readonly lastEnd: string | null;
  /** Ends the subscription; pending `next()` calls resolve as done. */
  unsubscribe(): Promise<void>;
  /**
   * Calls `fn` with each item, awaiting what it returns before the next,
   * until the subscription ends (resolves) or fails (rejects). A `fn`
   * that throws ends the subscription with its error.
   */
  forEach(fn: (item: T) => unknown): Promise<void>;
}

/** A subscription ended because what the node sent cannot continue it. */
export class SubscriptionError extends Error {
  override readonly name = 'SubscriptionError';
}

/** A subscription's starting point. */
export interface FollowOptions {
  /**
   * The first height to deliver; earlier heights are read over RPC first.
   * Default: the block after the node's height when subscribing.
   */
  readonly fromHeight?: bigint | number;
}

// ---------------------------------------------------------------------------
// Items from their JSON forms.

function newBlockFromJson(v: JsonValue, p: string): NewBlock {
  const o = asObject(v, p);
  return {
    hash: asHash(o['hash'], `${p}.hash`),
    header: blockHeaderFromJson(o['header'] ?? null, `${p}.header`),
    txCount: asU64(o['tx_count'], `${p}.tx_count`),
    gasUsed: asU64(o['gas_used'], `${p}.gas_used`),
  };
}

function txStateFromJson(v: JsonValue | undefined, p: string): TxState {
  const s = asString(v, p);
  if (s === 'pending' || s === 'committed' || s === 'unknown') return s;
  throw new JsonError(`${p}: expected pending, committed or unknown, got ${JSON.stringify(s)}`);
}

function txStatusFromJson(v: JsonValue, p: string): TxStatus {
  const o = asObject(v, p);
  const receipt = o['receipt'];
  return {
    hash: asHash(o['hash'], `${p}.hash`),
    state: txStateFromJson(o['state'], `${p}.state`),
    receipt: receipt === null || receipt === undefined ? null : receiptInfoFromJson(receipt, `${p}.receipt`),
  };
}

// ---------------------------------------------------------------------------
// What each kind of subscription owes its consumer.

/** What to do with a notification. */
type Verdict = 'queue' | 'skip' | 'replace';

/**
 * The position a subscription has reached, and how it reads back what it
 * missed. `live` and `fill` are never run at once for one tracker in a way
 * that both advance it: while `target` is set, live items are only noted.
 */
interface Tracker<T> {
  /** Sets the first height owed. */
  start(height: bigint): void;
  /** A notification: queue it (and advance), skip it, or replace the queue's last. */
  live(item: T, room: boolean): Verdict;
  /**
   * From now until {@link Tracker.release}, live items are only noted, not
   * queued: a new subscription's first items may come before the node's
   * height is known, and what lies before them must come first.
   */
  hold(): void;
  /** The node had reached `height` when subscribed: whatever is owed up to it is read back. */
  release(height: bigint): void;
  /** Whether items are owed that only RPC can give. */
  owing(): boolean;
  /** Reads some owed items over RPC (at most `room`), handing each to `emit` in order. */
  fill(rpc: RpcMethods, room: number, emit: (item: T) => void): Promise<void>;
  /** Whether `item` is the subscription's last. */
  final(item: T): boolean;
}

const maxBig = (a: bigint | null, b: bigint): bigint => (a === null || b > a ? b : a);

class BlockTracker implements Tracker<NewBlock> {
  /** The next height owed. */
  #next = 0n;
  /** The hash of the block at `#next - 1`, once known. */
  #prev: Hash | null = null;
  /** While set, heights up to it are read over RPC; live blocks are only noted. */
  #target: bigint | null = null;
  #holding = false;

  start(height: bigint): void {
    this.#next = height;
  }

  hold(): void {
    this.#holding = true;
  }

  release(height: bigint): void {
    this.#holding = false;
    if (height >= this.#next) this.#target = maxBig(this.#target, height);
  }

  #link(height: bigint, hash: Hash, parent: Hash): void {
    if (this.#prev !== null && !parent.equals(this.#prev)) {
      throw new SubscriptionError(
        `block ${height} (${hash.toString()}) names parent ${parent.toString()}, not the block ${height - 1n} delivered before (${this.#prev.toString()}): the node serves another chain`,
      );
    }
    this.#next = height + 1n;
    this.#prev = hash;
    if (this.#target !== null && this.#next > this.#target) this.#target = null;
  }

  live(b: NewBlock, room: boolean): Verdict {
    const h = b.header.height;
    if (h < this.#next) return 'skip';
    if (this.#target === null && !this.#holding && h === this.#next && room) {
      this.#link(h, b.hash, b.header.parentHash);
      return 'queue';
    }
    this.#target = maxBig(this.#target, h);
    return 'skip';
  }

  owing(): boolean {
    return this.#target !== null;
  }

  async fill(rpc: RpcMethods, room: number, emit: (b: NewBlock) => void): Promise<void> {
    for (let i = 0; i < room && this.#target !== null; i++) {
      const h = this.#next;
      const info = await rpc.getBlock(h);
      const header = info.block.header;
      if (header.height !== h) {
        throw new SubscriptionError(`get_block(${h}) answered the block at height ${header.height}`);
      }
      let gasUsed = 0n;
      for (const tx of info.block.txs) {
        gasUsed += (await rpc.getReceipt(txHash(tx))).receipt.gasUsed;
      }
      if (this.#next !== h) return; // cannot happen: one fill at a time
      this.#link(h, info.hash, header.parentHash);
      emit({ hash: info.hash, header, txCount: BigInt(info.block.txs.length), gasUsed });
    }
  }

  final(): boolean {
    return false;
  }
}

/** Events asked for per `get_events` call at most (the node's default `events_limit_max`). */
const EVENTS_PAGE_MAX = 1_000;

const cursorBefore = (a: EventCursor, b: EventCursor): boolean =>
  a.height !== b.height ? a.height < b.height : a.txIndex !== b.txIndex ? a.txIndex < b.txIndex : a.eventIndex < b.eventIndex;

class EventTracker implements Tracker<EventLog> {
  readonly #filter: EventFilter;
  /** The first position not delivered yet. */
  #next: EventCursor = { height: 0n, txIndex: 0, eventIndex: 0 };
  #target: bigint | null = null;
  #holding = false;

  constructor(filter: EventFilter) {
    this.#filter = filter;
  }

  start(height: bigint): void {
    this.#next = { height, txIndex: 0, eventIndex: 0 };
  }

  hold(): void {
    this.#holding = true;
  }

  release(height: bigint): void {
    this.#holding = false;
    if (height >= this.#next.height) this.#target = maxBig(this.#target, height);
  }

  #advance(e: EventLog): void {
    this.#next = { height: e.blockHeight, txIndex: e.txIndex, eventIndex: e.eventIndex + 1 };
  }

  live(e: EventLog, room: boolean): Verdict {
    const at: EventCursor = { height: e.blockHeight, txIndex: e.txIndex, eventIndex: e.eventIndex };
    if (cursorBefore(at, this.#next)) return 'skip';
    if (this.#target === null && !this.#holding && room) {
      this.#advance(e);
      return 'queue';
    }
    this.#target = maxBig(this.#target, e.blockHeight);
    return 'skip';
  }

  owing(): boolean {
    return this.#target !== null;
  }

  async fill(rpc: RpcMethods, room: number, emit: (e: EventLog) => void): Promise<void> {
    const to = this.#target;
    if (to === null) return;
    const from = this.#next;
    if (from.height > to) {
      this.#target = null;
      return;
    }
    const page = await rpc.getEvents(this.#filter, from.height, to, Math.max(1, Math.min(room, EVENTS_PAGE_MAX)), from);
    for (const e of page.events) {
      const at: EventCursor = { height: e.blockHeight, txIndex: e.txIndex, eventIndex: e.eventIndex };
      if (cursorBefore(at, this.#next) || e.blockHeight > to) {
        throw new SubscriptionError(`get_events from ${from.height} to ${to} answered an event out of its range or order`);
      }
      this.#advance(e);
      emit(e);
    }
    if (page.next !== null) {
      if (cursorBefore(page.next, this.#next)) {
        throw new SubscriptionError('get_events answered a next cursor before the events it returned');
      }
      this.#next = page.next;
    } else {
      this.#next = { height: to + 1n, txIndex: 0, eventIndex: 0 };
      if (this.#target === to) this.#target = null;
    }
  }

  final(): boolean {
    return false;
  }
}

class TxTracker implements Tracker<TxStatus> {
  #last: TxState | null = null;

  start(): void {}

  hold(): void {}

  release(): void {}

  live(s: TxStatus, room: boolean): Verdict {
    if (s.state === this.#last || this.#last === 'committed') return 'skip';
    this.#last = s.state;
    return room ? 'queue' : 'replace';
  }

  owing(): boolean {
    return false;
  }

  async fill(): Promise<void> {}

  final(s: TxStatus): boolean {
    return s.state === 'committed';
  }
}

// ---------------------------------------------------------------------------
// One subscription.

/** What a subscription needs of its client. */
interface Wire {
  readonly rpc: RpcMethods;
  readonly queueMax: number;
  /**
   * Sends `feed`'s subscribe call; `feed.subscribed` runs as the answer is
   * read, before any item can be.
   */
  subscribe(feed: FeedControl, method: string, params: readonly JsonValue[]): Promise<void>;
  /** Sends the unsubscribe call if the connection is open; never throws. */
  unsubscribe(method: string, id: JsonValue): Promise<void>;
  forget(feed: FeedControl): void;
  /** The delay before the `attempt`-th retry (from 0). */
  delay(attempt: number): number;
  /** Whether the connection is open. */
  connected(): boolean;
}

/** The client's handle on a subscription. */
interface FeedControl {
  readonly notification: string;
  /** Over: nothing more will come from the node. */
  readonly finished: boolean;
  /** The node's id for a subscribe call just answered: false if no longer wanted. */
  subscribed(id: JsonValue): boolean;
  item(result: JsonValue): void;
  /** The node ended the subscription with `error`. */
  ended(error: JsonValue): void;
  /** The connection dropped. */
  dropped(): void;
  /** A connection is open again. */
  reopened(): void;
  /** The client gave up (`error`) or was closed (`null`). */
  end(error: Error | null): void;
}

const subKey = (id: JsonValue): string => `${typeof id}:${String(id)}`;

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    (t as { unref?: () => void }).unref?.();
  });

/** Errors a retry may cure: the node busy or over the caller's rate. */
const retriable = (e: unknown): boolean =>
  e instanceof RpcError && (e.code === RpcCodes.BUSY || e.code === RpcCodes.RATE_LIMITED);

class Feed<T> implements Subscription<T>, FeedControl {
  readonly notification: string;
  readonly #wire: Wire;
  readonly #tracker: Tracker<T>;
  readonly #subscribe: string;
  readonly #unsubscribe: string;
  readonly #params: readonly JsonValue[];
  readonly #read: (v: JsonValue, path: string) => T;
  /** Whether heights matter (blocks, events): the node's height is read after subscribing. */
  readonly #followsChain: boolean;
  readonly #queue: T[] = [];
  #id: JsonValue | null = null;
  /** The subscription is over for the consumer once the queue is drained. */
  #over = false;
  #error: Error | null = null;
  #filling = false;
  #resubscribing = false;
  #failures = 0;
  #lastEnd: string | null = null;
  #waiters: (() => void)[] = [];
  readonly #stats = { live: 0, filled: 0, skipped: 0, resubscribed: 0 };

  constructor(
    wire: Wire,
    tracker: Tracker<T>,
    names: { subscribe: string; notification: string; unsubscribe: string },
    params: readonly JsonValue[],
    read: (v: JsonValue, path: string) => T,
    followsChain: boolean,
  ) {
    this.#wire = wire;
    this.#tracker = tracker;
    this.#subscribe = names.subscribe;
    this.notification = names.notification;
    this.#unsubscribe = names.unsubscribe;
    this.#params = params;
    this.#read = read;
    this.#followsChain = followsChain;
  }

  get id(): JsonValue | null {
    return this.#id;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get finished(): boolean {
    return this.#over;
  }

  get stats(): SubscriptionStats {
    return { ...this.#stats };
  }

  /** Subscribes for the first time: errors go to the caller. */
  async open(fromHeight: bigint | null): Promise<void> {
    if (this.#followsChain) {
      this.#tracker.start(fromHeight ?? (await this.#wire.rpc.getStatus()).height + 1n);
    }
    await this.#establish();
  }

  subscribed(id: JsonValue): boolean {
    if (this.#over) {
      void this.#wire.unsubscribe(this.#unsubscribe, id);
      return false;
    }
    this.#id = id;
    return true;
  }

  /** Subscribes, then reads the node's height to learn what is owed. */
  async #establish(): Promise<void> {
    this.#tracker.hold();
    await this.#wire.subscribe(this, this.#subscribe, this.#params);
    if (this.#over) return;
    if (this.#followsChain) {
      const id = this.#id;
      for (let attempt = 0; ; attempt++) {
        try {
          const { height } = await this.#wire.rpc.getStatus();
          if (this.#id === id) this.#tracker.release(height);
          break;
        } catch (e) {
          // Retried while this subscription stands (a call that timed out);
          // after a drop the resubscription reads it again.
          if (this.#over || this.#id !== id || !(e instanceof RpcTransportError || retriable(e))) throw e;
          await sleep(this.#wire.delay(attempt));
        }
      }
    } else {
      this.#tracker.release(0n);
    }
    this.#failures = 0;
    this.#wake();
  }

  async #resubscribe(): Promise<void> {
    if (this.#resubscribing || this.#over || this.#id !== null) return;
    this.#resubscribing = true;
    try {
      for (;;) {
        try {
          await this.#establish();
          this.#stats.resubscribed++;
          return;
        } catch (e) {
          if (this.#over) return;
          // After a drop, the reconnect subscribes again; a call that timed
          // out on a live connection is tried again here.
          if (e instanceof RpcTransportError && !this.#wire.connected()) return;
          if (!(e instanceof RpcTransportError) && !retriable(e)) {
            this.end(e instanceof Error ? e : new Error(String(e)));
            return;
          }
          await sleep(this.#wire.delay(this.#failures++));
        }
      }
    } finally {
      this.#resubscribing = false;
    }
  }

  item(result: JsonValue): void {
    if (this.#over) return;
    let value: T;
    try {
      value = this.#read(result, `${this.notification}.result`);
    } catch (e) {
      this.end(new RpcTransportError(this.notification, `unexpected item: ${(e as Error).message}`, null, e));
      return;
    }
    let verdict: Verdict;
    try {
      verdict = this.#tracker.live(value, this.#queue.length < this.#wire.queueMax);
    } catch (e) {
      this.end(e as Error);
      return;
    }
    if (verdict === 'skip') {
      this.#stats.skipped++;
      this.#wake();
      return;
    }
    if (verdict === 'replace') this.#queue.pop();
    this.#push(value);
    this.#stats.live++;
  }

  #push(value: T): void {
    this.#queue.push(value);
    if (this.#tracker.final(value)) {
      // The node ends the subscription after its last item, silently.
      this.#over = true;
      this.#id = null;
      this.#wire.forget(this);
    }
    this.#wake();
  }

  ended(error: JsonValue): void {
    if (this.#over) return;
    this.#id = null;
    this.#lastEnd = typeof error === 'string' ? error : stringifyJson(error);
    // The node says: subscribe again and read what was missed. That is
    // what a resubscription does.
    void sleep(this.#wire.delay(this.#failures++)).then(() => this.#resubscribe());
  }

  get lastEnd(): string | null {
    return this.#lastEnd;
  }

  dropped(): void {
    this.#id = null;
  }

  reopened(): void {
    void this.#resubscribe();
  }

  end(error: Error | null): void {
    if (this.#over && this.#error === null && error === null) {
      this.#wake();
      return;
    }
    const id = this.#id;
    this.#over = true;
    this.#id = null;
    if (error !== null && this.#error === null) this.#error = error;
    this.#wire.forget(this);
    if (id !== null) void this.#wire.unsubscribe(this.#unsubscribe, id);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
    this.#pump();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Reads owed items over RPC while the queue has room. */
  #pump(): void {
    if (this.#filling || this.#over || !this.#tracker.owing() || this.#id === null) return;
    const room = this.#wire.queueMax - this.#queue.length;
    if (room <= 0) return;
    this.#filling = true;
    void (async () => {
      let retries = 0;
      try {
        while (!this.#over && this.#tracker.owing() && this.#id !== null) {
          const room = this.#wire.queueMax - this.#queue.length;
          if (room <= 0) break;
          try {
            await this.#tracker.fill(this.#wire.rpc, room, (v) => {
              if (this.#over) return;
              this.#stats.filled++;
              this.#push(v);
            });
            retries = 0;
          } catch (e) {
            if (this.#over) return;
            if (e instanceof RpcTransportError) break; // resumes once subscribed again
            if (retriable(e)) {
              await sleep(this.#wire.delay(retries++));
              continue;
            }
            this.end(e instanceof Error ? e : new Error(String(e)));
            return;
          }
        }
      } finally {
        this.#filling = false;
      }
      // Whatever changed meanwhile (room, a new target) starts it again.
      if (!this.#over && this.#tracker.owing() && this.#id !== null && this.#queue.length < this.#wire.queueMax) {
        this.#pump();
      }
    })();
  }

  #pulling: Promise<unknown> = Promise.resolve();

  next(): Promise<IteratorResult<T>> {
    const result = this.#pulling.then(() => this.#take());
    this.#pulling = result.catch(() => undefined);
    return result;
  }

  async #take(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#queue.length > 0) {
        const value = this.#queue.shift() as T;
        this.#pump();
        return { value, done: false };
      }
      if (this.#over) {
        const error = this.#error;
        if (error !== null) {
          this.#error = null;
          throw error;
        }
        return { value: undefined, done: true };
      }
      this.#pump();
      await this.#changed();
    }
  }

  async return(): Promise<IteratorResult<T>> {
    await this.unsubscribe();
    return { value: undefined, done: true };
  }

  async unsubscribe(): Promise<void> {
    const id = this.#id;
    this.#queue.length = 0;
    this.#error = null;
    this.#over = true;
    this.#id = null;
    this.#wire.forget(this);
    this.#wake();
    if (id !== null) await this.#wire.unsubscribe(this.#unsubscribe, id);
  }

  async forEach(fn: (item: T) => unknown): Promise<void> {
    for (;;) {
      const r = await this.next();
      if (r.done === true) return;
      try {
        await fn(r.value);
      } catch (e) {
        await this.unsubscribe();
        throw e;
      }
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

// ---------------------------------------------------------------------------
// The client.

interface Pending {
  readonly method: string;
  readonly size: number;
  readonly resolve: (v: JsonValue) => void;
  readonly reject: (e: Error) => void;
  readonly onResult: ((v: JsonValue) => void) | undefined;
  timer: ReturnType<typeof setTimeout> | null;
}

function messageText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return null;
}

/** `http(s)://` becomes `ws(s)://`; other URLs are kept. */
function wsUrl(url: string): string {
  if (url.startsWith('http://')) return `ws://${url.slice(7)}`;
  if (url.startsWith('https://')) return `wss://${url.slice(8)}`;
  return url;
}

/**
 * A typed JSON-RPC client over one WebSocket, with subscriptions that
 * survive reconnects (see the module's documentation). It connects on the
 * first call and again on the first call after the connection dropped;
 * while subscriptions are open it reconnects by itself.
 */
export class WsClient extends RpcMethods {
  /** The `ws://` or `wss://` URL. */
  readonly url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #timeoutMs: number | null;
  readonly #connectTimeoutMs: number;
  readonly #reconnect: Required<Omit<ReconnectOptions, 'attemptsMax'>> & { attemptsMax: number } | null;
  readonly #queueMax: number;
  readonly #heartbeatMs: number;
  readonly #onConnection: ((event: ConnectionEvent) => void) | null;

  #socket: WebSocketLike | null = null;
  #opening: Promise<WebSocketLike> | null = null;
  #closed = false;
  #opened = false;
  #attempts = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #lastReceived = 0;
  #probing = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #feeds = new Set<FeedControl>();
  readonly #byId = new Map<string, FeedControl>();
  readonly #wire: Wire;

  /**
   * @param url the node's endpoint: `ws://127.0.0.1:8545` (an `http://`
   *   URL is turned into the `ws://` one of the same port).
   */
  constructor(url: string, options: WsClientOptions = {}) {
    super();
    this.url = wsUrl(url);
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    const ctor = options.WebSocket ?? global;
    if (ctor === undefined) {
      throw new TypeError('no global WebSocket here: pass one, e.g. { WebSocket } from the ws package');
    }
    this.#WebSocket = ctor;
    this.#timeoutMs = options.timeoutMs ?? null;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const r = options.reconnect;
    this.#reconnect =
      r === false
        ? null
        : {
            initialDelayMs: r?.initialDelayMs ?? 250,
            maxDelayMs: r?.maxDelayMs ?? 10_000,
            factor: r?.factor ?? 2,
            attemptsMax: r?.attemptsMax ?? Number.POSITIVE_INFINITY,
          };
    this.#queueMax = Math.max(1, Math.floor(options.queueMax ?? 256));
    this.#heartbeatMs = options.heartbeatMs ?? 30_000;
    this.#onConnection = options.onConnection ?? null;
    this.#wire = {
      rpc: this,
      queueMax: this.#queueMax,
      subscribe: async (feed, method, params) => {
        await this.#call(method, params, (id) => {
          if (typeof id !== 'number' && typeof id !== 'string' && typeof id !== 'bigint') {
            throw new RpcTransportError(method, `not a subscription id: ${stringifyJson(id)}`);
          }
          // Registered before the next message is read: items may follow at once.
          if (feed.subscribed(id)) this.#byId.set(subKey(id), feed);
        });
      },
      unsubscribe: async (method, id) => {
        this.#byId.delete(subKey(id));
        if (this.#socket === null || this.#closed) return;
        try {
          await this.#call(method, [id]);
        } catch {
          // Gone with the connection, or already ended by the node.
        }
      },
      forget: (feed) => {
        this.#feeds.delete(feed);
        for (const [k, f] of this.#byId) if (f === feed) this.#byId.delete(k);
        this.#updateHeartbeat();
      },
      delay: (attempt) => this.#delay(attempt),
      connected: () => this.connected,
    };
  }

  /** Whether the connection is open now. */
  get connected(): boolean {
    return this.#socket !== null && this.#socket.readyState === OPEN;
  }

  override call(method: string, params: readonly JsonValue[]): Promise<JsonValue> {
    return this.#call(method, params);
  }

  async #call(method: string, params: readonly JsonValue[], onResult?: (v: JsonValue) => void): Promise<JsonValue> {
    const socket = await this.#connect(method);
    if (this.#closed) throw new RpcTransportError(method, 'the client is closed');
    if (socket !== this.#socket || socket.readyState !== OPEN) {
      throw new RpcTransportError(method, 'the connection closed before the call was sent');
    }
    const id = this.#nextId++;
    const text = stringifyJson({ jsonrpc: '2.0', id, method, params: [...params] });
    return new Promise<JsonValue>((resolve, reject) => {
      const pending: Pending = { method, size: text.length, resolve, reject, onResult, timer: null };
      this.#pending.set(id, pending);
      if (this.#timeoutMs !== null) {
        const ms = this.#timeoutMs;
        pending.timer = setTimeout(() => {
          if (this.#pending.delete(id)) reject(new RpcTransportError(method, `no answer within ${ms} ms`));
        }, ms);
      }
      try {
        socket.send(text);
      } catch (e) {
        this.#settle(id);
        reject(new RpcTransportError(method, `send failed: ${e instanceof Error ? e.message : String(e)}`, null, e));
      }
    });
  }

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    if (p.timer !== null) clearTimeout(p.timer);
    return p;
  }

  /** The open socket, connecting (now, without waiting for a backoff) if needed. */
  #connect(method: string): Promise<WebSocketLike> {
    if (this.#closed) return Promise.reject(new RpcTransportError(method, 'the client is closed'));
    if (this.#socket !== null) return Promise.resolve(this.#socket);
    if (this.#opening !== null) {
      return this.#opening.catch((e: unknown) => {
        throw new RpcTransportError(method, (e as Error).message, null, e);
      });
    }
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    const opening = new Promise<WebSocketLike>((resolve, reject) => {
      let socket: WebSocketLike;
      try {
        socket = new this.#WebSocket(this.url);
      } catch (e) {
        reject(new RpcTransportError('connect', `${this.url}: ${e instanceof Error ? e.message : String(e)}`, null, e));
        return;
      }
      let failure = 'connection refused or closed';
      let done = false;
      const fail = (why: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        try {
          socket.close();
        } catch {
          // Not open yet.
        }
        reject(new RpcTransportError('connect', `${this.url}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no connection within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
      socket.onerror = (ev: ErrorEventLike) => {
        const m = ev.message ?? (ev.error instanceof Error ? ev.error.message : undefined);
        if (m !== undefined && m !== '') failure = m;
      };
      socket.onclose = (ev: CloseEventLike) => fail(`${failure} (close code ${ev.code ?? 0})`);
      socket.onopen = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(socket);
      };
    });
    this.#opening = opening;
    opening.then(
      (socket) => {
        this.#opening = null;
        if (this.#closed) {
          socket.close(1000);
          return;
        }
        this.#attach(socket);
      },
      (e: unknown) => {
        this.#opening = null;
        this.#retry(e as Error);
      },
    );
    return opening.catch((e: unknown) => {
      throw new RpcTransportError(method, (e as Error).message, null, e);
    });
  }

  #attach(socket: WebSocketLike): void {
    this.#socket = socket;
    this.#lastReceived = Date.now();
    socket.onmessage = (ev: MessageEventLike) => {
      if (this.#socket !== socket) return;
      this.#lastReceived = Date.now();
      const text = messageText(ev.data);
      if (text !== null) this.#receive(text);
    };
    socket.onclose = (ev: CloseEventLike) => this.#drop(socket, ev.code ?? 1006, ev.reason ?? '');
    socket.onerror = () => {
      // A close event follows.
    };
    const reconnected = this.#opened;
    this.#opened = true;
    this.#attempts = 0;
    this.#tell({ type: 'open', reconnected });
    this.#updateHeartbeat();
    for (const feed of [...this.#feeds]) feed.reopened();
  }

  /** The connection `socket` is gone. */
  #drop(socket: WebSocketLike, code: number, reason: string): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    this.#updateHeartbeat();
    for (const [id, p] of [...this.#pending]) {
      this.#settle(id);
      p.reject(new RpcTransportError(p.method, `the connection closed (code ${code}${reason === '' ? '' : `: ${reason}`})`));
    }
    this.#byId.clear();
    for (const feed of this.#feeds) feed.dropped();
    const reconnecting = !this.#closed && this.#feeds.size > 0 && this.#reconnect !== null;
    this.#tell({ type: 'close', code, reason, reconnecting });
    if (this.#closed) return;
    if (this.#reconnect === null) {
      const error = new RpcTransportError('subscription', `the connection closed (code ${code})`);
      for (const feed of [...this.#feeds]) feed.end(error);
      return;
    }
    if (this.#feeds.size > 0) this.#schedule(this.#delay(this.#attempts));
  }

  /** A connection attempt failed: retry later while subscriptions wait. */
  #retry(error: Error): void {
    if (this.#closed || this.#feeds.size === 0) return;
    if (this.#reconnect === null) {
      for (const feed of [...this.#feeds]) feed.end(error);
      return;
    }
    this.#attempts++;
    if (this.#attempts >= this.#reconnect.attemptsMax) {
      const e = new RpcTransportError('subscription', `gave up after ${this.#attempts} attempts: ${error.message}`, null, error);
      for (const feed of [...this.#feeds]) feed.end(e);
      return;
    }
    const delayMs = this.#delay(this.#attempts);
    this.#tell({ type: 'retry', attempt: this.#attempts, delayMs, error });
    this.#schedule(delayMs);
  }

  #schedule(delayMs: number): void {
    if (this.#retryTimer !== null || this.#opening !== null || this.#socket !== null) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closed || this.#feeds.size === 0 || this.#socket !== null) return;
      this.#connect('connect').then(
        () => {
          this.#attempts = 0;
        },
        () => {
          // #retry scheduled the next attempt.
        },
      );
    }, delayMs);
  }

  #delay(attempt: number): number {
    const r = this.#reconnect ?? { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2 };
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** Math.min(attempt, 64));
    return Math.round(base * (0.5 + Math.random() / 2));
  }

  /** Tells `onConnection`, whose errors are not the client's. */
  #tell(event: ConnectionEvent): void {
    try {
      this.#onConnection?.(event);
    } catch {
      // A listener's failure must not break the connection's handling.
    }
  }

  #updateHeartbeat(): void {
    const want = this.#heartbeatMs > 0 && this.#socket !== null && this.#feeds.size > 0 && !this.#closed;
    if (want && this.#heartbeat === null) {
      const ms = this.#heartbeatMs;
      this.#heartbeat = setInterval(() => this.#beat(ms), Math.max(10, Math.floor(ms / 2)));
      (this.#heartbeat as { unref?: () => void }).unref?.();
    } else if (!want && this.#heartbeat !== null) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = null;
    }
  }

  #beat(ms: number): void {
    const socket = this.#socket;
    if (socket === null || this.#probing || Date.now() - this.#lastReceived < ms) return;
    this.#probing = true;
    const timer = setTimeout(() => {
      // Nothing came back: the connection is dead without having closed.
      this.#probing = false;
      this.#kill(socket, 'no answer to a heartbeat');
    }, ms);
    this.#call('get_status', []).then(
      () => {
        clearTimeout(timer);
        this.#probing = false;
      },
      () => {
        clearTimeout(timer);
        this.#probing = false;
      },
    );
  }

  /** Drops `socket` now, without waiting for a closing handshake. */
  #kill(socket: WebSocketLike, reason: string): void {
    const s = socket as WebSocketLike & { terminate?: () => void };
    try {
      if (typeof s.terminate === 'function') s.terminate();
      else socket.close(4000, reason);
    } catch {
      // Already closing.
    }
    this.#drop(socket, 1006, reason);
  }

  #receive(text: string): void {
    let message: JsonValue;
    try {
      message = parseJson(text);
    } catch {
      return; // Not JSON: nothing can be matched to it.
    }
    for (const m of Array.isArray(message) ? message : [message]) {
      if (m === null || typeof m !== 'object' || Array.isArray(m)) continue;
      this.#receiveOne(m);
    }
  }

  #receiveOne(m: JsonObject): void {
    const id = m['id'];
    if (typeof id === 'number') {
      const p = this.#settle(id);
      if (p === undefined) return;
      try {
        const result = responseResult(p.method, m);
        p.onResult?.(result);
        p.resolve(result);
      } catch (e) {
        p.reject(e as Error);
      }
      return;
    }
    if (id === null && m['error'] !== undefined) {
      // The node could not read a request (over its size limit): it answers
      // with id null. Ours are valid JSON, so the largest one in flight is
      // the likely one.
      let worst: [number, Pending] | null = null;
      for (const entry of this.#pending) if (worst === null || entry[1].size > worst[1].size) worst = entry;
      if (worst !== null) {
        this.#settle(worst[0]);
        try {
          responseResult(worst[1].method, m);
          worst[1].reject(new RpcTransportError(worst[1].method, 'refused by the node'));
        } catch (e) {
          worst[1].reject(e as Error);
        }
      }
      return;
    }
    const method = m['method'];
    const params = m['params'];
    if (typeof method !== 'string' || params === null || typeof params !== 'object' || Array.isArray(params)) return;
    const sub = params['subscription'];
    if (sub === undefined || sub === null) return;
    const feed = this.#byId.get(subKey(sub));
    if (feed === undefined || feed.notification !== method) return;
    if ('error' in params) {
      this.#byId.delete(subKey(sub));
      feed.ended(params['error'] ?? null);
    } else {
      feed.item(params['result'] ?? null);
    }
  }

  async #follow<T>(
    names: { subscribe: string; notification: string; unsubscribe: string },
    params: readonly JsonValue[],
    read: (v: JsonValue, path: string) => T,
    tracker: Tracker<T>,
    fromHeight: bigint | number | undefined,
    followsChain: boolean,
  ): Promise<Subscription<T>> {
    const feed: Feed<T> = new Feed(this.#wire, tracker, names, params, read, followsChain);
    let from: bigint | null = null;
    if (fromHeight !== undefined) {
      from = typeof fromHeight === 'bigint' ? fromHeight : BigInt(fromHeight);
      if (from < 0n) throw new RangeError('fromHeight must not be negative');
    }
    try {
      await feed.open(from);
    } catch (e) {
      await feed.unsubscribe();
      throw e;
    }
    if (this.#closed) {
      feed.end(null);
    } else if (!feed.finished) {
      // Followed from now on: reconnects subscribe it again.
      this.#feeds.add(feed);
      if (this.#socket === null) {
        // Dropped just after it was answered: subscribe again on reconnect.
        feed.dropped();
        if (this.#reconnect !== null) this.#schedule(this.#delay(this.#attempts));
      }
      this.#updateHeartbeat();
    }
    return feed;
  }

  /** Every committed block, in height order, without gaps. */
  subscribeNewBlocks(options: FollowOptions = {}): Promise<Subscription<NewBlock>> {
    return this.#follow(
      { subscribe: 'subscribe_new_blocks', notification: 'new_block', unsubscribe: 'unsubscribe_new_blocks' },
      [],
      newBlockFromJson,
      new BlockTracker(),
      options.fromHeight,
      true,
    );
  }

  /** The contract events of committed blocks that match `filter`, in chain order. */
  subscribeEvents(filter: EventFilter = {}, options: FollowOptions = {}): Promise<Subscription<EventLog>> {
    return this.#follow(
      { subscribe: 'subscribe_events', notification: 'event', unsubscribe: 'unsubscribe_events' },
      [eventFilterToJson(filter)],
      (v, p) => eventLogFromJson(v, p),
      new EventTracker(filter),
      options.fromHeight,
      true,
    );
  }

  /**
   * A transaction's status: the current one at once, then each change,
   * ending after `committed` (whose item carries the receipt).
   */
  subscribeTxStatus(hash: Hash): Promise<Subscription<TxStatus>> {
    return this.#follow(
      { subscribe: 'subscribe_tx_status', notification: 'tx_status', unsubscribe: 'unsubscribe_tx_status' },
      [hash.toString()],
      txStatusFromJson,
      new TxTracker(),
      undefined,
      false,
    );
  }

  /**
   * Closes the connection for good: subscriptions end (their iterators
   * finish), calls in flight fail, nothing reconnects.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const feed of [...this.#feeds]) feed.end(null);
    const socket = this.#socket;
    if (socket !== null) {
      this.#drop(socket, 1000, 'closed by the client');
      try {
        socket.close(1000);
      } catch {
        // Already closing.
      }
    }
    this.#updateHeartbeat();
  }
}
