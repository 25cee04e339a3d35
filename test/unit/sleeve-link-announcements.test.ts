// Which captured frames are an interface's announcement of itself (dataplane/sleeve/link-announcements.ts):
// the frames the kernel sends when the bridge, its ports or a container's interface come up, which
// must not start a parked sleeve-only router's packet worker. Frames built field by field as the
// kernel sends them (compared with a capture on a bridge coming up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFrame, isLinkAnnouncement } from '../../dataplane/sleeve/link-announcements.js';

const SRC_MAC = Buffer.from([0x7e, 0x11, 0x22, 0x33, 0x44, 0x55]);
const UNSPECIFIED = Buffer.alloc(16);
const LINK_LOCAL = Buffer.from('fe800000000000007c1122fffe334455', 'hex');
const MLDV2_ROUTERS = Buffer.from('ff020000000000000000000000000016', 'hex');
const ALL_ROUTERS = Buffer.from('ff020000000000000000000000000002', 'hex');
const ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');
const SOLICITED_NODE = Buffer.from('ff0200000000000000000001ff334455', 'hex');

interface Ipv6Frame {
  dstMac?: Buffer;
  srcIp: Buffer;
  dstIp: Buffer;
  icmpType: number;
  /** A hop-by-hop header (router alert) before the ICMPv6 message, as MLD sends. */
  hopByHop?: boolean;
}

function ethernet(dstMac: Buffer, ethertype: number): Buffer {
  const eth = Buffer.concat([dstMac, SRC_MAC, Buffer.alloc(2)]);
  eth.writeUInt16BE(ethertype, 12);
  return eth;
}

function ipv6Frame(f: Ipv6Frame): Buffer {
  const icmp = Buffer.alloc(24);
  icmp[0] = f.icmpType;
  const hbh = f.hopByHop ? Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]) : Buffer.alloc(0);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(hbh.length + icmp.length, 4);
  ip[6] = f.hopByHop ? 0 : 58;
  ip[7] = 1;
  f.srcIp.copy(ip, 8);
  f.dstIp.copy(ip, 24);
  return Buffer.concat([ethernet(f.dstMac ?? Buffer.from([0x33, 0x33, ...f.dstIp.subarray(12)]), 0x86dd), ip, hbh, icmp]);
}

/** An IGMP message as the kernel sends it: IPv4 with a router-alert option (header 24 bytes). */
function igmpFrame(type: number, group = '224.0.0.22', protocol = 2): Buffer {
  const ip = Buffer.alloc(24);
  ip[0] = 0x46;
  ip[8] = 1;
  ip[9] = protocol;
  Buffer.from(group.split('.').map(Number)).copy(ip, 16);
  ip.set([0x94, 0x04, 0, 0], 20);
  const igmp = Buffer.alloc(16);
  igmp[0] = type;
  const g = group.split('.').map(Number);
  return Buffer.concat([ethernet(Buffer.from([0x01, 0x00, 0x5e, g[1]! & 0x7f, g[2]!, g[3]!]), 0x0800), ip, igmp]);
}

test('group reports, router solicitations and duplicate-address probes are announcements', () => {
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: UNSPECIFIED, dstIp: MLDV2_ROUTERS, icmpType: 143, hopByHop: true })), 'MLDv2 report from ::');
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: MLDV2_ROUTERS, icmpType: 143, hopByHop: true })), 'MLDv2 report from a link-local address');
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: SOLICITED_NODE, icmpType: 131, hopByHop: true })), 'MLDv1 report');
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: ALL_ROUTERS, icmpType: 132, hopByHop: true })), 'MLDv1 done');
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: ALL_ROUTERS, icmpType: 133 })), 'router solicitation');
  assert.ok(isLinkAnnouncement(ipv6Frame({ srcIp: UNSPECIFIED, dstIp: SOLICITED_NODE, icmpType: 135 })), 'duplicate-address probe');
  for (const type of [0x12, 0x16, 0x17, 0x22]) assert.ok(isLinkAnnouncement(igmpFrame(type)), `IGMP type 0x${type.toString(16)}`);
});

test('what is sent to be answered, and unicast or other protocols, is traffic', () => {
  // A neighbour solicitation from an address: someone looks for a neighbour, who must hear it.
  assert.equal(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: SOLICITED_NODE, icmpType: 135 })), false);
  assert.equal(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: ALL_NODES, icmpType: 128 })), false, 'echo request to all nodes');
  assert.equal(isLinkAnnouncement(ipv6Frame({ srcIp: LINK_LOCAL, dstIp: ALL_NODES, icmpType: 130, hopByHop: true })), false, 'MLD query');
  assert.equal(isLinkAnnouncement(igmpFrame(0x11, '224.0.0.1')), false, 'IGMP query');
  assert.equal(isLinkAnnouncement(igmpFrame(0x22, '224.0.0.22', 17)), false, 'UDP to a group');
  // A report sent to a unicast MAC is not how an interface announces itself.
  assert.equal(isLinkAnnouncement(ipv6Frame({ dstMac: SRC_MAC, srcIp: LINK_LOCAL, dstIp: MLDV2_ROUTERS, icmpType: 143, hopByHop: true })), false);
  const arp = Buffer.concat([ethernet(Buffer.alloc(6, 0xff), 0x0806), Buffer.alloc(28)]);
  assert.equal(isLinkAnnouncement(arp), false, 'ARP, gratuitous or not');
});

test('short and odd frames are traffic, read without going past their end', () => {
  const report = ipv6Frame({ srcIp: UNSPECIFIED, dstIp: MLDV2_ROUTERS, icmpType: 143, hopByHop: true });
  const typeAt = 14 + 40 + 8;
  for (let len = 0; len <= typeAt; len++) assert.equal(isLinkAnnouncement(report.subarray(0, len)), false, `MLD cut at ${len}`);
  assert.ok(isLinkAnnouncement(report.subarray(0, typeAt + 1)), 'the ICMPv6 type is all it reads');
  const igmp = igmpFrame(0x22);
  for (let len = 0; len <= 14 + 24; len++) assert.equal(isLinkAnnouncement(igmp.subarray(0, len)), false, `IGMP cut at ${len}`);
  // A hop-by-hop header whose length points past the frame, or leads to something other than ICMPv6.
  const long = Buffer.from(report);
  long[14 + 40 + 1] = 200;
  assert.equal(isLinkAnnouncement(long), false);
  const udp = Buffer.from(report);
  udp[14 + 40] = 17;
  assert.equal(isLinkAnnouncement(udp), false);
});

test('a frame that starts the worker is described for the log: MACs, protocol and ICMPv6 or IGMP type', () => {
  const ns = ipv6Frame({ srcIp: LINK_LOCAL, dstIp: SOLICITED_NODE, icmpType: 135 });
  assert.equal(describeFrame(ns), 'IPv6 next header 58 (ICMPv6 type 135) from 7e:11:22:33:44:55 to 33:33:ff:33:44:55');
  const report = ipv6Frame({ srcIp: LINK_LOCAL, dstIp: MLDV2_ROUTERS, icmpType: 143, hopByHop: true });
  assert.equal(describeFrame(report), 'IPv6 next header 58 (ICMPv6 type 143) from 7e:11:22:33:44:55 to 33:33:00:00:00:16');
  assert.equal(describeFrame(igmpFrame(0x11, '224.0.0.1')), 'IPv4 protocol 2 (IGMP type 0x11) from 7e:11:22:33:44:55 to 01:00:5e:00:00:01');
  const arpBody = Buffer.alloc(28);
  arpBody.set([0, 1, 8, 0, 6, 4, 0, 1], 0);
  arpBody.set([10, 32, 0, 1], 14);
  arpBody.set([10, 32, 0, 2], 24);
  const arp = Buffer.concat([ethernet(Buffer.alloc(6, 0xff), 0x0806), arpBody]);
  assert.equal(describeFrame(arp), 'ARP request for 10.32.0.2 (sender 10.32.0.1) from 7e:11:22:33:44:55 to ff:ff:ff:ff:ff:ff');
  assert.equal(describeFrame(arp.subarray(0, 30)), 'ethertype 0x0806 from 7e:11:22:33:44:55 to ff:ff:ff:ff:ff:ff');
  assert.equal(describeFrame(arp.subarray(0, 10)), 'a 10-byte runt');
  assert.equal(describeFrame(report.subarray(0, 30)), 'ethertype 0x86dd from 7e:11:22:33:44:55 to 33:33:00:00:00:16');
});
