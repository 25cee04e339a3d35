// The router process's entry point: bin/weaver, `weave launch`, the
// Kubernetes launcher and the plugin image run this file with the router's
// Node flags (WEAVER_NODE_FLAGS).
//
// It holds the V8 flags back before the router's modules load, so Node's
// code cache for its own modules is used (v8-flags.cts says why), then loads
// the bundled router. CommonJS, so that nothing but this file and
// v8-flags.cjs is compiled before that.
import { deferV8Flags } from './v8-flags.cjs';

deferV8Flags();

/** scripts/bundle-router.mjs writes the router here. A variable, as tsc knows only the sources. */
const ROUTER = '../router/weaver.js';
import(ROUTER).catch((err: Error) => {
  process.stderr.write(`weave: cannot load the router (${ROUTER}): ${err.message}\n`);
  process.exit(1);
});
