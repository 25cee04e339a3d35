// The set of known peers and the rules for changing it: merging topology
// updates (spec §4.5), the local peer's own record and its version bumps,
// garbage collection of unreachable peers (§4.7) and short ids (§4.8).
import { GossipLimitError } from './errors.js';
import { Peer } from './peer.js';
import { bfsRoutes } from './routes.js';
import { ShortIdIndex } from './short-ids.js';
import type {
  ConnectionSummary, PeerIdentity, PeerName, PeerRecord, PeerShortID, PeerSummary, PeerUID, ReceivedPeerRecord,
} from './types.js';

/**
 * Most peers the table holds (including placeholders). Weave meshes run to
 * hundreds of peers; a topology update that would create peers beyond this is
 * refused whole, so a peer announcing thousands of fake peers cannot grow it
 * without bound (each fake it lists as connected stays reachable, so garbage
 * collection alone would not remove them).
 */
export const MAX_PEERS = 10_000;

export interface PeersEvents {
  /** A peer was garbage-collected (spec §4.7): drop its MACs, DNS entries, IPAM nickname. */
  onPeerRemoved?(peer: Peer): void;
  /** The short id -> principal peer mapping changed (spec §4.8): invalidate fastdp flows. */
  onShortIdsChanged?(): void;
  /** Our own record changed on its own accord (short id reassigned): broadcast it. */
  onLocalChanged?(): void;
}

export interface UpdateResult {
  /** Names whose records were applied: the "improved update" (spec §4.5 step 3). */
  improved: Set<PeerName>;
  /** Every name that came as a record, for relaying broadcasts. */
  received: Set<PeerName>;
  /** A record about an older incarnation of us made us bump our version. */
  ourselvesBumped: boolean;
}

/** Whether a received record replaces the current one (spec §4.5 step 2, existing peer). */
export function recordWins(rec: PeerRecord['summary'], cur: Peer): boolean {
  if (rec.version !== cur.version) return rec.version > cur.version;
  if (rec.uid !== cur.uid) return rec.uid > cur.uid;
  return rec.hasShortId && !cur.hasShortId;
}

export class Peers {
  readonly ourselves: Peer;
  private readonly byName = new Map<PeerName, Peer>();
  private readonly shortIds = new ShortIdIndex();
  private shortIdReassignPending = false;

  constructor(
    identity: PeerIdentity,
    private readonly random: () => number = Math.random,
    private readonly events: PeersEvents = {},
  ) {
    this.ourselves = new Peer({
      name: identity.name,
      nickName: identity.nickName,
      uid: identity.uid,
      version: 0n,
      shortId: identity.shortId,
      hasShortId: true,
    });
    this.byName.set(identity.name, this.ourselves);
    this.shortIds.add(identity.name, identity.shortId);
  }

  get(name: PeerName): Peer | undefined {
    return this.byName.get(name);
  }

  all(): Peer[] {
    return [...this.byName.values()];
  }

  get size(): number {
    return this.byName.size;
  }

  graph(): ReadonlyMap<PeerName, Peer> {
    return this.byName;
  }

  /** The principal peer for a short id (spec §4.8 FetchByShortID). */
  byShortId(id: PeerShortID): Peer | undefined {
    const name = this.shortIds.principal(id);
    return name === undefined ? undefined : this.byName.get(name);
  }

  /** Records for the named peers that are still known; the local record is always live. */
  records(names: Iterable<PeerName>): PeerRecord[] {
    return this.known(names).map((p) => p.record());
  }

  /** The named peers that are still known, each once. */
  known(names: Iterable<PeerName>): Peer[] {
    const out: Peer[] = [];
    const seen = new Set<PeerName>();
    for (const n of names) {
      if (seen.has(n)) continue;
      seen.add(n);
      const p = this.byName.get(n);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * Whether applyUpdate would apply a received record with this summary, so
   * its connection list is needed; other records count only as received.
   */
  wantsRecord(s: PeerSummary): boolean {
    if (s.name === this.ourselves.name) return false;
    const cur = this.byName.get(s.name);
    return cur === undefined || recordWins(s, cur);
  }

  /**
   * The peer behind a new connection, created from the handshake if unknown.
   * `isNew` and `restarted` decide whether full gossip goes down the connection (spec §4.3).
   */
  fetchForConnection(remote: { name: PeerName; nickName: string; uid: PeerUID; shortId?: PeerShortID }): {
    peer: Peer;
    isNew: boolean;
    restarted: boolean;
  } {
    const existing = this.byName.get(remote.name);
    if (existing) return { peer: existing, isNew: false, restarted: existing.uid !== remote.uid };
    const peer = new Peer({
      name: remote.name,
      nickName: remote.nickName,
      uid: remote.uid,
      version: 0n,
      shortId: remote.shortId ?? 0,
      hasShortId: remote.shortId !== undefined,
    });
    this.watchShortIds(() => this.insert(peer));
    return { peer, isNew: true, restarted: false };
  }

  // --- the local peer's own record (spec §4.5 "Local changes") ---

  addLocalConnection(c: ConnectionSummary): void {
    this.ourselves.connections.set(c.name, { ...c });
    this.ourselves.version++;
  }

  /** Returns whether anything changed. */
  setLocalConnectionEstablished(name: PeerName, established: boolean): boolean {
    const c = this.ourselves.connections.get(name);
    if (!c || c.established === established) return false;
    c.established = established;
    this.ourselves.version++;
    return true;
  }

  removeLocalConnection(name: PeerName): boolean {
    if (!this.ourselves.connections.delete(name)) return false;
    this.ourselves.version++;
    return true;
  }

  // --- merging received topology (spec §4.5 "Merging a received update") ---

  /** Refuses an update that would take the table past MAX_PEERS, before anything is applied. */
  private checkRoomFor(records: readonly PeerRecord[], inUpdate: ReadonlyMap<PeerName, PeerRecord>): void {
    const unknown = new Set<PeerName>();
    for (const n of inUpdate.keys()) if (!this.byName.has(n)) unknown.add(n);
    for (const r of records) for (const c of r.connections) if (!this.byName.has(c.name)) unknown.add(c.name);
    if (this.byName.size + unknown.size > MAX_PEERS) {
      throw new GossipLimitError(`topology update would add ${unknown.size} peers to the ${this.byName.size} known, over the limit of ${MAX_PEERS}`);
    }
  }

  /**
   * Merges a received update. Records without their connection list (the
   * decoder skipped it because wantsRecord said no) are only "received": they
   * cannot win, and referenced peers of a record that loses would only be
   * placeholders for garbage collection to remove again.
   */
  applyUpdate(received: readonly ReceivedPeerRecord[]): UpdateResult {
    const result: UpdateResult = { improved: new Set(), received: new Set(), ourselvesBumped: false };
    const records: PeerRecord[] = [];
    for (const r of received) {
      if (r.connections !== undefined) records.push({ summary: r.summary, connections: r.connections });
      else if (r.summary.name === this.ourselves.name) this.noteRecordOfOurselves(r.summary, result);
      result.received.add(r.summary.name);
    }
    this.watchShortIds(() => {
      const inUpdate = new Map<PeerName, PeerRecord>();
      for (const r of records) inUpdate.set(r.summary.name, r);
      this.checkRoomFor(records, inUpdate);
      const created = new Set<PeerName>();
      // Step 1: create peers named by records, and placeholders for peers only referenced.
      for (const r of records) {
        const n = r.summary.name;
        if (n !== this.ourselves.name && !this.byName.has(n)) {
          this.insert(new Peer(r.summary, r.connections));
          created.add(n);
        }
      }
      for (const r of records) {
        for (const c of r.connections) {
          if (!this.byName.has(c.name) && !inUpdate.has(c.name)) this.insert(Peer.placeholder(c.name));
        }
      }
      // Step 2: apply each record.
      for (const r of records) {
        const s = r.summary;
        if (s.name === this.ourselves.name) {
          this.noteRecordOfOurselves(s, result);
          continue;
        }
        if (created.has(s.name)) {
          result.improved.add(s.name);
          continue;
        }
        const cur = this.byName.get(s.name)!;
        if (!recordWins(s, cur)) continue;
        cur.version = s.version;
        cur.uid = s.uid;
        cur.nickName = s.nickName;
        cur.setConnections(r.connections);
        if (cur.shortId !== s.shortId || cur.hasShortId !== s.hasShortId) {
          if (cur.hasShortId) this.shortIds.remove(cur.name, cur.shortId);
          cur.shortId = s.shortId;
          cur.hasShortId = s.hasShortId;
          if (cur.hasShortId) this.shortIds.add(cur.name, cur.shortId);
        }
        result.improved.add(s.name);
      }
    });
    return result;
  }

  /** A record about an older incarnation of us: outdo its version (spec §4.5). */
  private noteRecordOfOurselves(s: PeerSummary, result: UpdateResult): void {
    if (s.uid !== this.ourselves.uid && s.version >= this.ourselves.version) {
      this.ourselves.version = s.version + 1n;
      result.ourselvesBumped = true;
    }
  }

  // --- garbage collection (spec §4.7) ---

  /** Delete every peer not reachable from us; returns the removed peers. */
  garbageCollect(): Peer[] {
    const removed: Peer[] = [];
    this.watchShortIds(() => {
      const { routes: reachable } = bfsRoutes(this.byName, this.ourselves.name, undefined, false);
      for (const peer of [...this.byName.values()]) {
        if (peer === this.ourselves || reachable.has(peer.name)) continue;
        this.byName.delete(peer.name);
        if (peer.hasShortId) this.shortIds.remove(peer.name, peer.shortId);
        removed.push(peer);
      }
      if (removed.length > 0) this.shortIdReassignPending = true;
    });
    for (const p of removed) this.events.onPeerRemoved?.(p);
    return removed;
  }

  private insert(peer: Peer): void {
    this.byName.set(peer.name, peer);
    if (peer.hasShortId) this.shortIds.add(peer.name, peer.shortId);
  }

  /** Run a change, then report principal changes and reassign our short id if we lost it (spec §4.8). */
  private watchShortIds(change: () => void): void {
    const before = this.shortIds.principalChanges;
    change();
    let changed = this.shortIds.principalChanges !== before;
    const us = this.ourselves;
    if ((changed || this.shortIdReassignPending) && this.shortIds.principal(us.shortId) !== us.name) {
      const fresh = this.shortIds.chooseFree(this.random);
      this.shortIdReassignPending = fresh === undefined;
      if (fresh !== undefined) {
        this.shortIds.remove(us.name, us.shortId);
        us.shortId = fresh;
        this.shortIds.add(us.name, fresh);
        us.version++;
        changed = true;
        this.events.onLocalChanged?.();
      }
    } else {
      this.shortIdReassignPending = false;
    }
    if (changed) this.events.onShortIdsChanged?.();
  }
}
