/**
 * A committed transaction's call trace, from the node's
 * `trace_transaction`: the transaction run again on the state its block
 * started from (the node checks the replay's receipt is the stored one).
 * Each frame shows its caller, callee, method, gas used of its budget and
 * status; a failed frame's output is decoded by its contract's ABI, and
 * the frame's debug log lines sit between its calls where they were
 * written (shown as text, never as markup). Then
 * the storage keys the transaction wrote. A node that no longer keeps the
 * parent state (or cannot run the transaction again) says why, and the
 * page shows that instead.
 *
 * @module
 */

import type { Context } from '../context.js';
import { errorText, h, section } from '../dom.js';
import { accountLink, amount, mono } from '../format.js';
import {
  AbiError,
  type Hash,
  type TraceFrame,
  type TransactionTrace,
  revertToJson,
  stringifyJson,
  toHex,
  traceSteps,
} from '../sdk.js';
import { statusBadge } from './block.js';

/** Frames shown, depth-first; the rest are counted. */
const FRAMES_SHOWN_MAX = 500;

/** The trace section for the committed transaction `hash`. */
export async function traceSection(ctx: Context, hash: Hash): Promise<HTMLElement> {
  const title = 'Call trace (replayed)';
  let t: TransactionTrace;
  try {
    t = await ctx.rpc.traceTransaction(hash);
  } catch (e) {
    return section(title, h('p', { class: 'muted' }, `Not available from this node: ${errorText(e)}`));
  }
  const top = t.trace;
  const writes = t.storageWrites;
  const omitted = t.traceOmitted;
  const rows: HTMLElement[] = [];
  let hidden = 0;
  const walk = async (f: TraceFrame, depth: number): Promise<void> => {
    if (rows.length >= FRAMES_SHOWN_MAX) {
      hidden++;
    } else {
      rows.push(await frameRow(ctx, f, depth));
    }
    for (const step of traceSteps(f)) {
      if ('call' in step) {
        await walk(step.call, depth + 1);
      } else if (rows.length < FRAMES_SHOWN_MAX) {
        rows.push(h('div', { class: `log depth-${Math.min(depth + 1, 8)}` }, h('span', { class: 'muted' }, 'log '), step.log));
      }
    }
  };
  if (top !== null) await walk(top, 0);
  const body: (HTMLElement | null)[] = [
    top === null
      ? h('p', { class: 'muted' }, omitted ? 'The trace is over the node\'s response limit.' : 'No contract call.')
      : h('div', { class: 'trace' }, ...rows),
    hidden > 0 ? h('p', { class: 'muted' }, `${hidden} more frames not shown.`) : null,
    h('h3', null, `Storage written (${writes.length})`),
    writes.length === 0
      ? h('p', { class: 'muted' }, 'No storage key written.')
      : h(
          'ul',
          { class: 'writes' },
          ...writes.map((w) =>
            h(
              'li',
              null,
              accountLink(w.contract),
              ' ',
              mono(toHex(w.key)),
              ' ',
              w.valueHash === null ? h('span', { class: 'muted' }, 'deleted') : h('span', { class: 'muted' }, `value hash ${w.valueHash.toString().slice(0, 18)}…`),
            ),
          ),
        ),
  ];
  return section(title, ...body.filter((x): x is HTMLElement => x !== null));
}

async function frameRow(ctx: Context, f: TraceFrame, depth: number): Promise<HTMLElement> {
  let why: string | null = null;
  if (f.status !== 'success') {
    const abi = await ctx.abi(f.contract).catch(() => null);
    try {
      why = abi === null ? null : stringifyJson(revertToJson(abi.decodeRevert(f.method, f.output)));
    } catch (e) {
      if (!(e instanceof AbiError)) throw e;
    }
    why ??= new TextDecoder().decode(f.output.length > 0 && f.output[0] === 0 ? f.output.subarray(1) : f.output);
  }
  return h(
    'div',
    { class: `frame depth-${Math.min(depth, 8)}` },
    accountLink(f.caller),
    ' → ',
    accountLink(f.contract),
    '.',
    h('code', null, f.method),
    ' ',
    h('span', { class: 'muted' }, `gas ${amount(f.gasUsed)} of ${amount(f.gasBudget)}`),
    ' ',
    statusBadge(f.status),
    why === null ? null : h('span', { class: 'revert' }, ` ${why}`),
  );
}
