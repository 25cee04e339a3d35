// The router process's entry point: bin/weaver, `weave launch`, the
// Kubernetes launcher and the plugin image run this file with the router's
// Node flags (WEAVER_NODE_FLAGS).
//
// It holds the V8 flags back before the router's modules load, so Node's
// code cache for its own modules is used (v8-flags.cts says why), then
// compiles and runs the bundled router with V8's code cache for it
// (code-cache.cts). CommonJS, so that nothing but this file and the two it
// requires is compiled before that.
//
// WEAVE_CODE_CACHE=off compiles the router from source at every start (an
// A/B of the cache); any other value is the cache file's path.
import { join } from 'node:path';
import { deferV8Flags } from './v8-flags.cjs';

deferV8Flags();
// Required once the flags are held back, not imported (imports run first): it loads Node's crypto,
// vm and module, which are then compiled from Node's cache.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runWithCodeCache } = require('./code-cache.cjs') as typeof import('./code-cache.cjs');

/** scripts/bundle-router.mjs writes the router here. */
const ROUTER = join(__dirname, '..', 'router', 'weaver.cjs');
const setting = process.env['WEAVE_CODE_CACHE'];
const cacheFile = setting === 'off' ? undefined : setting || `${ROUTER}.cache`;
try {
  runWithCodeCache(ROUTER, cacheFile);
} catch (err) {
  process.stderr.write(`weave: cannot load the router (${ROUTER}): ${(err as Error).message}\n`);
  process.exit(1);
}
