// The mesh port opened early in startup (weaver/mesh-wiring.ts MeshListener):
// peers that dial while the data plane loads are held, not refused, and handed
// to the mesh with what they sent; the number held is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { MeshListener } from '../../weaver/mesh-wiring.js';
import { MAX_PENDING_HANDSHAKES } from '../../controlplane/mesh/index.js';
import { holdWhileConnectionsQueue, TurnCounter } from '../support/event-loop-turns.js';

test('a connection made before the mesh starts is handed over with its bytes; beyond the cap they are closed', async () => {
  const listener = await MeshListener.open('127.0.0.1', 0);
  const { port } = listener.server.address() as net.AddressInfo;
  const clients: net.Socket[] = [];
  try {
    const early = net.connect(port, '127.0.0.1');
    clients.push(early);
    await once(early, 'connect');
    early.write('weave\x00\x01\x02');
    // Fill the queue to its cap; the next connection is closed by us.
    for (let i = 1; i < MAX_PENDING_HANDSHAKES; i++) {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      clients.push(c);
      await once(c, 'connect');
    }
    const extra = net.connect(port, '127.0.0.1');
    extra.on('error', () => undefined);
    clients.push(extra);
    await once(extra, 'close');

    const handed: net.Socket[] = [];
    let onHanded: (() => void) | undefined;
    const firstBytes = new Promise<Buffer>((resolve) => {
      listener.handOver((s) => {
        handed.push(s);
        if (handed.length === 1) s.once('data', resolve);
        onHanded?.();
      });
    });
    assert.equal(handed.length, MAX_PENDING_HANDSHAKES, 'every held connection was handed over');
    assert.equal((await firstBytes).toString('latin1'), 'weave\x00\x01\x02');
    // After the hand-over new connections go straight to the handler.
    const lateHanded = new Promise<void>((resolve) => { onHanded = resolve; });
    const late = net.connect(port, '127.0.0.1');
    clients.push(late);
    await lateHanded;
    assert.equal(handed.length, MAX_PENDING_HANDSHAKES + 1);
    for (const s of handed) s.destroy();
  } finally {
    for (const c of clients) c.destroy();
    await listener.close();
  }
});

test('connections queued while the event loop was busy are all taken in one turn, not one per turn', async () => {
  const listener = await MeshListener.open('127.0.0.1', 0);
  const { port } = listener.server.address() as net.AddressInfo;
  const QUEUED = 20;
  const clients: net.Socket[] = [];
  const handed: net.Socket[] = [];
  const turns = new TurnCounter();
  const turnsSeen = new Set<number>();
  try {
    const allHanded = new Promise<void>((resolve) => {
      listener.handOver((s) => {
        handed.push(s);
        turnsSeen.add(turns.turn);
        if (handed.length === QUEUED) resolve();
      });
    });
    for (let i = 0; i < QUEUED; i++) {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      clients.push(c);
    }
    await holdWhileConnectionsQueue();
    turns.start();
    await allHanded;
    turns.stop();
    assert.equal(handed.length, QUEUED);
    assert.ok(turnsSeen.size <= 2, `the ${QUEUED} queued connections were taken over ${turnsSeen.size} turns of the event loop`);
    assert.ok(handed.every((s) => s.remoteAddress === '127.0.0.1' && typeof s.remotePort === 'number'), 'each taken socket knows its peer');
  } finally {
    turns.stop();
    for (const s of handed) s.destroy();
    for (const c of clients) c.destroy();
    await listener.close();
  }
});
