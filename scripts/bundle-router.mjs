// Bundles the router (dist/weaver/main.js, tsc's output) into one CommonJS
// file, dist/router/weaver.cjs, so a router start compiles one file instead
// of ~250 modules: module loading was the largest part of exec -> API
// answering. CommonJS because the entry point compiles it with V8's code
// cache (weaver/code-cache.cts), which Node 20 offers for scripts only. The
// lazily imported parts (the Docker plugin and proxy, the OVS and eBPF
// datapaths, IPsec, the metrics registry) are in it too: V8 only pre-parses a
// function until it first runs, and the cache holds what a start compiles.
// Run by `make build` after tsc; bin/weaver and `weave launch` run the bundle.
//
// External (loaded from node_modules as before): the native addons (koffi,
// sodium-native) and the packages the router loads only on demand
// (prom-client on the first scrape, light-my-request for in-process calls,
// the Kubernetes client that weave-npc loads only when it watches an API
// server); and weaver/code-cache.cjs, which the entry point has loaded: the router
// requires that same module to save the cache once it has started.
// pino is bundled: its only paths that need files beside it (__dirname) are
// transports running in worker threads, which the router does not use.
//
// Modules that find files beside themselves (the BPF objects, the weavewait
// binaries) do it relative to their own URL, so each bundled module's
// `import.meta.url` is rewritten to its URL in dist/ as tsc laid it out,
// computed from the bundle's own URL.
//
// The sleeve's packet worker is bundled on its own, as an ES module
// (dist/router/sleeve-worker.js, one file): a worker thread loads its modules
// afresh, and the worker starts when the first connection needs it, so its
// module loading delays that connection. The bundled router starts that file
// instead of dist/dataplane/sleeve/worker.js (WORKER_URL below). So are the
// `weave` command, the CNI plugin and weave-npc, each into one ES module
// (dist/router/weave.js, weave-cni.js, weave-npc.js) that bin/ runs.
import { build } from 'esbuild';
import { isAscii } from 'node:buffer';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const OUT = join(DIST, 'router');
const EXTERNAL = ['koffi', 'sodium-native', 'prom-client', 'light-my-request', '@kubernetes/client-node'];
/** The module the entry point and the router share (see above), as tsc wrote it and as the bundle requires it. */
const SHARED_MODULE = { dist: join(DIST, 'weaver', 'code-cache.cjs'), fromBundle: '../weaver/code-cache.cjs' };
/** The bundle's own URL, for the rewritten `import.meta.url`s: CommonJS has no import.meta. */
const BUNDLE_URL = '__routerBundleUrl';

/** Where worker-url.js names the sleeve worker, and the file the bundle starts instead (beside the bundle). */
const SLEEVE_WORKER_URL_MODULE = join(DIST, 'dataplane', 'sleeve', 'worker-url.js');
const WORKER_URL = { source: "new URL('./worker.js', import.meta.url)", bundled: './sleeve-worker.js' };
const WORKER_URL_MARK = '__bundledSleeveWorkerUrl__';

/** Leaves the module shared with the entry point to Node, which has it loaded already. */
const shareEntryModule = {
  name: 'share-entry-module',
  setup(b) {
    b.onResolve({ filter: /code-cache\.cjs$/ }, (args) =>
      resolve(args.resolveDir, args.path) === SHARED_MODULE.dist ? { path: SHARED_MODULE.fromBundle, external: true } : undefined);
  },
};

/**
 * Rewrites `import.meta.url` in each dist module to the module's own dist URL,
 * computed from `outputUrl`, the output file's URL (every output sits in OUT).
 */
const keepModuleUrls = (outputUrl) => ({
  name: 'keep-module-urls',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(DIST + '/')) return undefined;
      let text = await readFile(args.path, 'utf8');
      if (args.path === SLEEVE_WORKER_URL_MODULE) {
        if (!text.includes(WORKER_URL.source)) throw new Error(`bundle-router: ${args.path} no longer names the worker as ${WORKER_URL.source}; update WORKER_URL`);
        text = text.replace(WORKER_URL.source, WORKER_URL_MARK);
      }
      const fromOutput = relative(OUT, args.path);
      text = text
        .replaceAll('import.meta.url', `new URL(${JSON.stringify(fromOutput)}, ${outputUrl}).href`)
        .replace(WORKER_URL_MARK, `new URL(${JSON.stringify(WORKER_URL.bundled)}, ${outputUrl})`);
      return { contents: text, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
});

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
};

const router = await build({
  ...common,
  entryPoints: [join(DIST, 'weaver', 'main.js')],
  outfile: join(OUT, 'weaver.cjs'),
  format: 'cjs',
  banner: { js: `const ${BUNDLE_URL} = require('node:url').pathToFileURL(__filename).href;` },
  plugins: [shareEntryModule, keepModuleUrls(BUNDLE_URL)],
});
/**
 * Leaves `module` (a dist path) out of the bundle, imported from dist as tsc laid it out: an ES
 * bundle hoists every static import of an external package to its top, so a module that imports a
 * large one and is itself imported only on demand has to stay a module of its own.
 */
const loadOnDemand = (module) => ({
  name: 'load-on-demand',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) =>
      resolve(args.resolveDir, args.path) === module ? { path: `./${relative(OUT, module)}`, external: true } : undefined);
  },
});

/** One ES module file for an entry point that shares nothing with the router: it loads nothing it does not run. */
const esmBundle = (entry, outName, plugins = []) => build({
  ...common,
  entryPoints: [entry],
  outfile: join(OUT, outName),
  format: 'esm',
  // CommonJS dependencies bundled into ESM call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);" },
  plugins: [...plugins, keepModuleUrls('import.meta.url')],
});
const worker = await esmBundle(join(DIST, 'dataplane', 'sleeve', 'worker.js'), 'sleeve-worker.js');
// The `weave` command and the CNI plugin are short-lived processes started again and again (a
// script's every command, every pod's ADD and DEL), and weave-npc's start holds back the pods
// of a router started with --expect-npc: loading their 42, 17 and 140 modules one by one
// cost CPU at every start (medians of 10 here, module by module / bundled: `weave version`
// 0.27 / 0.15 s, weave-npc to its argument check 0.31 / 0.24 s, the plugin's VERSION 0.145 / 0.13 s).
const cli = await esmBundle(join(DIST, 'controlplane', 'cli', 'main.js'), 'weave.js');
const cni = await esmBundle(join(DIST, 'controlplane', 'cni', 'entry.js'), 'weave-cni.js');
// weave-npc imports its Kubernetes source, and with it the Kubernetes client, only when it watches an API server.
const npc = await esmBundle(join(DIST, 'weaver', 'npc-main.js'), 'weave-npc.js', [loadOnDemand(join(DIST, 'controlplane', 'policy', 'kube-source.js'))]);
const esmOutputs = [worker, cli, cni, npc];

// esbuild writes strings, names and patterns in ASCII (its default charset) but keeps the
// comments it carries over as they are, and ours name spec sections with §. One non-ASCII
// character makes V8 hold the whole source, which it keeps, at two bytes per character, and
// Node decode it from UTF-8 at every start; in ASCII the entry point takes it as Latin-1.
const bundles = [router, ...esmOutputs];
/** Every file written, and the scripts among them (not their source maps). */
const written = new Set(bundles.flatMap((b) => Object.keys(b.metafile.outputs)).map((f) => resolve(f)));
const scripts = [...written].filter((f) => /\.c?js$/.test(f));
for (const file of scripts) {
  const text = await readFile(file, 'utf8');
  const ascii = text.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  if (!isAscii(Buffer.from(ascii))) throw new Error(`bundle-router: ${file} is not ASCII`);
  if (ascii !== text) await writeFile(file, ascii);
}

// A script V8 compiles from a code cache has no dynamic import() under Node 20 (it fails with
// ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING only on starts that use the cache): esbuild turns the
// router's own lazy imports into calls, so one left names an external ES module. Require it.
const dynamicImport = /\bimport\(\s*["'`]([^"'`]*)/u.exec(await readFile(join(OUT, 'weaver.cjs'), 'latin1'));
if (dynamicImport) throw new Error(`bundle-router: the router imports ${dynamicImport[1]} with import(), which fails when it is compiled from its code cache; require it (createRequire)`);

// Remove what earlier builds left (their chunks, the code cache made for the bundle this one
// replaces), after writing, so a router started meanwhile still finds every file it loads.
for (const f of await readdir(OUT)) {
  if (!written.has(join(OUT, f))) await rm(join(OUT, f), { force: true });
}
const bytes = bundles.flatMap((b) => Object.entries(b.metafile.outputs)).filter(([file]) => /\.c?js$/.test(file)).reduce((n, [, o]) => n + o.bytes, 0);
process.stdout.write(`bundle-router: ${scripts.length} files, ${(bytes / 1024).toFixed(0)} KiB in ${relative(process.cwd(), OUT)}\n`);
