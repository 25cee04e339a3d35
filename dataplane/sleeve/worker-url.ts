// Where the sleeve packet worker's module is. Two modules start it — the
// datapath, and prestart.ts before the router's other modules have loaded —
// so the URL is written once, here, where the router bundle rewrites it to
// its bundled worker (scripts/bundle-router.mjs).
export const SLEEVE_WORKER_URL = new URL('./worker.js', import.meta.url);
