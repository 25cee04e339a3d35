// JSON text with u64 values kept exact: peer UIDs and origins exceed 2^53
// (wire spec §10.1), so bigints are written as bare JSON numbers.
import { randomBytes } from 'node:crypto';

/**
 * What a bigint becomes for JSON.stringify, then replaced by its digits.
 * Random per process, so no string a peer sends (a nickname, a DNS name) can
 * pass for one. JSON.stringify writes the NUL as the six characters \u0000.
 */
const MARK = randomBytes(8).toString('hex');
const BIGINT_PREFIX = `\u0000${MARK}:`;
const MARKED_BIGINT = new RegExp(`"\\\\u0000${MARK}:(-?\\d+)"`, 'g');

/**
 * Serialise like JSON.stringify(value, null, indent), writing bigints as exact
 * numbers. JSON.stringify does the work, without a replacer: with one, V8 calls
 * back into JavaScript for every value, which made it 4-5x slower on `/report`
 * of a 50-peer mesh (~300 KB). Bigints are marked in a copy of the paths that
 * lead to them instead.
 */
export function toJsonText(value: unknown, indent = 0): string {
  const marked = markBigints(value);
  const text = JSON.stringify(marked, null, indent) as string | undefined;
  if (text === undefined) return 'null';
  return marked === value ? text : text.replace(MARKED_BIGINT, '$1');
}

/**
 * `value` with every bigint in it as its marked digits. Arrays and objects
 * holding none are returned as they are; those that do are copied (own
 * enumerable properties, in order: what JSON.stringify reads). Objects with a
 * toJSON method are left to it, as JSON.stringify would.
 */
function markBigints(value: unknown): unknown {
  if (typeof value === 'bigint') return BIGINT_PREFIX + value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const m = markBigints(v);
      if (m !== v) (copy ??= value.slice())[i] = m;
    }
    return copy ?? value;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const v = record[key];
    const m = markBigints(v);
    if (m !== v) (copy ??= { ...record })[key] = m;
  }
  return copy ?? value;
}
