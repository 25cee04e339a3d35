// HTTP API routes (user-surface spec §5.1, wire spec §10) through the server's inject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addServiceRoutes, buildApiServer } from '../../controlplane/api/server.js';
import { parseWeaverFlags } from '../../weaver/flags.js';
import { StartingRouter } from '../../weaver/starting-router.js';
import type { ApiServices, RouterControl } from '../../controlplane/api/router-control.js';
import type { RouterStatus } from '../../controlplane/api/status-model.js';

function fakeRouter(ready = true): RouterControl & { targets: string[]; calls: string[] } {
  const r = {
    targets: [] as string[],
    calls: [] as string[],
    port: () => 6783,
    connect(peers: string[], replace: boolean) {
      r.calls.push(`connect ${peers.join(',')} replace=${replace}`);
      r.targets = replace ? [...peers] : [...r.targets, ...peers];
    },
    forget(peers: string[]) {
      r.calls.push(`forget ${peers.join(',')}`);
      r.targets = r.targets.filter((t) => !peers.includes(t));
    },
    status(): RouterStatus {
      return {
        ready, protocolMinVersion: 1, protocolMaxVersion: 2, encryption: false, peerDiscovery: true,
        name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', port: 6783,
        peers: [{ name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', uid: 18446744073709551615n, shortId: 7, version: 1n, connections: [] }],
        unicastRoutes: [], broadcastRoutes: [],
        connections: [
          { kind: 'connection', outbound: true, address: '10.0.0.2:6783', state: 'established', peerName: 'aa:00:00:00:00:02', peerNickName: 'h2', encrypted: true, overlay: { name: 'sleeve', mtu: 1438, encrypted: true } },
          ...r.targets.map((t) => ({ kind: 'target' as const, address: `${t}:6783`, state: 'connecting' as const })),
        ],
        terminationCount: 3, targets: r.targets, trustedSubnets: [], interface: 'none', overlayDiagnostics: {},
      };
    },
  };
  return r;
}

function services(router: RouterControl): ApiServices {
  return { router, version: '2.8.1' };
}

test('GET /status is 200 when ready and 503 with the same body while not', async () => {
  const ok = buildApiServer(services(fakeRouter(true)), 'control');
  const res = await ok.inject({ method: 'GET', url: '/status' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /^ {8}Version: 2\.8\.1 \(version check update disabled\)\n/);
  assert.match(res.headers['content-type'] as string, /^text\/plain/);
  const notReady = buildApiServer(services(fakeRouter(false)), 'control');
  const res2 = await notReady.inject({ method: 'GET', url: '/status' });
  assert.equal(res2.statusCode, 503);
  assert.equal(res2.body, res.body);
});

test('POST /connect takes repeated peers from an urlencoded body, replace=true, and rejects bad peers', async () => {
  const router = fakeRouter();
  const app = buildApiServer(services(router), 'control');
  const res = await app.inject({
    method: 'POST', url: '/connect', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'peer=10.0.0.5&peer=host2%3A7000',
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, '');
  assert.deepEqual(router.targets, ['10.0.0.5', 'host2:7000']);
  const replaced = await app.inject({ method: 'POST', url: '/connect?peer=10.0.0.9&replace=true' });
  assert.equal(replaced.statusCode, 200);
  assert.deepEqual(router.targets, ['10.0.0.9']);
  const bad = await app.inject({ method: 'POST', url: '/connect?peer=x:y&peer=ok&peer=a:b:c' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.body, 'invalid peer name "x:y", should be host[:port]\ninvalid peer name "a:b:c", should be host[:port]\n');
  assert.deepEqual(router.targets, ['10.0.0.9'], 'a rejected request changes nothing');
  const forgot = await app.inject({ method: 'POST', url: '/forget?peer=10.0.0.9' });
  assert.equal(forgot.statusCode, 200);
  assert.deepEqual(router.targets, []);
});

test('GET /status/targets, /status/connections, unknown sub-view 404', async () => {
  const router = fakeRouter();
  router.targets = ['10.1.1.1'];
  const app = buildApiServer(services(router), 'control');
  assert.equal((await app.inject({ url: '/status/targets' })).body, '10.1.1.1\n');
  const conns = await app.inject({ url: '/status/connections' });
  assert.equal(conns.body.split('\n')[1], '-> 10.1.1.1:6783         connecting   ');
  const missing = await app.inject({ url: '/status/bogus' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.body, '404 page not found\n');
});

test('GET /report is 4-space JSON with exact u64 values; ?format= runs the template', async () => {
  const app = buildApiServer(services(fakeRouter()), 'control');
  const res = await app.inject({ url: '/report', headers: { accept: 'application/json' } });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^application\/json/);
  assert.match(res.body, /\n {4}"Ready": true,\n/);
  assert.match(res.body, /"UID": 18446744073709551615,/);
  assert.match(res.body, /"Attrs": \{\n\s+"name": "sleeve",\n\s+"mtu": 1438,\n\s+"encrypted": true\n/);
  const name = await app.inject({ url: `/report?format=${encodeURIComponent('{{.Router.Name}}')}` });
  assert.equal(name.statusCode, 200);
  assert.equal(name.body, '8a:3e:3e:3e:3e:3e');
  const twice = await app.inject({ url: '/report?format=a&format=b' });
  assert.equal(twice.statusCode, 400);
  assert.equal(twice.body, 'error: must supply one format parameter\n');
  const badTmpl = await app.inject({ url: `/report?format=${encodeURIComponent('{{nosuch .X}}')}` });
  assert.equal(badTmpl.statusCode, 400);
  assert.match(badTmpl.body, /function "nosuch" not defined/);
});

test('GET /metrics emits weave_connections with both encryption values and the termination counter', async () => {
  const app = buildApiServer(services(fakeRouter()), 'status');
  const res = await app.inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /^weave_connections\{encryption="yes",state="established",type="sleeve"\} 1$/m);
  assert.match(res.body, /^weave_connections\{encryption="",state="established",type="sleeve"\} 0$/m);
  assert.match(res.body, /^weave_connection_terminations_total 3$/m);
  assert.match(res.body, /^# TYPE weave_connections gauge$/m);
});

test('the status port is read-only and the metrics port serves only /metrics', async () => {
  const status = buildApiServer(services(fakeRouter()), 'status');
  assert.equal((await status.inject({ method: 'POST', url: '/connect?peer=1.2.3.4' })).statusCode, 404);
  assert.equal((await status.inject({ url: '/status/peers' })).statusCode, 200);
  const metrics = buildApiServer(services(fakeRouter()), 'metrics');
  assert.equal((await metrics.inject({ url: '/status' })).statusCode, 404);
  assert.equal((await metrics.inject({ url: '/metrics' })).statusCode, 200);
});

test('/status/ipam and /status/dns answer on the status port as on the control port; a disabled service is 404', async () => {
  const withServices: ApiServices = { ...services(fakeRouter()), serviceStatus: { ipam: () => 'ipam text\n', dns: () => 'dns text\n' } };
  for (const kind of ['control', 'status'] as const) {
    const app = buildApiServer(withServices, kind);
    const ipam = await app.inject({ url: '/status/ipam' });
    assert.deepEqual([ipam.statusCode, ipam.body], [200, 'ipam text\n'], kind);
    assert.equal((await app.inject({ url: '/status/dns' })).body, 'dns text\n', kind);
  }
  const noIpam = buildApiServer({ ...services(fakeRouter()), serviceStatus: { dns: () => 'dns\n' } }, 'status');
  assert.equal((await noIpam.inject({ url: '/status/ipam' })).statusCode, 404);
  assert.equal((await buildApiServer(withServices, 'metrics').inject({ url: '/status/ipam' })).statusCode, 404, 'the metrics port serves only /metrics');
});

test('a starting router: status views 503 with our name and targets, other paths 503 until its services are added, /connect queued for the mesh', async () => {
  const cfg = parseWeaverFlags(['--nickname', 'h9', '10.0.0.7'], {});
  const starting = new StartingRouter(0x8a3e3e3e3e3en, 'h9', cfg, ['10.0.0.7']);
  const app = buildApiServer({ router: starting, version: '2.8.1' }, 'control');
  app.starting = true;
  const status = await app.inject({ url: '/status' });
  assert.equal(status.statusCode, 503);
  assert.match(status.body, /Name: 8a:3e:3e:3e:3e:3e\(h9\)/);
  assert.equal((await app.inject({ url: '/status/targets' })).body, '10.0.0.7\n');
  const ipamEarly = await app.inject({ url: '/status/ipam' });
  assert.equal(ipamEarly.statusCode, 503, 'a service route not added yet is "starting", not 404');
  assert.equal((await app.inject({ method: 'POST', url: '/connect?peer=10.0.0.8' })).statusCode, 200);

  const mesh = fakeRouter(true);
  addServiceRoutes(app, { serviceStatus: { ipam: () => 'ring\n' } }, 'control');
  app.starting = false;
  starting.started(mesh);
  assert.deepEqual(mesh.calls, ['connect 10.0.0.8 replace=false'], 'the peer asked for while starting reaches the mesh');
  assert.equal((await app.inject({ url: '/status' })).statusCode, 200);
  assert.equal((await app.inject({ url: '/status/ipam' })).body, 'ring\n');
  assert.equal((await app.inject({ url: '/nowhere' })).statusCode, 404);
  starting.forget(['10.0.0.8']);
  assert.deepEqual(mesh.calls.at(-1), 'forget 10.0.0.8');
});

test('requests while the router starts are kept as their net effect on the targets, bounded by the distinct peers', () => {
  const cfg = parseWeaverFlags(['--nickname', 'h9'], {});
  const starting = new StartingRouter(0x8a3e3e3e3e3en, 'h9', cfg, ['10.0.0.7', '10.0.0.6']);
  for (let i = 0; i < 10_000; i++) starting.connect(['10.0.0.8', '10.0.0.9'], false);
  starting.forget(['10.0.0.9', '10.0.0.6']);
  assert.deepEqual(starting.status().targets, ['10.0.0.7', '10.0.0.8'], 'status shows the targets as they will be');
  const mesh = fakeRouter(true);
  mesh.targets = ['10.0.0.7', '10.0.0.6'];
  starting.started(mesh);
  assert.deepEqual(mesh.calls, ['connect 10.0.0.8 replace=false', 'forget 10.0.0.9,10.0.0.6']);
  assert.deepEqual(mesh.targets, ['10.0.0.7', '10.0.0.8']);

  const replacing = new StartingRouter(0x8a3e3e3e3e3en, 'h9', cfg, ['10.0.0.7']);
  replacing.forget(['10.0.0.5']);
  replacing.connect(['10.0.0.1'], true);
  replacing.connect(['10.0.0.2'], false);
  const mesh2 = fakeRouter(true);
  mesh2.targets = ['10.0.0.7'];
  replacing.started(mesh2);
  assert.deepEqual(mesh2.calls, ['connect 10.0.0.1,10.0.0.2 replace=true']);
  assert.deepEqual(mesh2.targets, ['10.0.0.1', '10.0.0.2']);
});
