// ODP codec (dataplane/ovs) against the verified byte layouts of spec §6.6/§6.7,
// round trips, and typed errors for malformed attributes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NLM_F_ECHO, NLM_F_REQUEST, encodeGenlHeader, encodeMessage } from '../../dataplane/netlink/index.js';
import {
  MalformedOdpError,
  OVS_CMD_NEW,
  OVS_PACKET_CMD_EXECUTE,
  decodeActions,
  decodeFlowKey,
  decodeUpcall,
  encodeActions,
  encodeExecuteAttrs,
  encodeFlowAttrs,
  encodeFlowKey,
  encodeOvsHeader,
  encodeVportCreate,
  exactMask,
  output,
  parseWeaveTunnelId,
  setTunnel,
  userspace,
  weaveTunnelId,
  type FlowAction,
  type FlowKey,
} from '../../dataplane/ovs/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A request as go-odp sends it (spec §6.7: flags REQUEST|ECHO), for whole-message comparisons. */
function odpMessage(family: number, seq: number, cmd: number, version: number, dp: number, attrs: Buffer): Buffer {
  const payload = Buffer.concat([encodeGenlHeader(cmd, version), encodeOvsHeader(dp), attrs]);
  return encodeMessage({ type: family, flags: NLM_F_REQUEST | NLM_F_ECHO, seq, pid: 0, payload });
}

test('spec §6.6: unicast to a remote peer, FLOW NEW, matches the verified 148 bytes', () => {
  const key: FlowKey = { inPort: 3, ethernet: { src: '02:00:00:00:00:aa', dst: '02:00:00:00:00:bb' } };
  const attrs = encodeFlowAttrs({
    key,
    mask: exactMask(key),
    actions: [
      setTunnel({ id: weaveTunnelId(0x123, 0x456), ipv4Src: '192.168.1.1', ipv4Dst: '192.168.1.2', tos: 0, ttl: 64, dontFragment: true }),
      output(2),
    ],
  }).build();
  const expected = hex(`
    94000000 1e00 0900 03000000 00000000  01010000  07000000
    1c000100 08000300 03000000 10000400 0200000000aa 0200000000bb
    1c000700 08000300 ffffffff 10000400 ffffffffffffffffffffffff
    44000200
      38000300
        34001000
          0c000000 0000000000456123
          08000100 c0a80101
          08000200 c0a80102
          05000300 00000000
          05000400 40000000
          04000500
      08000100 02000000`);
  assert.deepEqual(odpMessage(0x1e, 3, OVS_CMD_NEW, 1, 7, attrs), expected);
});

test('spec §6.6: ingress from vxlan matches the tunnel exactly and wildcards its TTL', () => {
  const key: FlowKey = {
    inPort: 2,
    tunnel: { id: 0x123456n, ipv4Src: '192.168.1.2', ipv4Dst: '192.168.1.1' },
    ethernet: { src: '02:00:00:00:00:bb', dst: '02:00:00:00:00:aa' },
  };
  assert.deepEqual(
    encodeFlowKey(key),
    hex(`08000300 02000000
         10000400 0200000000bb 0200000000aa
         28001000 0c000000 0000000000123456 08000100 c0a80102 08000200 c0a80101 05000400 00000000`),
  );
  assert.deepEqual(
    encodeFlowKey(exactMask(key)),
    hex(`08000300 ffffffff
         10000400 ffffffffffffffffffffffff
         28001000 0c000000 ffffffffffffffff 08000100 ffffffff 08000200 ffffffff 05000400 00000000`),
  );
});

test('spec §6.7: vxlan vport create and packet execute match the example bytes', () => {
  const vport = encodeVportCreate({ type: 'vxlan', name: 'vxlan-6784', dstPort: 6784 }).build();
  assert.deepEqual(
    odpMessage(0x1d, 2, OVS_CMD_NEW, 1, 7, vport),
    hex(`44000000 1d00 0900 02000000 00000000 01010000 07000000
         0f000300 ${Buffer.from('vxlan-6784\0').toString('hex')} 00
         08000200 04000000 0c000400 06000100 801a0000 08000500 00000000`),
  );
  const exec = encodeExecuteAttrs({ packet: hex('010203040506'), actions: [output(3)] }).build();
  assert.deepEqual(
    odpMessage(0x1f, 5, OVS_PACKET_CMD_EXECUTE, 1, 7, exec),
    hex('34000000 1f00 0900 05000000 00000000 03010000 07000000 0a000100 010203040506 0000 04000200 0c000300 08000100 03000000'),
  );
});

test('spec §6.2: tunnel id carries the source short id low and the destination above it', () => {
  assert.equal(weaveTunnelId(0x123, 0x456), 0x456123n);
  assert.deepEqual(parseWeaveTunnelId(0x456123n), { srcShortId: 0x123, dstShortId: 0x456 });
  assert.throws(() => weaveTunnelId(0x1000, 1), RangeError);
});

test('actions round-trip, and the Linux 4.3 SET without the TUNNEL level still decodes', () => {
  const actions: FlowAction[] = [
    setTunnel({ id: 7n, ipv4Src: '10.0.0.1', ipv4Dst: '10.0.0.2', ttl: 64, dontFragment: true, csum: true }),
    output(9),
    userspace(1234, Buffer.from('hi')),
  ];
  assert.deepEqual(decodeActions(encodeActions(actions)), actions);
  const flat = hex('20000300 0c000000 0000000000000007 08000200 0a000002 05000400 40000000');
  assert.deepEqual(decodeActions(flat), [setTunnel({ id: 7n, ipv4Dst: '10.0.0.2', ttl: 64 })]);
});

test('keys round-trip; unmodelled key attributes are kept', () => {
  const arbMac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'));
  const arbIp = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((t) => t.join('.'));
  const arbKey: fc.Arbitrary<FlowKey> = fc.record(
    {
      inPort: fc.nat(0xffffffff),
      ethernet: fc.record({ src: arbMac, dst: arbMac }, { noNullPrototype: true }),
      ethertype: fc.nat(0xffff),
      tunnel: fc.record({ id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), ipv4Src: arbIp, ipv4Dst: arbIp, ttl: fc.nat(255), dontFragment: fc.constant(true) }, { requiredKeys: ['ttl'], noNullPrototype: true }),
    },
    { requiredKeys: [], noNullPrototype: true },
  ) as fc.Arbitrary<FlowKey>;
  fc.assert(fc.property(arbKey, (key) => assert.deepEqual(decodeFlowKey(encodeFlowKey(key)), key)));
  const withIpv4 = Buffer.concat([encodeFlowKey({ inPort: 1 }), hex('10000700 0a000001 0a000002 01004000')]);
  const decoded = decodeFlowKey(withIpv4);
  assert.equal(decoded.other?.[0].type, 7);
  assert.deepEqual(encodeFlowKey(decoded), withIpv4);
});

test('malformed keys, actions and upcalls are rejected with MalformedOdpError', () => {
  const bad = [
    hex('05000300 03000000'), // IN_PORT of 1 byte
    hex('0c000400 0200000000aa0200'), // ETHERNET of 8 bytes
    hex('08001000 04000400'), // TUNNEL holding a 0-byte TTL
    hex('0800'), // truncated header
    hex('ff000300 00000000'), // length beyond the buffer
  ];
  for (const b of bad) assert.throws(() => decodeFlowKey(b), MalformedOdpError, `key ${b.toString('hex')}`);
  assert.throws(() => decodeActions(hex('06000100 0300 0000')), MalformedOdpError);
  assert.throws(() => decodeActions(hex('0c000300 04000500 04000600')), MalformedOdpError); // SET with two keys
  assert.throws(() => decodeActions(hex('08000200 04000200')), /lacks a 4-byte PID/);
  assert.throws(() => decodeUpcall({ type: 0x1f, flags: 0, seq: 0, pid: 0, payload: hex('0101') }), MalformedOdpError);
  assert.throws(() => decodeUpcall({ type: 0x1f, flags: 0, seq: 0, pid: 0, payload: hex('01010000 07000000 08000100 01020304') }), /lacks/);
});

test('fuzz: random bytes decode or fail with MalformedOdpError, never another error', () => {
  const onlyTyped = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof MalformedOdpError)) throw e;
    }
  };
  const valid = encodeActions([setTunnel({ id: 1n, ipv4Src: '1.2.3.4', ipv4Dst: '5.6.7.8', ttl: 64 }), output(1), userspace(5)]);
  const arbBytes = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }).map((edits) => {
      const b = Buffer.from(valid);
      for (const [i, v] of edits) b[i] = v;
      return new Uint8Array(b);
    }),
  );
  fc.assert(
    fc.property(arbBytes, (bytes) => {
      onlyTyped(() => decodeFlowKey(bytes));
      onlyTyped(() => decodeActions(bytes));
      onlyTyped(() => decodeUpcall({ type: 0x1f, flags: 0, seq: 0, pid: 0, payload: Buffer.concat([hex('01010000 07000000'), bytes]) }));
    }),
    { numRuns: 500 },
  );
});
