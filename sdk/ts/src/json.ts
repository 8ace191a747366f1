/**
 * The JSON forms the node's JSON-RPC API uses (the serde forms of the Rust
 * types): hashes, addresses, keys, signatures and byte strings as `0x` hex
 * (addresses EIP-55), `u128` amounts as decimal strings, `u64` values as
 * JSON numbers, Rust field names (`snake_case`).
 *
 * `u64` numbers can exceed 2^53, which `JSON.parse` silently rounds, so
 * {@link parseJson} keeps every integer outside the safe range as a
 * `bigint`, and {@link stringifyJson} writes `bigint`s as plain numbers.
 *
 * @module
 */

import { Address, AddressError } from './address.js';
import type { Block, BlockHeader, CommitCertificate } from './block.js';
import { Hash } from './hash.js';
import { HexError, fromHex, toHex } from './hex.js';
import { PublicKey, Signature } from './keys.js';
import type { ProtocolParams } from './protocol.js';
import type { Event, ExecStatus, Receipt } from './receipt.js';
import type { SignedTransaction, Transaction, TxPayload } from './tx.js';
import { type Validator, ValidatorSet, ValidatorSetError } from './validators.js';

/** A parsed JSON value; integers outside ±(2^53 - 1) are `bigint`s. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
/** A parsed JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** JSON text that does not parse, or a value of the wrong shape (with its path). */
export class JsonError extends Error {
  override readonly name = 'JsonError';
}

/** Deepest nesting {@link parseJson} accepts. */
const DEPTH_MAX = 128;

/**
 * Parses JSON text (RFC 8259). Integers that a `number` cannot hold
 * exactly become `bigint`s; other numbers are `number`s.
 *
 * @throws {JsonError}
 */
export function parseJson(text: string): JsonValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new JsonError(`invalid JSON at offset ${at}: ${what}`);
  };
  const skipSpace = (): void => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) at++;
      else return;
    }
  };
  const literal = (word: string, value: JsonValue): JsonValue => {
    if (text.startsWith(word, at)) {
      at += word.length;
      return value;
    }
    return fail('unexpected character');
  };
  const string = (): string => {
    const start = at;
    at++; // the opening quote
    for (;;) {
      const c = text.charCodeAt(at);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string');
      at += c === 0x5c ? 2 : 1;
    }
    at++;
    try {
      return JSON.parse(text.slice(start, at)) as string;
    } catch {
      at = start;
      return fail('invalid string escape');
    }
  };
  const number = (): number | bigint => {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 400));
    if (m === null) return fail('invalid number');
    const token = m[0];
    at += token.length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(token);
      return Number.isSafeInteger(n) ? n : BigInt(token);
    }
    return Number(token);
  };
  const value = (depth: number): JsonValue => {
    if (depth > DEPTH_MAX) fail(`nested deeper than ${DEPTH_MAX}`);
    skipSpace();
    const c = text[at];
    switch (c) {
      case '{': {
        at++;
        const obj: JsonObject = {};
        skipSpace();
        if (text[at] === '}') {
          at++;
          return obj;
        }
        for (;;) {
          skipSpace();
          if (text[at] !== '"') fail('expected a key');
          const key = string();
          skipSpace();
          if (text[at] !== ':') fail("expected ':'");
          at++;
          // defineProperty: a "__proto__" key must be data, not the prototype.
          Object.defineProperty(obj, key, {
            value: value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
          skipSpace();
          if (text[at] === ',') at++;
          else if (text[at] === '}') {
            at++;
            return obj;
          } else fail("expected ',' or '}'");
        }
      }
      case '[': {
        at++;
        const arr: JsonValue[] = [];
        skipSpace();
        if (text[at] === ']') {
          at++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          skipSpace();
          if (text[at] === ',') at++;
          else if (text[at] === ']') {
            at++;
            return arr;
          } else fail("expected ',' or ']'");
        }
      }
      case '"':
        return string();
      case 't':
        return literal('true', true);
      case 'f':
        return literal('false', false);
      case 'n':
        return literal('null', null);
      default:
        return number();
    }
  };
  const result = value(0);
  skipSpace();
  if (at !== text.length) fail('trailing characters');
  return result;
}

/** JSON text of `value`, `bigint`s written as plain integers, keys in insertion order. */
export function stringifyJson(value: JsonValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new JsonError(`${value} has no JSON form`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(',')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}:${stringifyJson(v)}`)
    .join(',')}}`;
}

// ---------------------------------------------------------------------------
// Reading typed fields, each error naming the path of the bad value.

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;

const shape = (path: string, expected: string, got: JsonValue | undefined): never => {
  const shown = got === undefined ? 'nothing' : stringifyJson(got).slice(0, 80);
  throw new JsonError(`${path}: expected ${expected}, got ${shown}`);
};

/** The object at `path`. */
export function asObject(v: JsonValue | undefined, path: string): JsonObject {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) {
    return shape(path, 'an object', v);
  }
  return v;
}

/** The array at `path`. */
export function asArray(v: JsonValue | undefined, path: string): JsonValue[] {
  return Array.isArray(v) ? v : shape(path, 'an array', v);
}

export function asString(v: JsonValue | undefined, path: string): string {
  return typeof v === 'string' ? v : shape(path, 'a string', v);
}

export function asBool(v: JsonValue | undefined, path: string): boolean {
  return typeof v === 'boolean' ? v : shape(path, 'a boolean', v);
}

/** A `u64` JSON number. */
export function asU64(v: JsonValue | undefined, path: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'bigint' && v >= 0n && v <= U64_MAX) return v;
  return shape(path, 'a u64 number', v);
}

/** A `u32` JSON number. */
export function asU32(v: JsonValue | undefined, path: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff) return v;
  return shape(path, 'a u32 number', v);
}

/** A `u128` amount: a decimal string. */
export function asU128(v: JsonValue | undefined, path: string): bigint {
  if (typeof v === 'string' && /^(0|[1-9][0-9]{0,38})$/.test(v)) {
    const n = BigInt(v);
    if (n <= U128_MAX) return n;
  }
  return shape(path, 'a decimal u128 string', v);
}

function parsed<T>(v: JsonValue | undefined, path: string, what: string, parse: (s: string) => T): T {
  const s = asString(v, path);
  try {
    return parse(s);
  } catch (e) {
    if (e instanceof HexError || e instanceof AddressError) {
      throw new JsonError(`${path}: expected ${what}: ${e.message}`);
    }
    throw e;
  }
}

export const asHash = (v: JsonValue | undefined, path: string): Hash =>
  parsed(v, path, 'a 0x-hex 32-byte hash', (s) => Hash.parse(s));
export const asAddress = (v: JsonValue | undefined, path: string): Address =>
  parsed(v, path, 'an address', (s) => Address.parse(s));
export const asBytes = (v: JsonValue | undefined, path: string): Uint8Array =>
  parsed(v, path, '0x-hex bytes', (s) => fromHex(s));
export const asSignature = (v: JsonValue | undefined, path: string): Signature =>
  parsed(v, path, 'a 0x-hex 65-byte signature', (s) => Signature.parse(s));
export const asPublicKey = (v: JsonValue | undefined, path: string): PublicKey =>
  parsed(v, path, 'a 0x-hex 33-byte public key', (s) => PublicKey.parse(s));

/** `null` when absent or null, else `read` of the value. */
export function asOptional<T>(
  v: JsonValue | undefined,
  path: string,
  read: (v: JsonValue, path: string) => T,
): T | null {
  return v === null || v === undefined ? null : read(v, path);
}

// ---------------------------------------------------------------------------
// The protocol types.

export function protocolParamsFromJson(v: JsonValue, path = 'params'): ProtocolParams {
  const o = asObject(v, path);
  return {
    gasScheduleVersion: asU32(o['gas_schedule_version'], `${path}.gas_schedule_version`),
    vmLimitsVersion: asU32(o['vm_limits_version'], `${path}.vm_limits_version`),
    blockGasMax: asU64(o['block_gas_max'], `${path}.block_gas_max`),
    blockBytesMax: asU64(o['block_bytes_max'], `${path}.block_bytes_max`),
    blockTxsMax: asU64(o['block_txs_max'], `${path}.block_txs_max`),
    txGasBase: asU64(o['tx_gas_base'], `${path}.tx_gas_base`),
    txGasPerByte: asU64(o['tx_gas_per_byte'], `${path}.tx_gas_per_byte`),
    viewTimeoutMs: asU64(o['view_timeout_ms'], `${path}.view_timeout_ms`),
    viewTimeoutMaxMs: asU64(o['view_timeout_max_ms'], `${path}.view_timeout_max_ms`),
  };
}

export function protocolParamsToJson(p: ProtocolParams): JsonObject {
  return {
    gas_schedule_version: p.gasScheduleVersion,
    vm_limits_version: p.vmLimitsVersion,
    block_gas_max: p.blockGasMax,
    block_bytes_max: p.blockBytesMax,
    block_txs_max: p.blockTxsMax,
    tx_gas_base: p.txGasBase,
    tx_gas_per_byte: p.txGasPerByte,
    view_timeout_ms: p.viewTimeoutMs,
    view_timeout_max_ms: p.viewTimeoutMaxMs,
  };
}

export function validatorFromJson(v: JsonValue, path = 'validator'): Validator {
  const o = asObject(v, path);
  return {
    address: asAddress(o['address'], `${path}.address`),
    publicKey: asPublicKey(o['public_key'], `${path}.public_key`),
    power: asU64(o['power'], `${path}.power`),
  };
}

export function validatorToJson(v: Validator): JsonObject {
  return { address: v.address.toChecksum(), public_key: v.publicKey.toString(), power: v.power };
}

/** A validator set: a JSON array of validators, checked as Rust checks it. */
export function validatorSetFromJson(v: JsonValue, path = 'validators'): ValidatorSet {
  const list = asArray(v, path).map((x, i) => validatorFromJson(x, `${path}[${i}]`));
  try {
    return ValidatorSet.create(list);
  } catch (e) {
    if (e instanceof ValidatorSetError) throw new JsonError(`${path}: ${e.message}`);
    throw e;
  }
}

export function validatorSetToJson(set: ValidatorSet): JsonValue[] {
  return set.validators.map(validatorToJson);
}

function payloadFromJson(v: JsonValue, path: string): TxPayload {
  const o = asObject(v, path);
  const kind = asString(o['kind'], `${path}.kind`);
  switch (kind) {
    case 'transfer':
      return {
        kind,
        to: asAddress(o['to'], `${path}.to`),
        amount: asU128(o['amount'], `${path}.amount`),
      };
    case 'deploy':
      return {
        kind,
        code: asBytes(o['code'], `${path}.code`),
        initArgs: asBytes(o['init_args'], `${path}.init_args`),
        value: asU128(o['value'], `${path}.value`),
      };
    case 'call':
      return {
        kind,
        contract: asAddress(o['contract'], `${path}.contract`),
        method: asString(o['method'], `${path}.method`),
        args: asBytes(o['args'], `${path}.args`),
        value: asU128(o['value'], `${path}.value`),
      };
    case 'vote_validators':
      return {
        kind,
        epoch: asU64(o['epoch'], `${path}.epoch`),
        validators: asArray(o['validators'], `${path}.validators`).map((x, i) =>
          validatorFromJson(x, `${path}.validators[${i}]`),
        ),
        possession: asArray(o['possession'], `${path}.possession`).map((x, i) =>
          asSignature(x, `${path}.possession[${i}]`),
        ),
      };
    case 'vote_upgrade':
      return {
        kind,
        epoch: asU64(o['epoch'], `${path}.epoch`),
        activationHeight: asU64(o['activation_height'], `${path}.activation_height`),
        params: protocolParamsFromJson(o['params'] ?? null, `${path}.params`),
      };
    default:
      return shape(`${path}.kind`, 'a payload kind', kind);
  }
}

function payloadToJson(p: TxPayload): JsonObject {
  switch (p.kind) {
    case 'transfer':
      return { kind: p.kind, to: p.to.toChecksum(), amount: p.amount.toString() };
    case 'deploy':
      return { kind: p.kind, code: toHex(p.code), init_args: toHex(p.initArgs), value: p.value.toString() };
    case 'call':
      return {
        kind: p.kind,
        contract: p.contract.toChecksum(),
        method: p.method,
        args: toHex(p.args),
        value: p.value.toString(),
      };
    case 'vote_validators':
      return {
        kind: p.kind,
        epoch: p.epoch,
        validators: p.validators.map(validatorToJson),
        possession: p.possession.map((s) => s.toString()),
      };
    case 'vote_upgrade':
      return {
        kind: p.kind,
        epoch: p.epoch,
        activation_height: p.activationHeight,
        params: protocolParamsToJson(p.params),
      };
  }
}

export function transactionFromJson(v: JsonValue, path = 'tx'): Transaction {
  const o = asObject(v, path);
  return {
    chainId: asU64(o['chain_id'], `${path}.chain_id`),
    nonce: asU64(o['nonce'], `${path}.nonce`),
    gasLimit: asU64(o['gas_limit'], `${path}.gas_limit`),
    gasPrice: asU64(o['gas_price'], `${path}.gas_price`),
    payload: payloadFromJson(o['payload'] ?? null, `${path}.payload`),
  };
}

export function transactionToJson(tx: Transaction): JsonObject {
  return {
    chain_id: tx.chainId,
    nonce: tx.nonce,
    gas_limit: tx.gasLimit,
    gas_price: tx.gasPrice,
    payload: payloadToJson(tx.payload),
  };
}

export function signedTransactionFromJson(v: JsonValue, path = 'transaction'): SignedTransaction {
  const o = asObject(v, path);
  return {
    tx: transactionFromJson(o['tx'] ?? null, `${path}.tx`),
    signature: asSignature(o['signature'], `${path}.signature`),
  };
}

export function signedTransactionToJson(s: SignedTransaction): JsonObject {
  return { tx: transactionToJson(s.tx), signature: s.signature.toString() };
}

export function blockHeaderFromJson(v: JsonValue, path = 'header'): BlockHeader {
  const o = asObject(v, path);
  return {
    chainId: asU64(o['chain_id'], `${path}.chain_id`),
    height: asU64(o['height'], `${path}.height`),
    epoch: asU64(o['epoch'], `${path}.epoch`),
    view: asU64(o['view'], `${path}.view`),
    parentHash: asHash(o['parent_hash'], `${path}.parent_hash`),
    txRoot: asHash(o['tx_root'], `${path}.tx_root`),
    stateRoot: asHash(o['state_root'], `${path}.state_root`),
    receiptsRoot: asHash(o['receipts_root'], `${path}.receipts_root`),
    timestampMs: asU64(o['timestamp_ms'], `${path}.timestamp_ms`),
    proposer: asAddress(o['proposer'], `${path}.proposer`),
    nextValidatorsHash: asHash(o['next_validators_hash'], `${path}.next_validators_hash`),
  };
}

export function blockHeaderToJson(h: BlockHeader): JsonObject {
  return {
    chain_id: h.chainId,
    height: h.height,
    epoch: h.epoch,
    view: h.view,
    parent_hash: h.parentHash.toString(),
    tx_root: h.txRoot.toString(),
    state_root: h.stateRoot.toString(),
    receipts_root: h.receiptsRoot.toString(),
    timestamp_ms: h.timestampMs,
    proposer: h.proposer.toChecksum(),
    next_validators_hash: h.nextValidatorsHash.toString(),
  };
}

export function blockFromJson(v: JsonValue, path = 'block'): Block {
  const o = asObject(v, path);
  return {
    header: blockHeaderFromJson(o['header'] ?? null, `${path}.header`),
    txs: asArray(o['txs'], `${path}.txs`).map((x, i) => signedTransactionFromJson(x, `${path}.txs[${i}]`)),
  };
}

export function blockToJson(b: Block): JsonObject {
  return { header: blockHeaderToJson(b.header), txs: b.txs.map(signedTransactionToJson) };
}

export function commitCertificateFromJson(v: JsonValue, path = 'certificate'): CommitCertificate {
  const o = asObject(v, path);
  return {
    height: asU64(o['height'], `${path}.height`),
    epoch: asU64(o['epoch'], `${path}.epoch`),
    view: asU64(o['view'], `${path}.view`),
    blockHash: asHash(o['block_hash'], `${path}.block_hash`),
    signatures: asArray(o['signatures'], `${path}.signatures`).map((x, i) => {
      const s = asObject(x, `${path}.signatures[${i}]`);
      return {
        validator: asU32(s['validator'], `${path}.signatures[${i}].validator`),
        signature: asSignature(s['signature'], `${path}.signatures[${i}].signature`),
      };
    }),
  };
}

export function commitCertificateToJson(c: CommitCertificate): JsonObject {
  return {
    height: c.height,
    epoch: c.epoch,
    view: c.view,
    block_hash: c.blockHash.toString(),
    signatures: c.signatures.map((s) => ({ validator: s.validator, signature: s.signature.toString() })),
  };
}

const STATUSES: readonly ExecStatus[] = ['success', 'reverted', 'out_of_gas', 'trapped', 'failed'];

export function execStatusFromJson(v: JsonValue | undefined, path: string): ExecStatus {
  const s = asString(v, path);
  const found = STATUSES.find((x) => x === s);
  return found ?? shape(path, `one of ${STATUSES.join(', ')}`, s);
}

export function eventFromJson(v: JsonValue, path = 'event'): Event {
  const o = asObject(v, path);
  return {
    contract: asAddress(o['contract'], `${path}.contract`),
    topics: asArray(o['topics'], `${path}.topics`).map((x, i) => asHash(x, `${path}.topics[${i}]`)),
    data: asBytes(o['data'], `${path}.data`),
  };
}

export function eventToJson(e: Event): JsonObject {
  return {
    contract: e.contract.toChecksum(),
    topics: e.topics.map((t) => t.toString()),
    data: toHex(e.data),
  };
}

export function receiptFromJson(v: JsonValue, path = 'receipt'): Receipt {
  const o = asObject(v, path);
  return {
    txHash: asHash(o['tx_hash'], `${path}.tx_hash`),
    status: execStatusFromJson(o['status'], `${path}.status`),
    gasUsed: asU64(o['gas_used'], `${path}.gas_used`),
    events: asArray(o['events'], `${path}.events`).map((x, i) => eventFromJson(x, `${path}.events[${i}]`)),
    output: asBytes(o['output'], `${path}.output`),
    contractAddress: asOptional(o['contract_address'], `${path}.contract_address`, asAddress),
  };
}

export function receiptToJson(r: Receipt): JsonObject {
  return {
    tx_hash: r.txHash.toString(),
    status: r.status,
    gas_used: r.gasUsed,
    events: r.events.map(eventToJson),
    output: toHex(r.output),
    contract_address: r.contractAddress === null ? null : r.contractAddress.toChecksum(),
  };
}
