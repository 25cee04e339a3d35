// Runs INSIDE the kernel lab VM (the host kernel has no openvswitch module):
// two simulated hosts run real routers with `weave launch`. The router probes
// the kernel, offers fastdp before sleeve (user-surface spec §8.1), the VXLAN
// heartbeats establish the connection on fastdp (wire spec §6.4), containers
// reach each other through kernel flows (§6.5), and `weave reset` leaves no
// datapath, vport or flow behind.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Host } from '../../netns/lib/index.js';
import { attachContainer, connectionsMatch, datapathState, loadKernelModules, mustPing, mustWeave, withBed } from './weave-fastdp-harness.js';

before(() => loadKernelModules());

test('two hosts: weave launch picks fastdp, containers ping through kernel flows, reset removes the datapath', { timeout: 600_000 }, async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established fastdp \S+\(h1\) mtu=\d+\s*$/m);
    assert.doesNotMatch(line, /encrypted/);
    await connectionsMatch(h1, /^<- \S+\s+established fastdp \S+\(h2\) mtu=\d+\s*$/m);
    // The bridge underlay is 1500 bytes: the automatic fastdp MTU leaves room for VXLAN (spec §6.1).
    assert.match(line, /mtu=1450\b/);
    assert.equal((await mustWeave(h1, ['report', '-f', '{{.Router.Interface}}'])).trim(), 'datapath (via ODP)');

    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1');
    const before1 = await datapathState(h1);
    // A burst once the flows exist: the kernel forwards it without misses.
    const burst = await c1.exec('ping', ['-c', '20', '-i', '0.2', '-W', '2', '10.32.0.2']);
    assert.equal(burst.code, 0, `a 20-ping burst crosses fastdp:\n${burst.stdout}${burst.stderr}`);
    const after1 = await datapathState(h1);
    assert.ok(after1.hit - before1.hit >= 30n, `kernel flow hits on h1 grew by ${after1.hit - before1.hit} for 40 packets`);
    assert.ok(after1.flows.some((f) => f.actions.some((a) => a.type === 'set-tunnel')), 'h1 has a flow that tunnels to h2');

    await mustWeave(h1, ['reset']);
    const gone = await datapathState(h1);
    assert.deepEqual(gone.datapaths, [], 'reset removed the datapath with its vports and flows');
    assert.notEqual((await h1.exec('ip', ['link', 'show', 'vethwe-datapath'])).code, 0, 'reset removed the datapath veth');
    assert.equal((await datapathState(h2)).datapaths.length, 1, 'h2 keeps its own datapath');
  });
});

test('--no-fastdp forces sleeve even where the kernel has OVS, and status says why', { timeout: 400_000 }, async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'h1', '--no-fastdp']);
    await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
    await connectionsMatch(h2, /^-> \S+:6783\s+established sleeve \S+\(h1\) mtu=\d+/m);
    await connectionsMatch(h1, /established sleeve \S+\(h2\) mtu=\d+ \(fastdp: disabled by --no-fastdp\)/);
    assert.deepEqual((await datapathState(h1)).datapaths, [], 'no datapath on the --no-fastdp host');
  });
});
