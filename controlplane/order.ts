// The order the router sorts names, keys and numbers in wherever Go's router
// sorted them (peer lists, route tie-breaks, `map[...]` printing): by value with
// `<`, which for strings is code-unit order (byte order for the ASCII that
// names, flags and addresses are made of), never a locale's collation.

/** -1, 0 or 1 as `a` sorts before, with or after `b`. */
export function compareOrdered<T extends string | number | bigint>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
