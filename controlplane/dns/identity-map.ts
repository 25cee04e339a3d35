// The nameserver table's storage: entries by identity (wire spec §9.1:
// Hostname, Origin, ContainerID, Addr, compared exactly), grouped by hostname.
//
// Periodic gossip carries the whole table every 30 s from every peer, and
// each received entry is looked up here. A composite key string per entry
// (hostname, origin, container id and address joined) cost ~340 bytes of
// garbage per lookup and ~150 bytes per stored entry; the hostname alone, a
// string the decoder has already made, is hashed without allocating.
import type { Entry } from './entries.js';

export type EntryIdentity = Pick<Entry, 'containerId' | 'origin' | 'addr' | 'hostname'>;

/**
 * A hostname shared by more entries than this has its group keyed by the
 * rest of the identity, so that a peer sending thousands of entries under one
 * name makes lookups no slower than a map's.
 */
const GROUP_SCAN_MAX = 8;

type Group = Entry | Entry[] | Map<string, Entry>;

function sameIdentity(a: EntryIdentity, b: EntryIdentity): boolean {
  return a.containerId === b.containerId && a.origin === b.origin && a.addr === b.addr && a.hostname === b.hostname;
}

/** The identity less the hostname, for the few large groups. */
function restKey(e: EntryIdentity): string {
  return `${e.origin}\u0000${e.containerId}\u0000${e.addr}`;
}

function keyed(entries: Iterable<Entry>): Map<string, Entry> {
  const m = new Map<string, Entry>();
  for (const e of entries) m.set(restKey(e), e);
  return m;
}

/**
 * Most hostnames have one entry, stored as itself; a few share one (the
 * replicas of a service), kept in a short array scanned by identity.
 */
export class EntryIdentityMap {
  private readonly byHostname = new Map<string, Group>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: EntryIdentity): Entry | undefined {
    const group = this.byHostname.get(id.hostname);
    if (group === undefined) return undefined;
    if (group instanceof Map) return group.get(restKey(id));
    if (!Array.isArray(group)) return sameIdentity(group, id) ? group : undefined;
    for (const e of group) if (sameIdentity(e, id)) return e;
    return undefined;
  }

  /** Adds an entry whose identity is not held yet (callers look it up first). */
  add(e: Entry): void {
    const group = this.byHostname.get(e.hostname);
    if (group === undefined) this.byHostname.set(e.hostname, e);
    else if (group instanceof Map) group.set(restKey(e), e);
    else if (!Array.isArray(group)) this.byHostname.set(e.hostname, [group, e]);
    else if (group.length < GROUP_SCAN_MAX) group.push(e);
    else this.byHostname.set(e.hostname, keyed([...group, e]));
    this.count++;
  }

  /** Calls `fn` for every entry (a callback rather than an iterator: no result object per entry). */
  forEach(fn: (e: Entry) => void): void {
    for (const group of this.byHostname.values()) {
      if (group instanceof Map || Array.isArray(group)) group.forEach((e) => fn(e));
      else fn(group);
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
      const members = group instanceof Map ? [...group.values()] : group;
      const kept: Entry[] = [];
      for (const e of members) (pred(e) ? removed : kept).push(e);
      if (kept.length === members.length) continue;
      if (kept.length === 0) this.byHostname.delete(hostname);
      else if (kept.length === 1) this.byHostname.set(hostname, kept[0]!);
      else this.byHostname.set(hostname, kept.length <= GROUP_SCAN_MAX ? kept : keyed(kept));
    }
    this.count -= removed.length;
    return removed;
  }
}
