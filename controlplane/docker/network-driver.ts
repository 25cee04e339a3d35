// The remote network drivers `weave` (global scope) and `weavemesh` (local scope) with
// Weave 2.8's semantics (user-surface spec §7.1): endpoints are veth pairs on the weave
// bridge made by the data plane; Join hands Docker the container end to move in under the
// `ethwe` prefix, with the multicast route when the network asks for it.
import {
  CONTAINER_IFNAME_PREFIX, MULTICAST_DESTINATION, MULTICAST_OPTION, PluginError, ROUTE_TYPE_CONNECTED,
  type CreateEndpointRequest, type CreateNetworkRequest, type EndpointRequest, type JoinRequest, type JoinResponse,
} from './plugin-protocol.js';

/** What the driver needs from the data plane. */
export interface PluginEndpointPort {
  /** Creates the veth pair for an endpoint; resolves with the container end's name and MAC. */
  create(endpointId: string): Promise<{ peerVeth: string; mac: string }>;
  /** Deletes it; false when it was already gone. */
  remove(endpointId: string): Promise<boolean>;
  /** The container-side veth name of an endpoint (before Docker moves and renames it). */
  peerName(endpointId: string): string;
}

/** How the driver learns about a network Docker did not create through it (after a restart). */
export interface NetworkLookup {
  /** Driver name and options of a Docker network; throws when Docker cannot say. */
  inspect(networkId: string): Promise<{ driver: string; options: Record<string, string> }>;
}

export interface NetworkInfo {
  /** Created with this driver (networks of other drivers never get our endpoints). */
  isOurs: boolean;
  hasMulticastRoute: boolean;
}

export type Scope = 'local' | 'global';

export interface NetworkDriverOptions {
  name: string;
  scope: Scope;
  endpoints: PluginEndpointPort;
  /** Absent without Docker access (then Join on an unknown network fails). */
  lookup?: NetworkLookup;
  /**
   * The managed plugin (spec §7.2) has no Docker access: every network is taken as ours,
   * with the multicast route as `--plugin-v2-multicast` says.
   */
  fixedNetworkInfo?: NetworkInfo;
  warn?(message: string): void;
  log?(message: string): void;
}

/** Parses a `works.weave.multicast` value: empty means on (spec §7.1). */
export function parseMulticastOption(value: string): boolean {
  if (value === '') return true;
  // Go's strconv.ParseBool.
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new PluginError(`unrecognized value "${value}" for option ${MULTICAST_OPTION}`);
}

export class NetworkDriver {
  readonly name: string;
  readonly scope: Scope;
  private readonly networks = new Map<string, NetworkInfo>();
  private readonly warn: (m: string) => void;
  private readonly log: (m: string) => void;

  constructor(private readonly opts: NetworkDriverOptions) {
    this.name = opts.name;
    this.scope = opts.scope;
    this.warn = opts.warn ?? (() => undefined);
    this.log = opts.log ?? (() => undefined);
  }

  capabilities(): { Scope: Scope } {
    return { Scope: this.scope };
  }

  createNetwork(req: CreateNetworkRequest): Record<string, never> {
    this.log(`[net] CreateNetwork ${req.NetworkID}`);
    this.setupNetworkInfo(req.NetworkID, true, req.options);
    return {};
  }

  deleteNetwork(networkId: string): Record<string, never> {
    this.log(`[net] DeleteNetwork ${networkId}`);
    this.networks.delete(networkId);
    return {};
  }

  /** Swarm managers: the options given come back unchanged, to be passed to CreateNetwork. */
  allocateNetwork(networkId: string, options: unknown): { Options: unknown } {
    this.log(`[net] AllocateNetwork ${networkId}`);
    return { Options: options ?? null };
  }

  freeNetwork(networkId: string): Record<string, never> {
    this.log(`[net] FreeNetwork ${networkId}`);
    return {};
  }

  async createEndpoint(req: CreateEndpointRequest): Promise<{ Interface: { MacAddress: string } }> {
    this.log(`[net] CreateEndpoint ${req.EndpointID}`);
    if (!req.hasInterface) throw new PluginError('Not supported: creating an interface from within CreateEndpoint');
    let mac: string;
    try {
      ({ mac } = await this.opts.endpoints.create(req.EndpointID));
    } catch (e) {
      throw new PluginError((e as Error).message);
    }
    return { Interface: { MacAddress: mac } };
  }

  async deleteEndpoint(req: EndpointRequest): Promise<Record<string, never>> {
    this.log(`[net] DeleteEndpoint ${req.EndpointID}`);
    try {
      if (!(await this.opts.endpoints.remove(req.EndpointID))) this.warn(`[net] DeleteEndpoint: no veth for endpoint ${req.EndpointID}`);
    } catch (e) {
      this.warn(`[net] DeleteEndpoint: unable to delete veth of ${req.EndpointID}: ${(e as Error).message}`);
    }
    return {};
  }

  endpointOperInfo(req: EndpointRequest): { Value: Record<string, never> } {
    this.log(`[net] EndpointOperInfo ${req.EndpointID}`);
    return { Value: {} };
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    this.log(`[net] Join ${req.NetworkID}:${req.EndpointID} to ${req.SandboxKey}`);
    let network: NetworkInfo;
    try {
      network = await this.networkInfo(req.NetworkID);
    } catch (e) {
      throw new PluginError(`unable to find network info: ${(e as Error).message}`);
    }
    const res: JoinResponse = { InterfaceName: { SrcName: this.opts.endpoints.peerName(req.EndpointID), DstPrefix: CONTAINER_IFNAME_PREFIX } };
    if (network.hasMulticastRoute) res.StaticRoutes = [{ Destination: MULTICAST_DESTINATION, RouteType: ROUTE_TYPE_CONNECTED }];
    return res;
  }

  leave(req: EndpointRequest): Record<string, never> {
    this.log(`[net] Leave ${req.NetworkID}:${req.EndpointID}`);
    return {};
  }

  /** What we know of a network, asking Docker for one created before we started. */
  async networkInfo(networkId: string): Promise<NetworkInfo> {
    if (this.opts.fixedNetworkInfo) return this.opts.fixedNetworkInfo;
    const known = this.networks.get(networkId);
    if (known) return known;
    if (!this.opts.lookup) throw new Error('Docker client disabled; unable to get network info');
    const info = await this.opts.lookup.inspect(networkId);
    return this.setupNetworkInfo(networkId, info.driver === this.name, info.options);
  }

  private setupNetworkInfo(networkId: string, isOurs: boolean, options: Record<string, string>): NetworkInfo {
    const network: NetworkInfo = { isOurs, hasMulticastRoute: false };
    if (isOurs) {
      for (const [key, value] of Object.entries(options)) {
        if (key === MULTICAST_OPTION) network.hasMulticastRoute = parseMulticastOption(value);
        else this.warn(`[net] network ${networkId}: unrecognized option: ${key}`);
      }
    }
    this.networks.set(networkId, network);
    return network;
  }
}
