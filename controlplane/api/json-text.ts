// JSON text with u64 values kept exact: peer UIDs and origins exceed 2^53
// (wire spec §10.1), so bigints are written as bare JSON numbers.
import { randomBytes } from 'node:crypto';

/**
 * What a bigint becomes during JSON.stringify, then replaced by its digits.
 * Random per process, so no string a peer sends (a nickname, a DNS name) can
 * pass for one. JSON.stringify writes the NUL as the six characters \u0000.
 */
const MARK = randomBytes(8).toString('hex');
const BIGINT_PREFIX = `\u0000${MARK}:`;
const MARKED_BIGINT = new RegExp(`"\\\\u0000${MARK}:(-?\\d+)"`, 'g');

const markBigint = (_key: string, v: unknown): unknown => (typeof v === 'bigint' ? BIGINT_PREFIX + v.toString() : v);

/**
 * Serialise like JSON.stringify(value, null, indent), writing bigints as exact
 * numbers. JSON.stringify does the work: `/report` of a 50-peer mesh is large,
 * and a hand-written serialiser spent most of a report's time here.
 */
export function toJsonText(value: unknown, indent = 0): string {
  const text = JSON.stringify(value, markBigint, indent) as string | undefined;
  if (text === undefined) return 'null';
  return text.includes(MARK) ? text.replace(MARKED_BIGINT, '$1') : text;
}
