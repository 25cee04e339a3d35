// The MTU the bridge and container interfaces get (user-surface spec §4.2
// `--mtu`): an explicit value wins; a plain bridge without a fast datapath
// uses 65535; with a fast datapath it is the underlay's MTU less the VXLAN
// encapsulation overhead, so encapsulated frames still fit the underlay.
import type { Link, Rtnl } from '../netlink/index.js';
import { DEFAULT_BRIDGE, WEAVE_LINK_PREFIX } from './names.js';

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
