// IPAM consensus benchmark: three routers started with `weave launch` on
// simulated hosts (one network namespace each, shared underlay bridge), each
// given the other two as peers, so they must agree on who owns the range
// before the first automatic address exists (user-surface spec §1.6). Per round:
//   launched     ms from the first `weave launch` until all three have returned
//   first addr   ms from the first launch until an automatic `weave attach` on h1 returns
//   all ready    ms from the first launch until every router's `weave status`
//                says ipam is ready and its `weave status ipam` lists three owners
//
//   node dist/bench/ipam-consensus.js [rounds=3]
// Root needed; everything lives in namespaces the bench creates and removes.
import { launchFullMesh, mustWeave, pollUntil, weave, withWeaveBed, type Host } from '../test/netns/lib/index.js';

const READY_TIMEOUT_MS = 60_000;

interface Row { launchedMs: number; firstAddrMs: number; allReadyMs: number }

function parseRounds(arg: string | undefined): number {
  const n = Number(arg ?? 3);
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error(`ipam-consensus: "${arg}" is not a round count in 1..50 (usage: ipam-consensus.js [rounds])`);
  return n;
}

/** `weave status` reports ipam ready and `weave status ipam` lists every router as an owner. */
async function ipamReady(h: Host, owners: number): Promise<boolean> {
  const status = await weave(h, ['status'], { timeoutMs: 10_000 });
  if (!/Service: ipam\n\s+Status: ready\n/.test(status.stdout)) return false;
  const ipam = await weave(h, ['status', 'ipam'], { timeoutMs: 10_000 });
  return ipam.stdout.split('\n').filter((l) => /\d+ IPs/.test(l)).length === owners;
}

async function round(): Promise<Row> {
  let row: Row | undefined;
  await withWeaveBed(3, async (bed) => {
    const [h1] = bed.hosts;
    const c = await h1.addContainer('first');
    const t0 = performance.now();
    await launchFullMesh(bed.hosts);
    const launchedMs = performance.now() - t0;
    await mustWeave(h1, ['attach', '--netns', c.netnsPath]);
    const firstAddrMs = performance.now() - t0;
    const ready = await pollUntil(async () => (await Promise.all(bed.hosts.map((h) => ipamReady(h, 3)))).every(Boolean), READY_TIMEOUT_MS, 50);
    if (!ready) throw new Error(`ipam-consensus: the three routers were not all ready within ${READY_TIMEOUT_MS / 1000} s`);
    row = { launchedMs, firstAddrMs, allReadyMs: performance.now() - t0 };
  });
  if (!row) throw new Error('ipam-consensus: round ended without a measurement');
  return row;
}

const rounds = parseRounds(process.argv[2]);
const rows: Row[] = [];
for (let i = 0; i < rounds; i++) rows.push(await round());

const cell = (ms: number): string => ms.toFixed(0).padStart(12);
process.stdout.write(`ipam consensus, 3 routers, full peer list\n${'round'.padEnd(6)}${'launched'.padStart(12)}${'first addr'.padStart(12)}${'all ready'.padStart(12)}   (ms)\n`);
for (const [i, r] of rows.entries()) process.stdout.write(`${String(i + 1).padEnd(6)}${cell(r.launchedMs)}${cell(r.firstAddrMs)}${cell(r.allReadyMs)}\n`);
if (rows.length > 1) {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  process.stdout.write(`${'median'.padEnd(6)}${cell(median(rows.map((r) => r.launchedMs)))}${cell(median(rows.map((r) => r.firstAddrMs)))}${cell(median(rows.map((r) => r.allReadyMs)))}\n`);
}
