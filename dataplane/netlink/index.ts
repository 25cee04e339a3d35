// dataplane/netlink: talking to the kernel over netlink, in two layers.
//
// Wire layer
//   attributes.ts  nlattr codec: AttributeWriter (builder), parseAttributes -> Attributes
//   message.ts     nlmsghdr codec, NLM_F_* flags, NLMSG_ERROR / extended-ack decoding
//   errors.ts      errno names and NetlinkError ("EEXIST: create veth link "v0" ...")
//   socket.ts      NetlinkSocket: open (optionally in a netns), request/reply, dumps,
//                  multicast join/leave and receive; never blocks the event loop
//   netns.ts       namespace handles and withNetns() for short synchronous calls
//   rtnl-codec.ts  links, addresses and routes, encoded and decoded (pure)
//   xfrm-codec.ts  XFRM SA/policy structs and attributes, encoded and decoded (pure)
//
// Typed layer
//   rtnl.ts        Rtnl: links (veth, bridge, vxlan), IPv4 addresses and routes in a namespace
//   genl.ts        generic netlink: resolveFamily, genlRequest (used by dataplane/ovs)
//   xfrm.ts        Xfrm: IPsec SAs and policies (dataplane/ipsec)
//   nft-rules.ts   the nftables rules the router writes: kernel expressions and nft text (pure)
//   nftables.ts    nf_tables: whether a chain exists; replace a table or some of its chains
//
// The syscalls underneath (libc bindings, epoll readiness) are dataplane/sys's.

export * from './attributes.js';
export * from './message.js';
export * from './errors.js';
export * from './socket.js';
export * from './netns.js';
export * from './inet.js';
export * from './rtnl-codec.js';
export * from './rtnl.js';
export * from './genl.js';
export * from './xfrm-codec.js';
export * from './xfrm.js';
export * from './nft-rules.js';
export * from './nftables.js';
