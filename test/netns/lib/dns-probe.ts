// DNS from inside a test namespace: a query script run with node in a
// container (dns-packet, so the test sees records in wire order) and a small
// upstream server standing in for a host's resolv.conf nameserver.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { pollUntil, type SpawnedProcess } from './exec.js';
import type { NamespaceRunner } from './testbed.js';

const DNS_PACKET = createRequire(import.meta.url).resolve('dns-packet');

/** One query's outcome as the query script reports it. */
export interface QueryResult {
  rcode: string;
  answers: { type: string; data: string }[];
  /** Set when no reply came. */
  error?: string;
}

export interface Query {
  type: 'A' | 'PTR';
  name: string;
}
/**
 * Sends each query over UDP to `server`:53, one after another, and prints a
 * JSON array of the replies (rcode and answer records, in wire order).
 */
export const QUERY_SCRIPT = `
const dnsPacket = require(process.argv[1]);
const dgram = require('node:dgram');
const [server, queries] = [process.argv[2], JSON.parse(process.argv[3])];
function ask(q, id) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => { s.close(); resolve({ rcode: '', answers: [], error: 'timeout' }); }, 2000);
    s.on('message', (msg) => {
      const p = dnsPacket.decode(msg);
      if (p.id !== id) return;
      clearTimeout(timer);
      s.close();
      resolve({ rcode: p.rcode, answers: (p.answers || []).map((a) => ({ type: a.type, data: String(a.data) })) });
    });
    s.send(dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: q.type, name: q.name }] }), 53, server);
  });
}
(async () => {
  const out = [];
  for (const [i, q] of queries.entries()) out.push(await ask(q, (i * 7919 + 1) & 0xffff));
  console.log(JSON.stringify(out));
})();
`;

/** Upstream server: answers UPSTREAM_NAME with a fixed A record, anything else NXDOMAIN; logs each name asked. */
export const UPSTREAM_SCRIPT = `
const dnsPacket = require(process.argv[1]);
const s = require('node:dgram').createSocket('udp4');
const [addr, name, answer] = [process.argv[2], process.argv[3], process.argv[4]];
s.on('message', (msg, rinfo) => {
  let q;
  try { q = dnsPacket.decode(msg); } catch { return; }
  const question = (q.questions || [])[0];
  if (!question) return;
  console.log('asked ' + question.type + ' ' + question.name);
  const hit = question.name.toLowerCase() === name && question.type === 'A';
  s.send(dnsPacket.encode({
    id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (hit ? 0 : 3),
    questions: [question], answers: hit ? [{ type: 'A', name: question.name, ttl: 60, data: answer }] : [],
  }), rinfo.port, rinfo.address);
});
s.bind(53, addr, () => console.log('ready'));
`;


/** Sends `queries` from inside `c` to `server`:53, one after another. */
export async function queryDns(c: NamespaceRunner, server: string, queries: Query[]): Promise<QueryResult[]> {
  const r = await c.exec(process.execPath, ['-e', QUERY_SCRIPT, DNS_PACKET, server, JSON.stringify(queries)], {
    timeoutMs: 5_000 + queries.length * 2_500,
  });
  assert.equal(r.code, 0, `query script in ${c.namespace} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as QueryResult[];
}

export const aRecords = (r: QueryResult): string[] => r.answers.filter((a) => a.type === 'A').map((a) => a.data);

/**
 * Starts the upstream server on `address`:53 inside `host`: it answers `name`
 * with `answer` and everything else NXDOMAIN, printing `asked TYPE NAME` per query.
 */
export async function startUpstreamDns(host: { spawn: NamespaceRunner['spawn'] }, address: string, name: string, answer: string): Promise<SpawnedProcess> {
  const p = host.spawn(process.execPath, ['-e', UPSTREAM_SCRIPT, DNS_PACKET, address, name, answer]);
  assert.ok(await pollUntil(() => p.output().includes('ready'), 10_000, 50), `upstream DNS server starts: ${p.output()}`);
  return p;
}
