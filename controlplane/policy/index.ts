// controlplane/policy: Kubernetes NetworkPolicy semantics (networking.k8s.io/v1)
// and the controller that keeps the kernel in step with them (weave-npc).
//
//   types.ts        the API objects read: NetworkPolicy, Pod, Namespace (JSON shapes)
//   validate.ts     unknown JSON/YAML -> those types, with the API server's rules
//   selector.ts     label selector matching
//   cluster.ts      the cluster as the semantics see it: workloads with IPs, labels, named ports
//   reference.ts    the semantics evaluated directly, one flow at a time (the oracle)
//   services.ts     Service cluster IPs and their endpoints, for egress checked before kube-proxy translates
//   compile.ts      per-workload rules as disjoint interval-set elements (two lookups per packet)
//   render.ts       those rules as one nftables table for the workload's network namespace
//   enforcer.ts     the seam to the kernel (types; dataplane/host/policy-table.ts implements it)
//   controller.ts   snapshots -> tables loaded where they changed; full resync; blocked counters and logs
//   file-source.ts  objects from a directory of YAML/JSON files (without Kubernetes)
//   kube-source.ts  objects from the Kubernetes API (informers)
//
// Enforcement point: each workload's own network namespace (input/output
// hooks with its own connection tracking). The eBPF fast datapath delivers
// frames for local containers with bpf_redirect_peer straight into the
// container, bypassing the host's bridge and netfilter; the container's own
// hooks see every packet on every datapath (local, eBPF fastdp, OVS, sleeve).

export * from './types.js';
export * from './validate.js';
export * from './selector.js';
export * from './cluster.js';
export * from './reference.js';
export * from './compile.js';
export * from './services.js';
export * from './render.js';
export * from './enforcer.js';
export * from './controller.js';
export * from './file-source.js';
export * from './kube-source.js';
