// dataplane/host: a router's networking on its own host (user-surface spec §6).
//
//   names.ts         interface names and fixed addresses Weave uses
//   cidr.ts          IPv4 CIDR parsing and network-of arithmetic
//   bridge.ts        ensureBridge: the `weave` Linux bridge, idempotently
//   mtu.ts           the MTU to use (configured, plain bridge, or underlay - VXLAN)
//   sysctls.ts       per-interface sysctls via /proc/sys, hairpin via sysfs
//   endpoint.ts      attach/detach/inspect a container's `ethwe`
//   plugin-endpoint.ts  the Docker plugin's veth pairs; ARP tuning + gratuitous ARP in a container
//   gratuitous-arp.ts  announcing a container's new addresses on attach
//   veth-deletions.ts  noticing container veths deleted with their namespace
//   hairpin-watch.ts   warning when hairpin mode is switched on for vethwe-bridge
//   expose.ts        bridge addresses for `weave expose` / `weave hide`
//   firewall.ts      our nftables table `inet weave`, built whole and loaded atomically over netlink
//   nft-command.ts   running nft (policy tables, listings)
//   iptables-forward.ts  our accepts at the top of iptables' FORWARD (hosts whose policy is DROP)
//   teardown.ts      `weave reset`: bridge, vethwe* links, the table
//   policy-table.ts  a workload's network policy table, loaded in its own namespace (weave-npc)
//   netns-locator.ts which named network namespace holds an address (Kubernetes pods)
//   host-network.ts  HostNetwork: all of the above as the router's one object

export * from './names.js';
export * from './cidr.js';
export * from './bridge.js';
export * from './attach-bridge.js';
export * from './mtu.js';
export * from './sysctls.js';
export * from './endpoint.js';
export * from './container-multicast.js';
export * from './plugin-endpoint.js';
export * from './gratuitous-arp.js';
export * from './veth-deletions.js';
export * from './hairpin-watch.js';
export * from './expose.js';
export * from './firewall.js';
export * from './nft-command.js';
export * from './iptables-forward.js';
export * from './teardown.js';
export * from './host-network.js';
export * from './policy-table.js';
export * from './netns-locator.js';
