// Typed access to the pinned datapath maps. Layouts mirror
// dataplane/bpf/include/weave_maps.h and weave_counters.h; host byte order
// (little-endian x86-64) unless said otherwise.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as c from './libbpf.js';
import { formatIPv4, parseIPv4 } from '../netlink/inet.js';
import { Errno } from '../netlink/errors.js';
import {
  COUNTER_NAMES, MAX_SHORT_ID, MAX_LOCAL_PORTS, MAX_BCAST_HOPS, CFG_F_LEARN, CFG_F_BRIDGE, CFG_F_LEARN_LOCAL, CFG_F_NO_RELAY, PORT_F_REDIRECT_PEER,
  PORT_F_HOST, BCAST_F_SLEEVE, PEER_F_RECEIVE_ONLY,
  checkShortId, macKey, formatMac, ipv4ToHostU32, hostU32ToIpv4,
  type Counters, type DatapathConfig, type LearnedMac, type LearnedLocalMac,
} from './layout.js';

export * from './layout.js';

/** sizeof(struct weave_peer): the underlay address, the flags, the tunnel's source address. */
const PEER_VALUE_SIZE = 12;

/** A weave_peers entry as read back. */
export interface PeerEntry {
  underlayIp: string;
  receiveOnly: boolean;
  /** The tunnel's source address; absent: the route's choice. */
  localIp?: string;
}

export const MAP_NAMES = [
  'weave_config', 'weave_local_macs', 'weave_remote_macs', 'weave_peers',
  'weave_bcast', 'weave_local_ports', 'weave_counters', 'weave_port_flags', 'weave_bridge_ports',
  'weave_underlay_addrs',
] as const;
export type MapName = (typeof MAP_NAMES)[number];

/** Order of enum weave_counter. */
/** Per-CPU map values are sized by the possible CPUs (e.g. "0-1"), not the online ones. */
function possibleCpuCount(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let max = 0;
  for (const range of text.split(',')) max = Math.max(max, Number(range.split('-').pop()));
  return max + 1;
}

function u32Key(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function fail(what: string, rc: number): never {
  const errno = rc < 0 ? -rc : c.lastErrno();
  throw new Error(`${what} failed (errno ${errno})`);
}

/** weave_bridge_ports (bridge mode): the bridge ports that are not containers. */
export interface BridgePorts {
  /** The bridge device, whose tc egress runs from-host; 0 = none. */
  hostIfindex: number;
  /** The sleeve's bridge port (vethwe-bridge), whose tc ingress runs from-sleeve; 0 = none. */
  sleeveIfindex: number;
  /** Fastdp next hops of broadcasts the sleeve hands us. */
  sleeveRelayHops: readonly number[];
}

/** struct weave_local_port: ifindex, WEAVE_PORT_F_* flags, last seen (ns, CLOCK_MONOTONIC; 0 = written by the control plane). */
const LOCAL_PORT_SIZE = 16;

function localPortValue(ifindex: number, redirectPeer: boolean, host: boolean, lastSeenNs: bigint): Buffer {
  const v = Buffer.alloc(LOCAL_PORT_SIZE);
  v.writeUInt32LE(ifindex, 0);
  v.writeUInt32LE((redirectPeer ? PORT_F_REDIRECT_PEER : 0) | (host ? PORT_F_HOST : 0), 4);
  v.writeBigUInt64LE(lastSeenNs, 8);
  return v;
}

const BCAST_HOPS_SIZE = 4 + 2 * MAX_BCAST_HOPS;

/** struct weave_bcast_hops: count (with BCAST_F_SLEEVE) and the next hops' short ids. */
function encodeBroadcastHops(what: string, hops: readonly number[], toSleeve: boolean): Buffer {
  if (hops.length > MAX_BCAST_HOPS) throw new RangeError(`${what} has ${hops.length} next hops; the datapath holds ${MAX_BCAST_HOPS}`);
  const v = Buffer.alloc(BCAST_HOPS_SIZE);
  v.writeUInt32LE((hops.length | (toSleeve ? BCAST_F_SLEEVE : 0)) >>> 0, 0);
  hops.forEach((h, i) => v.writeUInt16LE(checkShortId(h, 'next hop'), 4 + 2 * i));
  return v;
}

/** The map file descriptors of one datapath instance. */
export class DatapathMaps {
  private readonly possibleCpus = possibleCpuCount();

  constructor(readonly fds: Readonly<Record<MapName, number>>, private readonly owned = false) {}

  /** Opens the maps pinned in `pinDir` (by another process, or an earlier run). */
  static openPinned(pinDir: string): DatapathMaps {
    const fds = {} as Record<MapName, number>;
    for (const name of MAP_NAMES) {
      const fd = c.objGet(join(pinDir, name));
      if (fd < 0) {
        for (const f of Object.values(fds)) c.close(f);
        throw new Error(`no pinned map ${join(pinDir, name)} (errno ${-fd}); is the datapath loaded with this pin directory?`);
      }
      fds[name] = fd;
    }
    return new DatapathMaps(fds, true);
  }

  close(): void {
    if (this.owned) for (const fd of Object.values(this.fds)) c.close(fd);
  }

  private update(map: MapName, key: Buffer, value: Buffer): void {
    const rc = c.mapUpdateElem(this.fds[map], key, value, c.BPF_ANY);
    if (rc !== 0) fail(`update ${map}`, rc);
  }

  private remove(map: MapName, key: Buffer): boolean {
    const rc = c.mapDeleteElem(this.fds[map], key);
    if (rc === 0) return true;
    if (rc === -Errno.ENOENT) return false;
    fail(`delete from ${map}`, rc);
  }

  private keys(map: MapName, keySize: number): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(keySize);
      const rc = c.mapGetNextKey(this.fds[map], prev, next);
      if (rc === -2) return out;
      if (rc !== 0) fail(`iterate ${map}`, rc);
      out.push(next);
      prev = next;
    }
  }

  setConfig(cfg: DatapathConfig): void {
    const v = Buffer.alloc(16);
    v.writeUInt32LE(checkShortId(cfg.localShortId, 'local short id'), 0);
    v.writeUInt32LE(cfg.tunnelIfindex, 4);
    v.writeUInt32LE((cfg.learn ? CFG_F_LEARN : 0) | (cfg.bridge ? CFG_F_BRIDGE | CFG_F_LEARN_LOCAL : 0) | (cfg.noRelay ? CFG_F_NO_RELAY : 0), 8);
    v.writeUInt32LE(cfg.macTtlSec, 12);
    this.update('weave_config', u32Key(0), v);
  }

  /** The config a loader wrote (e.g. before a restart), or undefined when none was written yet. */
  readConfig(): DatapathConfig | undefined {
    const v = Buffer.alloc(16);
    if (c.mapLookupElem(this.fds.weave_config, u32Key(0), v) !== 0 || v.readUInt32LE(4) === 0) return undefined;
    const flags = v.readUInt32LE(8);
    return {
      localShortId: v.readUInt32LE(0), tunnelIfindex: v.readUInt32LE(4), learn: (flags & CFG_F_LEARN) !== 0,
      macTtlSec: v.readUInt32LE(12), bridge: (flags & CFG_F_BRIDGE) !== 0, noRelay: (flags & CFG_F_NO_RELAY) !== 0,
    };
  }

  /**
   * `redirectPeer`: the port is a veth whose other end is in a container
   * namespace (see LocalPortSpec); `host`: the port is the bridge device, frames
   * for the MAC enter the host's stack (bridge mode).
   */
  setLocalMac(mac: string, ifindex: number, redirectPeer = false, host = false): void {
    this.update('weave_local_macs', macKey(mac), localPortValue(ifindex, redirectPeer, host, 0n));
  }

  /** Records a local MAC as if the kernel had just learned it behind port `ifindex` (aged like a learned remote MAC). */
  setLearnedLocalMac(mac: string, ifindex: number): void {
    this.update('weave_local_macs', macKey(mac), localPortValue(ifindex, false, false, process.hrtime.bigint()));
  }

  deleteLocalMac(mac: string): boolean {
    return this.remove('weave_local_macs', macKey(mac));
  }

  listLocalMacs(): Map<string, number> {
    const out = new Map<string, number>();
    const v = Buffer.alloc(LOCAL_PORT_SIZE);
    for (const k of this.keys('weave_local_macs', 8)) {
      if (c.mapLookupElem(this.fds.weave_local_macs, k, v) === 0) out.set(formatMac(k), v.readUInt32LE(0));
    }
    return out;
  }

  /**
   * Local MACs the kernel learned (bridge mode), with their age against the
   * kernel's monotonic clock; entries the control plane wrote are not listed.
   */
  listLearnedLocalMacs(): LearnedLocalMac[] {
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const v = Buffer.alloc(LOCAL_PORT_SIZE);
    const out: LearnedLocalMac[] = [];
    for (const k of this.keys('weave_local_macs', 8)) {
      if (c.mapLookupElem(this.fds.weave_local_macs, k, v) !== 0) continue;
      const seen = v.readBigUInt64LE(8);
      if (seen !== 0n) out.push({ mac: formatMac(k), ifindex: v.readUInt32LE(0), ageSec: Number(now - seen) / 1e9 });
    }
    return out;
  }

  /**
   * The flags MACs learned behind local port `ifindex` get (bridge mode):
   * `redirectPeer` only for a veth whose other end is in a container namespace.
   */
  setPortFlags(ifindex: number, redirectPeer: boolean): void {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(redirectPeer ? PORT_F_REDIRECT_PEER : 0, 0);
    this.update('weave_port_flags', u32Key(ifindex), v);
  }

  deletePortFlags(ifindex: number): boolean {
    return this.remove('weave_port_flags', u32Key(ifindex));
  }

  /** ifindex -> redirectPeer of every port with flags. */
  listPortFlags(): Map<number, boolean> {
    const out = new Map<number, boolean>();
    const v = Buffer.alloc(4);
    for (const k of this.keys('weave_port_flags', 4)) {
      if (c.mapLookupElem(this.fds.weave_port_flags, k, v) === 0) out.set(k.readUInt32LE(0), (v.readUInt32LE(0) & PORT_F_REDIRECT_PEER) !== 0);
    }
    return out;
  }

  /** The flood list of local ports (replaces it; entries first, count last). */
  setLocalPorts(ifindexes: readonly number[]): void {
    if (ifindexes.length > MAX_LOCAL_PORTS) {
      throw new RangeError(`${ifindexes.length} local ports exceed the datapath's flood list of ${MAX_LOCAL_PORTS}`);
    }
    const v = Buffer.alloc(4 + 4 * MAX_LOCAL_PORTS);
    v.writeUInt32LE(ifindexes.length, 0);
    ifindexes.forEach((ifi, i) => v.writeUInt32LE(ifi, 4 + 4 * i));
    this.update('weave_local_ports', u32Key(0), v);
  }

  /**
   * Where frames for `shortId` go on the underlay (the peer itself or the next
   * hop towards it), and from which of our addresses (`localIp`; absent: the
   * route's choice). `receiveOnly`: its frames are accepted from there, but
   * nothing is sent to it through the tunnel (it is reached over the sleeve).
   */
  setPeer(shortId: number, underlayIp: string, opts: { receiveOnly?: boolean; localIp?: string } = {}): void {
    const v = Buffer.alloc(PEER_VALUE_SIZE);
    v.writeUInt32LE(ipv4ToHostU32(underlayIp), 0);
    v.writeUInt32LE(opts.receiveOnly ? PEER_F_RECEIVE_ONLY : 0, 4);
    v.writeUInt32LE(opts.localIp === undefined ? 0 : ipv4ToHostU32(opts.localIp), 8);
    this.update('weave_peers', u32Key(checkShortId(shortId)), v);
  }

  deletePeer(shortId: number): void {
    this.update('weave_peers', u32Key(checkShortId(shortId)), Buffer.alloc(PEER_VALUE_SIZE));
  }

  /** The peers frames are sent to: short id -> underlay address. */
  listPeers(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [id, p] of this.listPeerEntries()) if (!p.receiveOnly) out.set(id, p.underlayIp);
    return out;
  }

  /**
   * Every entry, the receive-only ones included. The array has a slot per
   * possible short id: read in one batch rather than 4096 lookups (which took
   * 25-65 ms of a starting router's CPU), a lookup each on a kernel without
   * batch operations. Pins of a build before the tunnel source (8-byte
   * entries) read too: a restarted router keeps their routes while it starts.
   */
  listPeerEntries(): Map<number, PeerEntry> {
    const out = new Map<number, PeerEntry>();
    const add = (id: number, ip: number, flags: number, local: number): void => {
      if (ip === 0) return;
      out.set(id, { underlayIp: hostU32ToIpv4(ip), receiveOnly: (flags & PEER_F_RECEIVE_ONLY) !== 0, ...(local !== 0 ? { localIp: hostU32ToIpv4(local) } : {}) });
    };
    const slots = MAX_SHORT_ID + 1;
    // Host-endian u32s, as the kernel keeps them: read through typed arrays, not a Buffer call per field.
    const keys = new Uint32Array(slots);
    const shape = c.mapShapeOfFd(this.fds.weave_peers);
    const valueSize = typeof shape === 'number' ? PEER_VALUE_SIZE : shape.valueSize;
    const words = valueSize / 4;
    const localOf = (w: ArrayLike<number>, at: number): number => (words > 2 ? w[at + 2]! : 0);
    const values = new Uint32Array(words * slots);
    const count = new Uint32Array([slots]);
    const rc = c.mapLookupBatch(this.fds.weave_peers, null, Buffer.alloc(4), keys, values, count, null);
    if (rc === 0 || rc === -Errno.ENOENT) {
      for (let i = 0; i < count[0]!; i++) add(keys[i]!, values[words * i]!, values[words * i + 1]!, localOf(values, words * i));
      return out;
    }
    const v = new Uint32Array(words);
    const bytes = Buffer.from(v.buffer);
    for (let id = 0; id <= MAX_SHORT_ID; id++) {
      if (c.mapLookupElem(this.fds.weave_peers, u32Key(id), bytes) === 0) add(id, v[0]!, v[1]!, localOf(v, 0));
    }
    return out;
  }

  /** `toSleeve`: the tree also continues to a neighbour reached over the sleeve (bridge mode). */
  setBroadcastNextHops(sourceShortId: number, hops: readonly number[], toSleeve = false): void {
    this.update('weave_bcast', u32Key(checkShortId(sourceShortId)), encodeBroadcastHops(`broadcast tree of peer ${sourceShortId}`, hops, toSleeve));
  }

  /** Bridge mode: the host's port (the bridge device), the sleeve's port and the sleeve relay tree (0 = none). */
  setBridgePorts(ports: BridgePorts): void {
    const v = Buffer.alloc(8 + BCAST_HOPS_SIZE);
    v.writeUInt32LE(ports.hostIfindex, 0);
    v.writeUInt32LE(ports.sleeveIfindex, 4);
    encodeBroadcastHops('sleeve relay tree', ports.sleeveRelayHops, false).copy(v, 8);
    this.update('weave_bridge_ports', u32Key(0), v);
  }

  readBridgePorts(): BridgePorts {
    const v = Buffer.alloc(8 + BCAST_HOPS_SIZE);
    const rc = c.mapLookupElem(this.fds.weave_bridge_ports, u32Key(0), v);
    if (rc !== 0) fail('read weave_bridge_ports', rc);
    const n = v.readUInt32LE(8) & 0xffff;
    const hops: number[] = [];
    for (let i = 0; i < n && i < MAX_BCAST_HOPS; i++) hops.push(v.readUInt16LE(12 + 2 * i));
    return { hostIfindex: v.readUInt32LE(0), sleeveIfindex: v.readUInt32LE(4), sleeveRelayHops: hops };
  }

  /**
   * This host's underlay addresses on which the receive fast path
   * (from-underlay) takes fastdp frames for UDP `port`: exactly these from now
   * on (an empty list turns the path off).
   */
  setUnderlayAddresses(addresses: readonly string[], port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new RangeError(`UDP port ${port} is out of range 1..65535`);
    // Keys in network order, as the packet's daddr.
    const wanted = new Set(addresses.map((a) => parseIPv4(a).toString('hex')));
    for (const k of this.keys('weave_underlay_addrs', 4)) if (!wanted.has(k.toString('hex'))) this.remove('weave_underlay_addrs', k);
    const v = Buffer.alloc(8);
    v.writeUInt16BE(port, 0);
    for (const a of addresses) this.update('weave_underlay_addrs', parseIPv4(a), v);
  }

  /** Underlay address -> fastdp UDP port, as the receive fast path sees them. */
  listUnderlayAddresses(): Map<string, number> {
    const out = new Map<string, number>();
    const v = Buffer.alloc(8);
    for (const k of this.keys('weave_underlay_addrs', 4)) {
      if (c.mapLookupElem(this.fds.weave_underlay_addrs, k, v) === 0) out.set(formatIPv4(k), v.readUInt16BE(0));
    }
    return out;
  }

  /** Forwarding entries held now: the local and the learned remote MACs (Weave's `weave_flows` for this datapath). */
  countForwardingEntries(): number {
    return this.keys('weave_local_macs', 8).length + this.keys('weave_remote_macs', 8).length;
  }

  /** Learned remote MACs, with their age against the kernel's monotonic clock. */
  listLearnedMacs(): LearnedMac[] {
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const v = Buffer.alloc(16);
    const out: LearnedMac[] = [];
    for (const k of this.keys('weave_remote_macs', 8)) {
      if (c.mapLookupElem(this.fds.weave_remote_macs, k, v) !== 0) continue;
      const seen = v.readBigUInt64LE(8);
      out.push({ mac: formatMac(k), peerShortId: v.readUInt32LE(0), ageSec: Number(now - seen) / 1e9 });
    }
    return out;
  }

  /** Records a remote MAC as if just learned from `peerShortId` (e.g. from gossip, or to re-point a moved MAC). */
  setRemoteMac(mac: string, peerShortId: number): void {
    const v = Buffer.alloc(16);
    v.writeUInt32LE(checkShortId(peerShortId, 'peer short id'), 0);
    v.writeBigUInt64LE(process.hrtime.bigint(), 8); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    this.update('weave_remote_macs', macKey(mac), v);
  }

  forgetLearnedMac(mac: string): boolean {
    return this.remove('weave_remote_macs', macKey(mac));
  }

  /**
   * Deletes the MACs learned from these peers; returns how many. A peer that
   * left the datapath takes its MACs with it: kept, they would point at a peer
   * frames can no longer be sent to until they aged out.
   */
  forgetMacsOfPeers(shortIds: ReadonlySet<number>): number {
    if (shortIds.size === 0) return 0;
    let n = 0;
    for (const e of this.listLearnedMacs()) if (shortIds.has(e.peerShortId) && this.forgetLearnedMac(e.mac)) n++;
    return n;
  }

  /** Deletes learned MACs, remote and local, older than `maxAgeSec`; returns how many. */
  expireLearnedMacs(maxAgeSec: number): number {
    let n = 0;
    for (const e of this.listLearnedMacs()) if (e.ageSec > maxAgeSec && this.forgetLearnedMac(e.mac)) n++;
    for (const e of this.listLearnedLocalMacs()) if (e.ageSec > maxAgeSec && this.deleteLocalMac(e.mac)) n++;
    return n;
  }

  /** Counters summed over all CPUs. */
  readCounters(): Counters {
    const v = Buffer.alloc(8 * this.possibleCpus);
    const out = {} as Counters;
    COUNTER_NAMES.forEach((name, i) => {
      const rc = c.mapLookupElem(this.fds.weave_counters, u32Key(i), v);
      if (rc !== 0) fail('read weave_counters', rc);
      let sum = 0n;
      for (let cpu = 0; cpu < this.possibleCpus; cpu++) sum += v.readBigUInt64LE(8 * cpu);
      out[name] = Number(sum);
    });
    return out;
  }
}
