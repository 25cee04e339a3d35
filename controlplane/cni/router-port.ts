// What the CNI plugin needs from the weave router (types only). The
// executable implements it over the router's HTTP API (router-client.ts);
// unit tests give the plugin logic an in-memory one.
import type { CniRoute } from './config.js';

/** The router's readiness as STATUS reports it. */
export type RouterHealth =
  | { kind: 'ready' }
  /** The router answers but is not ready yet (its /status says why). */
  | { kind: 'not-ready'; reason: string }
  /** Nothing answers at the API address (not started, restarting). */
  | { kind: 'unreachable'; reason: string }
  /** The router runs without IPAM (no --ipalloc-range). */
  | { kind: 'no-ipam' };

export interface EndpointRequest {
  netns: string;
  ifname: string;
  containerId: string;
  cidrs: string[];
  hairpin: boolean;
  /** 0: the bridge's. */
  mtu: number;
  /** Installed in order; a route without gw is on-link. */
  routes: CniRoute[];
}

export interface EndpointState {
  /** Name of the veth's host end. */
  hostVeth: string;
  mac: string;
  mtu: number;
  cidrs: string[];
  routes: CniRoute[];
}

export interface OwnedAddresses {
  containerId: string;
  cidrs: string[];
}

/** A failure the router reported (HTTP 4xx/5xx): its message, verbatim. */
export class RouterRequestError extends Error {}
/** Nothing answered at the router's API address. */
export class RouterDownError extends Error {}

export interface WeaveRouterPort {
  /** The API address, for messages. */
  readonly address: string;
  health(): Promise<RouterHealth>;
  /** POST /ip/<id>[/<subnet>]: the address for `id` (the same one on a repeat). */
  allocate(containerId: string, subnet?: string): Promise<string>;
  /** GET /ip/<id>[/<subnet>]: the addresses `id` holds. */
  lookup(containerId: string, subnet?: string): Promise<string[]>;
  /** DELETE /ip/<id>: false when it held nothing. */
  release(containerId: string): Promise<boolean>;
  /** The bridge's addresses (`weave:expose`). */
  bridgeAddresses(): Promise<string[]>;
  /** Puts `cidr` on the bridge (as `weave expose`). */
  expose(cidr: string): Promise<void>;
  /** Creates or converges the container's interface on the bridge. */
  attach(req: EndpointRequest): Promise<void>;
  /** The container's interface, or undefined when it has none. */
  inspect(netns: string, ifname: string): Promise<EndpointState | undefined>;
  /** Deletes the container's interface; false when it had none. */
  detach(netns: string, ifname: string): Promise<boolean>;
}
