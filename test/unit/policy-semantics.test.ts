// NetworkPolicy semantics, case by case after the upstream Kubernetes e2e
// network policy suite: each case states who may reach whom, and both the
// direct evaluation (reference.ts) and the compiled rules (compile.ts, decided
// as the kernel tables decide) must say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowAllowed } from '../../controlplane/policy/reference.js';
import { compileWorkload } from '../../controlplane/policy/compile.js';
import { renderPolicyTable } from '../../controlplane/policy/render.js';
import type { ClusterState } from '../../controlplane/policy/cluster.js';
import type { Flow } from '../../controlplane/policy/reference.js';
import { compiledAllowed, flow, namespace, pod, policy, state } from './policy-support.js';

const NAMESPACES = [namespace('x', { team: 'x' }), namespace('y', { team: 'y' }), namespace('z', { team: 'z' })];
// Pods a, b, c in each of x, y, z (the e2e suite's 3x3 model), 10.32.<ns>.<pod>.
const PODS = ['x', 'y', 'z'].flatMap((ns, i) => ['a', 'b', 'c'].map((name, j) => pod(ns, name, `10.32.${i}.${j + 1}`, { pod: name }, [
  { name: 'serve-80', containerPort: 80 }, { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
])));
const IP: Record<string, string> = Object.fromEntries(PODS.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status?.podIP as string]));
const OUTSIDE = '192.168.7.7';

function agree(s: ClusterState, f: Flow, want: boolean, what: string): void {
  assert.equal(flowAllowed(s, f), want, `reference: ${what}`);
  assert.equal(compiledAllowed(s, f), want, `compiled: ${what}`);
}

/** Asserts, for TCP port `port` between every pair of the nine pods, that exactly `allowed` pairs ("x/a->y/b") connect. */
function matrix(s: ClusterState, allowed: (from: string, to: string) => boolean, port = 80, protocol: 'TCP' | 'UDP' = 'TCP'): void {
  for (const from of Object.keys(IP)) {
    for (const to of Object.keys(IP)) {
      if (from === to) continue;
      agree(s, flow(IP[from] as string, IP[to] as string, protocol, port), allowed(from, to), `${from} -> ${to} ${protocol}/${port}`);
    }
  }
}

test('no policy: everything is allowed, and no table is rendered for any pod (weaveworks/weave#3761)', () => {
  const s = state(NAMESPACES, PODS, []);
  matrix(s, () => true);
  for (const w of s.workloads) {
    const rules = compileWorkload(s, w);
    assert.equal(rules.ingress, undefined);
    assert.equal(rules.egress, undefined);
    assert.doesNotMatch(renderPolicyTable(rules), /chain/, 'a pod nothing isolates gets no chain at all');
  }
});

test('default deny ingress in x: nothing reaches x; x still reaches out; a pod reaches itself', () => {
  const s = state(NAMESPACES, PODS, [policy('x', 'deny', { podSelector: {} })]);
  matrix(s, (_from, to) => !to.startsWith('x/'));
  agree(s, flow(IP['x/a'] as string, IP['x/a'] as string), true, 'x/a -> itself');
  agree(s, flow(OUTSIDE, IP['x/a'] as string, 'ICMP'), false, 'outside ping -> x/a');
});

test('default deny egress in x: x reaches nobody, others reach x', () => {
  const s = state(NAMESPACES, PODS, [policy('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })]);
  matrix(s, (from) => !from.startsWith('x/'));
  agree(s, flow(IP['x/a'] as string, OUTSIDE, 'UDP', 53), false, 'x/a -> outside DNS');
});

test('allow from pods with a label, in the policy namespace only', () => {
  const s = state(NAMESPACES, PODS, [policy('x', 'allow-b', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
  })]);
  matrix(s, (from, to) => to !== 'x/a' || from === 'x/b');
});

test('allow from a namespace, from pods in a namespace (both selectors in one peer), and from either (two peers)', () => {
  const fromNs = state(NAMESPACES, PODS, [policy('x', 'ns', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'y' } } }] }] })]);
  matrix(fromNs, (from, to) => to !== 'x/a' || from.startsWith('y/'));
  const both = state(NAMESPACES, PODS, [policy('x', 'both', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['y', 'z'] }] }, podSelector: { matchLabels: { pod: 'c' } } }] }],
  })]);
  matrix(both, (from, to) => to !== 'x/a' || from === 'y/c' || from === 'z/c');
  const either = state(NAMESPACES, PODS, [policy('x', 'either', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'z' } } }, { podSelector: { matchLabels: { pod: 'c' } } }] }],
  })]);
  matrix(either, (from, to) => to !== 'x/a' || from.startsWith('z/') || from === 'x/c');
});

test('NotIn / DoesNotExist selectors', () => {
  const s = state(NAMESPACES, PODS, [policy('x', 'sel', {
    podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a', 'b'] }] },
    ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] } }] }],
  })]);
  // Every namespace has a team label: x/c accepts nobody; x/a and x/b are not selected.
  matrix(s, (_from, to) => to !== 'x/c');
});

test('ipBlock with except, ingress and egress', () => {
  const s = state(NAMESPACES, PODS, [
    policy('x', 'in', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.32.1.0/24', except: ['10.32.1.2/32'] } }] }] }),
    policy('x', 'out', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.7.0/24'] } }] }] }),
  ]);
  matrix(s, (from, to) => (to !== 'x/a' || from === 'y/a' || from === 'y/c') && from !== 'x/b');
  agree(s, flow(IP['x/b'] as string, '192.168.6.1'), true, 'x/b -> inside the block');
  agree(s, flow(IP['x/b'] as string, OUTSIDE), false, 'x/b -> the except');
});

test('ports: number, range (endPort), named port, protocol; no ports means every port and protocol', () => {
  const s = state(NAMESPACES, PODS, [policy('x', 'ports', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [
      { from: [{ namespaceSelector: {} }], ports: [{ port: 'serve-81-udp', protocol: 'UDP' }, { port: 9000, endPort: 9010 }] },
      { from: [{ podSelector: { matchLabels: { pod: 'c' } } }] },
    ],
  })]);
  const a = IP['x/a'] as string;
  const yb = IP['y/b'] as string;
  agree(s, flow(yb, a, 'UDP', 81), true, 'named UDP port');
  agree(s, flow(yb, a, 'TCP', 81), false, 'named port is UDP only');
  agree(s, flow(yb, a, 'TCP', 9000), true, 'range start');
  agree(s, flow(yb, a, 'TCP', 9010), true, 'range end');
  agree(s, flow(yb, a, 'TCP', 9011), false, 'past the range');
  agree(s, flow(yb, a, 'UDP', 9005), false, 'range is TCP (the default)');
  agree(s, flow(yb, a, 'ICMP'), false, 'ICMP is not a port');
  agree(s, flow(IP['x/c'] as string, a, 'ICMP'), true, 'x/c: every protocol');
  agree(s, flow(IP['x/c'] as string, a, 'SCTP', 7), true, 'x/c: SCTP too');
});

test('egress named port resolves on each destination pod; an unknown name allows nothing', () => {
  const pods = [...PODS, pod('y', 'web', '10.32.1.9', { pod: 'web' }, [{ name: 'http', containerPort: 8080 }])];
  const s = state(NAMESPACES, pods, [policy('x', 'eg', {
    podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'],
    egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'http' }, { port: 'serve-80' }, { port: 'nope' }] }],
  })]);
  const a = IP['x/a'] as string;
  agree(s, flow(a, '10.32.1.9', 'TCP', 8080), true, 'web: http is 8080');
  agree(s, flow(a, '10.32.1.9', 'TCP', 80), false, 'web has no serve-80');
  agree(s, flow(a, IP['y/b'] as string, 'TCP', 80), true, 'y/b: serve-80');
  agree(s, flow(a, IP['y/b'] as string, 'TCP', 8080), false, 'y/b has no http');
  agree(s, flow(a, OUTSIDE, 'TCP', 80), false, 'no pod outside: named ports match nothing');
});

test('policyTypes: egress rules imply Egress; explicit Ingress-only ignores egress rules', () => {
  const implied = state(NAMESPACES, PODS, [policy('x', 'imp', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] })]);
  agree(implied, flow(IP['x/a'] as string, OUTSIDE, 'UDP', 53), true, 'DNS allowed (weaveworks/weave#3764)');
  agree(implied, flow(IP['x/a'] as string, OUTSIDE, 'TCP', 80), false, 'other egress denied');
  agree(implied, flow(IP['y/a'] as string, IP['x/a'] as string), false, 'ingress isolated too (no ingress rules)');
  const ingressOnly = state(NAMESPACES, PODS, [policy('x', 'io', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}], egress: [{ ports: [{ port: 1 }] }] })]);
  matrix(ingressOnly, () => true);
});

test('policies are additive; a pod selected by a policy of another namespace is not isolated by it', () => {
  const s = state(NAMESPACES, PODS, [
    policy('x', 'one', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }),
    policy('x', 'two', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }] }] }),
    policy('y', 'other', { podSelector: { matchLabels: { pod: 'zzz' } } }),
  ]);
  matrix(s, (from, to) => to !== 'x/a' || from === 'x/b' || from === 'x/c');
});

test('a namespace that is gone: its pods keep only the name label; nothing throws (weaveworks/weave#3829)', () => {
  const pods = [...PODS, pod('gone', 'p', '10.32.9.1', { pod: 'a' })];
  const s = state(NAMESPACES, pods, [
    policy('x', 'from-gone', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gone' } } }] }] }),
    policy('gone', 'orphan', { podSelector: {} }),
  ]);
  agree(s, flow('10.32.9.1', IP['x/a'] as string), true, 'gone/p -> x/a by name label');
  agree(s, flow(IP['y/a'] as string, IP['x/a'] as string), false, 'y/a -> x/a');
  agree(s, flow(IP['y/a'] as string, '10.32.9.1'), false, 'the orphaned policy still isolates its pods');
});

test('pods without an address or finished are not workloads', () => {
  const pending = pod('x', 'pending', '', { pod: 'b' });
  const done = { ...pod('x', 'done', '10.32.0.50', { pod: 'b' }), status: { phase: 'Succeeded', podIP: '10.32.0.50' } };
  const s = state(NAMESPACES, [...PODS, pending, done], [policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })]);
  assert.equal(s.workloads.length, PODS.length);
  agree(s, flow('10.32.0.50', IP['x/a'] as string), false, 'a finished pod address is not a selected peer');
});
