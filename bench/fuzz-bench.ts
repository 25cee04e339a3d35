// Long fuzz pass: every decoder of outside bytes (test/support/fuzz-targets.ts)
// fed `inputs` generated inputs, reporting count, crashes, time and the
// process RSS around each target (a decoder that keeps what it is fed shows
// as growth). Exits 1 when any target crashed; the first crashes are printed
// with their input so they can become regression tests.
//
//   node dist/bench/fuzz-bench.js [inputs=1000000] [name,name,...] [seed] [seconds-per-decoder]
//
// A name selects the targets whose names contain it; none selects all. With
// seconds-per-decoder a decoder stops early when its time is up (on a busy
// machine); its line then shows how many inputs it got.
import { fuzzTargets, fuzzTarget } from '../test/support/fuzz-targets.js';

const inputs = Number(process.argv[2] ?? 1_000_000);
const filters = (process.argv[3] ?? '').split(',').filter((f) => f !== '');
const seed = Number(process.argv[4] ?? Date.now() % 1_000_000);
const budgetMs = process.argv[5] === undefined ? Infinity : Number(process.argv[5]) * 1000;

const mb = (bytes: number): string => (bytes / 1e6).toFixed(0);

const { targets, close } = await fuzzTargets();
process.stdout.write(`fuzz-bench: ${inputs} inputs per decoder, seed ${seed}\n`);
process.stdout.write(`${'decoder'.padEnd(18)} ${'inputs'.padStart(9)} ${'crashes'.padStart(7)} ${'seconds'.padStart(8)} ${'inputs/s'.padStart(9)}  RSS MB before/after\n`);
let crashed = 0;
let total = 0;
for (const target of targets) {
  if (filters.length > 0 && !filters.some((f) => target.name.includes(f))) continue;
  const rssBefore = process.memoryUsage().rss;
  const r = await fuzzTarget(target, inputs, seed, 5, budgetMs);
  const rssAfter = process.memoryUsage().rss;
  crashed += r.crashCount;
  total += r.inputs;
  process.stdout.write(`${r.name.padEnd(18)} ${String(r.inputs).padStart(9)} ${String(r.crashCount).padStart(7)} ${(r.ms / 1000).toFixed(1).padStart(8)} `
    + `${String(Math.round(r.inputs / (r.ms / 1000))).padStart(9)}  ${mb(rssBefore)}/${mb(rssAfter)}\n`);
  for (const c of r.crashes) process.stdout.write(`    ${c.message}\n`);
}
await close();
process.stdout.write(`${total} inputs in all; ${crashed === 0 ? 'no crashes' : `${crashed} crash(es)`}\n`);
process.exitCode = crashed === 0 ? 0 : 1;
