// The fastdp devices on a host (spec §6.1, bridged layout), created when
// missing and reused when present so a restarted router keeps forwarding:
//
//   ODP datapath `datapath` (its internal port is the netdev `datapath`, MTU = overlay MTU)
//   veth vethwe-odp (on the `weave` bridge) <-> vethwe-datapath (a netdev vport)
//   vxlan vport `vxlan-<port>` receiving Weave's VXLAN (UDP mesh port + 1)

import { isNetlinkError, type Rtnl } from '../../netlink/index.js';
import type { OdpConnection } from '../connection.js';
import { createDatapath, getDatapath } from '../datapath.js';
import { isOdpNotFound } from '../errors.js';
import { createVport, getVport, type Vport, type VportSpec } from '../vport.js';

/** Bridge side and datapath side of the veth joining the `weave` bridge to the datapath (spec §6.1). */
// Weave names this end vethwe-bridge (spec §6.1), but here the sleeve runs
// beside fastdp and its capture port already holds that name (vethwe-bridge <->
// vethwe-pcap), so the datapath's bridge port gets its own.
export const BRIDGE_SIDE_VETH = 'vethwe-odp';
export const DATAPATH_SIDE_VETH = 'vethwe-datapath';

export function vxlanVportName(udpPort: number): string {
  return `vxlan-${udpPort}`;
}

export interface FastdpDeviceOptions {
  datapathName: string;
  bridgeName: string;
  mtu: number;
  /** UDP port of the main VXLAN vport (mesh port + 1, 6784 by default). */
  vxlanPort: number;
}

export interface FastdpDevices {
  /** dp_ifindex of the datapath. */
  dp: number;
  /** Whether the datapath existed already (a router restart). */
  reused: boolean;
  bridgePort: Vport;
  vxlan: Vport;
}

const EADDRINUSE_RETRIES = 5;
const EADDRINUSE_WAIT_MS = 10;

async function getOrCreateVport(conn: OdpConnection, dp: number, spec: VportSpec): Promise<Vport> {
  try {
    return await getVport(conn, dp, spec.name);
  } catch (e) {
    if (!isOdpNotFound(e)) throw e;
  }
  return createVport(conn, dp, spec);
}

async function ensureVxlanVport(conn: OdpConnection, dp: number, port: number): Promise<Vport> {
  const name = vxlanVportName(port);
  for (let attempt = 0; ; attempt++) {
    try {
      const vport = await getOrCreateVport(conn, dp, { type: 'vxlan', name, dstPort: port });
      if (vport.type !== 'vxlan' || vport.dstPort !== port) {
        throw new Error(`vport "${name}" in datapath ${dp} is a ${vport.type} vport on port ${vport.dstPort ?? 'none'}, not vxlan on ${port}; run 'weave reset'`);
      }
      return vport;
    } catch (e) {
      // spec §6.1: a socket being released may still hold the port briefly.
      if (!isNetlinkError(e, 'EADDRINUSE') || attempt >= EADDRINUSE_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, EADDRINUSE_WAIT_MS));
    }
  }
}

async function ensureVeth(rtnl: Rtnl, bridgeName: string, mtu: number): Promise<void> {
  if ((await rtnl.findLink(DATAPATH_SIDE_VETH)) === undefined) {
    // A stale bridge side without its peer cannot be reused.
    if (await rtnl.findLink(BRIDGE_SIDE_VETH)) await rtnl.deleteLink(BRIDGE_SIDE_VETH);
    await rtnl.createVeth(BRIDGE_SIDE_VETH, DATAPATH_SIDE_VETH, { mtu, peerMtu: mtu });
  }
  const bridge = await rtnl.findLink(bridgeName);
  if (bridge === undefined || bridge.kind !== 'bridge') {
    throw new Error(`fastdp: bridge "${bridgeName}" ${bridge ? `is a ${bridge.kind ?? 'non-bridge'} device` : 'does not exist'}; create the weave bridge first (or run 'weave reset')`);
  }
  const bridgeSide = await rtnl.getLink(BRIDGE_SIDE_VETH);
  if (bridgeSide.masterIndex !== bridge.index) await rtnl.setMaster(BRIDGE_SIDE_VETH, bridge.index);
  for (const name of [BRIDGE_SIDE_VETH, DATAPATH_SIDE_VETH]) {
    const link = await rtnl.getLink(name);
    if (link.mtu !== mtu) await rtnl.setMtu(name, mtu);
    if (!link.up) await rtnl.setUp(name);
  }
}

/** Creates what is missing and returns the datapath and its two vports. Idempotent. */
export async function ensureFastdpDevices(conn: OdpConnection, rtnl: Rtnl, opts: FastdpDeviceOptions): Promise<FastdpDevices> {
  let reused = true;
  let dp: number;
  try {
    dp = (await getDatapath(conn, opts.datapathName)).ifindex;
  } catch (e) {
    if (!isOdpNotFound(e)) throw e;
    reused = false;
    dp = (await createDatapath(conn, opts.datapathName)).ifindex;
  }
  const local = await rtnl.getLink(opts.datapathName);
  if (local.mtu !== opts.mtu) await rtnl.setMtu(opts.datapathName, opts.mtu);
  if (!local.up) await rtnl.setUp(opts.datapathName);
  await ensureVeth(rtnl, opts.bridgeName, opts.mtu);
  const bridgePort = await getOrCreateVport(conn, dp, { type: 'netdev', name: DATAPATH_SIDE_VETH });
  const vxlan = await ensureVxlanVport(conn, dp, opts.vxlanPort);
  return { dp, reused, bridgePort, vxlan };
}
