// dataplane/sleeve: Weave's userspace fallback overlay on UDP 6783 (spec §5).
//
//   datapath.ts        SleeveDatapath, the Datapath implementation (control-plane thread)
//   worker.ts          the packet worker: capture/receive -> route -> seal -> send, batched
//   connection.ts      one forwarder's heartbeats, control messages, PMTU search, path choice
//   capture.ts         vethwe-bridge/vethwe-pcap capture port on the weave bridge
//   sockets.ts         UDP (DF and non-DF) and AF_PACKET sockets, recvmmsg/sendmmsg batches,
//                      UDP GSO (UDP_SEGMENT) on send and UDP_GRO on receive
//   inject-coalescer.ts  merges in-order TCP segments into one GSO frame before injecting
//   ethernet.ts        MACs, DF bit, IPv4 fragmentation, ICMP fragmentation-needed
//   mac-cache.ts       MAC -> peer with expiry
//   frame-codec.ts, special-frames.ts, control-messages.ts, constants.ts: wire formats
export { SleeveDatapath, DEFAULT_OVERLAY_MTU, type SleeveDatapathOptions, type WorkerStart } from './datapath.js';
export { CAPTURE_END } from './capture.js';
export type { WorkerStats } from './worker-protocol.js';
