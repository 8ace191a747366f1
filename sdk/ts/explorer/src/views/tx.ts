/**
 * A transaction: its fields, its receipt, its events decoded by the ABI of
 * the contract that emitted each, and its revert reason decoded by the
 * called contract's ABI, and its call trace replayed by the node
 * (`trace_transaction`, views/trace.ts) while it keeps the parent state.
 *
 * @module
 */

import type { Context } from '../context.js';
import { badge, errorText, fields, fill, h, section } from '../dom.js';
import { accountLink, amount, blockLink, jsonCell, mono, prettyJson, short } from '../format.js';
import {
  type Abi,
  AbiError,
  type Event,
  Hash,
  type JsonValue,
  type Receipt,
  RpcCodes,
  RpcError,
  type SignedTransaction,
  type TransactionInfo,
  toHex,
} from '../sdk.js';
import { type Scope, ViewError } from '../view.js';
import { statusBadge } from './block.js';
import { traceSection } from './trace.js';

/** Events shown per transaction. */
const EVENTS_SHOWN_MAX = 200;

export function parseTxHash(arg: string): Hash {
  if (!/^0x[0-9a-fA-F]{64}$/.test(arg)) throw new ViewError(`"${arg}" is not a transaction hash (0x and 64 hex digits)`);
  return Hash.parse(arg.toLowerCase());
}

/** Where a transaction goes, in a few words (for tables). */
export function payloadSummary(tx: SignedTransaction, shorten: boolean): HTMLElement | string {
  const p = tx.tx.payload;
  switch (p.kind) {
    case 'transfer':
      return h('span', null, accountLink(p.to, shorten), ` ${amount(p.amount)}`);
    case 'call':
      return h('span', null, accountLink(p.contract, shorten), ' ', h('code', null, `${p.method}()`));
    case 'deploy':
      return h('span', { class: 'muted' }, `new contract (${amount(BigInt(p.code.length))} bytes)`);
    case 'vote_validators':
      return `epoch ${p.epoch}: ${p.validators.length} validators`;
    case 'vote_upgrade':
      return `epoch ${p.epoch}: upgrade at ${p.activationHeight}`;
  }
}

export async function txView(scope: Scope, arg: string): Promise<void> {
  const { ctx, root } = scope;
  const hash = parseTxHash(arg);
  let info: TransactionInfo;
  try {
    info = await ctx.rpc.getTransaction(hash);
  } catch (e) {
    if (e instanceof RpcError && e.code === RpcCodes.NOT_FOUND) {
      throw new ViewError(`Transaction ${hash.toString()} not found: this node knows no such transaction.`);
    }
    throw e;
  }
  if (info.state === 'unknown') throw new ViewError(`Transaction ${hash.toString()} not found: this node knows no such transaction.`);
  if (!scope.alive()) return;

  const tx = info.transaction.tx;
  const p = tx.payload;
  const callAbi = p.kind === 'call' ? await abiOrError(ctx, p.contract) : null;
  if (!scope.alive()) return;

  const receiptBox = h('div', { id: 'receipt' });
  fill(
    root,
    h('h1', null, 'Transaction ', mono(hash.toString(), true)),
    section(
      'Transaction',
      fields([
        ['hash', mono(hash.toString())],
        ['state', info.state === 'committed' ? badge('ok', 'committed') : badge('wait', 'pending in the mempool')],
        info.blockHeight === null ? null : ['block', h('span', null, blockLink(info.blockHeight), `, index ${info.index ?? '?'}`)],
        ['from', accountLink(info.sender, false)],
        ['nonce', tx.nonce.toString()],
        ['kind', p.kind],
        ...payloadRows(info.transaction, callAbi),
        ['gas limit', amount(tx.gasLimit)],
        ['gas price', amount(tx.gasPrice)],
        ['chain id', tx.chainId.toString()],
      ]),
    ),
    receiptBox,
  );

  if (info.state !== 'committed') {
    fill(receiptBox, section('Receipt', h('p', { class: 'muted' }, 'Not committed yet; this page reloads when it is.')));
    followUntilCommitted(scope, hash);
    return;
  }

  const r = await ctx.rpc.getReceipt(hash);
  if (!scope.alive()) return;
  const events = await eventsSection(ctx, r.receipt.events, r.eventsOmitted);
  if (!scope.alive()) return;
  const trace = p.kind === 'call' || p.kind === 'deploy' ? await traceSection(ctx, hash) : null;
  if (!scope.alive()) return;
  fill(
    receiptBox,
    section(
      'Receipt',
      fields([
        ['status', statusBadge(r.receipt.status)],
        ['gas used', amount(r.receipt.gasUsed)],
        ['block', h('span', null, blockLink(r.blockHeight), ' ', h('a', { href: `#/block/${r.blockHash.toString()}`, class: 'mono', title: r.blockHash.toString() }, short(r.blockHash.toString())))],
        r.receipt.contractAddress === null ? null : ['new contract', accountLink(r.receipt.contractAddress, false)],
        ...outputRows(info.transaction, r.receipt, callAbi),
      ]),
    ),
    events,
    trace,
  );
}

/** Reloads the view when a pending transaction commits. */
function followUntilCommitted(scope: Scope, hash: Hash): void {
  void (async () => {
    try {
      const sub = await scope.ctx.ws().subscribeTxStatus(hash);
      scope.onLeave(() => void sub.unsubscribe().catch(() => {}));
      for await (const s of sub) {
        if (!scope.alive()) break;
        if (s.state === 'committed') {
          scope.reload();
          break;
        }
      }
    } catch {
      // The page stays as it is; reloading it shows the state.
    }
  })();
}

type Row = readonly [string, HTMLElement | string] | null;

function payloadRows(stx: SignedTransaction, abi: AbiResult | null): Row[] {
  const p = stx.tx.payload;
  switch (p.kind) {
    case 'transfer':
      return [
        ['to', accountLink(p.to, false)],
        ['amount', amount(p.amount)],
      ];
    case 'call': {
      let args: HTMLElement;
      if (abi !== null && abi.abi !== null) {
        try {
          args = h('pre', { class: 'json' }, prettyJson(abi.abi.decodeArgs(p.method, p.args)));
        } catch (e) {
          args = h('span', null, mono(toHex(p.args)), ' ', h('span', { class: 'muted' }, `(${errorText(e)})`));
        }
      } else {
        args = mono(toHex(p.args));
      }
      return [
        ['contract', accountLink(p.contract, false)],
        ['method', h('code', null, p.method)],
        ['arguments', args],
        ['value', amount(p.value)],
        abi !== null && abi.error !== null ? ['ABI', h('span', { class: 'muted' }, abi.error)] : null,
      ];
    }
    case 'deploy':
      return [
        ['code', `${amount(BigInt(p.code.length))} bytes`],
        ['init arguments', mono(toHex(p.initArgs), true)],
        ['value', amount(p.value)],
      ];
    case 'vote_validators':
      return [
        ['epoch', p.epoch.toString()],
        ['validators', h('div', null, p.validators.map((v) => h('div', null, accountLink(v.address, false), ` power ${v.power}`)))],
      ];
    case 'vote_upgrade':
      return [
        ['epoch', p.epoch.toString()],
        ['activation height', p.activationHeight.toString()],
      ];
  }
}

function outputRows(stx: SignedTransaction, r: Receipt, abi: AbiResult | null): Row[] {
  const p = stx.tx.payload;
  if (r.status === 'success') {
    if (r.output.length === 0) return [];
    if (p.kind === 'call' && abi !== null && abi.abi !== null) {
      try {
        return [['returned', h('pre', { class: 'json' }, prettyJson(abi.abi.decodeReturn(p.method, r.output)))]];
      } catch {
        // shown raw below
      }
    }
    return [['output', mono(toHex(r.output))]];
  }
  if (r.status === 'reverted') {
    if (p.kind === 'call' && abi !== null && abi.abi !== null) {
      try {
        const revert = abi.abi.decodeRevert(p.method, r.output);
        const text =
          revert.kind === 'message' ? revert.message : revert.kind === 'error' ? prettyJson(revert.error) : toHex(revert.raw);
        const label = revert.kind === 'message' ? 'revert message' : revert.kind === 'error' ? 'revert error' : 'revert payload';
        return [[label, h('pre', { class: 'json revert', id: 'revert' }, text)]];
      } catch (e) {
        return [['revert payload', h('span', null, mono(toHex(r.output)), ' ', h('span', { class: 'muted' }, `(${errorText(e)})`))]];
      }
    }
    return [['revert payload', mono(toHex(r.output))]];
  }
  // Out of gas, trapped or failed: the VM's message.
  return [['error', h('pre', { class: 'json revert', id: 'revert' }, new TextDecoder().decode(r.output) || r.status)]];
}

interface AbiResult {
  readonly abi: Abi | null;
  readonly error: string | null;
}

async function abiOrError(ctx: Context, address: Parameters<Context['abi']>[0]): Promise<AbiResult> {
  try {
    const abi = await ctx.abi(address);
    return { abi, error: abi === null ? 'the contract has no readable ABI' : null };
  } catch (e) {
    return { abi: null, error: `the ABI could not be read: ${errorText(e)}` };
  }
}

/** The events, each decoded by the ABI of the contract that emitted it. */
export async function eventsSection(ctx: Context, events: readonly Event[], omitted: number): Promise<HTMLElement> {
  const title = `Events (${events.length + omitted})`;
  if (events.length === 0 && omitted === 0) return section(title, h('p', { class: 'muted' }, 'No events.'));
  const shown = events.slice(0, EVENTS_SHOWN_MAX);
  const abis = new Map<string, AbiResult>();
  for (const e of shown) {
    const key = e.contract.toChecksum();
    if (!abis.has(key)) abis.set(key, await abiOrError(ctx, e.contract));
  }
  const items = shown.map((e, i) => eventItem(e, i, abis.get(e.contract.toChecksum()) ?? null));
  const left = events.length - shown.length + omitted;
  return section(
    title,
    h('ol', { class: 'events', id: 'events', start: 0 }, items),
    left > 0 ? h('p', { class: 'muted' }, `${left} more events are not shown (the node left out ${omitted} to fit its answer).`) : null,
  );
}

function eventItem(e: Event, index: number, abi: AbiResult | null): HTMLElement {
  const from = h('span', { class: 'muted' }, ' from ', accountLink(e.contract));
  if (abi !== null && abi.abi !== null) {
    try {
      const d = abi.abi.decodeEvent(e.topics, e.data);
      return h(
        'li',
        { class: 'event', 'data-event': d.name, value: index },
        h('div', { class: 'event-head' }, h('strong', { class: 'event-name' }, d.name), from),
        h(
          'table',
          { class: 'fields event-fields' },
          h(
            'tbody',
            null,
            Object.entries(d.fields).map(([k, v]) => h('tr', { 'data-field': k }, h('th', { scope: 'row' }, k), h('td', null, fieldValue(v)))),
          ),
        ),
      );
    } catch (err) {
      return rawEvent(e, index, from, err instanceof AbiError ? err.message : errorText(err));
    }
  }
  return rawEvent(e, index, from, abi?.error ?? 'no ABI');
}

function fieldValue(v: JsonValue): HTMLElement | string {
  if (typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v)) {
    return h('a', { href: `#/account/${v}`, class: 'mono' }, v);
  }
  const text = jsonCell(v);
  return text.includes('\n') ? h('pre', { class: 'json' }, text) : h('span', { class: 'mono' }, text);
}

function rawEvent(e: Event, index: number, from: HTMLElement, why: string): HTMLElement {
  return h(
    'li',
    { class: 'event', 'data-event': '', value: index },
    h('div', { class: 'event-head' }, h('strong', null, 'raw event'), from, h('span', { class: 'muted' }, ` — not decoded: ${why}`)),
    fields([
      ...e.topics.map((t, i): Row => [`topic ${i}`, mono(t.toString())]),
      ['data', mono(toHex(e.data))],
    ]),
  );
}

