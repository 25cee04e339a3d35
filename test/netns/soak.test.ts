// Two-minute soak with churn (the hour-long one is bench/soak-bench.ts): 10
// attach/detach/dns-add/dns-remove operations a second across two routers and
// a link flap every 20 s; the routers' RSS stays near its level after the
// warm-up, and file descriptors, veths, nft rules and set elements, BPF map
// entries and XFRM states return to their levels when the churn stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withWeaveBed } from './lib/index.js';
import { backToBaseline, runSoak, rssCurve, rssGrowth } from './soak-runner.js';

const DURATION_MS = 120_000;
const WARM_UP_MS = 40_000;
/** The rate the churn must reach (issue: 10 operations a second across hosts). */
const OPS_PER_SECOND = 10;
const SAMPLE_MS = 10_000;
/**
 * The bound is 10 % after 5 minutes of warm-up; a two-minute run leaves the
 * heap less time to settle, so it allows 25 % and the benchmark checks 10 %.
 */
const DRIFT = 0.25;
/**
 * RSS may rise at most this much over the last minute (medians of three
 * samples). A leak as slow as 2 MiB a minute fails an hour's soak but hides in
 * a minute's noise; this catches a fast one without flaking: routers without
 * malloc trimming rose 3-6 MiB in their second minute, trimmed ones fell 6-12.
 */
const LAST_MINUTE_GROWTH_KIB = 16 * 1024;
/** Learned MACs of departed containers age out this fast, within the footprint's wait for the baseline. */
const MAC_AGEING_SEC = 5;

test(`soak: two minutes of container, DNS and link churn at ${OPS_PER_SECOND} operations/s leave memory flat and nothing behind`, async () => {
  await withWeaveBed(2, async (bed) => {
    const r = await runSoak(bed, {
      durationMs: DURATION_MS, warmUpMs: WARM_UP_MS, sampleEveryMs: SAMPLE_MS, poolPerHost: 4, opsPerSecond: OPS_PER_SECOND,
      flapEveryMs: 20_000, flapMs: 2_000, macAgeingSec: MAC_AGEING_SEC, log: (l) => process.stdout.write(`# ${l}\n`),
    });
    process.stdout.write(`# ${r.operations} operations, churn at ${r.achievedRate.toFixed(1)}/s, ${r.errors} failed${r.firstError ? ` (first: ${r.firstError})` : ''}\n`);
    assert.equal(r.errors, 0, `churn operations failed, first: ${r.firstError}`);
    // Pacing keeps the rate unless the routers fall behind; 10 % slack for the start and the end.
    assert.ok(r.achievedRate >= OPS_PER_SECOND * 0.9, `churn reached only ${r.achievedRate.toFixed(1)} operations/s`);
    for (const [host, samples] of r.rss) {
      const c = rssCurve(samples, WARM_UP_MS / SAMPLE_MS);
      process.stdout.write(`# ${host}: RSS first ${c.first} KiB, level ${c.level}, last ${c.last}, max ${c.max}, worst drift ${(c.worstDrift * 100).toFixed(1)} %\n`);
      assert.ok(c.worstDrift <= DRIFT, `${host}: RSS strayed ${(c.worstDrift * 100).toFixed(1)} % from its level ${c.level} KiB: ${samples.join(' ')}`);
      const grew = rssGrowth(samples, 60_000 / SAMPLE_MS, 3);
      assert.ok(grew <= LAST_MINUTE_GROWTH_KIB, `${host}: RSS rose ${grew} KiB over the last minute: ${samples.join(' ')}`);
    }
    for (const [host, want] of r.before) {
      const got = r.after.get(host)!;
      process.stdout.write(`# ${host}: before ${JSON.stringify(want)} after ${JSON.stringify(got)}\n`);
      assert.ok(got.fds <= want.fds, `${host}: router fds ${want.fds} -> ${got.fds}`);
      assert.ok(backToBaseline(want, got), `${host}: kernel state back to its level: before ${JSON.stringify(want)} after ${JSON.stringify(got)}`);
    }
  }, { command: 'reset' });
});
