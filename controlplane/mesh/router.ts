// The mesh router: owns the local peer's connections, the peer table, routes
// and gossip channels, and wires them together as spec §1.7, §2.2-2.5 and §4
// describe. Pure logic: bytes come and go through MessageLinks.
import { systemClock, type Cancel, type Clock } from './clock.js';
import { wireCodec, type MeshCodec } from './codec.js';
import { MeshConnection, type ConnectionHost } from './connection.js';
import {
  ConnectionLimitError,
  DuplicateConnectionError,
  GossipLimitError,
  PeerNameCollisionError,
  SelfConnectionError,
  UnknownRemoteError,
} from './errors.js';
import type { Gossiper } from './gossip.js';
import { GossipChannel, type GossipHost } from './gossip-channel.js';
import type { GossipSender } from './gossip-sender.js';
import { formatPeerName, type Peer } from './peer.js';
import { Peers } from './peers.js';
import { Routes } from './routes.js';
import { SurrogateGossiper } from './surrogate.js';
import { TOPOLOGY_CHANNEL, TopologyGossiper, type TopologyApplier } from './topology-gossip.js';
import {
  ProtocolTag,
  type GossipEnvelope,
  type Handshake,
  type MessageLink,
  type PeerIdentity,
  type PeerName,
  type PeerSummary,
  type ReceivedPeerRecord,
} from './types.js';

export const DEFAULT_GOSSIP_INTERVAL_MS = 30_000;
/**
 * A topology change is broadcast this long after it (Weave's
 * deferTopologyUpdateDuration), coalescing every change in between.
 */
export const TOPOLOGY_BROADCAST_DELAY_MS = 1_000;
/**
 * A connection to a peer we did not know (or that restarted) is broadcast
 * this soon instead, if our last broadcast was TOPOLOGY_BROADCAST_DELAY_MS
 * ago: the others list a joining peer, and dial it, a tenth of a second after
 * it joins rather than a second. The wait still coalesces one event's changes,
 * and these broadcasts too are at least TOPOLOGY_BROADCAST_DELAY_MS apart.
 */
export const TOPOLOGY_BROADCAST_NEW_PEER_DELAY_MS = 100;
export const GC_DELAY_MS = 1_000;
export const DEFAULT_CONN_LIMIT = 200;
/**
 * A connection established this long without a data-plane route to its peer
 * is logged: traffic to that peer is dropped until the peer's topology update
 * reaches us (spec §4.6 needs its record to list the connection back as
 * established), which a lost or skipped update can delay to the next periodic
 * gossip, 30 s later.
 */
export const ROUTE_STALL_WARN_MS = 5_000;
/**
 * Most gossip channels of unknown name relayed for others (spec §4.9). Real
 * meshes use a handful (topology, IPallocation, nameserver, plugins); a peer
 * inventing names one per message would otherwise grow the channel table forever.
 */
export const MAX_SURROGATE_CHANNELS = 64;

export interface MeshLogger {
  info(msg: string): void;
  warn(msg: string): void;
  /** Timelines for benchmarks (the peer count growing); may be left out. */
  debug?(msg: string): void;
}

const silentLogger: MeshLogger = { info() {}, warn() {} };

/** The data-plane side of each connection: overlay control tags 1-3 and 7 (spec §2.2, §2.4). */
export interface OverlayHandler {
  connectionAdded?(conn: MeshConnection): void;
  /** A body with tag 1, 2, 3 or 7, tag byte first. */
  message(conn: MeshConnection, body: Uint8Array): void;
  connectionRemoved?(conn: MeshConnection): void;
}

export interface RouterOptions {
  identity: PeerIdentity;
  codec?: MeshCodec;
  clock?: Clock;
  /** Uniform in [0, 1); drives neighbour choice and short ids. */
  random?: () => number;
  logger?: MeshLogger;
  /** spec §4.3, default 30 s. */
  gossipIntervalMs?: number;
  /** spec §1.1, default 200; 0 = unlimited. */
  connLimit?: number;
  /**
   * Without a data plane there is nothing to confirm connections: mark them
   * established as soon as they are added. Otherwise the data plane calls
   * setConnectionEstablished (spec §2.5).
   */
  establishImmediately?: boolean;
  overlay?: OverlayHandler;
  /** Routes were recalculated: the data plane refreshes its forwarding state. */
  onRoutesChanged?(): void;
  /** A peer was garbage-collected (spec §4.7). */
  onPeerRemoved?(peer: Peer): void;
  /** The short id -> peer mapping changed (spec §4.8). */
  onShortIdsChanged?(): void;
}

export interface AddConnectionOptions {
  /** Inbound, or outbound to a directly configured target: unknown peers are accepted (spec §1.7 step 2). */
  direct: boolean;
}

type Listener<T> = (value: T) => void;

export class Router implements GossipHost, ConnectionHost, TopologyApplier {
  readonly ourName: PeerName;
  readonly peers: Peers;
  readonly routes: Routes;
  readonly clock: Clock;
  readonly codec: MeshCodec;
  readonly gossipIntervalMs: number;
  readonly connLimit: number;
  readonly establishImmediately: boolean;
  /** Connections closed since start, for `weave report` TerminationCount. */
  terminationCount = 0;
  private surrogateCount = 0;
  private readonly logger: MeshLogger;
  private readonly connections = new Map<PeerName, MeshConnection>();
  private readonly channels = new Map<string, { channel: GossipChannel; surrogate: boolean }>();
  private readonly topology: TopologyGossiper;
  private readonly topologyChannel: GossipChannel;
  private pendingBroadcast = new Set<PeerName>();
  private broadcastTimer: Cancel | undefined;
  /** When the pending broadcast is due, and when we last sent one. */
  private broadcastDue = 0;
  private lastBroadcastAt = Number.NEGATIVE_INFINITY;
  private gcTimer: Cancel | undefined;
  private gossipTimer: Cancel | undefined;
  private readonly routeChecks = new Set<Cancel>();
  /** Each payload's last envelope, while the payload is alive (see encodeEnvelope). */
  private readonly envelopes = new WeakMap<Uint8Array, { envelope: GossipEnvelope; body: Uint8Array }>();
  private stopped = false;
  /** Most peers known so far, for the debug timeline of a forming mesh. */
  private peersKnownLogged = 1;
  private readonly addedListeners = new Set<Listener<MeshConnection>>();
  private readonly removedListeners = new Set<Listener<MeshConnection>>();
  private readonly topologyListeners = new Set<Listener<void>>();
  private readonly peerRemovedListeners = new Set<Listener<Peer>>();

  constructor(private readonly opts: RouterOptions) {
    this.ourName = opts.identity.name;
    this.clock = opts.clock ?? systemClock;
    this.codec = opts.codec ?? wireCodec;
    this.logger = opts.logger ?? silentLogger;
    this.gossipIntervalMs = opts.gossipIntervalMs ?? DEFAULT_GOSSIP_INTERVAL_MS;
    this.connLimit = opts.connLimit ?? DEFAULT_CONN_LIMIT;
    this.establishImmediately = opts.establishImmediately ?? false;
    const random = opts.random ?? Math.random;
    this.peers = new Peers(opts.identity, random, {
      onPeerRemoved: (p) => {
        this.logger.info(`removed unreachable peer ${p.toString()}`);
        opts.onPeerRemoved?.(p);
        for (const fn of this.peerRemovedListeners) fn(p);
      },
      onShortIdsChanged: () => opts.onShortIdsChanged?.(),
      onLocalChanged: () => this.scheduleTopologyBroadcast([]),
    });
    this.routes = new Routes(() => this.peers.graph(), this.ourName, this.clock, random, () => opts.onRoutesChanged?.());
    this.topology = new TopologyGossiper(this.peers, this.codec, this);
    this.topologyChannel = new GossipChannel(TOPOLOGY_CHANNEL, this.topology, this);
    this.channels.set(TOPOLOGY_CHANNEL, { channel: this.topologyChannel, surrogate: false });
  }

  /** Start periodic gossip (spec §4.3). */
  start(): void {
    if (this.gossipTimer || this.stopped) return;
    const tick = (): void => {
      this.gossipTimer = this.clock.schedule(this.gossipIntervalMs, () => {
        this.sendAllGossip();
        tick();
      });
    };
    tick();
  }

  /** Close every connection and cancel every timer. */
  stop(): void {
    this.stopped = true;
    for (const c of [...this.connections.values()]) c.close(new Error('router stopping'));
    this.gossipTimer?.();
    this.broadcastTimer?.();
    this.gcTimer?.();
    for (const cancel of this.routeChecks) cancel();
    this.routeChecks.clear();
    this.routes.stop();
  }

  // --- gossip channels (spec §4.1-4.4, 4.9) ---

  newGossipChannel(name: string, gossiper: Gossiper): GossipChannel {
    const existing = this.channels.get(name);
    if (existing && !existing.surrogate) throw new Error(`gossip channel "${name}" is already registered`);
    if (existing) this.surrogateCount--;
    const channel = new GossipChannel(name, gossiper, this);
    this.channels.set(name, { channel, surrogate: false });
    return channel;
  }

  /** Send every channel's complete state to random neighbours (spec §4.3 periodic). */
  sendAllGossip(): void {
    for (const { channel, surrogate } of this.channels.values()) {
      if (surrogate) continue;
      const data = channel.gossiper.gossip();
      if (data) channel.gossipNeighbourSubset(data);
    }
  }

  // --- connections (spec §1.7, §2.5) ---

  /**
   * Validate and add a connection whose handshake completed (spec §1.7 steps
   * 2-7). On refusal the link is closed and the error thrown.
   */
  addConnection(handshake: Handshake, link: MessageLink, opts: AddConnectionOptions): MeshConnection {
    try {
      return this.validateAndAdd(handshake, link, opts);
    } catch (err) {
      link.close(err as Error);
      throw err;
    }
  }

  connectionTo(name: PeerName): MeshConnection | undefined {
    return this.connections.get(name);
  }

  allConnections(): MeshConnection[] {
    return [...this.connections.values()];
  }

  /** The data plane confirmed (or lost) a forwarder for this peer (spec §2.5). */
  setConnectionEstablished(name: PeerName, established: boolean): boolean {
    const conn = this.connections.get(name);
    if (!conn) return false;
    conn.established = established;
    if (!this.peers.setLocalConnectionEstablished(name, established)) return false;
    this.routes.recalculateSoon();
    this.scheduleTopologyBroadcast([]);
    if (established) {
      const check = this.clock.schedule(ROUTE_STALL_WARN_MS, () => {
        this.routeChecks.delete(check);
        this.warnIfNoRoute(conn);
      });
      this.routeChecks.add(check);
    }
    return true;
  }

  /** Logs an established connection whose peer the data plane still cannot reach, and why. */
  private warnIfNoRoute(conn: MeshConnection): void {
    if (this.stopped || !conn.established || this.connections.get(conn.remoteName) !== conn) return;
    if (this.routes.unicastNextHop(conn.remoteName) !== undefined) return;
    const peer = this.peers.get(conn.remoteName);
    const back = peer?.connections.get(this.ourName);
    const why = !peer ? 'we hold no record of it'
      : !back ? `its record here (version ${peer.version}) lists no connection to us`
      : `its record here (version ${peer.version}) lists its connection to us as not established`;
    this.logger.warn(`connection to ${conn.describe()} established ${ROUTE_STALL_WARN_MS / 1000} s ago but no route to it yet: ` +
      `${why}; traffic to it is dropped until its topology update arrives`);
  }

  onConnectionAdded(fn: Listener<MeshConnection>): () => void {
    this.addedListeners.add(fn);
    return () => this.addedListeners.delete(fn);
  }

  onConnectionRemoved(fn: Listener<MeshConnection>): () => void {
    this.removedListeners.add(fn);
    return () => this.removedListeners.delete(fn);
  }

  /** A peer was garbage-collected (spec §4.7): DNS drops its names, the data plane its MACs. */
  onPeerRemoved(fn: Listener<Peer>): () => void {
    this.peerRemovedListeners.add(fn);
    return () => this.peerRemovedListeners.delete(fn);
  }

  /** Topology improved (peer discovery re-evaluates targets, spec §4.10). */
  onTopologyChanged(fn: Listener<void>): () => void {
    this.topologyListeners.add(fn);
    return () => this.topologyListeners.delete(fn);
  }

  private validateAndAdd(handshake: Handshake, link: MessageLink, opts: AddConnectionOptions): MeshConnection {
    if (this.stopped) throw new Error('router is stopped');
    const remote = handshake.remote;
    const us = this.peers.ourselves;
    // Step 2: discovered addresses must lead to peers we know from topology.
    if (handshake.outbound && !opts.direct && !this.peers.get(remote.name)) throw new UnknownRemoteError(remote.name);
    // Steps 3-4: our own name at the other end.
    if (remote.name === us.name) {
      if (remote.uid !== us.uid) throw new PeerNameCollisionError(remote.name);
      throw new SelfConnectionError();
    }
    // Step 6: one connection per peer; both ends keep the one with the lower connUID.
    const existing = this.connections.get(remote.name);
    if (existing) {
      if (handshake.connUID > existing.connUID) throw new DuplicateConnectionError(remote.name);
      existing.close(new DuplicateConnectionError(remote.name));
      if (handshake.connUID === existing.connUID) throw new DuplicateConnectionError(remote.name);
    }
    // Step 7.
    if (this.connLimit > 0 && this.connections.size >= this.connLimit) throw new ConnectionLimitError(this.connLimit);

    const { isNew, restarted } = this.peers.fetchForConnection(remote);
    const conn = new MeshConnection(handshake, link, this);
    conn.established = this.establishImmediately;
    this.connections.set(remote.name, conn);
    this.peers.addLocalConnection({
      name: remote.name,
      remoteTcpAddr: handshake.remoteAddr,
      outbound: handshake.outbound,
      established: conn.established,
    });
    this.logger.info(`connection added: ${conn.describe()}${restarted ? ' (restarted peer)' : isNew ? ' (new peer)' : ''}`);
    if (isNew) this.logPeersKnown();
    this.routes.recalculateSoon();
    this.scheduleTopologyBroadcast([remote.name], { newPeer: isNew || restarted });
    this.opts.overlay?.connectionAdded?.(conn);
    conn.start();
    if (isNew || restarted) this.sendAllGossipDown(remote.name);
    for (const fn of this.addedListeners) fn(conn);
    return conn;
  }

  /** Full state of every channel down one connection (spec §4.3 gossip-down). */
  private sendAllGossipDown(peer: PeerName): void {
    for (const { channel, surrogate } of this.channels.values()) {
      if (surrogate) continue;
      const data = channel.gossiper.gossip();
      if (data) channel.gossipTo(peer, data);
    }
  }

  // --- ConnectionHost ---

  receive(conn: MeshConnection, body: Uint8Array): void {
    if (body.length === 0) return; // spec §2.1: blank message
    const tag = body[0]!;
    switch (tag) {
      case ProtocolTag.Heartbeat:
        return; // the read deadline was already re-armed
      case ProtocolTag.ConnectionEstablished:
      case ProtocolTag.FragmentationReceived:
      case ProtocolTag.PMTUVerified:
      case ProtocolTag.OverlayControlMsg:
        this.opts.overlay?.message(conn, body);
        return;
      case ProtocolTag.Gossip:
      case ProtocolTag.GossipUnicast:
      case ProtocolTag.GossipBroadcast:
        this.receiveGossip(this.codec.decodeEnvelope(body), body);
        return;
      default:
        return; // spec §2.1: unknown tags are ignored
    }
  }

  closed(conn: MeshConnection, reason: Error | undefined): void {
    this.terminationCount++;
    this.logger.info(`connection to ${conn.describe()} closed${reason ? `: ${reason.message}` : ''}`);
    if (this.connections.get(conn.remoteName) === conn) {
      this.connections.delete(conn.remoteName);
      this.peers.removeLocalConnection(conn.remoteName);
      if (!this.stopped) {
        this.peers.garbageCollect();
        this.routes.recalculateSoon();
        this.scheduleTopologyBroadcast([conn.remoteName]);
      }
    }
    this.opts.overlay?.connectionRemoved?.(conn);
    for (const fn of this.removedListeners) fn(conn);
  }

  warn(msg: string): void {
    this.logger.warn(msg);
  }

  // --- GossipHost ---

  senderTo(peer: PeerName, channel: string): GossipSender | undefined {
    return this.connections.get(peer)?.sender(channel);
  }

  sendTo(peer: PeerName, body: Uint8Array): boolean {
    const conn = this.connections.get(peer);
    if (!conn) return false;
    conn.send(body);
    return true;
  }

  /**
   * The same payload queued on several connections (a broadcast to every next
   * hop, a delta to random neighbours) is enveloped once: the envelope copies
   * the whole payload, and the body is sent as is on each link.
   */
  encodeEnvelope(e: GossipEnvelope): Uint8Array {
    const hit = this.envelopes.get(e.payload);
    if (hit && sameEnvelopeHeader(hit.envelope, e)) return hit.body;
    const body = this.codec.encodeEnvelope(e);
    this.envelopes.set(e.payload, { envelope: e, body });
    return body;
  }

  // --- TopologyApplier (spec §4.5 steps 3-4) ---

  wantsTopologyRecord(summary: PeerSummary): boolean {
    return this.peers.wantsRecord(summary);
  }

  applyTopology(records: readonly ReceivedPeerRecord[]): { improved: Set<PeerName>; received: Set<PeerName> } {
    const result = this.peers.applyUpdate(records);
    this.logPeersKnown();
    if (result.ourselvesBumped) this.scheduleTopologyBroadcast([]);
    if (result.improved.size > 0) {
      this.routes.recalculateSoon();
      for (const fn of this.topologyListeners) fn();
    }
    this.scheduleGarbageCollection();
    return result;
  }

  private receiveGossip(env: GossipEnvelope, body: Uint8Array): void {
    const channel = this.channelFor(env.channel);
    switch (env.tag) {
      case ProtocolTag.GossipUnicast:
        channel.receiveUnicast(env, body);
        return;
      case ProtocolTag.GossipBroadcast:
        channel.receiveBroadcast(env);
        return;
      case ProtocolTag.Gossip:
        channel.receiveGossip(env);
        return;
    }
  }

  /** The channel for a name, creating a surrogate for unknown ones (spec §4.9). */
  private channelFor(name: string): GossipChannel {
    const known = this.channels.get(name);
    if (known) return known.channel;
    if (this.surrogateCount >= MAX_SURROGATE_CHANNELS) {
      throw new GossipLimitError(`gossip on unknown channel "${name.slice(0, 64)}": already relaying ${MAX_SURROGATE_CHANNELS} unknown channels`);
    }
    this.surrogateCount++;
    const channel = new GossipChannel(name, new SurrogateGossiper(this.clock, this.gossipIntervalMs), this);
    this.channels.set(name, { channel, surrogate: true });
    return channel;
  }

  /**
   * Broadcast {ourselves + changed} 1 s from now, or sooner for a new peer,
   * coalescing every change in between. Weave 2.8's mesh sends it with tag 4
   * to random neighbours, and each peer relays its improved delta the same way
   * (spec §4.3, §4.5), which multiplies each change into tens of messages per
   * peer while a mesh forms. We send it with tag 6 along the BroadcastAll tree
   * from us, and every peer relays the received set along the same tree (Weave
   * routers take topology on tag 6 too, and relay it so), so an update reaches
   * each peer once. The tree is computed from the live graph
   * (Routes.broadcastAllNextHops), so it includes the connections just made.
   */
  private scheduleTopologyBroadcast(changed: Iterable<PeerName>, { newPeer = false } = {}): void {
    if (this.stopped) return;
    for (const n of changed) this.pendingBroadcast.add(n);
    const now = this.clock.now();
    const due = newPeer
      ? Math.max(now + TOPOLOGY_BROADCAST_NEW_PEER_DELAY_MS, this.lastBroadcastAt + TOPOLOGY_BROADCAST_DELAY_MS)
      : now + TOPOLOGY_BROADCAST_DELAY_MS;
    if (this.broadcastTimer) {
      if (due >= this.broadcastDue) return;
      this.broadcastTimer();
    }
    this.broadcastDue = due;
    this.broadcastTimer = this.clock.schedule(due - now, () => {
      this.broadcastTimer = undefined;
      this.lastBroadcastAt = this.clock.now();
      const names = [this.ourName, ...this.pendingBroadcast];
      this.pendingBroadcast = new Set();
      this.topologyChannel.gossipBroadcast(this.topology.data(names));
    });
  }

  private scheduleGarbageCollection(): void {
    if (this.gcTimer || this.stopped) return;
    this.gcTimer = this.clock.schedule(GC_DELAY_MS, () => {
      this.gcTimer = undefined;
      if (this.peers.garbageCollect().length > 0) this.routes.recalculateSoon();
    });
  }

  private logPeersKnown(): void {
    if (this.peers.size <= this.peersKnownLogged || !this.logger.debug) return;
    this.peersKnownLogged = this.peers.size;
    this.logger.debug(`peers known: ${this.peers.size}`);
  }

  describe(): string {
    return `${formatPeerName(this.ourName)}(${this.peers.ourselves.nickName})`;
  }
}

/** Same tag, channel, source and destination: with the same payload, the same body. */
function sameEnvelopeHeader(a: GossipEnvelope, b: GossipEnvelope): boolean {
  if (a.tag !== b.tag || a.channel !== b.channel || a.src !== b.src) return false;
  return a.tag !== ProtocolTag.GossipUnicast || b.tag !== ProtocolTag.GossipUnicast || a.dst === b.dst;
}
