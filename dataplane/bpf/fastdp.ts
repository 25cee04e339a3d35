// The eBPF fast datapath: loads from-container and from-tunnel, pins their maps
// (so a restarted process keeps forwarding and keeps its learned MACs), attaches
// them at tc clsact ingress, and applies a desired state idempotently.

import { existsSync, rmSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withNetns } from '../netlink/netns.js';
import { Rtnl } from '../netlink/rtnl.js';
import * as c from './libbpf.js';
import { ensurePinDir } from './bpffs.js';
import { DEFAULT_MAC_AGEING_SEC, LearnedMacAgeing } from './mac-ageing.js';
import { DatapathMaps, MAP_NAMES, checkShortId, macKey, ipv4ToHostU32, type Counters, type LearnedMac, type MapName } from './maps.js';
import { DEFAULT_TUNNEL_DEVICE, deleteTunnelDevice, ensureTunnelDevice, resolveIfindexes } from './vxlan-device.js';
import { DEFAULT_FASTDP_PORT } from '../../controlplane/well-known.js';

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/weave';
/** tc filter handle and priority of our programs (one per hook). */
const TC_HANDLE = 1;
const TC_PRIORITY = 1;
/** libbpf enum bpf_tc_attach_point. */
const BPF_TC_EGRESS = 2;
/**
 * The receive fast path's filter on an underlay interface, which other
 * software may also filter on: a handle of its own ("6784") so that replacing
 * and removing ours never touches theirs; priority 1 runs it first.
 */
const TC_UNDERLAY_HANDLE = 0x6784;
const RTN_UNICAST = 1;
/** The receive fast path's interfaces are looked up again after this long even when the peers' addresses are unchanged (an underlay route may have moved). */
const UNDERLAY_RECHECK_MS = 30_000;

export interface BpfFastDatapathOptions {
  /** This peer's 12-bit short id (spec §4.8). */
  localShortId: number;
  /** bpffs directory for the pinned maps; default /sys/fs/bpf/weave. */
  pinDir?: string;
  /** Where from-container.bpf.o and from-tunnel.bpf.o are; default dist/bpf. */
  objectDir?: string;
  /** Network namespace holding the ports and the tunnel device; default the current one. */
  netns?: string;
  tunnelDevice?: string;
  vxlanPort?: number;
  /** Learn remote MACs in the kernel (default true). */
  learn?: boolean;
  /** Learned MACs unused this long count as unknown (default 600 s, Weave's MAC expiry). */
  macTtlSec?: number;
  /**
   * Learned remote MACs no frame refreshed for this long are deleted from the
   * table (default 300 s, a Linux bridge's ageing time; see mac-ageing.ts).
   */
  macAgeingSec?: number;
  /**
   * Bridge mode: the local ports are also ports of a Linux bridge shared with
   * the sleeve; what the kernel cannot deliver goes on into the bridge, and
   * container MACs are learned in the kernel (LocalPortSpec.macs may be empty;
   * learned MACs stay while their port is a local port). Default false.
   */
  bridge?: boolean;
  /**
   * The receive fast path (from-underlay.bpf.c): fastdp frames for a local
   * container are decapsulated at tc ingress of the underlay interface that
   * routes to the peers, instead of passing the VXLAN device. Default true.
   * Must be off when peers may be encrypted (IPsec): that path would accept a
   * plaintext frame from them.
   */
  receiveFastPath?: boolean;
  /** Where notes go (a pinned map of an incompatible build was replaced); default stderr. */
  log?: (message: string) => void;
}

export interface LocalPortSpec {
  /** Host-side interface (container veth, or the host's bridge-side port). */
  ifname: string;
  /** MACs reachable through it. */
  macs: readonly string[];
  /**
   * The port is a veth whose other end sits in a container's namespace: deliver
   * frames straight to that end's ingress (bpf_redirect_peer), skipping one
   * backlog queue. Not for the host's own port. Default false.
   */
  redirectPeer?: boolean;
  /**
   * Bridge mode only, at most one port each. `host`: the bridge device itself
   * (frames the host sends are switched at its tc egress; frames for its MACs,
   * learned or listed, enter the host's stack; broadcasts from the tunnel reach
   * it). `sleeve`: the sleeve's bridge port (frames the sleeve injects are
   * switched at its tc ingress and may continue to fastdp peers; MACs learned
   * behind it are reached over the sleeve). Default `container`.
   */
  role?: PortRole;
}

export type PortRole = 'container' | 'host' | 'sleeve';

export interface PeerSpec {
  shortId: number;
  /** Underlay IPv4 that frames for this peer are sent to: the peer, or the next hop towards it. */
  underlayIp: string;
  /** Frames from it are accepted (from `underlayIp`), none sent to it through the tunnel: it is reached over the sleeve. */
  receiveOnly?: boolean;
  /** Our address the tunnel leaves from (that of the connection to the neighbour); absent: the route's choice. */
  localIp?: string;
}

export interface BroadcastTreeSpec {
  sourceShortId: number;
  /** Fastdp next hops (short ids). */
  nextHops: readonly number[];
  /** Bridge mode: the tree also continues to a neighbour reached over the sleeve (a copy goes to the sleeve's port). */
  toSleeve?: boolean;
}

export interface DesiredState {
  localPorts: readonly LocalPortSpec[];
  peers: readonly PeerSpec[];
  broadcastTrees: readonly BroadcastTreeSpec[];
  /** Bridge mode: fastdp next hops of broadcasts arriving from the sleeve (see weave_bridge_ports). */
  sleeveRelayHops?: readonly number[];
  /**
   * Bridge mode: forget the MACs the kernel learned behind the sleeve's port. Set when a
   * neighbour left the sleeve: what it put behind that port is now reached through the
   * tunnel, and a stale entry would hand its frames to a sleeve that no longer carries them.
   */
  forgetSleeveMacs?: boolean;
}

/** The first kernel whose bpf_skb_set_tunnel_key takes a source address (local_ipv4). */
const TUNNEL_SOURCE_SINCE: readonly [number, number] = [6, 0];

/**
 * Whether the kernel sends tunnel frames from the source address a peer entry
 * names. Where it does not, the programs fall back to the route's source, and
 * heartbeats must take that same source to tell the truth about the path.
 */
export function kernelTakesTunnelSource(release: string = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > TUNNEL_SOURCE_SINCE[0] || (major === TUNNEL_SOURCE_SINCE[0] && minor >= TUNNEL_SOURCE_SINCE[1]);
}

/** The programs of each object, and which tc hook each runs at. */
const FROM_CONTAINER = 'weave_from_container';
const FROM_HOST = 'weave_from_host';
const FROM_SLEEVE = 'weave_from_sleeve';
const FROM_TUNNEL = 'weave_from_tunnel';
const FROM_UNDERLAY = 'weave_from_underlay';

function defaultObjectDir(): string {
  // compiled: dist/dataplane/bpf/fastdp.js -> dist/bpf
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bpf');
}

/** The object file each program is compiled into. */
const PROGRAM_OBJECTS: Readonly<Record<string, string>> = {
  [FROM_CONTAINER]: 'from-container.bpf.o',
  [FROM_HOST]: 'from-container.bpf.o',
  [FROM_SLEEVE]: 'from-container.bpf.o',
  [FROM_TUNNEL]: 'from-tunnel.bpf.o',
  [FROM_UNDERLAY]: 'from-underlay.bpf.o',
};

class LoadedObject {
  private constructor(private obj: unknown, readonly progFds: ReadonlyMap<string, number>, readonly mapFds: Partial<Record<MapName, number>>) {}

  /**
   * Opens `path` with only `programs` to be loaded (none: the load creates or
   * reuses the pinned maps and nothing else) and loads it on a worker thread.
   */
  static async load(path: string, programs: readonly string[], pinDir: string, onReplaced: (name: string, why: string) => void): Promise<LoadedObject> {
    if (!existsSync(path)) throw new Error(`BPF object ${path} not found; build it with \`make bpf\``);
    const obj = c.objectOpenFile(path, null);
    if (!obj) throw new Error(`open BPF object ${path} failed (errno ${c.lastErrno()})`);
    try {
      const mapFds: Partial<Record<MapName, number>> = {};
      const maps: [MapName, unknown][] = [];
      for (const name of MAP_NAMES) {
        const m = c.objectFindMap(obj, name);
        if (!m) continue;
        const pinPath = join(pinDir, name);
        unpinIfIncompatible(m, pinPath, name, onReplaced);
        const rc = c.mapSetPinPath(m, pinPath);
        if (rc !== 0) throw new Error(`set pin path of map ${name} failed (errno ${-rc})`);
        maps.push([name, m]);
      }
      const progs: [string, unknown][] = [];
      for (let prog = c.objectNextProgram(obj, null); prog; prog = c.objectNextProgram(obj, prog)) {
        const wanted = programs.includes(c.programName(prog));
        c.programSetAutoload(prog, wanted);
        if (!wanted) continue;
        // SEC("tc") implies it, but set it explicitly: older libbpf needs it.
        c.programSetType(prog, c.BPF_PROG_TYPE_SCHED_CLS);
        progs.push([c.programName(prog), prog]);
      }
      const missing = programs.filter((p) => !progs.some(([name]) => name === p));
      if (missing.length > 0) throw new Error(`program ${missing.join(', ')} missing from ${path}; rebuild it with \`make bpf\``);
      const rc = await c.objectLoadAsync(obj);
      if (rc !== 0) {
        throw new Error(`load ${path} failed (errno ${-rc}); if the pinned maps in ${pinDir} come from an incompatible build, remove that directory; set WEAVE_BPF_DEBUG=1 for the verifier log`);
      }
      for (const [name, m] of maps) mapFds[name] = c.mapFd(m);
      return new LoadedObject(obj, new Map(progs.map(([name, prog]) => [name, c.programFd(prog)])), mapFds);
    } catch (e) {
      c.objectClose(obj);
      throw e;
    }
  }

  close(): void {
    if (this.obj) c.objectClose(this.obj);
    this.obj = null;
  }
}

/**
 * At most this many programs are verified at once (each load holds a libuv
 * pool thread and a core). The datapath opens in the background while the
 * router's first connections establish; five verifier runs at once on two
 * cores only made them take turns. Startup bench A/B, medians of 3 and 5 at
 * load 7-9: fastdp open 430-480 ms sooner, idle RSS 2 MiB lower (libbpf's
 * peak allocations), exec -> established within noise.
 */
const CONCURRENT_PROGRAM_LOADS = 2;

/** `fn` over `items`, at most `limit` running at once; settled results in the items' order. */
async function settleLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/**
 * Every program, each loaded as an object of its own: the verifier checks one
 * program at a time within a load, so separate loads on worker threads verify
 * them side by side (most of opening the datapath). The maps are created and
 * pinned first, by a load without programs, so the program loads all reuse
 * the same pinned maps instead of racing to create them.
 */
class LoadedPrograms {
  private constructor(private readonly maps: LoadedObject, private readonly objects: ReadonlyMap<string, LoadedObject>) {}

  static async load(objectDir: string, pinDir: string, onReplaced: (name: string, why: string) => void): Promise<LoadedPrograms> {
    const maps = await LoadedObject.load(join(objectDir, PROGRAM_OBJECTS[FROM_CONTAINER]!), [], pinDir, onReplaced);
    const programs = Object.entries(PROGRAM_OBJECTS);
    const loads = await settleLimited(programs, CONCURRENT_PROGRAM_LOADS, ([program, file]) => LoadedObject.load(join(objectDir, file), [program], pinDir, onReplaced));
    const objects = new Map<string, LoadedObject>();
    loads.forEach((r, i) => {
      if (r.status === 'fulfilled') objects.set(programs[i]![0], r.value);
    });
    const failed = loads.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const obj of objects.values()) obj.close();
      maps.close();
      throw failed.reason;
    }
    return new LoadedPrograms(maps, objects);
  }

  /** The pinned maps' fds (owned by the maps' object). */
  get mapFds(): Partial<Record<MapName, number>> {
    return this.maps.mapFds;
  }

  progFd(program: string): number {
    const fd = this.objects.get(program)?.progFds.get(program);
    if (fd === undefined) throw new Error(`program ${program} is not loaded`);
    return fd;
  }

  close(): void {
    for (const obj of this.objects.values()) obj.close();
    this.maps.close();
  }
}

/**
 * A map pinned by another build (a counter added, a value grown) cannot be
 * reused, and libbpf would refuse to load. After an upgrade that is expected:
 * unpin it so the load creates the map afresh (the control plane refills it;
 * the old programs keep their map until the new ones replace them).
 */
function unpinIfIncompatible(map: unknown, pinPath: string, name: string, onReplaced: (name: string, why: string) => void): void {
  if (!existsSync(pinPath)) return;
  const fd = c.objGet(pinPath);
  if (fd < 0) return; // not a map we can open: let the load report it
  let pinned: c.MapShape | number;
  try {
    pinned = c.mapShapeOfFd(fd);
  } finally {
    c.close(fd);
  }
  if (typeof pinned === 'number') return;
  const wanted = c.mapShapeOf(map);
  const differs = (Object.keys(wanted) as (keyof c.MapShape)[]).filter((k) => wanted[k] !== pinned[k]);
  if (differs.length === 0) return;
  rmSync(pinPath, { force: true });
  onReplaced(name, differs.map((k) => `${k} ${pinned[k]} -> ${wanted[k]}`).join(', '));
}

function attachIngress(ifindex: number, progFd: number, what: string, attachPoint = c.BPF_TC_INGRESS, handle = TC_HANDLE): void {
  const hook = c.tcHook(ifindex, attachPoint);
  const rc = c.tcHookCreate(hook);
  if (rc !== 0 && rc !== -17) throw new Error(`create clsact qdisc on ${what} failed (errno ${-rc})`); // -EEXIST is fine
  const opts = c.tcOpts({ progFd, flags: c.BPF_TC_F_REPLACE, handle, priority: TC_PRIORITY });
  const arc = c.tcAttach(hook, opts);
  if (arc !== 0) throw new Error(`attach tc ingress program to ${what} failed (errno ${-arc})`);
}

function detachIngress(ifindex: number, attachPoint = c.BPF_TC_INGRESS, handle = TC_HANDLE): void {
  const rc = c.tcDetach(c.tcHook(ifindex, attachPoint), c.tcOpts({ handle, priority: TC_PRIORITY }));
  // ENOENT: no such filter; ENODEV: the link is gone; EINVAL: no clsact qdisc on it.
  if (rc !== 0 && rc !== -2 && rc !== -19 && rc !== -22) throw new Error(`detach tc program from ifindex ${ifindex} failed (errno ${-rc})`);
}

/**
 * `weave reset`: removes the receive fast path's filter from every link of the
 * namespace. A process that attached it may be gone (kill -9), so the links are
 * swept rather than remembered; the filter holds the maps, so it must not
 * outlive them.
 */
export async function detachUnderlayHooks(netns?: string): Promise<void> {
  const rtnl = Rtnl.open(netns ? { netns } : {});
  let links: number[];
  try {
    links = (await rtnl.listLinks()).map((l) => l.index);
  } finally {
    rtnl.close();
  }
  const sweep = (): void => {
    for (const ifindex of links) detachIngress(ifindex, c.BPF_TC_INGRESS, TC_UNDERLAY_HANDLE);
  };
  if (netns) withNetns(netns, sweep);
  else sweep();
}

/**
 * `weave reset`: removes our programs from the bridge device (the host's port,
 * tc egress) and from its ports (tc ingress), swept from the kernel's links for
 * the same reason as the underlay hooks. The bridge and its ports are Weave's,
 * so a filter with our handle there is ours. Links that are gone take their
 * filters with them; a missing bridge leaves nothing to do.
 */
export async function detachPortHooks(bridge: string, netns?: string): Promise<void> {
  const rtnl = Rtnl.open(netns ? { netns } : {});
  let links: Awaited<ReturnType<Rtnl['listLinks']>>;
  try {
    links = await rtnl.listLinks();
  } finally {
    rtnl.close();
  }
  const br = links.find((l) => l.name === bridge);
  if (!br) return;
  const sweep = (): void => {
    detachPort(br.index, 'host');
    for (const l of links) if (l.masterIndex === br.index) detachPort(l.index, 'container');
  };
  if (netns) withNetns(netns, sweep);
  else sweep();
}

/** Each role's program and hook: the host's frames are seen leaving the bridge device (tc egress). */
function attachPort(ifindex: number, role: PortRole, programs: LoadedPrograms, what: string): void {
  switch (role) {
    case 'container': return attachIngress(ifindex, programs.progFd(FROM_CONTAINER), what);
    case 'host': return attachIngress(ifindex, programs.progFd(FROM_HOST), what, BPF_TC_EGRESS);
    case 'sleeve': return attachIngress(ifindex, programs.progFd(FROM_SLEEVE), what);
  }
}

function detachPort(ifindex: number, role: PortRole): void {
  detachIngress(ifindex, role === 'host' ? BPF_TC_EGRESS : c.BPF_TC_INGRESS);
}

export class BpfFastDatapath {
  private readonly attached = new Map<string, { ifindex: number; role: PortRole }>(); // ifname -> hook
  /** Pinned maps of another build that open() replaced (their state was not reusable). */
  replacedPins: readonly string[] = [];
  /** Underlay interfaces carrying the receive fast path (ifindex). */
  private readonly underlayHooks = new Set<number>();

  private constructor(
    private readonly opts: Required<Omit<BpfFastDatapathOptions, 'netns' | 'log' | 'macAgeingSec'>> & { netns?: string },
    private readonly programs: LoadedPrograms,
    readonly maps: DatapathMaps,
    readonly tunnelIfindex: number,
    /** Deletes the remote MACs not seen for the ageing time, every few seconds while open. */
    readonly macAgeing: LearnedMacAgeing,
  ) {}

  /** Loads (or reloads, keeping pinned maps) the programs and creates the tunnel device. */
  static async open(options: BpfFastDatapathOptions): Promise<BpfFastDatapath> {
    const opts = {
      localShortId: checkShortId(options.localShortId, 'local short id'),
      pinDir: options.pinDir ?? DEFAULT_PIN_DIR,
      objectDir: options.objectDir ?? defaultObjectDir(),
      netns: options.netns,
      tunnelDevice: options.tunnelDevice ?? DEFAULT_TUNNEL_DEVICE,
      vxlanPort: options.vxlanPort ?? DEFAULT_FASTDP_PORT,
      learn: options.learn ?? true,
      macTtlSec: options.macTtlSec ?? 600,
      bridge: options.bridge ?? false,
      receiveFastPath: options.receiveFastPath ?? true,
    };
    c.quietLibbpf();
    ensurePinDir(opts.pinDir);
    const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
    const replaced: string[] = [];
    const onReplaced = (name: string, why: string): void => {
      replaced.push(name);
      log(`eBPF fastdp: pinned map ${join(opts.pinDir, name)} is from another build (${why}); replaced by a new one`);
    };
    const tunnelIfindex = await ensureTunnelDevice({ name: opts.tunnelDevice, port: opts.vxlanPort, netns: opts.netns });
    const programs = await LoadedPrograms.load(opts.objectDir, opts.pinDir, onReplaced);
    const fds = {} as Record<MapName, number>;
    for (const name of MAP_NAMES) {
      const fd = programs.mapFds[name];
      if (fd === undefined) {
        programs.close();
        throw new Error(`map ${name} is not in ${join(opts.objectDir, PROGRAM_OBJECTS[FROM_CONTAINER]!)}`);
      }
      fds[name] = fd;
    }
    const maps = new DatapathMaps(fds);
    const ageing = new LearnedMacAgeing(maps, options.macAgeingSec ?? DEFAULT_MAC_AGEING_SEC, (e) => log(`eBPF fastdp: ageing learned MACs: ${e.message}`));
    const dp = new BpfFastDatapath(opts, programs, maps, tunnelIfindex, ageing.start());
    dp.replacedPins = replaced;
    // Config first, then the tunnel hook: a frame never meets a half-set datapath.
    dp.writeConfig();
    dp.inNetns(() => attachIngress(tunnelIfindex, programs.progFd(FROM_TUNNEL), `tunnel device ${opts.tunnelDevice}`));
    return dp;
  }

  private writeConfig(noRelay = false): void {
    const o = this.opts;
    this.maps.setConfig({ localShortId: o.localShortId, tunnelIfindex: this.tunnelIfindex, learn: o.learn, macTtlSec: o.macTtlSec, bridge: o.bridge, noRelay });
  }

  /**
   * The router is stopping (`weave stop`): from now on the kernel serves this
   * host's containers only and relays nothing from the tunnel on to other
   * peers (user-surface spec §1.2). The next open clears it.
   */
  stopRelaying(): void {
    this.writeConfig(true);
  }

  get localShortId(): number {
    return this.opts.localShortId;
  }

  /** Our short id changed (spec §4.8 reassignment): frames leave with the new VNI source from now on. */
  setLocalShortId(id: number): void {
    if (this.opts.localShortId === checkShortId(id, 'local short id')) return;
    this.opts.localShortId = id;
    this.writeConfig();
  }

  private inNetns<T>(fn: () => T): T {
    return this.opts.netns ? withNetns(this.opts.netns, fn) : fn();
  }

  /** Makes the datapath match `state`: attaches new ports, removes what is no longer wanted. */
  async apply(state: DesiredState): Promise<void> {
    const peerIps = new Map<number, number>();
    for (const p of state.peers) {
      peerIps.set(checkShortId(p.shortId, 'peer short id'), ipv4ToHostU32(p.underlayIp));
      if (p.localIp !== undefined) ipv4ToHostU32(p.localIp); // validate before touching anything
    }
    for (const p of state.localPorts) p.macs.forEach(macKey); // validate before touching anything
    const roleOf = (p: LocalPortSpec): PortRole => p.role ?? 'container';
    for (const role of ['host', 'sleeve'] as const) {
      const n = state.localPorts.filter((p) => roleOf(p) === role).length;
      if (n > 0 && !this.opts.bridge) throw new Error(`eBPF fastdp: a ${role} port needs bridge mode (open the datapath with bridge: true)`);
      if (n > 1) throw new Error(`eBPF fastdp: ${n} ${role} ports given; there is at most one`);
    }
    const ifindexes = await resolveIfindexes(state.localPorts.map((p) => p.ifname), this.opts.netns);
    const ifindexOf = (p: LocalPortSpec): number => ifindexes.get(p.ifname) as number;
    const containers = state.localPorts.filter((p) => roleOf(p) === 'container');
    const host = state.localPorts.find((p) => roleOf(p) === 'host');
    const sleeve = state.localPorts.find((p) => roleOf(p) === 'sleeve');

    // Peers and trees before ports, so the first flooded frame can reach them.
    const inMap = this.peersInMap ?? new Set(this.maps.listPeerEntries().keys());
    this.peersInMap = undefined; // read from the map again if this apply fails part way
    const wantedPeers = new Set<number>();
    for (const p of state.peers) {
      this.maps.setPeer(p.shortId, p.underlayIp, p);
      wantedPeers.add(p.shortId);
    }
    const departed = new Set([...inMap].filter((id) => !wantedPeers.has(id)));
    for (const id of departed) this.maps.deletePeer(id);
    this.peersInMap = wantedPeers;
    this.maps.forgetMacsOfPeers(departed);
    const wantedTrees = new Set<number>();
    for (const t of state.broadcastTrees) {
      this.maps.setBroadcastNextHops(t.sourceShortId, t.nextHops, t.toSleeve ?? false);
      wantedTrees.add(t.sourceShortId);
    }
    for (const id of this.treeSources) if (!wantedTrees.has(id)) this.maps.setBroadcastNextHops(id, []);
    this.treeSources = wantedTrees;
    if (this.opts.bridge) {
      this.maps.setBridgePorts({
        hostIfindex: host ? ifindexOf(host) : 0,
        sleeveIfindex: sleeve ? ifindexOf(sleeve) : 0,
        sleeveRelayHops: state.sleeveRelayHops ?? [],
      });
    }

    const wantedMacs = new Map<string, { ifindex: number; redirectPeer: boolean; host: boolean }>();
    for (const p of state.localPorts) {
      const port = { ifindex: ifindexOf(p), redirectPeer: p.redirectPeer ?? false, host: roleOf(p) === 'host' };
      for (const mac of p.macs) wantedMacs.set(mac.toLowerCase(), port);
    }
    for (const [mac, port] of wantedMacs) this.maps.setLocalMac(mac, port.ifindex, port.redirectPeer, port.host);
    // Flags for MACs the kernel learns behind each container port (bridge mode), set before its program is attached.
    const wantedFlags = new Map<number, boolean>();
    for (const p of containers) wantedFlags.set(ifindexOf(p), p.redirectPeer ?? false);
    for (const [ifi, redirectPeer] of wantedFlags) this.maps.setPortFlags(ifi, redirectPeer);
    for (const ifi of this.maps.listPortFlags().keys()) if (!wantedFlags.has(ifi)) this.maps.deletePortFlags(ifi);
    const portIndexes = new Set(ifindexes.values());
    const forgottenPort = state.forgetSleeveMacs && sleeve ? ifindexOf(sleeve) : undefined;
    for (const [mac, ifi] of this.maps.listLocalMacs()) {
      // Bridge mode: MACs the kernel learned stay while their port is ours.
      const learnedKept = this.opts.bridge && portIndexes.has(ifi) && ifi !== forgottenPort;
      if (!wantedMacs.has(mac) && !learnedKept) this.maps.deleteLocalMac(mac);
    }
    // The flood list holds the container ports; the host's and the sleeve's are in weave_bridge_ports.
    this.maps.setLocalPorts(containers.map(ifindexOf));
    await this.applyUnderlay(state.peers.map((p) => p.underlayIp));

    this.inNetns(() => {
      for (const p of state.localPorts) {
        const role = roleOf(p);
        const ifindex = ifindexOf(p);
        const was = this.attached.get(p.ifname);
        // A port attached as before keeps its filter (attaching it again is two netlink round trips
        // per port on every apply); one that changed role (or index) leaves its old hook first.
        if (was && was.role === role && was.ifindex === ifindex) continue;
        if (was) detachPort(was.ifindex, was.role);
        attachPort(ifindex, role, this.programs, `${role} port ${p.ifname}`);
        this.attached.set(p.ifname, { ifindex, role });
      }
      for (const [name, a] of this.attached) {
        if (ifindexes.has(name)) continue;
        detachPort(a.ifindex, a.role);
        this.attached.delete(name);
      }
    });
  }

  private treeSources = new Set<number>();
  /**
   * Short ids with an entry in weave_peers, as the last apply left them.
   * Reading them from the map is a lookup per possible short id (4096
   * syscalls), which every apply paid while a mesh formed: the map is read
   * once (entries a previous run left in the pinned map) and then known.
   */
  private peersInMap: Set<number> | undefined;
  /**
   * The peer addresses the receive fast path was last set up for, and when.
   * Most applies (a topology change elsewhere in the mesh) leave the peers'
   * addresses as they were: asking the kernel for a route per peer each time
   * cost 8-10 % of a router's CPU while a mesh formed.
   */
  private underlayLookup: { peerIps: string; at: number } | undefined;

  /**
   * The receive fast path: on the interfaces that route to the peers' underlay
   * addresses, with the addresses of those interfaces as the ones it accepts
   * frames for. Frames usually come back the way ours leave; any that arrive
   * elsewhere take the VXLAN device's path, which handles everything.
   */
  private async applyUnderlay(peerIps: readonly string[]): Promise<void> {
    const wanted = [...new Set(peerIps)].sort().join(' ');
    const last = this.underlayLookup;
    if (last && last.peerIps === wanted && performance.now() - last.at < UNDERLAY_RECHECK_MS) return;
    const links = new Set<number>();
    let addresses: string[] = [];
    if (this.opts.receiveFastPath && peerIps.length > 0) {
      const rtnl = Rtnl.open(this.opts.netns ? { netns: this.opts.netns } : {});
      try {
        for (const ip of new Set(peerIps)) {
          const route = await rtnl.routeTo(ip).catch(() => undefined); // unreachable now: nothing to receive from it
          const oif = route?.oifIndex;
          if (route?.type === RTN_UNICAST && oif !== undefined && oif !== this.tunnelIfindex) links.add(oif);
        }
        addresses = (await rtnl.listAddresses()).filter((a) => links.has(a.index)).map((a) => a.address);
      } finally {
        rtnl.close();
      }
    }
    // Addresses first: a hook never sees a frame for an address the map has not got yet.
    this.maps.setUnderlayAddresses(addresses, this.opts.vxlanPort);
    this.inNetns(() => {
      for (const ifindex of links) {
        if (this.underlayHooks.has(ifindex)) continue;
        attachIngress(ifindex, this.programs.progFd(FROM_UNDERLAY), `underlay interface ${ifindex}`, c.BPF_TC_INGRESS, TC_UNDERLAY_HANDLE);
        this.underlayHooks.add(ifindex);
      }
      for (const ifindex of this.underlayHooks) {
        if (links.has(ifindex)) continue;
        detachIngress(ifindex, c.BPF_TC_INGRESS, TC_UNDERLAY_HANDLE);
        this.underlayHooks.delete(ifindex);
      }
    });
    this.underlayLookup = { peerIps: wanted, at: performance.now() };
  }

  /** The underlay interfaces (ifindex) the receive fast path is attached to. */
  get underlayInterfaces(): number[] {
    return [...this.underlayHooks];
  }

  /**
   * Attaches from-tunnel to a further VXLAN device, e.g. one for a peer on a
   * non-default mesh port (spec §6.1, `vxlan-<P>`). Idempotent.
   */
  async attachTunnelDevice(ifname: string): Promise<number> {
    const ifindex = (await resolveIfindexes([ifname], this.opts.netns)).get(ifname) as number;
    this.inNetns(() => attachIngress(ifindex, this.programs.progFd(FROM_TUNNEL), `tunnel device ${ifname}`));
    return ifindex;
  }

  /** The loaded program's fd (for BPF_PROG_TEST_RUN self-tests, see test-run.ts). */
  programFd(program: 'from-container' | 'from-host' | 'from-sleeve' | 'from-tunnel' | 'from-underlay'): number {
    switch (program) {
      case 'from-underlay': return this.programs.progFd(FROM_UNDERLAY);
      case 'from-container': return this.programs.progFd(FROM_CONTAINER);
      case 'from-host': return this.programs.progFd(FROM_HOST);
      case 'from-sleeve': return this.programs.progFd(FROM_SLEEVE);
      case 'from-tunnel': return this.programs.progFd(FROM_TUNNEL);
    }
  }

  readCounters(): Counters {
    return this.maps.readCounters();
  }

  listLearnedMacs(): LearnedMac[] {
    return this.maps.listLearnedMacs();
  }

  countForwardingEntries(): number {
    return this.maps.countForwardingEntries();
  }

  /** Releases this process's handles; programs and maps stay in the kernel and keep forwarding. */
  close(): void {
    this.macAgeing.stop();
    this.programs.close();
  }

  /** Stops the datapath: detaches every hook this process attached, deletes the tunnel device and the pins. */
  async destroy(): Promise<void> {
    this.inNetns(() => {
      for (const a of this.attached.values()) detachPort(a.ifindex, a.role);
      for (const ifindex of this.underlayHooks) detachIngress(ifindex, c.BPF_TC_INGRESS, TC_UNDERLAY_HANDLE);
    });
    this.attached.clear();
    this.underlayHooks.clear();
    await deleteTunnelDevice({ name: this.opts.tunnelDevice, netns: this.opts.netns });
    this.close();
    for (const name of MAP_NAMES) rmSync(join(this.opts.pinDir, name), { force: true });
  }
}
