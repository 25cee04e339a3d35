// Forwarding state computed from a real mesh Router's routes and applied to fake datapaths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPLY_COST_SPACING, computeForwardingState, ForwardingUpdater, type ForwardingMesh } from '../../controlplane/router/forwarding.js';
import type { Datapath, ForwardingState } from '../../controlplane/router/datapath.js';
import type { PeerName } from '../../controlplane/mesh/types.js';

const A = 0x0an;
const B = 0x0bn;
const C = 0x0cn;

/** A line A - B - C: A reaches C through B. */
function lineMesh(): ForwardingMesh {
  const unicast = new Map<PeerName, PeerName>([[A, 0n], [B, B], [C, B]]);
  return {
    ourName: A,
    peers: {
      ourselves: { shortId: 1 },
      all: () => [
        { name: A, shortId: 1, hasShortId: true },
        { name: B, shortId: 2, hasShortId: true },
        { name: C, shortId: 3, hasShortId: false },
      ],
    },
    routes: {
      unicastTable: (establishedOnly) => {
        assert.equal(establishedOnly, true, 'the data plane uses established routes only');
        return unicast;
      },
      broadcastNextHops: (src) => (src === A ? [B] : []),
    },
  };
}

test('state lists reachable peers with short ids and next hops, neighbours and broadcast trees', () => {
  const s = computeForwardingState(lineMesh(), [{ name: B, overlay: 'sleeve', remoteIp: '10.0.0.2' }]);
  assert.deepEqual(s, {
    ourName: A,
    ourShortId: 1,
    peers: [{ name: B, shortId: 2, nextHop: B }, { name: C, nextHop: B }],
    neighbours: [{ name: B, overlay: 'sleeve', remoteIp: '10.0.0.2' }],
    broadcast: [{ source: A, nextHops: [B] }, { source: B, nextHops: [] }, { source: C, nextHops: [] }],
  } satisfies ForwardingState);
});

function recordingDatapath(states: ForwardingState[]): Datapath {
  return {
    overlay: 'sleeve', kind: 'sleeve', mtu: 1376,
    createForwarder: () => { throw new Error('not used'); },
    applyForwardingState: (s) => { states.push(s); },
    stats: () => ({ kernelForwarded: 0n, userspace: 0n, drops: {} }),
    close: async () => undefined,
  };
}

test('updates are debounced and an unchanged state is not applied again', async () => {
  const states: ForwardingState[] = [];
  let neighbours = [{ name: B, overlay: 'sleeve' as const, remoteIp: '10.0.0.2' }];
  const u = new ForwardingUpdater({ mesh: lineMesh(), datapaths: [recordingDatapath(states)], neighbours: () => neighbours, delayMs: 5 });
  u.schedule();
  u.schedule();
  u.schedule();
  await new Promise<void>((resolve) => {
    const poll = (): void => { if (u.applied > 0) resolve(); else setTimeout(poll, 1); };
    poll();
  });
  assert.equal(states.length, 1, 'three triggers, one apply');
  assert.equal(u.applyNow(), undefined, 'same state: not applied');
  assert.equal(states.length, 1);
  neighbours = [{ name: B, overlay: 'sleeve', remoteIp: '10.0.0.9' }];
  assert.ok(u.applyNow());
  assert.equal(states.length, 2);
  assert.equal(states[1]!.neighbours[0]!.remoteIp, '10.0.0.9');
  u.stop();
  neighbours = [];
  u.schedule();
  assert.equal(u.applyNow(), undefined, 'stopped: nothing applied');
});

test('a datapath whose apply rejects is retried without a change, and its new peers are reported only once it succeeds', async () => {
  let unicast = new Map<PeerName, PeerName>([[A, 0n]]);
  const mesh = lineMesh();
  const meshNow: ForwardingMesh = { ...mesh, routes: { ...mesh.routes, unicastTable: () => unicast } };
  const dp = recordingDatapath([]);
  let attempts = 0;
  let applied: () => void = () => {};
  const retried = new Promise<void>((r) => { applied = r; });
  dp.applyForwardingState = () => {
    attempts++;
    if (attempts === 2) return Promise.reject(new Error('netlink: ENOBUFS'));
    if (attempts === 3) applied();
    return Promise.resolve();
  };
  const logs: string[] = [];
  const reported: PeerName[][] = [];
  const u = new ForwardingUpdater({ mesh: meshNow, datapaths: [dp], neighbours: () => [], log: (m) => logs.push(m), onPeersReachable: (p) => reported.push([...p]) });
  u.applyNow();
  unicast = new Map([[A, 0n], [B, B]]);
  const started = Date.now();
  u.applyNow();
  const keepAlive = setTimeout(() => undefined, 5000); // the router's retry timer is unref'd
  await retried;
  clearTimeout(keepAlive);
  const waited = Date.now() - started;
  await new Promise((r) => setImmediate(r));
  u.stop();
  assert.match(logs[0] ?? '', /sleeve \(sleeve\): cannot apply forwarding state: netlink: ENOBUFS/);
  assert.equal(attempts, 3, 'the failed state was applied again with nothing changed');
  assert.ok(waited >= 900 && waited < 3000, `retried after ${waited} ms`);
  assert.deepEqual(reported, [[B]], 'B is reported once, after the retry put it in place');
});

test('a datapath that throws is retried on the next change', () => {
  const states: ForwardingState[] = [];
  let fail = true;
  const dp = recordingDatapath(states);
  dp.applyForwardingState = (s) => { if (fail) throw new Error('map full'); states.push(s); };
  const logs: string[] = [];
  const u = new ForwardingUpdater({ mesh: lineMesh(), datapaths: [dp], neighbours: () => [], log: (m) => logs.push(m) });
  u.applyNow();
  assert.match(logs[0] ?? '', /sleeve \(sleeve\): cannot apply forwarding state: map full/);
  fail = false;
  assert.ok(u.applyNow(), 'the same state is applied again after a failure');
  assert.equal(states.length, 1);
});

test('peers that became reachable are reported once every datapath has the state in place', async () => {
  let unicast = new Map<PeerName, PeerName>([[A, 0n]]);
  const mesh = lineMesh();
  const meshNow: ForwardingMesh = { ...mesh, routes: { ...mesh.routes, unicastTable: () => unicast } };
  let finishApply: () => void = () => {};
  const dp = recordingDatapath([]);
  let inPlace = false;
  dp.applyForwardingState = () => new Promise<void>((resolve) => { finishApply = () => { inPlace = true; resolve(); }; });
  const reported: PeerName[][] = [];
  const u = new ForwardingUpdater({ mesh: meshNow, datapaths: [dp], neighbours: () => [], onPeersReachable: (p) => { assert.ok(inPlace, 'reported only once the state is in place'); reported.push([...p]); } });
  u.applyNow();
  finishApply();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reported, [], 'nobody reachable yet');
  unicast = new Map([[A, 0n], [B, B], [C, B]]);
  inPlace = false;
  u.applyNow();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reported, [], 'not before the datapath has applied the state');
  finishApply();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reported, [[B, C]]);
  // C goes away and comes back: reported again; B, still there, is not.
  unicast = new Map([[A, 0n], [B, B]]);
  u.applyNow();
  finishApply();
  unicast = new Map([[A, 0n], [B, B], [C, B]]);
  u.applyNow();
  finishApply();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reported, [[B, C], [C]]);
});

test('a costly state is applied no more often than its cost allows: the next apply waits APPLY_COST_SPACING times the last cost', async () => {
  // Each broadcast tree costs COST_MS of CPU here, as large meshes' do; three sources per state.
  const COST_MS = 4;
  let version = 0;
  const base = lineMesh();
  const mesh: ForwardingMesh = {
    ...base,
    routes: {
      unicastTable: (e) => base.routes.unicastTable(e),
      broadcastNextHops: (src) => {
        const until = performance.now() + COST_MS;
        while (performance.now() < until) { /* the cost of a walk over a large graph */ }
        // A state that differs every time, as while a mesh forms.
        return src === A ? [B, ...(version % 2 === 1 ? [C] : [])] : [];
      },
    },
  };
  const applied: number[] = [];
  const dp: Datapath = { ...recordingDatapath([]), applyForwardingState: () => { applied.push(performance.now()); } };
  const u = new ForwardingUpdater({ mesh, datapaths: [dp], neighbours: () => [], delayMs: 1 });
  u.applyNow();
  version++;
  u.schedule();
  const keepAlive = setTimeout(() => undefined, 5000);
  while (applied.length < 2) await new Promise((r) => setTimeout(r, 2));
  clearTimeout(keepAlive);
  // The first state cost at least three trees (A, B, C), and its apply followed its computation at once.
  const waited = applied[1]! - applied[0]!;
  const minimum = APPLY_COST_SPACING * 3 * COST_MS;
  assert.ok(waited >= minimum - 1, `the second apply came ${waited.toFixed(1)} ms after the first; a state costing ≥ ${3 * COST_MS} ms waits ≥ ${minimum} ms (debounce 1 ms)`);
  assert.ok(waited < 1000, `and not much longer (${waited.toFixed(1)} ms)`);
});
