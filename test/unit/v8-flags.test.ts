// The router's V8 flags held back while its modules load (weaver/v8-flags.cts,
// weaver/start.cts). Each case runs a fresh Node process, as V8's flags are
// global to one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { WEAVER_MAIN, WEAVER_NODE_FLAGS } from '../../controlplane/cli/daemon.js';
import { isManagedV8Flag } from '../../weaver/v8-flags.cjs';
import { describeCommand, runCommand } from '../support/exec.js';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLED_ROUTER = `${DIST}router/weaver.cjs`;
const V8_FLAGS_MODULE = `${DIST}weaver/v8-flags.cjs`;
const SLEEVE_WORKER_URL_MODULE = `${DIST}dataplane/sleeve/worker-url.js`;

async function node(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  const { NODE_EXTRA_CA_CERTS: _unused, ...base } = process.env;
  const r = await runCommand(process.execPath, args, { env: { ...base, ...env }, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${describeCommand(process.execPath, args)} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Node's modules whose code cache V8 accepted and rejected (NODE_DEBUG_NATIVE=CODE_CACHE). */
async function codeCache(entry: string): Promise<{ accepted: Set<string>; rejected: Set<string>; stdout: string }> {
  const r = await node([...WEAVER_NODE_FLAGS, entry, '--version'], { NODE_DEBUG_NATIVE: 'CODE_CACHE' });
  const accepted = new Set<string>();
  const rejected = new Set<string>();
  for (const m of r.stderr.matchAll(/Code cache of (\S+) \(\w+\) is (accepted|rejected)/g)) (m[2] === 'accepted' ? accepted : rejected).add(m[1]!);
  return { accepted, rejected, stdout: r.stdout };
}

test('every Node flag the router starts with is one the entry point holds back', () => {
  for (const flag of WEAVER_NODE_FLAGS) assert.ok(isManagedV8Flag(flag), `${flag} is not in weaver/v8-flags.cts`);
  assert.ok(!isManagedV8Flag('--stack-size=900'));
});

test('started through its entry point, the router loads Node\'s modules from their code cache', async () => {
  const direct = await codeCache(BUNDLED_ROUTER);
  assert.ok(direct.rejected.has('http') && direct.rejected.has('net'), 'with the router\'s V8 flags set, V8 rejects the cache (what the entry point is for)');
  const started = await codeCache(WEAVER_MAIN);
  assert.match(started.stdout, /^weave \d/);
  for (const m of ['http', 'net', 'crypto', 'worker_threads', 'internal/modules/esm/loader']) {
    assert.ok(started.accepted.has(m), `${m}: cache not used (rejected: ${[...started.rejected].join(' ')})`);
  }
});

test('held back, the heap keeps its 1 MiB semi-spaces; set again, the old generation grows by 20 %', async () => {
  // Old-space growth under a workload that keeps ~10 chunks of objects alive, and the young generation's size.
  const workload = async (restore: boolean): Promise<{ newSpace: number; maxHeap: number }> => {
    const script = `
      const { deferV8Flags, restoreV8Flags } = require(${JSON.stringify(V8_FLAGS_MODULE)});
      const v8 = require('node:v8');
      deferV8Flags();
      ${restore ? 'restoreV8Flags();' : ''}
      const keep = []; let maxHeap = 0, newSpace = 0;
      for (let round = 0; round < 40; round++) {
        const chunk = []; for (let i = 0; i < 50000; i++) chunk.push({ a: i, b: 'x' + i });
        keep.push(chunk); if (keep.length > 10) keep.splice(0, 5);
        for (let i = 0; i < 200000; i++) ({ t: i });
        maxHeap = Math.max(maxHeap, v8.getHeapStatistics().total_heap_size);
        newSpace = Math.max(newSpace, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
      }
      process.stdout.write(JSON.stringify({ newSpace, maxHeap }));`;
    return JSON.parse((await node([...WEAVER_NODE_FLAGS, '-e', script])).stdout) as { newSpace: number; maxHeap: number };
  };
  const heldBack = await workload(false);
  const restored = await workload(true);
  const MiB = 1024 * 1024;
  for (const r of [heldBack, restored]) assert.ok(r.newSpace <= 2 * MiB, `new space ${r.newSpace / MiB} MiB: the semi-space size set at start was lost`);
  assert.ok(restored.maxHeap < heldBack.maxHeap * 0.75,
    `heap peaked at ${(restored.maxHeap / MiB).toFixed(1)} MiB with the growing factor set again, ${(heldBack.maxHeap / MiB).toFixed(1)} MiB without`);
});

test('set again, the interrupt budget makes TurboFan wait for 16x the work before optimising a function', async () => {
  // How many calls of a small hot function V8 ran before it started compiling it with TurboFan (--trace-opt).
  const callsBeforeTurbofan = async (restore: boolean): Promise<number> => {
    const script = `
      const { deferV8Flags, restoreV8Flags } = require(${JSON.stringify(V8_FLAGS_MODULE)});
      deferV8Flags();
      ${restore ? 'restoreV8Flags();' : ''}
      function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 3; return s; }
      const a = Array.from({ length: 100 }, (_, i) => i);
      for (let calls = 1; calls <= 5000; calls++) { hot(a); if (calls % 5 === 0) console.log('calls ' + calls); }`;
    const lines = (await node([...WEAVER_NODE_FLAGS, '--trace-opt', '-e', script])).stdout.split('\n');
    const compiled = lines.findIndex((l) => /compiling method .*JSFunction hot .*TURBOFAN/.test(l));
    assert.ok(compiled >= 0, 'hot() was never optimised');
    const before = lines.slice(0, compiled).reverse().find((l) => l.startsWith('calls '));
    return Number(before?.slice('calls '.length) ?? 0);
  };
  const heldBack = await callsBeforeTurbofan(false);
  const restored = await callsBeforeTurbofan(true);
  assert.ok(restored >= heldBack * 10, `optimised after ${restored} calls with the budget set again, ${heldBack} with V8's default`);
});

test('the sleeve worker keeps 1 MiB semi-spaces, which a worker started once the flags are held back would not', async () => {
  // The largest new space of a worker allocating short-lived objects, started as the router starts its packet worker.
  const workerNewSpace = async (limited: boolean): Promise<number> => {
    const script = `
      const { deferV8Flags } = require(${JSON.stringify(V8_FLAGS_MODULE)});
      deferV8Flags();
      const { Worker } = require('node:worker_threads');
      import(${JSON.stringify(SLEEVE_WORKER_URL_MODULE)}).then(({ SLEEVE_WORKER_RESOURCE_LIMITS }) => {
        const code = \`const v8 = require('node:v8'); let keep = [], max = 0;
          for (let r = 0; r < 200; r++) {
            const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i });
            keep.push(a); if (keep.length > 4) keep.shift();
            max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
          }
          require('node:worker_threads').parentPort.postMessage(max);\`;
        const w = new Worker(code, { eval: true, ${limited ? 'resourceLimits: SLEEVE_WORKER_RESOURCE_LIMITS' : ''} });
        w.on('message', (max) => process.stdout.write(String(max)));
      });`;
    return Number((await node([...WEAVER_NODE_FLAGS, '-e', script])).stdout);
  };
  const MiB = 1024 * 1024;
  const limited = await workerNewSpace(true);
  const unlimited = await workerNewSpace(false);
  assert.ok(limited <= 2 * MiB, `the sleeve worker's new space reached ${limited / MiB} MiB`);
  assert.ok(unlimited > 4 * MiB, `without its limits a worker's new space stayed at ${unlimited / MiB} MiB: are the limits still needed?`);
});
