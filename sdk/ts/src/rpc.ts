/**
 * A typed client of the node's JSON-RPC 2.0 API, as defined in
 * `sdk/client/src/api.rs` and described in `docs/rpc.md`. Parameters are
 * positional; answers are checked field by field and turned into this
 * package's types.
 *
 * {@link RpcMethods} holds the typed methods over any transport;
 * {@link RpcClient} is the one over HTTP (`POST /`), and `WsClient`
 * (`ws.ts`) the one over WebSocket, with subscriptions.
 *
 * @module
 */

import type { Address } from './address.js';
import type { Block, CommitCertificate } from './block.js';
import type { Hash } from './hash.js';
import { toHex } from './hex.js';
import type { ProtocolParams } from './protocol.js';
import type { Event, ExecStatus, Receipt } from './receipt.js';
import { type SignedTransaction, encodeSignedTransaction } from './tx.js';
import type { ValidatorSet } from './validators.js';
import {
  JsonError,
  type JsonObject,
  type JsonValue,
  asAddress,
  asBool,
  asBytes,
  asHash,
  asObject,
  asOptional,
  asString,
  asU128,
  asU32,
  asU64,
  asArray,
  blockFromJson,
  commitCertificateFromJson,
  eventFromJson,
  execStatusFromJson,
  parseJson,
  protocolParamsFromJson,
  receiptFromJson,
  signedTransactionFromJson,
  stringifyJson,
  validatorSetFromJson,
} from './json.js';

/** The node's error codes beside JSON-RPC's own (`stele_client::api::codes`). */
export const RpcCodes = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  TX_TOO_LARGE: 1001,
  TX_MALFORMED: 1002,
  TX_WRONG_CHAIN: 1003,
  TX_BAD_SIGNATURE: 1004,
  TX_ALREADY_KNOWN: 1005,
  TX_NONCE_TOO_LOW: 1006,
  TX_NONCE_TOO_HIGH: 1007,
  TX_INSUFFICIENT_FUNDS: 1008,
  TX_GAS_LIMIT_OVER_BLOCK: 1009,
  TX_GAS_PRICE_TOO_LOW: 1010,
  TX_REPLACEMENT_UNDERPRICED: 1011,
  TX_SENDER_FULL: 1012,
  TX_MEMPOOL_FULL: 1013,
  TX_GAS_BELOW_INTRINSIC: 1014,
  TX_NOT_SIGNED_BY: 1015,
  TX_GAPPED_BYTES_OVER: 1016,
  NOT_FOUND: 2001,
  HEIGHT_UNAVAILABLE: 2002,
  TIMEOUT: 2003,
  TX_REJECTED: 2004,
  BUSY: 2005,
  INVALID_ARGUMENT: 2006,
  INTERNAL: 2007,
  RATE_LIMITED: 2008,
  RESPONSE_TOO_LARGE: 2009,
  ITERATION_UNAVAILABLE: 2010,
  TX_PENDING: 2011,
  INDEX_OFF: 2012,
  JOINING: 2013,
} as const);

/**
 * The node answered with a JSON-RPC error. `code` is one of
 * {@link RpcCodes}; for invalid params the message joins the node's
 * message and the cause it gives in `data`, as the Rust client does.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: number;
  readonly method: string;
  readonly data: JsonValue | undefined;

  constructor(method: string, code: number, message: string, data: JsonValue | undefined) {
    super(typeof data === 'string' ? `${message}: ${data}` : message);
    this.method = method;
    this.code = code;
    this.data = data;
  }
}

/**
 * No JSON-RPC answer: the connection failed, the HTTP status was not 200
 * (429 over the rate, 413 too large, 503 no free connection...), or the
 * body was not a JSON-RPC response of the expected shape.
 */
export class RpcTransportError extends Error {
  override readonly name = 'RpcTransportError';
  readonly method: string;
  /** The HTTP status, when there was an HTTP answer. */
  readonly status: number | null;

  constructor(method: string, message: string, status: number | null = null, cause?: unknown) {
    super(`${method}: ${message}`, cause === undefined ? undefined : { cause });
    this.method = method;
    this.status = status;
  }
}

/** The node's view of itself (`get_status`). */
export interface StatusInfo {
  readonly chainId: bigint;
  /** A full node, not a validator. */
  readonly fullNode: boolean;
  /** Latest committed height. */
  readonly height: bigint;
  /** The highest height the node knows is certified. */
  readonly certifiedHeight: bigint;
  readonly view: bigint;
  readonly peersConnected: bigint;
  /** True while catching up: reads may be behind the chain. */
  readonly syncing: boolean;
  readonly mempoolTxs: bigint;
  readonly mempoolBytes: bigint;
  /** The lowest height whose block the node keeps. */
  readonly blocksFrom: bigint;
  readonly phase: 'snapshot' | 'blocks' | 'live';
  /** The join by snapshot, if the node tried one since it started. */
  readonly snapshot: SnapshotSyncInfo | null;
}

/** A join by snapshot and how far it got. */
export interface SnapshotSyncInfo {
  readonly phase: string;
  readonly height: bigint;
  readonly chunks: bigint;
  readonly chunksFetched: bigint;
  readonly chunksResumed: bigint;
  readonly chunksRefused: bigint;
  readonly bytesFetched: bigint;
}

/** An account at the latest committed height (`get_account`). */
export interface AccountInfo {
  readonly address: Address;
  readonly height: bigint;
  readonly balance: bigint;
  /** The committed nonce. */
  readonly nonce: bigint;
  /** The nonce after the node's pending transactions: use it for the next one. */
  readonly pendingNonce: bigint;
  /** Keccak-256 of the code, for a contract. */
  readonly codeHash: Hash | null;
}

/** A pending or committed transaction (`get_transaction`). */
export interface TransactionInfo {
  readonly hash: Hash;
  readonly transaction: SignedTransaction;
  readonly sender: Address;
  readonly state: 'pending' | 'committed' | 'unknown';
  readonly blockHeight: bigint | null;
  readonly index: number | null;
}

/** A committed transaction's receipt and place (`get_receipt`, `wait_for_receipt`). */
export interface ReceiptInfo {
  readonly receipt: Receipt;
  readonly blockHeight: bigint;
  readonly blockHash: Hash;
  readonly index: number;
  /** Events left out at the end of `receipt.events` to fit the response limit. */
  readonly eventsOmitted: number;
}

/** A committed block with its hash and commit certificate (`get_block`). */
export interface BlockInfo {
  readonly hash: Hash;
  readonly block: Block;
  readonly certificate: CommitCertificate;
  /** Index in the block of `block.txs[0]`. */
  readonly txsFrom: number;
  /** Where the next page starts, when `block.txs` was cut. */
  readonly txsNext: number | null;
}

/** The outcome of a read-only call (`call_view`). */
export interface ViewResult {
  readonly height: bigint;
  readonly status: ExecStatus;
  readonly gasUsed: bigint;
  readonly output: Uint8Array;
  /** `output` as text, when the call did not succeed and it is UTF-8. */
  readonly error: string | null;
}

/** A decided change of validator set, waiting for its epoch's end. */
export interface PendingValidators {
  readonly validators: ValidatorSet;
  readonly validatorsHash: Hash;
  readonly decidedAt: bigint;
  readonly lastHeight: bigint;
}

/** The validator set after a height (`get_validators`). */
export interface ValidatorsInfo {
  readonly height: bigint;
  readonly epoch: bigint;
  readonly epochStartHeight: bigint;
  readonly validators: ValidatorSet;
  /** What a header names as `nextValidatorsHash` inside the epoch. */
  readonly validatorsHash: Hash;
  readonly pending: PendingValidators | null;
}

/** An upgrade more than two thirds of an epoch's power voted for. */
export interface ScheduledProtocol {
  readonly params: ProtocolParams;
  readonly activationHeight: bigint;
  readonly decidedAt: bigint;
  readonly epoch: bigint;
  /** Why the answering node cannot run it, or `null` when it can. */
  readonly unsupported: string | null;
}

/** The protocol parameters after a height (`get_protocol`). */
export interface ProtocolInfo {
  readonly height: bigint;
  readonly active: ProtocolParams;
  readonly scheduled: ScheduledProtocol | null;
}

/** Where a transaction is: in the node's mempool, in a block, or neither. */
export type TxState = 'pending' | 'committed' | 'unknown';

/**
 * A contract-event filter (`get_events`, `subscribe_events`): events of
 * `contract` (any when absent or `null`) whose topics match position by
 * position (`null` matches any topic; an event with fewer topics than the
 * filter does not match). At most 4 topics.
 */
export interface EventFilter {
  readonly contract?: Address | null;
  readonly topics?: readonly (Hash | null)[];
}

/**
 * A position in the chain's events: the event `eventIndex` of the
 * transaction `txIndex` of the block at `height`, whether or not it
 * matches a filter.
 */
export interface EventCursor {
  readonly height: bigint;
  readonly txIndex: number;
  readonly eventIndex: number;
}

/** A contract event with its place in the chain (`get_events`, `subscribe_events`). */
export interface EventLog {
  readonly blockHeight: bigint;
  readonly blockHash: Hash;
  readonly txHash: Hash;
  readonly txIndex: number;
  /** Position of the event in its transaction. */
  readonly eventIndex: number;
  readonly event: Event;
}

/** A page of past events (`get_events`). */
export interface EventPage {
  readonly events: readonly EventLog[];
  /** The last height scanned (in part, when `next` is inside it). */
  readonly toHeight: bigint;
  /** The block to continue from, when the page ended before the range did. */
  readonly nextHeight: bigint | null;
  /** Where to continue (pass as `cursor`); `null` when the range is done. */
  readonly next: EventCursor | null;
}

/** The `fetch` this client needs; the global one by default. */
export type FetchLike = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal?: AbortSignal },
) => Promise<{ ok: boolean; status: number; statusText: string; text(): Promise<string> }>;

export interface RpcClientOptions {
  /** The HTTP client; the global `fetch` by default. */
  readonly fetch?: FetchLike;
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Abort a call after this long (no limit by default). */
  readonly timeoutMs?: number;
  /** Largest response body accepted, in characters (default 64 MiB). */
  readonly responseCharsMax?: number;
}

/** Most extra pages {@link RpcClient.getBlock} fetches, as the Rust client. */
const PAGES_MAX = 100_000;

// Readers of the API's own result types.

const u64Field = (o: JsonObject, key: string, path: string): bigint => asU64(o[key], `${path}.${key}`);
const u64Default = (o: JsonObject, key: string, path: string): bigint =>
  o[key] === undefined ? 0n : asU64(o[key], `${path}.${key}`);

function statusFromJson(v: JsonValue): StatusInfo {
  const p = 'result';
  const o = asObject(v, p);
  const phase = o['phase'] === undefined ? 'live' : asString(o['phase'], `${p}.phase`);
  if (phase !== 'snapshot' && phase !== 'blocks' && phase !== 'live') {
    throw new JsonError(`${p}.phase: expected snapshot, blocks or live, got ${JSON.stringify(phase)}`);
  }
  return {
    chainId: u64Field(o, 'chain_id', p),
    fullNode: o['full_node'] === undefined ? false : asBool(o['full_node'], `${p}.full_node`),
    height: u64Field(o, 'height', p),
    certifiedHeight: u64Default(o, 'certified_height', p),
    view: u64Field(o, 'view', p),
    peersConnected: u64Field(o, 'peers_connected', p),
    syncing: asBool(o['syncing'], `${p}.syncing`),
    mempoolTxs: u64Field(o, 'mempool_txs', p),
    mempoolBytes: u64Field(o, 'mempool_bytes', p),
    blocksFrom: u64Default(o, 'blocks_from', p),
    phase,
    snapshot: asOptional(o['snapshot'], `${p}.snapshot`, (v, path) => {
      const s = asObject(v, path);
      return {
        phase: asString(s['phase'], `${path}.phase`),
        height: u64Field(s, 'height', path),
        chunks: u64Field(s, 'chunks', path),
        chunksFetched: u64Field(s, 'chunks_fetched', path),
        chunksResumed: u64Field(s, 'chunks_resumed', path),
        chunksRefused: u64Field(s, 'chunks_refused', path),
        bytesFetched: u64Field(s, 'bytes_fetched', path),
      };
    }),
  };
}

function accountFromJson(v: JsonValue): AccountInfo {
  const p = 'result';
  const o = asObject(v, p);
  return {
    address: asAddress(o['address'], `${p}.address`),
    height: u64Field(o, 'height', p),
    balance: asU128(o['balance'], `${p}.balance`),
    nonce: u64Field(o, 'nonce', p),
    pendingNonce: u64Field(o, 'pending_nonce', p),
    codeHash: asOptional(o['code_hash'], `${p}.code_hash`, asHash),
  };
}

function transactionInfoFromJson(v: JsonValue): TransactionInfo {
  const p = 'result';
  const o = asObject(v, p);
  const state = asString(o['state'], `${p}.state`);
  if (state !== 'pending' && state !== 'committed' && state !== 'unknown') {
    throw new JsonError(`${p}.state: expected pending, committed or unknown, got ${JSON.stringify(state)}`);
  }
  return {
    hash: asHash(o['hash'], `${p}.hash`),
    transaction: signedTransactionFromJson(o['transaction'] ?? null, `${p}.transaction`),
    sender: asAddress(o['sender'], `${p}.sender`),
    state,
    blockHeight: asOptional(o['block_height'], `${p}.block_height`, asU64),
    index: asOptional(o['index'], `${p}.index`, asU32),
  };
}

/** One frame of a call trace: a call and the calls it made. */
export interface TraceFrame {
  readonly caller: Address;
  readonly contract: Address;
  readonly method: string;
  readonly value: bigint;
  readonly gasBudget: bigint;
  readonly gasUsed: bigint;
  readonly status: ExecStatus;
  readonly output: Uint8Array;
  readonly calls: readonly TraceFrame[];
  /** What the frame wrote with `debug_log` (`stele_sdk::log!`), in order; never stored on chain. */
  readonly logs: readonly TraceLog[];
}

/** One debug log line of a frame. */
export interface TraceLog {
  /** How many of the frame's `calls` came before the line. */
  readonly afterCalls: number;
  readonly text: string;
}

/** A step of a frame: one of its log lines or one of its calls. */
export type TraceStep = { readonly log: string } | { readonly call: TraceFrame };

/** A frame's log lines and calls in the order they happened. */
export function traceSteps(f: TraceFrame): TraceStep[] {
  const out: TraceStep[] = [];
  let next = 0;
  f.calls.forEach((call, i) => {
    while (next < f.logs.length && (f.logs[next] as TraceLog).afterCalls <= i) {
      out.push({ log: (f.logs[next] as TraceLog).text });
      next++;
    }
    out.push({ call });
  });
  for (; next < f.logs.length; next++) out.push({ log: (f.logs[next] as TraceLog).text });
  return out;
}

/** A contract storage key a transaction wrote. */
export interface StorageWriteInfo {
  readonly contract: Address;
  readonly key: Uint8Array;
  /** The hash a storage proof's leaf holds for the value left; `null` when the key was deleted. */
  readonly valueHash: Hash | null;
}

/** A committed transaction run again on its block's parent state (`trace_transaction`). */
export interface TransactionTrace {
  readonly hash: Hash;
  readonly blockHeight: bigint;
  readonly index: number;
  readonly sender: Address;
  /** The replay's receipt, which the node checked is the stored one. */
  readonly receipt: Receipt;
  /** `null` for a transfer or a vote, or when `traceOmitted`. */
  readonly trace: TraceFrame | null;
  readonly storageWrites: readonly StorageWriteInfo[];
  /** The trace was left out to fit the node's response limit. */
  readonly traceOmitted: boolean;
}

/** Deepest call chain a trace may hold (the VM's own bound is lower). */
const TRACE_DEPTH_MAX = 256;

/** A `TraceFrame` from its JSON form. @throws {JsonError} */
export function traceFrameFromJson(v: JsonValue, p = 'trace', depth = 0): TraceFrame {
  if (depth > TRACE_DEPTH_MAX) throw new JsonError(`${p}: a call chain deeper than ${TRACE_DEPTH_MAX}`);
  const o = asObject(v, p);
  return {
    caller: asAddress(o['caller'], `${p}.caller`),
    contract: asAddress(o['contract'], `${p}.contract`),
    method: asString(o['method'], `${p}.method`),
    value: asU128(o['value'], `${p}.value`),
    gasBudget: asU64(o['gas_budget'], `${p}.gas_budget`),
    gasUsed: asU64(o['gas_used'], `${p}.gas_used`),
    status: execStatusFromJson(o['status'], `${p}.status`),
    output: asBytes(o['output'], `${p}.output`),
    calls: asArray(o['calls'], `${p}.calls`).map((c, i) => traceFrameFromJson(c, `${p}.calls[${i}]`, depth + 1)),
    logs: (asOptional(o['logs'], `${p}.logs`, asArray) ?? []).map((l, i) => {
      const lo = asObject(l, `${p}.logs[${i}]`);
      return { afterCalls: asU32(lo['after_calls'], `${p}.logs[${i}].after_calls`), text: asString(lo['text'], `${p}.logs[${i}].text`) };
    }),
  };
}

/** A `TransactionTrace` from its JSON form (`trace_transaction`). @throws {JsonError} */
export function transactionTraceFromJson(v: JsonValue, p = 'result'): TransactionTrace {
  const o = asObject(v, p);
  return {
    hash: asHash(o['hash'], `${p}.hash`),
    blockHeight: u64Field(o, 'block_height', p),
    index: asU32(o['index'], `${p}.index`),
    sender: asAddress(o['sender'], `${p}.sender`),
    receipt: receiptFromJson(o['receipt'] ?? null, `${p}.receipt`),
    trace: asOptional(o['trace'], `${p}.trace`, (t, tp) => traceFrameFromJson(t, tp)),
    storageWrites: asArray(o['storage_writes'], `${p}.storage_writes`).map((w, i) => {
      const wp = `${p}.storage_writes[${i}]`;
      const x = asObject(w, wp);
      return {
        contract: asAddress(x['contract'], `${wp}.contract`),
        key: asBytes(x['key'], `${wp}.key`),
        valueHash: asOptional(x['value_hash'], `${wp}.value_hash`, asHash),
      };
    }),
    traceOmitted: o['trace_omitted'] === undefined ? false : asBool(o['trace_omitted'], `${p}.trace_omitted`),
  };
}

/** A `ReceiptInfo` from its JSON form (`get_receipt`, and `tx_status` items). */
export function receiptInfoFromJson(v: JsonValue, p = 'result'): ReceiptInfo {
  const o = asObject(v, p);
  return {
    receipt: receiptFromJson(o['receipt'] ?? null, `${p}.receipt`),
    blockHeight: u64Field(o, 'block_height', p),
    blockHash: asHash(o['block_hash'], `${p}.block_hash`),
    index: asU32(o['index'], `${p}.index`),
    eventsOmitted: o['events_omitted'] === undefined ? 0 : asU32(o['events_omitted'], `${p}.events_omitted`),
  };
}

function blockInfoFromJson(v: JsonValue): BlockInfo {
  const p = 'result';
  const o = asObject(v, p);
  return {
    hash: asHash(o['hash'], `${p}.hash`),
    block: blockFromJson(o['block'] ?? null, `${p}.block`),
    certificate: commitCertificateFromJson(o['certificate'] ?? null, `${p}.certificate`),
    txsFrom: o['txs_from'] === undefined ? 0 : asU32(o['txs_from'], `${p}.txs_from`),
    txsNext: asOptional(o['txs_next'], `${p}.txs_next`, asU32),
  };
}

function viewResultFromJson(v: JsonValue): ViewResult {
  const p = 'result';
  const o = asObject(v, p);
  return {
    height: u64Field(o, 'height', p),
    status: execStatusFromJson(o['status'], `${p}.status`),
    gasUsed: u64Field(o, 'gas_used', p),
    output: asBytes(o['output'], `${p}.output`),
    error: asOptional(o['error'], `${p}.error`, asString),
  };
}

function validatorsInfoFromJson(v: JsonValue): ValidatorsInfo {
  const p = 'result';
  const o = asObject(v, p);
  return {
    height: u64Field(o, 'height', p),
    epoch: u64Field(o, 'epoch', p),
    epochStartHeight: u64Field(o, 'epoch_start_height', p),
    validators: validatorSetFromJson(o['validators'] ?? null, `${p}.validators`),
    validatorsHash: asHash(o['validators_hash'], `${p}.validators_hash`),
    pending: asOptional(o['pending'], `${p}.pending`, (v, path) => {
      const q = asObject(v, path);
      return {
        validators: validatorSetFromJson(q['validators'] ?? null, `${path}.validators`),
        validatorsHash: asHash(q['validators_hash'], `${path}.validators_hash`),
        decidedAt: u64Field(q, 'decided_at', path),
        lastHeight: u64Field(q, 'last_height', path),
      };
    }),
  };
}

function protocolInfoFromJson(v: JsonValue): ProtocolInfo {
  const p = 'result';
  const o = asObject(v, p);
  return {
    height: u64Field(o, 'height', p),
    active: protocolParamsFromJson(o['active'] ?? null, `${p}.active`),
    scheduled: asOptional(o['scheduled'], `${p}.scheduled`, (v, path) => {
      const s = asObject(v, path);
      return {
        params: protocolParamsFromJson(s['params'] ?? null, `${path}.params`),
        activationHeight: u64Field(s, 'activation_height', path),
        decidedAt: u64Field(s, 'decided_at', path),
        epoch: u64Field(s, 'epoch', path),
        unsupported: asOptional(s['unsupported'], `${path}.unsupported`, asString),
      };
    }),
  };
}

/** The JSON form of an event filter. */
export function eventFilterToJson(filter: EventFilter): JsonObject {
  return {
    contract: filter.contract === undefined || filter.contract === null ? null : filter.contract.toChecksum(),
    topics: (filter.topics ?? []).map((t) => (t === null ? null : t.toString())),
  };
}

/** The JSON form of an event cursor. */
export function eventCursorToJson(c: EventCursor): JsonObject {
  return { height: c.height, tx_index: c.txIndex, event_index: c.eventIndex };
}

function eventCursorFromJson(v: JsonValue, p: string): EventCursor {
  const o = asObject(v, p);
  return {
    height: u64Field(o, 'height', p),
    txIndex: asU32(o['tx_index'], `${p}.tx_index`),
    eventIndex: asU32(o['event_index'], `${p}.event_index`),
  };
}

/** An `EventLog` from its JSON form (`get_events` pages, `event` items). */
export function eventLogFromJson(v: JsonValue, p = 'event'): EventLog {
  const o = asObject(v, p);
  return {
    blockHeight: u64Field(o, 'block_height', p),
    blockHash: asHash(o['block_hash'], `${p}.block_hash`),
    txHash: asHash(o['tx_hash'], `${p}.tx_hash`),
    txIndex: asU32(o['tx_index'], `${p}.tx_index`),
    eventIndex: asU32(o['event_index'], `${p}.event_index`),
    event: eventFromJson(o['event'] ?? null, `${p}.event`),
  };
}

function eventPageFromJson(v: JsonValue): EventPage {
  const p = 'result';
  const o = asObject(v, p);
  return {
    events: asArray(o['events'], `${p}.events`).map((e, i) => eventLogFromJson(e, `${p}.events[${i}]`)),
    toHeight: u64Field(o, 'to_height', p),
    nextHeight: asOptional(o['next_height'], `${p}.next_height`, asU64),
    next: asOptional(o['next'], `${p}.next`, eventCursorFromJson),
  };
}

const U64_MAX = (1n << 64n) - 1n;
/** Heights a block id may name (they fit a signed 64-bit integer). */
const BLOCK_HEIGHT_MAX = (1n << 63n) - 1n;

function u64Param(v: bigint | number, what: string): bigint {
  const n = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof n !== 'bigint' || n < 0n || n > U64_MAX) {
    throw new RangeError(`${what} must be an integer from 0 to 2^64 - 1, got ${String(v)}`);
  }
  return n;
}

/**
 * The result of a JSON-RPC response object to a call of `method`.
 *
 * @throws {RpcError} when it carries an error.
 * @throws {RpcTransportError} when it is malformed (`status`: the HTTP
 *   status it came with, if any).
 */
export function responseResult(method: string, response: JsonObject, status: number | null = null): JsonValue {
  const error = response['error'];
  if (error !== undefined && error !== null) {
    try {
      const o = asObject(error, 'error');
      const code = o['code'];
      if (typeof code !== 'number' || !Number.isInteger(code)) throw new JsonError('error.code: not an integer');
      throw new RpcError(method, code, asString(o['message'], 'error.message'), o['data']);
    } catch (e) {
      if (e instanceof RpcError) throw e;
      throw new RpcTransportError(method, `malformed error: ${(e as Error).message}`, status, e);
    }
  }
  if (!('result' in response)) throw new RpcTransportError(method, 'response has neither result nor error', status);
  return response['result']!;
}

/**
 * The typed methods of the API over any transport: a subclass gives
 * {@link RpcMethods.call}, which sends one call and returns its raw
 * result or throws an {@link RpcError} or an {@link RpcTransportError}.
 */
export abstract class RpcMethods {
  /**
   * Calls `method` with positional `params` and returns the raw result
   * (integers past 2^53 as `bigint`s).
   *
   * @throws {RpcError} when the node answers with an error.
   * @throws {RpcTransportError} when there is no valid answer.
   */
  abstract call(method: string, params: readonly JsonValue[]): Promise<JsonValue>;

  /** The `status` of the {@link RpcTransportError} for an answer of the wrong shape. */
  protected answerStatus(): number | null {
    return null;
  }

  async #typed<T>(method: string, params: readonly JsonValue[], read: (v: JsonValue) => T): Promise<T> {
    const result = await this.call(method, params);
    try {
      return read(result);
    } catch (e) {
      if (e instanceof JsonError) {
        throw new RpcTransportError(method, `unexpected answer: ${e.message}`, this.answerStatus(), e);
      }
      throw e;
    }
  }

  /** The node's status. */
  getStatus(): Promise<StatusInfo> {
    return this.#typed('get_status', [], statusFromJson);
  }

  /** Balance, nonces and code hash of an account. */
  getAccount(address: Address): Promise<AccountInfo> {
    return this.#typed('get_account', [address.toChecksum()], accountFromJson);
  }

  /** A pending or committed transaction. */
  getTransaction(hash: Hash): Promise<TransactionInfo> {
    return this.#typed('get_transaction', [hash.toString()], transactionInfoFromJson);
  }

  /**
   * Submits a signed transaction (or its encoding); returns its hash once
   * the node admits it to its mempool. With `sender`, the node refuses it
   * (`TX_NOT_SIGNED_BY`) unless `sender` signed it, and checks it faster.
   */
  sendTransaction(tx: SignedTransaction | Uint8Array, sender?: Address): Promise<Hash> {
    const raw = tx instanceof Uint8Array ? tx : encodeSignedTransaction(tx);
    return this.#typed(
      'send_transaction',
      [toHex(raw), sender === undefined ? null : sender.toChecksum()],
      (v) => asHash(v, 'result'),
    );
  }

  /**
   * A committed transaction run again on its block's parent state, while
   * the node keeps it: its call trace with gas per frame and the storage
   * keys it wrote (`HEIGHT_UNAVAILABLE` once that state is pruned).
   */
  traceTransaction(hash: Hash): Promise<TransactionTrace> {
    return this.#typed('trace_transaction', [hash.toString()], (v) => transactionTraceFromJson(v));
  }

  /** The receipt of a committed transaction (`TX_PENDING` while it is pending). */
  getReceipt(hash: Hash): Promise<ReceiptInfo> {
    return this.#typed('get_receipt', [hash.toString()], (v) => receiptInfoFromJson(v));
  }

  /**
   * Waits on the node until the transaction commits, at most `timeoutMs`
   * (which the node caps), and returns its receipt; `TIMEOUT` (2003) if it
   * did not commit in time.
   */
  waitForReceipt(hash: Hash, timeoutMs: bigint | number): Promise<ReceiptInfo> {
    return this.#typed(
      'wait_for_receipt',
      [hash.toString(), u64Param(timeoutMs, 'timeoutMs')],
      (v) => receiptInfoFromJson(v),
    );
  }

  /** A read-only call at the latest height, or at `height`. */
  callView(contract: Address, method: string, args: Uint8Array, height?: bigint | number): Promise<ViewResult> {
    return this.#typed(
      'call_view',
      [contract.toChecksum(), method, toHex(args), height === undefined ? null : u64Param(height, 'height')],
      viewResultFromJson,
    );
  }

  /**
   * A committed block by height or hash, with all its transactions: when
   * the node cuts them to fit its response limit, the following pages are
   * fetched and checked to continue the same block.
   */
  async getBlock(id: bigint | number | Hash): Promise<BlockInfo> {
    let param: JsonValue;
    if (typeof id === 'bigint' || typeof id === 'number') {
      const height = u64Param(id, 'height');
      if (height > BLOCK_HEIGHT_MAX) throw new RangeError('a block height is at most 2^63 - 1');
      param = height;
    } else {
      param = id.toString();
    }
    const first = await this.#typed('get_block', [param, null], blockInfoFromJson);
    return this.#completeBlock(first);
  }

  /** The latest committed block, whole (as {@link RpcMethods.getBlock}). */
  async getLatestBlock(): Promise<BlockInfo> {
    return this.#completeBlock(await this.#typed('get_latest_block', [], blockInfoFromJson));
  }

  async #completeBlock(first: BlockInfo): Promise<BlockInfo> {
    if (first.txsFrom !== 0) {
      throw new RpcTransportError('get_block', `block ${first.hash.toString()}: the answer starts at transaction ${first.txsFrom}`);
    }
    const txs = [...first.block.txs];
    let next = first.txsNext;
    for (let pages = 1; next !== null; pages++) {
      if (pages > PAGES_MAX || next !== txs.length) {
        throw new RpcTransportError(
          'get_block',
          `block ${first.hash.toString()}: the next page starts at transaction ${next}, expected ${txs.length}`,
        );
      }
      const page = await this.#typed('get_block', [first.hash.toString(), next], blockInfoFromJson);
      if (!page.hash.equals(first.hash) || page.txsFrom !== next || page.block.txs.length === 0) {
        throw new RpcTransportError(
          'get_block',
          `block ${first.hash.toString()}: the page from transaction ${next} does not continue it`,
        );
      }
      txs.push(...page.block.txs);
      next = page.txsNext;
    }
    return { ...first, block: { header: first.block.header, txs }, txsNext: null };
  }

  /**
   * A page of past events matching `filter` in the committed blocks
   * `fromHeight..=toHeight` (`toHeight` `null`: the latest), at most `limit`
   * (1 to the node's `events_limit_max`, 1 000 by default). With `cursor`
   * (inside the range) the page starts there and `next` says where the
   * next one starts, nothing skipped or repeated; without it pages hold
   * whole blocks and `nextHeight` says where to continue.
   */
  getEvents(
    filter: EventFilter,
    fromHeight: bigint | number,
    toHeight: bigint | number | null,
    limit: number,
    cursor?: EventCursor,
  ): Promise<EventPage> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 0xffff_ffff) {
      throw new RangeError(`limit must be an integer from 1 to 2^32 - 1, got ${limit}`);
    }
    return this.#typed(
      'get_events',
      [
        eventFilterToJson(filter),
        u64Param(fromHeight, 'fromHeight'),
        toHeight === null ? null : u64Param(toHeight, 'toHeight'),
        limit,
        cursor === undefined ? null : eventCursorToJson(cursor),
      ],
      eventPageFromJson,
    );
  }

  /** The validator set after `height` (the latest by default). */
  getValidators(height?: bigint | number): Promise<ValidatorsInfo> {
    return this.#typed(
      'get_validators',
      [height === undefined ? null : u64Param(height, 'height')],
      validatorsInfoFromJson,
    );
  }

  /** The protocol parameters after `height` (the latest by default). */
  getProtocol(height?: bigint | number): Promise<ProtocolInfo> {
    return this.#typed(
      'get_protocol',
      [height === undefined ? null : u64Param(height, 'height')],
      protocolInfoFromJson,
    );
  }
}

/** A typed JSON-RPC client of one node (or a balancer in front of several). */
export class RpcClient extends RpcMethods {
  readonly url: string;
  readonly #fetch: FetchLike;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #timeoutMs: number | null;
  readonly #responseCharsMax: number;
  #nextId = 1;

  /** @param url the node's JSON-RPC endpoint, e.g. `http://127.0.0.1:8545`. */
  constructor(url: string, options: RpcClientOptions = {}) {
    super();
    this.url = url;
    this.#fetch = options.fetch ?? ((u, init) => fetch(u, init));
    this.#headers = options.headers ?? {};
    this.#timeoutMs = options.timeoutMs ?? null;
    this.#responseCharsMax = options.responseCharsMax ?? 64 * 1024 * 1024;
  }

  /**
   * Calls `method` with positional `params` and returns the raw result
   * (integers past 2^53 as `bigint`s).
   *
   * @throws {RpcError} when the node answers with an error.
   * @throws {RpcTransportError} when there is no valid answer.
   */
  override async call(method: string, params: readonly JsonValue[]): Promise<JsonValue> {
    const id = this.#nextId++;
    const body = stringifyJson({ jsonrpc: '2.0', id, method, params: [...params] });
    const init: Parameters<FetchLike>[1] = {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.#headers },
      body,
    };
    if (this.#timeoutMs !== null) init.signal = AbortSignal.timeout(this.#timeoutMs);
    let text: string;
    let status: number;
    try {
      const res = await this.#fetch(this.url, init);
      status = res.status;
      text = await res.text();
      if (!res.ok) {
        throw new RpcTransportError(method, `HTTP ${res.status} ${res.statusText}: ${text.slice(0, 200)}`, res.status);
      }
    } catch (e) {
      if (e instanceof RpcTransportError) throw e;
      throw new RpcTransportError(method, `request failed: ${e instanceof Error ? e.message : String(e)}`, null, e);
    }
    if (text.length > this.#responseCharsMax) {
      throw new RpcTransportError(method, `response of ${text.length} characters, over ${this.#responseCharsMax}`, status);
    }
    let response: JsonObject;
    try {
      response = asObject(parseJson(text), 'response');
    } catch (e) {
      throw new RpcTransportError(method, `not a JSON-RPC response: ${(e as Error).message}`, status, e);
    }
    if (response['id'] !== id) {
      throw new RpcTransportError(method, `response id ${stringifyJson(response['id'] ?? null)} is not ${id}`, status);
    }
    return responseResult(method, response, status);
  }

  protected override answerStatus(): number | null {
    return 200;
  }
}
