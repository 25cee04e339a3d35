// Forwarding state for the data plane (datapath.ts ForwardingState): computed
// from the mesh's routes and peers (wire spec §4.6, §4.8) and the overlay
// switch's choice per neighbour (§5.9), and handed to every datapath as one
// value. Recomputation is debounced; a value equal to the last one applied is
// not applied again.
import type { PeerName, PeerShortID } from '../mesh/types.js';
import type { Datapath, ForwardingState, OverlayName } from './datapath.js';
import { compareOrdered } from '../order.js';

/** What the computation reads from the mesh Router. */
export interface ForwardingMesh {
  readonly ourName: PeerName;
  readonly peers: {
    readonly ourselves: { shortId: PeerShortID };
    all(): ReadonlyArray<{ name: PeerName; shortId: PeerShortID; hasShortId: boolean }>;
  };
  readonly routes: {
    /** Data-plane routes: established and symmetric connections only (spec §4.6 `Unicast`). */
    unicastTable(establishedOnly: boolean): ReadonlyMap<PeerName, PeerName>;
    /** spec §4.6 `Broadcast(S)`. */
    broadcastNextHops(src: PeerName): PeerName[];
  };
}

export interface NeighbourChoice {
  name: PeerName;
  overlay: OverlayName;
  remoteIp: string;
}

/** spec §4.6: the data plane uses established + symmetric routes only. */
export function computeForwardingState(mesh: ForwardingMesh, neighbours: readonly NeighbourChoice[]): ForwardingState {
  const byName = new Map(mesh.peers.all().map((p) => [p.name, p]));
  const unicast = mesh.routes.unicastTable(true);
  const peers: Array<{ name: PeerName; shortId?: PeerShortID; nextHop: PeerName }> = [];
  for (const [dest, via] of [...unicast].sort(byFirst)) {
    if (dest === mesh.ourName) continue;
    const p = byName.get(dest);
    peers.push({ name: dest, ...(p?.hasShortId ? { shortId: p.shortId } : {}), nextHop: via });
  }
  // Broadcast trees for every source we can reach, ourselves included.
  const sources = [mesh.ourName, ...peers.map((p) => p.name)];
  const broadcast = sources.map((source) => ({ source, nextHops: mesh.routes.broadcastNextHops(source) }));
  return {
    ourName: mesh.ourName,
    ourShortId: mesh.peers.ourselves.shortId,
    peers,
    neighbours: [...neighbours].sort((a, b) => cmp(a.name, b.name)),
    broadcast,
  };
}

const cmp: (a: bigint, b: bigint) => number = compareOrdered;

function byFirst(a: [bigint, bigint], b: [bigint, bigint]): number {
  return cmp(a[0], b[0]);
}

/** A stable text form of a state, to tell whether anything changed. */
export function forwardingStateKey(s: ForwardingState): string {
  return JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v));
}

export interface ForwardingUpdaterOptions {
  mesh: ForwardingMesh;
  datapaths: readonly Datapath[];
  neighbours(): readonly NeighbourChoice[];
  /** Debounce delay (default 50 ms): a burst of route/topology/switch changes yields one apply. */
  delayMs?: number;
  log?(message: string): void;
  /**
   * Peers the data plane can now send to that the last applied state did not
   * have, called once every datapath has that state in place (e.g. a
   * connection came up or came back).
   */
  onPeersReachable?(peers: readonly PeerName[]): void;
}

/**
 * After a datapath failed to apply a state, the same state is tried again
 * this long after, even if nothing changes meanwhile: a transient failure
 * (netlink buffer, a map briefly full) must not leave forwarding stale until
 * the next topology change, which may never come.
 */
const RETRY_AFTER_FAILURE_MS = 1000;

/**
 * The next scheduled apply waits at least this many times the last one's
 * computing cost. Computing the state walks a broadcast tree per peer
 * (O(N·E): ~0.5 ms for a full mesh of 50 here, growing with the cube of N),
 * and while a large mesh forms its routes change with nearly every message.
 * Spaced by their cost, applies take at most a tenth of a core however large
 * the mesh; a mesh whose state costs under a twentieth of the debounce delay
 * (every mesh measured here) still applies within that delay.
 */
export const APPLY_COST_SPACING = 9;

/** Recomputes and applies the forwarding state whenever `schedule()` is called (debounced, idempotent). */
export class ForwardingUpdater {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastKey: string | undefined;
  private stopped = false;
  /** How many times a changed state was handed to the datapaths. */
  applied = 0;
  /** Peers of the last state every datapath applied without error. */
  private reachable = new Set<PeerName>();
  /** performance.now() before which a scheduled apply does not run (APPLY_COST_SPACING). */
  private earliestNextApply = 0;

  constructor(private readonly opts: ForwardingUpdaterOptions) {}

  schedule(): void {
    if (this.timer || this.stopped) return;
    const delay = Math.max(this.opts.delayMs ?? 50, this.earliestNextApply - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.applyNow();
    }, delay);
    this.timer.unref?.();
  }

  /** Compute now and apply if it differs from the last applied state. */
  applyNow(): ForwardingState | undefined {
    if (this.stopped) return undefined;
    const started = performance.now();
    const state = computeForwardingState(this.opts.mesh, this.opts.neighbours());
    const key = forwardingStateKey(state);
    const computed = performance.now();
    this.earliestNextApply = computed + (computed - started) * APPLY_COST_SPACING;
    if (key === this.lastKey) return undefined;
    this.lastKey = key;
    this.applied++;
    let failed = false;
    const inPlace: Promise<void>[] = [];
    for (const dp of this.opts.datapaths) {
      try {
        const applying = dp.applyForwardingState(state);
        if (applying) inPlace.push(applying.catch((err: unknown) => { throw new DatapathApplyError(dp, err); }));
      } catch (err) {
        this.applyFailed(key, new DatapathApplyError(dp, err));
        failed = true;
      }
    }
    if (failed) return state;
    const reachable = new Set(state.peers.map((p) => p.name));
    void Promise.allSettled(inPlace).then((results) => {
      if (this.stopped) return;
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const f of failures) this.applyFailed(key, f.reason as DatapathApplyError);
      if (failures.length > 0) return;
      const added = [...reachable].filter((p) => !this.reachable.has(p));
      this.reachable = reachable;
      if (added.length > 0) this.opts.onPeersReachable?.(added);
    });
    return state;
  }

  /**
   * The state is not in place: it is applied again on the next change or
   * after RETRY_AFTER_FAILURE_MS, and the peers it adds are reported only
   * once that succeeds.
   */
  private applyFailed(key: string, err: DatapathApplyError): void {
    this.opts.log?.(err.message);
    if (this.lastKey === key) this.lastKey = undefined;
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.applyNow();
    }, RETRY_AFTER_FAILURE_MS);
    this.retryTimer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
  }
}

class DatapathApplyError extends Error {
  constructor(dp: Datapath, cause: unknown) {
    super(`${dp.overlay} (${dp.kind}): cannot apply forwarding state: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}
