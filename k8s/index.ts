// k8s: the Kubernetes add-on (user-surface spec §7.5).
//
//   launch-plan.ts             the DaemonSet's environment -> router flags
//   kube-port.ts               what the launcher needs from the Kubernetes API (types only)
//   kube-api.ts                that, with @kubernetes/client-node
//   kube-peers.ts              peers from the nodes; the peer list and the reclaim of deleted nodes' space
//   launcher.ts                `weave-kube init` / `weave-kube launch` (bin/weave-kube)
//   manifests.ts               the add-on's objects, typed; weave-daemonset-k8s.yaml is them rendered

export { planKubeLaunch, type KubeLaunchPlan } from './launch-plan.js';
export { discoverPeers, addSelfToPeerList, reclaimRemovedPeers, isPeerNew, type PeerInfo, type ReclaimOutcome } from './kube-peers.js';
export { KubeApi, PEER_CONFIGMAP } from './kube-api.js';
export type { KubePort, KubeNode, ConfigMapState } from './kube-port.js';
