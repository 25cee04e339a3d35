// Mesh convergence benchmark: N routers (weaver processes, one per simulated
// host, each in its own network namespace on a shared underlay bridge) start
// together. With --peers=random (default) each is given 1-2 random other
// routers as peers (the first is always an earlier router, so the peer graph
// is connected); with --peers=first every router is given router 1 only.
// Measured per N:
//   ready      ms from spawning the routers until every control API answers
//   listed     ms from spawning until every router lists all N peers
//   connected  ms from spawning until every router has an established
//              connection to each of the N-1 others (peer discovery, spec §4.10)
//              (only with --peers=first; random starts report the mean instead)
//   CPU s      user+system seconds of all routers together (and the commands they ran), from /proc/PID/stat,
//              when the last measure was taken; "at ready" when all APIs answered
//              (start-up), so the difference is what forming the mesh cost;
//              then router 1's alone and the median of the others'
//   RSS        each router's resident set from /proc/PID/status: min/median/max MiB
//   idle CPU   with --steady=S (needs --peers=first): after every connection is up, the
//              routers' CPU over S seconds of a formed, idle mesh, as % of one core per
//              router (median, max): the heartbeat and gossip floor that grows with N
//   sleeve MTU with --sleeve, at the end: how many connections' path MTU is the highest
//              any has, and the lowest (all should be equal on this underlay)
//   slowest report answer  while waiting for each of ready, listed and connected: a measure is
//              taken when a router's answer arrives, so it is that much coarser. With 50 routers on
//              two cores their event loops are busy for seconds at a time, and answers take 3-16 s
// --node-flag=FLAG (repeatable) adds a Node/V8 flag to every router after the launch flags, which it
// overrides: an A/B of the router's heap settings, for instance.
// --poll=each polls every router on its own (a poll, the pause, the next poll) instead of in passes:
// in a pass every waiting router is asked at once and the next pass starts after the slowest answer,
// so one router busy forming the mesh delays when the others are seen to be done (the default, the
// way the Weave 2.8 figures were taken, whose routers answer at once).
// --poll-ms=MS sets the pause between polling passes (default 200 ms). Each poll asks for two
// fields through the report template; --full-report polls the whole JSON report instead, as the
// bench did before, to measure what that polling costs the routers.
//
//   node dist/bench/mesh-convergence.js [--peers=random|first] [--sleeve] [--weaver=PATH] [--profile=DIR [--profile-routers=1,N]] [--logs=DIR] [--timeout=S] [--steady=S] [--poll=passes|each] [--poll-ms=MS] [--full-report] [--node-flag=FLAG ...] [N ...]
//   (default sizes: 10 25 50)
// Routers run as `weave launch` runs them (its Node flags and environment), with the
// fast datapath unless --sleeve (each router --no-fastdp: the sleeve only, as Weave
// runs on a host without Open vSwitch, which is how its figures were taken).
// --weaver runs another build's weaver/start.cjs, router/weaver.cjs or weaver/main.js (e.g. main's), to compare two builds on the same machine;
// --profile=DIR has every router (or only the routers numbered in --profile-routers, e.g. the hub 1 and a
// leaf) write a V8 CPU profile into DIR when it stops: profiling all of them distorts a run on few cores.
// --logs=DIR runs the routers at debug level and writes each one's log to DIR/N-router-I.log (pino JSON
// with epoch-ms times; t0 of the run is printed), for timelines: startup phases, dials, connections,
// the peer count growing.
// Root needed; everything lives in namespaces the bench creates and removes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, pollUntil, processCpuSeconds, processCpuTimes, type Host, type SpawnedProcess, type Testbed } from '../test/netns/lib/index.js';
import { httpGetInNetns } from '../test/netns/lib/netns-http.js';
import { WEAVER_NODE_FLAGS, weaverEnvironment } from '../controlplane/cli/daemon.js';

/** The router's entry point, as `weave launch` runs it. */
const DEFAULT_WEAVER = fileURLToPath(new URL('../weaver/start.cjs', import.meta.url));
const API_IP = '127.0.0.1';
const API_PORT = 6784;
const API = `${API_IP}:${API_PORT}`;
/** Per measure; --timeout=S raises it for a loaded machine. */
let timeoutMs = 180_000;

/** What the bench reads of a router's report. */
interface RouterReport {
  peers: number;
  connectionStates: string[];
}

/**
 * Weave's report template (`weave status` uses the same): the router renders a few bytes
 * instead of the whole report, ~300 KB of JSON at N=50, which each poll made every router
 * render and this process parse on the same cores the mesh forms on.
 */
const REPORT_FORMAT = '{{len .Router.Peers}}{{range .Router.Connections}} {{.State}}{{end}}';

type PeerChoice = 'random' | 'first';

interface Row {
  n: number;
  readyMs: number;
  listedMs: number;
  /** Undefined with random peers, where a full mesh is not awaited. */
  connectedMs: number | undefined;
  /** The slowest answer to a poll while waiting for each of the three (Awaited). */
  slowestAnswerMs: [number, number, number | undefined];
  meanConns: number;
  cpuAtReady: number;
  cpuSeconds: number;
  /** Of cpuSeconds, the part spent in the kernel (system time: sockets, netlink, the veths' softirqs run there). */
  systemSeconds: number;
  /** Router 1's (the hub with --peers=first) CPU seconds at the end, and the median of the others. */
  hubCpu: number;
  /** % of a core per router over the steady window: median, max; undefined without --steady. */
  idleCpuPercent: [number, number] | undefined;
  leafCpuMedian: number;
  rssMiB: number[];
  /** With --sleeve: every connection's overlay MTU (its `mtu` attribute), read once the measures were taken. */
  mtus: number[] | undefined;
}

const USAGE = 'usage: mesh-convergence.js [--peers=random|first] [--sleeve] [--weaver=PATH] [--profile=DIR [--profile-routers=1,N]] [--logs=DIR] [--timeout=S] [--steady=S] [--poll=passes|each] [--poll-ms=MS] [--full-report] [--node-flag=FLAG ...] [N ...]';

interface Options {
  peers: PeerChoice;
  weaver: string;
  /** Node flags for the profiled routers (CPU profiling). */
  nodeArgs: string[];
  /** Router numbers (1-based) that get nodeArgs; undefined = all. */
  profiled: ReadonlySet<number> | undefined;
  /** Seconds of a formed mesh over which the routers' idle CPU is measured; 0 = not measured. */
  steadySeconds: number;
  /** Directory for the routers' debug logs; undefined = routers log warnings only, kept in memory. */
  logs: string | undefined;
  /** Routers run with --no-fastdp. */
  sleeveOnly: boolean;
  /** Node/V8 flags for every router after the launch flags (which they override). */
  extraNodeFlags: string[];
}

function parseArgs(argv: string[]): Options & { sizes: number[] } {
  let peers: PeerChoice = 'random';
  let weaver = DEFAULT_WEAVER;
  const nodeArgs: string[] = [];
  let profiled: Set<number> | undefined;
  let logs: string | undefined;
  let sleeveOnly = false;
  let steadySeconds = 0;
  const extraNodeFlags: string[] = [];
  const rest: string[] = [];
  for (const a of argv) {
    if (a === '--peers=random' || a === '--peers=first') peers = a.slice('--peers='.length) as PeerChoice;
    else if (a === '--sleeve') sleeveOnly = true;
    else if (a === '--full-report') fullReport = true;
    else if (a.startsWith('--weaver=')) weaver = a.slice('--weaver='.length);
    else if (a.startsWith('--node-flag=') && a.length > '--node-flag='.length) extraNodeFlags.push(a.slice('--node-flag='.length));
    else if (a.startsWith('--profile=')) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${a.slice('--profile='.length)}`);
    else if (a.startsWith('--logs=') && a.length > '--logs='.length) logs = a.slice('--logs='.length);
    else if (a.startsWith('--timeout=') && Number(a.slice('--timeout='.length)) > 0) timeoutMs = Number(a.slice('--timeout='.length)) * 1000;
    else if (a === '--poll=each' || a === '--poll=passes') pollMode = a === '--poll=each' ? 'each' : 'passes';
    else if (a.startsWith('--poll-ms=') && Number(a.slice('--poll-ms='.length)) > 0) pollIntervalMs = Number(a.slice('--poll-ms='.length));
    else if (a.startsWith('--steady=') && Number(a.slice('--steady='.length)) > 0) steadySeconds = Number(a.slice('--steady='.length));
    else if (a.startsWith('--profile-routers=')) {
      profiled = new Set(a.slice('--profile-routers='.length).split(',').map(Number));
      if ([...profiled].some((i) => !Number.isInteger(i) || i < 1)) throw new Error(`mesh-convergence: bad "${a}" (${USAGE})`);
    } else if (a.startsWith('-')) throw new Error(`mesh-convergence: unknown option "${a}" (${USAGE})`);
    else rest.push(a);
  }
  const sizes = rest.length === 0 ? [10, 25, 50] : rest.map(Number);
  for (const [i, n] of sizes.entries()) {
    if (!Number.isInteger(n) || n < 2 || n > 250) {
      throw new Error(`mesh-convergence: "${rest[i]}" is not a router count in 2..250 (${USAGE})`);
    }
  }
  if (steadySeconds > 0 && peers !== 'first') throw new Error(`mesh-convergence: --steady needs --peers=first, where the mesh is complete (${USAGE})`);
  return { peers, weaver, nodeArgs, profiled, logs, sleeveOnly, steadySeconds, extraNodeFlags, sizes };
}

/** 1-2 distinct random other hosts; the first is an earlier one so that the graph is connected. */
function randomPeers(bed: Testbed, h: Host): Host[] {
  const n = bed.hosts.length;
  const peers: Host[] = [];
  if (h.index > 1) peers.push(bed.host(1 + Math.floor(Math.random() * (h.index - 1))));
  const wanted = h.index === 1 || Math.random() < 0.5 ? 1 : 2;
  while (peers.length < wanted) {
    const other = bed.host(1 + Math.floor(Math.random() * n));
    if (other !== h && !peers.includes(other)) peers.push(other);
  }
  return peers;
}

let fullReport = false;

async function report(h: Host): Promise<RouterReport | undefined> {
  // A router starved of CPU while 50 form a mesh can take seconds to write a report.
  const path = fullReport ? '/report' : `/report?format=${encodeURIComponent(REPORT_FORMAT)}`;
  const r = await httpGetInNetns(h.netnsPath, API_IP, API_PORT, path, REPORT_TIMEOUT_MS);
  if (r?.status !== 200) return undefined;
  if (fullReport) {
    const { Peers, Connections } = (JSON.parse(r.body) as { Router: { Peers: unknown[]; Connections: { State: string }[] | null } }).Router;
    return { peers: Peers.length, connectionStates: (Connections ?? []).map((c) => c.State) };
  }
  const [peers, ...connectionStates] = r.body.trim().split(' ');
  return { peers: Number(peers), connectionStates };
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** A router's CPU, the commands it ran included (processCpuTimes). */
const cpuTimes = (pid: number): { user: number; system: number } => processCpuTimes(pid, true);

/** A router's user + system CPU seconds, the commands it ran included. */
const cpuSeconds = (pid: number): number => processCpuSeconds(pid, true);

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`mesh-convergence: no VmRSS in /proc/${pid}/status (did the router exit?)`);
  return Number(kb[1]) / 1024;
}

/**
 * Between passes over the routers still waiting: the measures' resolution. Each poll
 * is one /report from a socket this process opens in the router's namespace.
 */
let pollIntervalMs = 200;
/** In passes over all the routers still waiting, or each router on its own (--poll=each). */
let pollMode: 'passes' | 'each' = 'passes';
const REPORT_TIMEOUT_MS = 30_000;

/** When the last router satisfied a measure, and the slowest answer to a poll while waiting for it. */
interface Awaited {
  /** ms since the routers were spawned. */
  ms: number;
  /**
   * A router starved of CPU answers late, and a measure is taken when the answer
   * arrives: while routers answer seconds late, the measure is that much coarser.
   */
  slowestAnswerMs: number;
}

/**
 * Polls the routers still waiting, all at once, until all satisfy `done`;
 * returns when the last one did. A router that exits fails the run.
 */
async function allOf(hosts: readonly Host[], routers: SpawnedProcess[], t0: number,
  done: (r: RouterReport | undefined) => boolean, what: string): Promise<Awaited> {
  let slowestAnswerMs = 0;
  const timedReport = async (h: Host): Promise<RouterReport | undefined> => {
    const asked = Date.now();
    const r = await report(h);
    slowestAnswerMs = Math.max(slowestAnswerMs, Date.now() - asked);
    return r;
  };
  const exited = (h: Host): void => {
    const p = routers[h.index - 1]!;
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(`mesh-convergence: the router on ${h.label} exited:\n${p.output().split('\n').slice(-10).join('\n')}`);
    }
  };
  if (pollMode === 'each') {
    const times = await Promise.all(hosts.map(async (h) => {
      const ok = await pollUntil(async () => {
        exited(h);
        return done(await timedReport(h));
      }, timeoutMs, pollIntervalMs);
      if (!ok) throw new Error(`mesh-convergence: ${h.label} did not ${what} within ${timeoutMs / 1000} s`);
      return Date.now() - t0;
    }));
    return { ms: Math.max(...times), slowestAnswerMs };
  }
  const waiting = new Set(hosts);
  let last = 0;
  const ok = await pollUntil(async () => {
    // Every router still waiting at once, each asked once per pass: a poll costs this process a
    // socket, and a router busy forming the mesh answers late without holding up the others' polls
    // (polled a few at a time, a pass over 50 loaded routers took longer than what it measured).
    await Promise.all([...waiting].map(async (h) => {
      exited(h);
      if (done(await timedReport(h))) {
        waiting.delete(h);
        last = Date.now() - t0;
      }
    }));
    return waiting.size === 0;
  }, timeoutMs, pollIntervalMs);
  if (!ok) throw new Error(`mesh-convergence: ${[...waiting].map((h) => h.label).join(', ')} did not ${what} within ${timeoutMs / 1000} s`);
  return { ms: last, slowestAnswerMs };
}

function establishedCount(r: RouterReport | undefined): number {
  return (r?.connectionStates ?? []).filter((s) => s === 'established').length;
}

async function measure(n: number, { peers: choice, weaver, nodeArgs, profiled, logs, sleeveOnly, steadySeconds, extraNodeFlags }: Options): Promise<Row> {
  const bed = await createTestbed({ hosts: n, underlay: 'bridge' });
  const routers: SpawnedProcess[] = [];
  try {
    const plan = bed.hosts.map((h) => ({ h, peers: choice === 'first' ? (h.index === 1 ? [] : [bed.host(1)]) : randomPeers(bed, h) }));
    const t0 = Date.now();
    if (logs) process.stdout.write(`mesh-convergence: ${n} routers started at ${t0} (epoch ms), logs in ${logs}\n`);
    for (const { h, peers } of plan) {
      const stateDir = join(h.dir, 'state');
      mkdirSync(stateDir, { recursive: true });
      const routerArgs = [
        '--state-dir', stateDir, '--http-addr', API, '--nickname', h.label, '--log-level', logs ? 'debug' : 'warning',
        ...(sleeveOnly ? ['--no-fastdp'] : []), ...peers.map((p) => p.address),
      ];
      routers.push(h.spawn(process.execPath, [
        ...WEAVER_NODE_FLAGS, ...extraNodeFlags, ...(profiled === undefined || profiled.has(h.index) ? nodeArgs : []), weaver, ...routerArgs,
      ], { env: weaverEnvironment({}, routerArgs) }));
    }
    // Polled from the start: a router that exits fails the run at its next poll (allOf).
    const ready = await allOf(bed.hosts, routers, t0, (r) => r !== undefined, 'answer on the control API');
    const cpuAtReady = routers.reduce((s, p) => s + cpuSeconds(p.pid), 0);
    const listed = await allOf(bed.hosts, routers, t0, (r) => r?.peers === n, `list all ${n} peers`);
    const connected = choice === 'first'
      ? await allOf(bed.hosts, routers, t0, (r) => establishedCount(r) === n - 1, `establish connections to all ${n - 1} others`)
      : undefined;
    const times = routers.map((p) => cpuTimes(p.pid));
    const perRouter = times.map((t) => t.user + t.system);
    const cpu = perRouter.reduce((s, c) => s + c, 0);
    const systemSeconds = times.reduce((s, t) => s + t.system, 0);
    const leaves = perRouter.slice(1).sort((a, b) => a - b);
    let conns = 0;
    for (const h of bed.hosts) conns += establishedCount(await report(h));
    const rss = routers.map((p) => rssMiB(p.pid)).sort((a, b) => a - b);
    const idleCpuPercent = steadySeconds > 0 ? await steadyCpu(routers, steadySeconds) : undefined;
    const mtus = sleeveOnly ? await connectionMtus(bed.hosts) : undefined;
    return { n, idleCpuPercent, readyMs: ready.ms, listedMs: listed.ms, connectedMs: connected?.ms,
      slowestAnswerMs: [ready.slowestAnswerMs, listed.slowestAnswerMs, connected?.slowestAnswerMs],
      meanConns: conns / n, cpuAtReady, cpuSeconds: cpu, systemSeconds, hubCpu: perRouter[0] ?? 0, leafCpuMedian: leaves[Math.floor(leaves.length / 2)] ?? 0, rssMiB: rss, mtus };
  } finally {
    for (const p of routers) p.kill('SIGTERM');
    await Promise.race([Promise.all(routers.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (logs) {
      mkdirSync(logs, { recursive: true });
      for (const [i, p] of routers.entries()) writeFileSync(join(logs, `${n}-router-${i + 1}.log`), p.output());
    }
    await bed.teardown();
  }
}

/**
 * The sleeve's path MTU of every connection, from each router's report: on this
 * underlay all of them should settle on the same (the veths' 1500 less the
 * overhead); a lower one is a PMTU search that mistook a slow answer for a
 * black hole while the mesh formed (dataplane/sleeve/connection.ts).
 */
async function connectionMtus(hosts: readonly Host[]): Promise<number[]> {
  const mtus: number[] = [];
  for (const h of hosts) {
    // The whole report, once the measures are taken: a connection still retrying has no attributes.
    const r = await httpGetInNetns(h.netnsPath, API_IP, API_PORT, '/report', REPORT_TIMEOUT_MS);
    if (r?.status !== 200) throw new Error(`mesh-convergence: ${h.label}'s report failed (${r ? `HTTP ${r.status}` : 'no answer'})`);
    const { Connections } = (JSON.parse(r.body) as { Router: { Connections: { State: string; Attrs: { mtu?: number } | null }[] | null } }).Router;
    for (const c of Connections ?? []) if (c.State === 'established' && c.Attrs?.mtu !== undefined) mtus.push(c.Attrs.mtu);
  }
  return mtus;
}

/** Each router's CPU over `seconds` of a formed mesh, as % of one core: [median, max]. */
async function steadyCpu(routers: SpawnedProcess[], seconds: number): Promise<[number, number]> {
  const before = routers.map((p) => cpuSeconds(p.pid));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const pct = routers.map((p, i) => ((cpuSeconds(p.pid) - before[i]!) / seconds) * 100).sort((a, b) => a - b);
  return [pct[Math.floor(pct.length / 2)]!, pct[pct.length - 1]!];
}

function fmt(v: number, digits = 1): string {
  return v.toFixed(digits);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('mesh-convergence: needs root (it creates network namespaces)\n');
    process.exit(1);
  }
  const { sizes, ...options } = parseArgs(process.argv.slice(2));
  const { peers } = options;
  const rows: Row[] = [];
  for (const n of sizes) {
    process.stdout.write(`mesh-convergence: ${n} routers, ${options.sleeveOnly ? 'sleeve only' : 'fast datapath'}, peers ${peers === 'first' ? 'router 1 only' : 'random'}, polled ${pollMode === 'each' ? 'each on its own' : 'in passes'}, load average ${loadavg()}...\n`);
    const row = await measure(n, options);
    process.stdout.write(`mesh-convergence: ${n} routers: ready after ${row.readyMs} ms, all listed after ${row.listedMs} ms` +
      `${row.connectedMs === undefined ? '' : `, all connected after ${row.connectedMs} ms`}, ${fmt(row.cpuSeconds)} CPU s (${fmt(row.systemSeconds)} of it system), load average ${loadavg()}\n`);
    const [toReady, toList, toConnect] = row.slowestAnswerMs;
    process.stdout.write(`mesh-convergence: ${n} routers: slowest report answer ${toReady} ms while they started, ${toList} ms while they listed` +
      `${toConnect === undefined ? '' : `, ${toConnect} ms while they connected`} (a measure is taken when the answer arrives)\n`);
    if (row.mtus) {
      const top = Math.max(...row.mtus);
      process.stdout.write(`mesh-convergence: ${n} routers: sleeve MTU ${top} on ${row.mtus.filter((m) => m === top).length} of ${row.mtus.length} connections, lowest ${Math.min(...row.mtus)}\n`);
    }
    rows.push(row);
  }
  const header = ['N', 'ready ms', 'listed ms', 'connected ms', 'CPU s at ready', 'CPU s', 'router 1', 'others median', 'conns/router', 'RSS MiB min', 'median', 'max', 'idle CPU % median', 'max'];
  const lines = rows.map((r) => [
    String(r.n), String(r.readyMs), String(r.listedMs), r.connectedMs === undefined ? '-' : String(r.connectedMs),
    fmt(r.cpuAtReady), fmt(r.cpuSeconds), fmt(r.hubCpu), fmt(r.leafCpuMedian), fmt(r.meanConns),
    fmt(r.rssMiB[0] ?? 0), fmt(r.rssMiB[Math.floor(r.rssMiB.length / 2)] ?? 0), fmt(r.rssMiB[r.rssMiB.length - 1] ?? 0),
    r.idleCpuPercent ? fmt(r.idleCpuPercent[0], 2) : '-', r.idleCpuPercent ? fmt(r.idleCpuPercent[1], 2) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  process.stdout.write(`\n${row(header)}\n${lines.map(row).join('\n')}\n`);
}

await main();
