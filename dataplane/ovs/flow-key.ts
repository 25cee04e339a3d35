// Flow keys and masks (OVS_KEY_ATTR_*, spec §6.5-6.7): the fields Weave
// matches on — in_port, Ethernet src/dst, tunnel (id, IPv4 src/dst, TTL,
// flags), EtherType — encoded to and decoded from nested attribute lists.
// A mask has the same shape as a key; a field absent from the mask is wildcarded.

import { AttributeWriter, NLA_F_NESTED, formatIPv4, formatMac, parseAttributes, parseIPv4, parseMac, type Attribute, type Attributes } from '../netlink/index.js';
import {
  OVS_KEY_ATTR_DP_HASH,
  OVS_KEY_ATTR_ETHERNET,
  OVS_KEY_ATTR_ETHERTYPE,
  OVS_KEY_ATTR_IN_PORT,
  OVS_KEY_ATTR_PRIORITY,
  OVS_KEY_ATTR_RECIRC_ID,
  OVS_KEY_ATTR_SKB_MARK,
  OVS_KEY_ATTR_TUNNEL,
  OVS_TUNNEL_KEY_ATTR_CSUM,
  OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT,
  OVS_TUNNEL_KEY_ATTR_ID,
  OVS_TUNNEL_KEY_ATTR_IPV4_DST,
  OVS_TUNNEL_KEY_ATTR_IPV4_SRC,
  OVS_TUNNEL_KEY_ATTR_TOS,
  OVS_TUNNEL_KEY_ATTR_TP_DST,
  OVS_TUNNEL_KEY_ATTR_TP_SRC,
  OVS_TUNNEL_KEY_ATTR_TTL,
} from './constants.js';
import { MalformedOdpError } from './errors.js';

/** OVS_KEY_ATTR_TUNNEL contents; also the argument of SET(tunnel). */
export interface TunnelKey {
  /** 64-bit tunnel id; for VXLAN the low 24 bits are the VNI (spec §6.2). */
  id?: bigint;
  ipv4Src?: string;
  ipv4Dst?: string;
  tos?: number;
  /** Always written (the kernel requires it in keys); 0 when absent. */
  ttl?: number;
  dontFragment?: boolean;
  csum?: boolean;
  tpSrc?: number;
  tpDst?: number;
}

export interface EthernetKey {
  src: string;
  dst: string;
}

/** A flow key (or mask). Fields not listed stay in `other`, undecoded, in wire order. */
export interface FlowKey {
  inPort?: number;
  ethernet?: EthernetKey;
  ethertype?: number;
  tunnel?: TunnelKey;
  priority?: number;
  skbMark?: number;
  recircId?: number;
  dpHash?: number;
  /** Key attributes this module does not model (e.g. IPV4, ICMP in upcall keys). Preserved on re-encode. */
  other?: Attribute[];
}

/** Tunnel id for Weave's VXLAN: source short id in bits 0-11, destination in 12-23 (spec §6.2). */
export function weaveTunnelId(srcShortId: number, dstShortId: number): bigint {
  for (const [what, v] of [['source', srcShortId], ['destination', dstShortId]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xfff) throw new RangeError(`${what} short peer id ${v} is out of range 0..4095`);
  }
  return BigInt(srcShortId | (dstShortId << 12));
}

/** Splits a Weave tunnel id back into its short peer ids (spec §6.2). */
export function parseWeaveTunnelId(id: bigint): { srcShortId: number; dstShortId: number } {
  const vni = Number(id & 0xffffffn);
  return { srcShortId: vni & 0xfff, dstShortId: (vni >> 12) & 0xfff };
}

function u8(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${what} ${v} is out of range 0..255`);
  return v;
}

/** Writes a tunnel attribute list (inside KEY_ATTR_TUNNEL, or inside SET). */
export function writeTunnelKey(w: AttributeWriter, t: TunnelKey): void {
  if (t.id !== undefined) w.u64be(OVS_TUNNEL_KEY_ATTR_ID, t.id);
  if (t.ipv4Src !== undefined) w.bytes(OVS_TUNNEL_KEY_ATTR_IPV4_SRC, parseIPv4(t.ipv4Src));
  if (t.ipv4Dst !== undefined) w.bytes(OVS_TUNNEL_KEY_ATTR_IPV4_DST, parseIPv4(t.ipv4Dst));
  if (t.tos !== undefined) w.u8(OVS_TUNNEL_KEY_ATTR_TOS, u8('tunnel TOS', t.tos));
  // spec §6.6: TTL is always emitted; the kernel rejects tunnel keys without it.
  w.u8(OVS_TUNNEL_KEY_ATTR_TTL, u8('tunnel TTL', t.ttl ?? 0));
  if (t.dontFragment) w.flag(OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT);
  if (t.csum) w.flag(OVS_TUNNEL_KEY_ATTR_CSUM);
  if (t.tpSrc !== undefined) w.u16be(OVS_TUNNEL_KEY_ATTR_TP_SRC, t.tpSrc);
  if (t.tpDst !== undefined) w.u16be(OVS_TUNNEL_KEY_ATTR_TP_DST, t.tpDst);
}

function sized(a: Attribute, size: number, what: string): Buffer {
  if (a.value.length !== size) throw new MalformedOdpError(`${what} has ${a.value.length} bytes, expected ${size}`);
  return a.value;
}

export function decodeTunnelKey(attrs: Attributes): TunnelKey {
  const t: TunnelKey = {};
  for (const a of attrs.list) {
    switch (a.type) {
      case OVS_TUNNEL_KEY_ATTR_ID:
        t.id = sized(a, 8, 'tunnel ID').readBigUInt64BE(0);
        break;
      case OVS_TUNNEL_KEY_ATTR_IPV4_SRC:
        t.ipv4Src = formatIPv4(sized(a, 4, 'tunnel IPV4_SRC'));
        break;
      case OVS_TUNNEL_KEY_ATTR_IPV4_DST:
        t.ipv4Dst = formatIPv4(sized(a, 4, 'tunnel IPV4_DST'));
        break;
      case OVS_TUNNEL_KEY_ATTR_TOS:
        t.tos = sized(a, 1, 'tunnel TOS')[0];
        break;
      case OVS_TUNNEL_KEY_ATTR_TTL:
        t.ttl = sized(a, 1, 'tunnel TTL')[0];
        break;
      case OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT:
        sized(a, 0, 'tunnel DONT_FRAGMENT flag');
        t.dontFragment = true;
        break;
      case OVS_TUNNEL_KEY_ATTR_CSUM:
        sized(a, 0, 'tunnel CSUM flag');
        t.csum = true;
        break;
      case OVS_TUNNEL_KEY_ATTR_TP_SRC:
        t.tpSrc = sized(a, 2, 'tunnel TP_SRC').readUInt16BE(0);
        break;
      case OVS_TUNNEL_KEY_ATTR_TP_DST:
        t.tpDst = sized(a, 2, 'tunnel TP_DST').readUInt16BE(0);
        break;
      default:
        break; // OAM, Geneve/VXLAN options, IPv6: not used by Weave
    }
  }
  return t;
}

/** Encodes a key (or mask) as the contents of OVS_FLOW_ATTR_KEY / _MASK / OVS_PACKET_ATTR_KEY. */
export function encodeFlowKey(key: FlowKey): Buffer {
  const w = new AttributeWriter();
  if (key.priority !== undefined) w.u32(OVS_KEY_ATTR_PRIORITY, key.priority);
  if (key.inPort !== undefined) w.u32(OVS_KEY_ATTR_IN_PORT, key.inPort);
  if (key.ethernet !== undefined) {
    // struct ovs_key_ethernet: eth_src then eth_dst (spec §6.7).
    w.bytes(OVS_KEY_ATTR_ETHERNET, Buffer.concat([parseMac(key.ethernet.src), parseMac(key.ethernet.dst)]));
  }
  if (key.ethertype !== undefined) w.u16be(OVS_KEY_ATTR_ETHERTYPE, key.ethertype);
  if (key.skbMark !== undefined) w.u32(OVS_KEY_ATTR_SKB_MARK, key.skbMark);
  if (key.tunnel !== undefined) {
    const tunnel = key.tunnel;
    // spec §6.6: ODP nests are written without NLA_F_NESTED, as go-odp does.
    w.nestedNoFlag(OVS_KEY_ATTR_TUNNEL, (inner) => writeTunnelKey(inner, tunnel));
  }
  if (key.dpHash !== undefined) w.u32(OVS_KEY_ATTR_DP_HASH, key.dpHash);
  if (key.recircId !== undefined) w.u32(OVS_KEY_ATTR_RECIRC_ID, key.recircId);
  for (const a of key.other ?? []) w.bytes(a.type, a.value, a.nested ? NLA_F_NESTED : 0);
  return w.build();
}

/** Decodes the contents of a KEY/MASK attribute; throws MalformedOdpError on a bad layout. */
export function decodeFlowKey(bytes: Uint8Array): FlowKey {
  let attrs: Attributes;
  try {
    attrs = parseAttributes(bytes);
  } catch (e) {
    throw new MalformedOdpError(`flow key: ${(e as Error).message}`);
  }
  const key: FlowKey = {};
  const other: Attribute[] = [];
  for (const a of attrs.list) {
    switch (a.type) {
      case OVS_KEY_ATTR_PRIORITY:
        key.priority = sized(a, 4, 'key PRIORITY').readUInt32LE(0);
        break;
      case OVS_KEY_ATTR_IN_PORT:
        key.inPort = sized(a, 4, 'key IN_PORT').readUInt32LE(0);
        break;
      case OVS_KEY_ATTR_ETHERNET: {
        const v = sized(a, 12, 'key ETHERNET');
        key.ethernet = { src: formatMac(v.subarray(0, 6)), dst: formatMac(v.subarray(6, 12)) };
        break;
      }
      case OVS_KEY_ATTR_ETHERTYPE:
        key.ethertype = sized(a, 2, 'key ETHERTYPE').readUInt16BE(0);
        break;
      case OVS_KEY_ATTR_SKB_MARK:
        key.skbMark = sized(a, 4, 'key SKB_MARK').readUInt32LE(0);
        break;
      case OVS_KEY_ATTR_TUNNEL:
        try {
          key.tunnel = decodeTunnelKey(parseAttributes(a.value));
        } catch (e) {
          if (e instanceof MalformedOdpError) throw e;
          throw new MalformedOdpError(`key TUNNEL: ${(e as Error).message}`);
        }
        break;
      case OVS_KEY_ATTR_DP_HASH:
        key.dpHash = sized(a, 4, 'key DP_HASH').readUInt32LE(0);
        break;
      case OVS_KEY_ATTR_RECIRC_ID:
        key.recircId = sized(a, 4, 'key RECIRC_ID').readUInt32LE(0);
        break;
      default:
        other.push({ ...a, value: Buffer.from(a.value) });
    }
  }
  if (other.length > 0) key.other = other;
  return key;
}

/**
 * The mask that matches `key` exactly on every field it sets, as Weave's flows
 * do (spec §6.5/6.6) — except tunnel TTL and TOS, which vary along the
 * underlay path and are wildcarded (mask 0), and `other` fields, left out.
 */
export function exactMask(key: FlowKey): FlowKey {
  const mask: FlowKey = {};
  if (key.inPort !== undefined) mask.inPort = 0xffffffff;
  if (key.ethernet !== undefined) mask.ethernet = { src: 'ff:ff:ff:ff:ff:ff', dst: 'ff:ff:ff:ff:ff:ff' };
  if (key.ethertype !== undefined) mask.ethertype = 0xffff;
  if (key.priority !== undefined) mask.priority = 0xffffffff;
  if (key.skbMark !== undefined) mask.skbMark = 0xffffffff;
  if (key.tunnel !== undefined) {
    const t = key.tunnel;
    mask.tunnel = {
      ...(t.id !== undefined ? { id: 0xffffffffffffffffn } : {}),
      ...(t.ipv4Src !== undefined ? { ipv4Src: '255.255.255.255' } : {}),
      ...(t.ipv4Dst !== undefined ? { ipv4Dst: '255.255.255.255' } : {}),
      ttl: 0,
    };
  }
  return mask;
}
