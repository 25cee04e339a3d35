// The router's V8 heap flags, held back while its modules load.
//
// V8 accepts compiled code from a cache only when every V8 flag has the value
// the cache was made with. Node ships such a cache for its own modules (http,
// net, streams, its ES module loader, ...), made with V8's defaults, so a
// router started with WEAVER_NODE_FLAGS compiled every one of them from source:
// ~15 ms of CPU on the main thread and ~15 ms in the sleeve worker on each
// start here, which a mesh starting on a few cores pays once per router.
//
// The heap reads some flags once, when the process starts, and others at every
// collection. The entry point (start.cts) lets the process start with all of
// them, puts them back to V8's defaults before any module loads, and the router
// sets the ones V8 reads at run time again once it has started. The command
// line (process.execArgv) stays the one place that says what they are.
//
// CommonJS so that the entry point can load it before Node compiles its ES
// module loader.
import { setFlagsFromString } from 'node:v8';

interface HeapFlag {
  /** V8's default, which the cache was made with. */
  readonly defaultValue: string;
  /** When V8 reads it: once at heap setup, or at every garbage collection. */
  readonly readAt: 'heap-setup' | 'every-gc';
}

/** Every V8 flag the router may be started with; WEAVER_NODE_FLAGS names only these. */
const HEAP_FLAGS: Readonly<Record<string, HeapFlag>> = {
  '--max-semi-space-size': { defaultValue: '0', readAt: 'heap-setup' },
  '--heap-growing-percent': { defaultValue: '0', readAt: 'every-gc' },
};

/** Whether `flag` (`--name=value`) is one this module manages. */
export function isManagedHeapFlag(flag: string): boolean {
  return HEAP_FLAGS[flag.split('=', 1)[0]!] !== undefined;
}

function managed(execArgv: readonly string[]): Array<{ name: string; value: string; flag: HeapFlag }> {
  const out: Array<{ name: string; value: string; flag: HeapFlag }> = [];
  for (const arg of execArgv) {
    const eq = arg.indexOf('=');
    if (eq < 0) continue;
    const name = arg.slice(0, eq);
    const flag = HEAP_FLAGS[name];
    if (flag) out.push({ name, value: arg.slice(eq + 1), flag });
  }
  return out;
}

/**
 * Puts the heap flags on the command line back to V8's defaults, so the
 * modules loaded next use Node's code cache. The heap keeps the sizes it was
 * set up with. Returns the flags it reset.
 */
export function deferHeapFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const reset: string[] = [];
  for (const { name, flag } of managed(execArgv)) {
    setFlagsFromString(`${name}=${flag.defaultValue}`);
    reset.push(name);
  }
  return reset;
}

/**
 * Sets again the heap flags from the command line that V8 reads at run time
 * (once the router has started). Returns the flags it set.
 */
export function restoreHeapFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const set: string[] = [];
  for (const { name, value, flag } of managed(execArgv)) {
    if (flag.readAt !== 'every-gc') continue;
    setFlagsFromString(`${name}=${value}`);
    set.push(`${name}=${value}`);
  }
  return set;
}
