// The allocator's queue of waiting requests (wire spec §8.6-8.8): every state
// change that could satisfy a request re-runs the queue, nothing is dropped
// from it unanswered, and a claim never waits forever on another peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Allocator, CLAIM_MAX_TICK_ASKS, IpamAbortedError, TICK_INTERVAL_MS, gobStreamCodec, parseCIDR,
  type GossipChannel, type IpamInit, type PeerName,
} from '../../controlplane/ipam/index.js';

const A: PeerName = 0x0a0000000001n;
const B: PeerName = 0x0a0000000002n;

/** A channel that records what was sent and can refuse unicasts like a mesh with no route. */
function recordingChannel(refuseUnicastTo?: PeerName): GossipChannel & { unicasts: PeerName[] } {
  const unicasts: PeerName[] = [];
  return {
    unicasts,
    gossipUnicast: (dst) => {
      unicasts.push(dst);
      if (dst === refuseUnicastTo) throw new Error(`gossip channel IPallocation: no route to peer ${dst.toString(16)}`);
    },
    gossipBroadcast: () => undefined,
  };
}

function allocator(name: PeerName, init: IpamInit, opts: { known?: Set<PeerName>; clock?: { t: number } } = {}): Allocator {
  return new Allocator({
    name, uid: 7n + name, nickname: `n${Number(name & 0xffn)}`, universe: parseCIDR('10.32.0.0/24'),
    init, isKnownPeer: (p) => opts.known?.has(p) ?? false, codec: gobStreamCodec,
    nowMs: opts.clock ? () => opts.clock!.t : undefined,
  });
}

/** Whether `p` has settled once the current event-loop turn's work is done (no timers are running). */
async function settledNow<T>(p: Promise<T>): Promise<{ settled: boolean; value?: T; error?: unknown }> {
  const marker = Symbol('pending');
  const raced = await Promise.race([
    p.then((value) => ({ value }), (error: unknown) => ({ error })),
    new Promise<typeof marker>((resolve) => setImmediate(() => resolve(marker))),
  ]);
  return raced === marker ? { settled: false } : { settled: true, ...raced };
}

test('a lone router whose own request reaches consensus answers that request at once, with no tick', async () => {
  // Quorum 1: the request's first attempt proposes, reaches consensus and creates the ring
  // while it is being queued. No timer runs here, so only the queue re-run can answer it.
  const alloc = allocator(A, { mode: 'consensus', count: 1 });
  alloc.setChannel(recordingChannel());
  const got = await settledNow(alloc.allocate('c1'));
  assert.equal(got.settled, true, 'the allocation is answered without waiting for a tick');
  assert.equal(got.error, undefined);
  assert.equal(alloc.hasRing(), true);

  const other = allocator(B, { mode: 'consensus', count: 1 });
  other.setChannel(recordingChannel());
  const claimed = await settledNow(other.claim('c2', parseCIDR('10.32.0.9/24')));
  assert.equal(claimed.settled, true, 'a claim that starts consensus is answered at once too');
  assert.deepEqual(other.lookup('c2'), [parseCIDR('10.32.0.9/24')]);
});

test('an owner with no route: the ring arriving does not throw into gossip, nothing queued is lost, the claim fails within the bound', async () => {
  const clock = { t: 1_000_000 };
  const a = allocator(A, { mode: 'consensus', count: 2 }, { known: new Set([B]), clock });
  const channel = recordingChannel(B);
  a.setChannel(channel);
  // Queued while there is no ring: the claim is for an address in B's half, the allocation for any.
  const inB = parseCIDR('10.32.0.200/24');
  const claim = a.claim('claimer', inB);
  const claimResult = claim.then(() => undefined, (err: unknown) => err as Error);
  const allocation = a.allocate('allocator');

  // B's ring reaches A (seeded for A and B): A retries both, and sending to B fails.
  const b = allocator(B, { mode: 'seed', seeds: [A, B] });
  assert.doesNotThrow(() => a.onGossipBroadcast(B, b.encodeState()), 'a peer we cannot route to is not an error in the gossip we handle');
  assert.deepEqual(channel.unicasts, [B], 'A asked B for the address');
  const allocated = await settledNow(allocation);
  assert.equal(allocated.settled, true, 'the allocation queued after the claim is answered from A\'s own space');
  assert.equal(allocated.error, undefined);

  // Every tick asks again; after CLAIM_MAX_TICK_ASKS ticks the claim fails naming the owner and why.
  for (let i = 0; i <= CLAIM_MAX_TICK_ASKS; i++) {
    assert.equal((await settledNow(claim)).settled, false, `the claim still waits after ${i} tick(s)`);
    clock.t += TICK_INTERVAL_MS;
    a.tick();
  }
  const err = await claimResult;
  assert.ok(err instanceof Error, 'the claim failed');
  assert.match(err.message, /address 10\.32\.0\.200 is owned by other peer 0a:00:00:00:00:02\(n2\): .*no route/);
  assert.equal(channel.unicasts.length, 1 + CLAIM_MAX_TICK_ASKS, 'one request at first and one per tick');
  assert.deepEqual(a.statusSnapshot().pendingClaims, []);
});

test('an owner that never answers: the claim fails after the bounded number of ticks', async () => {
  const clock = { t: 0 };
  const a = allocator(A, { mode: 'seed', seeds: [A, B] }, { known: new Set([B]), clock });
  a.setChannel(recordingChannel());
  const result = a.claim('c', parseCIDR('10.32.0.200/24')).then(() => undefined, (err: unknown) => err as Error);
  for (let i = 0; i <= CLAIM_MAX_TICK_ASKS; i++) { clock.t += TICK_INTERVAL_MS; a.tick(); }
  const err = await result;
  assert.ok(err instanceof Error);
  assert.match(err.message, /owned by other peer 0a:00:00:00:00:02, which did not grant it after \d+ requests/);
});

test('a claim waiting on a peer that leaves fails at once; a withdrawn request leaves the queue', async () => {
  const known = new Set([B]);
  const a = allocator(A, { mode: 'seed', seeds: [A, B] }, { known });
  a.setChannel(recordingChannel());
  const result = a.claim('c', parseCIDR('10.32.0.200/24')).then(() => undefined, (err: unknown) => err as Error);
  assert.equal(a.statusSnapshot().pendingClaims.length, 1);
  known.delete(B);
  a.peersChanged();
  const err = await result;
  assert.match(err?.message ?? '', /owned by peer 0a:00:00:00:00:02, which is not reachable/);

  const lonely = allocator(B, { mode: 'consensus', count: 3 });
  lonely.setChannel(recordingChannel());
  const caller = new AbortController();
  const waiting = lonely.allocate('w', undefined, { signal: caller.signal });
  assert.equal(lonely.statusSnapshot().pendingAllocates.length, 1, 'waiting for consensus');
  caller.abort();
  await assert.rejects(waiting, IpamAbortedError);
  assert.deepEqual(lonely.statusSnapshot().pendingAllocates, []);
});
