// Host networking end to end (user-surface spec §1.3, §1.6, §1.8-1.10, §6):
// one simulated host runs a router (`weave launch`), containers are further
// namespaces attached with `weave attach --netns`; everything is checked
// against the kernel (netlink from inside the host namespace, `nft list`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed, mustExec, mustPing, mustWeave, weave, weaveStateDir, type Container, type Host, type Testbed } from './lib/index.js';
import { Rtnl, type Link } from '../../dataplane/netlink/index.js';
import { BridgeError, ensureBridge } from '../../dataplane/host/index.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

let bed: Testbed;
let h: Host;
let a: Container;
let b: Container;
let c: Container;

async function inNs<T>(path: string, fn: (r: Rtnl) => Promise<T>): Promise<T> {
  const r = Rtnl.open({ netns: path });
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}

const hostLinks = (): Promise<Link[]> => inNs(h.netnsPath, (r) => r.listLinks());
const ethweOf = (ct: Container): Promise<Link | undefined> => inNs(ct.netnsPath, (r) => r.findLink('ethwe'));
const addressesOf = (ct: Container): Promise<string[]> =>
  inNs(ct.netnsPath, async (r) => (await r.listAddresses('ethwe')).map((x) => `${x.address}/${x.prefixLen}`));

async function nftTable(): Promise<string | undefined> {
  const r = await h.exec('nft', ['list', 'table', 'inet', 'weave']);
  return r.code === 0 ? r.stdout : undefined;
}

before(async () => {
  bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  h = bed.host(1);
  a = await h.addContainer('a');
  b = await h.addContainer('b');
  c = await h.addContainer('c');
  await mustWeave(h, ['launch', '--name', '7a:c4:8b:a1:e6:ad']);
});

after(async () => {
  if (bed) {
    await weave(h, ['stop']);
    await bed.teardown();
  }
});

test('launch creates the weave bridge (peer-name MAC, underlay MTU - 50, up) and the nft table', async () => {
  const br = (await hostLinks()).find((l) => l.name === 'weave');
  assert.ok(br, 'bridge weave exists');
  assert.equal(br.kind, 'bridge');
  assert.equal(br.mac, '7a:c4:8b:a1:e6:ad');
  assert.equal(br.mtu, 1450, 'underlay eth0 has MTU 1500');
  assert.ok(br.up);
  const table = await nftTable();
  assert.ok(table, 'table inet weave exists');
  for (const chain of ['input', 'forward', 'expose', 'postrouting']) assert.match(table, new RegExp(`chain ${chain} \\{`));
  assert.match(table, /iifname "weave" oifname "weave" accept/);
  assert.match(table, /ip daddr 127\.0\.0\.1 tcp dport 6784 .*drop/);
  assert.equal(await mustWeave(h, ['ps']), 'weave:expose 7a:c4:8b:a1:e6:ad\n', 'only the bridge line, without addresses');
});

test('two attached containers ping each other over the bridge; ps lists them', async () => {
  assert.equal(await mustWeave(h, ['attach', '10.32.0.1/12', '--netns', a.netnsPath]), '10.32.0.1\n');
  assert.equal(await mustWeave(h, ['attach', 'ip:10.32.0.2/12', '--netns', b.netnsPath]), '10.32.0.2\n');
  // attach returns once the datapath has taken the new port: the first echo must get through.
  assert.ok(await a.ping('10.32.0.2'), 'a reaches b at the first echo');
  assert.ok(await b.ping('10.32.0.1'), 'b reaches a at the first echo');

  const ethA = await ethweOf(a);
  const ethB = await ethweOf(b);
  assert.ok(ethA && ethB);
  assert.equal(ethA.mtu, 1450, 'ethwe takes the bridge MTU');
  const bridgeIndex = (await hostLinks()).find((l) => l.name === 'weave')?.index;
  const hostEnds = (await hostLinks()).filter((l) => l.name.startsWith('vethwepl'));
  assert.equal(hostEnds.length, 2);
  assert.ok(hostEnds.every((l) => l.masterIndex === bridgeIndex && l.up), 'host ends are up bridge ports');

  const lines = (await mustWeave(h, ['ps'])).trim().split('\n');
  assert.match(lines[0], /^weave:expose 7a:c4:8b:a1:e6:ad$/);
  assert.ok(lines.includes(`${a.netnsPath} ${ethA.mac} 10.32.0.1/12`), `ps lists a:\n${lines.join('\n')}`);
  assert.ok(lines.includes(`${b.netnsPath} ${ethB.mac} 10.32.0.2/12`), `ps lists b:\n${lines.join('\n')}`);
  assert.ok(lines.slice(1).every((l) => MAC.test(l.split(' ')[1])));
  assert.equal((await mustWeave(h, ['ps', b.netnsPath])).trim(), `${b.netnsPath} ${ethB.mac} 10.32.0.2/12`, 'ps filters by container');
});

test('attaching again adds nothing twice and keeps the veth', async () => {
  const before = (await hostLinks()).filter((l) => l.name.startsWith('vethwepl')).map((l) => l.name).sort();
  const macBefore = (await ethweOf(a))?.mac;
  assert.equal(await mustWeave(h, ['attach', '10.32.0.1/12', '--netns', a.netnsPath]), '10.32.0.1\n');
  assert.deepEqual(await addressesOf(a), ['10.32.0.1/12']);
  assert.equal((await ethweOf(a))?.mac, macBefore, 'same interface');
  assert.deepEqual((await hostLinks()).filter((l) => l.name.startsWith('vethwepl')).map((l) => l.name).sort(), before);
});

test('two CIDRs give two addresses, a route for each subnet and the multicast route; detach removes them and the veth', async () => {
  assert.equal(await mustWeave(h, ['attach', '10.32.0.3/12', '10.2.1.1/24', '--netns', c.netnsPath]), '10.32.0.3 10.2.1.1\n');
  assert.deepEqual((await addressesOf(c)).sort(), ['10.2.1.1/24', '10.32.0.3/12']);
  const routes = await inNs(c.netnsPath, (r) => r.listRoutes({ link: 'ethwe' }));
  const dsts = routes.map((r) => r.dst);
  for (const d of ['10.32.0.0/12', '10.2.1.0/24', '224.0.0.0/4']) assert.ok(dsts.includes(d), `route ${d} in ${dsts.join(', ')}`);
  assert.ok(await c.ping('10.32.0.1'), 'c reaches a at the first echo');
  const hostEndsBefore = (await hostLinks()).filter((l) => l.name.startsWith('vethwepl')).length;

  assert.equal(await mustWeave(h, ['detach', '10.2.1.1/24', '--netns', c.netnsPath]), '10.2.1.1\n');
  assert.deepEqual(await addressesOf(c), ['10.32.0.3/12']);
  assert.equal(await mustWeave(h, ['detach', '10.32.0.3/12', '--netns', c.netnsPath]), '10.32.0.3\n');
  assert.equal(await ethweOf(c), undefined, 'ethwe is gone once no address is left');
  assert.equal((await hostLinks()).filter((l) => l.name.startsWith('vethwepl')).length, hostEndsBefore - 1, 'and so is its host end');
  assert.doesNotMatch(await mustWeave(h, ['ps']), new RegExp(c.netnsPath), 'ps no longer lists it');
});

test('expose lets the host reach containers, with masquerade rules; hide takes it back', async () => {
  assert.equal(await h.ping('10.32.0.1'), false, 'not reachable before expose');
  assert.equal(await mustWeave(h, ['expose', '10.32.0.254/12']), '10.32.0.254\n');
  assert.ok(await h.ping('10.32.0.1'), 'host reaches a via the bridge address');
  assert.match((await mustWeave(h, ['ps', 'weave:expose'])).trim(), /^weave:expose 7a:c4:8b:a1:e6:ad 10\.32\.0\.254\/12$/);
  const table = (await nftTable()) ?? '';
  assert.match(table, /ip daddr 10\.32\.0\.0\/12 accept/);
  assert.match(table, /ip saddr 10\.32\.0\.0\/12 ip daddr != 10\.32\.0\.0\/12 masquerade/);
  assert.match(table, /ip daddr 10\.32\.0\.0\/12 ip saddr != 10\.32\.0\.0\/12 masquerade/);
  assert.equal(await mustWeave(h, ['expose', '10.32.0.254/12']), '10.32.0.254\n', 'expose is idempotent');

  assert.equal(await mustWeave(h, ['hide']), '10.32.0.254\n');
  assert.deepEqual(await inNs(h.netnsPath, async (r) => (await r.listAddresses('weave')).length), 0);
  assert.doesNotMatch((await nftTable()) ?? '', /masquerade/);
});

test('bad targets and addresses get clear errors', async () => {
  const missing = await weave(h, ['attach', '10.32.0.9/12', '--netns', `/run/netns/${bed.prefix}-nonexistent`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot open network namespace \/run\/netns\/\S+-nonexistent: ENOENT \(does the namespace exist\?\)/);

  const noIpam = await weave(h, ['attach', 'net:default', '--netns', a.netnsPath]);
  if (noIpam.code !== 0) assert.match(noIpam.stderr, /IPAM is not available yet/);
  else assert.match(noIpam.stdout, /^\d+\.\d+\.\d+\.\d+\n$/, 'with IPAM the allocated address is printed');

  const noDocker = await weave(h, ['attach', '10.32.0.9/12', 'some-container']);
  assert.equal(noDocker.code, 1);
  assert.match(noDocker.stderr, /unable to inspect container some-container: /);

  const hostNs = await weave(h, ['attach', '10.32.0.9/12', '--netns', h.netnsPath]);
  assert.equal(hostNs.code, 1);
  assert.match(hostNs.stderr, /Container is running in the host network namespace/);
});

test('a different device named weave is refused with the fix named', async () => {
  const other = bed.host(2);
  await inNs(other.netnsPath, async (r) => {
    await r.createVeth('weave', 'weave-peer');
    await assert.rejects(ensureBridge(r, { name: 'weave', mtu: 1450 }), (e: unknown) => {
      assert.ok(e instanceof BridgeError);
      assert.match(e.message, /a different device named weave exists \(kind veth\); run 'weave reset' .* --weave-bridge/);
      return true;
    });
  });
});

test('attach-bridge joins another bridge (docker0 by default) to the weave bridge: its containers and weave\'s share a subnet', async () => {
  const docker = await h.addContainer('docker-ct');
  const weaved = await h.addContainer('weave-ct');
  // docker0 as Docker makes it, with a container plugged in by hand.
  await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'docker0', 'type', 'bridge']);
  await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'docker0', 'up']);
  await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'vdock', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', docker.namespace]);
  await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'vdock', 'master', 'docker0', 'up']);
  await mustExec('ip', ['-n', docker.namespace, 'addr', 'add', '10.32.0.40/12', 'dev', 'eth0']);
  await mustExec('ip', ['-n', docker.namespace, 'link', 'set', 'eth0', 'up']);
  assert.equal(await mustWeave(h, ['attach', '10.32.0.41/12', '--netns', weaved.netnsPath]), '10.32.0.41\n');
  assert.equal(await weaved.ping('10.32.0.40', { count: 1, waitSeconds: 1 }), false, 'apart before attach-bridge');

  assert.equal(await mustWeave(h, ['attach-bridge']), '');
  const links = await hostLinks();
  const master = (name: string): string | undefined => links.find((l) => l.index === links.find((x) => x.name === name)?.masterIndex)?.name;
  assert.equal(master('vethwebldocker0'), 'weave');
  assert.equal(master('vethwebgdocker0'), 'docker0');
  assert.equal(links.find((l) => l.name === 'vethwebldocker0')?.mtu, links.find((l) => l.name === 'weave')?.mtu, "the weave bridge's MTU");
  await mustPing(weaved, '10.32.0.40', 'a weave container reaches a docker0 container');
  assert.equal(await mustWeave(h, ['attach-bridge', 'docker0']), '', 'attaching again changes nothing');

  const missing = await weave(h, ['attach-bridge', 'nobr']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /bridge "nobr" not found/);
  const long = await weave(h, ['attach-bridge', 'longbridge']);
  assert.equal(long.code, 1);
  assert.match(long.stderr, /too long for the veth vethwebllongbridge \(at most 7 characters\)/);
  await mustWeave(h, ['detach', '10.32.0.41/12', '--netns', weaved.netnsPath]);
});

test('reset removes the bridge, the veths, the nft table and every file of the state directory', async () => {
  assert.ok((await hostLinks()).some((l) => l.name.startsWith('vethwepl')), 'veths exist before reset');
  assert.ok(existsSync(join(weaveStateDir(h), 'ipam.json')), 'IPAM persisted its ring before reset');
  await mustWeave(h, ['reset']);
  const links = await hostLinks();
  assert.equal(links.find((l) => l.name === 'weave'), undefined, 'bridge removed');
  assert.deepEqual(links.filter((l) => l.name.startsWith('vethwe')).map((l) => l.name), [], 'veths removed');
  assert.equal(await ethweOf(a), undefined, "containers' ethwe removed with their host ends");
  assert.equal(await nftTable(), undefined, 'table inet weave removed');
  const stateDir = weaveStateDir(h);
  assert.deepEqual(existsSync(stateDir) ? readdirSync(stateDir) : [], [], 'no state is left: no ipam.json, peer name, peers, endpoints or log');
  await mustWeave(h, ['reset']);
});
