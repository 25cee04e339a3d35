// Routes derived from the topology graph (spec §4.6): unicast next hops,
// spanning-tree broadcast next hops, and the weighted random neighbour choice
// used to spread gossip.
import type { Cancel, Clock } from './clock.js';
import { UNKNOWN_PEER_NAME, type Peer } from './peer.js';
import type { PeerName } from './types.js';
import { compareOrdered } from '../order.js';
import { TopologyIndex, VIA_START, VIA_UNREACHED } from './topology-index.js';

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

/** How a BFS walk ended: it dequeued stopAt, a `reached` callback stopped it, or it ran out of peers. */
type WalkEnd = 'found' | 'stopped' | 'exhausted';

/**
 * The BFS of spec §4.6 from `start`: levels dequeued in name order, edges
 * followed only to peers we hold a record of, with the edge filter E(flag)
 * inlined (its own record is in hand, the remote's is fetched once for both
 * the existence and the symmetry check: while a large mesh forms this runs
 * for every relayed broadcast). `reached(remote, from)` hears each peer as it
 * is first reached and returns false to end the walk there.
 */
function walkBfs(
  graph: Graph,
  start: PeerName,
  stopAt: PeerName | undefined,
  establishedOnly: boolean,
  reached: (remote: PeerName, from: PeerName) => boolean,
): WalkEnd {
  const seen = new Set<PeerName>([start]);
  let level: PeerName[] = [start];
  while (level.length > 0) {
    if (level.length > 1) level.sort(byName);
    const next: PeerName[] = [];
    for (const cur of level) {
      if (cur === stopAt) return 'found';
      const peer = graph.get(cur);
      if (!peer) continue;
      for (const [remote, conn] of peer.connections) {
        if (seen.has(remote)) continue;
        const remotePeer = graph.get(remote);
        if (!remotePeer) continue;
        if (establishedOnly && (!conn.established || remotePeer.connections.get(cur)?.established !== true)) continue;
        seen.add(remote);
        next.push(remote);
        if (!reached(remote, cur)) return 'stopped';
      }
    }
    level = next;
  }
  return 'exhausted';
}

/** BFS `routes(start, stopAt, flag)` exactly as spec §4.6: dest -> next hop. */
export function bfsRoutes(
  graph: Graph,
  start: PeerName,
  stopAt: PeerName | undefined,
  establishedOnly: boolean,
): { found: boolean; routes: Map<PeerName, PeerName> } {
  const routes = new Map<PeerName, PeerName>([[start, UNKNOWN_PEER_NAME]]);
  const end = walkBfs(graph, start, stopAt, establishedOnly, (remote, from) => {
    routes.set(remote, from === start ? remote : routes.get(from)!);
    return true;
  });
  return { found: end === 'found', routes };
}

const byName: (a: PeerName, b: PeerName) => number = compareOrdered;

export class Routes {
  private unicast = new Map<PeerName, PeerName>();
  private unicastAll = new Map<PeerName, PeerName>();
  private broadcastCache = new Map<PeerName, PeerName[]>();
  private broadcastAllCache = new Map<PeerName, PeerName[]>();
  private pending: Cancel | undefined;
  /** The graph as arrays, built by each recalculation; dropped at the next change. */
  private index: TopologyIndex | undefined;
  /** The index the data-plane routes were last computed from: its established symmetric edges are theirs. */
  private routedIndex: TopologyIndex | undefined;

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
    this.index = undefined;
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
    const index = new TopologyIndex(this.graph());
    this.index = index;
    this.unicast = this.unicastFrom(index, true);
    this.unicastAll = this.unicastFrom(index, false);
    this.broadcastAllCache.clear();
    // Unicast and Broadcast (the data plane's routes) depend only on the
    // established symmetric edges. Most topology changes while a mesh forms
    // leave those alone; then the data plane keeps its trees and is not told
    // (recomputing its state walks a tree per peer: O(N^3) for a full mesh).
    if (this.routedIndex?.sameEstablishedEdges(index)) return;
    this.routedIndex = index;
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

  /** routes(ourName, none, flag) as a table, in the order the BFS reached the peers. */
  private unicastFrom(index: TopologyIndex, establishedOnly: boolean): Map<PeerName, PeerName> {
    const table = new Map<PeerName, PeerName>();
    const us = index.index(this.ourName);
    if (us === undefined) return table.set(this.ourName, UNKNOWN_PEER_NAME);
    index.bfs(us, -1, establishedOnly);
    for (const i of index.lastReached()) {
      const hop = index.firstHop(i);
      table.set(index.names[i]!, hop === VIA_START ? UNKNOWN_PEER_NAME : index.names[hop]!);
    }
    return table;
  }

  /**
   * Broadcast(S) / BroadcastAll(S) (spec §4.6). Over the index while it is
   * current (after a recalculation: the data plane then asks for a tree per
   * peer); after a change, over the live graph, as most trees asked for
   * then are one source's, and its BFS stops as soon as it reaches us.
   */
  private cachedBroadcast(cache: Map<PeerName, PeerName[]>, src: PeerName, establishedOnly: boolean): PeerName[] {
    let hops = cache.get(src);
    if (hops) return hops;
    const index = this.index;
    if (!index) {
      hops = computeBroadcast(this.graph(), this.ourName, src, establishedOnly);
    } else {
      hops = [];
      const s = index.index(src);
      const us = index.index(this.ourName);
      if (s !== undefined && us !== undefined && index.bfs(s, us, establishedOnly)) {
        // Our neighbours the tree from S has not reached when it reaches us; ascending.
        for (const j of index.neighbours(us, establishedOnly)) if (index.firstHop(j) === VIA_UNREACHED) hops.push(index.names[j]!);
      }
    }
    cache.set(src, hops);
    return hops;
  }
}

/**
 * Broadcast(S) / BroadcastAll(S) (spec §4.6): our neighbours that the BFS
 * from S has not reached when it dequeues us. The BFS stops as soon as every
 * neighbour of ours is reached, since the answer is then empty whatever
 * follows: in a full mesh that is after S's own edges, where a tree over
 * the whole graph would walk half of it.
 */
export function computeBroadcast(graph: Graph, ourName: PeerName, src: PeerName, establishedOnly: boolean): PeerName[] {
  const us = graph.get(ourName);
  if (!us) return [];
  const notReached = new Set<PeerName>();
  for (const remote of us.connections.keys()) {
    if (remote !== src && graph.has(remote) && edgeUsable(graph, us, remote, establishedOnly)) notReached.add(remote);
  }
  if (notReached.size === 0) return [];
  const end = walkBfs(graph, src, ourName, establishedOnly, (remote) => !(notReached.delete(remote) && notReached.size === 0));
  return end === 'found' ? [...notReached].sort(byName) : [];
}

function nextHop(table: Map<PeerName, PeerName>, dst: PeerName): PeerName | undefined {
  const hop = table.get(dst);
  return hop === undefined || hop === UNKNOWN_PEER_NAME ? undefined : hop;
}
