/**
 * Block headers, blocks and commit certificates (`node/types/src/block.rs`):
 * encodings, hashes, the digest validators sign, and the check that a
 * certificate proves a header final.
 *
 * @module
 */

import { Address } from './address.js';
import { DEFAULT_LIMITS, type Limits, type Reader, type Writer, decode, encode, u64Bytes } from './codec.js';
import { DOMAIN, Hash, keccak256Parts, listRoot } from './hash.js';
import { CryptoError, Signature } from './keys.js';
import {
  type SignedTransaction,
  readSignedTransaction,
  txHash,
  writeSignedTransaction,
} from './tx.js';
import type { ValidatorSet } from './validators.js';

/** The header every validator agrees on; its hash is the block hash. */
export interface BlockHeader {
  readonly chainId: bigint;
  /** Height of this block; the genesis state is height 0, the first block 1. */
  readonly height: bigint;
  /** The epoch the block belongs to: that epoch's validator set certifies it. */
  readonly epoch: bigint;
  /** The PBFT view in which it was proposed. */
  readonly view: bigint;
  readonly parentHash: Hash;
  /** {@link listRoot} of the transaction hashes. */
  readonly txRoot: Hash;
  /** Merkle state root after executing this block. */
  readonly stateRoot: Hash;
  /** {@link listRoot} of the receipt hashes. */
  readonly receiptsRoot: Hash;
  /** Proposer's clock, in milliseconds since the Unix epoch. */
  readonly timestampMs: bigint;
  readonly proposer: Address;
  /** Hash of the validator set that certifies the next block. */
  readonly nextValidatorsHash: Hash;
}

const writeHash = (w: Writer, h: Hash, what: string): void => {
  w.fixed(h.toBytes(), 32, what);
};
const readHash = (r: Reader): Hash => Hash.fromBytes(r.take(32, 'Hash'));

export function writeBlockHeader(w: Writer, h: BlockHeader): void {
  w.u64(h.chainId, 'chain id');
  w.u64(h.height, 'height');
  w.u64(h.epoch, 'epoch');
  w.u64(h.view, 'view');
  writeHash(w, h.parentHash, 'parent hash');
  writeHash(w, h.txRoot, 'tx root');
  writeHash(w, h.stateRoot, 'state root');
  writeHash(w, h.receiptsRoot, 'receipts root');
  w.u64(h.timestampMs, 'timestamp');
  w.fixed(h.proposer.toBytes(), 20, 'address');
  writeHash(w, h.nextValidatorsHash, 'next validators hash');
}

export function readBlockHeader(r: Reader): BlockHeader {
  return {
    chainId: r.u64('chain id'),
    height: r.u64('height'),
    epoch: r.u64('epoch'),
    view: r.u64('view'),
    parentHash: readHash(r),
    txRoot: readHash(r),
    stateRoot: readHash(r),
    receiptsRoot: readHash(r),
    timestampMs: r.u64('timestamp'),
    proposer: Address.fromBytes(r.take(20, 'address')),
    nextValidatorsHash: readHash(r),
  };
}

export function encodeBlockHeader(h: BlockHeader): Uint8Array {
  return encode(h, writeBlockHeader);
}

/** @throws {DecodeError} */
export function decodeBlockHeader(bytes: Uint8Array, limits?: Limits): BlockHeader {
  return decode(bytes, readBlockHeader, limits);
}

/** The block hash. */
export function blockHeaderHash(h: BlockHeader): Hash {
  return keccak256Parts([DOMAIN.BLOCK_HEADER, encodeBlockHeader(h)]);
}

/** A header and the transactions it commits to. */
export interface Block {
  readonly header: BlockHeader;
  readonly txs: readonly SignedTransaction[];
}

/**
 * The smallest encoded transaction, which bounds a block's count by the
 * bytes left (`SIGNED_TX_BYTES_MIN` in block.rs, kept identical so both
 * accept and refuse the same bytes): a `vote_validators` transaction with
 * empty lists.
 */
const SIGNED_TX_BYTES_MIN = 8 * 4 + (1 + 8 + 4 + 4) + 65;

export function writeBlock(w: Writer, b: Block): void {
  writeBlockHeader(w, b.header);
  w.seq(b.txs, DEFAULT_LIMITS.blockTxsMax, 'block transactions', writeSignedTransaction);
}

export function readBlock(r: Reader): Block {
  return {
    header: readBlockHeader(r),
    txs: r.seq(r.limits.blockTxsMax, SIGNED_TX_BYTES_MIN, 'block transactions', readSignedTransaction),
  };
}

export function encodeBlock(b: Block): Uint8Array {
  return encode(b, writeBlock);
}

/** @throws {DecodeError} */
export function decodeBlock(bytes: Uint8Array, limits?: Limits): Block {
  return decode(bytes, readBlock, limits);
}

/** The transaction root `txs` give: what the header's `txRoot` must be. */
export function computeTxRoot(txs: readonly SignedTransaction[]): Hash {
  return listRoot(txs.map(txHash));
}

/** Kinds of signed consensus message; the byte is part of the digest. */
export const ConsensusKind = Object.freeze({
  PrePrepare: 1,
  Prepare: 2,
  Commit: 3,
  Checkpoint: 4,
  ViewChange: 5,
  NewView: 6,
} as const);
export type ConsensusKind = (typeof ConsensusKind)[keyof typeof ConsensusKind];

/**
 * The digest a validator signs for a consensus message: domain tag, kind,
 * chain id, epoch, view, sequence number and the body's hash.
 */
export function consensusDigest(
  kind: ConsensusKind,
  chainId: bigint,
  epoch: bigint,
  view: bigint,
  seq: bigint,
  body: Hash,
): Hash {
  return keccak256Parts([
    DOMAIN.CONSENSUS,
    Uint8Array.of(kind),
    u64Bytes(chainId),
    u64Bytes(epoch),
    u64Bytes(view),
    u64Bytes(seq),
    body.toBytes(),
  ]);
}

/** One validator's COMMIT signature in a certificate. */
export interface CommitSignature {
  /** Index of the signer in the validator set (`u32`). */
  readonly validator: number;
  readonly signature: Signature;
}

/**
 * Proof that a block is final: COMMIT signatures over its hash from
 * validators holding a quorum of power, in the view it committed in.
 */
export interface CommitCertificate {
  /** The block height, which is the PBFT sequence number. */
  readonly height: bigint;
  /** The epoch whose validator set signed it. */
  readonly epoch: bigint;
  readonly view: bigint;
  readonly blockHash: Hash;
  /** Sorted by validator index, no index twice. */
  readonly signatures: readonly CommitSignature[];
}

export function writeCommitCertificate(w: Writer, c: CommitCertificate): void {
  w.u64(c.height, 'height');
  w.u64(c.epoch, 'epoch');
  w.u64(c.view, 'view');
  writeHash(w, c.blockHash, 'block hash');
  w.seq(c.signatures, DEFAULT_LIMITS.validatorsMax, 'certificate signatures', (w, s) => {
    w.u32(s.validator, 'validator index');
    w.fixed(s.signature.toBytes(), 65, 'signature');
  });
}

export function readCommitCertificate(r: Reader): CommitCertificate {
  return {
    height: r.u64('height'),
    epoch: r.u64('epoch'),
    view: r.u64('view'),
    blockHash: readHash(r),
    signatures: r.seq(r.limits.validatorsMax, 4 + 65, 'certificate signatures', (r) => ({
      validator: r.u32('validator index'),
      signature: Signature.fromBytes(r.take(65, 'Signature')),
    })),
  };
}

export function encodeCommitCertificate(c: CommitCertificate): Uint8Array {
  return encode(c, writeCommitCertificate);
}

/** @throws {DecodeError} */
export function decodeCommitCertificate(bytes: Uint8Array, limits?: Limits): CommitCertificate {
  return decode(bytes, readCommitCertificate, limits);
}

/** The digest each validator of the certificate signed, on chain `chainId`. */
export function certificateDigest(c: CommitCertificate, chainId: bigint): Hash {
  return consensusDigest(ConsensusKind.Commit, chainId, c.epoch, c.view, c.height, c.blockHash);
}

/** Why a certificate does not prove a block final; one case per Rust `CertificateError`. */
export type CertificateErrorDetail =
  | { readonly kind: 'not_sorted'; readonly position: number }
  | { readonly kind: 'unknown_validator'; readonly index: number }
  | { readonly kind: 'bad_signature'; readonly index: number; readonly cause: CryptoError }
  | { readonly kind: 'no_quorum'; readonly got: bigint; readonly needed: bigint }
  | { readonly kind: 'wrong_block'; readonly expected: Hash; readonly got: Hash }
  | { readonly kind: 'wrong_height'; readonly expected: bigint; readonly got: bigint }
  | { readonly kind: 'wrong_epoch'; readonly expected: bigint; readonly got: bigint };

function describeCertError(d: CertificateErrorDetail): string {
  switch (d.kind) {
    case 'not_sorted':
      return `signatures are not sorted by validator index without duplicates at position ${d.position}`;
    case 'unknown_validator':
      return `signer index ${d.index} is not in the validator set`;
    case 'bad_signature':
      return `signature of validator ${d.index} is invalid: ${d.cause.message}`;
    case 'no_quorum':
      return `certificate carries ${d.got} voting power, a quorum needs ${d.needed}`;
    case 'wrong_block':
      return `certificate is for block ${d.got.toString()}, expected ${d.expected.toString()}`;
    case 'wrong_height':
      return `certificate is for height ${d.got}, the block is at height ${d.expected}`;
    case 'wrong_epoch':
      return `certificate is from epoch ${d.got}, the block is in epoch ${d.expected}`;
  }
}

/** Why a certificate was refused. `message` is the Rust node's message. */
export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly detail: CertificateErrorDetail;

  constructor(detail: CertificateErrorDetail) {
    super(describeCertError(detail));
    this.detail = detail;
  }
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Checks every signature of `c` against `validators` on chain `chainId`,
 * and that together they hold a quorum of power: Rust's
 * `CommitCertificate::verify`, check for check and in the same order.
 *
 * @throws {CertificateError}
 */
export function verifyCertificateSignatures(
  c: CommitCertificate,
  chainId: bigint,
  validators: ValidatorSet,
): void {
  const digest = certificateDigest(c, chainId);
  let power = 0n;
  for (const [position, cs] of c.signatures.entries()) {
    if (position > 0 && c.signatures[position - 1]!.validator >= cs.validator) {
      throw new CertificateError({ kind: 'not_sorted', position });
    }
    const v = validators.get(cs.validator);
    if (v === undefined) throw new CertificateError({ kind: 'unknown_validator', index: cs.validator });
    try {
      v.publicKey.verify(digest, cs.signature);
    } catch (e) {
      if (!(e instanceof CryptoError)) throw e;
      throw new CertificateError({ kind: 'bad_signature', index: cs.validator, cause: e });
    }
    power += v.power;
    if (power > U64_MAX) power = U64_MAX;
  }
  const needed = validators.quorumPower();
  if (power < needed) throw new CertificateError({ kind: 'no_quorum', got: power, needed });
}

/**
 * Checks that `c` proves `header` final under `validators`, as Rust's
 * `verify_header`: the certificate names the header's hash and height
 * (`wrong_block`) and epoch (`wrong_epoch`), its signer indexes are sorted
 * and unique (`not_sorted`) and in the set (`unknown_validator`), every
 * signature verifies (`bad_signature`), and the signers hold a quorum of
 * power (`no_quorum`).
 *
 * @throws {CertificateError}
 */
export function verifyCertificate(
  c: CommitCertificate,
  header: BlockHeader,
  validators: ValidatorSet,
): void {
  const hash = blockHeaderHash(header);
  if (!hash.equals(c.blockHash)) {
    throw new CertificateError({ kind: 'wrong_block', expected: hash, got: c.blockHash });
  }
  if (header.height !== c.height) {
    throw new CertificateError({ kind: 'wrong_height', expected: header.height, got: c.height });
  }
  if (header.epoch !== c.epoch) {
    throw new CertificateError({ kind: 'wrong_epoch', expected: header.epoch, got: c.epoch });
  }
  verifyCertificateSignatures(c, header.chainId, validators);
}
