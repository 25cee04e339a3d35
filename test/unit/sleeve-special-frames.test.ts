// Router-generated sleeve frames (spec §5.4) and sleeve control messages (spec §2.4, §5.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  classifySpecialFrame, fragmentationTestFrame, heartbeatFrame, mtuTestFrame, pmtuDiscoveryFrame,
} from '../../dataplane/sleeve/special-frames.js';
import { decodeSleeveControl, encodeSleeveControl } from '../../dataplane/sleeve/control-messages.js';
import { SleeveDecodeError } from '../../dataplane/sleeve/frame-codec.js';
import { FIRST_HEARTBEAT_RETRY_MS, SleeveConnection, type ConnectionEvents } from '../../dataplane/sleeve/connection.js';
import { OVERLAY_HEARTBEAT_FAST_MS, OVERLAY_HEARTBEAT_SLOW_MS } from '../../controlplane/well-known.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('heartbeat: 14 zero bytes then the connUID, u64 BE; classified back', () => {
  const hb = heartbeatFrame(0x0123456789abcdefn);
  assert.equal(hex(hb), '00'.repeat(14) + '0123456789abcdef');
  assert.deepEqual(classifySpecialFrame(hb), { kind: 'heartbeat', connUID: 0x0123456789abcdefn });
  assert.deepEqual(classifySpecialFrame(heartbeatFrame((1n << 64n) - 1n)), { kind: 'heartbeat', connUID: (1n << 64n) - 1n });
  assert.throws(() => heartbeatFrame(1n << 64n), /not a u64/);
  assert.throws(() => heartbeatFrame(-1n), /not a u64/);
});

test('fragmentation test is 60001 zero bytes; a non-zero payload is reported as such', () => {
  const f = fragmentationTestFrame();
  assert.equal(f.length, 60001);
  assert.deepEqual(classifySpecialFrame(f), { kind: 'fragmentation-test', allZero: true });
  f[30000] = 1;
  assert.deepEqual(classifySpecialFrame(f), { kind: 'fragmentation-test', allZero: false });
});

test('PMTU discovery (60000) and MTU tests (mtu + 14) classify as MTU tests of length - 14', () => {
  assert.deepEqual(classifySpecialFrame(pmtuDiscoveryFrame()), { kind: 'mtu-test', mtu: 59986 });
  const t = mtuTestFrame(1438);
  assert.equal(t.length, 1452);
  assert.ok(t.every((b) => b === 0));
  assert.deepEqual(classifySpecialFrame(t), { kind: 'mtu-test', mtu: 1438 });
  assert.throws(() => mtuTestFrame(8), /no valid test frame length/, 'length 22 would read as a heartbeat');
  assert.throws(() => mtuTestFrame(59987), /no valid test frame length/, 'length 60001 would read as a fragmentation test');
  assert.throws(() => mtuTestFrame(65535), /no valid test frame length/);
});

test('ordinary frames are not special', () => {
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  assert.equal(classifySpecialFrame(arp), undefined);
  const oneBit = new Uint8Array(22);
  oneBit[13] = 1; // a non-zero EtherType/length
  assert.equal(classifySpecialFrame(oneBit), undefined);
  assert.equal(classifySpecialFrame(new Uint8Array(13)), undefined, 'shorter than an Ethernet header');
});

test('fuzz: classifying never throws', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (bytes, zeroHeader) => {
    if (zeroHeader) bytes.fill(0, 0, 14);
    const c = classifySpecialFrame(bytes);
    if (bytes.length >= 14 && zeroHeader) assert.notEqual(c, undefined);
  }), { numRuns: 1000 });
});

test('control messages: golden sub-tag bytes and round trips', () => {
  assert.equal(hex(encodeSleeveControl({ type: 'ConnectionEstablished' })), '01');
  assert.equal(hex(encodeSleeveControl({ type: 'FragmentationReceived' })), '02');
  assert.equal(hex(encodeSleeveControl({ type: 'PMTUVerified', mtu: 1438 })), '03059e');
  for (const m of [{ type: 'ConnectionEstablished' }, { type: 'FragmentationReceived' }, { type: 'PMTUVerified', mtu: 65535 }] as const) {
    assert.deepEqual(decodeSleeveControl(encodeSleeveControl(m)), m);
  }
  assert.throws(() => encodeSleeveControl({ type: 'PMTUVerified', mtu: 65536 }), /not a u16/);
});

test('control messages: malformed input gives typed errors', () => {
  const kindOf = (b: Uint8Array): string => {
    try { decodeSleeveControl(b); return 'ok'; } catch (e) { assert.ok(e instanceof SleeveDecodeError); return e.kind; }
  };
  assert.equal(kindOf(new Uint8Array(0)), 'control-too-short');
  assert.equal(kindOf(Uint8Array.of(3, 5)), 'control-too-short');
  assert.equal(kindOf(Uint8Array.of(9)), 'unknown-control-tag');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 8 }), (b) => { kindOf(b); }), { numRuns: 1000 });
});

test('sleeve heartbeats: retried at gaps doubling from 25 ms until the remote is heard, then the fast interval; slow once established', () => {
  const controls: number[] = [];
  const events: ConnectionEvents = {
    sendControl: (subTag) => controls.push(subTag), established: () => undefined, failed: () => undefined, changed: () => undefined,
    drop: () => undefined, deliver: () => undefined, connectDF: () => undefined,
  };
  const connUID = 0x77n;
  const conn = new SleeveConnection({
    t: 'add', id: 1, remoteName: 0x0a0b0c0d0e0fn, remoteIp: '192.0.2.2', remotePort: 6783, outbound: true, connUID,
    dfFd: -1, counters: new SharedArrayBuffer(16),
  }, 0x010203040506n, events, 0);
  const sentAt: number[] = [];
  let now = 0;
  const runUntil = (end: number): void => {
    while (now <= end) {
      const next = conn.tick(now);
      for (const f of conn.dfQueue.splice(0)) if (classifySpecialFrame(f.frame)?.kind === 'heartbeat') sentAt.push(now);
      now = Math.max(now + 1, Math.min(next, end + 1));
    }
  };
  runUntil(1000);
  const r = FIRST_HEARTBEAT_RETRY_MS;
  assert.deepEqual(sentAt, [0, r, 3 * r, 7 * r, 15 * r, 31 * r, 31 * r + OVERLAY_HEARTBEAT_FAST_MS].filter((t) => t <= 1000));
  // The remote's heartbeat: from now on the fast interval (spec §5.5) until established.
  conn.handleSpecial({ kind: 'heartbeat', connUID }, { ip: '192.0.2.2', port: 6783 }, now);
  sentAt.length = 0;
  const heardAt = now;
  runUntil(heardAt + 2 * OVERLAY_HEARTBEAT_FAST_MS);
  assert.ok(sentAt.length >= 1 && sentAt.every((t, i) => i === 0 || t - sentAt[i - 1]! === OVERLAY_HEARTBEAT_FAST_MS), `fast interval after the remote was heard: ${sentAt.join(' ')}`);
  conn.handleControl(controls[0]!, new Uint8Array(0), now);
  assert.equal(conn.established, true);
  sentAt.length = 0;
  const establishedAt = now;
  runUntil(establishedAt + OVERLAY_HEARTBEAT_SLOW_MS);
  assert.deepEqual(sentAt, [establishedAt + OVERLAY_HEARTBEAT_SLOW_MS], 'the slow interval once established');
});
