// The NetworkPolicy semantics evaluated directly, one flow at a time, the way
// the Kubernetes documentation states them. It is the oracle the compiled rules
// are checked against (test/unit/policy-*.test.ts), so it stays literal: no
// precomputation, no sharing with compile.ts beyond the selector match.
//
// A flow is allowed when the source's egress allows it and the destination's
// ingress allows it. In a direction, a workload that no policy of that type
// selects allows everything; once one does, only what some rule of some such
// policy allows is allowed (rules and policies are additive). Replies of an
// allowed connection are always allowed (the kernel tracks connections).
import { cidrRange, parseCIDR } from '../ipam/addr.js';
import { namespaceLabels, type ClusterState, type Workload } from './cluster.js';
import { selectorMatches } from './selector.js';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PolicyProtocol, PolicyType } from './types.js';

export type FlowProtocol = PolicyProtocol | 'ICMP';

/** The first packet of a connection: addresses as u32, port 0 for ICMP. */
export interface Flow {
  src: number;
  dst: number;
  protocol: FlowProtocol;
  port: number;
}

/** Policy types in effect: as listed, or Ingress plus Egress when the policy has egress rules. */
export function effectiveTypes(p: NetworkPolicy): readonly PolicyType[] {
  if (p.spec.policyTypes && p.spec.policyTypes.length > 0) return p.spec.policyTypes;
  return p.spec.egress && p.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function policySelects(p: NetworkPolicy, w: Workload): boolean {
  return (p.metadata.namespace ?? 'default') === w.namespace && selectorMatches(p.spec.podSelector, w.labels);
}

/** The policies that isolate `w` in `direction`, in state order. */
export function isolatingPolicies(state: ClusterState, w: Workload, direction: PolicyType): NetworkPolicy[] {
  return state.policies.filter((p) => policySelects(p, w) && effectiveTypes(p).includes(direction));
}

export function workloadAt(state: ClusterState, ip: number): Workload | undefined {
  return state.workloads.find((w) => w.ip === ip);
}

function inCidr(ip: number, cidr: string): boolean {
  const r = cidrRange(parseCIDR(cidr));
  return ip >= r.start && ip < r.end;
}

function peerMatches(state: ClusterState, policyNamespace: string, peer: NetworkPolicyPeer, ip: number): boolean {
  if (peer.ipBlock) return inCidr(ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(ip, e));
  const w = workloadAt(state, ip);
  if (!w) return false;
  if (peer.namespaceSelector) {
    if (!selectorMatches(peer.namespaceSelector, namespaceLabels(state, w.namespace))) return false;
  } else if (w.namespace !== policyNamespace) {
    return false;
  }
  return !peer.podSelector || selectorMatches(peer.podSelector, w.labels);
}

/** `target` is the workload receiving the flow, against which a named port is resolved. */
function portMatches(port: NetworkPolicyPort, flow: Flow, target: Workload | undefined): boolean {
  if (flow.protocol !== (port.protocol ?? 'TCP')) return false;
  if (port.port === undefined) return true;
  if (typeof port.port === 'number') return flow.port >= port.port && flow.port <= (port.endPort ?? port.port);
  const name = port.port;
  return (target?.namedPorts ?? []).some((np) => np.name === name && np.protocol === flow.protocol && np.port === flow.port);
}

function ruleAllows(state: ClusterState, p: NetworkPolicy, peers: NetworkPolicyPeer[] | undefined, ports: NetworkPolicyPort[] | undefined, remote: number, flow: Flow): boolean {
  const ns = p.metadata.namespace ?? 'default';
  const peerOk = !peers || peers.length === 0 || peers.some((peer) => peerMatches(state, ns, peer, remote));
  const target = workloadAt(state, flow.dst);
  const portOk = !ports || ports.length === 0 || ports.some((port) => portMatches(port, flow, target));
  return peerOk && portOk;
}

export function ingressAllowed(state: ClusterState, flow: Flow): boolean {
  const dst = workloadAt(state, flow.dst);
  if (!dst) return true;
  const policies = isolatingPolicies(state, dst, 'Ingress');
  if (policies.length === 0) return true;
  return policies.some((p) => (p.spec.ingress ?? []).some((r) => ruleAllows(state, p, r.from, r.ports, flow.src, flow)));
}

export function egressAllowed(state: ClusterState, flow: Flow): boolean {
  const src = workloadAt(state, flow.src);
  if (!src) return true;
  const policies = isolatingPolicies(state, src, 'Egress');
  if (policies.length === 0) return true;
  return policies.some((p) => (p.spec.egress ?? []).some((r) => ruleAllows(state, p, r.to, r.ports, flow.dst, flow)));
}

/** Whether a new connection `flow` is allowed. A workload may always reach itself. */
export function flowAllowed(state: ClusterState, flow: Flow): boolean {
  if (flow.src === flow.dst) return true;
  return egressAllowed(state, flow) && ingressAllowed(state, flow);
}
