// Bulk TCP (iperf3) between containers on two simulated hosts, in ONE run:
//   (a) base    : container veth and the underlay veth in one Linux bridge per host (no overlay)
//   (b) sleeve  : the sleeve datapath (dataplane/sleeve), UDP 6783
//   (c) sleeve+e: the sleeve datapath with encryption
// Prints Gbit/s, the ratios to (a), and the sleeve workers' CPU use
// (CPU-seconds per second of transfer, summed over both hosts' workers).
//
//   node dist/bench/sleeve-bench.js [seconds=5]
// Root needed; everything lives in namespaces the bench creates and removes.
import { createTestbed, mustExec, pollUntil, waitForPing, type Container, type Testbed } from '../test/netns/lib/index.js';
import { applyTopology, connectNodes, plugNode, startSleeve, type SleeveNode } from '../test/netns/sleeve-harness.js';

const CONTAINER_MTU = 1376;
const seconds = Number(process.argv[2] ?? 5);

async function iperf(client: Container, server: Container, serverIp: string): Promise<number> {
  const srv = server.spawn('iperf3', ['-s', '-1']);
  await pollUntil(async () => (await server.run('ss -ltn | grep -q :5201')).code === 0, 5000, 50);
  const r = await client.exec('iperf3', ['-c', serverIp, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 });
  srv.kill();
  if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

async function base(): Promise<number> {
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  try {
    const nodes: SleeveNode[] = [];
    for (let i = 1; i <= 2; i++) {
      const n = await plugNode(bed.host(i), i, CONTAINER_MTU);
      await mustExec('ip', ['-n', n.host.namespace, 'link', 'set', 'eth0', 'master', 'weave']);
      nodes.push(n);
    }
    if (!(await waitForPing(nodes[0]!.container, nodes[1]!.ip))) throw new Error('base: no connectivity');
    return await iperf(nodes[0]!.container, nodes[1]!.container, nodes[1]!.ip);
  } finally {
    await bed.teardown();
  }
}

async function sleeve(encrypt: boolean): Promise<{ gbps: number; cpu: number }> {
  let bed: Testbed | undefined;
  const nodes: SleeveNode[] = [];
  try {
    bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
    for (let i = 1; i <= 2; i++) nodes.push(await plugNode(bed.host(i), i, CONTAINER_MTU));
    for (const n of nodes) await startSleeve(n, CONTAINER_MTU);
    const [a, b] = nodes as [SleeveNode, SleeveNode];
    const link = connectNodes(a, b, encrypt);
    applyTopology(nodes, [[a, b]]);
    await link.established;
    if (!(await waitForPing(a.container, b.ip))) throw new Error('sleeve: no connectivity');
    await new Promise((r) => setTimeout(r, 600));
    const cpu0 = nodes.reduce((s, n) => s + (n.dp!.workerStats()?.cpuMicros ?? 0), 0);
    const t0 = Date.now();
    const gbps = await iperf(a.container, b.container, b.ip);
    const elapsed = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 600));
    const cpu1 = nodes.reduce((s, n) => s + (n.dp!.workerStats()?.cpuMicros ?? 0), 0);
    const drops = nodes.map((n) => JSON.stringify(n.dp!.workerStats()?.drops ?? {}));
    console.log(`  drops: ${drops.join(' | ')}`);
    return { gbps, cpu: (cpu1 - cpu0) / 1e6 / elapsed };
  } finally {
    for (const n of nodes) await n.dp?.teardown();
    await bed?.teardown();
  }
}

const a = await base();
console.log(`(a) base     ${a.toFixed(2)} Gbit/s`);
const b = await sleeve(false);
console.log(`(b) sleeve   ${b.gbps.toFixed(2)} Gbit/s  ratio ${(b.gbps / a).toFixed(3)}  worker CPU ${b.cpu.toFixed(2)} s/s`);
const c = await sleeve(true);
console.log(`(c) sleeve+e ${c.gbps.toFixed(2)} Gbit/s  ratio ${(c.gbps / a).toFixed(3)}  worker CPU ${c.cpu.toFixed(2)} s/s`);
process.exit(0);
