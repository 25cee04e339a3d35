// Topology gossip without recomputing the world (spec §4.5 wire format kept
// byte for byte): per-record encodings joined into payloads, connection lists
// decoded only for records that win, envelopes built with one payload copy,
// a simulated 20-router mesh that forms with little re-encoding and decoding,
// and the warning for an established connection that still has no route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeTopology, decodeTopologyFiltered, encodeTopology, encodeTopologyRecord, joinTopology,
  encodeGossipMessage, decodeGossipMessage, WireDecodeError,
} from '../../controlplane/mesh/wire/index.js';
import { GobEncoder } from '../../controlplane/mesh/gob/index.js';
import { wireCodec, type MeshCodec } from '../../controlplane/mesh/codec.js';
import { Peers } from '../../controlplane/mesh/peers.js';
import { ProtocolTag, type ConnectionSummary, type PeerRecord, type PeerSummary } from '../../controlplane/mesh/types.js';
import { ROUTE_STALL_WARN_MS } from '../../controlplane/mesh/router.js';
import { formMeshThroughFirst, identity, sentOn, TestMesh } from './mesh-harness.js';

const summaryArb: fc.Arbitrary<PeerSummary> = fc.record({
  name: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
  nickName: fc.string({ maxLength: 20 }),
  uid: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  version: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  shortId: fc.integer({ min: 0, max: 0xfff }),
  hasShortId: fc.boolean(),
}).map((r) => ({ ...r }));
const connArb: fc.Arbitrary<ConnectionSummary> = fc.record({
  name: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
  remoteTcpAddr: fc.string({ maxLength: 24 }),
  outbound: fc.boolean(),
  established: fc.boolean(),
}).map((r) => ({ ...r }));
const recordArb: fc.Arbitrary<PeerRecord> = fc.tuple(summaryArb, fc.array(connArb, { maxLength: 6 }))
  .map(([summary, connections]) => ({ summary, connections }));

test('joined per-record encodings are byte for byte the whole-stream encoding, in any order and grouping', () => {
  fc.assert(fc.property(fc.array(recordArb, { maxLength: 8 }), (records) => {
    const joined = joinTopology(records.map(encodeTopologyRecord));
    assert.deepEqual(joined, encodeTopology(records));
    assert.deepEqual(decodeTopology(joined), records);
  }), { numRuns: 100 });
});

test('filtered topology decoding: connection lists only of wanted records; framing still checked', () => {
  const records: PeerRecord[] = [1n, 2n, 3n].map((n) => ({
    summary: { name: n, nickName: `p${n}`, uid: 7n, version: n * 10n, shortId: Number(n), hasShortId: true },
    connections: [{ name: n + 1n, remoteTcpAddr: `10.0.0.${n}:6783`, outbound: true, established: false }],
  }));
  const bytes = encodeTopology(records);
  const got = decodeTopologyFiltered(bytes, (s) => s.version >= 20n);
  assert.deepEqual(got.map((r) => r.summary), records.map((r) => r.summary));
  assert.equal(got[0]!.connections, undefined);
  assert.deepEqual(got[1]!.connections, records[1]!.connections);
  assert.deepEqual(got[2]!.connections, records[2]!.connections);
  assert.throws(() => decodeTopologyFiltered(bytes.subarray(0, bytes.length - 3), () => false), WireDecodeError);
  assert.throws(() => decodeTopologyFiltered(joinTopology([encodeTopologyRecord(records[0]!)]).subarray(0, 60), () => false), WireDecodeError);
});

test('applyUpdate: a record without its connection list is received but never applied; ours still outdoes an old self', () => {
  const peers = new Peers({ name: 0x10n, nickName: 'us', uid: 1n, shortId: 1 });
  const a: PeerSummary = { name: 0x20n, nickName: 'a', uid: 5n, version: 3n, shortId: 2, hasShortId: true };
  peers.applyUpdate([{ summary: a, connections: [{ name: 0x10n, remoteTcpAddr: 'x:1', outbound: true, established: true }] }]);
  assert.equal(peers.wantsRecord(a), false, 'the same record again is not wanted');
  assert.equal(peers.wantsRecord({ ...a, version: 4n }), true, 'a newer one is');
  assert.equal(peers.wantsRecord({ ...a, name: 0x30n }), true, 'an unknown peer is');
  const r = peers.applyUpdate([
    { summary: a, connections: undefined },
    { summary: { name: 0x10n, nickName: 'us', uid: 99n, version: 8n, shortId: 1, hasShortId: true }, connections: undefined },
  ]);
  assert.deepEqual([...r.received].sort(), [0x10n, 0x20n]);
  assert.equal(r.improved.size, 0);
  assert.equal(peers.get(0x20n)!.connections.size, 1, 'A keeps its connections');
  assert.equal(r.ourselvesBumped, true);
  assert.equal(peers.ourselves.version, 9n);
});

test('gossip envelopes: payload copied in once, bytes as the generic gob encoder gives them', () => {
  for (const size of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 300_000]) {
    const payload = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
    for (const env of [
      { tag: ProtocolTag.Gossip, channel: 'topology', src: 0x0a0000000001n, payload } as const,
      { tag: ProtocolTag.GossipUnicast, channel: 'IPallocation', src: 0xfen, dst: 0xffffffffffffn, payload } as const,
    ]) {
      const enc = new GobEncoder();
      enc.encode({ kind: 'string' }, env.channel);
      enc.encode({ kind: 'uint' }, env.src);
      if (env.tag === ProtocolTag.GossipUnicast) enc.encode({ kind: 'uint' }, env.dst);
      enc.encode({ kind: 'bytes' }, env.payload);
      const stream = enc.takeBytes();
      const body = encodeGossipMessage(env);
      assert.equal(body[0], env.tag);
      assert.ok(Buffer.from(body.subarray(1)).equals(stream), `payload of ${size} bytes`);
      assert.deepEqual(decodeGossipMessage(body), env);
    }
  }
});

/** The wire codec, counting the work topology gossip does. */
function countingCodec(): { codec: MeshCodec; counts: { recordsEncoded: number; joins: number; envelopes: number; recordsReceived: number; listsDecoded: number } } {
  const counts = { recordsEncoded: 0, joins: 0, envelopes: 0, recordsReceived: 0, listsDecoded: 0 };
  const codec: MeshCodec = {
    ...wireCodec,
    encodeTopologyRecord: (r) => { counts.recordsEncoded++; return wireCodec.encodeTopologyRecord(r); },
    joinTopology: (rs) => { counts.joins++; return wireCodec.joinTopology(rs); },
    encodeEnvelope: (e) => { counts.envelopes++; return wireCodec.encodeEnvelope(e); },
    decodeTopologyFiltered: (bytes, want) => {
      const out = wireCodec.decodeTopologyFiltered(bytes, want);
      counts.recordsReceived += out.length;
      counts.listsDecoded += out.filter((r) => r.connections !== undefined).length;
      return out;
    },
  };
  return { codec, counts };
}

test('a 20-router mesh forms encoding each record version once per router and decoding few connection lists', async () => {
  const n = 20;
  const { codec, counts } = countingCodec();
  const mesh = new TestMesh(n, { codec });
  try {
    await formMeshThroughFirst(mesh, n);
    await mesh.advance(5_000);
    for (const p of mesh.peers) {
      assert.equal(p.router.peers.size, n, `router ${p.index + 1} lists every peer`);
      assert.equal(p.router.peers.ourselves.connections.size, n - 1, `router ${p.index + 1} is connected to every other`);
    }
    // Each router's own record changes ~3 times per connection; remote records
    // are encoded again only when a newer version arrived.
    const versions = mesh.peers.reduce((s, p) => s + Number(p.router.peers.ourselves.version), 0);
    assert.ok(counts.recordsEncoded <= n * versions, `${counts.recordsEncoded} record encodings for ${versions} record versions`);
    // Every message sent is decoded once by its receiver here, so records received = records sent.
    assert.ok(counts.recordsEncoded * 5 < counts.recordsReceived, `${counts.recordsEncoded} encodings for ${counts.recordsReceived} records sent`);
    assert.ok(counts.listsDecoded * 3 < counts.recordsReceived, `${counts.listsDecoded} connection lists decoded of ${counts.recordsReceived} records received`);
    // Topology updates go as tag 6 along the broadcast trees, each reaching a
    // peer once (Weave 2.8 sends them with tag 4, spec §4.5); tag 4 carries only
    // gossip-down to new peers and what it improves. Relaying improved updates with tag 4 to random
    // neighbours at every hop sent ~8000 messages here.
    const byTag = new Map<number, number>();
    for (const p of mesh.peers) {
      for (const c of p.router.allConnections()) {
        for (const b of sentOn(c)) byTag.set(b[0]!, (byTag.get(b[0]!) ?? 0) + 1);
      }
    }
    const [broadcasts, gossips] = [byTag.get(ProtocolTag.GossipBroadcast) ?? 0, byTag.get(ProtocolTag.Gossip) ?? 0];
    assert.ok(broadcasts > 0, 'topology updates are broadcast');
    assert.ok(gossips <= 3 * n, `${gossips} tag-4 messages: only gossip-down and its improvements`);
    assert.ok(broadcasts + gossips < 5 * n * n, `${broadcasts + gossips} topology messages for ${n} routers`);
    // A broadcast queued on several next hops is joined (and enveloped) once for all of them.
    assert.ok(counts.joins * 2 < broadcasts + gossips, `${counts.joins} payloads joined for ${broadcasts + gossips} topology messages`);
    assert.ok(counts.envelopes * 2 < broadcasts + gossips, `${counts.envelopes} envelopes encoded for ${broadcasts + gossips} topology messages`);
    process.stdout.write(`# ${n} routers: ${counts.joins} payloads joined, ${counts.envelopes} enveloped, ${counts.recordsEncoded} records encoded; ${counts.recordsReceived} received, ${counts.listsDecoded} connection lists decoded; ${broadcasts} broadcasts, ${gossips} tag-4 messages\n`);
  } finally {
    mesh.stop();
  }
});

test('an established connection still without a route after 5 s is logged with the reason', async () => {
  const warnings: string[] = [];
  const mesh = new TestMesh(2, { establishImmediately: false });
  const logged = mesh.add(identity(3), { establishImmediately: false, logger: { info() {}, warn: (m) => warnings.push(m) } });
  try {
    mesh.connect(logged.index, 0);
    mesh.connect(1, 0);
    await mesh.advance(100);
    const [us, hub] = [logged.router, mesh.peers[0]!.router];
    // Our side is confirmed by the data plane; the hub's side never is, so its record never lists us as established.
    us.setConnectionEstablished(hub.ourName, true);
    hub.setConnectionEstablished(mesh.peers[1]!.identity.name, true);
    mesh.peers[1]!.router.setConnectionEstablished(hub.ourName, true);
    await mesh.advance(ROUTE_STALL_WARN_MS - 100);
    assert.deepEqual(warnings, []);
    await mesh.advance(200);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /established 5 s ago but no route to it yet: its record here \(version \d+\) lists its connection to us as not established/);
    assert.equal(mesh.peers[1]!.router.routes.unicastNextHop(hub.ourName), hub.ourName, 'a connection confirmed at both ends has its route');
  } finally {
    mesh.stop();
  }
});
