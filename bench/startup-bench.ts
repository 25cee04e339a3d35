// Router startup and memory: two simulated hosts (network namespaces on a
// bridge underlay). h1's router runs throughout; each round starts a fresh
// router on h2 (new state directory) with h1 as its peer and measures
//   api          ms from exec until the control API answers HTTP (any status)
//   established  ms from exec until /report lists an established connection
//   phases       the router's own startup phases (logged at debug level, ms
//                since its process started: module loading is the first)
//   CPU          the new router's CPU once the connection is up and a few
//                seconds idle, the commands it ran included (nft, ip)
//   RSS          both routers' resident set (/proc/PID/status VmRSS) once the
//                connection is up and a few seconds idle; for the new router
//                also its parts: anonymous (heaps), file-backed (the node
//                binary's and libraries' pages) and its thread count
//   sleeve   after the rounds, both routers restarted with --no-fastdp, a
//            container attached on each host and iperf3 TCP between them for
//            SLEEVE_LOAD_S: both routers' peak RSS during the load
// Figures are medians over the rounds; the load average is printed with them.
// STARTUP_BENCH_BASELINE=<another build's dist/weaver/start.cjs, dist/router/weaver.cjs or dist/weaver/main.js> also runs that
// router in every round (alternating with this one), for before/after
// figures measured under the same load. STARTUP_BENCH_NODE_FLAGS="<flags>"
// adds Node/V8 flags to this build's router (not the baseline's): with the
// same build as baseline, an A/B of those flags. STARTUP_BENCH_DNS_NAMES=<n>
// starts each new router with n weaveDNS names of its own saved in its state
// directory (a restart after heavy churn: half are tombstones), to show what a
// large saved table costs the start.
//
//   node dist/bench/startup-bench.js [rounds=3] [router flags...]
// Root needed; everything lives in namespaces the bench creates and removes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, processCpuSeconds, runIperfClient, startIperfServer, type Container, type Host, type SpawnedProcess } from '../test/netns/lib/index.js';
import { WEAVER_NODE_FLAGS, weaverEnvironment } from '../controlplane/cli/daemon.js';
import { statePaths } from '../controlplane/cli/state-paths.js';
import { DNS_ENTRIES_FILE, serialiseDnsEntries } from '../controlplane/dns/persistence.js';
import { formatPeerName } from '../controlplane/mesh/wire/peer-name.js';

/** The router's entry point, as `weave launch` runs it. */
const WEAVER = fileURLToPath(new URL('../weaver/start.cjs', import.meta.url));
const POLLER = fileURLToPath(new URL('./startup-poller.js', import.meta.url));
const API = '127.0.0.1:6784';
const IDLE_BEFORE_RSS_MS = 3000;
const ROUND_TIMEOUT_S = 60;
const SLEEVE_LOAD_S = 5;
const RSS_SAMPLE_MS = 250;
const BASELINE = process.env.STARTUP_BENCH_BASELINE;
const NODE_FLAGS = (process.env.STARTUP_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
const DNS_NAMES = Number(process.env.STARTUP_BENCH_DNS_NAMES ?? 0);
let nextPeerName = 0x0e0000000000n;

/** A state directory as a router that registered `names` DNS names left it (peer name and saved names). */
function seedDnsNames(stateDir: string, names: number): void {
  mkdirSync(stateDir, { recursive: true });
  const name = nextPeerName++;
  writeFileSync(statePaths(stateDir).peerNameFile, `${formatPeerName(name)}\n`);
  const entries = Array.from({ length: names }, (_, i) => ({
    hostname: `name-${i}.weave.local.`, containerId: `${i.toString(16).padStart(64, '0')}`, origin: name,
    addr: 0x0a200000 + i, version: 1, tombstone: i % 2 === 0 ? 0 : Math.floor(Date.now() / 1000) - 60,
  }));
  writeFileSync(join(stateDir, DNS_ENTRIES_FILE), serialiseDnsEntries(name, entries));
}

const rounds = Number(process.argv[2] ?? 3);
const extraFlags = process.argv.slice(3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** A /proc/PID/status field (kB fields in MiB). */
function statusField(pid: number, field: 'VmRSS' | 'RssAnon' | 'RssFile' | 'Threads'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`startup-bench: no ${field} for ${pid} (did the router exit?)`);
  return field === 'Threads' ? Number(m[1]) : Number(m[1]) / 1024;
}

const rssMiB = (pid: number): number => statusField(pid, 'VmRSS');

function startRouter(h: Host, stateDir: string, peers: string[], weaver = WEAVER, flags = extraFlags, nodeFlags: readonly string[] = []): SpawnedProcess {
  mkdirSync(stateDir, { recursive: true });
  // As `weave launch` runs it: its Node flags and environment (two malloc arenas, no extra CA bundle).
  const routerArgs = ['--state-dir', stateDir, '--http-addr', API, '--nickname', h.label, '--log-level', 'debug', ...flags, ...peers];
  return h.spawn(process.execPath, [...WEAVER_NODE_FLAGS, ...nodeFlags, weaver, ...routerArgs], { env: weaverEnvironment({}, routerArgs) });
}

async function stopRouter(router: SpawnedProcess): Promise<void> {
  router.kill('SIGTERM');
  await Promise.race([router.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
}

interface Figures {
  api: number[];
  established: number[];
  /** Per startup phase: ms after process start, and the process's CPU ms by then. */
  phases: Map<string, number[]>;
  phaseCpu: Map<string, number[]>;
  /** CPU ms, commands included, once started, connected and idle. */
  cpu: number[];
  rss: number[];
  rssAnon: number[];
  rssFile: number[];
  threads: number[];
}

const newFigures = (): Figures => ({ api: [], established: [], phases: new Map(), phaseCpu: new Map(), cpu: [], rss: [], rssAnon: [], rssFile: [], threads: [] });

/** One round: a fresh router on h2 (`weaver`), timed from exec to API and to an established connection. */
async function round(h1: Host, h2: Host, stateDir: string, weaver: string, nodeFlags: readonly string[], into: Figures): Promise<void> {
  if (DNS_NAMES > 0) seedDnsNames(stateDir, DNS_NAMES);
  const poller = await startPoller(h2);
  const t0 = Date.now();
  const router = startRouter(h2, stateDir, [h1.address], weaver, extraFlags, nodeFlags);
  try {
    const polled = await poller.exited;
    if (polled !== 0) throw new Error(`startup-bench: round timed out (${polled}):\n${router.output().split('\n').slice(-15).join('\n')}`);
    const at = (what: string): number => Number(/(\S+) (\d+)/.exec(poller.output().split('\n').find((l) => l.startsWith(what))!)![2]!) - t0;
    into.api.push(at('api'));
    into.established.push(at('established'));
    for (const [phase, at] of phasesOf(router.output())) {
      into.phases.set(phase, [...(into.phases.get(phase) ?? []), at.ms]);
      into.phaseCpu.set(phase, [...(into.phaseCpu.get(phase) ?? []), at.cpuMs]);
    }
    await new Promise((r) => setTimeout(r, IDLE_BEFORE_RSS_MS));
    into.cpu.push(processCpuSeconds(router.pid, true) * 1000);
    into.rss.push(rssMiB(router.pid));
    into.rssAnon.push(statusField(router.pid, 'RssAnon'));
    into.rssFile.push(statusField(router.pid, 'RssFile'));
    into.threads.push(statusField(router.pid, 'Threads'));
  } finally {
    await stopRouter(router);
  }
}

function printFigures(label: string, f: Figures): void {
  process.stdout.write(`startup: ${label}: exec -> API answers: ${median(f.api)} ms; exec -> connection established: ${median(f.established)} ms; CPU with commands, idle after ${IDLE_BEFORE_RSS_MS} ms: ${median(f.cpu).toFixed(0)} ms; idle RSS ${median(f.rss).toFixed(1)} MiB `
    + `(anonymous ${median(f.rssAnon).toFixed(1)}, file-backed ${median(f.rssFile).toFixed(1)}; ${median(f.threads)} threads) (medians of ${f.api.length})\n`);
  for (const [phase, ms] of [...f.phases].sort((a, b) => median(a[1]) - median(b[1]))) {
    process.stdout.write(`startup:   ${label} phase ${phase}: ${median(ms).toFixed(0)} ms after process start, ${median(f.phaseCpu.get(phase)!).toFixed(0)} ms CPU\n`);
  }
}

/** Attaches a container on `h` through its router's API (10.32.0.<index>/12). */
async function attach(h: Host): Promise<Container> {
  const c = await h.addContainer('load');
  const r = await h.run(`curl -sf -X POST 'http://${API}/weave/attach?netns=${c.netnsPath}&cidr=10.32.0.${h.index}/12'`);
  if (r.code !== 0) throw new Error(`startup-bench: attach on ${h.label} failed: ${r.stdout}${r.stderr}`);
  return c;
}

/** Both routers on the sleeve alone, iperf3 TCP between containers: peak RSS of each router while it runs. */
async function sleeveLoad(h1: Host, h2: Host): Promise<void> {
  const flags = [...extraFlags, '--no-fastdp'];
  const r1 = startRouter(h1, join(h1.dir, 'state-sleeve'), [], WEAVER, flags, NODE_FLAGS);
  const r2 = startRouter(h2, join(h2.dir, 'state-sleeve'), [h1.address], WEAVER, flags, NODE_FLAGS);
  try {
    const polled = await (await startPoller(h2)).exited;
    if (polled !== 0) throw new Error(`startup-bench: sleeve routers did not connect (${polled}):\n${r2.output().split('\n').slice(-15).join('\n')}`);
    const idle = [rssMiB(r1.pid), rssMiB(r2.pid)];
    const [c1, c2] = [await attach(h1), await attach(h2)];
    const server = await startIperfServer(c2);
    const peak = [0, 0];
    const sampler = setInterval(() => {
      peak[0] = Math.max(peak[0]!, rssMiB(r1.pid));
      peak[1] = Math.max(peak[1]!, rssMiB(r2.pid));
    }, RSS_SAMPLE_MS);
    try {
      const res = await runIperfClient(c1, ['-c', `10.32.0.${h2.index}`, '-t', String(SLEEVE_LOAD_S)]);
      process.stdout.write(`startup: sleeve load (--no-fastdp, iperf3 TCP ${SLEEVE_LOAD_S} s, ${(res.receivedBitsPerSecond / 1e9).toFixed(2)} Gbit/s): `
        + `RSS h1 ${idle[0]!.toFixed(1)} -> peak ${peak[0]!.toFixed(1)} MiB, h2 ${idle[1]!.toFixed(1)} -> peak ${peak[1]!.toFixed(1)} MiB\n`);
    } finally {
      clearInterval(sampler);
      await server.stop();
    }
  } finally {
    await Promise.all([stopRouter(r2), stopRouter(r1)]);
  }
}

/** The poller (startup-poller.ts) in the host's namespace, once it runs: its own start is not timed. */
async function startPoller(h: Host): Promise<SpawnedProcess> {
  const poller = h.spawn(process.execPath, [POLLER, API, String(ROUND_TIMEOUT_S)]);
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => {
      if (!poller.output().includes('polling\n')) return;
      poller.child.stdout?.off('data', onData);
      resolve();
    };
    poller.child.stdout?.on('data', onData);
    void poller.exited.then((code) => reject(new Error(`startup-bench: the poller exited (${code}) before polling: ${poller.output()}`)));
  });
  return poller;
}

/** `startup: <phase> at <ms> ms, cpu <ms> ms` lines the router logs at debug level. */
function phasesOf(output: string): Map<string, { ms: number; cpuMs: number }> {
  const phases = new Map<string, { ms: number; cpuMs: number }>();
  for (const line of output.split('\n')) {
    const m = /"msg":"startup: (.+?) at (\d+) ms, cpu (\d+) ms"/.exec(line);
    if (m) phases.set(m[1]!, { ms: Number(m[2]), cpuMs: Number(m[3]) });
  }
  return phases;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('startup-bench: needs root (it creates network namespaces)\n');
    process.exit(1);
  }
  process.stdout.write(`startup: ${rounds} rounds, load average before ${loadavg()}${NODE_FLAGS.length > 0 ? `; new build with ${NODE_FLAGS.join(' ')}` : ''}`
    + `${DNS_NAMES > 0 ? `; each router starts with ${DNS_NAMES} saved DNS names` : ''}\n`);
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const [h1, h2] = [bed.host(1), bed.host(2)];
  const anchor = startRouter(h1, join(h1.dir, 'state'), []);
  const ours = newFigures();
  const baseline = newFigures();
  const rss1: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Alternate which build goes first, so neither always meets the machine in the same state.
      const order: [string, string, readonly string[], Figures][] = [['new', WEAVER, NODE_FLAGS, ours]];
      if (BASELINE) order.splice(i % 2, 0, ['baseline', BASELINE, [], baseline]);
      for (const [label, weaver, nodeFlags, into] of order) {
        await round(h1, h2, join(h2.dir, `state-${label}-${i}`), weaver, nodeFlags, into);
        rss1.push(rssMiB(anchor.pid));
        process.stdout.write(`startup: round ${i + 1} ${label}: api ${into.api.at(-1)} ms, established ${into.established.at(-1)} ms, RSS h1 ${rss1.at(-1)!.toFixed(1)} MiB, h2 ${into.rss.at(-1)!.toFixed(1)} MiB; load ${loadavg()}\n`);
      }
    }
    await stopRouter(anchor);
    await sleeveLoad(h1, h2);
  } finally {
    await stopRouter(anchor);
    await bed.teardown();
  }
  printFigures('new', ours);
  if (BASELINE) {
    printFigures('baseline', baseline);
    process.stdout.write(`startup: new / baseline: API ${(median(ours.api) / median(baseline.api)).toFixed(2)}, established ${(median(ours.established) / median(baseline.established)).toFixed(2)}, CPU ${(median(ours.cpu) / median(baseline.cpu)).toFixed(2)}, idle RSS ${(median(ours.rss) / median(baseline.rss)).toFixed(2)}\n`);
  }
  process.stdout.write(`startup: idle RSS of the running router (h1) ${median(rss1).toFixed(1)} MiB; load average after ${loadavg()}\n`);
}

await main();
