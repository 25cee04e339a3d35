// The legacy plugin's drivers and socket server with fake ports (user-surface spec §7.1):
// Weave's semantics for every endpoint, its exact errors, and what malformed or unknown
// requests get back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCIDR, parseCIDR, type CIDR } from '../../controlplane/ipam/addr.js';
import {
  IpamDriver, NetworkDriver, PluginServer, parseMulticastOption, poolIdOf, splitPoolId, driverNameOf,
  type PluginEndpointPort, type PluginIpamPort,
} from '../../controlplane/docker/index.js';

function fakeIpam(): PluginIpamPort & { calls: string[]; next: number } {
  const f = {
    calls: [] as string[],
    next: parseCIDR('10.32.0.5/32').addr,
    defaultSubnet: (): CIDR => parseCIDR('10.32.0.0/12'),
    allocate: async (range: CIDR) => { f.calls.push(`allocate ${formatCIDR(range)}`); return f.next++; },
    claim: async (c: CIDR) => { f.calls.push(`claim ${formatCIDR(c)}`); if (formatCIDR(c) === '10.32.0.66/12') throw new Error('address 10.32.0.66 is already owned by 10.32.0.66'); },
    release: (ip: string) => { f.calls.push(`release ${ip}`); },
  };
  return f;
}

function fakeEndpoints(): PluginEndpointPort & { made: string[]; removed: string[] } {
  const f = {
    made: [] as string[],
    removed: [] as string[],
    create: async (id: string) => { f.made.push(id); return { peerVeth: `vethwg${id.slice(0, 9)}`, mac: '02:42:0a:20:00:05' }; },
    remove: async (id: string) => { f.removed.push(id); return true; },
    peerName: (id: string) => `vethwg${id.slice(0, 9)}`,
  };
  return f;
}

const EP = '4a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9';

test('multicast option: empty is on, Go booleans, anything else is the exact error', () => {
  assert.equal(parseMulticastOption(''), true);
  assert.equal(parseMulticastOption('true'), true);
  assert.equal(parseMulticastOption('F'), false);
  assert.throws(() => parseMulticastOption('maybe'), { message: 'unrecognized value "maybe" for option works.weave.multicast' });
});

test('pool ids carry subnet and range; foreign ids are refused', () => {
  const id = poolIdOf(parseCIDR('10.32.0.0/12'), parseCIDR('10.32.4.0/24'));
  assert.equal(id, 'weave-10.32.0.0/12-10.32.4.0/24');
  assert.deepEqual(splitPoolId(id), { subnet: parseCIDR('10.32.0.0/12'), range: parseCIDR('10.32.4.0/24') });
  assert.throws(() => splitPoolId('other-10.0.0.0/8-10.0.0.0/8'), { message: 'Unrecognized pool ID: other-10.0.0.0/8-10.0.0.0/8' });
  assert.equal(driverNameOf('/run/docker/plugins/weavemesh.sock'), 'weavemesh');
});

test('IPAM driver: default pool, fake gateway, allocate in the range with the subnet mask, claim, gateway release ignored', async () => {
  const ipam = fakeIpam();
  const d = new IpamDriver(ipam);
  assert.deepEqual(d.defaultAddressSpaces(), { LocalDefaultAddressSpace: 'weavelocal', GlobalDefaultAddressSpace: 'weaveglobal' });
  assert.deepEqual(d.capabilities(), { RequiresMACAddress: false, RequiresRequestReplay: false });
  assert.deepEqual(d.requestPool({ AddressSpace: 'weavelocal', Pool: '', SubPool: '', V6: false }), {
    PoolID: 'weave-10.32.0.0/12-10.32.0.0/12', Pool: '10.32.0.0/12', Data: { 'com.docker.network.gateway': '10.32.0.0/12' },
  });
  // Host bits in the pool are cleared, as Go's net.ParseCIDR does.
  const pool = d.requestPool({ AddressSpace: 'weavelocal', Pool: '10.40.0.7/16', SubPool: '10.40.8.0/24', V6: false });
  assert.equal(pool.PoolID, 'weave-10.40.0.0/16-10.40.8.0/24');
  assert.deepEqual(await d.requestAddress({ PoolID: pool.PoolID, Address: '' }), { Address: '10.32.0.5/16', Data: {} });
  assert.deepEqual(await d.requestAddress({ PoolID: pool.PoolID, Address: '10.40.0.10' }), { Address: '10.40.0.10/16', Data: {} });
  await assert.rejects(d.requestAddress({ PoolID: 'weave-10.32.0.0/12-10.32.0.0/12', Address: '10.32.0.66' }), /already owned/);
  await assert.rejects(d.requestAddress({ PoolID: 'bogus', Address: '' }), /Unrecognized pool ID: bogus/);
  assert.deepEqual(await d.requestAddress({ PoolID: 'weavepool', Address: '' }), { Address: '10.32.0.6/12', Data: {} });
  d.releaseAddress({ PoolID: pool.PoolID, Address: '10.40.0.0' });
  d.releaseAddress({ PoolID: pool.PoolID, Address: '10.40.0.10' });
  assert.deepEqual(ipam.calls, ['allocate 10.40.8.0/24', 'claim 10.40.0.10/16', 'claim 10.32.0.66/12', 'allocate 10.32.0.0/12', 'release 10.40.0.10']);
});

test('network driver: endpoint needs Docker\'s interface; Join gives vethwg + ethwe and the multicast route only when asked', async () => {
  const eps = fakeEndpoints();
  const inspected: string[] = [];
  const d = new NetworkDriver({
    name: 'weavemesh', scope: 'local', endpoints: eps,
    lookup: { inspect: async (id) => { inspected.push(id); if (id === 'missing') throw new Error('network missing not found'); return { driver: id === 'foreign' ? 'bridge' : 'weavemesh', options: { 'works.weave.multicast': 'true' } }; } },
  });
  assert.deepEqual(d.capabilities(), { Scope: 'local' });
  d.createNetwork({ NetworkID: 'n1', options: { 'works.weave.multicast': '' } });
  d.createNetwork({ NetworkID: 'n2', options: { 'works.weave.multicast': 'false', other: 'x' } });
  assert.throws(() => d.createNetwork({ NetworkID: 'n3', options: { 'works.weave.multicast': 'yes please' } }), /unrecognized value "yes please"/);
  await assert.rejects(d.createEndpoint({ NetworkID: 'n1', EndpointID: EP, hasInterface: false }), { message: 'Not supported: creating an interface from within CreateEndpoint' });
  assert.deepEqual(await d.createEndpoint({ NetworkID: 'n1', EndpointID: EP, hasInterface: true }), { Interface: { MacAddress: '02:42:0a:20:00:05' } });
  assert.deepEqual(await d.join({ NetworkID: 'n1', EndpointID: EP, SandboxKey: '/var/run/docker/netns/x' }), {
    InterfaceName: { SrcName: 'vethwg4a1b2c3d4', DstPrefix: 'ethwe' },
    StaticRoutes: [{ Destination: '224.0.0.0/4', RouteType: 1 }],
  });
  assert.deepEqual(await d.join({ NetworkID: 'n2', EndpointID: EP, SandboxKey: '' }), { InterfaceName: { SrcName: 'vethwg4a1b2c3d4', DstPrefix: 'ethwe' } });
  // A network made before this router started is looked up in Docker once.
  assert.equal((await d.join({ NetworkID: 'old', EndpointID: EP, SandboxKey: '' })).StaticRoutes?.length, 1);
  await d.join({ NetworkID: 'old', EndpointID: EP, SandboxKey: '' });
  assert.deepEqual(inspected, ['old']);
  assert.equal((await d.networkInfo('foreign')).isOurs, false);
  await assert.rejects(d.join({ NetworkID: 'missing', EndpointID: EP, SandboxKey: '' }), { message: 'unable to find network info: network missing not found' });
  assert.deepEqual(await d.deleteEndpoint({ NetworkID: 'n1', EndpointID: EP }), {});
  assert.deepEqual(eps.removed, [EP]);
  assert.deepEqual(d.endpointOperInfo({ NetworkID: 'n1', EndpointID: EP }), { Value: {} });
  assert.deepEqual(d.allocateNetwork('n1', { a: 'b' }), { Options: { a: 'b' } });
  assert.deepEqual(d.deleteNetwork('n1'), {});
});

async function post(socket: string, path: string, body: string, method = 'POST'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends a body of `size` bytes on a raw connection; resolves with whatever the server answered before closing. */
function oversized(socket: string, path: string, size: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(socket);
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => { got += d; });
    c.on('error', () => undefined); // the server may close while we still write: that is the point
    c.on('close', () => resolve(got));
    c.write(`POST ${path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    c.end(Buffer.alloc(size, 0x20));
  });
}

test('plugin socket: handshake, 500 {"Err"} for driver errors, 400 for garbage, 404 for unknown paths; a stale socket is replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-plugin-'));
  const socket = join(dir, 'plugins', 'weavemesh.sock');
  const mesh = new PluginServer({
    socketPath: socket,
    network: new NetworkDriver({ name: 'weavemesh', scope: 'local', endpoints: fakeEndpoints() }),
    ipam: new IpamDriver(fakeIpam()),
  });
  const globalSocket = join(dir, 'plugins', 'weave.sock');
  const global = new PluginServer({ socketPath: globalSocket, network: new NetworkDriver({ name: 'weave', scope: 'global', endpoints: fakeEndpoints() }) });
  try {
    // A killed router leaves its socket file behind.
    await mesh.listen();
    await mesh.close();
    writeFileSync(socket, 'stale');
    await mesh.listen();
    await global.listen();
    assert.deepEqual(JSON.parse((await post(socket, '/Plugin.Activate', '')).body), { Implements: ['NetworkDriver', 'IpamDriver'] });
    assert.deepEqual(JSON.parse((await post(globalSocket, '/Plugin.Activate', '{}')).body), { Implements: ['NetworkDriver'] });
    assert.deepEqual(JSON.parse((await post(globalSocket, '/NetworkDriver.GetCapabilities', '{}')).body), { Scope: 'global' });
    assert.equal((await post(globalSocket, '/IpamDriver.RequestPool', '{}')).status, 404, 'weave.sock has no IPAM driver');

    const bad = await post(socket, '/NetworkDriver.CreateNetwork', '{"NetworkID": "n9", "Options": {"com.docker.network.generic": {"works.weave.multicast": "nope"}}}');
    assert.equal(bad.status, 500);
    assert.deepEqual(JSON.parse(bad.body), { Err: 'unrecognized value "nope" for option works.weave.multicast' });
    const ok = await post(socket, '/NetworkDriver.CreateNetwork', '{"NetworkID": "n9", "Options": {"com.docker.network.generic": {"works.weave.multicast": "true"}}}');
    assert.deepEqual([ok.status, JSON.parse(ok.body)], [200, {}]);
    const noNet = await post(socket, '/NetworkDriver.Join', JSON.stringify({ NetworkID: 'unknown', EndpointID: EP, SandboxKey: '' }));
    assert.equal(noNet.status, 500);
    assert.deepEqual(JSON.parse(noNet.body), { Err: 'unable to find network info: Docker client disabled; unable to get network info' });
    const pool = JSON.parse((await post(socket, '/IpamDriver.RequestPool', '{"AddressSpace": "weavelocal", "Pool": "", "SubPool": "", "V6": false}')).body) as { PoolID: string };
    assert.equal(pool.PoolID, 'weave-10.32.0.0/12-10.32.0.0/12');
    const addr = await post(socket, '/IpamDriver.RequestAddress', JSON.stringify({ PoolID: pool.PoolID, Address: '' }));
    assert.deepEqual(JSON.parse(addr.body), { Address: '10.32.0.5/12', Data: {} });

    const garbage = await post(socket, '/NetworkDriver.CreateEndpoint', '{"NetworkID": ');
    assert.equal(garbage.status, 400);
    assert.match(garbage.body, /^Unable to decode JSON payload: /);
    const wrongType = await post(socket, '/IpamDriver.RequestAddress', '{"PoolID": 7}');
    assert.deepEqual([wrongType.status, wrongType.body], [400, 'Unable to decode JSON payload: PoolID must be a string\n']);
    assert.equal((await post(socket, '/IpamDriver.ReleaseAddress', '[]')).status, 400);
    assert.equal((await post(socket, '/NetworkDriver.Teleport', '{}')).status, 404);
    assert.equal((await post(socket, '/Plugin.Activate', '', 'GET')).status, 405);
    assert.match(await oversized(socket, '/NetworkDriver.Leave', 2 * 1024 * 1024), /^HTTP\/1\.1 413 /);
    // Still serving after all that.
    assert.equal((await post(socket, '/NetworkDriver.GetCapabilities', '')).status, 200);
    assert.deepEqual(mesh.stats, { requests: 13, driverErrors: 2, badRequests: 6 });
  } finally {
    await mesh.close();
    await global.close();
    assert.equal(existsSync(socket), false, 'the socket file goes with the server');
    rmSync(dir, { recursive: true, force: true });
  }
});
