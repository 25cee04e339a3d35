// Compiles the policies isolating one workload into what the kernel looks up
// per packet: for each isolated direction, a set of remote address ranges
// allowed on every port (`any`) and a set of disjoint (address range, protocol,
// port range) elements. Two set lookups decide a packet whatever the number
// of pods, policies or rules; the work is done here, once per change.
//
// Elements are made disjoint (so the kernel's interval sets never see an
// overlap): the address space is cut at every range boundary and each atom
// gets the merged port ranges of every element covering it; neighbouring
// atoms with equal ports are joined again.
import { cidrRange, parseCIDR } from '../ipam/addr.js';
import { namespaceLabels, policyKey, type ClusterState, type Workload } from './cluster.js';
import { isolatingPolicies, type FlowProtocol } from './reference.js';
import { selectorMatches } from './selector.js';
import { allowedFrontends } from './services.js';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PolicyProtocol, PolicyType } from './types.js';

/** IANA protocol numbers, as the kernel's `meta l4proto` holds them. */
export const IP_PROTOCOL: Readonly<Record<FlowProtocol, number>> = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 };

const LAST_ADDRESS = 2 ** 32 - 1;
const LAST_PORT = 65535;

/** Inclusive range [first, last]. */
export interface Span {
  first: number;
  last: number;
}

export interface PortElement {
  addresses: Span;
  protocol: number;
  ports: Span;
}

export interface DirectionRules {
  /** The policies isolating the workload in this direction (namespace/name), for logs. */
  policies: string[];
  /** Remote addresses allowed on every protocol and port: sorted, disjoint, not adjacent. */
  any: Span[];
  /** Remote (address, protocol, port) allowed: pairwise disjoint. */
  ports: PortElement[];
}

export interface WorkloadRules {
  workload: string;
  ip: number;
  /** Absent: nothing isolates the workload in that direction (everything allowed). */
  ingress?: DirectionRules;
  egress?: DirectionRules;
}

/** Sorted, merged (overlapping or adjacent joined) copy of `spans`. */
export function mergeSpans(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a.first - b.first);
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s.first <= last.last + 1) last.last = Math.max(last.last, s.last);
    else out.push({ ...s });
  }
  return out;
}

function cidrSpan(cidr: string): Span {
  const r = cidrRange(parseCIDR(cidr));
  return { first: r.start, last: r.end - 1 };
}

/** `span` minus every span of `holes`. */
export function subtractSpans(span: Span, holes: readonly Span[]): Span[] {
  let rest: Span[] = [span];
  for (const h of mergeSpans(holes)) {
    const next: Span[] = [];
    for (const r of rest) {
      if (h.last < r.first || h.first > r.last) {
        next.push(r);
        continue;
      }
      if (h.first > r.first) next.push({ first: r.first, last: h.first - 1 });
      if (h.last < r.last) next.push({ first: h.last + 1, last: r.last });
    }
    rest = next;
  }
  return rest;
}

/** Who a peer stands for: address spans, and the workloads among them (to resolve named ports on). */
interface PeerTarget {
  spans: Span[];
  workloads: Workload[];
}

function peerTarget(state: ClusterState, policyNamespace: string, peer: NetworkPolicyPeer): PeerTarget {
  if (peer.ipBlock) {
    const spans = subtractSpans(cidrSpan(peer.ipBlock.cidr), (peer.ipBlock.except ?? []).map(cidrSpan));
    return { spans, workloads: state.workloads.filter((w) => spans.some((s) => w.ip >= s.first && w.ip <= s.last)) };
  }
  const workloads = state.workloads.filter((w) => {
    if (peer.namespaceSelector) {
      if (!selectorMatches(peer.namespaceSelector, namespaceLabels(state, w.namespace))) return false;
    } else if (w.namespace !== policyNamespace) {
      return false;
    }
    return !peer.podSelector || selectorMatches(peer.podSelector, w.labels);
  });
  return { spans: workloads.map((w) => ({ first: w.ip, last: w.ip })), workloads };
}

const EVERYWHERE: PeerTarget = { spans: [{ first: 0, last: LAST_ADDRESS }], workloads: [] };

function namedPortSpans(target: Workload, name: string, protocol: PolicyProtocol): Span[] {
  return target.namedPorts.filter((np) => np.name === name && np.protocol === protocol).map((np) => ({ first: np.port, last: np.port }));
}

function compileDirection(state: ClusterState, w: Workload, direction: PolicyType, policies: readonly NetworkPolicy[]): DirectionRules {
  const any: Span[] = [];
  const elements: PortElement[] = [];
  const everywhere = { ...EVERYWHERE, workloads: state.workloads as Workload[] };
  for (const p of policies) {
    const ns = p.metadata.namespace ?? 'default';
    const rules = direction === 'Ingress'
      ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
      : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
    for (const rule of rules) {
      const targets = !rule.peers || rule.peers.length === 0 ? [everywhere] : rule.peers.map((peer) => peerTarget(state, ns, peer));
      if (!rule.ports || rule.ports.length === 0) {
        for (const t of targets) any.push(...t.spans);
        continue;
      }
      for (const port of rule.ports) addPortElements(elements, w, direction, targets, port);
    }
  }
  return { policies: policies.map(policyKey), any: mergeSpans(any), ports: disjointElements(elements) };
}

function addPortElements(out: PortElement[], w: Workload, direction: PolicyType, targets: readonly PeerTarget[], port: NetworkPolicyPort): void {
  const protocolName = port.protocol ?? 'TCP';
  const protocol = IP_PROTOCOL[protocolName];
  if (typeof port.port !== 'string') {
    const ports = port.port === undefined ? { first: 0, last: LAST_PORT } : { first: port.port, last: port.endPort ?? port.port };
    for (const t of targets) for (const addresses of t.spans) out.push({ addresses, protocol, ports });
    return;
  }
  const name = port.port;
  if (direction === 'Ingress') {
    // The name is that of a port of the isolated workload itself.
    for (const ports of namedPortSpans(w, name, protocolName)) {
      for (const t of targets) for (const addresses of t.spans) out.push({ addresses, protocol, ports });
    }
    return;
  }
  // Egress: the name is resolved on each destination workload.
  for (const t of targets) {
    for (const dst of t.workloads) {
      for (const ports of namedPortSpans(dst, name, protocolName)) out.push({ addresses: { first: dst.ip, last: dst.ip }, protocol, ports });
    }
  }
}

/** The same (address, protocol, port) points as `elements`, as pairwise disjoint elements. */
export function disjointElements(elements: readonly PortElement[]): PortElement[] {
  if (elements.length === 0) return [];
  const cuts = new Set<number>();
  for (const e of elements) {
    cuts.add(e.addresses.first);
    if (e.addresses.last < LAST_ADDRESS) cuts.add(e.addresses.last + 1);
  }
  const points = [...cuts].sort((a, b) => a - b);
  const byStart = [...elements].sort((a, b) => a.addresses.first - b.addresses.first);
  const active = new Set<PortElement>();
  let next = 0;
  // Per atom: protocol -> merged port spans; then join equal neighbours.
  let open: { addresses: Span; key: string; ports: Map<number, Span[]> } | undefined;
  const out: PortElement[] = [];
  const flush = (): void => {
    if (!open) return;
    for (const [protocol, spans] of open.ports) for (const ports of spans) out.push({ addresses: open.addresses, protocol, ports });
    open = undefined;
  };
  for (let i = 0; i < points.length; i++) {
    const first = points[i] as number;
    const last = i + 1 < points.length ? (points[i + 1] as number) - 1 : LAST_ADDRESS;
    while (next < byStart.length && (byStart[next] as PortElement).addresses.first <= first) active.add(byStart[next++] as PortElement);
    for (const e of active) if (e.addresses.last < first) active.delete(e);
    if (active.size === 0) {
      flush();
      continue;
    }
    const perProtocol = new Map<number, Span[]>();
    for (const e of active) {
      const list = perProtocol.get(e.protocol) ?? [];
      list.push(e.ports);
      perProtocol.set(e.protocol, list);
    }
    const merged = new Map([...perProtocol.entries()].sort((a, b) => a[0] - b[0]).map(([p, s]) => [p, mergeSpans(s)] as const));
    const key = [...merged].map(([p, s]) => `${p}:${s.map((x) => `${x.first}-${x.last}`).join(',')}`).join(';');
    if (open && open.key === key && open.addresses.last + 1 === first) {
      open.addresses = { first: open.addresses.first, last };
    } else {
      flush();
      open = { addresses: { first, last }, key, ports: merged };
    }
  }
  flush();
  return out;
}

/** The rules for `w`: a direction is present only when some policy isolates `w` in it. */
export function compileWorkload(state: ClusterState, w: Workload): WorkloadRules {
  const out: WorkloadRules = { workload: w.key, ip: w.ip };
  const ingress = isolatingPolicies(state, w, 'Ingress');
  if (ingress.length > 0) out.ingress = compileDirection(state, w, 'Ingress', ingress);
  const egress = isolatingPolicies(state, w, 'Egress');
  if (egress.length > 0) {
    const rules = compileDirection(state, w, 'Egress', egress);
    // Service addresses are translated only after the packet leaves the pod: open those whose endpoints are allowed.
    const frontends = allowedFrontends(rules, state.services ?? []);
    if (frontends.length > 0) rules.ports = disjointElements([...rules.ports, ...frontends]);
    out.egress = rules;
  }
  return out;
}

function spanHas(s: Span, v: number): boolean {
  return v >= s.first && v <= s.last;
}

/**
 * What the kernel rules rendered from `rules` decide for the first packet of a
 * connection in a direction: the same two lookups, in the same order.
 */
export function decide(rules: DirectionRules | undefined, remote: number, protocol: number, port: number): boolean {
  if (!rules) return true;
  if (rules.any.some((s) => spanHas(s, remote))) return true;
  return rules.ports.some((e) => spanHas(e.addresses, remote) && e.protocol === protocol && spanHas(e.ports, port));
}
