// The Kubernetes add-on's use of the API (user-surface spec §7.5), through
// @kubernetes/client-node against a server answering with the real API's JSON:
// peer discovery from nodes, the peer list in ConfigMap kube-system/weave-net,
// and the reclaim of deleted nodes' IPAM space - exactly once when two routers
// race for the same dead peer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApi } from '../../k8s/kube-api.js';
import {
  addSelfToPeerList, annotationKey, discoverPeers, isPeerNew, nodePeerAddress, PEER_LIST_KEY, peerListOf, reclaimRemovedPeers, type PeerInfo,
} from '../../k8s/kube-peers.js';
import { planKubeLaunch } from '../../k8s/launch-plan.js';
import { parseWeaverFlags } from '../../weaver/flags.js';
import { FakeKubeApi } from './k8s-api-server.js';

let server: FakeKubeApi;

before(async () => {
  server = new FakeKubeApi();
  await server.start();
});
after(async () => server.close());

function reset(): void {
  server.configMap = undefined;
  server.failNodeList = false;
  server.requests.length = 0;
  server.conflicts = 0;
}

test('peers: each node\'s IPv4 InternalIP, else ExternalIP; KUBE_PEERS overrides the API', async () => {
  reset();
  server.nodes = [
    { name: 'node-a', addresses: [{ type: 'InternalIP', address: '192.168.10.11' }, { type: 'Hostname', address: 'node-a' }] },
    { name: 'node-b', addresses: [{ type: 'InternalIP', address: 'fd00::12' }, { type: 'ExternalIP', address: '203.0.113.12' }] },
    { name: 'node-c', addresses: [{ type: 'Hostname', address: 'node-c' }] },
  ];
  const api = new KubeApi(server.kubeConfig());
  assert.deepEqual(await discoverPeers(undefined, api), ['192.168.10.11', '203.0.113.12']);
  assert.deepEqual(server.requests, ['GET /api/v1/nodes']);
  assert.deepEqual(await discoverPeers('10.0.0.1 10.0.0.2,10.0.0.3', api), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  assert.equal(nodePeerAddress({ name: 'x', addresses: [] }), undefined);
});

test('the peer list: created on first use, each router recorded once, restarts recognised', async () => {
  reset();
  const api = new KubeApi(server.kubeConfig());
  assert.equal(await isPeerNew(api, 'aa:aa:aa:aa:aa:01'), true);
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' });
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:02', NodeName: 'node-b' });
  const list = await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' });
  assert.deepEqual(list.Peers.map((p) => p.PeerName), ['aa:aa:aa:aa:aa:01', 'aa:aa:aa:aa:aa:02']);
  assert.equal(await isPeerNew(api, 'aa:aa:aa:aa:aa:01'), false);
  // The stored shape is Weave's: {"Peers":[{"PeerName":..., "NodeName":...}]}.
  assert.equal(server.configMap?.annotations[PEER_LIST_KEY], '{"Peers":[{"PeerName":"aa:aa:aa:aa:aa:01","NodeName":"node-a"},{"PeerName":"aa:aa:aa:aa:aa:02","NodeName":"node-b"}]}');
  assert.equal(annotationKey('aa:aa:aa:aa:aa:02'), 'kube-peers.weave.works/aa_aa_aa_aa_aa_02');
});

/** A fresh server with two live nodes, a and b, and a client for each router. */
function twoLiveRouters(): { a: KubeApi; b: KubeApi; meA: PeerInfo; meB: PeerInfo } {
  reset();
  server.nodes = [
    { name: 'node-a', addresses: [{ type: 'InternalIP', address: '192.168.10.11' }] },
    { name: 'node-b', addresses: [{ type: 'InternalIP', address: '192.168.10.12' }] },
  ];
  return {
    a: new KubeApi(server.kubeConfig()),
    b: new KubeApi(server.kubeConfig()),
    meA: { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' },
    meB: { PeerName: 'aa:aa:aa:aa:aa:02', NodeName: 'node-b' },
  };
}

test('two routers reclaiming the same dead node: exactly one rmpeer, and the list and locks end clean', async () => {
  const { a, b, meA, meB } = twoLiveRouters();
  for (const me of [meA, meB, { PeerName: 'aa:aa:aa:aa:aa:03', NodeName: 'node-c' }, { PeerName: 'aa:aa:aa:aa:aa:04', NodeName: 'node-d' }]) {
    await addSelfToPeerList(a, me);
  }
  // node-c and node-d were deleted from the cluster.
  const rmpeers: string[] = [];
  const rmpeer = (who: string) => async (peer: string): Promise<string> => {
    rmpeers.push(`${who}:${peer}`);
    return `65536 IPs taken over from ${peer}\n`;
  };
  // Both routers' first lock write is held until the other's arrives: both read the same version, one must lose.
  server.holdPuts = 2;
  const [ra, rb] = await Promise.all([reclaimRemovedPeers(a, rmpeer('A'), meA), reclaimRemovedPeers(b, rmpeer('B'), meB)]);
  const reclaimedPeers = rmpeers.map((r) => r.split(':').slice(1).join(':')).sort();
  assert.deepEqual(reclaimedPeers, ['aa:aa:aa:aa:aa:03', 'aa:aa:aa:aa:aa:04'], `each dead peer exactly once: ${rmpeers.join(', ')}`);
  assert.deepEqual([...ra.reclaimed, ...rb.reclaimed].sort(), reclaimedPeers);
  const final = peerListOf({ annotations: server.configMap!.annotations, resourceVersion: '' });
  assert.deepEqual(final.Peers.map((p) => p.NodeName).sort(), ['node-a', 'node-b']);
  assert.deepEqual(Object.keys(server.configMap!.annotations), [PEER_LIST_KEY], 'no lock annotation is left');
  assert.ok(server.conflicts >= 1, 'the race happened: a write with a stale resourceVersion was refused');

  // Nothing left to do on a second pass.
  assert.deepEqual(await reclaimRemovedPeers(a, rmpeer('A'), meA), { reclaimed: [], leftToOthers: [] });
});

test('a lock write that loses to a router which then finishes the whole reclaim does not reclaim again', async () => {
  const { a, b, meA, meB } = twoLiveRouters();
  for (const me of [meA, meB, { PeerName: 'aa:aa:aa:aa:aa:09', NodeName: 'node-gone' }]) await addSelfToPeerList(a, me);
  const rmpeers: string[] = [];
  // B's first lock write reaches the server only after A has locked, reclaimed and unlocked: it is refused,
  // and B's next read finds the peer gone from the list.
  const write = b.replaceConfigMap.bind(b);
  let first = true;
  b.replaceConfigMap = async (state) => {
    if (first) {
      first = false;
      await reclaimRemovedPeers(a, async (p) => { rmpeers.push(`A:${p}`); return ''; }, meA);
    }
    return write(state);
  };
  const rb = await reclaimRemovedPeers(b, async (p) => { rmpeers.push(`B:${p}`); return ''; }, meB);
  assert.deepEqual(rmpeers, ['A:aa:aa:aa:aa:aa:09'], 'reclaimed once, by A');
  assert.deepEqual(rb, { reclaimed: [], leftToOthers: ['aa:aa:aa:aa:aa:09'] });
  assert.ok(server.conflicts >= 1, "B's stale write was refused");
});

test('a lock held by another live router is left to it; my own lock is taken up again after a restart', async () => {
  reset();
  server.nodes = [{ name: 'node-a', addresses: [{ type: 'InternalIP', address: '192.168.10.11' }] }];
  const api = new KubeApi(server.kubeConfig());
  const meA = { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' };
  await addSelfToPeerList(api, meA);
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:05', NodeName: 'node-e' });
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:06', NodeName: 'node-f' });
  const cm = server.configMap!;
  cm.annotations[annotationKey('aa:aa:aa:aa:aa:05')] = 'aa:aa:aa:aa:aa:99';
  cm.annotations[annotationKey('aa:aa:aa:aa:aa:06')] = meA.PeerName;
  const done: string[] = [];
  const out = await reclaimRemovedPeers(api, async (p) => { done.push(p); return ''; }, meA);
  assert.deepEqual(done, ['aa:aa:aa:aa:aa:06']);
  assert.deepEqual(out.leftToOthers, ['aa:aa:aa:aa:aa:05']);
});

test('a failed node listing reclaims nothing (Weave went on with an empty node set)', async () => {
  reset();
  const api = new KubeApi(server.kubeConfig());
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' });
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:02', NodeName: 'node-b' });
  server.failNodeList = true;
  const done: string[] = [];
  await assert.rejects(reclaimRemovedPeers(api, async (p) => { done.push(p); return ''; }, { PeerName: 'aa:aa:aa:aa:aa:01', NodeName: 'node-a' }), /list nodes: 500 Internal error occurred/);
  assert.deepEqual(done, []);
});

test('a node that came back with a new peer name: its old peer is reclaimed', async () => {
  reset();
  server.nodes = [{ name: 'node-a', addresses: [{ type: 'InternalIP', address: '192.168.10.11' }] }];
  const api = new KubeApi(server.kubeConfig());
  await addSelfToPeerList(api, { PeerName: 'aa:aa:aa:aa:aa:0a', NodeName: 'node-a' });
  const me = { PeerName: 'aa:aa:aa:aa:aa:0b', NodeName: 'node-a' };
  await addSelfToPeerList(api, me);
  const done: string[] = [];
  await reclaimRemovedPeers(api, async (p) => { done.push(p); return ''; }, me);
  assert.deepEqual(done, ['aa:aa:aa:aa:aa:0a']);
});

test('launch plan: Weave\'s env variables become flags the router accepts; the password stays out of argv', () => {
  const plan = planKubeLaunch({
    IPALLOC_RANGE: '10.40.0.0/16', CONN_LIMIT: '100', WEAVE_PASSWORD: 's3cret', WEAVE_MTU: '1376', WEAVE_NO_FASTDP: '1',
    NO_MASQ_LOCAL: '0', WEAVE_METRICS_ADDR: '0.0.0.0:6782', WEAVE_STATUS_ADDR: '0.0.0.0:6781', WEAVE_HTTP_ADDR: '127.0.0.1:6784',
    EXTRA_ARGS: '--log-level=debug', EXPECT_NPC: '0',
  }, ['192.168.10.11', '192.168.10.12'], 'node-a');
  assert.deepEqual(plan.args, [
    '--port=6783', '--nickname=node-a', '--state-dir=/weavedb', '--ipalloc-range=10.40.0.0/16', '--http-addr=127.0.0.1:6784',
    '--metrics-addr=0.0.0.0:6782', '--conn-limit=100', '--docker-api=', '--no-dns', '--datapath=datapath', '--status-addr=0.0.0.0:6781',
    '--mtu=1376', '--no-fastdp', '--ipalloc-init=consensus=2', '--log-level=debug', '192.168.10.11', '192.168.10.12',
  ]);
  assert.deepEqual(plan.env, { WEAVE_PASSWORD: 's3cret' });
  assert.ok(!plan.args.some((a) => a.includes('s3cret')));
  const cfg = parseWeaverFlags(plan.args, { WEAVE_PASSWORD: 's3cret' });
  assert.deepEqual([cfg.connLimit, cfg.mtu, cfg.noFastdp, cfg.httpAddr, cfg.metricsAddr, cfg.password], [100, 1376, true, '127.0.0.1:6784', '0.0.0.0:6782', 's3cret']);
  assert.deepEqual(cfg.peers, ['192.168.10.11', '192.168.10.12']);

  const defaults = planKubeLaunch({}, ['192.168.10.11'], 'node-a');
  assert.ok(defaults.args.includes('--ipalloc-range=10.32.0.0/12'));
  assert.ok(defaults.args.includes('--expect-npc'), "Weave's default");
  assert.ok(!defaults.args.includes('--no-masq-local'), 'refused by the router, so not passed unless asked for');
  const masqLocal = planKubeLaunch({ NO_MASQ_LOCAL: '1' }, [], 'n');
  assert.throws(() => parseWeaverFlags(masqLocal.args, {}), /--no-masq-local: .*NO_MASQ_LOCAL=0/);
  assert.ok(defaults.args.includes('--ipalloc-init=consensus=1'));
  assert.throws(() => planKubeLaunch({ WEAVE_MTU: 'big' }, [], 'n'), /WEAVE_MTU must be a number/);
  parseWeaverFlags(defaults.args, {});
});
