// The eBPF fast datapath as a router Datapath (overlay `fastdp`, kind `bpf`),
// for kernels without Open vSwitch. The tc programs (dataplane/bpf) forward
// every data frame in the kernel; this module keeps their maps in line with
// the router's forwarding state and runs the per-connection heartbeats.
//
// Design (settled here):
// - Heartbeats (spec §6.4): the forwarder logic is the OVS fastdp one
//   (FastdpForwarder: 500 ms until acknowledged, then the slow interval; ack
//   over the control connection, sub-tag 0; unhealthy after the timeout,
//   healthy again when heartbeats resume). Only the I/O differs
//   (heartbeat-io.ts): sent as UDP datagrams with a VXLAN header and DF set,
//   received on AF_PACKET sockets bound to the tunnel device, matched by the
//   connUID inside. Intervals come from WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS and
//   WEAVE_FASTDP_HEARTBEAT_TIMEOUT_MS when set (tests), else the spec's 10 s/60 s.
// - Coexistence with the sleeve: the programs run in bridge mode. Only peers
//   reached through a neighbour whose chosen overlay is fastdp go into the
//   peer and broadcast-tree maps. A container frame the kernel cannot deliver
//   itself (broadcast, unknown destination, destination behind a sleeve
//   neighbour) gets its fastdp copies and then continues into the bridge, which
//   delivers it locally and hands it to the sleeve; local delivery is never
//   duplicated (no local clones in bridge mode). The sleeve's bridge port
//   (vethwe-bridge) is a local port of its own: frames the sleeve injects are
//   switched at its tc ingress (MACs behind it are learned there, so unicast
//   from the tunnel for a peer reached over the sleeve is redirected to it),
//   and broadcasts from the tunnel get a copy to it when the source's tree
//   continues to a sleeve neighbour (BroadcastTreeSpec.toSleeve). Broadcasts
//   the sleeve injects continue to the fastdp neighbours in the union of the
//   trees of the peers reached over the sleeve (the kernel does not know their
//   source; VNI source: us). Frames from the tunnel are otherwise delivered to
//   container ports directly.
// - The host (`weave expose`): the bridge device is the host's port. Its tc
//   egress switches what the host sends (remote MAC -> tunnel); frames for its
//   MAC (learned there) and broadcasts from the tunnel enter the host's stack
//   with an ingress redirect to the bridge device.
// - Local ports: the bridge's container veths, followed through rtnl link
//   events (bridge-ports.ts); container MACs are learned in the kernel. Only a
//   veth whose other end is in another namespace is marked for
//   bpf_redirect_peer (the learned MACs take their port's flags).
// - Restart: close() leaves programs, maps (pinned) and the tunnel device, so
//   the kernel keeps forwarding; a peer whose connection went away (or that
//   was in the maps when we started) stays for a linger period unless its
//   neighbour is known to be on the sleeve, so a router restart at either end
//   loses at most a frame or two.
// - MTU: the overlay MTU is the underlay's minus 50 (host-wiring), and the
//   heartbeats are padded to it.
// - Encryption (spec §7): the same per-connection kernel IPsec as the OVS
//   datapath (dataplane/ipsec FastdpIPsec: SPI exchange, keys, SAs, marked OUT
//   policy, nft marking rules), so a bpf peer interoperates with OVS and Weave
//   peers. The tc programs redirect into the kernel's VXLAN driver in external
//   mode, the same driver OVS's vxlan vport uses: its encapsulated packet is
//   sent with ip_local_out, so it passes the nft `route` output chain, which
//   marks it and makes the kernel redo the route and XFRM lookup; the marked
//   policy then applies (checked in the kernel lab: only ESP on the underlay).
//   Setting skb->mark in the tc program instead would need a per-peer
//   "encrypt" flag in the maps (trusted peers must stay unmarked, or the
//   unprotected-marked drop rule would drop them) for no gain: the reroute
//   happens only for the packets the rule marks.
//   Without kernel ESP (probed at open), an encrypted connection's forwarder
//   fails at once with the reason and the connection stays on the encrypted
//   sleeve (never plaintext). With IPsec on, no peer lingers in the maps
//   after its connection (its SAs and rules go with it, so the kernel would
//   tunnel in clear), and close() empties the peers before removing the SAs.

import type {
  Datapath,
  DatapathStats,
  DatapathTeardownOptions,
  ForwarderEvents,
  ForwarderParams,
  ForwardingState,
  OverlayForwarder,
} from '../../../controlplane/router/datapath.js';
import type { PeerName, PeerShortID } from '../../../controlplane/mesh/types.js';
import { DEFAULT_FORWARDER_TIMINGS, FastdpForwarder, tunnelSource, type ForwarderHost, type ForwarderTimings, type TunnelEndpoint } from '../../fastdp/forwarder.js';
import { parseHeartbeat } from '../../fastdp/heartbeat.js';
import { indexForwardingState, type Routing } from '../../fastdp/routing.js';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import { BpfFastDatapath, DEFAULT_PIN_DIR, detachPortHooks, kernelTakesTunnelSource, detachUnderlayHooks, type BroadcastTreeSpec, type LocalPortSpec, type PeerSpec } from '../fastdp.js';
import { DatapathMaps, type Counters } from '../maps.js';
import { deleteTunnelDevice } from '../vxlan-device.js';
import { BridgePortWatcher, type BridgePort } from './bridge-ports.js';
import { HeartbeatReceiver, HeartbeatSender, vxlanDatagram } from './heartbeat-io.js';
import { FastdpIPsec, type IPsecFirewallEntry } from '../../ipsec/index.js';
import { Rtnl } from '../../netlink/index.js';
import { BRIDGE_PORT_VETH, DEFAULT_BRIDGE } from '../../host/names.js';

/** How long a fastdp peer whose connection vanished keeps its kernel entry (restart tolerance). */
export const DEFAULT_LINGER_MS = 30_000;

export const ESP_UNAVAILABLE = 'kernel ESP (esp4) is not available to the eBPF datapath on this host';
const IPSEC_NOT_ENABLED = 'no password is set, so IPsec is not enabled';

export interface BpfDatapathOptions {
  /** The Linux bridge the containers are attached to (`weave`). */
  bridge: string;
  /** Overlay MTU (underlay - 50): heartbeats are padded to it (spec §6.4). */
  mtu: number;
  /** Mesh TCP port; VXLAN uses port + 1 (spec §0). */
  port: number;
  /** bpffs directory for the pinned maps (default WEAVE_BPF_PIN_DIR, else /sys/fs/bpf/weave). */
  pinDir?: string;
  /** Where the compiled programs are (default dist/bpf). */
  objectDir?: string;
  timings?: Partial<ForwarderTimings>;
  lingerMs?: number;
  log?: (message: string) => void;
  /**
   * Enables encrypted connections over kernel IPsec (spec §7; set when a
   * password is configured). Without it, or when the kernel lacks ESP, an
   * encrypted connection's fastdp forwarder fails and the sleeve carries it.
   */
  ipsec?: {
    /** Our peer name (spec §7.3 key derivation). */
    ourName: PeerName;
    /** Installs the spec §7.5 marking rules for exactly these connections. */
    applyFirewall(entries: IPsecFirewallEntry[]): Promise<void>;
  };
}

function envMs(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name}=${v} is not a positive number of milliseconds`);
  return n;
}

/** Heartbeat timings: the spec's, or shorter ones from the environment (tests). */
export function timingsFromEnv(): ForwarderTimings {
  const slow = envMs('WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS') ?? DEFAULT_FORWARDER_TIMINGS.slowIntervalMs;
  return {
    fastIntervalMs: Math.min(DEFAULT_FORWARDER_TIMINGS.fastIntervalMs, slow),
    slowIntervalMs: slow,
    timeoutMs: envMs('WEAVE_FASTDP_HEARTBEAT_TIMEOUT_MS') ?? DEFAULT_FORWARDER_TIMINGS.timeoutMs,
  };
}

/** How long a vanished peer lingers: WEAVE_FASTDP_LINGER_MS when set (tests), else DEFAULT_LINGER_MS. */
export function lingerMsFromEnv(): number {
  return envMs('WEAVE_FASTDP_LINGER_MS') ?? DEFAULT_LINGER_MS;
}

/** The learned-MAC ageing time: WEAVE_BPF_MAC_AGEING_SEC when set (tests, e.g. the soak), else the datapath's default. */
export function macAgeingSecFromEnv(): number | undefined {
  const v = process.env.WEAVE_BPF_MAC_AGEING_SEC;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`WEAVE_BPF_MAC_AGEING_SEC=${v} is not a positive number of seconds`);
  return n;
}

export function pinDirFromEnv(): string {
  return process.env.WEAVE_BPF_PIN_DIR || DEFAULT_PIN_DIR;
}

/** Where a peer's frames go through the tunnel: its kernel map entry less the short id. */
type TunnelRoute = Pick<PeerSpec, 'underlayIp' | 'localIp'>;

interface Lingering {
  route: TunnelRoute;
  until: number;
}

export class BpfDatapath implements Datapath, ForwarderHost {
  readonly overlay = 'fastdp' as const;
  readonly kind = 'bpf' as const;
  /** Kernel IPsec for encrypted connections (ForwarderHost). */
  ipsec: FastdpIPsec | undefined;
  ipsecUnavailableReason: string | undefined = IPSEC_NOT_ENABLED;
  private routing: Routing | undefined;
  private readonly forwarders = new Set<FastdpForwarder>();
  private ports: BridgePort[] = [];
  /** Short id -> tunnel route of the fastdp peers in the kernel maps. */
  private installed = new Map<number, TunnelRoute>();
  private readonly lingering = new Map<number, Lingering>();
  /** Short ids of `installed` that are reached through another peer. */
  private installedRelayed = new Set<number>();
  /** Tunnel frames leave from the connection's address (kernelTakesTunnelSource), else from the route's. */
  private readonly tunnelSources = kernelTakesTunnelSource();
  /** Neighbours reached over the sleeve at the last apply (see forgetSleeveMacs). */
  private sleeveNeighbours = new Set<PeerName>();
  /** The bridge the containers, the host and the sleeve share (its device is the host's port). */
  private bridgeName = '';
  private applying: Promise<void> = Promise.resolve();
  private lingerTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastCounters: Counters | undefined;
  private lastFlows = 0;
  /** Restarted over pinned maps: keep the previous short id in the kernel for now. */
  private keepPreviousId = false;
  private readonly log: (m: string) => void;

  private constructor(
    readonly fastdp: BpfFastDatapath,
    /** The overlay MTU our heartbeats announce (lowered by lowerMtu; the bridge and its ports are host-wiring's). */
    public mtu: number,
    private readonly vxlanPort: number,
    private readonly sender: HeartbeatSender,
    private readonly timings: ForwarderTimings,
    private readonly lingerMs: number,
    log: ((m: string) => void) | undefined,
  ) {
    this.log = log ?? ((m) => process.stderr.write(`${m}\n`));
  }

  private receiver: HeartbeatReceiver | undefined;
  private watcher: BridgePortWatcher | undefined;

  /** Loads the programs (reusing pinned maps after a restart), starts heartbeats and the port watcher. */
  static async open(opts: BpfDatapathOptions): Promise<BpfDatapath> {
    const mtu = opts.mtu;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65_000) throw new RangeError(`eBPF fastdp: MTU ${mtu} is out of range 576..65000`);
    const vxlanPort = opts.port + 1;
    if (!Number.isInteger(vxlanPort) || vxlanPort < 2 || vxlanPort > 0xffff) throw new RangeError(`eBPF fastdp: mesh port ${opts.port} is out of range 1..65534`);
    const pinDir = opts.pinDir ?? pinDirFromEnv();
    // A restart: keep the short id and the peers the previous run installed until the mesh says otherwise.
    const previous = readPrevious(pinDir);
    const ageing = macAgeingSecFromEnv();
    const fastdp = await BpfFastDatapath.open({
      localShortId: previous?.localShortId ?? 0,
      pinDir,
      ...(opts.objectDir ? { objectDir: opts.objectDir } : {}),
      vxlanPort,
      bridge: true,
      // With a password, peers may be encrypted: their frames must come through XFRM, never in clear.
      receiveFastPath: opts.ipsec === undefined,
      ...(ageing === undefined ? {} : { macAgeingSec: ageing }),
      ...(opts.log ? { log: opts.log } : {}),
    });
    let sender: HeartbeatSender | undefined;
    try {
      sender = new HeartbeatSender();
      const dp = new BpfDatapath(fastdp, mtu, vxlanPort, sender, { ...timingsFromEnv(), ...opts.timings }, opts.ipsec ? 0 : opts.lingerMs ?? lingerMsFromEnv(), opts.log);
      const until = Date.now() + dp.lingerMs;
      dp.keepPreviousId = (previous?.peers.size ?? 0) > 0;
      for (const [id, route] of previous?.peers ?? []) {
        dp.installed.set(id, route);
        dp.lingering.set(id, { route, until });
      }
      dp.bridgeName = opts.bridge;
      dp.receiver = new HeartbeatReceiver(fastdp.tunnelIfindex, (f) => dp.heartbeat(f), (e) => dp.log(`fastdp: heartbeats: ${e.message}`));
      dp.watcher = await BridgePortWatcher.start(opts.bridge, (ports) => {
        dp.ports = ports;
        dp.schedule();
      }, (e) => dp.log(`fastdp: following the ports of bridge ${opts.bridge}: ${e.message}`));
      await dp.applying;
      // After the first apply: with IPsec, the previous run's peers are gone
      // from the maps (no linger) before its SAs and rules are flushed.
      if (opts.ipsec) await dp.openIPsec(opts.ipsec);
      return dp;
    } catch (e) {
      sender?.close();
      fastdp.close();
      throw e;
    }
  }

  // ---- Datapath

  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder {
    if (this.closed) throw new Error('eBPF fastdp: the datapath is closed; open a new BpfDatapath');
    const fwd = new FastdpForwarder(params, events, this, this.timings);
    if (!fwd.isStopped) this.forwarders.add(fwd);
    return fwd;
  }

  applyForwardingState(state: ForwardingState): Promise<void> {
    this.routing = indexForwardingState(state);
    return this.schedule().catch(() => {}); // logged by schedule
  }

  /**
   * `weave attach` waits for the new port's program. Attaching it creates the
   * port's clsact qdisc, and the kernel stops a device's transmit queues while
   * it grafts a qdisc: frames to the container in that moment are dropped. Done
   * before attach returns, no traffic can be there yet.
   */
  async portAdded(ifname: string): Promise<void> {
    if (this.closed || !this.watcher) return;
    let ports: BridgePort[];
    try {
      ports = await this.watcher.sync();
    } catch (e) {
      this.log(`fastdp: reading the ports of the bridge for ${ifname}: ${(e as Error).message}`);
      return;
    }
    // The rescan scheduled the apply (now, or when a link event saw the port first): wait for it.
    await this.applying;
    if (!ports.some((p) => p.ifname === ifname)) this.log(`fastdp: ${ifname} is not a container port of the bridge; the eBPF datapath does not handle it`);
  }

  /**
   * A neighbour accepts less (Datapath.lowerMtu). The programs forward whole
   * frames between the bridge's ports and the tunnel device, so nothing of
   * ours in the kernel has this MTU: only the heartbeats shrink.
   */
  lowerMtu(mtu: number): Promise<void> {
    if (mtu < this.mtu) this.mtu = mtu;
    return Promise.resolve();
  }

  stats(): DatapathStats {
    const c = this.readCounters();
    const drops: Record<string, bigint> = {};
    let kernelForwarded = 0n;
    for (const [name, v] of Object.entries(c)) {
      if (name.startsWith('drop_')) drops[name.slice(5)] = BigInt(v);
      else if (name.startsWith('fwd_') || name === 'flood') kernelForwarded += BigInt(v);
    }
    return { kernelForwarded, userspace: BigInt(c.to_userspace), drops, flows: this.countForwardingEntries() };
  }

  /** After close the maps are not ours to read (the next router's, or gone): the count taken at close stands. */
  private countForwardingEntries(): number {
    if (!this.closed) this.lastFlows = this.fastdp.countForwardingEntries();
    return this.lastFlows;
  }

  /** The kernel's per-reason counters (to_userspace counts heartbeats: data never goes up). */
  readCounters(): Counters {
    if (!this.closed) this.lastCounters = this.fastdp.readCounters();
    return this.lastCounters ?? this.fastdp.readCounters();
  }

  /** Heartbeat frames read from the tunnel device so far. */
  get heartbeatsReceived(): number {
    return this.receiver?.received ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.readCounters();
    this.countForwardingEntries();
    this.closed = true;
    clearTimeout(this.lingerTimer);
    for (const f of [...this.forwarders]) f.stop();
    await this.applying.catch(() => undefined);
    await this.watcher?.close();
    await this.receiver?.close();
    this.sender.close();
    if (this.ipsec) await this.closeIPsec(this.ipsec);
    // The programs and pinned maps stay: the kernel keeps forwarding for our own containers,
    // but a stopped router relays nothing (spec §1.2).
    this.fastdp.stopRelaying();
    this.fastdp.close();
  }

  /**
   * spec §7.1: on shutdown the SAs, policies and rules go (a restarted router
   * negotiates new ones). The peers leave the kernel maps first: without the
   * marking rules the programs would tunnel to them in clear.
   */
  private async closeIPsec(ipsec: FastdpIPsec): Promise<void> {
    try {
      await this.fastdp.apply({
        localPorts: this.ports.map((p) => ({ ifname: p.ifname, macs: [], redirectPeer: p.redirectPeer })),
        peers: [],
        broadcastTrees: [],
      });
      this.installed = new Map();
      await ipsec.flush();
    } catch (e) {
      this.log(`fastdp: removing IPsec state: ${(e as Error).message}`);
    } finally {
      ipsec.close();
      this.ipsec = undefined;
    }
  }

  /** Opens kernel IPsec (spec §7), or records why encrypted connections stay on the encrypted sleeve. */
  private async openIPsec(opts: NonNullable<BpfDatapathOptions['ipsec']>): Promise<void> {
    const found = await FastdpIPsec.open(opts);
    if (found instanceof FastdpIPsec) {
      this.ipsec = found;
      this.ipsecUnavailableReason = undefined;
      if (!this.tunnelSources) this.log(`fastdp: kernel ${osRelease()} tunnels from the route's source address only (Linux 6.0 takes the connection's): an encrypted connection to an address of ours the route does not prefer uses sleeve`);
    } else {
      this.ipsecUnavailableReason = `${ESP_UNAVAILABLE}: ${found.unavailable}`;
      this.log(`fastdp: encrypted connections will use sleeve: ${this.ipsecUnavailableReason}`);
    }
  }

  // ---- ForwarderHost

  ourShortId(): PeerShortID | undefined {
    return this.routing?.ourShortId;
  }

  shortIdOf(name: PeerName): PeerShortID | undefined {
    return this.routing?.shortIdOf.get(name);
  }

  async sendTunnelFrame(frame: Buffer, srcShortId: PeerShortID, dstShortId: PeerShortID, to: TunnelEndpoint): Promise<void> {
    if (this.closed) return;
    // Heartbeats take the data's path: from the connection's address when the kernel tunnels from it.
    this.sender.send(vxlanDatagram(frame, srcShortId, dstShortId), to.remoteIp, to.remotePort || this.vxlanPort, this.tunnelSources ? tunnelSource(to) : undefined);
  }

  /** Its frames are accepted (a receive-only peer entry) before the forwarder acknowledges its heartbeat. */
  remoteHeard(): Promise<void> {
    return this.schedule();
  }

  /** An encrypted neighbour becomes reachable only now (fastdpAlive). */
  outboundReady(): void {
    void this.schedule().catch(() => undefined);
  }

  forwarderStopped(forwarder: FastdpForwarder): Promise<void> {
    this.forwarders.delete(forwarder);
    return this.schedule();
  }

  warn(message: string): void {
    this.log(message);
  }

  // ---- heartbeats and kernel state

  private heartbeat(frame: Buffer): void {
    const connUID = parseHeartbeat(frame);
    if (connUID === undefined) return;
    for (const f of this.forwarders) if (f.connUID === connUID) f.heartbeatReceived(undefined, frame.length);
  }

  /** Queues a map update; the promise says whether it (and the ones before it) reached the kernel. */
  private schedule(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const applied = this.applying.then(() => this.apply());
    this.applying = applied.catch((e: unknown) => {
      if (!this.closed) this.log(`fastdp: updating the eBPF datapath: ${(e as Error).message}`);
    });
    return applied;
  }

  /**
   * Whether our fastdp forwarder to `name` can carry frames now or soon: initiating or
   * established, and (encrypted) with its outbound SA and marking rules in place.
   */
  private fastdpAlive(name: PeerName): boolean {
    return this.sendingForwarder(name) !== undefined;
  }

  /**
   * The forwarder whose tunnel frames to `name` go by (an established one over
   * one still starting, as two may exist while a connection is replaced).
   */
  private sendingForwarder(name: PeerName): FastdpForwarder | undefined {
    let starting: FastdpForwarder | undefined;
    for (const f of this.forwarders) {
      if (f.remoteName !== name || !f.outboundReady) continue;
      const s = f.status().state;
      if (s === 'established') return f;
      if (s === 'initiating') starting ??= f;
    }
    return starting;
  }

  /**
   * Frames to a neighbour leave from our address of its connection, as the OVS
   * datapath's tunnel action sets it: an encrypted connection's SAs and marking
   * rules cover that address only, and the route may prefer another.
   */
  private tunnelSourceTo(name: PeerName): string | undefined {
    const fwd = this.sendingForwarder(name);
    return fwd && this.tunnelSources ? tunnelSource(fwd.tunnel) : undefined;
  }

  private async apply(): Promise<void> {
    if (this.closed) return;
    const r = this.routing;
    const now = Date.now();
    const wanted = new Map<number, TunnelRoute>();
    /** Peers reached through another peer: those routes go with the route, never linger. */
    const relayed = new Set<number>();
    const trees: BroadcastTreeSpec[] = [];
    const sleeveRelay = new Set<number>();
    if (r) {
      // After a restart the kernel keeps sending with the previous run's short id
      // until a fastdp neighbour is back (and so knows the new one), so peers that
      // still route by the old id keep accepting our frames (spec §4.8).
      if (this.keepPreviousId && ([...r.neighbours.values()].some((n) => n.overlay === 'fastdp') || this.lingering.size === 0)) this.keepPreviousId = false;
      if (!this.keepPreviousId && r.ourShortId !== this.fastdp.localShortId) this.fastdp.setLocalShortId(r.ourShortId);
      // With IPsec a neighbour is reached only while its forwarder lives and has its
      // outbound SA: the overlay switch picks fastdp for a new connection before the SA
      // exchange ends, and the SAs and marking rules go when the forwarder stops.
      const fastdpNeighbour = (n: PeerName): TunnelRoute | undefined => {
        const nb = r.neighbours.get(n);
        if (nb?.overlay !== 'fastdp' || (this.ipsec !== undefined && !this.fastdpAlive(n))) return undefined;
        const localIp = this.tunnelSourceTo(n);
        return localIp === undefined ? { underlayIp: nb.remoteIp } : { underlayIp: nb.remoteIp, localIp };
      };
      for (const [peer, hop] of r.nextHop) {
        const id = r.shortIdOf.get(peer);
        const route = fastdpNeighbour(hop);
        if (id !== undefined && route !== undefined && r.peerByShortId.get(id) === peer) {
          wanted.set(id, route);
          if (hop !== peer) relayed.add(id);
        }
      }
      const sleeveNeighbour = (n: PeerName): boolean => r.neighbours.get(n)?.overlay === 'sleeve';
      for (const [source, hops] of r.broadcast) {
        const id = r.shortIdOf.get(source);
        if (id === undefined) continue;
        const fastHops = hops.filter((h) => fastdpNeighbour(h) !== undefined).map((h) => r.shortIdOf.get(h)).filter((h): h is number => h !== undefined);
        // A tree that continues to a sleeve neighbour gets a copy to the sleeve's port (from the tunnel).
        trees.push({ sourceShortId: id, nextHops: fastHops, toSleeve: hops.some(sleeveNeighbour) });
        // Broadcasts from a peer reached over the sleeve come from the sleeve's port; the kernel does
        // not know their source, so they follow the union of those peers' fastdp next hops.
        const via = r.nextHop.get(source);
        if (source !== r.ourName && via !== undefined && sleeveNeighbour(via)) for (const h of fastHops) sleeveRelay.add(h);
      }
    }
    // Peers that left the maps without being moved to the sleeve linger (restart tolerance).
    // A route through another peer does not: a stopped router relays nothing, so a peer
    // that became unreachable through it is gone (Weave drops such routes at once).
    for (const [id, route] of this.installed) {
      if (wanted.has(id) || this.lingering.has(id) || this.installedRelayed.has(id)) continue;
      this.lingering.set(id, { route, until: now + this.lingerMs });
    }
    for (const [id, l] of this.lingering) {
      const name = r?.peerByShortId.get(id);
      const nb = name !== undefined ? r?.neighbours.get(r.nextHop.get(name) ?? name) : undefined;
      const movedToSleeve = name !== undefined && nb !== undefined && nb.overlay !== 'fastdp' && !this.fastdpAlive(r!.nextHop.get(name) ?? name);
      if (wanted.has(id) || movedToSleeve || l.until <= now) this.lingering.delete(id);
      else wanted.set(id, l.route);
    }
    clearTimeout(this.lingerTimer);
    if (this.lingering.size > 0) {
      const next = Math.min(...[...this.lingering.values()].map((l) => l.until)) - now;
      this.lingerTimer = setTimeout(() => this.schedule(), Math.max(next, 10));
      this.lingerTimer.unref();
    }
    // A neighbour that left the sleeve (to fastdp, or gone): the MACs learned behind the
    // sleeve's port for it are stale; left in place they would send its frames to a sleeve
    // that no longer carries them, until they age out.
    const sleeveNow = new Set<PeerName>();
    for (const [n, nb] of r?.neighbours ?? []) if (nb.overlay === 'sleeve') sleeveNow.add(n);
    const forgetSleeveMacs = [...this.sleeveNeighbours].some((n) => !sleeveNow.has(n));
    const peers: PeerSpec[] = [...wanted].map(([shortId, route]) => ({ shortId, ...route }));
    for (const [shortId, underlayIp] of this.receiveOnlyPeers(r, wanted)) peers.push({ shortId, underlayIp, receiveOnly: true });
    await this.fastdp.apply({
      // Container veths deliver straight into the container (bpf_redirect_peer, README "Performance"); any other port never does.
      localPorts: [...this.ports.map((p) => ({ ifname: p.ifname, macs: [], redirectPeer: p.redirectPeer })), ...await this.bridgeOwnPorts()],
      peers,
      broadcastTrees: trees,
      sleeveRelayHops: [...sleeveRelay],
      forgetSleeveMacs,
    });
    this.sleeveNeighbours = sleeveNow;
    this.installed = wanted;
    this.installedRelayed = relayed;
  }

  /**
   * Peers whose tunnel frames we accept although we send to them over the
   * sleeve: a neighbour whose fastdp heartbeats reach us, and the peers routed
   * through it. The two ends of a connection choose their overlay on their
   * own, a moment apart (or for good, when the underlay passes heartbeats one
   * way only); what the neighbour sends over the fastdp in the meantime, its
   * broadcasts (ARP) above all, must not be dropped as coming from an unknown
   * peer. Nothing is sent to them through the tunnel.
   */
  private receiveOnlyPeers(r: Routing | undefined, sending: ReadonlyMap<number, TunnelRoute>): Map<number, string> {
    const out = new Map<number, string>();
    const heard = new Map<PeerName, string>();
    for (const f of this.forwarders) {
      if (f.isStopped || !f.hearsRemote) continue;
      heard.set(f.remoteName, f.tunnel.remoteIp);
      const id = f.remoteShortId;
      if (id !== undefined && !sending.has(id)) out.set(id, f.tunnel.remoteIp);
    }
    for (const [peer, hop] of r?.nextHop ?? []) {
      const ip = heard.get(hop);
      const id = r?.shortIdOf.get(peer);
      if (ip !== undefined && id !== undefined && !sending.has(id) && !out.has(id)) out.set(id, ip);
    }
    return out;
  }

  /**
   * The bridge ports that are not containers: the bridge device (the host's
   * port) and the sleeve's port when the sleeve has put it on the bridge. Read
   * at every apply: the sleeve starts after this datapath, and its connections
   * (hence a forwarding state) come after it.
   */
  private async bridgeOwnPorts(): Promise<LocalPortSpec[]> {
    const rtnl = Rtnl.open();
    try {
      const bridge = await rtnl.findLink(this.bridgeName);
      if (!bridge) return [];
      const out: LocalPortSpec[] = [{ ifname: bridge.name, macs: [], role: 'host' }];
      const sleeve = await rtnl.findLink(BRIDGE_PORT_VETH);
      if (sleeve && sleeve.masterIndex === bridge.index) out.push({ ifname: sleeve.name, macs: [], role: 'sleeve' });
      return out;
    } finally {
      rtnl.close();
    }
  }
}

/** What a previous run left in the pinned maps: its short id and its peers. */
function readPrevious(pinDir: string): { localShortId: number; peers: Map<number, TunnelRoute> } | undefined {
  if (!existsSync(join(pinDir, 'weave_config'))) return undefined;
  let maps: DatapathMaps;
  try {
    maps = DatapathMaps.openPinned(pinDir);
  } catch {
    return undefined; // an older or partial set of pins: start afresh
  }
  try {
    const cfg = maps.readConfig();
    if (!cfg) return undefined;
    const peers = new Map<number, TunnelRoute>();
    for (const [id, { receiveOnly, ...route }] of maps.listPeerEntries()) if (!receiveOnly) peers.set(id, route);
    return { localShortId: cfg.localShortId, peers };
  } finally {
    maps.close();
  }
}

/**
 * `weave reset`: removes the tc programs from the underlay interfaces, the
 * bridge and its ports, the tunnel device and the pinned maps; what a closed
 * (or killed) datapath left forwarding in the kernel.
 */
export async function teardownBpfFastdp(opts: DatapathTeardownOptions = {}): Promise<void> {
  await detachUnderlayHooks(opts.netns);
  await detachPortHooks(opts.bridge ?? DEFAULT_BRIDGE, opts.netns);
  await deleteTunnelDevice(opts.netns !== undefined ? { netns: opts.netns } : {});
  removePinDir(opts.pinDir ?? pinDirFromEnv());
}

/**
 * Removes the pinned maps. The directory itself may be a bpffs mount point
 * (a private bpffs per router): then it is emptied and left in place, and the
 * kernel's own entries at its root (maps.debug, progs.debug) stay.
 */
function removePinDir(pinDir: string): void {
  try {
    rmSync(pinDir, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EBUSY' && code !== 'EPERM') throw err;
  }
  for (const entry of readdirSync(pinDir)) {
    try {
      rmSync(join(pinDir, entry), { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}
