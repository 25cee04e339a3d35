// The address space this peer owns, and which of it is in use (spec §8.7).
// Owned ranges come from the ring; allocation always picks the lowest free address.
import type { Address, Range } from './addr.js';
import { intersect, rangeContains, rangeSize, rangeToCIDRs } from './addr.js';

export class Space {
  private owned: Range[] = [];
  private readonly inUse = new Set<Address>();

  /** Replace the owned ranges (after a ring change); in-use marks outside them are dropped. */
  setOwned(ranges: Range[]): void {
    this.owned = ranges.map((r) => ({ ...r })).sort((a, b) => a.start - b.start);
    for (const addr of this.inUse) if (!this.owns(addr)) this.inUse.delete(addr);
  }

  ownedRanges(): Range[] { return this.owned.map((r) => ({ ...r })); }

  owns(addr: Address): boolean { return this.owned.some((r) => rangeContains(r, addr)); }

  isInUse(addr: Address): boolean { return this.inUse.has(addr); }

  /** Lowest free owned address within `within`, marked in use; undefined when full. */
  allocate(within: Range): Address | undefined {
    for (const r of this.owned) {
      const part = intersect(r, within);
      if (!part) continue;
      for (let a = part.start; a < part.end; a++) {
        if (!this.inUse.has(a)) { this.inUse.add(a); return a; }
      }
    }
    return undefined;
  }

  /** Mark a specific owned, free address in use. */
  claim(addr: Address): boolean {
    if (!this.owns(addr) || this.inUse.has(addr)) return false;
    this.inUse.add(addr);
    return true;
  }

  release(addr: Address): boolean { return this.inUse.delete(addr); }

  numOwned(within?: Range): number {
    return this.owned.reduce((n, r) => n + rangeSize((within ? intersect(r, within) : r) ?? { start: 0, end: 0 }), 0);
  }

  numFree(within?: Range): number {
    let used = 0;
    for (const a of this.inUse) if (!within || rangeContains(within, a)) used++;
    return this.numOwned(within) - used;
  }

  /** Free addresses per range, summed over several ranges (for ring free reports). */
  numFreeIn(ranges: Range[]): number {
    return ranges.reduce((n, r) => n + this.numFree(r), 0);
  }

  hasInUse(within: Range): boolean {
    for (const a of this.inUse) if (rangeContains(within, a)) return true;
    return false;
  }

  /** The largest CIDR-aligned block of free owned addresses inside `within` (lowest on ties). */
  biggestFreeBlock(within: Range): Range | undefined {
    let best: Range | undefined;
    const used = [...this.inUse].sort((a, b) => a - b);
    for (const r of this.owned) {
      const part = intersect(r, within);
      if (!part) continue;
      let cursor = part.start;
      const gaps: Range[] = [];
      for (const a of used) {
        if (a < part.start || a >= part.end) continue;
        if (a > cursor) gaps.push({ start: cursor, end: a });
        cursor = a + 1;
      }
      if (cursor < part.end) gaps.push({ start: cursor, end: part.end });
      for (const gap of gaps) {
        for (const block of rangeToCIDRs(gap)) {
          if (!best || rangeSize(block) > rangeSize(best)) best = block;
        }
      }
    }
    return best;
  }

  /**
   * Give away free space inside `within` (spec §8.7): the largest free aligned
   * block, or its upper half when it is more than half our free space there.
   */
  donate(within: Range): Range | undefined {
    const block = this.biggestFreeBlock(within);
    if (!block) return undefined;
    const size = rangeSize(block);
    const donated = size > this.numFree(within) / 2 && size > 1
      ? { start: block.start + Math.floor(size / 2), end: block.end }
      : block;
    this.owned = subtract(this.owned, donated);
    return donated;
  }
}

function subtract(ranges: Range[], cut: Range): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    if (!intersect(r, cut)) { out.push(r); continue; }
    if (r.start < cut.start) out.push({ start: r.start, end: cut.start });
    if (cut.end < r.end) out.push({ start: cut.end, end: r.end });
  }
  return out;
}
