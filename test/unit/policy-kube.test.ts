// The Kubernetes source: recorded-shape API objects and watch events, served
// over HTTP to @kubernetes/client-node, drive the controller to exactly the
// tables the directory source gives for the same objects; label changes,
// new policies, a deleted namespace and pod, and a watch answered 410 Gone
// (changes made meanwhile seen by relisting) all end in the same agreement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PolicyController, type PolicyLog, type PolicySnapshot } from '../../controlplane/policy/controller.js';
import type { BlockedCounts, LoadResult, PolicyEnforcer } from '../../controlplane/policy/enforcer.js';
import { loadPolicyDirectory } from '../../controlplane/policy/file-source.js';
import { KubePolicySource } from '../../controlplane/policy/kube-source.js';
import type { Pod } from '../../controlplane/policy/types.js';

type ApiObject = { metadata: { name: string; namespace?: string } & Record<string, unknown> } & Record<string, unknown>;
import { FakePolicyApi } from './policy-kube-api.js';

class Tables implements PolicyEnforcer {
  readonly tables = new Map<string, string>();
  async load(netns: string, script: string): Promise<LoadResult> {
    await Promise.resolve();
    // What the kernel would hold: a script that only deletes leaves no table.
    if (/chain/.test(script)) this.tables.set(netns, script);
    else this.tables.delete(netns);
    return 'loaded';
  }
  async readBlocked(): Promise<BlockedCounts | undefined> {
    await Promise.resolve();
    return { byPort: new Map(), total: new Map() };
  }
}

const quiet: PolicyLog = { info: () => undefined, warn: () => undefined };
/** This node's pods and where their namespaces are (the locator's answer in production). */
const LOCAL: Record<string, string> = { '10.32.0.1': '/run/netns/cni-xa', '10.32.0.2': '/run/netns/cni-xb', '10.32.0.4': '/run/netns/cni-ya' };
const netnsOf = (_pod: Pod, ip: number): string | undefined => LOCAL[`10.32.0.${ip & 255}`];

function podJson(ns: string, name: string, ip: string, labels: Record<string, string>, ports: object[] = []): ApiObject {
  return {
    kind: 'Pod',
    metadata: { name, namespace: ns, labels, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-7d4b9c`, uid: 'a1b2', controller: true }] },
    spec: { nodeName: 'node-1', restartPolicy: 'Always', serviceAccountName: 'default', containers: [{ name: 'main', image: 'registry.k8s.io/e2e-test-images/agnhost:2.47', ports }] },
    status: { phase: 'Running', hostIP: '192.168.1.10', podIP: ip, podIPs: [{ ip }], startTime: '2026-12-01T08:00:01Z', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function nsJson(name: string, labels: Record<string, string>): ApiObject {
  return { kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

function policyJson(ns: string, name: string, spec: object): ApiObject {
  return { kind: 'NetworkPolicy', metadata: { name, namespace: ns, generation: 1 }, spec };
}

const A_FROM = policyJson('x', 'a-from', {
  podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Ingress'],
  ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'y' } }, podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] } }], ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5010 }] }],
});
const X_EGRESS = policyJson('x', 'egress', {
  podSelector: {}, policyTypes: ['Egress'],
  egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }, { to: [{ podSelector: {} }] }],
});

function serviceJson(ns: string, name: string, clusterIP: string, ports: object[]): ApiObject {
  return {
    kind: 'Service', metadata: { name, namespace: ns },
    spec: { type: 'ClusterIP', selector: { app: name }, clusterIP, clusterIPs: [clusterIP], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', sessionAffinity: 'None', ports },
    status: { loadBalancer: {} },
  };
}

function sliceJson(ns: string, service: string, addresses: string[], ports: object[]): ApiObject {
  return {
    kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${service}-abcde`, namespace: ns, generateName: `${service}-`, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: ns, name: 'p' } })),
    ports,
  };
}

/** The tables a controller loads from the directory source, given the same objects as files. */
async function tablesFromFiles(objects: object[]): Promise<Map<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'weave-policy-kube-'));
  try {
    writeFileSync(join(dir, 'all.yaml'), objects.map((o) => stringify(o)).join('---\n'));
    const { snapshot, errors } = loadPolicyDirectory(dir);
    assert.deepEqual(errors, []);
    const t = new Tables();
    await new PolicyController({ enforcer: t, log: quiet, netnsOf }).update(snapshot);
    return t.tables;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('Kubernetes source: list and watch give the same tables as the directory source, through changes and a 410 Gone', async () => {
  const api = new FakePolicyApi();
  await api.start();
  const objects = new Map<string, ApiObject>();
  const put = (o: ApiObject, notify = true): void => {
    objects.set(`${String(o.kind)}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
    api.put(o, notify);
  };
  const remove = (kind: string, ns: string | undefined, name: string, notify = true): void => {
    objects.delete(`${kind}/${ns ?? ''}/${name}`);
    api.remove(kind, ns, name, notify);
  };
  put(nsJson('x', { team: 'x' }));
  put(nsJson('y', { team: 'y' }));
  put(podJson('x', 'xa', '10.32.0.1', { app: 'a' }, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]));
  put(podJson('x', 'xb', '10.32.0.2', { app: 'b' }));
  put(podJson('y', 'yb', '10.32.0.3', { app: 'b' }));
  put(podJson('y', 'ya', '10.32.0.4', { app: 'a' }));
  put(A_FROM);

  const tables = new Tables();
  const controller = new PolicyController({ enforcer: tables, log: quiet, netnsOf });
  let changes = 0;
  let wake: (() => void) | undefined;
  const source = new KubePolicySource(api.kubeConfig(), () => {
    changes++;
    wake?.();
  }, quiet, { restartDelayMs: 100 });
  const sync = (): Promise<unknown> => controller.update(source.snapshot() as PolicySnapshot);
  /** Syncs after every change until the tables equal the directory source's for the same objects. */
  const agrees = async (what: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      await sync();
      const want = await tablesFromFiles([...objects.values()]);
      const same = want.size === tables.tables.size && [...want].every(([k, v]) => tables.tables.get(k) === v);
      if (same) return;
      assert.ok(Date.now() < deadline, `${what}: tables from the API differ from the directory source's:\n${JSON.stringify({ api: [...tables.tables], files: [...want] }, null, 1).slice(0, 3000)}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  };
  try {
    await source.start();
    await agrees('initial list');
    assert.match(tables.tables.get('/run/netns/cni-xa') ?? '', /10\.32\.0\.3-10\.32\.0\.4 \. tcp \. 8080/, 'yb and ya may reach xa on the named port');
    assert.equal(tables.tables.has('/run/netns/cni-xb'), false, 'xb is not isolated: no table');

    // Watch events: a label change, a new policy, a pod deleted, a namespace deleted.
    const before = changes;
    put(podJson('y', 'yb', '10.32.0.3', { app: 'c' }));
    put(X_EGRESS);
    await agrees('relabel + new policy');
    assert.ok(changes > before, 'the watch reported the changes');
    assert.match(tables.tables.get('/run/netns/cni-xa') ?? '', /elements = \{ 10\.32\.0\.4 \. tcp \. 8080/, 'yb no longer selected, ya still');

    // Services: x's egress policy allows every x pod, so x/web's cluster IP (to xa) opens; y/other (to yb) does not.
    put(serviceJson('x', 'web', '10.96.0.20', [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }]));
    put(sliceJson('x', 'web', ['10.32.0.1'], [{ name: 'http', protocol: 'TCP', port: 8080 }]));
    put(serviceJson('y', 'other', '10.96.0.30', [{ protocol: 'TCP', port: 80, targetPort: 9000 }]));
    put(sliceJson('y', 'other', ['10.32.0.3'], [{ name: '', protocol: 'TCP', port: 9000 }]));
    await agrees('services and endpoint slices');
    const xb = tables.tables.get('/run/netns/cni-xb') ?? '';
    assert.match(xb, /10\.96\.0\.20 \. tcp \. 80\b/, `xb may reach web's cluster IP:\n${xb}`);
    assert.doesNotMatch(xb, /10\.96\.0\.30/, 'but not other, whose endpoint the policy does not allow');
    remove('Pod', 'y', 'ya');
    remove('Namespace', undefined, 'y');
    await agrees('pod and namespace deleted (weaveworks/weave#3829)');

    // The watch breaks; changes happen while it is down; the server says 410 Gone: a relist brings them.
    api.goneWatches = 3;
    put(nsJson('y', { team: 'y' }), false);
    put(podJson('y', 'yb', '10.32.0.3', { app: 'a' }), false);
    remove('NetworkPolicy', 'x', 'egress', false);
    api.dropWatches();
    await agrees('relisted after 410 Gone');
    assert.match(tables.tables.get('/run/netns/cni-xa') ?? '', /10\.32\.0\.3 \. tcp \. 8080/);
    assert.ok(api.requests.filter((r) => r === 'GET /api/v1/pods').length >= 2, `pods were listed again: ${api.requests.join(', ')}`);
  } finally {
    await source.stop();
    await api.stop();
  }
});
