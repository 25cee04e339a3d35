// A real CNI runtime on weave (user-surface spec §7.4): podman with the CNI
// backend runs inside each of two simulated hosts with that host's router,
// using the installed weave-net plugin chained with portmap (the conflist
// `weave setup-cni` writes). Pods on different hosts get weave addresses and
// ping each other; -p through portmap answers from the host; `podman rm`
// gives the address back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { weaveConflist } from '../../controlplane/cni/install.js';
import { createTestbed, launchFullMesh, connectionsMatch, pollUntil, stopRouters, type Host, type Testbed } from '../netns/lib/index.js';
import { importBusyboxPodman, setupPodman, type Podman } from './podman.js';
import { installPlugin, SYSTEM_CNI_DIR, type InstalledPlugin } from './weave-plugin.js';

let bed: Testbed;
let plugin: InstalledPlugin;
const pods = new Map<Host, Podman>();
let image = '';

function podmanOn(h: Host): Podman {
  const p = pods.get(h);
  assert.ok(p, `podman on ${h.label} (see the before hook)`);
  return p;
}

/** The conflist `weave setup-cni` writes, with this host's GC bookkeeping dir. */
function hostConflist(h: Host): { name: string } & Record<string, unknown> {
  const c = weaveConflist(true) as { name: string; plugins: Record<string, unknown>[] };
  c.plugins[0] = { ...c.plugins[0], dataDir: join(h.dir, 'cni-data') };
  return c;
}

async function podIp(p: Podman, name: string): Promise<string> {
  const out = await p.podman(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/12/.exec(out);
  assert.ok(m?.[1], `a weave address (10.32.0.0/12) on eth0: ${out}`);
  return m[1];
}

/** GET on the host's router API, from inside its namespace. */
async function routerGet(h: Host, path: string): Promise<string> {
  const r = await h.exec(process.execPath, ['-e', `fetch('http://127.0.0.1:6784${path}').then(async (r) => process.stdout.write(await r.text()))`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  plugin = installPlugin(bed.dir);
  await launchFullMesh(bed.hosts);
  await connectionsMatch(bed.hosts[0]!, /established/);
  for (const h of bed.hosts) {
    const p = setupPodman({ conflist: hostConflist(h), pluginDirs: [plugin.binDir, SYSTEM_CNI_DIR], namespace: h.namespace });
    pods.set(h, p);
    image = await importBusyboxPodman(p);
  }
});

after(async () => {
  for (const p of pods.values()) await p.cleanup();
  if (bed) {
    await stopRouters(bed.hosts);
    await bed.teardown();
  }
});

test('pods on two hosts get weave addresses and ping each other; podman rm releases the address', async () => {
  const [h1, h2] = bed.hosts as [Host, Host];
  const p1 = podmanOn(h1);
  const p2 = podmanOn(h2);
  const t0 = performance.now();
  const id1 = (await p1.run(['-d', '--name', 'a', image, 'sleep', '300'])).trim();
  const addMs = performance.now() - t0;
  await p2.run(['-d', '--name', 'b', image, 'sleep', '300']);
  const ipA = await podIp(p1, 'a');
  const ipB = await podIp(p2, 'b');
  assert.notEqual(ipA, ipB);
  assert.equal((await routerGet(h1, `/ip/${id1}`)).trim(), `${ipA}/12`, 'IPAM holds the address under the container id');
  // The bridge had no address: the plugin gave it one and made it the pods' gateway.
  const routes = await p1.podman(['exec', 'a', 'ip', '-4', 'route']);
  assert.match(routes, /^default via 10\.\d+\.\d+\.\d+ dev eth0/m);

  const start = performance.now();
  const ok = await pollUntil(async () => {
    try {
      await p1.podman(['exec', 'a', 'ping', '-c', '1', '-W', '1', ipB]);
      return true;
    } catch {
      return false;
    }
  }, 10_000, 100);
  const firstReplyMs = performance.now() - start;
  assert.ok(ok, `pod a on h1 reaches pod b on h2 (${ipB})`);
  assert.ok(firstReplyMs < 5_000, `first reply after ${firstReplyMs.toFixed(0)} ms (want < 5 s)`);
  await p2.podman(['exec', 'b', 'ping', '-c', '1', '-W', '1', ipA]);
  console.log(`# podman run (create + CNI ADD + start) ${addMs.toFixed(0)} ms, first cross-host reply ${firstReplyMs.toFixed(0)} ms`);

  await p1.podman(['rm', '--force', '--time', '0', 'a']);
  assert.equal((await routerGet(h1, `/ip/${id1}`)).trim(), '', 'podman rm ran DEL: the address is free');
  const veths = await h1.exec('ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(veths.stdout, new RegExp(`vethwepl${id1.slice(0, 7)}`), 'the host end of the veth is gone');
});

test('-p 8080:80 through the chained portmap plugin answers on the host address', async () => {
  const h1 = bed.hosts[0]!;
  const p1 = podmanOn(h1);
  await p1.run(['-d', '--name', 'web', '-p', '8080:80', image, 'sh', '-c', 'mkdir -p /www && echo weave-portmap > /www/index.html && exec httpd -f -p 80 -h /www']);
  let body = '';
  const ok = await pollUntil(async () => {
    const r = await h1.exec('curl', ['-sS', '-m', '2', `http://${h1.address}:8080/`]);
    body = r.stdout + r.stderr;
    return r.code === 0;
  }, 15_000, 200);
  assert.ok(ok, `http://${h1.address}:8080/ answers: ${body}`);
  assert.equal(body.trim(), 'weave-portmap');
});
