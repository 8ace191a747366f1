/**
 * The Stele block explorer: a static page served by a node at
 * `/explorer/`, talking to that node's RPC (or the one `?rpc=` names) with
 * `@stele/client`. Routes live in `location.hash`:
 *
 * - `#/` the node's status and the latest blocks, live;
 * - `#/block/<height or hash>`, with its certificate checked here;
 * - `#/tx/<hash>`, with its events decoded by ABI;
 * - `#/account/<address>` (alias `#/contract/<address>`), verified, and the
 *   contract's ABI, view forms and verified storage reads.
 *
 * When a view has finished rendering, `<main id="view">` gets
 * `data-state="ready"` (or `"error"`, with the message shown).
 *
 * @module
 */

import { Context, checkRpcUrl, rpcUrlFromLocation } from './context.js';
import { badge, errorBox, errorText, fill, h } from './dom.js';
import { mono } from './format.js';
import { Hash, RpcCodes, RpcError, RpcTransportError, type ConnectionEvent } from './sdk.js';
import type { Scope, View } from './view.js';
import { ViewError } from './view.js';
import { accountView } from './views/account.js';
import { blockView } from './views/block.js';
import { homeView } from './views/home.js';
import { txView } from './views/tx.js';

const routes: Readonly<Record<string, View>> = {
  block: blockView,
  tx: txView,
  account: accountView,
  contract: accountView,
};

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el as T;
}

const main = byId<HTMLElement>('view');
const notice = byId<HTMLElement>('notice');
const conn = byId<HTMLElement>('conn');
const footer = byId<HTMLElement>('footer');

const { url, error: urlError } = rpcUrlFromLocation();
if (urlError !== null) fill(notice, errorBox(`${urlError}; using ${url} instead.`));

const onConnection = (e: ConnectionEvent): void => {
  if (e.type === 'open') fill(conn, badge('ok', 'ws connected'));
  else if (e.type === 'close') fill(conn, badge(e.reconnecting ? 'warn' : 'wait', e.reconnecting ? 'ws reconnecting' : 'ws closed'));
  else fill(conn, badge('warn', `ws retry ${e.attempt}`));
};
const ctx = new Context(url, onConnection);

/** A failure as the user should read it. */
function describe(e: unknown): string {
  if (e instanceof ViewError) return e.message;
  if (e instanceof RpcTransportError) {
    return `Cannot get an answer from the node at ${ctx.url}: ${e.message}. Is the node running, and does it accept requests from this page?`;
  }
  if (e instanceof RpcError) return `The node answered with error ${e.code}: ${e.message}`;
  return `Error: ${errorText(e)}`;
}

// ---------------------------------------------------------------------------
// Routing

let generation = 0;
let leaving: (() => void)[] = [];

function route(): { view: View; name: string; arg: string } {
  const path = location.hash.replace(/^#\/?/, '');
  const slash = path.indexOf('/');
  const name = slash < 0 ? path : path.slice(0, slash);
  const arg = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
  if (name === '') return { view: homeView, name: 'home', arg };
  const view = routes[name];
  if (view === undefined || arg === '') {
    return {
      view: () => Promise.reject(new ViewError(`No page at #/${path}: try #/block/<height>, #/tx/<hash> or #/account/<address>.`)),
      name: 'unknown',
      arg,
    };
  }
  return { view, name, arg };
}

function render(): void {
  for (const fn of leaving) {
    try {
      fn();
    } catch {
      // A failing cleanup must not keep the next view from showing.
    }
  }
  leaving = [];
  const mine = ++generation;
  const { view, name, arg } = route();
  main.dataset['state'] = 'loading';
  main.dataset['view'] = name;
  main.dataset['route'] = location.hash;
  fill(main, h('p', { class: 'muted' }, 'Loading…'));
  window.scrollTo(0, 0);
  const scope: Scope = {
    root: main,
    ctx,
    alive: () => mine === generation,
    onLeave: (fn) => {
      if (mine === generation) leaving.push(fn);
      else fn();
    },
    reload: () => {
      if (mine === generation) render();
    },
  };
  view(scope, arg).then(
    () => {
      if (mine === generation) main.dataset['state'] = 'ready';
    },
    (e: unknown) => {
      if (mine !== generation) return;
      fill(main, h('h1', null, 'Not shown'), errorBox(describe(e)), h('p', null, h('a', { href: '#/' }, '← back to the latest blocks')));
      main.dataset['state'] = 'error';
    },
  );
}

window.addEventListener('hashchange', render);

// ---------------------------------------------------------------------------
// Header: search and the RPC URL

const searchForm = byId<HTMLFormElement>('search');
const searchInput = byId<HTMLInputElement>('search-input');
const searchNote = byId<HTMLElement>('search-note');

async function search(text: string): Promise<string | null> {
  const q = text.trim();
  if (/^[0-9]{1,19}$/.test(q)) return `#/block/${q}`;
  if (/^0x[0-9a-fA-F]{40}$/.test(q)) return `#/account/${q}`;
  if (/^0x[0-9a-fA-F]{64}$/.test(q)) {
    // A transaction hash, else a block hash.
    const hash = Hash.parse(q.toLowerCase());
    try {
      await ctx.rpc.getTransaction(hash);
      return `#/tx/${hash.toString()}`;
    } catch (e) {
      if (!(e instanceof RpcError && e.code === RpcCodes.NOT_FOUND)) throw e;
    }
    try {
      await ctx.rpc.getBlock(hash);
      return `#/block/${hash.toString()}`;
    } catch (e) {
      if (!(e instanceof RpcError && e.code === RpcCodes.NOT_FOUND)) throw e;
    }
    return `#/tx/${hash.toString()}`; // shows "not found"
  }
  return null;
}

searchForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  searchNote.textContent = '';
  search(searchInput.value).then(
    (target) => {
      if (target === null) {
        searchNote.textContent = 'Enter a block height, a transaction or block hash (0x + 64 hex), or an address (0x + 40 hex).';
      } else if (location.hash === target) {
        render();
      } else {
        location.hash = target;
      }
    },
    (e: unknown) => {
      searchNote.textContent = describe(e);
    },
  );
});

const rpcForm = byId<HTMLFormElement>('rpc-form');
const rpcInput = byId<HTMLInputElement>('rpc-input');
rpcInput.value = ctx.url;
rpcForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const next = rpcInput.value.trim().replace(/\/+$/, '');
  const bad = checkRpcUrl(next);
  if (bad !== null) {
    fill(notice, errorBox(bad));
    return;
  }
  const params = new URLSearchParams(location.search);
  if (next === location.origin) params.delete('rpc');
  else params.set('rpc', next);
  const query = params.toString();
  // A new node: reload, so every cache and the trust anchor start afresh.
  location.assign(`${location.pathname}${query === '' ? '' : `?${query}`}${location.hash}`);
});

// ---------------------------------------------------------------------------
// Footer: the trust anchor

fill(footer, 'trust anchor: reading the genesis validator set…');
ctx.genesis().then(
  (g) =>
    fill(
      footer,
      'trust anchor: genesis set ',
      mono(g.validators.hash().toString()),
      ` (${g.validators.length} validators, chain ${g.chainId}) from `,
      mono(ctx.url),
      h('span', { class: 'muted' }, ' — taken from the node on first use; every ✓ is checked against it'),
    ),
  (e: unknown) => fill(footer, h('span', { class: 'error-text' }, `trust anchor: none (${describe(e)})`)),
);

render();
