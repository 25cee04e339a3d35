// Short chaos run (the long one is bench/chaos-bench.ts): three routers, a
// container per host plus one more per step, 20 random faults from a fixed
// seed (WEAVE_CHAOS_SEED=<n> to try another), the invariants checked after
// each, and nothing of weave left in the kernel after `weave reset`.
// Assertion messages carry the seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withWeaveBed } from './lib/index.js';
import { ChaosRunner, summarise } from './chaos-runner.js';

const seed = Number(process.env.WEAVE_CHAOS_SEED ?? 2026);
const STEPS = 20;
/** Every container reaches every other this soon after a heal or relaunch. */
const RECOVERY_BOUND_MS = 5_000;
/** With a password the invariants include no plaintext on the underlay (the bench runs without, on the fast datapath). */
const PASSWORD = 'chaos-secret';

test(`chaos: ${STEPS} faults on three routers keep every container reachable and every address unique (seed ${seed})`, async () => {
  await withWeaveBed(3, async (bed) => {
    const runner = new ChaosRunner(bed, {
      steps: STEPS, seed, holdMs: 1_000, recoveryBoundMs: RECOVERY_BOUND_MS, ringCheckEvery: 5, password: PASSWORD,
      log: (l) => process.stdout.write(`# ${l}\n`),
    });
    await runner.setUp();
    const { steps, containers } = await runner.run();
    assert.equal(steps.length, STEPS);
    const { median, max } = summarise(steps);
    process.stdout.write(`# seed ${seed}: ${steps.length} steps, ${containers} containers, recovery median ${median} ms, max ${max} ms\n`);
    assert.ok(max <= RECOVERY_BOUND_MS);
    assert.deepEqual(await runner.resetAll(), [], 'weave reset leaves no weave links or nft tables behind');
  }, { command: 'reset' });
});
