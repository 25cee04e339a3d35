// Short fuzz pass over every decoder of outside bytes (the long one is
// bench/fuzz-bench.ts), the allocation bounds forged lengths must hit, and the
// inputs fuzzing found, kept as regressions.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { fuzzTargets, fuzzTarget, fuzzOne, type FuzzSuite } from '../support/fuzz-targets.js';
import { GobDecoder, GobDecodeError, decodeGobStream, encodeGobStream, type GobType } from '../../controlplane/mesh/gob/index.js';
import { FrameParser, WireDecodeError } from '../../controlplane/mesh/wire/index.js';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import { parseTargets } from '../../weaver/targets-store.js';
import { PeerListError, peerListOf, PEER_LIST_KEY } from '../../k8s/kube-peers.js';
import type { ConfigMapState } from '../../k8s/kube-port.js';

/** Seed printed on failure so a run can be repeated: WEAVE_FUZZ_SEED=<n>. */
const seed = Number(process.env.WEAVE_FUZZ_SEED ?? Date.now() % 1_000_000);
const PER_TARGET = 2_000;
/** Targets that cost ~1 ms or more per input (the API's in-memory inject, YAML, a file written per input) run fewer. */
const SLOW_TARGETS: Readonly<Record<string, number>> = { 'http-api': 300, 'policy-file': 300, 'state-short-id': 500 };

let suite: FuzzSuite | undefined;
after(async () => { await suite?.close(); });

test(`every decoder: ${PER_TARGET} fuzzed inputs each raise only typed errors (seed ${seed})`, async () => {
  suite = await fuzzTargets();
  const failures: string[] = [];
  for (const target of suite.targets) {
    const r = await fuzzTarget(target, SLOW_TARGETS[target.name] ?? PER_TARGET, seed);
    if (r.crashCount > 0) failures.push(`${r.name}: ${r.crashCount} crash(es), first: ${r.crashes[0]!.message}`);
  }
  assert.deepEqual(failures, [], `seed ${seed}`);
  assert.ok(suite.targets.length >= 30, 'every decoder has a target');
});

const emptyStructSlice: GobType = { kind: 'slice', elem: { kind: 'struct', name: 'E', fields: [{ name: 'A', type: { kind: 'uint' } }] } };

function heapAfterGc(): number {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

test('gob: a 10 MiB message of one-byte elements is refused before it becomes millions of objects', () => {
  // Ten million empty structs fit in a 10 MiB message; decoded they took ~900 MB and 17 s.
  const bytes = encodeGobStream([{ type: emptyStructSlice, value: Array.from({ length: 1_500_000 }, () => ({})) }]);
  const before = heapAfterGc();
  const started = performance.now();
  assert.throws(() => decodeGobStream(bytes), (err) => err instanceof GobDecodeError && /more than 1048576 values/.test(err.message));
  const ms = performance.now() - started;
  const grewMB = (process.memoryUsage().heapUsed - before) / 1e6;
  assert.ok(grewMB < 200, `heap grew ${grewMB.toFixed(0)} MB`);
  // The same cap holds for a smaller limit, and legitimate sizes under it decode.
  assert.equal((decodeGobStream(encodeGobStream([{ type: emptyStructSlice, value: Array.from({ length: 1000 }, () => ({})) }]))[0] as unknown[]).length, 1000);
  assert.throws(() => new GobDecoder({ maxValues: 100 }).push(encodeGobStream([{ type: emptyStructSlice, value: Array.from({ length: 200 }, () => ({})) }])), GobDecodeError);
  process.stdout.write(`# refused a 1.5M-element message after ${ms.toFixed(0)} ms, heap +${grewMB.toFixed(0)} MB\n`);
});

test('gob: a large message trickled in small chunks is joined once, not once per chunk', () => {
  const value = Array.from({ length: 150_000 }, (_, i) => ({ A: BigInt(i) }));
  const bytes = encodeGobStream([{ type: emptyStructSlice, value }]);
  const timeIt = (chunk: number): number => {
    const dec = new GobDecoder();
    const started = performance.now();
    let got = 0;
    for (let i = 0; i < bytes.length; i += chunk) got += dec.push(bytes.subarray(i, i + chunk)).length;
    assert.equal(got, 1);
    return performance.now() - started;
  };
  const whole = Math.min(timeIt(bytes.length), timeIt(bytes.length));
  const trickled = Math.min(timeIt(512), timeIt(512));
  // Joining per chunk copied ~1 GB for this ~0.6 MB message (quadratic); now it is one copy.
  assert.ok(trickled < whole * 4 + 50, `${bytes.length} bytes in 512-byte chunks took ${trickled.toFixed(0)} ms vs ${whole.toFixed(0)} ms whole`);
});

test('gob and framing: forged lengths up to 2^64 are refused without allocating them', () => {
  const before = heapAfterGc();
  for (const forged of [[0xfc, 0x7f, 0xff, 0xff, 0xff], [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xfc, 0x00, 0xa0, 0x00, 0x01]]) {
    assert.throws(() => new GobDecoder().push(Uint8Array.from(forged)), /exceeds the 10485760-byte limit/);
  }
  // A byte string claiming 2^31 bytes inside a small message.
  assert.throws(() => decodeGobStream(Uint8Array.from([0x09, 0x0c, 0x00, 0xfc, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00])), GobDecodeError);
  for (const len of [0x80000000, 0xffffffff, 10 * 1024 * 1024 + 1]) {
    const p = new FrameParser();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, len);
    assert.throws(() => p.push(header), WireDecodeError);
    assert.ok(p.pendingBytes <= 4);
  }
  const grewMB = (process.memoryUsage().heapUsed - before) / 1e6;
  assert.ok(grewMB < 16, `heap grew ${grewMB.toFixed(1)} MB`);
});

test('found by fuzzing: a DNS label holding a dot is answered FORMERR, not with a malformed reply', async () => {
  const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
  const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0' });
  // Labels ",\x03." and "\x07\x01\x1d\xb2web" then weave.local: the decoder joins them into a name with an empty label.
  const query = Buffer.from('000701000001000000000001032c032e0707011db2776562057765617665056c6f63616c00000100010000291000000000000000', 'hex');
  const reply = await server.handle(query, 'udp');
  assert.ok(reply);
  const decoded = dnsPacket.decode(reply);
  assert.equal((decoded.flags ?? 0) & 0xf, 1, 'rcode FORMERR');
  assert.equal(server.metrics.formerr, 1);
  suite ??= await fuzzTargets();
  assert.equal(await fuzzOne(suite.targets.find((t) => t.name === 'dns-query')!, query), undefined);
});

test('a damaged peers file names the file and the remedy', () => {
  assert.throws(() => parseTargets('["10.0.0.2", ', '/var/lib/weave/peers'),
    /^Error: \/var\/lib\/weave\/peers: not valid JSON \(.*\); delete the file to start with no persisted peers$/);
  assert.throws(() => parseTargets('{"a":1}', '/x/peers'), /\/x\/peers: expected a JSON array of peer strings/);
  assert.deepEqual(parseTargets('["a","b:1"]', '/x'), ['a', 'b:1']);
});

/** 2^31 as the encodings of lengths and counts write it: gob's unsigned, u32 and u16 big-endian (the largest a u16 holds). */
const FORGED_LENGTHS = [[0xfc, 0x80, 0x00, 0x00, 0x00], [0x80, 0x00, 0x00, 0x00], [0xff, 0xff]];

test('every length-prefixed format: 2^31 written at any position is refused without allocating it', async () => {
  suite ??= await fuzzTargets();
  const formats = suite.targets.filter((t) => t.lengthPrefixed);
  const names = formats.map((t) => t.name);
  for (const required of ['framing', 'gob-stream', 'handshake-stream', 'topology', 'ipam-gossip', 'ipam-unicast', 'dns-gossip', 'sleeve-datagram', 'dns-query']) {
    assert.ok(names.includes(required), `${required} is checked`);
  }
  const failures: string[] = [];
  let inputs = 0;
  let slowest = 0;
  const before = heapAfterGc();
  let peak = process.memoryUsage().rss;
  for (const target of formats) {
    const { seeds, input } = target.lengthPrefixed!;
    for (const seed of seeds) {
      for (let at = 0; at < seed.length; at++) {
        for (const forged of FORGED_LENGTHS) {
          const bytes = Uint8Array.from(seed);
          bytes.set(forged.slice(0, bytes.length - at), at);
          const started = performance.now();
          const crash = await fuzzOne(target, input(bytes));
          slowest = Math.max(slowest, performance.now() - started);
          peak = Math.max(peak, process.memoryUsage().rss);
          inputs++;
          if (crash && failures.length < 5) failures.push(crash.message);
        }
      }
    }
  }
  const grewMB = (process.memoryUsage().heapUsed - before) / 1e6;
  process.stdout.write(`# ${inputs} forged inputs over ${formats.length} formats: slowest ${slowest.toFixed(0)} ms, heap +${grewMB.toFixed(0)} MB, peak RSS ${(peak / 1e6).toFixed(0)} MB\n`);
  assert.deepEqual(failures, []);
  // A forged length that was believed would allocate 2 GB (or take seconds to fill).
  assert.ok(peak < 1.5e9, `peak RSS ${(peak / 1e6).toFixed(0)} MB`);
  assert.ok(grewMB < 64, `heap grew ${grewMB.toFixed(0)} MB`);
  assert.ok(slowest < 1_000, `one forged input took ${slowest.toFixed(0)} ms`);
});

test('found by fuzzing: a peer list annotation of JSON null names the ConfigMap instead of a TypeError', () => {
  const state = (text: string): ConfigMapState => ({ annotations: { [PEER_LIST_KEY]: text }, resourceVersion: '1' });
  for (const text of ['null', '7', '[]', '{"Peers": ', '"x"']) {
    assert.throws(() => peerListOf(state(text)), (err) => err instanceof PeerListError && /ConfigMap kube-system\/weave-net/.test(err.message), text);
  }
  assert.deepEqual(peerListOf(state('{"Peers":[null,7,{"PeerName":"a","NodeName":"n"}]}')).Peers, [{ PeerName: 'a', NodeName: 'n' }]);
});

test('found by fuzzing: a DNS query costs the same with 100,000 names in the table as with 100', async () => {
  // The fuzzer's DNS queries slowed to 5/s after its gossip target had filled the table:
  // every lookup copied and sorted all entries.
  const perQueryMs = async (names: number): Promise<number> => {
    const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
    for (let i = 0; i < names; i++) ns.add(`host${i}.weave.local.`, `c${i}`, 0x0a000000 + i);
    const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0' });
    const query = Buffer.from(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'host7.weave.local' }] }));
    const reverse = Buffer.from(dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'PTR', name: '7.0.0.10.in-addr.arpa' }] }));
    const rounds = 200;
    const started = performance.now();
    for (let i = 0; i < rounds; i++) {
      assert.equal(dnsPacket.decode((await server.handle(query, 'udp'))!).answers?.length, 1);
      assert.equal(dnsPacket.decode((await server.handle(reverse, 'udp'))!).answers?.length, 1);
    }
    return (performance.now() - started) / rounds;
  };
  const small = Math.min(await perQueryMs(100), await perQueryMs(100));
  const large = await perQueryMs(100_000);
  process.stdout.write(`# A+PTR query: ${small.toFixed(3)} ms with 100 names, ${large.toFixed(3)} ms with 100,000\n`);
  // Sorting the table per query made this ratio several thousand.
  assert.ok(large < small * 20 + 1, `${large.toFixed(2)} ms per query with 100,000 names vs ${small.toFixed(2)} ms with 100`);
});
