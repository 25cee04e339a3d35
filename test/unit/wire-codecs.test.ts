import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parsePeerName, formatPeerName, peerNameToBytes, peerNameFromBytes, encodeHeader, parseHeader, negotiateVersion,
  buildFeatures, encodeFeatures, decodeFeatures, parseFeatures, encodeFrame, FrameParser, MAX_TCP_MSG_SIZE,
  encodeGossipMessage, decodeGossipMessage, encodeTopology, decodeTopology, WireDecodeError, HandshakeError,
} from '../../controlplane/mesh/wire/index.js';
import { ProtocolTag, type GossipEnvelope, type PeerRecord } from '../../controlplane/mesh/types.js';
import { TOPOLOGY_EXAMPLE, specBytes, toHex } from './wire-helpers.js';

test('peer names: full and :: forms (spec §1.6)', () => {
  assert.equal(parsePeerName('0a:00:00:00:00:01'), 0x0a0000000001n);
  assert.equal(parsePeerName('0A:0:00:00:00:1'), 0x0a0000000001n);
  const cases: [string, bigint][] = [
    ['::c:d:e:f', 0x00000c0d0e0fn], ['a::d:e:f', 0x0a00000d0e0fn], ['a:b::e:f', 0x0a0b00000e0fn],
    ['a:b:c::f', 0x0a0b0c00000fn], ['a:b:c:d::', 0x0a0b0c0d0000n], ['::d:e:f', 0x0d0e0fn],
    ['a::e:f', 0x0a0000000e0fn], ['a:b::f', 0x0a0b0000000fn], ['a:b:c::', 0x0a0b0c000000n], ['::e:f', 0x0e0fn],
    ['a::f', 0x0a000000000fn], ['a:b::', 0x0a0b00000000n], ['::f', 0x0fn], ['a::', 0x0a0000000000n],
  ];
  for (const [text, v] of cases) assert.equal(parsePeerName(text), v, text);
  for (const bad of ['', '::', 'a:b:c:d:e', 'a:b:c:d:e:f:0', '1::2::3', 'a::b:c:d:e', 'xyz::', '123::', 'a:b:c:d:e:']) {
    assert.throws(() => parsePeerName(bad), WireDecodeError, bad);
  }
  assert.equal(formatPeerName(0x0a0000000001n), '0a:00:00:00:00:01');
  assert.equal(formatPeerName(0n), '00:00:00:00:00:00');
  assert.equal(formatPeerName((1n << 48n) - 1n), 'ff:ff:ff:ff:ff:ff');
  for (const text of ['ce:12:7f:a0:0b:d9', '00:01:00:00:10:00']) assert.equal(formatPeerName(parsePeerName(text)), text);
  for (const bad of [-1n, 1n << 48n]) assert.throws(() => formatPeerName(bad), RangeError);
  assert.equal(toHex(peerNameToBytes(0x0a0000000102n)), '0a 00 00 00 01 02');
  assert.equal(peerNameFromBytes(Uint8Array.from([0xff, 1, 2, 3, 4, 5])), 0xff0102030405n);
  assert.throws(() => peerNameFromBytes(new Uint8Array(16)), /6 bytes/);
});

test('protocol header and version negotiation (spec §1.2)', () => {
  assert.equal(toHex(encodeHeader({ min: 1, max: 2 })), '77 65 61 76 65 01 02');
  assert.deepEqual(parseHeader(specBytes('77 65 61 76 65 01 02')), { min: 1, max: 2 });
  assert.throws(() => parseHeader(specBytes('47 45 54 20 2f 20 48')), /"weave" protocol header/);
  assert.equal(negotiateVersion({ min: 1, max: 2 }, { min: 1, max: 2 }), 2);
  assert.equal(negotiateVersion({ min: 1, max: 2 }, { min: 1, max: 1 }), 1);
  assert.equal(negotiateVersion({ min: 1, max: 2 }, { min: 2, max: 2 }), 2);
  assert.throws(() => negotiateVersion({ min: 2, max: 2 }, { min: 1, max: 1 }), HandshakeError);
});

const identity = { name: 0x0a0000000001n, nickName: 'alpha', uid: 9243940125061546774n, shortId: 954 };

test('features: build, encode, decode, parse (spec §1.5)', () => {
  const m = buildFeatures({ identity, connId: 11104099411011336216n, trusted: false, overlays: ['fastdp', 'sleeve'] });
  const decoded = decodeFeatures(encodeFeatures(m));
  assert.deepEqual(decoded, m);
  assert.deepEqual(parseFeatures(decoded), {
    name: identity.name, nickName: 'alpha', uid: identity.uid, connId: 11104099411011336216n, shortId: 954,
    trusted: false, overlays: ['fastdp', 'sleeve'],
  });
  const legacy = buildFeatures({ identity, connId: 1n });
  assert.equal(parseFeatures(legacy).overlays, undefined);
  assert.equal(parseFeatures(legacy).trusted, undefined);
});

test('features: validation errors name the field', () => {
  const base = buildFeatures({ identity, connId: 5n });
  for (const key of ['PeerNameFlavour', 'Name', 'NickName', 'UID', 'ConnID']) {
    const m = new Map(base); m.delete(key);
    assert.throws(() => parseFeatures(m), new RegExp(`field ${key} is missing`));
  }
  const bad = (k: string, v: string): Map<string, string> => new Map([...base, [k, v]]);
  assert.throws(() => parseFeatures(bad('PeerNameFlavour', 'hash')), /flavour mismatch.*'hash'/);
  assert.throws(() => parseFeatures(bad('UID', '-1')), /UID is not a decimal/);
  assert.throws(() => parseFeatures(bad('UID', '18446744073709551616')), /does not fit in 64 bits/);
  assert.throws(() => parseFeatures(bad('ShortID', '4096')), /does not fit in 12 bits/);
  assert.throws(() => parseFeatures(bad('Trusted', 'yes')), /Trusted is not a boolean/);
  assert.equal(parseFeatures(bad('Trusted', 'T')).trusted, true);
  assert.throws(() => parseFeatures(bad('Name', 'nope')), /invalid peer name/);
  assert.equal(parseFeatures(bad('Unknown', 'x')).name, identity.name, 'unknown keys are ignored');
});

test('framing: u32 BE prefix, incremental parse, limit refused at the header (spec §2.1)', () => {
  assert.equal(toHex(encodeFrame(Uint8Array.of(0))), '00 00 00 01 00');
  assert.throws(() => encodeFrame(new Uint8Array(MAX_TCP_MSG_SIZE + 1)), /exceeds/);
  const p = new FrameParser();
  const stream = new Uint8Array([...encodeFrame(Uint8Array.of(1, 2, 3)), ...encodeFrame(new Uint8Array(0)), ...encodeFrame(Uint8Array.of(9))]);
  const got: Uint8Array[] = [];
  for (const b of stream) got.push(...p.push(Uint8Array.of(b)));
  assert.deepEqual(got, [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(9)]);
  assert.equal(p.pendingBytes, 0);
  const q = new FrameParser();
  assert.throws(() => q.push(specBytes('00 a0 00 01')), WireDecodeError);
  assert.throws(() => q.push(Uint8Array.of(0)), WireDecodeError, 'a failed parser stays failed');
});

test('gossip envelope: spec §4.1 broadcast example byte for byte', () => {
  const env: GossipEnvelope = { tag: ProtocolTag.GossipBroadcast, channel: 'topology', src: 0x0a0000000001n, payload: Uint8Array.of(0xaa, 0xbb) };
  const body = encodeGossipMessage(env);
  assert.equal(toHex(body), toHex(specBytes(`06
    0b 0c 00 08 74 6f 70 6f 6c 6f 67 79
    09 06 00 fa 0a 00 00 00 00 01
    05 0a 00 02 aa bb`)));
  assert.deepEqual(decodeGossipMessage(body), env);
  const uni: GossipEnvelope = { tag: ProtocolTag.GossipUnicast, channel: 'IPallocation', src: 1n, dst: 2n, payload: new Uint8Array(0) };
  assert.deepEqual(decodeGossipMessage(encodeGossipMessage(uni)), uni);
  const g: GossipEnvelope = { tag: ProtocolTag.Gossip, channel: 'nameserver', src: 0xffffffffffffn, payload: Uint8Array.of(1) };
  assert.deepEqual(decodeGossipMessage(encodeGossipMessage(g)), g);
  assert.throws(() => decodeGossipMessage(Uint8Array.of(7, 0)), /not a gossip tag/);
  assert.throws(() => decodeGossipMessage(specBytes('04 0b 0c 00 08 74 6f 70 6f 6c 6f 67 79')), /expected 3 values/);
  assert.throws(() => decodeGossipMessage(specBytes('04 09 06 00 fa 0a 00 00 00 00 01 09 06 00 fa 0a 00 00 00 00 01 05 0a 00 02 aa bb')), /channel name/);
});

test('spec §1.9: the captured topology message prefix', () => {
  const records: PeerRecord[] = [{
    summary: { name: 0x0a0000000001n, nickName: 'alpha', uid: 1n, version: 1n, shortId: 1, hasShortId: true }, connections: [],
  }];
  const body = encodeGossipMessage({ tag: ProtocolTag.Gossip, channel: 'topology', src: 0x0a0000000001n, payload: encodeTopology(records) });
  assert.equal(toHex(body.subarray(0, 23)), toHex(specBytes('04 0b 0c 00 08 "topology" 09 06 00 fa 0a 00 00 00 00 01')));
  // then the []byte value (id 5 = 0a, singleton 00) holding the topology stream
  const payload = decodeGossipMessage(body).payload;
  assert.equal(toHex(body.subarray(body.length - payload.length - 4, body.length - payload.length)), `0a 00 ff ${payload.length.toString(16)}`);
  assert.equal(toHex(payload.subarray(0, 3)), '62 ff 81', 'fresh stream: peerSummary gets id 65');
});

const topologyRecords: PeerRecord[] = [
  {
    summary: { name: 0x0a0000000001n, nickName: 'alpha', uid: 1234n, version: 7n, shortId: 0x123, hasShortId: true },
    connections: [{ name: 0x0a0000000002n, remoteTcpAddr: '192.168.1.2:6783', outbound: true, established: true }],
  },
  { summary: { name: 0x0a0000000002n, nickName: 'beta', uid: 5678n, version: 3n, shortId: 0x456, hasShortId: true }, connections: [] },
];

test('topology codec: spec §4.5 worked example byte for byte, and back', () => {
  const expected = TOPOLOGY_EXAMPLE;
  assert.equal(toHex(encodeTopology(topologyRecords, { firstTypeId: 66 })), toHex(expected));
  assert.deepEqual(decodeTopology(expected), topologyRecords);
  assert.deepEqual(decodeTopology(encodeTopology(topologyRecords)), topologyRecords);
  // placeholder peer: zero fields omitted on the wire, zero on decode
  const placeholder: PeerRecord[] = [{ summary: { name: 5n, nickName: '', uid: 0n, version: 0n, shortId: 0, hasShortId: false }, connections: [] }];
  assert.deepEqual(decodeTopology(encodeTopology(placeholder)), placeholder);
  assert.throws(() => decodeTopology(expected.subarray(0, 150)), WireDecodeError);
});
