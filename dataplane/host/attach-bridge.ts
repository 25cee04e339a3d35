// `weave attach-bridge [bridge]` (user-surface spec §1.13, §6.1): joins another
// Linux bridge (default docker0) to the weave bridge at layer 2 with a veth
// pair, `vethwebl<bridge>` on the weave bridge and `vethwebg<bridge>` on the
// other, so containers on that bridge share the weave network's subnets.
import { type Rtnl } from '../netlink/index.js';
import { BridgeError, findBridge } from './bridge.js';
import { validInterfaceName, WEAVE_LINK_PREFIX } from './names.js';
import { applySysctls, hostVethSysctls } from './sysctls.js';

/** Interface names have at most 15 bytes (IFNAMSIZ less the NUL). */
const IFNAMSIZ_CHARS = 15;

export interface AttachedBridge {
  /** The end on the weave bridge, then the end on the other bridge. */
  weaveEnd: string;
  otherEnd: string;
  /** False when the pair was there already (attaching again changes nothing). */
  created: boolean;
}

/** The pair's names; both start with `vethwe`, so `weave reset` removes them with the other veths. */
export function attachBridgeVethNames(bridge: string): { weaveEnd: string; otherEnd: string } {
  return { weaveEnd: `${WEAVE_LINK_PREFIX}bl${bridge}`, otherEnd: `${WEAVE_LINK_PREFIX}bg${bridge}` };
}

export async function attachBridge(rtnl: Rtnl, weaveBridge: string, other: string): Promise<AttachedBridge> {
  const names = attachBridgeVethNames(other);
  if (!validInterfaceName(names.weaveEnd)) {
    throw new BridgeError(`bridge name ${JSON.stringify(other)} is too long for the veth ${names.weaveEnd} (at most ${IFNAMSIZ_CHARS - attachBridgeVethNames('').weaveEnd.length} characters)`);
  }
  const weave = await findBridge(rtnl, weaveBridge);
  if (!weave) throw new BridgeError("Weave bridge not found. Please run 'weave launch' and try again");
  const target = await findBridge(rtnl, other);
  if (!target) throw new BridgeError(`bridge "${other}" not found`);
  if (await rtnl.findLink(names.weaveEnd)) return { ...names, created: false };
  // The weave bridge's MTU on both ends: frames from the other bridge must fit the overlay.
  await rtnl.createVeth(names.weaveEnd, names.otherEnd, { mtu: weave.mtu, peerMtu: weave.mtu });
  for (const end of [names.weaveEnd, names.otherEnd]) applySysctls(hostVethSysctls(end));
  await rtnl.setMaster(names.weaveEnd, weave.index);
  await rtnl.setMaster(names.otherEnd, target.index);
  await rtnl.setUp(names.weaveEnd);
  await rtnl.setUp(names.otherEnd);
  return { ...names, created: true };
}
