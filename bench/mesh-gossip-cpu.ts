// In-process mesh gossip cost: N mesh routers (no sockets, no data plane) on
// one manual clock, every router first connected to router 1 only, then the
// full mesh that peer discovery builds added one connection at a time. Measures
// the CPU the topology gossip takes until every router lists all N peers and
// every connection appears in every router's topology.
//
//   node dist/bench/mesh-gossip-cpu.js [N ...]        (default: 10 25 50)
import { formMeshThroughFirst, TestMesh } from '../test/unit/mesh-harness.js';

export interface GossipCpuResult {
  n: number;
  cpuMs: number;
  /** Topology gossip messages sent by all routers. */
  messages: number;
  bytes: number;
}

function converged(mesh: TestMesh, n: number): boolean {
  for (const p of mesh.peers) {
    const all = p.router.peers.all();
    if (all.length !== n) return false;
    for (const peer of all) if (peer.connections.size !== n - 1) return false;
  }
  return true;
}

/** Runs one simulated mesh of `n` routers; throws if it does not converge. */
export async function simulateMesh(n: number): Promise<GossipCpuResult> {
  const mesh = new TestMesh(n);
  const t0 = process.cpuUsage();
  try {
    await formMeshThroughFirst(mesh, n);
    for (let s = 0; s < 60 && !converged(mesh, n); s++) await mesh.advance(1_000);
    if (!converged(mesh, n)) throw new Error(`mesh-gossip-cpu: ${n} routers did not converge`);
    const used = process.cpuUsage(t0);
    let messages = 0;
    let bytes = 0;
    for (const p of mesh.peers) {
      for (const c of p.router.allConnections()) {
        const link = (c as unknown as { link: { sent: Uint8Array[] } }).link;
        for (const b of link.sent) { messages++; bytes += b.length; }
      }
    }
    return { n, cpuMs: (used.user + used.system) / 1000, messages, bytes };
  } finally {
    mesh.stop();
  }
}

async function main(): Promise<void> {
  const sizes = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [10, 25, 50];
  for (const n of sizes) {
    const r = await simulateMesh(n);
    process.stdout.write(`N=${n}: ${r.cpuMs.toFixed(0)} ms CPU, ${r.messages} messages, ${(r.bytes / 1e6).toFixed(1)} MB\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
