// The capture/inject port on the weave bridge (user-surface spec §6.1, bridge
// mode): veth `vethwe-bridge` (a bridge port) <-> `vethwe-pcap`, where the
// sleeve's AF_PACKET socket sits. Converges an existing pair, so a restarted
// router reuses it.
import { Rtnl, withNetns } from '../netlink/index.js';
import { disableTxOffload } from '../sys/sockets.js';
import { BRIDGE_PORT_VETH } from '../host/names.js';

export const CAPTURE_END = 'vethwe-pcap';

export interface CapturePortOptions {
  bridge: string;
  /** MTU for both ends: at least the largest frame containers send (default 65535 so nothing is cut). */
  mtu?: number;
  /** Namespace the rtnl handle belongs to (for the ethtool ioctl); current namespace when omitted. */
  netns?: string;
}

/** Ensures the pair exists, is attached to `bridge` and up, with tx offloads off on the bridge side. Returns vethwe-pcap's ifindex. */
export async function ensureCapturePort(rtnl: Rtnl, opts: CapturePortOptions): Promise<number> {
  const bridge = await rtnl.findLink(opts.bridge);
  if (!bridge) throw new Error(`sleeve: bridge "${opts.bridge}" does not exist (create it before starting the sleeve datapath)`);
  let pcap = await rtnl.findLink(CAPTURE_END);
  if (!pcap) {
    const mtu = opts.mtu ?? 65535;
    await rtnl.createVeth(BRIDGE_PORT_VETH, CAPTURE_END, { mtu, peerMtu: mtu });
    pcap = await rtnl.getLink(CAPTURE_END);
  }
  await rtnl.setMaster(BRIDGE_PORT_VETH, bridge.index);
  const offload = (): void => disableTxOffload(BRIDGE_PORT_VETH);
  if (opts.netns) withNetns(opts.netns, offload);
  else offload();
  await rtnl.setUp(CAPTURE_END);
  await rtnl.setUp(BRIDGE_PORT_VETH);
  return pcap.index;
}

/** Removes the pair (both ends go with one delete) from `netns`, the current namespace when omitted. */
export async function removeCapturePort(netns?: string): Promise<void> {
  const rtnl = Rtnl.open({ netns });
  try {
    if (await rtnl.findLink(BRIDGE_PORT_VETH)) await rtnl.deleteLink(BRIDGE_PORT_VETH);
  } finally {
    rtnl.close();
  }
}
