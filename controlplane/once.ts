// A value computed when first asked for, then kept.

/**
 * `compute`, run on the first call only; later calls return its result. For
 * the costly parts of a view model that only some readers use: every peer's
 * connection list in a status is O(n²) in a full mesh of n peers, and a
 * report template asking for two fields reads none of it.
 */
export function once<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}
