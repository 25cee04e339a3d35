// The nameserver: the local table of DNS entries, the local add/delete rules
// and the receive rules for gossip (wire spec §9.2, §9.3). Encoding and the
// mesh seam live in gossiper.ts; this module sees decoded payloads only.
import type { PeerName } from '../mesh/types.js';
import { EXTERN_CONTAINER_ID, GOSSIP_WINDOW_SECONDS, TOMBSTONE_PURGE_INTERVAL_MS, TOMBSTONE_TIMEOUT_SECONDS } from './constants.js';
import { NameTable, isStrictlyInWireOrder, mergeEntryLists, type Entry } from './entries.js';
import { DnsGossipError, type GossipPayload } from './gossip-payload.js';
import type { DnsEntryStore } from './persistence.js';

export interface NameserverOptions {
  ourName: PeerName;
  /** Whether the mesh currently knows this peer (wire spec §9.3 step 2). */
  isKnownPeer(name: PeerName): boolean;
  /** Unix time in seconds; injectable for tests. */
  now?(): number;
  /** Keeps our own entries across restarts; told of every change to them. */
  store?: DnsEntryStore;
}

/** Outcome of receiving one gossip payload (wire spec §9.3 step 5). */
export interface ReceiveResult {
  /** Entries that were new or changed here (what tag 4 passes on). */
  delta: Entry[];
  /** The received entries after filtering (what tag 6 relays). */
  relay: Entry[];
}

/** `{hostname, containerId, addr}` filters for deletion; undefined matches anything. */
export interface DeleteFilter {
  hostname?: string;
  containerId?: string;
  addr?: number;
}

/**
 * Saved entries taken back per turn of the event loop. A router restarting
 * with a large table (an hour of tombstones under churn) restores it in slices
 * beside its handshakes and API requests instead of before them.
 */
export const RESTORE_SLICE_ENTRIES = 1000;

/** Lets the event loop run what is due (I/O, timers) before the next slice. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One received payload, merged entry by entry (wire spec §9.3 steps 1-4):
 * begin() checks the sender's clock, entry() filters, overrides claims to our
 * own entries and merges, finish() hands over what changed. Duplicates are
 * merged rather than rejected, so that one bad sender cannot wedge the
 * channel: merging is a maximum per identity, so merging them one after the
 * other ends where merging them first would, and finish() lists each
 * identity once.
 */
export class GossipReceiver {
  private readonly delta: Entry[] = [];
  private readonly relay: Entry[] = [];
  private readonly overridden: Entry[] = [];
  private now = 0;
  private begun = false;

  constructor(private readonly nameserver: Nameserver, private readonly table: NameTable, private readonly keepRelay: boolean) {}

  /** Step 1: a sender whose clock is too far from ours is refused (DnsGossipError). */
  begin(timestamp: number): void {
    this.now = this.nameserver.now();
    const skew = timestamp - this.now;
    if (skew > GOSSIP_WINDOW_SECONDS || skew < -GOSSIP_WINDOW_SECONDS) {
      throw new DnsGossipError(
        `host clock skew of ${skew}s exceeds ${GOSSIP_WINDOW_SECONDS}s limit (synchronise the hosts' clocks, e.g. with NTP)`);
    }
    this.begun = true;
  }

  entry(received: Entry): void {
    if (!this.begun) throw new Error('GossipReceiver.entry before begin');
    const ourName = this.nameserver.ourName;
    // Step 2: only entries of peers the mesh knows.
    if (received.origin !== ourName && !this.nameserver.isKnownPeer(received.origin)) return;
    let e = received;
    // Step 3: an entry claiming to be ours is checked against what we hold.
    if (e.origin === ourName) {
      const ours = this.table.find(e);
      if (ours) {
        if (ours.version < e.version || (ours.version === e.version && ours.tombstone !== e.tombstone)) {
          e = { ...ours, version: e.version + 1 };
          this.overridden.push(e);
        }
      } else if (e.tombstone === 0) {
        e = { ...e, tombstone: this.now, version: e.version + 1 };
        this.overridden.push(e);
      }
    }
    const changed = this.table.mergeOne(e);
    if (changed) this.delta.push(changed);
    if (this.keepRelay) this.relay.push(e);
  }

  /**
   * What the payload changed here (passed on for tag 4) and, when kept, the
   * entries received (relayed for tag 6). Also called after a payload failed
   * part way: the entries merged by then are saved and announced all the same.
   */
  finish(): ReceiveResult {
    const eachIdentityOnce = (list: Entry[]): Entry[] => (isStrictlyInWireOrder(list) ? list : mergeEntryLists([], list));
    const delta = eachIdentityOnce(this.delta);
    this.nameserver.receivedOwn(delta, eachIdentityOnce(this.overridden));
    return { delta, relay: eachIdentityOnce(this.relay) };
  }
}

export class Nameserver {
  readonly ourName: PeerName;
  private readonly table = new NameTable();
  readonly isKnownPeer: (name: PeerName) => boolean;
  private readonly clock: () => number;
  private broadcaster: ((payload: GossipPayload) => void) | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private readonly store: DnsEntryStore | undefined;
  /** Restored entries, announced once a broadcaster is set. */
  private pendingBroadcast: Entry[] = [];
  /** Set while restore() runs; resolves when it is done. */
  private restoring: Promise<void> | undefined;
  /** Our full state went out (a new connection's gossip) while restoring: the restore then announces every entry it took back. */
  private partialStateSent = false;
  /** Local deletions asked for while restoring, applied after it (they must meet the restored entries). */
  private afterRestore: Array<() => void> = [];

  constructor(opts: NameserverOptions) {
    this.ourName = opts.ourName;
    this.isKnownPeer = opts.isKnownPeer;
    this.clock = opts.now ?? ((): number => Math.floor(Date.now() / 1000));
    this.store = opts.store;
  }

  /**
   * Takes back our entries saved before a restart, read by `load`, in slices
   * of `slice` entries with a turn of the event loop before each: a large
   * table comes back beside the router's handshakes and API requests, not
   * before them. A live name stays live when `weave:extern` owns it or its
   * container is still alive, else it is tombstoned now; either way its
   * version goes up so it overrides the copy peers still hold (which they
   * would otherwise keep, or we would tombstone). The changed entries are
   * broadcast once gossip is attached and the restore is done.
   *
   * Until it is done, isRestoring() is true: the gossiper holds received
   * gossip (step 3 of wire spec §9.3 must meet our saved entries, not a
   * partial table), local deletions wait, and add() is refused (DnsService
   * waits on whenRestored()).
   */
  async restore(load: () => readonly Entry[], isAlive: (containerId: string) => boolean, slice = RESTORE_SLICE_ENTRIES): Promise<Entry[]> {
    if (this.restoring) throw new Error('nameserver: a restore is already running');
    let done!: () => void;
    this.restoring = new Promise((resolve) => { done = resolve; });
    try {
      await nextTurn();
      const saved = load();
      const now = this.now();
      const restored: Entry[] = [];
      for (let i = 0; i < saved.length; i += slice) {
        if (i > 0) await nextTurn();
        const part = this.takeBack(saved.slice(i, i + slice), isAlive, now);
        this.table.merge(part);
        for (const e of part) restored.push(e);
      }
      this.saveOwned();
      // Tombstones taken back unchanged are otherwise left to full-state gossip, which went out without them.
      if (this.partialStateSent) this.pendingBroadcast = mergeEntryLists(this.pendingBroadcast, restored);
      return restored;
    } finally {
      this.restoring = undefined;
      this.partialStateSent = false;
      if (this.broadcaster) this.setBroadcaster(this.broadcaster);
      for (const fn of this.afterRestore.splice(0)) fn();
      done();
    }
  }

  /** Whether restore() is still running. */
  isRestoring(): boolean {
    return this.restoring !== undefined;
  }

  /** Resolves once no restore is running (at once when none is). */
  whenRestored(): Promise<void> {
    return this.restoring ?? Promise.resolve();
  }

  /**
   * Our saved entries as they come back: a live name stays live when
   * `weave:extern` owns it or its container is still alive, else it is
   * tombstoned now; either way its version goes up. Queued for broadcast.
   */
  private takeBack(saved: readonly Entry[], isAlive: (containerId: string) => boolean, now: number): Entry[] {
    const restored: Entry[] = [];
    for (const e of saved) {
      if (e.origin !== this.ourName) continue;
      if (e.tombstone !== 0) {
        restored.push({ ...e });
        continue;
      }
      const alive = e.containerId === EXTERN_CONTAINER_ID || isAlive(e.containerId);
      const changed = { ...e, version: e.version + 1, tombstone: alive ? 0 : now };
      restored.push(changed);
      this.pendingBroadcast.push(changed);
    }
    return restored;
  }

  now(): number {
    return this.clock();
  }

  /** Where local changes are broadcast (tag 6); set by the gossiper. */
  setBroadcaster(fn: ((payload: GossipPayload) => void) | undefined): void {
    this.broadcaster = fn;
    if (fn && this.pendingBroadcast.length > 0) {
      const pending = this.pendingBroadcast;
      this.pendingBroadcast = [];
      this.broadcast(pending);
    }
  }

  /** Purge old tombstones periodically (wire spec §9.3) until stop(). */
  start(): void {
    if (this.purgeTimer) return;
    this.purgeTimer = setInterval(() => this.purgeTombstones(), TOMBSTONE_PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  stop(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.purgeTimer = undefined;
  }

  /** Local add (wire spec §9.2): an entry owned by us, broadcast to all peers. Not while restoring. */
  add(hostname: string, containerId: string, addr: number): Entry {
    if (this.restoring) throw new Error(`nameserver: cannot add ${hostname} while saved names are being restored (await whenRestored())`);
    const { entry, changed } = this.table.add(hostname, containerId, this.ourName, addr);
    if (changed) this.recordOwned([entry]);
    this.broadcast([entry]);
    return entry;
  }

  /**
   * Local delete (wire spec §9.2): tombstone our matching live entries and
   * broadcast them. While restoring it is applied once the restore is done,
   * and returns nothing.
   */
  delete(filter: DeleteFilter): Entry[] {
    if (this.restoring) {
      this.afterRestore.push(() => this.delete(filter));
      return [];
    }
    const changed = this.table.tombstone(this.ourName, this.now(), (e) =>
      (filter.hostname === undefined || e.hostname === filter.hostname) &&
      (filter.containerId === undefined || e.containerId === filter.containerId) &&
      (filter.addr === undefined || e.addr === filter.addr));
    this.recordOwned(changed);
    this.broadcast(changed);
    return changed;
  }

  /** A container died: tombstone all its names (wire spec §9.2). */
  containerDied(containerId: string): Entry[] {
    return this.delete({ containerId });
  }

  /** The mesh garbage-collected a peer (wire spec §4.7): forget its entries. */
  peerGone(name: PeerName): number {
    return this.table.removeOrigin(name);
  }

  purgeTombstones(): number {
    const n = this.table.purgeTombstones(this.now(), TOMBSTONE_TIMEOUT_SECONDS);
    // Removed entries have no journal line: the store rewrites its copy.
    if (n > 0) this.saveOwned();
    return n;
  }

  lookup(hostname: string): readonly Readonly<Entry>[] {
    return this.table.lookup(hostname);
  }

  reverseLookup(addr: number): readonly Readonly<Entry>[] {
    return this.table.reverseLookup(addr);
  }

  /** All entries, tombstones included, in display order. */
  entries(): Entry[] {
    return this.table.all();
  }

  /** How many live entries we originate (`weave_dns_entries`): counted, not copied, per scrape. */
  liveOwnedCount(): number {
    return this.table.countWhere((e) => e.tombstone === 0 && e.origin === this.ourName);
  }

  /**
   * Complete state for periodic gossip / gossip-down (wire spec §9.2): the
   * table's own entries, not copies, to be encoded at once, before the table
   * next changes.
   */
  fullState(): { timestamp: number; entries: readonly Readonly<Entry>[] } {
    if (this.restoring) this.partialStateSent = true;
    return { timestamp: this.now(), entries: this.table.viewInWireOrder() };
  }

  /** Receive a decoded gossip payload (tags 4 and 6), wire spec §9.3. Throws DnsGossipError. */
  receive(payload: GossipPayload): ReceiveResult {
    const receiver = this.receiver(true);
    receiver.begin(payload.timestamp);
    for (const e of payload.entries) receiver.entry(e);
    return receiver.finish();
  }

  /**
   * Receives a gossip payload (tags 4 and 6, wire spec §9.3) an entry at a
   * time, as it is decoded (codec.ts decodeGossipPayloadInto), then finish().
   * `keepRelay`: whether finish() is to return the received entries (what a
   * broadcast relays); periodic gossip passes on only what changed.
   */
  receiver(keepRelay: boolean): GossipReceiver {
    return new GossipReceiver(this, this.table, keepRelay);
  }

  /** GossipReceiver's end: our own entries that changed are saved, those we overrode told to the cluster. */
  receivedOwn(delta: readonly Entry[], overridden: Entry[]): void {
    this.recordOwned(delta.filter((e) => e.origin === this.ourName));
    this.broadcast(overridden);
  }

  /**
   * Tells the store of changes to our own entries, tombstones included (their
   * versions must survive too); it may ask for all of them.
   */
  private recordOwned(changed: readonly Entry[]): void {
    if (changed.length > 0) this.store?.record(changed, () => this.table.ownedBy(this.ourName));
  }

  private saveOwned(): void {
    this.store?.save(this.table.ownedBy(this.ourName));
  }

  /** Broadcast entries received while restoring, once taken in (they were not relayed then). */
  spread(entries: Entry[]): void {
    this.broadcast(entries);
  }

  private broadcast(entries: Entry[]): void {
    if (entries.length === 0 || !this.broadcaster) return;
    this.broadcaster({ timestamp: this.now(), entries: entries.map((e) => ({ ...e })) });
  }
}
