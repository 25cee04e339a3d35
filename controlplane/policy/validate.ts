// Checks objects read from files or the API against the rules the Kubernetes
// API server applies to networking.k8s.io/v1 NetworkPolicy (and the few Pod and
// Namespace fields the semantics read), turning `unknown` JSON into the typed
// shapes of types.ts. A bad object gets an error naming the object and the
// field; the controller skips it and keeps enforcing the rest.
import { cidrRange, parseCIDR } from '../ipam/addr.js';
import type {
  ContainerPort, EndpointSlice, IPBlock, LabelSelector, LabelSelectorRequirement, Namespace, NetworkPolicy, NetworkPolicyPeer,
  NetworkPolicyPort, ObjectMeta, Pod, PolicyProtocol, PolicyType, Service, ServicePort,
} from './types.js';

export class PolicyError extends Error {}

const PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];
const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
/** IANA_SVC_NAME, as a named container port must be spelled. */
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, message: string): never {
  throw new PolicyError(`${where}: ${message}`);
}

function optionalArray(v: unknown, where: string): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail(where, 'must be a list');
  return v;
}

function stringMap(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(where, 'must be a map of strings');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') fail(`${where}.${k}`, 'must be a string');
    out[k] = val;
  }
  return out;
}

function parseMeta(v: unknown, where: string, namespaced: boolean): ObjectMeta {
  if (!isObject(v)) fail(where, 'metadata is missing');
  if (typeof v.name !== 'string' || v.name === '') fail(`${where}.metadata.name`, 'is required');
  const meta: ObjectMeta = { name: v.name };
  if (namespaced) meta.namespace = typeof v.namespace === 'string' && v.namespace !== '' ? v.namespace : 'default';
  const labels = stringMap(v.labels, `${where}.metadata.labels`);
  if (labels) meta.labels = labels;
  const annotations = stringMap(v.annotations, `${where}.metadata.annotations`);
  if (annotations) meta.annotations = annotations;
  if (typeof v.uid === 'string') meta.uid = v.uid;
  if (typeof v.resourceVersion === 'string') meta.resourceVersion = v.resourceVersion;
  return meta;
}

export function parseSelector(v: unknown, where: string): LabelSelector {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) fail(where, 'must be a label selector');
  const out: LabelSelector = {};
  const labels = stringMap(v.matchLabels, `${where}.matchLabels`);
  if (labels) out.matchLabels = labels;
  const exprs = optionalArray(v.matchExpressions, `${where}.matchExpressions`);
  if (exprs) {
    out.matchExpressions = exprs.map((e, i): LabelSelectorRequirement => {
      const at = `${where}.matchExpressions[${i}]`;
      if (!isObject(e) || typeof e.key !== 'string' || e.key === '') fail(at, 'needs a key');
      const op = e.operator;
      if (typeof op !== 'string' || !(OPERATORS as readonly string[]).includes(op)) fail(`${at}.operator`, `must be one of ${OPERATORS.join(', ')}`);
      const values = optionalArray(e.values, `${at}.values`) ?? [];
      if (!values.every((x) => typeof x === 'string')) fail(`${at}.values`, 'must be strings');
      const needsValues = op === 'In' || op === 'NotIn';
      if (needsValues && values.length === 0) fail(`${at}.values`, `must be non-empty for ${op}`);
      if (!needsValues && values.length > 0) fail(`${at}.values`, `must be empty for ${op}`);
      const req: LabelSelectorRequirement = { key: e.key, operator: op as LabelSelectorRequirement['operator'] };
      if (needsValues) req.values = values as string[];
      return req;
    });
  }
  return out;
}

function parseProtocol(v: unknown, where: string): PolicyProtocol {
  if (v === undefined || v === null) return 'TCP';
  if (typeof v !== 'string' || !(PROTOCOLS as readonly string[]).includes(v)) fail(where, `must be one of ${PROTOCOLS.join(', ')}`);
  return v as PolicyProtocol;
}

function validPortNumber(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

function parsePolicyPort(v: unknown, where: string): NetworkPolicyPort {
  if (!isObject(v)) fail(where, 'must be an object');
  const out: NetworkPolicyPort = { protocol: parseProtocol(v.protocol, `${where}.protocol`) };
  if (v.port !== undefined && v.port !== null) {
    if (typeof v.port === 'string' && /^\d+$/.test(v.port)) out.port = Number(v.port);
    else out.port = v.port as number | string;
    if (typeof out.port === 'string') {
      if (!PORT_NAME.test(out.port)) fail(`${where}.port`, `"${out.port}" is neither a port number nor a port name (lower case letters, digits, '-', at most 15)`);
    } else if (!validPortNumber(out.port)) fail(`${where}.port`, 'must be 1-65535');
  }
  if (v.endPort !== undefined && v.endPort !== null) {
    if (typeof out.port !== 'number') fail(`${where}.endPort`, 'needs a numeric port');
    if (!validPortNumber(v.endPort) || v.endPort < out.port) fail(`${where}.endPort`, `must be ${out.port}-65535`);
    out.endPort = v.endPort;
  }
  return out;
}

function parseIPBlock(v: unknown, where: string): IPBlock {
  if (!isObject(v) || typeof v.cidr !== 'string') fail(where, 'needs a cidr');
  let outer;
  try {
    outer = cidrRange(parseCIDR(v.cidr));
  } catch (err) {
    fail(`${where}.cidr`, (err as Error).message);
  }
  const out: IPBlock = { cidr: v.cidr };
  const except = optionalArray(v.except, `${where}.except`);
  if (except) {
    out.except = except.map((e, i) => {
      const at = `${where}.except[${i}]`;
      if (typeof e !== 'string') fail(at, 'must be a CIDR');
      let r;
      try {
        r = cidrRange(parseCIDR(e));
      } catch (err) {
        fail(at, (err as Error).message);
      }
      if (r.start < outer.start || r.end > outer.end) fail(at, `${e} is not within ${v.cidr}`);
      return e;
    });
  }
  return out;
}

function parsePeer(v: unknown, where: string): NetworkPolicyPeer {
  if (!isObject(v)) fail(where, 'must be an object');
  const out: NetworkPolicyPeer = {};
  if (v.podSelector !== undefined && v.podSelector !== null) out.podSelector = parseSelector(v.podSelector, `${where}.podSelector`);
  if (v.namespaceSelector !== undefined && v.namespaceSelector !== null) out.namespaceSelector = parseSelector(v.namespaceSelector, `${where}.namespaceSelector`);
  if (v.ipBlock !== undefined && v.ipBlock !== null) {
    if (out.podSelector || out.namespaceSelector) fail(where, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    out.ipBlock = parseIPBlock(v.ipBlock, `${where}.ipBlock`);
  }
  if (!out.podSelector && !out.namespaceSelector && !out.ipBlock) fail(where, 'needs podSelector, namespaceSelector or ipBlock');
  return out;
}

function parseRules(v: unknown, where: string, peersKey: 'from' | 'to'): { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[] | undefined {
  const rules = optionalArray(v, where);
  return rules?.map((r, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(r)) fail(at, 'must be an object');
    const peers = optionalArray(r[peersKey], `${at}.${peersKey}`)?.map((p, j) => parsePeer(p, `${at}.${peersKey}[${j}]`));
    const ports = optionalArray(r.ports, `${at}.ports`)?.map((p, j) => parsePolicyPort(p, `${at}.ports[${j}]`));
    const out: { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] } = {};
    if (peers) out.peers = peers;
    if (ports) out.ports = ports;
    return out;
  });
}

/** A NetworkPolicy from its JSON (or YAML-decoded) form. */
export function parseNetworkPolicy(v: unknown, where = 'NetworkPolicy'): NetworkPolicy {
  if (!isObject(v)) fail(where, 'must be an object');
  const metadata = parseMeta(v.metadata, where, true);
  const at = `NetworkPolicy ${metadata.namespace}/${metadata.name}`;
  const spec = v.spec;
  if (!isObject(spec)) fail(at, 'spec is required');
  if (spec.podSelector === undefined || spec.podSelector === null) fail(`${at}.spec.podSelector`, 'is required ({} selects every pod of the namespace)');
  const policy: NetworkPolicy = { metadata, spec: { podSelector: parseSelector(spec.podSelector, `${at}.spec.podSelector`) } };
  if (typeof v.apiVersion === 'string') policy.apiVersion = v.apiVersion;
  if (typeof v.kind === 'string') policy.kind = v.kind;
  const ingress = parseRules(spec.ingress, `${at}.spec.ingress`, 'from');
  if (ingress) policy.spec.ingress = ingress.map((r) => ({ ...(r.peers ? { from: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) }));
  const egress = parseRules(spec.egress, `${at}.spec.egress`, 'to');
  if (egress) policy.spec.egress = egress.map((r) => ({ ...(r.peers ? { to: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) }));
  const types = optionalArray(spec.policyTypes, `${at}.spec.policyTypes`);
  if (types) {
    for (const t of types) if (t !== 'Ingress' && t !== 'Egress') fail(`${at}.spec.policyTypes`, `${JSON.stringify(t) ?? typeof t} is not Ingress or Egress`);
    policy.spec.policyTypes = types as PolicyType[];
  }
  return policy;
}

export function parseNamespace(v: unknown, where = 'Namespace'): Namespace {
  if (!isObject(v)) fail(where, 'must be an object');
  return { metadata: parseMeta(v.metadata, where, false) };
}

export function parsePod(v: unknown, where = 'Pod'): Pod {
  if (!isObject(v)) fail(where, 'must be an object');
  const metadata = parseMeta(v.metadata, where, true);
  const at = `Pod ${metadata.namespace}/${metadata.name}`;
  const pod: Pod = { metadata };
  const spec = v.spec;
  if (isObject(spec)) {
    pod.spec = {};
    if (typeof spec.nodeName === 'string') pod.spec.nodeName = spec.nodeName;
    if (spec.hostNetwork === true) pod.spec.hostNetwork = true;
    const containers = optionalArray(spec.containers, `${at}.spec.containers`) ?? [];
    pod.spec.containers = containers.map((c, i) => {
      const cat = `${at}.spec.containers[${i}]`;
      if (!isObject(c)) fail(cat, 'must be an object');
      const ports = (optionalArray(c.ports, `${cat}.ports`) ?? []).map((p, j): ContainerPort => {
        const pat = `${cat}.ports[${j}]`;
        if (!isObject(p) || !validPortNumber(p.containerPort)) fail(`${pat}.containerPort`, 'must be 1-65535');
        const port: ContainerPort = { containerPort: p.containerPort, protocol: parseProtocol(p.protocol, `${pat}.protocol`) };
        if (typeof p.name === 'string' && p.name !== '') port.name = p.name;
        return port;
      });
      return { name: typeof c.name === 'string' ? c.name : `container-${i}`, ports };
    });
  }
  const status = v.status;
  if (isObject(status)) {
    pod.status = {};
    if (typeof status.phase === 'string') pod.status.phase = status.phase;
    if (typeof status.podIP === 'string' && status.podIP !== '') pod.status.podIP = status.podIP;
    const ips = optionalArray(status.podIPs, `${at}.status.podIPs`);
    if (ips) pod.status.podIPs = ips.filter(isObject).filter((x) => typeof x.ip === 'string').map((x) => ({ ip: x.ip as string }));
  }
  return pod;
}

function optionalString(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(where, 'must be a string');
  return v;
}

/** A Service from its JSON form: its cluster IPs and ports (selector and the rest are not read). */
export function parseService(v: unknown, where = 'Service'): Service {
  if (!isObject(v)) fail(where, 'must be an object');
  const metadata = parseMeta(v.metadata, where, true);
  const at = `Service ${metadata.namespace}/${metadata.name}`;
  const service: Service = { metadata };
  const spec = v.spec;
  if (!isObject(spec)) return service;
  service.spec = {};
  const clusterIP = optionalString(spec.clusterIP, `${at}.spec.clusterIP`);
  if (clusterIP !== undefined) service.spec.clusterIP = clusterIP;
  const ips = optionalArray(spec.clusterIPs, `${at}.spec.clusterIPs`);
  if (ips) service.spec.clusterIPs = ips.map((ip, i) => optionalString(ip, `${at}.spec.clusterIPs[${i}]`) ?? '');
  const ports = optionalArray(spec.ports, `${at}.spec.ports`);
  if (ports) {
    service.spec.ports = ports.map((p, i): ServicePort => {
      const pat = `${at}.spec.ports[${i}]`;
      if (!isObject(p) || !validPortNumber(p.port)) fail(`${pat}.port`, 'must be 1-65535');
      const port: ServicePort = { port: p.port, protocol: parseProtocol(p.protocol, `${pat}.protocol`) };
      const name = optionalString(p.name, `${pat}.name`);
      if (name) port.name = name;
      return port;
    });
  }
  return service;
}

/** An EndpointSlice from its JSON form. */
export function parseEndpointSlice(v: unknown, where = 'EndpointSlice'): EndpointSlice {
  if (!isObject(v)) fail(where, 'must be an object');
  const metadata = parseMeta(v.metadata, where, true);
  const at = `EndpointSlice ${metadata.namespace}/${metadata.name}`;
  if (v.addressType !== 'IPv4' && v.addressType !== 'IPv6' && v.addressType !== 'FQDN') fail(`${at}.addressType`, 'must be IPv4, IPv6 or FQDN');
  const endpoints = (optionalArray(v.endpoints, `${at}.endpoints`) ?? []).map((e, i) => {
    const eat = `${at}.endpoints[${i}]`;
    if (!isObject(e)) fail(eat, 'must be an object');
    const addresses = (optionalArray(e.addresses, `${eat}.addresses`) ?? []).map((a, j) => optionalString(a, `${eat}.addresses[${j}]`) ?? '');
    const out: EndpointSlice['endpoints'][number] = { addresses };
    if (isObject(e.conditions) && typeof e.conditions.ready === 'boolean') out.conditions = { ready: e.conditions.ready };
    return out;
  });
  const slice: EndpointSlice = { metadata, addressType: v.addressType, endpoints };
  const ports = optionalArray(v.ports, `${at}.ports`);
  if (ports) {
    slice.ports = ports.map((p, i) => {
      const pat = `${at}.ports[${i}]`;
      if (!isObject(p)) fail(pat, 'must be an object');
      const out: NonNullable<EndpointSlice['ports']>[number] = { protocol: parseProtocol(p.protocol, `${pat}.protocol`) };
      if (p.port !== undefined && p.port !== null) {
        if (!validPortNumber(p.port)) fail(`${pat}.port`, 'must be 1-65535');
        out.port = p.port;
      }
      const name = optionalString(p.name, `${pat}.name`);
      if (name) out.name = name;
      return out;
    });
  }
  return slice;
}
