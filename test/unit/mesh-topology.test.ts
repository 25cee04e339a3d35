// Topology merge rules (spec §4.5), routes (§4.6), garbage collection (§4.7)
// and short ids (§4.8), exercised on the peer table directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Peers, recordWins } from '../../controlplane/mesh/peers.js';
import { Peer } from '../../controlplane/mesh/peer.js';
import { bfsRoutes, computeBroadcast, Routes } from '../../controlplane/mesh/routes.js';
import { ManualClock } from '../../controlplane/mesh/clock.js';
import { seededRandom } from './mesh-harness.js';
import type { ConnectionSummary, PeerName, PeerRecord, PeerSummary } from '../../controlplane/mesh/types.js';

const US = 0x10n;
const A = 0x20n;
const B = 0x30n;
const C = 0x40n;

function summary(name: PeerName, over: Partial<PeerSummary> = {}): PeerSummary {
  return { name, nickName: `n${name}`, uid: 100n, version: 5n, shortId: Number(name), hasShortId: true, ...over };
}
function conn(name: PeerName, established = true, outbound = true): ConnectionSummary {
  return { name, remoteTcpAddr: `10.0.0.${Number(name)}:6783`, outbound, established };
}
function rec(name: PeerName, over: Partial<PeerSummary> = {}, conns: ConnectionSummary[] = []): PeerRecord {
  return { summary: summary(name, over), connections: conns };
}
function newPeers(random = seededRandom(1)): Peers {
  return new Peers({ name: US, nickName: 'us', uid: 1n, shortId: 1 }, random);
}

test('recordWins: version, then UID, then gaining a short id (table)', () => {
  const cur = new Peer(summary(A, { version: 5n, uid: 100n, hasShortId: true }));
  const noShort = new Peer(summary(A, { version: 5n, uid: 100n, hasShortId: false }));
  const cases: [string, Partial<PeerSummary>, Peer, boolean][] = [
    ['older version', { version: 4n, uid: 999n }, cur, false],
    ['newer version', { version: 6n, uid: 1n }, cur, true],
    ['same version, lower uid', { uid: 99n }, cur, false],
    ['same version, higher uid', { uid: 101n }, cur, true],
    ['same version and uid, both have short ids', {}, cur, false],
    ['same version and uid, record lacks short id', { hasShortId: false }, noShort, false],
    ['same version and uid, record adds short id', { hasShortId: true }, noShort, true],
  ];
  for (const [name, over, current, want] of cases) assert.equal(recordWins(summary(A, over), current), want, name);
});

test('applyUpdate creates peers and placeholders and reports the improved set', () => {
  const peers = newPeers();
  const r = peers.applyUpdate([rec(A, {}, [conn(B), conn(US)])]);
  assert.deepEqual([...r.improved], [A]);
  const b = peers.get(B)!;
  assert.equal(b.uid, 0n, 'B is a placeholder');
  assert.equal(b.version, 0n);
  assert.equal(b.hasShortId, false);
  assert.equal(peers.get(A)!.connections.size, 2);
  // Any real record beats the placeholder; a stale record for A is ignored.
  const r2 = peers.applyUpdate([rec(B, { version: 1n }), rec(A, { version: 4n }, [])]);
  assert.deepEqual([...r2.improved], [B]);
  assert.deepEqual([...r2.received].sort(), [A, B].sort());
  assert.equal(peers.get(A)!.connections.size, 2);
  // A newer record for A replaces its whole connection list.
  const r3 = peers.applyUpdate([rec(A, { version: 6n, nickName: 'renamed' }, [conn(US)])]);
  assert.deepEqual([...r3.improved], [A]);
  assert.deepEqual([...peers.get(A)!.connections.keys()], [US]);
  assert.equal(peers.get(A)!.nickName, 'renamed');
});

test('records about ourselves are never applied; an older incarnation bumps our version', () => {
  const peers = newPeers();
  peers.addLocalConnection(conn(A));
  assert.equal(peers.ourselves.version, 1n);
  const same = peers.applyUpdate([rec(US, { uid: 1n, version: 50n })]);
  assert.equal(same.ourselvesBumped, false);
  assert.equal(peers.ourselves.version, 1n);
  const older = peers.applyUpdate([rec(US, { uid: 7n, version: 50n }, [])]);
  assert.equal(older.ourselvesBumped, true);
  assert.equal(peers.ourselves.version, 51n);
  assert.equal(older.improved.size, 0);
  assert.equal(peers.ourselves.connections.size, 1, 'our live connections are untouched');
  const stale = peers.applyUpdate([rec(US, { uid: 7n, version: 10n })]);
  assert.equal(stale.ourselvesBumped, false);
});

test('garbage collection removes exactly the peers unreachable from us', () => {
  const removed: PeerName[] = [];
  const peers = new Peers({ name: US, nickName: 'us', uid: 1n, shortId: 1 }, seededRandom(2), { onPeerRemoved: (p) => removed.push(p.name) });
  peers.addLocalConnection(conn(A));
  peers.applyUpdate([rec(A, {}, [conn(US), conn(B)]), rec(B, {}, [conn(A)]), rec(C, {}, [])]);
  assert.deepEqual(peers.garbageCollect().map((p) => p.name), [C]);
  assert.deepEqual(removed, [C]);
  peers.removeLocalConnection(A);
  assert.deepEqual(peers.garbageCollect().map((p) => p.name).sort(), [A, B]);
  assert.deepEqual(peers.all().map((p) => p.name), [US]);
});

test('short ids: the lowest name is principal; we pick a new id when a lower name claims ours', () => {
  let changes = 0;
  let localChanges = 0;
  const peers = new Peers({ name: 0x50n, nickName: 'us', uid: 1n, shortId: 7 }, seededRandom(3), {
    onShortIdsChanged: () => changes++,
    onLocalChanged: () => localChanges++,
  });
  // A higher name claiming our id does not move us.
  peers.applyUpdate([rec(0x60n, { shortId: 7 })]);
  assert.equal(peers.ourselves.shortId, 7);
  assert.equal(peers.byShortId(7)!.name, 0x50n);
  const v = peers.ourselves.version;
  // A lower name takes it: we move to a free id and bump our version.
  peers.applyUpdate([rec(0x40n, { shortId: 7 })]);
  assert.notEqual(peers.ourselves.shortId, 7);
  assert.equal(peers.byShortId(7)!.name, 0x40n);
  assert.equal(peers.byShortId(peers.ourselves.shortId)!.name, 0x50n);
  assert.equal(peers.ourselves.version, v + 1n);
  assert.equal(localChanges, 1);
  assert.ok(changes >= 1);
});

function graph(edges: [PeerName, PeerName, boolean?][], names: PeerName[]): Map<PeerName, Peer> {
  const g = new Map<PeerName, Peer>();
  for (const n of names) g.set(n, new Peer(summary(n)));
  for (const [from, to, est] of edges) g.get(from)!.connections.set(to, conn(to, est ?? true));
  return g;
}
function both(a: PeerName, b: PeerName, est = true): [PeerName, PeerName, boolean][] {
  return [[a, b, est], [b, a, est]];
}

test('BFS routes: multi-hop next hops, lowest-name tie-break, symmetric-only filter', () => {
  // US - A - C and US - B - C: C is reached via A (lower name dequeued first).
  const g = graph([...both(US, A), ...both(US, B), ...both(A, C), ...both(B, C)], [US, A, B, C]);
  const { routes } = bfsRoutes(g, US, undefined, true);
  assert.equal(routes.get(A), A);
  assert.equal(routes.get(B), B);
  assert.equal(routes.get(C), A);
  // A one-way (asymmetric) link is usable for gossip only.
  const g2 = graph([...both(US, A), [A, C, true]], [US, A, C]);
  assert.equal(bfsRoutes(g2, US, undefined, true).routes.has(C), false);
  assert.equal(bfsRoutes(g2, US, undefined, false).routes.get(C), A);
  // An unestablished link is usable for gossip only.
  const g3 = graph([...both(US, A), ...both(A, C, false)], [US, A, C]);
  assert.equal(bfsRoutes(g3, US, undefined, true).routes.has(C), false);
  assert.equal(bfsRoutes(g3, US, undefined, false).routes.get(C), A);
});

test('broadcast next hops form a spanning tree: square topology', () => {
  // US - A, US - B, A - C, B - C.
  const g = graph([...both(US, A), ...both(US, B), ...both(A, C), ...both(B, C)], [US, A, B, C]);
  assert.deepEqual(computeBroadcast(g, US, US, true), [A, B]);
  // From A: we and C are reached at level 1, we are dequeued first, so only B is left to us.
  assert.deepEqual(computeBroadcast(g, US, A, true), [B]);
  // From C, A and B are both reached before us: nothing to forward.
  assert.deepEqual(computeBroadcast(g, US, C, true), []);
  // Unreachable source: nothing.
  const g2 = graph([...both(US, A)], [US, A, C]);
  assert.deepEqual(computeBroadcast(g2, US, C, false), []);
});

test('randomNeighbours picks floor(2·log2 n) distinct hops, never the excluded one', () => {
  // Star: US connected to 8 peers -> n = 9, 2·log2(9) = 6.33 -> 6 hops.
  const leaves = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((i) => 0x100n + i);
  const g = graph(leaves.flatMap((l) => both(US, l)), [US, ...leaves]);
  const routes = new Routes(() => g, US, new ManualClock(), seededRandom(9));
  for (let trial = 0; trial < 20; trial++) {
    const hops = routes.randomNeighbours(leaves[0]!);
    assert.equal(hops.length, 6);
    assert.equal(new Set(hops).size, 6);
    assert.ok(!hops.includes(leaves[0]!));
    assert.ok(!hops.includes(US));
  }
  // Two peers: n = 2 -> 2 hops wanted but only 1 exists.
  const g2 = graph(both(US, A), [US, A]);
  assert.deepEqual(new Routes(() => g2, US, new ManualClock(), seededRandom(1)).randomNeighbours(US), [A]);
});

test('route recalculation is deferred by 100 ms and notifies listeners', async () => {
  const g = graph(both(US, A), [US, A]);
  const clock = new ManualClock();
  let notified = 0;
  const routes = new Routes(() => g, US, clock, seededRandom(1), () => notified++);
  notified = 0;
  g.get(US)!.connections.set(B, conn(B));
  g.set(B, new Peer(summary(B), [conn(US)]));
  routes.recalculateSoon();
  routes.recalculateSoon();
  assert.equal(routes.unicastNextHop(B), undefined);
  await clock.advance(99);
  assert.equal(routes.unicastNextHop(B), undefined);
  await clock.advance(1);
  assert.equal(routes.unicastNextHop(B), B);
  assert.equal(notified, 1);
});

/** Broadcast(S) as spec §4.6 words it: the full BFS from S, then our usable neighbours it had not reached. */
function referenceBroadcast(g: Map<PeerName, Peer>, src: PeerName, establishedOnly: boolean): PeerName[] {
  const { found, routes: reached } = bfsRoutes(g, src, US, establishedOnly);
  const us = g.get(US);
  if (!found || !us) return [];
  return [...us.connections.keys()]
    .filter((r) => !reached.has(r) && g.has(r) && (!establishedOnly || (us.connections.get(r)!.established && g.get(r)!.connections.get(US)?.established === true)))
    .sort((a, b) => (a < b ? -1 : 1));
}

test('Routes over the topology index give the tables and trees of the map-based BFS (random graphs)', () => {
  // Random graphs of 2-40 peers: edges one-way or both, established or not, some to peers we hold
  // no record of, our own record sometimes missing its edges. The reference is spec §4.6's BFS over
  // the live maps (bfsRoutes, computeBroadcast); Routes computes over the arrays of TopologyIndex.
  const random = seededRandom(2024);
  const pick = (n: number): number => Math.floor(random() * n);
  for (let round = 0; round < 300; round++) {
    const n = 2 + pick(39);
    // Names in random order, so index order (ascending names) is not insertion order.
    const names = Array.from({ length: n }, (_, i) => (i === 0 ? US : 0x1000n + BigInt(pick(1 << 20)) * 16n + BigInt(i)));
    const known = names.filter((_, i) => i === 0 || random() > 0.1);
    const edges: [PeerName, PeerName, boolean][] = [];
    const density = random();
    for (const a of known) {
      for (const b of names) {
        if (a === b || random() > density * 0.5) continue;
        const est = random() > 0.2;
        edges.push([a, b, est]);
        if (known.includes(b) && random() > 0.15) edges.push([b, a, random() > 0.1 ? est : !est]);
      }
    }
    const g = new Map<PeerName, Peer>();
    for (const name of known) g.set(name, new Peer(summary(name)));
    for (const [from, to, est] of edges) g.get(from)!.connections.set(to, conn(to, est));
    const routes = new Routes(() => g, US, new ManualClock(), seededRandom(1));
    for (const establishedOnly of [true, false]) {
      // As sets of (destination, next hop): the order of a table is not part of it (Weave's is a Go map).
      const byDest = (t: ReadonlyMap<PeerName, PeerName>): [PeerName, PeerName][] => [...t].sort((x, y) => (x[0] < y[0] ? -1 : 1));
      const want = bfsRoutes(g, US, undefined, establishedOnly).routes;
      assert.deepEqual(byDest(routes.unicastTable(establishedOnly)), byDest(want), `round ${round}: unicast table (${establishedOnly})`);
    }
    const trees = (): void => {
      for (const src of [...names, 0x7777n]) {
        assert.deepEqual(routes.broadcastNextHops(src), referenceBroadcast(g, src, true), `round ${round}: Broadcast(${src})`);
        assert.deepEqual(routes.broadcastAllNextHops(src), referenceBroadcast(g, src, false), `round ${round}: BroadcastAll(${src})`);
      }
    };
    trees(); // over the index the recalculation built
    // A change: gossip trees come from the live graph until the next recalculation.
    const [from, to] = [known[pick(known.length)]!, names[pick(n)]!];
    if (from !== to) g.get(from)!.connections.set(to, conn(to, true));
    routes.recalculateSoon();
    for (const src of [...names, 0x7777n]) {
      assert.deepEqual(routes.broadcastAllNextHops(src), referenceBroadcast(g, src, false), `round ${round}: BroadcastAll(${src}) after a change`);
    }
    routes.recalculateNow();
    trees();
    // computeBroadcast (the live-graph path, with its early stop) on its own, every source.
    for (const src of [...names, 0x7777n]) {
      for (const est of [true, false]) assert.deepEqual(computeBroadcast(g, US, src, est), referenceBroadcast(g, src, est), `round ${round}: computeBroadcast(${src}, ${est})`);
    }
  }
});

test('Routes: a change recalculated tells the data plane only when the established symmetric edges changed', async () => {
  const g = graph([...both(US, A), ...both(US, B), ...both(A, B, false)], [US, A, B]);
  const clock = new ManualClock();
  let notified = 0;
  const routes = new Routes(() => g, US, clock, seededRandom(1), () => notified++);
  notified = 0;
  // A's edge to B becomes established, but B's back is not: the data plane's routes stay.
  g.get(A)!.connections.set(B, conn(B, true));
  routes.recalculateNow();
  assert.equal(notified, 0);
  // Now B confirms: a new symmetric edge.
  g.get(B)!.connections.set(A, conn(A, true));
  routes.recalculateNow();
  assert.equal(notified, 1);
  assert.deepEqual(routes.broadcastNextHops(A), []);
  // The same edges listed in another order are the same edges.
  const usConns = [...g.get(US)!.connections.values()].reverse();
  g.get(US)!.setConnections(usConns);
  routes.recalculateNow();
  assert.equal(notified, 1);
  // A peer that joins with no confirmed connection yet (only its own one-way edge) changes no data-plane route.
  g.set(C, new Peer(summary(C), [conn(A, true)]));
  routes.recalculateNow();
  assert.equal(notified, 1);
  // Once A confirms it, it does.
  g.get(A)!.connections.set(C, conn(C, true));
  routes.recalculateNow();
  assert.equal(notified, 2);
});
