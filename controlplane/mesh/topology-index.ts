// The topology graph as arrays, for the route computations (spec §4.6) that
// follow each recalculation: the unicast tables, the data plane's Broadcast(S)
// tree for every peer S and the status views' BroadcastAll(S). Over the live
// graph each edge of each BFS costs lookups in maps keyed by 64-bit names
// (BigInts, hashed on every lookup); here the graph is walked once, and every
// BFS after that reads integer arrays.
import type { Peer } from './peer.js';
import type { PeerName } from './types.js';

type Graph = ReadonlyMap<PeerName, Peer>;

/** `via[i]` of the BFS start. */
export const VIA_START = -2;
/** `via[i]` of a peer the BFS did not reach. */
export const VIA_UNREACHED = -1;

/**
 * Peers are numbered in ascending name order, so sorting a BFS level by name
 * (spec §4.6: the lowest name is dequeued first) is sorting numbers. Each
 * peer's edges are sorted too (see the constructor); edges to peers we hold
 * no record of are left out (they are not followed).
 */
export class TopologyIndex {
  /** Peer names by index, ascending. */
  readonly names: readonly PeerName[];
  private readonly indexOf = new Map<PeerName, number>();
  /** Edges of peer i: to[start[i]] .. to[start[i + 1] - 1], by index; any connection (BroadcastAll, gossip). */
  private readonly allStart: Int32Array;
  private readonly allTo: Int32Array;
  /** The same for established connections confirmed by the remote end (data plane). */
  private readonly estStart: Int32Array;
  private readonly estTo: Int32Array;
  /** Scratch for one BFS at a time: the level being walked and the next one. */
  private level: Int32Array;
  private next: Int32Array;
  /** The last BFS's first hop towards each peer: VIA_START, VIA_UNREACHED or a peer's index. */
  private readonly via: Int32Array;
  /** Peers the last BFS reached, in the order it reached them (the start first). */
  private readonly order: Int32Array;
  private orderLength = 0;

  constructor(graph: Graph) {
    const names = [...graph.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.names = names;
    names.forEach((n, i) => this.indexOf.set(n, i));
    const n = names.length;
    // Every edge once, packed as to·2 + established and sorted per peer: the edge lists are then
    // canonical (within one peer the order of its edges changes no route: all its neighbours get
    // its first hop, and the next level is sorted), and the symmetry check below is a binary
    // search in integers instead of a lookup by name in the remote's map.
    let edgeCount = 0;
    for (const peer of graph.values()) edgeCount += peer.connections.size;
    const packed = new Int32Array(edgeCount);
    this.allStart = new Int32Array(n + 1);
    let e = 0;
    for (let i = 0; i < n; i++) {
      this.allStart[i] = e;
      for (const conn of graph.get(names[i]!)!.connections.values()) {
        const j = this.indexOf.get(conn.name);
        if (j !== undefined) packed[e++] = j * 2 + (conn.established ? 1 : 0);
      }
      packed.subarray(this.allStart[i]!, e).sort();
    }
    this.allStart[n] = e;
    this.allTo = new Int32Array(e);
    const established = new Uint8Array(e);
    for (let k = 0; k < e; k++) {
      this.allTo[k] = packed[k]! >> 1;
      established[k] = packed[k]! & 1;
    }
    this.estStart = new Int32Array(n + 1);
    const est: number[] = [];
    for (let i = 0; i < n; i++) {
      this.estStart[i] = est.length;
      for (let k = this.allStart[i]!, end = this.allStart[i + 1]!; k < end; k++) {
        if (established[k] === 0) continue;
        const j = this.allTo[k]!;
        const back = this.findEdge(j, i);
        if (back >= 0 && established[back] === 1) est.push(j);
      }
    }
    this.estStart[n] = est.length;
    this.estTo = Int32Array.from(est);
    this.level = new Int32Array(n);
    this.next = new Int32Array(n);
    this.via = new Int32Array(n);
    this.order = new Int32Array(n);
  }

  /** Position of the edge i -> j in allTo, or -1. */
  private findEdge(i: number, j: number): number {
    let lo = this.allStart[i]!;
    let hi = this.allStart[i + 1]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.allTo[mid]!;
      if (v === j) return mid;
      if (v < j) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  get size(): number {
    return this.names.length;
  }

  index(name: PeerName): number | undefined {
    return this.indexOf.get(name);
  }

  /**
   * BFS `routes(start, stopAt, flag)` of spec §4.6 over the index; firstHop
   * and lastReached read what it found. Returns whether `stopAt` was dequeued
   * (the search stops there, as the spec's does; pass -1 to search the whole
   * graph).
   */
  bfs(start: number, stopAt: number, establishedOnly: boolean): boolean {
    const via = this.via;
    via.fill(VIA_UNREACHED);
    via[start] = VIA_START;
    this.order[0] = start;
    this.orderLength = 1;
    const startOf = establishedOnly ? this.estStart : this.allStart;
    const to = establishedOnly ? this.estTo : this.allTo;
    let level = this.level;
    let next = this.next;
    level[0] = start;
    let levelLength = 1;
    while (levelLength > 0) {
      if (levelLength > 1) level.subarray(0, levelLength).sort();
      let nextLength = 0;
      for (let k = 0; k < levelLength; k++) {
        const cur = level[k]!;
        if (cur === stopAt) return true;
        const hop = cur === start ? -1 : via[cur]!;
        for (let e = startOf[cur]!, end = startOf[cur + 1]!; e < end; e++) {
          const remote = to[e]!;
          if (via[remote] !== VIA_UNREACHED) continue;
          via[remote] = hop === -1 ? remote : hop;
          next[nextLength++] = remote;
          this.order[this.orderLength++] = remote;
        }
      }
      [level, next] = [next, level];
      levelLength = nextLength;
    }
    return false;
  }

  /** The last BFS's first hop towards peer i: a peer's index, VIA_START for the start, VIA_UNREACHED if not reached. */
  firstHop(i: number): number {
    return this.via[i]!;
  }

  /** The peers the last BFS reached, in the order it reached them. */
  lastReached(): Int32Array {
    return this.order.subarray(0, this.orderLength);
  }

  /** Indices of peer i's neighbours over edges of the given kind, ascending. */
  neighbours(i: number, establishedOnly: boolean): Int32Array {
    const startOf = establishedOnly ? this.estStart : this.allStart;
    return (establishedOnly ? this.estTo : this.allTo).subarray(startOf[i]!, startOf[i + 1]!);
  }

  /**
   * Whether `other` has the same established symmetric edges, so the same
   * data-plane routes. Peers without such edges are passed over (one that
   * joined with none yet changes no route); the others are compared by name,
   * in name order, with their neighbours.
   */
  sameEstablishedEdges(other: TopologyIndex): boolean {
    if (other.estTo.length !== this.estTo.length) return false;
    let i = 0;
    let j = 0;
    for (;;) {
      while (i < this.size && this.estStart[i + 1] === this.estStart[i]) i++;
      while (j < other.size && other.estStart[j + 1] === other.estStart[j]) j++;
      if (i === this.size || j === other.size) return i === this.size && j === other.size;
      if (this.names[i] !== other.names[j]) return false;
      const ours = this.neighbours(i, true);
      const theirs = other.neighbours(j, true);
      if (ours.length !== theirs.length) return false;
      for (let k = 0; k < ours.length; k++) if (this.names[ours[k]!] !== other.names[theirs[k]!]) return false;
      i++;
      j++;
    }
  }
}
