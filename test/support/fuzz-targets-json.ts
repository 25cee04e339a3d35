// Fuzz targets for the JSON, YAML and text decoders of outside input: the CNI
// plugin's stdin config and environment, the Docker plugin's requests, the
// Docker proxy's create and start bodies, policy files, Kubernetes objects as
// a watch delivers them, the peer list kept in the weave-net ConfigMap and the
// short-id state file. Inputs are valid documents with one value replaced by
// an arbitrary JSON value or removed (they get past the first checks and
// reach the field checks), byte mutations of their text, and noise.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { mutated, type FuzzTarget } from './fuzz-targets.js';
import { parseNetConf } from '../../controlplane/cni/config.js';
import { readEnvironment } from '../../controlplane/cni/environment.js';
import { CniError } from '../../controlplane/cni/errors.js';
import {
  PluginError, PluginRequestError, parseCreateEndpoint, parseCreateNetwork, parseEndpoint, parseJoin, parseNetworkId, parsePoolId,
  parseReleaseAddress, parseRequestAddress, parseRequestPool,
} from '../../controlplane/docker/plugin-protocol.js';
import { IpamDriver } from '../../controlplane/docker/ipam-driver.js';
import { parseMulticastOption } from '../../controlplane/docker/network-driver.js';
import { decideAttach, WeaveCidrError } from '../../controlplane/docker/attach-decision.js';
import { addDnsSettings, addWaiterBind, CreateRequestError, objectField, rewriteCreate, type JsonObject } from '../../controlplane/docker/create-rewrite.js';
import { defaultHostnameRules, HostnameRuleError } from '../../controlplane/docker/hostname.js';
import { loadPolicyDirectory } from '../../controlplane/policy/file-source.js';
import { parseNamespace, parseNetworkPolicy, parsePod, PolicyError } from '../../controlplane/policy/validate.js';
import { buildClusterState } from '../../controlplane/policy/cluster.js';
import { compileWorkload } from '../../controlplane/policy/compile.js';
import { PeerListError, peerListOf, PEER_LIST_KEY } from '../../k8s/kube-peers.js';
import { readPersistedShortId, shortIdFile } from '../../weaver/identity.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value inside `v` (object keys and array indices). */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** `seed` with the value at `path` replaced (or, with `undefined`, removed). */
function replaced(seed: Json, path: (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const copy = structuredClone(seed) as Record<string | number, Json>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const last = path.at(-1)!;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    parent[last] = value;
  }
  return copy;
}

/** Awkward values for a field: wrong types, huge and negative numbers, deep nesting, strange strings. */
const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1e308, -1e308, 2 ** 31, 2 ** 53, 0.5, '', ' ', '0', '-1', '\u0000', '../..', '/', 'a'.repeat(300),
    [], {}, [null], { '': null }, ['a', 1], '10.32.0.0/12', '10.32.0.1', '300.1.1.1/33', '0.0.0.0/0', 'weave-10.32.0.0/12-10.32.0.0/13'),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

/** Documents derived from valid seeds: one value replaced or removed, or several. */
export function jsonMutated(seeds: readonly Json[]): fc.Arbitrary<Json> {
  const one = (s: Json): fc.Arbitrary<Json> => {
    const all = paths(s);
    return fc.tuple(fc.nat(all.length - 1), fc.option(oddValue, { nil: undefined, freq: 4 })).map(([i, v]) => replaced(s, all[i]!, v));
  };
  return fc.constantFrom(...seeds).chain((s) => fc.oneof(
    { weight: 4, arbitrary: one(s) },
    { weight: 2, arbitrary: one(s).chain(one) },
    { weight: 1, arbitrary: one(s).chain(one).chain(one) },
  ));
}

/** JSON text of mutated documents, byte-mutated text, and noise. */
export function jsonText(seeds: readonly Json[]): fc.Arbitrary<string> {
  const utf8 = new TextDecoder();
  return fc.oneof(
    { weight: 6, arbitrary: jsonMutated(seeds).map((v) => JSON.stringify(v)) },
    { weight: 3, arbitrary: mutated(seeds.map((s) => new TextEncoder().encode(JSON.stringify(s)))).map((b) => utf8.decode(b)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  );
}

/** Parses like the servers do; a SyntaxError is the typed "not JSON" failure. */
function parsed(text: string): unknown {
  return JSON.parse(text);
}

// ---- seeds ----

const netconf: Json = {
  cniVersion: '1.0.0', name: 'weave', type: 'weave-net', bridge: 'weave', mtu: 1376, hairpinMode: true, dataDir: '/var/lib/cni/weave-net',
  ipam: { type: 'weave-ipam', subnet: '10.32.0.0/12', gateway: '10.32.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }] },
  dns: { nameservers: ['10.32.0.1'], domain: 'weave.local', search: ['weave.local'], options: ['ndots:2'] },
  prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.32.0.5/12' }] },
  'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
};

const pluginRequests: Json[] = [
  { NetworkID: 'n1', Options: { 'com.docker.network.generic': { 'works.weave.multicast': 'true' } }, IPv4Data: [{ Pool: '10.32.0.0/12' }] },
  { NetworkID: 'n1', EndpointID: 'e1', Interface: { Address: '10.32.0.5/12', MacAddress: '' }, Options: {} },
  { NetworkID: 'n1', EndpointID: 'e1', SandboxKey: '/var/run/docker/netns/x', Options: {} },
  { AddressSpace: 'weavelocal', Pool: '10.32.0.0/12', SubPool: '10.32.0.0/13', Options: {}, V6: false },
  { PoolID: 'weave-10.32.0.0/12-10.32.0.0/13', Address: '10.32.0.7', Options: {} },
  { PoolID: 'weavepool', Address: '' },
];
const PLUGIN_CALLS = ['CreateNetwork', 'DeleteNetwork', 'CreateEndpoint', 'DeleteEndpoint', 'Join', 'Leave', 'RequestPool', 'ReleasePool',
  'RequestAddress', 'ReleaseAddress'] as const;

const createBody: Json = {
  Hostname: 'web', Domainname: '', Image: 'alpine', Entrypoint: ['/bin/sh'], Cmd: ['-c', 'sleep 1'], Env: ['WEAVE_CIDR=net:10.32.0.0/24', 'A=b'],
  Labels: { app: 'web' },
  HostConfig: { NetworkMode: 'default', Binds: ['/data:/data'], Dns: ['8.8.8.8'], DnsSearch: ['example.com'] },
};
const startBody: Json = { Binds: ['/w:/w:ro'], Dns: [], DnsSearch: [], NetworkMode: 'bridge' };

const policy: Json = {
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web', namespace: 'default', resourceVersion: '7' },
  spec: {
    podSelector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ podSelector: { matchLabels: { app: 'db' } } }, { namespaceSelector: {} }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }],
      ports: [{ protocol: 'TCP', port: 80 }, { port: 'http' }, { protocol: 'UDP', port: 1000, endPort: 2000 }] }],
    egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'SCTP', port: 9 }] }],
  },
};
const pod: Json = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'default', labels: { app: 'web' }, annotations: { 'weave.works/netns': '/run/netns/x' } },
  spec: { nodeName: 'n1', containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] }] },
  status: { phase: 'Running', podIP: '10.32.0.9', podIPs: [{ ip: '10.32.0.9' }] },
};
const namespace: Json = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: { team: 'a' } } };
const list: Json = { apiVersion: 'v1', kind: 'List', items: [namespace, pod, policy] };

const peerList: Json = { Peers: [{ PeerName: '8a:3e:3e:3e:3e:3e', NodeName: 'n1' }, { PeerName: 'ea:2d:b2:e6:e4:f5', NodeName: 'n2' }] };

// ---- targets ----

/** The Docker plugin's IPAM side with an allocator that answers at once. */
function pluginIpam(): IpamDriver {
  return new IpamDriver({
    defaultSubnet: () => ({ addr: 0x0a200000, prefixLen: 12 }),
    allocate: (range) => Promise.resolve(range.addr + 1),
    claim: () => Promise.resolve(),
    release: () => undefined,
  });
}

async function pluginCall(ipam: IpamDriver, call: (typeof PLUGIN_CALLS)[number], body: unknown): Promise<void> {
  switch (call) {
    case 'CreateNetwork': {
      const req = parseCreateNetwork(body);
      const multicast = req.options['works.weave.multicast'];
      if (multicast !== undefined) parseMulticastOption(multicast);
      return;
    }
    case 'DeleteNetwork': parseNetworkId(body); return;
    case 'CreateEndpoint': parseCreateEndpoint(body); return;
    case 'DeleteEndpoint': case 'Leave': parseEndpoint(body); return;
    case 'Join': parseJoin(body); return;
    case 'RequestPool': ipam.requestPool(parseRequestPool(body)); return;
    case 'ReleasePool': ipam.releasePool(parsePoolId(body)); return;
    case 'RequestAddress': await ipam.requestAddress(parseRequestAddress(body)); return;
    case 'ReleaseAddress': ipam.releaseAddress(parseReleaseAddress(body)); return;
  }
}

/** What the proxy does with a create body (controlplane/docker/proxy.ts), short of forwarding it. */
async function proxyCreate(text: string): Promise<void> {
  const body = parsed(text);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const o = body as JsonObject;
  const hostConfig = o.HostConfig;
  const networkMode = typeof hostConfig === 'object' && hostConfig !== null && typeof (hostConfig as JsonObject).NetworkMode === 'string'
    ? (hostConfig as JsonObject).NetworkMode as string : '';
  const decision = decideAttach(networkMode, Array.isArray(o.Env) ? o.Env : undefined, false);
  if (!decision.attach) return;
  await rewriteCreate(o, 'web', {
    waiterDir: '/var/lib/weave/w', dns: { domain: 'weave.local.', server: '172.17.0.1' }, hostnameRules: defaultHostnameRules(),
    imageCommand: () => Promise.resolve({ Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx'] }),
  });
  JSON.stringify(o);
}

/** What the proxy does with the HostConfig an old client sends with start. */
function proxyStart(text: string): void {
  const body = parsed(text);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const o = body as JsonObject;
  const hostConfig = o.HostConfig === undefined ? o : objectField(o, 'HostConfig');
  addWaiterBind(hostConfig, '/var/lib/weave/w');
  addDnsSettings({ Hostname: 'web' }, hostConfig, '', {
    waiterDir: '', dns: { domain: 'weave.local.', server: '172.17.0.1' }, hostnameRules: defaultHostnameRules(), imageCommand: () => Promise.resolve({}),
  });
  JSON.stringify(o);
}

/** A watched object as the policy controller takes it: validated, then compiled for every workload. */
function kubeObject(text: string): void {
  const event = parsed(text) as { type?: unknown; object?: unknown } | null;
  const obj = typeof event === 'object' && event !== null && 'object' in event ? event.object : event;
  const kind = (obj as { kind?: unknown } | null)?.kind;
  const namespaces = [parseNamespace(namespace)];
  const pods = [parsePod(pod)];
  const policies = [parseNetworkPolicy(policy)];
  if (kind === 'Pod') pods.push(parsePod(obj));
  else if (kind === 'Namespace') namespaces.push(parseNamespace(obj));
  else policies.push(parseNetworkPolicy(obj));
  const state = buildClusterState(namespaces, pods, policies);
  for (const w of state.workloads) compileWorkload(state, w);
}

const ENV_KEYS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;
const envValue = fc.oneof(
  fc.constantFrom('ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS', 'add', '', 'c1', '/run/netns/x', 'eth0', '/opt/cni/bin',
    'IgnoreUnknown=1;K8S_POD_NAME=web', '=x', ';;', 'a=b=c;', 'x'.repeat(300)),
  fc.string({ maxLength: 30 }),
);

export interface JsonFuzzTargets {
  targets: FuzzTarget[];
  close(): void;
}

export function jsonFuzzTargets(): JsonFuzzTargets {
  const dir = mkdtempSync(join(tmpdir(), 'weave-fuzz-'));
  const policyDir = join(dir, 'policy');
  const stateDir = join(dir, 'state');
  const ipam = pluginIpam();
  const NAME = 0x8a3e3e3e3e3en;
  const targets: FuzzTarget[] = [
    {
      name: 'cni-netconf',
      input: jsonText([netconf, { cniVersion: '0.3.1', name: 'weave', type: 'weave-net' }]),
      run: (text: string) => { parseNetConf(text); },
      expected: [CniError],
    } satisfies FuzzTarget<string>,
    {
      name: 'cni-environment',
      input: fc.dictionary(fc.constantFrom(...ENV_KEYS), envValue),
      run: (env: Record<string, string>) => { readEnvironment(env); },
      expected: [CniError],
    } satisfies FuzzTarget<Record<string, string>>,
    {
      name: 'docker-plugin',
      input: fc.tuple(fc.constantFrom(...PLUGIN_CALLS), jsonText(pluginRequests)),
      run: ([call, text]) => pluginCall(ipam, call, parsed(text)),
      expected: [SyntaxError, PluginRequestError, PluginError],
    } satisfies FuzzTarget<[(typeof PLUGIN_CALLS)[number], string]>,
    {
      name: 'docker-proxy-create',
      input: jsonText([createBody, { Image: 'alpine', Env: ['WEAVE_CIDR=10.32.1.1/24 net:default ip:10.32.0.9/12'] }]),
      run: proxyCreate,
      expected: [SyntaxError, WeaveCidrError, CreateRequestError, HostnameRuleError],
    } satisfies FuzzTarget<string>,
    {
      name: 'docker-proxy-start',
      input: jsonText([startBody, { HostConfig: startBody }]),
      run: proxyStart,
      expected: [SyntaxError, CreateRequestError, HostnameRuleError],
    } satisfies FuzzTarget<string>,
    {
      name: 'k8s-watch-object',
      input: jsonText([{ type: 'ADDED', object: policy }, { type: 'MODIFIED', object: pod }, { type: 'ADDED', object: namespace }]),
      run: kubeObject,
      expected: [SyntaxError, PolicyError],
    } satisfies FuzzTarget<string>,
    {
      // The loader reports every problem with its file and never throws.
      name: 'policy-file',
      input: fc.tuple(fc.oneof(
        jsonText([list, policy]),
        jsonMutated([list, policy]).map((v) => `# policy\n---\n${JSON.stringify(v)}\n---\nkind: Namespace\nmetadata: {name: other}\n`),
        mutated([new TextEncoder().encode('kind: NetworkPolicy\nmetadata: {name: a, namespace: default}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n---\n&x [*x, *x]\n')])
          .map((b) => new TextDecoder().decode(b)),
      ), fc.constantFrom('p.yaml', 'p.json')),
      run: ([text, file]) => {
        // One directory per file name, so each load reads exactly this input.
        const d = join(policyDir, file);
        mkdirp(d);
        writeFileSync(join(d, file), text);
        const { snapshot } = loadPolicyDirectory(d);
        const state = buildClusterState(snapshot.namespaces, snapshot.pods, snapshot.policies);
        for (const w of state.workloads) compileWorkload(state, w);
      },
      expected: [],
    } satisfies FuzzTarget<[string, string]>,
    {
      name: 'k8s-peer-list',
      input: jsonText([peerList, { Peers: [] }]),
      run: (text: string) => { peerListOf({ annotations: { [PEER_LIST_KEY]: text }, resourceVersion: '1' }); },
      expected: [PeerListError],
    } satisfies FuzzTarget<string>,
    {
      // A damaged short-id file is ignored (a new short id is chosen), never fatal.
      name: 'state-short-id',
      input: fc.oneof(
        mutated([new TextEncoder().encode('8a:3e:3e:3e:3e:3e 291\n')]).map((b) => Buffer.from(b)),
        fc.string({ maxLength: 40 }).map((s) => Buffer.from(s)),
      ),
      run: (bytes: Buffer) => {
        mkdirp(stateDir);
        writeFileSync(shortIdFile({ dir: stateDir }), bytes);
        const id = readPersistedShortId({ dir: stateDir }, NAME);
        if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id <= 0xfff)) throw new Error(`short id ${id} read back`);
      },
      expected: [],
    } satisfies FuzzTarget<Buffer>,
  ];
  return { targets, close: () => rmSync(dir, { recursive: true, force: true }) };
}

function mkdirp(d: string): void {
  mkdirSync(d, { recursive: true });
}
