// Sleeve benchmark between containers on two simulated hosts (MTU 1376), for
//   base     : container veth and the underlay veth in one Linux bridge per host (no overlay)
//   sleeve   : the sleeve datapath (dataplane/sleeve), UDP 6783
//   sleeve+e : the sleeve datapath with encryption
// Each mode is measured on a fresh testbed; modes are interleaved run by run
// (the machine is shared) and the medians over the runs are reported:
//   TCP      iperf3 bulk TCP, Gbit/s (and retransmits)
//   RTT      ping, average of 20 echoes, ms
//   UDP pps  iperf3 -u with 64-byte payloads at full speed, packets/s received
//   CPU      the sleeve workers' CPU during the TCP test (CPU-s/s, both hosts summed)
//   RSS      the process holding both hosts' datapaths, MiB, after the run
//
//   node dist/bench/sleeve-bench.js [seconds=5] [runs=3] [modes=base,sleeve,sleeve+e]
// SLEEVE_BENCH_INTERVALS=1 also prints iperf3's per-second TCP rates.
// Root needed; everything lives in namespaces the bench creates and removes.
import { createTestbed, mustExec, runIperfClient, startIperfServer, waitForPing, type Container, type Testbed } from '../test/netns/lib/index.js';
import { applyTopology, connectNodes, plugNode, startSleeve, stopSleeve, type SleeveNode } from '../test/netns/sleeve-harness.js';

const CONTAINER_MTU = 1376;
const seconds = Number(process.argv[2] ?? 5);
const runs = Number(process.argv[3] ?? 3);
type Mode = 'base' | 'sleeve' | 'sleeve+e';
const modes = (process.argv[4] ?? 'base,sleeve,sleeve+e').split(',') as Mode[];
for (const m of modes) if (!['base', 'sleeve', 'sleeve+e'].includes(m)) throw new Error(`sleeve-bench: unknown mode "${m}" (use base, sleeve, sleeve+e)`);

interface Sample {
  gbps: number;
  retransmits: number;
  rttMs: number;
  pps: number;
  cpu?: number;
  rssMiB?: number;
  drops?: string;
}

async function serve<T>(server: Container, fn: () => Promise<T>): Promise<T> {
  const srv = await startIperfServer(server);
  try {
    return await fn();
  } finally {
    await srv.stop();
  }
}

async function iperfTcp(client: Container, server: Container, serverIp: string): Promise<{ gbps: number; retransmits: number }> {
  return serve(server, async () => {
    const r = await runIperfClient(client, ['-c', serverIp, '-t', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
    if (process.env.SLEEVE_BENCH_INTERVALS) console.log(`  intervals: ${(r.json.intervals ?? []).map((x) => ((x.sum?.bits_per_second ?? 0) / 1e9).toFixed(2)).join(' ')}`);
    return { gbps: r.receivedBitsPerSecond / 1e9, retransmits: r.sent.retransmits ?? 0 };
  });
}

/** Small-packet rate: 64-byte UDP payloads sent as fast as iperf3 can, packets/s that arrived. */
async function iperfUdpPps(client: Container, server: Container, serverIp: string): Promise<number> {
  const t = Math.max(2, Math.min(seconds, 5));
  return serve(server, async () => {
    const r = await runIperfClient(client, ['-c', serverIp, '-u', '-l', '64', '-b', '0', '-t', String(t)], { timeoutMs: (t + 30) * 1000 });
    const s = r.json.end?.sum;
    if (s?.packets === undefined || s.lost_packets === undefined || !s.seconds) throw new Error(`iperf3 UDP: no packet counts in the report: ${JSON.stringify(r.json.end).slice(0, 400)}`);
    return (s.packets - s.lost_packets) / s.seconds;
  });
}

async function pingRtt(client: Container, ip: string): Promise<number> {
  const r = await client.exec('ping', ['-q', '-c', '20', '-i', '0.05', ip], { timeoutMs: 20_000 });
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!m) throw new Error(`ping failed: ${r.stdout} ${r.stderr}`);
  return Number(m[1]);
}

async function measure(nodes: SleeveNode[]): Promise<Sample> {
  const [a, b] = nodes as [SleeveNode, SleeveNode];
  const cpuNow = (): number => nodes.reduce((s, n) => s + (n.dp?.workerStats()?.cpuMicros ?? 0), 0);
  const rttMs = await pingRtt(a.container, b.ip);
  await new Promise((r) => setTimeout(r, 600)); // stats arrive every 500 ms
  const cpu0 = cpuNow();
  const t0 = Date.now();
  const tcp = await iperfTcp(a.container, b.container, b.ip);
  const elapsed = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 600));
  const cpu1 = cpuNow();
  const pps = await iperfUdpPps(a.container, b.container, b.ip);
  const sample: Sample = { ...tcp, rttMs, pps };
  if (a.dp) {
    sample.cpu = (cpu1 - cpu0) / 1e6 / elapsed;
    sample.rssMiB = process.memoryUsage().rss / 2 ** 20;
    sample.drops = nodes.map((n) => JSON.stringify(n.dp!.workerStats()?.drops ?? {})).join(' | ');
  }
  return sample;
}

async function base(): Promise<Sample> {
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  try {
    const nodes: SleeveNode[] = [];
    for (let i = 1; i <= 2; i++) {
      const n = await plugNode(bed.host(i), i, CONTAINER_MTU);
      await mustExec('ip', ['-n', n.host.namespace, 'link', 'set', 'eth0', 'master', 'weave']);
      nodes.push(n);
    }
    if (!(await waitForPing(nodes[0]!.container, nodes[1]!.ip))) throw new Error('base: no connectivity');
    return await measure(nodes);
  } finally {
    await bed.teardown();
  }
}

async function sleeve(encrypt: boolean): Promise<Sample> {
  let bed: Testbed | undefined;
  const nodes: SleeveNode[] = [];
  try {
    bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
    for (let i = 1; i <= 2; i++) nodes.push(await plugNode(bed.host(i), i, CONTAINER_MTU));
    for (const n of nodes) await startSleeve(n, CONTAINER_MTU);
    const [a, b] = nodes as [SleeveNode, SleeveNode];
    const link = connectNodes(a, b, encrypt);
    applyTopology(nodes, [[a, b]]);
    const stuck = (what: string): string => `sleeve: ${what}; worker stats ${nodes.map((n) => JSON.stringify(n.dp!.workerStats())).join(' | ')}`;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([link.established, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(stuck('forwarders not established in 20 s'))), 20_000); })]);
    clearTimeout(timer);
    if (!(await waitForPing(a.container, b.ip))) throw new Error(stuck('no connectivity'));
    return await measure(nodes);
  } finally {
    for (const n of nodes) await stopSleeve(n);
    await bed?.teardown();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function line(label: string, s: Sample): string {
  let out = `${label.padEnd(9)} TCP ${s.gbps.toFixed(2)} Gbit/s (retr ${s.retransmits})  RTT ${s.rttMs.toFixed(3)} ms  UDP ${Math.round(s.pps)} pps`;
  if (s.cpu !== undefined) out += `  CPU ${s.cpu.toFixed(2)} s/s  RSS ${s.rssMiB!.toFixed(0)} MiB`;
  return out;
}

const samples = new Map<Mode, Sample[]>(modes.map((m) => [m, []]));
for (let r = 1; r <= runs; r++) {
  for (const m of modes) {
    const s = m === 'base' ? await base() : await sleeve(m === 'sleeve+e');
    samples.get(m)!.push(s);
    console.log(`run ${r} ${line(m, s)}`);
    if (s.drops) console.log(`          drops: ${s.drops}`);
  }
}

console.log(`\nmedians of ${runs} run(s), ${seconds} s each:`);
const med = new Map<Mode, Sample>();
for (const m of modes) {
  const xs = samples.get(m)!;
  const pick = (f: (s: Sample) => number | undefined): number => median(xs.map((s) => f(s) ?? 0));
  const s: Sample = { gbps: pick((x) => x.gbps), retransmits: pick((x) => x.retransmits), rttMs: pick((x) => x.rttMs), pps: pick((x) => x.pps) };
  if (m !== 'base') {
    s.cpu = pick((x) => x.cpu);
    s.rssMiB = pick((x) => x.rssMiB);
  }
  med.set(m, s);
  console.log(line(m, s));
}
const b = med.get('base');
if (b) {
  for (const m of modes.filter((x) => x !== 'base')) {
    const s = med.get(m)!;
    console.log(`${m.padEnd(9)} vs base: TCP ${(s.gbps / b.gbps).toFixed(3)}x  RTT ${(s.rttMs / b.rttMs).toFixed(2)}x  UDP pps ${(s.pps / b.pps).toFixed(3)}x`);
  }
}
process.exit(0);
