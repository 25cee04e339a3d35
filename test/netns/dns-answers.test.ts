// What weaveDNS answers, seen from containers on a real mesh (user-surface
// spec §6.6; wire spec §9): a name registered from three hosts answers with
// all three addresses in a varying order, names outside our domain are
// forwarded to the resolv.conf servers while unknown names inside it are
// NXDOMAIN without forwarding, and a registered address answers PTR queries.
//
// Queries are built and parsed with dns-packet in a small node script run in
// the container, so the test sees the records in the order they came.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestbed, mustWeave, pollUntil, stopRouters, type Container, type Host, type SpawnedProcess, type Testbed,
} from './lib/index.js';
import { aRecords, queryDns, startUpstreamDns, type Query, type QueryResult } from './lib/dns-probe.js';

const CONVERGE_MS = 30_000;
const WEB = 'web.weave.local';
/** What the upstream server answers for UPSTREAM_NAME (TEST-NET-2, never routed). */
const UPSTREAM_NAME = 'example.test';
const UPSTREAM_ADDR = '198.51.100.7';
/** Queries for the varying-order check; three records have six orders, so two distinct ones are near-certain. */
const ORDER_QUERIES = 20;

let bed: Testbed;
/** The routers' hosts; the last testbed host runs only the upstream DNS server. */
let routerHosts: Host[];
let upstreamHost: Host;
let upstream: SpawnedProcess;
const containers: Container[] = [];
/** Where each container reaches its router's DNS server: the weave bridge address (`weave expose`). */
const dnsServerOf = new Map<Container, string>();
/** Address of each container's `web` registration. */
const webAddrOf = new Map<Container, string>();

async function query(c: Container, queries: Query[]): Promise<QueryResult[]> {
  return queryDns(c, dnsServerOf.get(c)!, queries);
}

async function queryOne(c: Container, q: Query): Promise<QueryResult> {
  return (await query(c, [q]))[0];
}

before(async () => {
  bed = await createTestbed({ hosts: 4, underlay: 'bridge' });
  routerHosts = bed.hosts.slice(0, 3);
  upstreamHost = bed.hosts[3];

  upstream = await startUpstreamDns(upstreamHost, upstreamHost.address, UPSTREAM_NAME, UPSTREAM_ADDR);

  for (const h of routerHosts) {
    // resolv.conf cannot name a port; the router asks port 53 (user-surface spec §6.6).
    const resolvConf = join(h.dir, 'resolv.conf');
    writeFileSync(resolvConf, `# upstream for this host's router\nnameserver ${upstreamHost.address}\n`);
    const others = routerHosts.filter((o) => o !== h).map((o) => o.address);
    await mustWeave(h, ['launch', '--nickname', h.label, '--resolv-conf', resolvConf, ...others]);
  }
  for (const h of routerHosts) {
    const bridgeIp = (await mustWeave(h, ['expose'])).trim();
    const c = await h.addContainer('web');
    containers.push(c);
    dnsServerOf.set(c, bridgeIp);
    webAddrOf.set(c, (await mustWeave(h, ['attach', '--netns', c.netnsPath, '-h', WEB])).trim());
  }
  const addrs = [...webAddrOf.values()];
  assert.equal(new Set(addrs).size, 3, `three distinct web addresses: ${addrs.join(' ')}`);
});

after(async () => {
  if (bed) {
    await stopRouters(routerHosts);
    await bed.teardown();
  }
});

test('a name registered from three hosts answers all three addresses, in varying order, on every host', async () => {
  const want = [...webAddrOf.values()].sort();
  for (const c of containers) {
    let got: string[] = [];
    const ok = await pollUntil(async () => {
      got = aRecords(await queryOne(c, { type: 'A', name: WEB }));
      return got.length === 3;
    }, CONVERGE_MS, 250);
    assert.ok(ok, `${WEB} gives three A records from ${c.host.label}: got [${got.join(' ')}]`);
    assert.deepEqual([...got].sort(), want, `the three records from ${c.host.label} are the three registrations`);
  }

  const replies = await query(containers[0], Array.from({ length: ORDER_QUERIES }, () => ({ type: 'A' as const, name: WEB })));
  const orders = new Set<string>();
  for (const r of replies) {
    assert.equal(r.rcode, 'NOERROR', `every repeated query is answered: ${JSON.stringify(r)}`);
    const got = aRecords(r);
    assert.deepEqual([...got].sort(), want, 'every reply has all three records');
    orders.add(got.join(' '));
  }
  assert.ok(orders.size >= 2, `records come in more than one order over ${ORDER_QUERIES} queries: ${[...orders].join(' | ')}`);
});

test('names outside the domain are forwarded to the resolv.conf server; unknown names inside it are NXDOMAIN', async () => {
  for (const c of containers) {
    const fwd = await queryOne(c, { type: 'A', name: UPSTREAM_NAME });
    assert.equal(fwd.rcode, 'NOERROR', `${UPSTREAM_NAME} from ${c.host.label}: ${JSON.stringify(fwd)}`);
    assert.deepEqual(aRecords(fwd), [UPSTREAM_ADDR], `${UPSTREAM_NAME} from ${c.host.label} carries the upstream's answer`);
  }
  // The upstream's own NXDOMAIN passes through unchanged.
  const upstreamMiss = await queryOne(containers[1], { type: 'A', name: 'missing.example.test' });
  assert.equal(upstreamMiss.rcode, 'NXDOMAIN', `upstream's NXDOMAIN is relayed: ${JSON.stringify(upstreamMiss)}`);

  const unknown = 'nosuchname.weave.local';
  for (const c of containers) {
    const miss = await queryOne(c, { type: 'A', name: unknown });
    assert.equal(miss.rcode, 'NXDOMAIN', `${unknown} from ${c.host.label}: ${JSON.stringify(miss)}`);
    assert.deepEqual(miss.answers, []);
  }
  const asked = upstream.output();
  assert.match(asked, new RegExp(`^asked A ${UPSTREAM_NAME.replace('.', '\\.')}$`, 'm'), 'the upstream saw the forwarded query');
  assert.ok(!asked.includes('weave.local'), `names in weave.local are never forwarded; upstream saw:\n${asked}`);
});

test('a registered address answers PTR queries with its name', async () => {
  for (const [i, c] of containers.entries()) {
    // Ask for another host's registration, so the answer comes from gossiped state.
    const target = containers[(i + 1) % containers.length];
    const addr = webAddrOf.get(target)!;
    const reverse = `${addr.split('.').reverse().join('.')}.in-addr.arpa`;
    const r = await queryOne(c, { type: 'PTR', name: reverse });
    assert.equal(r.rcode, 'NOERROR', `PTR ${reverse} from ${c.host.label}: ${JSON.stringify(r)}`);
    assert.deepEqual(r.answers.map((a) => `${a.type} ${a.data.replace(/\.$/, '')}`), [`PTR ${WEB}`],
      `PTR ${reverse} from ${c.host.label} names ${target.name} on ${target.host.label}`);
  }
});
