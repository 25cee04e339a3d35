// The plugin's container watcher against a fake Docker on a unix socket: names registered for
// containers on our networks only, died/destroyed handled, liveness as Docker knows it, and the
// resync after a reconnect (names of containers gone meanwhile dropped, addresses of removed
// containers released, running ones registered again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerWatcher, EngineClient } from '../../controlplane/docker/index.js';

const id = (c: string): string => c.repeat(64);
const A = id('a');
const B = id('b');
const GONE = id('d');
const NEW = id('e');

interface FakeContainer { Id: string; Name: string; running: boolean; nets: Record<string, { NetworkID: string; IPAddress: string; Aliases: string[] }> }

function fakeDocker(containers: Map<string, FakeContainer>) {
  const dir = mkdtempSync(join(tmpdir(), 'weave-fake-docker-'));
  const socket = join(dir, 'docker.sock');
  let stream: ServerResponse | undefined;
  let streamOpened!: () => void;
  let opened = new Promise<void>((r) => { streamOpened = r; });
  const json = (res: ServerResponse, v: unknown, status = 200): void => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '', 'http://docker');
    const path = url.pathname.replace(/^\/v1\.41/, '');
    if (path === '/version') return json(res, { Version: '20.10', ApiVersion: '1.41' });
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      stream = res;
      streamOpened();
      return;
    }
    if (path === '/containers/json') {
      return json(res, [...containers.values()].map((c) => ({ Id: c.Id, Names: [c.Name], Image: 'x', State: c.running ? 'running' : 'exited', Status: '' })));
    }
    const m = /^\/containers\/([^/]+)\/json$/.exec(path);
    if (m) {
      const c = containers.get(m[1]!);
      if (!c) return json(res, { message: 'No such container' }, 404);
      return json(res, {
        Id: c.Id, Name: c.Name, State: { Status: c.running ? 'running' : 'exited', Running: c.running, Pid: c.running ? 4242 : 0 },
        Config: { Hostname: `host-${c.Name.slice(1)}`, Domainname: 'weave.local' }, HostConfig: { NetworkMode: 'weave' },
        NetworkSettings: { Networks: Object.fromEntries(Object.entries(c.nets).map(([k, v]) => [k, { ...v, EndpointID: 'e', IPPrefixLen: 12, MacAddress: '' }])) },
      });
    }
    json(res, { message: `unexpected ${path}` }, 500);
  });
  return {
    socket,
    listen: () => new Promise<void>((r) => server.listen(socket, r)),
    opened: () => opened,
    send: (ev: { Type: string; Action: string; id: string; attrs?: Record<string, string> }) => {
      stream!.write(JSON.stringify({ Type: ev.Type, Action: ev.Action, Actor: { ID: ev.id, Attributes: ev.attrs ?? {} }, time: 1 }) + '\n');
    },
    /** Drops the event stream as a daemon restart would; the next stream is awaited with opened(). */
    drop: () => { opened = new Promise<void>((r) => { streamOpened = r; }); stream?.destroy(); },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => { rmSync(dir, { recursive: true, force: true }); r(); }); }),
  };
}

test('container watcher: names for our networks, die/destroy, liveness, and a resync that reconciles', async () => {
  const containers = new Map<string, FakeContainer>([
    [A, { Id: A, Name: '/web', running: true, nets: { weave: { NetworkID: 'netW', IPAddress: '10.32.0.2', Aliases: ['www.weave.local'] } } }],
    [B, { Id: B, Name: '/other', running: true, nets: { bridge: { NetworkID: 'netB', IPAddress: '172.17.0.2', Aliases: [] } } }],
  ]);
  const d = fakeDocker(containers);
  await d.listen();
  const log: string[] = [];
  let registered = new Set<string>([GONE]);
  let owners = [GONE, '10.32.0.9', A];
  const settled: Array<() => void> = [];
  const waitFor = (pred: () => boolean): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (pred()) resolve(); else settled.push(check); };
    check();
  });
  const note = (s: string): void => { log.push(s); for (const f of settled.splice(0)) f(); };
  const w = new ContainerWatcher({
    client: new EngineClient(d.socket),
    isOurNetwork: async (net) => net === 'netW',
    dns: {
      domain: () => 'weave.local.',
      register: async (cid, fqdn, ip) => { registered.add(cid); note(`dns+ ${cid[0]} ${fqdn} ${ip}`); },
      containerDied: (cid) => { registered.delete(cid); note(`dns- ${cid[0]}`); },
      registeredContainers: () => [...registered],
    },
    ipam: {
      containerDied: (cid) => note(`ipam died ${cid[0]}`),
      containerDestroyed: (cid) => { owners = owners.filter((o) => o !== cid); note(`ipam destroyed ${cid[0]}`); },
      owners: () => owners,
    },
    host: { configureArp: async (pid) => note(`arp ${pid}`), track: (label, pid) => note(`ps ${label} ${pid}`) },
  });
  try {
    assert.equal(w.isAlive(A), undefined, 'nothing is known before the first sync');
    w.start();
    await w.firstSync;
    // GONE had names and an address but Docker no longer has it; B is not on our network.
    assert.deepEqual(log, [
      'dns- d', 'ipam destroyed d',
      'dns+ a host-web.weave.local 10.32.0.2', 'dns+ a web.weave.local. 10.32.0.2', 'dns+ a www.weave.local 10.32.0.2',
      `ps ${'a'.repeat(12)} 4242`, 'arp 4242',
    ]);
    assert.equal(w.isAlive(A), true);
    assert.equal(w.isAlive(B), true);
    assert.equal(w.isAlive(NEW), undefined, 'a container Docker has not told us about is not taken for dead');
    assert.equal(w.isAlive('10.32.0.9'), undefined, 'not a container id');

    log.length = 0;
    await d.opened();
    containers.get(A)!.running = false;
    d.send({ Type: 'container', Action: 'die', id: A });
    await waitFor(() => log.length >= 2);
    assert.deepEqual(log, ['dns- a', 'ipam died a']);
    assert.equal(w.isAlive(A), false);
    d.send({ Type: 'container', Action: 'destroy', id: A });
    await waitFor(() => log.length >= 3);
    assert.equal(log[2], 'ipam destroyed a');
    containers.delete(A);

    // Docker restarts: meanwhile a new container started on our network and B stopped.
    log.length = 0;
    registered = new Set([B]);
    containers.set(NEW, { Id: NEW, Name: '/fresh', running: true, nets: { weave: { NetworkID: 'netW', IPAddress: '10.32.0.3', Aliases: [] } } });
    containers.get(B)!.running = false;
    d.drop();
    await d.opened();
    await waitFor(() => log.some((l) => l.startsWith('arp')));
    assert.ok(log.includes('dns- b'), `names of a container that stopped meanwhile go: ${log.join(', ')}`);
    assert.ok(log.includes('dns+ e fresh.weave.local. 10.32.0.3'));
    assert.equal(w.isAlive(B), false);
    assert.equal(w.isAlive(NEW), true);
    assert.equal(w.stats.connects, 2);
  } finally {
    await w.stop();
    await d.close();
  }
});
