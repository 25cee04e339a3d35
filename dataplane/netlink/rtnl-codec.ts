// Route netlink (NETLINK_ROUTE) messages, encoded and decoded as pure
// functions of bytes: links (veth, bridge, vxlan), IPv4 addresses and IPv4
// routes (the handle that sends them is rtnl.ts). Message layouts follow
// linux/rtnetlink.h, linux/if_link.h and linux/if_addr.h.

import { AttributeWriter, parseAttributes, type Attributes } from './attributes.js';
import { formatIPv4, formatMac, parseIPv4, parseIPv4Prefix, parseMac } from './inet.js';
import type { NetlinkMessage } from './message.js';
import type { NetnsHandle } from './netns.js';

// Message types, linux/rtnetlink.h.
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

// Multicast groups (enum rtnetlink_groups), to pass to NetlinkSocket.join.
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_ROUTE = 7;

const AF_UNSPEC = 0;
const AF_INET = 2;

// Interface flags, linux/if.h.
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
/** IFF_LOWER_UP: carrier present (a veth gets it when its peer is up). */
export const IFF_LOWER_UP = 0x10000;

// struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }.
const IFINFOMSG_LEN = 16;
// IFLA_* attributes, linux/if_link.h.
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
/** IFLA_LINK: for a veth, the peer's index (in the peer's namespace). */
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
/** IFLA_LINK_NETNSID: present when IFLA_LINK refers to another namespace. */
const IFLA_LINK_NETNSID = 37;
// Nested in IFLA_LINKINFO.
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
/** VETH_INFO_PEER (linux/veth.h): an ifinfomsg followed by the peer's IFLA_* attributes. */
const VETH_INFO_PEER = 1;
// IFLA_VXLAN_*, nested in IFLA_INFO_DATA for kind "vxlan".
const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_TTL = 5;
const IFLA_VXLAN_LEARNING = 7;
/** IFLA_VXLAN_PORT is __be16: the only network-order field in this set. */
const IFLA_VXLAN_PORT = 15;
const IFLA_VXLAN_UDP_CSUM = 18;
/** IFLA_VXLAN_COLLECT_METADATA: `external` mode, the VNI and remote come per packet from tc/BPF/OVS. */
const IFLA_VXLAN_COLLECT_METADATA = 25;

// RFC 2863 operational states (IF_OPER_*, linux/if.h), indexed by value.
const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPERSTATES)[number];

// struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }.
const IFADDRMSG_LEN = 8;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_BROADCAST = 4;

// struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }.
const RTMSG_LEN = 12;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
/** RTA_TABLE: the full u32 table id (rtm_table holds only 8 bits). */
const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
/** RTPROT_BOOT: what `ip route add` uses for routes set by an administrator/tool. */
const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
/** RT_SCOPE_NOWHERE on delete: match a route of any scope. */
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;

/** A link by name or index. */
export type LinkRef = string | number;

export interface Link {
  index: number;
  name: string;
  mtu: number;
  /** Hardware address as xx:xx:..; undefined for links without one. */
  mac?: string;
  flags: number;
  up: boolean;
  kind?: string;
  /** Index of the bridge (or bond) this link is enslaved to. */
  masterIndex?: number;
  operstate: OperState;
  /** IFLA_LINK: e.g. a veth's peer index. */
  parentIndex?: number;
  /** Set when parentIndex is in another namespace (that namespace's id as seen from here). */
  parentNetnsId?: number;
  vxlan?: VxlanInfo;
}

export interface VxlanInfo {
  id?: number;
  port?: number;
  local?: string;
  learning?: boolean;
  external: boolean;
}

export interface LinkCommonOptions {
  mtu?: number;
  mac?: string;
}

export interface VethOptions extends LinkCommonOptions {
  /** Create the peer directly inside this namespace (a handle, or a raw namespace fd). */
  peerNetns?: NetnsHandle | number;
  peerMtu?: number;
  peerMac?: string;
}

export interface VxlanOptions extends LinkCommonOptions {
  /** VNI; omit with `external`. */
  id?: number;
  /** collect_md mode: one device serves every VNI and remote, set per packet. */
  external?: boolean;
  /** UDP destination port (weave fastdp uses 6784). Default is the kernel's (8472). */
  port?: number;
  /** Local underlay IPv4 source address. */
  local?: string;
  /** Underlay device. */
  underlay?: LinkRef;
  ttl?: number;
  /** Learn remote MACs from received frames (FDB); default false here. */
  learning?: boolean;
  /** Compute UDP checksums on transmit (default false, as the kernel). */
  udpChecksum?: boolean;
}

export interface Address {
  index: number;
  address: string;
  prefixLen: number;
  label?: string;
  scope: number;
}

export interface RouteSpec {
  /** "a.b.c.d/len", or "default" / "0.0.0.0/0". */
  dst: string;
  /** Output device. */
  link?: LinkRef;
  gateway?: string;
  /** Default RT_TABLE_MAIN. */
  table?: number;
  /** Default: RT_SCOPE_LINK without a gateway, RT_SCOPE_UNIVERSE with one. */
  scope?: number;
  /** Preferred source address. */
  source?: string;
  metric?: number;
}

export interface Route {
  dst: string;
  oifIndex?: number;
  gateway?: string;
  table: number;
  scope: number;
  protocol: number;
  type: number;
  source?: string;
  metric?: number;
}

export function ifinfomsg(index = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

function nsFd(ns: NetnsHandle | number): number {
  return typeof ns === 'number' ? ns : ns.fd;
}

export function checkName(name: string): void {
  // IFNAMSIZ is 16 including the NUL; the kernel rejects '/' and whitespace too.
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name)) {
    throw new RangeError(`invalid interface name ${JSON.stringify(name)} (1-15 bytes, no spaces, '/' or ':')`);
  }
}

/** Decodes an RTM_NEWLINK message (a reply or an RTNLGRP_LINK event). */
export function decodeLink(msg: NetlinkMessage): Link {
  if (msg.payload.length < IFINFOMSG_LEN) throw new Error(`link message of ${msg.payload.length} bytes is shorter than struct ifinfomsg`);
  const index = msg.payload.readInt32LE(4);
  const flags = msg.payload.readUInt32LE(8);
  const a = parseAttributes(msg.payload.subarray(IFINFOMSG_LEN));
  const info = a.nested(IFLA_LINKINFO);
  const kind = info?.string(IFLA_INFO_KIND);
  const mac = a.bytes(IFLA_ADDRESS);
  const link: Link = {
    index,
    name: a.string(IFLA_IFNAME) ?? '',
    mtu: a.u32(IFLA_MTU) ?? 0,
    flags,
    up: (flags & IFF_UP) !== 0,
    operstate: OPERSTATES[a.u8(IFLA_OPERSTATE) ?? 0] ?? 'unknown',
  };
  if (mac && mac.length > 0) link.mac = formatMac(mac);
  if (kind) link.kind = kind;
  const master = a.u32(IFLA_MASTER);
  if (master) link.masterIndex = master;
  // Most devices report IFLA_LINK = their own index; that is not a parent.
  // With IFLA_LINK_NETNSID the index belongs to another namespace and may coincide.
  const parent = a.u32(IFLA_LINK);
  const parentNs = a.s32(IFLA_LINK_NETNSID);
  if (parent !== undefined && (parent !== index || parentNs !== undefined)) link.parentIndex = parent;
  if (parentNs !== undefined) link.parentNetnsId = parentNs;
  if (kind === 'vxlan') link.vxlan = decodeVxlan(info?.nested(IFLA_INFO_DATA));
  return link;
}

function decodeVxlan(d: Attributes | undefined): VxlanInfo {
  const out: VxlanInfo = { external: (d?.u8(IFLA_VXLAN_COLLECT_METADATA) ?? 0) !== 0 };
  if (!d) return out;
  const id = d.u32(IFLA_VXLAN_ID);
  if (id !== undefined) out.id = id;
  const port = d.u16be(IFLA_VXLAN_PORT);
  if (port !== undefined) out.port = port;
  const local = d.bytes(IFLA_VXLAN_LOCAL);
  if (local?.length === 4) out.local = formatIPv4(local);
  const learning = d.u8(IFLA_VXLAN_LEARNING);
  if (learning !== undefined) out.learning = learning !== 0;
  return out;
}

export function decodeAddress(msg: NetlinkMessage): Address | undefined {
  const p = msg.payload;
  if (p.length < IFADDRMSG_LEN || p.readUInt8(0) !== AF_INET) return undefined;
  const a = parseAttributes(p.subarray(IFADDRMSG_LEN));
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const addr = a.bytes(IFA_LOCAL) ?? a.bytes(IFA_ADDRESS);
  if (!addr || addr.length !== 4) return undefined;
  const out: Address = { index: p.readUInt32LE(4), address: formatIPv4(addr), prefixLen: p.readUInt8(1), scope: p.readUInt8(3) };
  const label = a.string(IFA_LABEL);
  if (label) out.label = label;
  return out;
}

export function decodeRoute(msg: NetlinkMessage): Route | undefined {
  const p = msg.payload;
  if (p.length < RTMSG_LEN || p.readUInt8(0) !== AF_INET) return undefined;
  const a = parseAttributes(p.subarray(RTMSG_LEN));
  const dst = a.bytes(RTA_DST);
  const dstLen = p.readUInt8(1);
  const route: Route = {
    dst: `${dst?.length === 4 ? formatIPv4(dst) : '0.0.0.0'}/${dstLen}`,
    table: a.u32(RTA_TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
  };
  const oif = a.u32(RTA_OIF);
  if (oif !== undefined) route.oifIndex = oif;
  const gw = a.bytes(RTA_GATEWAY);
  if (gw?.length === 4) route.gateway = formatIPv4(gw);
  const src = a.bytes(RTA_PREFSRC);
  if (src?.length === 4) route.source = formatIPv4(src);
  const metric = a.u32(RTA_PRIORITY);
  if (metric !== undefined) route.metric = metric;
  return route;
}

/** ifinfomsg + attributes addressing a link by index, or by IFLA_IFNAME when given a name. */
export function encodeLinkRequest(link: LinkRef, fill: (w: AttributeWriter) => void = () => {}, flags = 0, change = 0): Buffer {
  const w = new AttributeWriter();
  if (typeof link === 'string') {
    checkName(link);
    w.string(IFLA_IFNAME, link);
  }
  fill(w);
  return Buffer.concat([ifinfomsg(typeof link === 'number' ? link : 0, flags, change), w.build()]);
}

/** RTM_NEWLINK payload creating `name` of `kind`, with kind-specific IFLA_INFO_DATA. */
export function encodeLinkCreate(name: string, kind: string, opts: LinkCommonOptions, data?: (w: AttributeWriter) => void): Buffer {
  checkName(name);
  const w = new AttributeWriter().string(IFLA_IFNAME, name);
  if (opts.mtu !== undefined) w.u32(IFLA_MTU, opts.mtu);
  if (opts.mac !== undefined) w.bytes(IFLA_ADDRESS, parseMac(opts.mac));
  w.nested(IFLA_LINKINFO, (li) => {
    li.string(IFLA_INFO_KIND, kind);
    if (data) li.nested(IFLA_INFO_DATA, data);
  });
  return Buffer.concat([ifinfomsg(), w.build()]);
}

/** IFLA_INFO_DATA of a veth: its peer's name, namespace, MTU and MAC. */
export function vethData(peerName: string, opts: VethOptions): (d: AttributeWriter) => void {
  checkName(peerName);
  return (d) => {
    const peer = new AttributeWriter().string(IFLA_IFNAME, peerName);
    if (opts.peerNetns !== undefined) peer.u32(IFLA_NET_NS_FD, nsFd(opts.peerNetns));
    if (opts.peerMtu !== undefined) peer.u32(IFLA_MTU, opts.peerMtu);
    if (opts.peerMac !== undefined) peer.bytes(IFLA_ADDRESS, parseMac(opts.peerMac));
    d.bytes(VETH_INFO_PEER, Buffer.concat([ifinfomsg(), peer.build()]));
  };
}

/** IFLA_INFO_DATA of a vxlan device; the underlay already resolved to its index. */
export function vxlanData(opts: VxlanOptions, underlayIndex: number | undefined): (d: AttributeWriter) => void {
  return (d) => {
    if (opts.id !== undefined) d.u32(IFLA_VXLAN_ID, opts.id);
    if (opts.external) d.u8(IFLA_VXLAN_COLLECT_METADATA, 1);
    if (opts.port !== undefined) d.u16be(IFLA_VXLAN_PORT, opts.port);
    if (opts.local !== undefined) d.bytes(IFLA_VXLAN_LOCAL, parseIPv4(opts.local));
    if (underlayIndex !== undefined) d.u32(IFLA_VXLAN_LINK, underlayIndex);
    if (opts.ttl !== undefined) d.u8(IFLA_VXLAN_TTL, opts.ttl);
    d.u8(IFLA_VXLAN_LEARNING, opts.learning ? 1 : 0);
    d.u8(IFLA_VXLAN_UDP_CSUM, opts.udpChecksum ? 1 : 0);
  };
}

/** IFLA_* attribute setters for RTM_SETLINK. */
export const setLinkAttr = {
  master: (index: number) => (w: AttributeWriter): void => void w.u32(IFLA_MASTER, index),
  mtu: (mtu: number) => (w: AttributeWriter): void => void w.u32(IFLA_MTU, mtu),
  mac: (mac: string) => {
    const bytes = parseMac(mac);
    return (w: AttributeWriter): void => void w.bytes(IFLA_ADDRESS, bytes);
  },
  netns: (ns: NetnsHandle | number) => (w: AttributeWriter): void => void w.u32(IFLA_NET_NS_FD, nsFd(ns)),
  name: (name: string) => {
    checkName(name);
    return (w: AttributeWriter): void => void w.string(IFLA_IFNAME, name);
  },
};

/** RTM_NEWADDR / RTM_DELADDR payload for an IPv4 `cidr` on link `index` (with the broadcast `brd +` computes). */
export function encodeAddressRequest(type: number, index: number, cidr: string): Buffer {
  const { address, prefixLen } = parseIPv4Prefix(cidr);
  const hdr = Buffer.alloc(IFADDRMSG_LEN);
  hdr.writeUInt8(AF_INET, 0);
  hdr.writeUInt8(prefixLen, 1);
  hdr.writeUInt8(RT_SCOPE_UNIVERSE, 3);
  hdr.writeUInt32LE(index, 4);
  const ip = parseIPv4(address);
  const w = new AttributeWriter().bytes(IFA_LOCAL, ip).bytes(IFA_ADDRESS, ip);
  if (type === RTM_NEWADDR && prefixLen < 31) {
    // Same broadcast address `ip addr add ... brd +` would compute.
    const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
    const brd = Buffer.alloc(4);
    brd.writeUInt32BE((ip.readUInt32BE(0) | ~mask) >>> 0);
    w.bytes(IFA_BROADCAST, brd);
  }
  return Buffer.concat([hdr, w.build()]);
}

/** RTM_GETADDR dump request for IPv4 addresses. */
export function encodeAddressDump(): Buffer {
  const hdr = Buffer.alloc(IFADDRMSG_LEN);
  hdr.writeUInt8(AF_INET, 0);
  return hdr;
}

/** RTM_NEWROUTE / RTM_DELROUTE payload; the output link already resolved to its index. */
export function encodeRoute(spec: RouteSpec, oifIndex: number | undefined, forDelete: boolean): Buffer {
  const { address, prefixLen } = parseIPv4Prefix(spec.dst === 'default' ? '0.0.0.0/0' : spec.dst);
  const table = spec.table ?? RT_TABLE_MAIN;
  const hdr = Buffer.alloc(RTMSG_LEN);
  hdr.writeUInt8(AF_INET, 0);
  hdr.writeUInt8(prefixLen, 1);
  // rtm_table is 8 bits; larger ids travel only in RTA_TABLE (RT_TABLE_UNSPEC here).
  hdr.writeUInt8(table < 256 ? table : 0, 4);
  if (forDelete) {
    hdr.writeUInt8(spec.scope ?? RT_SCOPE_NOWHERE, 6);
  } else {
    hdr.writeUInt8(RTPROT_BOOT, 5);
    hdr.writeUInt8(spec.scope ?? (spec.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK), 6);
    hdr.writeUInt8(RTN_UNICAST, 7);
  }
  const w = new AttributeWriter();
  if (prefixLen > 0) w.bytes(RTA_DST, parseIPv4(address));
  w.u32(RTA_TABLE, table);
  if (oifIndex !== undefined) w.u32(RTA_OIF, oifIndex);
  if (spec.gateway !== undefined) w.bytes(RTA_GATEWAY, parseIPv4(spec.gateway));
  if (spec.source !== undefined) w.bytes(RTA_PREFSRC, parseIPv4(spec.source));
  if (spec.metric !== undefined) w.u32(RTA_PRIORITY, spec.metric);
  return Buffer.concat([hdr, w.build()]);
}

/** RTM_GETROUTE asking which route the kernel picks for `ip` (`ip route get`). */
export function encodeRouteGet(ip: string): Buffer {
  const hdr = Buffer.alloc(RTMSG_LEN);
  hdr.writeUInt8(AF_INET, 0);
  hdr.writeUInt8(32, 1);
  return Buffer.concat([hdr, new AttributeWriter().bytes(RTA_DST, parseIPv4(ip)).build()]);
}

/** RTM_GETROUTE dump request for IPv4 routes. */
export function encodeRouteDump(): Buffer {
  const hdr = Buffer.alloc(RTMSG_LEN);
  hdr.writeUInt8(AF_INET, 0);
  return hdr;
}
