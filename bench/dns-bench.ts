// weaveDNS local answers: queries/second and p99 latency of A queries for
// names in the local table, sent over UDP from a second process (so the
// client does not share the server's event loop).
//
//   node dist/bench/dns-bench.js [queries=20000] [inflight=32]
import { spawn } from 'node:child_process';
import { DnsServer, Nameserver } from '../controlplane/dns/index.js';

const total = Number(process.argv[2] ?? 20_000);
const inflight = Number(process.argv[3] ?? 32);
const NAMES = 100;

const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
for (let i = 0; i < NAMES; i++) ns.add(`svc${i}.weave.local.`, `c${i}`, (10 << 24) | (32 << 16) | (i + 1));
const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0' });
await server.start();
const { port } = server.address();

// The client: keeps `inflight` queries outstanding, records each round trip in microseconds.
const client = `
const dgram = require('node:dgram'); const pkt = require('dns-packet');
const [port, total, inflight, names] = process.argv.slice(1).map(Number);
const sock = dgram.createSocket('udp4'); const sent = new Map(); const lat = []; let next = 0;
const send = () => { if (next >= total) return; const id = next++ & 0xffff;
  sent.set(id, process.hrtime.bigint());
  sock.send(pkt.encode({ type: 'query', id, questions: [{ type: 'A', name: 'svc' + (next % names) + '.weave.local' }] }), port, '127.0.0.1'); };
const start = process.hrtime.bigint();
sock.on('message', (m) => { const id = m.readUInt16BE(0); const t = sent.get(id); if (t === undefined) return; sent.delete(id);
  lat.push(Number(process.hrtime.bigint() - t) / 1000);
  if (lat.length === total) { const s = Number(process.hrtime.bigint() - start) / 1e9; lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ qps: Math.round(total / s), p50: lat[Math.floor(total * 0.5)], p99: lat[Math.floor(total * 0.99)] })); sock.close(); }
  else send(); });
for (let i = 0; i < inflight; i++) send();`;
const child = spawn(process.execPath, ['-e', client, String(port), String(total), String(inflight), String(NAMES)], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
await new Promise<void>((resolve) => child.on('exit', () => resolve()));
await server.stop();
const r = JSON.parse(out) as { qps: number; p50: number; p99: number };
process.stdout.write(`dns: ${total} A queries, ${inflight} in flight: ${r.qps} queries/s, p50 ${r.p50.toFixed(0)} us, p99 ${r.p99.toFixed(0)} us (answered locally: ${server.metrics.answeredLocally})\n`);
