// The sleeve's injection coalescer: in-order TCP segments of one flow become
// one frame with a TCPv4 GSO virtio-net header; anything else passes through
// byte for byte behind a zero header. Sleeve decryption (openInto) matches open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InjectCoalescer, VNET_HDR_SIZE } from '../../dataplane/sleeve/inject-coalescer.js';
import { SleeveOpener, SleeveSealer } from '../../crypto/sleeve-crypto.js';

function checksum(b: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i < end; i += 2) acc += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return acc;
}

/** An Ethernet/IPv4/TCP segment with timestamps-like options and `payload` bytes of `fill`. */
function segment(seq: number, payload: number, fill: number, flags = 0x10, dport = 5201): Uint8Array {
  const thl = 32;
  const f = new Uint8Array(14 + 20 + thl + payload);
  f.set([2, 0x73, 0, 0, 0, 2, 2, 0x73, 0, 0, 0, 1, 0x08, 0x00]);
  const ip = 14;
  const total = 20 + thl + payload;
  f.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 32, 0, 1, 10, 32, 0, 2], ip);
  const sum = 0xffff - checksum(f, ip, ip + 20);
  f[ip + 10] = sum >> 8;
  f[ip + 11] = sum & 0xff;
  const tcp = ip + 20;
  const v = new DataView(f.buffer);
  v.setUint16(tcp, 40000);
  v.setUint16(tcp + 2, dport);
  v.setUint32(tcp + 4, seq >>> 0);
  v.setUint32(tcp + 8, 777);
  f[tcp + 12] = (thl / 4) << 4;
  f[tcp + 13] = flags;
  v.setUint16(tcp + 14, 502);
  f.set([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7], tcp + 20);
  f.fill(fill, tcp + thl);
  return f;
}

function run(frames: Uint8Array[]): { out: Uint8Array[]; merged: number } {
  const out: Uint8Array[] = [];
  let slot = new Uint8Array(65536);
  const c = new InjectCoalescer((len) => out.push(slot.slice(0, len)));
  for (const f of frames) c.add(f, () => (slot = new Uint8Array(65536)));
  c.finish();
  return { out, merged: c.merged };
}

test('in-order full-size segments of one flow merge into one GSO frame', () => {
  const mss = 1324;
  const segs = [segment(1000, mss, 1), segment(1000 + mss, mss, 2), segment(1000 + 2 * mss, 500, 3, 0x18)];
  const { out, merged } = run(segs);
  assert.equal(out.length, 1);
  assert.equal(merged, 2);
  const m = out[0]!;
  const v = new DataView(m.buffer, m.byteOffset);
  assert.deepEqual([v.getUint8(0), v.getUint8(1)], [1, 1], 'NEEDS_CSUM, GSO_TCPV4');
  assert.equal(v.getUint16(2, true), 14 + 20 + 32, 'hdr_len');
  assert.equal(v.getUint16(4, true), mss, 'gso_size');
  assert.deepEqual([v.getUint16(6, true), v.getUint16(8, true)], [34, 16], 'csum_start, csum_offset');
  const f = m.subarray(VNET_HDR_SIZE);
  assert.equal(f.length, 14 + 20 + 32 + 2 * mss + 500);
  assert.equal((f[16]! << 8) | f[17]!, f.length - 14, 'IP total length');
  assert.equal(checksum(f, 14, 34), 0xffff, 'IP header checksum is valid');
  assert.equal(f[34 + 13], 0x18, 'PSH of the last segment carried over');
  const tcpLen = f.length - 34;
  assert.equal((f[34 + 16]! << 8) | f[34 + 17]!, checksum(f, 26, 34, 6 + tcpLen), 'pseudo-header sum for CHECKSUM_PARTIAL');
  const payload = f.subarray(66);
  assert.deepEqual([payload[0], payload[mss - 1], payload[mss], payload[2 * mss], payload.at(-1)], [1, 1, 2, 3, 3]);
});

test('gaps, other flows, short segments and non-TCP frames are not merged and pass unchanged', () => {
  const mss = 1000;
  const arp = new Uint8Array(60).fill(0xee);
  arp[12] = 0x08;
  arp[13] = 0x06;
  const frames = [
    segment(0, mss, 1), segment(2 * mss, mss, 2), // gap
    segment(3 * mss, mss, 3, 0x10, 80), // other flow
    segment(4 * mss, 10, 4, 0x18), // PSH: ends a run before it starts
    segment(4 * mss + 10, 10, 5),
    segment(9000, mss, 6, 0x11), // FIN: never merged
    arp,
  ];
  const { out, merged } = run(frames);
  assert.equal(merged, 0);
  assert.equal(out.length, frames.length);
  out.forEach((o, i) => {
    assert.deepEqual([...o.subarray(0, VNET_HDR_SIZE)], new Array(VNET_HDR_SIZE).fill(0), `frame ${i} has a zero header`);
    assert.deepEqual(o.subarray(VNET_HDR_SIZE), frames[i], `frame ${i} is unchanged`);
  });
});

test('a shorter segment ends a run: the next one starts a new frame', () => {
  const { out, merged } = run([segment(4000, 500, 1), segment(4500, 400, 2), segment(4900, 400, 3)]);
  assert.equal(merged, 1);
  assert.equal(out.length, 2);
  assert.equal(out[0]!.length, VNET_HDR_SIZE + 14 + 20 + 32 + 900);
  assert.deepEqual([...out[1]!.subarray(0, VNET_HDR_SIZE)], new Array(VNET_HDR_SIZE).fill(0));
});

test('openInto decrypts like open, without allocating a result per datagram', () => {
  const key = new Uint8Array(32).fill(9);
  const sealer = new SleeveSealer(key, true);
  const opener = new SleeveOpener(key, true);
  const plain = Uint8Array.from({ length: 1400 }, (_, i) => i & 0xff);
  const out = new Uint8Array(2000);
  for (const df of [true, false, true]) {
    const body = sealer.seal(plain, df);
    const len = opener.openInto(body, out);
    assert.equal(len, plain.length);
    assert.deepEqual(out.subarray(0, len), plain);
    assert.equal(opener.lastDF, df);
    assert.throws(() => opener.openInto(body, out), /already received/);
  }
});
