// Hands the router's freed native memory back to the kernel now and then.
//
// Why: glibc returns memory to the kernel only from the top of a heap, and
// only once more than M_TRIM_THRESHOLD is free there. Node's Buffers, koffi's
// call buffers, libbpf, the HTTP parser and V8's own bookkeeping allocate
// through malloc; one live allocation near the top keeps every free page
// below it resident. A burst (a link flap's reconnections, a heap snapshot, a
// large status dump) thus raises the RSS for good although the memory is
// free: the soak saw the main arena hold 70 MB for 7 MB in use, and
// malloc_trim(0) gave 60 MB back at once. malloc_trim also releases free
// pages in the middle of a heap (madvise), which no malloc setting does.
import { mallocTrim, mallopt } from './libc.js';
import { intervalFromEnv } from './interval-env.js';

/** mallopt parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** glibc's own default for both thresholds, which fixMallocThresholds keeps. */
export const MALLOC_THRESHOLD_BYTES = 128 * 1024;

/**
 * Keeps glibc's mmap and trim thresholds at their defaults instead of letting
 * them grow. By default glibc raises the mmap threshold to the size of each
 * larger mmap'd block freed (up to 32 MiB; a sleeve worker's batch buffers,
 * a weaveDNS full-state payload) and the trim threshold to twice that. From
 * then on blocks of up to that size come from the arenas, and the free top of
 * a thread's arena (V8's compiler and GC threads, libuv's pool) is kept
 * resident below the trim threshold, which malloc_trim does not touch: it
 * releases a thread arena's free bins, not its top. The soak found a router's
 * second arena holding 7 MiB free at its top for good, steps of ~5 MiB in its
 * RSS; with the thresholds fixed it went back to 1.8 MiB within 10 s.
 * Fixed thresholds: every block over 128 KiB is its own mapping, given back
 * on free. Returns whether they could be set (glibc).
 */
export function fixMallocThresholds(): boolean {
  if (mallopt === undefined) return false;
  return mallopt(M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES) === 1 && mallopt(M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES) === 1;
}

/** How often the router trims by default: bursts are gone before the next RSS sample of a 10 s monitor. */
export const DEFAULT_MALLOC_TRIM_INTERVAL_MS = 10_000;

export interface TrimReport {
  /** RSS before and after the trim, bytes. */
  rssBefore: number;
  rssAfter: number;
  /** How long malloc_trim took. */
  ms: number;
}

export interface MallocTrimmer {
  /** Trims now (also what the timer calls). */
  trim(): TrimReport;
  stop(): void;
}

/** Whether this libc can trim (glibc); elsewhere startMallocTrim returns undefined. */
export function canTrimMalloc(): boolean {
  return mallocTrim !== undefined;
}

/**
 * Calls malloc_trim(0) every `intervalMs` on the event loop (a call takes
 * about a millisecond for a router's heaps); `onTrim` hears what each did.
 * The timer does not keep the process alive.
 */
export function startMallocTrim(intervalMs: number, onTrim?: (r: TrimReport) => void): MallocTrimmer | undefined {
  if (!(intervalMs > 0)) throw new RangeError(`malloc trim interval ${intervalMs} ms is not positive`);
  const trimFn = mallocTrim;
  if (trimFn === undefined) return undefined;
  const trim = (): TrimReport => {
    const rssBefore = process.memoryUsage.rss();
    const t0 = performance.now();
    trimFn(0);
    const report = { rssBefore, rssAfter: process.memoryUsage.rss(), ms: performance.now() - t0 };
    onTrim?.(report);
    return report;
  };
  const timer = setInterval(trim, intervalMs);
  timer.unref();
  return { trim, stop: () => clearInterval(timer) };
}

/** The trim interval from WEAVE_MALLOC_TRIM_SEC (seconds; 0 turns trimming off), else the default. Throws on garbage. */
export function mallocTrimIntervalMs(env: NodeJS.ProcessEnv): number {
  return intervalFromEnv(env, 'WEAVE_MALLOC_TRIM_SEC', DEFAULT_MALLOC_TRIM_INTERVAL_MS, 'trimming');
}
