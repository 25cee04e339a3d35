// Hostile clients against a real router on the control port: garbage is
// dropped at once, silent connections are closed at the 10 s header deadline,
// handshakes in progress are capped per source and in total (the excess is
// closed immediately), the router's memory does not follow the flood, and
// --conn-limit refuses connections beyond it after the handshake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustExec } from './lib/exec.js';
import { SLEEVE_PORT } from './sleeve-harness.js';
import { attachContainer, connectionsMatch, mustPing, mustWeave, pollUntil, pollWeave, sharedWeaveBed, weaverPid, type Host } from './lib/index.js';
import { MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_SOURCE } from '../../controlplane/mesh/index.js';

const testbed = sharedWeaveBed(3);

/** spec §1.2 header deadline, and the slack a loaded two-core machine needs on top. */
const HEADER_DEADLINE_MS = 10_000;
const SLACK_MS = 2_500;

/**
 * The hostile client, run inside a host namespace: opens `count` connections
 * from each source address, one after the other, sends nothing or garbage, and
 * prints when each was closed by the router (ms after it connected).
 */
const CLIENT = `
const net = require('node:net');
const [target, planText, giveUpMs] = process.argv.slice(2);
const plan = JSON.parse(planText);
const closes = [];
let open = 0;
(async () => {
  for (const { src, count, garbage } of plan) {
    for (let i = 0; i < count; i++) {
      await new Promise((resolve) => {
        const s = net.connect({ host: target, port: 6783, localAddress: src });
        let at = 0;
        s.on('connect', () => { at = Date.now(); open++; if (garbage) s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' + 'x'.repeat(400)); resolve(); });
        s.on('error', () => resolve());
        s.on('data', () => {});
        s.on('close', () => { if (at) { closes.push({ src, ms: Date.now() - at }); open--; } });
      });
    }
  }
  const deadline = Date.now() + Number(giveUpMs);
  while (open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(JSON.stringify({ closes, stillOpen: open }));
  process.exit(0);
})();
`;

interface ClientResult { closes: { src: string; ms: number }[]; stillOpen: number }

async function runClient(from: Host, target: Host, plan: { src: string; count: number; garbage?: boolean }[], giveUpMs: number): Promise<ClientResult> {
  const script = join(from.dir, 'hostile-client.cjs');
  writeFileSync(script, CLIENT);
  const r = await from.exec(process.execPath, [script, target.address, JSON.stringify(plan), String(giveUpMs)], { timeoutMs: giveUpMs + 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ClientResult;
}

function rssKiB(h: Host): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${weaverPid(h)}/status`, 'utf8'));
  return Number(m![1]);
}

test('garbage and silent connections are closed within their bounds; pending handshakes are capped', async () => {
  const bed = testbed();
  const [h1, h2] = [bed.host(1), bed.host(2)];
  await mustWeave(h1, ['launch', '--nickname', 'h1']);
  const rssBefore = rssKiB(h1);

  // 200 connections sending an HTTP request instead of the weave header: each dropped at once.
  const garbage = await runClient(h2, h1, [{ src: h2.address, count: 200, garbage: true }], 15_000);
  assert.equal(garbage.stillOpen, 0);
  assert.equal(garbage.closes.length, 200);
  const garbageMax = Math.max(...garbage.closes.map((c) => c.ms));
  assert.ok(garbageMax < 2_000, `slowest garbage connection closed after ${garbageMax} ms`);

  // Silent connections: one source over its cap, then enough sources to pass the total cap.
  const base = h2.address.split('.').slice(0, 3).join('.');
  const extra = Array.from({ length: Math.ceil(MAX_PENDING_HANDSHAKES / MAX_PENDING_HANDSHAKES_PER_SOURCE) }, (_, i) => `${base}.${100 + i}`);
  for (const a of extra) await mustExec('ip', ['-n', h2.namespace, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
  const overSource = 4;
  const plan = [
    { src: h2.address, count: MAX_PENDING_HANDSHAKES_PER_SOURCE + overSource },
    ...extra.map((src) => ({ src, count: MAX_PENDING_HANDSHAKES_PER_SOURCE })),
  ];
  const offered = plan.reduce((n, p) => n + p.count, 0);
  const silent = await runClient(h2, h1, plan, HEADER_DEADLINE_MS + SLACK_MS + 5_000);
  assert.equal(silent.stillOpen, 0, 'every silent connection was closed by the router');
  const refused = silent.closes.filter((c) => c.ms < 2_000);
  const timedOut = silent.closes.filter((c) => c.ms >= 2_000);
  assert.equal(refused.length, offered - MAX_PENDING_HANDSHAKES, `${offered} offered: the excess over the caps is closed at once`);
  assert.equal(refused.filter((c) => c.src === h2.address).length, overSource, 'the per-source cap');
  assert.equal(timedOut.length, MAX_PENDING_HANDSHAKES);
  const slowest = Math.max(...timedOut.map((c) => c.ms));
  const fastest = Math.min(...timedOut.map((c) => c.ms));
  assert.ok(fastest >= HEADER_DEADLINE_MS - 500 && slowest <= HEADER_DEADLINE_MS + SLACK_MS,
    `silent connections closed after ${fastest}..${slowest} ms (header deadline ${HEADER_DEADLINE_MS} ms)`);

  const rssAfter = rssKiB(h1);
  assert.ok(rssAfter < rssBefore + 50 * 1024, `router RSS ${rssBefore} KiB before, ${rssAfter} KiB after ${200 + offered} hostile connections`);
  process.stdout.write(`# garbage closed within ${garbageMax} ms; ${refused.length} over the caps closed within `
    + `${Math.max(...refused.map((c) => c.ms))} ms; ${timedOut.length} silent closed after ${fastest}..${slowest} ms; `
    + `router RSS ${(rssBefore / 1024).toFixed(0)} -> ${(rssAfter / 1024).toFixed(0)} MiB\n`);

  // The router still takes a real peer once the flood is over.
  const started = Date.now();
  await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
  await connectionsMatch(h1, /established .*\(h2\)/);
  const joinMs = Date.now() - started;
  assert.ok(joinMs < 15_000, `a real peer joined ${joinMs} ms after the flood`);
  await mustWeave(h2, ['stop']);
  await mustWeave(h1, ['stop']);
});

test('--conn-limit refuses a connection beyond it after the handshake, with the reason in status', async () => {
  const bed = testbed();
  const [h1, h2, h3] = [bed.host(1), bed.host(2), bed.host(3)];
  await mustWeave(h1, ['launch', '--nickname', 'h1', '--conn-limit', '1']);
  await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
  await connectionsMatch(h1, /established .*\(h2\)/);
  await mustWeave(h3, ['launch', '--nickname', 'h3', h1.address]);
  const status = await pollWeave(h1, ['status', 'connections'], /Connection limit reached \(1\)/);
  assert.equal(status.split('\n').filter((l) => / established /.test(l)).length, 1, status);
  for (const h of [h3, h2, h1]) await mustWeave(h, ['stop']);
});

/** Payloads of the UDP datagrams in an Ethernet pcap (classic format, IPv4) from `src` to `port`. */
function udpPayloads(pcap: Buffer, src: string, port: number): Buffer[] {
  const srcBytes = Buffer.from(src.split('.').map(Number));
  const out: Buffer[] = [];
  let at = 24;
  while (at + 16 <= pcap.length) {
    const captured = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[14 + 9] !== 17 || !frame.subarray(14 + 12, 14 + 16).equals(srcBytes) || frame.readUInt16BE(14 + ihl + 2) !== port) continue;
    const udpLen = frame.readUInt16BE(14 + ihl + 4);
    out.push(Buffer.from(frame.subarray(14 + ihl + 8, 14 + ihl + udpLen)));
  }
  return out;
}

/** Sends each hex-encoded datagram in `file` to the sleeve port of `to`, from inside `from`. */
const SENDER = `
const dgram = require('node:dgram'); const fs = require('node:fs');
const [file, target, port] = process.argv.slice(2);
const datagrams = fs.readFileSync(file, 'utf8').split('\\n').filter((l) => l !== '' || false).map((l) => Buffer.from(l === '-' ? '' : l, 'hex'));
const s = dgram.createSocket('udp4');
(async () => {
  for (const d of datagrams) { await new Promise((r) => s.send(d, Number(port), target, r)); await new Promise((r) => setTimeout(r, 2)); }
  s.close();
})();
`;

async function sendDatagrams(from: Host, to: Host, datagrams: Buffer[], label: string): Promise<void> {
  const file = join(from.dir, `${label}.hex`);
  writeFileSync(file, datagrams.map((d) => (d.length === 0 ? '-' : d.toString('hex'))).join('\n') + '\n');
  const script = join(from.dir, 'sender.cjs');
  writeFileSync(script, SENDER);
  const r = await from.exec(process.execPath, [script, file, to.address, String(SLEEVE_PORT)]);
  assert.equal(r.code, 0, r.stderr);
}

async function drops(h: Host): Promise<Record<string, number>> {
  const out = await mustWeave(h, ['report', '-f', '{{json .Router.Datapath.Drops}}']);
  return JSON.parse(out) as Record<string, number>;
}

test('replayed, forged and truncated sleeve datagrams are dropped and counted; the encrypted link carries on', async () => {
  const bed = testbed();
  const [h1, h2] = [bed.host(1), bed.host(2)];
  const flags = ['--password', 'hostile-test-secret', '--no-fastdp'];
  await mustWeave(h1, ['launch', '--nickname', 'h1', ...flags]);
  await mustWeave(h2, ['launch', '--nickname', 'h2', ...flags, h1.address]);
  await connectionsMatch(h1, /established encrypted\s+sleeve \S+\(h2\) encrypted=true/);
  const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
  await mustPing(c2, '10.32.0.1', 'before the capture');

  // Capture what h2 sends h1 while the containers talk, then send it all again.
  const pcap = join(h1.dir, 'sleeve.pcap');
  const dump = h1.spawn('tcpdump', ['-i', 'eth0', '-U', '-w', pcap, 'udp']);
  // Listening is reported once the capture is active (the file header is written before that).
  assert.ok(await pollUntil(() => dump.output().includes('listening on'), 5_000, 20), `tcpdump did not start: ${dump.output()}`);
  for (let i = 0; i < 10; i++) assert.ok(await c2.ping('10.32.0.1', { count: 1, waitSeconds: 1 }), `ping ${i} during the capture`);
  // -U writes each packet as it comes: wait until the pings' datagrams are in the file.
  const fromH2 = (): Buffer[] => udpPayloads(readFileSync(pcap), h2.address, SLEEVE_PORT);
  assert.ok(await pollUntil(() => fromH2().length >= 10, 5_000, 50), `${fromH2().length} datagrams captured; tcpdump: ${dump.output()}`);
  dump.kill('SIGINT');
  await dump.exited;
  const captured = fromH2();

  const before = await drops(h1);
  await sendDatagrams(h2, h1, captured, 'replay');
  // A flipped byte in the sealed body of each: authentication fails.
  const forged = captured.map((d) => { const f = Buffer.from(d); f[f.length - 1]! ^= 0x55; return f; });
  await sendDatagrams(h2, h1, forged, 'forged');
  // Too short to name a sender, and noise naming no known peer.
  const noise = [Buffer.alloc(0), Buffer.alloc(3, 1), Buffer.alloc(5, 2), ...Array.from({ length: 20 }, (_, i) => Buffer.alloc(100 + i, 0x77))];
  await sendDatagrams(h2, h1, noise, 'noise');

  const counted = (after: Record<string, number>, reason: string): number => (after[reason] ?? 0) - (before[reason] ?? 0);
  let after = before;
  await pollUntil(async () => {
    after = await drops(h1);
    // The noise is sent last: wait for its counts too, not only the replays'.
    return counted(after, 'replayed') >= captured.length && counted(after, 'authentication-failed') >= forged.length
      && counted(after, 'datagram-too-short') >= 3 && counted(after, 'unknown-sender') >= 20;
  }, 10_000, 200);
  assert.equal(counted(after, 'replayed'), captured.length, `drops ${JSON.stringify(after)}`);
  assert.equal(counted(after, 'authentication-failed'), forged.length, `drops ${JSON.stringify(after)}`);
  assert.ok(counted(after, 'datagram-too-short') >= 3, `drops ${JSON.stringify(after)}`);
  assert.ok(counted(after, 'unknown-sender') >= 20, `drops ${JSON.stringify(after)}`);
  process.stdout.write(`# ${captured.length} replayed, ${forged.length} forged, ${noise.length} noise datagrams: drops ${JSON.stringify(after)}\n`);

  await mustPing(c1, '10.32.0.2', 'after the hostile datagrams', { timeoutMs: 5_000 });
  await connectionsMatch(h1, /established encrypted\s+sleeve \S+\(h2\) encrypted=true/);
  await mustWeave(h2, ['stop']);
  await mustWeave(h1, ['stop']);
});
