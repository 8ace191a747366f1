/**
 * An account: what the node says of it, and its record read again with a
 * Merkle proof under a certified state root (`verifiedAccount`), checked
 * here against the trust anchor. An account with code also shows the
 * contract view.
 *
 * @module
 */

import { badge, errorText, fields, h, section, fill } from '../dom.js';
import { amount, mono } from '../format.js';
import { Address, AddressError, LightClientError, type VerifiedAccount, verifiedAccount } from '../sdk.js';
import { verifiedText } from '../verify.js';
import { type Scope, ViewError } from '../view.js';
import { contractSections } from './contract.js';

export function parseAddress(arg: string): Address {
  try {
    return Address.parse(arg);
  } catch (e) {
    if (e instanceof AddressError) throw new ViewError(`"${arg}" is not an address: ${e.message}`);
    throw e;
  }
}

export async function accountView(scope: Scope, arg: string): Promise<void> {
  const { ctx, root } = scope;
  const address = parseAddress(arg);
  const account = await ctx.rpc.getAccount(address);
  if (!scope.alive()) return;

  const verified = h('div', { id: 'verified-account', 'data-verify': 'pending' }, badge('wait', 'verifying…'));
  const contractBox = h('div', { id: 'contract' });
  fill(
    root,
    h('h1', null, account.codeHash === null ? 'Account ' : 'Contract ', mono(address.toChecksum())),
    section(
      'Account',
      h('p', { class: 'section-note muted' }, `As the node answers, at height ${account.height}:`),
      fields([
        ['address', mono(address.toChecksum())],
        ['balance', h('span', { id: 'balance' }, amount(account.balance))],
        ['nonce', account.nonce.toString()],
        ['pending nonce', account.pendingNonce.toString()],
        ['code hash', account.codeHash === null ? h('span', { class: 'muted' }, 'none (not a contract)') : mono(account.codeHash.toString())],
      ]),
    ),
    section('Verified', h('p', { class: 'section-note muted' }, 'The account record proven under a certified state root, checked against the trust anchor:'), verified),
    contractBox,
  );

  const check = (async () => {
    try {
      const genesis = await ctx.genesis();
      const v = await verifiedAccount(ctx.rpc, genesis, address);
      if (!scope.alive()) return;
      showVerified(verified, v);
    } catch (e) {
      if (!scope.alive()) return;
      verified.dataset['verify'] = 'bad';
      const why = e instanceof LightClientError ? `refused: ${e.message}` : `could not verify: ${errorText(e)}`;
      fill(verified, badge('bad', `✗ ${why}`));
    }
  })();
  const contract = account.codeHash === null ? Promise.resolve() : contractSections(scope, contractBox, address);
  await Promise.all([check, contract]);
}

function showVerified(el: HTMLElement, v: VerifiedAccount): void {
  el.dataset['verify'] = 'ok';
  const a = v.account;
  fill(
    el,
    h('p', null, badge('ok', verifiedText(v))),
    fields([
      ['balance', h('span', { id: 'verified-balance' }, a === null ? '0 (no such account)' : amount(a.balance))],
      ['nonce', a === null ? '0' : a.nonce.toString()],
      ['code hash', a === null || a.codeHash === null ? h('span', { class: 'muted' }, 'none') : mono(a.codeHash.toString())],
      ['block', h('a', { href: `#/block/${v.height}` }, `${v.height}`)],
      ['state root', mono(v.stateRoot.toString())],
    ]),
  );
}
