// Property tests: malformed input to every decoder ends in a typed decode error, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeGobStream, GobDecoder, GobDecodeError } from '../../controlplane/mesh/gob/index.js';
import {
  FrameParser, decodeGossipMessage, encodeGossipMessage, decodeTopology, encodeTopology, decodeFeatures, encodeFeatures,
  buildFeatures, parseFeatures, parsePeerName, WireDecodeError,
} from '../../controlplane/mesh/wire/index.js';
import { ProtocolTag, type PeerRecord } from '../../controlplane/mesh/types.js';

const records: PeerRecord[] = [
  {
    summary: { name: 0x0a0000000001n, nickName: 'alpha', uid: 1234n, version: 7n, shortId: 0x123, hasShortId: true },
    connections: [{ name: 0x0a0000000002n, remoteTcpAddr: '192.168.1.2:6783', outbound: true, established: true }],
  },
  { summary: { name: 0x0a0000000002n, nickName: 'beta', uid: 5678n, version: 3n, shortId: 0x456, hasShortId: true }, connections: [] },
];
const seeds = {
  topology: encodeTopology(records),
  envelope: encodeGossipMessage({ tag: ProtocolTag.GossipUnicast, channel: 'IPallocation', src: 1n, dst: 2n, payload: encodeTopology(records) }),
  features: encodeFeatures(buildFeatures({ identity: { name: 1n, nickName: 'n', uid: 2n, shortId: 3 }, connId: 4n, overlays: ['sleeve'] })),
};

/** Random edits of a valid input: truncation, byte flips, inserted garbage, forged length bytes. */
function mutated(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.nat(seed.length).map((n) => seed.slice(0, n)),
    fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const b = Uint8Array.from(seed);
      for (const [i, v] of edits) b[i] = v;
      return b;
    }),
    fc.tuple(fc.nat(seed.length), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, ins]) =>
      Uint8Array.from([...seed.subarray(0, i), ...ins, ...seed.subarray(i)])),
    fc.tuple(fc.nat(seed.length - 1), fc.constantFrom(0xf8, 0xf9, 0xfa, 0xfc, 0xff, 0x7f)).map(([i, v]) => {
      const b = Uint8Array.from(seed); b[i] = v; return b;
    }),
    fc.uint8Array({ maxLength: 300 }),
  );
}

function onlyTyped(run: () => unknown, ...types: (new (...a: never[]) => Error)[]): void {
  try { run(); } catch (err) {
    if (!types.some((t) => err instanceof t)) throw new Error(`unexpected ${String(err)}`, { cause: err });
  }
}

const runs = { numRuns: 1500 };

test('gob decoder: mutated streams only raise GobDecodeError', () => {
  fc.assert(fc.property(mutated(seeds.topology), (b) => onlyTyped(() => decodeGobStream(b), GobDecodeError)), runs);
  fc.assert(fc.property(mutated(seeds.features), fc.integer({ min: 1, max: 7 }), (b, step) => onlyTyped(() => {
    const dec = new GobDecoder();
    for (let i = 0; i < b.length; i += step) dec.push(b.subarray(i, i + step));
    dec.end();
  }, GobDecodeError)), runs);
});

test('framing: random chunks only raise WireDecodeError, never allocate a forged length', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => onlyTyped(() => {
    const p = new FrameParser();
    for (const c of chunks) p.push(c);
    assert.ok(p.pendingBytes <= chunks.reduce((n, c) => n + c.length, 0));
  }, WireDecodeError)), runs);
});

test('envelope, topology, features: mutated input only raises WireDecodeError', () => {
  fc.assert(fc.property(mutated(seeds.envelope), (b) => onlyTyped(() => decodeGossipMessage(b), WireDecodeError)), runs);
  fc.assert(fc.property(mutated(seeds.topology), (b) => onlyTyped(() => decodeTopology(b), WireDecodeError)), runs);
  fc.assert(fc.property(mutated(seeds.features), (b) => onlyTyped(() => parseFeatures(decodeFeatures(b)), WireDecodeError)), runs);
});

test('features and peer names: arbitrary strings only raise WireDecodeError', () => {
  const key = fc.constantFrom('PeerNameFlavour', 'Name', 'NickName', 'UID', 'ConnID', 'ShortID', 'Trusted', 'Overlays', 'X');
  fc.assert(fc.property(fc.array(fc.tuple(key, fc.string({ maxLength: 24 }))), (entries) =>
    onlyTyped(() => parseFeatures(new Map(entries)), WireDecodeError)), runs);
  fc.assert(fc.property(fc.string({ maxLength: 24 }), (s) => onlyTyped(() => parsePeerName(s), WireDecodeError)), runs);
});

test('round trips: envelopes and topology records', () => {
  const name = fc.bigInt({ min: 0n, max: (1n << 48n) - 1n });
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const plain = { noNullPrototype: true } as const;
  const rec = fc.record({
    summary: fc.record({ name, nickName: fc.string(), uid: u64, version: u64, shortId: fc.integer({ min: 0, max: 4095 }), hasShortId: fc.boolean() }, plain),
    connections: fc.array(fc.record({ name, remoteTcpAddr: fc.string(), outbound: fc.boolean(), established: fc.boolean() }, plain), { maxLength: 4 }),
  }, plain);
  fc.assert(fc.property(fc.array(rec, { maxLength: 5 }), (rs) => { assert.deepEqual(decodeTopology(encodeTopology(rs)), rs); }), { numRuns: 300 });
  fc.assert(fc.property(fc.string(), u64, u64, fc.uint8Array(), (channel, src, dst, payload) => {
    const env = { tag: ProtocolTag.GossipUnicast as const, channel, src, dst, payload };
    assert.deepEqual(decodeGossipMessage(encodeGossipMessage(env)), env);
  }), { numRuns: 300 });
});
