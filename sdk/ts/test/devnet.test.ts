// Against a real devnet: runs only when STELE_DEVNET_RPC (the http:// URL
// of a node's RPC) and STELE_DEVNET_KEY (the hex secret key of a funded
// account) are set; sdk/ts/scripts/devnet-test.sh starts a devnet with this
// repository's `stele` CLI, sets them and runs this file. With
// STELE_DEVNET_RESTART (a shell command that stops the devnet and starts it
// again on the same ports and chain), a subscription is also followed across
// the restart.

import assert from 'node:assert/strict';
import { exec } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { WebSocket } from 'ws';

import {
  Contract,
  LightClientError,
  RpcClient,
  SecretKey,
  asObject,
  asU64,
  encodeAccount,
  parseJson,
  toHex,
  validatorSetFromJson,
  verifiedAccount,
  verifiedStorage,
  type JsonObject,
  type LightRpc,
  blockHeaderHash,
  encodeSignedTransaction,
  recoverSender,
  signTransaction,
  txHash,
  verifyCertificate,
  type Transaction,
} from '@stele/client';

// The WebSocket client is not exported from the package index yet; load it
// from the build beside this test (dist/ws.js), with its declared types.
import type * as Ws from '../dist/ws.js';

const { WsClient } = (await import(new URL('../ws.js', import.meta.url).href)) as typeof Ws;

const RPC = process.env['STELE_DEVNET_RPC'] ?? '';
const KEY = process.env['STELE_DEVNET_KEY'] ?? '';
const RESTART = process.env['STELE_DEVNET_RESTART'] ?? '';

const skip =
  RPC === '' || KEY === ''
    ? 'no devnet: set STELE_DEVNET_RPC (a node\'s http:// RPC URL) and STELE_DEVNET_KEY (a funded account\'s hex secret key), or run scripts/devnet-test.sh'
    : false;

/**
 * Reads a block subscription, checking that heights follow one another and
 * link by parent hash. A read that times out leaves its `next()` pending
 * for the following read, so no block is lost to a timeout.
 */
class BlockReader {
  readonly seen: Ws.NewBlock[] = [];
  readonly #sub: Ws.Subscription<Ws.NewBlock>;
  #pending: Promise<IteratorResult<Ws.NewBlock>> | null = null;

  constructor(sub: Ws.Subscription<Ws.NewBlock>) {
    this.#sub = sub;
  }

  /** Reads until `until` holds for a block, which it returns. */
  async until(until: (b: Ws.NewBlock) => boolean, timeoutMs: number): Promise<Ws.NewBlock> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.#pending ??= this.#sub.next();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
      });
      const r = await Promise.race([this.#pending, timeout]).finally(() => clearTimeout(timer));
      if (r === 'timeout') {
        throw new Error(`no such block within ${timeoutMs} ms (the last: ${this.seen.at(-1)?.header.height})`);
      }
      this.#pending = null;
      if (r.done === true) throw new Error('the block subscription ended');
      const b = r.value;
      const prev = this.seen.at(-1);
      if (prev !== undefined) {
        assert.equal(b.header.height, prev.header.height + 1n, 'heights follow one another');
        assert.ok(b.header.parentHash.equals(prev.hash), `block ${b.header.height} links to the one before`);
      }
      assert.ok(b.hash.equals(blockHeaderHash(b.header)), 'the item hash is the header hash');
      this.seen.push(b);
      if (until(b)) return b;
    }
  }
}

test('a real devnet: status, balance, a transfer signed here, its receipt, its block over WebSocket', { skip, timeout: 180_000 }, async (t) => {
  const http = new RpcClient(RPC, { timeoutMs: 30_000 });
  const ws = new WsClient(RPC, { WebSocket, timeoutMs: 30_000, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 } });
  try {
    const key = SecretKey.parse(KEY);
    const sender = key.address();

    const status = await http.getStatus();
    assert.ok(status.height > 0n, 'the devnet has committed blocks');
    assert.equal(status.syncing, false);
    const account = await http.getAccount(sender);
    assert.ok(account.balance > 0n, `${sender.toChecksum()} is funded`);

    // The same reads over WebSocket.
    assert.equal((await ws.getStatus()).chainId, status.chainId);
    assert.equal((await ws.getAccount(sender)).nonce, account.nonce);

    const blocks = await ws.subscribeNewBlocks();
    const reader = new BlockReader(blocks);
    assert.equal(typeof blocks.id, 'number', 'the node gives numeric subscription ids');

    // A transfer to a new account, signed here, its gas limit the intrinsic gas.
    const { active } = await http.getProtocol();
    const to = SecretKey.generate().address();
    const amount = 1_234_567n;
    const draft: Transaction = {
      chainId: status.chainId,
      nonce: account.pendingNonce,
      gasLimit: 0n,
      gasPrice: 1n,
      payload: { kind: 'transfer', to, amount },
    };
    const size = BigInt(encodeSignedTransaction(signTransaction(draft, key)).length);
    const gasLimit = active.txGasBase + active.txGasPerByte * size;
    const signed = signTransaction({ ...draft, gasLimit }, key);
    assert.ok(recoverSender(signed, status.chainId).equals(sender));

    const hash = await http.sendTransaction(signed, sender);
    assert.ok(hash.equals(txHash(signed)));
    const txStatus = await ws.subscribeTxStatus(hash);

    const { receipt, blockHeight, blockHash } = await http.waitForReceipt(hash, 30_000);
    assert.equal(receipt.status, 'success');
    assert.ok(receipt.gasUsed > 0n && receipt.gasUsed <= gasLimit);

    // The block that holds it comes through the subscription, in sequence.
    const block = await reader.until((b) => b.header.height >= blockHeight, 30_000);
    assert.equal(block.header.height, blockHeight);
    assert.ok(block.hash.equals(blockHash));
    assert.ok(block.txCount >= 1n);
    assert.ok(block.gasUsed >= receipt.gasUsed);

    // The same blocks read back over RPC (as after a reconnect, or for a
    // slow consumer) equal the node's notifications, gas included.
    const from = reader.seen[0]!.header.height;
    const replay = await ws.subscribeNewBlocks({ fromHeight: from });
    const replayed = new BlockReader(replay);
    await replayed.until((b) => b.header.height >= blockHeight, 30_000);
    for (const b of replayed.seen) {
      const live = reader.seen.find((x) => x.header.height === b.header.height)!;
      assert.ok(b.hash.equals(live.hash));
      assert.equal(b.txCount, live.txCount);
      assert.equal(b.gasUsed, live.gasUsed);
    }
    assert.ok(replay.stats.filled >= Number(blockHeight - from), JSON.stringify(replay.stats));
    await replay.unsubscribe();

    // The transaction's status ends with its commit and receipt.
    let last: Ws.TxStatus | undefined;
    for await (const s of txStatus) last = s;
    assert.equal(last?.state, 'committed');
    assert.equal(last?.receipt?.blockHeight, blockHeight);

    // The block over WebSocket holds the transaction, and its certificate
    // verifies against the validator set before it.
    const full = await ws.getBlock(blockHeight);
    assert.ok(full.block.txs.some((t) => txHash(t).equals(hash)));
    const { validators } = await ws.getValidators(blockHeight - 1n);
    verifyCertificate(full.certificate, full.block.header, validators);

    // Balances after the commit.
    const after = await http.getAccount(to);
    assert.equal(after.balance, amount);
    const paid = await http.getAccount(sender);
    assert.ok(paid.balance <= account.balance - amount - receipt.gasUsed, 'the sender paid the amount and the gas');

    if (RESTART !== '') {
      // The devnet stops and starts again (its blocks meanwhile queue, up
      // to the client's bound): the subscription reconnects, subscribes
      // again and goes on without a gap or a repeat.
      const before = reader.seen.at(-1)!.header.height;
      await new Promise<void>((resolve, reject) =>
        exec(RESTART, { timeout: 150_000 }, (e, _out, err) =>
          e ? reject(new Error(`${RESTART}: ${e.message}\n${err}`)) : resolve(),
        ),
      );
      const target = (await http.getStatus()).height + 3n;
      await reader.until((b) => b.header.height >= target, 60_000);
      assert.ok(blocks.stats.resubscribed >= 1, JSON.stringify(blocks.stats));
      t.diagnostic(
        `across the restart: blocks ${before} to ${reader.seen.at(-1)!.header.height}, ${JSON.stringify(blocks.stats)}`,
      );
      assert.ok(reader.seen.at(-1)!.header.height > before + 3n);
      // Reads over the same client work again too.
      assert.ok((await ws.getStatus()).height >= target);
    }
    await blocks.unsubscribe();
  } finally {
    ws.close();
  }
});

// The counter built by `stele devnet --deploy-examples` (devnet-test.sh
// passes its path), deployed here.
const COUNTER_WASM = process.env['STELE_DEVNET_COUNTER_WASM'] ?? '';
const GENESIS = process.env['STELE_DEVNET_GENESIS'] ?? '';

test(
  'a contract deployed from JavaScript: call, view, its event over WebSocket, a verified read, forged answers refused',
  {
    skip: skip || (COUNTER_WASM === '' || GENESIS === '' ? 'set STELE_DEVNET_COUNTER_WASM and STELE_DEVNET_GENESIS' : false),
    timeout: 120_000,
  },
  async (t) => {
    const rpc = new RpcClient(RPC, { timeoutMs: 30_000 });
    const ws = new WsClient(RPC, { WebSocket, timeoutMs: 30_000 });
    try {
      const key = SecretKey.parse(KEY);
      const deployed = await Contract.deploy(rpc, readFileSync(COUNTER_WASM), [5, 100], { signer: key });
      const counter = deployed.contract;
      assert.equal(deployed.receipt.receipt.status, 'success');
      assert.equal(await counter.view['get']!(), '5');

      const events = await ws.subscribeEvents({ contract: counter.address });
      const r = await counter.call['increment']!(3);
      assert.equal(r.returned, '8');
      assert.deepEqual(
        r.events.map((e) => e.name),
        ['Changed'],
      );
      // The call run again by the node: its frame and the one key it wrote.
      const traced = await rpc.traceTransaction(r.hash);
      assert.equal(traced.receipt.gasUsed, r.gasUsed);
      assert.deepEqual([traced.trace?.method, traced.trace?.status], ['increment', 'success']);
      assert.equal(traced.storageWrites.length, 1);
      assert.ok(traced.storageWrites[0]!.contract.equals(counter.address));
      const seen = await events.next();
      assert.equal(seen.done, false);
      assert.ok(!seen.done && seen.value.txHash.equals(r.hash), 'the subscription brings the call\'s event');
      await events.unsubscribe();

      // The counter's `count` (an Item: [len] ++ name) read with a proof,
      // at the call's block, trusting the genesis file alone.
      const g = asObject(parseJson(readFileSync(GENESIS, 'utf8')), 'genesis');
      const genesis = { chainId: asU64(g['chain_id'], 'chain_id'), validators: validatorSetFromJson(g['validators'] ?? null) };
      const slot = Uint8Array.of(5, ...new TextEncoder().encode('count'));
      const height = r.receipt.blockHeight;
      const read = await verifiedStorage(rpc, genesis, counter.address, slot, { height });
      assert.deepEqual(read.value, Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 0));
      assert.ok(read.power >= read.quorumPower);
      const mine = await verifiedAccount(rpc, genesis, key.address(), { height });
      assert.equal(mine.account?.nonce, (await rpc.getAccount(key.address())).nonce);

      // A node that changes the value (or the balance) it proves is caught.
      const lying = (method: string, tamper: (v: JsonObject) => void): LightRpc => ({
        call: async (m, p) => {
          const v = await rpc.call(m, p);
          if (m === method) tamper(v as JsonObject);
          return v;
        },
        getValidators: (h) => rpc.getValidators(h),
        getBlock: (id) => rpc.getBlock(id),
      });
      const refusedAs = (kind: string) => (e: unknown) => e instanceof LightClientError && e.detail.kind === kind;
      await assert.rejects(
        verifiedStorage(lying('get_storage_proof', (v) => (v['value'] = '0x0900000000000000')), genesis, counter.address, slot, { height }),
        refusedAs('proof'),
      );
      await assert.rejects(
        verifiedAccount(
          lying('get_account_proof', (v) => {
            const rich = encodeAccount({ ...mine.account!, balance: mine.account!.balance + 1n });
            v['value'] = toHex(rich);
          }),
          genesis,
          key.address(),
          { height },
        ),
        refusedAs('proof'),
      );
      await assert.rejects(
        verifiedStorage(lying('get_storage_proof', (v) => (v['key'] = '0x01')), genesis, counter.address, slot, { height }),
        refusedAs('wrong_answer'),
      );
      t.diagnostic(`deployed ${counter.address.toChecksum()}; count verified by ${read.signers} of ${read.validators} at height ${height}`);
    } finally {
      ws.close();
    }
  },
);
