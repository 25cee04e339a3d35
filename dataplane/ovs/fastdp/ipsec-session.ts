// The fastdp forwarders' kernel IPsec (spec §7) is shared by the OVS and the
// eBPF datapaths: it lives in dataplane/ipsec/fastdp-ipsec.ts.
export { FastdpIPsec, type FastdpIPsecConnection, type FastdpIPsecOptions } from '../../ipsec/fastdp-ipsec.js';
