// Shared by the policy unit tests: compact builders for API objects and the
// decision the compiled rules make for a flow (both ends' tables, as the
// kernel would apply them: the source's egress, then the destination's ingress).
import { parseAddress } from '../../controlplane/ipam/addr.js';
import { buildClusterState, type ClusterState } from '../../controlplane/policy/cluster.js';
import { compileWorkload, decide, IP_PROTOCOL } from '../../controlplane/policy/compile.js';
import { workloadAt, type Flow, type FlowProtocol } from '../../controlplane/policy/reference.js';
import type { Labels, Namespace, NetworkPolicy, NetworkPolicySpec, Pod, ContainerPort } from '../../controlplane/policy/types.js';

export function pod(namespace: string, name: string, ip: string, labels: Labels = {}, ports: ContainerPort[] = []): Pod {
  return {
    metadata: { name, namespace, labels: { ...labels } },
    spec: { containers: [{ name: 'main', ports }] },
    status: { phase: 'Running', podIP: ip },
  };
}

export function namespace(name: string, labels: Labels = {}): Namespace {
  return { metadata: { name, labels: { ...labels } } };
}

export function policy(namespaceName: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: namespaceName }, spec };
}

export function flow(src: string, dst: string, protocol: FlowProtocol = 'TCP', port = 80): Flow {
  return { src: parseAddress(src), dst: parseAddress(dst), protocol, port: protocol === 'ICMP' ? 0 : port };
}

export function compiledAllowed(state: ClusterState, f: Flow): boolean {
  if (f.src === f.dst) return true;
  const src = workloadAt(state, f.src);
  const dst = workloadAt(state, f.dst);
  const protocol = IP_PROTOCOL[f.protocol];
  const egress = src ? compileWorkload(state, src).egress : undefined;
  const ingress = dst ? compileWorkload(state, dst).ingress : undefined;
  return decide(egress, f.dst, protocol, f.port) && decide(ingress, f.src, protocol, f.port);
}

export function state(namespaces: Namespace[], pods: Pod[], policies: NetworkPolicy[]): ClusterState {
  return buildClusterState(namespaces, pods, policies);
}
