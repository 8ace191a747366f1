/**
 * Checks made in the browser against the trust anchor, and their badges:
 * a block's commit certificate against the validator set of its epoch
 * (followed from the genesis set), and the text of a verified read.
 *
 * @module
 */

import { badge, errorText, h } from './dom.js';
import type { Context } from './context.js';
import { CertificateError, type BlockInfo, type Verification, verifyCertificate } from './sdk.js';

/** Who certified a block. */
export interface Certified {
  readonly signers: number;
  readonly validators: number;
  readonly power: bigint;
  readonly totalPower: bigint;
  /** Addresses of the signers, in validator-index order. */
  readonly signerAddresses: readonly string[];
}

/**
 * Checks `info`'s certificate against the set of its epoch, followed from
 * the genesis set.
 *
 * @throws {CertificateError | LightClientError | Error} when it does not hold.
 */
export async function checkCertificate(ctx: Context, info: BlockInfo): Promise<Certified> {
  const header = info.block.header;
  const genesis = await ctx.genesis();
  if (header.chainId !== genesis.chainId) {
    throw new Error(`the block is of chain ${header.chainId}, the trusted genesis of chain ${genesis.chainId}`);
  }
  const set = await ctx.validatorsFor(header.height, header.epoch);
  verifyCertificate(info.certificate, header, set);
  let power = 0n;
  const signerAddresses: string[] = [];
  for (const s of info.certificate.signatures) {
    const v = set.get(s.validator);
    if (v === undefined) continue; // verifyCertificate refused unknown signers already
    power += v.power;
    signerAddresses.push(v.address.toChecksum());
  }
  return {
    signers: info.certificate.signatures.length,
    validators: set.length,
    power,
    totalPower: set.totalPower,
    signerAddresses,
  };
}

/** The certificate badge of a block: pending, then verified or refused. */
export function certificateBadge(ctx: Context, info: BlockInfo): { el: HTMLElement; done: Promise<Certified | null> } {
  const el = h('span', { class: 'verify', 'data-verify': 'pending' }, badge('wait', 'checking the certificate…'));
  const done = checkCertificate(ctx, info).then(
    (c) => {
      el.dataset['verify'] = 'ok';
      el.replaceChildren(
        badge('ok', `✓ certified by ${c.signers} of ${c.validators} validators (power ${c.power}/${c.totalPower})`),
      );
      return c;
    },
    (e: unknown) => {
      el.dataset['verify'] = 'bad';
      const why = e instanceof CertificateError ? e.message : errorText(e);
      el.replaceChildren(badge('bad', `✗ certificate refused: ${why}`));
      return null;
    },
  );
  return { el, done };
}

/** `✓ verified by k of n validators at height H`. */
export function verifiedText(v: Verification): string {
  return `✓ verified by ${v.signers} of ${v.validators} validators at height ${v.height} (power ${v.power}/${v.totalPower})`;
}
