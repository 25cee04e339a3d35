// The Kubernetes launcher end to end on two simulated hosts (user-surface spec
// §7.5): `weave-kube launch` on each finds its peer through a stand-in API
// server (real API JSON shapes, test/unit/k8s-api-server.ts) running on h1's
// underlay address, starts the router with Weave's flags, exposes the host once
// the router is ready, records itself in the peer list and reclaims the peer of
// a node that was deleted from the cluster - once, though both routers try.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTestbed, connectionsMatch, mustExec, mustWeave, pollUntil, stopRouters, weaveStateDir,
  type Host, type SpawnedProcess, type Testbed,
} from './lib/index.js';

const WEAVE_KUBE = fileURLToPath(new URL('../../../bin/weave-kube', import.meta.url));
const API_MAIN = fileURLToPath(new URL('./kube-apiserver-main.js', import.meta.url));
const DEAD_PEER = 'de:ad:00:00:00:01';

let bed: Testbed;
let apiPort = 0;
const launchers: SpawnedProcess[] = [];

/** GET on the stand-in API server from h1, as JSON. */
async function apiGet(h: Host, path: string): Promise<Record<string, unknown>> {
  const r = await h.exec(process.execPath, ['-e', `fetch('http://${bed.host(1).address}:${apiPort}${path}').then(async (r) => process.stdout.write(await r.text()))`]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

before(async () => {
  bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const [h1, h2] = bed.hosts as [Host, Host];
  const nodes = bed.hosts.map((h) => ({ name: `node-${h.index}`, addresses: [{ type: 'InternalIP', address: h.address }, { type: 'Hostname', address: `node-${h.index}` }] }));
  writeFileSync(join(bed.dir, 'nodes.json'), JSON.stringify(nodes));
  // node-9 ran a router once and was deleted from the cluster; its peer is still in the list.
  writeFileSync(join(bed.dir, 'annotations.json'), JSON.stringify({
    'kube-peers.weave.works/peers': JSON.stringify({ Peers: [{ PeerName: DEAD_PEER, NodeName: 'node-9' }] }),
  }));
  const server = h1.spawn(process.execPath, [API_MAIN, h1.address, join(bed.dir, 'nodes.json'), join(bed.dir, 'annotations.json')]);
  assert.ok(await pollUntil(() => /listening \d+/.test(server.output()), 20_000, 50), `API server started: ${server.output()}`);
  apiPort = Number(/listening (\d+)/.exec(server.output())?.[1]);
  // A node where bridged traffic skips iptables: the launcher turns it on (spec §6.2).
  await mustExec('ip', ['netns', 'exec', h2.namespace, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
  for (const h of [h1, h2]) {
    const kubeconfig = join(h.dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigText(h1.address, apiPort));
    launchers.push(h.spawn(process.execPath, [WEAVE_KUBE, 'launch'], {
      env: { KUBECONFIG: kubeconfig, HOSTNAME: `node-${h.index}`, WEAVE_STATE_DIR: weaveStateDir(h), EXPECT_NPC: '0' },
    }));
  }
});

function kubeconfigText(host: string, port: number): string {
  return [
    'apiVersion: v1', 'kind: Config', 'current-context: test',
    'clusters:', '- name: test', '  cluster:', `    server: http://${host}:${port}`, '    insecure-skip-tls-verify: true',
    'users:', '- name: weave-net', '  user:', '    token: service-account-token',
    'contexts:', '- name: test', '  context:', '    cluster: test', '    user: weave-net', '',
  ].join('\n');
}

after(async () => {
  if (bed) {
    await stopRouters(bed.hosts);
    await bed.teardown();
  }
});

test('both routers find each other through the API, expose their hosts, and the dead node\'s peer is reclaimed once', async () => {
  const [h1, h2] = bed.hosts as [Host, Host];
  const t0 = performance.now();
  try {
    await connectionsMatch(h1, /established/, { timeoutMs: 60_000 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlaunchers:\n${launchers.map((l) => l.output()).join('\n---\n')}`);
  }
  const connectedMs = performance.now() - t0;
  for (const h of bed.hosts) {
    const v = await h.exec('cat', ['/proc/sys/net/bridge/bridge-nf-call-iptables']);
    assert.equal(v.stdout.trim(), '1', `${h.label}: bridged traffic passes iptables`);
  }
  assert.ok(connectedMs < 45_000, `routers connected ${connectedMs.toFixed(0)} ms after the launchers started`);

  // Peer list: both live routers in, the dead one out, no lock left behind.
  let annotations: Record<string, string> = {};
  const settled = await pollUntil(async () => {
    const cm = await apiGet(h1, '/api/v1/namespaces/kube-system/configmaps/weave-net');
    annotations = ((cm.metadata as { annotations?: Record<string, string> }).annotations) ?? {};
    const peers = JSON.parse(annotations['kube-peers.weave.works/peers'] ?? '{"Peers":[]}') as { Peers: { NodeName: string }[] };
    return peers.Peers.map((p) => p.NodeName).sort().join(',') === 'node-1,node-2';
  }, 60_000, 250);
  assert.ok(settled, `peer list holds node-1 and node-2 only: ${JSON.stringify(annotations)}`);
  assert.deepEqual(Object.keys(annotations), ['kube-peers.weave.works/peers'], 'no reclaim lock left');
  const logs = launchers.map((l) => l.output()).join('\n');
  assert.equal(logs.match(new RegExp(`rmpeer of ${DEAD_PEER}`, 'g'))?.length, 1, `exactly one router reclaimed the dead peer:\n${logs}`);

  // weave expose after readiness: each bridge has an address from the IPAM range.
  for (const h of [h1, h2]) {
    const ok = await pollUntil(async () => /^weave:expose \S+ 10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12/m.test(await mustWeave(h, ['ps', 'weave:expose'])), 30_000, 250);
    assert.ok(ok, `${h.label}: the bridge got an address (weave expose)`);
  }
  // The router runs with the Kubernetes flags.
  const report = await mustWeave(h2, ['report', '-f', '{{.Router.NickName}}']);
  assert.equal(report.trim(), 'node-2');
});
