// dataplane/ovs/fastdp: the router's Open vSwitch fast datapath (overlay
// `fastdp`, kind `ovs`), the Datapath seam implemented over the ODP client (spec §6).
//
//   mac-table.ts          where each MAC lives (local vport or remote peer)
//   devices.ts            datapath, vethwe-odp/vethwe-datapath, vxlan vport (spec §6.1)
//   vport-events.ts       vport NEW/DEL notifications (ovs_vport multicast group)
//   ovs-fast-datapath.ts  OvsFastDatapath: misses, flows, expiry, stats; teardownFastdp
//
// The heartbeat protocol, forwarder and routing index it shares with the eBPF
// datapath are dataplane/fastdp's.

export * from './mac-table.js';
export * from './devices.js';
export * from './vport-events.js';
export * from './ovs-fast-datapath.js';
