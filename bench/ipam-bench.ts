// IPAM allocation throughput on one router: a lone allocator (consensus with
// itself) persisting to a real data file, as weaver runs it. Every allocation
// is on disk (written and fsynced) before it is answered.
//   sequential  allocate() calls one after another, in process: one write+fsync each
//   http        POST /ip/{id} from 4 concurrent HTTP clients in another process:
//               requests that arrive together share one write+fsync (group commit)
// Each figure is the median of `rounds` rounds, each with a fresh allocator and
// data file; the data file is read back after each HTTP round to check that
// every acknowledged address is in it.
//
//   node dist/bench/ipam-bench.js [rounds=3] [allocations=1000]
// The time for a fresh three-router mesh to reach consensus is measured end to
// end by bench/ipam-consensus.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpApi } from '../controlplane/api/http-app.js';
import { Allocator, FileIpamStore, gobStreamCodec, parseSubnet, registerIpamRoutes } from '../controlplane/ipam/index.js';

const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 1000);
const CLIENTS = 4;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function withAllocator<T>(fn: (alloc: Allocator, store: FileIpamStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'ipam-bench-'));
  const store = new FileIpamStore(dir);
  const alloc = new Allocator({
    name: 0x0a0000000001n, uid: 1n, nickname: 'bench',
    universe: parseSubnet('10.32.0.0/12', '--ipalloc-range'),
    init: { mode: 'consensus', count: 1 },
    isKnownPeer: () => false,
    codec: gobStreamCodec,
    store,
  });
  try {
    alloc.setChannel({ gossipUnicast: () => undefined, gossipBroadcast: () => undefined });
    await alloc.prime();
    return await fn(alloc, store);
  } finally {
    alloc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function sequential(): Promise<number> {
  return withAllocator(async (alloc) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await alloc.allocate(`c${i}`);
    return count / (Number(process.hrtime.bigint() - start) / 1e9);
  });
}

/** The client: CLIENTS loops over one keep-alive agent, each POSTing its share of the idents. */
const CLIENT = `
const http = require('node:http');
const [port, total, clients] = process.argv.slice(1).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const post = (path) => new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent }, (res) => {
    let body = ''; res.setEncoding('utf8'); res.on('data', (d) => { body += d; });
    res.on('end', () => res.statusCode === 200 ? resolve(body) : reject(new Error(res.statusCode + ' ' + body)));
  });
  req.on('error', reject); req.end();
});
let next = 0; const got = {};
const loop = async () => { while (next < total) { const id = 'c' + next++; got[id] = await post('/ip/' + id); } };
const start = process.hrtime.bigint();
Promise.all(Array.from({ length: clients }, loop)).then(() => {
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ perSecond: total / s, got })); agent.destroy();
}, (err) => { console.error(err.message); process.exit(1); });`;

async function overHttp(): Promise<number> {
  return withAllocator(async (alloc, store) => {
    const app = new HttpApi();
    registerIpamRoutes(app, alloc);
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as { port: number };
      const child = spawn(process.execPath, ['-e', CLIENT, String(port), String(count), String(CLIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      if (code !== 0) throw new Error(`HTTP client exited with ${code}`);
      const r = JSON.parse(out) as { perSecond: number; got: Record<string, string> };
      // Durability check: everything acknowledged is in the data file now.
      const saved = new Map(store.load()!.allocations.map((a) => [a.ident, a.addrs.length]));
      const missing = Object.keys(r.got).filter((id) => saved.get(id) !== 1);
      if (Object.keys(r.got).length !== count || missing.length > 0) {
        throw new Error(`${missing.length} acknowledged allocations are not in the data file`);
      }
      return r.perSecond;
    } finally {
      await app.close();
    }
  });
}

process.stdout.write(`ipam: ${rounds} rounds of ${count} allocations, load average before ${loadavg()}\n`);
const seq: number[] = [];
const http: number[] = [];
for (let i = 0; i < rounds; i++) {
  seq.push(await sequential());
  http.push(await overHttp());
}
const fmt = (xs: number[]): string => `${Math.round(median(xs))} allocs/s (median of ${xs.length}; rounds ${xs.map(Math.round).join(' ')})`;
process.stdout.write(`ipam sequential, in process: ${fmt(seq)}\n`);
process.stdout.write(`ipam ${CLIENTS} concurrent HTTP clients: ${fmt(http)}\n`);
process.stdout.write(`ipam: HTTP/sequential ratio ${(median(http) / median(seq)).toFixed(2)}; load average after ${loadavg()}\n`);
