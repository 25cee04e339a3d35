// `weave reset` on the host (user-surface spec §1.3 step 6, §6.5): the
// bridge, every `vethwe*` link (container veths `vethwepl*` and the bridge's
// datapath port), an ODP datapath named `datapath`, our nftables table and
// our rules in iptables' FORWARD chain.
// Each step tolerates the thing being gone already, so reset can run twice.
import { isNetlinkError, type Rtnl } from '../netlink/index.js';
import { deleteBridge } from './bridge.js';
import { removeFirewall } from './firewall.js';
import { removeForwardRules } from './iptables-forward.js';
import { DEFAULT_BRIDGE, ODP_DATAPATH, WEAVE_LINK_PREFIX } from './names.js';

export interface TeardownResult {
  /** Links deleted, by name. */
  links: string[];
  /** True when the nftables table existed and was deleted. */
  firewall: boolean;
}

export async function teardownHost(rtnl: Rtnl, bridge = DEFAULT_BRIDGE): Promise<TeardownResult> {
  const links: string[] = [];
  for (const link of await rtnl.listLinks()) {
    const ours = link.name.startsWith(WEAVE_LINK_PREFIX) || (link.name === ODP_DATAPATH && link.kind === 'openvswitch');
    if (!ours) continue;
    try {
      await rtnl.deleteLink(link.index);
      links.push(link.name);
    } catch (e) {
      // A veth disappears with its peer: deleting one end may already have removed this one.
      if (!isNetlinkError(e, 'ENODEV')) throw e;
    }
  }
  if (await deleteBridge(rtnl, bridge)) links.push(bridge);
  const firewall = await removeFirewall();
  await removeForwardRules(bridge);
  return { links, firewall };
}
