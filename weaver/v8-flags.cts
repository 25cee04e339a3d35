// The router's V8 flags (WEAVER_NODE_FLAGS), held back while its modules load.
//
// V8 accepts compiled code from a cache only when every V8 flag has the value
// the cache was made with. Node ships such a cache for its own modules (http,
// net, streams, its ES module loader, ...), made with V8's defaults, so a
// router started with its flags compiled every one of them from source:
// ~20 ms of CPU on the main thread and ~15 ms in the sleeve worker on each
// start here, which a mesh starting on a few cores pays once per router.
//
// V8 reads some flags once, when the process sets up its heap, and others
// whenever they apply. The entry point (start.cts) lets the process start with
// all of them, puts them back to V8's defaults before any module loads, and
// the router sets the ones V8 reads at run time again once it has started. The
// command line (process.execArgv) stays the one place that says what they are.
//
// CommonJS so that the entry point can load it before Node compiles its ES
// module loader.
import { setFlagsFromString } from 'node:v8';

interface ManagedFlag {
  /** V8's default, which the cache was made with. */
  readonly defaultValue: string;
  /** When V8 reads it: once at heap setup, or whenever it applies (a collection, a tier-up check). */
  readonly readAt: 'heap-setup' | 'run-time';
}

/** Every V8 flag the router may be started with; WEAVER_NODE_FLAGS names only these. */
const MANAGED_FLAGS: Readonly<Record<string, ManagedFlag>> = {
  '--max-semi-space-size': { defaultValue: '0', readAt: 'heap-setup' },
  '--heap-growing-percent': { defaultValue: '0', readAt: 'run-time' },
  '--interrupt-budget': { defaultValue: '67584', readAt: 'run-time' },
};

/** Whether `flag` (`--name=value`) is one this module manages. */
export function isManagedV8Flag(flag: string): boolean {
  return MANAGED_FLAGS[flag.split('=', 1)[0]!] !== undefined;
}

function managed(execArgv: readonly string[]): Array<{ name: string; value: string; flag: ManagedFlag }> {
  const out: Array<{ name: string; value: string; flag: ManagedFlag }> = [];
  for (const arg of execArgv) {
    const eq = arg.indexOf('=');
    if (eq < 0) continue;
    const name = arg.slice(0, eq);
    const flag = MANAGED_FLAGS[name];
    if (flag) out.push({ name, value: arg.slice(eq + 1), flag });
  }
  return out;
}

/**
 * Puts the managed flags on the command line back to V8's defaults, so the
 * modules loaded next use Node's code cache. The heap keeps the sizes it was
 * set up with. Returns the flags it reset.
 */
export function deferV8Flags(execArgv: readonly string[] = process.execArgv): string[] {
  const reset: string[] = [];
  for (const { name, flag } of managed(execArgv)) {
    setFlagsFromString(`${name}=${flag.defaultValue}`);
    reset.push(name);
  }
  return reset;
}

/**
 * Sets again the managed flags from the command line that V8 reads at run
 * time (once the router has started). Returns the flags it set.
 */
export function restoreV8Flags(execArgv: readonly string[] = process.execArgv): string[] {
  const set: string[] = [];
  for (const { name, value, flag } of managed(execArgv)) {
    if (flag.readAt !== 'run-time') continue;
    setFlagsFromString(`${name}=${value}`);
    set.push(`${name}=${value}`);
  }
  return set;
}
