// Weave 2.8 behaviour users relied on, on two hosts with real routers
// launched the way a user launches them (`weave launch` with its defaults):
// weaveDNS forwards to the host's resolv.conf, `dns-add` without addresses
// takes every address of the container's weave interface, `detach` without
// addresses takes only IPAM's, and a re-used address is announced by a
// gratuitous ARP so peers reach its new holder at once; a container whose
// namespace goes away loses its names and address without a runtime telling
// the router; a relaunched router's old names stop answering at once;
// hairpin mode on the datapath's bridge port is reported; /metrics serves
// what Weave's dashboards and the shipped Grafana dashboard query.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestbed, mustExec, mustWeave, pollUntil, stopRouters, weaveStateDir, type Container, type Host, type Testbed,
} from './lib/index.js';
import { aRecords, queryDns, startUpstreamDns } from './lib/dns-probe.js';
import { Rtnl } from '../../dataplane/netlink/index.js';
import { assertDashboardServed, scrapeFamilies } from '../support/metrics-text.js';

/** What the upstream server answers for UPSTREAM_NAME (TEST-NET-2, never routed). */
const UPSTREAM_NAME = 'example.test';
const UPSTREAM_ADDR = '198.51.100.9';
/** How soon peers must map a re-used address to its new MAC: one ARP round, not a neighbour timeout. */
const ANNOUNCE_MS = 1_000;
/** The same after a router relaunch: the connection comes up (handshake, fastdp heartbeats), then one announcement. */
const RECONNECT_ANNOUNCE_MS = 10_000;
/**
 * How soon after that h2's container reaches h1's: h2's forwarding state
 * towards h1 takes one debounce and an apply (~0.1 s), but an ARP request
 * sent before then is only retried a second later.
 */
const PATH_UP_MS = 3_000;

let bed: Testbed;
let h1: Host;
let h2: Host;
/** Where `ip netns exec` finds each host's own /etc/resolv.conf. */
const etcDirs: string[] = [];

before(async () => {
  bed = await createTestbed({ hosts: 3, underlay: 'bridge' });
  [h1, h2] = bed.hosts as [Host, Host];
  const upstreamHost = bed.hosts[2];
  await startUpstreamDns(upstreamHost, upstreamHost.address, UPSTREAM_NAME, UPSTREAM_ADDR);
  // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: each host
  // has a resolv.conf of its own, as real hosts do, and the router inherits that view.
  for (const h of [h1, h2]) {
    const dir = `/etc/netns/${h.namespace}`;
    mkdirSync(dir, { recursive: true });
    etcDirs.push(dir);
    writeFileSync(`${dir}/resolv.conf`, `nameserver ${upstreamHost.address}\n`);
  }
  await mustWeave(h1, ['launch', h2.address]);
  await mustWeave(h2, ['launch', h1.address]);
});

after(async () => {
  if (bed) {
    await stopRouters([h1, h2]);
    await bed.teardown();
  }
  for (const d of etcDirs) rmSync(d, { recursive: true, force: true });
});

async function ethwe(c: Container): Promise<{ mac: string; cidrs: string[] }> {
  const r = Rtnl.open({ netns: c.netnsPath });
  try {
    const link = await r.getLink('ethwe');
    return { mac: link.mac ?? '', cidrs: (await r.listAddresses('ethwe')).map((a) => `${a.address}/${a.prefixLen}`).sort() };
  } finally {
    r.close();
  }
}

/** The MAC `c` has cached for `ip`, if any. */
async function neighbourMac(c: Container, ip: string): Promise<string | undefined> {
  const r = await c.exec('ip', ['-4', 'neigh', 'show', ip, 'dev', 'ethwe']);
  return /lladdr (\S+)/.exec(r.stdout)?.[1];
}

test("weaveDNS forwards other names to the host's resolv.conf servers by default", async () => {
  assert.match(await mustWeave(h1, ['status']), new RegExp(`Upstream: ${bed.hosts[2].address.replace(/\./g, '\\.')}\n`));
  const bridgeIp = (await mustWeave(h1, ['expose'])).trim();
  const c = await h1.addContainer('dnsq');
  await mustWeave(h1, ['attach', '--netns', c.netnsPath]);
  const [hit, miss] = await queryDns(c, bridgeIp, [{ type: 'A', name: UPSTREAM_NAME }, { type: 'A', name: 'xx.invalid' }]);
  assert.equal(hit.rcode, 'NOERROR', JSON.stringify(hit));
  assert.deepEqual(aRecords(hit), [UPSTREAM_ADDR]);
  assert.equal(miss.rcode, 'NXDOMAIN', `xx.invalid is NXDOMAIN, not SERVFAIL: ${JSON.stringify(miss)}`);
  await mustWeave(h1, ['detach', '--netns', c.netnsPath]);
  await mustWeave(h1, ['hide']);
});

test('dns-add without addresses takes every address on ethwe; detach without addresses takes only IPAM ones', async () => {
  const c = await h1.addContainer('both');
  const attached = (await mustWeave(h1, ['attach', 'net:default', '10.2.1.5/24', '--netns', c.netnsPath])).trim().split(' ');
  assert.equal(attached.length, 2, `one IPAM address and the explicit one: ${attached.join(' ')}`);
  const [ipamIp] = attached;
  assert.match(ipamIp, /^10\.(3[2-9]|4[0-7])\./, 'the first comes from the default range 10.32.0.0/12');
  assert.equal(attached[1], '10.2.1.5');

  await mustWeave(h1, ['dns-add', '--netns', c.netnsPath, '-h', 'both.weave.local']);
  assert.deepEqual((await mustWeave(h1, ['dns-lookup', 'both'])).trim().split('\n').sort(), [ipamIp, '10.2.1.5'].sort(),
    'both addresses of ethwe are registered, not only the IPAM one');

  assert.equal(await mustWeave(h1, ['detach', '--netns', c.netnsPath]), `${ipamIp}\n`, 'detach names only the IPAM address');
  assert.deepEqual((await ethwe(c)).cidrs, ['10.2.1.5/24'], 'the explicit address stays on ethwe');
  assert.equal(await mustWeave(h1, ['dns-lookup', 'both']), '10.2.1.5\n', 'the name of the removed address goes');
  const owned = await mustWeave(h1, ['status', 'ipam']);
  assert.ok(!owned.includes(c.netnsPath), 'IPAM no longer lists the container');

  assert.equal(await mustWeave(h1, ['detach', '10.2.1.5/24', '--netns', c.netnsPath]), '10.2.1.5\n');
  await mustWeave(h1, ['dns-remove', '10.2.1.5', '--netns', c.netnsPath, '-h', 'both.weave.local']);
});

test('a container re-created with a re-used address is reachable at once: peers learn its MAC by gratuitous ARP', async () => {
  const ip = '10.2.2.1';
  const first = await h1.addContainer('old');
  const local = await h1.addContainer('local');
  const remote = await h2.addContainer('remote');
  await mustWeave(h1, ['attach', `${ip}/24`, '--netns', first.netnsPath]);
  await mustWeave(h1, ['attach', '10.2.2.2/24', '--netns', local.netnsPath]);
  await mustWeave(h2, ['attach', '10.2.2.3/24', '--netns', remote.netnsPath]);
  for (const c of [local, remote]) {
    assert.ok(await pollUntil(() => c.ping(ip), 20_000, 200), `${c.name} reaches ${ip}`);
    assert.equal(await neighbourMac(c, ip), (await ethwe(first)).mac, `${c.name} caches the first holder's MAC`);
  }

  // The first holder goes, a new container takes its address (its ethwe has a new MAC).
  await mustWeave(h1, ['detach', `${ip}/24`, '--netns', first.netnsPath]);
  const second = await h1.addContainer('new');
  await mustWeave(h1, ['attach', `${ip}/24`, '--netns', second.netnsPath]);
  const mac = (await ethwe(second)).mac;
  for (const c of [local, remote]) {
    const started = Date.now();
    const learned = await pollUntil(async () => (await neighbourMac(c, ip)) === mac, ANNOUNCE_MS, 50);
    assert.ok(learned, `${c.name} maps ${ip} to the new MAC ${mac} within ${ANNOUNCE_MS} ms (has ${await neighbourMac(c, ip)})`);
    assert.ok(await c.ping(ip), `${c.name} reaches the new holder at the first echo (${Date.now() - started} ms after attach)`);
  }

  // Re-used again while h2's router is down: the announcement cannot reach h2's
  // container then. Once the connection is back, h1's containers announce their
  // addresses again, so h2's container learns the new MAC without sending a
  // frame (a stale entry would otherwise be used until ARP gave up on it).
  await mustWeave(h1, ['detach', `${ip}/24`, '--netns', second.netnsPath]);
  await mustWeave(h2, ['stop']);
  const third = await h1.addContainer('third');
  await mustWeave(h1, ['attach', `${ip}/24`, '--netns', third.netnsPath]);
  const thirdMac = (await ethwe(third)).mac;
  assert.equal(await neighbourMac(remote, ip), mac, 'h2 down: its container still has the previous MAC');
  await mustWeave(h2, ['launch', h1.address]);
  const relaunched = Date.now();
  const learned = await pollUntil(async () => (await neighbourMac(remote, ip)) === thirdMac, RECONNECT_ANNOUNCE_MS, 50);
  assert.ok(learned, `after h2's relaunch its container maps ${ip} to ${thirdMac} within ${RECONNECT_ANNOUNCE_MS} ms, with no traffic of its own (has ${await neighbourMac(remote, ip)})`);
  const learnedAt = Date.now();
  process.stdout.write(`# re-announced after reconnecting: ${learnedAt - relaunched} ms after weave launch returned\n`);
  // h1 announces once its own forwarding state reaches h2; h2 installs its
  // state towards h1 independently, up to a debounce later. Until then h2's
  // container can receive from h1 but not send to it, whatever MAC it uses.
  // So h2's side of the path is shown up first, by an address whose MAC never
  // changed; then the first echo to the re-used address must get through.
  assert.ok(await pollUntil(() => remote.ping('10.2.2.2', { count: 1, waitSeconds: 1 }), PATH_UP_MS, 20),
    `h2's container reaches h1's unchanged container within ${PATH_UP_MS} ms of learning the new MAC`);
  process.stdout.write(`# h2's path to h1 up ${Date.now() - learnedAt} ms after its container learned the new MAC\n`);
  assert.ok(await remote.ping(ip), 'h2\'s container reaches the third holder at the first echo');
});

/** How soon a dead container's names and address must be gone everywhere. */
const GONE_MS = 3_000;

test('a container whose namespace is destroyed loses its names, reverse entries and address without being detached', async () => {
  const c = await h1.addContainer('dies');
  const ip = (await mustWeave(h1, ['attach', '--netns', c.netnsPath, '-h', 'dies.weave.local'])).trim();
  const reverse = `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  assert.ok(await pollUntil(async () => (await mustWeave(h2, ['dns-lookup', 'dies'])).trim() === ip, 10_000, 100), 'h2 learns the name');
  assert.equal((await queryDns(h2, '127.0.0.1', [{ type: 'PTR', name: reverse }]))[0].rcode, 'NOERROR', 'and its reverse entry');

  const started = Date.now();
  await mustExec('ip', ['netns', 'del', c.namespace]);
  const gone = await pollUntil(async () => {
    if ((await mustWeave(h2, ['dns-lookup', 'dies'])).trim() !== '') return false;
    if ((await queryDns(h2, '127.0.0.1', [{ type: 'PTR', name: reverse }]))[0].rcode !== 'NXDOMAIN') return false;
    const owned = await h1.exec('curl', ['-s', 'http://127.0.0.1:6784/ip']);
    return !owned.stdout.includes(c.netnsPath);
  }, GONE_MS, 100);
  assert.ok(gone, `within ${GONE_MS} ms the name, the PTR record and the IPAM address of the dead container are gone`);
  assert.doesNotMatch(await mustWeave(h1, ['ps']), new RegExp(c.netnsPath), 'ps no longer lists it');
  process.stdout.write(`# names and address released ${Date.now() - started} ms after the namespace was deleted\n`);
});

test('after a router relaunches, names of containers that went away while it was down stop answering, live ones stay, and it knows its peers\' names at once', async () => {
  const peerC = await h2.addContainer('peer');
  const peerIp = (await mustWeave(h2, ['attach', '--netns', peerC.netnsPath, '-h', 'peer.weave.local'])).trim();
  const own = await h1.addContainer('own');
  await mustWeave(h1, ['attach', '--netns', own.netnsPath, '-h', 'own.weave.local']);
  // Two relaunches: the gossip a neighbour sends on reconnection races the router's start.
  for (let round = 1; round <= 2; round++) {
    const stale = await h1.addContainer(`stale${round}`);
    await mustWeave(h1, ['attach', '--netns', stale.netnsPath, '-h', `stale${round}.weave.local`]);
    assert.ok(await pollUntil(async () => (await mustWeave(h2, ['dns-lookup', `stale${round}`])).trim() !== '', 10_000, 100), `round ${round}: h2 knows stale${round}`);
    const t0 = Date.now();
    await mustWeave(h1, ['stop']);
    const t1 = Date.now();
    // The container goes away while its router is down (Weave's stale-name scenario).
    await mustExec('ip', ['netns', 'del', stale.namespace]);
    await mustWeave(h1, ['launch', h2.address]);
    const started = Date.now();
    process.stdout.write(`# round ${round}: stop ${t1 - t0} ms, launch ${started - t1} ms\n`);
    const settled = await pollUntil(async () =>
      (await mustWeave(h2, ['dns-lookup', `stale${round}`])).trim() === '' && (await mustWeave(h1, ['dns-lookup', 'peer'])).trim() === peerIp, GONE_MS, 100);
    assert.ok(settled, `round ${round}: within ${GONE_MS} ms of relaunch h2 no longer answers the dead container's name and h1 answers h2's (${Date.now() - started} ms)`);
    assert.notEqual((await mustWeave(h2, ['dns-lookup', 'own'])).trim(), '', `round ${round}: the live container's name survives the relaunch`);
  }
});

/** The messages of the host's router log (pino writes one JSON object a line). */
function logMessages(h: Host): string[] {
  return readFileSync(join(weaveStateDir(h), 'weaver.log'), 'utf8').split('\n').flatMap((line) => {
    try {
      return [String((JSON.parse(line) as { msg?: unknown }).msg)];
    } catch {
      return line === '' ? [] : [line];
    }
  });
}

test('hairpin mode switched on for vethwe-bridge is reported in the log, as Weave did', async () => {
  const port = 'vethwe-bridge';
  assert.equal((await h1.exec('ip', ['link', 'show', port])).code, 0, `${port} exists on h1`);
  const warning = `Hairpin mode enabled on "${port}"`;
  assert.ok(!logMessages(h1).includes(warning), 'no warning before');
  await mustExec('ip', ['-n', h1.namespace, 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'on']);
  try {
    assert.ok(await pollUntil(() => logMessages(h1).includes(warning), 2_000, 50), `the log says ${warning} within 2 s`);
  } finally {
    await mustExec('ip', ['-n', h1.namespace, 'link', 'set', port, 'type', 'bridge_slave', 'hairpin', 'off']);
  }
});

test("a running router's /metrics: Weave's families, weave_flows from the kernel datapath, and every dashboard query served", async () => {
  const a = await h1.addContainer('metrics-a');
  const b = await h2.addContainer('metrics-b');
  await mustWeave(h1, ['attach', '10.2.4.1/24', '--netns', a.netnsPath]);
  await mustWeave(h2, ['attach', '10.2.4.2/24', '--netns', b.netnsPath]);
  assert.ok(await pollUntil(() => a.ping('10.2.4.2'), 20_000, 200), 'the containers reach each other');
  // The metrics address is the router's default, loopback in h1's namespace.
  const scrape = `fetch('http://127.0.0.1:6782/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const families = scrapeFamilies((await h1.exec(process.execPath, ['-e', scrape])).stdout);
  const established = families.get('weave_connections')?.series.filter((s) => s.labels.state === 'established' && s.value > 0) ?? [];
  assert.deepEqual(established.map((s) => s.labels.type), ['fastdp'], 'one established fastdp connection');
  // The kernel's table holds at least a's MAC and the remote b's, learned from the ping.
  const flows = families.get('weave_flows')?.series[0]?.value ?? 0;
  assert.ok(flows >= 2, `weave_flows counts the kernel's forwarding entries (${flows})`);
  assert.ok((families.get('process_resident_memory_bytes')?.series[0]?.value ?? 0) > 10e6, "the router process's resident memory");
  assertDashboardServed(families);
  await mustWeave(h1, ['detach', '10.2.4.1/24', '--netns', a.netnsPath]);
  await mustWeave(h2, ['detach', '10.2.4.2/24', '--netns', b.netnsPath]);
});
