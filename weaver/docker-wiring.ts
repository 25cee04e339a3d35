// Wires the legacy Docker plugin (controlplane/docker) into weaver (user-surface spec §7.1,
// §4.3): which Docker to talk to (--docker-api, else DOCKER_HOST, else the default socket),
// whether the plugin runs (--plugin, and Docker answering), and the ports the plugin uses:
// endpoints on the bridge (dataplane/host via host-wiring), weave IPAM with the anonymous
// ident, weaveDNS, and IPAM's view of container deaths.
import { formatCIDR } from '../controlplane/ipam/addr.js';
import { NO_CONTAINER_ID } from '../controlplane/ipam/allocator.js';
import {
  DEFAULT_PLUGIN_MESH_SOCKET, DEFAULT_PLUGIN_SOCKET, EngineClient, LegacyPlugin, ManagedPlugin, dockerHostFrom,
  type PluginIpamPort, type WatcherDnsPort, type WatcherIpamPort,
} from '../controlplane/docker/index.js';
import type { MetricFamily } from '../controlplane/api/metrics.js';
import type { ServiceSection } from '../controlplane/api/status-model.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import type { WeaverConfig } from './flags.js';
import type { RunningHostNetwork } from './host-wiring.js';
import type { RunningIpam } from './ipam-wiring.js';
import type { RunningDns } from './dns-wiring.js';
import { takeQueuedConnections } from '../dataplane/sys/accept-queue.js';

export interface DockerWiringOptions {
  config: WeaverConfig;
  env: NodeJS.ProcessEnv;
  hostNet: RunningHostNetwork;
  ipam?: RunningIpam;
  dns?: RunningDns;
  ourName: PeerName;
  log(message: string): void;
  warn(message: string): void;
}

export interface RunningPlugin {
  /** Whether a container id is running, per Docker (undefined: not a container id / not known now). */
  isAlive(ident: string): boolean | undefined;
  summarySection(): ServiceSection;
  reportSection(): Record<string, unknown>;
  metrics(): MetricFamily[];
  close(): Promise<void>;
}

/** The plugin's verdict at start: running, or off with the reason (said once in the log). */
export type PluginStart = { running: RunningPlugin } | { off: string };

/** The Docker address the router uses, or undefined when `--docker-api=''` turns Docker off. */
export function dockerApiOf(cfg: Pick<WeaverConfig, 'dockerApi'>, env: NodeJS.ProcessEnv): string | undefined {
  if (cfg.dockerApi === '') return undefined;
  return dockerHostFrom(cfg.dockerApi, env);
}

function ipamPort(ipam: RunningIpam): PluginIpamPort {
  const a = ipam.allocator;
  return {
    defaultSubnet: () => a.defaultSubnet,
    allocate: async (range) => (await a.allocate(NO_CONTAINER_ID, range)).addr,
    claim: (cidr) => a.claim(NO_CONTAINER_ID, cidr),
    release: (ip) => { a.deleteIdent(ip); },
  };
}

function dnsPort(dns: RunningDns, ourName: PeerName): WatcherDnsPort {
  return {
    domain: () => dns.service.domain(),
    register: (id, fqdn, ip) => dns.service.addName(id, ip, fqdn),
    containerDied: (id) => { dns.nameserver.containerDied(id); },
    registeredContainers: () => [...new Set(dns.nameserver.entries().filter((e) => e.origin === ourName && e.tombstone === 0).map((e) => e.containerId))],
  };
}

function ipamEventsPort(ipam: RunningIpam): WatcherIpamPort {
  const a = ipam.allocator;
  return {
    containerDied: (id) => { if (a.lookup(id).length > 0) a.containerDied(id); },
    containerDestroyed: (id) => { if (a.lookup(id).length > 0) a.deleteIdent(id); },
    owners: () => a.allOwned().map((o) => o.ident),
  };
}

/** The managed plugin (`--plugin-v2`, spec §7.2): one socket, no Docker access, no watcher. */
async function startManagedPlugin(opts: DockerWiringOptions): Promise<PluginStart> {
  const cfg = opts.config;
  const plugin = await ManagedPlugin.start(
    { socket: cfg.plugin.socket ?? DEFAULT_PLUGIN_SOCKET, multicast: cfg.plugin.multicast, procPath: cfg.procPath ?? '/proc' },
    opts.hostNet.plugin, opts.log, opts.warn, (server) => takeQueuedConnections(server),
  );
  const defaultSubnet = opts.ipam ? formatCIDR(opts.ipam.allocator.defaultSubnet) : '';
  return {
    running: {
      isAlive: () => undefined,
      summarySection: () => plugin.summarySection(),
      reportSection: () => plugin.reportSection(defaultSubnet),
      metrics: () => requestMetrics([plugin.stats()]),
      close: () => plugin.close(),
    },
  };
}

/**
 * Starts the plugin --plugin or --plugin-v2 asked for (the caller loads this
 * module only then) when Docker answers; otherwise says why it is off.
 */
export async function startDockerPlugin(opts: DockerWiringOptions): Promise<PluginStart> {
  const cfg = opts.config;
  if (cfg.dockerPlugin === 'managed') return startManagedPlugin(opts);
  const address = dockerApiOf(cfg, opts.env);
  if (address === undefined) return { off: "Docker API disabled (--docker-api='')" };
  let client: EngineClient;
  try {
    client = new EngineClient(address);
    const v = await client.version();
    await client.apiVersion();
    opts.log(`[plugin] Docker ${v.Version} (API ${v.ApiVersion}) at ${client.address}`);
  } catch (e) {
    return { off: (e as Error).message };
  }
  const socket = cfg.plugin.socket ?? DEFAULT_PLUGIN_SOCKET;
  const meshSocket = cfg.plugin.meshSocket ?? DEFAULT_PLUGIN_MESH_SOCKET;
  const procPath = cfg.procPath ?? '/proc';
  const plugin = await LegacyPlugin.start(
    { socket, meshSocket, dns: opts.dns !== undefined, procPath },
    {
      client,
      endpoints: opts.hostNet.plugin,
      ipam: opts.ipam ? ipamPort(opts.ipam) : undefined,
      dns: opts.dns ? dnsPort(opts.dns, opts.ourName) : undefined,
      ipamEvents: opts.ipam ? ipamEventsPort(opts.ipam) : undefined,
      host: opts.hostNet.plugin,
      log: opts.log,
      warn: opts.warn,
      onListening: (server) => takeQueuedConnections(server),
    },
  );
  const defaultSubnet = opts.ipam ? formatCIDR(opts.ipam.allocator.defaultSubnet) : '';
  const running: RunningPlugin = {
    isAlive: (ident) => plugin.watcher.isAlive(ident),
    summarySection: () => plugin.summarySection(),
    reportSection: () => plugin.reportSection(defaultSubnet),
    metrics: () => pluginMetrics(plugin),
    close: () => plugin.close(),
  };
  return { running };
}

function requestMetrics(stats: { socket: string; requests: number; driverErrors: number; badRequests: number }[]): MetricFamily[] {
  return [{
    name: 'weave_plugin_requests_total', help: 'Docker plugin API requests, by socket and outcome.', type: 'counter',
    samples: stats.flatMap((s) => [
      { labels: { socket: s.socket, outcome: 'ok' }, value: s.requests - s.driverErrors - s.badRequests },
      { labels: { socket: s.socket, outcome: 'driver_error' }, value: s.driverErrors },
      { labels: { socket: s.socket, outcome: 'bad_request' }, value: s.badRequests },
    ]),
  }];
}

function pluginMetrics(plugin: LegacyPlugin): MetricFamily[] {
  const w = plugin.watcher.stats;
  return [
    ...requestMetrics(plugin.serverStats()),
    {
      name: 'weave_docker_events_total', help: 'Docker events handled by the plugin\'s watcher; malformed ones dropped.', type: 'counter',
      samples: [{ labels: { kind: 'handled' }, value: w.events }, { labels: { kind: 'malformed' }, value: w.malformed }],
    },
  ];
}

