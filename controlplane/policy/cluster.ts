// The cluster as the policy semantics see it: namespaces with their labels,
// workloads (pods, or containers standing in for them) with labels, an IPv4
// address and named ports, and the policies. Built from API objects; a pod
// without an address, a finished pod, or a pod of a vanished namespace is
// handled here once, so the semantics never meet a half-formed object.
import { parseAddress } from '../ipam/addr.js';
import type { ServiceFrontend } from './services.js';
import { NAMESPACE_NAME_LABEL, type Labels, type Namespace, type NetworkPolicy, type Pod, type PolicyProtocol } from './types.js';
import { compareOrdered } from '../order.js';

export interface NamedPort {
  name: string;
  port: number;
  protocol: PolicyProtocol;
}

export interface Workload {
  /** namespace/name */
  key: string;
  namespace: string;
  name: string;
  labels: Labels;
  /** IPv4 address as u32. */
  ip: number;
  namedPorts: readonly NamedPort[];
  /** The network namespace to enforce in, for workloads on this host. */
  netns?: string;
}

export interface ClusterState {
  /** Namespace labels by name (each with its kubernetes.io/metadata.name label). */
  namespaces: ReadonlyMap<string, Labels>;
  workloads: readonly Workload[];
  policies: readonly NetworkPolicy[];
  /** Service cluster IPs with their endpoints (Kubernetes; absent for Docker). */
  services?: readonly ServiceFrontend[];
}

/** Annotation naming the network namespace of a workload (file source; the Kubernetes source finds it by address). */
export const NETNS_ANNOTATION = 'weave.works/netns';

export function namespaceLabels(state: ClusterState, namespace: string): Labels {
  // A namespace that is gone (or not yet seen) still has its name label: pods
  // and policies may outlive it briefly, and must not break the rest.
  return state.namespaces.get(namespace) ?? { [NAMESPACE_NAME_LABEL]: namespace };
}

export function policyKey(p: NetworkPolicy): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

function podIPv4(pod: Pod): number | undefined {
  const candidates = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((x) => x.ip)];
  for (const c of candidates) {
    if (!c || c.includes(':')) continue;
    try {
      return parseAddress(c);
    } catch {
      continue;
    }
  }
  return undefined;
}

export interface BuildOptions {
  /** The network namespace of a pod on this host, or undefined when it is elsewhere. */
  netnsOf?: (pod: Pod, ip: number) => string | undefined;
}

export function buildClusterState(namespaces: readonly Namespace[], pods: readonly Pod[], policies: readonly NetworkPolicy[], options: BuildOptions = {}): ClusterState {
  const nsLabels = new Map<string, Labels>();
  for (const ns of namespaces) nsLabels.set(ns.metadata.name, { ...ns.metadata.labels, [NAMESPACE_NAME_LABEL]: ns.metadata.name });
  const workloads: Workload[] = [];
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const ip = podIPv4(pod);
    if (ip === undefined) continue;
    const namespace = pod.metadata.namespace ?? 'default';
    const namedPorts: NamedPort[] = [];
    for (const c of pod.spec?.containers ?? []) {
      for (const p of c.ports ?? []) if (p.name) namedPorts.push({ name: p.name, port: p.containerPort, protocol: p.protocol ?? 'TCP' });
    }
    const w: Workload = { key: `${namespace}/${pod.metadata.name}`, namespace, name: pod.metadata.name, labels: pod.metadata.labels ?? {}, ip, namedPorts };
    const netns = pod.spec?.hostNetwork ? undefined : (options.netnsOf?.(pod, ip) ?? pod.metadata.annotations?.[NETNS_ANNOTATION]);
    if (netns) w.netns = netns;
    workloads.push(w);
  }
  workloads.sort((a, b) => compareOrdered(a.key, b.key));
  const sorted = [...policies].sort((a, b) => compareOrdered(policyKey(a), policyKey(b)));
  return { namespaces: nsLabels, workloads, policies: sorted };
}
