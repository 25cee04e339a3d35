// Hour-long soak with churn on real routers (test/netns/soak-runner.ts):
// prints the RSS curve per router (first / level after 5 minutes / last / max
// and the worst drift from the level, which should stay within 10 %) and the
// footprint before and after the churn. Needs root (network namespaces).
//
//   node dist/bench/soak-bench.js [minutes=60] [hosts=3] [operations-per-second=10]
//
// SOAK_HOST_ENV="h2:MALLOC_ARENA_MAX=2;h3:MALLOC_ARENA_MAX=2,MALLOC_TRIM_THRESHOLD_=131072"
// gives single routers further environment, to compare allocator settings in one run.
import { withWeaveBed } from '../test/netns/lib/index.js';
import { backToBaseline, runSoak, rssCurve } from '../test/netns/soak-runner.js';

const minutes = Number(process.argv[2] ?? 60);
const hosts = Number(process.argv[3] ?? 3);
const opsPerSecond = Number(process.argv[4] ?? 10);
const SAMPLE_MS = 10_000;
const warmUpMs = Math.min(5 * 60_000, (minutes * 60_000) / 4);

/** SOAK_HOST_ENV: `label:NAME=value,NAME=value;label:...`. */
function hostEnv(spec: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const part of spec.split(';').filter((p) => p.trim() !== '')) {
    const [label, vars] = part.split(':', 2) as [string, string | undefined];
    const env: Record<string, string> = {};
    for (const kv of (vars ?? '').split(',').filter((v) => v !== '')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`SOAK_HOST_ENV: ${kv} is not NAME=value`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    out.set(label.trim(), env);
  }
  return out;
}
const perHost = hostEnv(process.env['SOAK_HOST_ENV'] ?? '');
for (const [label, env] of perHost) process.stdout.write(`${label}: ${JSON.stringify(env)}\n`);

process.stdout.write(`soak-bench: ${minutes} min on ${hosts} routers, churn ${opsPerSecond} operations/s\n`);
await withWeaveBed(hosts, async (bed) => {
  const r = await runSoak(bed, {
    durationMs: minutes * 60_000, warmUpMs, sampleEveryMs: SAMPLE_MS, poolPerHost: 4, opsPerSecond,
    flapEveryMs: 60_000, flapMs: 3_000, macAgeingSec: 5, envFor: (h) => perHost.get(h.label) ?? {}, log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`\n${r.operations} churn operations, ${r.achievedRate.toFixed(1)}/s, ${r.errors} failed${r.firstError ? ` (first: ${r.firstError})` : ''}\n`);
  let bad = r.errors > 0 || r.achievedRate < opsPerSecond * 0.9;
  const everyFiveMinutes = (5 * 60_000) / SAMPLE_MS;
  for (const [host, samples] of r.rss) {
    const c = rssCurve(samples, Math.floor(warmUpMs / SAMPLE_MS));
    bad ||= c.worstDrift > 0.1;
    process.stdout.write(`${host}: RSS KiB first ${c.first} level ${c.level} last ${c.last} max ${c.max} worst drift ${(c.worstDrift * 100).toFixed(1)} %; router CPU ${r.cpuSeconds.get(host)!.toFixed(0)} s\n`);
    const curve = samples.filter((_, i) => i % everyFiveMinutes === 0).map((k, i) => `${i * 5}min ${(k / 1024).toFixed(1)}`);
    process.stdout.write(`${host}: RSS MiB every 5 minutes: ${curve.join(', ')}\n`);
    const anon = r.anon.get(host)!.filter((_, i) => i % everyFiveMinutes === 0).map((k) => (k / 1024).toFixed(1));
    process.stdout.write(`${host}: of which anonymous: ${anon.join(', ')}\n`);
  }
  for (const [host, want] of r.before) {
    const got = r.after.get(host)!;
    bad ||= !backToBaseline(want, got);
    process.stdout.write(`${host}: before ${JSON.stringify(want)} after ${JSON.stringify(got)}\n`);
  }
  process.exitCode = bad ? 1 : 0;
}, { command: 'reset' });
