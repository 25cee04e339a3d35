// The connection maker (spec §2.5, §4.10): backoff schedule on a manual
// clock, permanent failures, reconnects, discovery, and the status view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionMaker, DISCOVERED_DIAL_DEFER_MS, INBOUND_HANDSHAKE_RECHECK_MS, nextRetry, type Dialler } from '../../controlplane/mesh/connection-maker.js';
import { PortNotListeningError } from '../../controlplane/mesh/errors.js';
import { meshStatus } from '../../controlplane/mesh/status.js';
import { TestMesh, handshakes, linkPair, addressOf } from './mesh-harness.js';

const half = (): number => 0.5;

/** Dial the mesh's routers by `10.0.0.<index+1>:6783`, adding the inbound end on the callee. */
function meshDialler(mesh: TestMesh, fromIndex: number, log: string[] = []): Dialler {
  let seq = 1n;
  return async (address) => {
    log.push(address);
    const idx = mesh.peers.findIndex((_, i) => `${addressOf(i + 1)}:6783` === address);
    if (idx < 0) throw new Error(`dial tcp4 ${address}: connect: connection refused`);
    const from = mesh.peers[fromIndex]!;
    const to = mesh.peers[idx]!;
    const [out, inb] = handshakes(from.identity, addressOf(fromIndex + 1), to.identity, address, 7_000_000n + seq++ * 13n);
    const [la, lb] = linkPair();
    to.router.addConnection(inb, lb, { direct: true });
    return { handshake: out, link: la };
  };
}

/** A maker on peer 0 (manual clock, random 0.5) whose dials go to `dial`; `times` records each dial, in ms since it was made. */
function timedMaker(mesh: TestMesh, dial: Dialler): { maker: ConnectionMaker; times: number[] } {
  const times: number[] = [];
  const start = mesh.clock.now();
  const maker = new ConnectionMaker({
    router: mesh.peers[0]!.router, port: 6783, discovery: false, clock: mesh.clock, random: half,
    dial: (address) => {
      times.push(mesh.clock.now() - start);
      return dial(address);
    },
  });
  return { maker, times };
}

test('retry schedule: 2 s initial, random in [i/2, 3i/2), ×1.5 up to 6 min', () => {
  assert.deepEqual(nextRetry(2_000, () => 0), { delay: 1_000, interval: 3_000 });
  assert.deepEqual(nextRetry(2_000, () => 0.999999).delay < 3_000, true);
  assert.deepEqual(nextRetry(300_000, half), { delay: 300_000, interval: 360_000 });
  assert.deepEqual(nextRetry(360_000, half).interval, 360_000);
});

test('a failing target is retried with backoff on the clock', async () => {
  const mesh = new TestMesh(1);
  const { maker, times } = timedMaker(mesh, async (address) => {
    throw new Error(`dial tcp4 ${address}: connect: connection refused`);
  });
  try {
    maker.connect(['10.9.9.9'], false);
    await mesh.advance(20_000);
    // random 0.5 -> delay = i: attempts at 0, +2 s, +3 s, +4.5 s, +6.75 s.
    assert.deepEqual(times, [0, 2_000, 5_000, 9_500, 16_250]);
    const st = meshStatus(mesh.peers[0]!.router, maker);
    assert.deepEqual(st.targets, ['10.9.9.9']);
    const line = st.connections[0]!;
    assert.equal(line.kind, 'target');
    assert.equal(line.address, '10.9.9.9:6783');
    assert.equal(line.state, 'failed');
    assert.match(line.kind === 'target' ? line.lastError ?? '' : '', /connection refused/);
    assert.ok(line.kind === 'target' && line.retryAt instanceof Date);
  } finally {
    maker.stop();
    mesh.stop();
  }
});

test('a port that refuses the dial is retried after 250, 500 and 1000 ms before the backoff; a connection restores the quick retries', async () => {
  const mesh = new TestMesh(2);
  let listening = false;
  const dialPeer = meshDialler(mesh, 0);
  const { maker, times } = timedMaker(mesh, async (address) => {
    if (!listening) throw new PortNotListeningError(`dial tcp ${address}: connect: connection refused`);
    return dialPeer(address);
  });
  try {
    maker.connect([addressOf(2)], false);
    await mesh.advance(8_000);
    // random 0.5 -> delay = interval: quick at +250, +500, +1000 ms, then the spec's +2 s, +3 s.
    assert.deepEqual(times, [0, 250, 750, 1_750, 3_750, 6_750]);
    listening = true;
    await mesh.advance(5_000);
    assert.equal(times.length, 7, 'the next backoff attempt connects');
    assert.equal(meshStatus(mesh.peers[0]!.router, maker).connections.filter((c) => c.kind === 'connection').length, 1);

    // The peer restarts: after the close, the first attempt is on the backoff (6.75 s by now), then the quick retries again.
    listening = false;
    times.length = 0;
    mesh.disconnect(1, 0);
    await mesh.advance(8_000);
    const afterClose = times.slice();
    assert.ok(afterClose.length >= 2, `retried after the close: ${JSON.stringify(afterClose)}`);
    assert.equal(afterClose[1]! - afterClose[0]!, 250, 'the first refusal after a connection is retried quickly again');
  } finally {
    maker.stop();
    mesh.stop();
  }
});

test('connecting to ourselves is never retried', async () => {
  const mesh = new TestMesh(1);
  let dials = 0;
  const us = mesh.peers[0]!;
  const maker = new ConnectionMaker({
    router: us.router, port: 6783, discovery: false, clock: mesh.clock, random: half,
    dial: async (address) => {
      dials++;
      const [hs] = handshakes(us.identity, '10.0.0.1', us.identity, address, 5n);
      return { handshake: hs, link: linkPair()[0] };
    },
  });
  try {
    maker.connect(['10.0.0.1:6783'], false);
    await mesh.advance(30 * 60_000);
    assert.equal(dials, 1);
    const [t] = maker.targetInfo();
    assert.equal(t!.state, 'failed');
    assert.equal(t!.lastError, 'cannot connect to ourself');
  } finally {
    maker.stop();
    mesh.stop();
  }
});

test('reconnects at once after a long-lived connection, with backoff after a short one', async () => {
  const mesh = new TestMesh(2);
  const log: string[] = [];
  const maker = new ConnectionMaker({ router: mesh.peers[0]!.router, port: 6783, discovery: false, clock: mesh.clock, random: half, dial: meshDialler(mesh, 0, log) });
  try {
    maker.connect(['10.0.0.2'], false);
    await mesh.advance(10);
    assert.equal(log.length, 1);
    assert.ok(mesh.peers[0]!.router.connectionTo(mesh.peers[1]!.identity.name));
    assert.deepEqual(meshStatus(mesh.peers[0]!.router, maker).connections.map((c) => `${c.kind} ${c.state}`), ['connection established']);
    await mesh.advance(2 * 60_000);
    mesh.disconnect(1, 0);
    await mesh.advance(10);
    assert.equal(log.length, 2, 'redialled at once');
    assert.ok(mesh.peers[0]!.router.connectionTo(mesh.peers[1]!.identity.name));
    // A connection that dies right away backs off (2 s with random 0.5).
    mesh.disconnect(1, 0);
    await mesh.advance(1_900);
    assert.equal(log.length, 2);
    await mesh.advance(200);
    assert.equal(log.length, 3);
  } finally {
    maker.stop();
    mesh.stop();
  }
});

test('discovery dials peers learned from topology; forget and replace manage direct targets', async () => {
  const mesh = new TestMesh(3);
  const log: string[] = [];
  const makerA = new ConnectionMaker({ router: mesh.peers[0]!.router, port: 6783, discovery: true, clock: mesh.clock, random: half, dial: meshDialler(mesh, 0, log) });
  const makerB = new ConnectionMaker({ router: mesh.peers[1]!.router, port: 6783, discovery: false, clock: mesh.clock, random: half, dial: meshDialler(mesh, 1) });
  try {
    makerA.connect(['10.0.0.2'], false);
    makerB.connect(['10.0.0.3:6783'], false);
    await mesh.advance(5_000);
    assert.ok(log.includes('10.0.0.3:6783'), `A discovered C: ${log.join(' ')}`);
    assert.ok(mesh.peers[0]!.router.connectionTo(mesh.peers[2]!.identity.name), 'A is connected to C');
    assert.deepEqual(makerA.targets(), ['10.0.0.2']);
    makerA.connect(['10.7.7.7', '10.0.0.2'], false);
    assert.deepEqual(makerA.targets(), ['10.0.0.2', '10.7.7.7']);
    makerA.forget(['10.7.7.7']);
    assert.deepEqual(makerA.targets(), ['10.0.0.2']);
    // The attempt already in flight fails; the forgotten target is then dropped, not retried.
    await mesh.advance(10_000);
    assert.ok(!makerA.targetInfo().some((t) => t.address === '10.7.7.7:6783'));
    makerA.connect(['10.8.8.8'], true);
    assert.deepEqual(makerA.targets(), ['10.8.8.8']);
  } finally {
    makerA.stop();
    makerB.stop();
    mesh.stop();
  }
});

test('two peers discovering each other: the lower name dials, the higher waits for it instead of dialling too', async () => {
  // Routers 2 and 3 both launched with router 1 as their only peer (names ascend with the index).
  // Times are sampled every STEP_MS.
  const STEP_MS = 10;
  const run = async (lowerDiscovers: boolean): Promise<{ log2: string[]; log3: string[]; msToConnect: number | undefined; closes: number }> => {
    const mesh = new TestMesh(3);
    const log2: string[] = [];
    const log3: string[] = [];
    const makers = [
      new ConnectionMaker({ router: mesh.peers[1]!.router, port: 6783, discovery: lowerDiscovers, clock: mesh.clock, random: half, dial: meshDialler(mesh, 1, log2) }),
      new ConnectionMaker({ router: mesh.peers[2]!.router, port: 6783, discovery: true, clock: mesh.clock, random: half, dial: meshDialler(mesh, 2, log3) }),
    ];
    let closes = 0;
    for (const p of mesh.peers) p.router.onConnectionRemoved(() => closes++);
    const [r2, r3] = [mesh.peers[1]!, mesh.peers[2]!];
    try {
      for (const m of makers) m.connect(['10.0.0.1'], false);
      let discoveredAt: number | undefined;
      let msToConnect: number | undefined;
      for (let t = 0; t < 10_000 && msToConnect === undefined; t += STEP_MS) {
        await mesh.advance(STEP_MS);
        // Both learn of each other from router 1's topology broadcast.
        if (discoveredAt === undefined && r3.router.peers.get(r2.identity.name)) discoveredAt = mesh.clock.now();
        if (discoveredAt !== undefined && r2.router.connectionTo(r3.identity.name)) msToConnect = mesh.clock.now() - discoveredAt;
      }
      await mesh.advance(10_000);
      return { log2, log3, msToConnect, closes };
    } finally {
      for (const m of makers) m.stop();
      mesh.stop();
    }
  };
  const both = await run(true);
  assert.deepEqual(both.log2, ['10.0.0.1:6783', '10.0.0.3:6783'], 'the lower name dialled the peer it discovered');
  assert.deepEqual(both.log3, ['10.0.0.1:6783'], 'the higher name left the dial to it');
  assert.equal(both.closes, 0, 'no duplicate connection was made and dropped');
  assert.ok(both.msToConnect !== undefined && both.msToConnect < DISCOVERED_DIAL_DEFER_MS, `connected ${both.msToConnect} ms after discovery`);

  const lowerSilent = await run(false);
  assert.deepEqual(lowerSilent.log3, ['10.0.0.1:6783', '10.0.0.2:6783'], 'a lower name that does not dial is dialled after the deferral');
  assert.ok(lowerSilent.msToConnect !== undefined && lowerSilent.msToConnect >= DISCOVERED_DIAL_DEFER_MS - STEP_MS && lowerSilent.msToConnect < 2 * DISCOVERED_DIAL_DEFER_MS,
    `connected ${lowerSilent.msToConnect} ms after discovery`);
});

test('a discovered peer whose host is handshaking with us is not dialled back until that handshake ends', async () => {
  // Router 3 (higher name) discovers router 2, which does not dial it by discovery; meanwhile a
  // connection from router 2's host stays in its handshake with router 3 until HANDSHAKE_ENDS_MS.
  const STEP_MS = 10;
  const HANDSHAKE_ENDS_MS = DISCOVERED_DIAL_DEFER_MS + 700;
  const mesh = new TestMesh(3);
  const log3: string[] = [];
  const start = mesh.clock.now();
  const asked: string[] = [];
  const makers = [
    new ConnectionMaker({ router: mesh.peers[1]!.router, port: 6783, discovery: false, clock: mesh.clock, random: half, dial: meshDialler(mesh, 1) }),
    new ConnectionMaker({
      router: mesh.peers[2]!.router, port: 6783, discovery: true, clock: mesh.clock, random: half, dial: meshDialler(mesh, 2, log3),
      inboundHandshakeFrom: (host) => {
        asked.push(host);
        return host === addressOf(2) && mesh.clock.now() - start < HANDSHAKE_ENDS_MS;
      },
    }),
  ];
  const [r2, r3] = [mesh.peers[1]!, mesh.peers[2]!];
  try {
    for (const m of makers) m.connect(['10.0.0.1'], false);
    let dialledAt: number | undefined;
    for (let t = 0; t < 5_000 && dialledAt === undefined; t += STEP_MS) {
      await mesh.advance(STEP_MS);
      if (log3.includes('10.0.0.2:6783')) dialledAt = mesh.clock.now() - start;
    }
    assert.ok(asked.includes(addressOf(2)), `the maker asked about router 2's host: ${asked.join(' ')}`);
    assert.ok(!asked.includes(addressOf(1)), 'a direct target is dialled without asking');
    assert.ok(dialledAt !== undefined, 'router 3 dialled router 2 once the handshake was over');
    assert.ok(dialledAt >= HANDSHAKE_ENDS_MS && dialledAt < HANDSHAKE_ENDS_MS + INBOUND_HANDSHAKE_RECHECK_MS + STEP_MS,
      `dialled ${dialledAt} ms after start: not while the handshake ran (until ${HANDSHAKE_ENDS_MS} ms), within one re-check after`);
    await mesh.advance(1_000);
    assert.ok(r3.router.connectionTo(r2.identity.name), 'and the connection is up');
  } finally {
    for (const m of makers) m.stop();
    mesh.stop();
  }
});

test('discovery dials gossiped addresses it can parse and passes over the others, every time it looks', async () => {
  // Peer A (connected to us) reports connections to B (A dialled B: B listens at that address),
  // to C (C dialled A from an ephemeral port: C is dialled on our mesh port) and to two peers
  // whose gossiped addresses do not parse.
  const mesh = new TestMesh(2);
  const [us, a] = [mesh.peers[0]!, mesh.peers[1]!];
  const dialled: string[] = [];
  const maker = new ConnectionMaker({
    router: us.router, port: 6783, discovery: true, clock: mesh.clock, random: half,
    dial: async (address) => {
      dialled.push(address);
      if (address === `${addressOf(2)}:6783`) return meshDialler(mesh, 0)(address);
      throw new Error(`dial tcp4 ${address}: connect: connection refused`);
    },
  });
  try {
    maker.connect([addressOf(2)], false);
    await mesh.advance(100);
    const peerA = us.router.peers.get(a.identity.name)!;
    const reported = [
      { name: 0xb0b0b0b0b0b0n, remoteTcpAddr: '10.1.0.2:7000', outbound: true, established: true },
      { name: 0xc0c0c0c0c0c0n, remoteTcpAddr: '10.1.0.3:51234', outbound: false, established: true },
      { name: 0xd0d0d0d0d0d0n, remoteTcpAddr: '10.1.0.4:99999', outbound: true, established: true },
      { name: 0xe0e0e0e0e0e0n, remoteTcpAddr: '[fe80::1', outbound: false, established: true },
    ];
    for (const c of reported) peerA.connections.set(c.name, c);
    for (let round = 0; round < 2; round++) {
      dialled.length = 0;
      us.router.routes.recalculateSoon();
      maker.connect([], false); // evaluate now
      await mesh.advance(DISCOVERED_DIAL_DEFER_MS * 6);
      assert.ok(dialled.includes('10.1.0.2:7000'), `round ${round}: the listening address of B: ${dialled.join(' ')}`);
      assert.ok(dialled.includes('10.1.0.3:6783'), `round ${round}: C's host on our mesh port`);
      assert.ok(dialled.every((d) => !d.includes('99999') && !d.includes('fe80')), `round ${round}: nothing unparsable dialled`);
    }
  } finally {
    maker.stop();
    mesh.stop();
  }
});
