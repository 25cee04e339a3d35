// `weave expose` / `weave hide` on the bridge (user-surface spec §1.10): the
// host gets an address on the weave network by putting it on the bridge. The
// matching NAT/forward rules come from the firewall config (firewall.ts),
// which host-network.ts recomputes from the bridge's addresses.
import { isNetlinkError, type Rtnl } from '../netlink/index.js';
import { parseCidr } from './cidr.js';

export class ExposeError extends Error {}

/** The bridge's IPv4 addresses as CIDRs. */
export async function bridgeAddresses(rtnl: Rtnl, bridge: string): Promise<string[]> {
  const link = await rtnl.findLink(bridge);
  if (!link) return [];
  return (await rtnl.listAddresses(link.index)).map((a) => `${a.address}/${a.prefixLen}`);
}

/** Puts `cidr` on the bridge; returns false when it was already there. */
export async function addBridgeAddress(rtnl: Rtnl, bridge: string, cidr: string): Promise<boolean> {
  parseCidr(cidr);
  if (!(await rtnl.findLink(bridge))) throw new ExposeError(`bridge "${bridge}" not present; did you launch weave?`);
  if ((await bridgeAddresses(rtnl, bridge)).includes(cidr)) return false;
  try {
    await rtnl.addAddress(bridge, cidr);
  } catch (e) {
    if (isNetlinkError(e, 'EEXIST')) return false;
    throw new ExposeError(`unable to expose ${cidr}: ${(e as Error).message}`);
  }
  return true;
}

/** Removes `cidr` from the bridge; returns false when it was not there. */
export async function removeBridgeAddress(rtnl: Rtnl, bridge: string, cidr: string): Promise<boolean> {
  parseCidr(cidr);
  if (!(await bridgeAddresses(rtnl, bridge)).includes(cidr)) return false;
  try {
    await rtnl.deleteAddress(bridge, cidr);
  } catch (e) {
    if (isNetlinkError(e, 'EADDRNOTAVAIL') || isNetlinkError(e, 'ENODEV')) return false;
    throw e;
  }
  return true;
}
