// Ring CRDT (spec §8.4, §8.5): creation, grants, transfer, merge rules, and the
// merge laws under random concurrent histories (fast-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Ring, RingMergeError, parseAddress, parseCIDR, cidrRange, rangeToCIDRs, formatAddress, hostRange,
  type RingSnapshot, type PeerName,
} from '../../controlplane/ipam/index.js';

const A = 0x0a0000000001n;
const B = 0x0a0000000002n;
const C = 0x0a0000000003n;
const O = 0x0a00000000ffn; // an observer owning nothing
const none = (): boolean => false;
const base = parseAddress('10.0.0.0');

function newRing(peer: PeerName, peers: PeerName[] = [A, B, C], size = 256): Ring {
  const r = new Ring(base, base + size, peer);
  if (peers.length > 0) r.claimForPeers(peers);
  return r;
}

test('addresses and CIDRs parse, format and split into aligned blocks', () => {
  assert.equal(formatAddress(parseAddress('10.32.0.1')), '10.32.0.1');
  assert.deepEqual(cidrRange(parseCIDR('10.32.0.5/12')), { start: parseAddress('10.32.0.0'), end: parseAddress('10.48.0.0') });
  assert.deepEqual(hostRange(parseCIDR('10.32.0.0/30')), { start: parseAddress('10.32.0.1'), end: parseAddress('10.32.0.3') });
  assert.deepEqual(rangeToCIDRs({ start: 1, end: 8 }).map((r) => [r.start, r.end]), [[1, 2], [2, 4], [4, 8]]);
  assert.throws(() => parseAddress('10.0.0.256'), /invalid IPv4 address/);
  assert.throws(() => parseCIDR('10.0.0.0/33'), /prefix length/);
});

test('ring creation splits the range as spec §8.5 says', () => {
  const r = newRing(A, [A, B, C]);
  assert.deepEqual(r.entries.map((e) => [e.token - base, e.peer, e.free]), [[0, A, 128], [128, B, 64], [192, C, 64]]);
  assert.deepEqual(r.seeds, [A, B, C]);
  const odd = new Ring(0, 7, A);
  odd.claimForPeers([A, B]);
  // size 7: first half [0,3), rest from mid + size%2 = 4
  assert.deepEqual(odd.entries.map((e) => [e.token, e.peer, e.free]), [[0, A, 3], [4, B, 3]]);
});

test('grant inserts boundary tokens and transfer bumps version by 100', () => {
  const r = newRing(A);
  r.grantRangeToHost(base + 64, base + 96, B);
  assert.deepEqual(r.entries.map((e) => [e.token - base, e.peer]), [[0, A], [64, B], [96, A], [128, B], [192, C]]);
  assert.deepEqual(r.ownedRanges(B).map((x) => [x.start - base, x.end - base]), [[64, 96], [128, 192]]);
  assert.equal(r.owner(base + 70), B);
  assert.equal(r.owner(base + 100), A);
  assert.throws(() => r.grantRangeToHost(base + 130, base + 140, C), /owned by/);
  const moved = r.transfer(C, A);
  assert.deepEqual(moved.map((x) => [x.start - base, x.end - base]), [[192, 256]]);
  assert.equal(r.entries.find((e) => e.token === base + 192)!.version, 100);
  assert.equal(r.owner(base + 200), A);
});

test('merge rejects different seeds, different ranges and invalid rings', () => {
  const mine = newRing(A, [A, B]);
  const otherSeeds = newRing(B, [B, C]).snapshot();
  assert.throws(() => mine.merge(otherSeeds, none), (e: Error) => e instanceof RingMergeError && /seeded differently/.test(e.message));
  const otherRange = new Ring(base, base + 512, B);
  otherRange.claimForPeers([A, B]);
  assert.throws(() => mine.merge(otherRange.snapshot(), none), /range differs/);
  const bad: RingSnapshot = { ...mine.snapshot(), entries: [...mine.snapshot().entries].reverse() };
  assert.throws(() => mine.merge(bad, none), /not sorted/);
  const tooFree: RingSnapshot = { ...mine.snapshot(), entries: mine.snapshot().entries.map((e) => ({ ...e, free: 1000 })) };
  assert.throws(() => mine.merge(tooFree, none), /too much free space/);
});

test('merge refuses to give away space we hold allocations in, and allows it otherwise', () => {
  const mine = newRing(A, [A, B]);
  const theirs = newRing(B, [A, B]);
  theirs.transfer(A, B); // B claims A's range (e.g. rmpeer of A elsewhere)
  const held = (): boolean => true;
  assert.throws(() => mine.merge(theirs.snapshot(), held), /Received update for IP range I own/);
  assert.equal(mine.owner(base), A, 'a failed merge leaves the ring untouched');
  assert.equal(mine.merge(theirs.snapshot(), none), true);
  assert.equal(mine.owner(base), B);
});

test('an entry naming us with a higher version is kept as ours, version above theirs', () => {
  const mine = newRing(A, [A, B]);
  const theirs = newRing(B, [A, B]).snapshot();
  theirs.entries = theirs.entries.map((e) => (e.peer === A ? { ...e, version: 7 } : e));
  assert.equal(mine.merge(theirs, none), true);
  assert.equal(mine.entries[0]!.version, 8);
  assert.equal(mine.entries[0]!.peer, A);
});

// ---- property: random concurrent histories among owners ----

type Step =
  | { kind: 'grant'; who: number; to: number; at: number; len: number }
  | { kind: 'free'; who: number; seed: number }
  | { kind: 'gossip'; from: number; to: number };

const peers = [A, B, C];
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('grant' as const), who: fc.nat(2), to: fc.nat(2), at: fc.nat(1000), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('free' as const), who: fc.nat(2), seed: fc.nat(1000) }),
  fc.record({ kind: fc.constant('gossip' as const), from: fc.nat(2), to: fc.nat(2) }),
);

/** Run a history; returns the replicas and every state any replica was in. */
function runHistory(steps: Step[]): { replicas: Ring[]; seen: RingSnapshot[] } {
  const replicas = peers.map((p) => newRing(p));
  const seen: RingSnapshot[] = [replicas[0]!.snapshot()];
  for (const s of steps) {
    if (s.kind === 'grant') {
      const r = replicas[s.who]!;
      if (s.to === s.who) continue;
      const owned = r.ownedRanges();
      if (owned.length === 0) continue;
      const range = owned[s.at % owned.length]!;
      const start = range.start + (s.at % (range.end - range.start));
      const end = Math.min(range.end, start + s.len);
      r.grantRangeToHost(start, end, peers[s.to]!);
    } else if (s.kind === 'free') {
      const r = replicas[s.who]!;
      r.reportFree((rs) => { const size = rs.reduce((n, x) => n + x.end - x.start, 0); return (s.seed * 7919) % (size + 1); });
    } else {
      replicas[s.to]!.merge(replicas[s.from]!.snapshot(), none);
    }
    seen.push(...replicas.map((r) => r.snapshot()));
  }
  return { replicas, seen };
}

function observe(...states: RingSnapshot[]): RingSnapshot {
  const o = new Ring(base, base + 256, O);
  for (const s of states) o.merge(s, none);
  return o.snapshot();
}

const entriesOf = (s: RingSnapshot): unknown => s.entries;

test('merge is commutative, idempotent and associative on states from random histories', () => {
  fc.assert(fc.property(fc.array(stepArb, { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
    const { seen } = runHistory(steps);
    const x = seen[i % seen.length]!;
    const y = seen[j % seen.length]!;
    const z = seen[k % seen.length]!;
    assert.deepEqual(entriesOf(observe(x, y)), entriesOf(observe(y, x)), 'commutative');
    assert.deepEqual(entriesOf(observe(x, x)), entriesOf(observe(x)), 'idempotent');
    assert.deepEqual(entriesOf(observe(observe(x, y), z)), entriesOf(observe(x, observe(y, z))), 'associative');
  }), { numRuns: 300 });
});

test('replicas converge to one ring under random gossip orders', () => {
  fc.assert(fc.property(fc.array(stepArb, { maxLength: 40 }), fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { maxLength: 20 }), (steps, order) => {
    const { replicas } = runHistory(steps);
    for (const [from, to] of order) replicas[to]!.merge(replicas[from]!.snapshot(), none);
    for (let round = 0; round < 2; round++) {
      for (const to of replicas) for (const from of replicas) to.merge(from.snapshot(), none);
    }
    const first = JSON.stringify(replicas[0]!.entries, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    for (const r of replicas) {
      assert.equal(JSON.stringify(r.entries, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)), first);
    }
    // Every address has exactly one owner and owned ranges tile the ring.
    const total = peers.reduce((n, p) => n + replicas[0]!.ownedRanges(p).reduce((m, x) => m + x.end - x.start, 0), 0);
    assert.equal(total, 256);
  }), { numRuns: 300 });
});
