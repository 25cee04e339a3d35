// The nameserver table: every DNS entry known cluster-wide, live or tombstoned
// (wire spec §9). Pure data and merge rules; no I/O, no clock (callers pass `now`).
import type { PeerName } from '../mesh/types.js';

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
export function entryKey(e: Pick<Entry, 'containerId' | 'origin' | 'addr' | 'hostname'>): string {
  return `${e.hostname}\u0000${e.origin}\u0000${e.containerId}\u0000${e.addr}`;
}

export function sameIdentity(a: Entry, b: Entry): boolean {
  return a.containerId === b.containerId && a.origin === b.origin && a.addr === b.addr && a.hostname === b.hostname;
}

function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
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
export function mergeEntry(local: Entry, incoming: Entry): boolean {
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

export class NameTable {
  private readonly byKey = new Map<string, Entry>();
  /**
   * The same entries by lower-cased hostname and by address: a DNS query reads
   * only the entries it asks for (it copied and sorted the whole table, so a
   * peer gossiping many names made every query slow; found by fuzzing).
   */
  private readonly byName = new Map<string, Map<string, Entry>>();
  private readonly byAddr = new Map<number, Map<string, Entry>>();

  get size(): number {
    return this.byKey.size;
  }

  /** A copy of the entry with this identity, if known. */
  find(e: Pick<Entry, 'containerId' | 'origin' | 'addr' | 'hostname'>): Entry | undefined {
    const have = this.byKey.get(entryKey(e));
    return have ? { ...have } : undefined;
  }

  /**
   * Local add (wire spec §9.2): a new entry starts live at Version 0; a
   * tombstoned one is resurrected (Tombstone 0, Version+1); a live one is
   * left alone. Returns a copy of the resulting entry.
   */
  add(hostname: string, containerId: string, origin: PeerName, addr: number): Entry {
    const fresh: Entry = { containerId, origin, addr, hostname, version: 0, tombstone: 0 };
    const key = entryKey(fresh);
    const have = this.byKey.get(key);
    if (!have) {
      this.insert(key, fresh);
      return { ...fresh };
    }
    if (have.tombstone > 0) {
      have.tombstone = 0;
      have.version++;
    }
    return { ...have };
  }

  /**
   * Tombstone the live entries owned by `ourName` that `match` selects
   * (Tombstone := now, Version+1; wire spec §9.2). Returns copies of those changed.
   */
  tombstone(ourName: PeerName, now: number, match: (e: Readonly<Entry>) => boolean): Entry[] {
    const changed: Entry[] = [];
    for (const e of this.byKey.values()) {
      if (e.origin !== ourName || e.tombstone > 0 || !match(e)) continue;
      e.tombstone = now;
      e.version++;
      changed.push({ ...e });
    }
    return changed;
  }

  /**
   * Merge gossiped entries (wire spec §9.3 step 4). Returns copies of the
   * entries that were new or changed here: the delta to pass on.
   */
  merge(incoming: readonly Entry[]): Entry[] {
    const changed: Entry[] = [];
    for (const e of incoming) {
      const key = entryKey(e);
      const have = this.byKey.get(key);
      if (!have) {
        this.insert(key, { ...e });
        changed.push({ ...e });
      } else if (mergeEntry(have, e)) {
        changed.push({ ...have });
      }
    }
    return changed;
  }

  /** Drop every entry owned by `origin` (the mesh garbage-collected that peer, wire spec §4.7). */
  removeOrigin(origin: PeerName): number {
    return this.removeWhere((e) => e.origin === origin);
  }

  /** Drop tombstones older than `lifetime` seconds (wire spec §9.3). */
  purgeTombstones(now: number, lifetimeSeconds: number): number {
    return this.removeWhere((e) => e.tombstone > 0 && now - e.tombstone > lifetimeSeconds);
  }

  /** Live entries whose hostname equals `hostname`, ignoring case, in display order. */
  lookup(hostname: string): Entry[] {
    return liveCopies(this.byName.get(hostname.toLowerCase()));
  }

  /** Live entries for an address, in display order. */
  reverseLookup(addr: number): Entry[] {
    return liveCopies(this.byAddr.get(addr));
  }

  /** Copies of the entries `origin` owns, tombstones included, in no particular order. */
  ownedBy(origin: PeerName): Entry[] {
    const out: Entry[] = [];
    for (const e of this.byKey.values()) if (e.origin === origin) out.push({ ...e });
    return out;
  }

  /** Copies of all entries, tombstones included, in display order. */
  all(): Entry[] {
    return [...this.byKey.values()].map((e) => ({ ...e })).sort(compareForDisplay);
  }

  /** Copies of the live entries, in display order. */
  live(): Entry[] {
    return this.all().filter((e) => e.tombstone === 0);
  }

  private insert(key: string, e: Entry): void {
    this.byKey.set(key, e);
    indexed(this.byName, e.hostname.toLowerCase()).set(key, e);
    indexed(this.byAddr, e.addr).set(key, e);
  }

  private removeWhere(pred: (e: Entry) => boolean): number {
    let removed = 0;
    for (const [key, e] of this.byKey) {
      if (pred(e)) {
        this.byKey.delete(key);
        unindex(this.byName, e.hostname.toLowerCase(), key);
        unindex(this.byAddr, e.addr, key);
        removed++;
      }
    }
    return removed;
  }
}

function indexed<K>(index: Map<K, Map<string, Entry>>, k: K): Map<string, Entry> {
  let m = index.get(k);
  if (!m) {
    m = new Map();
    index.set(k, m);
  }
  return m;
}

function unindex<K>(index: Map<K, Map<string, Entry>>, k: K, key: string): void {
  const m = index.get(k);
  m?.delete(key);
  if (m?.size === 0) index.delete(k);
}

function liveCopies(entries: Map<string, Entry> | undefined): Entry[] {
  if (!entries) return [];
  const out: Entry[] = [];
  for (const e of entries.values()) if (e.tombstone === 0) out.push({ ...e });
  return out.sort(compareForDisplay);
}
