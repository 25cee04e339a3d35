// Long chaos run on real routers (test/netns/chaos-runner.ts): prints the
// fault log and the time to recovery per step (median, max). Needs root
// (network namespaces).
//
//   node dist/bench/chaos-bench.js [steps=200] [hosts=5] [seed] [password]
//
// With a password every router is launched with it and the invariants include
// that no container payload crosses the underlay in plaintext.
import { withWeaveBed } from '../test/netns/lib/index.js';
import { ChaosRunner, summarise } from '../test/netns/chaos-runner.js';

const steps = Number(process.argv[2] ?? 200);
const hosts = Number(process.argv[3] ?? 5);
const seed = Number(process.argv[4] ?? Date.now() % 1_000_000);
const password = process.argv[5];
/** The bound: every container reaches every other within 5 s of the heal or relaunch (the run fails only past recoveryBoundMs). */
const TARGET_RECOVERY_MS = 5_000;

process.stdout.write(`chaos-bench: ${steps} steps on ${hosts} routers, seed ${seed}\n`);
await withWeaveBed(hosts, async (bed) => {
  const runner = new ChaosRunner(bed, {
    steps, seed, holdMs: 3_000, recoveryBoundMs: 30_000, ...(password === undefined ? {} : { password }), log: (l) => process.stdout.write(`${l}\n`),
  });
  await runner.setUp();
  const result = await runner.run();
  const { median, max } = summarise(result.steps);
  const byFault = new Map<string, number[]>();
  for (const s of result.steps) byFault.set(s.fault, [...(byFault.get(s.fault) ?? []), s.recoveryMs]);
  const slow = result.steps.filter((s) => s.recoveryMs > TARGET_RECOVERY_MS).length;
  process.stdout.write(`\n${result.steps.length} steps, ${result.containers} containers; recovery median ${median} ms, max ${max} ms; `
    + `${slow} steps over ${TARGET_RECOVERY_MS} ms\n`);
  for (const [fault, times] of [...byFault].sort()) {
    times.sort((a, b) => a - b);
    process.stdout.write(`  ${fault.padEnd(12)} ${String(times.length).padStart(4)} steps  median ${times[Math.floor(times.length / 2)]} ms  max ${times[times.length - 1]} ms\n`);
  }
  const left = await runner.resetAll();
  process.stdout.write(left.length === 0 ? 'weave reset left nothing behind\n' : `left behind after weave reset: ${left.join(', ')}\n`);
  if (left.length > 0) process.exitCode = 1;
}, { command: 'reset' });
