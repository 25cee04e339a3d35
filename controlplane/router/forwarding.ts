// Forwarding state for the data plane (datapath.ts ForwardingState): computed
// from the mesh's routes and peers (wire spec §4.6, §4.8) and the overlay
// switch's choice per neighbour (§5.9), and handed to every datapath as one
// value. Recomputation is debounced; a value equal to the last one applied is
// not applied again.
import type { PeerName, PeerShortID } from '../mesh/types.js';
import type { Datapath, ForwardingState, OverlayName } from './datapath.js';

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

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

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

/** Recomputes and applies the forwarding state whenever `schedule()` is called (debounced, idempotent). */
export class ForwardingUpdater {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastKey: string | undefined;
  private stopped = false;
  /** How many times a changed state was handed to the datapaths. */
  applied = 0;

  constructor(private readonly opts: ForwardingUpdaterOptions) {}

  schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.applyNow();
    }, this.opts.delayMs ?? 50);
    this.timer.unref?.();
  }

  /** Compute now and apply if it differs from the last applied state. */
  applyNow(): ForwardingState | undefined {
    if (this.stopped) return undefined;
    const state = computeForwardingState(this.opts.mesh, this.opts.neighbours());
    const key = forwardingStateKey(state);
    if (key === this.lastKey) return undefined;
    this.lastKey = key;
    this.applied++;
    const inPlace: Promise<void>[] = [];
    for (const dp of this.opts.datapaths) {
      try {
        const applying = dp.applyForwardingState(state);
        if (applying) inPlace.push(applying);
      } catch (err) {
        this.opts.log?.(`${dp.overlay} (${dp.kind}): cannot apply forwarding state: ${(err as Error).message}`);
        this.lastKey = undefined; // try again on the next change
      }
    }
    const reachable = new Set(state.peers.map((p) => p.name));
    const added = [...reachable].filter((p) => !this.reachable.has(p));
    this.reachable = reachable;
    const notify = this.opts.onPeersReachable;
    if (notify && added.length > 0) void Promise.allSettled(inPlace).then(() => { if (!this.stopped) notify(added); });
    return state;
  }

  /** Peers of the last applied state. */
  private reachable = new Set<PeerName>();

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
