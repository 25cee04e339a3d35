// Anti-replay for sleeve datagrams (spec §5.3): sequence numbers are split into
// a window number (seq >> 20) and an offset (low 20 bits). The receiver keeps a
// bit set for the current window and one for the previous window, so it accepts
// anything not yet seen in those two windows and drops everything older.
// One instance per direction and per path (DF and non-DF count separately).
// Call accept() only for datagrams that authenticated, so forgeries cannot move
// the window.

/** Offset bits per window (spec §5.3 `WindowSize` = 20). */
export const REPLAY_WINDOW_BITS = 20;
const windowSize = 1 << REPLAY_WINDOW_BITS;
const offsetMask = windowSize - 1;
const maxSeq = (1n << 63n) - 1n;

/** A fixed-size bit set of 2^20 bits (128 KiB), allocated on first use. */
class OffsetSet {
  private words: Uint32Array | undefined;

  /** Records `offset`; returns false when it was already present. */
  add(offset: number): boolean {
    this.words ??= new Uint32Array(windowSize / 32);
    const word = offset >>> 5;
    const bit = 1 << (offset & 31);
    if ((this.words[word]! & bit) !== 0) return false;
    this.words[word]! |= bit;
    return true;
  }

  clear(): void {
    this.words?.fill(0);
  }
}

export class ReplayWindow {
  private currentWindow = 0;
  private cur = new OffsetSet();
  /** Absent until the window first advances by one (spec §5.3: `prev` initially absent). */
  private prev: OffsetSet | undefined;

  /**
   * Checks and records a 63-bit sequence number (without the DF bit). Returns
   * false for a replay or a datagram older than the previous window.
   */
  accept(seq: bigint): boolean {
    if (typeof seq !== 'bigint' || seq < 0n || seq > maxSeq) {
      throw new RangeError(`replay window: sequence number ${String(seq)} is not a 63-bit value`);
    }
    // Windows fit in 43 bits, well inside a double's exact range.
    const window = Number(seq >> BigInt(REPLAY_WINDOW_BITS));
    const offset = Number(seq & BigInt(offsetMask));
    const delta = window - this.currentWindow;
    if (delta < -1) return false;
    if (delta === -1) return this.prev !== undefined && this.prev.add(offset);
    if (delta === 1) {
      // The current set becomes the previous one; reuse the old previous set's memory.
      const recycled = this.prev ?? new OffsetSet();
      recycled.clear();
      this.prev = this.cur;
      this.cur = recycled;
      this.currentWindow = window;
    } else if (delta > 1) {
      this.prev ??= new OffsetSet();
      this.prev.clear();
      this.cur.clear();
      this.currentWindow = window;
    }
    return this.cur.add(offset);
  }
}
