// Encodings shared by the control plane and the BPF programs: pure values, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import {
  COUNTER_NAMES, checkShortId, formatMac, hostU32ToIpv4, ipv4ToHostU32, macKey, parseVni, vniFor,
} from '../../dataplane/bpf/layout.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('VNI layout matches the spec example: src 0x123, dst 0x456 -> VXLAN bytes 45 61 23 (spec §6.2)', () => {
  const vni = vniFor(0x123, 0x456);
  assert.equal(vni, 0x456123);
  const hdr = Buffer.alloc(8);
  hdr[0] = 0x08;
  hdr.writeUIntBE(vni, 4, 3);
  assert.deepEqual([...hdr.subarray(4, 8)], [0x45, 0x61, 0x23, 0x00]);
  assert.deepEqual(parseVni(vni), { source: 0x123, destination: 0x456 });
});

test('VNI encode/parse round-trips every pair of short ids', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0xfff }), (s, d) => {
    assert.deepEqual(parseVni(vniFor(s, d)), { source: s, destination: d });
  }));
});

test('short ids outside 12 bits are rejected with a clear error', () => {
  assert.throws(() => checkShortId(0x1000), /12-bit peer short id/);
  assert.throws(() => checkShortId(-1), /12-bit/);
  assert.throws(() => vniFor(1, 4096), /destination short id 4096/);
});

test('MAC keys are 6 address bytes plus zero padding, and round-trip', () => {
  const k = macKey('02:77:AA:00:0b:ff');
  assert.deepEqual([...k], [0x02, 0x77, 0xaa, 0x00, 0x0b, 0xff, 0, 0]);
  assert.equal(formatMac(k), '02:77:aa:00:0b:ff');
  assert.throws(() => macKey('02:77:aa:00:0b'), /invalid MAC/);
  assert.throws(() => macKey('zz:77:aa:00:0b:ff'), /invalid MAC/);
});

test('underlay addresses are host-order u32, as struct bpf_tunnel_key wants', () => {
  assert.equal(ipv4ToHostU32('172.31.5.2'), 0xac1f0502);
  fc.assert(fc.property(fc.ipV4(), (ip) => { assert.equal(hostU32ToIpv4(ipv4ToHostU32(ip)), ip); }));
  assert.throws(() => ipv4ToHostU32('172.31.5'), /invalid IPv4/);
  assert.throws(() => ipv4ToHostU32('172.31.5.256'), /invalid IPv4/);
});

test('counter names follow enum weave_counter in weave_counters.h, in order', () => {
  const header = readFileSync(join(repo, 'dataplane', 'bpf', 'include', 'weave_counters.h'), 'utf8');
  const body = /enum weave_counter \{([\s\S]*?)\};/.exec(header)?.[1] ?? '';
  const names = [...body.matchAll(/^\s*WC_([A-Z_]+)/gm)].map((m) => (m[1] as string).toLowerCase()).filter((n) => n !== 'counter_max');
  assert.deepEqual(names, [...COUNTER_NAMES]);
});
