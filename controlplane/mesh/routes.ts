// Routes derived from the topology graph (spec §4.6): unicast next hops,
// spanning-tree broadcast next hops, and the weighted random neighbour choice
// used to spread gossip.
import type { Cancel, Clock } from './clock.js';
import { UNKNOWN_PEER_NAME, type Peer } from './peer.js';
import type { PeerName } from './types.js';
import { compareOrdered } from '../order.js';

/** Deferral of a recalculation after a trigger (spec §4.6). */
export const ROUTE_RECALCULATION_DELAY_MS = 100;

type Graph = ReadonlyMap<PeerName, Peer>;

/**
 * Edge filter E(flag) (spec §4.6): with `establishedOnly`, P->R is usable only
 * when P's connection to R is established and R lists an established one back.
 */
export function edgeUsable(graph: Graph, from: Peer, to: PeerName, establishedOnly: boolean): boolean {
  if (!establishedOnly) return true;
  if (!from.connections.get(to)?.established) return false;
  return graph.get(to)?.connections.get(from.name)?.established === true;
}

/**
 * BFS `routes(start, stopAt, flag)` exactly as spec §4.6: dest -> next hop.
 * The edge filter is edgeUsable's, inlined: while a large mesh forms this runs
 * for every relayed broadcast and every forwarding state, so each edge costs
 * the lookups it needs and no more (its own record is in hand, the remote's
 * is fetched once for both the existence and the symmetry check).
 */
export function bfsRoutes(
  graph: Graph,
  start: PeerName,
  stopAt: PeerName | undefined,
  establishedOnly: boolean,
): { found: boolean; routes: Map<PeerName, PeerName> } {
  const routes = new Map<PeerName, PeerName>([[start, UNKNOWN_PEER_NAME]]);
  let level: PeerName[] = [start];
  while (level.length > 0) {
    if (level.length > 1) level.sort(byName);
    const next: PeerName[] = [];
    for (const cur of level) {
      if (cur === stopAt) return { found: true, routes };
      const peer = graph.get(cur);
      if (!peer) continue;
      const via = cur === start ? undefined : routes.get(cur);
      for (const [remote, conn] of peer.connections) {
        if (routes.has(remote)) continue;
        // Edges to peers we hold no record of (not yet merged) are not followed.
        const remotePeer = graph.get(remote);
        if (!remotePeer) continue;
        if (establishedOnly && (!conn.established || remotePeer.connections.get(cur)?.established !== true)) continue;
        next.push(remote);
        routes.set(remote, via ?? remote);
      }
    }
    level = next;
  }
  return { found: false, routes };
}

const byName: (a: PeerName, b: PeerName) => number = compareOrdered;

export class Routes {
  private unicast = new Map<PeerName, PeerName>();
  private unicastAll = new Map<PeerName, PeerName>();
  private broadcastCache = new Map<PeerName, PeerName[]>();
  private broadcastAllCache = new Map<PeerName, PeerName[]>();
  private pending: Cancel | undefined;
  /** The established symmetric edges the data-plane routes were last computed from. */
  private establishedEdges: EdgeSet | undefined;

  constructor(
    private readonly graph: () => Graph,
    private readonly ourName: PeerName,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly onChanged: () => void = () => {},
  ) {
    this.recalculateNow();
  }

  /**
   * The graph changed: recalculate 100 ms from now unless a recalculation is
   * already due (spec §4.6). Gossip broadcast trees are dropped at once: they
   * are computed lazily from the live graph, so a broadcast relayed in the
   * meantime already follows the connections just made (as Weave's relay does
   * after its ensureRecalculated) without recomputing every table per message.
   */
  recalculateSoon(): void {
    this.broadcastAllCache.clear();
    if (this.pending) return;
    this.pending = this.clock.schedule(ROUTE_RECALCULATION_DELAY_MS, () => {
      this.pending = undefined;
      this.recalculateNow();
    });
  }

  /**
   * Apply a recalculation still pending before choosing gossip neighbours
   * from the unicast table (Weave's ensureRecalculated): a table computed
   * before the latest topology change misses the peers that change connected.
   */
  ensureRecalculated(): void {
    if (this.pending) this.recalculateNow();
  }

  recalculateNow(): void {
    this.pending?.();
    this.pending = undefined;
    const g = this.graph();
    const unicast = bfsRoutes(g, this.ourName, undefined, true).routes;
    const unicastAll = bfsRoutes(g, this.ourName, undefined, false).routes;
    this.unicast = unicast;
    this.unicastAll = unicastAll;
    this.broadcastAllCache.clear();
    // Unicast and Broadcast (the data plane's routes) depend only on the
    // established symmetric edges. Most topology changes while a mesh forms
    // leave those alone; then the data plane keeps its trees and is not told
    // (recomputing its state walks a tree per peer: O(N^3) for a full mesh).
    if (this.establishedEdges && sameEstablishedEdges(g, this.establishedEdges)) return;
    this.establishedEdges = establishedEdges(g);
    this.broadcastCache.clear();
    this.onChanged();
  }

  stop(): void {
    this.pending?.();
    this.pending = undefined;
  }

  /** Next hop towards `dst` over established symmetric connections (data plane). */
  unicastNextHop(dst: PeerName): PeerName | undefined {
    return nextHop(this.unicast, dst);
  }

  /** Next hop towards `dst` over any connection (gossip). */
  unicastAllNextHop(dst: PeerName): PeerName | undefined {
    return nextHop(this.unicastAll, dst);
  }

  unicastTable(establishedOnly: boolean): ReadonlyMap<PeerName, PeerName> {
    return establishedOnly ? this.unicast : this.unicastAll;
  }

  /** Neighbours to forward a broadcast from `src` to (data plane, spec §4.6 Broadcast). */
  broadcastNextHops(src: PeerName): PeerName[] {
    return this.cachedBroadcast(this.broadcastCache, src, true);
  }

  /** Neighbours to forward a gossip broadcast from `src` to (spec §4.6 BroadcastAll). */
  broadcastAllNextHops(src: PeerName): PeerName[] {
    return this.cachedBroadcast(this.broadcastAllCache, src, false);
  }

  /**
   * Up to floor(2·log2(n)) distinct next hops other than `except`, chosen by
   * weighted random choice without replacement, the weight of a hop being the
   * number of destinations routed via it (spec §4.6 randomNeighbours).
   */
  randomNeighbours(except: PeerName): PeerName[] {
    const weights = new Map<PeerName, number>();
    for (const hop of this.unicastAll.values()) {
      if (hop === UNKNOWN_PEER_NAME || hop === except) continue;
      weights.set(hop, (weights.get(hop) ?? 0) + 1);
    }
    const n = this.unicastAll.size;
    const wanted = Math.min(Math.floor(2 * Math.log2(n)), weights.size);
    const chosen: PeerName[] = [];
    // Sorted so a seeded random source gives the same choice on every run.
    const candidates = [...weights.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    while (chosen.length < wanted) {
      const total = candidates.reduce((s, [, w]) => s + w, 0);
      let r = this.random() * total;
      let idx = candidates.findIndex(([, w]) => (r -= w) < 0);
      if (idx < 0) idx = candidates.length - 1;
      chosen.push(candidates[idx]![0]);
      candidates.splice(idx, 1);
    }
    return chosen;
  }

  private cachedBroadcast(cache: Map<PeerName, PeerName[]>, src: PeerName, establishedOnly: boolean): PeerName[] {
    let hops = cache.get(src);
    if (!hops) {
      hops = computeBroadcast(this.graph(), this.ourName, src, establishedOnly);
      cache.set(src, hops);
    }
    return hops;
  }
}

/** Broadcast(S) / BroadcastAll(S) (spec §4.6). */
export function computeBroadcast(graph: Graph, ourName: PeerName, src: PeerName, establishedOnly: boolean): PeerName[] {
  const { found, routes: reached } = bfsRoutes(graph, src, ourName, establishedOnly);
  if (!found) return [];
  const us = graph.get(ourName);
  if (!us) return [];
  const hops: PeerName[] = [];
  for (const remote of us.connections.keys()) {
    if (reached.has(remote) || !graph.has(remote)) continue;
    if (edgeUsable(graph, us, remote, establishedOnly)) hops.push(remote);
  }
  return hops.sort(byName);
}

/** Established symmetric edges: source peer -> remote peers. */
type EdgeSet = Map<PeerName, Set<PeerName>>;

function establishedEdges(graph: Graph): EdgeSet {
  const edges: EdgeSet = new Map();
  for (const peer of graph.values()) {
    for (const remote of peer.connections.keys()) {
      if (!edgeUsable(graph, peer, remote, true)) continue;
      let out = edges.get(peer.name);
      if (!out) edges.set(peer.name, (out = new Set()));
      out.add(remote);
    }
  }
  return edges;
}

/**
 * Whether the graph's established symmetric edges are exactly `edges`,
 * checked without building anything: most recalculations while a mesh forms
 * leave them alone (a connection counts only once both ends confirm it).
 */
function sameEstablishedEdges(graph: Graph, edges: EdgeSet): boolean {
  let count = 0;
  for (const peer of graph.values()) {
    for (const remote of peer.connections.keys()) {
      if (!edgeUsable(graph, peer, remote, true)) continue;
      if (edges.get(peer.name)?.has(remote) !== true) return false;
      count++;
    }
  }
  let expected = 0;
  for (const out of edges.values()) expected += out.size;
  return count === expected;
}

function nextHop(table: Map<PeerName, PeerName>, dst: PeerName): PeerName | undefined {
  const hop = table.get(dst);
  return hop === undefined || hop === UNKNOWN_PEER_NAME ? undefined : hop;
}
