// The Open vSwitch fast datapath as a datapath kind for the composition root.
// Available when the generic netlink family `ovs_datapath` resolves, i.e. the
// openvswitch module is loaded (this router does not load kernel modules).
// The fastdp code itself is loaded only where the kernel has OVS.
import type { DatapathDescriptor } from '../../controlplane/router/datapath.js';
import { applyIPsecFirewall } from '../host/firewall.js';
import { isNetlinkError } from '../netlink/errors.js';
import { OdpConnection } from './connection.js';

export const ovsDatapath: DatapathDescriptor = {
  kind: 'ovs',
  overlay: 'fastdp',
  interfaceLabel: 'datapath (via ODP)',
  probe: async () => {
    try {
      (await OdpConnection.open()).close();
      return { available: true };
    } catch (err) {
      return {
        available: false,
        reason: isNetlinkError(err, 'ENODEV')
          ? 'openvswitch kernel module not available; load it with modprobe openvswitch to use fastdp'
          : `cannot talk to the openvswitch kernel module: ${(err as Error).message}`,
      };
    }
  },
  open: async (opts) => (await import('./fastdp/index.js')).OvsFastDatapath.open({
    bridgeName: opts.bridge,
    mtu: opts.mtu,
    port: opts.port,
    log: opts.log,
    ...(opts.ipsec ? { ipsec: { ourName: opts.ourName, applyFirewall: applyIPsecFirewall } } : {}),
  }),
  teardown: async (opts = {}) => {
    try {
      await (await import('./fastdp/index.js')).teardownFastdp({
        ...(opts.netns !== undefined ? { netns: opts.netns } : {}),
        ...(opts.ovsDatapathName !== undefined ? { datapathName: opts.ovsDatapathName } : {}),
      });
    } catch (err) {
      if (!isNetlinkError(err, 'ENODEV')) throw err; // no OVS in this kernel: nothing of ours can exist
    }
  },
};
