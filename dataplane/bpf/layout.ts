// Byte layouts shared with the BPF programs (dataplane/bpf/include/*.h) and
// the value encodings the control plane needs: pure functions, no kernel.
// Host byte order (little-endian x86-64) unless said otherwise.
import { formatMac as formatMacBytes } from '../netlink/inet.js';

export const COUNTER_NAMES = [
  'fwd_local', 'fwd_to_tunnel', 'fwd_from_tunnel', 'fwd_relay', 'flood',
  'flood_local_copy', 'flood_tunnel_copy', 'learned', 'to_userspace',
  'drop_runt', 'drop_no_config', 'drop_hairpin', 'drop_no_route',
  'drop_no_tunnel_key', 'drop_set_tunnel_key', 'drop_unknown_source',
  'drop_bounce', 'drop_relay_loop', 'drop_source_is_local',
  'to_bridge', 'learned_local', 'fwd_from_underlay', 'drop_decap',
  'tunnel_source_unsupported',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;

export const MAX_SHORT_ID = 0xfff;
export const MAX_LOCAL_PORTS = 64;
export const MAX_BCAST_HOPS = 32;
export const CFG_F_LEARN = 1;
/** Bridge mode: what the kernel cannot deliver goes on into the bridge (and the sleeve). */
export const CFG_F_BRIDGE = 2;
/** Learn container MACs from frames entering local ports. */
export const CFG_F_LEARN_LOCAL = 4;
/** The router has stopped: frames from the tunnel reach local ports only, never relayed on. */
export const CFG_F_NO_RELAY = 8;
export const PORT_F_REDIRECT_PEER = 1;
/** The bridge device (the host's own port, bridge mode): frames for it enter the host's stack. */
export const PORT_F_HOST = 2;
/** In a broadcast tree's count word: the tree continues to a neighbour reached over the sleeve. */
export const BCAST_F_SLEEVE = 0x8000_0000;
/** weave_peer.flags: frames from the peer are accepted, none are sent to it through the tunnel (WEAVE_PEER_F_RECEIVE_ONLY). */
export const PEER_F_RECEIVE_ONLY = 1;

export interface DatapathConfig {
  localShortId: number;
  tunnelIfindex: number;
  learn: boolean;
  /** Learned remote MACs older than this are treated as unknown; 0 = never. */
  macTtlSec: number;
  /** Bridge mode (CFG_F_BRIDGE); implies learning local MACs. Default false. */
  bridge?: boolean;
  /** CFG_F_NO_RELAY: the router has stopped. Default false (every open clears it). */
  noRelay?: boolean;
}

export interface LearnedMac {
  mac: string;
  peerShortId: number;
  /** Seconds since the frame that last refreshed the entry (refreshed at most once a second). */
  ageSec: number;
}

/** A local MAC the kernel learned behind a port (bridge mode). */
export interface LearnedLocalMac {
  mac: string;
  ifindex: number;
  /** Seconds since the frame that last refreshed the entry (refreshed at most once a second). */
  ageSec: number;
}

export function checkShortId(id: number, what = 'short id'): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_SHORT_ID) {
    throw new RangeError(`${what} ${id} is not a 12-bit peer short id (0..4095, spec §4.8)`);
  }
  return id;
}

export function macKey(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new RangeError(`invalid MAC address ${JSON.stringify(mac)} (want aa:bb:cc:dd:ee:ff)`);
  }
  const k = Buffer.alloc(8);
  parts.forEach((p, i) => { k[i] = parseInt(p, 16); });
  return k;
}

/** The MAC in a map key (its first 6 bytes) as text. */
export function formatMac(key: Uint8Array): string {
  return formatMacBytes(key.subarray(0, 6));
}

/** Dotted IPv4 -> u32 in host order (the bpf_tunnel_key convention). */
export function ipv4ToHostU32(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RangeError(`invalid IPv4 address ${JSON.stringify(ip)}`);
  }
  return parts.reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);
}

export function hostU32ToIpv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

/** Weave's fastdp VNI: source short id in bits 0-11, destination in bits 12-23 (spec §6.2). */
export function vniFor(sourceShortId: number, destinationShortId: number): number {
  return checkShortId(sourceShortId, 'source short id') | (checkShortId(destinationShortId, 'destination short id') << 12);
}

export function parseVni(vni: number): { source: number; destination: number } {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new RangeError(`VNI ${vni} is not a 24-bit value`);
  return { source: vni & MAX_SHORT_ID, destination: (vni >>> 12) & MAX_SHORT_ID };
}
