// Nameserver gossip payload codec: golden bytes from wire spec §9.1 and round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeGossipPayload, encodeGossipPayload } from '../../controlplane/dns/codec.js';
import { DnsGossipError, type GossipPayload } from '../../controlplane/dns/gossip-payload.js';
import { compareForWire, type Entry } from '../../controlplane/dns/entries.js';

const PEER = 0x0a0000000001n;

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}
function ascii(s: string): string {
  return Buffer.from(s, 'ascii').toString('hex');
}

// spec §9.1 example: db.weave.local. v2 tombstoned, web.weave.local. v0 live; value message only.
const GOLDEN_VALUE = hex(
  '5c ffa4 01 fccaa7e200 01 02' +
  `01 02 ${ascii('c2')} 01 fa0a0000000001 01 fc0a200002 01 0f ${ascii('db.weave.local.')} 01 04 01 fccaa7e202 00` +
  `01 02 ${ascii('c1')} 01 fa0a0000000001 01 fc0a200001 01 10 ${ascii('web.weave.local.')} 00` +
  '00',
);

const GOLDEN_PAYLOAD: GossipPayload = {
  timestamp: 1700000000,
  entries: [
    { containerId: 'c1', origin: PEER, addr: 0x0a200001, hostname: 'web.weave.local.', version: 0, tombstone: 0 },
    { containerId: 'c2', origin: PEER, addr: 0x0a200002, hostname: 'db.weave.local.', version: 2, tombstone: 1700000001 },
  ],
};

test('encoding reproduces the spec §9.1 value bytes (entries sorted for the wire)', () => {
  // The captured Go process numbered GossipData 82 (spec §1.8.6: ids are process-global).
  const bytes = encodeGossipPayload(GOLDEN_PAYLOAD, { firstTypeId: 82 });
  const tail = bytes.subarray(bytes.length - GOLDEN_VALUE.length);
  assert.deepEqual(Buffer.from(tail).toString('hex'), Buffer.from(GOLDEN_VALUE).toString('hex'));
});

test('decoding the golden stream yields the entries', () => {
  const bytes = encodeGossipPayload(GOLDEN_PAYLOAD, { firstTypeId: 82 });
  const decoded = decodeGossipPayload(bytes);
  assert.equal(decoded.timestamp, 1700000000);
  assert.deepEqual(decoded.entries, [...GOLDEN_PAYLOAD.entries].sort(compareForWire));
});

const entryArb: fc.Arbitrary<Entry> = fc.record({
  containerId: fc.string({ maxLength: 20 }),
  origin: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
  addr: fc.integer({ min: 0, max: 0xffffffff }),
  hostname: fc.string({ maxLength: 30 }),
  version: fc.integer({ min: -1000, max: 1_000_000 }),
  tombstone: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2_000_000_000 })),
}).map((e) => ({ ...e }));

test('round trip: decode(encode(p)) equals p with entries in wire order', () => {
  fc.assert(fc.property(fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }), fc.array(entryArb, { maxLength: 8 }), (timestamp, entries) => {
    const decoded = decodeGossipPayload(encodeGossipPayload({ timestamp, entries }));
    assert.equal(decoded.timestamp, timestamp);
    assert.deepEqual(decoded.entries, [...entries].sort(compareForWire));
  }));
});

test('wire order is Hostname byte-wise first, then Origin, ContainerID, Addr', () => {
  const e = (hostname: string, origin: bigint, containerId: string, addr: number): Entry =>
    ({ hostname, origin, containerId, addr, version: 0, tombstone: 0 });
  const sorted = [e('b.', 1n, 'a', 1), e('B.', 2n, 'a', 1), e('a.', 2n, 'a', 1), e('a.', 1n, 'b', 1), e('a.', 1n, 'a', 2), e('a.', 1n, 'a', 1)]
    .sort(compareForWire)
    .map((x) => `${x.hostname}${x.origin}${x.containerId}${x.addr}`);
  assert.deepEqual(sorted, ['B.2a1', 'a.1a1', 'a.1a2', 'a.1b1', 'a.2a1', 'b.1a1']);
});

test('garbage payloads raise DnsGossipError, never anything else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    try {
      decodeGossipPayload(bytes);
    } catch (err) {
      assert.ok(err instanceof DnsGossipError, `unexpected ${String(err)}`);
    }
  }));
  assert.throws(() => decodeGossipPayload(new Uint8Array([5, 0xff, 0xff])), DnsGossipError);
});
