// The eBPF fast datapath: loads from-container and from-tunnel, pins their maps
// (so a restarted process keeps forwarding and keeps its learned MACs), attaches
// them at tc clsact ingress, and applies a desired state idempotently.

import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withNetns } from '../netlink/netns.js';
import * as c from './libbpf.js';
import { ensurePinDir } from './bpffs.js';
import { DatapathMaps, MAP_NAMES, checkShortId, macKey, ipv4ToHostU32, type Counters, type LearnedMac, type MapName } from './maps.js';
import { DEFAULT_TUNNEL_DEVICE, WEAVE_VXLAN_PORT, deleteTunnelDevice, ensureTunnelDevice, resolveIfindexes } from './vxlan-device.js';

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/weave';
/** tc filter handle and priority of our programs (one per hook). */
const TC_HANDLE = 1;
const TC_PRIORITY = 1;

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
   * Bridge mode: the local ports are also ports of a Linux bridge shared with
   * the sleeve; what the kernel cannot deliver goes on into the bridge, and
   * container MACs are learned in the kernel (LocalPortSpec.macs may be empty;
   * learned MACs stay while their port is a local port). Default false.
   */
  bridge?: boolean;
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
}

export interface PeerSpec {
  shortId: number;
  /** Underlay IPv4 that frames for this peer are sent to: the peer, or the next hop towards it. */
  underlayIp: string;
}

export interface BroadcastTreeSpec {
  sourceShortId: number;
  nextHops: readonly number[];
}

export interface DesiredState {
  localPorts: readonly LocalPortSpec[];
  peers: readonly PeerSpec[];
  broadcastTrees: readonly BroadcastTreeSpec[];
}

function defaultObjectDir(): string {
  // compiled: dist/dataplane/bpf/fastdp.js -> dist/bpf
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bpf');
}

class LoadedObject {
  private constructor(private obj: unknown, readonly progFd: number, readonly mapFds: Partial<Record<MapName, number>>) {}

  static load(path: string, program: string, pinDir: string): LoadedObject {
    if (!existsSync(path)) throw new Error(`BPF object ${path} not found; build it with \`make bpf\``);
    const obj = c.objectOpenFile(path, null);
    if (!obj) throw new Error(`open BPF object ${path} failed (errno ${c.lastErrno()})`);
    try {
      const mapFds: Partial<Record<MapName, number>> = {};
      const maps: [MapName, unknown][] = [];
      for (const name of MAP_NAMES) {
        const m = c.objectFindMap(obj, name);
        if (!m) continue;
        const rc = c.mapSetPinPath(m, join(pinDir, name));
        if (rc !== 0) throw new Error(`set pin path of map ${name} failed (errno ${-rc})`);
        maps.push([name, m]);
      }
      const prog = c.objectFindProgram(obj, program);
      if (!prog) throw new Error(`program ${program} missing from ${path}`);
      // SEC("tc") implies it, but set it explicitly: older libbpf needs it.
      c.programSetType(prog, c.BPF_PROG_TYPE_SCHED_CLS);
      const rc = c.objectLoad(obj);
      if (rc !== 0) {
        throw new Error(`load ${path} failed (errno ${-rc}); if the pinned maps in ${pinDir} come from an incompatible build, remove that directory; set WEAVE_BPF_DEBUG=1 for the verifier log`);
      }
      for (const [name, m] of maps) mapFds[name] = c.mapFd(m);
      return new LoadedObject(obj, c.programFd(prog), mapFds);
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

function attachIngress(ifindex: number, progFd: number, what: string): void {
  const hook = c.tcHook(ifindex);
  const rc = c.tcHookCreate(hook);
  if (rc !== 0 && rc !== -17) throw new Error(`create clsact qdisc on ${what} failed (errno ${-rc})`); // -EEXIST is fine
  const opts = c.tcOpts({ progFd, flags: c.BPF_TC_F_REPLACE, handle: TC_HANDLE, priority: TC_PRIORITY });
  const arc = c.tcAttach(hook, opts);
  if (arc !== 0) throw new Error(`attach tc ingress program to ${what} failed (errno ${-arc})`);
}

function detachIngress(ifindex: number): void {
  const rc = c.tcDetach(c.tcHook(ifindex), c.tcOpts({ handle: TC_HANDLE, priority: TC_PRIORITY }));
  if (rc !== 0 && rc !== -2 && rc !== -19) throw new Error(`detach tc program from ifindex ${ifindex} failed (errno ${-rc})`);
}

export class BpfFastDatapath {
  private readonly attached = new Map<string, number>(); // ifname -> ifindex

  private constructor(
    private readonly opts: Required<Omit<BpfFastDatapathOptions, 'netns'>> & { netns?: string },
    private readonly fromContainer: LoadedObject,
    private readonly fromTunnel: LoadedObject,
    readonly maps: DatapathMaps,
    readonly tunnelIfindex: number,
  ) {}

  /** Loads (or reloads, keeping pinned maps) the programs and creates the tunnel device. */
  static async open(options: BpfFastDatapathOptions): Promise<BpfFastDatapath> {
    const opts = {
      localShortId: checkShortId(options.localShortId, 'local short id'),
      pinDir: options.pinDir ?? DEFAULT_PIN_DIR,
      objectDir: options.objectDir ?? defaultObjectDir(),
      netns: options.netns,
      tunnelDevice: options.tunnelDevice ?? DEFAULT_TUNNEL_DEVICE,
      vxlanPort: options.vxlanPort ?? WEAVE_VXLAN_PORT,
      learn: options.learn ?? true,
      macTtlSec: options.macTtlSec ?? 600,
      bridge: options.bridge ?? false,
    };
    c.quietLibbpf();
    ensurePinDir(opts.pinDir);
    const tunnelIfindex = await ensureTunnelDevice({ name: opts.tunnelDevice, port: opts.vxlanPort, netns: opts.netns });
    const fc = LoadedObject.load(join(opts.objectDir, 'from-container.bpf.o'), 'weave_from_container', opts.pinDir);
    let ft: LoadedObject;
    try {
      ft = LoadedObject.load(join(opts.objectDir, 'from-tunnel.bpf.o'), 'weave_from_tunnel', opts.pinDir);
    } catch (e) {
      fc.close();
      throw e;
    }
    const fds = {} as Record<MapName, number>;
    for (const name of MAP_NAMES) {
      const fd = fc.mapFds[name] ?? ft.mapFds[name];
      if (fd === undefined) throw new Error(`map ${name} is in neither BPF object`);
      fds[name] = fd;
    }
    const dp = new BpfFastDatapath(opts, fc, ft, new DatapathMaps(fds), tunnelIfindex);
    // Config first, then the tunnel hook: a frame never meets a half-set datapath.
    dp.writeConfig();
    dp.inNetns(() => attachIngress(tunnelIfindex, ft.progFd, `tunnel device ${opts.tunnelDevice}`));
    return dp;
  }

  private writeConfig(): void {
    const o = this.opts;
    this.maps.setConfig({ localShortId: o.localShortId, tunnelIfindex: this.tunnelIfindex, learn: o.learn, macTtlSec: o.macTtlSec, bridge: o.bridge });
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
    for (const p of state.peers) peerIps.set(checkShortId(p.shortId, 'peer short id'), ipv4ToHostU32(p.underlayIp));
    for (const p of state.localPorts) p.macs.forEach(macKey); // validate before touching anything
    const ifindexes = await resolveIfindexes(state.localPorts.map((p) => p.ifname), this.opts.netns);

    // Peers and trees before ports, so the first flooded frame can reach them.
    const wantedPeers = new Set<number>();
    for (const p of state.peers) {
      this.maps.setPeer(p.shortId, p.underlayIp);
      wantedPeers.add(p.shortId);
    }
    for (const id of this.maps.listPeers().keys()) if (!wantedPeers.has(id)) this.maps.deletePeer(id);
    const wantedTrees = new Set<number>();
    for (const t of state.broadcastTrees) {
      this.maps.setBroadcastNextHops(t.sourceShortId, t.nextHops);
      wantedTrees.add(t.sourceShortId);
    }
    for (const id of this.treeSources) if (!wantedTrees.has(id)) this.maps.setBroadcastNextHops(id, []);
    this.treeSources = wantedTrees;

    const wantedMacs = new Map<string, { ifindex: number; redirectPeer: boolean }>();
    for (const p of state.localPorts) {
      for (const mac of p.macs) wantedMacs.set(mac.toLowerCase(), { ifindex: ifindexes.get(p.ifname) as number, redirectPeer: p.redirectPeer ?? false });
    }
    for (const [mac, port] of wantedMacs) this.maps.setLocalMac(mac, port.ifindex, port.redirectPeer);
    // Flags for MACs the kernel learns behind each port (bridge mode), set before its program is attached.
    const wantedFlags = new Map<number, boolean>();
    for (const p of state.localPorts) wantedFlags.set(ifindexes.get(p.ifname) as number, p.redirectPeer ?? false);
    for (const [ifi, redirectPeer] of wantedFlags) this.maps.setPortFlags(ifi, redirectPeer);
    for (const ifi of this.maps.listPortFlags().keys()) if (!wantedFlags.has(ifi)) this.maps.deletePortFlags(ifi);
    const portIndexes = new Set(ifindexes.values());
    for (const [mac, ifi] of this.maps.listLocalMacs()) {
      // Bridge mode: MACs the kernel learned stay while their port is ours.
      if (!wantedMacs.has(mac) && !(this.opts.bridge && portIndexes.has(ifi))) this.maps.deleteLocalMac(mac);
    }
    this.maps.setLocalPorts([...ifindexes.values()]);

    this.inNetns(() => {
      for (const [name, ifi] of ifindexes) {
        attachIngress(ifi, this.fromContainer.progFd, `port ${name}`);
        this.attached.set(name, ifi);
      }
      for (const [name, ifi] of this.attached) {
        if (ifindexes.has(name)) continue;
        detachIngress(ifi);
        this.attached.delete(name);
      }
    });
  }

  private treeSources = new Set<number>();

  /**
   * Attaches from-tunnel to a further VXLAN device, e.g. one for a peer on a
   * non-default mesh port (spec §6.1, `vxlan-<P>`). Idempotent.
   */
  async attachTunnelDevice(ifname: string): Promise<number> {
    const ifindex = (await resolveIfindexes([ifname], this.opts.netns)).get(ifname) as number;
    this.inNetns(() => attachIngress(ifindex, this.fromTunnel.progFd, `tunnel device ${ifname}`));
    return ifindex;
  }

  /** The loaded program's fd (for BPF_PROG_TEST_RUN self-tests, see test-run.ts). */
  programFd(program: 'from-container' | 'from-tunnel'): number {
    return program === 'from-container' ? this.fromContainer.progFd : this.fromTunnel.progFd;
  }

  readCounters(): Counters {
    return this.maps.readCounters();
  }

  listLearnedMacs(): LearnedMac[] {
    return this.maps.listLearnedMacs();
  }

  /** Releases this process's handles; programs and maps stay in the kernel and keep forwarding. */
  close(): void {
    this.fromContainer.close();
    this.fromTunnel.close();
  }

  /** Stops the datapath: detaches every hook this process attached, deletes the tunnel device and the pins. */
  async destroy(): Promise<void> {
    this.inNetns(() => {
      for (const ifi of this.attached.values()) detachIngress(ifi);
    });
    this.attached.clear();
    await deleteTunnelDevice({ name: this.opts.tunnelDevice, netns: this.opts.netns });
    this.close();
    for (const name of MAP_NAMES) rmSync(join(this.opts.pinDir, name), { force: true });
  }
}
