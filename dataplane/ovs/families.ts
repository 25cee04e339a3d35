// The four ODP generic netlink families (spec §6.7), resolved once per socket.

import { Errno, NetlinkError, isNetlinkError, resolveFamily, type GenlFamily, type NetlinkSocket } from '../netlink/index.js';
import { OVS_DATAPATH_FAMILY, OVS_FLOW_FAMILY, OVS_PACKET_FAMILY, OVS_VPORT_FAMILY, OVS_VPORT_MCGROUP } from './constants.js';

export interface OdpFamilies {
  datapath: GenlFamily;
  vport: GenlFamily;
  flow: GenlFamily;
  packet: GenlFamily;
  /** Group id of the ovs_vport multicast group (vport NEW/DEL notifications). */
  vportGroup: number | undefined;
}

/**
 * Resolves ovs_datapath, ovs_vport, ovs_flow and ovs_packet. When the kernel
 * does not know them, rejects with `ENODEV: openvswitch kernel module not loaded (modprobe openvswitch)`.
 */
export async function resolveOdpFamilies(sock: NetlinkSocket): Promise<OdpFamilies> {
  const one = async (name: string): Promise<GenlFamily> => {
    try {
      return await resolveFamily(sock, name);
    } catch (e) {
      if (isNetlinkError(e, 'ENOENT')) {
        throw new NetlinkError(Errno.ENODEV, `openvswitch kernel module not loaded (modprobe openvswitch; family "${name}" is unknown)`);
      }
      throw e;
    }
  };
  const datapath = await one(OVS_DATAPATH_FAMILY);
  const vport = await one(OVS_VPORT_FAMILY);
  const flow = await one(OVS_FLOW_FAMILY);
  const packet = await one(OVS_PACKET_FAMILY);
  return { datapath, vport, flow, packet, vportGroup: vport.multicastGroups.get(OVS_VPORT_MCGROUP) };
}
