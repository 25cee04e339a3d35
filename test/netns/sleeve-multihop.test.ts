// Three simulated hosts A-B-C with A-C cut on the underlay: the sleeve relays
// unicast frames through B towards their destination peer (spec §5.8) and
// floods broadcasts (ARP, broadcast ping) along the Broadcast(S) trees, so
// every host's container sees them.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createTestbed, pollUntil, waitForPing, type Testbed } from './lib/index.js';
import { plugNode, startLineOfThree, stopSleeve, type Link, type SleeveNode } from './sleeve-harness.js';
import { fullCollector } from '../../dataplane/sys/full-gc.js';

const CONTAINER_MTU = 1376;

describe('sleeve across three hosts with A-C cut', () => {
  let bed: Testbed;
  const nodes: SleeveNode[] = [];
  const links: Link[] = [];

  before(async () => {
    bed = await createTestbed({ hosts: 3, underlay: 'bridge' });
    for (let i = 1; i <= 3; i++) nodes.push(await plugNode(bed.host(i), i, CONTAINER_MTU));
    await bed.cutLink(bed.host(1), bed.host(3));
    // The workers collect their heaps every second while the frames below cross them, as the
    // router has them do every 30 s once it has exposed V8's collection (full-gc.ts).
    process.env['WEAVE_FULL_GC_SEC'] = '1';
    fullCollector();
    links.push(...await startLineOfThree(nodes, CONTAINER_MTU));
  });

  after(async () => {
    for (const n of nodes) await stopSleeve(n);
    await bed?.teardown();
  });

  test('the underlay really is cut between A and C', async () => {
    assert.equal(await bed.host(1).ping(bed.host(3).address, { count: 1, waitSeconds: 1 }), false);
  });

  test("A's container reaches C's through B, and back", async () => {
    const [a, b, c] = nodes as [SleeveNode, SleeveNode, SleeveNode];
    assert.ok(await waitForPing(a.container, c.ip, 10_000), 'A cannot reach C');
    assert.ok(await waitForPing(c.container, a.ip, 10_000), 'C cannot reach A');
    // B carried A's frames for C without delivering them to its own container's MAC table owner.
    assert.ok((b.dp!.workerStats()?.framesSent ?? 0) > 0);
  });

  test('each packet worker collects its heap on the interval the router sets', async () => {
    const counts = (): number[] => nodes.map((n) => n.dp!.workerStats()?.fullCollections ?? 0);
    const start = counts();
    const t0 = performance.now();
    // Every second: each worker's count goes up by 2 within 2 s plus its 500 ms stats report.
    assert.ok(await pollUntil(() => counts().every((c, i) => c >= start[i]! + 2), 5000, 100), `collections ${start} -> ${counts()} in 5 s`);
    process.stdout.write(`# two more collections in every worker after ${(performance.now() - t0).toFixed(0)} ms\n`);
  });

  test('a broadcast from A reaches the containers on B and C', async () => {
    for (const n of nodes) {
      const r = await n.container.run('sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0');
      assert.equal(r.code, 0, r.stderr);
    }
    const [a, b, c] = nodes as [SleeveNode, SleeveNode, SleeveNode];
    await a.container.run('ip neigh flush all');
    const r = await a.container.run('ping -b -c 3 -W 1 10.47.255.255 2>&1 || true', { timeoutMs: 15_000 });
    assert.match(r.stdout, new RegExp(`from ${b.ip.replace(/\./g, '\\.')}`), `no reply from B: ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`from ${c.ip.replace(/\./g, '\\.')}`), `no reply from C: ${r.stdout}`);
  });
});
