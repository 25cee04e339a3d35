// The sleeve anti-replay window (spec §5.3), against the spec's own description
// written as a plain reference model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayWindow, REPLAY_WINDOW_BITS } from '../../crypto/replay.js';

const W = 1n << BigInt(REPLAY_WINDOW_BITS);
const seqAt = (window: number, offset: number): bigint => BigInt(window) * W + BigInt(offset);

/** spec §5.3 literally: windows of 2^20, sets `cur` and `prev` (prev absent at first). */
class ReferenceWindow {
  current = 0n;
  cur = new Set<bigint>();
  prev: Set<bigint> | undefined;
  accept(seq: bigint): boolean {
    const window = seq / W;
    const offset = seq % W;
    const delta = window - this.current;
    let set: Set<bigint> | undefined;
    if (delta < -1n) return false;
    if (delta === -1n) set = this.prev;
    else if (delta === 0n) set = this.cur;
    else if (delta === 1n) { this.prev = this.cur; this.cur = new Set(); this.current = window; set = this.cur; }
    else { this.prev = new Set(); this.cur = new Set(); this.current = window; set = this.cur; }
    if (set === undefined || set.has(offset)) return false;
    set.add(offset);
    return true;
  }
}

test('a fresh window accepts each sequence number once, in any order', () => {
  const w = new ReplayWindow();
  for (const s of [5n, 0n, 3n, 1n]) assert.equal(w.accept(s), true, `first sight of ${s}`);
  for (const s of [5n, 0n, 3n, 1n]) assert.equal(w.accept(s), false, `replay of ${s}`);
  assert.equal(w.accept(W - 1n), true, 'last offset of window 0');
});

test('moving one window keeps the previous window checkable', () => {
  const w = new ReplayWindow();
  assert.equal(w.accept(seqAt(0, 7)), true);
  assert.equal(w.accept(seqAt(1, 0)), true, 'window 0 -> 1');
  assert.equal(w.accept(seqAt(0, 7)), false, 'already seen in what is now the previous window');
  assert.equal(w.accept(seqAt(0, 8)), true, 'late but unseen, inside the previous window');
  assert.equal(w.accept(seqAt(0, 8)), false);
  assert.equal(w.accept(seqAt(2, 0)), true, 'window 1 -> 2');
  assert.equal(w.accept(seqAt(0, 9)), false, 'two windows back is too old');
  assert.equal(w.accept(seqAt(1, 0)), false, 'window 1 is now previous and remembers offset 0');
  assert.equal(w.accept(seqAt(1, 1)), true);
});

test('jumping ahead by more than one window forgets both sets, but accepts the window just before', () => {
  const w = new ReplayWindow();
  assert.equal(w.accept(seqAt(0, 1)), true);
  assert.equal(w.accept(seqAt(5, 1)), true, 'jump 0 -> 5');
  assert.equal(w.accept(seqAt(4, 1)), true, 'previous set exists (empty) after a jump');
  assert.equal(w.accept(seqAt(3, 1)), false, 'older than previous');
  assert.equal(w.accept(seqAt(5, 1)), false);
});

test('advancing by one from the start makes the empty first window the previous one', () => {
  const w = new ReplayWindow();
  assert.equal(w.accept(seqAt(1, 3)), true, 'window 0 -> 1 (delta +1): prev := the empty cur');
  assert.equal(w.accept(seqAt(0, 3)), true, 'offset 3 unseen in window 0');
});

test('sequence numbers outside 0..2^63-1 are a caller error', () => {
  const w = new ReplayWindow();
  assert.throws(() => w.accept(-1n), RangeError);
  assert.throws(() => w.accept(1n << 63n), RangeError);
  assert.equal(w.accept((1n << 63n) - 1n), true, 'the largest 63-bit value is accepted');
});

test('agrees with the spec reference model on random sequences (property)', () => {
  const seqArb = fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 40 }))
    .map(([win, off]) => seqAt(win, off === 40 ? Number(W - 1n) : off));
  fc.assert(fc.property(fc.array(seqArb, { maxLength: 200 }), (seqs) => {
    const impl = new ReplayWindow();
    const ref = new ReferenceWindow();
    for (const s of seqs) assert.equal(impl.accept(s), ref.accept(s), `seq ${s} (window ${s / W}, offset ${s % W})`);
  }), { numRuns: 300 });
});
