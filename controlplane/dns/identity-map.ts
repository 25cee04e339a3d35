// The nameserver table's storage: entries by identity (wire spec §9.1:
// Hostname, Origin, ContainerID, Addr, compared exactly), grouped by hostname.
//
// Periodic gossip carries the whole table every 30 s from every peer, and
// each received entry is looked up here. A composite key string per entry
// (hostname, origin, container id and address joined) cost ~340 bytes of
// garbage per lookup and ~150 bytes per stored entry; the hostname alone, a
// string the decoder has already made, is hashed without allocating.
//
// Stored entries are most of the table's memory under churn: tombstones stay
// 30 minutes (wire spec §9.3), and a router detaching 5 containers a second
// holds ~9,000 of them. Each decoded entry brings its own copies of strings
// that many entries share (the name a restarted container takes again, its
// container id, the origin peer's name), so `add` makes an entry point at the
// copy already held: 471 bytes per stored tombstone came down to ~150.
import type { Entry } from './entries.js';

export type EntryIdentity = Pick<Entry, 'containerId' | 'origin' | 'addr' | 'hostname'>;

/**
 * Entries sharing a hostname, or a hostname and an address, are scanned by
 * identity up to this many; beyond it they are keyed, so that a peer sending
 * thousands of entries under one name makes lookups no slower than a map's.
 */
const SCAN_MAX = 8;

/** One entry held as itself, or a few scanned. */
type Few = Entry | Entry[];
/** Entries under one hostname and address, beyond SCAN_MAX: keyed by the rest of the identity. */
type ByRest = Map<string, Entry>;
type AddrBucket = Few | ByRest;
/** A hostname with more than SCAN_MAX entries: by address (a restarted container mostly takes a new one). */
type ByAddr = Map<number, AddrBucket>;
type Group = Few | ByAddr;

function sameIdentity(a: EntryIdentity, b: EntryIdentity): boolean {
  return a.containerId === b.containerId && a.origin === b.origin && a.addr === b.addr && a.hostname === b.hostname;
}

/** Origin and container id, for the rare bucket of many entries under one hostname and address. */
function restKey(e: EntryIdentity): string {
  return `${e.origin}\u0000${e.containerId}`;
}

function findIn(bucket: AddrBucket | undefined, id: EntryIdentity): Entry | undefined {
  if (bucket === undefined) return undefined;
  if (bucket instanceof Map) return bucket.get(restKey(id));
  if (!Array.isArray(bucket)) return sameIdentity(bucket, id) ? bucket : undefined;
  for (const e of bucket) if (sameIdentity(e, id)) return e;
  return undefined;
}

/** `bucket` with `e` added (an identity not in it): the same object where it could grow in place. */
function addTo(bucket: AddrBucket | undefined, e: Entry): AddrBucket {
  if (bucket === undefined) return e;
  if (bucket instanceof Map) return bucket.set(restKey(e), e);
  if (!Array.isArray(bucket)) return [bucket, e];
  if (bucket.length < SCAN_MAX) {
    bucket.push(e);
    return bucket;
  }
  const keyed: ByRest = new Map();
  for (const m of bucket) keyed.set(restKey(m), m);
  return keyed.set(restKey(e), e);
}

function forEachIn(bucket: AddrBucket, fn: (e: Entry) => void): void {
  if (bucket instanceof Map || Array.isArray(bucket)) bucket.forEach((e) => fn(e));
  else fn(bucket);
}

/** A hostname's group holding exactly `entries` (one or more). */
function groupOf(entries: readonly Entry[]): Group {
  if (entries.length === 1) return entries[0]!;
  if (entries.length <= SCAN_MAX) return [...entries];
  const byAddr: ByAddr = new Map();
  for (const e of entries) byAddr.set(e.addr, addTo(byAddr.get(e.addr), e));
  return byAddr;
}

/** Any entry of a group, to share its strings with a newcomer. */
function someMember(group: Group): Entry {
  if (group instanceof Map) {
    const bucket = group.values().next().value as AddrBucket;
    if (bucket instanceof Map) return bucket.values().next().value as Entry;
    return Array.isArray(bucket) ? bucket[0]! : bucket;
  }
  return Array.isArray(group) ? group[0]! : group;
}

/**
 * Equal values decoded from separate messages made to share one copy. Bounded:
 * when full it starts again, so values no entry holds any more are let go.
 */
class Interner<T extends string | bigint> {
  private readonly held = new Map<T, T>();
  constructor(private readonly max: number) {}

  intern(v: T): T {
    const have = this.held.get(v);
    if (have !== undefined) return have;
    if (this.held.size >= this.max) this.held.clear();
    this.held.set(v, v);
    return v;
  }
}

/** Distinct container ids and origins worth sharing: a cluster's live containers and its peers, with room. */
const INTERNED_MAX = 1024;

/**
 * Most hostnames have one entry, stored as itself; a few share one (the
 * replicas of a service), kept in a short array scanned by identity; a name
 * that containers take again and again (a restarted service) is keyed by address.
 */
export class EntryIdentityMap {
  private readonly byHostname = new Map<string, Group>();
  private readonly containerIds = new Interner<string>(INTERNED_MAX);
  private readonly origins = new Interner<bigint>(INTERNED_MAX);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: EntryIdentity): Entry | undefined {
    const group = this.byHostname.get(id.hostname);
    if (group === undefined) return undefined;
    return findIn(group instanceof Map ? group.get(id.addr) : group, id);
  }

  /**
   * Adds an entry whose identity is not held yet (callers look it up first).
   * The entry is the table's from now on: its strings are swapped for equal
   * ones already held.
   */
  add(e: Entry): void {
    e.containerId = this.containerIds.intern(e.containerId);
    e.origin = this.origins.intern(e.origin);
    const group = this.byHostname.get(e.hostname);
    if (group === undefined) {
      this.byHostname.set(e.hostname, e);
    } else {
      // The hostname's key is already held: every member points at one copy.
      e.hostname = someMember(group).hostname;
      if (group instanceof Map) group.set(e.addr, addTo(group.get(e.addr), e));
      else if (!Array.isArray(group) || group.length < SCAN_MAX) this.byHostname.set(e.hostname, addTo(group, e) as Few);
      else this.byHostname.set(e.hostname, groupOf([...group, e]));
    }
    this.count++;
  }

  /** Calls `fn` for every entry (a callback rather than an iterator: no result object per entry). */
  forEach(fn: (e: Entry) => void): void {
    for (const group of this.byHostname.values()) {
      if (group instanceof Map) group.forEach((bucket) => forEachIn(bucket, fn));
      else forEachIn(group, fn);
    }
  }

  /** Removes the entries `pred` selects; returns them. */
  removeWhere(pred: (e: Entry) => boolean): Entry[] {
    const removed: Entry[] = [];
    for (const [hostname, group] of this.byHostname) {
      if (!(group instanceof Map) && !Array.isArray(group)) {
        if (pred(group)) {
          this.byHostname.delete(hostname);
          removed.push(group);
        }
        continue;
      }
      const members: Entry[] = [];
      if (group instanceof Map) group.forEach((bucket) => forEachIn(bucket, (e) => members.push(e)));
      else members.push(...group);
      const kept: Entry[] = [];
      for (const e of members) (pred(e) ? removed : kept).push(e);
      if (kept.length === members.length) continue;
      if (kept.length === 0) this.byHostname.delete(hostname);
      else this.byHostname.set(hostname, groupOf(kept));
    }
    this.count -= removed.length;
    return removed;
  }
}
