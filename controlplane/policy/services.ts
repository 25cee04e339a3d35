// Kubernetes Services as the egress rules must see them. kube-proxy
// translates a Service's cluster IP to one of its endpoints in the host's
// network namespace, after the packet has left the pod, while a pod's egress
// rules are checked in the pod's own namespace on the untranslated address
// (controlplane/policy/index.ts says why there). So the destinations a
// Service stands for are resolved here: each (cluster IP, protocol, port) with
// the endpoint addresses and ports kube-proxy may pick for it
// (weaveworks/weave#3764: DNS to the kube-dns Service blocked although the
// policy allowed the kube-dns pods).
import { parseAddress } from '../ipam/addr.js';
import { decide, IP_PROTOCOL, type DirectionRules, type PortElement } from './compile.js';
import { SERVICE_NAME_LABEL, type EndpointSlice, type Service } from './types.js';

export interface ServiceBackend {
  ip: number;
  port: number;
}

/** One port of one Service's cluster IP and where kube-proxy sends what arrives there. */
export interface ServiceFrontend {
  /** namespace/name:port, for logs. */
  key: string;
  ip: number;
  /** IANA protocol number. */
  protocol: number;
  port: number;
  backends: ServiceBackend[];
}

function ipv4(text: string | undefined): number | undefined {
  if (!text || text === 'None' || text.includes(':')) return undefined;
  try {
    return parseAddress(text);
  } catch {
    return undefined;
  }
}

/** Every cluster IP port of `services` with its ready IPv4 endpoints from `slices`. */
export function serviceFrontends(services: readonly Service[], slices: readonly EndpointSlice[]): ServiceFrontend[] {
  const slicesOf = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const name = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!name || s.addressType !== 'IPv4') continue;
    const key = `${s.metadata.namespace ?? 'default'}/${name}`;
    slicesOf.set(key, [...(slicesOf.get(key) ?? []), s]);
  }
  const out: ServiceFrontend[] = [];
  for (const svc of services) {
    const key = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
    const ips = new Set<number>();
    for (const text of [svc.spec?.clusterIP, ...(svc.spec?.clusterIPs ?? [])]) {
      const ip = ipv4(text);
      if (ip !== undefined) ips.add(ip);
    }
    if (ips.size === 0) continue;
    for (const sp of svc.spec?.ports ?? []) {
      const protocol = sp.protocol ?? 'TCP';
      const backends: ServiceBackend[] = [];
      for (const slice of slicesOf.get(key) ?? []) {
        // A slice's port answers the service port of the same name (both unnamed for a single-port Service).
        const target = (slice.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === protocol);
        if (target?.port === undefined) continue;
        for (const e of slice.endpoints) {
          // Not ready (or terminating): kube-proxy sends nothing there.
          if (e.conditions?.ready === false) continue;
          for (const a of e.addresses) {
            const ip = ipv4(a);
            if (ip !== undefined) backends.push({ ip, port: target.port });
          }
        }
      }
      for (const ip of ips) out.push({ key: `${key}:${sp.port}`, ip, protocol: IP_PROTOCOL[protocol], port: sp.port, backends });
    }
  }
  return out;
}

/**
 * The (cluster IP, protocol, port) elements egress `rules` allow: a Service
 * port is open when the rules allow the connection to every one of its ready
 * endpoints, since kube-proxy may pick any of them. A Service whose
 * endpoints are only partly allowed stays closed (never more than the
 * policies allow; the pods themselves remain reachable directly), and so does
 * one without endpoints.
 */
export function allowedFrontends(rules: DirectionRules, frontends: readonly ServiceFrontend[]): PortElement[] {
  const out: PortElement[] = [];
  for (const f of frontends) {
    if (f.backends.length === 0) continue;
    if (!f.backends.every((b) => decide(rules, b.ip, f.protocol, b.port))) continue;
    out.push({ addresses: { first: f.ip, last: f.ip }, protocol: f.protocol, ports: { first: f.port, last: f.port } });
  }
  return out;
}
