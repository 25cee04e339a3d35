// dataplane/ovs/fastdp: the router's Open vSwitch fast datapath (overlay
// `fastdp`, kind `ovs`), the Datapath seam implemented over the ODP client (spec §6).
//
//   heartbeat.ts          heartbeat frames and fastdp control sub-tags (spec §6.4)
//   forwarder.ts          FastdpForwarder: the per-connection heartbeat protocol
//   mac-table.ts          where each MAC lives (local vport or remote peer)
//   routing.ts            ForwardingState indexed for the miss handler
//   devices.ts            datapath, vethwe-odp/vethwe-datapath, vxlan vport (spec §6.1)
//   vport-events.ts       vport NEW/DEL notifications (ovs_vport multicast group)
//   ovs-fast-datapath.ts  OvsFastDatapath: misses, flows, expiry, stats; teardownFastdp

export * from './heartbeat.js';
export * from './forwarder.js';
export * from './mac-table.js';
export * from './routing.js';
export * from './devices.js';
export * from './vport-events.js';
export * from './ovs-fast-datapath.js';
