// The proxy's forwarding core against a stand-in daemon on a unix socket:
// chunked and large bodies, streamed replies, hijacked (101) connections with
// half-close, and hostile clients (bad JSON, oversized or trickled headers)
// refused without disturbing others. Real dockerd is in test/docker/proxy.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerApiForwarder } from '../../controlplane/docker/api-forwarder.js';
import { DockerProxy, MAX_INTERCEPTED_BODY_BYTES, type ProxyDocker, type ProxyWeave } from '../../controlplane/docker/proxy.js';
import { listenProxy, type RunningProxyListener } from '../../controlplane/docker/proxy-listener.js';
import { compileHostnameMatch } from '../../controlplane/docker/hostname.js';

const dir = mkdtempSync(join(tmpdir(), 'weave-proxy-unit-'));
const daemonSocket = join(dir, 'daemon.sock');
const proxySocket = join(dir, 'proxy.sock');
let daemon: Server;
let listener: RunningProxyListener;
/** Create bodies the stand-in daemon received, as parsed JSON. */
const created: unknown[] = [];
const HEADERS_TIMEOUT_MS = 600;

function notFound(what: string): Error {
  return Object.assign(new Error(`No such ${what}`), { status: 404 });
}

before(async () => {
  daemon = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if ((req.url ?? '').split('?')[0].endsWith('/containers/create')) {
        created.push(JSON.parse(body.toString('utf8')));
        res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"Id":"abc"}');
      } else if (req.url === '/events') {
        // A streamed reply: three lines, each written on its own.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        let n = 0;
        const t = setInterval(() => {
          res.write(`{"n":${n++}}\n`);
          if (n === 3) {
            clearInterval(t);
            res.end();
          }
        }, 20);
      } else {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Seen-Encoding': String(req.headers['transfer-encoding'] ?? 'length') });
        res.end(createHash('sha256').update(body).digest('hex'));
      }
    });
  });
  // A hijacked stream: 101, then echo upper-cased; when the client half-closes, say "bye" and end.
  daemon.on('upgrade', (_req: IncomingMessage, sock: Socket) => {
    sock.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    sock.on('data', (d: Buffer) => sock.write(d.toString('utf8').toUpperCase()));
    sock.on('end', () => sock.end('bye'));
  });
  await new Promise<void>((r) => daemon.listen(daemonSocket, r));
  const docker: ProxyDocker = {
    inspectContainer: (id) => Promise.reject(notFound(`container: ${id}`)),
    json: <T>(): Promise<T> => Promise.resolve({ Config: { Entrypoint: null, Cmd: ['sh'] } } as T),
    call: () => Promise.resolve(undefined),
    listContainers: () => Promise.resolve([]),
  };
  const weave: ProxyWeave = {
    allocate: () => Promise.resolve('10.32.0.1/12'),
    claim: () => Promise.resolve(),
    attach: () => Promise.resolve(),
    addresses: () => Promise.resolve(undefined),
    registerName: () => Promise.resolve(),
    dns: () => Promise.resolve({ domain: 'weave.local.', server: '10.32.0.100' }),
  };
  const proxy = new DockerProxy(new DockerApiForwarder({ kind: 'unix', socketPath: daemonSocket }), docker, weave, {
    waiterRoot: '/opt/ww', noDefaultIpalloc: false, noRewriteHosts: false, withoutDns: false, noMulticastRoute: false,
    rewriteInspect: false, hostnameRules: { fromLabel: '', match: compileHostnameMatch('(.*)'), replacement: '$1' }, log: () => undefined,
  });
  listener = await listenProxy({ kind: 'unix', path: proxySocket }, {
    request: (req, res) => proxy.handleRequest(req, res),
    upgrade: (req, s, head) => proxy.handleUpgrade(req, s, head),
  }, { headersTimeoutMs: HEADERS_TIMEOUT_MS });
});

after(async () => {
  await listener?.close();
  await new Promise<void>((r) => daemon.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

interface Reply { status: number; headers: IncomingMessage['headers']; body: Buffer }

function call(method: string, path: string, body?: Buffer | Buffer[], headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: proxySocket, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const b of body) req.write(b);
      req.end();
    } else {
      req.end(body);
    }
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a large body and a chunked body reach the daemon whole', async () => {
  const big = randomBytes(20 * 1024 * 1024);
  const r = await call('POST', '/v1.41/images/load', big, { 'Content-Length': String(big.length) });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), sha(big));
  assert.equal(r.headers['x-seen-encoding'], 'length');
  const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(5)];
  const c = await call('POST', '/build', parts, { 'Transfer-Encoding': 'chunked' });
  assert.equal(c.body.toString(), sha(Buffer.concat(parts)));
  assert.equal(c.headers['x-seen-encoding'], 'chunked');
});

test('a streamed reply arrives line by line, before the daemon ends it', async () => {
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = request({ socketPath: proxySocket, path: '/events' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => lines.push(d));
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(lines.join('').trim().split('\n'), ['{"n":0}', '{"n":1}', '{"n":2}']);
  assert.ok(lines.length >= 2, `the reply was not held back until its end (${lines.length} chunks)`);
});

test('a hijacked connection (Upgrade: tcp, 101) is tunnelled both ways and a half-close passes through', async () => {
  const sock = connect({ path: proxySocket, allowHalfOpen: true });
  sock.write('POST /v1.41/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    got += d;
    if (got.includes('\r\n\r\n') && !got.includes('HELLO')) sock.end('hello');
  });
  await new Promise<void>((r) => sock.on('end', r));
  sock.destroy();
  assert.match(got, /^HTTP\/1\.1 101 UPGRADED\r\n/);
  assert.ok(got.endsWith('\r\n\r\nHELLObye'), JSON.stringify(got));
});

test('create: the waiter and DNS are added; unknown fields pass through', async () => {
  const body = { Image: 'busybox', Cmd: ['true'], Future: [1, 2], HostConfig: { NetworkMode: 'default' } };
  const r = await call('POST', '/v1.41/containers/create?name=web', Buffer.from(JSON.stringify(body)), { 'Content-Type': 'application/json' });
  assert.equal(r.status, 201);
  const sent = created.at(-1) as Record<string, unknown>;
  assert.deepEqual(sent.Entrypoint, ['/w/w']);
  assert.deepEqual(sent.Cmd, ['true']);
  assert.deepEqual(sent.Future, [1, 2]);
  assert.equal(sent.Hostname, 'web');
  assert.deepEqual(sent.HostConfig, { NetworkMode: 'default', Binds: ['/opt/ww/w:/w:ro'], Dns: ['10.32.0.100'], DnsSearch: ['.'] });
});

test('hostile requests are refused and the proxy keeps serving', async () => {
  const bad = await call('POST', '/containers/create', Buffer.from('{"Image": '));
  assert.equal(bad.status, 500);
  assert.match(bad.body.toString(), /malformed create request body/);
  const badCidr = await call('POST', '/containers/create', Buffer.from(JSON.stringify({ Image: 'x', Env: ['WEAVE_CIDR=bogus'] })));
  assert.equal(badCidr.status, 500);
  assert.match(badCidr.body.toString(), /invalid WEAVE_CIDR/);
  const huge = await call('POST', '/containers/create', Buffer.alloc(MAX_INTERCEPTED_BODY_BYTES + 10, 0x20)).catch((e: Error) => e);
  assert.ok(huge instanceof Error || huge.status === 413, 'an oversized create body is refused');
  const missing = await call('POST', '/containers/nosuch/start');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.toString(), 'No such container: nosuch\n');
  // Oversized headers: 431 from Node's parser, the connection closed.
  const fat = await call('GET', '/info', undefined, { 'X-Fat': 'a'.repeat(64 * 1024) }).catch((e: Error) => e);
  assert.ok(fat instanceof Error || fat.status === 431 || fat.status === 400, `oversized headers refused (${fat instanceof Error ? fat.message : fat.status})`);
  // A trickling client is dropped once the header timeout passes; others are served meanwhile.
  const slow = connect({ path: proxySocket });
  slow.write('GET /info HTTP/1.1\r\nHost: d\r\n');
  const trickle = setInterval(() => slow.write('X-A: b\r\n'), 100);
  const t0 = Date.now();
  const ok = await call('GET', '/info');
  assert.equal(ok.status, 200);
  await new Promise<void>((r) => slow.on('close', () => r()).on('error', () => undefined));
  clearInterval(trickle);
  const ms = Date.now() - t0;
  assert.ok(ms >= HEADERS_TIMEOUT_MS * 0.8 && ms < HEADERS_TIMEOUT_MS + 3_000, `slow client dropped after ${ms} ms`);
  assert.equal((await call('GET', '/info')).status, 200);
});
