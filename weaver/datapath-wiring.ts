// Wires the data plane into weaver: chooses the datapaths (fastdp when the
// kernel offers one and --no-fastdp is not given, always sleeve), creates them
// on the bridge host-wiring made, and connects them to the mesh Router
// through the overlay switch (wire spec §2.4, §5.9) and the forwarding state
// (§4.6). Also reports the data plane's part of the router status.
import type { Logger } from 'pino';
import type { DatapathCounters } from '../controlplane/api/status-model.js';
import type { OverlayHandler, Router } from '../controlplane/mesh/index.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import type { Datapath, DatapathDescriptor, DatapathKind, DatapathOpenOptions, OverlayName } from '../controlplane/router/datapath.js';
import { ForwardingUpdater } from '../controlplane/router/forwarding.js';
import { OpeningDatapath } from '../controlplane/router/opening-datapath.js';
import { OverlaySwitch, type SwitchConnection } from '../controlplane/router/overlay-switch.js';
import { loweringMessage, OverlayMtu } from '../controlplane/router/overlay-mtu.js';
import type { IPsec } from '../dataplane/ipsec/index.js';
import { Rtnl } from '../dataplane/netlink/index.js';
import { bpfDatapath } from '../dataplane/bpf/descriptor.js';
import { ovsDatapath } from '../dataplane/ovs/descriptor.js';
import { sleeveDatapath } from '../dataplane/sleeve/descriptor.js';
import { SleeveDatapath } from '../dataplane/sleeve/datapath.js';
import type { WeaverConfig } from './flags.js';
import type { DataPlaneStatus } from './router-status.js';
import type { TrustedSubnets } from '../controlplane/router/trusted-subnets.js';
import { encryptionWanted, remoteOverlayPort } from '../controlplane/router/connection-policy.js';

/**
 * Every datapath kind (ARCHITECTURE "The datapath registry"): the kernel fast
 * datapaths in preference order, then the sleeve, always available.
 */
export const DATAPATHS: readonly DatapathDescriptor[] = [ovsDatapath, bpfDatapath, sleeveDatapath];

/** What the launch-time probe found out about a kernel fast datapath (ARCHITECTURE "Datapath selection"). */
export interface FastdpProbe {
  /** Creates the fastdp Datapath; absent when the kernel (or this build) has none. */
  create?: () => Promise<Datapath>;
  /** Which kind `create` opens. */
  kind?: DatapathKind;
  /** Why there is no fastdp, shown per connection in status. */
  unavailableReason?: string;
}

export interface DatapathChoice {
  /** Overlays to create, in preference order (the `Overlays` feature, spec §1.5). */
  overlays: OverlayName[];
  /** Overlays left out, with why. */
  unavailable: Map<OverlayName, string>;
}

/** Why the router refuses to start: --fastdp was given and the kernel offers no fast datapath. */
export class FastdpRequiredError extends Error {
  constructor(readonly reason: string) {
    super(`--fastdp was given but no kernel fast datapath can be used: ${reason}; make Open vSwitch or eBPF (tc programs, bpffs) available, or launch without --fastdp to use the sleeve`);
    this.name = 'FastdpRequiredError';
  }
}

/**
 * The composition root's one decision: fastdp then sleeve, or sleeve only
 * (--no-fastdp, no kernel support). With --fastdp (`requireFastdp`) a missing
 * kernel fast datapath is an error instead of a quiet fallback.
 */
export function chooseDatapaths(flags: Pick<WeaverConfig, 'noFastdp'> & Partial<Pick<WeaverConfig, 'requireFastdp'>>, probe: FastdpProbe): DatapathChoice {
  const unavailable = new Map<OverlayName, string>();
  if (flags.noFastdp) unavailable.set('fastdp', 'disabled by --no-fastdp');
  else if (!probe.create) unavailable.set('fastdp', probe.unavailableReason ?? 'no kernel fast datapath on this host');
  const reason = unavailable.get('fastdp');
  if (flags.requireFastdp && reason !== undefined) throw new FastdpRequiredError(reason);
  return { overlays: unavailable.has('fastdp') ? ['sleeve'] : ['fastdp', 'sleeve'], unavailable };
}

/** ESP in transport mode with AES-GCM adds 34-37 bytes to each VXLAN packet (spec §7.4). */
export const ESP_OVERHEAD = 37;

/**
 * Which kernel fast datapath to use: `ovs`, `bpf`, or unset/`auto` (OVS when
 * the kernel has it, else eBPF). Lets a host with both run the eBPF one, e.g.
 * to mix datapath kinds in one mesh.
 */
export const FASTDP_KIND_ENV = 'WEAVE_FASTDP_DATAPATH';

export function fastdpKindWanted(env: NodeJS.ProcessEnv = process.env): DatapathKind | 'auto' {
  const v = (env[FASTDP_KIND_ENV] ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  const kinds = DATAPATHS.filter((d) => d.overlay === 'fastdp').map((d) => d.kind);
  const kind = kinds.find((k) => k === v);
  if (kind !== undefined) return kind;
  throw new Error(`${FASTDP_KIND_ENV}=${v} is not a fast datapath kind; use ${kinds.join(', ')} or auto`);
}

/**
 * The kernel fast datapath probe (ARCHITECTURE "Datapath selection"): the
 * first fastdp kind in DATAPATHS whose probe succeeds (only the one named by
 * WEAVE_FASTDP_DATAPATH when set); else every kind's reason.
 */
export async function probeFastdp(opts: DatapathOpenOptions): Promise<FastdpProbe> {
  const wanted = fastdpKindWanted();
  const reasons: string[] = [];
  for (const d of DATAPATHS) {
    if (d.overlay !== 'fastdp' || (wanted !== 'auto' && d.kind !== wanted)) continue;
    const probe = await d.probe();
    if (probe.available) return { create: () => d.open(opts), kind: d.kind };
    reasons.push(probe.reason);
  }
  const reason = reasons.join('; ');
  return { unavailableReason: wanted === 'auto' ? reason : `${reason} (${FASTDP_KIND_ENV}=${wanted})` };
}

/**
 * The overlay MTU with fastdp: an automatic MTU (underlay - VXLAN) also leaves
 * room for ESP when connections may be encrypted, so heartbeats padded to the
 * MTU still fit the underlay (spec §6.4); an explicit --mtu is kept.
 */
export function fastdpMtu(hostMtu: number, config: Pick<WeaverConfig, 'mtu' | 'password'>): number {
  return config.mtu === 0 && config.password !== '' ? hostMtu - ESP_OVERHEAD : hostMtu;
}

export interface DataPlaneOptions {
  ourName: PeerName;
  config: WeaverConfig;
  logger: Logger;
  bridge: string;
  /** Overlay MTU from host-wiring. */
  mtu: number;
  /** Lowers the bridge and every attached container to an MTU (host-wiring); absent: only the datapaths follow. */
  lowerHostMtu?: (mtu: number) => Promise<void>;
  /**
   * Peers became reachable through the data plane (a connection came up or
   * came back), their forwarding state in place: host-wiring re-announces the
   * local containers' addresses.
   */
  onPeersReachable?: () => void;
  /** --trusted-subnets, built once by the composition root (also the mesh's). */
  trusted: TrustedSubnets;
  probe?: FastdpProbe;
  /** Startup phases as they are reached (the router logs them at debug level). */
  phase?(what: string): void;
}

export interface RunningDataPlane {
  /** Our overlays in preference order, for the handshake's `Overlays` feature. */
  readonly overlays: string[];
  /** Pass as the Router's `overlay` option. */
  readonly overlayHandler: OverlayHandler;
  /** Pass as the Router's `onRoutesChanged` / `onShortIdsChanged`. */
  routesChanged(): void;
  /** Must be called once the Router exists, before any connection is added. */
  bindRouter(router: Router): void;
  /** The data plane's part of a status snapshot: the switch's per-peer record, the Interface line, counters. */
  status(): DataPlaneStatus;
  /** Settles when the first connection is established on a datapath (the router makes its code cache then). */
  readonly firstConnectionEstablished: Promise<void>;
  /** `weave attach` put `ifname` on the bridge: resolves once every datapath handles it (Datapath.portAdded). */
  portAdded(ifname: string): Promise<void>;
  close(): Promise<void>;
}

export async function startDataPlane(opts: DataPlaneOptions): Promise<RunningDataPlane> {
  const { config, logger } = opts;
  const mtu = config.noFastdp ? opts.mtu : fastdpMtu(opts.mtu, config);
  const openOptions: DatapathOpenOptions = {
    ourName: opts.ourName,
    bridge: opts.bridge,
    mtu,
    port: config.port,
    ...(config.host !== '' ? { bindIp: config.host } : {}),
    ipsec: config.password !== '',
    log: (m) => logger.warn(m),
  };
  const probe = opts.probe ?? (config.noFastdp ? {} : await probeFastdp(openOptions));
  opts.phase?.('fastdp probe');
  const choice = chooseDatapaths(config, probe);
  const datapaths: Datapath[] = [];
  try {
    if (choice.overlays.includes('fastdp') && !config.requireFastdp && probe.kind !== undefined) {
      // Loading the kernel fast datapath is most of a start: the sleeve and the mesh do not wait
      // for it (controlplane/router/opening-datapath.ts). With --fastdp a failure stops the router, below.
      const opening = new OpeningDatapath(probe.kind, 'fastdp', mtu, probe.create!());
      void opening.ready.then((dp) => {
        if (dp) opts.phase?.(`fastdp (${dp.kind}) open`);
        else if (opening.failed !== undefined) logger.warn(`Unable to use fastdp: cannot start: ${opening.failed}; connections use the sleeve`);
      });
      datapaths.push(opening);
    } else if (choice.overlays.includes('fastdp')) {
      try {
        datapaths.push(await probe.create!());
        opts.phase?.('fastdp open');
      } catch (err) {
        const reason = `cannot start: ${(err as Error).message}`;
        if (config.requireFastdp) throw new FastdpRequiredError(reason);
        choice.unavailable.set('fastdp', reason);
        choice.overlays = choice.overlays.filter((o) => o !== 'fastdp');
        logger.warn(`Unable to use fastdp: ${reason}; using sleeve only`);
      }
    }
    const sleeve = await sleeveDatapath.open({ ...openOptions, mtu: datapaths.length > 0 ? mtu : opts.mtu, fallbackOnly: datapaths.length > 0 });
    datapaths.push(sleeve);
    opts.phase?.('sleeve open');
    // Chaos tests only: SIGUSR2 ends the sleeve's packet worker as a crash would (a thread cannot be killed from outside).
    if (process.env.WEAVE_TEST_FAULTS === '1' && sleeve instanceof SleeveDatapath) {
      process.on('SIGUSR2', () => {
        logger.warn('SIGUSR2 (WEAVE_TEST_FAULTS): ending the sleeve packet worker');
        void sleeve.killWorkerForTest();
      });
    }
    await keepBridgeMtu(opts.bridge, datapaths[0]?.mtu ?? opts.mtu);
    // A relaunch with a lower MTU than running containers have (e.g. --mtu given now): bring them down to it.
    if (datapaths[0]?.overlay === 'fastdp') {
      const ours = datapaths[0].mtu;
      await opts.lowerHostMtu?.(ours).catch((err: unknown) => logger.warn(`lowering running containers to MTU ${ours}: ${(err as Error).message}`));
    }
  } catch (err) {
    await Promise.allSettled(datapaths.map((d) => d.close()));
    if (err instanceof FastdpRequiredError) throw err;
    throw new Error(`Unable to start the sleeve overlay on bridge ${opts.bridge} (UDP port ${config.port}): ${(err as Error).message}`);
  }
  for (const [o, why] of choice.unavailable) logger.info(`overlay ${o} not used: ${why}`);
  logger.info(`Overlays: ${datapaths.map((d) => `${d.overlay} (${d.kind})`).join(', ')}`);

  const overlayMtu = new OverlayMtu(datapaths[0]?.mtu ?? opts.mtu);
  // Lowerings apply in order; the host network serialises them with attaches.
  let mtuApplied: Promise<void> = Promise.resolve();
  const remoteMtu = (peer: string, overlay: OverlayName, mtu: number): void => {
    // The sleeve's MTU is its path MTU to the peer, not what the peer's containers accept.
    if (overlay !== 'fastdp') return;
    const decision = overlayMtu.announced(mtu);
    if (decision.action === 'ignore') logger.warn(`peer ${peer} announces overlay MTU ${mtu}: ignored, ${decision.reason}`);
    if (decision.action !== 'lower') return;
    logger.info(loweringMessage(peer, decision.from, decision.to));
    mtuApplied = mtuApplied.then(async () => {
      for (const d of datapaths) await d.lowerMtu?.(decision.to);
      await opts.lowerHostMtu?.(decision.to);
    }).catch((err: unknown) => logger.warn(`lowering the overlay MTU to ${decision.to}: ${(err as Error).message}`));
  };

  const { trusted } = opts;
  const passwordSet = config.password !== '';
  let router: Router | undefined;
  let updater: ForwardingUpdater | undefined;
  let firstEstablished = true;
  let connectionEstablished: () => void = () => {};
  const firstConnectionEstablished = new Promise<void>((resolve) => {
    connectionEstablished = resolve;
  });
  const overlaySwitch = new OverlaySwitch({
    datapaths,
    mesh: {
      setConnectionEstablished: (name, e) => {
        if (e && firstEstablished) {
          firstEstablished = false;
          opts.phase?.('first connection established');
          connectionEstablished();
        }
        return router?.setConnectionEstablished(name, e) ?? false;
      },
    },
    encryptFor: (conn: SwitchConnection) =>
      encryptionWanted(passwordSet, trusted, { remoteAddr: conn.remoteAddr, outbound: conn.outbound, remoteTrustsUs: conn.handshake.remote.trusted === true }),
    remotePortFor: (overlay, conn) => remoteOverlayPort(overlay, conn, config.port),
    unavailable: choice.unavailable,
    onSelectionChanged: () => updater?.schedule(),
    onRemoteMtu: remoteMtu,
    log: (m) => logger.info(m),
  });

  return {
    overlays: overlaySwitch.overlayNames(),
    overlayHandler: {
      connectionAdded: (conn) => overlaySwitch.connectionAdded(conn),
      message: (conn, body) => overlaySwitch.message(conn, body),
      connectionRemoved: (conn) => overlaySwitch.connectionRemoved(conn),
    },
    routesChanged: () => updater?.schedule(),
    bindRouter: (r) => {
      router = r;
      updater = new ForwardingUpdater({
        mesh: r,
        datapaths,
        neighbours: () => overlaySwitch.neighbours(),
        log: (m) => logger.warn(m),
        ...(opts.onPeersReachable ? { onPeersReachable: opts.onPeersReachable } : {}),
      });
      updater.schedule();
    },
    status: () => {
      const preferred = inUse(datapaths);
      return {
        interface: interfaceLabel(preferred),
        overlays: overlaySwitch.overlayNames(),
        connections: overlaySwitch.statuses(),
        ...(preferred ? { datapath: { ...datapathCounters(preferred, logger), ...(preferred.overlay === 'fastdp' ? { overlayMtu: overlayMtu.effective } : {}) } } : {}),
      };
    },
    firstConnectionEstablished,
    portAdded: async (ifname) => {
      await Promise.all(datapaths.map((d) => d.portAdded?.(ifname).catch((err: unknown) => logger.warn(`${d.kind} datapath taking port ${ifname}: ${(err as Error).message}`))));
    },
    close: async () => {
      updater?.stop();
      overlaySwitch.stop();
      await Promise.allSettled(datapaths.map((d) => d.close()));
    },
  };
}

/**
 * Adding the sleeve's 65535-byte capture port lets the kernel raise the bridge's
 * MTU to it; containers take their MTU from the bridge, so put back the one
 * host-wiring chose (setting it explicitly also stops later auto-adjustment).
 */
async function keepBridgeMtu(bridge: string, mtu: number): Promise<void> {
  const rtnl = Rtnl.open();
  try {
    const link = await rtnl.getLink(bridge);
    if (link.mtu !== mtu) await rtnl.setMtu(bridge, mtu);
  } finally {
    rtnl.close();
  }
}

/** The preferred datapath that runs or is still opening (a fastdp that could not open is passed over). */
function inUse(datapaths: readonly Datapath[]): Datapath | undefined {
  return datapaths.find((d) => !(d instanceof OpeningDatapath) || d.failed === undefined);
}

/** The preferred datapath's counters for the report and /metrics; a failed read shows zeros and is logged. */
function datapathCounters(d: Datapath, logger: Logger): DatapathCounters {
  try {
    const s = d.stats();
    return { kind: d.kind, kernelForwarded: s.kernelForwarded, userspace: s.userspace, drops: s.drops, ...(s.flows === undefined ? {} : { flows: s.flows }) };
  } catch (err) {
    logger.warn(`reading the ${d.kind} datapath counters: ${(err as Error).message}`);
    return { kind: d.kind, kernelForwarded: 0n, userspace: 0n, drops: {} };
  }
}

/** The `Interface` line of `weave status` (user-surface spec §2.1): which datapath carries fastdp. */
function interfaceLabel(preferred: Datapath | undefined): string {
  const kind = preferred?.kind ?? 'sleeve';
  return (DATAPATHS.find((d) => d.kind === kind) ?? sleeveDatapath).interfaceLabel;
}

/**
 * `weave reset`: remove the data plane's kernel state: each datapath kind's
 * (the sleeve's capture port, the eBPF programs and pinned maps, the OVS
 * datapath with its vports and flows where the kernel has OVS), then every
 * XFRM policy and SA of the encrypted fast datapath (spec §7.1). The IPsec
 * chains go with the firewall table (host teardown).
 */
export async function teardownDataPlane(): Promise<void> {
  // The sleeve first: its capture port hangs on the bridge the kernel datapaths may own.
  for (const d of [...DATAPATHS].reverse()) await d.teardown();
  let ipsec: IPsec;
  try {
    ipsec = (await import('../dataplane/ipsec/index.js')).IPsec.open();
  } catch {
    return; // no XFRM in this kernel: nothing of ours can exist
  }
  try {
    await ipsec.flushAll();
  } finally {
    ipsec.close();
  }
}
