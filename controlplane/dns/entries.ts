// The nameserver table: every DNS entry known cluster-wide, live or tombstoned
// (wire spec §9). Pure data and merge rules; no I/O, no clock (callers pass `now`).
import type { PeerName } from '../mesh/types.js';
import { EntryIdentityMap, type EntryIdentity } from './identity-map.js';

/** One name→address record (wire spec §9.1 `Entry`). */
export interface Entry {
  containerId: string;
  /** Peer that owns the entry. */
  origin: PeerName;
  /** IPv4 address as a u32. */
  addr: number;
  /** FQDN with trailing dot, case preserved. */
  hostname: string;
  version: number;
  /** 0 = live; otherwise unix seconds of deletion. */
  tombstone: number;
}

/** Entry identity is (ContainerID, Origin, Addr, Hostname), compared exactly (wire spec §9.1). */
function entryKey(e: EntryIdentity): string {
  return `${e.hostname}\u0000${e.origin}\u0000${e.containerId}\u0000${e.addr}`;
}

/**
 * A UTF-16 code unit's rank in UTF-8 byte order: surrogates carry code points
 * above U+FFFF, whose UTF-8 bytes sort after every BMP character's.
 */
function utf8Rank(unit: number): number {
  return unit >= 0xd800 && unit <= 0xdfff ? unit + 0x10000 : unit;
}

/** Byte-wise comparison of the strings' UTF-8 encodings, without encoding them. */
function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function compareRest(a: Entry, b: Entry): number {
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  const c = compareBytes(a.containerId, b.containerId);
  if (c !== 0) return c;
  return a.addr - b.addr;
}

/**
 * The order entries are sent in: Hostname byte-wise, Origin, ContainerID, Addr
 * (wire spec §9.1). Go peers reject gossip that is not sorted this way.
 */
export function compareForWire(a: Entry, b: Entry): number {
  return compareBytes(a.hostname, b.hostname) || compareRest(a, b);
}

/** Whether each entry sorts after the one before it in wire order, so no two share an identity. */
export function isStrictlyInWireOrder(entries: readonly Readonly<Entry>[]): boolean {
  for (let i = 1; i < entries.length; i++) if (compareForWire(entries[i - 1]!, entries[i]!) >= 0) return false;
  return true;
}

/** The display order: hostname case-insensitively, then origin, container id, address (user-surface spec §2.5). */
export function compareForDisplay(a: Entry, b: Entry): number {
  return compareBytes(a.hostname.toLowerCase(), b.hostname.toLowerCase()) || compareRest(a, b) ||
    compareBytes(a.hostname, b.hostname);
}

/**
 * Merge `incoming` into `local` (same identity): the higher Version wins and
 * brings its Tombstone; on equal Version the larger Tombstone wins
 * (wire spec §9.3 step 4). Returns whether `local` changed.
 */
export function mergeEntry(local: Entry, incoming: Readonly<Entry>): boolean {
  if (incoming.version > local.version) {
    local.version = incoming.version;
    local.tombstone = incoming.tombstone;
    return true;
  }
  if (incoming.version === local.version && incoming.tombstone > local.tombstone) {
    local.tombstone = incoming.tombstone;
    return true;
  }
  return false;
}

/** Merge a list into a deduplicated list (same rules), e.g. to combine pending gossip. */
export function mergeEntryLists(a: readonly Entry[], b: readonly Entry[]): Entry[] {
  const byKey = new Map<string, Entry>();
  for (const e of [...a, ...b]) {
    const key = entryKey(e);
    const have = byKey.get(key);
    if (have) mergeEntry(have, e);
    else byKey.set(key, { ...e });
  }
  return [...byKey.values()];
}

/** An entry's name as lookups see it (lookups ignore case). */
function nameKey(e: Pick<Entry, 'hostname'>): string {
  return e.hostname.toLowerCase();
}

/** The entries under one index key: most keys (a name, an address) have one, held as itself. */
type KeyGroup = Entry | Set<Entry>;

function liveInDisplayOrder(group: KeyGroup | undefined): readonly Readonly<Entry>[] {
  if (!group) return NO_ENTRIES;
  if (!(group instanceof Set)) return group.tombstone === 0 ? [group] : NO_ENTRIES;
  const live: Entry[] = [];
  for (const e of group) if (e.tombstone === 0) live.push(e);
  return live.length === 0 ? NO_ENTRIES : live.sort(compareForDisplay);
}

const NO_ENTRIES: readonly Readonly<Entry>[] = Object.freeze([]);

/**
 * A multimap whose per-key answer (live entries in display order) is computed
 * on the first lookup after a change to that key, so a query costs one Map
 * lookup rather than a scan of the table. A key with one entry holds it
 * without a Set: a Set per key cost ~115 bytes per entry and index, and a
 * table under churn holds an hour of tombstones.
 */
class LiveIndex<K> {
  private readonly all = new Map<K, KeyGroup>();
  private readonly liveCache = new Map<K, readonly Readonly<Entry>[]>();

  insert(key: K, e: Entry): void {
    const group = this.all.get(key);
    if (group === undefined) this.all.set(key, e);
    else if (group instanceof Set) group.add(e);
    else if (group !== e) this.all.set(key, new Set([group, e]));
    this.liveCache.delete(key);
  }

  remove(key: K, e: Entry): void {
    const group = this.all.get(key);
    if (group === undefined) return;
    if (group instanceof Set) {
      group.delete(e);
      if (group.size === 1) this.all.set(key, group.values().next().value as Entry);
    } else if (group === e) {
      this.all.delete(key);
    }
    this.liveCache.delete(key);
  }

  /** The entry's liveness or place in the display order may have changed. */
  changed(key: K): void {
    this.liveCache.delete(key);
  }

  live(key: K): readonly Readonly<Entry>[] {
    let hit = this.liveCache.get(key);
    if (hit === undefined) {
      const group = this.all.get(key);
      // Only keys the index holds are cached: a client can ask for any name or address, and
      // misses cached for good would grow without bound.
      if (group === undefined) return NO_ENTRIES;
      hit = liveInDisplayOrder(group);
      this.liveCache.set(key, hit);
    }
    return hit;
  }

  /** Keys with a cached answer (at most the keys indexed), for tests. */
  get cachedKeys(): number {
    return this.liveCache.size;
  }
}

export class NameTable {
  private readonly byIdentity = new EntryIdentityMap();
  /** Lookup indexes, kept in step with byIdentity by insert/remove/touched. */
  private readonly byName = new LiveIndex<string>();
  private readonly byAddr = new LiveIndex<number>();

  get size(): number {
    return this.byIdentity.size;
  }

  /** A copy of the entry with this identity, if known. */
  find(e: EntryIdentity): Entry | undefined {
    const have = this.byIdentity.get(e);
    return have ? { ...have } : undefined;
  }

  /**
   * Local add (wire spec §9.2): a new entry starts live at Version 0; a
   * tombstoned one is resurrected (Tombstone 0, Version+1); a live one is
   * left alone. Returns a copy of the resulting entry, and whether the table
   * changed (so that the caller persists only real changes).
   */
  add(hostname: string, containerId: string, origin: PeerName, addr: number): { entry: Entry; changed: boolean } {
    const fresh: Entry = { containerId, origin, addr, hostname, version: 0, tombstone: 0 };
    const have = this.byIdentity.get(fresh);
    if (!have) {
      this.insert(fresh);
      return { entry: { ...fresh }, changed: true };
    }
    if (have.tombstone === 0) return { entry: { ...have }, changed: false };
    have.tombstone = 0;
    have.version++;
    this.touched(have, false);
    return { entry: { ...have }, changed: true };
  }

  /**
   * Tombstone the live entries owned by `ourName` that `match` selects
   * (Tombstone := now, Version+1; wire spec §9.2). Returns copies of those changed.
   */
  tombstone(ourName: PeerName, now: number, match: (e: Readonly<Entry>) => boolean): Entry[] {
    const changed: Entry[] = [];
    this.byIdentity.forEach((e) => {
      if (e.origin !== ourName || e.tombstone > 0 || !match(e)) return;
      e.tombstone = now;
      e.version++;
      this.touched(e, true);
      changed.push({ ...e });
    });
    return changed;
  }

  /**
   * Merge gossiped entries (wire spec §9.3 step 4). Returns copies of the
   * entries that were new or changed here: the delta to pass on.
   */
  merge(incoming: readonly Entry[]): Entry[] {
    const changed: Entry[] = [];
    for (const e of incoming) {
      const c = this.mergeOne(e);
      if (c) changed.push(c);
    }
    return changed;
  }

  /** Merge one gossiped entry: a copy of it as it now stands here if it was new or changed, else undefined. */
  mergeOne(e: Readonly<Entry>): Entry | undefined {
    const have = this.byIdentity.get(e);
    if (!have) {
      this.insert({ ...e });
      return { ...e };
    }
    const wasLive = have.tombstone === 0;
    if (!mergeEntry(have, e)) return undefined;
    this.touched(have, wasLive);
    return { ...have };
  }

  /** Drop every entry owned by `origin` (the mesh garbage-collected that peer, wire spec §4.7). */
  removeOrigin(origin: PeerName): number {
    return this.removeWhere((e) => e.origin === origin);
  }

  /** Drop tombstones older than `lifetime` seconds (wire spec §9.3). */
  purgeTombstones(now: number, lifetimeSeconds: number): number {
    return this.removeWhere((e) => e.tombstone > 0 && now - e.tombstone > lifetimeSeconds);
  }

  /**
   * Live entries whose hostname equals `hostname`, ignoring case, in display
   * order. The table's own (shared, read-only) array: no copy per query.
   */
  lookup(hostname: string): readonly Readonly<Entry>[] {
    return this.byName.live(hostname.toLowerCase());
  }

  /** Live entries for an address, in display order (shared, read-only). */
  reverseLookup(addr: number): readonly Readonly<Entry>[] {
    return this.byAddr.live(addr);
  }

  /** Names and addresses with a cached answer, for tests: bounded by the live entries, whatever is asked. */
  get cachedAnswers(): number {
    return this.byName.cachedKeys + this.byAddr.cachedKeys;
  }

  /** Copies of the entries `origin` owns, tombstones included, in no particular order. */
  ownedBy(origin: PeerName): Entry[] {
    const out: Entry[] = [];
    this.byIdentity.forEach((e) => {
      if (e.origin === origin) out.push({ ...e });
    });
    return out;
  }

  /** Copies of all entries, tombstones included, in display order. */
  all(): Entry[] {
    return this.copies().sort(compareForDisplay);
  }

  countWhere(pred: (e: Readonly<Entry>) => boolean): number {
    let n = 0;
    this.byIdentity.forEach((e) => {
      if (pred(e)) n++;
    });
    return n;
  }

  /** Copies of all entries, tombstones included, in wire order (what gossip sends: no case folding per comparison). */
  allInWireOrder(): Entry[] {
    return this.copies().sort(compareForWire);
  }

  /**
   * The table's own entries, tombstones included, in wire order: no copies,
   * for a caller that reads them before the table next changes (encoding the
   * whole table for gossip, which would otherwise copy thousands of tombstones).
   */
  viewInWireOrder(): readonly Readonly<Entry>[] {
    const out: Entry[] = [];
    this.byIdentity.forEach((e) => {
      out.push(e);
    });
    return out.sort(compareForWire);
  }

  /** Copies of the live entries, in display order. */
  live(): Entry[] {
    return this.all().filter((e) => e.tombstone === 0);
  }

  private copies(): Entry[] {
    const out: Entry[] = [];
    this.byIdentity.forEach((e) => {
      out.push({ ...e });
    });
    return out;
  }

  /**
   * The lookup indexes hold live entries only. Tombstones are kept for up to
   * an hour (stamped, then purged 30 min later at the next 30-minute sweep)
   * and under churn nearly every name is a new one: indexed, each would hold
   * a Set of its own that no lookup ever returns.
   */
  private insert(e: Entry): void {
    this.byIdentity.add(e);
    if (e.tombstone === 0) this.index(e);
  }

  private index(e: Entry): void {
    this.byName.insert(nameKey(e), e);
    this.byAddr.insert(e.addr, e);
  }

  private unindex(e: Entry): void {
    this.byName.remove(nameKey(e), e);
    this.byAddr.remove(e.addr, e);
  }

  /** `e` changed in place (tombstone or version), having been live or not before. */
  private touched(e: Entry, wasLive: boolean): void {
    const live = e.tombstone === 0;
    if (wasLive && !live) this.unindex(e);
    else if (!wasLive && live) this.index(e);
    else if (live) {
      // Still live, a new version: cached answers hold the old copy's place in the display order.
      this.byName.changed(nameKey(e));
      this.byAddr.changed(e.addr);
    }
  }

  private removeWhere(pred: (e: Entry) => boolean): number {
    const removed = this.byIdentity.removeWhere(pred);
    for (const e of removed) if (e.tombstone === 0) this.unindex(e);
    return removed.length;
  }
}
