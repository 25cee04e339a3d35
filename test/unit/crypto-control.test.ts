import { test } from 'node:test';
import assert from 'node:assert/strict';
import sodium from 'sodium-native';
import {
  keyPairFromSecretKey, deriveSessionKey, precomputeSharedKey, generateEphemeralKeyPair, ControlCipher, DecryptError, controlNonce,
} from '../../crypto/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// spec §3.6
const privA = hex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');
const privB = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const password = new TextEncoder().encode('secret');

test('spec §3.6 vector: public keys and session key', () => {
  const a = keyPairFromSecretKey(privA);
  const b = keyPairFromSecretKey(privB);
  assert.equal(toHex(a.publicKey), '07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c');
  assert.equal(toHex(b.publicKey), '493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d');
  const expected = '56739a695eb5240b3f8c075736725a9b5e729ad6e4be9c0af91523fc18f63151';
  assert.equal(toHex(deriveSessionKey(b.publicKey, a.secretKey, password)), expected);
  assert.equal(toHex(deriveSessionKey(a.publicKey, b.secretKey, password)), expected);
});

test('spec §3.6 vector: sealed heartbeats in both directions', () => {
  const key = hex('56739a695eb5240b3f8c075736725a9b5e729ad6e4be9c0af91523fc18f63151');
  const outbound = new ControlCipher(key, true);
  const inbound = new ControlCipher(key, false);
  const first = outbound.seal(Uint8Array.of(0));
  assert.equal(toHex(first), '745b82a71617a9477e9b56ed408d36b8ef');
  inbound.seal(Uint8Array.of(0)); // inbound's message #0
  const second = inbound.seal(Uint8Array.of(0));
  assert.equal(toHex(second), 'a949aaa4cff036d7b0dd9185fef3dc1b62');
  assert.deepEqual(inbound.open(first), Uint8Array.of(0));
});

test('precompute equals NaCl crypto_box_beforenm (checked via crypto_box_easy)', () => {
  const a = generateEphemeralKeyPair();
  const b = generateEphemeralKeyPair();
  const k = precomputeSharedKey(b.publicKey, a.secretKey);
  const nonce = controlNonce(true, 5n);
  const msg = new TextEncoder().encode('hello');
  const viaBox = new Uint8Array(msg.length + 16);
  sodium.crypto_box_easy(viaBox, msg, nonce, b.publicKey, a.secretKey);
  const viaSecretbox = new Uint8Array(msg.length + 16);
  sodium.crypto_secretbox_easy(viaSecretbox, msg, nonce, k);
  assert.deepEqual(viaSecretbox, viaBox);
});

test('counters are per direction; a wrong key or replay fails with DecryptError', () => {
  const key = generateEphemeralKeyPair().publicKey; // any 32 bytes
  const a = new ControlCipher(key, true);
  const b = new ControlCipher(key, false);
  const m0 = a.seal(Uint8Array.of(1)); const m1 = a.seal(Uint8Array.of(2));
  assert.deepEqual(b.open(m0), Uint8Array.of(1));
  assert.throws(() => b.open(m0), DecryptError, 'replayed message must not open');
  assert.deepEqual(b.open(m1), Uint8Array.of(2));
  const other = new ControlCipher(generateEphemeralKeyPair().publicKey, false);
  assert.throws(() => other.open(a.seal(Uint8Array.of(3))), /password mismatch\?/);
});
