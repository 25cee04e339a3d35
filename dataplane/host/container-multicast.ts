// Multicast isolation between subnets of one weave network (user-surface spec
// §1.8 step 4, §1.9; Weave: net/veth.go setupIfaceAddrs). The bridge floods
// multicast to every container whatever its subnet, so inside each container's
// namespace multicast arriving on its weave interface is accepted only from the
// subnets of the container's own addresses and dropped otherwise. The rules are
// an nftables table of the container's own (Weave: iptables INPUT rules there),
// rendered whole from the interface's addresses after each attach and detach.
import { networkOf } from './cidr.js';
import { FirewallError, runNft } from './firewall.js';
import { MULTICAST_ROUTE } from './names.js';

/** The container's table: family ip, as the rules match IPv4 only. */
export const CONTAINER_NFT_TABLE = 'weave';
const CONTAINER_NFT_FAMILY = 'ip';

/** The nft script that leaves the container's table holding exactly the rules for `cidrs` on `ifname` (none: no table). */
export function renderContainerMulticast(ifname: string, cidrs: readonly string[]): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(ifname)) throw new FirewallError(`interface name ${JSON.stringify(ifname)} cannot be used in a firewall rule`);
  const table = `${CONTAINER_NFT_FAMILY} ${CONTAINER_NFT_TABLE}`;
  const lines = [`table ${table} {}`, `delete table ${table}`];
  if (cidrs.length === 0) return `${lines.join('\n')}\n`;
  // One rule per subnet, as Weave's: overlapping subnets (10.0.0.0/8 and 10.2.0.0/16) cannot share an interval set.
  const subnets = [...new Set(cidrs.map(networkOf))];
  lines.push(
    `table ${table} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    ...subnets.map((s) => `    iifname "${ifname}" ip saddr ${s} ip daddr ${MULTICAST_ROUTE} accept`),
    `    iifname "${ifname}" ip daddr ${MULTICAST_ROUTE} drop comment "multicast from other subnets of the weave network"`,
    '  }',
    '}',
  );
  return `${lines.join('\n')}\n`;
}

/** Loads the rules for the addresses `ifname` has now into the namespace at `netnsPath`. */
export async function applyContainerMulticast(netnsPath: string, ifname: string, cidrs: readonly string[]): Promise<void> {
  const r = await runNft(['-f', '-'], renderContainerMulticast(ifname, cidrs), netnsPath);
  if (r.code !== 0) throw new FirewallError(`cannot load the multicast rules into ${netnsPath}: ${r.stderr.trim()}`);
}
