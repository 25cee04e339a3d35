// weaveDNS local answers, measured against this process's DnsServers from a
// second process (so the client does not share the server's event loop), once
// over each UDP transport (node:dgram, and recvmmsg/sendmmsg batches as the
// router uses for IPv4), alternating in every round:
//   throughput  queries/s and p99 latency with 100 queries outstanding over 100 names
//               (dnsperf, as the issue measured Weave 2.8), for the hot path (plain
//               queries) and, in the same run, the general dns-packet path (queries
//               carrying an EDNS cookie option, which only that path answers)
//   cpu         the server process's CPU (utime+stime from /proc/self/stat) while
//               answering a fixed 1000 queries/s
// Each figure is the median of `rounds` rounds. dnsperf's per-query lines go to a
// file read after it exits, so parsing them costs the server nothing, and its own
// CPU is printed beside the server's: on 2 cores the two share the machine.
// Without dnsperf (Debian package `dnsperf`) a Node client measures throughput only.
// DNS_BENCH_BASELINE=<another build's dist directory> also runs that build's
// batched transport in the same rounds (before/after under the same load).
//
//   node dist/bench/dns-bench.js [rounds=3] [seconds=5]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DnsServer, Nameserver } from '../controlplane/dns/index.js';
import { openNodeDatagramTransport, type OpenDatagramTransport } from '../controlplane/dns/datagram-transport.js';
import { openBatchedUdpTransport } from '../dataplane/sys/batched-udp.js';

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 5);
const NAMES = 100;
const INFLIGHT = 100;
const CPU_QPS = 1000;
/** An EDNS COOKIE option (RFC 7873): the hot path leaves such queries to the dns-packet path. */
const COOKIE_OPTION = '10:0102030405060708';

const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
for (let i = 0; i < NAMES; i++) ns.add(`svc${i}.weave.local.`, `c${i}`, (10 << 24) | (32 << 16) | (i + 1));
const TRANSPORTS: [string, OpenDatagramTransport][] = [['node:dgram', openNodeDatagramTransport], ['recvmmsg/sendmmsg', openBatchedUdpTransport]];
const BASELINE = process.env.DNS_BENCH_BASELINE;
if (BASELINE) {
  const baseline = await import(pathToFileURL(resolvePath(BASELINE, 'dataplane/sys/batched-udp.js')).href) as { openBatchedUdpTransport: OpenDatagramTransport };
  TRANSPORTS.push(['baseline recvmmsg/sendmmsg', baseline.openBatchedUdpTransport]);
}
const servers = TRANSPORTS.map(([, openUdp]) => new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', openUdp }));
for (const server of servers) await server.start();
const dir = mkdtempSync(join(tmpdir(), 'dns-bench-'));
const queries = join(dir, 'queries');
writeFileSync(queries, Array.from({ length: NAMES }, (_, i) => `svc${i}.weave.local A\n`).join(''));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** cpuUsPerQuery: the server's CPU time per query answered, which depends less on the machine's load than queries/s. */
interface Run { qps: number; p99Us: number; cpuPercent: number; cpuUsPerQuery: number; clientCpuPercent: number }

/** CPU seconds this process has used (utime + stime, /proc/self/stat fields 14 and 15). */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/**
 * One dnsperf run; -v lists every query's latency, from which p99 is taken.
 * The shell's `times` prints dnsperf's own user and system CPU after it exits.
 */
async function dnsperf(port: number, extra: string[]): Promise<Run> {
  const out = join(dir, 'dnsperf.out');
  const fd = openSync(out, 'w');
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-v', ...extra];
  const child = spawn('sh', ['-c', 'dnsperf "$@"; times', 'sh', ...args], { stdio: ['ignore', fd, 'ignore'] });
  const cpu0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds() - cpu0;
  const cpuPercent = 100 * cpu / wall;
  closeSync(fd);
  const latencies: number[] = [];
  let qps = 0;
  let completed = 0;
  const lines = readFileSync(out, 'utf8').split('\n');
  for (const line of lines) {
    if (line.startsWith('> ')) latencies.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
    else if (line.includes('Queries per second:')) qps = Number(line.split(':')[1]);
    else if (line.includes('Queries completed:')) completed = Number(line.split(':')[1]!.trim().split(' ')[0]);
  }
  // `times`' last line: the children's user and system time, as 0m1.234s 0m0.567s.
  const childTimes = [...(lines.filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l)).at(-1) ?? '').matchAll(/(\d+)m([\d.]+)s/g)]
    .reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
  latencies.sort((a, b) => a - b);
  return {
    qps, p99Us: (latencies[Math.floor(latencies.length * 0.99)] ?? NaN) * 1e6, cpuPercent,
    cpuUsPerQuery: 1e6 * cpu / completed, clientCpuPercent: 100 * childTimes / wall,
  };
}

/** Without dnsperf: a Node client keeping INFLIGHT queries outstanding for `seconds`. */
async function nodeClient(port: number): Promise<Run> {
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
  return { qps: r.qps, p99Us: r.p99, cpuPercent: NaN, cpuUsPerQuery: NaN, clientCpuPercent: NaN };
}

function report(label: string, runs: Run[], what: 'throughput' | 'cpu'): void {
  // The Node client (no dnsperf) measures no CPU: say so rather than print NaN.
  const measuredCpu = runs.every((r) => Number.isFinite(r.cpuPercent));
  const cpu = measuredCpu
    ? `server CPU ${median(runs.map((r) => r.cpuPercent)).toFixed(1)} % (${median(runs.map((r) => r.cpuUsPerQuery)).toFixed(1)} µs/query)`
    : 'server CPU not measured without dnsperf';
  const clientCpu = measuredCpu ? `, dnsperf CPU ${median(runs.map((r) => r.clientCpuPercent)).toFixed(1)} %` : '';
  const figures = what === 'throughput'
    ? `${Math.round(median(runs.map((r) => r.qps)))} queries/s, p99 ${(median(runs.map((r) => r.p99Us)) / 1000).toFixed(2)} ms, ${cpu}${clientCpu}`
    : cpu;
  process.stdout.write(`dns ${label}: ${figures} (median of ${runs.length}; rounds ${runs.map((r) => Math.round(what === 'throughput' ? r.qps : r.cpuPercent)).join(' ')})\n`);
}

interface Runs { hot: Run[]; general: Run[]; cpu: Run[] }

try {
  process.stdout.write(`dns: ${NAMES} names, ${rounds} rounds of ${seconds} s, load average before ${loadavg()}\n`);
  const haveDnsperf = spawnSync('dnsperf', ['-h'], { stdio: 'ignore' }).error === undefined;
  const runs: Runs[] = TRANSPORTS.map(() => ({ hot: [], general: [], cpu: [] }));
  for (let i = 0; i < rounds; i++) {
    for (let t = 0; t < TRANSPORTS.length; t++) {
      const port = servers[t]!.address().port;
      const r = runs[t]!;
      if (!haveDnsperf) {
        r.hot.push(await nodeClient(port));
        continue;
      }
      r.hot.push(await dnsperf(port, ['-q', String(INFLIGHT)]));
      r.general.push(await dnsperf(port, ['-q', String(INFLIGHT), '-E', COOKIE_OPTION]));
      r.cpu.push(await dnsperf(port, ['-q', String(INFLIGHT), '-Q', String(CPU_QPS)]));
    }
    process.stdout.write(`dns: round ${i + 1} done, load average ${loadavg()}\n`);
  }
  TRANSPORTS.forEach(([name], t) => {
    const r = runs[t]!;
    report(`${name}, hot path, ${INFLIGHT} in flight`, r.hot, 'throughput');
    if (!haveDnsperf) return;
    report(`${name}, general path (EDNS option), ${INFLIGHT} in flight`, r.general, 'throughput');
    process.stdout.write(`dns ${name}: hot/general throughput ratio ${(median(r.hot.map((x) => x.qps)) / median(r.general.map((x) => x.qps))).toFixed(2)}\n`);
    report(`${name}, at ${CPU_QPS} queries/s`, r.cpu, 'cpu');
  });
  const ratio = (pick: (r: Run) => number, k: keyof Runs, of: number, to: number): string =>
    (median(runs[of]![k].map(pick)) / median(runs[to]![k].map(pick))).toFixed(2);
  const ratios = (label: string, of: number, to: number): void => {
    process.stdout.write(`dns: ${label} hot-path queries/s ${ratio((r) => r.qps, 'hot', of, to)}, p99 ${ratio((r) => r.p99Us, 'hot', of, to)}` +
      (haveDnsperf ? `, CPU per query ${ratio((r) => r.cpuUsPerQuery, 'hot', of, to)}, CPU at ${CPU_QPS} queries/s ${ratio((r) => r.cpuPercent, 'cpu', of, to)}` : '') + '\n');
  };
  ratios('batched/dgram', 1, 0);
  if (BASELINE) ratios('batched/baseline batched', 1, 2);
  if (!haveDnsperf) process.stdout.write('dns: dnsperf not installed (apt-get install dnsperf): no general-path or CPU figures\n');
  process.stdout.write(`dns: answered locally ${servers.map((s) => s.metrics.answeredLocally).join(' / ')}, load average after ${loadavg()}\n`);
} finally {
  for (const server of servers) await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
