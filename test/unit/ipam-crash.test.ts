// kill -9 at random points during IPAM writes (bench/ipam-crash-bench.ts does
// a thousand): nothing acknowledged is lost and the file always loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateUntilKilled, missingAfterRestart } from '../support/ipam-crash.js';

const ITERATIONS = 12;

test(`kill -9 during IPAM writes, ${ITERATIONS} times: every acknowledged allocation survives and the file loads`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipam-crash-'));
  try {
    const acked = new Map<string, string>();
    for (let i = 0; i < ITERATIONS; i++) {
      // At least one acknowledgement each time, then the kill lands 0-19 ms into the writes that follow.
      for (const [k, v] of await allocateUntilKilled(dir, `it${i}-`, 1 + (i % 3), (i * 7) % 20)) acked.set(k, v);
      assert.deepEqual(missingAfterRestart(dir, acked), [], `iteration ${i}`);
    }
    assert.ok(acked.size >= ITERATIONS, `${acked.size} allocations acknowledged`);
    assert.equal(new Set(acked.values()).size, acked.size, 'no address acknowledged twice');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
