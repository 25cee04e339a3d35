// The CNI plugin's pure logic (user-surface spec §7.4, CNI spec 1.1): config
// parsing and its errors, results per version against golden JSON, the
// environment, and the commands over an in-memory router.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetConf } from '../../controlplane/cni/config.js';
import { readEnvironment, type CniEnvironment } from '../../controlplane/cni/environment.js';
import { CniError } from '../../controlplane/cni/errors.js';
import { runPlugin, type IpamDelegate, type PluginDeps } from '../../controlplane/cni/plugin.js';
import { formatResult, type CniResult } from '../../controlplane/cni/result.js';
import {
  RouterDownError, RouterRequestError,
  type EndpointRequest, type EndpointState, type RouterHealth, type WeaveRouterPort,
} from '../../controlplane/cni/router-port.js';

function cniError(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, `a CniError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error thrown');
}

async function cniErrorAsync(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CniError, `a CniError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error thrown');
}

test('config: Weave defaults, refused keys with Weave messages, bad values name the key', () => {
  const c = parseNetConf('{"cniVersion":"1.0.0","name":"weave","type":"weave-net"}');
  assert.equal(c.bridge, 'weave');
  assert.equal(c.mtu, 0);
  assert.equal(c.hairpinMode, true);
  assert.deepEqual(c.ipam, { type: '' });
  assert.equal(parseNetConf('{"name":"x"}').cniVersion, '0.1.0', 'no cniVersion is 0.1.0');

  const gw = cniError(() => parseNetConf('{"cniVersion":"1.0.0","isGateway":true}'));
  assert.deepEqual([gw.code, gw.message], [2, 'Gateway functionality not supported']);
  const masq = cniError(() => parseNetConf('{"cniVersion":"1.0.0","ipMasq":true}'));
  assert.deepEqual([masq.code, masq.message], [2, 'IP Masquerading functionality not supported']);
  assert.equal(cniError(() => parseNetConf('not json')).code, 6);
  assert.equal(cniError(() => parseNetConf('[1]')).code, 6);
  assert.equal(cniError(() => parseNetConf('{"cniVersion":"0.9.0"}')).code, 1);
  for (const [conf, msg] of [
    ['{"bridge":"a/b"}', /^bridge must be an interface name/],
    ['{"mtu":-1}', /^mtu must be an integer/],
    ['{"hairpinMode":"yes"}', /^hairpinMode must be true or false/],
    ['{"ipam":{"subnet":"10.0.0.0"}}', /^ipam\.subnet must be an IPv4 CIDR/],
    ['{"ipam":{"gateway":"10.0.0.300"}}', /^ipam\.gateway must be an IPv4 address/],
    ['{"ipam":{"routes":[{"gw":"10.0.0.1"}]}}', /^ipam\.routes\[0\]\.dst must be an IPv4 CIDR/],
    ['{"dns":{"nameservers":"1.1.1.1"}}', /^dns\.nameservers must be a list of strings/],
    ['{"cni.dev/valid-attachments":[{"containerID":1}]}', /^cni\.dev\/valid-attachments\[0\]/],
  ] as const) {
    const e = cniError(() => parseNetConf(conf));
    assert.equal(e.code, 7, conf);
    assert.match(e.message, msg);
  }
  const full = parseNetConf(JSON.stringify({
    cniVersion: '1.1.0', bridge: 'br1', mtu: 1400, hairpinMode: false, dns: { nameservers: ['10.96.0.10'] },
    ipam: { type: 'host-local', subnet: '10.5.0.0/16', gateway: '10.5.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.5.0.254' }] },
  }));
  assert.deepEqual([full.bridge, full.mtu, full.hairpinMode], ['br1', 1400, false]);
  assert.deepEqual(full.ipam, { type: 'host-local', subnet: '10.5.0.0/16', gateway: '10.5.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.5.0.254' }] });
  assert.deepEqual(full.dns, { nameservers: ['10.96.0.10'] });
});

const RESULT: CniResult = {
  interfaces: [{ name: 'vethwepl1234567' }, { name: 'eth0', mac: '0a:58:0a:20:00:02', sandbox: '/run/netns/x', mtu: 1376 }],
  ips: [{ address: '10.32.0.2/12', gateway: '10.32.0.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }],
  dns: { nameservers: ['10.96.0.10'] },
};

test('results: golden JSON for 0.2.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0', () => {
  assert.equal(JSON.stringify(formatResult(RESULT, '0.2.0')),
    '{"cniVersion":"0.2.0","ip4":{"ip":"10.32.0.2/12","gateway":"10.32.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.32.0.1"}]},"dns":{"nameservers":["10.96.0.10"]}}');
  const v03 = '{"interfaces":[{"name":"vethwepl1234567"},{"name":"eth0","mac":"0a:58:0a:20:00:02","sandbox":"/run/netns/x"}],'
    + '"ips":[{"version":"4","interface":1,"address":"10.32.0.2/12","gateway":"10.32.0.1"}],'
    + '"routes":[{"dst":"0.0.0.0/0","gw":"10.32.0.1"}],"dns":{"nameservers":["10.96.0.10"]}}';
  assert.equal(JSON.stringify(formatResult(RESULT, '0.3.1')), `{"cniVersion":"0.3.1",${v03.slice(1)}`);
  assert.equal(JSON.stringify(formatResult(RESULT, '0.4.0')), `{"cniVersion":"0.4.0",${v03.slice(1)}`);
  assert.equal(JSON.stringify(formatResult(RESULT, '1.0.0')),
    '{"cniVersion":"1.0.0","interfaces":[{"name":"vethwepl1234567"},{"name":"eth0","mac":"0a:58:0a:20:00:02","sandbox":"/run/netns/x"}],'
    + '"ips":[{"interface":1,"address":"10.32.0.2/12","gateway":"10.32.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.32.0.1"}],"dns":{"nameservers":["10.96.0.10"]}}');
  assert.equal(JSON.stringify(formatResult(RESULT, '1.1.0')),
    '{"cniVersion":"1.1.0","interfaces":[{"name":"vethwepl1234567"},{"name":"eth0","mac":"0a:58:0a:20:00:02","mtu":1376,"sandbox":"/run/netns/x"}],'
    + '"ips":[{"interface":1,"address":"10.32.0.2/12","gateway":"10.32.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.32.0.1"}],"dns":{"nameservers":["10.96.0.10"]}}');
});

test('environment: required variables per command, each missing one named', () => {
  const lines: string[] = [];
  const e = cniError(() => readEnvironment({ CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' }, (l) => lines.push(l)));
  assert.deepEqual([e.code, e.message], [4, 'required env variables missing']);
  assert.deepEqual(lines, ['CNI_CONTAINERID env variable missing', 'CNI_NETNS env variable missing', 'CNI_PATH env variable missing']);
  assert.equal(readEnvironment({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' }).netns, undefined, 'DEL without a namespace');
  assert.equal(readEnvironment({ CNI_COMMAND: 'GC', CNI_PATH: '/a:/b' }).path.length, 2);
  assert.equal(readEnvironment({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy' }).command, 'VERSION', "libcni's placeholders are ignored");
  assert.deepEqual([...readEnvironment({ CNI_COMMAND: 'GC', CNI_PATH: '/a', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' }).args], [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']]);
  assert.equal(cniError(() => readEnvironment({ CNI_COMMAND: 'CHECKUP' })).code, 100);
  assert.equal(cniError(() => readEnvironment({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: '../x', CNI_NETNS: '/n', CNI_IFNAME: 'eth0', CNI_PATH: '/p' })).code, 4);
  assert.equal(cniError(() => readEnvironment({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: 'rel', CNI_IFNAME: 'eth0', CNI_PATH: '/p' })).code, 4);
  assert.equal(cniError(() => readEnvironment({ CNI_COMMAND: 'GC', CNI_PATH: '/p', CNI_ARGS: 'novalue' })).code, 4);
});

/** An in-memory router: IPAM by id, a bridge, endpoints by netns+ifname. */
class FakeRouter implements WeaveRouterPort {
  readonly address = '127.0.0.1:6784';
  health: () => Promise<RouterHealth> = () => Promise.resolve({ kind: 'ready' });
  owned = new Map<string, string[]>();
  bridge: string[] = [];
  exposed: string[] = [];
  endpoints = new Map<string, EndpointRequest>();
  next = 2;
  down = false;
  failAttach = false;

  private gate(): void {
    if (this.down) throw new RouterDownError('cannot reach the router API at 127.0.0.1:6784: ECONNREFUSED');
  }

  async allocate(id: string, subnet?: string): Promise<string> {
    this.gate();
    const have = this.owned.get(id)?.[0];
    if (have) return have;
    const base = subnet?.split('/')[0]?.split('.').slice(0, 3).join('.') ?? '10.32.0';
    const cidr = `${base}.${this.next++}/${subnet?.split('/')[1] ?? '12'}`;
    this.owned.set(id, [cidr]);
    return cidr;
  }

  async lookup(id: string): Promise<string[]> {
    this.gate();
    return this.owned.get(id) ?? [];
  }

  async release(id: string): Promise<boolean> {
    this.gate();
    return this.owned.delete(id);
  }

  async bridgeAddresses(): Promise<string[]> {
    this.gate();
    return this.bridge;
  }

  async expose(cidr: string): Promise<void> {
    this.exposed.push(cidr);
    this.bridge.push(cidr);
  }

  async attach(req: EndpointRequest): Promise<void> {
    this.gate();
    if (this.failAttach) throw new RouterRequestError('bridge "weave" not present; did you launch weave?');
    this.endpoints.set(`${req.netns}#${req.ifname}`, req);
  }

  async inspect(netns: string, ifname: string): Promise<EndpointState | undefined> {
    const e = this.endpoints.get(`${netns}#${ifname}`);
    return e && { hostVeth: `vethwepl${e.containerId.slice(0, 7)}`, mac: '0a:00:00:00:00:01', mtu: 1376, cidrs: e.cidrs, routes: e.routes.map((r) => ({ ...r })) };
  }

  async detach(netns: string, ifname: string): Promise<boolean> {
    return this.endpoints.delete(`${netns}#${ifname}`);
  }
}

const noDelegate: IpamDelegate = { exec: () => Promise.reject(new Error('no delegate expected')) };

function setup(): { router: FakeRouter; deps: PluginDeps; warnings: string[]; dir: string; done: () => void } {
  const router = new FakeRouter();
  const warnings: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'weave-cni-unit-'));
  return { router, warnings, dir, deps: { router, delegate: noDelegate, warn: (l) => warnings.push(l) }, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function env(command: CniEnvironment['command'], containerId = 'c1', netns: string | undefined = '/run/netns/p1'): CniEnvironment {
  const e: CniEnvironment = { command, containerId, ifname: 'eth0', args: new Map(), path: ['/opt/cni/bin'] };
  if (netns !== undefined) e.netns = netns;
  return e;
}

test('ADD: a bridge without an address gets one from IPAM (weave:expose) and becomes the gateway; repeat ADD is the same', async () => {
  const s = setup();
  try {
    const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'weave', dataDir: s.dir });
    const out = JSON.parse(await runPlugin('net', env('ADD'), conf, s.deps)) as { ips: { address: string; gateway: string }[] };
    assert.deepEqual(s.router.exposed, ['10.32.0.3/12'], 'weave:expose got the second address, on the bridge');
    assert.deepEqual(out.ips, [{ interface: 1, address: '10.32.0.2/12', gateway: '10.32.0.3' }]);
    assert.deepEqual(s.router.endpoints.get('/run/netns/p1#eth0')?.routes, [{ dst: '0.0.0.0/0', gw: '10.32.0.3' }]);
    const again = JSON.parse(await runPlugin('net', env('ADD'), conf, s.deps)) as { ips: unknown };
    assert.deepEqual(again.ips, out.ips);
    assert.equal(s.router.exposed.length, 1);
  } finally {
    s.done();
  }
});

test('ADD: a gateway outside the subnet gets an on-link /32 first; configured routes use their gw or the gateway', async () => {
  const s = setup();
  try {
    s.router.bridge = ['192.168.7.1/24'];
    await runPlugin('net', env('ADD'), JSON.stringify({ cniVersion: '1.0.0', dataDir: s.dir, hairpinMode: false, mtu: 1300 }), s.deps);
    const req = s.router.endpoints.get('/run/netns/p1#eth0');
    assert.deepEqual(req?.routes, [{ dst: '192.168.7.1/32' }, { dst: '0.0.0.0/0', gw: '192.168.7.1' }]);
    assert.deepEqual([req?.hairpin, req?.mtu, req?.containerId], [false, 1300, 'c1']);

    const conf = { cniVersion: '1.0.0', dataDir: s.dir, ipam: { subnet: '10.40.0.0/16', gateway: '10.40.0.1', routes: [{ dst: '10.96.0.0/12' }, { dst: '0.0.0.0/0', gw: '10.40.0.254' }] } };
    const out = JSON.parse(await runPlugin('net', env('ADD', 'c2', '/run/netns/p2'), JSON.stringify(conf), s.deps)) as { ips: { address: string; gateway: string }[]; routes: unknown };
    assert.match(out.ips[0]!.address, /^10\.40\.0\.\d+\/16$/);
    assert.equal(out.ips[0]!.gateway, '10.40.0.1');
    assert.deepEqual(out.routes, [{ dst: '10.96.0.0/12', gw: '10.40.0.1' }, { dst: '0.0.0.0/0', gw: '10.40.0.254' }]);
  } finally {
    s.done();
  }
});

test('ADD that fails after allocating gives the address back; a router that is down is "try again later"', async () => {
  const s = setup();
  try {
    s.router.bridge = ['10.32.0.1/12'];
    s.router.failAttach = true;
    const e = await cniErrorAsync(runPlugin('net', env('ADD'), JSON.stringify({ cniVersion: '1.0.0', dataDir: s.dir }), s.deps));
    assert.equal(e.code, 101);
    assert.match(e.message, /^error setting up interface: bridge "weave" not present/);
    assert.equal(s.router.owned.size, 0, 'no address leaked');
    s.router.down = true;
    const d = await cniErrorAsync(runPlugin('net', env('ADD'), JSON.stringify({ cniVersion: '1.0.0', dataDir: s.dir }), s.deps));
    assert.equal(d.code, 11);
    assert.match(d.message, /^unable to allocate IP address: weave router not reachable at 127\.0\.0\.1:6784/);
  } finally {
    s.done();
  }
});

test('DEL is idempotent; CHECK compares prevResult with the kernel and IPAM; GC releases only recorded ids not listed', async () => {
  const s = setup();
  try {
    s.router.bridge = ['10.32.0.1/12'];
    const conf = { cniVersion: '1.1.0', name: 'weave', dataDir: s.dir };
    const prev = JSON.parse(await runPlugin('net', env('ADD'), JSON.stringify(conf), s.deps)) as Record<string, unknown>;
    assert.equal(await runPlugin('net', env('CHECK'), JSON.stringify({ ...conf, prevResult: prev }), s.deps), '');
    s.router.owned.set('c1', ['10.32.0.99/12']);
    assert.match((await cniErrorAsync(runPlugin('net', env('CHECK'), JSON.stringify({ ...conf, prevResult: prev }), s.deps))).message, /^IPAM holds no address 10\.32\.0\.2\/12/);
    s.router.owned.set('c1', ['10.32.0.2/12']);
    s.router.endpoints.clear();
    assert.equal((await cniErrorAsync(runPlugin('net', env('CHECK'), JSON.stringify({ ...conf, prevResult: prev }), s.deps))).code, 102);
    assert.equal((await cniErrorAsync(runPlugin('net', env('CHECK'), JSON.stringify({ ...conf, cniVersion: '0.3.1', prevResult: prev }), s.deps))).code, 1, 'no CHECK before 0.4.0');

    await runPlugin('net', env('DEL'), JSON.stringify(conf), s.deps);
    await runPlugin('net', env('DEL'), JSON.stringify(conf), s.deps);
    await runPlugin('net', env('DEL', 'c1', undefined), JSON.stringify(conf), s.deps);
    assert.equal(s.router.owned.size, 0);

    await runPlugin('net', env('ADD', 'keep', '/run/netns/k'), JSON.stringify(conf), s.deps);
    await runPlugin('net', env('ADD', 'lose', '/run/netns/l'), JSON.stringify(conf), s.deps);
    s.router.owned.set('docker-container', ['10.32.0.50/12']);
    await runPlugin('net', env('GC'), JSON.stringify({ ...conf, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }), s.deps);
    assert.deepEqual([...s.router.owned.keys()].sort(), ['docker-container', 'keep']);
  } finally {
    s.done();
  }
});

test('STATUS: 50 when the router is down, not ready, or without IPAM; needs cniVersion 1.1.0', async () => {
  const s = setup();
  try {
    const conf = JSON.stringify({ cniVersion: '1.1.0', dataDir: s.dir });
    assert.equal(await runPlugin('net', env('STATUS'), conf, s.deps), '');
    for (const [h, msg] of [
      [{ kind: 'unreachable', reason: 'ECONNREFUSED' }, /^weave router not running/],
      [{ kind: 'not-ready', reason: 'IPAM: awaiting consensus' }, /is not ready: IPAM: awaiting consensus$/],
      [{ kind: 'no-ipam' }, /runs without IPAM/],
    ] as const) {
      s.router.health = () => Promise.resolve(h);
      const e = await cniErrorAsync(runPlugin('net', env('STATUS'), conf, s.deps));
      assert.equal(e.code, 50);
      assert.match(e.message, msg);
    }
    assert.equal((await cniErrorAsync(runPlugin('net', env('STATUS'), JSON.stringify({ cniVersion: '1.0.0' }), s.deps))).code, 1);
  } finally {
    s.done();
  }
});

test('delegated IPAM: the other plugin allocates; its result of any version feeds ours; DEL goes to it', async () => {
  const s = setup();
  try {
    s.router.bridge = ['10.32.0.1/12'];
    const calls: string[] = [];
    s.deps.delegate = {
      exec: (type, command) => {
        calls.push(`${type} ${command}`);
        return Promise.resolve(command === 'ADD' ? '{"cniVersion":"0.2.0","ip4":{"ip":"10.22.0.5/16","gateway":"10.22.0.1"}}' : '');
      },
    };
    const conf = JSON.stringify({ cniVersion: '1.0.0', dataDir: s.dir, ipam: { type: 'host-local' } });
    const out = JSON.parse(await runPlugin('net', env('ADD'), conf, s.deps)) as { ips: unknown };
    assert.deepEqual(out.ips, [{ interface: 1, address: '10.22.0.5/16', gateway: '10.22.0.1' }]);
    await runPlugin('net', env('DEL'), conf, s.deps);
    assert.deepEqual(calls, ['host-local ADD', 'host-local DEL']);
    assert.equal(s.router.owned.size, 0, "weave's IPAM was not used");
  } finally {
    s.done();
  }
});
