// IPAM allocation throughput on one router, in process: a lone allocator
// (consensus with itself) persisting to a real data file, as weaver runs it.
//   allocs/s   sequential allocate() calls for distinct idents, each durable before it resolves
//
//   node dist/bench/ipam-bench.js [allocations=2000]
// The time for a fresh three-router mesh to reach consensus is measured end to
// end by bench/ipam-consensus.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Allocator, FileIpamStore, gobStreamCodec, parseSubnet } from '../controlplane/ipam/index.js';

const count = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'ipam-bench-'));
try {
  const alloc = new Allocator({
    name: 0x0a0000000001n, uid: 1n, nickname: 'bench',
    universe: parseSubnet('10.32.0.0/12', '--ipalloc-range'),
    init: { mode: 'consensus', count: 1 },
    isKnownPeer: () => false,
    codec: gobStreamCodec,
    store: new FileIpamStore(dir),
  });
  alloc.setChannel({ gossipUnicast: () => undefined, gossipBroadcast: () => undefined });
  await alloc.prime();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await alloc.allocate(`c${i}`);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(`ipam: ${count} allocations in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)} allocs/s (fsync per allocation)\n`);
  alloc.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
