// Docker's remote network driver and remote IPAM driver protocols as the legacy Weave plugin
// speaks them (user-surface spec §7.1): POST /<Receiver>.<Method> with a JSON body, a JSON
// object back; failures are HTTP 500 `{"Err": "..."}`. The shapes below are the fields
// Docker (libnetwork's remote driver API) sends and reads; requests are validated here, so
// the drivers only see well-formed values.

/** Plugin handshake. */
export const ACTIVATE_PATH = '/Plugin.Activate';
export const NETWORK_RECEIVER = 'NetworkDriver';
export const IPAM_RECEIVER = 'IpamDriver';

/** Network option that adds the 224.0.0.0/4 route inside containers (spec §7.1). */
export const MULTICAST_OPTION = 'works.weave.multicast';
/** Where Docker puts `--opt k=v` of `docker network create` in CreateNetwork. */
export const GENERIC_DATA_OPTION = 'com.docker.network.generic';
/** IPAM pool data key for the gateway (libnetwork netlabel.Gateway). */
export const GATEWAY_DATA_KEY = 'com.docker.network.gateway';
/** The interface-name prefix Docker gives the moved veth (`ethwe0`, `ethwe1`, ...). */
export const CONTAINER_IFNAME_PREFIX = 'ethwe';
export const MULTICAST_DESTINATION = '224.0.0.0/4';
/** libnetwork types.CONNECTED: a route straight out of the interface, no next hop. */
export const ROUTE_TYPE_CONNECTED = 1;

/** The address spaces the IPAM driver names (spec §7.1). */
export const LOCAL_ADDRESS_SPACE = 'weavelocal';
export const GLOBAL_ADDRESS_SPACE = 'weaveglobal';
/** Pool id of plugins older than the `weave-<subnet>-<range>` scheme: the default subnet. */
export const LEGACY_POOL_ID = 'weavepool';

/** Docker network the router creates at start (spec §7.1). */
export const DEFAULT_NETWORK_NAME = 'weave';
export const DEFAULT_PLUGIN_SOCKET = '/run/docker/plugins/weave.sock';
export const DEFAULT_PLUGIN_MESH_SOCKET = '/run/docker/plugins/weavemesh.sock';

/** Requests larger than this are refused (Docker's are a few hundred bytes). */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** A failure of a driver call: reported to Docker as 500 `{"Err": message}`. */
export class PluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginError';
  }
}

/** A request Docker should never send: 400 with a plain-text reason, as Weave's listener does. */
export class PluginRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginRequestError';
  }
}

/** The driver name a socket serves: its file name without `.sock` (spec §7.1). */
export function driverNameOf(socketPath: string): string {
  const base = socketPath.slice(socketPath.lastIndexOf('/') + 1);
  return base.endsWith('.sock') ? base.slice(0, -'.sock'.length) : base;
}

// ---- request shapes (validated) ----

export interface CreateNetworkRequest {
  NetworkID: string;
  /** String values of the generic options (`--opt`); others are dropped as Weave does. */
  options: Record<string, string>;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  /** Whether Docker supplied the interface (addresses from IPAM); Weave requires it. */
  hasInterface: boolean;
}

export interface EndpointRequest {
  NetworkID: string;
  EndpointID: string;
}

export interface JoinRequest extends EndpointRequest {
  SandboxKey: string;
}

export interface RequestPoolRequest {
  AddressSpace: string;
  Pool: string;
  SubPool: string;
  V6: boolean;
}

export interface RequestAddressRequest {
  PoolID: string;
  /** '' when Docker lets the driver choose. */
  Address: string;
}

export interface ReleaseAddressRequest {
  PoolID: string;
  Address: string;
}

type Json = Record<string, unknown>;

function obj(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PluginRequestError('Unable to decode JSON payload: expected a JSON object');
  return body as Json;
}

function str(o: Json, key: string, required: boolean): string {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new PluginRequestError(`Unable to decode JSON payload: missing ${key}`);
    return '';
  }
  if (typeof v !== 'string') throw new PluginRequestError(`Unable to decode JSON payload: ${key} must be a string`);
  return v;
}

export function parseNetworkId(body: unknown): string {
  return str(obj(body), 'NetworkID', true);
}

export function parseCreateNetwork(body: unknown): CreateNetworkRequest {
  const o = obj(body);
  const options: Record<string, string> = {};
  const opts = o.Options;
  if (typeof opts === 'object' && opts !== null) {
    const generic = (opts as Json)[GENERIC_DATA_OPTION];
    if (typeof generic === 'object' && generic !== null) {
      for (const [k, v] of Object.entries(generic as Json)) if (typeof v === 'string') options[k] = v;
    }
  }
  return { NetworkID: str(o, 'NetworkID', true), options };
}

export function parseCreateEndpoint(body: unknown): CreateEndpointRequest {
  const o = obj(body);
  const iface = o.Interface;
  return {
    NetworkID: str(o, 'NetworkID', true),
    EndpointID: str(o, 'EndpointID', true),
    hasInterface: typeof iface === 'object' && iface !== null,
  };
}

export function parseEndpoint(body: unknown): EndpointRequest {
  const o = obj(body);
  return { NetworkID: str(o, 'NetworkID', false), EndpointID: str(o, 'EndpointID', true) };
}

export function parseJoin(body: unknown): JoinRequest {
  const o = obj(body);
  return { NetworkID: str(o, 'NetworkID', true), EndpointID: str(o, 'EndpointID', true), SandboxKey: str(o, 'SandboxKey', false) };
}

export function parseRequestPool(body: unknown): RequestPoolRequest {
  const o = obj(body);
  return { AddressSpace: str(o, 'AddressSpace', false), Pool: str(o, 'Pool', false), SubPool: str(o, 'SubPool', false), V6: o.V6 === true };
}

export function parsePoolId(body: unknown): string {
  return str(obj(body), 'PoolID', true);
}

export function parseRequestAddress(body: unknown): RequestAddressRequest {
  const o = obj(body);
  return { PoolID: str(o, 'PoolID', true), Address: str(o, 'Address', false) };
}

export function parseReleaseAddress(body: unknown): ReleaseAddressRequest {
  const o = obj(body);
  return { PoolID: str(o, 'PoolID', true), Address: str(o, 'Address', true) };
}

// ---- responses ----

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  StaticRoutes?: { Destination: string; RouteType: number; NextHop?: string }[];
}

export interface RequestPoolResponse {
  PoolID: string;
  Pool: string;
  Data: Record<string, string>;
}

export interface RequestAddressResponse {
  Address: string;
  Data: Record<string, string>;
}
