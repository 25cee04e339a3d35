// Hour-long soak with churn on real routers (test/netns/soak-runner.ts):
// prints the RSS curve per router (first / level after 5 minutes / last / max
// and the worst drift from the level, which should stay within 10 %) and the
// footprint before and after the churn. Needs root (network namespaces).
//
//   node dist/bench/soak-bench.js [minutes=60] [hosts=3] [operations-per-second=10]
import { withWeaveBed } from '../test/netns/lib/index.js';
import { backToBaseline, runSoak, rssCurve } from '../test/netns/soak-runner.js';

const minutes = Number(process.argv[2] ?? 60);
const hosts = Number(process.argv[3] ?? 3);
const opsPerSecond = Number(process.argv[4] ?? 10);
const SAMPLE_MS = 10_000;
const warmUpMs = Math.min(5 * 60_000, (minutes * 60_000) / 4);

process.stdout.write(`soak-bench: ${minutes} min on ${hosts} routers, churn ${opsPerSecond} operations/s\n`);
await withWeaveBed(hosts, async (bed) => {
  const r = await runSoak(bed, {
    durationMs: minutes * 60_000, warmUpMs, sampleEveryMs: SAMPLE_MS, poolPerHost: 4, opsPerSecond,
    flapEveryMs: 60_000, flapMs: 3_000, macAgeingSec: 5, log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`\n${r.operations} churn operations, ${r.achievedRate.toFixed(1)}/s, ${r.errors} failed${r.firstError ? ` (first: ${r.firstError})` : ''}\n`);
  let bad = r.errors > 0 || r.achievedRate < opsPerSecond * 0.9;
  for (const [host, samples] of r.rss) {
    const c = rssCurve(samples, Math.floor(warmUpMs / SAMPLE_MS));
    bad ||= c.worstDrift > 0.1;
    process.stdout.write(`${host}: RSS KiB first ${c.first} level ${c.level} last ${c.last} max ${c.max} worst drift ${(c.worstDrift * 100).toFixed(1)} %\n`);
  }
  for (const [host, want] of r.before) {
    const got = r.after.get(host)!;
    bad ||= !backToBaseline(want, got);
    process.stdout.write(`${host}: before ${JSON.stringify(want)} after ${JSON.stringify(got)}\n`);
  }
  process.exitCode = bad ? 1 : 0;
}, { command: 'reset' });
