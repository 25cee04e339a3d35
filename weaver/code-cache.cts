// V8's compiled code for the router bundle, kept from one start to the next.
//
// Each start compiled the 1.2 MB bundle and then every function the start
// runs: ~60 ms of the ~300 ms of CPU a router needs until it is ready, paid
// once per router when a mesh starts together on few cores. V8 can serialise
// a script's bytecode, with that of every function compiled so far, and take
// it back when the same source is compiled again. Node offers this for ES
// modules only from v22 (module.enableCompileCache), so the router is bundled
// as one CommonJS file and compiled here, through vm.Script.
//
// The cache is made once the router has started (saveCodeCache, called once
// its first connection is up, or a few seconds after it is ready when none
// comes), so it holds the functions a start runs, its first handshake and
// connection included, and only when there was none or V8 refused it. V8 refuses a cache made by another V8 or with
// other V8 flags; the router's own flags are held back until after the save
// (v8-flags.cts), so the flags are those of the compile. V8 checks the
// source only by its length: the file begins with a digest of the source it
// was made from, and one made from another source is not used. The router
// writes it to a temporary file and renames it, so routers starting together
// never read part of one; where the bundle's directory is read-only nothing
// is written.
//
// CommonJS, like the entry point that loads it; the bundle requires this same
// file (scripts/bundle-router.mjs), so both share the one compiled script.
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** What became of the cache when the bundle was compiled. */
export type CodeCacheUse =
  /** compiled from the cache */
  | 'accepted'
  /** V8 refused it: another Node or V8 flags */
  | 'rejected'
  /** made from another source (a rebuilt bundle) */
  | 'stale'
  /** no cache yet, or unreadable */
  | 'absent'
  /** turned off (WEAVE_CODE_CACHE=off) */
  | 'off';

export interface CodeCacheOutcome {
  use: CodeCacheUse;
  /** Bytes written when this start made the cache; an error message when it could not. */
  written?: number;
  error?: string;
}

/** An identity, not a defence: whoever can write the cache can write the bundle. */
const DIGEST = 'sha1';
const DIGEST_BYTES = 20;

let loaded: { script: Script; cacheFile: string | undefined; digest: Buffer; use: CodeCacheUse } | undefined;

/**
 * Compiles and runs the CommonJS file `file`, with V8's code cache from
 * `cacheFile` when it was made from the same source (undefined: no cache).
 */
export function runWithCodeCache(file: string, cacheFile: string | undefined): CodeCacheUse {
  const bytes = readFileSync(file);
  const digest = createHash(DIGEST).update(bytes).digest();
  // The bundle is ASCII (scripts/bundle-router.mjs): read as Latin-1 it needs no decoding, and V8
  // keeps it at one byte per character.
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  let use: CodeCacheUse = cacheFile === undefined ? 'off' : 'absent';
  let cachedData: Buffer | undefined;
  if (cacheFile !== undefined) {
    const stored = readOrUndefined(cacheFile);
    if (stored && stored.length > DIGEST_BYTES) {
      if (stored.subarray(0, DIGEST_BYTES).equals(digest)) cachedData = stored.subarray(DIGEST_BYTES);
      else use = 'stale';
    }
  }
  const script = new Script(Module.wrap(source), {
    filename: file,
    // No importModuleDynamically: compiled from a cache, a script loses it under Node 20, so the
    // bundle has no import() (scripts/bundle-router.mjs refuses one).
    ...(cachedData ? { cachedData } : {}),
  });
  if (cachedData) use = script.cachedDataRejected ? 'rejected' : 'accepted';
  loaded = { script, cacheFile, digest, use };
  const mod = new Module(file);
  mod.filename = file;
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  run.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  return use;
}

/** Replaces a file whole (the router passes controlplane/atomic-file.ts's, an ES module this one cannot require). */
export type CacheFileWriter = (path: string, data: Uint8Array) => void;

/** Whether saveCodeCache would write a cache: this start had none it could use. */
export function codeCacheWanted(): boolean {
  return loaded !== undefined && loaded.cacheFile !== undefined && loaded.use !== 'accepted';
}

/**
 * Called once the router has started: writes the cache with `write` if this
 * start had none it could use. `write` must replace the file whole (routers
 * starting together read it). Undefined when the router was not loaded
 * through runWithCodeCache (run from tsc's output, in tests).
 */
export function saveCodeCache(write: CacheFileWriter): CodeCacheOutcome | undefined {
  if (!loaded) return undefined;
  const { script, cacheFile, digest, use } = loaded;
  loaded = undefined;
  if (cacheFile === undefined || use === 'accepted') return { use };
  const data = Buffer.concat([digest, script.createCachedData()]);
  try {
    write(cacheFile, data);
    return { use, written: data.length };
  } catch (err) {
    return { use, error: (err as Error).message };
  }
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}
