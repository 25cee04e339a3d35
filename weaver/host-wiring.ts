// Wires the router's host networking (dataplane/host) into weaver: picks the
// bridge name and MTU, creates the bridge with the peer name as its MAC, loads
// the firewall, and adapts HostNetwork to the API's HostControl. Also records
// the bridge name in the state directory so `weave reset` finds it. `weave
// attach` returns once the data plane has taken the new port (whenAttached).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HostRequestError, type HostControl } from '../controlplane/api/host-control.js';
import { splitHostPort } from '../controlplane/host-port.js';
import {
  BRIDGE_PORT_VETH, BridgeError, chooseMtu, configureContainerArp, DEFAULT_BRIDGE, EndpointError, ExposeError, HairpinWatcher, HostNetwork, iptablesBackendFromEnv,
  pluginVethNames, useHostPaths, validInterfaceName,
} from '../dataplane/host/index.js';
import { isNetlinkError, Rtnl } from '../dataplane/netlink/index.js';
import type { WeaverConfig } from './flags.js';

/** File in the state directory naming the bridge this router made (read by `weave reset`). */
export const HOST_NETWORK_FILE = 'host-network.json';
export const ENDPOINTS_FILE = 'endpoints.json';

export interface HostNetworkRecord {
  bridge: string;
}

/** Resolves once the data plane handles a container port just put on the bridge. */
export type PortAttachedHook = (hostVeth: string) => Promise<void>;

/** Container endpoints made for the Docker plugin (controlplane/docker reaches the data plane here). */
export interface PluginHostEndpoints {
  /** A veth pair on the bridge; resolves once the data plane has taken the port. */
  create(endpointId: string): Promise<{ peerVeth: string; mac: string }>;
  remove(endpointId: string): Promise<boolean>;
  peerName(endpointId: string): string;
  configureArp(pid: number): Promise<void>;
  track(label: string, pid: number): void;
}

export interface RunningHostNetwork {
  control: HostControl;
  plugin: PluginHostEndpoints;
  bridge: string;
  mtu: number;
  /**
   * From now on `attach` returns only after `hook` resolved for the container's
   * host-side veth (the data plane starts after the bridge, so it plugs in here).
   */
  whenAttached(hook: PortAttachedHook): void;
  /** From now on `fn(label)` runs for each attached container whose veth went away with its namespace. */
  onEndpointGone(fn: (label: string) => void): void;
  /** The bridge and every attached container down to `mtu` (HostNetwork.lowerMtu). */
  lowerMtu(mtu: number): Promise<void>;
  /**
   * Every attached container announces its addresses again with gratuitous
   * ARP (HostNetwork.reannounce); calls while one runs coalesce into one more.
   */
  reannounce(): void;
  /** Settles once the iptables FORWARD rules the start queued are in place (HostNetwork.forwardRulesApplied). */
  forwardRulesApplied: Promise<void>;
  close(): void;
}

/** The bridge name a router recorded in `stateDir`, else the default. */
export function recordedBridge(stateDir: string): string {
  try {
    const rec = JSON.parse(readFileSync(join(stateDir, HOST_NETWORK_FILE), 'utf8')) as Partial<HostNetworkRecord>;
    if (typeof rec.bridge === 'string' && validInterfaceName(rec.bridge)) return rec.bridge;
  } catch {
    // no record: the default bridge
  }
  return DEFAULT_BRIDGE;
}

/** The control API as host/port when it listens on one IPv4 address (the firewall protects it, spec §5.1). */
function controlApiOf(httpAddr: string): { address: string; port: number } | undefined {
  const hp = httpAddr.startsWith('/') ? undefined : splitHostPort(httpAddr);
  if (hp?.port === undefined || !isIPv4(hp.host) || hp.host === '0.0.0.0') return undefined;
  return { address: hp.host, port: hp.port };
}

/** A peer name is usable as the bridge MAC only when it is unicast. */
function usableMac(peerName: string): string | undefined {
  return (parseInt(peerName.slice(0, 2), 16) & 1) === 0 ? peerName : undefined;
}

/** Errors the caller can fix (bad namespace, not attached, bad address) become 400s. */
function asRequestError(err: unknown): unknown {
  if (err instanceof EndpointError || err instanceof ExposeError || err instanceof BridgeError || err instanceof RangeError) {
    return new HostRequestError(err.message);
  }
  if (isNetlinkError(err, 'EEXIST') || isNetlinkError(err, 'EADDRNOTAVAIL')) return new HostRequestError((err as Error).message);
  return err;
}

async function translate<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw asRequestError(err);
  }
}

/** `--proc-path`, and `<--host-root>/sys` when present: where to write sysctls and bridge-port settings. */
export function hostPathsOf(cfg: Pick<WeaverConfig, 'procPath' | 'hostRoot'>): { proc?: string; sys?: string } {
  const root = cfg.hostRoot;
  const sys = root !== undefined && existsSync(join(root, 'sys', 'class', 'net')) ? join(root, 'sys') : undefined;
  return { proc: cfg.procPath, sys };
}

export async function startHostNetworking(cfg: WeaverConfig, peerName: string, logger: Logger): Promise<RunningHostNetwork> {
  useHostPaths(hostPathsOf(cfg));
  const bridge = cfg.bridge;
  const rtnl = Rtnl.open();
  let mtu: number;
  try {
    mtu = await chooseMtu(rtnl, { configured: cfg.mtu, fastdp: !cfg.noFastdp }, bridge);
  } finally {
    rtnl.close();
  }
  const net = await HostNetwork.start({
    bridge,
    mtu,
    mac: usableMac(peerName),
    controlApi: controlApiOf(cfg.httpAddr),
    dockerBridge: cfg.dockerBridge,
    iptablesBackend: iptablesBackendFromEnv(process.env),
    expectNpc: cfg.expectNpc,
    registryFile: join(cfg.stateDir, ENDPOINTS_FILE),
  });
  const record: HostNetworkRecord = { bridge };
  writeFileSync(join(cfg.stateDir, HOST_NETWORK_FILE), JSON.stringify(record));
  logger.info({ bridge, mtu }, `Bridge type is ${net.bridgeType}`);
  const hairpin = new HairpinWatcher(BRIDGE_PORT_VETH, (atStart) => {
    // Weave's words, so existing log checks keep working.
    if (atStart) {
      logger.error(`Setting may cause connectivity issues : Hairpin mode enabled on "${BRIDGE_PORT_VETH}"`);
      logger.info('Hairpin mode may have been enabled by other software on this machine');
    } else {
      logger.error(`Hairpin mode enabled on "${BRIDGE_PORT_VETH}"`);
    }
  }, (err) => logger.warn(`following hairpin mode of ${BRIDGE_PORT_VETH}: ${err.message}`));

  let portAttached: PortAttachedHook | undefined;
  const control: HostControl = {
    attach: async (req) => {
      // Also on a re-attach: the port may predate this router, and taking it again costs nothing.
      const result = await translate(net.attach({ ...req, portReady: async (hostVeth) => portAttached?.(hostVeth) }));
      if (result.announceError) logger.warn(`gratuitous ARP for ${result.added.join(' ')} on ${req.label}: ${result.announceError.message}`);
      return result.cidrs;
    },
    detach: async (target, cidrs, ifname) => (await translate(net.detach(target, cidrs, ifname))).removed,
    inspect: async (target, ifname) => {
      const info = await translate(net.inspect(target, ifname));
      return info && { hostVeth: info.hostVeth, mac: info.mac, mtu: info.mtu, cidrs: info.cidrs, routes: info.routes };
    },
    addresses: async (target) => (await translate(net.inspect(target)))?.cidrs ?? [],
    ps: (labels) => translate(net.ps(labels)),
    expose: (cidr, masquerade) => translate(net.expose(cidr, masquerade)),
    hide: (cidrs) => translate(net.hide(cidrs)),
    bridgeType: () => net.bridgeType,
  };
  const plugin: PluginHostEndpoints = {
    create: async (endpointId) => {
      const ep = await net.createPluginEndpoint(endpointId);
      await portAttached?.(ep.hostVeth);
      return { peerVeth: ep.peerVeth, mac: ep.mac };
    },
    remove: (endpointId) => net.deletePluginEndpoint(endpointId),
    peerName: (endpointId) => pluginVethNames(endpointId).peer,
    configureArp: async (pid) => { await configureContainerArp({ pid }); },
    track: (label, pid) => net.track(label, { pid }),
  };
  // One re-announcement at a time; requests meanwhile make one more run after it.
  let announcing: Promise<void> | undefined;
  let announceAgain = false;
  const reannounce = (): void => {
    if (announcing) {
      announceAgain = true;
      return;
    }
    announcing = net.reannounce().then(({ announced, failed }) => {
      if (announced > 0) logger.info(`peers reachable: ${announced} attached container(s) announced their addresses with gratuitous ARP`);
      for (const f of failed) logger.warn(`cannot re-announce the addresses of container ${f}`);
    }, (err: Error) => logger.warn(`re-announcing container addresses: ${err.message}`)).finally(() => {
      announcing = undefined;
      if (announceAgain) {
        announceAgain = false;
        reannounce();
      }
    });
  };
  return {
    control,
    plugin,
    bridge,
    mtu,
    reannounce,
    forwardRulesApplied: net.forwardRulesApplied,
    whenAttached: (hook) => {
      portAttached = hook;
    },
    onEndpointGone: (fn) => {
      net.watchEndpoints((label) => {
        logger.info(`container ${label} is gone (its veth was deleted); releasing its names and addresses`);
        fn(label);
      }, (err) => logger.warn(`following container veth deletions: ${err.message}`));
    },
    lowerMtu: async (m) => {
      const { reached, failed } = await net.lowerMtu(m);
      logger.info(`overlay MTU ${m}: bridge ${bridge} and ${reached} attached container(s) lowered`);
      for (const f of failed) logger.warn(`cannot lower the MTU of container ${f}; it may send frames larger than ${m} that peers drop`);
    },
    close: () => {
      void hairpin.close();
      net.close();
    },
  };
}
