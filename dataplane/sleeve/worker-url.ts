// Where the sleeve packet worker's module is, and the heap it starts with:
// kept apart from the datapath because the router bundle rewrites this URL to
// its bundled worker (scripts/bundle-router.mjs).
import type { ResourceLimits } from 'node:worker_threads';

export const SLEEVE_WORKER_URL = new URL('./worker.js', import.meta.url);

/**
 * A young generation of 3 MiB (1 MiB semi-spaces), as the router's own
 * (--max-semi-space-size=1, controlplane/cli/daemon.ts). A worker's isolate
 * does not take that flag: the entry point has put it back to V8's default
 * by the time the worker starts (weaver/v8-flags.cts), so the worker's young
 * generation could grow to 48 MiB under sleeve load, and did: ~25 MiB more RSS
 * at 2-3.5 Gbit/s. The worker's packet path allocates little per batch.
 */
export const SLEEVE_WORKER_RESOURCE_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 3 };
