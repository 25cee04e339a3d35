// Collects the router's whole heap now and then, as Go's runtime forces a
// collection at least every two minutes.
//
// Why: V8 runs a full collection only when the old generation outgrows a limit
// it sets from the live size after the previous one. Between two, under a
// steady trickle of work (container churn, gossip, DNS), the old space fills
// with dead objects, and V8 commits new pages for them rather than collect. The
// RSS then steps up with each such swing and stays: the soak saw the main
// isolate's committed heap rise 4.6 MiB in 30 min for a live heap that did
// not grow. A full collection also compacts fragmented pages, when V8 finds
// that cheap enough, and gives empty ones back. In two hour-long soaks with
// churn, the routers collecting every 60 s grew 5.9-7.3 MiB from their level
// at 5 minutes to the end, the ones that did not 9.3-10.0 MiB, for 10-12 %
// more CPU, two thirds of it on V8's helper threads (marking, sweeping,
// compiling). A collection of a router's heap (10-20 MiB)
// pauses it 8-30 ms here.
//
// V8 exposes a collection to JavaScript only with --expose-gc. Set at run
// time, the flag gives the function to contexts created from then on, not to
// the router's own globals: the function is taken from a fresh context. Each
// isolate collects its own heap, so the sleeve's packet worker runs its own
// collections (worker.ts); this module sits here, beside malloc-trim.ts, for
// both threads to use.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { intervalFromEnv } from './interval-env.js';

/**
 * How often the router collects by default. Between two collections the RSS
 * climbs as the old space fills with dead objects, and drops at the next: with
 * a collection a minute the hour-long soak (3 routers, 10 churn operations/s)
 * saw that sawtooth reach 2.5-3.5 MiB over the router's settled level, its
 * peaks 11.4-13.7 % over the level at 5 minutes. In one soak, side by side:
 * every 60 s peaked at 72.7 MiB (11.4 %) for 186 s of CPU in the hour, every
 * 30 s at 69.9 MiB (7.8 %) for 194 s, every 20 s at 69.6 MiB (4.8 %) for 205 s.
 */
export const DEFAULT_FULL_GC_INTERVAL_MS = 30_000;

/** Environment variable overriding the interval (seconds; 0 turns forced collections off, e.g. to compare in a soak). */
export const FULL_GC_ENV = 'WEAVE_FULL_GC_SEC';

/** Environment variable: 0 makes the forced collections leave compaction to V8's own choice (to compare in a soak). */
export const FULL_GC_COMPACT_ENV = 'WEAVE_FULL_GC_COMPACT';

export type Collect = () => void;

/**
 * V8's full collection, for this thread's isolate. Sets --expose-gc, which
 * changes V8's flag hash: Node's code cache is then refused for built-in
 * modules loaded later, so call it once the router has started.
 */
export function fullCollector(): Collect {
  setFlagsFromString('--expose-gc');
  const collect = exposedCollector();
  if (!collect) throw new Error('weave: V8 gave no gc function with --expose-gc set');
  return collect;
}

/**
 * V8's full collection for this thread's isolate if another thread has set
 * --expose-gc already, else undefined. The packet worker uses this: the
 * router's main thread decides when the flag changes.
 */
export function exposedCollector(): Collect | undefined {
  const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
  if (typeof gc !== 'function') return undefined;
  return () => {
    (gc as () => void)();
  };
}

export interface FullGcReport {
  /** The isolate's committed heap before and after, bytes. */
  heapBefore: number;
  heapAfter: number;
  /** How long the collection took. */
  ms: number;
}

/**
 * `collect`, made to compact: V8 moves the live objects out of every
 * fragmented page, not only those its heuristics pick, and gives the emptied
 * pages back. Without it the old space kept ~30 % of its committed pages free
 * but scattered under churn (a soak router: 12.5 MiB committed for 9.7 MiB
 * live after 15 minutes, growing); V8 compacts only when that costs it little.
 * The flag is V8's, read when a full collection begins; set around this one
 * collection only, not V8's own: compacting every collection in a reconnection
 * burst took a router's RSS ~16 MiB over its level (daemon.ts says more).
 */
export function compacting(collect: Collect): Collect {
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/**
 * Collects every `intervalMs` on the event loop, compacting unless told not
 * to; `onCollect` hears what each did. The timer does not keep the process
 * alive. Returns a stop function.
 */
export function startFullCollections(intervalMs: number, onCollect?: (r: FullGcReport) => void, compact = true): () => void {
  if (!(intervalMs > 0)) throw new RangeError(`full collection interval ${intervalMs} ms is not positive`);
  const collect = compact ? compacting(fullCollector()) : fullCollector();
  const timer = setInterval(() => {
    const heapBefore = process.memoryUsage().heapTotal;
    const t0 = performance.now();
    collect();
    onCollect?.({ heapBefore, heapAfter: process.memoryUsage().heapTotal, ms: performance.now() - t0 });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Whether WEAVE_FULL_GC_COMPACT lets the forced collections compact: unset, empty or 1 yes, 0 no. Throws on garbage. */
export function fullGcCompacts(env: NodeJS.ProcessEnv): boolean {
  const v = env[FULL_GC_COMPACT_ENV];
  if (v === undefined || v === '' || v === '1') return true;
  if (v === '0') return false;
  throw new RangeError(`${FULL_GC_COMPACT_ENV}=${v} is neither 0 nor 1`);
}

/** The interval from WEAVE_FULL_GC_SEC (seconds; 0 for off), else the default. Throws on garbage. */
export function fullGcIntervalMs(env: NodeJS.ProcessEnv): number {
  return intervalFromEnv(env, FULL_GC_ENV, DEFAULT_FULL_GC_INTERVAL_MS, 'forced collections');
}
