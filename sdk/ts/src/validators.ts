/**
 * Validators and validator sets (`node/types/src/block.rs`): their
 * encoding, their hash, and the quorum rule every certificate is checked
 * against.
 *
 * @module
 */

import { Address } from './address.js';
import { DecodeError, Reader, Writer, decode, encode, type Limits } from './codec.js';
import { DOMAIN, type Hash, keccak256Parts } from './hash.js';
import { PublicKey } from './keys.js';

/** One member of a validator set. */
export interface Validator {
  readonly address: Address;
  readonly publicKey: PublicKey;
  /** Voting power; every quorum is measured in power, not in heads. */
  readonly power: bigint;
}

/** Smallest encoded validator: address, key and power. */
export const VALIDATOR_BYTES = 20 + 33 + 8;

export function writeValidator(w: Writer, v: Validator): void {
  w.fixed(v.address.toBytes(), 20, 'address');
  w.fixed(v.publicKey.toBytes(), 33, 'public key');
  w.u64(v.power, 'voting power');
}

export function readValidator(r: Reader): Validator {
  return {
    address: Address.fromBytes(r.take(20, 'address')),
    publicKey: PublicKey.fromBytes(r.take(33, 'PublicKey')),
    power: r.u64('voting power'),
  };
}

/** The kinds of {@link ValidatorSetError}, one per Rust `ValidatorSetError`. */
export type ValidatorSetErrorDetail =
  | { readonly kind: 'empty' }
  | { readonly kind: 'too_many'; readonly count: number }
  | { readonly kind: 'not_sorted'; readonly index: number }
  | { readonly kind: 'invalid_key'; readonly index: number }
  | { readonly kind: 'address_mismatch'; readonly index: number }
  | { readonly kind: 'zero_power'; readonly index: number }
  | { readonly kind: 'power_overflow' };

function describeSetError(d: ValidatorSetErrorDetail): string {
  switch (d.kind) {
    case 'empty':
      return 'validator set is empty';
    case 'too_many':
      return `validator set has ${d.count} members, over the maximum`;
    case 'not_sorted':
      return `validators are not sorted by address without duplicates at index ${d.index}`;
    case 'invalid_key':
      return `validator ${d.index} has an invalid public key`;
    case 'address_mismatch':
      return `validator ${d.index}'s address does not match its public key`;
    case 'zero_power':
      return `validator ${d.index} has zero voting power`;
    case 'power_overflow':
      return 'total voting power overflows';
  }
}

/** Why a list of validators is not a valid set. Messages match Rust's. */
export class ValidatorSetError extends Error {
  override readonly name = 'ValidatorSetError';
  readonly detail: ValidatorSetErrorDetail;

  constructor(detail: ValidatorSetErrorDetail) {
    super(describeSetError(detail));
    this.detail = detail;
  }
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * The validators of a chain, sorted by address, each with a valid key that
 * matches its address and a non-zero power. The primary of view `v` is the
 * validator at index `v mod n`. Immutable.
 */
export class ValidatorSet {
  /** Most validators a set may hold. */
  static readonly VALIDATORS_MAX = 1024;

  readonly #validators: readonly Validator[];
  /** Sum of the validators' power. */
  readonly totalPower: bigint;

  private constructor(validators: readonly Validator[], totalPower: bigint) {
    this.#validators = validators;
    this.totalPower = totalPower;
  }

  /**
   * Checks and wraps validators sorted by address, as Rust's
   * `ValidatorSet::new`.
   *
   * @throws {ValidatorSetError}
   */
  static create(validators: readonly Validator[]): ValidatorSet {
    if (validators.length === 0) throw new ValidatorSetError({ kind: 'empty' });
    if (validators.length > ValidatorSet.VALIDATORS_MAX) {
      throw new ValidatorSetError({ kind: 'too_many', count: validators.length });
    }
    let total = 0n;
    for (const [index, v] of validators.entries()) {
      if (index > 0 && validators[index - 1]!.address.compare(v.address) >= 0) {
        throw new ValidatorSetError({ kind: 'not_sorted', index });
      }
      try {
        v.publicKey.validate();
      } catch {
        throw new ValidatorSetError({ kind: 'invalid_key', index });
      }
      if (!v.publicKey.address().equals(v.address)) {
        throw new ValidatorSetError({ kind: 'address_mismatch', index });
      }
      if (v.power === 0n) throw new ValidatorSetError({ kind: 'zero_power', index });
      total += v.power;
      if (total > U64_MAX) throw new ValidatorSetError({ kind: 'power_overflow' });
    }
    return new ValidatorSet(Object.freeze([...validators]), total);
  }

  /** The validators, in address order. */
  get validators(): readonly Validator[] {
    return this.#validators;
  }

  get length(): number {
    return this.#validators.length;
  }

  /** The validator at `index`, if any. */
  get(index: number): Validator | undefined {
    return Number.isInteger(index) && index >= 0 ? this.#validators[index] : undefined;
  }

  /** Index of the validator with `address`, or -1. */
  indexOf(address: Address): number {
    let lo = 0;
    let hi = this.#validators.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = this.#validators[mid]!.address.compare(address);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  /**
   * Power a commit certificate needs: more than two thirds of the total
   * (`2f + 1` for `n = 3f + 1` validators of equal power).
   */
  quorumPower(): bigint {
    return (this.totalPower * 2n) / 3n + 1n;
  }

  /** Power that must include an honest validator: more than a third. */
  weakQuorumPower(): bigint {
    return this.totalPower / 3n + 1n;
  }

  /** The primary of `view`. */
  primary(view: bigint): Validator {
    return this.#validators[Number(view % BigInt(this.#validators.length))]!;
  }

  /** The hash naming this exact set (a header's `nextValidatorsHash`). */
  hash(): Hash {
    return keccak256Parts([DOMAIN.VALIDATOR_SET, encodeValidatorSet(this)]);
  }
}

export function writeValidatorSet(w: Writer, set: ValidatorSet): void {
  w.seq(set.validators, ValidatorSet.VALIDATORS_MAX, 'validators', writeValidator);
}

export function readValidatorSet(r: Reader): ValidatorSet {
  const validators = r.seq(r.limits.validatorsMax, VALIDATOR_BYTES, 'validators', readValidator);
  try {
    return ValidatorSet.create(validators);
  } catch (e) {
    if (!(e instanceof ValidatorSetError)) throw e;
    throw new DecodeError({
      kind: 'invalid',
      what: 'validator set',
      reason: 'not a valid sorted validator set',
    });
  }
}

export function encodeValidatorSet(set: ValidatorSet): Uint8Array {
  return encode(set, writeValidatorSet);
}

/** @throws {DecodeError} */
export function decodeValidatorSet(bytes: Uint8Array, limits?: Limits): ValidatorSet {
  return decode(bytes, readValidatorSet, limits);
}
