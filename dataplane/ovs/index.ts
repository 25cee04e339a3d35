// dataplane/ovs: the Open vSwitch kernel datapath (ODP) over generic netlink,
// wire codec below, typed objects above (spec §6).
//
//   constants.ts     OVS_* numbers from linux/openvswitch.h
//   families.ts      resolve ovs_datapath/_vport/_flow/_packet (ENODEV when the module is absent)
//   connection.ts    OdpConnection: a socket (in a netns) + families + request helper
//   errors.ts        readable errors ("EEXIST: datapath "weave" exists"), MalformedOdpError
//   datapath.ts      create/get/delete/list datapaths
//   vport.ts         internal, netdev and vxlan vports; stats; upcall pids
//   flow-key.ts      flow keys and masks (in_port, ethernet, tunnel, ethertype); Weave tunnel ids
//   flow-actions.ts  output, set(tunnel), userspace
//   flow.ts          create/get/delete/list flows, statistics
//   packet.ts        UpcallReceiver (misses) and packet execute

export * from './constants.js';
export * from './errors.js';
export * from './families.js';
export * from './connection.js';
export * from './datapath.js';
export * from './vport.js';
export * from './flow-key.js';
export * from './flow-actions.js';
export * from './flow.js';
export * from './packet.js';
