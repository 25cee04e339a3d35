// The weaveDNS hot path must be invisible to clients: the name table's
// incremental indexes answer as a scan of the table would, and the byte-level
// answerer (fast-answer.ts) replies exactly as the dns-packet path does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket, { type Packet } from 'dns-packet';
import { answerLocally } from '../../controlplane/dns/answer.js';
import { NameTable, type Entry } from '../../controlplane/dns/entries.js';
import { FastAnswerer } from '../../controlplane/dns/fast-answer.js';
import { Nameserver } from '../../controlplane/dns/nameserver.js';

/** A small deterministic PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function scanLookup(t: NameTable, hostname: string): Entry[] {
  return t.live().filter((e) => e.hostname.toLowerCase() === hostname.toLowerCase());
}

test('name and address indexes agree with a scan of the table through adds, tombstones, merges and removals', () => {
  const rand = prng(23);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = ['a.weave.local.', 'A.Weave.Local.', 'b.weave.local.', 'c.weave.local.', 'ü.weave.local.', 'B.WEAVE.LOCAL.'];
  const origins = [1n, 2n, 3n];
  const addrs = [1, 2, 3, 4];
  const t = new NameTable();
  let now = 1000;
  for (let step = 0; step < 3000; step++) {
    const r = rand();
    if (r < 0.35) {
      t.add(pick(names), pick(['c1', 'c2', 'c3']), 1n, pick(addrs));
    } else if (r < 0.55) {
      const cid = pick(['c1', 'c2', 'c3']);
      t.tombstone(1n, now++, (e) => e.containerId === cid);
    } else if (r < 0.85) {
      t.merge([{
        containerId: pick(['c1', 'c2', 'x']), origin: pick(origins), addr: pick(addrs), hostname: pick(names),
        version: Math.floor(rand() * 4), tombstone: rand() < 0.5 ? 0 : now - Math.floor(rand() * 100),
      }]);
    } else if (r < 0.93) {
      t.purgeTombstones(now, 50);
    } else {
      t.removeOrigin(pick([2n, 3n]));
    }
    // A lookup between changes caches the answer, which the next change must invalidate.
    const name = pick(names);
    assert.deepEqual(t.lookup(name), scanLookup(t, name), `lookup ${name} at step ${step}`);
    const addr = pick(addrs);
    assert.deepEqual(t.reverseLookup(addr), t.live().filter((e) => e.addr === addr), `reverse ${addr} at step ${step}`);
  }
  assert.equal(t.lookup('nobody.weave.local.').length, 0);
});

const TTL = 7;
const DOMAIN = 'weave.local.';

function table(): Nameserver {
  const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
  ns.add('web.weave.local.', 'c1', 0x0a200001);
  ns.add('Mixed.Weave.Local.', 'x1', 0x0a200021);
  for (let i = 0; i < 4; i++) ns.add('multi.weave.local.', `m${i}`, 0x0a200011 + i);
  for (let i = 0; i < 50; i++) ns.add('big.weave.local.', `b${i}`, 0x0a210000 + i);
  ns.add('gone.weave.local.', 'g1', 0x0a200031);
  ns.delete({ containerId: 'g1' });
  ns.add('web.other.domain.', 'o1', 0x0a200041);
  ns.add('bad name.weave.local.', 'z1', 0x0a200051);
  return ns;
}

/** The reply of the general (dns-packet) path for a local answer, as server.ts builds it. */
function generalReply(ns: Nameserver, msg: Buffer): Buffer | undefined {
  let query;
  try {
    query = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  const local = answerLocally(query, ns, { domain: DOMAIN, ttl: TTL });
  if (!local) return undefined;
  const edns = (query.additionals ?? []).some((rr) => rr.type === 'OPT');
  const reply: Packet = edns
    ? { ...local, additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }
    : local;
  return dnsPacket.encode(reply);
}

/** Replies compared with the (shuffled) A answers in a fixed order. */
function canonical(reply: Buffer): unknown {
  const p = dnsPacket.decode(reply);
  const data = (a: object): string => ('data' in a ? String(a.data) : '');
  return { ...p, answers: [...(p.answers ?? [])].sort((a, b) => data(a).localeCompare(data(b))) };
}

function assertSameReply(fast: Buffer, general: Buffer | undefined, what: string): void {
  assert.ok(general, `${what}: the general path answers locally too`);
  const answers = fast.readUInt16BE(6);
  if (answers <= 1) assert.deepEqual(fast, general, what);
  else assert.deepEqual(canonical(fast), canonical(general), what);
}

function q(name: string, type: string, opts: { edns?: number; rd?: boolean } = {}): Buffer {
  const p: Packet = { id: 0x1234, type: 'query', flags: opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name, class: 'IN' }] };
  if (opts.edns) p.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
  return dnsPacket.encode(p);
}

test('names and addresses asked for but not in the table cache nothing: 100,000 misses leave the cache at the live entries', () => {
  const t = new NameTable();
  t.add('a.weave.local.', 'c1', 1n, 0x0a200001);
  t.add('b.weave.local.', 'c2', 1n, 0x0a200002);
  assert.equal(t.lookup('A.weave.local.').length, 1);
  assert.equal(t.reverseLookup(0x0a200002).length, 1);
  const cachedForHits = t.cachedAnswers;
  assert.equal(cachedForHits, 2, 'a name and an address looked up and found are cached');
  for (let i = 0; i < 50_000; i++) {
    assert.equal(t.lookup(`absent-${i}.weave.local.`).length, 0);
    assert.equal(t.reverseLookup(0x0b000000 + i).length, 0);
  }
  assert.equal(t.cachedAnswers, cachedForHits, 'misses are answered without being cached');
  // A name removed after it was looked up leaves the cache with it.
  t.tombstone(1n, 1_700_000_000, (e) => e.containerId === 'c1');
  assert.equal(t.lookup('a.weave.local.').length, 0);
  assert.ok(t.cachedAnswers <= cachedForHits);
});

test('the byte-level answerer replies exactly as the dns-packet path, and leaves what it cannot to it', () => {
  const ns = table();
  const fast = new FastAnswerer(ns, { domain: DOMAIN, ttl: TTL });
  const handled = [
    q('web.weave.local', 'A'), q('WEB.Weave.LOCAL', 'A', { rd: false }), q('web', 'A'), q('mixed.weave.local', 'A'),
    q('multi.weave.local', 'A'), q('multi.weave.local', 'A', { edns: 1232 }), q('web.weave.local', 'AAAA'),
    q('nobody.weave.local', 'A'), q('gone.weave.local', 'A'), q('nobody', 'AAAA'), q('weave.local', 'A'),
    q('1.0.32.10.in-addr.arpa', 'PTR'), q('33.0.32.10.IN-ADDR.ARPA', 'PTR', { edns: 4096 }),
    q('big.weave.local', 'A', { edns: 4096 }),
  ];
  for (const msg of handled) {
    const reply = fast.answer(msg, 'udp');
    const what = dnsPacket.decode(msg).questions![0]!.name;
    assert.ok(reply, `${what}: answered on the hot path`);
    assertSameReply(reply, generalReply(ns, msg), what);
  }
  const left = [
    q('www.example.com', 'A'), // not ours: forwarded
    q('web.weave.local', 'MX'), // unusual type
    q('9.9.9.9.in-addr.arpa', 'PTR'), // unknown address: forwarded
    q('65.0.32.10.in-addr.arpa', 'PTR'), // hostname "web.other.domain." is fine...
    q('81.0.32.10.in-addr.arpa', 'PTR'), // ...but "bad name" cannot be written as plain labels
    q('big.weave.local', 'A'), // needs truncating to 512 bytes
    q('web.weave.local', 'A', { edns: 0 }).subarray(0, 20), // cut short
    Buffer.concat([q('web.weave.local', 'A'), Buffer.from([0])]), // trailing garbage
  ];
  assert.ok(fast.answer(left[3]!, 'udp'), 'a PTR to a name in another domain is answered');
  for (const [i, msg] of left.entries()) {
    if (i === 3) continue;
    assert.equal(fast.answer(msg, 'udp'), undefined, `query ${i} is left to the general path`);
  }
  assert.ok(fast.answer(q('big.weave.local', 'A'), 'tcp'), 'over TCP nothing needs truncating');
});

test('fuzz: whatever the byte-level answerer answers, the dns-packet path answers the same', () => {
  const ns = table();
  const fast = new FastAnswerer(ns, { domain: DOMAIN, ttl: TTL });
  const rand = prng(7);
  const seeds = [
    q('web.weave.local', 'A'), q('multi', 'A', { edns: 600 }), q('1.0.32.10.in-addr.arpa', 'PTR'), q('big.weave.local', 'AAAA'),
  ];
  let answered = 0;
  for (let i = 0; i < 20_000; i++) {
    const msg = Buffer.from(seeds[i % seeds.length]!);
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++) {
      const at = Math.floor(rand() * msg.length);
      msg[at] = rand() < 0.5 ? Math.floor(rand() * 256) : msg[at]! ^ (1 << Math.floor(rand() * 8));
    }
    const reply = fast.answer(msg, 'udp');
    if (!reply) continue;
    answered++;
    assertSameReply(reply, generalReply(ns, msg), `mutant ${msg.toString('hex')}`);
  }
  assert.ok(answered > 1000, `enough mutants were answered on the hot path to mean something (${answered})`);
});
