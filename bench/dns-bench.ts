// weaveDNS local answers, measured against this process's DnsServer from a
// second process (so the client does not share the server's event loop):
//   throughput  queries/s and p99 latency with 100 queries outstanding over 100 names
//               (dnsperf, as the issue measured Weave 2.8), for the hot path (plain
//               queries) and, in the same run, the general dns-packet path (queries
//               carrying an EDNS cookie option, which only that path answers)
//   cpu         the server process's CPU (utime+stime from /proc/self/stat) while
//               answering a fixed 1000 queries/s
// Each figure is the median of `rounds` rounds. Without dnsperf (Debian package
// `dnsperf`) a Node client measures throughput only.
//
//   node dist/bench/dns-bench.js [rounds=3] [seconds=5]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsServer, Nameserver } from '../controlplane/dns/index.js';

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 5);
const NAMES = 100;
const INFLIGHT = 100;
const CPU_QPS = 1000;
/** An EDNS COOKIE option (RFC 7873): the hot path leaves such queries to the dns-packet path. */
const COOKIE_OPTION = '10:0102030405060708';

const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
for (let i = 0; i < NAMES; i++) ns.add(`svc${i}.weave.local.`, `c${i}`, (10 << 24) | (32 << 16) | (i + 1));
const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0' });
await server.start();
const { port } = server.address();
const dir = mkdtempSync(join(tmpdir(), 'dns-bench-'));
const queries = join(dir, 'queries');
writeFileSync(queries, Array.from({ length: NAMES }, (_, i) => `svc${i}.weave.local A\n`).join(''));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Run { qps: number; p99Us: number; cpuPercent: number }

/** CPU seconds this process has used (utime + stime, /proc/self/stat fields 14 and 15). */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** One dnsperf run; -v lists every query's latency, from which p99 is taken. */
async function dnsperf(extra: string[]): Promise<Run> {
  const child = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-v', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const latencies: number[] = [];
  let qps = 0;
  let pending = '';
  const cpu0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('> ')) latencies.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
      else if (line.includes('Queries per second:')) qps = Number(line.split(':')[1]);
    }
  });
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const cpuPercent = 100 * (cpuSeconds() - cpu0) / (Number(process.hrtime.bigint() - t0) / 1e9);
  latencies.sort((a, b) => a - b);
  return { qps, p99Us: (latencies[Math.floor(latencies.length * 0.99)] ?? NaN) * 1e6, cpuPercent };
}

/** Without dnsperf: a Node client keeping INFLIGHT queries outstanding for `seconds`. */
async function nodeClient(): Promise<Run> {
  const client = `
const dgram = require('node:dgram'); const pkt = require('dns-packet');
const [port, ms, inflight, names] = process.argv.slice(1).map(Number);
const sock = dgram.createSocket('udp4'); const sent = new Map(); const lat = []; let next = 0;
const start = process.hrtime.bigint(); const end = start + BigInt(ms) * 1000000n;
const send = () => { if (process.hrtime.bigint() > end) return finish(); const id = next++ & 0xffff;
  sent.set(id, process.hrtime.bigint());
  sock.send(pkt.encode({ type: 'query', id, questions: [{ type: 'A', name: 'svc' + (next % names) + '.weave.local' }] }), port, '127.0.0.1'); };
let done = false; const finish = () => { if (done) return; done = true; const s = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b); console.log(JSON.stringify({ qps: Math.round(lat.length / s), p99: lat[Math.floor(lat.length * 0.99)] })); sock.close(); };
sock.on('message', (m) => { const t = sent.get(m.readUInt16BE(0)); if (t === undefined) return; sent.delete(m.readUInt16BE(0));
  lat.push(Number(process.hrtime.bigint() - t) / 1000); send(); });
for (let i = 0; i < inflight; i++) send();`;
  const child = spawn(process.execPath, ['-e', client, String(port), String(seconds * 1000), String(INFLIGHT), String(NAMES)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const r = JSON.parse(out) as { qps: number; p99: number };
  return { qps: r.qps, p99Us: r.p99, cpuPercent: NaN };
}

function report(label: string, runs: Run[], what: 'throughput' | 'cpu'): void {
  const figures = what === 'throughput'
    ? `${Math.round(median(runs.map((r) => r.qps)))} queries/s, p99 ${(median(runs.map((r) => r.p99Us)) / 1000).toFixed(2)} ms`
    : `server CPU ${median(runs.map((r) => r.cpuPercent)).toFixed(1)} %`;
  process.stdout.write(`dns ${label}: ${figures} (median of ${runs.length}; rounds ${runs.map((r) => Math.round(what === 'throughput' ? r.qps : r.cpuPercent)).join(' ')})\n`);
}

try {
  process.stdout.write(`dns: ${NAMES} names, ${rounds} rounds of ${seconds} s, load average before ${loadavg()}\n`);
  const haveDnsperf = spawnSync('dnsperf', ['-h'], { stdio: 'ignore' }).error === undefined;
  const hot: Run[] = [];
  const general: Run[] = [];
  const cpu: Run[] = [];
  for (let i = 0; i < rounds; i++) {
    if (!haveDnsperf) {
      hot.push(await nodeClient());
      continue;
    }
    hot.push(await dnsperf(['-q', String(INFLIGHT)]));
    general.push(await dnsperf(['-q', String(INFLIGHT), '-E', COOKIE_OPTION]));
    cpu.push(await dnsperf(['-q', String(INFLIGHT), '-Q', String(CPU_QPS)]));
  }
  report(`hot path, ${INFLIGHT} in flight`, hot, 'throughput');
  if (haveDnsperf) {
    report(`general path (EDNS option), ${INFLIGHT} in flight`, general, 'throughput');
    process.stdout.write(`dns: hot/general throughput ratio ${(median(hot.map((r) => r.qps)) / median(general.map((r) => r.qps))).toFixed(2)}\n`);
    report(`at ${CPU_QPS} queries/s`, cpu, 'cpu');
  } else {
    process.stdout.write('dns: dnsperf not installed (apt-get install dnsperf): no general-path or CPU figures\n');
  }
  process.stdout.write(`dns: answered locally ${server.metrics.answeredLocally}, load average after ${loadavg()}\n`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
