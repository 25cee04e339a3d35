// The MTU the bridge and container interfaces get (user-surface spec §4.2
// `--mtu`): an explicit value wins; a plain bridge without a fast datapath
// uses 65535; with a fast datapath it is the underlay's MTU less the VXLAN
// encapsulation overhead, so encapsulated frames still fit the underlay.
import type { Link, Rtnl } from '../netlink/index.js';
import { BRIDGE_PORT_VETH, DEFAULT_BRIDGE, WEAVE_LINK_PREFIX } from './names.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;
/** Plain-bridge (sleeve-only) MTU, spec §6.1. */
export const PLAIN_BRIDGE_MTU = 65535;
/** Used when no underlay interface can be found. */
export const FALLBACK_UNDERLAY_MTU = 1500;

export interface MtuChoice {
  /** `--mtu` / WEAVE_MTU; 0 = automatic. */
  configured: number;
  fastdp: boolean;
}

function isUnderlayCandidate(l: Link, bridge: string): boolean {
  return l.up && l.name !== 'lo' && l.name !== bridge && !l.name.startsWith(WEAVE_LINK_PREFIX) && l.kind !== 'bridge' && l.kind !== 'vxlan';
}

/** MTU of the link carrying the default route, else the smallest MTU among up links with an IPv4 address. */
export async function underlayMtu(rtnl: Rtnl, bridge = DEFAULT_BRIDGE): Promise<number> {
  const links = await rtnl.listLinks();
  const byIndex = new Map(links.map((l) => [l.index, l]));
  const routes = await rtnl.listRoutes();
  const dflt = routes.find((r) => r.dst === '0.0.0.0/0' && r.oifIndex !== undefined);
  const viaDefault = dflt?.oifIndex === undefined ? undefined : byIndex.get(dflt.oifIndex);
  if (viaDefault && isUnderlayCandidate(viaDefault, bridge)) return viaDefault.mtu;
  const withAddress = new Set((await rtnl.listAddresses()).map((a) => a.index));
  const mtus = links.filter((l) => withAddress.has(l.index) && isUnderlayCandidate(l, bridge)).map((l) => l.mtu);
  return mtus.length > 0 ? Math.min(...mtus) : FALLBACK_UNDERLAY_MTU;
}

export async function chooseMtu(rtnl: Rtnl, choice: MtuChoice, bridge = DEFAULT_BRIDGE): Promise<number> {
  if (choice.configured > 0) return choice.configured;
  if (!choice.fastdp) return PLAIN_BRIDGE_MTU;
  return (await underlayMtu(rtnl, bridge)) - VXLAN_OVERHEAD;
}

/**
 * Lowers the bridge to `mtu` (never raises it), so containers attached from
 * now on get it, and the veth pairs on it whose both ends are in this
 * namespace (attach-bridge, the OVS datapath's pair). The sleeve's capture
 * pair keeps its MTU: it must pass whatever the sleeve delivers. Container
 * ends are lowered from inside their namespaces (endpoint.ts
 * lowerEndpointMtu). Returns the interfaces changed.
 */
export async function lowerBridgeMtu(rtnl: Rtnl, bridge: string, mtu: number): Promise<string[]> {
  const changed: string[] = [];
  const bridgeLink = await rtnl.findLink(bridge);
  if (!bridgeLink) return changed;
  if (bridgeLink.mtu > mtu) {
    await rtnl.setMtu(bridgeLink.index, mtu);
    changed.push(bridge);
  }
  const links = await rtnl.listLinks();
  const byIndex = new Map(links.map((l) => [l.index, l]));
  for (const port of links) {
    if (port.masterIndex !== bridgeLink.index || port.kind !== 'veth' || port.name === BRIDGE_PORT_VETH || port.mtu <= mtu) continue;
    // A peer in another namespace is a container's: not ours to reach from here.
    if (port.parentNetnsId !== undefined || port.parentIndex === undefined) continue;
    const peer = byIndex.get(port.parentIndex);
    if (peer && peer.mtu > mtu) {
      await rtnl.setMtu(peer.index, mtu);
      changed.push(peer.name);
    }
    await rtnl.setMtu(port.index, mtu);
    changed.push(port.name);
  }
  return changed;
}
