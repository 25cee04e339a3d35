// kill -9 at random points during IPAM writes, `iterations` times: counts
// acknowledged allocations, losses and corrupt files (both must be 0).
//
//   node dist/bench/ipam-crash-bench.js [iterations=1000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateUntilKilled, missingAfterRestart } from '../test/support/ipam-crash.js';

const iterations = Number(process.argv[2] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'ipam-crash-bench-'));
const acked = new Map<string, string>();
let lost = 0;
let corrupt = 0;
const started = Date.now();
try {
  for (let i = 0; i < iterations; i++) {
    for (const [k, v] of await allocateUntilKilled(dir, `it${i}-`, 1 + Math.floor(Math.random() * 3), Math.floor(Math.random() * 40))) acked.set(k, v);
    try {
      const missing = missingAfterRestart(dir, acked);
      lost += missing.length;
      for (const m of missing.slice(0, 3)) process.stdout.write(`lost: ${m}\n`);
    } catch (err) {
      corrupt++;
      process.stdout.write(`iteration ${i}: ${(err as Error).message}\n`);
      break;
    }
    if ((i + 1) % 100 === 0) process.stdout.write(`${i + 1} kills, ${acked.size} acknowledged, ${lost} lost\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const dupes = acked.size - new Set(acked.values()).size;
process.stdout.write(`${iterations} kills in ${((Date.now() - started) / 1000).toFixed(0)} s: ${acked.size} allocations acknowledged, `
  + `${lost} lost, ${corrupt} corrupt files, ${dupes} addresses acknowledged twice\n`);
process.exitCode = lost + corrupt + dupes === 0 ? 0 : 1;
