// The weave-net CNI plugin under load, on one simulated host with its router:
//   ADD latency   median and p99 of N ADDs (each a fresh pod namespace), run as a
//                 runtime runs plugins, against the reference bridge + host-local
//                 plugins doing the same in the same run (ratio), and the plugin's
//                 bare start-up (VERSION) as the floor
//   churn         M pods created and removed through podman (CNI backend)
// and at the end: no address left in IPAM and no vethwepl* link on the host.
//
//   node dist/bench/cni-bench.js [adds=200] [churn=500]
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { weaveConflist } from '../controlplane/cni/install.js';
import { createTestbed, mustWeave, stopRouters, type Host } from '../test/netns/lib/index.js';
import { importBusyboxPodman, setupPodman } from '../test/cni/podman.js';
import { installPlugin, runCni, SYSTEM_CNI_DIR } from '../test/cni/weave-plugin.js';

const adds = Number(process.argv[2] ?? 200);
const churn = Number(process.argv[3] ?? 500);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function line(what: string, xs: number[]): string {
  return `${what}: median ${quantile(xs, 0.5).toFixed(0)} ms, p99 ${quantile(xs, 0.99).toFixed(0)} ms (n=${xs.length})`;
}

async function routerGet(h: Host, path: string): Promise<string> {
  const r = await h.exec(process.execPath, ['-e', `fetch('http://127.0.0.1:6784${path}').then(async (r) => process.stdout.write(await r.text()))`]);
  return r.stdout;
}

async function leaks(h: Host): Promise<{ addresses: number; veths: number }> {
  const owned = JSON.parse(await routerGet(h, '/ip')) as { owned: { containerid: string }[] };
  const links = await h.exec('ip', ['-o', 'link', 'show']);
  return {
    addresses: owned.owned.filter((o) => o.containerid !== 'weave:expose').length,
    veths: links.stdout.split('\n').filter((l) => /vethwepl/.test(l)).length,
  };
}

const bed = await createTestbed({ hosts: 1, underlay: 'bridge' });
const h = bed.host(1);
try {
  await mustWeave(h, ['launch']);
  await mustWeave(h, ['expose']);
  const plugin = installPlugin(bed.dir);
  const weaveConf = { cniVersion: '1.0.0', name: 'weave', type: 'weave-net', dataDir: join(bed.dir, 'cni-data') };
  const refConf = { cniVersion: '1.0.0', name: 'ref', type: 'bridge', bridge: 'cniref0', ipam: { type: 'host-local', subnet: '10.99.0.0/16', dataDir: join(bed.dir, 'ref-ipam') } };

  const weaveMs: number[] = [];
  const refMs: number[] = [];
  // The floor: starting the plugin at all (node.js and its modules), with no router call.
  const versionMs: number[] = [];
  for (let i = 0; i < Math.min(adds, 50); i++) versionMs.push((await runCni(h, plugin, 'weave-net', { command: 'VERSION', config: { cniVersion: '1.1.0' } })).ms);
  const pods: { id: string; netns: string }[] = [];
  for (let i = 0; i < adds; i++) {
    const c = await h.addContainer(`w${i}`);
    const id = `bench${String(i).padStart(6, '0')}${'0'.repeat(52)}`;
    const r = await runCni(h, plugin, 'weave-net', { command: 'ADD', containerId: id, netns: c.netnsPath, ifname: 'eth0', config: weaveConf });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    weaveMs.push(r.ms);
    pods.push({ id, netns: c.netnsPath });
    const ref = await h.addContainer(`r${i}`);
    const rr = await runCni(h, { ...plugin, binDir: SYSTEM_CNI_DIR }, 'bridge' as 'weave-net', { command: 'ADD', containerId: `ref${i}`, netns: ref.netnsPath, ifname: 'eth0', config: refConf });
    assert.equal(rr.code, 0, rr.stdout + rr.stderr);
    refMs.push(rr.ms);
  }
  process.stdout.write(`${line('weave-net VERSION (process start only)', versionMs)}\n${line('weave-net ADD', weaveMs)}\n${line('bridge+host-local ADD', refMs)}\n`);
  process.stdout.write(`ratio weave-net/bridge: median ${(quantile(weaveMs, 0.5) / quantile(refMs, 0.5)).toFixed(2)}, p99 ${(quantile(weaveMs, 0.99) / quantile(refMs, 0.99)).toFixed(2)}\n`);
  for (const p of pods) {
    const r = await runCni(h, plugin, 'weave-net', { command: 'DEL', containerId: p.id, netns: p.netns, ifname: 'eth0', config: weaveConf });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const afterAdds = await leaks(h);
  process.stdout.write(`after ${adds} ADD + DEL: ${afterAdds.addresses} addresses and ${afterAdds.veths} vethwepl links left\n`);

  if (churn > 0) {
    const c = weaveConflist(true) as { name: string; plugins: Record<string, unknown>[] };
    c.plugins[0] = { ...c.plugins[0], dataDir: join(bed.dir, 'podman-data') };
    const p = setupPodman({ conflist: c, pluginDirs: [plugin.binDir, SYSTEM_CNI_DIR], namespace: h.namespace });
    try {
      const image = await importBusyboxPodman(p);
      const cycleMs: number[] = [];
      for (let i = 0; i < churn; i++) {
        const t0 = performance.now();
        await p.run(['-d', '--name', `churn${i}`, image, 'sleep', '600']);
        await p.podman(['rm', '--force', '--time', '0', `churn${i}`]);
        cycleMs.push(performance.now() - t0);
      }
      process.stdout.write(`${line('podman run -d + rm -f', cycleMs)}\n`);
      const afterChurn = await leaks(h);
      process.stdout.write(`after ${churn} pods through podman: ${afterChurn.addresses} addresses and ${afterChurn.veths} vethwepl links left\n`);
      assert.deepEqual(afterChurn, { addresses: 0, veths: 0 });
    } finally {
      await p.cleanup();
    }
  }
  assert.deepEqual(afterAdds, { addresses: 0, veths: 0 });
} finally {
  await stopRouters([h]);
  await bed.teardown();
}
