// Loads sdk/ts/fixtures/vectors.json (written by the Rust test
// node/types/tests/ts_vectors.rs) and turns its field objects into the
// package's values.

import { readFileSync } from 'node:fs';

import {
  Address,
  type BlockHeader,
  type CommitCertificate,
  type Event,
  type ExecStatus,
  Hash,
  type ProtocolParams,
  PublicKey,
  type Receipt,
  Signature,
  type Transaction,
  type TxPayload,
  type Validator,
  fromHex,
} from '@stele/client';

type Dec = string;
type Hex = string;

export interface ValidatorJson {
  address: string;
  public_key: Hex;
  power: Dec;
}

export interface ParamsJson {
  gas_schedule_version: number;
  vm_limits_version: number;
  block_gas_max: Dec;
  block_bytes_max: Dec;
  block_txs_max: Dec;
  tx_gas_base: Dec;
  tx_gas_per_byte: Dec;
  view_timeout_ms: Dec;
  view_timeout_max_ms: Dec;
}

export type PayloadJson =
  | { kind: 'transfer'; to: string; amount: Dec }
  | { kind: 'deploy'; code: Hex; init_args: Hex; value: Dec }
  | { kind: 'call'; contract: string; method: string; args: Hex; value: Dec }
  | { kind: 'vote_validators'; epoch: Dec; validators: ValidatorJson[]; possession: Hex[] }
  | { kind: 'vote_upgrade'; epoch: Dec; activation_height: Dec; params: ParamsJson };

export interface TxJson {
  chain_id: Dec;
  nonce: Dec;
  gas_limit: Dec;
  gas_price: Dec;
  payload: PayloadJson;
}

export interface HeaderJson {
  chain_id: Dec;
  height: Dec;
  epoch: Dec;
  view: Dec;
  parent_hash: Hex;
  tx_root: Hex;
  state_root: Hex;
  receipts_root: Hex;
  timestamp_ms: Dec;
  proposer: string;
  next_validators_hash: Hex;
}

export interface CertJson {
  height: Dec;
  epoch: Dec;
  view: Dec;
  block_hash: Hex;
  signatures: { validator: number; signature: Hex }[];
}

export interface EventJson {
  contract: string;
  topics: Hex[];
  data: Hex;
}

export interface ReceiptJson {
  tx_hash: Hex;
  status: ExecStatus;
  status_code: number;
  gas_used: Dec;
  events: EventJson[];
  output: Hex;
  contract_address: string | null;
}

export interface Vectors {
  version: number;
  chain_id: Dec;
  limits: Record<string, number>;
  keys: { secret_key: Hex; public_key: Hex; address: string; address_bytes: Hex }[];
  addresses: {
    valid: { text: string; bytes: Hex; checksum: string }[];
    invalid: { text: string; reason: 'format' | 'checksum'; error: string }[];
  };
  signatures: {
    name: string;
    secret_key?: Hex;
    digest: Hex;
    signature: Hex;
    recovers: string | null;
    public_key: Hex | null;
    error: string | null;
  }[];
  transactions: {
    name: string;
    secret_key: Hex;
    tx: TxJson;
    unsigned: Hex;
    signing_digest: Hex;
    signature: Hex;
    signed: Hex;
    hash: Hex;
    sender: string;
    max_cost: Dec | null;
    wrong_chain: { chain_id: Dec; error: string };
    bad_v: { signed: Hex; error: string };
    json: string;
  }[];
  headers: { name: string; header: HeaderJson; encoding: Hex; hash: Hex; json: string }[];
  validator_sets: {
    name: string;
    validators: ValidatorJson[];
    secret_keys: Hex[];
    encoding: Hex;
    hash: Hex;
    total_power: Dec;
    quorum_power: Dec;
    weak_quorum_power: Dec;
    json: string;
  }[];
  certificates: {
    name: string;
    header_index: number;
    validator_set_index: number;
    certificate: CertJson;
    encoding: Hex;
    hash: Hex;
    digest: Hex;
    signed_by: (Hex | null)[];
    valid: boolean;
    reason: string | null;
    error: string | null;
    json: string;
  }[];
  receipts: {
    name: string;
    receipt: ReceiptJson;
    event_encodings: Hex[];
    encoding: Hex;
    hash: Hex;
    json: string;
  }[];
  blocks: {
    name: string;
    header: HeaderJson;
    txs: Hex[];
    tx_hashes: Hex[];
    tx_root: Hex;
    encoding: Hex;
    hash: Hex;
    json: string;
  }[];
  list_roots: { items: Hex[]; root: Hex }[];
  protocol_params: { params: ParamsJson; encoding: Hex; hash: Hex; json: string }[];
  contract_addresses: { creator: string; nonce: Dec; address: string }[];
  validator_changes: { chain_id: Dec; epoch: Dec; validator_set_index: number; hash: Hex }[];
  invalid_encodings: { type: string; name: string; bytes: Hex; error: string }[];
}

/** The vectors, read relative to this compiled file (dist/test/support/). */
export function loadVectors(): Vectors {
  const url = new URL('../../../fixtures/vectors.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Vectors;
}

export const big = (s: Dec): bigint => BigInt(s);

export function validatorFromJson(v: ValidatorJson): Validator {
  return {
    address: Address.parse(v.address),
    publicKey: PublicKey.parse(v.public_key),
    power: big(v.power),
  };
}

export function paramsFromJson(p: ParamsJson): ProtocolParams {
  return {
    gasScheduleVersion: p.gas_schedule_version,
    vmLimitsVersion: p.vm_limits_version,
    blockGasMax: big(p.block_gas_max),
    blockBytesMax: big(p.block_bytes_max),
    blockTxsMax: big(p.block_txs_max),
    txGasBase: big(p.tx_gas_base),
    txGasPerByte: big(p.tx_gas_per_byte),
    viewTimeoutMs: big(p.view_timeout_ms),
    viewTimeoutMaxMs: big(p.view_timeout_max_ms),
  };
}

function payloadFromJson(p: PayloadJson): TxPayload {
  switch (p.kind) {
    case 'transfer':
      return { kind: 'transfer', to: Address.parse(p.to), amount: big(p.amount) };
    case 'deploy':
      return {
        kind: 'deploy',
        code: fromHex(p.code),
        initArgs: fromHex(p.init_args),
        value: big(p.value),
      };
    case 'call':
      return {
        kind: 'call',
        contract: Address.parse(p.contract),
        method: p.method,
        args: fromHex(p.args),
        value: big(p.value),
      };
    case 'vote_validators':
      return {
        kind: 'vote_validators',
        epoch: big(p.epoch),
        validators: p.validators.map(validatorFromJson),
        possession: p.possession.map((s) => Signature.parse(s)),
      };
    case 'vote_upgrade':
      return {
        kind: 'vote_upgrade',
        epoch: big(p.epoch),
        activationHeight: big(p.activation_height),
        params: paramsFromJson(p.params),
      };
  }
}

export function txFromJson(t: TxJson): Transaction {
  return {
    chainId: big(t.chain_id),
    nonce: big(t.nonce),
    gasLimit: big(t.gas_limit),
    gasPrice: big(t.gas_price),
    payload: payloadFromJson(t.payload),
  };
}

export function headerFromJson(h: HeaderJson): BlockHeader {
  return {
    chainId: big(h.chain_id),
    height: big(h.height),
    epoch: big(h.epoch),
    view: big(h.view),
    parentHash: Hash.parse(h.parent_hash),
    txRoot: Hash.parse(h.tx_root),
    stateRoot: Hash.parse(h.state_root),
    receiptsRoot: Hash.parse(h.receipts_root),
    timestampMs: big(h.timestamp_ms),
    proposer: Address.parse(h.proposer),
    nextValidatorsHash: Hash.parse(h.next_validators_hash),
  };
}

export function certFromJson(c: CertJson): CommitCertificate {
  return {
    height: big(c.height),
    epoch: big(c.epoch),
    view: big(c.view),
    blockHash: Hash.parse(c.block_hash),
    signatures: c.signatures.map((s) => ({
      validator: s.validator,
      signature: Signature.parse(s.signature),
    })),
  };
}

export function eventFromJson(e: EventJson): Event {
  return {
    contract: Address.parse(e.contract),
    topics: e.topics.map((t) => Hash.parse(t)),
    data: fromHex(e.data),
  };
}

export function receiptFromJson(r: ReceiptJson): Receipt {
  return {
    txHash: Hash.parse(r.tx_hash),
    status: r.status,
    gasUsed: big(r.gas_used),
    events: r.events.map(eventFromJson),
    output: fromHex(r.output),
    contractAddress: r.contract_address === null ? null : Address.parse(r.contract_address),
  };
}

/**
 * A plain, comparable form of a value: class instances (hashes, addresses,
 * keys, signatures) by their string form, byte arrays as hex, bigints as
 * `123n` strings, so `deepStrictEqual` compares values, not identities.
 */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Hash || value instanceof Address) return value.toString();
  if (value instanceof PublicKey || value instanceof Signature) return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    if (!Object.getPrototypeOf(value) || Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    throw new Error(`cannot compare an instance of ${value.constructor.name}`);
  }
  return value;
}
