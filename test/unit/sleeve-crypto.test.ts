// Sleeve encryption (spec §5.3): the spec's test vector, nonce direction,
// independent DF/non-DF counters, and rejection of replayed, plaintext and
// forged datagrams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SleeveCryptoError, SleeveOpener, SleeveSealer, sleeveNonce } from '../../crypto/sleeve-crypto.js';
import { decodeDatagram, decodeFrames, encodeDatagram, encodeFrames } from '../../dataplane/sleeve/frame-codec.js';
import { classifySpecialFrame, heartbeatFrame } from '../../dataplane/sleeve/special-frames.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
// spec §3.6 session key; A is the outbound side.
const sessionKey = unhex('56739a695eb5240b3f8c075736725a9b5e729ad6e4be9c0af91523fc18f63151');
const A = 0x0a0000000001n;
const B = 0x0a0000000002n;
const vector = unhex(`0a0000000001 8000000000000000
  96773303e7c943606e0faeb258fbbb92 3b3051619058cd7e9c1bd15437d2e688d804e9591357ccc6a86e264687e4b7beedfd01bc`);

function cryptoKind(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof SleeveCryptoError, `expected SleeveCryptoError, got ${String(e)}`);
    return e.kind;
  }
}

test('golden: spec §5.3 vector — DF heartbeat from outbound A, DF seq 0', () => {
  const sealer = new SleeveSealer(sessionKey, true);
  const frames = encodeFrames([{ src: A, dst: B, frame: heartbeatFrame(0x0123456789abcdefn) }]);
  const datagram = encodeDatagram(A, sealer.seal(frames, true));
  assert.equal(hex(datagram), hex(vector));
  assert.equal(datagram.length, 6 + 8 + 16 + 36, 'the 66-byte heartbeat datagram of spec §5.5');
});

test('golden: B (inbound side) opens the vector and finds the heartbeat', () => {
  const opener = new SleeveOpener(sessionKey, true);
  const { sender, body } = decodeDatagram(vector);
  assert.equal(sender, A);
  const opened = opener.open(body);
  assert.equal(opened.df, true);
  assert.equal(opened.seq, 0n);
  const { frames, error } = decodeFrames(opened.plaintext);
  assert.equal(error, undefined);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.src, A);
  assert.equal(frames[0]!.dst, B);
  assert.deepEqual(classifySpecialFrame(frames[0]!.frame), { kind: 'heartbeat', connUID: 0x0123456789abcdefn });
});

test('nonce layout: 0x80 for the outbound sender, 0x00 for the inbound one, then seqNoAndDF', () => {
  assert.equal(hex(sleeveNonce(true, (1n << 63n) | 5n)), '80' + '00'.repeat(15) + '8000000000000005');
  assert.equal(hex(sleeveNonce(false, 7n)), '00'.repeat(16) + '0000000000000007');
});

test('DF and non-DF datagrams count independently from 0, DF marked in bit 63', () => {
  const sealer = new SleeveSealer(sessionKey, false);
  const seqOf = (b: Uint8Array): string => hex(b.subarray(0, 8));
  assert.equal(seqOf(sealer.seal(Uint8Array.of(1), true)), '8000000000000000');
  assert.equal(seqOf(sealer.seal(Uint8Array.of(1), false)), '0000000000000000');
  assert.equal(seqOf(sealer.seal(Uint8Array.of(1), true)), '8000000000000001');
  assert.equal(seqOf(sealer.seal(Uint8Array.of(1), false)), '0000000000000001');
  assert.equal(seqOf(sealer.seal(Uint8Array.of(1), false)), '0000000000000002');
});

test('both directions round-trip; a datagram only opens with the sender direction it was sealed for', () => {
  const fromInbound = new SleeveSealer(sessionKey, false).seal(Uint8Array.of(1, 2, 3), false);
  assert.equal(cryptoKind(() => new SleeveOpener(sessionKey, true).open(fromInbound)), 'authentication-failed',
    'opening as if the sender were outbound uses the wrong nonce');
  assert.deepEqual(Array.from(new SleeveOpener(sessionKey, false).open(fromInbound).plaintext), [1, 2, 3]);
  // Same seq on both paths: the DF bit in the nonce keeps them distinct.
  const sealer = new SleeveSealer(sessionKey, true);
  const opener = new SleeveOpener(sessionKey, true);
  const df0 = sealer.seal(Uint8Array.of(9), true);
  const nd0 = sealer.seal(Uint8Array.of(9), false);
  assert.notEqual(hex(df0.subarray(8)), hex(nd0.subarray(8)));
  assert.equal(opener.open(nd0).df, false);
  assert.equal(opener.open(df0).df, true);
});

test('replayed datagrams are rejected; reordering within the window is fine', () => {
  const sealer = new SleeveSealer(sessionKey, true);
  const opener = new SleeveOpener(sessionKey, true);
  const sent = Array.from({ length: 5 }, (_, i) => sealer.seal(Uint8Array.of(i), true));
  for (const i of [3, 0, 4, 1, 2]) assert.equal(opener.open(sent[i]!).seq, BigInt(i));
  for (const d of sent) assert.equal(cryptoKind(() => opener.open(d)), 'replayed');
  // The non-DF window is separate: non-DF #0 is new even though DF #0 was seen.
  assert.equal(opener.open(sealer.seal(Uint8Array.of(0), false)).seq, 0n);
});

test('plaintext, truncated, forged and wrong-key datagrams are rejected', () => {
  const opener = new SleeveOpener(sessionKey, true);
  const clear = encodeFrames([{ src: A, dst: B, frame: heartbeatFrame(1n) }]);
  assert.equal(cryptoKind(() => opener.open(clear)), 'authentication-failed', 'an unencrypted body');
  assert.equal(cryptoKind(() => opener.open(new Uint8Array(23))), 'too-short');
  const good = decodeDatagram(vector).body;
  for (const at of [0, 7, 8, 23, 24, good.length - 1]) {
    const forged = Uint8Array.from(good);
    forged[at]! ^= 0x01;
    assert.equal(cryptoKind(() => opener.open(forged)), 'authentication-failed', `bit flipped at byte ${at}`);
  }
  const otherKey = Uint8Array.from(sessionKey);
  otherKey[0]! ^= 0xff;
  assert.equal(cryptoKind(() => new SleeveOpener(otherKey, true).open(good)), 'authentication-failed');
  assert.equal(opener.open(good).seq, 0n, 'failed attempts did not consume the genuine datagram');
});

test('forgeries do not move the replay window', () => {
  const sealer = new SleeveSealer(sessionKey, true);
  const opener = new SleeveOpener(sessionKey, true);
  const first = sealer.seal(Uint8Array.of(1), false);
  // A forged body claiming a sequence number far in the future.
  const forged = Uint8Array.from(sealer.seal(Uint8Array.of(2), false));
  new DataView(forged.buffer).setBigUint64(0, 5n << 20n);
  assert.equal(cryptoKind(() => opener.open(forged)), 'authentication-failed');
  assert.equal(opener.open(first).seq, 0n, 'seq 0 still accepted: the window stayed at 0');
});

test('keys must be 32 bytes', () => {
  assert.throws(() => new SleeveSealer(new Uint8Array(31), true), /32 bytes/);
  assert.throws(() => new SleeveOpener(new Uint8Array(33), true), /32 bytes/);
});

test('fuzz: opening arbitrary bytes only ever raises SleeveCryptoError', () => {
  const opener = new SleeveOpener(sessionKey, false);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    assert.notEqual(cryptoKind(() => opener.open(bytes)), 'ok');
  }), { numRuns: 2000 });
});
