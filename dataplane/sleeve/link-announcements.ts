// The frames an interface sends to announce itself on the link when it comes
// up: multicast group reports (IGMP, MLD), router solicitations and
// duplicate-address probes (RFC 3376, 3810, 4861, 4862), all to a multicast
// address.
//
// A router whose only overlay is the sleeve keeps its packet worker parked
// until a frame is to cross it (keeper.ts). When the weave bridge, its ports
// or a container's interface come up, the kernel sends these on its own, on
// every host, and they would start the worker on every router although no
// container has anything to send. While the worker is parked they are dropped
// and counted: a bridge floods multicast to every port while it has heard no
// querier, a querier's query comes from a peer as a frame, which starts the
// worker, and the reports it asks for cross as usual from then on.
import { ETHERNET_HEADER_SIZE } from './constants.js';
import { dstMac, formatMacNumber, srcMac } from './ethernet.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_ARP = 0x0806;
/** An ARP packet for IPv4 over Ethernet: the sender's and target's addresses at 14 and 24. */
const ARP_IPV4_SIZE = 28;

const IPV4_PROTOCOL_IGMP = 2;
/** IGMP membership reports (v1, v2, v3) and the v2 leave. */
const IGMP_ANNOUNCEMENT_TYPES: ReadonlySet<number> = new Set([0x12, 0x16, 0x17, 0x22]);

const IPV6_HEADER_SIZE = 40;
const NEXT_HEADER_HOP_BY_HOP = 0;
const NEXT_HEADER_ICMPV6 = 58;
/** MLDv1 report and done, router solicitation, MLDv2 report. */
const ICMPV6_ANNOUNCEMENT_TYPES: ReadonlySet<number> = new Set([131, 132, 133, 143]);
/** A neighbour solicitation announces only as a duplicate-address probe: sent from `::`. */
const ICMPV6_NEIGHBOR_SOLICITATION = 135;

/** Whether `frame` (Ethernet, no virtio-net header) is an interface's announcement of itself. */
export function isLinkAnnouncement(frame: Uint8Array): boolean {
  if (frame.length < ETHERNET_HEADER_SIZE) return false;
  const ethertype = (frame[12]! << 8) | frame[13]!;
  // IPv4 multicast MACs are 01:00:5e:..., IPv6 ones 33:33:...
  if (ethertype === ETHERTYPE_IPV4 && frame[0] === 0x01 && frame[1] === 0x00 && frame[2] === 0x5e) return isIgmpAnnouncement(frame);
  if (ethertype === ETHERTYPE_IPV6 && frame[0] === 0x33 && frame[1] === 0x33) return isIcmpv6Announcement(frame);
  return false;
}

function isIgmpAnnouncement(frame: Uint8Array): boolean {
  const ip = ETHERNET_HEADER_SIZE;
  if (frame.length < ip + 20 || frame[ip]! >> 4 !== 4 || frame[ip + 9] !== IPV4_PROTOCOL_IGMP) return false;
  // IGMP reports carry a router-alert option: the header is longer than 20 bytes.
  const igmp = ip + (frame[ip]! & 0x0f) * 4;
  return frame.length > igmp && IGMP_ANNOUNCEMENT_TYPES.has(frame[igmp]!);
}

function isIcmpv6Announcement(frame: Uint8Array): boolean {
  const { nextHeader, at } = ipv6Payload(frame);
  if (nextHeader !== NEXT_HEADER_ICMPV6 || frame.length <= at) return false;
  const type = frame[at]!;
  if (ICMPV6_ANNOUNCEMENT_TYPES.has(type)) return true;
  return type === ICMPV6_NEIGHBOR_SOLICITATION && isUnspecified(frame, ETHERNET_HEADER_SIZE + 8);
}

/**
 * An IPv6 packet's payload: its protocol and offset in the frame, past a hop-by-hop header (MLD
 * messages carry one, a router alert); next header -1 when the frame ends before either is known.
 */
function ipv6Payload(frame: Uint8Array): { nextHeader: number; at: number } {
  const ip = ETHERNET_HEADER_SIZE;
  if (frame.length < ip + IPV6_HEADER_SIZE) return { nextHeader: -1, at: frame.length };
  const at = ip + IPV6_HEADER_SIZE;
  if (frame[ip + 6] !== NEXT_HEADER_HOP_BY_HOP) return { nextHeader: frame[ip + 6]!, at };
  if (frame.length < at + 2) return { nextHeader: -1, at: frame.length };
  return { nextHeader: frame[at]!, at: at + (frame[at + 1]! + 1) * 8 };
}

/**
 * What a captured frame is, for the log line that says why the worker started:
 * its MACs, ethertype and, for IP, protocol (and ICMPv6 type or IGMP type).
 */
export function describeFrame(frame: Uint8Array): string {
  if (frame.length < ETHERNET_HEADER_SIZE) return `a ${frame.length}-byte runt`;
  const ethertype = (frame[12]! << 8) | frame[13]!;
  let what = `ethertype 0x${ethertype.toString(16).padStart(4, '0')}`;
  const ip = ETHERNET_HEADER_SIZE;
  if (ethertype === ETHERTYPE_IPV4 && frame.length >= ip + 20) {
    what = `IPv4 protocol ${frame[ip + 9]}`;
    const payload = ip + (frame[ip]! & 0x0f) * 4;
    if (frame[ip + 9] === IPV4_PROTOCOL_IGMP && frame.length > payload) what += ` (IGMP type 0x${frame[payload]!.toString(16)})`;
  } else if (ethertype === ETHERTYPE_ARP && frame.length >= ip + ARP_IPV4_SIZE) {
    const op = (frame[ip + 6]! << 8) | frame[ip + 7]!;
    what = `ARP ${op === 1 ? 'request' : op === 2 ? 'reply' : `op ${op}`} for ${frame.subarray(ip + 24, ip + 28).join('.')} (sender ${frame.subarray(ip + 14, ip + 18).join('.')})`;
  } else if (ethertype === ETHERTYPE_IPV6 && frame.length >= ip + IPV6_HEADER_SIZE) {
    const { nextHeader, at } = ipv6Payload(frame);
    what = `IPv6 next header ${nextHeader}`;
    if (nextHeader === NEXT_HEADER_ICMPV6 && frame.length > at) what += ` (ICMPv6 type ${frame[at]})`;
  }
  return `${what} from ${formatMacNumber(srcMac(frame))} to ${formatMacNumber(dstMac(frame))}`;
}

/** Whether the 16-byte IPv6 address at `at` is `::`. */
function isUnspecified(frame: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 16; i++) if (frame[i] !== 0) return false;
  return true;
}
