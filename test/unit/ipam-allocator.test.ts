// Several allocators in one process joined by an in-memory gossip fabric:
// consensus, allocation, space requests, partitions, rmpeer, observers, claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Allocator, gobStreamCodec, parseCIDR, formatAddress, cidrRange, rangeContains, renderStatusIpam, ipamReport,
  ipamStatusLine, type GossipChannel, type GossipData, type IpamInit, type PeerName, type CIDR,
} from '../../controlplane/ipam/index.js';
import { formatPeerName } from '../../controlplane/mesh/wire/peer-name.js';
import { within } from '../support/within.js';

/**
 * Delivers gossip asynchronously between allocators, like the mesh would
 * over direct connections; a partition drops traffic between its sides.
 */
class Fabric {
  readonly nodes = new Map<PeerName, Allocator>();
  readonly errors: Error[] = [];
  private partition: Array<Set<PeerName>> | undefined;
  private readonly down = new Set<PeerName>();
  private inFlight = 0;

  reachable(a: PeerName, b: PeerName): boolean {
    if (a === b) return true;
    if (!this.nodes.has(a) || !this.nodes.has(b) || this.down.has(a) || this.down.has(b)) return false;
    if (!this.partition) return true;
    return this.partition.some((side) => side.has(a) && side.has(b));
  }

  split(...sides: PeerName[][]): void { this.partition = sides.map((s) => new Set(s)); }
  heal(): void { this.partition = undefined; }
  kill(p: PeerName): void { this.down.add(p); this.nodes.get(p)?.stop(); }

  private deliver(from: PeerName, to: PeerName, handle: (n: Allocator) => void): void {
    this.inFlight++;
    setImmediate(() => {
      this.inFlight--;
      const node = this.nodes.get(to);
      if (!node || !this.reachable(from, to)) return;
      try { handle(node); } catch (err) { this.errors.push(err as Error); }
    });
  }

  channelFor(self: PeerName): GossipChannel {
    return {
      gossipUnicast: (dst, payload) => this.deliver(self, dst, (n) => n.onGossipUnicast(self, payload)),
      gossipBroadcast: (data: GossipData) => {
        const payloads = data.encode();
        for (const to of this.nodes.keys()) {
          if (to === self) continue;
          for (const p of payloads) this.deliver(self, to, (n) => { n.onGossipBroadcast(self, p); });
        }
      },
    };
  }

  /** Periodic gossip (tag 4) from everyone to everyone reachable. */
  gossipRound(): void {
    for (const [from, node] of this.nodes) {
      if (this.down.has(from)) continue;
      const data = node.gossip();
      if (!data) continue;
      for (const p of data.encode()) for (const to of this.nodes.keys()) if (to !== from) this.deliver(from, to, (n) => { n.onGossip(p); });
    }
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      await new Promise((r) => setImmediate(r));
      if (this.inFlight === 0) return;
    }
    throw new Error('gossip did not settle');
  }
}

const names = [0x0a0000000001n, 0x0a0000000002n, 0x0a0000000003n];
const [A, B, C] = names as [PeerName, PeerName, PeerName];
const nick = (p: PeerName): string => `host${Number(p & 0xffn)}`;

function mesh(opts: { universe?: string; init?: (p: PeerName) => IpamInit; peers?: PeerName[]; clock?: { t: number } } = {}): Fabric {
  const fabric = new Fabric();
  const peers = opts.peers ?? names;
  for (const p of peers) {
    const alloc = new Allocator({
      name: p, uid: 1000n + p, nickname: nick(p), universe: parseCIDR(opts.universe ?? '10.32.0.0/24'),
      init: opts.init?.(p) ?? { mode: 'consensus' },
      initialPeerCount: () => peers.length - 1,
      isKnownPeer: (q) => fabric.reachable(p, q),
      codec: gobStreamCodec,
      nowMs: opts.clock ? () => opts.clock!.t : undefined,
    });
    alloc.setChannel(fabric.channelFor(p));
    fabric.nodes.set(p, alloc);
  }
  return fabric;
}

function allAddresses(f: Fabric): number[] {
  return [...f.nodes.values()].flatMap((n) => n.allOwned().flatMap((o) => o.addrs.map((c) => c.addr)));
}

function node(f: Fabric, p: PeerName): Allocator { return f.nodes.get(p)!; }

test('three peers reach consensus, then 60 allocations are unique and in range', async () => {
  const f = mesh();
  await within(node(f, A).prime(), 5000, 'prime');
  await f.settle();
  for (const p of names) assert.equal(node(f, p).hasRing(), true, `${formatPeerName(p)} has the ring`);
  const requests: Array<Promise<CIDR>> = [];
  for (let i = 0; i < 60; i++) requests.push(node(f, names[i % 3]!).allocate(`c${i}`));
  const got = await within(Promise.all(requests), 10_000, '60 allocations');
  const addrs = got.map((c) => c.addr);
  assert.equal(new Set(addrs).size, 60, 'unique');
  const universe = cidrRange(parseCIDR('10.32.0.0/24'));
  for (const c of got) {
    assert.ok(rangeContains(universe, c.addr), `${formatAddress(c.addr)} in range`);
    assert.notEqual(c.addr, universe.start, 'not the network address');
    assert.notEqual(c.addr, universe.end - 1, 'not the broadcast address');
    assert.equal(c.prefixLen, 24);
  }
  assert.deepEqual(f.errors, []);
  // Idempotent: asking again for the same container returns the same address.
  assert.deepEqual(await node(f, A).allocate('c0'), got[0]);
});

test('a peer that owns nothing gets space by asking (spec §8.7)', async () => {
  const f = mesh({ init: () => ({ mode: 'seed', seeds: [A, B] }) });
  // C is not a seed: it owns nothing and must request space.
  await f.settle();
  const c = await within(node(f, C).allocate('on-c'), 5000, 'allocation on C');
  await f.settle();
  assert.equal(node(f, A).statusSnapshot().ring!.entries.some((e) => e.peer === C), true, 'A sees C owning a range');
  assert.deepEqual(node(f, C).lookup('on-c'), [c]);
  assert.equal(node(f, A).statusSnapshot().ringRanges.some((r) => r.peer === C && rangeContains(r.range, c.addr)), true,
    'the address lies in space granted to C');
  assert.deepEqual(f.errors, []);
});

test('partition {A}|{B,C}: both sides allocate; after heal there are no duplicates', async () => {
  const f = mesh();
  await within(node(f, B).prime());
  await f.settle();
  for (const p of names) assert.ok(node(f, p).hasRing());
  // Everyone first gets space of their own while the mesh is whole.
  await within(Promise.all(names.map((p) => node(f, p).allocate(`warmup-${nick(p)}`))));
  await f.settle();
  f.split([A], [B, C]);
  const reqs: Array<Promise<CIDR>> = [];
  for (let i = 0; i < 8; i++) for (const p of names) reqs.push(node(f, p).allocate(`${nick(p)}-${i}`));
  await within(Promise.all(reqs), 10_000, 'allocations during the partition');
  f.heal();
  f.gossipRound();
  await f.settle();
  f.gossipRound();
  await f.settle();
  const addrs = allAddresses(f);
  assert.equal(addrs.length, 27);
  assert.equal(new Set(addrs).size, 27, 'no address handed out twice');
  const rings = names.map((p) => JSON.stringify(node(f, p).statusSnapshot().ring!.entries, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)));
  assert.equal(rings[1], rings[0]);
  assert.equal(rings[2], rings[0]);
  assert.deepEqual(f.errors, []);
});

test('rmpeer takes over a dead peer\'s ranges and allocation continues', async () => {
  const f = mesh({ init: () => ({ mode: 'seed', seeds: [A, B, C] }) });
  const cOwned = node(f, A).statusSnapshot().ringRanges.filter((r) => r.peer === C).reduce((n, r) => n + r.range.end - r.range.start, 0);
  assert.ok(cOwned > 0);
  f.gossipRound(); // learn nicknames
  await f.settle();
  f.kill(C);
  assert.match(ipamStatusLine(node(f, A).statusSnapshot()), /ready/);
  assert.match(renderStatusIpam(node(f, A).statusSnapshot()), /host3\)\s+64 IPs \(25\.0% of total\) - unreachable!/);
  assert.equal(node(f, B).adminTakeRangesFromPeer('host3'), cOwned);
  assert.equal(node(f, B).adminTakeRangesFromPeer('host3'), 0, 'nothing left the second time');
  assert.equal(node(f, B).adminTakeRangesFromPeer(formatPeerName(B)), 0, 'never from ourselves');
  await f.settle();
  const ring = node(f, A).statusSnapshot().ring!;
  assert.equal(ring.entries.some((e) => e.peer === C), false, 'A learned of the takeover');
  assert.equal(ring.entries.find((e) => e.token === parseCIDR('10.32.0.192/32').addr)!.version, 100);
  // Fill B's original space so the next allocation must use the reclaimed range.
  const onB: CIDR[] = [];
  for (let i = 0; i < 70; i++) onB.push(await within(node(f, B).allocate(`b${i}`)));
  assert.ok(onB.some((c) => c.addr >= parseCIDR('10.32.0.192/32').addr), 'reclaimed space is used');
  assert.equal(new Set(allAddresses(f)).size, allAddresses(f).length);
  assert.deepEqual(f.errors, []);
});

test('observer obtains the ring from electors and can allocate', async () => {
  const f = mesh({ init: (p) => (p === C ? { mode: 'observer' } : { mode: 'consensus', count: 2 }) });
  assert.equal(renderStatusIpam(node(f, C).statusSnapshot()), '', 'status ipam empty before the ring exists');
  const got = await within(node(f, C).allocate('obs'), 5000, 'allocation on the observer');
  assert.ok(rangeContains(cidrRange(parseCIDR('10.32.0.0/24')), got.addr));
  await f.settle();
  const seeds = node(f, A).statusSnapshot().ring!.seeds;
  assert.equal(seeds.includes(C), false, 'observers are not in the ring\'s initial split');
  assert.deepEqual(f.errors, []);
});

test('claims: own space, another peer\'s space, and a conflict', async () => {
  const f = mesh({ init: () => ({ mode: 'seed', seeds: [A, B] }), peers: [A, B] });
  const inA = parseCIDR('10.32.0.10/24');
  const inB = parseCIDR('10.32.0.200/24');
  await within(node(f, A).claim('x', inA));
  assert.deepEqual(node(f, A).lookup('x'), [inA]);
  await assert.rejects(node(f, A).claim('y', inA), /already owned by x/);
  await within(node(f, A).claim('z', inB), 5000, 'claim in B\'s space');
  assert.deepEqual(node(f, A).lookup('z'), [inB]);
  await f.settle();
  assert.equal(node(f, B).statusSnapshot().ring!.entries.length > 2, true, 'B granted space to A');
  // B can no longer hand that address out.
  const fromB: number[] = [];
  for (let i = 0; i < 60; i++) fromB.push((await within(node(f, B).allocate(`b${i}`))).addr);
  assert.equal(fromB.includes(inB.addr), false);
  node(f, A).free('z', inB.addr);
  assert.deepEqual(node(f, A).lookup('z'), []);
  assert.throws(() => node(f, A).free('z', inB.addr), /not owned by z/);
  assert.equal(node(f, A).deleteIdent('x'), 1);
  assert.throws(() => node(f, A).deleteIdent('x'), /no addresses/);
  assert.deepEqual(f.errors, []);
});

test('elector status shows consensus progress; report JSON carries the ring', async () => {
  const f = mesh({ init: () => ({ mode: 'consensus', count: 3 }) });
  f.split([A], [B, C]);
  assert.equal(ipamStatusLine(node(f, A).statusSnapshot()), 'idle');
  const pending = node(f, A).allocate('w');
  await f.settle();
  assert.equal(ipamStatusLine(node(f, A).statusSnapshot()), 'awaiting consensus (quorum: 2, known: 1)');
  assert.deepEqual(ipamReport(node(f, A).statusSnapshot()).Paxos, { Elector: true, KnownNodes: 1, Quorum: 2 });
  f.heal();
  node(f, A).tick(); // the 5 s retry proposes again
  await within(pending);
  await f.settle();
  const report = ipamReport(node(f, A).statusSnapshot());
  assert.equal(report.Range, '10.32.0.0/24');
  assert.equal(report.RangeNumIPs, 256);
  assert.equal(report.ActiveIPs, 1);
  assert.equal(report.Paxos, null);
  assert.equal(report.Entries!.reduce((n, e) => n + e.Size, 0), 256);
  const text = renderStatusIpam(node(f, A).statusSnapshot());
  assert.match(text, /^0a:00:00:00:00:01\(host1\)\s+128 IPs \(50\.0% of total\) \(1 active\)\n/);
  assert.match(text, /\n0a:00:00:00:00:02\(host2\)\s+128 IPs \(50\.0% of total\) \n$/);
});

test('check-alive: a request for a dead container is cancelled; dead containers are released after 30 s', async () => {
  const clock = { t: 1_000_000 };
  const alive = new Set(['live']);
  const f = new Fabric();
  const alloc = new Allocator({
    name: A, uid: 1n, nickname: 'host1', universe: parseCIDR('10.32.0.0/28'), init: { mode: 'seed', seeds: [A] },
    isKnownPeer: () => true, codec: gobStreamCodec, nowMs: () => clock.t, isContainerAlive: (id) => alive.has(id),
  });
  alloc.setChannel(f.channelFor(A));
  await assert.rejects(alloc.allocate('gone', undefined, { checkAlive: true }), /cancelled/);
  const live = await alloc.allocate('live', undefined, { checkAlive: true });
  alive.delete('live');
  alloc.tick();
  clock.t += 29_000;
  alloc.tick();
  assert.deepEqual(alloc.lookup('live'), [live]);
  clock.t += 2_000;
  alloc.tick();
  assert.deepEqual(alloc.lookup('live'), []);
});

test('peers seeded differently reject each other\'s rings but keep working (test 360)', async () => {
  const f = mesh({ init: (p) => ({ mode: 'seed', seeds: [p] }), peers: [A, B] });
  f.gossipRound();
  await f.settle();
  assert.ok(f.errors.length > 0);
  assert.ok(f.errors.every((e) => /seeded differently/.test(e.message)), f.errors.map((e) => e.message).join('; '));
  const a = await within(node(f, A).allocate('x'));
  const b = await within(node(f, B).allocate('x'));
  assert.equal(formatAddress(a.addr), '10.32.0.1');
  assert.equal(formatAddress(b.addr), '10.32.0.1', 'each ring is independent');
});

test('leaving, the only owner hands its ranges to a live IPAM peer that owns nothing yet (Weave pickPeerForTransfer)', async () => {
  const f = mesh({ init: () => ({ mode: 'seed', seeds: [A] }) });
  // Everyone learns the ring (all of it A's) and each other's nicknames by gossip.
  f.gossipRound();
  await f.settle();
  f.gossipRound();
  await f.settle();
  assert.ok(node(f, B).statusSnapshot().ring!.entries.every((e) => e.peer === A), 'A owns every entry');
  f.kill(C);
  const heir = node(f, A).leave();
  assert.equal(heir, B, 'the reachable peer without entries inherits, not the dead one');
  await f.settle();
  assert.ok(node(f, B).statusSnapshot().ring!.entries.every((e) => e.peer === B), 'every entry is B\'s now');
  const got = await within(node(f, B).allocate('after-reset'), 1000, 'allocation on the heir');
  assert.ok(rangeContains(cidrRange(parseCIDR('10.32.0.0/24')), got.addr));
  assert.deepEqual(f.errors, []);
});

test('leaving hands all our ranges to a reachable peer', async () => {
  const f = mesh({ init: () => ({ mode: 'seed', seeds: [A, B, C] }) });
  const heir = node(f, A).leave();
  assert.ok(heir === B || heir === C);
  await f.settle();
  const ring = node(f, B).statusSnapshot().ring!;
  assert.equal(ring.entries.some((e) => e.peer === A), false);
  await assert.rejects(node(f, A).allocate('late'), /shutting down/);
  assert.deepEqual(f.errors, []);
});

test('the anonymous ident "_" (Docker plugin): each address is filed under its own text and released by it', async () => {
  const f = new Fabric();
  const alloc = new Allocator({
    name: A, uid: 1n, nickname: 'host1', universe: parseCIDR('10.32.0.0/28'), init: { mode: 'seed', seeds: [A] },
    isKnownPeer: () => true, codec: gobStreamCodec,
  });
  alloc.setChannel(f.channelFor(A));
  const a = await alloc.allocate('_', parseCIDR('10.32.0.0/28'));
  const b = await alloc.allocate('_', parseCIDR('10.32.0.0/28'));
  assert.notEqual(a.addr, b.addr, 'anonymous requests are never taken for the same owner');
  assert.deepEqual(alloc.lookup(formatAddress(a.addr)), [a]);
  assert.deepEqual(alloc.lookup('_'), []);
  await alloc.claim('_', parseCIDR('10.32.0.9/28'));
  assert.deepEqual(alloc.lookup('10.32.0.9'), [parseCIDR('10.32.0.9/28')]);
  // Claiming it again anonymously is fine; a container claiming it is refused.
  await alloc.claim('_', parseCIDR('10.32.0.9/28'));
  await assert.rejects(alloc.claim('c0ffee', parseCIDR('10.32.0.9/28')), /already owned by 10\.32\.0\.9/);
  // An anonymous claim of a container's address is let through (Weave cannot tell it is not the same one).
  await alloc.claim('c0ffee', parseCIDR('10.32.0.10/28'));
  await alloc.claim('_', parseCIDR('10.32.0.10/28'));
  assert.deepEqual(alloc.lookup('c0ffee'), [parseCIDR('10.32.0.10/28')]);
  assert.equal(alloc.deleteIdent(formatAddress(a.addr)), 1);
  assert.deepEqual(alloc.lookup(formatAddress(a.addr)), []);
  alloc.stop();
});
