// Route computation cost on a full mesh of N peers (spec §4.6), in-process:
// what a router does after each recalculation, the data plane's Broadcast(S)
// tree for every peer S and a status view's BroadcastAll(S) for every S.
//   index   Routes: one TopologyIndex per recalculation, then BFS over arrays
//   maps    the same trees by the spec's BFS over the live maps (bfsRoutes)
// Prints microseconds per round (recalculation + 2N trees) and index / maps,
// medians of 5 runs of R rounds each.
//
//   node dist/bench/routes-cost.js [N ...]        (default: 10 25 50)
import { ManualClock } from '../controlplane/mesh/clock.js';
import { Peer } from '../controlplane/mesh/peer.js';
import { bfsRoutes, Routes } from '../controlplane/mesh/routes.js';
import type { PeerName } from '../controlplane/mesh/types.js';

const RUNS = 5;
const ROUNDS = 200;

function fullMesh(n: number): { graph: Map<PeerName, Peer>; names: PeerName[] } {
  // Names in an order unrelated to their values, as real (MAC-derived) names are.
  const names = Array.from({ length: n }, (_, i) => 0x0a0000000000n + BigInt((i * 7919) % 1009) * 4096n + BigInt(i));
  const graph = new Map<PeerName, Peer>();
  for (const name of names) graph.set(name, new Peer({ name, nickName: `h${name}`, uid: 1n, version: 1n, shortId: 1, hasShortId: true }));
  for (const a of names) {
    for (const b of names) {
      if (a !== b) graph.get(a)!.connections.set(b, { name: b, remoteTcpAddr: '192.0.2.1:6783', outbound: a < b, established: true });
    }
  }
  return { graph, names };
}

/** Broadcast(S) by the full BFS over the maps, as spec §4.6 words it. */
function mapsBroadcast(graph: Map<PeerName, Peer>, us: PeerName, src: PeerName, establishedOnly: boolean): PeerName[] {
  const { found, routes } = bfsRoutes(graph, src, us, establishedOnly);
  if (!found) return [];
  return [...graph.get(us)!.connections.keys()].filter((r) => !routes.has(r)).sort((a, b) => (a < b ? -1 : 1));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeRounds(round: (k: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < ROUNDS; k++) round(k);
  return Number(process.hrtime.bigint() - t0) / 1e3 / ROUNDS;
}

function measure(n: number): { index: number; maps: number } {
  const { graph, names } = fullMesh(n);
  const us = names[Math.floor(n / 3)]!;
  const routes = new Routes(() => graph, us, new ManualClock(), Math.random);
  const flip = (k: number): void => {
    // A different set of established edges each round, so nothing is kept from the round before.
    const c = graph.get(names[k % n]!)!.connections.get(names[(k + 1) % n]!)!;
    c.established = !c.established;
  };
  const index: number[] = [];
  const maps: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    index.push(timeRounds((k) => {
      flip(k);
      routes.recalculateNow();
      for (const s of names) { routes.broadcastNextHops(s); routes.broadcastAllNextHops(s); }
    }));
    maps.push(timeRounds((k) => {
      flip(k);
      bfsRoutes(graph, us, undefined, true);
      bfsRoutes(graph, us, undefined, false);
      for (const s of names) { mapsBroadcast(graph, us, s, true); mapsBroadcast(graph, us, s, false); }
    }));
  }
  return { index: median(index), maps: median(maps) };
}

const sizes = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [10, 25, 50];
process.stdout.write(' N  index us/round  maps us/round  index / maps\n');
for (const n of sizes) {
  if (!(Number.isInteger(n) && n >= 2)) throw new Error(`routes-cost: ${n} is not a mesh size (an integer >= 2)`);
  const r = measure(n);
  process.stdout.write(`${String(n).padStart(2)}  ${r.index.toFixed(0).padStart(14)}  ${r.maps.toFixed(0).padStart(13)}  ${(r.index / r.maps).toFixed(2).padStart(12)}\n`);
}
