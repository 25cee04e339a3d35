// The IPAM allocator (spec §8): hands out addresses from the space this peer
// owns on the ring, asks other owners for space when it runs out, bootstraps
// the ring by Paxos or seeds, and gossips on the `IPallocation` channel.
// Single-threaded: every method runs to completion on the event loop.
import type { Address, CIDR, Range } from './addr.js';
import { cidrRange, formatAddress, formatCIDR, hostRange, intersect, overlaps, rangeContains, rangeSize } from './addr.js';
import type { PeerName, RingSnapshot } from './ring.js';
import { Ring } from './ring.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';
import { Space } from './space.js';
import { PaxosNode } from './paxos.js';
import type { GossipChannel, GossipData, Gossiper } from './gossip-port.js';
import type { GobStreamCodec, GossipStateMessage, UnicastMessage } from './messages.js';
import { decodeGossipState, decodeUnicast, encodeGossipState, encodeUnicast } from './messages.js';
import type { IpamStore, PersistedIpam } from './store.js';
import { compareOrdered } from '../order.js';

/** `--ipalloc-init` (user surface §4.3). */
export type IpamInit =
  | { mode: 'consensus'; count?: number }
  | { mode: 'seed'; seeds: PeerName[] }
  | { mode: 'observer' };

export interface AllocatorConfig {
  name: PeerName;
  uid: bigint;
  nickname: string;
  /** `--ipalloc-range`. */
  universe: CIDR;
  /** `--ipalloc-default-subnet` (defaults to the universe). */
  defaultSubnet?: CIDR;
  init: IpamInit;
  /** Number of initial peers given to the router, for the default quorum (spec §8.6). */
  initialPeerCount?: () => number;
  /** Whether a peer is currently reachable in the mesh topology. */
  isKnownPeer: (peer: PeerName) => boolean;
  codec: GobStreamCodec;
  store?: IpamStore;
  /** What to do with persisted state for another range (default: refuse to start; Weave discards it). */
  onRangeMismatch?: 'error' | 'discard';
  /** Whether a container is still running (for check-alive and dead-container cleanup). */
  isContainerAlive?: (ident: string) => boolean;
  nowMs?: () => number;
  random?: () => number;
  log?: (message: string) => void;
}

/** A request that cannot be served: HTTP 400 at the API (spec §10.4). */
export class IpamError extends Error {
  constructor(message: string) { super(message); this.name = 'IpamError'; }
}
/** The container died or the request was aborted (API body `cancelled`). */
export class IpamCancelledError extends IpamError {
  constructor(ident: string) { super(`cancelled: container ${ident} is not running`); this.name = 'IpamCancelledError'; }
}
/** The caller withdrew a waiting request (its AbortSignal fired). */
export class IpamAbortedError extends IpamError {
  constructor(what: string) { super(`${what} was withdrawn by the caller before it completed`); this.name = 'IpamAbortedError'; }
}

/** Allocator tick and retry interval (spec §8.8). */
export const TICK_INTERVAL_MS = 5_000;
/** Addresses of a dead container are released after this long (spec §8.8). */
export const DEAD_CONTAINER_GRACE_MS = 30_000;
/**
 * A claim of an address another peer owns asks that owner when the ring
 * changes and again every tick (spec §8.7); after this many ticks without the
 * address it fails, so a claim against an owner that cannot be reached or does
 * not answer ends within about this many ticks instead of waiting forever.
 */
export const CLAIM_MAX_TICK_ASKS = 5;
/**
 * The ident of a request made for no particular container (Weave's
 * `api.NoContainerID`, used by the Docker plugin's IPAM driver): the address is
 * filed under its own dotted-quad text, so `DELETE /ip/<address>` releases it.
 */
export const NO_CONTAINER_ID = '_';
/** Idents that are not containers and never die. */
const NEVER_DIES = new Set(['weave:expose', NO_CONTAINER_ID]);

/** The ident an address is recorded under: an anonymous request's address is its own ident. */
function ownerIdent(ident: string, addr: Address): string {
  return ident === NO_CONTAINER_ID ? formatAddress(addr) : ident;
}

interface PendingOp {
  kind: 'allocate' | 'claim';
  ident: string;
  /** allocate: the subnet to allocate in; claim: the address and its prefix. */
  cidr: CIDR;
  noErrorOnUnknown: boolean;
  checkAlive: boolean;
  askedGeneration: number;
  askedAtMs: number;
  /** Space requests re-sent (or attempted) on ticks for this operation. */
  tickAsks: number;
  /** The reason the last space request could not be sent, if it could not. */
  lastSendError?: string;
  done(result: CIDR): void;
  fail(err: Error): void;
}

export interface AllocateOptions {
  checkAlive?: boolean;
  /** Aborting withdraws the request (the caller went away); the promise rejects with IpamAbortedError. */
  signal?: AbortSignal;
}
export interface ClaimOptions {
  checkAlive?: boolean;
  noErrorOnUnknown?: boolean;
  /** Aborting withdraws the request (the caller went away); the promise rejects with IpamAbortedError. */
  signal?: AbortSignal;
}

export class Allocator implements Gossiper {
  readonly universe: CIDR;
  readonly defaultSubnet: CIDR;
  private readonly universeRange: Range;
  private ring: Ring;
  private readonly space = new Space();
  private readonly paxos: PaxosNode | undefined;
  private paxosRunning = false;
  /** Addresses in use per ident, in allocation order, with their prefix lengths. */
  private readonly owned = new Map<string, CIDR[]>();
  private readonly nicknames = new Map<PeerName, string>();
  private pending: PendingOp[] = [];
  /** retryPending is running; a state change during it asks for another pass. */
  private retrying = false;
  private retryAgain = false;
  private primeWaiters: Array<() => void> = [];
  private ringGeneration = 0;
  private readonly deadSince = new Map<string, number>();
  private channel: GossipChannel | undefined;
  private stopped = false;
  /** Operations done in memory whose answer waits for the state to reach the disk (group commit). */
  private awaitingDurable: Array<{ op: PendingOp; result: CIDR }> = [];
  private commitScheduled = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: (m: string) => void;

  constructor(private readonly cfg: AllocatorConfig) {
    this.universe = cfg.universe;
    this.universeRange = cidrRange(cfg.universe);
    this.defaultSubnet = cfg.defaultSubnet ?? cfg.universe;
    if (!overlaps(cidrRange(this.defaultSubnet), this.universeRange)) {
      throw new IpamError(`IP address allocation default subnet ${formatCIDR(this.defaultSubnet)} does not overlap with allocation range ${formatCIDR(this.universe)}`);
    }
    this.now = cfg.nowMs ?? Date.now;
    this.random = cfg.random ?? Math.random;
    this.log = cfg.log ?? (() => undefined);
    this.ring = new Ring(this.universeRange.start, this.universeRange.end, cfg.name);
    this.nicknames.set(cfg.name, cfg.nickname);
    if (cfg.init.mode === 'consensus') this.paxos = new PaxosNode(cfg.name, cfg.uid, this.quorum());
    this.restore();
    if (this.ring.isEmpty() && cfg.init.mode === 'seed') {
      const seeds = [...new Set(cfg.init.seeds)].sort(compareOrdered);
      if (seeds.length === 0) throw new IpamError('Unable to parse --ipalloc-init: seed mode requires peer name list');
      this.ring.claimForPeers(seeds);
      this.ringChanged();
    }
  }

  // ---------------------------------------------------------------- wiring

  /** Attach the gossip channel; nothing is sent before this. */
  setChannel(channel: GossipChannel): void { this.channel = channel; }

  /** Run the 5 s tick on a timer (the host may instead call tick() itself). */
  start(): void {
    if (this.timer) return;
    this.pruneDeadOwners();
    this.timer = setInterval(() => this.tick(), TICK_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Releases at once the addresses of containers that went away while the
   * router was down (Weave's PruneOwned at startup): no grace period, since
   * they cannot be restarting under a router that was not running.
   */
  private pruneDeadOwners(): void {
    const isAlive = this.cfg.isContainerAlive;
    if (!isAlive) return;
    for (const ident of [...this.owned.keys()]) {
      if (NEVER_DIES.has(ident) || isAlive(ident)) continue;
      this.log(`IPAM: deleting old entry ${ident}: ${(this.owned.get(ident) ?? []).map(formatCIDR).join(' ')} (its container is gone)`);
      this.deleteIdent(ident);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopped = true;
    for (const op of this.pending) op.fail(new IpamError('IPAM is shutting down'));
    this.pending = [];
  }

  /** Quorum for consensus (spec §8.6). */
  quorum(): number {
    const init = this.cfg.init;
    if (init.mode === 'consensus' && init.count !== undefined) return Math.floor(init.count / 2) + 1;
    const peers = this.cfg.initialPeerCount?.() ?? 0;
    return Math.floor((peers + 1) / 2) + 1;
  }

  // ------------------------------------------------------------ operations

  /** Allocate an address for `ident` in `subnet` (idempotent: an existing one is returned). */
  async allocate(ident: string, subnet: CIDR = this.defaultSubnet, opts: AllocateOptions = {}): Promise<CIDR> {
    this.checkRunning();
    const net = { addr: cidrRange(subnet).start, prefixLen: subnet.prefixLen };
    if (rangeSize(cidrRange(net)) < 4) throw new IpamError(`subnet ${formatCIDR(subnet)} is too small (minimum subnet size is 4 addresses)`);
    if (!overlaps(cidrRange(net), this.universeRange)) {
      throw new IpamError(`subnet ${formatCIDR(subnet)} is outside the allocation range ${formatCIDR(this.universe)}`);
    }
    const existing = (this.owned.get(ident) ?? []).find((c) => rangeContains(cidrRange(net), c.addr) && c.prefixLen === net.prefixLen);
    if (existing) return existing;
    return this.enqueue({ kind: 'allocate', ident, cidr: net, noErrorOnUnknown: false, checkAlive: opts.checkAlive ?? false }, opts.signal);
  }

  /** Claim a specific address for `ident` (spec §8.7). */
  async claim(ident: string, cidr: CIDR, opts: ClaimOptions = {}): Promise<void> {
    this.checkRunning();
    const mine = this.owned.get(ident)?.some((c) => c.addr === cidr.addr);
    if (mine) return;
    if (!rangeContains(this.universeRange, cidr.addr)) {
      // Outside the universe nobody else can hand it out: just record it.
      this.record(ownerIdent(ident, cidr.addr), cidr);
      this.persist();
      return;
    }
    await this.enqueue({
      kind: 'claim', ident, cidr, checkAlive: opts.checkAlive ?? false, noErrorOnUnknown: opts.noErrorOnUnknown ?? false,
    }, opts.signal);
  }

  /** Addresses `ident` holds, optionally restricted to a subnet. */
  lookup(ident: string, subnet?: CIDR): CIDR[] {
    const all = this.owned.get(ident) ?? [];
    return subnet ? all.filter((c) => rangeContains(cidrRange(subnet), c.addr)) : [...all];
  }

  /** Every ident and its addresses (GET /ip). */
  allOwned(): Array<{ ident: string; addrs: CIDR[] }> {
    return [...this.owned].map(([ident, addrs]) => ({ ident, addrs: [...addrs] }));
  }

  /** Release one address (DELETE /ip/{id}/{ip}). */
  free(ident: string, addr: Address): void {
    const list = this.owned.get(ident) ?? [];
    const idx = list.findIndex((c) => c.addr === addr);
    if (idx < 0) throw new IpamError(`address ${formatAddress(addr)} is not owned by ${ident}`);
    list.splice(idx, 1);
    if (list.length === 0) this.owned.delete(ident);
    this.space.release(addr);
    this.persist();
    this.retryPending();
  }

  /** Release all addresses of `ident` (DELETE /ip/{id}); returns how many. */
  deleteIdent(ident: string): number {
    this.cancelPending(ident);
    const list = this.owned.get(ident);
    if (!list || list.length === 0) throw new IpamError(`no addresses are owned by ${ident}`);
    for (const c of list) this.space.release(c.addr);
    this.owned.delete(ident);
    this.deadSince.delete(ident);
    this.persist();
    this.retryPending();
    return list.length;
  }

  /** A container died: abort its pending requests (its addresses go after the grace period). */
  containerDied(ident: string): void {
    this.cancelPending(ident);
    if (!this.deadSince.has(ident)) this.deadSince.set(ident, this.now());
  }

  /**
   * A peer left the mesh (or the topology changed otherwise): requests waiting
   * on a peer are tried again at once, so a claim of an address owned by a
   * peer that is gone fails now rather than at the next tick.
   */
  peersChanged(): void {
    if (this.stopped) return;
    for (const op of this.pending) op.askedGeneration = -1;
    this.retryPending();
  }

  /** Resolves once the ring exists (GET /ring, `weave prime`). */
  async prime(): Promise<void> {
    this.checkRunning();
    if (!this.ring.isEmpty()) return;
    const waiting = new Promise<void>((resolve) => this.primeWaiters.push(resolve));
    this.establishRing();
    await waiting;
  }

  hasRing(): boolean { return !this.ring.isEmpty(); }

  /**
   * `weave rmpeer` / DELETE /peer/{id}: take over every range of a dead peer
   * (spec §8.4 transfer). Returns the number of addresses taken over.
   */
  adminTakeRangesFromPeer(peerNameOrNickname: string): number {
    const peer = this.resolvePeer(peerNameOrNickname);
    if (peer === undefined || peer === this.cfg.name) return 0;
    const moved = this.ring.transfer(peer, this.cfg.name);
    if (moved.length === 0) return 0;
    this.log(`IPAM: took over ${moved.length} range(s) from ${formatPeerName(peer)}`);
    this.ringChanged();
    this.persist();
    this.broadcast();
    return moved.reduce((n, r) => n + rangeSize(r), 0);
  }

  /** DELETE /peer (`weave reset`): hand all our ranges to a reachable peer, then stop. */
  leave(): PeerName | undefined {
    let heir: PeerName | undefined;
    if (!this.ring.isEmpty()) {
      heir = this.pickPeerForTransfer();
      if (heir !== undefined) {
        this.ring.transfer(this.cfg.name, heir);
        this.ringChanged();
        this.broadcast();
      }
    }
    this.stop();
    return heir;
  }

  /**
   * Who inherits our ranges when we leave, as Weave's pickPeerForTransfer: a
   * reachable peer with ring entries, else a reachable peer that runs IPAM
   * without entries yet (known from gossiped nicknames), else one that has
   * gone but holds entries, else any peer ever seen. Leaving the ranges to
   * nobody would strand them with a departed owner.
   */
  private pickPeerForTransfer(): PeerName | undefined {
    const reachable = (p: PeerName): boolean => this.cfg.isKnownPeer(p);
    const anyone = (): boolean => true;
    const fromNicknames = (ok: (p: PeerName) => boolean): PeerName | undefined =>
      [...this.nicknames.keys()].find((p) => p !== this.cfg.name && ok(p));
    return this.ring.pickPeerForTransfer(reachable) ?? fromNicknames(reachable) ?? this.ring.pickPeerForTransfer(anyone) ?? fromNicknames(anyone);
  }

  /** The 5 s tick (spec §8.8): retry pending requests and release dead containers' addresses. */
  tick(): void {
    if (this.stopped) return;
    if (this.ring.isEmpty() && this.pending.length + this.primeWaiters.length > 0) this.establishRing(true);
    const isAlive = this.cfg.isContainerAlive;
    if (isAlive) {
      for (const ident of this.owned.keys()) {
        if (NEVER_DIES.has(ident) || isAlive(ident)) { this.deadSince.delete(ident); continue; }
        if (!this.deadSince.has(ident)) this.deadSince.set(ident, this.now());
      }
    }
    for (const [ident, since] of this.deadSince) {
      if (this.now() - since >= DEAD_CONTAINER_GRACE_MS && this.owned.has(ident)) {
        this.log(`IPAM: releasing addresses of dead container ${ident}`);
        this.deleteIdent(ident);
      }
      if (!this.owned.has(ident)) this.deadSince.delete(ident);
    }
    this.retryPending(true);
    if (!this.ring.isEmpty() && this.ring.reportFree((rs) => this.space.numFreeIn(rs))) this.broadcast();
  }

  // ------------------------------------------------------------ gossiper

  onGossipUnicast(src: PeerName, payload: Uint8Array): void {
    const msg: UnicastMessage = decodeUnicast(this.cfg.codec, payload);
    switch (msg.kind) {
      case 'spaceRequest': this.donateSpace(msg.range, src); break;
      case 'ringUpdate': this.update(src, msg.state); break;
      case 'spaceRequestDenied': this.spaceDenied(msg.range, src); break;
    }
  }

  onGossipBroadcast(src: PeerName, payload: Uint8Array): GossipData | undefined {
    this.update(src, decodeGossipState(this.cfg.codec, payload));
    return this.gossipData();
  }

  gossip(): GossipData | undefined { return this.gossipData(); }

  onGossip(payload: Uint8Array): GossipData | undefined {
    this.update(undefined, decodeGossipState(this.cfg.codec, payload));
    return undefined;
  }

  /** The current gossipState (spec §8.2); free counts are refreshed first. */
  currentState(): GossipStateMessage {
    if (!this.ring.isEmpty()) this.ring.reportFree((rs) => this.space.numFreeIn(rs));
    const state: GossipStateMessage = { now: BigInt(Math.floor(this.now() / 1000)), nicknames: new Map(this.nicknames) };
    if (!this.ring.isEmpty()) state.ring = this.ring.snapshot();
    else if (this.paxos) state.paxos = this.paxos.state(); // electors always send their claims (spec §8.2)
    return state;
  }

  encodeState(): Uint8Array { return encodeGossipState(this.cfg.codec, this.currentState()); }

  // ------------------------------------------------------------ status

  /** Everything status.ts needs. */
  statusSnapshot(): AllocatorStatusData {
    return {
      ourName: this.cfg.name,
      universe: this.universe,
      defaultSubnet: this.defaultSubnet,
      ring: this.ring.isEmpty() ? undefined : this.ring.snapshot(),
      ringRanges: this.ring.allRangeInfo(),
      nicknames: new Map(this.nicknames),
      isKnownPeer: this.cfg.isKnownPeer,
      activeIPs: [...this.owned.values()].reduce((n, l) => n + l.length, 0),
      paxos: this.paxos && this.ring.isEmpty()
        ? { elector: true, knownNodes: this.paxos.knownNodes, quorum: this.paxos.quorum } : undefined,
      observerPriming: !this.paxos && this.ring.isEmpty() && this.cfg.init.mode === 'observer' && this.pending.length + this.primeWaiters.length > 0,
      consensusRunning: this.paxosRunning && this.ring.isEmpty(),
      pendingClaims: this.pending.filter((o) => o.kind === 'claim').map((o) => ({ ident: o.ident, cidr: o.cidr })),
      pendingAllocates: this.pending.filter((o) => o.kind === 'allocate').map((o) => ({ ident: o.ident, range: cidrRange(o.cidr) })),
    };
  }

  // ------------------------------------------------------------ internals

  private checkRunning(): void {
    if (this.stopped) throw new IpamError('IPAM is shutting down');
  }

  /**
   * Queue an operation and run the queue. The operation is queued before it is
   * first tried, so a state change its own attempt causes (consensus reached
   * on a lone router, a synchronous answer) re-runs it like any other.
   */
  private enqueue(spec: Omit<PendingOp, 'askedGeneration' | 'askedAtMs' | 'tickAsks' | 'done' | 'fail'>, signal?: AbortSignal): Promise<CIDR> {
    const what = `${spec.kind === 'claim' ? 'claim of' : 'allocation in'} ${formatCIDR(spec.cidr)} for ${spec.ident}`;
    if (signal?.aborted) return Promise.reject(new IpamAbortedError(what));
    return new Promise<CIDR>((resolve, reject) => {
      const onAbort = (): void => {
        this.pending = this.pending.filter((o) => o !== op);
        op.fail(new IpamAbortedError(what));
      };
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const op: PendingOp = {
        ...spec, askedGeneration: -1, askedAtMs: -Infinity, tickAsks: 0,
        done: (r) => { if (settle()) resolve(r); },
        fail: (e) => { if (settle()) reject(e); },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(op);
      this.retryPending();
    });
  }

  /** Try one operation; true when it finished (either way). */
  private tryOp(op: PendingOp, fromTick: boolean): boolean {
    if (op.checkAlive && this.cfg.isContainerAlive && !this.cfg.isContainerAlive(op.ident)) {
      op.fail(new IpamCancelledError(op.ident));
      return true;
    }
    if (this.ring.isEmpty()) {
      // Starting consensus may create the ring at once (quorum 1): then carry on.
      this.establishRing();
      if (this.ring.isEmpty()) return false;
    }
    return op.kind === 'allocate' ? this.tryAllocate(op, fromTick) : this.tryClaim(op, fromTick);
  }

  private tryAllocate(op: PendingOp, fromTick: boolean): boolean {
    const existing = (this.owned.get(op.ident) ?? []).find((c) => rangeContains(cidrRange(op.cidr), c.addr) && c.prefixLen === op.cidr.prefixLen);
    if (existing) { op.done(existing); return true; }
    const addr = this.space.allocate(hostRange(op.cidr));
    if (addr !== undefined) {
      const result = { addr, prefixLen: op.cidr.prefixLen };
      this.record(ownerIdent(op.ident, addr), result);
      this.doneWhenDurable(op, result);
      return true;
    }
    // Out of space: ask another owner (spec §8.7), once per ring change or retry interval.
    const due = op.askedGeneration !== this.ringGeneration || (fromTick && this.now() - op.askedAtMs >= TICK_INTERVAL_MS);
    if (due) {
      const want = intersect(cidrRange(op.cidr), this.universeRange)!;
      const donor = this.ring.choosePeersToAskForSpace(want, this.random).find((p) => this.cfg.isKnownPeer(p));
      op.askedGeneration = this.ringGeneration;
      op.askedAtMs = this.now();
      if (donor !== undefined) this.unicast(donor, { kind: 'spaceRequest', range: want });
    }
    return false;
  }

  private tryClaim(op: PendingOp, fromTick: boolean): boolean {
    const addr = op.cidr.addr;
    const holder = this.holderOf(addr);
    const ident = ownerIdent(op.ident, addr);
    if (holder === ident) { op.done(op.cidr); return true; }
    // Weave lets an anonymous claim re-take an address some container holds: it
    // cannot tell whether that is the same container asking again.
    if (holder !== undefined && op.ident === NO_CONTAINER_ID) { op.done(op.cidr); return true; }
    if (holder !== undefined) {
      op.fail(new IpamError(`address ${formatAddress(addr)} is already owned by ${holder}`));
      return true;
    }
    const owner = this.ring.owner(addr)!;
    if (owner === this.cfg.name) {
      this.space.claim(addr);
      this.record(ident, op.cidr);
      this.doneWhenDurable(op, op.cidr);
      return true;
    }
    if (!this.cfg.isKnownPeer(owner)) {
      if (op.noErrorOnUnknown) { op.done(op.cidr); return true; }
      op.fail(new IpamError(`address ${formatAddress(addr)} is owned by peer ${this.describePeer(owner)}, which is not reachable`));
      return true;
    }
    // Ask the owner for the address (spec §8.7) when the ring changes and again
    // every tick: a request or its answer may be lost on the way, or the owner
    // may not be routable yet. After CLAIM_MAX_TICK_ASKS ticks the claim fails.
    const retryDue = fromTick && this.now() - op.askedAtMs >= TICK_INTERVAL_MS / 2;
    if (op.askedGeneration === this.ringGeneration && !retryDue) return false;
    if (retryDue && op.tickAsks >= CLAIM_MAX_TICK_ASKS) {
      const why = op.lastSendError ? `: ${op.lastSendError}` : `, which did not grant it after ${op.tickAsks + 1} requests`;
      op.fail(new IpamError(`address ${formatAddress(addr)} is owned by other peer ${this.describePeer(owner)}${why}`));
      return true;
    }
    if (retryDue) op.tickAsks++;
    op.askedGeneration = this.ringGeneration;
    op.askedAtMs = this.now();
    op.lastSendError = this.unicast(owner, { kind: 'spaceRequest', range: { start: addr, end: addr + 1 } });
    return false;
  }

  private holderOf(addr: Address): string | undefined {
    for (const [ident, list] of this.owned) if (list.some((c) => c.addr === addr)) return ident;
    return undefined;
  }

  private record(ident: string, cidr: CIDR): void {
    const list = this.owned.get(ident) ?? [];
    list.push(cidr);
    this.owned.set(ident, list);
  }

  private cancelPending(ident: string): void {
    this.pending = this.pending.filter((op) => {
      if (op.ident !== ident) return true;
      op.fail(new IpamCancelledError(ident));
      return false;
    });
  }

  /**
   * Try every queued operation again. Called after every state change that
   * could satisfy one (ring change, consensus, freed address, new request,
   * tick). A change made while the queue runs (an attempt that reached
   * consensus, say) runs it once more. An attempt that throws fails only its
   * own operation: nothing is ever dropped from the queue unanswered.
   */
  private retryPending(fromTick = false): void {
    if (this.retrying) { this.retryAgain = true; return; }
    this.retrying = true;
    try {
      let pass = 0;
      do {
        this.retryAgain = false;
        const ops = this.pending;
        this.pending = [];
        const still: PendingOp[] = [];
        for (const op of ops) {
          let finished: boolean;
          try {
            finished = this.tryOp(op, fromTick && pass === 0);
          } catch (err) {
            op.fail(err instanceof IpamError ? err : new IpamError(`${op.kind} for ${op.ident} failed: ${(err as Error).message}`));
            finished = true;
          }
          if (!finished) still.push(op);
        }
        this.pending = [...still, ...this.pending];
        pass++;
      } while (this.retryAgain && this.pending.length > 0 && !this.stopped);
    } finally {
      this.retrying = false;
      this.retryAgain = false;
    }
  }

  /** Start getting a ring (spec §8.6): propose as elector, or ask electors as observer. */
  private establishRing(retry = false): void {
    if (!this.ring.isEmpty() || this.stopped) return;
    if (this.paxos) {
      if (this.paxosRunning && !retry) return;
      this.paxosRunning = true;
      this.paxos.quorum = this.quorum();
      this.paxos.propose();
      this.paxos.think();
      if (this.checkConsensus()) return;
      this.broadcast();
    } else if (this.cfg.init.mode === 'observer') {
      this.broadcast(); // neither ring nor Paxos: electors answer with the ring
    }
  }

  private checkConsensus(): boolean {
    const agreed = this.paxos?.consensus();
    if (!agreed || !this.ring.isEmpty()) return false;
    const peers = [...new Set(agreed.value)].sort(compareOrdered);
    this.log(`IPAM: consensus reached, creating ring for ${peers.map(formatPeerName).join(', ')}`);
    this.ring.claimForPeers(peers);
    this.ringChanged();
    this.persist();
    this.broadcast();
    return true;
  }

  /** Receive processing (spec §8.3). `sender` is undefined for tag 4. */
  private update(sender: PeerName | undefined, msg: GossipStateMessage): void {
    for (const [name, nick] of msg.nicknames) this.nicknames.set(name, nick);
    if (msg.ring) {
      const wasEmpty = this.ring.isEmpty();
      const changed = this.ring.merge(msg.ring, (r) => this.space.hasInUse(r));
      if (changed || (wasEmpty && !this.ring.isEmpty())) {
        this.ringChanged();
        this.persist();
      }
      return;
    }
    if (!this.ring.isEmpty()) {
      if (sender !== undefined && sender !== this.cfg.name && this.cfg.isKnownPeer(sender)) {
        this.unicast(sender, { kind: 'ringUpdate', state: this.currentState() });
      }
      return;
    }
    if (msg.paxos) {
      if (!this.paxos) return; // observers never take part
      this.paxos.quorum = this.quorum();
      const learned = this.paxos.update(msg.paxos);
      const ourChange = this.paxos.think();
      if (this.paxos.hasPromised()) this.paxosRunning = true;
      if (this.checkConsensus()) return;
      if (ourChange || learned) this.broadcast();
      return;
    }
    if (this.paxos && sender !== undefined && this.cfg.isKnownPeer(sender)) this.establishRing();
  }

  private donateSpace(requested: Range, to: PeerName): void {
    if (this.ring.isEmpty()) return;
    const want = intersect(requested, this.universeRange);
    const donated = want ? this.space.donate(want) : undefined;
    if (donated) {
      this.log(`IPAM: giving ${formatAddress(donated.start)}-${formatAddress(donated.end - 1)} to ${this.describePeer(to)}`);
      this.ring.grantRangeToHost(donated.start, donated.end, to);
      this.ringChanged();
      this.persist();
      this.broadcast();
    } else {
      this.unicast(to, { kind: 'spaceRequestDenied', range: requested });
    }
    this.unicast(to, { kind: 'ringUpdate', state: this.currentState() });
  }

  private spaceDenied(range: Range, from: PeerName): void {
    this.pending = this.pending.filter((op) => {
      if (op.kind !== 'claim' || !rangeContains(range, op.cidr.addr)) return true;
      op.fail(new IpamError(`address ${formatAddress(op.cidr.addr)} is in use by peer ${this.describePeer(from)}`));
      return false;
    });
  }

  /** After any change of the ring: refresh owned space, wake waiters, retry. */
  private ringChanged(): void {
    this.ringGeneration++;
    this.space.setOwned(this.ring.ownedRanges());
    for (const list of this.owned.values()) for (const c of list) this.space.claim(c.addr);
    if (!this.ring.isEmpty()) {
      this.paxosRunning = false;
      const waiters = this.primeWaiters;
      this.primeWaiters = [];
      for (const w of waiters) w();
    }
    this.retryPending();
  }

  private resolvePeer(text: string): PeerName | undefined {
    if (/^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i.test(text)) return BigInt('0x' + text.split(':').map((p) => p.padStart(2, '0')).join(''));
    for (const [name, nick] of this.nicknames) if (nick === text) return name;
    return undefined;
  }

  private describePeer(p: PeerName): string {
    const nick = this.nicknames.get(p);
    return nick ? `${formatPeerName(p)}(${nick})` : formatPeerName(p);
  }

  private gossipData(): GossipData { return new IpamGossipData(this); }

  private broadcast(): void { this.channel?.gossipBroadcast(this.gossipData()); }

  /**
   * Send to one peer; returns why it could not be sent, if it could not (no
   * route yet, or any more). A peer we cannot reach is not an error in the
   * gossip we are handling, so nothing is thrown into the mesh.
   */
  private unicast(dst: PeerName, msg: UnicastMessage): string | undefined {
    try {
      this.channel?.gossipUnicast(dst, encodeUnicast(this.cfg.codec, msg));
      return undefined;
    } catch (err) {
      const why = (err as Error).message;
      this.log(`IPAM: cannot send ${msg.kind} to ${this.describePeer(dst)}: ${why}`);
      return why;
    }
  }

  // ------------------------------------------------------------ persistence

  /**
   * Write the whole state durably. Every operation waiting in doneWhenDurable
   * is covered by this write and answered after it.
   */
  private persist(): void {
    const waiting = this.awaitingDurable;
    this.awaitingDurable = [];
    if (this.cfg.store) {
      const state: PersistedIpam = {
        peerName: this.cfg.name,
        range: { ...this.universeRange },
        allocations: [...this.owned].map(([ident, list]) => ({ ident, addrs: list.map((c) => ({ ...c })) })),
      };
      if (!this.ring.isEmpty()) state.ring = this.ring.snapshot();
      try {
        this.cfg.store.save(state);
      } catch (err) {
        for (const w of waiting) w.op.fail(new IpamError(`${w.op.kind} for ${w.op.ident} failed: ${(err as Error).message}`));
        throw err;
      }
    }
    for (const w of waiting) w.op.done(w.result);
  }

  /**
   * Answer `op` once the state holding its result is on disk. Operations that
   * complete in the same turn of the event loop (concurrent HTTP requests read
   * together, or a burst retried at once) share one write and fsync: group
   * commit, the same durability at a fraction of the cost of one write each.
   */
  private doneWhenDurable(op: PendingOp, result: CIDR): void {
    this.awaitingDurable.push({ op, result });
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    setImmediate(() => {
      this.commitScheduled = false;
      if (this.awaitingDurable.length === 0) return; // another write covered them
      try {
        this.persist();
      } catch (err) {
        this.log(`IPAM: cannot save state to ${this.cfg.store?.location ?? 'the store'}: ${(err as Error).message}`);
      }
    });
  }

  private restore(): void {
    const saved = this.cfg.store?.load();
    if (!saved) return;
    if (saved.peerName !== this.cfg.name) {
      this.log(`IPAM: discarding persisted data of peer ${formatPeerName(saved.peerName)} (we are ${formatPeerName(this.cfg.name)})`);
      return;
    }
    if (saved.range.start !== this.universeRange.start || saved.range.end !== this.universeRange.end) {
      const was = `${formatAddress(saved.range.start)}-${formatAddress(saved.range.end - 1)}`;
      if (this.cfg.onRangeMismatch === 'discard') {
        // Weave's words; the file is rewritten at once so the old range's state cannot come back.
        this.log(`IPAM: Deleting persisted data for IPAM range ${was}; our range is ${formatCIDR(this.universe)}`);
        this.persist();
        return;
      }
      throw new IpamError(`${this.cfg.store!.location}: persisted IPAM data is for range ${was} but --ipalloc-range is ${formatCIDR(this.universe)}; ` +
        `run 'weave reset' (or delete ${this.cfg.store!.location}) to start afresh, or launch with the previous --ipalloc-range`);
    }
    if (saved.ring) {
      try {
        this.ring = Ring.restore(saved.ring, this.cfg.name);
      } catch (err) {
        throw new IpamError(`${this.cfg.store!.location}: ${(err as Error).message}; remove it or run 'weave reset' to start with fresh IPAM state`);
      }
    }
    for (const { ident, addrs } of saved.allocations) {
      for (const c of addrs) this.record(ident, { addr: c.addr, prefixLen: c.prefixLen });
    }
    if (!this.ring.isEmpty()) this.ringChanged();
  }
}

/** IPAM gossip data: encodes the allocator's state at send time (spec §4.2). */
class IpamGossipData implements GossipData {
  constructor(private readonly alloc: Allocator) {}
  encode(): Uint8Array[] { return [this.alloc.encodeState()]; }
  merge(other: GossipData): GossipData { return other instanceof IpamGossipData ? other : this; }
}

export interface AllocatorStatusData {
  ourName: PeerName;
  universe: CIDR;
  defaultSubnet: CIDR;
  ring: RingSnapshot | undefined;
  ringRanges: Array<{ peer: PeerName; range: Range; version: number }>;
  nicknames: Map<PeerName, string>;
  isKnownPeer: (p: PeerName) => boolean;
  activeIPs: number;
  paxos: { elector: boolean; knownNodes: number; quorum: number } | undefined;
  observerPriming: boolean;
  consensusRunning: boolean;
  pendingClaims: Array<{ ident: string; cidr: CIDR }>;
  pendingAllocates: Array<{ ident: string; range: Range }>;
}
