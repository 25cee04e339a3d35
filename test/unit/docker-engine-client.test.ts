// The Docker Engine API client and event watcher against a fake daemon on a unix socket:
// version negotiation, typed errors, the event stream's line decoding, and reconnect + resync;
// and the client against a fake daemon over mutual TLS, as `dockerd --tlsverify` listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EngineClient, parseDockerHost, dockerHostFrom, DockerNotFoundError, DockerApiError,
  DockerUnreachableError, DockerProtocolError, MAX_API_VERSION,
} from '../../controlplane/docker/engine-client.js';
import { EventWatcher, decodeEventLines, streamEvents } from '../../controlplane/docker/events.js';
import type { DockerEvent } from '../../controlplane/docker/events.js';
import { compareDottedVersions } from '../../controlplane/dotted-version.js';
import { mustRun } from '../support/exec.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function fakeDocker(apiVersion: string, handler: Handler): Promise<{ socket: string; server: Server; paths: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'weave-fake-docker-'));
  const socket = join(dir, 'docker.sock');
  const paths: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => { body += d; });
    req.on('end', () => {
      paths.push(`${req.method} ${req.url}`);
      if (req.url === '/version') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ Version: '99.0', ApiVersion: apiVersion, MinAPIVersion: '1.12' }));
        return;
      }
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket, server, paths,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => { rmSync(dir, { recursive: true, force: true }); resolve(); });
    }),
  };
}

function json(res: ServerResponse, status: number, v: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(v));
}

test('Docker addresses: unix, bare path, tcp, host:port; bad ones are refused with the forms expected', () => {
  assert.deepEqual(parseDockerHost('unix:///var/run/docker.sock'), { kind: 'unix', socketPath: '/var/run/docker.sock' });
  assert.deepEqual(parseDockerHost('/tmp/d.sock'), { kind: 'unix', socketPath: '/tmp/d.sock' });
  assert.deepEqual(parseDockerHost('tcp://10.0.0.1:2375'), { kind: 'tcp', host: '10.0.0.1', port: 2375 });
  assert.deepEqual(parseDockerHost('localhost:2376'), { kind: 'tcp', host: 'localhost', port: 2376 });
  assert.deepEqual(parseDockerHost('tcp://[::1]:2375'), { kind: 'tcp', host: '::1', port: 2375 });
  assert.throws(() => parseDockerHost('unix://relative.sock'), /absolute socket path/);
  assert.throws(() => parseDockerHost('tcp://host'), /expected unix:\/\/\/path, tcp:\/\/host:port/);
  assert.throws(() => parseDockerHost('tcp://host:99999'), /invalid Docker address/);
  assert.equal(dockerHostFrom(undefined, {}), 'unix:///var/run/docker.sock');
  assert.equal(dockerHostFrom(undefined, { DOCKER_HOST: 'tcp://h:1' }), 'tcp://h:1');
  assert.equal(dockerHostFrom('unix:///x', { DOCKER_HOST: 'tcp://h:1' }), 'unix:///x');
  assert.ok(compareDottedVersions('1.9', '1.41') < 0);
  assert.ok(compareDottedVersions('1.41', '1.41') === 0);
  assert.ok(compareDottedVersions('1.43', '1.41') > 0);
});

test('the API version is the daemon\'s, capped at ours, negotiated once and used as the path prefix', async () => {
  for (const [daemon, expected] of [['1.45', MAX_API_VERSION], ['1.30', '1.30']] as const) {
    const d = await fakeDocker(daemon, (req, res) => json(res, 200, { Id: 'abc', Name: '/web', State: { Running: true, Pid: 42, Status: 'running' }, Config: { Hostname: 'web', Domainname: '' }, HostConfig: { NetworkMode: 'weave' }, NetworkSettings: { Networks: {} }, url: req.url }));
    try {
      const c = new EngineClient(`unix://${d.socket}`);
      const a = await c.inspectContainer('web');
      await c.inspectContainer('db/x');
      assert.equal(a.Id, 'abc');
      assert.equal(a.State.Pid, 42);
      assert.deepEqual(d.paths, ['GET /version', `GET /v${expected}/containers/web/json`, `GET /v${expected}/containers/db%2Fx/json`]);
    } finally { await d.close(); }
  }
});

test('a daemon older than the minimum API is refused with both versions named', async () => {
  const d = await fakeDocker('1.20', (_req, res) => json(res, 200, []));
  try {
    await assert.rejects(new EngineClient(d.socket).listContainers(), (e: Error) => e instanceof DockerProtocolError && /API 1\.20, older than the 1\.24/.test(e.message));
  } finally { await d.close(); }
});

test('errors are typed: 404 -> DockerNotFoundError with the daemon\'s message, 409 -> DockerApiError, not JSON -> DockerProtocolError', async () => {
  const d = await fakeDocker('1.41', (req, res) => {
    if (req.url?.includes('/networks/missing')) return json(res, 404, { message: 'network missing not found' });
    if (req.url?.includes('/networks/create')) return json(res, 409, { message: 'network with name weave already exists' });
    if (req.url?.includes('/containers/json')) { res.end('<html>'); return; }
    json(res, 500, { message: 'boom' });
  });
  try {
    const c = new EngineClient(d.socket);
    await assert.rejects(c.inspectNetwork('missing'), (e: Error) => e instanceof DockerNotFoundError && e.status === 404 && e.daemonMessage === 'network missing not found');
    await assert.rejects(c.createNetwork({ Name: 'weave', Driver: 'weavemesh' }), (e: Error) => e instanceof DockerApiError && !(e instanceof DockerNotFoundError) && e.status === 409 && /already exists/.test(e.message));
    await assert.rejects(c.listContainers({ all: true }), (e: Error) => e instanceof DockerProtocolError && /not JSON/.test(e.message));
    await assert.rejects(c.removeNetwork('x'), (e: Error) => e instanceof DockerApiError && e.status === 500 && e.daemonMessage === 'boom');
    const create = d.paths.find((p) => p.includes('/networks/create'));
    assert.equal(create, 'POST /v1.41/networks/create');
    assert.ok(d.paths.includes('GET /v1.41/containers/json?all=1'));
  } finally { await d.close(); }
});

test('an absent daemon is DockerUnreachableError naming the address and the errno', async () => {
  const c = new EngineClient('unix:///nonexistent/weave-test/docker.sock');
  await assert.rejects(c.ping(), (e: Error) => e instanceof DockerUnreachableError && /unix:\/\/\/nonexistent\/weave-test\/docker\.sock: ENOENT/.test(e.message));
  // A failed negotiation is not cached: the same client works once the daemon is there.
  await assert.rejects(c.listContainers(), DockerUnreachableError);
});

test('a daemon that accepts but never answers times out as unreachable', async () => {
  const d = await fakeDocker('1.41', () => { /* never answers */ });
  try {
    const c = new EngineClient(d.socket, { timeoutMs: 200, apiVersion: '1.41' });
    const t0 = Date.now();
    await assert.rejects(c.inspectNetwork('weave'), (e: Error) => e instanceof DockerUnreachableError && /within 200 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 2000);
  } finally { await d.close(); }
});

test('event lines: split across chunks, blank lines skipped, garbage and non-events dropped and reported', async () => {
  const ev = (id: string): string => JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: id, Attributes: { name: `n${id}`, bad: 7 } }, time: 1 });
  async function* chunks(): AsyncGenerator<string> {
    const all = `${ev('a')}\n\n{not json}\n${JSON.stringify({ Type: 'container' })}\n${ev('b')}\n${ev('c')}`;
    for (let i = 0; i < all.length; i += 7) yield all.slice(i, i + 7);
    yield '\n';
  }
  const bad: string[] = [];
  const got: DockerEvent[] = [];
  for await (const e of decodeEventLines(chunks(), (l) => bad.push(l))) got.push(e);
  assert.deepEqual(got.map((e) => e.Actor.ID), ['a', 'b', 'c']);
  assert.deepEqual(got[0]!.Actor.Attributes, { name: 'na' }, 'non-string attributes are dropped');
  assert.equal(bad.length, 2);
});

test('streamEvents passes filters and yields events as the daemon writes them', async () => {
  let filters = '';
  const d = await fakeDocker('1.41', (req, res) => {
    filters = new URL(req.url ?? '', 'http://x').searchParams.get('filters') ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'x1', Attributes: {} }, time: 5 }) + '\n');
    setTimeout(() => res.end(JSON.stringify({ Type: 'network', Action: 'connect', Actor: { ID: 'n1', Attributes: { container: 'x1' } }, time: 6 }) + '\n'), 20);
  });
  try {
    const got: string[] = [];
    for await (const e of streamEvents(new EngineClient(d.socket), { filters: { type: ['container', 'network'] } })) got.push(`${e.Type}/${e.Action}/${e.Actor.ID}`);
    assert.deepEqual(got, ['container/die/x1', 'network/connect/n1']);
    assert.deepEqual(JSON.parse(filters), { type: ['container', 'network'] });
  } finally { await d.close(); }
});

test('the watcher reconnects after the daemon goes away, runs onSync before each stream\'s events, and loses none queued meanwhile', async () => {
  let streams = 0;
  const d = await fakeDocker('1.41', (_req, res) => {
    streams++;
    const n = streams;
    res.writeHead(200, { 'content-type': 'application/json' });
    // Written at once: the watcher must hold them until onSync is done.
    res.write(JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: `s${n}`, Attributes: {} }, time: n }) + '\n');
    if (n === 1) setTimeout(() => res.destroy(), 30); // the daemon "restarts"
  });
  const log: string[] = [];
  let sawSecond!: () => void;
  const second = new Promise<void>((r) => { sawSecond = r; });
  const states: boolean[] = [];
  const w = new EventWatcher(new EngineClient(d.socket), {
    minBackoffMs: 10,
    onSync: async () => { log.push('sync-begin'); await new Promise((r) => setTimeout(r, 30)); log.push('sync-end'); },
    onEvent: (e) => { log.push(`event ${e.Actor.ID}`); if (e.Actor.ID === 's2') sawSecond(); if (e.Actor.ID === 's1') throw new Error('handler failure is contained'); },
    onConnectionChange: (c) => states.push(c),
  });
  try {
    w.start();
    await second;
    assert.deepEqual(log, ['sync-begin', 'sync-end', 'event s1', 'sync-begin', 'sync-end', 'event s2']);
    assert.equal(w.stats.connects, 2);
    assert.equal(w.stats.handlerErrors, 1);
    assert.deepEqual(states, [true, false, true]);
  } finally {
    await w.stop();
    await d.close();
  }
  assert.equal(w.stats.connected, false);
});

test('the watcher keeps retrying while the daemon is down and stops promptly when asked', async () => {
  const errors: string[] = [];
  let threeFailures!: () => void;
  const retriedThrice = new Promise<void>((resolve) => { threeFailures = resolve; });
  const w = new EventWatcher(new EngineClient('/nonexistent/weave-test/docker.sock'), {
    minBackoffMs: 5, maxBackoffMs: 20, onEvent: () => undefined,
    onError: (e, during) => {
      errors.push(`${during}: ${e.name}`);
      if (errors.length === 3) threeFailures();
    },
  });
  const started = Date.now();
  w.start();
  await retriedThrice;
  // Three attempts with 5-20 ms back-off between them: well under a second even on a loaded machine.
  assert.ok(Date.now() - started < 2000, `three attempts took ${Date.now() - started} ms`);
  const t0 = Date.now();
  await w.stop();
  assert.ok(Date.now() - t0 < 500, `stop() ends the backoff wait (took ${Date.now() - t0} ms)`);
  assert.ok(errors.every((e) => e === 'connect: DockerUnreachableError'), errors.join(', '));
});

test('a Docker host over TLS: the client verifies the daemon with the given CA and presents its certificate; without the CA it is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-docker-tls-'));
  const ssl = (args: string[]): Promise<string> => mustRun('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=weave-test-ca']);
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await ssl(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext.cnf']);
  const [key, cert, ca] = ['key.pem', 'cert.pem', 'ca.pem'].map((f) => readFileSync(join(dir, f)));
  const clientCerts: string[] = [];
  // As dockerd --tlsverify: a client certificate signed by the CA is required.
  const server = createHttpsServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    clientCerts.push(String((req.socket as TLSSocket).getPeerCertificate().subject.CN));
    res.setHeader('content-type', 'application/json');
    if (req.url === '/version') {
      res.end(JSON.stringify({ Version: '99.0', ApiVersion: '1.41', MinAPIVersion: '1.12' }));
      return;
    }
    res.end(JSON.stringify({ Id: 'abc', Name: '/web', State: { Running: true, Pid: 42, Status: 'running' }, Config: { Hostname: 'web', Domainname: '' }, HostConfig: { NetworkMode: 'weave' }, NetworkSettings: { Networks: {} } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    const c = new EngineClient({ kind: 'tcp', host: '127.0.0.1', port }, { tls: { key, cert, ca } });
    assert.equal((await c.inspectContainer('web')).Id, 'abc');
    assert.deepEqual(clientCerts, ['127.0.0.1', '127.0.0.1'], 'the client presented its certificate on /version and the inspect');
    const untrusting = new EngineClient({ kind: 'tcp', host: '127.0.0.1', port }, { tls: { key, cert }, timeoutMs: 5_000 });
    await assert.rejects(untrusting.inspectContainer('web'), (e: Error) => e instanceof DockerUnreachableError && /self.signed|unable to (get|verify)/i.test(e.message));
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
});
