// The block explorer in a real browser: Debian's Chromium, headless, driven
// by puppeteer-core (which downloads no browser), against a devnet node that
// serves the explorer at /explorer/.
//
// From sdk/ts, after `npm run build`:
//
//   STELE_DEVNET_RPC=http://127.0.0.1:8545 \
//   STELE_DEVNET_KEY=$(stele keys export dev0 --private) \
//   STELE_DEVNET_TOKEN=0x… \
//   node explorer/test/browser.mjs
//
// STELE_DEVNET_KEY is dev0's secret key (dev0 holds the example token's
// supply, as `stele devnet --deploy-examples` deploys it), STELE_DEVNET_TOKEN
// the token's address. Optional: STELE_EXPLORER_URL (default
// $STELE_DEVNET_RPC/explorer/), STELE_SCREENSHOTS_DIR (default a temp
// folder), STELE_CHROMIUM (default /usr/bin/chromium). Without the first
// three it prints a skip line and exits 0.
//
// It sends a token transfer signed here, then visits the home page (a live
// block must arrive over WebSocket), the transfer's block (its certificate
// verified), the transaction (the Transfer event decoded), dev0's account
// (its balance verified), the token (a view called from its form, a
// verified storage read of a balance), the search box, and an unknown
// transaction (a clear "not found"), with a screenshot of each main page. Any console or page
// error fails the run. Success prints one line; failure a reason and exit 1.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { Address, Contract, RpcClient, SecretKey } from '../../dist/index.js';

const RUN_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 45_000;
const CLOSE_TIMEOUT_MS = 10_000;
const AMOUNT = 1234n;

const rpcUrl = process.env.STELE_DEVNET_RPC?.replace(/\/+$/, '');
const keyHex = process.env.STELE_DEVNET_KEY;
const tokenHex = process.env.STELE_DEVNET_TOKEN;
if (!rpcUrl || !keyHex || !tokenHex) {
  console.log('explorer browser test: skipped (set STELE_DEVNET_RPC, STELE_DEVNET_KEY and STELE_DEVNET_TOKEN)');
  process.exit(0);
}
const explorerUrl = process.env.STELE_EXPLORER_URL || `${rpcUrl}/explorer/`;
const chromium = process.env.STELE_CHROMIUM || '/usr/bin/chromium';
const shotsDir = process.env.STELE_SCREENSHOTS_DIR || mkdtempSync(join(tmpdir(), 'stele-explorer-shots-'));
mkdirSync(shotsDir, { recursive: true });

class Failure extends Error {}
const fail = (msg) => {
  throw new Failure(msg);
};
const check = (cond, msg) => {
  if (!cond) fail(msg);
};

let browser = null;
let profile = null;
const browserErrors = [];

async function closeBrowser() {
  if (browser !== null) {
    const b = browser;
    browser = null;
    const proc = b.process();
    const closed = b.close().catch(() => {});
    const timedOut = new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS, 'timeout'));
    if ((await Promise.race([closed, timedOut])) === 'timeout') proc?.kill('SIGKILL');
  }
  if (profile !== null) {
    rmSync(profile, { recursive: true, force: true });
    profile = null;
  }
}

// A bound on the whole run, whatever hangs.
const watchdog = setTimeout(() => {
  console.error(`explorer browser test: FAILED: no result within ${RUN_TIMEOUT_MS / 1000} s`);
  const proc = browser?.process();
  proc?.kill('SIGKILL');
  if (profile !== null) rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}, RUN_TIMEOUT_MS);

/** Sets the route and waits until the view is rendered; returns its state. */
async function visit(page, route, want = 'ready') {
  await page.evaluate((r) => {
    location.hash = r;
  }, route);
  const handle = await page
    .waitForFunction(
      (r) => {
        const m = document.getElementById('view');
        return m !== null && m.dataset.route === r && m.dataset.state !== 'loading' ? m.dataset.state : false;
      },
      { timeout: STEP_TIMEOUT_MS },
      route,
    )
    .catch(() => fail(`${route}: the view did not finish rendering within ${STEP_TIMEOUT_MS / 1000} s`));
  const state = await handle.jsonValue();
  if (state !== want) {
    const text = await page.$eval('#view', (m) => m.innerText.slice(0, 500));
    fail(`${route}: the view is "${state}", expected "${want}": ${text}`);
  }
}

const text = (page, selector) =>
  page.$eval(selector, (el) => el.textContent ?? '').catch(() => fail(`no ${selector} on the page`));

async function waitFor(page, fn, what, ...args) {
  await page.waitForFunction(fn, { timeout: STEP_TIMEOUT_MS }, ...args).catch(() => fail(`${what} (waited ${STEP_TIMEOUT_MS / 1000} s)`));
}

async function shot(page, name) {
  await page.screenshot({ path: join(shotsDir, name), fullPage: true });
}

async function main() {
  // A transfer of the token, signed here, committed before the browser starts.
  const rpc = new RpcClient(rpcUrl, { timeoutMs: 30_000 });
  const key = SecretKey.parse(keyHex);
  const dev0 = key.address();
  const token = Address.parse(tokenHex);
  const recipient = SecretKey.generate().address();
  const contract = await Contract.at(rpc, token, { signer: key });
  const sent = await contract.call.transfer(recipient, AMOUNT);
  const txHashText = sent.hash.toString();
  const height = sent.receipt.blockHeight;
  const dev0Tokens = String(await contract.view.balance_of(dev0));

  profile = mkdtempSync(join(tmpdir(), 'stele-explorer-chromium-'));
  browser = await puppeteer.launch({
    executablePath: chromium,
    ignoreDefaultArgs: true,
    pipe: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      `--user-data-dir=${profile}`,
      '--window-size=1280,900',
      'about:blank',
    ],
    defaultViewport: { width: 1280, height: 900 },
    protocolTimeout: STEP_TIMEOUT_MS,
    timeout: 30_000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (m) => {
    if (m.type() === 'error') browserErrors.push(`console: ${m.text()} ${m.location()?.url ?? ''}`.trim());
  });
  page.on('pageerror', (e) => browserErrors.push(`page error: ${e.message ?? e}`));
  page.on('requestfailed', (r) => {
    // Leaving a page aborts its WebSocket and pending reads: not an error.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') browserErrors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });

  // Home: the latest blocks, and a live one arriving over WebSocket.
  const res = await page.goto(explorerUrl, { waitUntil: 'load' });
  check(res !== null && res.ok(), `GET ${explorerUrl}: HTTP ${res?.status()}`);
  await visit(page, '#/');
  const top = BigInt(await page.$eval('#blocks tr', (tr) => tr.dataset.height ?? '0').catch(() => fail('home: the blocks table is empty')));
  await waitFor(
    page,
    (h) => {
      const tr = document.querySelector('#blocks tr');
      return tr !== null && BigInt(tr.dataset.height ?? '0') > BigInt(h) && Number(document.getElementById('blocks').dataset.live) > 0;
    },
    `home: no new block arrived over WebSocket after height ${top}`,
    top.toString(),
  );
  const rows = await page.$$eval('#blocks tr', (trs) => trs.length);
  check(rows >= 2, `home: ${rows} rows in the blocks table`);
  check((await text(page, '#footer')).includes('trust anchor: genesis set 0x'), 'home: the footer shows no trust anchor');
  await shot(page, 'explorer-home.png');

  // The transfer's block: its certificate checked in the browser.
  await visit(page, `#/block/${height}`);
  const cert = await text(page, '[data-verify]');
  check(/✓ certified by \d+ of \d+ validators \(power \d+\/\d+\)/.test(cert), `block ${height}: certificate badge says "${cert}"`);
  check((await text(page, '#txs')).length > 0, `block ${height}: no transactions table`);
  const listed = await page.$$eval('#txs a[title]', (as) => as.map((a) => a.title));
  check(listed.includes(txHashText), `block ${height}: the transfer ${txHashText} is not listed`);
  const status = await page.$$eval('#txs tbody tr', (trs, h) => trs.find((tr) => tr.querySelector(`a[title="${h}"]`))?.cells[5]?.textContent, txHashText);
  check(status === 'success', `block ${height}: the transfer's status is "${status}"`);
  await shot(page, 'explorer-block.png');

  // The transaction: the Transfer event decoded by the token's ABI.
  await visit(page, `#/tx/${txHashText}`);
  const event = await page
    .$eval('li.event[data-event="Transfer"]', (li) =>
      Object.fromEntries([...li.querySelectorAll('tr[data-field]')].map((tr) => [tr.dataset.field, tr.querySelector('td').textContent.trim()])),
    )
    .catch(() => fail(`tx ${txHashText}: no decoded Transfer event`));
  check(event.from === dev0.toChecksum(), `tx: Transfer.from is ${event.from}, expected ${dev0.toChecksum()}`);
  check(event.to === recipient.toChecksum(), `tx: Transfer.to is ${event.to}, expected ${recipient.toChecksum()}`);
  check(event.amount === AMOUNT.toString(), `tx: Transfer.amount is ${event.amount}, expected ${AMOUNT}`);
  check((await text(page, '#receipt')).includes('success'), 'tx: the receipt does not say success');
  // The call trace the node replayed: the token's transfer frame, and the
  // two balances it wrote.
  const trace = await page
    .$eval('.trace', (el) => ({ text: el.textContent ?? '', frames: el.querySelectorAll('.frame').length }))
    .catch(() => fail(`tx ${txHashText}: no replayed call trace`));
  check(trace.frames >= 1 && trace.text.includes('transfer') && trace.text.includes('success'), `tx: the trace reads "${trace.text}"`);
  const written = await page.$$eval('ul.writes li', (lis) => lis.length).catch(() => 0);
  check(written === 2, `tx: the trace lists ${written} storage writes, expected the two balances`);
  await shot(page, 'explorer-tx.png');

  // dev0: its balance verified against the genesis set.
  await visit(page, `#/account/${dev0.toChecksum()}`);
  const verified = await page.$eval('#verified-account', (el) => ({ state: el.dataset.verify, text: el.textContent ?? '' }));
  check(verified.state === 'ok' && /✓ verified by \d+ of \d+ validators at height \d+/.test(verified.text), `account: not verified: ${verified.text}`);
  const balance = await text(page, '#verified-balance');
  check(/^[0-9,]+$/.test(balance) && balance !== '0', `account: verified balance is "${balance}"`);
  await shot(page, 'explorer-account.png');

  // The token: a view called from its form, and a verified storage read.
  await visit(page, `#/account/${token.toChecksum()}`);
  await page.type('form[data-method="balance_of"] input[name="who"]', recipient.toChecksum());
  await page.click('form[data-method="balance_of"] button[type="submit"]');
  await waitFor(
    page,
    () => ['ready', 'error'].includes(document.querySelector('form[data-method="balance_of"] .result')?.dataset.state ?? ''),
    'contract: balance_of gave no result',
  );
  const viewed = await text(page, 'form[data-method="balance_of"] .result');
  check(viewed.replace(/"/g, '').trim() === AMOUNT.toString(), `contract: balance_of(recipient) shows "${viewed}", expected ${AMOUNT}`);
  await page.click('form[data-method="name"] button[type="submit"]');
  await waitFor(
    page,
    () => document.querySelector('form[data-method="name"] .result')?.dataset.state === 'ready',
    'contract: name() gave no result',
  );

  check((await page.$eval('#storage-form select[name="mode"]', (s) => s.value)) === 'map entry', 'contract: the storage form is not in map mode');
  await page.type('#storage-form input[name="key"]', dev0.toChecksum());
  await page.click('#storage-form button[type="submit"]');
  await waitFor(
    page,
    () => ['ready', 'error'].includes(document.getElementById('storage-result')?.dataset.state ?? ''),
    'contract: the storage read gave no result',
  );
  const read = await page.$eval('#storage-result', (el) => ({ verify: el.dataset.verify, text: el.textContent ?? '' }));
  check(read.verify === 'ok' && read.text.includes('✓ verified by'), `contract: storage read not verified: ${read.text}`);
  const value = await text(page, '#storage-result [data-value]');
  check(value === dev0Tokens, `contract: verified balances[dev0] is ${value}, balance_of says ${dev0Tokens}`);
  await shot(page, 'explorer-contract.png');

  // The search box: a transaction hash leads to the transaction.
  await page.type('#search-input', txHashText);
  await page.click('#search button[type="submit"]');
  await waitFor(
    page,
    (r) => {
      const m = document.getElementById('view');
      return m?.dataset.route === r && m.dataset.state === 'ready';
    },
    `search: ${txHashText} did not lead to its transaction`,
    `#/tx/${txHashText}`,
  );

  // An unknown transaction: a clear error, not a blank page.
  const unknown = `0x${'11'.repeat(32)}`;
  await visit(page, `#/tx/${unknown}`, 'error');
  const msg = await text(page, '#view .error');
  check(msg.includes('not found'), `unknown tx: the error says "${msg}"`);

  check(browserErrors.length === 0, `browser errors:\n  ${browserErrors.join('\n  ')}`);
  return { height, tx: txHashText };
}

let code = 0;
try {
  const r = await main();
  console.log(`explorer browser test: ok (transfer ${r.tx.slice(0, 10)}… in block ${r.height}; screenshots in ${shotsDir})`);
} catch (e) {
  code = 1;
  const why = e instanceof Failure ? e.message : (e?.stack ?? String(e));
  console.error(`explorer browser test: FAILED: ${why}`);
  if (browserErrors.length > 0 && !(e instanceof Failure && why.startsWith('browser errors'))) {
    console.error(`browser errors:\n  ${browserErrors.join('\n  ')}`);
  }
} finally {
  await closeBrowser();
  clearTimeout(watchdog);
}
process.exit(code);
