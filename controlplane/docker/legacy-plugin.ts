// The legacy Docker plugin as the router runs it (user-surface spec §7.1, §4.3 `--plugin`):
// `weave.sock` serves the global-scope driver `weave`, `weavemesh.sock` the local-scope
// driver `weavemesh` plus the `weavemesh` IPAM driver; the Docker network `weave` is created
// when absent (and again whenever Docker comes back without it); a container watcher keeps
// weaveDNS, IPAM and `weave ps` in step with Docker.
import type { ServiceSection } from '../api/status-model.js';
import { formatCIDR, type CIDR } from '../ipam/addr.js';
import { ContainerWatcher, type WatcherDnsPort, type WatcherHostPort, type WatcherIpamPort } from './container-watcher.js';
import { DockerApiError, DockerNotFoundError, type EngineClient } from './engine-client.js';
import { IpamDriver, type PluginIpamPort } from './ipam-driver.js';
import { NetworkDriver, type PluginEndpointPort } from './network-driver.js';
import { DEFAULT_NETWORK_NAME, MULTICAST_OPTION, driverNameOf } from './plugin-protocol.js';
import { PluginServer } from './plugin-server.js';
import type { OnListening } from '../listening.js';

export interface LegacyPluginConfig {
  /** weave.sock path; '' disables the global driver. */
  socket: string;
  /** weavemesh.sock path; '' disables the local driver, the IPAM driver and the default network. */
  meshSocket: string;
  /** Register containers in weaveDNS (off with --no-dns). */
  dns: boolean;
  procPath: string;
}

export interface LegacyPluginDeps {
  client: EngineClient;
  endpoints: PluginEndpointPort;
  /** Absent when IPAM is off: then the IPAM driver refuses and no default network is made. */
  ipam?: PluginIpamPort;
  dns?: WatcherDnsPort;
  ipamEvents?: WatcherIpamPort;
  host?: WatcherHostPort;
  log(message: string): void;
  warn(message: string): void;
  /** Given each plugin socket's server before it listens (controlplane/listening.ts). */
  onListening?: OnListening;
}

/** How long start() waits for the first sync with Docker. */
const FIRST_SYNC_WAIT_MS = 15_000;

/** The IPAM port when IPAM is off: every call says so. */
const IPAM_OFF: PluginIpamPort = {
  defaultSubnet: () => { throw new Error('IPAM is disabled (the router was started without --ipalloc-range)'); },
  allocate: () => Promise.reject(new Error('IPAM is disabled (the router was started without --ipalloc-range)')),
  claim: () => Promise.reject(new Error('IPAM is disabled (the router was started without --ipalloc-range)')),
  release: () => { throw new Error('IPAM is disabled (the router was started without --ipalloc-range)'); },
};

export class LegacyPlugin {
  private readonly servers: PluginServer[] = [];
  private readonly drivers: NetworkDriver[] = [];
  readonly watcher: ContainerWatcher;
  readonly driverName: string;
  readonly meshDriverName: string;

  private constructor(readonly config: LegacyPluginConfig, private readonly deps: LegacyPluginDeps) {
    this.driverName = config.socket === '' ? '' : driverNameOf(config.socket);
    this.meshDriverName = config.meshSocket === '' ? '' : driverNameOf(config.meshSocket);
    const lookup = {
      inspect: async (id: string) => {
        const n = await deps.client.inspectNetwork(id);
        return { driver: n.Driver, options: n.Options ?? {} };
      },
    };
    const make = (name: string, scope: 'local' | 'global'): NetworkDriver =>
      new NetworkDriver({ name, scope, endpoints: deps.endpoints, lookup, warn: deps.warn, log: deps.log });
    if (config.socket !== '') {
      const d = make(this.driverName, 'global');
      this.drivers.push(d);
      this.servers.push(new PluginServer({ socketPath: config.socket, network: d, log: deps.warn, onListening: deps.onListening }));
    }
    if (config.meshSocket !== '') {
      const d = make(this.meshDriverName, 'local');
      this.drivers.push(d);
      const ipam = new IpamDriver(deps.ipam ?? IPAM_OFF, deps.log);
      this.servers.push(new PluginServer({ socketPath: config.meshSocket, network: d, ipam, log: deps.warn, onListening: deps.onListening }));
    }
    this.watcher = new ContainerWatcher({
      client: deps.client,
      isOurNetwork: async (id) => {
        for (const d of this.drivers) if ((await d.networkInfo(id)).isOurs) return true;
        return false;
      },
      dns: config.dns ? deps.dns : undefined,
      ipam: deps.ipamEvents,
      host: deps.host,
      onResync: () => this.ensureNetwork(),
      log: deps.log,
      warn: deps.warn,
    });
  }

  /**
   * Serves the sockets and starts the watcher (which creates the default network once it
   * has reached Docker). The caller checks beforehand that Docker answers.
   */
  static async start(config: LegacyPluginConfig, deps: LegacyPluginDeps): Promise<LegacyPlugin> {
    const plugin = new LegacyPlugin(config, deps);
    try {
      for (const s of plugin.servers) {
        await s.listen();
        deps.log(`[plugin] Listening on ${s.opts.socketPath} for ${s.opts.ipam ? 'local' : 'global'} scope`);
      }
    } catch (e) {
      await Promise.allSettled(plugin.servers.map((s) => s.close()));
      throw e;
    }
    plugin.watcher.start();
    // Docker answered a moment ago, so the first sync (and the default network) normally
    // follows at once; a slow daemon only delays it, the watcher carries on regardless.
    const synced = await Promise.race([
      plugin.watcher.firstSync.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), FIRST_SYNC_WAIT_MS).unref()),
    ]);
    if (!synced) deps.warn(`[plugin] Docker did not list its containers within ${FIRST_SYNC_WAIT_MS / 1000} s; carrying on`);
    return plugin;
  }

  /** Creates Docker network `weave` (driver and IPAM weavemesh, default subnet, multicast) when absent. */
  async ensureNetwork(): Promise<void> {
    if (this.meshDriverName === '' || !this.deps.ipam) return;
    try {
      await this.deps.client.inspectNetwork(DEFAULT_NETWORK_NAME);
      return;
    } catch (e) {
      if (!(e instanceof DockerNotFoundError)) throw e;
    }
    const subnet: CIDR = this.deps.ipam.defaultSubnet();
    this.deps.log(`[plugin] Creating default "${DEFAULT_NETWORK_NAME}" network`);
    try {
      await this.deps.client.createNetwork({
        Name: DEFAULT_NETWORK_NAME,
        CheckDuplicate: true,
        Driver: this.meshDriverName,
        IPAM: { Driver: this.meshDriverName, Config: [{ Subnet: formatCIDR(subnet) }] },
        Options: { [MULTICAST_OPTION]: 'true' },
      });
    } catch (e) {
      // Another caller created it first: that is what we wanted.
      if (e instanceof DockerApiError && e.status === 409) return;
      throw e;
    }
  }

  summarySection(): ServiceSection {
    return { service: 'plugin (legacy)', fields: [['DriverName', this.driverName]] };
  }

  reportSection(defaultSubnet: string): Record<string, unknown> {
    const r: Record<string, unknown> = {
      Config: {
        Socket: this.config.socket, MeshSocket: this.config.meshSocket, Enable: true, EnableV2: false, EnableV2Multicast: false,
        DNS: this.config.dns, DefaultSubnet: defaultSubnet, ProcPath: this.config.procPath,
      },
      DriverName: this.driverName,
    };
    if (this.meshDriverName !== '') r.MeshDriverName = this.meshDriverName;
    return r;
  }

  serverStats(): { socket: string; requests: number; driverErrors: number; badRequests: number }[] {
    return this.servers.map((s) => ({ socket: s.opts.socketPath, ...s.stats }));
  }

  async close(): Promise<void> {
    await this.watcher.stop();
    await Promise.allSettled(this.servers.map((s) => s.close()));
  }
}
