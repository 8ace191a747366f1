// Keys, signatures, addresses and validator sets, beside the Rust vectors.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';

import {
  Address,
  AddressError,
  CryptoError,
  Hash,
  PublicKey,
  SecretKey,
  Signature,
  ValidatorSet,
  ValidatorSetError,
  keccak256,
  recoverSender,
  signTransaction,
  toHex,
  type Validator,
} from '@stele/client';

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function scalar(n: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));
}

const msg = (s: string): Hash => keccak256(new TextEncoder().encode(s));

test('the private key 1 has the well-known address', () => {
  assert.equal(SecretKey.fromBytes(scalar(1n)).address().toString(), '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
});

test('secret keys outside 1..n-1 are refused', () => {
  for (const bad of [scalar(0n), scalar(ORDER), new Uint8Array(32).fill(0xff), new Uint8Array(31).fill(1)]) {
    assert.throws(() => SecretKey.fromBytes(bad), { name: 'CryptoError', message: 'invalid secret key' });
  }
  assert.doesNotThrow(() => SecretKey.fromBytes(scalar(ORDER - 1n)));
});

test('generated keys sign, recover and verify', () => {
  const a = SecretKey.generate();
  const b = SecretKey.generate();
  assert.ok(!a.address().equals(b.address()));
  const d = msg('hello');
  const sig = a.signDigest(d);
  assert.ok(sig.v === 0 || sig.v === 1);
  assert.ok(sig.recoverAddress(d).equals(a.address()));
  assert.ok(sig.recoverPublicKey(d).equals(a.publicKey()));
  a.publicKey().verify(d, sig);
  assert.throws(() => b.publicKey().verify(d, sig), { message: 'signature does not verify' });
  assert.throws(() => a.publicKey().verify(msg('other'), sig), { message: 'signature does not verify' });
  assert.ok(!sig.recoverAddress(msg('other')).equals(a.address()));
});

test('signing is deterministic', () => {
  const k = SecretKey.fromBytes(scalar(7n));
  assert.equal(k.signDigest(msg('m')).toString(), k.signDigest(msg('m')).toString());
  assert.notEqual(k.signDigest(msg('m')).toString(), k.signDigest(msg('n')).toString());
});

test('the high-S twin and bad recovery ids are refused', () => {
  const k = SecretKey.fromBytes(scalar(9n));
  const d = msg('m');
  const sig = k.signDigest(d).toBytes();
  const s = BigInt(toHex(sig.subarray(32, 64)));
  assert.ok(s <= ORDER >> 1n, 'signatures are low-S');
  const twin = Uint8Array.from(sig);
  twin.set(scalar(ORDER - s), 32);
  twin[64] = sig[64]! ^ 1;
  const high = Signature.fromBytes(twin);
  const highS = 'signature s value is in the upper half of the curve order (high-S)';
  assert.throws(() => high.recoverAddress(d), { name: 'CryptoError', message: highS });
  assert.throws(() => k.publicKey().verify(d, high), { message: highS });
  for (const v of [2, 3, 27]) {
    const bad = Uint8Array.from(sig);
    bad[64] = v;
    assert.throws(() => Signature.fromBytes(bad).recoverAddress(d), (e: unknown) => {
      assert.ok(e instanceof CryptoError);
      assert.equal(e.kind, 'invalid_recovery_id');
      assert.equal(e.recoveryId, v);
      assert.equal(e.message, `invalid recovery id ${v}`);
      return true;
    });
  }
});

test('a secret key never shows its secret', () => {
  const k = SecretKey.fromBytes(scalar(0x1234567n));
  const secret = toHex(k.toBytes()).slice(2);
  for (const shown of [String(k), JSON.stringify({ k }), inspect(k), `${k}`]) {
    assert.ok(!shown.includes(secret), shown);
    assert.ok(shown.includes(k.address().toChecksum()), shown);
  }
});

test('an invalid public key fails validation and has the zero address', () => {
  const bad = PublicKey.fromBytes(new Uint8Array(33).fill(5));
  assert.throws(() => bad.validate(), { name: 'CryptoError', message: 'invalid public key' });
  assert.ok(bad.address().equals(Address.ZERO));
  const k = SecretKey.fromBytes(scalar(3n));
  assert.throws(() => bad.verify(msg('m'), k.signDigest(msg('m'))), { message: 'invalid public key' });
});

test('EIP-55 addresses', () => {
  for (const s of [
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
    '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
    '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  ]) {
    const a = Address.parse(s);
    assert.equal(a.toChecksum(), s);
    assert.ok(Address.parse(s.toLowerCase()).equals(a));
    assert.ok(Address.parse(`0x${s.slice(2).toUpperCase()}`).equals(a));
    assert.equal(JSON.stringify({ a }), `{"a":"${s}"}`);
  }
  assert.throws(() => Address.parse('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD'), (e: unknown) => {
    assert.ok(e instanceof AddressError);
    assert.equal(e.kind, 'checksum');
    assert.equal(e.expected, '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
    return true;
  });
  for (const bad of ['5aaeb6053f3e94c9b9a09f33669435e7ef1beaed', '0x5aae', '0xzzaeb6053f3e94c9b9a09f33669435e7ef1beaed']) {
    assert.throws(() => Address.parse(bad), { message: 'address must be 0x followed by 40 hex digits' });
  }
});

test('values are immutable', () => {
  const h = msg('x');
  const bytes = h.toBytes();
  bytes[0] = bytes[0]! ^ 0xff;
  assert.notEqual(toHex(bytes), h.toString());
  assert.equal(msg('x').toString(), h.toString());
  const source = new Uint8Array(20).fill(1);
  const a = Address.fromBytes(source);
  source[0] = 2;
  assert.equal(a.toHex(), `0x${'01'.repeat(20)}`);
});

test('recoverSender refuses another chain and reports the signature error', () => {
  const k = SecretKey.fromBytes(scalar(5n));
  const signed = signTransaction(
    { chainId: 9n, nonce: 0n, gasLimit: 21_000n, gasPrice: 1n, payload: { kind: 'transfer', to: Address.ZERO, amount: 1n } },
    k,
  );
  assert.ok(recoverSender(signed, 9n).equals(k.address()));
  assert.throws(() => recoverSender(signed, 10n), { name: 'TxError', message: 'transaction is for chain 9, this chain is 10' });
  const tampered = { ...signed, tx: { ...signed.tx, nonce: 1n } };
  assert.ok(!recoverSender(tampered, 9n).equals(k.address()), 'another transaction recovers another sender');
});

function validator(n: bigint, power = 1n): Validator {
  const k = SecretKey.fromBytes(scalar(n));
  return { address: k.address(), publicKey: k.publicKey(), power };
}

function sorted(vs: Validator[]): Validator[] {
  return [...vs].sort((a, b) => a.address.compare(b.address));
}

test('validator sets are checked as Rust checks them', () => {
  const [a, b, c] = sorted([validator(1n), validator(2n), validator(3n)]) as [Validator, Validator, Validator];
  const set = ValidatorSet.create([a, b, c]);
  assert.equal(set.totalPower, 3n);
  assert.equal(set.quorumPower(), 3n);
  assert.equal(set.indexOf(b.address), 1);
  assert.equal(set.indexOf(Address.ZERO), -1);
  assert.equal(set.get(3), undefined);
  assert.ok(set.primary(4n).address.equals(b.address));
  const fails = (vs: Validator[], message: string): void => {
    assert.throws(() => ValidatorSet.create(vs), (e: unknown) => e instanceof ValidatorSetError && e.message === message);
  };
  fails([], 'validator set is empty');
  fails([b, a], 'validators are not sorted by address without duplicates at index 1');
  fails([a, a], 'validators are not sorted by address without duplicates at index 1');
  fails([a, { ...b, power: 0n }], 'validator 1 has zero voting power');
  fails([{ ...a, publicKey: b.publicKey }], "validator 0's address does not match its public key");
  fails([{ ...a, publicKey: PublicKey.fromBytes(new Uint8Array(33).fill(5)) }], 'validator 0 has an invalid public key');
  fails([{ ...a, power: 1n << 63n }, { ...b, power: 1n << 63n }], 'total voting power overflows');
  const heavy = ValidatorSet.create([{ ...a, power: (1n << 64n) - 2n }, b]);
  assert.equal(heavy.quorumPower(), ((1n << 64n) - 1n) * 2n / 3n + 1n);
});
