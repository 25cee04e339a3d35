// Interface names and fixed addresses Weave uses on a host (user-surface spec
// §0.2 "Fixed names", §6.1). One place, so attach, ps and reset agree.
import { DEFAULT_BRIDGE } from '../../controlplane/well-known.js';

/** Default bridge name (`--weave-bridge`), as the CLI and the CNI plugin know it too. */
export { DEFAULT_BRIDGE };
/** The container-side interface of `weave attach` (spec §6.1). */
export const CONTAINER_IFNAME = 'ethwe';
/** Host-side end of a container veth: `vethwepl<id>` (spec §1.8 step 4). */
export const HOST_VETH_PREFIX = 'vethwepl';
/** Container-side end before it is renamed to `ethwe`: `vethwepg<id>`. */
export const PEER_VETH_PREFIX = 'vethwepg';
/** Every link whose name starts with this is Weave's and goes on `weave reset` (spec §6.5). */
export const WEAVE_LINK_PREFIX = 'vethwe';
/** The bridge's port towards the datapath: `vethwe-bridge` <-> `vethwe-<side>` (spec §6.1). */
export const BRIDGE_PORT_VETH = 'vethwe-bridge';
/** The ODP datapath name the script passes (spec §0.2); removed on reset when it is an OVS datapath. */
export const ODP_DATAPATH = 'datapath';
/** Multicast route added inside containers unless `--no-multicast-route` (spec §6.2). */
export const MULTICAST_ROUTE = '224.0.0.0/4';
/** The firewall table this project owns (an nftables table, never iptables chains). */
export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'weave';

/** The id part is at most 7 characters so `vethwepl<id>` fits IFNAMSIZ (spec §1.8: pid truncated to 7). */
export const ENDPOINT_ID_MAX = 7;

export interface EndpointVethNames {
  host: string;
  peer: string;
}

/** `vethwepl<id>` / `vethwepg<id>` for an endpoint id (a pid, or another short token). */
export function endpointVethNames(id: string): EndpointVethNames {
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) {
    throw new RangeError(`invalid endpoint id ${JSON.stringify(id)} (letters, digits, '.', '_' or '-')`);
  }
  const short = id.slice(0, ENDPOINT_ID_MAX);
  return { host: `${HOST_VETH_PREFIX}${short}`, peer: `${PEER_VETH_PREFIX}${short}` };
}

/** Linux interface name rules: 1-15 bytes, no whitespace, '/' or ':'. */
export function validInterfaceName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && !/[\s/:]/.test(name) && name !== '.' && name !== '..';
}
