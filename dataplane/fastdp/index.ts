// dataplane/fastdp: what the kernel fast datapaths (dataplane/ovs, dataplane/bpf)
// share, independent of how frames reach the kernel (spec §6):
//
//   heartbeat.ts   heartbeat frames and fastdp control sub-tags (spec §6.4)
//   forwarder.ts   FastdpForwarder: the per-connection heartbeat protocol, and the
//                  ForwarderHost a datapath implements to send and hear heartbeats
//   routing.ts     ForwardingState indexed for the datapath's lookups

export * from './heartbeat.js';
export * from './forwarder.js';
export * from './routing.js';
