// The router's malloc trimming (dataplane/sys/malloc-trim.ts) against the real
// glibc: memory freed below a live allocation stays resident until trimmed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { canTrimMalloc, DEFAULT_MALLOC_TRIM_INTERVAL_MS, mallocTrimIntervalMs, startMallocTrim } from '../../dataplane/sys/malloc-trim.js';

const CHUNK = 8192;
const CHUNKS = 8000;
/** One chunk in this many stays allocated, pinning the free ones around it in the heap. */
const KEEP_EVERY = 32;

test('malloc trim gives back memory freed below live allocations (fragmentation a burst leaves)', { skip: !canTrimMalloc() && 'libc without malloc_trim' }, () => {
  const all: unknown[] = [];
  for (let i = 0; i < CHUNKS; i++) {
    const m = koffi.alloc('uint8_t', CHUNK);
    new Uint8Array(koffi.view(m, CHUNK)).fill(1); // touched: resident
    all.push(m);
  }
  const kept = all.filter((_, i) => i % KEEP_EVERY === 0);
  all.forEach((m, i) => {
    if (i % KEEP_EVERY !== 0) koffi.free(m);
  });
  const freedMiB = ((CHUNKS - kept.length) * CHUNK) / 2 ** 20;
  const trimmer = startMallocTrim(60_000)!;
  try {
    const r = trimmer.trim();
    const releasedMiB = (r.rssBefore - r.rssAfter) / 2 ** 20;
    process.stdout.write(`# freed ${freedMiB.toFixed(1)} MiB, trim released ${releasedMiB.toFixed(1)} MiB in ${r.ms.toFixed(1)} ms\n`);
    // Untrimmed, none of it would leave (every run of free chunks sits below a live one). Trims
    // gave back 37-40 of the 60.5 MiB here, alone and beside the whole unit group; a third is
    // a bound the rest of this process's allocations cannot spoil.
    assert.ok(releasedMiB > freedMiB / 3, `trim released ${releasedMiB.toFixed(1)} of ${freedMiB.toFixed(1)} MiB freed`);
  } finally {
    trimmer.stop();
    for (const m of kept) koffi.free(m);
  }
});

test('WEAVE_MALLOC_TRIM_SEC: default, seconds, 0 for off, garbage refused', () => {
  assert.equal(mallocTrimIntervalMs({}), DEFAULT_MALLOC_TRIM_INTERVAL_MS);
  assert.equal(mallocTrimIntervalMs({ WEAVE_MALLOC_TRIM_SEC: '' }), DEFAULT_MALLOC_TRIM_INTERVAL_MS);
  assert.equal(mallocTrimIntervalMs({ WEAVE_MALLOC_TRIM_SEC: '2.5' }), 2500);
  assert.equal(mallocTrimIntervalMs({ WEAVE_MALLOC_TRIM_SEC: '0' }), 0);
  assert.throws(() => mallocTrimIntervalMs({ WEAVE_MALLOC_TRIM_SEC: 'soon' }), /WEAVE_MALLOC_TRIM_SEC=soon/);
  assert.throws(() => mallocTrimIntervalMs({ WEAVE_MALLOC_TRIM_SEC: '-1' }), /not a number of seconds/);
  assert.throws(() => startMallocTrim(0), /not positive/);
});

/**
 * In a fresh process: frees a 4 MiB block (mmap'd), then asks for 512 KiB and reports whether that
 * came as a mapping of its own (glibc's mallinfo2: bytes in mmap'd blocks), with the thresholds fixed or not.
 */
function probeThresholds(fixed: boolean): { mmapped: boolean } {
  const moduleUrl = new URL('../../dataplane/sys/malloc-trim.js', import.meta.url).href;
  const script = `
    import koffi from 'koffi';
    import { fixMallocThresholds } from ${JSON.stringify(moduleUrl)};
    const libc = koffi.load('libc.so.6');
    const Mallinfo2 = koffi.struct({ arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
      usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t' });
    const mallinfo2 = libc.func('mallinfo2', Mallinfo2, []);
    const malloc = libc.func('void *malloc(size_t size)');
    const free = libc.func('void free(void *p)');
    if (${fixed} && !fixMallocThresholds()) throw new Error('mallopt refused');
    free(malloc(4 << 20));
    const before = Number(mallinfo2().hblkhd);
    const block = malloc(512 << 10);
    const after = Number(mallinfo2().hblkhd);
    free(block);
    process.stdout.write(JSON.stringify({ mmapped: after - before >= 512 << 10 }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { mmapped: boolean };
}

test('malloc thresholds stay fixed: a large block freed does not move later ones into the arenas', { skip: !canTrimMalloc() && 'libc without malloc_trim' }, () => {
  assert.deepEqual(probeThresholds(false), { mmapped: false }, "glibc's dynamic threshold: after a 4 MiB block, 512 KiB comes from an arena");
  assert.deepEqual(probeThresholds(true), { mmapped: true }, 'fixed at 128 KiB: 512 KiB is its own mapping, unmapped when freed');
});
