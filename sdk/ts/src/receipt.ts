/**
 * Receipts and events (`node/types/src/receipt.rs`): the outcome of one
 * transaction, its encoding and the hash a block's receipts root commits
 * to.
 *
 * @module
 */

import { Address } from './address.js';
import {
  DEFAULT_LIMITS,
  DecodeError,
  type Limits,
  type Reader,
  type Writer,
  decode,
  encode,
} from './codec.js';
import { DOMAIN, Hash, keccak256Parts } from './hash.js';

/** How a transaction's execution ended. */
export type ExecStatus = 'success' | 'reverted' | 'out_of_gas' | 'trapped' | 'failed';

/** The protocol's byte for each {@link ExecStatus}. */
export const EXEC_STATUS_CODES: Readonly<Record<ExecStatus, number>> = Object.freeze({
  success: 0,
  reverted: 1,
  out_of_gas: 2,
  trapped: 3,
  failed: 4,
});

const STATUS_BY_CODE: readonly ExecStatus[] = ['success', 'reverted', 'out_of_gas', 'trapped', 'failed'];

/** A log entry emitted by a contract. */
export interface Event {
  /** The contract that emitted it. */
  readonly contract: Address;
  /** Indexed topics (at most 4); the first is conventionally the event name's hash. */
  readonly topics: readonly Hash[];
  /** Unindexed payload. */
  readonly data: Uint8Array;
}

/** The outcome of one transaction in a block. */
export interface Receipt {
  readonly txHash: Hash;
  readonly status: ExecStatus;
  readonly gasUsed: bigint;
  /** Events; empty unless `status` is `success`. */
  readonly events: readonly Event[];
  /** Return data on success; the revert payload or failure message otherwise. */
  readonly output: Uint8Array;
  /** The new contract's address, for a successful deploy. */
  readonly contractAddress: Address | null;
}

/** Smallest encoded event: an address and two empty lengths. */
const EVENT_BYTES_MIN = 20 + 4 + 4;

export function writeEvent(w: Writer, e: Event): void {
  const limits = DEFAULT_LIMITS;
  w.fixed(e.contract.toBytes(), 20, 'address');
  w.seq(e.topics, limits.eventTopicsMax, 'event topics', (w, t) => w.fixed(t.toBytes(), 32, 'topic'));
  w.bytes(e.data, limits.eventDataBytesMax, 'event data');
}

export function readEvent(r: Reader): Event {
  const limits = r.limits;
  return {
    contract: Address.fromBytes(r.take(20, 'address')),
    topics: r.seq(limits.eventTopicsMax, 32, 'event topics', (r) => Hash.fromBytes(r.take(32, 'Hash'))),
    data: r.bytes(limits.eventDataBytesMax, 'event data'),
  };
}

export function writeReceipt(w: Writer, rc: Receipt): void {
  const limits = DEFAULT_LIMITS;
  const code = EXEC_STATUS_CODES[rc.status];
  w.fixed(rc.txHash.toBytes(), 32, 'tx hash');
  w.u8(code, 'exec status');
  w.u64(rc.gasUsed, 'gas used');
  w.seq(rc.events, limits.receiptEventsMax, 'receipt events', writeEvent);
  w.bytes(rc.output, limits.outputBytesMax, 'receipt output');
  w.option(rc.contractAddress, (w, a) => w.fixed(a.toBytes(), 20, 'address'));
}

export function readReceipt(r: Reader): Receipt {
  const limits = r.limits;
  const txHash = Hash.fromBytes(r.take(32, 'Hash'));
  const tag = r.u8('exec status');
  const status = STATUS_BY_CODE[tag];
  if (status === undefined) throw new DecodeError({ kind: 'invalid_tag', what: 'exec status', tag });
  return {
    txHash,
    status,
    gasUsed: r.u64('gas used'),
    events: r.seq(limits.receiptEventsMax, EVENT_BYTES_MIN, 'receipt events', readEvent),
    output: r.bytes(limits.outputBytesMax, 'receipt output'),
    contractAddress: r.option('contract address', (r) => Address.fromBytes(r.take(20, 'address'))),
  };
}

export function encodeEvent(e: Event): Uint8Array {
  return encode(e, writeEvent);
}

/** @throws {DecodeError} */
export function decodeEvent(bytes: Uint8Array, limits?: Limits): Event {
  return decode(bytes, readEvent, limits);
}

export function encodeReceipt(rc: Receipt): Uint8Array {
  return encode(rc, writeReceipt);
}

/** @throws {DecodeError} */
export function decodeReceipt(bytes: Uint8Array, limits?: Limits): Receipt {
  return decode(bytes, readReceipt, limits);
}

/** The hash a block's receipts root commits to. */
export function receiptHash(rc: Receipt): Hash {
  return keccak256Parts([DOMAIN.RECEIPT, encodeReceipt(rc)]);
}
