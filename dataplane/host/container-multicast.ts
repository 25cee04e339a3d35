// Multicast isolation between subnets of one weave network (user-surface spec
// §1.8 step 4, §1.9; Weave: net/veth.go setupIfaceAddrs). The bridge floods
// multicast to every container whatever its subnet, so inside each container's
// namespace multicast arriving on its weave interface is accepted only from the
// subnets of the container's own addresses and dropped otherwise. The rules are
// an nftables table of the container's own (Weave: iptables INPUT rules there),
// replaced whole from the interface's addresses after each attach and detach,
// over netlink (netlink/nftables.ts): an nft process per attach forked the
// router each time.
import { networkOf } from './cidr.js';
import { FirewallError } from './firewall.js';
import { MULTICAST_ROUTE } from './names.js';
import { NFT_PRIORITY, renderReplaceTable, replaceTable, type NftChain, type NftMatch } from '../netlink/index.js';

/** The container's table: family ip, as the rules match IPv4 only. */
export const CONTAINER_NFT_TABLE = 'weave';
const CONTAINER_NFT_FAMILY = 'ip';
const CHAIN = 'input';
const DROP_COMMENT = 'multicast from other subnets of the weave network';

/** The container's table for the addresses `cidrs` on `ifname`: one input chain, or none without addresses. */
export function containerMulticastChains(ifname: string, cidrs: readonly string[]): NftChain[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(ifname)) throw new FirewallError(`interface name ${JSON.stringify(ifname)} cannot be used in a firewall rule`);
  if (cidrs.length === 0) return [];
  // One rule per subnet, as Weave's: overlapping subnets (10.0.0.0/8 and 10.2.0.0/16) cannot share an interval set.
  const subnets = [...new Set(cidrs.map(networkOf))];
  const fromInterface: NftMatch = { kind: 'iifname', name: ifname };
  const toMulticast: NftMatch = { kind: 'daddr', cidr: MULTICAST_ROUTE };
  return [{
    name: CHAIN,
    base: { type: 'filter', hook: 'input', priority: NFT_PRIORITY.filter, policy: 'accept' },
    rules: [
      ...subnets.map((s) => ({ match: [fromInterface, { kind: 'saddr', cidr: s } as const, toMulticast], action: { kind: 'accept' } as const })),
      { match: [fromInterface, toMulticast], action: { kind: 'drop' }, comment: DROP_COMMENT },
    ],
  }];
}

/**
 * The same table as an nft script that replaces it in one transaction (what
 * applyContainerMulticast loads over netlink; `nft list` shows both alike).
 */
export function renderContainerMulticast(ifname: string, cidrs: readonly string[]): string {
  return renderReplaceTable(CONTAINER_NFT_FAMILY, CONTAINER_NFT_TABLE, containerMulticastChains(ifname, cidrs));
}

/** Loads the rules for the addresses `ifname` has now into the namespace at `netnsPath`, over netlink. */
export async function applyContainerMulticast(netnsPath: string, ifname: string, cidrs: readonly string[]): Promise<void> {
  const chains = containerMulticastChains(ifname, cidrs);
  try {
    await replaceTable(CONTAINER_NFT_FAMILY, CONTAINER_NFT_TABLE, chains, netnsPath);
  } catch (err) {
    throw new FirewallError(`cannot load the multicast rules into ${netnsPath}: ${(err as Error).message}`);
  }
}
