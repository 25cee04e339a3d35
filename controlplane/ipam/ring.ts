// The IPAM ring: a CRDT mapping tokens (range starts) to owning peers
// (spec §8.4, §8.5). Only an entry's owner changes it, bumping Version;
// merges take the higher version and refuse to take space we hold allocations in.
import type { Address, Range } from './addr.js';
import { formatAddress, intersect } from './addr.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';

export type PeerName = bigint;

/** One ring entry (spec §8.2 `entry`): owns [token, next token). */
export interface RingEntry {
  readonly token: Address;
  readonly peer: PeerName;
  readonly version: number;
  /** Free addresses the owner reports in this entry's range. */
  readonly free: number;
}

/** The ring as carried in gossip (spec §8.2 `Ring`). */
export interface RingSnapshot {
  start: Address;
  end: number;
  /** The sender's name; receivers ignore it. */
  peer: PeerName;
  entries: RingEntry[];
  seeds: PeerName[];
}

/** Tells the merge whether we hold allocations in a range we are asked to give up. */
export type HasAllocations = (r: Range) => boolean;

/** Version bump on transfer so it wins over concurrent ordinary updates (spec §8.4). */
export const TRANSFER_VERSION_BUMP = 100;

export class RingMergeError extends Error {
  constructor(message: string) { super(message); this.name = 'RingMergeError'; }
}

export const ErrDifferentSeeds = 'Received ring was seeded differently from ours';
export const ErrDifferentRange = 'Received range differs from ours';

export class Ring {
  private entryList: RingEntry[] = [];
  private seedList: PeerName[] = [];

  constructor(readonly start: Address, readonly end: number, readonly peer: PeerName) {
    if (!(start < end)) throw new Error(`ring range must be non-empty: ${start}-${end}`);
  }

  get entries(): readonly RingEntry[] { return this.entryList; }
  get seeds(): readonly PeerName[] { return this.seedList; }
  get range(): Range { return { start: this.start, end: this.end }; }

  isEmpty(): boolean { return this.entryList.length === 0; }

  snapshot(): RingSnapshot {
    return { start: this.start, end: this.end, peer: this.peer, entries: [...this.entryList], seeds: [...this.seedList] };
  }

  /** Restore persisted state (already validated by the caller's checks). */
  static restore(s: RingSnapshot, peer: PeerName): Ring {
    const ring = new Ring(s.start, s.end, peer);
    const problem = ring.checkEntries(s.entries);
    if (problem) throw new Error(`persisted ring is invalid: ${problem}`);
    ring.entryList = s.entries.map((e) => ({ ...e }));
    ring.seedList = [...s.seeds];
    return ring;
  }

  /** Distance between two tokens going round the ring. */
  private distance(from: Address, to: Address): number {
    return to > from ? to - from : (this.end - from) + (to - this.start);
  }

  /** The address ranges entry i covers, split where it wraps past End. */
  entryRanges(i: number, entries: readonly RingEntry[] = this.entryList): Range[] {
    const token = entries[i]!.token;
    const next = entries[(i + 1) % entries.length]!.token;
    if (next > token) return [{ start: token, end: next }];
    const out: Range[] = [];
    if (next > this.start) out.push({ start: this.start, end: next });
    out.push({ start: token, end: this.end });
    return out;
  }

  /** Ranges owned by `peer`, sorted by address (spec §8.4). */
  ownedRanges(peer: PeerName = this.peer): Range[] {
    const out: Range[] = [];
    this.entryList.forEach((e, i) => { if (e.peer === peer) out.push(...this.entryRanges(i)); });
    out.sort((a, b) => a.start - b.start);
    return mergeAdjacent(out);
  }

  /** Every entry's ranges with owner and version, for status. */
  allRangeInfo(): Array<{ peer: PeerName; range: Range; version: number }> {
    const out: Array<{ peer: PeerName; range: Range; version: number }> = [];
    this.entryList.forEach((e, i) => {
      for (const range of this.entryRanges(i)) out.push({ peer: e.peer, range, version: e.version });
    });
    return out;
  }

  owner(addr: Address): PeerName | undefined {
    if (this.isEmpty() || addr < this.start || addr >= this.end) return undefined;
    let i = this.entryList.length - 1;
    for (let k = 0; k < this.entryList.length; k++) {
      if (this.entryList[k]!.token > addr) { i = k - 1; break; }
    }
    if (i < 0) i = this.entryList.length - 1; // wraps from the last entry
    return this.entryList[i]!.peer;
  }

  peerNames(): Set<PeerName> {
    return new Set(this.entryList.map((e) => e.peer));
  }

  /** Ring creation (spec §8.5): split [start, end) among `peers` (sorted, unique). */
  claimForPeers(peers: PeerName[]): void {
    if (!this.isEmpty()) throw new Error('cannot create a ring: it already has entries');
    if (peers.length === 0) throw new Error('cannot create a ring for no peers');
    const entries: RingEntry[] = [];
    const subdivide = (from: number, to: number, ps: PeerName[]): void => {
      const share = to - from;
      if (share === 0) return;
      if (share === 1 || ps.length === 1) { entries.push({ token: from, peer: ps[0]!, version: 0, free: share }); return; }
      const mid = from + Math.floor(share / 2);
      const half = Math.floor(ps.length / 2);
      subdivide(from, mid, ps.slice(0, half));
      subdivide(mid + (share % 2), to, ps.slice(half));
    };
    subdivide(this.start, this.end, peers);
    this.entryList = entries;
    this.seedList = [...peers];
  }

  /**
   * Give [start, end), which we own, to `peer` (spec §8.4 GrantRangeToHost).
   * Inserts tokens at the boundaries; entries handed over get version+1.
   */
  grantRangeToHost(start: Address, end: number, peer: PeerName): void {
    if (!(start < end) || start < this.start || end > this.end) throw new Error(`cannot grant ${start}-${end}: outside the ring`);
    if (peer === this.peer) throw new Error('cannot grant space to ourselves');
    if (this.isEmpty()) throw new Error('cannot grant space from an empty ring');
    const granted: Range = { start, end };
    this.entryList.forEach((e, i) => {
      if (e.peer !== this.peer && this.entryRanges(i).some((r) => intersect(r, granted))) {
        throw new Error(`cannot grant ${formatAddress(start)}: part of it is owned by ${formatPeerName(e.peer)}`);
      }
    });
    const es = this.entryList.map((e) => ({ ...e }));
    const hasToken = (t: number): boolean => es.some((e) => e.token === t);
    // Tokens at both boundaries (spec §8.4): a new token at `start` goes to the
    // recipient at version 0; a new token at `end` stays ours.
    const createdAtStart = !hasToken(start);
    if (createdAtStart) es.push({ token: start, peer, version: 0, free: end - start });
    const endToken = end === this.end ? this.start : end;
    if (!hasToken(endToken)) es.push({ token: endToken, peer: this.peer, version: 0, free: 0 });
    es.sort((a, b) => a.token - b.token);
    const out = es.map((e) => {
      if (e.token < start || e.token >= end) return e;
      if (e.token === start && createdAtStart) return e;
      return { ...e, peer, version: e.version + 1 };
    });
    // Free counts may not exceed the new, smaller ranges; a changed entry of
    // ours gets a new version. Ours are re-reported by the allocator afterwards.
    const endIsNew = !this.entryList.some((old) => old.token === endToken);
    this.entryList = out.map((e, i) => {
      const size = this.entryRanges(i, out).reduce((n, r) => n + r.end - r.start, 0);
      if (e.token === endToken && endIsNew) return { ...e, free: size };
      if (e.free <= size) return e;
      const alreadyBumped = e.token >= start && e.token < end;
      return { ...e, free: size, version: alreadyBumped ? e.version : e.version + 1 };
    });
  }

  /** Record free counts of our entries; bumps Version where they changed. */
  reportFree(freeIn: (ranges: Range[]) => number): boolean {
    let updated = false;
    this.entryList = this.entryList.map((e, i) => {
      if (e.peer !== this.peer) return e;
      const free = freeIn(this.entryRanges(i));
      if (free === e.free) return e;
      updated = true;
      return { ...e, free, version: e.version + 1 };
    });
    return updated;
  }

  /** Other owners with free space intersecting `r`, weighted-random order (spec §8.7). */
  choosePeersToAskForSpace(r: Range, random: () => number = Math.random): PeerName[] {
    const total = new Map<PeerName, number>();
    this.entryList.forEach((e, i) => {
      if (e.peer === this.peer || e.free <= 0) return;
      if (!this.entryRanges(i).some((er) => intersect(er, r))) return;
      total.set(e.peer, (total.get(e.peer) ?? 0) + e.free);
    });
    return [...total].map(([peer, free]) => ({ peer, weight: free * random() }))
      .sort((a, b) => b.weight - a.weight).map((w) => w.peer);
  }

  pickPeerForTransfer(isValid: (p: PeerName) => boolean): PeerName | undefined {
    return this.entryList.find((e) => e.peer !== this.peer && isValid(e.peer))?.peer;
  }

  /** Hand every entry of `from` to `to` with Version += 100 (spec §8.4). Returns the ranges moved. */
  transfer(from: PeerName, to: PeerName): Range[] {
    const moved: Range[] = [];
    this.entryList = this.entryList.map((e, i) => {
      if (e.peer !== from) return e;
      moved.push(...this.entryRanges(i));
      return { ...e, peer: to, version: e.version + TRANSFER_VERSION_BUMP };
    });
    return moved.sort((a, b) => a.start - b.start);
  }

  /** Reasons a list of entries is not a valid ring, or undefined. */
  checkEntries(entries: readonly RingEntry[]): string | undefined {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.token < this.start || e.token >= this.end) return 'Token is out of range';
      if (i > 0 && entries[i - 1]!.token > e.token) return 'Ring not sorted';
      if (i > 0 && entries[i - 1]!.token === e.token) return 'Token appears twice in ring';
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const next = entries[(i + 1) % entries.length]!.token;
      const size = this.distance(e.token, next === e.token && entries.length === 1 ? this.start : next);
      const limit = entries.length === 1 ? this.end - this.start : size;
      if (e.free > limit) return `Entry ${formatAddress(e.token)} reporting too much free space: ${e.free} > ${limit}`;
    }
    return undefined;
  }

  /**
   * Merge a received ring into ours (spec §8.4). Returns true when ours changed.
   * Throws RingMergeError (ours untouched) for a different range or seeds,
   * an invalid ring, or a claim on space we hold allocations in.
   */
  merge(theirs: RingSnapshot, hasAllocations: HasAllocations): boolean {
    if (theirs.start !== this.start || theirs.end !== this.end) throw new RingMergeError(ErrDifferentRange);
    const problem = this.checkEntries(theirs.entries);
    if (problem) throw new RingMergeError(problem);
    if (theirs.seeds.length > 0 && this.seedList.length > 0) {
      const same = theirs.seeds.length === this.seedList.length && theirs.seeds.every((s, i) => s === this.seedList[i]);
      if (!same) throw new RingMergeError(ErrDifferentSeeds);
    }
    const us = this.peer;
    const mine = this.entryList;
    const other = theirs.entries;
    const result: RingEntry[] = [];
    let updated = false;
    let previousOwner: PeerName | undefined;
    const mineRange = (i: number): Range[] => this.entryRanges(i, mine);
    const anyAllocated = (ranges: Range[]): boolean => ranges.some((r) => hasAllocations(r));
    const entryInMyRange = (t: RingEntry): RingMergeError => new RingMergeError(
      `Peer ${formatPeerName(t.peer)} says it owns the IP range from ${formatAddress(t.token)}, which I think I own`);
    let i = 0;
    let j = 0;
    while (i < mine.length && j < other.length) {
      const m = mine[i]!;
      const t = other[j]!;
      if (m.token < t.token) {
        result.push(m); previousOwner = m.peer; i++;
      } else if (m.token > t.token) {
        if (previousOwner === us && t.peer !== us && hasAllocations({ start: t.token, end: m.token })) throw entryInMyRange(t);
        // Entries we take from theirs never count as "ours" for the next check.
        result.push(t); updated = true; previousOwner = undefined; j++;
      } else {
        let chosen: RingEntry = m;
        if (t.version > m.version) {
          if (m.peer === us && t.peer !== us) {
            if (anyAllocated(mineRange(i))) {
              throw new RingMergeError(`Received update for IP range I own at ${formatAddress(m.token)} v${m.version}: incoming message says owner ${formatPeerName(t.peer)} v${t.version}`);
            }
            chosen = t;
          } else if (m.peer === us) {
            chosen = { ...m, version: t.version + 1 };
          } else {
            chosen = t;
          }
        } else if (t.version === m.version && !sameEntry(m, t)) {
          if (m.peer === us && anyAllocated(mineRange(i))) {
            throw new RingMergeError(`Inconsistent entries for ${formatAddress(m.token)}: owned by ${formatPeerName(m.peer)} but incoming message says ${formatPeerName(t.peer)}`);
          }
          if (t.free > m.free) chosen = t;
        }
        if (chosen !== m) updated = true;
        result.push(chosen); previousOwner = chosen === t ? undefined : chosen.peer; i++; j++;
      }
    }
    for (; i < mine.length; i++) result.push(mine[i]!);
    for (; j < other.length; j++) {
      const t = other[j]!;
      if (previousOwner === us && t.peer !== us) throw entryInMyRange(t);
      result.push(t); updated = true; previousOwner = undefined;
    }
    // Our own entries never report more free space than they span (spec §8.4).
    const clamped = result.map((e, k) => {
      if (e.peer !== us) return e;
      const size = this.entryRanges(k, result).reduce((n, r) => n + r.end - r.start, 0);
      return e.free > size ? { ...e, free: size } : e;
    });
    const after = this.checkEntries(clamped);
    if (after) throw new RingMergeError(`Merge of incoming data causes: ${after}`);
    if (this.seedList.length === 0 && theirs.seeds.length > 0) { this.seedList = [...theirs.seeds]; updated = true; }
    this.entryList = clamped;
    return updated;
  }
}

function sameEntry(a: RingEntry, b: RingEntry): boolean {
  return a.token === b.token && a.peer === b.peer && a.version === b.version && a.free === b.free;
}

function mergeAdjacent(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.end === r.start) out[out.length - 1] = { start: last.start, end: r.end };
    else out.push({ ...r });
  }
  return out;
}
