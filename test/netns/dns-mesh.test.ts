// weaveDNS across a real mesh (user-surface spec §1.11, §2.5, §6.6; wire spec
// §9): names registered on three routers resolve from containers on every
// host through the local router's DNS server, and a removed name stops
// resolving everywhere within seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  sharedWeaveBed, launchFullMesh, mustWeave, pollUntil, type Container, type Host,
} from './lib/index.js';

const CONVERGE_MS = 30_000;
/** How quickly a removal must be seen everywhere. */
const REMOVAL_MS = 5_000;

const testbed = sharedWeaveBed(3);

/** Resolve A records from inside a container with node's resolver, against one server. */
async function resolveIn(c: Container, server: string, name: string): Promise<string[]> {
  const code = `const r = new (require('node:dns').promises.Resolver)({ timeout: 1000, tries: 1 }); r.setServers([${JSON.stringify(server)}]);
r.resolve4(${JSON.stringify(name)}).then((a) => console.log(a.sort().join(' ')), (e) => console.log('ERR ' + e.code));`;
  const r = await c.exec(process.execPath, ['-e', code], { timeoutMs: 10_000 });
  const out = r.stdout.trim();
  return out.startsWith('ERR') || out === '' ? [] : out.split(' ');
}

test('names registered on three hosts resolve from containers everywhere; removal is seen everywhere', async () => {
  const [h1, h2, h3] = testbed().hosts;
  await launchFullMesh(testbed().hosts);

  // The bridge address is where containers reach their router's DNS server (it listens on 0.0.0.0:53 here).
  const bridgeIp = new Map<Host, string>();
  for (const h of testbed().hosts) bridgeIp.set(h, (await mustWeave(h, ['expose'])).trim());
  const containers: Container[] = [];
  const ipOf = new Map<string, string>();
  for (const [i, h] of testbed().hosts.entries()) {
    const c = await h.addContainer(`n${i + 1}`);
    containers.push(c);
    ipOf.set(`svc${i + 1}`, (await mustWeave(h, ['attach', '--netns', c.netnsPath, '-h', `svc${i + 1}.weave.local`])).trim());
  }
  // A name without a container (weave:extern), added on h2.
  await mustWeave(h2, ['dns-add', '192.0.2.1', '-h', 'ext.weave.local.']);
  ipOf.set('ext', '192.0.2.1');

  for (const c of containers) {
    const server = bridgeIp.get(c.host)!;
    for (const [name, ip] of ipOf) {
      let got: string[] = [];
      const ok = await pollUntil(async () => {
        got = await resolveIn(c, server, `${name}.weave.local`);
        return got.length === 1 && got[0] === ip;
      }, CONVERGE_MS, 250);
      assert.ok(ok, `${name} resolves to ${ip} from ${c.name} on ${c.host.label} via ${server}: got [${got.join(' ')}]`);
    }
  }
  // Single-label names are qualified with the domain (spec §6.6).
  assert.deepEqual(await resolveIn(containers[0], bridgeIp.get(h1)!, 'svc3'), [ipOf.get('svc3')]);

  assert.equal(await mustWeave(h2, ['dns-lookup', 'svc1']), `${ipOf.get('svc1')}\n`);
  assert.match(await mustWeave(h3, ['status', 'dns']), /^svc1\s+10\.\S+\s+\/run\/netns\//m);
  assert.match(await mustWeave(h1, ['dns-args']), /^--dns=\S+ --dns-search=weave\.local\.$/);
  assert.match(await mustWeave(h1, ['status']), /Service: dns\n\s+Domain: weave\.local\.\n/);

  // Removing svc1 on its own host (detach) and ext by dns-remove: gone everywhere within seconds.
  await mustWeave(h1, ['detach', '--netns', containers[0].netnsPath]);
  await mustWeave(h2, ['dns-remove', '192.0.2.1', '-h', 'ext.weave.local.']);
  for (const c of containers.slice(1)) {
    const server = bridgeIp.get(c.host)!;
    for (const name of ['svc1', 'ext']) {
      const gone = await pollUntil(async () => (await resolveIn(c, server, `${name}.weave.local`)).length === 0, REMOVAL_MS, 200);
      assert.ok(gone, `${name} stops resolving from ${c.host.label} within ${REMOVAL_MS / 1000} s`);
    }
    assert.deepEqual(await resolveIn(c, server, 'svc2.weave.local'), [ipOf.get('svc2')], 'other names stay');
  }
});
