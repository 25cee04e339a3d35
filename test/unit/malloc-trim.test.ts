// The router's malloc trimming (dataplane/sys/malloc-trim.ts) against the real
// glibc: memory freed below a live allocation stays resident until trimmed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
