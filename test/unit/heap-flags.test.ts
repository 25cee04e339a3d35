// The router's heap flags held back while its modules load (weaver/heap-flags.cts,
// weaver/start.cts). Each case runs a fresh Node process, as V8's flags are
// global to one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WEAVER_MAIN, WEAVER_NODE_FLAGS } from '../../controlplane/cli/daemon.js';
import { isManagedHeapFlag } from '../../weaver/heap-flags.cjs';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLED_ROUTER = `${DIST}router/weaver.js`;
const HEAP_FLAGS_MODULE = `${DIST}weaver/heap-flags.cjs`;

function node(args: string[], env: NodeJS.ProcessEnv = {}): { stdout: string; stderr: string } {
  const { NODE_EXTRA_CA_CERTS: _unused, ...base } = process.env;
  const r = spawnSync(process.execPath, args, { env: { ...base, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Node's modules whose code cache V8 accepted and rejected (NODE_DEBUG_NATIVE=CODE_CACHE). */
function codeCache(entry: string): { accepted: Set<string>; rejected: Set<string>; stdout: string } {
  const r = node([...WEAVER_NODE_FLAGS, entry, '--version'], { NODE_DEBUG_NATIVE: 'CODE_CACHE' });
  const accepted = new Set<string>();
  const rejected = new Set<string>();
  for (const m of r.stderr.matchAll(/Code cache of (\S+) \(\w+\) is (accepted|rejected)/g)) (m[2] === 'accepted' ? accepted : rejected).add(m[1]!);
  return { accepted, rejected, stdout: r.stdout };
}

test('every Node flag the router starts with is one the entry point holds back', () => {
  for (const flag of WEAVER_NODE_FLAGS) assert.ok(isManagedHeapFlag(flag), `${flag} is not in weaver/heap-flags.cts`);
  assert.ok(!isManagedHeapFlag('--stack-size=900'));
});

test('started through its entry point, the router loads Node\'s modules from their code cache', () => {
  const direct = codeCache(BUNDLED_ROUTER);
  assert.ok(direct.rejected.has('http') && direct.rejected.has('net'), 'with the heap flags set, V8 rejects the cache (what the entry point is for)');
  const started = codeCache(WEAVER_MAIN);
  assert.match(started.stdout, /^weave \d/);
  for (const m of ['http', 'net', 'crypto', 'worker_threads', 'internal/modules/esm/loader']) {
    assert.ok(started.accepted.has(m), `${m}: cache not used (rejected: ${[...started.rejected].join(' ')})`);
  }
});

test('held back, the heap keeps its 1 MiB semi-spaces; set again, the old generation grows by 20 %', () => {
  // Old-space growth under a workload that keeps ~10 chunks of objects alive, and the young generation's size.
  const workload = (restore: boolean): { newSpace: number; maxHeap: number } => {
    const script = `
      const { deferHeapFlags, restoreHeapFlags } = require(${JSON.stringify(HEAP_FLAGS_MODULE)});
      const v8 = require('node:v8');
      deferHeapFlags();
      ${restore ? 'restoreHeapFlags();' : ''}
      const keep = []; let maxHeap = 0, newSpace = 0;
      for (let round = 0; round < 40; round++) {
        const chunk = []; for (let i = 0; i < 50000; i++) chunk.push({ a: i, b: 'x' + i });
        keep.push(chunk); if (keep.length > 10) keep.splice(0, 5);
        for (let i = 0; i < 200000; i++) ({ t: i });
        maxHeap = Math.max(maxHeap, v8.getHeapStatistics().total_heap_size);
        newSpace = Math.max(newSpace, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
      }
      process.stdout.write(JSON.stringify({ newSpace, maxHeap }));`;
    return JSON.parse(node([...WEAVER_NODE_FLAGS, '-e', script]).stdout) as { newSpace: number; maxHeap: number };
  };
  const heldBack = workload(false);
  const restored = workload(true);
  const MiB = 1024 * 1024;
  for (const r of [heldBack, restored]) assert.ok(r.newSpace <= 2 * MiB, `new space ${r.newSpace / MiB} MiB: the semi-space size set at start was lost`);
  assert.ok(restored.maxHeap < heldBack.maxHeap * 0.75,
    `heap peaked at ${(restored.maxHeap / MiB).toFixed(1)} MiB with the growing factor set again, ${(heldBack.maxHeap / MiB).toFixed(1)} MiB without`);
});
