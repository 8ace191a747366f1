// Checks every vector the Rust types wrote to fixtures/vectors.json
// (node/types/tests/ts_vectors.rs): encodings, hashes, digests, exact
// signature bytes, recovered senders, certificates valid or forged exactly
// as marked, and the inputs that must be refused with Rust's message.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Address,
  AddressError,
  CertificateError,
  CryptoError,
  DEFAULT_LIMITS,
  DecodeError,
  EXEC_STATUS_CODES,
  Hash,
  type Limits,
  PublicKey,
  SecretKey,
  Signature,
  TxError,
  ValidatorSet,
  blockHeaderHash,
  certificateDigest,
  computeTxRoot,
  decodeBlock,
  decodeBlockHeader,
  decodeCommitCertificate,
  decodeEvent,
  decodeProtocolParams,
  decodeReceipt,
  decodeSignedTransaction,
  decodeTransaction,
  decodeValidatorSet,
  encodeBlock,
  encodeBlockHeader,
  encodeCommitCertificate,
  encodeEvent,
  encodeProtocolParams,
  encodeReceipt,
  encodeSignedTransaction,
  encodeTransaction,
  encodeValidatorSet,
  fromHex,
  keccak256,
  listRoot,
  maxCost,
  protocolParamsHash,
  receiptHash,
  recoverSender,
  signTransaction,
  signingDigest,
  toHex,
  txHash,
  validatorChangeHash,
  verifyCertificate,
} from '@stele/client';

import {
  big,
  certFromJson,
  headerFromJson,
  loadVectors,
  paramsFromJson,
  plain,
  receiptFromJson,
  txFromJson,
  validatorFromJson,
} from './support/vectors.js';

const v = loadVectors();

/** Asserts `run` throws an instance of `type` whose message is `message`. */
function throwsWith(run: () => unknown, type: new (...args: never[]) => Error, message: string): Error {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof type, `expected a ${type.name} "${message}", got ${String(caught)}`);
  assert.equal(caught.message, message);
  return caught;
}

test('the vectors are version 1 and cover every group', () => {
  assert.equal(v.version, 1);
  for (const [group, min] of [
    ['keys', 5],
    ['signatures', 10],
    ['transactions', 5],
    ['headers', 2],
    ['validator_sets', 3],
    ['certificates', 20],
    ['receipts', 5],
    ['blocks', 2],
    ['list_roots', 5],
    ['protocol_params', 1],
    ['contract_addresses', 2],
    ['validator_changes', 2],
    ['invalid_encodings', 30],
  ] as const) {
    assert.ok(v[group].length >= min, `${group}: ${v[group].length} vectors, expected at least ${min}`);
  }
  const kinds = new Set(v.transactions.map((t) => t.tx.payload.kind));
  assert.deepEqual([...kinds].sort(), ['call', 'deploy', 'transfer', 'vote_upgrade', 'vote_validators']);
  const reasons = new Set(v.certificates.map((c) => c.reason));
  for (const r of [null, 'not_sorted', 'unknown_validator', 'bad_signature', 'no_quorum', 'wrong_block', 'wrong_epoch']) {
    assert.ok(reasons.has(r), `no certificate vector with reason ${String(r)}`);
  }
});

test('limits equal Rust Limits::DEFAULT', () => {
  const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const expected = Object.fromEntries(Object.entries(v.limits).map(([k, n]) => [camel(k), n]));
  assert.deepEqual({ ...DEFAULT_LIMITS }, expected as unknown as Limits);
});

test(`keys: ${v.keys.length} vectors`, (t) => {
  for (const k of v.keys) {
    const key = SecretKey.parse(k.secret_key);
    assert.equal(toHex(key.toBytes()), k.secret_key);
    assert.equal(key.publicKey().toString(), k.public_key);
    assert.equal(key.address().toChecksum(), k.address);
    assert.equal(key.address().toHex(), k.address_bytes);
    assert.equal(PublicKey.parse(k.public_key).address().toChecksum(), k.address);
  }
  t.diagnostic(`matched ${v.keys.length} keys`);
});

test(`addresses: ${v.addresses.valid.length} valid, ${v.addresses.invalid.length} refused`, (t) => {
  for (const a of v.addresses.valid) {
    const parsed = Address.parse(a.text);
    assert.equal(parsed.toHex(), a.bytes, a.text);
    assert.equal(parsed.toChecksum(), a.checksum);
    assert.equal(String(parsed), a.checksum);
  }
  for (const a of v.addresses.invalid) {
    const e = throwsWith(() => Address.parse(a.text), AddressError, a.error) as AddressError;
    assert.equal(e.kind, a.reason, a.text);
  }
  t.diagnostic(`matched ${v.addresses.valid.length + v.addresses.invalid.length} address vectors`);
});

test(`signatures: ${v.signatures.length} vectors`, (t) => {
  let signed = 0;
  for (const s of v.signatures) {
    const digest = Hash.parse(s.digest);
    const sig = Signature.parse(s.signature);
    if (s.secret_key !== undefined) {
      assert.equal(SecretKey.parse(s.secret_key).signDigest(digest).toString(), s.signature, s.name);
      signed++;
    }
    if (s.recovers !== null) {
      assert.equal(sig.recoverAddress(digest).toChecksum(), s.recovers, s.name);
      assert.equal(sig.recoverPublicKey(digest).toString(), s.public_key, s.name);
    } else {
      assert.ok(s.error !== null);
      throwsWith(() => sig.recoverAddress(digest), CryptoError, s.error);
      throwsWith(() => sig.recoverPublicKey(digest), CryptoError, s.error);
    }
  }
  assert.ok(signed > 0);
  t.diagnostic(`matched ${v.signatures.length} signature vectors, ${signed} signed again to the same bytes`);
});

test(`transactions: ${v.transactions.length} vectors`, (t) => {
  for (const x of v.transactions) {
    const tx = txFromJson(x.tx);
    const key = SecretKey.parse(x.secret_key);
    assert.equal(toHex(encodeTransaction(tx)), x.unsigned, x.name);
    assert.deepEqual(plain(decodeTransaction(fromHex(x.unsigned))), plain(tx), x.name);
    assert.equal(signingDigest(tx).toString(), x.signing_digest, x.name);
    const signed = signTransaction(tx, key);
    assert.equal(signed.signature.toString(), x.signature, x.name);
    assert.equal(toHex(encodeSignedTransaction(signed)), x.signed, x.name);
    assert.equal(txHash(signed).toString(), x.hash, x.name);
    const decoded = decodeSignedTransaction(fromHex(x.signed));
    assert.deepEqual(plain(decoded), plain(signed), x.name);
    assert.equal(recoverSender(decoded, tx.chainId).toChecksum(), x.sender, x.name);
    assert.equal(key.address().toChecksum(), x.sender, x.name);
    const cost = maxCost(tx);
    assert.equal(cost === null ? null : cost.toString(), x.max_cost, x.name);
    throwsWith(() => recoverSender(decoded, big(x.wrong_chain.chain_id)), TxError, x.wrong_chain.error);
    const badV = decodeSignedTransaction(fromHex(x.bad_v.signed));
    throwsWith(() => recoverSender(badV, tx.chainId), TxError, x.bad_v.error);
  }
  t.diagnostic(`matched ${v.transactions.length} transactions`);
});

test(`block headers: ${v.headers.length} vectors`, (t) => {
  for (const x of v.headers) {
    const header = headerFromJson(x.header);
    assert.equal(toHex(encodeBlockHeader(header)), x.encoding, x.name);
    assert.equal(blockHeaderHash(header).toString(), x.hash, x.name);
    assert.deepEqual(plain(decodeBlockHeader(fromHex(x.encoding))), plain(header), x.name);
  }
  t.diagnostic(`matched ${v.headers.length} headers`);
});

const sets = v.validator_sets.map((s) => ValidatorSet.create(s.validators.map(validatorFromJson)));
const headers = v.headers.map((h) => headerFromJson(h.header));

test(`validator sets: ${v.validator_sets.length} vectors`, (t) => {
  for (const [i, x] of v.validator_sets.entries()) {
    const set = sets[i]!;
    assert.equal(toHex(encodeValidatorSet(set)), x.encoding, x.name);
    assert.equal(set.hash().toString(), x.hash, x.name);
    assert.equal(set.totalPower, big(x.total_power), x.name);
    assert.equal(set.quorumPower(), big(x.quorum_power), x.name);
    assert.equal(set.weakQuorumPower(), big(x.weak_quorum_power), x.name);
    const decoded = decodeValidatorSet(fromHex(x.encoding));
    assert.deepEqual(plain([...decoded.validators]), plain([...set.validators]), x.name);
    x.secret_keys.forEach((k, j) => {
      const key = SecretKey.parse(k);
      assert.ok(key.address().equals(set.validators[j]!.address), x.name);
      assert.equal(set.indexOf(key.address()), j);
    });
  }
  t.diagnostic(`matched ${v.validator_sets.length} validator sets`);
});

test(`commit certificates: ${v.certificates.length} vectors`, (t) => {
  let valid = 0;
  let forged = 0;
  let resigned = 0;
  for (const x of v.certificates) {
    const cert = certFromJson(x.certificate);
    const header = headers[x.header_index]!;
    const set = sets[x.validator_set_index]!;
    const bytes = encodeCommitCertificate(cert);
    assert.equal(toHex(bytes), x.encoding, x.name);
    assert.equal(keccak256(bytes).toString(), x.hash, x.name);
    assert.deepEqual(plain(decodeCommitCertificate(bytes)), plain(cert), x.name);
    const digest = certificateDigest(cert, header.chainId);
    assert.equal(digest.toString(), x.digest, x.name);
    x.signed_by.forEach((k, j) => {
      if (k === null) return;
      assert.equal(SecretKey.parse(k).signDigest(digest).toString(), x.certificate.signatures[j]!.signature, x.name);
      resigned++;
    });
    if (x.valid) {
      assert.doesNotThrow(() => verifyCertificate(cert, header, set), x.name);
      valid++;
    } else {
      assert.ok(x.error !== null && x.reason !== null);
      const e = throwsWith(() => verifyCertificate(cert, header, set), CertificateError, x.error);
      assert.equal((e as CertificateError).detail.kind, x.reason, x.name);
      forged++;
    }
  }
  t.diagnostic(`matched ${valid} valid and ${forged} refused certificates; ${resigned} signatures signed again to the same bytes`);
});

test(`receipts: ${v.receipts.length} vectors`, (t) => {
  let events = 0;
  for (const x of v.receipts) {
    const receipt = receiptFromJson(x.receipt);
    assert.equal(EXEC_STATUS_CODES[receipt.status], x.receipt.status_code);
    assert.equal(toHex(encodeReceipt(receipt)), x.encoding, x.name);
    assert.equal(receiptHash(receipt).toString(), x.hash, x.name);
    assert.deepEqual(plain(decodeReceipt(fromHex(x.encoding))), plain(receipt), x.name);
    receipt.events.forEach((e, j) => {
      assert.equal(toHex(encodeEvent(e)), x.event_encodings[j], x.name);
      assert.deepEqual(plain(decodeEvent(fromHex(x.event_encodings[j]!))), plain(e));
      events++;
    });
  }
  t.diagnostic(`matched ${v.receipts.length} receipts and ${events} events`);
});

test(`blocks: ${v.blocks.length} vectors`, (t) => {
  for (const x of v.blocks) {
    const header = headerFromJson(x.header);
    const txs = x.txs.map((h) => decodeSignedTransaction(fromHex(h)));
    assert.deepEqual(txs.map((s) => txHash(s).toString()), x.tx_hashes, x.name);
    assert.equal(computeTxRoot(txs).toString(), x.tx_root, x.name);
    assert.equal(header.txRoot.toString(), x.tx_root, x.name);
    const block = { header, txs };
    assert.equal(toHex(encodeBlock(block)), x.encoding, x.name);
    assert.equal(blockHeaderHash(header).toString(), x.hash, x.name);
    assert.deepEqual(plain(decodeBlock(fromHex(x.encoding))), plain(block), x.name);
  }
  t.diagnostic(`matched ${v.blocks.length} blocks`);
});

test(`list roots, parameters, contract addresses, validator changes`, (t) => {
  for (const x of v.list_roots) {
    assert.equal(listRoot(x.items.map((h) => Hash.parse(h))).toString(), x.root, `${x.items.length} items`);
  }
  for (const x of v.protocol_params) {
    const p = paramsFromJson(x.params);
    assert.equal(toHex(encodeProtocolParams(p)), x.encoding);
    assert.equal(protocolParamsHash(p).toString(), x.hash);
    assert.deepEqual(plain(decodeProtocolParams(fromHex(x.encoding))), plain(p));
  }
  for (const x of v.contract_addresses) {
    assert.equal(Address.contract(Address.parse(x.creator), big(x.nonce)).toChecksum(), x.address);
  }
  for (const x of v.validator_changes) {
    const set = sets[x.validator_set_index]!;
    assert.equal(validatorChangeHash(big(x.chain_id), big(x.epoch), set).toString(), x.hash);
  }
  t.diagnostic(
    `matched ${v.list_roots.length} list roots, ${v.protocol_params.length} parameter sets, ` +
      `${v.contract_addresses.length} contract addresses, ${v.validator_changes.length} validator changes`,
  );
});

const decoders: Record<string, (bytes: Uint8Array) => unknown> = {
  transaction: decodeTransaction,
  signed_transaction: decodeSignedTransaction,
  block_header: decodeBlockHeader,
  block: decodeBlock,
  receipt: decodeReceipt,
  event: decodeEvent,
  validator_set: decodeValidatorSet,
  commit_certificate: decodeCommitCertificate,
  protocol_params: decodeProtocolParams,
};

test(`invalid encodings: ${v.invalid_encodings.length} vectors`, (t) => {
  const types = new Set<string>();
  for (const x of v.invalid_encodings) {
    const decoder = decoders[x.type];
    assert.ok(decoder !== undefined, `no decoder for ${x.type}`);
    throwsWith(() => decoder(fromHex(x.bytes)), DecodeError, x.error);
    types.add(x.type);
  }
  t.diagnostic(`refused ${v.invalid_encodings.length} encodings of ${types.size} types with Rust's message`);
});
