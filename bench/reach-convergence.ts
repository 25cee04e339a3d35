// Time to first reply after `weave attach`, under a randomized start-up
// (test/netns/lib/convergence.ts): per iteration 3-5 routers launched in
// random order with random gaps, containers attached at random moments
// during connection establishment, a CPU hog in every other iteration.
// Prints per iteration the slowest pair, then the distribution over every
// pair and direction (median, p99, max) with and without the hog.
//
//   node dist/bench/reach-convergence.js [iterations=30]
// Root needed; everything lives in namespaces the bench creates and removes.
import { quantile, runConvergenceIteration, type PairTiming } from '../test/netns/lib/convergence.js';
import { FIRST_REPLY_DEADLINE_S } from '../test/netns/lib/convergence.js';

/** Pairs slower than this are listed, with the routers' state. */
const SLOW_MS = 1000;

function parseIterations(argv: string[]): number {
  const n = argv[0] === undefined ? 30 : Number(argv[0]);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`reach-convergence: "${argv[0]}" is not an iteration count in 1..1000 (usage: reach-convergence.js [iterations])`);
  return n;
}

function summary(label: string, pairs: readonly PairTiming[]): string {
  const missing = pairs.filter((p) => p.ms === undefined).length;
  const ms = pairs.map((p) => p.ms ?? FIRST_REPLY_DEADLINE_S * 1000).sort((a, b) => a - b);
  if (ms.length === 0) return `${label}: no pairs`;
  return `${label}: ${pairs.length} pair directions, median ${quantile(ms, 0.5)} ms, p99 ${quantile(ms, 0.99)} ms, max ${ms[ms.length - 1]} ms`
    + `, over 1 s ${ms.filter((m) => m > 1000).length}, over 2 s ${ms.filter((m) => m > 2000).length}, no reply ${missing}`
    + `; first echo request answered in ${pairs.filter((p) => p.seq === 1).length} of ${pairs.length}`;
}

const iterations = parseIterations(process.argv.slice(2));
const all: { hog: boolean; pairs: PairTiming[] }[] = [];
for (let i = 0; i < iterations; i++) {
  const hog = i % 2 === 1;
  const routers = 3 + Math.floor(Math.random() * 3);
  const r = await runConvergenceIteration({ routers, hog, log: (l) => process.stdout.write(`  ${l}\n`) }, SLOW_MS);
  all.push({ hog, pairs: r.pairs });
  const worst = r.pairs.reduce<PairTiming | undefined>((w, p) => (w === undefined || (p.ms ?? Infinity) > (w.ms ?? Infinity) ? p : w), undefined);
  process.stdout.write(`iteration ${i + 1}/${iterations}: ${routers} routers, hog ${hog ? 'on' : 'off'}, slowest ${worst ? `${worst.from}->${worst.to} ${worst.ms ?? 'no reply'} ms` : '-'}\n`);
  for (const p of r.pairs) if (p.ms === undefined || p.ms > SLOW_MS) process.stdout.write(`  slow: ${p.from}->${p.to} ${p.ms ?? 'no reply'} ms (echo request #${p.seq ?? '-'})\n`);
  if (r.diagnostics) process.stdout.write(`${r.diagnostics.split('\n').map((l) => `    ${l}`).join('\n')}\n`);
}
process.stdout.write(`${summary('all', all.flatMap((a) => a.pairs))}\n`);
process.stdout.write(`${summary('no hog', all.filter((a) => !a.hog).flatMap((a) => a.pairs))}\n`);
process.stdout.write(`${summary('hog', all.filter((a) => a.hog).flatMap((a) => a.pairs))}\n`);
