// Stream servers other than the mesh port (the HTTP API, weaveDNS over TCP,
// the Docker proxy and plugins) take their whole accept queue in one turn of a
// busy event loop, and serve what they take as Node's own connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { takeQueuedConnections } from '../../dataplane/sys/accept-queue.js';
import { holdWhileConnectionsQueue, TurnCounter } from '../support/event-loop-turns.js';

const QUEUED = 20;
const REQUEST = 'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

/** Listens on `where` (a port on 127.0.0.1, or a unix socket path). */
function listen(server: net.Server, where: number | string): Promise<void> {
  return new Promise((resolve) => {
    if (typeof where === 'string') server.listen(where, resolve);
    else server.listen(where, '127.0.0.1', resolve);
  });
}

/**
 * Connects QUEUED clients while the event loop is held, so all of them wait in
 * the server's accept queue; returns over how many turns the server saw them
 * and each client's reply.
 */
async function burst(server: http.Server, connectTo: net.NetConnectOpts): Promise<{ turns: number; replies: string[] }> {
  const turns = new TurnCounter();
  const turnsSeen = new Set<number>();
  let seen = 0;
  const allSeen = new Promise<void>((resolve) => {
    server.on('connection', () => {
      turnsSeen.add(turns.turn);
      if (++seen === QUEUED) resolve();
    });
  });
  const replies: Array<Promise<string>> = [];
  for (let i = 0; i < QUEUED; i++) {
    const c = net.connect(connectTo);
    c.write(REQUEST);
    replies.push(new Promise((resolve, reject) => {
      let got = '';
      c.setEncoding('latin1');
      c.on('data', (d: string) => { got += d; });
      c.on('end', () => resolve(got));
      c.on('error', reject);
    }));
  }
  await holdWhileConnectionsQueue();
  turns.start();
  await allSeen;
  turns.stop();
  return { turns: turnsSeen.size, replies: await Promise.all(replies) };
}

function statusServer(): http.Server {
  return http.createServer((req, res) => res.end(`ok ${req.url ?? ''}`));
}

test('an HTTP server on TCP takes a queued burst within 2 turns and answers every request', async () => {
  const server = statusServer();
  takeQueuedConnections(server);
  await listen(server, 0);
  try {
    const { port } = server.address() as net.AddressInfo;
    const { turns, replies } = await burst(server, { port, host: '127.0.0.1' });
    assert.ok(turns <= 2, `the ${QUEUED} queued connections were taken over ${turns} turns of the event loop`);
    assert.equal(replies.length, QUEUED);
    for (const r of replies) assert.match(r, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok \/status$/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('an HTTP server on a unix socket (plugins, proxy) takes a queued burst within 2 turns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-accept-'));
  const path = join(dir, 'plugin.sock');
  const server = statusServer();
  takeQueuedConnections(server);
  await listen(server, path);
  try {
    const { turns, replies } = await burst(server, { path });
    assert.ok(turns <= 2, `the ${QUEUED} queued connections were taken over ${turns} turns of the event loop`);
    for (const r of replies) assert.match(r, /\r\n\r\nok \/status$/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without the drain the same burst takes a turn per connection (what the test above would see)', async () => {
  const server = statusServer();
  await listen(server, 0);
  try {
    const { port } = server.address() as net.AddressInfo;
    const { turns } = await burst(server, { port, host: '127.0.0.1' });
    assert.ok(turns > 2, `libuv took the ${QUEUED} connections over ${turns} turns`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('at most maxPerTurn are taken in a turn beyond the one Node gave; the rest follow', async () => {
  const server = statusServer();
  const perTurn: number[] = [];
  let turnCount = 0;
  server.on('connection', () => {
    turnCount++;
    if (turnCount === 1) setImmediate(() => { perTurn.push(turnCount); turnCount = 0; });
  });
  takeQueuedConnections(server, 4);
  await listen(server, 0);
  try {
    const { port } = server.address() as net.AddressInfo;
    const { replies } = await burst(server, { port, host: '127.0.0.1' });
    assert.equal(replies.length, QUEUED);
    assert.ok(perTurn.length > 0 && perTurn.every((n) => n <= 5), `connections per turn: ${perTurn.join(', ')}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
