/**
 * A block: its header, its commit certificate checked here against the
 * validator set of its epoch (followed from the genesis set), and its
 * transactions with their receipts.
 *
 * @module
 */

import { badge, errorText, fields, fill, h, section } from '../dom.js';
import { accountLink, amount, blockLink, mono, txLink, utcTime } from '../format.js';
import {
  type Address,
  Hash,
  RpcCodes,
  RpcError,
  type ReceiptInfo,
  type SignedTransaction,
  recoverSender,
  txHash,
} from '../sdk.js';
import { certificateBadge } from '../verify.js';
import { type Scope, ViewError, mapLimit } from '../view.js';
import { payloadSummary } from './tx.js';

/** Receipts read per block page; later transactions show no status. */
const RECEIPTS_MAX = 200;
/** Transactions listed; a larger block shows a note instead of the rest. */
const TXS_SHOWN_MAX = 500;

/** The block id in a route: a height or a block hash. */
export function parseBlockId(arg: string): bigint | Hash {
  if (/^[0-9]{1,19}$/.test(arg)) return BigInt(arg);
  if (/^0x[0-9a-fA-F]{64}$/.test(arg)) return Hash.parse(arg.toLowerCase());
  throw new ViewError(`"${arg}" is not a block height or a block hash (0x and 64 hex digits)`);
}

export async function blockView(scope: Scope, arg: string): Promise<void> {
  const { ctx, root } = scope;
  const id = parseBlockId(arg);
  if (id === 0n) throw new ViewError('Height 0 is the genesis state, which has no block.');
  let info;
  try {
    info = await ctx.rpc.getBlock(id);
  } catch (e) {
    if (e instanceof RpcError && (e.code === RpcCodes.NOT_FOUND || e.code === RpcCodes.HEIGHT_UNAVAILABLE)) {
      throw new ViewError(`Block ${arg} not found: ${e.message}`);
    }
    throw e;
  }
  if (!scope.alive()) return;
  const header = info.block.header;
  const height = header.height;
  const cert = certificateBadge(ctx, info);
  const txs = info.block.txs;

  const txRows = h('tbody');
  fill(
    root,
    h(
      'h1',
      null,
      `Block ${height}`,
      h(
        'span',
        { class: 'nav' },
        height > 1n ? h('a', { href: `#/block/${height - 1n}` }, '← previous') : null,
        h('a', { href: `#/block/${height + 1n}` }, 'next →'),
      ),
    ),
    section(
      'Header',
      fields([
        ['hash', mono(info.hash.toString())],
        ['certificate', cert.el],
        ['height', height.toString()],
        ['parent', height > 1n ? blockLink(header.parentHash, false) : mono(header.parentHash.toString())],
        ['time', utcTime(header.timestampMs)],
        ['proposer', accountLink(header.proposer, false)],
        ['epoch', header.epoch.toString()],
        ['view', header.view.toString()],
        ['transactions', txs.length.toString()],
        ['tx root', mono(header.txRoot.toString())],
        ['state root', mono(header.stateRoot.toString())],
        ['receipts root', mono(header.receiptsRoot.toString())],
        ['next validators hash', mono(header.nextValidatorsHash.toString())],
        ['certificate signers', signersText(info.certificate.signatures.map((s) => s.validator))],
        ['certificate view', info.certificate.view.toString()],
      ]),
    ),
    section(
      `Transactions (${txs.length})`,
      txs.length === 0
        ? h('p', { class: 'muted' }, 'No transactions in this block.')
        : h(
            'table',
            { class: 'list', id: 'txs' },
            h(
              'thead',
              null,
              h('tr', null, h('th', null, '#'), h('th', null, 'hash'), h('th', null, 'from'), h('th', null, 'kind'), h('th', null, 'to'), h('th', null, 'status'), h('th', { class: 'num' }, 'gas used')),
            ),
            txRows,
          ),
      txs.length > TXS_SHOWN_MAX ? h('p', { class: 'muted' }, `The first ${TXS_SHOWN_MAX} of ${txs.length} transactions are listed.`) : null,
    ),
  );

  const shown = txs.slice(0, TXS_SHOWN_MAX);
  const statusCells = shown.map(() => h('td', null, h('span', { class: 'muted' }, '…')));
  const gasCells = shown.map(() => h('td', { class: 'num' }));
  const hashes = shown.map((tx, i) => {
    const hash = txHash(tx);
    txRows.append(
      h(
        'tr',
        null,
        h('td', { class: 'num' }, String(i)),
        h('td', null, txLink(hash)),
        h('td', null, senderCell(tx, header.chainId)),
        h('td', null, tx.tx.payload.kind),
        h('td', null, payloadSummary(tx, true)),
        statusCells[i],
        gasCells[i],
      ),
    );
    return hash;
  });

  const receipts = mapLimit(hashes, 6, async (hash, i): Promise<void> => {
    if (i >= RECEIPTS_MAX) {
      fill(statusCells[i]!, '');
      return;
    }
    let r: ReceiptInfo;
    try {
      r = await ctx.rpc.getReceipt(hash);
    } catch (e) {
      fill(statusCells[i]!, badge('bad', `no receipt: ${errorText(e)}`));
      return;
    }
    fill(statusCells[i]!, statusBadge(r.receipt.status));
    fill(gasCells[i]!, amount(r.receipt.gasUsed));
  });
  await Promise.all([cert.done, receipts]);
}

function senderCell(tx: SignedTransaction, chainId: bigint): HTMLElement {
  let from: Address;
  try {
    from = recoverSender(tx, chainId);
  } catch (e) {
    return h('span', { class: 'muted' }, `(${errorText(e)})`);
  }
  return accountLink(from);
}

function signersText(indexes: readonly number[]): string {
  return indexes.length === 0 ? 'none' : `validators ${indexes.join(', ')}`;
}

/** A receipt status as a badge. */
export function statusBadge(status: string): HTMLElement {
  return badge(status === 'success' ? 'ok' : 'bad', status.replace(/_/g, ' '));
}

