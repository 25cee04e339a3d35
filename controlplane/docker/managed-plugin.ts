// The managed plugin mode (`--plugin-v2`, user-surface spec §7.2): the router runs inside a
// Docker managed plugin and serves one socket, `weave.sock`, with the global-scope driver
// `net-plugin`; no IPAM driver (Swarm allocates), no weaveDNS registration and no Docker
// API access, so no watcher. Multicast routes for every network with --plugin-v2-multicast.
import type { ServiceSection } from '../api/status-model.js';
import { NetworkDriver, type PluginEndpointPort } from './network-driver.js';
import { PluginServer } from './plugin-server.js';
import type { OnListening } from '../listening.js';

/** The driver name the managed plugin reports (users name the plugin itself in `-d`). */
export const MANAGED_PLUGIN_DRIVER_NAME = 'net-plugin';

export interface ManagedPluginConfig {
  socket: string;
  multicast: boolean;
  procPath: string;
}

export class ManagedPlugin {
  private constructor(readonly config: ManagedPluginConfig, private readonly server: PluginServer) {}

  static async start(
    config: ManagedPluginConfig, endpoints: PluginEndpointPort, log: (m: string) => void, warn: (m: string) => void, onListening?: OnListening,
  ): Promise<ManagedPlugin> {
    const driver = new NetworkDriver({
      name: MANAGED_PLUGIN_DRIVER_NAME, scope: 'global', endpoints,
      fixedNetworkInfo: { isOurs: true, hasMulticastRoute: config.multicast }, log, warn,
    });
    const server = new PluginServer({ socketPath: config.socket, network: driver, log: warn, onListening });
    await server.listen();
    log(`[plugin] Listening on ${config.socket} for global scope (managed plugin)`);
    return new ManagedPlugin(config, server);
  }

  summarySection(): ServiceSection {
    return { service: 'plugin (v2)', fields: [] };
  }

  reportSection(defaultSubnet: string): Record<string, unknown> {
    return {
      Config: {
        Socket: this.config.socket, MeshSocket: '', Enable: false, EnableV2: true, EnableV2Multicast: this.config.multicast,
        DNS: false, DefaultSubnet: defaultSubnet, ProcPath: this.config.procPath,
      },
      DriverName: MANAGED_PLUGIN_DRIVER_NAME,
    };
  }

  stats(): { socket: string; requests: number; driverErrors: number; badRequests: number } {
    return { socket: this.config.socket, ...this.server.stats };
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
