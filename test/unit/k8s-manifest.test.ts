// The Kubernetes manifest (k8s/weave-daemonset-k8s.yaml): it is exactly the
// typed objects of k8s/manifests.ts rendered (so no field the API types lack can
// be in it), and every object passes the Kubernetes OpenAPI schema validation
// shipped by the npm package kubernetes-models. WEAVE_UPDATE_MANIFESTS=1
// rewrites the YAML from the objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { IMAGE, WEAVE_KUBE_OBJECTS } from '../../k8s/manifests.js';
import { DEFAULT_HTTP_ADDR } from '../../controlplane/well-known.js';
import { planKubeLaunch } from '../../k8s/launch-plan.js';
import { NPC_METRICS_PORT } from '../../controlplane/policy/controller.js';

const YAML_PATH = fileURLToPath(new URL('../../../k8s/weave-daemonset-k8s.yaml', import.meta.url));
const HEADER = '# Weave Net (TypeScript) as a Kubernetes add-on. Generated from k8s/manifests.ts: edit that, then\n'
  + '# WEAVE_UPDATE_MANIFESTS=1 node dist/test/run.js unit (filter k8s-manifest). Apply: kubectl apply -f weave-daemonset-k8s.yaml\n';

function render(): string {
  return HEADER + WEAVE_KUBE_OBJECTS.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/** kubernetes-models' class for an object: kubernetes-models/<group>/<version>/<Kind>, core group as v1. */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const mod = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<string, unknown>;
  const cls = mod[kind] as ModelClass | undefined;
  assert.ok(cls, `kubernetes-models has no ${apiVersion} ${kind}`);
  return cls;
}

test('the YAML is the typed objects rendered', () => {
  const want = render();
  if (process.env.WEAVE_UPDATE_MANIFESTS === '1') writeFileSync(YAML_PATH, want);
  assert.equal(readFileSync(YAML_PATH, 'utf8'), want, 'k8s/weave-daemonset-k8s.yaml is stale: regenerate it (see its header)');
});

test('every object in the YAML passes the Kubernetes OpenAPI schema (kubernetes-models)', async () => {
  const docs = parseAllDocuments(readFileSync(YAML_PATH, 'utf8')).map((d) => d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } });
  assert.deepEqual(docs.map((d) => d.kind), ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'DaemonSet']);
  for (const d of docs) {
    const Model = await modelFor(d.apiVersion, d.kind);
    assert.doesNotThrow(() => new Model(d).validate(), `${d.kind} ${d.metadata.name}`);
  }
  // The validator does reject what the API server would: a port that is not a number, a missing selector.
  const DaemonSet = await modelFor('apps/v1', 'DaemonSet');
  const ds = docs.at(-1) as unknown as { spec: { selector?: unknown; template: { spec: { containers: { readinessProbe: { httpGet: { port: unknown } } }[] } } } };
  const broken = structuredClone(ds);
  broken.spec.template.spec.containers[0]!.readinessProbe.httpGet.port = { six: 6784 };
  assert.throws(() => new DaemonSet(broken).validate(), /port/);
  const noSelector = structuredClone(ds);
  delete noSelector.spec.selector;
  assert.throws(() => new DaemonSet(noSelector).validate(), /selector/);
});

test('the DaemonSet agrees with the launcher: readiness on the API port, mounts have volumes, selector matches', () => {
  const ds = WEAVE_KUBE_OBJECTS.find((o) => o.kind === 'DaemonSet');
  assert.ok(ds && ds.kind === 'DaemonSet' && ds.spec);
  const pod = ds.spec.template.spec!;
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata?.labels);
  const weave = pod.containers.find((c) => c.name === 'weave')!;
  assert.equal(weave.readinessProbe?.httpGet?.port, Number(DEFAULT_HTTP_ADDR.split(':')[1]));
  assert.equal(weave.readinessProbe?.httpGet?.path, '/status');
  const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    assert.equal(c.image, IMAGE);
    for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${c.name} mounts ${m.name}, which is a volume`);
  }
  const password = weave.env?.find((e) => e.name === 'WEAVE_PASSWORD');
  assert.deepEqual(password?.valueFrom?.secretKeyRef, { name: 'weave-passwd', key: 'weave-passwd', optional: true }, 'the password comes from an optional Secret');
  assert.ok(pod.hostNetwork);
});

test('the DaemonSet runs weave-npc beside the router, which expects it', () => {
  const ds = WEAVE_KUBE_OBJECTS.find((o) => o.kind === 'DaemonSet');
  assert.ok(ds && ds.kind === 'DaemonSet' && ds.spec);
  const pod = ds.spec.template.spec!;
  assert.deepEqual(pod.containers.map((c) => c.name), ['weave', 'weave-npc'], "the add-on's two containers, as Weave's");
  const weave = pod.containers[0]!;
  const npc = pod.containers[1]!;
  // The launcher adds --expect-npc unless EXPECT_NPC turns it off: the manifest must not.
  const env = Object.fromEntries((weave.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  assert.ok(planKubeLaunch(env, [], 'node-1').args.includes('--expect-npc'), 'the router expects weave-npc');
  assert.deepEqual(npc.command?.slice(0, 2), ['/weave/bin/weave-npc', '--kube'], 'weave-npc reads the Kubernetes API');
  assert.ok(npc.command?.includes('--node-name=$(HOSTNAME)') && npc.env?.some((e) => e.name === 'HOSTNAME' && e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName'), 'and knows its node');
  assert.equal(npc.securityContext?.privileged, true, 'it enters pod namespaces and programs iptables');
  const mounts = new Map((npc.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
  assert.equal(mounts.get('netns'), '/var/run/netns', 'it sees the pod namespaces, where the locator looks');
  assert.equal(mounts.get('xtables-lock'), '/run/xtables.lock', 'it shares the iptables lock with kube-proxy and the router');
  assert.equal(npc.ports?.[0]?.containerPort, NPC_METRICS_PORT, "weave-npc's default metrics port");
  // What the controller watches, the role grants.
  const role = WEAVE_KUBE_OBJECTS.find((o) => o.kind === 'ClusterRole');
  assert.ok(role && role.kind === 'ClusterRole');
  const granted = new Set((role.rules ?? []).flatMap((r) => (r.resources ?? []).flatMap((res) => (r.apiGroups ?? []).map((g) => `${g}/${res}:${(r.verbs ?? []).join(',')}`))));
  for (const need of ['/pods', '/namespaces', 'networking.k8s.io/networkpolicies', '/services', 'discovery.k8s.io/endpointslices']) assert.ok(granted.has(`${need}:get,list,watch`), `the role lets weave-npc watch ${need}`);
});
