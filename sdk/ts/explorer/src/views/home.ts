/**
 * Home: the node's status and the latest blocks, updated live over a
 * WebSocket block subscription (which fills gaps after reconnects).
 *
 * @module
 */

import { badge, errorBox, errorText, fill, h, section } from '../dom.js';
import { accountLink, amount, blockLink, mono, short, utcTime } from '../format.js';
import type { NewBlock, StatusInfo } from '../sdk.js';
import type { Scope } from '../view.js';

/** Rows in the latest-blocks table. */
const BLOCKS_SHOWN = 20;
/** The status is read again at most this often as blocks arrive. */
const STATUS_REFRESH_MS = 3_000;

export async function homeView(scope: Scope): Promise<void> {
  const { ctx, root } = scope;
  const [status, validators] = await Promise.all([ctx.rpc.getStatus(), ctx.rpc.getValidators()]);
  if (!scope.alive()) return;

  const statusBox = h('div', { id: 'status' });
  const showStatus = (s: StatusInfo, epoch: bigint, validatorCount: number): void => {
    fill(
      statusBox,
      h(
        'div',
        { class: 'stats' },
        stat('chain id', s.chainId.toString()),
        stat('height', s.height.toString(), 'stat-height'),
        stat('epoch', epoch.toString()),
        stat('validators', String(validatorCount)),
        stat('phase', s.syncing ? `${s.phase} (syncing)` : s.phase),
        stat('peers', s.peersConnected.toString()),
        stat('mempool', `${amount(s.mempoolTxs)} txs`),
      ),
    );
  };
  showStatus(status, validators.epoch, validators.validators.length);

  const rows = h('tbody', { id: 'blocks', 'data-live': '0' });
  const tableNote = h('p', { class: 'muted' }, 'loading blocks…');
  const liveBadge = h('span', { id: 'live' }, badge('wait', 'connecting'));
  fill(
    root,
    h('h1', null, `Chain ${status.chainId}`, mono(ctx.url)),
    section('Node status', statusBox),
    section(
      'Latest blocks',
      h('p', { class: 'section-note' }, liveBadge),
      h(
        'table',
        { class: 'list' },
        h('thead', null, h('tr', null, h('th', null, 'height'), h('th', null, 'hash'), h('th', { class: 'num' }, 'txs'), h('th', { class: 'num' }, 'gas used'), h('th', null, 'time'), h('th', null, 'proposer'))),
        rows,
      ),
      tableNote,
    ),
  );

  const recent = status.height >= BigInt(BLOCKS_SHOWN) ? status.height - BigInt(BLOCKS_SHOWN) + 1n : 1n;
  // A node that prunes blocks cannot give those below blocksFrom.
  const first = recent > status.blocksFrom ? recent : status.blocksFrom > 0n ? status.blocksFrom : 1n;
  let resolveReady: () => void = () => {};
  const ready = new Promise<void>((r) => (resolveReady = r));
  if (status.height === 0n) {
    tableNote.textContent = 'no blocks yet';
    resolveReady();
  }

  let live = 0;
  let lastStatus = Date.now();
  let refreshing = false;
  const refreshStatus = (): void => {
    if (refreshing || Date.now() - lastStatus < STATUS_REFRESH_MS) return;
    refreshing = true;
    lastStatus = Date.now();
    Promise.all([ctx.rpc.getStatus(), ctx.rpc.getValidators()])
      .then(([s, v]) => {
        if (scope.alive()) showStatus(s, v.epoch, v.validators.length);
      })
      .catch(() => {
        // The table goes on; the status shows its last answer.
      })
      .finally(() => (refreshing = false));
  };

  const onBlock = (b: NewBlock): void => {
    if (!scope.alive()) return;
    rows.prepend(blockRow(b));
    while (rows.rows.length > BLOCKS_SHOWN) rows.lastElementChild?.remove();
    const heightStat = statusBox.querySelector('.stat-height .stat-value');
    if (heightStat !== null && BigInt(heightStat.textContent ?? '0') < b.header.height) {
      heightStat.textContent = b.header.height.toString();
    }
    if (b.header.height >= status.height) {
      tableNote.textContent = '';
      if (b.header.height > status.height) {
        live++;
        rows.dataset['live'] = String(live);
        refreshStatus();
      }
      resolveReady();
    }
  };

  const failed = (e: unknown): void => {
    if (!scope.alive()) return;
    fill(liveBadge, badge('bad', 'not following'));
    tableNote.replaceWith(errorBox(`The block subscription failed: ${errorText(e)}`));
    resolveReady();
  };

  try {
    const sub = await ctx.ws().subscribeNewBlocks({ fromHeight: first });
    if (!scope.alive()) {
      await sub.unsubscribe();
      return;
    }
    scope.onLeave(() => void sub.unsubscribe().catch(() => {}));
    fill(liveBadge, badge('ok', 'live over WebSocket'));
    sub.forEach(onBlock).catch(failed);
  } catch (e) {
    failed(e);
  }
  await ready;
}

function stat(label: string, value: string, cls?: string): HTMLElement {
  return h('div', { class: `stat ${cls ?? ''}` }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

function blockRow(b: NewBlock): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-height': b.header.height.toString() },
    h('td', null, blockLink(b.header.height)),
    h('td', null, h('a', { href: `#/block/${b.hash.toString()}`, class: 'mono', title: b.hash.toString() }, short(b.hash.toString()))),
    h('td', { class: 'num' }, b.txCount.toString()),
    h('td', { class: 'num' }, amount(b.gasUsed)),
    h('td', null, utcTime(b.header.timestampMs)),
    h('td', null, accountLink(b.header.proposer)),
  );
}

