// dataplane/ipsec: kernel ESP for the encrypted fast datapath (spec §7).
//   ipsec.ts           IPsec: per-connection SAs and policy as desired state; flushAll for reset
//   messages.ts        the CryptoInitSARemote body (spec §7.2)
//   firewall-rules.ts  the marking/protection rules of spec §7.5 as nft chains
//   constants.ts       mark, algorithm, replay window, reqid
//   fastdp-ipsec.ts    FastdpIPsec: what a fastdp datapath (OVS or eBPF) drives per connection
// Key derivation lives in crypto/ipsec-keys.ts; the XFRM codec in dataplane/netlink/xfrm-codec.ts.
export * from './constants.js';
export * from './messages.js';
export * from './firewall-rules.js';
export * from './ipsec.js';
export * from './fastdp-ipsec.js';
