// The connection maker (spec §2.5 last paragraph, §4.10): keeps one target per
// address to dial — direct targets from launch/`weave connect`, discovered
// ones from topology — and retries failures with randomised backoff.
import { joinHostPort, splitHostPort } from '../host-port.js';
import { systemClock, type Cancel, type Clock } from './clock.js';
import type { MeshConnection } from './connection.js';
import { ConnectionRefusedError, PortNotListeningError } from './errors.js';
import type { Router } from './router.js';
import type { Handshake, MessageLink } from './types.js';

export const INITIAL_RETRY_INTERVAL_MS = 2_000;
export const MAX_RETRY_INTERVAL_MS = 6 * 60_000;
/**
 * A dial refused because nothing listens on the port yet (PortNotListeningError)
 * is retried sooner, up to QUICK_RETRIES times in a row, at intervals from
 * QUICK_RETRY_INTERVAL_MS doubling (randomised as nextRetry does), before the
 * spec's backoff applies. Routers launched together otherwise wait 1-3 s for
 * a peer whose port opens a few hundred milliseconds after their first dial;
 * in a 10-router benchmark that one wait set the time for the whole mesh. A
 * refused dial costs a SYN and a reset. (Weave retries these on its normal
 * schedule; the schedule is local, nothing on the wire changes.)
 */
export const QUICK_RETRIES = 3;
export const QUICK_RETRY_INTERVAL_MS = 250;
/** A connection that outlived its scheduled attempt by this much is retried at once. */
export const RESET_AFTER_MS = 60_000;
/**
 * Topology changes are batched this long before discovery re-evaluates the
 * targets: evaluating walks every connection of every peer, and while a mesh
 * of 50 forms a router applies hundreds of improving updates a second.
 */
export const DISCOVERY_BATCH_MS = 100;
/**
 * Two peers that learn of each other from the same topology update would both
 * dial; both ends then keep the connection with the lower connection UID and
 * close the other (spec §1.7 step 6), after each had set up a forwarder,
 * bumped its topology version and broadcast it for the one that loses. So a
 * discovered peer whose name is lower than ours is given this long to dial us
 * before we dial it; a peer that does not (discovery off, or it cannot reach
 * us) is dialled when it is up. Direct targets are dialled at once.
 * Long enough for a lower peer that learns of us late, or dials slowly: with
 * 50 routers forming a mesh on two cores, 1 s left ~300 duplicate connections
 * of 1,225 (both ends dialled) and 2.5 s 55-145.
 */
export const DISCOVERED_DIAL_DEFER_MS = 2_500;
/**
 * A discovered peer's address whose host is handshaking with us right now is
 * looked at again this much later instead of dialled: that is most likely the
 * peer dialling us (the one that was to dial first, or one whose own deferral
 * ended), and dialling back would make the duplicate both ends then close.
 * The handshake's end re-evaluates anyway: success adds the connection, and a
 * failure leaves the address to this re-check.
 */
export const INBOUND_HANDSHAKE_RECHECK_MS = 250;
/**
 * Gossiped addresses whose dial address is remembered (DiscoveredAddresses);
 * past this many the memo starts again: addresses come from other peers, and
 * a mesh of 100 peers has 9,900 connections.
 */
export const MAX_REMEMBERED_ADDRESSES = 16_384;

export type TargetState = 'waiting' | 'attempting' | 'connected' | 'suspended' | 'failed';

export interface TargetInfo {
  /** `host:port` as dialled. */
  address: string;
  direct: boolean;
  state: TargetState;
  lastError?: string;
  /** When the next attempt is due (waiting). */
  tryAfter?: number;
}

export type Dialler = (address: string) => Promise<{ handshake: Handshake; link: MessageLink }>;

export interface ConnectionMakerOptions {
  router: Router;
  dial: Dialler;
  /** The mesh port, for targets given without one. */
  port: number;
  /** spec §4.10; `--no-discovery` turns it off. */
  discovery: boolean;
  clock?: Clock;
  random?: () => number;
  initialTargets?: string[];
  /** Whether a connection from this host (IP, no port) is in its handshake with us; see INBOUND_HANDSHAKE_RECHECK_MS. */
  inboundHandshakeFrom?: (host: string) => boolean;
}

interface Target {
  address: string;
  direct: boolean;
  state: TargetState;
  lastError?: string;
  /** Scheduled time of the next (or the latest) attempt; undefined = never again. */
  tryAfter: number | undefined;
  tryInterval: number;
  /** Quick retries left for refused dials; restored once a connection is made. */
  quickRetriesLeft: number;
  connection?: MeshConnection;
}

/**
 * Delay before the next attempt: random in [i/2, 3i/2), then i grows ×1.5 up
 * to 6 min (spec §2.5).
 */
export function nextRetry(interval: number, random: () => number): { delay: number; interval: number } {
  const delay = interval / 2 + random() * interval;
  return { delay, interval: Math.min(interval * 1.5, MAX_RETRY_INTERVAL_MS) };
}

/**
 * The address to dial for the remote end of a gossiped connection: its TCP
 * address when that end accepted the connection (it listens there), else its
 * host on our mesh port; undefined for an address that does not parse.
 * Remembered per address: discovery re-evaluates every topology batch and
 * meets each of the mesh's N·(N-1) connections again each time (in a mesh of
 * 50 forming, parsing them was a tenth of evaluate's time).
 */
class DiscoveredAddresses {
  private readonly accepting = new Map<string, string | undefined>();
  private readonly dialling = new Map<string, string | undefined>();

  constructor(private readonly port: number) {}

  get(remoteTcpAddr: string, outbound: boolean): string | undefined {
    const memo = outbound ? this.accepting : this.dialling;
    if (memo.has(remoteTcpAddr)) return memo.get(remoteTcpAddr);
    const remote = splitHostPort(remoteTcpAddr);
    const addr = remote === undefined ? undefined : outbound ? remoteTcpAddr : joinHostPort(remote.host, this.port);
    if (memo.size >= MAX_REMEMBERED_ADDRESSES) memo.clear();
    memo.set(remoteTcpAddr, addr);
    return addr;
  }
}

export class ConnectionMaker {
  private readonly router: Router;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Direct peers exactly as supplied, in order (spec §2.2). */
  private direct: string[] = [];
  private readonly targetsByAddr = new Map<string, Target>();
  private wake: Cancel | undefined;
  private evaluateQueued = false;
  private topologyBatch: Cancel | undefined;
  private stopped = false;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly discovered: DiscoveredAddresses;

  constructor(private readonly opts: ConnectionMakerOptions) {
    this.discovered = new DiscoveredAddresses(opts.port);
    this.router = opts.router;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.unsubscribe.push(
      this.router.onConnectionAdded(() => this.evaluateSoon()),
      this.router.onConnectionRemoved((c) => this.connectionRemoved(c)),
      this.router.onTopologyChanged(() => this.evaluateAfterTopologyBatch()),
    );
    if (opts.initialTargets) this.connect(opts.initialTargets, false);
  }

  /** Add direct peers; `replace` forgets all previous ones first (spec §1.7 of the user surface). */
  connect(peers: string[], replace: boolean): void {
    if (replace) this.forget(this.direct);
    for (const p of peers) if (!this.direct.includes(p)) this.direct.push(p);
    this.evaluate();
  }

  forget(peers: string[]): void {
    const gone = new Set(peers);
    const addrs = new Set(peers.map((p) => this.normalise(p)));
    this.direct = this.direct.filter((p) => !gone.has(p));
    for (const [addr, t] of this.targetsByAddr) {
      if (!addrs.has(addr) || !t.direct) continue;
      if (t.state === 'connected' || t.state === 'attempting') t.direct = false;
      else this.targetsByAddr.delete(addr);
    }
    this.evaluate();
  }

  /** Direct peers as supplied (`weave status targets`). */
  targets(): string[] {
    return [...this.direct];
  }

  targetInfo(): TargetInfo[] {
    return [...this.targetsByAddr.values()].map((t) => ({
      address: t.address,
      direct: t.direct,
      state: t.state,
      ...(t.lastError !== undefined ? { lastError: t.lastError } : {}),
      ...(t.state === 'waiting' && t.tryAfter !== undefined ? { tryAfter: t.tryAfter } : {}),
    }));
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
    this.topologyBatch?.();
    for (const u of this.unsubscribe) u();
  }

  private normalise(peer: string): string {
    // Direct peers were checked when added (parsePeerAddress).
    const hp = splitHostPort(peer) ?? { host: peer };
    return joinHostPort(hp.host, hp.port ?? this.opts.port);
  }

  private evaluateSoon(): void {
    if (this.evaluateQueued) return;
    this.evaluateQueued = true;
    queueMicrotask(() => {
      this.evaluateQueued = false;
      this.evaluate();
    });
  }

  private evaluateAfterTopologyBatch(): void {
    if (this.topologyBatch || this.stopped) return;
    this.topologyBatch = this.clock.schedule(DISCOVERY_BATCH_MS, () => {
      this.topologyBatch = undefined;
      this.evaluate();
    });
  }

  /** Recompute the valid target set and start due attempts (connection_maker's checkState). */
  private evaluate(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const conns = this.router.allConnections();
    const connectedPeers = new Set(conns.map((c) => c.remoteName));
    const connectedAddrs = new Set(conns.map((c) => c.remoteAddr));
    const inboundIPs = new Set(conns.filter((c) => !c.outbound).map((c) => splitHostPort(c.remoteAddr)?.host));
    const valid = new Map<string, boolean>();
    /** Discovered addresses of peers whose name is lower than ours: they dial first. */
    const theyDial = new Set<string>();
    for (const p of this.direct) {
      const { host, port } = splitHostPort(p) ?? { host: p };
      // A target without a port is probably the peer that already connected to us.
      if (port === undefined && inboundIPs.has(host)) continue;
      const addr = joinHostPort(host, port ?? this.opts.port);
      if (!connectedAddrs.has(addr)) valid.set(addr, true);
    }
    if (this.opts.discovery) {
      const us = this.router.ourName;
      for (const peer of this.router.peers.all()) {
        if (peer.name === us) continue;
        for (const c of peer.connections.values()) {
          if (c.name === us || connectedPeers.has(c.name)) continue;
          // Gossiped addresses come from other peers: a malformed one is passed over.
          const addr = this.discovered.get(c.remoteTcpAddr, c.outbound);
          if (addr === undefined || connectedAddrs.has(addr) || valid.has(addr)) continue;
          valid.set(addr, false);
          if (c.name < us) theyDial.add(addr);
        }
      }
    }
    for (const [addr, direct] of valid) {
      const t = this.targetsByAddr.get(addr);
      if (!t) {
        const tryAfter = !direct && theyDial.has(addr) ? now + DISCOVERED_DIAL_DEFER_MS : now;
        this.targetsByAddr.set(addr, { address: addr, direct, state: 'waiting', tryAfter, tryInterval: INITIAL_RETRY_INTERVAL_MS, quickRetriesLeft: QUICK_RETRIES });
        continue;
      }
      if (direct && !t.direct) {
        t.direct = true;
        // A deferred discovered target that turns out to be direct is dialled at once.
        if (t.state === 'waiting' && t.tryInterval === INITIAL_RETRY_INTERVAL_MS && t.lastError === undefined) t.tryAfter = now;
      }
      if (t.state === 'suspended') {
        t.state = 'waiting';
        t.tryAfter = now;
      }
    }
    let nextWake: number | undefined;
    for (const [addr, t] of this.targetsByAddr) {
      if (t.state === 'connected' || t.state === 'attempting') continue;
      if (!valid.has(addr)) {
        if (this.direct.some((p) => this.normalise(p) === addr)) t.state = 'suspended';
        else this.targetsByAddr.delete(addr);
        continue;
      }
      if (t.state !== 'waiting' || t.tryAfter === undefined) continue;
      if (t.tryAfter <= now && !t.direct && this.handshakingWithUs(addr)) t.tryAfter = now + INBOUND_HANDSHAKE_RECHECK_MS;
      if (t.tryAfter <= now) this.attempt(t);
      else if (nextWake === undefined || t.tryAfter < nextWake) nextWake = t.tryAfter;
    }
    this.wake?.();
    this.wake = nextWake === undefined ? undefined : this.clock.schedule(nextWake - now, () => this.evaluate());
  }

  private handshakingWithUs(addr: string): boolean {
    const host = splitHostPort(addr)?.host;
    return host !== undefined && this.opts.inboundHandshakeFrom?.(host) === true;
  }

  private attempt(t: Target): void {
    t.state = 'attempting';
    this.opts.dial(t.address).then(
      ({ handshake, link }) => {
        if (this.stopped) {
          link.close(new Error('connection maker stopped'));
          return;
        }
        try {
          t.connection = this.router.addConnection(handshake, link, { direct: t.direct });
          t.state = 'connected';
          t.lastError = undefined;
          t.quickRetriesLeft = QUICK_RETRIES;
        } catch (err) {
          this.failed(t, err as Error);
        }
      },
      (err: unknown) => this.failed(t, err instanceof Error ? err : new Error(String(err))),
    );
  }

  private failed(t: Target, err: Error): void {
    t.lastError = err.message;
    if (err instanceof ConnectionRefusedError && !err.retry) {
      // Name collision and connecting to ourselves never heal (spec §1.7 steps 3-4).
      t.state = 'failed';
      t.tryAfter = undefined;
    } else if (err instanceof PortNotListeningError && t.quickRetriesLeft > 0) {
      const interval = QUICK_RETRY_INTERVAL_MS * 2 ** (QUICK_RETRIES - t.quickRetriesLeft);
      t.quickRetriesLeft--;
      t.state = 'waiting';
      t.tryAfter = this.clock.now() + nextRetry(interval, this.random).delay;
    } else {
      this.scheduleRetry(t);
    }
    this.evaluateSoon();
  }

  private scheduleRetry(t: Target): void {
    const { delay, interval } = nextRetry(t.tryInterval, this.random);
    t.state = 'waiting';
    t.tryAfter = this.clock.now() + delay;
    t.tryInterval = interval;
  }

  private connectionRemoved(conn: MeshConnection): void {
    for (const t of this.targetsByAddr.values()) {
      if (t.connection !== conn) continue;
      t.connection = undefined;
      const now = this.clock.now();
      if (t.tryAfter !== undefined && now > t.tryAfter + RESET_AFTER_MS) {
        // It lived long enough: try again at once, with the backoff reset.
        t.state = 'waiting';
        t.tryAfter = now;
        t.tryInterval = INITIAL_RETRY_INTERVAL_MS;
      } else {
        this.scheduleRetry(t);
      }
    }
    this.evaluateSoon();
  }
}
