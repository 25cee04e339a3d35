// The eBPF fast datapath as a router Datapath (see bpf-datapath.ts for the design).
export { BpfDatapath, DEFAULT_LINGER_MS, ESP_UNAVAILABLE, pinDirFromEnv, teardownBpfFastdp, timingsFromEnv, type BpfDatapathOptions } from './bpf-datapath.js';
export { BridgePortWatcher, isContainerPort, type BridgePort } from './bridge-ports.js';
export { HeartbeatReceiver, HeartbeatSender, VXLAN_HEADER_BYTES, vxlanDatagram } from './heartbeat-io.js';
