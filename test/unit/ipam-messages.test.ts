// IPAM gob message formats against the worked bytes of spec §8.2 and §8.7.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeGobStream, decodeGobStream } from '../../controlplane/mesh/gob/index.js';
import {
  decodeGossipState, decodeUnicast, encodeGossipState, encodeUnicast, gobStreamCodec, parseAddress, Ring,
  type GobStreamCodec, type GossipStateMessage, nodeKey, NO_PROPOSAL,
} from '../../controlplane/ipam/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((b) => parseInt(b, 16)));
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Split a gob stream into its messages (spec §1.8.4), returning each body. */
function messages(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  const readUint = (): number => {
    const b = stream[i++]!;
    if (b < 128) return b;
    const n = 256 - b;
    let v = 0;
    for (let k = 0; k < n; k++) v = v * 256 + stream[i++]!;
    return v;
  };
  while (i < stream.length) {
    const len = readUint();
    out.push(stream.subarray(i, i + len));
    i += len;
  }
  return out;
}

/** Strip the (signed, gob-encoded) type id from a message body. */
function afterTypeId(body: Uint8Array): Uint8Array {
  return body[0]! < 128 ? body.subarray(1) : body.subarray(1 + 256 - body[0]!);
}

const A = 0x0a0000000001n;
const B = 0x0a0000000002n;

function exampleState(): GossipStateMessage {
  const ring = new Ring(parseAddress('10.32.0.0'), parseAddress('10.48.0.0'), A);
  ring.claimForPeers([A, B]);
  return { now: 1700000000n, nicknames: new Map([[A, 'alpha']]), ring: ring.snapshot() };
}

test('gossipState value encodes exactly as the spec §8.2 example', () => {
  const stream = encodeGossipState(gobStreamCodec, exampleState());
  const msgs = messages(stream);
  const value = msgs[msgs.length - 1]!;
  const expected = hex(`
    01 fc ca a7 e2 00
    01 01 fa 0a 00 00 00 00 01 05 ${ascii('alpha')}
    02
      01 fc 0a 20 00 00
      01 fc 0a 30 00 00
      01 fa 0a 00 00 00 00 01
      01 02
        01 fc 0a 20 00 00 01 fa 0a 00 00 00 00 01 02 fd 08 00 00 00
        01 fc 0a 28 00 00 01 fa 0a 00 00 00 00 02 02 fd 08 00 00 00
      01 02 fa 0a 00 00 00 00 01 fa 0a 00 00 00 00 02
      00
    00`);
  assert.equal(toHex(afterTypeId(value)), toHex(expected));
  // Spec: value message length 104 with a two-byte type id.
  assert.equal(afterTypeId(value).length + 2, 104);
});

test('gossipState round-trips through the gob codec', () => {
  const state = exampleState();
  const back = decodeGossipState(gobStreamCodec, encodeGossipState(gobStreamCodec, state));
  assert.equal(back.now, 1700000000n);
  assert.deepEqual([...back.nicknames], [[A, 'alpha']]);
  assert.equal(back.paxos, undefined);
  assert.deepEqual(back.ring!.entries, state.ring!.entries);
  assert.deepEqual(back.ring!.seeds, [A, B]);
  assert.equal(back.ring!.start, parseAddress('10.32.0.0'));
  assert.equal(back.ring!.end, parseAddress('10.48.0.0'));
});

test('gossipState with Paxos claims round-trips (ring omitted)', () => {
  const id = { name: A, uid: 0x1234567890abcdefn };
  const promise = { round: 3n, proposer: id };
  const state: GossipStateMessage = {
    now: 5n, nicknames: new Map(),
    paxos: new Map([
      [nodeKey(id), { id, claims: { promise, accepted: promise, acceptedVal: { value: [A, B], origin: promise } } }],
      [nodeKey({ name: B, uid: 7n }), { id: { name: B, uid: 7n }, claims: { promise, accepted: NO_PROPOSAL, acceptedVal: { value: [], origin: NO_PROPOSAL } } }],
    ]),
  };
  const back = decodeGossipState(gobStreamCodec, encodeGossipState(gobStreamCodec, state));
  assert.equal(back.ring, undefined);
  assert.equal(back.paxos!.size, 2);
  const mine = back.paxos!.get(nodeKey(id))!;
  assert.deepEqual(mine.claims.acceptedVal.value, [A, B]);
  assert.equal(mine.claims.promise.round, 3n);
  assert.equal(mine.claims.promise.proposer.uid, 0x1234567890abcdefn);
  const theirs = back.paxos!.get(nodeKey({ name: B, uid: 7n }))!;
  assert.equal(theirs.claims.accepted.round, 0n);
});

// Spec §8.7: the captured SpaceRequest used type id 81.
const spaceRequestBytes = hex(`00
  25 ff a1 03 01 01 05 ${ascii('Range')} 01 ff a2 00 01 02 01 05 ${ascii('Start')} 01 06 00 01 03 ${ascii('End')} 01 06 00 00 00
  0f ff a2 01 fc 0a 20 00 00 01 fc 0a 20 01 00 00`);

test('SpaceRequest unicast encodes byte-exactly as spec §8.7 (type id 81)', () => {
  const codec81: GobStreamCodec = {
    encode: (type, value) => encodeGobStream([{ type, value }], { firstTypeId: 81 }),
    decode: (b) => decodeGobStream(b),
  };
  const bytes = encodeUnicast(codec81, { kind: 'spaceRequest', range: { start: parseAddress('10.32.0.0'), end: parseAddress('10.32.1.0') } });
  assert.equal(toHex(bytes), toHex(spaceRequestBytes));
});

test('SpaceRequest from the spec decodes', () => {
  const msg = decodeUnicast(gobStreamCodec, spaceRequestBytes);
  assert.deepEqual(msg, { kind: 'spaceRequest', range: { start: parseAddress('10.32.0.0'), end: parseAddress('10.32.1.0') } });
});

test('RingUpdate and SpaceRequestDenied round-trip; kind byte is first', () => {
  const upd = encodeUnicast(gobStreamCodec, { kind: 'ringUpdate', state: exampleState() });
  assert.equal(upd[0], 1);
  const back = decodeUnicast(gobStreamCodec, upd);
  assert.equal(back.kind, 'ringUpdate');
  const denied = encodeUnicast(gobStreamCodec, { kind: 'spaceRequestDenied', range: { start: 5, end: 9 } });
  assert.equal(denied[0], 2);
  assert.deepEqual(decodeUnicast(gobStreamCodec, denied), { kind: 'spaceRequestDenied', range: { start: 5, end: 9 } });
});

test('bad unicast payloads are rejected with a clear error', () => {
  assert.throws(() => decodeUnicast(gobStreamCodec, new Uint8Array([])), /empty unicast payload/);
  assert.throws(() => decodeUnicast(gobStreamCodec, new Uint8Array([9, 0])), /unknown unicast kind 9/);
  assert.throws(() => decodeUnicast(gobStreamCodec, new Uint8Array([0, 0xff, 0xff])), /IPAM message: cannot decode SpaceRequest/);
  assert.throws(() => decodeGossipState(gobStreamCodec, hex('03 ff ff 00')), /IPAM message/);
});
