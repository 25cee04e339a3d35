// IPAM across a real mesh (user-surface spec §1.6, §1.13, §2.6; wire spec
// §8): three routers launched with `weave launch` on simulated hosts hand out
// unique automatic addresses, agree on the ring, and `weave rmpeer` takes
// over a dead router's space so it is used again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestbed, sharedWeaveBed, launchFullMesh, mustWeave, pollUntil, weave, weaverPid, type Container, type Host,
} from './lib/index.js';

const CONVERGE_MS = 30_000;
const CONTAINERS = 60;

const testbed = sharedWeaveBed(3);

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

const inUniverse = (ip: string): boolean => ipToInt(ip) >= ipToInt('10.32.0.0') && ipToInt(ip) < ipToInt('10.48.0.0');

/** `weave status ipam` as peer nickname -> IPs owned. */
function ownership(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\S+\((\w+)\)\s+(\d+) IPs/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const describe = (m: Map<string, number>): string => JSON.stringify([...m].sort());

async function attachAll(h: Host, containers: Container[]): Promise<Map<Container, string>> {
  const out = new Map<Container, string>();
  for (const c of containers) out.set(c, (await mustWeave(h, ['attach', '--netns', c.netnsPath])).trim());
  return out;
}

test('three routers: 60 automatic addresses are unique, in range, and the ring agrees; rmpeer reclaims a dead peer', async () => {
  const [h1, h2, h3] = testbed().hosts;
  await launchFullMesh(testbed().hosts);

  const perHost = testbed().hosts.map(() => [] as Container[]);
  for (let i = 0; i < CONTAINERS; i++) {
    const h = testbed().hosts[i % 3];
    perHost[i % 3].push(await h.addContainer(`c${i}`));
  }
  // The three hosts attach concurrently, so consensus and space requests interleave.
  const results = await Promise.all(testbed().hosts.map((h, i) => attachAll(h, perHost[i])));
  const ips = results.flatMap((m) => [...m.values()]);
  assert.equal(ips.length, CONTAINERS);
  assert.equal(new Set(ips).size, CONTAINERS, `every address is unique: ${ips.join(' ')}`);
  for (const ip of ips) assert.ok(inUniverse(ip), `${ip} is inside 10.32.0.0/12`);

  // Every router reports the same ring: three owners sharing all 2^20 addresses.
  let views: Map<string, number>[] = [];
  const agreed = await pollUntil(async () => {
    views = await Promise.all(testbed().hosts.map(async (h) => ownership(await mustWeave(h, ['status', 'ipam']))));
    return views.every((v) => v.size === 3 && describe(v) === describe(views[0]));
  }, CONVERGE_MS, 250);
  assert.ok(agreed, `status ipam agrees on all hosts: ${views.map(describe).join(' | ')}`);
  assert.equal([...views[0].values()].reduce((a, b) => a + b, 0), 1 << 20, 'the owners share the whole range');
  assert.match(await mustWeave(h1, ['status']), /Service: ipam\n\s+Status: ready\n\s+Range: 10\.32\.0\.0\/12\n/);

  // h3 dies; its space is taken over on h1 and handed out again there.
  const h3ips = [...results[2].values()];
  process.kill(weaverPid(h3), 'SIGKILL');
  const rm = await mustWeave(h1, ['rmpeer', 'h3']);
  const taken = /^(\d+) IPs taken over from h3$/.exec(rm.trim());
  assert.ok(taken && Number(taken[1]) === views[0].get('h3'), `rmpeer takes over all of h3's space: ${rm}`);
  assert.equal((await mustWeave(h1, ['rmpeer', 'h3'])).trim(), '0 IPs taken over from h3', 'a second rmpeer finds nothing');
  const gone = await pollUntil(async () => !ownership(await mustWeave(h2, ['status', 'ipam'])).has('h3'), CONVERGE_MS, 250);
  assert.ok(gone, 'h2 learns that h3 owns nothing any more');

  // A /28 around one of h3's old addresses is now h1's: allocation there succeeds on h1.
  const old = ipToInt(h3ips[0]);
  const base = old - (old % 16);
  const subnet = [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.') + '/28';
  const reuse = await h1.addContainer('reuse');
  const got = (await mustWeave(h1, ['attach', `net:${subnet}`, '--netns', reuse.netnsPath])).trim();
  assert.ok(ipToInt(got) >= base && ipToInt(got) < base + 16, `${got} lies in ${subnet}, formerly h3's`);
  assert.ok(!ips.includes(got) || h3ips.includes(got), `${got} is not held by a live container`);
  assert.equal(ownership(await mustWeave(h1, ['status', 'ipam'])).get('h1'), views[0].get('h1')! + views[0].get('h3')!);

  // Detach releases: the address is free again in IPAM.
  await mustWeave(h1, ['detach', '--netns', reuse.netnsPath]);
  const owned = JSON.parse((await h1.exec('curl', ['-s', 'http://127.0.0.1:6784/ip'])).stdout || '{"owned":[]}') as { owned: { containerid: string }[] };
  assert.ok(!owned.owned.some((o) => o.containerid === reuse.netnsPath), 'detach gives the address back to IPAM');
});

test('kill -9 during allocation: after restart every acknowledged address is still held, none twice', async () => {
  const solo = await createTestbed({ hosts: 1, underlay: 'bridge' });
  const h = solo.host(1);
  try {
    await mustWeave(h, ['launch', '--nickname', 'solo']);
    const cs: Container[] = [];
    for (let i = 0; i < 24; i++) cs.push(await h.addContainer(`k${i}`));
    const acknowledged = new Map<string, string>();
    // Four attach streams run while the router is killed under them.
    const streams = [0, 1, 2, 3].map(async (s) => {
      for (let i = s; i < cs.length; i += 4) {
        const r = await weave(h, ['attach', '--netns', cs[i].netnsPath]);
        if (r.code === 0) acknowledged.set(cs[i].netnsPath, r.stdout.trim());
      }
    });
    const killed = pollUntil(() => acknowledged.size >= 6, 60_000, 20).then(() => {
      process.kill(weaverPid(h), 'SIGKILL');
    });
    await Promise.all([...streams, killed]);
    assert.ok(acknowledged.size >= 6 && acknowledged.size < cs.length, `some attaches succeeded before the kill (${acknowledged.size})`);

    await mustWeave(h, ['launch', '--nickname', 'solo']);
    const body = (await h.exec('curl', ['-s', 'http://127.0.0.1:6784/ip'])).stdout;
    const owned = (JSON.parse(body) as { owned: { containerid: string; addrs: string[] }[] }).owned;
    const held = new Map(owned.map((o) => [o.containerid, o.addrs.map((a) => a.split('/')[0])]));
    for (const [ident, ip] of acknowledged) assert.deepEqual(held.get(ident), [ip], `${ident} still holds ${ip}`);
    const all = owned.flatMap((o) => o.addrs);
    assert.equal(new Set(all).size, all.length, `no address is held twice: ${all.join(' ')}`);
    // New allocations after the restart do not reuse acknowledged addresses.
    const fresh = (await mustWeave(h, ['attach', '--netns', cs[cs.length - 1].netnsPath])).trim();
    assert.ok(![...acknowledged.entries()].some(([id, ip]) => ip === fresh && id !== cs[cs.length - 1].netnsPath), `${fresh} was not handed out twice`);
    await weave(h, ['stop']);
  } finally {
    await solo.teardown();
  }
});
