// Bundles the router (dist/weaver/entry.js, tsc's output) into dist/router/:
// weaver.js, the chunks it imports at start and one chunk per lazily imported
// part (the Docker plugin and proxy, the OVS and eBPF datapaths, IPsec, the
// metrics registry), so a router start compiles a few files instead of ~250
// modules: module loading was the largest part of exec -> API answering.
// Run by `make build` after tsc; bin/weaver and `weave launch` run the bundle.
//
// External (loaded from node_modules as before): the native addons (koffi,
// sodium-native) and the packages the router loads only on demand
// (prom-client on the first scrape, light-my-request for in-process calls).
// pino is bundled: its only paths that need files beside it (__dirname) are
// transports running in worker threads, which the router does not use.
//
// Modules that find files beside themselves (the BPF objects, the weavewait
// binaries) do it relative to their own URL, so each bundled module's
// `import.meta.url` is rewritten to its URL in dist/ as tsc laid it out.
//
// The sleeve's packet worker is bundled on its own (dist/router/sleeve-worker.js,
// one file): a worker thread loads its modules afresh, and the worker starts
// when the first connection comes, so its module loading delays that
// connection. The bundled router starts that file instead of
// dist/dataplane/sleeve/worker.js (WORKER_URL below).
import { build } from 'esbuild';
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const OUT = join(DIST, 'router');
const EXTERNAL = ['koffi', 'sodium-native', 'prom-client', 'light-my-request'];

/** Where worker-url.js names the sleeve worker, and what the bundle names instead (a file beside every chunk). */
const SLEEVE_WORKER_URL_MODULE = join(DIST, 'dataplane', 'sleeve', 'worker-url.js');
const WORKER_URL = { source: "new URL('./worker.js', import.meta.url)", bundled: "new URL('./sleeve-worker.js', import.meta.url)" };

/** Rewrites `import.meta.url` in each dist module to the module's own dist URL, computed from the chunk's. */
const keepModuleUrls = {
  name: 'keep-module-urls',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(DIST + '/')) return undefined;
      let text = await readFile(args.path, 'utf8');
      if (args.path === SLEEVE_WORKER_URL_MODULE) {
        if (!text.includes(WORKER_URL.source)) throw new Error(`bundle-router: ${args.path} no longer names the worker as ${WORKER_URL.source}; update WORKER_URL`);
        // Relative to the chunk, not to the module's dist URL: the rewrite below leaves it alone.
        text = text.replace(WORKER_URL.source, WORKER_URL.bundled.replace('import.meta.url', 'import.meta["url"]'));
      }
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'js', resolveDir: dirname(args.path) };
      // Every chunk sits in OUT, so the path from a chunk to the module's dist file is fixed.
      const fromChunk = relative(OUT, args.path);
      return {
        contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromChunk)}, import.meta.url).href`),
        loader: 'js',
        resolveDir: dirname(args.path),
      };
    });
  },
};

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // CommonJS dependencies bundled into ESM (pino, dns-packet) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);" },
  sourcemap: true,
  plugins: [keepModuleUrls],
  metafile: true,
  logLevel: 'warning',
};

const result = await build({
  ...common,
  entryPoints: [{ in: join(DIST, 'weaver', 'main.js'), out: 'weaver' }],
  outdir: OUT,
  splitting: true,
});
// One file, no chunks shared with the router: the worker loads nothing it does not run.
const worker = await build({
  ...common,
  entryPoints: [{ in: join(DIST, 'dataplane', 'sleeve', 'worker.js'), out: 'sleeve-worker' }],
  outdir: OUT,
});

// Chunk names carry content hashes: remove those of earlier builds (after writing, so a router
// started meanwhile still finds every file it imports).
const written = new Set([...Object.keys(result.metafile.outputs), ...Object.keys(worker.metafile.outputs)].map((f) => resolve(f)));
for (const f of await readdir(OUT)) {
  if (!written.has(join(OUT, f))) await rm(join(OUT, f), { force: true });
}
const outputs = [...Object.entries(result.metafile.outputs), ...Object.entries(worker.metafile.outputs)].filter(([file]) => file.endsWith('.js'));
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0);
process.stdout.write(`bundle-router: ${outputs.length} files, ${(bytes / 1024).toFixed(0)} KiB in ${relative(process.cwd(), OUT)}\n`);
