// Objects as the API server would accept them, and only those: validation
// errors name the object and field; the directory source reads several
// documents and List objects, and skips a bad document without losing the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyDirectory } from '../../controlplane/policy/file-source.js';
import { parseNetworkPolicy, parsePod, PolicyError } from '../../controlplane/policy/validate.js';

const BASE = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'x' } };

function rejects(spec: unknown, pattern: RegExp): void {
  assert.throws(() => parseNetworkPolicy({ ...BASE, spec }), (err: unknown) => err instanceof PolicyError && pattern.test(err.message), `spec ${JSON.stringify(spec)} is rejected with ${String(pattern)}`);
}

test('NetworkPolicy validation: the API server rules, with the object and field named', () => {
  rejects({}, /NetworkPolicy x\/p\.spec\.podSelector: is required/);
  rejects({ podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP' }] }] }, /ingress\[0\]\.ports\[0\]\.protocol: must be one of TCP, UDP, SCTP/);
  rejects({ podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] }, /port: must be 1-65535/);
  rejects({ podSelector: {}, ingress: [{ ports: [{ port: 'Not_A_Name' }] }] }, /neither a port number nor a port name/);
  rejects({ podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] }, /endPort: needs a numeric port/);
  rejects({ podSelector: {}, ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }, /endPort: must be 90-65535/);
  rejects({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/24'] } }] }] }, /11\.0\.0\.0\/24 is not within 10\.0\.0\.0\/8/);
  rejects({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] }, /cidr: invalid CIDR/);
  rejects({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, /ipBlock cannot be combined/);
  rejects({ podSelector: {}, egress: [{ to: [{}] }] }, /needs podSelector, namespaceSelector or ipBlock/);
  rejects({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }, /values: must be non-empty for In/);
  rejects({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }, /values: must be empty for Exists/);
  rejects({ podSelector: {}, policyTypes: ['Both'] }, /"Both" is not Ingress or Egress/);
  // Found by the k8s-watch-object fuzz target: an object whose toString is not a function made the message itself throw.
  rejects({ podSelector: {}, policyTypes: [{ toString: 'Qs;' }] }, /\{"toString":"Qs;"\} is not Ingress or Egress/);
  const ok = parseNetworkPolicy({ ...BASE, spec: { podSelector: {}, ingress: [{ ports: [{ port: '8080' }, { port: 'http' }] }] } });
  assert.deepEqual(ok.spec.ingress?.[0]?.ports, [{ protocol: 'TCP', port: 8080 }, { protocol: 'TCP', port: 'http' }], 'protocol defaults to TCP; a numeric string is a number');
  assert.equal(parseNetworkPolicy({ metadata: { name: 'n' }, spec: { podSelector: {} } }).metadata.namespace, 'default');
  assert.throws(() => parsePod({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 70000 }] }] } }), /containerPort: must be 1-65535/);
});

test('policy directory: multi-document YAML, List, JSON; a bad document is reported and skipped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-policy-src-'));
  try {
    writeFileSync(join(dir, '10-ns.yaml'), [
      'apiVersion: v1', 'kind: Namespace', 'metadata:', '  name: x', '  labels: {team: x}', '---',
      'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: a', '  namespace: x', '  labels: {app: a}', '  annotations: {weave.works/netns: /run/netns/a}',
      'spec:', '  containers: [{name: c, ports: [{name: http, containerPort: 80}]}]', 'status: {podIP: 10.32.0.1}', '',
    ].join('\n'));
    writeFileSync(join(dir, '20-policies.yml'), [
      'apiVersion: v1', 'kind: List', 'items:',
      '- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: one, namespace: x}, spec: {podSelector: {}}}',
      '- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: two, namespace: x}, spec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}}',
      '---', 'kind: NetworkPolicy', 'metadata: {name: bad, namespace: x}', 'spec: {podSelector: {}, ingress: [{ports: [{port: 99999}]}]}', '',
    ].join('\n'));
    writeFileSync(join(dir, '30.json'), JSON.stringify({ kind: 'NetworkPolicy', metadata: { name: 'three' }, spec: { podSelector: { matchLabels: { app: 'a' } } } }));
    writeFileSync(join(dir, '40-broken.yaml'), 'kind: [unclosed\n');
    writeFileSync(join(dir, '50-deployment.yaml'), 'kind: Deployment\nmetadata: {name: d}\n');
    writeFileSync(join(dir, 'README.txt'), 'not read');
    const { snapshot, errors } = loadPolicyDirectory(dir);
    assert.deepEqual(snapshot.namespaces.map((n) => n.metadata.name), ['x']);
    assert.deepEqual(snapshot.pods.map((p) => p.metadata.annotations?.['weave.works/netns']), ['/run/netns/a']);
    assert.deepEqual(snapshot.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`), ['x/one', 'x/two', 'default/three']);
    assert.equal(errors.length, 3, errors.join('\n'));
    assert.match(errors[0] ?? '', /20-policies\.yml \(document 2\).*NetworkPolicy x\/bad\.spec\.ingress\[0\]\.ports\[0\]\.port: must be 1-65535/);
    assert.match(errors[1] ?? '', /40-broken\.yaml/);
    assert.match(errors[2] ?? '', /50-deployment\.yaml: kind "Deployment" is not NetworkPolicy/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('policy directory: a YAML mapping used as a key raises no process warning (stderr stays the router log\'s)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-policy-src-'));
  const warnings: string[] = [];
  const onWarning = (w: Error): void => { warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    writeFileSync(join(dir, 'odd.yaml'), [
      'kind: NetworkPolicy', 'metadata: {name: odd}', 'spec:', '  podSelector: {}', '  ingress:',
      '  - ? [ { ipBlock: { cidr: 10.0.0.0/8 } } ]', '    : 1', '',
    ].join('\n'));
    const loaded = loadPolicyDirectory(dir);
    assert.equal(loaded.snapshot.policies.length + loaded.errors.length, 1, 'the document is either taken or reported');
    await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    rmSync(dir, { recursive: true, force: true });
  }
});
