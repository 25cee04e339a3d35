// The weave-net and weave-ipam plugins driven as CNI runtimes drive them (CNI
// spec 1.1; user-surface spec §7.4), against real routers on two simulated
// hosts: every command, every result version, idempotent ADD/DEL, CHECK
// noticing a deleted interface, GC of ids the runtime no longer lists, STATUS
// of a host without a router, and the CNI errors for bad input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Rtnl } from '../../dataplane/netlink/index.js';
import {
  createTestbed, launchFullMesh, connectionsMatch, mustWeave, pollUntil, stopRouters, weave, weaverPid,
  type Container, type Host, type Testbed,
} from '../netns/lib/index.js';
import { installPlugin, runCni, type InstalledPlugin } from './weave-plugin.js';

let bed: Testbed;
let h1: Host;
let h2: Host;
let h3: Host;
let plugin: InstalledPlugin;
let seq = 0;

/** The network config a runtime passes for one weave-net network. */
function netConf(cniVersion: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion, name: 'weave', type: 'weave-net', dataDir: `${bed.dir}/cni-data`, ...extra };
}

/** A container id as runtimes make them: 64 hex digits. */
function newId(): string {
  seq += 1;
  return `${seq.toString(16).padStart(4, '0')}${'ab'.repeat(30)}`;
}

async function addresses(c: Container, ifname: string): Promise<string[]> {
  const r = Rtnl.open({ netns: c.netnsPath });
  try {
    return (await r.listAddresses(ifname)).map((a) => `${a.address}/${a.prefixLen}`);
  } finally {
    r.close();
  }
}

/** GET on the host's router API, from inside its namespace. */
async function routerGet(h: Host, path: string): Promise<string> {
  const r = await h.exec(process.execPath, ['-e', `fetch('http://127.0.0.1:6784${path}').then(async (r) => process.stdout.write(await r.text()))`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function add(h: Host, c: Container, id: string, conf: Record<string, unknown>) {
  const r = await runCni(h, plugin, 'weave-net', { command: 'ADD', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: conf });
  assert.equal(r.code, 0, `ADD failed: ${r.stdout} ${r.stderr}`);
  assert.ok(r.json, `ADD printed JSON: ${r.stdout}`);
  return r;
}

before(async () => {
  bed = await createTestbed({ hosts: 3, underlay: 'bridge' });
  [h1, h2, h3] = bed.hosts as [Host, Host, Host];
  plugin = installPlugin(bed.dir);
  await launchFullMesh([h1, h2]);
  await connectionsMatch(h1, /established/);
  // The plugin's default gateway is the bridge address (weave expose), as the Kubernetes launcher sets it up.
  await mustWeave(h1, ['expose']);
  await mustWeave(h2, ['expose']);
});

after(async () => {
  if (bed) {
    await stopRouters([h1, h2, h3]);
    await bed.teardown();
  }
});

test('VERSION lists 0.1.0 through 1.1.0', async () => {
  const r = await runCni(h1, plugin, 'weave-net', { command: 'VERSION', config: { cniVersion: '1.1.0' } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json, { cniVersion: '1.1.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
});

test('ADD on two hosts: results per version, pods ping across hosts, ADD again returns the same address', async () => {
  const p1 = await h1.addContainer('p1');
  const p2 = await h2.addContainer('p2');
  const id1 = newId();
  const id2 = newId();
  const r1 = await add(h1, p1, id1, netConf('1.1.0'));
  const res = r1.json as { interfaces: { name: string; mac?: string; sandbox?: string; mtu?: number }[]; ips: { address: string; gateway: string; interface: number }[]; routes: unknown[]; cniVersion: string };
  assert.equal(res.cniVersion, '1.1.0');
  assert.equal(res.interfaces.length, 2);
  assert.deepEqual(res.interfaces[0], { name: `vethwepl${id1.slice(0, 7)}` });
  assert.equal(res.interfaces[1]?.name, 'eth0');
  assert.equal(res.interfaces[1]?.sandbox, p1.netnsPath);
  assert.match(res.interfaces[1]?.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(res.interfaces[1]?.mtu, 1450, '1.1.0 results carry the interface MTU (the bridge MTU)');
  assert.equal(res.ips.length, 1);
  const ip1 = res.ips[0]!;
  assert.match(ip1.address, /^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/);
  assert.equal(ip1.interface, 1);
  assert.ok(!('version' in ip1), '1.0.0+ results have no per-IP "version"');
  const bridgeIp = (await mustWeave(h1, ['ps', 'weave:expose'])).trim().split(' ')[2]?.split('/')[0];
  assert.equal(ip1.gateway, bridgeIp, 'the gateway is the bridge address');
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: bridgeIp }]);
  assert.deepEqual(await addresses(p1, 'eth0'), [ip1.address], 'the kernel has what the result says');

  // The other host answers in the 0.4.0 shape.
  const r2 = await add(h2, p2, id2, netConf('0.4.0'));
  const res2 = r2.json as { ips: { version?: string; address: string }[]; interfaces: { mtu?: number }[] };
  assert.equal(res2.ips[0]?.version, '4', '0.3.x/0.4.0 results name the IP version');
  assert.equal(res2.interfaces[1]?.mtu, undefined, 'no interface MTU before 1.1.0');
  const ip2 = res2.ips[0]!.address.split('/')[0]!;

  // Across hosts: time to the first reply, pinging once a second as a user would.
  const t0 = performance.now();
  const ok = await pollUntil(() => p1.ping(ip2, { count: 1, waitSeconds: 1 }), 10_000, 100);
  const firstReplyMs = performance.now() - t0;
  assert.ok(ok, `pod on h1 reaches the pod on h2 at ${ip2}`);
  assert.ok(firstReplyMs < 5_000, `first reply after ${firstReplyMs.toFixed(0)} ms (want < 5 s)`);
  assert.ok(await p2.ping(ip1.address.split('/')[0]!), 'and back');

  // Idempotent ADD: the same container id gets the same address, the interface is kept.
  const again = await add(h1, p1, id1, netConf('1.1.0'));
  assert.deepEqual((again.json as { ips: unknown[] }).ips, res.ips);
  assert.deepEqual(await addresses(p1, 'eth0'), [ip1.address]);

  // Older result shapes from the same plugin (a fresh pod each, on h1).
  for (const v of ['1.0.0', '0.3.1', '0.2.0']) {
    const c = await h1.addContainer(`v${v.replace(/\./g, '')}`);
    const r = await add(h1, c, newId(), netConf(v));
    assert.equal(r.json?.cniVersion, v);
    if (v === '0.2.0') {
      const ip4 = r.json?.ip4 as { ip: string; gateway: string; routes: unknown[] };
      assert.match(ip4.ip, /^10\./);
      assert.equal(ip4.gateway, bridgeIp);
      assert.deepEqual(ip4.routes, [{ dst: '0.0.0.0/0', gw: bridgeIp }]);
    } else {
      assert.ok(Array.isArray(r.json?.ips));
    }
    assert.ok(await c.ping(ip2), `pod (${v}) reaches the pod on h2`);
  }
  console.log(`# ADD ${r1.ms.toFixed(0)} ms, ADD again ${again.ms.toFixed(0)} ms, first cross-host reply ${firstReplyMs.toFixed(0)} ms`);
});

test('two pods whose ids share the first 7 characters both get a veth; neither takes the other\'s', async () => {
  const a = await h1.addContainer('col1');
  const b = await h1.addContainer('col2');
  const ra = await add(h1, a, `c011de${'1'.repeat(58)}`, netConf('1.0.0'));
  const rb = await add(h1, b, `c011de${'2'.repeat(58)}`, netConf('1.0.0'));
  const hostA = (ra.json as { interfaces: { name: string }[] }).interfaces[0]!.name;
  const hostB = (rb.json as { interfaces: { name: string }[] }).interfaces[0]!.name;
  assert.equal(hostA, 'vethweplc011de1');
  assert.match(hostB, /^vethwepl[0-9a-f]{7}$/);
  assert.notEqual(hostA, hostB);
  const ipB = (rb.json as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
  assert.ok(await a.ping(ipB), 'the first pod kept its veth and reaches the second');
});

test('CHECK passes on a good pod, fails once the interface is deleted; DEL releases and is idempotent', async () => {
  const c = await h1.addContainer('chk');
  const id = newId();
  const conf = netConf('1.0.0');
  const r = await add(h1, c, id, conf);
  const address = (r.json as { ips: { address: string }[] }).ips[0]!.address;
  const checkConf = { ...conf, prevResult: r.json };
  const ok = await runCni(h1, plugin, 'weave-net', { command: 'CHECK', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: checkConf });
  assert.equal(ok.code, 0, `CHECK on a good pod: ${ok.stdout}${ok.stderr}`);
  assert.equal(ok.stdout, '');

  await c.exec('ip', ['link', 'del', 'eth0']);
  const bad = await runCni(h1, plugin, 'weave-net', { command: 'CHECK', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: checkConf });
  assert.equal(bad.code, 1);
  assert.equal(bad.json?.code, 102);
  assert.match(String(bad.json?.msg), /interface eth0 not found/);
  assert.match(bad.stderr, /^weave-cni: interface eth0 not found/m);

  assert.equal((await routerGet(h1, `/ip/${id}`)).trim(), address, 'IPAM still holds the address before DEL');
  const del = await runCni(h1, plugin, 'weave-net', { command: 'DEL', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: conf });
  assert.equal(del.code, 0, del.stdout + del.stderr);
  assert.equal((await routerGet(h1, `/ip/${id}`)).trim(), '', 'DEL released the address');
  const del2 = await runCni(h1, plugin, 'weave-net', { command: 'DEL', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: conf });
  assert.equal(del2.code, 0, `DEL again succeeds: ${del2.stdout}${del2.stderr}`);
  const noNetns = await runCni(h1, plugin, 'weave-net', { command: 'DEL', containerId: id, ifname: 'eth0', config: conf });
  assert.equal(noNetns.code, 0, `DEL without CNI_NETNS succeeds: ${noNetns.stdout}`);
});

test('GC releases the addresses of container ids not in cni.dev/valid-attachments, and nothing else', async () => {
  const keep = await h1.addContainer('gck');
  const lose = await h1.addContainer('gcl');
  const keepId = newId();
  const loseId = newId();
  const conf = netConf('1.1.0', { dataDir: `${bed.dir}/gc-data` });
  await add(h1, keep, keepId, conf);
  await add(h1, lose, loseId, conf);
  // Addresses not given by this CNI network (weave attach) are never GC's business.
  const other = await h1.addContainer('gco');
  const attached = (await mustWeave(h1, ['attach', '--netns', other.netnsPath])).trim();
  const gc = await runCni(h1, plugin, 'weave-net', {
    command: 'GC',
    config: { ...conf, 'cni.dev/valid-attachments': [{ containerID: keepId, ifname: 'eth0' }] },
  });
  assert.equal(gc.code, 0, gc.stdout + gc.stderr);
  assert.notEqual((await routerGet(h1, `/ip/${keepId}`)).trim(), '', 'the listed id keeps its address');
  assert.equal((await routerGet(h1, `/ip/${loseId}`)).trim(), '', 'the unlisted id lost its address');
  const owned = JSON.parse(await routerGet(h1, '/ip')) as { owned: { containerid: string; addrs: string[] }[] };
  assert.ok(owned.owned.some((o) => o.addrs.some((a) => a.startsWith(`${attached}/`))), 'the weave-attached address is untouched');

  const old = await runCni(h1, plugin, 'weave-net', { command: 'GC', config: netConf('1.0.0') });
  assert.equal(old.json?.code, 1, 'GC needs cniVersion 1.1.0');
});

test('STATUS: ready with a router; code 50 without one, where ADD fails cleanly with code 11 and no address leaks', async () => {
  const ok = await runCni(h1, plugin, 'weave-net', { command: 'STATUS', config: netConf('1.1.0') });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const down = await runCni(h3, plugin, 'weave-net', { command: 'STATUS', config: netConf('1.1.0') });
  assert.equal(down.code, 1);
  assert.equal(down.json?.code, 50);
  assert.match(String(down.json?.msg), /weave router not running: nothing answers at 127\.0\.0\.1:6784/);

  const c = await h3.addContainer('nr');
  const r = await runCni(h3, plugin, 'weave-net', { command: 'ADD', containerId: newId(), netns: c.netnsPath, ifname: 'eth0', config: netConf('1.1.0') });
  assert.equal(r.code, 1);
  assert.equal(r.json?.code, 11, 'try again later');
  assert.match(String(r.json?.msg), /^unable to allocate IP address: weave router not reachable at 127\.0\.0\.1:6784/);
  assert.match(r.stderr, /^weave-cni: unable to allocate IP address/m);
  const r3 = Rtnl.open({ netns: c.netnsPath });
  try {
    assert.equal(await r3.findLink('eth0'), undefined, 'no interface was left behind');
  } finally {
    r3.close();
  }
});

test('bad input: malformed config, refused keys, unknown command, missing variables, unsupported version', async () => {
  const c = await h1.addContainer('bad');
  const base = { containerId: newId(), netns: c.netnsPath, ifname: 'eth0' };
  const cases: { config: Record<string, unknown> | string; env?: Record<string, string>; command?: 'ADD'; code: number; msg: RegExp }[] = [
    { config: '{"cniVersion": "1.0.0", ', code: 6, msg: /^failed to load netconf/ },
    { config: netConf('1.0.0', { isGateway: true }), code: 2, msg: /^Gateway functionality not supported$/ },
    { config: netConf('1.0.0', { ipMasq: true }), code: 2, msg: /^IP Masquerading functionality not supported$/ },
    { config: netConf('1.0.0', { mtu: 'big' }), code: 7, msg: /^mtu must be an integer/ },
    { config: netConf('1.0.0', { ipam: { subnet: '10.32.0.0/33' } }), code: 7, msg: /^ipam\.subnet must be an IPv4 CIDR/ },
    { config: netConf('9.9.9'), code: 1, msg: /^incompatible CNI versions/ },
    { config: netConf('1.0.0'), env: { CNI_COMMAND: 'FROB' }, code: 100, msg: /^unknown CNI_COMMAND: FROB$/ },
    { config: netConf('1.0.0'), env: { CNI_NETNS: '' }, code: 4, msg: /^required env variables missing$/ },
  ];
  for (const k of cases) {
    const r = await runCni(h1, plugin, 'weave-net', { command: 'ADD', ...base, config: k.config, env: k.env });
    assert.equal(r.code, 1, `exit status for ${JSON.stringify(k.config)}`);
    assert.equal(r.json?.code, k.code, `code for ${JSON.stringify(k.config)} ${JSON.stringify(k.env)}: ${r.stdout}`);
    assert.match(String(r.json?.msg), k.msg);
    assert.match(r.stderr, /^weave-cni: /m);
  }
  const missing = await runCni(h1, plugin, 'weave-net', { command: 'ADD', ...base, config: netConf('1.0.0'), env: { CNI_NETNS: '' } });
  assert.match(missing.stderr, /^weave-cni: CNI_NETNS env variable missing$/m);
});

test('weave-ipam alone: an address with the configured gateway and routes; DEL releases it', async () => {
  const id = newId();
  const conf = { cniVersion: '1.1.0', name: 'weave-ipam-net', type: 'bridge', dataDir: `${bed.dir}/ipam-data`, ipam: { type: 'weave-ipam', subnet: '10.40.0.0/16', gateway: '10.40.0.1', routes: [{ dst: '0.0.0.0/0' }] } };
  const r = await runCni(h2, plugin, 'weave-ipam', { command: 'ADD', containerId: id, netns: '/proc/self/ns/net', ifname: 'eth0', config: conf });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const res = r.json as { ips: { address: string; gateway: string }[]; routes: unknown[]; interfaces?: unknown };
  assert.match(res.ips[0]!.address, /^10\.40\.\d+\.\d+\/16$/);
  assert.equal(res.ips[0]!.gateway, '10.40.0.1');
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0' }]);
  assert.equal(res.interfaces, undefined);
  assert.equal((await routerGet(h2, `/ip/${id}/10.40.0.0/16`)).trim(), res.ips[0]!.address);
  const del = await runCni(h2, plugin, 'weave-ipam', { command: 'DEL', containerId: id, ifname: 'eth0', config: conf });
  assert.equal(del.code, 0, del.stdout);
  assert.equal((await routerGet(h2, `/ip/${id}/10.40.0.0/16`)).trim(), '');
});

test('weave-net with a delegated IPAM (the real host-local): the address comes from it, the pod gets it, DEL releases it', async () => {
  const id = newId();
  const c = await h1.addContainer(`hl${seq}`);
  const leases = `${bed.dir}/host-local`;
  const conf = netConf('1.0.0', { ipam: { type: 'host-local', subnet: '10.41.0.0/24', dataDir: leases } });
  const r = await add(h1, c, id, conf);
  const res = r.json as { ips: { address: string }[] };
  assert.match(res.ips[0]!.address, /^10\.41\.0\.\d+\/24$/, 'host-local chose the address');
  assert.deepEqual(await addresses(c, 'eth0'), [res.ips[0]!.address]);
  const lease = res.ips[0]!.address.split('/')[0]!;
  assert.ok(existsSync(`${leases}/weave/${lease}`), `host-local holds a lease file for ${lease}`);
  const del = await runCni(h1, plugin, 'weave-net', { command: 'DEL', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: conf });
  assert.equal(del.code, 0, del.stdout + del.stderr);
  assert.ok(!existsSync(`${leases}/weave/${lease}`), 'DEL released the host-local lease');
});

test('weave stop then STATUS on that host reports not running', async () => {
  await weave(h2, ['stop']);
  const r = await runCni(h2, plugin, 'weave-net', { command: 'STATUS', config: netConf('1.1.0') });
  assert.equal(r.json?.code, 50);
});

test('a router killed while ADD waits for an address: a clean CNI error, and no address or interface left after restart', async () => {
  // Consensus with a peer that never comes: the allocation waits in the router.
  await mustWeave(h3, ['launch', '--ipalloc-init', 'consensus=2']);
  const c = await h3.addContainer('kill');
  const id = newId();
  const adding = runCni(h3, plugin, 'weave-net', { command: 'ADD', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: netConf('1.1.0') });
  // The plugin's request is in the router once its connection to the API is established.
  const inFlight = await pollUntil(async () => /:6784\s/.test((await h3.exec('ss', ['-Htn', 'state', 'established', '( dport = :6784 )'])).stdout), 20_000, 50);
  assert.ok(inFlight, 'the ADD reached the router');
  process.kill(weaverPid(h3), 'SIGKILL');
  const r = await adding;
  assert.equal(r.code, 1);
  assert.equal(r.json?.code, 11, `try again later: ${r.stdout}`);
  assert.match(String(r.json?.msg), /^unable to allocate IP address: weave router not reachable/);
  assert.match(r.stderr, /^weave-cni: unable to allocate IP address/m);

  await mustWeave(h3, ['launch', '--ipalloc-init', 'consensus=1']);
  assert.equal((await routerGet(h3, `/ip/${id}`)).trim(), '', 'no address is held for the container');
  const links = await h3.exec('ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(links.stdout, /vethwepl/, 'no veth was left on the host');
  const inside = Rtnl.open({ netns: c.netnsPath });
  try {
    assert.equal(await inside.findLink('eth0'), undefined, 'no interface in the pod');
  } finally {
    inside.close();
  }
});
