// The Open vSwitch fast datapath (overlay `fastdp`, kind `ovs`; spec §6):
// a userspace Ethernet bridge over an ODP datapath. The kernel forwards every
// packet that matches an exact-match flow; a miss comes up to us, we learn
// where its source MAC lives, decide where it goes (local vports, or VXLAN to
// a peer with tunnel id src | dst << 12), execute it and install a flow so
// the next packets of that MAC pair never leave the kernel.
//
// Misses arrive on the UpcallReceiver's socket, whose waiting happens on the
// netlink poller's worker, so a flood of misses never blocks heartbeats or
// gossip on the event loop. close() leaves the datapath, vports and flows in
// place so traffic keeps flowing across a router restart; teardownFastdp()
// (the descriptor's teardown) removes them.

import type {
  Datapath,
  DatapathStats,
  ForwarderEvents,
  ForwarderParams,
  ForwardingState,
  OverlayForwarder,
} from '../../../controlplane/router/datapath.js';
import type { PeerName, PeerShortID } from '../../../controlplane/mesh/types.js';
import { Rtnl, isNetlinkError, type NetnsHandle } from '../../netlink/index.js';
import { OdpConnection } from '../connection.js';
import { DEFAULT_BRIDGE, DEFAULT_MESH_PORT, fastdpPortFor } from '../../../controlplane/well-known.js';
import { deleteDatapath, getDatapath, type DatapathStats as OdpDatapathStats } from '../datapath.js';
import { isOdpExists, isOdpNotFound } from '../errors.js';
import { output, setTunnel, type FlowAction } from '../flow-actions.js';
import { exactMask, parseWeaveTunnelId, weaveTunnelId, type FlowKey, type TunnelKey } from '../flow-key.js';
import { createFlow, deleteAllFlows, deleteFlow, listFlows } from '../flow.js';
import { UpcallReceiver, executePacket, type Upcall } from '../packet.js';
import { listVports, setVportUpcallPid, type Vport } from '../vport.js';
import { BRIDGE_SIDE_VETH, DATAPATH_SIDE_VETH, ensureFastdpDevices } from './devices.js';
import { DEFAULT_FORWARDER_TIMINGS, FastdpForwarder, tunnelSource, type ForwarderHost, type ForwarderTimings, type TunnelEndpoint } from '../../fastdp/forwarder.js';
import { hasZeroMacs, parseHeartbeat } from '../../fastdp/heartbeat.js';
import { FastdpIPsec } from '../../ipsec/fastdp-ipsec.js';
import type { IPsecFirewallEntry } from '../../ipsec/index.js';
import { MacTable, isGroupMac } from './mac-table.js';
import { indexForwardingState, type Routing } from '../../fastdp/routing.js';
import { VportEventListener } from './vport-events.js';

/** Weave's ODP datapath name (spec §6.1, user-surface §0.2). */
export const DEFAULT_DATAPATH_NAME = 'datapath';
/** Overlay MTU default (spec §6.1): 1460 - IPv4 - UDP - VXLAN - inner Ethernet - ESP. */
export const DEFAULT_FASTDP_MTU = 1376;
/** spec §6.5: flows are enumerated every 5 min; unused ones go. */
export const FLOW_EXPIRY_INTERVAL_MS = 5 * 60_000;
/** spec §6.5: MAC entries not seen for 10 min go. */
export const MAC_EXPIRY_MS = 10 * 60_000;
const STATS_INTERVAL_MS = 5_000;
/** The spanning tree protocol group address; never forwarded (spec §5.8). */
const STP_MAC = '01:80:c2:00:00:00';
/** spec §6.2: outer TTL 64, DF set, TOS 0. */
const TUNNEL_TTL = 64;

export interface OvsFastDatapathOptions {
  /** Network namespace to work in (default: the current one). */
  netns?: NetnsHandle | string;
  /** ODP datapath name (`--datapath`), default `datapath`. */
  datapathName?: string;
  /** The Linux bridge containers attach to (`--weave-bridge`), default `weave`; it must exist. */
  bridgeName?: string;
  /** Overlay MTU (datapath, veth and heartbeat size), default 1376. */
  mtu?: number;
  /** Mesh TCP port; VXLAN listens on port + 1 (spec §0, §6.1). Default 6783. */
  port?: number;
  /** How often idle flows are looked for (default 5 min, spec §6.5). */
  flowExpiryIntervalMs?: number;
  macExpiryMs?: number;
  statsIntervalMs?: number;
  forwarderTimings?: Partial<ForwarderTimings>;
  /** Where problems the router need not act on are reported (default stderr). */
  log?: (message: string) => void;
  /**
   * Enables encrypted connections over kernel IPsec (spec §7; set when a
   * password is configured). Without it, or when the kernel lacks ESP, an
   * encrypted connection's fastdp forwarder fails and sleeve carries it.
   */
  ipsec?: {
    /** Our peer name (spec §7.3 key derivation). */
    ourName: PeerName;
    /** Installs the spec §7.5 marking rules for exactly these connections. */
    applyFirewall(entries: IPsecFirewallEntry[]): Promise<void>;
  };
}

/** Datapath counters as the kernel keeps them, plus the flow count (spec §6.7 OVS_DP_ATTR_STATS). */
export type FastdpKernelStats = OdpDatapathStats;

/** What the miss handler decided for one packet. */
interface Decision {
  actions: FlowAction[];
  /** Install a flow with this key (exact mask) and the same actions; absent: this packet only. */
  flowKey?: FlowKey;
}

export class OvsFastDatapath implements Datapath, ForwarderHost {
  readonly overlay = 'fastdp' as const;
  readonly kind = 'ovs' as const;
  private routing: Routing | undefined;
  private readonly macs = new MacTable();
  private readonly forwarders = new Set<FastdpForwarder>();
  /** Netdev and internal vports: the virtual bridge's ports (spec §6.5). */
  private readonly bridgePorts = new Map<number, string>();
  /** Bumped whenever all flows are deleted; a miss decided under an older generation installs no flow. */
  private generation = 0;
  private flowUsed = new Map<string, bigint>();
  private lastStats: FastdpKernelStats = { hit: 0n, missed: 0n, lost: 0n, flows: 0n };
  private userspaceDrops = 0n;
  private closed = false;
  private vportEvents: VportEventListener | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly log: (message: string) => void;
  private readonly timings: ForwarderTimings;
  /** Kernel IPsec for encrypted connections (ForwarderHost). */
  ipsec: FastdpIPsec | undefined;
  ipsecUnavailableReason: string | undefined = 'no password is set, so IPsec is not enabled';

  private constructor(
    private readonly conn: OdpConnection,
    private readonly rx: UpcallReceiver,
    readonly dp: number,
    readonly vxlanPortNo: number,
    readonly vxlanUdpPort: number,
    /** The overlay MTU: the datapath device's and the one our heartbeats announce (lowered by lowerMtu). */
    public mtu: number,
    readonly datapathName: string,
    private readonly netns: NetnsHandle | string | undefined,
    private readonly opts: OvsFastDatapathOptions,
  ) {
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.timings = { ...DEFAULT_FORWARDER_TIMINGS, ...opts.forwarderTimings };
  }

  /** Creates (or reuses, after a restart) the datapath and its vports, and starts handling misses. */
  static async open(opts: OvsFastDatapathOptions = {}): Promise<OvsFastDatapath> {
    const datapathName = opts.datapathName ?? DEFAULT_DATAPATH_NAME;
    const mtu = opts.mtu ?? DEFAULT_FASTDP_MTU;
    const meshPort = opts.port ?? DEFAULT_MESH_PORT;
    if (!Number.isInteger(meshPort) || meshPort < 1 || meshPort > 0xfffe) throw new RangeError(`fastdp: mesh port ${meshPort} is out of range 1..65534`);
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65_000) throw new RangeError(`fastdp: MTU ${mtu} is out of range 576..65000`);
    const conn = await OdpConnection.open({ netns: opts.netns });
    let rx: UpcallReceiver | undefined;
    const rtnl = Rtnl.open({ netns: opts.netns });
    try {
      const devices = await ensureFastdpDevices(conn, rtnl, {
        datapathName,
        bridgeName: opts.bridgeName ?? DEFAULT_BRIDGE,
        mtu,
        vxlanPort: fastdpPortFor(meshPort),
      });
      rx = UpcallReceiver.open(conn);
      const fdp = new OvsFastDatapath(conn, rx, devices.dp, devices.vxlan.portNo, fastdpPortFor(meshPort), mtu, datapathName, opts.netns, opts);
      if (opts.ipsec) {
        const found = await FastdpIPsec.open({ netns: opts.netns, ...opts.ipsec });
        if (found instanceof FastdpIPsec) {
          fdp.ipsec = found;
          fdp.ipsecUnavailableReason = undefined;
        } else {
          fdp.ipsecUnavailableReason = found.unavailable;
          fdp.log(`fastdp: encrypted connections will use sleeve: ${found.unavailable}`);
        }
      }
      try {
        await fdp.start();
      } catch (e) {
        fdp.ipsec?.close();
        throw e;
      }
      return fdp;
    } catch (e) {
      rx?.close();
      conn.close();
      throw e;
    } finally {
      rtnl.socket.close();
    }
  }

  private async start(): Promise<void> {
    // Listen before listing so no vport added in between is missed.
    this.vportEvents = new VportEventListener(this.conn, this.dp, (e) => this.vportChanged(e.kind, e.vport), (e) => this.log(`fastdp: vport events: ${e.message}`));
    for (const v of await listVports(this.conn, this.dp)) await this.adoptVport(v);
    this.loops.push(this.upcallLoop());
    this.every(this.opts.flowExpiryIntervalMs ?? FLOW_EXPIRY_INTERVAL_MS, () => this.expireFlows());
    this.every(this.opts.statsIntervalMs ?? STATS_INTERVAL_MS, async () => {
      await this.readStats();
    });
  }

  // ---- Datapath

  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder {
    if (this.closed) throw new Error('fastdp: the datapath is closed; open a new OvsFastDatapath');
    const fwd = new FastdpForwarder(params, events, this, this.timings);
    if (!fwd.isStopped) this.forwarders.add(fwd);
    return fwd;
  }

  applyForwardingState(state: ForwardingState): void {
    const next = indexForwardingState(state);
    const previous = this.routing;
    this.routing = next;
    if (previous === undefined || previous.fingerprint === next.fingerprint) return;
    // spec §6.5: routes or short ids changed; MACs behind departed peers are forgotten.
    this.macs.forget((w) => w.kind === 'peer' && !next.shortIdOf.has(w.peer));
    this.invalidateFlows('forwarding state changed');
  }

  /** A neighbour accepts less (Datapath.lowerMtu): the datapath device and the bridge's veth pair go down to `mtu`. */
  async lowerMtu(mtu: number): Promise<void> {
    if (mtu >= this.mtu) return;
    this.mtu = mtu;
    const rtnl = Rtnl.open({ netns: this.netns });
    try {
      for (const name of [this.datapathName, BRIDGE_SIDE_VETH, DATAPATH_SIDE_VETH]) {
        const link = await rtnl.findLink(name);
        if (link && link.mtu > mtu) await rtnl.setMtu(link.index, mtu);
      }
    } finally {
      rtnl.close();
    }
  }

  stats(): DatapathStats {
    return {
      kernelForwarded: this.lastStats.hit,
      userspace: this.lastStats.missed,
      drops: { lost: this.lastStats.lost, undeliverable: this.userspaceDrops },
      flows: Number(this.lastStats.flows),
    };
  }

  /** Reads the kernel's datapath counters now (stats() reports the last reading). */
  async readStats(): Promise<FastdpKernelStats> {
    const dp = await getDatapath(this.conn, this.dp);
    if (dp.stats) this.lastStats = dp.stats;
    return this.lastStats;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const f of [...this.forwarders]) f.stop();
    if (this.ipsec) {
      // spec §7.1: on shutdown the SAs, policies and rules go; a restarted router
      // negotiates new ones (its connections get new session keys). The flows
      // go first: without the marking rules they would tunnel in clear.
      await deleteAllFlows(this.conn, this.dp).catch((e: unknown) => this.log(`fastdp: deleting flows before removing IPsec: ${(e as Error).message}`));
      await this.ipsec.flush().catch((e: unknown) => this.log(`fastdp: removing IPsec state: ${(e as Error).message}`));
      this.ipsec.close();
    }
    this.rx.close();
    await this.vportEvents?.close();
    await Promise.allSettled(this.loops);
    // After the upcall loop has ended, so no miss handled meanwhile brings a relaying flow back.
    if (!this.ipsec) await this.stopRelaying().catch((e: unknown) => this.log(`fastdp: removing relay flows: ${(e as Error).message}`));
    this.conn.close();
  }

  /**
   * A stopped router relays nothing (`weave stop`, spec §1.2; issue: a stopped
   * relay host kept carrying its neighbours' traffic through kernel flows). Flows
   * taking frames from the tunnel back into it lose those outputs; what they
   * deliver to this host's own ports stays, so its containers keep receiving
   * until the next router takes over. No new flows appear: misses go to a
   * userspace that is gone.
   */
  private async stopRelaying(): Promise<void> {
    for (const f of await listFlows(this.conn, this.dp)) {
      if (f.key.inPort !== this.vxlanPortNo) continue;
      const local = localActions(f.actions, this.vxlanPortNo);
      if (local.length === f.actions.length) continue;
      await deleteFlow(this.conn, this.dp, f.key).catch((e: unknown) => { if (!isOdpNotFound(e)) throw e; });
      // FLOW NEW on an existing key is refused (EEXIST): the local part comes back as a new flow.
      if (local.some((a) => a.type === 'output')) await createFlow(this.conn, this.dp, { key: f.key, ...(f.mask ? { mask: f.mask } : {}), actions: local });
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
    await executePacket(this.conn, this.dp, { packet: frame, actions: [setTunnel(this.tunnelKey(srcShortId, dstShortId, to)), output(this.vxlanPortNo)] });
  }

  forwarderStopped(forwarder: FastdpForwarder): Promise<void> | void {
    this.forwarders.delete(forwarder);
    // An encrypted connection's flows must be gone before its SAs and marking rules (spec §7).
    // (close() stops its forwarders while the netlink connection is still open.)
    if (this.ipsec !== undefined && forwarder.status().encrypted) return this.deleteFlowsNow('encrypted connection closed', true);
  }

  warn(message: string): void {
    this.log(message);
  }

  // ---- vports

  private async adoptVport(v: Vport): Promise<void> {
    if (v.type === 'netdev' || v.type === 'internal') this.bridgePorts.set(v.portNo, v.name);
    // spec §6.7: every vport's misses come to our socket.
    if (!v.upcallPids.includes(this.rx.portId)) await setVportUpcallPid(this.conn, this.dp, v.portNo, this.rx.portId);
  }

  private vportChanged(kind: 'new' | 'del', v: Vport): void {
    if (this.closed) return;
    if (kind === 'del') {
      this.bridgePorts.delete(v.portNo);
      this.macs.forget((w) => w.kind === 'port' && w.portNo === v.portNo);
    } else {
      this.adoptVport(v).catch((e: unknown) => this.log(`fastdp: vport "${v.name}": ${(e as Error).message}`));
    }
    // spec §6.5: a new bridge port invalidates flows (floods must include it).
    if (v.type === 'netdev' || v.type === 'internal') this.invalidateFlows(`vport "${v.name}" ${kind === 'new' ? 'added' : 'removed'}`);
  }

  // ---- misses

  private async upcallLoop(): Promise<void> {
    while (!this.closed) {
      let batch: Upcall[];
      try {
        batch = await this.rx.receive();
      } catch (e) {
        if (this.closed) return;
        this.log(`fastdp: receiving misses: ${(e as Error).message}`);
        continue;
      }
      for (const u of batch) {
        try {
          await this.handleMiss(u);
        } catch (e) {
          if (this.closed) return;
          this.userspaceDrops++;
          this.log(`fastdp: handling a miss on vport ${u.key.inPort ?? '?'}: ${(e as Error).message}`);
        }
      }
    }
  }

  private async handleMiss(u: Upcall): Promise<void> {
    const inPort = u.key.inPort;
    if (u.kind !== 'miss' || inPort === undefined) return;
    const generation = this.generation;
    const decision = inPort === this.vxlanPortNo ? this.tunnelMiss(inPort, u) : this.localMiss(inPort, u);
    if (decision === undefined || decision.actions.length === 0) return;
    await executePacket(this.conn, this.dp, { packet: u.packet, actions: decision.actions });
    // spec §6.5: no flow if flows were invalidated while the miss was handled.
    if (decision.flowKey !== undefined && generation === this.generation && !this.closed) {
      // EEXIST: frames of one flow queued as misses before its flow existed; the first
      // one's miss installed it, with the same actions (nothing changed in between).
      await createFlow(this.conn, this.dp, { key: decision.flowKey, mask: exactMask(decision.flowKey), actions: decision.actions })
        .catch((e: unknown) => { if (!isOdpExists(e)) throw e; });
    }
  }

  /** A frame from a local bridge port (spec §5.8 "locally captured", §6.5). */
  private localMiss(inPort: number, u: Upcall): Decision | undefined {
    const eth = u.key.ethernet;
    if (eth === undefined || eth.dst === STP_MAC) return undefined;
    this.learn(eth.src, { kind: 'port', portNo: inPort });
    const key: FlowKey = { inPort, ethernet: eth };
    const where = this.macs.lookup(eth.dst);
    if (isGroupMac(eth.dst) || where === undefined) {
      const tunnels = this.broadcastActions(this.routing?.ourShortId, this.routing?.ourName);
      const actions = [...this.localFlood(inPort), ...tunnels.actions];
      // spec §6.5: an unknown unicast is flooded without a flow, so learning it later needs no invalidation.
      return { actions, ...(isGroupMac(eth.dst) && tunnels.complete ? { flowKey: key } : {}) };
    }
    if (where.kind === 'port') {
      return where.portNo === inPort ? undefined : { actions: [output(where.portNo)], flowKey: key };
    }
    const r = this.routing;
    const actions = r && this.tunnelActions(r.ourShortId, r.shortIdOf.get(where.peer), r.nextHop.get(where.peer));
    return actions ? { actions, flowKey: key } : undefined;
  }

  /** A frame from VXLAN: a heartbeat, a frame to relay, or one for us (spec §5.8 "received frame", §6.5). */
  private tunnelMiss(inPort: number, u: Upcall): Decision | undefined {
    const t = u.key.tunnel;
    if (t?.id === undefined) return undefined;
    if (hasZeroMacs(u.packet)) {
      this.heartbeat(u.packet, t.ipv4Src);
      return undefined;
    }
    const r = this.routing;
    const eth = u.key.ethernet;
    if (r === undefined || eth === undefined) return undefined;
    const { srcShortId, dstShortId } = parseWeaveTunnelId(t.id);
    const source = r.peerByShortId.get(srcShortId);
    const dest = r.peerByShortId.get(dstShortId);
    // spec §6.2: unknown short ids: drop without a flow.
    if (source === undefined || dest === undefined || source === r.ourName) return undefined;
    const key: FlowKey = { inPort, tunnel: { id: t.id, ipv4Src: t.ipv4Src, ipv4Dst: t.ipv4Dst }, ethernet: eth };
    if (dest !== r.ourName) {
      const actions = this.tunnelActions(srcShortId, dstShortId, r.nextHop.get(dest));
      return actions ? { actions, flowKey: key } : undefined;
    }
    this.learn(eth.src, { kind: 'peer', peer: source });
    const where = this.macs.lookup(eth.dst);
    if (!isGroupMac(eth.dst) && where?.kind === 'port') return { actions: [output(where.portNo)], flowKey: key };
    // Broadcast, or a destination not known to be local: deliver locally and pass along
    // the source's broadcast tree (spec §5.8); only group addresses get a flow.
    const tunnels = this.broadcastActions(srcShortId, source);
    const actions = [...this.localFlood(undefined), ...tunnels.actions];
    return { actions, ...(isGroupMac(eth.dst) && tunnels.complete ? { flowKey: key } : {}) };
  }

  private heartbeat(frame: Buffer, fromIp: string | undefined): void {
    const connUID = parseHeartbeat(frame);
    if (connUID === undefined) return;
    for (const f of this.forwarders) if (f.connUID === connUID) f.heartbeatReceived(fromIp, frame.length);
  }

  private learn(mac: string, where: Parameters<MacTable['learn']>[1]): void {
    // spec §5.8: a MAC moving to another port or peer invalidates the flows that sent it elsewhere.
    if (this.macs.learn(mac, where) === 'moved') this.invalidateFlows(`MAC ${mac} moved`);
  }

  private localFlood(except: number | undefined): FlowAction[] {
    return [...this.bridgePorts.keys()].filter((p) => p !== except).sort((a, b) => a - b).map(output);
  }

  /** Tunnels to each broadcast next hop of `source` (spec §5.8: dst = that neighbour). */
  private broadcastActions(srcShortId: PeerShortID | undefined, source: PeerName | undefined): { actions: FlowAction[]; complete: boolean } {
    const r = this.routing;
    if (r === undefined || source === undefined) return { actions: [], complete: false };
    const actions: FlowAction[] = [];
    let complete = true;
    for (const hop of r.broadcast.get(source) ?? []) {
      const a = this.tunnelActions(srcShortId, r.shortIdOf.get(hop), hop);
      if (a) actions.push(...a);
      else complete = false;
    }
    return { actions, complete };
  }

  /** set(tunnel) + output(vxlan) towards neighbour `hop`, or undefined when fastdp cannot carry it (spec §6.5). */
  private tunnelActions(srcShortId: PeerShortID | undefined, dstShortId: PeerShortID | undefined, hop: PeerName | undefined): FlowAction[] | undefined {
    if (srcShortId === undefined || dstShortId === undefined || hop === undefined) return undefined;
    const neighbour = this.routing?.neighbours.get(hop);
    // The overlay switch chose sleeve (or nothing) for this neighbour: not ours to carry.
    if (neighbour === undefined || neighbour.overlay !== 'fastdp') return undefined;
    const fwd = this.forwarderTo(hop);
    // With IPsec a neighbour is reached only through a forwarder whose outbound SA and
    // marking rules exist: the overlay switch picks fastdp for a new connection before
    // its SA exchange ends, and a frame tunnelled meanwhile would leave in clear (spec §7).
    if (this.ipsec !== undefined && fwd?.outboundReady !== true) return undefined;
    const to: TunnelEndpoint = fwd?.tunnel ?? { localIp: '', remoteIp: neighbour.remoteIp, remotePort: this.vxlanUdpPort };
    return [setTunnel(this.tunnelKey(srcShortId, dstShortId, to)), output(this.vxlanPortNo)];
  }

  private tunnelKey(srcShortId: PeerShortID, dstShortId: PeerShortID, to: TunnelEndpoint): TunnelKey {
    const source = tunnelSource(to);
    return {
      id: weaveTunnelId(srcShortId, dstShortId),
      // Without a known local address the kernel picks the route's source.
      ...(source !== undefined ? { ipv4Src: source } : {}),
      ipv4Dst: to.remoteIp,
      tos: 0,
      ttl: TUNNEL_TTL,
      dontFragment: true,
      // A peer on a non-default mesh port listens on its own port + 1 (spec §6.2).
      ...(to.remotePort !== this.vxlanUdpPort ? { tpDst: to.remotePort } : {}),
    };
  }

  private forwarderTo(name: PeerName): FastdpForwarder | undefined {
    let best: FastdpForwarder | undefined;
    for (const f of this.forwarders) {
      if (f.remoteName !== name) continue;
      if (best === undefined || forwarderRank(f) > forwarderRank(best)) best = f;
    }
    return best;
  }

  // ---- flow invalidation and expiry

  private invalidateFlows(why: string): void {
    this.deleteFlowsNow(why).catch((e: unknown) => {
      if (!this.closed) this.log(`fastdp: ${(e as Error).message}`);
    });
  }

  /** Deletes every flow (misses rebuild them); resolves once the kernel has none of the old ones. */
  private async deleteFlowsNow(why: string, evenWhenClosing = false): Promise<void> {
    this.generation++;
    this.flowUsed.clear();
    if (this.closed && !evenWhenClosing) return;
    try {
      await deleteAllFlows(this.conn, this.dp);
    } catch (e) {
      throw new Error(`deleting flows (${why}): ${(e as Error).message}`);
    }
  }

  /**
   * spec §6.5 expiry: a flow not used since the previous pass is deleted; a
   * used one keeps its MACs fresh in the table. Returns how many were deleted.
   */
  async expireFlows(): Promise<number> {
    const seen = new Map<string, bigint>();
    let deleted = 0;
    for (const f of await listFlows(this.conn, this.dp)) {
      const id = flowId(f.key);
      if (f.used === 0n || this.flowUsed.get(id) === f.used) {
        try {
          await deleteFlow(this.conn, this.dp, f.key);
          deleted++;
        } catch (e) {
          if (!isOdpNotFound(e)) throw e;
        }
      } else {
        seen.set(id, f.used);
        if (f.key.ethernet) this.macs.touch(f.key.ethernet.src);
      }
    }
    this.flowUsed = seen;
    this.macs.expire(Date.now() - (this.opts.macExpiryMs ?? MAC_EXPIRY_MS));
    return deleted;
  }

  // ---- plumbing

  private every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => {
      fn().catch((e: unknown) => {
        if (!this.closed) this.log(`fastdp: ${(e as Error).message}`);
      });
    }, ms);
    t.unref();
    this.timers.push(t);
  }
}

function flowId(key: FlowKey): string {
  return JSON.stringify({ p: key.inPort, e: key.ethernet, t: key.tunnel && [key.tunnel.id?.toString(16), key.tunnel.ipv4Src, key.tunnel.ipv4Dst] });
}

/** Removes the datapath (with its vports and flows) and the bridge veth (`weave reset`). Idempotent. */
export async function teardownFastdp(opts: { netns?: NetnsHandle | string; datapathName?: string } = {}): Promise<void> {
  const conn = await OdpConnection.open({ netns: opts.netns });
  try {
    await deleteDatapath(conn, opts.datapathName ?? DEFAULT_DATAPATH_NAME);
  } catch (e) {
    if (!isOdpNotFound(e)) throw e;
  } finally {
    conn.close();
  }
  const rtnl = Rtnl.open({ netns: opts.netns });
  try {
    // Deleting one end of the veth removes both.
    await rtnl.deleteLink(BRIDGE_SIDE_VETH);
  } catch (e) {
    if (!isNetlinkError(e, 'ENODEV')) throw e;
  } finally {
    rtnl.socket.close();
  }
}

/** `actions` without what sends into the tunnel: outputs to the VXLAN vport and the tunnel keys set for them. */
function localActions(actions: readonly FlowAction[], vxlanPortNo: number): FlowAction[] {
  return actions.filter((a) => a.type !== 'set-tunnel' && !(a.type === 'output' && a.port === vxlanPortNo));
}

/** Which of two forwarders to one peer carries its frames: established first, then one that may send. */
function forwarderRank(f: FastdpForwarder): number {
  return (f.status().state === 'established' ? 2 : 0) + (f.outboundReady ? 1 : 0);
}
