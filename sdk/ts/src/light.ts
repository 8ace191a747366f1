/**
 * A light client: reads from one node that are checked instead of
 * trusted, from the genesis validator set alone (ADR 0010).
 *
 * {@link validatorsForBlock} finds the validator set that certifies a
 * block as `Client::validators_for_block` does in Rust
 * (`sdk/client/src/client.rs`): it locates the epochs' first heights
 * with `get_validators`, then walks them up from the genesis; the last
 * block of every epoch must be certified in that epoch by the set known
 * for it, and its header must name the next set the node gives.
 *
 * {@link verifiedStorage} reads a contract storage value with
 * `get_storage_proof` and checks it as Rust's `get_storage_verified`:
 * the header is of the trusted chain, its commit certificate carries a
 * quorum of the set so found, and the Merkle proof puts the value (or its
 * absence) under the header's state root. It returns who vouched for it,
 * so a dApp can show "verified by 3 of 4 validators".
 *
 * @module
 */

import type { Address } from './address.js';
import { type BlockHeader, CertificateError, type CommitCertificate, blockHeaderHash, verifyCertificate } from './block.js';
import type { Hash } from './hash.js';
import { bytesEqual, toHex } from './hex.js';
import {
  JsonError,
  type JsonValue,
  asAddress,
  asBytes,
  asObject,
  asOptional,
  blockHeaderFromJson,
  commitCertificateFromJson,
} from './json.js';
import { DecodeError } from './codec.js';
import {
  type Account,
  ProofError,
  type SparseMerkleProof,
  accountStateKey,
  decodeAccount,
  type StateKey,
  describeStateKey,
  proofFromJson,
  stateKeyHash,
  storageStateKey,
  verifyProof,
} from './proof.js';
import { type BlockInfo, RpcTransportError, type ValidatorsInfo } from './rpc.js';
import type { ValidatorSet } from './validators.js';

/** What a light client trusts: the chain's id and its genesis validator set. */
export interface TrustedGenesis {
  readonly chainId: bigint;
  readonly validators: ValidatorSet;
}

/**
 * The calls a light client makes; `RpcClient` has them (and any client of
 * the same methods will do).
 */
export interface LightRpc {
  /** A raw JSON-RPC call with positional parameters. */
  call(method: string, params: readonly JsonValue[]): Promise<JsonValue>;
  getValidators(height?: bigint | number): Promise<ValidatorsInfo>;
  getBlock(id: bigint | number | Hash): Promise<BlockInfo>;
}

/**
 * Why a read was refused. The first four are Rust's `VerifyError` cases,
 * with its messages; `wrong_answer` is a check Rust's client does not
 * make: the node answered about another contract, key or height than
 * asked.
 */
export type LightClientErrorDetail =
  | { readonly kind: 'wrong_chain'; readonly expected: bigint; readonly got: bigint }
  | { readonly kind: 'certificate'; readonly cause: CertificateError }
  | { readonly kind: 'proof'; readonly cause: ProofError }
  | {
      readonly kind: 'set_chain';
      readonly height: bigint;
      readonly reason: string;
      /** The certificate check that failed, when that is the reason. */
      readonly cause: CertificateError | null;
    }
  | { readonly kind: 'wrong_answer'; readonly asked: string; readonly answered: string }
  /** The proven bytes at an account key are not an account record. */
  | { readonly kind: 'account_record'; readonly cause: DecodeError };

function describeLightError(d: LightClientErrorDetail): string {
  switch (d.kind) {
    case 'wrong_chain':
      return `header is for chain ${d.got}, expected ${d.expected}`;
    case 'certificate':
      return `commit certificate does not certify the header: ${d.cause.message}`;
    case 'proof':
      return `Merkle proof does not match the certified state root: ${d.cause.message}`;
    case 'set_chain':
      return `the chain of validator sets breaks at height ${d.height}: ${d.reason}`;
    case 'wrong_answer':
      return `asked for ${d.asked}, the node answered for ${d.answered}`;
    case 'account_record':
      return `the proven account record does not decode: ${d.cause.message}`;
  }
}

/** A node's answer that does not check out against the trusted genesis. */
export class LightClientError extends Error {
  override readonly name = 'LightClientError';
  readonly detail: LightClientErrorDetail;

  constructor(detail: LightClientErrorDetail) {
    super(describeLightError(detail));
    this.detail = detail;
  }
}

const setChain = (height: bigint, reason: string, cause: CertificateError | null = null): LightClientError =>
  new LightClientError({ kind: 'set_chain', height, reason, cause });

const U64_MAX = (1n << 64n) - 1n;

/**
 * Most epochs {@link validatorsForBlock} walks from the genesis (as Rust's
 * `EPOCH_WALK_MAX`), so a node cannot keep a client reading by claiming a
 * long chain of epochs.
 */
export const EPOCH_WALK_MAX = 10_000;

function heightParam(v: bigint | number, what: string): bigint {
  const n = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof n !== 'bigint' || n < 0n || n > U64_MAX) {
    throw new RangeError(`${what} must be an integer from 0 to 2^64 - 1, got ${String(v)}`);
  }
  return n;
}

/**
 * The validator set that certifies block `height`, trusting only
 * `genesis`, not the node: the node's `get_validators` answers say where
 * the epochs below `height` start, and each epoch's last block, certified
 * by the set known for its epoch, vouches for the next set's hash. One
 * block and two small reads per epoch.
 *
 * @throws {LightClientError} `set_chain` when the chain of sets does not hold.
 * @throws {RpcError | RpcTransportError} when the node does not answer.
 */
export async function validatorsForBlock(
  client: LightRpc,
  genesis: TrustedGenesis,
  height: bigint | number,
): Promise<ValidatorSet> {
  const target = heightParam(height, 'height');
  // The first heights of the epochs up to the target's, newest first.
  const starts: { epoch: bigint; start: bigint }[] = [];
  let at = target > 0n ? target - 1n : 0n;
  for (;;) {
    const info = await client.getValidators(at);
    if (info.epoch === 0n) break;
    if (info.epochStartHeight === 0n || info.epochStartHeight > at + 1n) {
      throw setChain(at, 'the node gives an impossible epoch start');
    }
    // Epochs strictly fall as the walk goes down, which also bounds it by
    // the first epoch's number.
    const later = starts[starts.length - 1];
    if (later !== undefined && info.epoch >= later.epoch) {
      throw setChain(at, 'the epochs do not fall towards the genesis');
    }
    if (starts.length >= EPOCH_WALK_MAX) throw setChain(at, `more than ${EPOCH_WALK_MAX} epochs to walk from the genesis`);
    starts.push({ epoch: info.epoch, start: info.epochStartHeight });
    at = info.epochStartHeight >= 2n ? info.epochStartHeight - 2n : 0n;
    if (info.epochStartHeight < 2n) break;
  }
  let set = genesis.validators;
  let epoch = 0n;
  for (const { epoch: nextEpoch, start } of starts.reverse()) {
    if (nextEpoch !== epoch + 1n) throw setChain(start, `epoch ${nextEpoch} follows epoch ${epoch}`);
    const last = start - 1n;
    const { block, certificate } = await client.getBlock(last);
    const header = block.header;
    if (header.chainId !== genesis.chainId || header.epoch !== epoch) {
      throw setChain(last, 'the last block is of another chain or epoch');
    }
    try {
      verifyCertificate(certificate, header, set);
    } catch (e) {
      if (e instanceof CertificateError) throw setChain(last, e.message, e);
      throw e;
    }
    const next = (await client.getValidators(last)).validators;
    if (!next.hash().equals(header.nextValidatorsHash)) {
      throw setChain(last, 'the header names another next set');
    }
    set = next;
    epoch = nextEpoch;
  }
  return set;
}

/** Who vouched for a verified read. */
export interface Verification {
  /** The certified block whose state was read. */
  readonly height: bigint;
  readonly epoch: bigint;
  readonly blockHash: Hash;
  readonly stateRoot: Hash;
  /** Validators whose signatures the certificate carries, all checked. */
  readonly signers: number;
  /** Members of the epoch's validator set. */
  readonly validators: number;
  /** The signers' voting power. */
  readonly power: bigint;
  /** The set's voting power. */
  readonly totalPower: bigint;
  /** The power a certificate needs: more than two thirds of the total. */
  readonly quorumPower: bigint;
}

/** A value read from a certified state (an absent key has value `null`). */
export interface CertifiedRead {
  readonly stateKey: StateKey;
  readonly value: Uint8Array | null;
  readonly proof: SparseMerkleProof;
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
}

/**
 * Checks `read` on chain `chainId` with `validators`, the set of its
 * block's epoch, in the order of Rust's `verify_storage_proof`: the
 * header's chain, its certificate, then the Merkle proof.
 *
 * @throws {LightClientError} `wrong_chain`, `certificate` or `proof`.
 */
export function verifyCertifiedRead(read: CertifiedRead, chainId: bigint, validators: ValidatorSet): Verification {
  const { header, certificate } = read;
  if (header.chainId !== chainId) {
    throw new LightClientError({ kind: 'wrong_chain', expected: chainId, got: header.chainId });
  }
  try {
    verifyCertificate(certificate, header, validators);
  } catch (e) {
    if (e instanceof CertificateError) throw new LightClientError({ kind: 'certificate', cause: e });
    throw e;
  }
  try {
    verifyProof(read.proof, header.stateRoot, stateKeyHash(read.stateKey), read.value);
  } catch (e) {
    if (e instanceof ProofError) throw new LightClientError({ kind: 'proof', cause: e });
    throw e;
  }
  let power = 0n;
  for (const s of certificate.signatures) power += validators.get(s.validator)?.power ?? 0n;
  return {
    height: header.height,
    epoch: header.epoch,
    blockHash: blockHeaderHash(header),
    stateRoot: header.stateRoot,
    signers: certificate.signatures.length,
    validators: validators.length,
    power: power > U64_MAX ? U64_MAX : power,
    totalPower: validators.totalPower,
    quorumPower: validators.quorumPower(),
  };
}

/**
 * {@link verifyCertifiedRead} with the set of the read's block found from
 * `genesis` by {@link validatorsForBlock}.
 *
 * @throws {LightClientError}
 */
export async function verifyCertifiedState(
  client: LightRpc,
  genesis: TrustedGenesis,
  read: CertifiedRead,
): Promise<Verification> {
  const set = await validatorsForBlock(client, genesis, read.header.height);
  return verifyCertifiedRead(read, genesis.chainId, set);
}

/** A node's `get_storage_proof` answer: a storage value, its proof, and the certified header it is against. */
export interface StorageProofInfo {
  readonly contract: Address;
  readonly key: Uint8Array;
  /** `null`: the key is absent (the proof is a non-inclusion proof). */
  readonly value: Uint8Array | null;
  readonly proof: SparseMerkleProof;
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
}

/** @throws {JsonError} */
export function storageProofInfoFromJson(v: JsonValue, path = 'result'): StorageProofInfo {
  const o = asObject(v, path);
  return {
    contract: asAddress(o['contract'], `${path}.contract`),
    key: asBytes(o['key'], `${path}.key`),
    value: asOptional(o['value'], `${path}.value`, asBytes),
    proof: proofFromJson(o['proof'] ?? null, `${path}.proof`),
    header: blockHeaderFromJson(o['header'] ?? null, `${path}.header`),
    certificate: commitCertificateFromJson(o['certificate'] ?? null, `${path}.certificate`),
  };
}

/**
 * The node's `get_storage_proof` answer for `key` of `contract` at
 * `height` (the latest by default), unchecked.
 *
 * @throws {RpcError | RpcTransportError}
 */
export async function getStorageProof(
  client: Pick<LightRpc, 'call'>,
  contract: Address,
  key: Uint8Array,
  height?: bigint | number,
): Promise<StorageProofInfo> {
  return proofCall(
    client,
    'get_storage_proof',
    [contract.toChecksum(), toHex(key), height === undefined ? null : heightParam(height, 'height')],
    storageProofInfoFromJson,
  );
}

/** `method`'s answer read by `read`; an answer that does not read is a transport error. */
async function proofCall<T>(
  client: Pick<LightRpc, 'call'>,
  method: string,
  params: JsonValue[],
  read: (v: JsonValue) => T,
): Promise<T> {
  const result = await client.call(method, params);
  try {
    return read(result);
  } catch (e) {
    if (e instanceof JsonError) throw new RpcTransportError(method, `unexpected answer: ${e.message}`, 200, e);
    throw e;
  }
}

/** A verified storage value and who vouched for it. */
export interface VerifiedStorage extends Verification {
  /** The value, or `null` when the key is proven absent. */
  readonly value: Uint8Array | null;
}

/** Options of {@link verifiedStorage}. */
export interface VerifiedStorageOptions {
  /** Read at this height (at least 1) instead of the latest. */
  readonly height?: bigint | number;
}

/**
 * Storage key `key` of `contract`, read from `client` without trusting
 * it: the value (or its absence) is proven under the state root of a
 * header that the validators of its epoch certified, that set being found
 * from `genesis` by {@link validatorsForBlock}.
 *
 * @throws {LightClientError} when the answer does not check out.
 * @throws {RpcError | RpcTransportError} when the node does not answer.
 */
export async function verifiedStorage(
  client: LightRpc,
  genesis: TrustedGenesis,
  contract: Address,
  key: Uint8Array,
  options: VerifiedStorageOptions = {},
): Promise<VerifiedStorage> {
  const height = options.height === undefined ? undefined : heightParam(options.height, 'height');
  const info = await getStorageProof(client, contract, key, height);
  const asked = storageStateKey(contract, key);
  const answered = storageStateKey(info.contract, info.key);
  if (!info.contract.equals(contract) || !bytesEqual(info.key, key)) {
    throw new LightClientError({
      kind: 'wrong_answer',
      asked: describeStateKey(asked),
      answered: describeStateKey(answered),
    });
  }
  if (height !== undefined && info.header.height !== height) {
    throw new LightClientError({
      kind: 'wrong_answer',
      asked: `height ${height}`,
      answered: `height ${info.header.height}`,
    });
  }
  const verification = await verifyCertifiedState(client, genesis, {
    stateKey: asked,
    value: info.value,
    proof: info.proof,
    header: info.header,
    certificate: info.certificate,
  });
  return { ...verification, value: info.value };
}

/** A node's `get_account_proof` answer: an account record, its proof, and the certified header it is against. */
export interface AccountProofInfo {
  readonly address: Address;
  /** The record's encoding; `null`: the account does not exist (a non-inclusion proof). */
  readonly value: Uint8Array | null;
  readonly proof: SparseMerkleProof;
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
}

/** @throws {JsonError} */
export function accountProofInfoFromJson(v: JsonValue, path = 'result'): AccountProofInfo {
  const o = asObject(v, path);
  return {
    address: asAddress(o['address'], `${path}.address`),
    value: asOptional(o['value'], `${path}.value`, asBytes),
    proof: proofFromJson(o['proof'] ?? null, `${path}.proof`),
    header: blockHeaderFromJson(o['header'] ?? null, `${path}.header`),
    certificate: commitCertificateFromJson(o['certificate'] ?? null, `${path}.certificate`),
  };
}

/**
 * The node's `get_account_proof` answer for `address` at `height` (the
 * latest by default), unchecked.
 *
 * @throws {RpcError | RpcTransportError}
 */
export async function getAccountProof(
  client: Pick<LightRpc, 'call'>,
  address: Address,
  height?: bigint | number,
): Promise<AccountProofInfo> {
  return proofCall(
    client,
    'get_account_proof',
    [address.toChecksum(), height === undefined ? null : heightParam(height, 'height')],
    accountProofInfoFromJson,
  );
}

/** A verified account record and who vouched for it. */
export interface VerifiedAccount extends Verification {
  /** The record, or `null` when the account is proven not to exist. */
  readonly account: Account | null;
}

/** Options of {@link verifiedAccount}. */
export interface VerifiedAccountOptions {
  /** Read at this height (at least 1) instead of the latest. */
  readonly height?: bigint | number;
}

/**
 * The account record of `address` (nonce, balance, code hash), read from
 * `client` without trusting it, as {@link verifiedStorage} reads a
 * storage value (Rust's `get_account_verified`). The height is a
 * certified one, so the nonce counts committed transactions only.
 *
 * @throws {LightClientError} when the answer does not check out.
 * @throws {RpcError | RpcTransportError} when the node does not answer.
 */
export async function verifiedAccount(
  client: LightRpc,
  genesis: TrustedGenesis,
  address: Address,
  options: VerifiedAccountOptions = {},
): Promise<VerifiedAccount> {
  const height = options.height === undefined ? undefined : heightParam(options.height, 'height');
  const info = await getAccountProof(client, address, height);
  if (!info.address.equals(address)) {
    throw new LightClientError({
      kind: 'wrong_answer',
      asked: describeStateKey(accountStateKey(address)),
      answered: describeStateKey(accountStateKey(info.address)),
    });
  }
  if (height !== undefined && info.header.height !== height) {
    throw new LightClientError({
      kind: 'wrong_answer',
      asked: `height ${height}`,
      answered: `height ${info.header.height}`,
    });
  }
  const verification = await verifyCertifiedState(client, genesis, {
    stateKey: accountStateKey(address),
    value: info.value,
    proof: info.proof,
    header: info.header,
    certificate: info.certificate,
  });
  let account: Account | null = null;
  if (info.value !== null) {
    try {
      account = decodeAccount(info.value);
    } catch (e) {
      if (e instanceof DecodeError) throw new LightClientError({ kind: 'account_record', cause: e });
      throw e;
    }
  }
  return { ...verification, account };
}
