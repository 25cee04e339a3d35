// Several routers in one process exchanging real (gob-encoded) messages over
// in-memory links: topology convergence, routes, broadcast spanning tree,
// garbage collection, duplicate/self/collision handling, surrogate relaying.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestMesh, identity, linkPair, handshakes, sentOn } from './mesh-harness.js';
import { RawGossipData, type GossipData, type Gossiper } from '../../controlplane/mesh/gossip.js';
import { PeerNameCollisionError, SelfConnectionError, DuplicateConnectionError, UnknownRemoteError } from '../../controlplane/mesh/errors.js';
import { ProtocolTag, type PeerName } from '../../controlplane/mesh/types.js';
import { wireCodec } from '../../controlplane/mesh/codec.js';

function chain(n: number): TestMesh {
  const mesh = new TestMesh(n);
  for (let i = 0; i + 1 < n; i++) mesh.connect(i, i + 1);
  return mesh;
}

/** Records every delivery and relays broadcasts onwards unchanged, like DNS does. */
class RecordingGossiper implements Gossiper {
  broadcasts: { src: PeerName; text: string }[] = [];
  unicasts: { src: PeerName; text: string }[] = [];
  gossips: string[] = [];
  state = new Set<string>();
  failNext = false;
  onGossipUnicast(src: PeerName, payload: Uint8Array): void {
    if (this.failNext) throw new Error('cannot decode');
    this.unicasts.push({ src, text: Buffer.from(payload).toString() });
  }
  /** Relays only what is new, so a duplicate delivery shows up in `broadcasts` instead of storming. */
  onGossipBroadcast(src: PeerName, payload: Uint8Array): GossipData | undefined {
    const text = Buffer.from(payload).toString();
    const seen = this.broadcasts.some((b) => b.text === text);
    this.broadcasts.push({ src, text });
    return seen ? undefined : new RawGossipData([payload]);
  }
  gossip(): GossipData | undefined {
    return this.state.size > 0 ? new RawGossipData([...this.state].map((s) => Buffer.from(s))) : undefined;
  }
  onGossip(payload: Uint8Array): GossipData | undefined {
    const s = Buffer.from(payload).toString();
    this.gossips.push(s);
    if (this.state.has(s)) return undefined;
    this.state.add(s);
    return new RawGossipData([payload]);
  }
}

test('five routers in a chain converge to the full view with symmetric established connections', async () => {
  const mesh = chain(5);
  try {
    await mesh.advance(5_000);
    const all = mesh.knownNames(0);
    assert.equal(all.length, 5);
    for (let i = 0; i < 5; i++) assert.deepEqual(mesh.knownNames(i), all, `router ${i} knows every peer`);
    // Every router's view of peer 2 has its two connections, both established.
    for (let i = 0; i < 5; i++) {
      const p2 = mesh.peers[i]!.router.peers.get(mesh.peers[2]!.identity.name)!;
      assert.deepEqual([...p2.connections.keys()].sort(), [mesh.peers[1]!.identity.name, mesh.peers[3]!.identity.name].sort());
      assert.ok([...p2.connections.values()].every((c) => c.established));
      assert.equal(p2.nickName, 'host3');
    }
    // Multi-hop data-plane route from end to end.
    const r0 = mesh.peers[0]!.router;
    assert.equal(r0.routes.unicastNextHop(mesh.peers[4]!.identity.name), mesh.peers[1]!.identity.name);
    assert.equal(mesh.peers[4]!.router.routes.unicastNextHop(mesh.peers[0]!.identity.name), mesh.peers[3]!.identity.name);
  } finally {
    mesh.stop();
  }
});

test('pending (not established) connections are used by gossip routes but not data-plane routes', async () => {
  const mesh = new TestMesh(3, { establishImmediately: false });
  try {
    mesh.connect(0, 1);
    mesh.connect(1, 2);
    await mesh.advance(3_000);
    const [a, b, c] = mesh.peers.map((p) => p.router) as [typeof mesh.peers[0]['router'], typeof mesh.peers[0]['router'], typeof mesh.peers[0]['router']];
    const cName = mesh.peers[2]!.identity.name;
    const bName = mesh.peers[1]!.identity.name;
    assert.equal(a.routes.unicastAllNextHop(cName), bName);
    assert.equal(a.routes.unicastNextHop(cName), undefined);
    // Only one side confirms: still not symmetric.
    a.setConnectionEstablished(bName, true);
    await mesh.advance(3_000);
    assert.equal(a.routes.unicastNextHop(bName), undefined);
    b.setConnectionEstablished(mesh.peers[0]!.identity.name, true);
    b.setConnectionEstablished(cName, true);
    c.setConnectionEstablished(bName, true);
    await mesh.advance(3_000);
    assert.equal(a.routes.unicastNextHop(cName), bName);
    assert.equal(c.routes.unicastNextHop(mesh.peers[0]!.identity.name), bName);
  } finally {
    mesh.stop();
  }
});

test('a broadcast reaches every peer exactly once over a meshed topology with cycles', async () => {
  const mesh = new TestMesh(6);
  try {
    const edges: [number, number][] = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 0], [0, 3], [1, 4], [2, 5]];
    for (const [i, j] of edges) mesh.connect(i, j);
    const gossipers = mesh.peers.map((p) => {
      const g = new RecordingGossiper();
      return { g, channel: p.router.newGossipChannel('test', g) };
    });
    await mesh.advance(5_000);
    for (let src = 0; src < 6; src++) {
      gossipers[src]!.channel.gossipBroadcast(new RawGossipData([Buffer.from(`from ${src}`)]));
      await mesh.advance(10);
    }
    for (let i = 0; i < 6; i++) {
      const got = gossipers[i]!.g.broadcasts.map((b) => b.text).sort();
      const want = [0, 1, 2, 3, 4, 5].filter((s) => s !== i).map((s) => `from ${s}`);
      assert.deepEqual(got, want, `peer ${i} received each broadcast once`);
      for (const b of gossipers[i]!.g.broadcasts) assert.equal(b.text, `from ${mesh.peers.findIndex((p) => p.identity.name === b.src)}`);
    }
  } finally {
    mesh.stop();
  }
});

test('gossip unicast crosses several hops; periodic gossip spreads state; a failing handler closes the connection', async () => {
  const mesh = chain(4);
  try {
    const gs = mesh.peers.map((p) => {
      const g = new RecordingGossiper();
      return { g, channel: p.router.newGossipChannel('test', g) };
    });
    await mesh.advance(5_000);
    gs[0]!.channel.gossipUnicast(mesh.peers[3]!.identity.name, Buffer.from('hello'));
    await mesh.advance(10);
    assert.deepEqual(gs[3]!.g.unicasts, [{ src: mesh.peers[0]!.identity.name, text: 'hello' }]);
    assert.equal(gs[1]!.g.unicasts.length + gs[2]!.g.unicasts.length, 0);

    gs[3]!.g.state.add('item-from-3');
    await mesh.advance(31_000);
    for (let i = 0; i < 4; i++) assert.ok(gs[i]!.g.state.has('item-from-3'), `peer ${i} has the gossiped item`);

    gs[3]!.g.failNext = true;
    gs[0]!.channel.gossipUnicast(mesh.peers[3]!.identity.name, Buffer.from('boom'));
    await mesh.advance(10);
    assert.equal(mesh.peers[3]!.router.connectionTo(mesh.peers[2]!.identity.name), undefined);
    assert.equal(mesh.peers[2]!.router.connectionTo(mesh.peers[3]!.identity.name), undefined);
  } finally {
    mesh.stop();
  }
});

test('partition: unreachable peers are garbage-collected, and come back after the heal', async () => {
  const mesh = chain(4);
  try {
    await mesh.advance(5_000);
    assert.equal(mesh.knownNames(0).length, 4);
    mesh.disconnect(1, 2);
    await mesh.advance(5_000);
    const n = (i: number): PeerName => mesh.peers[i]!.identity.name;
    assert.deepEqual(mesh.knownNames(0), [n(0), n(1)]);
    assert.deepEqual(mesh.knownNames(3), [n(2), n(3)]);
    assert.deepEqual(mesh.peers[0]!.removed.sort(), [n(2), n(3)]);
    assert.deepEqual(mesh.peers[1]!.removed.sort(), [n(2), n(3)]);
    mesh.connect(1, 2);
    await mesh.advance(5_000);
    for (let i = 0; i < 4; i++) assert.equal(mesh.knownNames(i).length, 4, `router ${i} sees everyone again`);
    assert.equal(mesh.peers[0]!.router.routes.unicastNextHop(n(3)), n(1));
  } finally {
    mesh.stop();
  }
});

test('duplicate connections: both ends keep the one with the lower connUID', async () => {
  const mesh = new TestMesh(2);
  try {
    const [first] = mesh.connect(0, 1, 5000n);
    // A second connection with a lower connUID replaces the first on both ends.
    const [second] = mesh.connect(1, 0, 3000n);
    await mesh.advance(100);
    assert.ok(first.closed);
    assert.equal(mesh.peers[0]!.router.connectionTo(mesh.peers[1]!.identity.name)?.connUID, 3000n);
    assert.equal(mesh.peers[1]!.router.connectionTo(mesh.peers[0]!.identity.name), second);
    // A third with a higher connUID is refused.
    assert.throws(() => mesh.connect(0, 1, 9000n), DuplicateConnectionError);
    await mesh.advance(100);
    assert.equal(mesh.peers[1]!.router.connectionTo(mesh.peers[0]!.identity.name), second);
    assert.ok(!second.closed);
  } finally {
    mesh.stop();
  }
});

test('connecting to ourselves and to another router with our name are refused', async () => {
  const mesh = new TestMesh(2);
  try {
    const me = mesh.peers[0]!;
    const [hs] = handshakes(identity(9), '10.0.0.9', me.identity, '10.0.0.1:6783', 77n);
    const [la] = linkPair();
    assert.throws(() => me.router.addConnection(hs, la, { direct: true }), SelfConnectionError);
    assert.ok(la.closed);
    const twin = { ...me.identity, uid: me.identity.uid + 1n };
    const [hs2] = handshakes(identity(9), '10.0.0.9', twin, '10.0.0.5:6783', 78n);
    const [lb] = linkPair();
    assert.throws(() => me.router.addConnection(hs2, lb, { direct: true }), PeerNameCollisionError);
    // Discovered addresses must lead to known peers.
    const [hs3] = handshakes(me.identity, '10.0.0.1', identity(42), '10.0.0.42:6783', 79n);
    const [lc] = linkPair();
    assert.throws(() => me.router.addConnection(hs3, lc, { direct: false }), UnknownRemoteError);
    assert.equal(me.router.allConnections().length, 0);
  } finally {
    mesh.stop();
  }
});

test('a router relays channels it does not implement (surrogate), deduplicating repeated gossip', async () => {
  const mesh = chain(3);
  try {
    const ends = [0, 2].map((i) => {
      const g = new RecordingGossiper();
      return { g, channel: mesh.peers[i]!.router.newGossipChannel('only-at-ends', g) };
    });
    await mesh.advance(5_000);
    ends[0]!.channel.gossipBroadcast(new RawGossipData([Buffer.from('bcast')]));
    ends[0]!.channel.gossipUnicast(mesh.peers[2]!.identity.name, Buffer.from('uni'));
    await mesh.advance(10);
    assert.deepEqual(ends[1]!.g.broadcasts.map((b) => b.text), ['bcast']);
    assert.deepEqual(ends[1]!.g.unicasts.map((b) => b.text), ['uni']);

    // Tag-4 gossip through the surrogate in the middle; a repeat of the same bytes is not relayed again.
    ends[0]!.channel.gossipNeighbourSubset(new RawGossipData([Buffer.from('g1')]));
    await mesh.advance(10);
    assert.deepEqual(ends[1]!.g.gossips, ['g1']);
    ends[0]!.channel.gossipNeighbourSubset(new RawGossipData([Buffer.from('g1')]));
    await mesh.advance(10);
    assert.deepEqual(ends[1]!.g.gossips, ['g1'], 'the surrogate drops a payload it relayed within the gossip interval');
  } finally {
    mesh.stop();
  }
});

test('heartbeats keep an idle connection alive; silence for 60 s closes it', async () => {
  const mesh = new TestMesh(2, { gossipIntervalMs: 10 * 60_000 });
  try {
    const [a] = mesh.connect(0, 1);
    await mesh.advance(5 * 60_000);
    assert.ok(!a.closed, 'heartbeats every 30 s keep the connection up');
    // Messages are well-formed wire bodies: decode a topology envelope that was sent.
    const sent = sentOn(mesh.peers[0]!.router.connectionTo(mesh.peers[1]!.identity.name)!);
    assert.ok(sent.some((b) => b.length === 1 && b[0] === ProtocolTag.Heartbeat));
    const topo = sent.find((b) => b[0] === ProtocolTag.Gossip)!;
    const env = wireCodec.decodeEnvelope(topo);
    assert.equal(env.channel, 'topology');
    assert.ok(wireCodec.decodeTopology(env.payload).some((r) => r.summary.name === mesh.peers[0]!.identity.name));

    // A connection whose far end never speaks (its router never added it) times out.
    const [hs] = handshakes(mesh.peers[0]!.identity, '10.0.0.1', identity(7), '10.0.0.7:6783', 4242n);
    const [silent] = linkPair();
    const lonely = mesh.peers[0]!.router.addConnection(hs, silent, { direct: true });
    await mesh.advance(59_000);
    assert.ok(!lonely.closed);
    await mesh.advance(2_000);
    assert.ok(lonely.closed, 'read deadline of 60 s expired');
    assert.ok(!a.closed);
  } finally {
    mesh.stop();
  }
});

test('topology broadcasts: a new peer goes out within 100 ms of a quiet second, other changes and streams of them once a second', async () => {
  const mesh = new TestMesh(7, { gossipIntervalMs: 10 * 60_000 });
  try {
    const hub = mesh.peers[0]!;
    mesh.connect(1, 0);
    await mesh.advance(3_000);
    const toLeaf = sentOn(hub.router.connectionTo(mesh.peers[1]!.identity.name)!);
    const hubBroadcasts = (): number => toLeaf.filter((b) => b[0] === ProtocolTag.GossipBroadcast)
      .filter((b) => wireCodec.decodeEnvelope(b).src === hub.identity.name).length;
    const before = hubBroadcasts();

    // A leaf joining after a quiet second is listed by the first leaf within the short wait, not a second later.
    mesh.connect(2, 0);
    await mesh.advance(150);
    assert.ok(mesh.knownNames(1).includes(mesh.peers[2]!.identity.name), 'leaf 1 lists leaf 2 within 150 ms of its joining');
    assert.equal(hubBroadcasts(), before + 1, 'one broadcast from the hub for the join');

    // Four more joins 200 ms apart: coalesced into broadcasts at least a second apart.
    for (let i = 3; i < 7; i++) {
      mesh.connect(i, 0);
      await mesh.advance(200);
    }
    assert.equal(hubBroadcasts(), before + 1, 'joins within a second of the last broadcast wait for the second to pass');
    await mesh.advance(1_000);
    assert.equal(hubBroadcasts(), before + 2, 'then one broadcast carries them all');
    for (let i = 3; i < 7; i++) assert.ok(mesh.knownNames(1).includes(mesh.peers[i]!.identity.name), `leaf 1 lists leaf ${i}`);

    // A connection between two peers that know each other waits the full second.
    await mesh.advance(2_000);
    mesh.connect(1, 2);
    const leaf1AsSeenBy3 = (): PeerName[] => [...mesh.peers[3]!.router.peers.get(mesh.peers[1]!.identity.name)!.connections.keys()];
    await mesh.advance(500);
    assert.ok(!leaf1AsSeenBy3().includes(mesh.peers[2]!.identity.name), 'not yet broadcast half a second after');
    await mesh.advance(600);
    assert.ok(leaf1AsSeenBy3().includes(mesh.peers[2]!.identity.name), 'broadcast a second after');
  } finally {
    mesh.stop();
  }
});
