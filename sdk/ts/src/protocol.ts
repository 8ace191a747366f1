/**
 * Protocol parameters (`node/types/src/protocol.rs`): what validators vote
 * for in a protocol upgrade.
 *
 * @module
 */

import { type Limits, type Reader, type Writer, decode, encode } from './codec.js';
import { type Hash, keccak256 } from './hash.js';

/**
 * What every node must agree on to execute and certify the same blocks,
 * other than the validator set.
 */
export interface ProtocolParams {
  readonly gasScheduleVersion: number;
  readonly vmLimitsVersion: number;
  /** Sum of the gas limits of a block's transactions. */
  readonly blockGasMax: bigint;
  /** Encoded transaction bytes in a block. */
  readonly blockBytesMax: bigint;
  readonly blockTxsMax: bigint;
  /** Gas every transaction pays before any code runs... */
  readonly txGasBase: bigint;
  /** ...plus this much per byte of its encoding. */
  readonly txGasPerByte: bigint;
  readonly viewTimeoutMs: bigint;
  readonly viewTimeoutMaxMs: bigint;
}

/** Encoded size of {@link ProtocolParams}. */
export const PROTOCOL_PARAMS_BYTES = 4 + 4 + 7 * 8;

export function writeProtocolParams(w: Writer, p: ProtocolParams): void {
  w.u32(p.gasScheduleVersion, 'gas schedule version');
  w.u32(p.vmLimitsVersion, 'VM limits version');
  w.u64(p.blockGasMax, 'block gas max');
  w.u64(p.blockBytesMax, 'block bytes max');
  w.u64(p.blockTxsMax, 'block txs max');
  w.u64(p.txGasBase, 'tx gas base');
  w.u64(p.txGasPerByte, 'tx gas per byte');
  w.u64(p.viewTimeoutMs, 'view timeout');
  w.u64(p.viewTimeoutMaxMs, 'view timeout max');
}

export function readProtocolParams(r: Reader): ProtocolParams {
  return {
    gasScheduleVersion: r.u32('gas schedule version'),
    vmLimitsVersion: r.u32('VM limits version'),
    blockGasMax: r.u64('block gas max'),
    blockBytesMax: r.u64('block bytes max'),
    blockTxsMax: r.u64('block txs max'),
    txGasBase: r.u64('tx gas base'),
    txGasPerByte: r.u64('tx gas per byte'),
    viewTimeoutMs: r.u64('view timeout'),
    viewTimeoutMaxMs: r.u64('view timeout max'),
  };
}

export function encodeProtocolParams(p: ProtocolParams): Uint8Array {
  return encode(p, writeProtocolParams);
}

/** @throws {DecodeError} */
export function decodeProtocolParams(bytes: Uint8Array, limits?: Limits): ProtocolParams {
  return decode(bytes, readProtocolParams, limits);
}

/** Keccak-256 of the encoding: what votes for these parameters name. */
export function protocolParamsHash(p: ProtocolParams): Hash {
  return keccak256(encodeProtocolParams(p));
}
