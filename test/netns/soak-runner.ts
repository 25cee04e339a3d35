// Soak with churn on real routers: containers attached and detached (with DNS
// names) on every host and external names added and removed, at a fixed rate
// across the hosts (lib/churn-driver.ts, the calls the CLI makes), the underlay
// between two hosts cut and healed now and then. Router RSS is sampled every
// 10 s; after the churn the file descriptors, veths, nft rules and set
// elements, BPF map entries and XFRM states must return to their levels before
// it. Used by test/netns/soak.test.ts (2 minutes) and bench/soak-bench.ts (1 hour).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pollUntil } from './lib/exec.js';
import { bpfEntries } from './lib/router-maps.js';
import { launchFullMesh, mustPing, mustWeave, processCpuSeconds, weaverPid, type Container, type Host, type Testbed } from './lib/index.js';

export interface SoakOptions {
  durationMs: number;
  /** RSS samples before this are the warm-up; the level is the first sample after it. */
  warmUpMs: number;
  sampleEveryMs: number;
  /** Containers each host cycles through. */
  poolPerHost: number;
  /** Churn operations (attach, detach, dns-add, dns-remove) per second, across all hosts. */
  opsPerSecond: number;
  /** Every this long one underlay link is cut for `flapMs`. */
  flapEveryMs: number;
  flapMs: number;
  flags?: readonly string[];
  /**
   * The routers' learned-MAC ageing time (WEAVE_BPF_MAC_AGEING_SEC): short, so
   * the MACs of departed containers are gone by the time the footprint is compared.
   */
  macAgeingSec: number;
  /** Further environment for the routers (e.g. NODE_OPTIONS for heap snapshots). */
  env?: Record<string, string>;
  /** Further environment for one host's router, over `env` (an A/B of allocator settings in one run). */
  envFor?(h: Host): Record<string, string>;
  log?(line: string): void;
}

/** What a host holds in the kernel and the router process, compared before and after the churn. */
export interface Footprint {
  fds: number;
  veths: number;
  nftLines: number;
  nftSetElements: number;
  /** Entries per BPF map the router holds. */
  bpfEntries: Record<string, number>;
  xfrmStates: number;
}

/**
 * Whether `got` is back at `want`: the same kernel state, no more file
 * descriptors, no more learned MACs (those of live containers may age out).
 */
export function backToBaseline(want: Footprint, got: Footprint): boolean {
  return got.fds <= want.fds && got.veths === want.veths && got.nftLines === want.nftLines && got.nftSetElements === want.nftSetElements
    && sameCounts(got.bpfEntries, want.bpfEntries) && noMoreLearned(got.bpfEntries, want.bpfEntries) && got.xfrmStates === want.xfrmStates;
}

export interface SoakResult {
  /** RSS samples in KiB per host label, every sampleEveryMs. */
  rss: Map<string, number[]>;
  /** The anonymous part of each RSS sample (KiB): where a leak would show. */
  anon: Map<string, number[]>;
  /** Churn operations done (and link flaps). */
  operations: number;
  /** Operations per second the churn reached, across the hosts. */
  achievedRate: number;
  /** Churn operations the router refused or failed, and the first such failure. */
  errors: number;
  firstError?: string;
  before: Map<string, Footprint>;
  after: Map<string, Footprint>;
  /** CPU seconds each router spent during the churn (user + system). */
  cpuSeconds: Map<string, number>;
}

/** User + system CPU seconds of the host's router so far. */
function cpuSecondsOf(h: Host): number {
  return processCpuSeconds(weaverPid(h));
}

/** The router's resident memory in KiB: all of it, and the anonymous part (heap, stacks; the rest is mapped files, mostly node's binary). */
function memoryKiB(h: Host): { rss: number; anon: number } {
  const pid = weaverPid(h);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  const anon = /RssAnon:\s+(\d+) kB/.exec(status);
  if (!rss || !anon) throw new Error(`the router on ${h.label} (pid ${pid}) died during the soak`);
  return { rss: Number(rss[1]), anon: Number(anon[1]) };
}

/**
 * MAC tables the kernel programs fill from the frames they see (bpftool shows
 * 15 characters of a name): left out of the exact comparison, and required
 * to be no fuller than before the churn instead. A departed container's MACs,
 * remote ones and local ones learned behind the sleeve's port, go with the
 * ageing (dataplane/bpf/mac-ageing.ts); fewer than before is fine, a live
 * container that was quiet ages out too.
 */
const LEARNED_MAC_MAPS = ['weave_local_ma', 'weave_remote_ma'];
const isLearnedMacMap = (name: string): boolean => LEARNED_MAC_MAPS.some((l) => name.startsWith(l));

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const compared = (m: Record<string, number>): string => JSON.stringify(Object.entries(m).filter(([name]) => !isLearnedMacMap(name)).sort());
  return compared(a) === compared(b);
}

function noMoreLearned(got: Record<string, number>, want: Record<string, number>): boolean {
  return Object.entries(got).every(([name, n]) => !isLearnedMacMap(name) || n <= (want[name] ?? 0));
}

async function footprint(h: Host): Promise<Footprint> {
  const links = (await h.exec('ip', ['-o', 'link', 'show'])).stdout;
  const nft = (await h.exec('nft', ['list', 'ruleset'])).stdout;
  const xfrm = (await h.exec('ip', ['xfrm', 'state', 'list'])).stdout;
  const pid = weaverPid(h);
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    veths: links.split('\n').filter((l) => /^\d+: vethwepl/.test(l)).length,
    nftLines: nft.split('\n').filter((l) => l.trim() !== '').length,
    nftSetElements: [...nft.matchAll(/elements = \{([^}]*)\}/g)].reduce((n, m) => n + m[1]!.split(',').length, 0),
    bpfEntries: await bpfEntries(pid),
    xfrmStates: xfrm.split('\n').filter((l) => l.startsWith('src ')).length,
  };
}

/** The churn driver, run in each host's namespace. */
const CHURN_DRIVER = fileURLToPath(new URL('./lib/churn-driver.js', import.meta.url));
interface ChurnReport { operations: number; errors: number; firstError?: string; seconds: number }

export async function runSoak(bed: Testbed, opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? (() => {});
  const hosts = bed.hosts;
  for (const h of hosts) {
    const env = { ...opts.env, ...opts.envFor?.(h), WEAVE_BPF_MAC_AGEING_SEC: String(opts.macAgeingSec) };
    await launchFullMesh([h], [...(opts.flags ?? []), ...hosts.filter((o) => o !== h).map((o) => o.address)], { env });
  }
  // A permanent container per host: the mesh must keep carrying traffic throughout.
  const probes = new Map<Host, { c: Container; ip: string }>();
  for (const h of hosts) {
    const c = await h.addContainer('probe');
    probes.set(h, { c, ip: (await mustWeave(h, ['attach', '--netns', c.netnsPath])).trim() });
  }
  const first = hosts[0]!;
  const second = hosts[1]!;
  await mustPing(probes.get(first)!.c, probes.get(second)!.ip, 'before the soak');
  const pools = new Map<Host, Container[]>();
  for (const h of hosts) {
    const pool: Container[] = [];
    for (let i = 0; i < opts.poolPerHost; i++) pool.push(await h.addContainer(`churn${i}`));
    pools.set(h, pool);
  }
  const before = new Map<string, Footprint>();
  for (const h of hosts) before.set(h.label, await footprint(h));

  const cpuBefore = new Map(hosts.map((h) => [h.label, cpuSecondsOf(h)]));
  const started = Date.now();
  const end = started + opts.durationMs;
  let operations = 0;
  let flaps = 0;
  const rss = new Map<string, number[]>(hosts.map((h) => [h.label, []]));
  const anon = new Map<string, number[]>(hosts.map((h) => [h.label, []]));
  const sample = (): void => {
    for (const h of hosts) {
      const m = memoryKiB(h);
      rss.get(h.label)!.push(m.rss);
      anon.get(h.label)!.push(m.anon);
    }
  };
  sample();
  let samplingFailed: Error | undefined;
  const sampler = setInterval(() => {
    try {
      sample();
    } catch (e) {
      samplingFailed ??= e as Error; // reported when the churn ends, not thrown from a timer
      return;
    }
    const mib = (k: number): string => (k / 1024).toFixed(1);
    log(`t=${Math.round((Date.now() - started) / 1000)}s rss ${hosts.map((h) => `${h.label}=${mib(rss.get(h.label)!.at(-1)!)}MiB (anon ${mib(anon.get(h.label)!.at(-1)!)})`).join(' ')} link flaps=${flaps}`);
  }, opts.sampleEveryMs);

  let errors = 0;
  let firstError: string | undefined;
  let churnRate = 0;
  const churn = async (h: Host): Promise<void> => {
    const pool = pools.get(h)!;
    const r = await h.exec(process.execPath, [CHURN_DRIVER, String(opts.opsPerSecond / hosts.length), String(opts.durationMs), h.label,
      ...pool.map((c) => c.netnsPath)], { timeoutMs: opts.durationMs + 120_000 });
    assert.equal(r.code, 0, `churn on ${h.label} exited ${r.code}: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as ChurnReport;
    operations += report.operations;
    // Over the driver's own run: the start of its process is not the routers' time.
    churnRate += report.operations / report.seconds;
    errors += report.errors;
    firstError ??= report.firstError;
  };
  const flapper = async (): Promise<void> => {
    while (Date.now() + opts.flapEveryMs < end) {
      await new Promise((r) => setTimeout(r, opts.flapEveryMs));
      await bed.cutLink(first, second);
      await new Promise((r) => setTimeout(r, opts.flapMs));
      await bed.healLink(first, second);
      operations++;
      flaps++;
    }
  };
  try {
    await Promise.all([...hosts.map(churn), flapper()]);
  } finally {
    clearInterval(sampler);
  }
  if (samplingFailed) throw samplingFailed;
  const achievedRate = churnRate;
  const cpuSeconds = new Map(hosts.map((h) => [h.label, cpuSecondsOf(h) - cpuBefore.get(h.label)!]));
  sample();
  await mustPing(probes.get(first)!.c, probes.get(second)!.ip, 'after the soak', { timeoutMs: 15_000 });

  // Everything the churn created goes away again; give the routers a moment to finish (event: the footprint itself).
  const after = new Map<string, Footprint>();
  for (const h of hosts) {
    const want = before.get(h.label)!;
    let got = await footprint(h);
    await pollUntil(async () => {
      got = await footprint(h);
      return backToBaseline(want, got);
    }, 20_000, 500);
    after.set(h.label, got);
  }
  return { rss, anon, operations, achievedRate, errors, ...(firstError === undefined ? {} : { firstError }), before, after, cpuSeconds };
}

/** The RSS level after the warm-up and how far later samples strayed from it. */
export function rssCurve(samples: readonly number[], warmUpSamples: number): { first: number; level: number; last: number; max: number; worstDrift: number } {
  assert.ok(samples.length > warmUpSamples + 1, `only ${samples.length} RSS samples`);
  const level = samples[warmUpSamples]!;
  const later = samples.slice(warmUpSamples);
  const worstDrift = Math.max(...later.map((s) => Math.abs(s - level) / level));
  return { first: samples[0]!, level, last: samples.at(-1)!, max: Math.max(...samples), worstDrift };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * How much the RSS rose over the last `spanSamples` samples: the median of the
 * last `windowSamples` against the median of as many `spanSamples` earlier
 * (medians, so one sample caught in a burst does not count). KiB.
 */
export function rssGrowth(samples: readonly number[], spanSamples: number, windowSamples: number): number {
  assert.ok(samples.length >= spanSamples + windowSamples, `only ${samples.length} RSS samples`);
  const end = samples.length;
  return median(samples.slice(end - windowSamples)) - median(samples.slice(end - spanSamples - windowSamples, end - spanSamples));
}
