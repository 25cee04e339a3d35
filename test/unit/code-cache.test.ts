// V8's code cache for the router bundle (weaver/code-cache.cts). Each start is
// a fresh Node process, as the router's is: the loaded script requires the
// module that loaded it and saves the cache, as the bundle does once ready.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAscii } from 'node:buffer';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCommand, runCommand } from '../support/exec.js';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const CODE_CACHE_MODULE = `${DIST}weaver/code-cache.cjs`;
const DIGEST_BYTES = 20;

interface Start { use: string; wanted: boolean; saved: { use: string; written?: number; error?: string } | undefined; answer: string }

/** A script with enough functions for a cache worth the name, which answers `answer` and saves the cache. */
function script(answer: string): string {
  const functions = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${i % 7}; }`).join('\n');
  const calls = Array.from({ length: 200 }, (_, i) => `f${i}(${i})`).join(' + ');
  return `${functions}
const sum = ${calls};
// As the router: asks whether a cache is wanted (it then waits for its first connection), writes it to a
// temporary file renamed over the cache.
const wanted = require(${JSON.stringify(CODE_CACHE_MODULE)}).codeCacheWanted();
const saved = require(${JSON.stringify(CODE_CACHE_MODULE)}).saveCodeCache((path, data) => {
  const fs = require('node:fs');
  fs.writeFileSync(path + '.tmp', data);
  fs.renameSync(path + '.tmp', path);
});
process.stdout.write(JSON.stringify({ wanted, saved, answer: ${JSON.stringify(answer)}, sum }) + '\\n');
`;
}

async function start(file: string, cacheFile: string | undefined): Promise<Start> {
  const runner = `const use = require(${JSON.stringify(CODE_CACHE_MODULE)}).runWithCodeCache(${JSON.stringify(file)}, ${JSON.stringify(cacheFile)});
process.stdout.write(JSON.stringify({ use }) + '\\n');`;
  const args = ['-e', runner];
  const r = await runCommand(process.execPath, args, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${describeCommand(process.execPath, args)} exited ${r.code}: ${r.stderr}`);
  const [ran, loaded] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const use = loaded!['use'] as string;
  const wanted = ran!['wanted'] as boolean;
  assert.equal(wanted, ['absent', 'stale', 'rejected'].includes(use), `cache wanted after a start that found it ${use}`);
  return { use, wanted, saved: ran!['saved'] as Start['saved'], answer: ran!['answer'] as string };
}

/** A directory holding a script (bundle.cjs) and where its cache goes, removed afterwards. */
async function withScript(answer: string, fn: (file: string, cache: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'code-cache-'));
  try {
    const file = join(dir, 'bundle.cjs');
    writeFileSync(file, script(answer));
    await fn(file, `${file}.cache`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a start with no cache writes one; the next compiles from it', () => withScript('first', async (file, cache) => {
  const first = await start(file, cache);
  assert.equal(first.use, 'absent');
  assert.equal(first.saved?.use, 'absent');
  assert.ok((first.saved?.written ?? 0) > DIGEST_BYTES, `nothing written: ${JSON.stringify(first.saved)}`);
  assert.equal(readFileSync(cache).length, first.saved?.written);
  const second = await start(file, cache);
  assert.deepEqual([second.use, second.saved, second.answer], ['accepted', { use: 'accepted' }, 'first']);
}));

test('a cache made from another source of the same length is not used, and is replaced', () => withScript('older', async (file, cache) => {
  await start(file, cache);
  // V8 alone would take this cache: it checks the source by its length.
  writeFileSync(file, script('newer'));
  const rebuilt = await start(file, cache);
  assert.deepEqual([rebuilt.use, rebuilt.answer], ['stale', 'newer']);
  assert.ok((rebuilt.saved?.written ?? 0) > DIGEST_BYTES);
  assert.equal((await start(file, cache)).use, 'accepted');
}));

test('a cache V8 refuses is compiled around and replaced; an unwritable one leaves the start alone', () => withScript('answer', async (file, cache) => {
  await start(file, cache);
  const good = readFileSync(cache);
  // The right digest before bytes that are not V8's: a cache corrupted on disk, or another V8's.
  writeFileSync(cache, Buffer.concat([good.subarray(0, DIGEST_BYTES), Buffer.alloc(good.length - DIGEST_BYTES, 0x5a)]));
  const refused = await start(file, cache);
  assert.deepEqual([refused.use, refused.answer], ['rejected', 'answer']);
  assert.ok((refused.saved?.written ?? 0) > DIGEST_BYTES);
  assert.equal((await start(file, cache)).use, 'accepted');

  const nowhere = await start(file, join(dirname(file), 'no-such-directory', 'bundle.cjs.cache'));
  assert.deepEqual([nowhere.use, nowhere.answer], ['absent', 'answer']);
  assert.match(nowhere.saved?.error ?? '', /ENOENT/);

  const off = await start(file, undefined);
  assert.deepEqual([off.use, off.saved, off.answer], ['off', { use: 'off' }, 'answer']);
}));

test('the router bundle is ASCII, so it is read without decoding and kept at a byte per character', () => {
  const bundle = `${DIST}router/weaver.cjs`;
  assert.ok(existsSync(bundle), `${bundle} missing: run make build`);
  assert.ok(isAscii(readFileSync(bundle)));
  assert.ok(isAscii(readFileSync(`${DIST}router/sleeve-worker.js`)));
});
