// Checks every vector of fixtures/keystores.json, which sdk/client/tests/
// ts_keystore_vectors.rs wrote and checked with the Rust client: files it
// reads decrypt to the same key here; files it writes are written here to
// the same bytes; files it refuses are refused here with its error.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { SecretKey, fromHex, toHex } from '@stele/client';

// src/index.ts does not export keystore.ts yet: load it from the build
// beside the compiled tests (dist/), typed by its declarations.
const ks = (await import(new URL('../keystore.js', import.meta.url).href)) as typeof import('../dist/keystore.js');

type Hex = string;

interface Vectors {
  version: number;
  limits: { scrypt_log_n_max: number; scrypt_r_max: number; scrypt_p_max: number };
  keystores: {
    name: string;
    password: string;
    secret_key: Hex;
    address: string;
    json: string;
    cli_json: string | null;
    written_by_client: boolean;
    export?: { log_n: number; salt: Hex; iv: Hex; id: string };
  }[];
  refused: { name: string; password: string; json: string; kind: string; error: string }[];
  write_refused: { name: string; log_n: number; kind: string; error: string }[];
}

const v = JSON.parse(readFileSync(new URL('../../fixtures/keystores.json', import.meta.url), 'utf8')) as Vectors;

test('the keystore vectors are version 1, bounds as Rust', () => {
  assert.equal(v.version, 1);
  assert.equal(ks.SCRYPT_LOG_N_MAX, v.limits.scrypt_log_n_max);
  assert.equal(ks.SCRYPT_R_MAX, v.limits.scrypt_r_max);
  assert.equal(ks.SCRYPT_P_MAX, v.limits.scrypt_p_max);
  assert.ok(v.keystores.length >= 10);
  assert.ok(v.refused.length >= 30);
  const kinds = new Set(v.refused.map((r) => r.kind));
  for (const k of ['json', 'version', 'unsupported', 'hex', 'params', 'wrong_password', 'bad_key', 'address_mismatch']) {
    assert.ok(kinds.has(k), `no refusal of kind ${k}`);
  }
});

test(`keystores the Rust client reads: ${v.keystores.length} vectors`, async (t) => {
  let cli = 0;
  for (const x of v.keystores) {
    const key = ks.decryptKeystoreSync(x.json, x.password);
    assert.equal(toHex(key.toBytes()), x.secret_key, x.name);
    assert.equal(key.address().toChecksum(), x.address, x.name);
    if (x.cli_json !== null) {
      // The file as `stele keys` stores it.
      assert.equal(toHex(ks.decryptKeystoreSync(x.cli_json, x.password).toBytes()), x.secret_key, x.name);
      cli++;
    }
  }
  const first = v.keystores[0]!;
  const key = await ks.decryptKeystore(first.json, first.password);
  assert.equal(toHex(key.toBytes()), first.secret_key);
  t.diagnostic(`decrypted ${v.keystores.length} keystores (${cli} also as stele keys stores them) to Rust's keys`);
});

test('keystores written here are the Rust client\'s, byte for byte', async (t) => {
  let written = 0;
  for (const x of v.keystores) {
    if (!x.written_by_client) continue;
    const e = x.export!;
    const options = { logN: e.log_n, salt: fromHex(e.salt), iv: fromHex(e.iv), id: e.id };
    const key = SecretKey.parse(x.secret_key);
    assert.equal(ks.encryptKeystoreSync(key, x.password, options), x.json, x.name);
    written++;
  }
  const first = v.keystores.find((x) => x.written_by_client)!;
  const e = first.export!;
  const text = await ks.encryptKeystore(SecretKey.parse(first.secret_key), first.password, {
    logN: e.log_n,
    salt: fromHex(e.salt),
    iv: fromHex(e.iv),
    id: e.id,
  });
  assert.equal(text, first.json);
  t.diagnostic(`wrote ${written} keystores identical to Rust's`);
});

test('a fresh keystore (random salt, IV and id) reads back, and has the Rust layout', async () => {
  const key = SecretKey.generate();
  const text = await ks.encryptKeystore(key, 'fresh', { logN: 4 });
  const doc = JSON.parse(text) as {
    version: number;
    id: string;
    address: string;
    crypto: { kdfparams: { n: number; r: number; p: number; dklen: number; salt: string }; cipherparams: { iv: string } };
  };
  assert.deepEqual(Object.keys(doc), ['version', 'id', 'address', 'crypto']);
  assert.match(doc.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(doc.address, key.address().toHex().slice(2));
  assert.deepEqual(doc.crypto.kdfparams.n, 16);
  assert.equal(doc.crypto.kdfparams.salt.length, 64);
  assert.equal(doc.crypto.cipherparams.iv.length, 32);
  assert.equal(toHex((await ks.decryptKeystore(text, 'fresh')).toBytes()), toHex(key.toBytes()));
  assert.notEqual(await ks.encryptKeystore(key, 'fresh', { logN: 4 }), text);
});

test(`keystores the Rust client refuses: ${v.refused.length} vectors, with its error`, (t) => {
  const kinds = new Map<string, number>();
  for (const x of v.refused) {
    let caught: unknown;
    const started = performance.now();
    try {
      ks.decryptKeystoreSync(x.json, x.password);
    } catch (e) {
      caught = e;
    }
    const elapsed = performance.now() - started;
    assert.ok(caught instanceof ks.KeystoreError, `${x.name}: expected a KeystoreError, got ${String(caught)}`);
    assert.equal(caught.detail.kind, x.kind, x.name);
    // Rust's JSON errors are serde's; the kind is what must agree.
    if (x.kind !== 'json') assert.equal(caught.message, x.error, x.name);
    // Parameters out of bounds are refused before any key derivation.
    if (x.kind === 'params') assert.ok(elapsed < 1_000, `${x.name}: took ${elapsed} ms`);
    kinds.set(x.kind, (kinds.get(x.kind) ?? 0) + 1);
  }
  t.diagnostic(`refused ${v.refused.length} keystores: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
});

test('a wrong password is refused as such, also asynchronously', async () => {
  const x = v.keystores[0]!;
  await assert.rejects(
    ks.decryptKeystore(x.json, `${x.password}!`),
    (e: unknown) =>
      e instanceof ks.KeystoreError && e.detail.kind === 'wrong_password' && e.message === 'wrong password (MAC mismatch)',
  );
});

test(`writes the Rust client refuses: ${v.write_refused.length} vectors; and n = 1, which no reader takes`, async () => {
  const key = SecretKey.parse(v.keystores[0]!.secret_key);
  for (const x of v.write_refused) {
    assert.throws(
      () => ks.encryptKeystoreSync(key, 'pw', { logN: x.log_n }),
      (e: unknown) => e instanceof ks.KeystoreError && e.detail.kind === x.kind && e.message === x.error,
    );
    await assert.rejects(ks.encryptKeystore(key, 'pw', { logN: x.log_n }), ks.KeystoreError);
  }
  assert.throws(() => ks.encryptKeystoreSync(key, 'pw', { logN: 0 }), ks.KeystoreError);
  assert.throws(() => ks.encryptKeystoreSync(key, 'pw', { logN: 2.5 }), RangeError);
  assert.throws(() => ks.encryptKeystoreSync(key, 'pw', { logN: 4, iv: new Uint8Array(15) }), RangeError);
});

test('the secret never shows in the decrypted key\'s string forms', () => {
  const x = v.keystores[0]!;
  const key = ks.decryptKeystoreSync(x.json, x.password);
  assert.ok(!String(key).includes(x.secret_key.slice(2)));
  assert.ok(!JSON.stringify({ key }).includes(x.secret_key.slice(2)));
});
