// Ethernet/IPv4 work the sleeve does on frames it carries (spec §5.7): reading
// MACs and the DF bit, fragmenting a too-large non-DF IPv4 packet itself, and
// building the ICMP "fragmentation needed" reply for a too-large DF packet.
import { ETHERNET_HEADER_SIZE } from './constants.js';

const ETHERTYPE_IPV4 = 0x0800;
const IP_DF = 0x4000;
const IP_MF = 0x2000;
const IP_OFFSET_MASK = 0x1fff;

/** A MAC address as a 48-bit number (map keys without allocation). */
export function macAt(frame: Uint8Array, offset: number): number {
  return (frame[offset]! * 2 ** 40) + (frame[offset + 1]! * 2 ** 32)
    + ((frame[offset + 2]! << 24) >>> 0) + (frame[offset + 3]! << 16) + (frame[offset + 4]! << 8) + frame[offset + 5]!;
}

export const dstMac = (frame: Uint8Array): number => macAt(frame, 0);
export const srcMac = (frame: Uint8Array): number => macAt(frame, 6);

/** Group bit of the first octet: broadcast and multicast MACs are never learned (spec §5.8). */
export function isMulticastMac(frame: Uint8Array, offset = 0): boolean {
  return (frame[offset]! & 1) === 1;
}

/** Spanning-tree BPDU destination 01:80:c2:00:00:00 (spec §5.8: dropped). */
export function isStpFrame(frame: Uint8Array): boolean {
  return frame[0] === 0x01 && frame[1] === 0x80 && frame[2] === 0xc2 && frame[3] === 0 && frame[4] === 0 && frame[5] === 0;
}

export function formatMacNumber(mac: number): string {
  return mac.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** The IPv4 header's offset when the frame is an IPv4 packet with a sane header, else -1. */
function ipv4Offset(frame: Uint8Array): number {
  if (frame.length < ETHERNET_HEADER_SIZE + 20) return -1;
  if (((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_IPV4) return -1;
  const ihl = (frame[ETHERNET_HEADER_SIZE]! & 0x0f) * 4;
  if ((frame[ETHERNET_HEADER_SIZE]! >> 4) !== 4 || ihl < 20 || frame.length < ETHERNET_HEADER_SIZE + ihl) return -1;
  return ETHERNET_HEADER_SIZE;
}

export function isIPv4(frame: Uint8Array): boolean {
  return ipv4Offset(frame) >= 0;
}

/** IPv4 with the DF flag set. */
export function isIPv4DF(frame: Uint8Array): boolean {
  const ip = ipv4Offset(frame);
  return ip >= 0 && (frame[ip + 6]! & 0x40) !== 0;
}

/** The Internet checksum (RFC 1071) of bytes[start, end). */
export function internetChecksum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if ((end - start) & 1) sum += bytes[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function setIPChecksum(frame: Uint8Array, ip: number, ihl: number): void {
  frame[ip + 10] = 0;
  frame[ip + 11] = 0;
  const c = internetChecksum(frame, ip, ip + ihl);
  frame[ip + 10] = c >> 8;
  frame[ip + 11] = c & 0xff;
}

/**
 * Splits an IPv4 frame so each fragment's IP packet fits `mtu` (spec §5.7):
 * payload per fragment (mtu − IHL·4) rounded down to a multiple of 8, MF on
 * all but the last (and on the last too if the original had it), offsets added
 * to the original's, checksums recomputed. Returns [] when it cannot split.
 */
export function fragmentIPv4(frame: Uint8Array, mtu: number): Uint8Array[] {
  const ip = ipv4Offset(frame);
  if (ip < 0) return [];
  const ihl = (frame[ip]! & 0x0f) * 4;
  const totalLen = Math.min((frame[ip + 2]! << 8) | frame[ip + 3]!, frame.length - ip);
  const flagsOff = (frame[ip + 6]! << 8) | frame[ip + 7]!;
  const baseOffset = flagsOff & IP_OFFSET_MASK;
  const originalMF = (flagsOff & IP_MF) !== 0;
  const chunk = Math.floor((mtu - ihl) / 8) * 8;
  if (chunk <= 0) return [];
  const payload = frame.subarray(ip + ihl, ip + totalLen);
  const out: Uint8Array[] = [];
  for (let at = 0; at < payload.length; at += chunk) {
    const part = payload.subarray(at, Math.min(at + chunk, payload.length));
    const last = at + part.length >= payload.length;
    const f = new Uint8Array(ip + ihl + part.length);
    f.set(frame.subarray(0, ip + ihl), 0);
    f.set(part, ip + ihl);
    const len = ihl + part.length;
    f[ip + 2] = len >> 8;
    f[ip + 3] = len & 0xff;
    const fo = (baseOffset + at / 8) | (!last || originalMF ? IP_MF : 0) | (flagsOff & IP_DF);
    f[ip + 6] = fo >> 8;
    f[ip + 7] = fo & 0xff;
    setIPChecksum(f, ip, ihl);
    out.push(f);
  }
  return out;
}

/**
 * ICMPv4 type 3 code 4 for a DF frame too large for the overlay (spec §5.7):
 * MACs and IPs swapped, TTL 64, next-hop MTU = `mtu`, quoting the IP header
 * and the first 8 bytes of its payload.
 */
export function icmpFragNeeded(frame: Uint8Array, mtu: number): Uint8Array | undefined {
  const ip = ipv4Offset(frame);
  if (ip < 0) return undefined;
  const ihl = (frame[ip]! & 0x0f) * 4;
  const quoteLen = Math.min(ihl + 8, frame.length - ip);
  const icmpLen = 8 + quoteLen;
  const out = new Uint8Array(ETHERNET_HEADER_SIZE + 20 + icmpLen);
  out.set(frame.subarray(6, 12), 0); // dst MAC := original src
  out.set(frame.subarray(0, 6), 6); // src MAC := original dst
  out[12] = 0x08;
  out[13] = 0x00;
  const o = ETHERNET_HEADER_SIZE;
  out[o] = 0x45;
  const total = 20 + icmpLen;
  out[o + 2] = total >> 8;
  out[o + 3] = total & 0xff;
  out[o + 8] = 64; // TTL
  out[o + 9] = 1; // ICMP
  out.set(frame.subarray(ip + 16, ip + 20), o + 12); // src IP := original dst
  out.set(frame.subarray(ip + 12, ip + 16), o + 16); // dst IP := original src
  setIPChecksum(out, o, 20);
  const c = o + 20;
  out[c] = 3;
  out[c + 1] = 4;
  out[c + 6] = (mtu >> 8) & 0xff;
  out[c + 7] = mtu & 0xff;
  out.set(frame.subarray(ip, ip + quoteLen), c + 8);
  const sum = internetChecksum(out, c, out.length);
  out[c + 2] = sum >> 8;
  out[c + 3] = sum & 0xff;
  return out;
}
