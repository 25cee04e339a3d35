// Awaiting with a deadline in tests: a stuck promise fails the test, naming
// what did not happen, instead of hanging it.

/**
 * `p`, or a failure after `ms` naming `what`. The deadline's timer is ref'd, so
 * it also keeps the test's process waiting for `p` when what settles it hangs
 * on an unref'd timer (node:test ends a file whose event loop is empty).
 */
export async function within<T>(p: Promise<T>, ms = 5000, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
