// The light client against a fake node on 127.0.0.1 that answers with the
// JSON node/state/tests/ts_proof_vectors.rs wrote for a chain of three
// epochs over a real state: verified reads pass and report who vouched
// for them; forged proofs, certificates and chains of validator sets are
// refused with the error Rust's verification gives.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import {
  Address,
  CertificateError,
  type JsonValue,
  RpcClient,
  RpcCodes,
  RpcError,
  fromHex,
  parseJson,
  stringifyJson,
  toHex,
  validatorSetFromJson,
} from '@stele/client';

// src/index.ts does not export light.ts and proof.ts yet: load them from
// the build beside the compiled tests (dist/), typed by their declarations.
const light = (await import(new URL('../light.js', import.meta.url).href)) as typeof import('../dist/light.js');
const proof = (await import(new URL('../proof.js', import.meta.url).href)) as typeof import('../dist/proof.js');

type Hex = string;
type Dec = string;

interface Replacement {
  method: 'get_validators' | 'get_block' | 'get_storage_proof';
  height: Dec | null;
  answer: string;
}

type ErrorJson =
  | { kind: 'proof' | 'certificate'; reason: string; cause: string }
  | { kind: 'wrong_chain'; expected: Dec; got: Dec }
  | { kind: 'set_chain'; height: Dec; reason: string; cause?: { reason: string; cause: string } };

interface Light {
  chain_id: Dec;
  checkpoint_interval: Dec;
  tip: Dec;
  genesis: string;
  sets: { epoch: Dec; start_height: Dec; json: string; hash: Hex; total_power: Dec; quorum_power: Dec }[];
  validators: { height: Dec; answer: string }[];
  blocks: { height: Dec; hash: Hex; answer: string }[];
  reads: {
    name: string;
    contract: string;
    key: Hex;
    height: Dec | null;
    value: Hex | null;
    answer: string;
    verified_by: {
      height: Dec;
      epoch: Dec;
      block_hash: Hex;
      state_root: Hex;
      signers: number;
      validators: number;
      power: Dec;
      total_power: Dec;
      quorum_power: Dec;
    };
  }[];
  forged: { name: string; contract: string; key: Hex; height: Dec; replace: Replacement[]; error: ErrorJson }[];
  accounts: {
    reads: {
      name: string;
      address: string;
      height: Dec | null;
      account: { nonce: Dec; balance: Dec; code_hash: Hex | null } | null;
      answer: string;
      verified_by: Light['reads'][number]['verified_by'];
    }[];
    forged: { name: string; address: string; height: Dec; answer: string; error: { kind: string; reason?: string; cause?: string } }[];
  };
}

const v = (JSON.parse(readFileSync(new URL('../../fixtures/proofs.json', import.meta.url), 'utf8')) as { light: Light })
  .light;

const genesis = {
  chainId: BigInt(v.chain_id),
  validators: validatorSetFromJson(parseJson(v.genesis)),
};
const tip = BigInt(v.tip);

// ---------------------------------------------------------------------------
// The fake node.

interface Call {
  method: string;
  params: JsonValue[];
}

let replacements: Replacement[] = [];
/** The answer to every `get_account_proof`, when set. */
let accountAnswer: string | null = null;
/** Answers the node gives with a JSON-RPC error instead, by method. */
let failing: Record<string, { code: number; message: string }> = {};
const calls: Call[] = [];
let url = '';

const heightOf = (p: JsonValue | undefined): bigint | null =>
  typeof p === 'number' || typeof p === 'bigint' ? BigInt(p) : null;

function answer(call: Call): string | { code: number; message: string } {
  const fail = failing[call.method];
  if (fail !== undefined) return fail;
  const height = heightOf(call.params[call.method === 'get_storage_proof' ? 2 : 0]);
  const replaced = replacements.find(
    (r) => r.method === call.method && (r.method === 'get_storage_proof' || BigInt(r.height ?? -1) === height),
  );
  if (replaced !== undefined) return replaced.answer;
  switch (call.method) {
    case 'get_validators': {
      const at = height ?? tip;
      const x = v.validators.find((y) => BigInt(y.height) === at);
      return x?.answer ?? { code: RpcCodes.HEIGHT_UNAVAILABLE, message: `height ${at} is not committed` };
    }
    case 'get_block': {
      assert.equal(call.params[1], null, 'get_block pages from the start');
      const x = v.blocks.find((y) => BigInt(y.height) === height);
      return x?.answer ?? { code: RpcCodes.NOT_FOUND, message: `block at height ${String(height)}` };
    }
    case 'get_account_proof': {
      if (accountAnswer !== null) return accountAnswer;
      const at = heightOf(call.params[1]);
      const x = v.accounts.reads.find(
        (r) => r.address === call.params[0] && (r.height === null ? at === null : BigInt(r.height) === at),
      );
      return x?.answer ?? { code: RpcCodes.NOT_FOUND, message: 'no such account read in the vectors' };
    }
    case 'get_storage_proof': {
      const [contract, key] = call.params;
      const x = v.reads.find(
        (r) =>
          r.contract === contract &&
          r.key === key &&
          (r.height === null ? height === null : BigInt(r.height) === height),
      );
      return x?.answer ?? { code: RpcCodes.NOT_FOUND, message: 'no such read in the vectors' };
    }
    default:
      return { code: RpcCodes.METHOD_NOT_FOUND, message: `no method ${call.method}` };
  }
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const request = parseJson(body) as { id: number; method: string; params: JsonValue[] };
    const call = { method: request.method, params: request.params };
    calls.push(call);
    const a = answer(call);
    const payload =
      typeof a === 'string'
        ? `{"jsonrpc":"2.0","id":${request.id},"result":${a}}`
        : `{"jsonrpc":"2.0","id":${request.id},"error":${JSON.stringify(a)}}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(payload);
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
});

function reset(): RpcClient {
  replacements = [];
  accountAnswer = null;
  failing = {};
  calls.splice(0);
  return new RpcClient(url);
}

const setOfEpoch = (e: bigint): (typeof v.sets)[number] => v.sets.find((s) => BigInt(s.epoch) === e)!;

// ---------------------------------------------------------------------------

test(`the chain: ${v.sets.length} epochs, ${v.blocks.length} blocks, ${v.reads.length} reads, ${v.forged.length} forged answers`, () => {
  assert.ok(v.sets.length >= 3);
  assert.ok(v.reads.length >= 8);
  assert.ok(v.forged.length >= 10);
  assert.ok(v.reads.some((r) => r.value === null));
  for (const k of ['proof', 'certificate', 'wrong_chain', 'set_chain']) {
    assert.ok(
      v.forged.some((f) => f.error.kind === k),
      `no forged answer refused as ${k}`,
    );
  }
});

test('validatorsForBlock finds every block\'s set from the genesis alone', async (t) => {
  const client = reset();
  for (let h = 1n; h <= tip; h++) {
    const set = await light.validatorsForBlock(client, genesis, h);
    const header = (await client.getBlock(h)).block.header;
    assert.equal(set.hash().toString(), setOfEpoch(header.epoch).hash, `height ${h}`);
  }
  // The walk to the last epoch reads each epoch's last block and next set.
  calls.splice(0);
  await light.validatorsForBlock(client, genesis, tip);
  const k = BigInt(v.checkpoint_interval);
  const blocks = calls.filter((c) => c.method === 'get_block').map((c) => stringifyJson(c.params[0]!));
  assert.deepEqual(blocks, [String(k), String(2n * k)]);
  t.diagnostic(`found the sets of ${tip} blocks in ${v.sets.length} epochs`);
});

test(`verified reads: ${v.reads.length} vectors`, async (t) => {
  const client = reset();
  let absent = 0;
  for (const r of v.reads) {
    const options = r.height === null ? {} : { height: BigInt(r.height) };
    const got = await light.verifiedStorage(client, genesis, Address.parse(r.contract), fromHex(r.key), options);
    assert.equal(got.value === null ? null : toHex(got.value), r.value, r.name);
    const e = r.verified_by;
    assert.equal(got.height, BigInt(e.height), r.name);
    assert.equal(got.epoch, BigInt(e.epoch), r.name);
    assert.equal(got.blockHash.toString(), e.block_hash, r.name);
    assert.equal(got.stateRoot.toString(), e.state_root, r.name);
    assert.equal(got.signers, e.signers, r.name);
    assert.equal(got.validators, e.validators, r.name);
    assert.equal(got.power, BigInt(e.power), r.name);
    assert.equal(got.totalPower, BigInt(e.total_power), r.name);
    assert.equal(got.quorumPower, BigInt(e.quorum_power), r.name);
    assert.ok(got.power >= got.quorumPower, r.name);
    if (got.value === null) absent++;
  }
  const first = v.reads[0]!.verified_by;
  t.diagnostic(
    `verified ${v.reads.length} reads (${absent} absent keys); e.g. "verified by ${first.signers} of ` +
      `${first.validators} validators (${first.power} of ${first.total_power} power)"`,
  );
});

test(`verified accounts: ${v.accounts.reads.length} vectors`, async (t) => {
  const client = reset();
  assert.ok(v.accounts.reads.some((r) => r.account === null));
  assert.ok(v.accounts.reads.some((r) => r.account?.code_hash != null));
  for (const r of v.accounts.reads) {
    const options = r.height === null ? {} : { height: BigInt(r.height) };
    const got = await light.verifiedAccount(client, genesis, Address.parse(r.address), options);
    const want = r.account;
    assert.deepEqual(
      got.account === null
        ? null
        : { nonce: got.account.nonce, balance: got.account.balance, codeHash: got.account.codeHash?.toString() ?? null },
      want === null ? null : { nonce: BigInt(want.nonce), balance: BigInt(want.balance), codeHash: want.code_hash },
      r.name,
    );
    assert.equal(got.height, BigInt(r.verified_by.height), r.name);
    assert.equal(got.blockHash.toString(), r.verified_by.block_hash, r.name);
    assert.equal(got.signers, r.verified_by.signers, r.name);
    assert.equal(got.power, BigInt(r.verified_by.power), r.name);
  }
  const last = calls.filter((c) => c.method === 'get_account_proof').at(-1)!;
  const r = v.accounts.reads.at(-1)!;
  assert.deepEqual(last.params, [r.address, Number(r.height)], 'positional parameters: address, height');
  t.diagnostic(`verified ${v.accounts.reads.length} account reads (${v.accounts.reads.filter((x) => x.account === null).length} absent)`);
});

test(`forged account answers: ${v.accounts.forged.length} vectors refused`, async (t) => {
  for (const f of v.accounts.forged) {
    reset();
    accountAnswer = f.answer;
    const client = new RpcClient(url);
    await assert.rejects(
      light.verifiedAccount(client, genesis, Address.parse(f.address), { height: BigInt(f.height) }),
      (e: unknown) => {
        assert.ok(e instanceof light.LightClientError, `${f.name}: ${String(e)}`);
        assert.equal(e.detail.kind, f.error.kind, f.name);
        if (e.detail.kind === 'proof') {
          assert.equal(e.detail.cause.detail.kind, f.error.reason, f.name);
          assert.equal(e.detail.cause.message, f.error.cause, f.name);
        }
        return true;
      },
      f.name,
    );
  }
  t.diagnostic(`refused ${v.accounts.forged.length} forged account answers`);
});

test('get_storage_proof is called with the API\'s positional parameters', async () => {
  const client = reset();
  const r = v.reads.find((x) => x.height !== null)!;
  await light.getStorageProof(client, Address.parse(r.contract), fromHex(r.key), BigInt(r.height!));
  assert.deepEqual(calls, [
    { method: 'get_storage_proof', params: [Address.parse(r.contract).toChecksum(), r.key, Number(r.height)] },
  ]);
});

test(`forged answers: ${v.forged.length} vectors refused with Rust's error`, async (t) => {
  const kinds = new Map<string, number>();
  for (const f of v.forged) {
    const client = reset();
    replacements = f.replace;
    let caught: unknown;
    try {
      await light.verifiedStorage(client, genesis, Address.parse(f.contract), fromHex(f.key), {
        height: BigInt(f.height),
      });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof light.LightClientError, `${f.name}: expected a LightClientError, got ${String(caught)}`);
    const d = caught.detail;
    assert.equal(d.kind, f.error.kind, f.name);
    const x = f.error;
    switch (x.kind) {
      case 'proof':
        assert.ok(d.kind === 'proof' && d.cause instanceof proof.ProofError, f.name);
        assert.equal(d.cause.message, x.cause, f.name);
        assert.equal(d.cause.detail.kind, x.reason, f.name);
        assert.equal(caught.message, `Merkle proof does not match the certified state root: ${x.cause}`);
        break;
      case 'certificate':
        assert.ok(d.kind === 'certificate' && d.cause instanceof CertificateError, f.name);
        assert.equal(d.cause.message, x.cause, f.name);
        assert.equal(d.cause.detail.kind, x.reason, f.name);
        assert.equal(caught.message, `commit certificate does not certify the header: ${x.cause}`);
        break;
      case 'wrong_chain':
        assert.ok(d.kind === 'wrong_chain', f.name);
        assert.equal(d.expected, BigInt(x.expected));
        assert.equal(d.got, BigInt(x.got));
        assert.equal(caught.message, `header is for chain ${x.got}, expected ${x.expected}`);
        break;
      case 'set_chain':
        assert.ok(d.kind === 'set_chain', f.name);
        assert.equal(d.height, BigInt(x.height), f.name);
        assert.equal(d.reason, x.reason, f.name);
        if (x.cause === undefined) {
          assert.equal(d.cause, null, f.name);
        } else {
          assert.ok(d.cause instanceof CertificateError, f.name);
          assert.equal(d.cause.message, x.cause.cause, f.name);
          assert.equal(d.cause.detail.kind, x.cause.reason, f.name);
        }
        assert.equal(caught.message, `the chain of validator sets breaks at height ${x.height}: ${x.reason}`);
        break;
    }
    const key = x.kind === 'proof' || x.kind === 'certificate' ? `${x.kind}/${x.reason}` : x.kind;
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  t.diagnostic(`refused ${v.forged.length} forged answers: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
});

test('an answer about another key, contract or height is refused (a check Rust\'s client lacks)', async () => {
  const [a, b] = [v.reads.find((r) => r.height !== null && r.value !== null)!, v.reads.find((r) => r.value === null)!];
  // The node answers a's question with b's valid, certified answer.
  let client = reset();
  replacements = [{ method: 'get_storage_proof', height: null, answer: b.answer }];
  await assert.rejects(
    light.verifiedStorage(client, genesis, Address.parse(a.contract), fromHex(a.key), { height: BigInt(a.height!) }),
    (e: unknown) => e instanceof light.LightClientError && e.detail.kind === 'wrong_answer',
  );
  // Another height than asked, of the same key.
  const sameKey = v.reads.filter((r) => r.key === a.key && r.contract === a.contract && r.height !== a.height);
  assert.ok(sameKey.length > 0);
  client = reset();
  replacements = [{ method: 'get_storage_proof', height: null, answer: sameKey[0]!.answer }];
  await assert.rejects(
    light.verifiedStorage(client, genesis, Address.parse(a.contract), fromHex(a.key), { height: BigInt(a.height!) }),
    (e: unknown) =>
      e instanceof light.LightClientError && e.detail.kind === 'wrong_answer' && /height/.test(e.message),
  );
});

test('a genesis of another chain or set trusts nothing the node says', async () => {
  const r = v.reads.find((x) => x.height !== null && BigInt(x.height) > BigInt(v.checkpoint_interval))!;
  const args = [Address.parse(r.contract), fromHex(r.key), { height: BigInt(r.height!) }] as const;
  let client = reset();
  await assert.rejects(
    light.verifiedStorage(client, { ...genesis, chainId: genesis.chainId + 1n }, ...args),
    (e: unknown) =>
      e instanceof light.LightClientError &&
      e.detail.kind === 'set_chain' &&
      e.detail.reason === 'the last block is of another chain or epoch',
  );
  // Epoch 2's set taken for the genesis: epoch 0's last block does not verify.
  client = reset();
  const wrongGenesis = { ...genesis, validators: validatorSetFromJson(parseJson(setOfEpoch(2n).json)) };
  await assert.rejects(
    light.verifiedStorage(client, wrongGenesis, ...args),
    (e: unknown) =>
      e instanceof light.LightClientError && e.detail.kind === 'set_chain' && e.detail.cause instanceof CertificateError,
  );
});

test('node errors reach the caller as RpcError', async () => {
  const client = reset();
  failing = { get_validators: { code: RpcCodes.HEIGHT_UNAVAILABLE, message: 'height 9 was pruned' } };
  const r = v.reads[0]!;
  await assert.rejects(
    light.verifiedStorage(client, genesis, Address.parse(r.contract), fromHex(r.key)),
    (e: unknown) => e instanceof RpcError && e.code === RpcCodes.HEIGHT_UNAVAILABLE,
  );
});

test('a node claiming more epochs than EPOCH_WALK_MAX is refused after that many reads', async () => {
  // Every height is an epoch of its own, as far as this node says.
  let reads = 0;
  const claims: import('../dist/light.js').LightRpc = {
    call: () => Promise.reject(new Error('not used')),
    getValidators: (h) => {
      reads++;
      const at = BigInt(h ?? 0);
      return Promise.resolve({
        height: at,
        epoch: at + 1n,
        epochStartHeight: at + 1n,
        validators: genesis.validators,
        validatorsHash: genesis.validators.hash(),
        pending: null,
      });
    },
    getBlock: () => Promise.reject(new Error('not reached')),
  };
  await assert.rejects(light.validatorsForBlock(claims, genesis, 1_000_000n), (e: unknown) => {
    assert.ok(e instanceof light.LightClientError);
    assert.equal(e.detail.kind, 'set_chain');
    assert.match(e.message, /more than 10000 epochs/);
    return true;
  });
  assert.equal(reads, light.EPOCH_WALK_MAX + 1);
});
