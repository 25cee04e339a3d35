// Intervals of the router's periodic memory work (malloc-trim.ts, full-gc.ts),
// overridable from the environment to compare settings in a soak.

/**
 * The interval the environment variable `name` gives in seconds, in
 * milliseconds; 0 turns `what` off; `defaultMs` when unset or empty. Throws
 * on anything else, naming the variable.
 */
export function intervalFromEnv(env: NodeJS.ProcessEnv, name: string, defaultMs: number, what: string): number {
  const v = env[name];
  if (v === undefined || v === '') return defaultMs;
  const sec = Number(v);
  if (!Number.isFinite(sec) || sec < 0) throw new RangeError(`${name}=${v} is not a number of seconds (0 turns ${what} off)`);
  return sec * 1000;
}
