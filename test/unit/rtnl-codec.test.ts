// Route netlink messages (linux/rtnetlink.h, if_link.h, if_addr.h) against
// byte layouts written out by hand, and decoding of what the encoders build:
// pure bytes, no kernel (test/netns/netlink-rtnl.test.ts drives a real one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IFF_UP,
  RTM_DELADDR,
  RTM_NEWADDR,
  RTM_NEWLINK,
  checkName,
  decodeAddress,
  decodeLink,
  decodeRoute,
  encodeAddressRequest,
  encodeLinkCreate,
  encodeLinkRequest,
  encodeRoute,
  encodeRouteGet,
  vxlanData,
} from '../../dataplane/netlink/rtnl-codec.js';
import type { NetlinkMessage } from '../../dataplane/netlink/message.js';

const hex = (b: Buffer): string => b.toString('hex');
const message = (type: number, payload: Buffer): NetlinkMessage => ({ type, flags: 0, seq: 0, pid: 0, payload });

test('a link is addressed by IFLA_IFNAME, or by index in struct ifinfomsg', () => {
  assert.equal(hex(encodeLinkRequest('weave')),
    '00000000' + '00000000' + '00000000' + '00000000' + // ifinfomsg: family, index, flags, change
    '0a000300' + hex(Buffer.from('weave\0')) + '0000'); // IFLA_IFNAME "weave\0", padded to 4
  assert.equal(hex(encodeLinkRequest(7, undefined, IFF_UP, IFF_UP)), '00000000' + '07000000' + '01000000' + '01000000');
});

test('an address request carries IFA_LOCAL, IFA_ADDRESS and the broadcast `brd +` computes', () => {
  assert.equal(hex(encodeAddressRequest(RTM_NEWADDR, 3, '10.32.0.1/12')),
    '020c0000' + '03000000' + // ifaddrmsg: AF_INET, /12, flags, scope universe; index 3
    '08000200' + '0a200001' + // IFA_LOCAL
    '08000100' + '0a200001' + // IFA_ADDRESS
    '08000400' + '0a2fffff'); // IFA_BROADCAST 10.47.255.255
  assert.equal(encodeAddressRequest(RTM_DELADDR, 3, '10.32.0.1/12').length, 8 + 16, 'no broadcast on delete');
  assert.equal(encodeAddressRequest(RTM_NEWADDR, 3, '10.0.0.1/31').length, 8 + 16, 'no broadcast on /31');
});

test('a route: rtmsg, then destination, table, output link and gateway', () => {
  assert.equal(hex(encodeRoute({ dst: '10.32.0.0/12', gateway: '192.168.1.1' }, 5, false)),
    '020c0000' + 'fe030001' + '00000000' + // AF_INET /12, table main, proto boot, scope universe, unicast
    '08000100' + '0a200000' + // RTA_DST
    '08000f00' + 'fe000000' + // RTA_TABLE 254
    '08000400' + '05000000' + // RTA_OIF 5
    '08000500' + 'c0a80101'); // RTA_GATEWAY
  assert.equal(hex(encodeRoute({ dst: 'default', table: 1000 }, undefined, true).subarray(0, 12)), '02000000' + '0000ff00' + '00000000',
    'delete: scope nowhere, a table above 255 only in RTA_TABLE');
  assert.equal(hex(encodeRouteGet('10.0.0.9')), '02200000' + '00000000' + '00000000' + '08000100' + '0a000009');
});

test('decodeLink reads back what encodeLinkCreate builds, vxlan data included', () => {
  const payload = encodeLinkCreate('vxlan-6784', 'vxlan', { mtu: 1376, mac: '02:00:00:00:00:01' },
    vxlanData({ id: 42, port: 6784, external: true, local: '192.168.1.2' }, 2));
  payload.writeInt32LE(9, 4);
  payload.writeUInt32LE(IFF_UP, 8);
  const link = decodeLink(message(RTM_NEWLINK, payload));
  assert.deepEqual(link, {
    index: 9, name: 'vxlan-6784', mtu: 1376, flags: IFF_UP, up: true, operstate: 'unknown', mac: '02:00:00:00:00:01', kind: 'vxlan',
    vxlan: { external: true, id: 42, port: 6784, local: '192.168.1.2', learning: false },
  });
  assert.throws(() => decodeLink(message(RTM_NEWLINK, Buffer.alloc(8))), /shorter than struct ifinfomsg/);
});

test('decodeAddress and decodeRoute read IPv4 back and pass over other families', () => {
  assert.deepEqual(decodeAddress(message(RTM_NEWADDR, encodeAddressRequest(RTM_NEWADDR, 3, '10.32.0.1/12'))),
    { index: 3, address: '10.32.0.1', prefixLen: 12, scope: 0 });
  const v6 = encodeAddressRequest(RTM_NEWADDR, 3, '10.32.0.1/12');
  v6.writeUInt8(10, 0);
  assert.equal(decodeAddress(message(RTM_NEWADDR, v6)), undefined);
  assert.deepEqual(decodeRoute(message(24, encodeRoute({ dst: '10.32.0.0/12', gateway: '192.168.1.1', metric: 7 }, 5, false))),
    { dst: '10.32.0.0/12', table: 254, protocol: 3, scope: 0, type: 1, oifIndex: 5, gateway: '192.168.1.1', metric: 7 });
  assert.equal(decodeRoute(message(24, Buffer.alloc(4))), undefined);
});

test('interface names: 1-15 bytes, no whitespace, slash or colon', () => {
  for (const ok of ['weave', 'vethwe-bridge', 'a'.repeat(15)]) assert.doesNotThrow(() => checkName(ok));
  for (const bad of ['', 'a'.repeat(16), 'a b', 'a/b', 'a:b']) assert.throws(() => checkName(bad), RangeError, bad);
});
