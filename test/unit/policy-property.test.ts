// Property tests: for random clusters (namespaces, labelled pods with named
// ports) and random policies (every selector operator, ipBlock with except,
// numeric, ranged and named ports, policyTypes given or implied), the compiled
// rules decide every flow exactly as the direct evaluation of the semantics;
// the compiled elements are pairwise disjoint (what the kernel's interval sets
// require); and rendering is a pure function of the rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseAddress } from '../../controlplane/ipam/addr.js';
import { compileWorkload, disjointElements, type PortElement, type Span } from '../../controlplane/policy/compile.js';
import { flowAllowed, type Flow, type FlowProtocol } from '../../controlplane/policy/reference.js';
import { renderPolicyTable } from '../../controlplane/policy/render.js';
import type {
  ContainerPort, LabelSelector, LabelSelectorRequirement, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PolicyType,
} from '../../controlplane/policy/types.js';
import { compiledAllowed, namespace, pod, policy, state } from './policy-support.js';

const NS_NAMES = ['n1', 'n2', 'n3'];
const LABEL_KEYS = ['app', 'tier'];
const LABEL_VALUES = ['a', 'b', 'c'];
const PORT_NAMES = ['http', 'dns', 'nope'];
const PORTS = [53, 80, 81, 8080];
const OUTSIDE = ['192.168.1.5', '192.168.2.7', '10.32.0.200'];
const CIDRS: Record<string, string[]> = {
  '10.32.0.0/28': ['10.32.0.0/30', '10.32.0.4/32', '10.32.0.8/29'],
  '10.32.0.0/16': ['10.32.0.0/28', '10.32.0.200/32'],
  '192.168.0.0/16': ['192.168.1.0/24', '192.168.2.7/32'],
  '0.0.0.0/0': ['10.0.0.0/8', '192.168.2.0/24'],
  '10.32.0.4/30': ['10.32.0.6/31'],
};

const labelsArb = fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 2 });
const requirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({ key: fc.constantFrom(...LABEL_KEYS, 'team'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.uniqueArray(fc.constantFrom(...LABEL_VALUES), { minLength: 1, maxLength: 2 }) }),
  fc.record({ key: fc.constantFrom(...LABEL_KEYS, 'team'), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
);
const selectorArb: fc.Arbitrary<LabelSelector> = fc.record({ matchLabels: labelsArb, matchExpressions: fc.array(requirementArb, { maxLength: 2 }) }, { requiredKeys: [] });

const peerArb: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: selectorArb }),
  fc.record({ namespaceSelector: selectorArb }),
  fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }),
  fc.constantFrom(...Object.keys(CIDRS)).chain((cidr) => fc.subarray(CIDRS[cidr] as string[]).map((except) => ({ ipBlock: except.length > 0 ? { cidr, except } : { cidr } }))),
);

const policyPortArb: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const) }, { requiredKeys: [] }),
  fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(...PORTS) }, { requiredKeys: ['port'] }),
  fc.tuple(fc.constantFrom(...PORTS), fc.nat(100), fc.constantFrom('TCP' as const, 'UDP' as const)).map(([port, extra, protocol]) => ({ protocol, port, endPort: port + extra })),
  fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom(...PORT_NAMES) }, { requiredKeys: ['port'] }),
);

const ruleArb = fc.record({ peers: fc.option(fc.array(peerArb, { maxLength: 2 }), { nil: undefined }), ports: fc.option(fc.array(policyPortArb, { maxLength: 2 }), { nil: undefined }) }, { requiredKeys: [] });

const policyArb = (i: number): fc.Arbitrary<NetworkPolicy> => fc.record({
  ns: fc.constantFrom(...NS_NAMES),
  podSelector: selectorArb,
  types: fc.option(fc.subarray<PolicyType>(['Ingress', 'Egress'], { minLength: 1 }), { nil: undefined }),
  ingress: fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: undefined }),
  egress: fc.option(fc.array(ruleArb, { maxLength: 2 }), { nil: undefined }),
}).map((p) => policy(p.ns, `p${i}`, {
  podSelector: p.podSelector,
  ...(p.types ? { policyTypes: p.types } : {}),
  ...(p.ingress ? { ingress: p.ingress.map((r) => ({ ...(r.peers ? { from: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
  ...(p.egress ? { egress: p.egress.map((r) => ({ ...(r.peers ? { to: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
}));

const containerPortArb: fc.Arbitrary<ContainerPort> = fc.record({ name: fc.constantFrom('http', 'dns'), containerPort: fc.constantFrom(...PORTS), protocol: fc.constantFrom('TCP' as const, 'UDP' as const) });

const clusterArb = fc.record({
  // A namespace may be absent (deleted while its pods and policies remain).
  namespaces: fc.subarray(NS_NAMES).chain((names) => fc.tuple(...names.map((n) => fc.dictionary(fc.constant('team'), fc.constantFrom(...LABEL_VALUES)).map((l) => namespace(n, l))))),
  pods: fc.array(fc.record({ ns: fc.constantFrom(...NS_NAMES), labels: labelsArb, ports: fc.uniqueArray(containerPortArb, { maxLength: 2, selector: (p) => p.name }) }), { minLength: 1, maxLength: 7 }),
  policies: fc.integer({ min: 0, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policyArb(i)))),
});

function podIp(i: number): string {
  return `10.32.0.${i + 1}`;
}

test('compiled rules decide every flow as the direct evaluation does', () => {
  let isolatedSeen = 0;
  let deniedSeen = 0;
  fc.assert(fc.property(clusterArb, fc.array(fc.tuple(fc.nat(20), fc.nat(20), fc.constantFrom<FlowProtocol>('TCP', 'UDP', 'ICMP', 'SCTP'), fc.constantFrom(...PORTS, 82, 9000)), { minLength: 5, maxLength: 30 }), (c, flows) => {
    const pods = c.pods.map((p, i) => pod(p.ns, `w${i}`, podIp(i), p.labels, p.ports));
    const s = state(c.namespaces, pods, c.policies);
    const addresses = [...pods.map((_, i) => podIp(i)), ...OUTSIDE];
    for (const w of s.workloads) {
      const r = compileWorkload(s, w);
      if (r.ingress || r.egress) isolatedSeen++;
    }
    for (const [a, b, protocol, port] of flows) {
      const f: Flow = { src: parseAddress(addresses[a % addresses.length] as string), dst: parseAddress(addresses[b % addresses.length] as string), protocol, port: protocol === 'ICMP' ? 0 : port };
      const want = flowAllowed(s, f);
      if (!want) deniedSeen++;
      assert.equal(compiledAllowed(s, f), want, `flow ${JSON.stringify(f)} in ${JSON.stringify({ pods, policies: c.policies })}`);
    }
  }), { numRuns: 400, seed: Number(process.env.WEAVE_FC_SEED ?? Date.now() % 2 ** 31) });
  // The generator must exercise the interesting half: isolated pods and denied flows.
  assert.ok(isolatedSeen > 100 && deniedSeen > 100, `isolated ${isolatedSeen}, denied ${deniedSeen}`);
});

const spanArb = (max: number): fc.Arbitrary<Span> => fc.tuple(fc.nat(max), fc.nat(max)).map(([a, b]) => ({ first: Math.min(a, b), last: Math.max(a, b) }));
const elementArb: fc.Arbitrary<PortElement> = fc.record({ addresses: spanArb(40), protocol: fc.constantFrom(6, 17), ports: spanArb(30) });

function covers(list: readonly PortElement[], address: number, protocol: number, port: number): boolean {
  return list.some((e) => address >= e.addresses.first && address <= e.addresses.last && e.protocol === protocol && port >= e.ports.first && port <= e.ports.last);
}

test('disjointElements: the same points, no two elements overlapping', () => {
  fc.assert(fc.property(fc.array(elementArb, { maxLength: 12 }), (elements) => {
    const out = disjointElements(elements);
    for (let a = 0; a <= 41; a++) {
      for (const protocol of [6, 17]) {
        for (let port = 0; port <= 31; port++) assert.equal(covers(out, a, protocol, port), covers(elements, a, protocol, port), `point ${a}/${protocol}/${port}`);
      }
    }
    for (let i = 0; i < out.length; i++) {
      for (let j = i + 1; j < out.length; j++) {
        const [x, y] = [out[i] as PortElement, out[j] as PortElement];
        const overlap = x.protocol === y.protocol && x.addresses.first <= y.addresses.last && y.addresses.first <= x.addresses.last && x.ports.first <= y.ports.last && y.ports.first <= x.ports.last;
        assert.ok(!overlap, `elements ${JSON.stringify(x)} and ${JSON.stringify(y)} overlap`);
      }
    }
  }), { numRuns: 300 });
});

test('rendering depends only on the state: policy order and a recompile change nothing', () => {
  fc.assert(fc.property(clusterArb, (c) => {
    const pods = c.pods.map((p, i) => pod(p.ns, `w${i}`, podIp(i), p.labels, p.ports));
    const a = state(c.namespaces, pods, c.policies);
    const b = state([...c.namespaces].reverse(), [...pods].reverse(), [...c.policies].reverse());
    for (const w of a.workloads) {
      const other = b.workloads.find((x) => x.key === w.key);
      assert.ok(other);
      assert.equal(renderPolicyTable(compileWorkload(b, other)), renderPolicyTable(compileWorkload(a, w)));
    }
  }), { numRuns: 150 });
});
