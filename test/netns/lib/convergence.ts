// Time from `weave attach` to the first reply, under a randomized start-up:
// 3-5 routers launched in random order with random gaps (0-2 s), each
// container attached at a random moment while the connections are still
// being established, optionally with a CPU hog (a busy loop per core) running.
// For every pair of containers, the time from the later of the two attaches
// returning to the first echo reply, in each direction.
//
// Shared by the CI test (test/netns/reach-convergence.test.ts) and the
// benchmark (bench/reach-convergence.ts).
import { cpus } from 'node:os';
import { bpfPinDir, withBpfWeaveBed } from './bpf-bed.js';
import { spawnTracked, type SpawnedProcess } from './exec.js';
import type { Container, Host, NamespaceRunner, Testbed } from './testbed.js';
import { mustWeave, weave, weaveStateDir, type WeaveOptions } from './weave.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** How long one direction may take before it counts as no reply at all. */
export const FIRST_REPLY_DEADLINE_S = 10;
/** Interval between echo requests while waiting for the first reply. */
const PING_INTERVAL_S = 0.05;

export interface ConvergenceOptions {
  routers: number;
  hog: boolean;
  /** Random source (default Math.random). */
  random?: () => number;
  /** Extra `weave launch` flags for every router. */
  launchFlags?: readonly string[];
  log?: (line: string) => void;
}

export interface PairTiming {
  from: string;
  to: string;
  /** ms from the later attach returning to the first reply; undefined: none within the deadline. */
  ms: number | undefined;
  /** Which echo request got that reply (1: the very first, so its ARP exchange lost nothing). */
  seq?: number;
}

export interface IterationResult {
  pairs: PairTiming[];
  /** When a pair is slower than `slowMs`: each router's connections and log tail. */
  diagnostics?: string;
}

/** A busy loop per core, so timers and the routers' event loops compete for CPU. */
export function startCpuHog(): { stop(): Promise<void> } {
  const loops: SpawnedProcess[] = cpus().map(() => spawnTracked('sh', ['-c', 'while :; do :; done']));
  return {
    async stop() {
      for (const l of loops) l.kill('SIGKILL');
      await Promise.all(loops.map((l) => l.exited));
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

/** Container addresses outside IPAM's default range: attach claims nothing, so it never waits for the ring. */
const CONTAINER_SUBNET_PREFIX = '10.2.1.';
const CONTAINER_PREFIX_LEN = 24;

function addressOf(h: Host): string {
  return `${CONTAINER_SUBNET_PREFIX}${h.index}`;
}

export interface FirstReply {
  /** Wall-clock ms of the reply (ping -D). */
  at: number;
  /** The echo request it answered (1 = the first one sent). */
  seq: number;
}

/** Pings `to` from `from` every 50 ms until the first reply; undefined when none came before the deadline. */
export async function firstReply(from: NamespaceRunner, to: string): Promise<FirstReply | undefined> {
  const r = await from.exec('ping', ['-n', '-D', '-c', '1', '-i', String(PING_INTERVAL_S), '-w', String(FIRST_REPLY_DEADLINE_S), to], {
    timeoutMs: (FIRST_REPLY_DEADLINE_S + 5) * 1000,
  });
  const m = /^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/m.exec(r.stdout);
  return m ? { at: Math.round(Number(m[1]) * 1000), seq: Number(m[2]) } : undefined;
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function describeRouters(bed: Testbed): Promise<string> {
  const parts: string[] = [];
  for (const h of bed.hosts) {
    const conns = await weave(h, ['status', 'connections'], { ...envFor(bed, h), timeoutMs: 10_000 });
    let log = '';
    try {
      log = readFileSync(join(weaveStateDir(h), 'weaver.log'), 'utf8').trimEnd().split('\n').slice(-25).join('\n');
    } catch {
      log = '(no log)';
    }
    parts.push(`${h.label} connections:\n${conns.stdout.trimEnd()}\n${h.label} log tail:\n${log}`);
  }
  return parts.join('\n');
}

/** One iteration on a fresh testbed; pairs slower than `slowMs` get diagnostics. */
export async function runConvergenceIteration(opts: ConvergenceOptions, slowMs = 2000): Promise<IterationResult> {
  const random = opts.random ?? Math.random;
  const log = opts.log ?? (() => undefined);
  let result: IterationResult = { pairs: [] };
  const hog = opts.hog ? startCpuHog() : undefined;
  try {
    await withBpfWeaveBed(opts.routers, envFor, async (bed) => {
      const containers = new Map<Host, Container>();
      for (const h of bed.hosts) containers.set(h, await h.addContainer('c1'));
      const attached: Host[] = [];
      const measurements: Promise<void>[] = [];
      const pairs: PairTiming[] = [];
      const measure = (from: Host, to: Host, since: number): Promise<void> =>
        firstReply(containers.get(from)!, addressOf(to)).then((r) => {
          pairs.push({ from: from.label, to: to.label, ms: r === undefined ? undefined : Math.max(0, r.at - since), ...(r ? { seq: r.seq } : {}) });
        });
      const attach = async (h: Host): Promise<void> => {
        const c = containers.get(h)!;
        log(`attaching ${h.label}`);
        await mustWeave(h, ['attach', `${addressOf(h)}/${CONTAINER_PREFIX_LEN}`, '--netns', c.netnsPath], envFor(bed, h));
        const at = Date.now();
        log(`${h.label} attached`);
        for (const other of attached) measurements.push(measure(h, other, at), measure(other, h, at));
        attached.push(h);
      };
      const order = shuffled(bed.hosts, random);
      log(`launch order ${order.map((h) => h.label).join(' ')}`);
      // Each launch starts 0-2 s after the previous one started (they may overlap); each
      // container is attached at a random moment while the connections are being set up.
      const started: Promise<void>[] = [];
      for (const h of order) {
        await delay(random() * 2000);
        const others = bed.hosts.filter((o) => o !== h).map((o) => o.address);
        const attachDelay = random() * 3000;
        log(`launching ${h.label}`);
        started.push(mustWeave(h, ['launch', '--nickname', h.label, ...(opts.launchFlags ?? []), ...others], envFor(bed, h))
          .then(() => delay(attachDelay))
          .then(() => attach(h)));
      }
      await Promise.all(started);
      await Promise.all(measurements);
      log('measured');
      result = { pairs };
      if (pairs.some((p) => p.ms === undefined || p.ms > slowMs)) result.diagnostics = await describeRouters(bed);
    });
  } finally {
    await hog?.stop();
  }
  return result;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
