/**
 * Transactions (`node/types/src/tx.rs`): every payload kind, the canonical
 * encoding, the digest a sender signs, the transaction hash, signing, and
 * recovering the sender.
 *
 * @module
 */

import { Address } from './address.js';
import {
  DEFAULT_LIMITS,
  DecodeError,
  EncodeError,
  type Limits,
  type Reader,
  type Writer,
  decode,
  encode,
  u64Bytes,
} from './codec.js';
import { DOMAIN, type Hash, keccak256, keccak256Parts } from './hash.js';
import { CryptoError, type SecretKey, Signature } from './keys.js';
import {
  type ProtocolParams,
  readProtocolParams,
  writeProtocolParams,
} from './protocol.js';
import {
  VALIDATOR_BYTES,
  type Validator,
  type ValidatorSet,
  readValidator,
  writeValidator,
} from './validators.js';

/** Move native tokens to another account. */
export interface TransferPayload {
  readonly kind: 'transfer';
  readonly to: Address;
  /** In the native token's smallest unit (`u128`). */
  readonly amount: bigint;
}

/** Upload a contract and run its constructor with `initArgs`. */
export interface DeployPayload {
  readonly kind: 'deploy';
  readonly code: Uint8Array;
  readonly initArgs: Uint8Array;
  readonly value: bigint;
}

/** Call `method` of a deployed contract. */
export interface CallPayload {
  readonly kind: 'call';
  readonly contract: Address;
  /** 1 to 64 ASCII letters, digits and `_`, not starting with a digit. */
  readonly method: string;
  readonly args: Uint8Array;
  readonly value: bigint;
}

/**
 * A validator of `epoch` votes for `validators` as the next epoch's whole
 * set; `possession` holds, for each key the current set lacks, in list
 * order, its signature over {@link validatorChangeHash}.
 */
export interface VoteValidatorsPayload {
  readonly kind: 'vote_validators';
  readonly epoch: bigint;
  readonly validators: readonly Validator[];
  readonly possession: readonly Signature[];
}

/** A validator of `epoch` votes for `params` from `activationHeight` on. */
export interface VoteUpgradePayload {
  readonly kind: 'vote_upgrade';
  readonly epoch: bigint;
  readonly activationHeight: bigint;
  readonly params: ProtocolParams;
}

/** The action a transaction performs. */
export type TxPayload =
  | TransferPayload
  | DeployPayload
  | CallPayload
  | VoteValidatorsPayload
  | VoteUpgradePayload;

/** An unsigned transaction. */
export interface Transaction {
  /** The chain it is meant for; any other chain refuses it. */
  readonly chainId: bigint;
  /** The sender's account nonce. */
  readonly nonce: bigint;
  /** The most gas it may use. */
  readonly gasLimit: bigint;
  /** Native tokens paid per unit of gas. */
  readonly gasPrice: bigint;
  readonly payload: TxPayload;
}

/** A transaction with its sender's signature; the sender is recovered from it. */
export interface SignedTransaction {
  readonly tx: Transaction;
  readonly signature: Signature;
}

const TAG = { transfer: 0, deploy: 1, call: 2, vote_validators: 3, vote_upgrade: 4 } as const;

/**
 * Why `name` is not a method name, as Rust's `validate_method_name`, or
 * `null` when it is one: 1 to `max` bytes of ASCII letters, digits and
 * `_`, not starting with a digit.
 */
export function methodNameError(name: string, max: number = DEFAULT_LIMITS.methodBytesMax): string | null {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0) return 'method name is empty';
  if (bytes.length > max) return 'method name is too long';
  if (bytes[0]! >= 0x30 && bytes[0]! <= 0x39) return 'method name starts with a digit';
  for (const b of bytes) {
    const ok =
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f;
    if (!ok) return 'method name has a character outside [A-Za-z0-9_]';
  }
  return null;
}

export function writeTxPayload(w: Writer, p: TxPayload): void {
  const limits = DEFAULT_LIMITS;
  switch (p.kind) {
    case 'transfer':
      w.u8(TAG.transfer);
      w.fixed(p.to.toBytes(), 20, 'address');
      w.u128(p.amount, 'amount');
      return;
    case 'deploy':
      w.u8(TAG.deploy);
      w.bytes(p.code, limits.codeBytesMax, 'contract code');
      w.bytes(p.initArgs, limits.argsBytesMax, 'init args');
      w.u128(p.value, 'value');
      return;
    case 'call': {
      const bad = methodNameError(p.method, limits.methodBytesMax);
      if (bad !== null) throw new EncodeError(`invalid method name: ${bad}`);
      w.u8(TAG.call);
      w.fixed(p.contract.toBytes(), 20, 'address');
      w.bytes(new TextEncoder().encode(p.method), limits.methodBytesMax, 'method name');
      w.bytes(p.args, limits.argsBytesMax, 'call args');
      w.u128(p.value, 'value');
      return;
    }
    case 'vote_validators':
      w.u8(TAG.vote_validators);
      w.u64(p.epoch, 'epoch');
      w.seq(p.validators, limits.validatorsMax, 'validators', writeValidator);
      w.seq(p.possession, limits.validatorsMax, 'possession proofs', (w, s) =>
        w.fixed(s.toBytes(), 65, 'signature'),
      );
      return;
    case 'vote_upgrade':
      w.u8(TAG.vote_upgrade);
      w.u64(p.epoch, 'epoch');
      w.u64(p.activationHeight, 'activation height');
      writeProtocolParams(w, p.params);
      return;
    default: {
      const unknown: never = p;
      throw new EncodeError(`unknown payload kind ${String((unknown as { kind: unknown }).kind)}`);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function readTxPayload(r: Reader): TxPayload {
  const limits = r.limits;
  const tag = r.u8('tx payload tag');
  switch (tag) {
    case TAG.transfer:
      return {
        kind: 'transfer',
        to: Address.fromBytes(r.take(20, 'address')),
        amount: r.u128('amount'),
      };
    case TAG.deploy:
      return {
        kind: 'deploy',
        code: r.bytes(limits.codeBytesMax, 'contract code'),
        initArgs: r.bytes(limits.argsBytesMax, 'init args'),
        value: r.u128('value'),
      };
    case TAG.call: {
      const contract = Address.fromBytes(r.take(20, 'address'));
      const raw = r.bytes(limits.methodBytesMax, 'method name');
      let method: string;
      try {
        method = utf8.decode(raw);
      } catch {
        throw new DecodeError({ kind: 'invalid', what: 'method name', reason: 'not UTF-8' });
      }
      const bad = methodNameError(method, limits.methodBytesMax);
      if (bad !== null) throw new DecodeError({ kind: 'invalid', what: 'method name', reason: bad });
      return {
        kind: 'call',
        contract,
        method,
        args: r.bytes(limits.argsBytesMax, 'call args'),
        value: r.u128('value'),
      };
    }
    case TAG.vote_validators:
      return {
        kind: 'vote_validators',
        epoch: r.u64('epoch'),
        validators: r.seq(limits.validatorsMax, VALIDATOR_BYTES, 'validators', readValidator),
        possession: r.seq(limits.validatorsMax, 65, 'possession proofs', (r) =>
          Signature.fromBytes(r.take(65, 'Signature')),
        ),
      };
    case TAG.vote_upgrade:
      return {
        kind: 'vote_upgrade',
        epoch: r.u64('epoch'),
        activationHeight: r.u64('activation height'),
        params: readProtocolParams(r),
      };
    default:
      throw new DecodeError({ kind: 'invalid_tag', what: 'tx payload', tag });
  }
}

export function writeTransaction(w: Writer, tx: Transaction): void {
  w.u64(tx.chainId, 'chain id');
  w.u64(tx.nonce, 'nonce');
  w.u64(tx.gasLimit, 'gas limit');
  w.u64(tx.gasPrice, 'gas price');
  writeTxPayload(w, tx.payload);
}

export function readTransaction(r: Reader): Transaction {
  return {
    chainId: r.u64('chain id'),
    nonce: r.u64('nonce'),
    gasLimit: r.u64('gas limit'),
    gasPrice: r.u64('gas price'),
    payload: readTxPayload(r),
  };
}

export function writeSignedTransaction(w: Writer, s: SignedTransaction): void {
  writeTransaction(w, s.tx);
  w.fixed(s.signature.toBytes(), 65, 'signature');
}

export function readSignedTransaction(r: Reader): SignedTransaction {
  return { tx: readTransaction(r), signature: Signature.fromBytes(r.take(65, 'Signature')) };
}

/** The canonical encoding of an unsigned transaction. @throws {EncodeError} */
export function encodeTransaction(tx: Transaction): Uint8Array {
  return encode(tx, writeTransaction);
}

/** @throws {DecodeError} */
export function decodeTransaction(bytes: Uint8Array, limits?: Limits): Transaction {
  return decode(bytes, readTransaction, limits);
}

/** The canonical encoding of a signed transaction: what `send_transaction` takes. */
export function encodeSignedTransaction(s: SignedTransaction): Uint8Array {
  return encode(s, writeSignedTransaction);
}

/**
 * Decodes a signed transaction. The signature is not checked here: see
 * {@link recoverSender}.
 *
 * @throws {DecodeError}
 */
export function decodeSignedTransaction(bytes: Uint8Array, limits?: Limits): SignedTransaction {
  return decode(bytes, readSignedTransaction, limits);
}

/**
 * The digest the sender signs: Keccak-256 of the transaction domain tag,
 * the chain id (8 bytes little-endian) and the canonical encoding.
 */
export function signingDigest(tx: Transaction): Hash {
  return keccak256Parts([DOMAIN.TX, u64Bytes(tx.chainId), encodeTransaction(tx)]);
}

/** Signs `tx` with `key`. */
export function signTransaction(tx: Transaction, key: SecretKey): SignedTransaction {
  return { tx, signature: key.signDigest(signingDigest(tx)) };
}

/** The transaction hash: Keccak-256 of the whole signed encoding. */
export function txHash(s: SignedTransaction): Hash {
  return keccak256(encodeSignedTransaction(s));
}

/** Native tokens the transaction moves. */
export function txValue(tx: Transaction): bigint {
  switch (tx.payload.kind) {
    case 'transfer':
      return tx.payload.amount;
    case 'deploy':
    case 'call':
      return tx.payload.value;
    case 'vote_validators':
    case 'vote_upgrade':
      return 0n;
  }
}

const U128_MAX = (1n << 128n) - 1n;

/**
 * The most the sender can be charged, `gasLimit * gasPrice + value`, or
 * `null` when that overflows a `u128` (no balance can cover it).
 */
export function maxCost(tx: Transaction): bigint | null {
  const cost = tx.gasLimit * tx.gasPrice + txValue(tx);
  return cost > U128_MAX ? null : cost;
}

/** Why a signed transaction was refused. Messages match Rust's `TxError`. */
export class TxError extends Error {
  override readonly name = 'TxError';
  readonly kind: 'wrong_chain' | 'signature';
  /** For `signature`: what was wrong with it. */
  override readonly cause: CryptoError | undefined;

  constructor(
    detail:
      | { kind: 'wrong_chain'; expected: bigint; got: bigint }
      | { kind: 'signature'; cause: CryptoError },
  ) {
    super(
      detail.kind === 'wrong_chain'
        ? `transaction is for chain ${detail.got}, this chain is ${detail.expected}`
        : `bad signature: ${detail.cause.message}`,
    );
    this.kind = detail.kind;
    this.cause = detail.kind === 'signature' ? detail.cause : undefined;
  }
}

/**
 * Checks the chain id and the signature and returns the sender, as the
 * node does before admitting a transaction.
 *
 * @throws {TxError}
 */
export function recoverSender(s: SignedTransaction, chainId: bigint): Address {
  if (s.tx.chainId !== chainId) {
    throw new TxError({ kind: 'wrong_chain', expected: chainId, got: s.tx.chainId });
  }
  try {
    return s.signature.recoverAddress(signingDigest(s.tx));
  } catch (e) {
    if (e instanceof CryptoError) throw new TxError({ kind: 'signature', cause: e });
    throw e;
  }
}

/**
 * What validators vote for, and a new set's keys sign to prove
 * possession, when `validators` is proposed as the set after `epoch` on
 * chain `chainId`.
 */
export function validatorChangeHash(chainId: bigint, epoch: bigint, validators: ValidatorSet): Hash {
  return keccak256Parts([
    DOMAIN.VALIDATOR_CHANGE,
    u64Bytes(chainId),
    u64Bytes(epoch),
    validators.hash().toBytes(),
  ]);
}
