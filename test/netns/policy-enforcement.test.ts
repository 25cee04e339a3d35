// Network policy on the real kernel, with real routers: h1 and h2 on the eBPF
// fast datapath, h3 sleeve only (--no-fastdp), weave-npc on every host reading
// the same NetworkPolicy files. Five pods in namespaces x, y, z and an address
// outside the overlay (two addresses of a container `ext` that is no pod).
// For each case the full reachability matrix — every source to every other
// address, TCP 80 and 8080, UDP 53 and 81 — must equal the matrix the direct
// evaluation of the semantics (controlplane/policy/reference.ts) gives, and a
// change must take effect within POLICY_BOUND_MS of the file being written.
// Traffic between xa and xb stays on h1 (bpf redirect between local veths),
// from h2 arrives over fastdp (VXLAN, redirected into the container), from h3
// over the sleeve: all of it is subject to policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAddress } from '../../controlplane/ipam/addr.js';
import { buildClusterState, NETNS_ANNOTATION } from '../../controlplane/policy/cluster.js';
import { flowAllowed } from '../../controlplane/policy/reference.js';
import type { ContainerPort, Labels, Namespace, NetworkPolicy, Pod } from '../../controlplane/policy/types.js';
import { bpfPinDir, withBpfWeaveBed } from './lib/bpf-bed.js';
import { askProbeAgent } from './lib/probe-agent-client.js';
import {
  connectionsMatch, mustExec, mustWeave, pollUntil, type Container, type Host, type SpawnedProcess, type Testbed, type WeaveOptions,
} from './lib/index.js';

const PROBE = fileURLToPath(new URL('./lib/policy-probe.js', import.meta.url));
const NPC = fileURLToPath(new URL('../../../bin/weave-npc', import.meta.url));
const TCP_PORTS = [80, 8080];
const UDP_PORTS = [53, 81];
/** How long a user may wait for a policy change to hold, from the file written to every flow of the matrix. */
const POLICY_BOUND_MS = 5_000;
/** How long weave-npc may take from its start to its first full sync. */
const RESTART_BOUND_MS = 15_000;
/** Per-probe wait: a dropped SYN or datagram shows as no answer within this. */
const PROBE_TIMEOUT_MS = 1000;
const EXT = ['192.168.77.7', '192.168.77.100'];
const HOST_EXPOSE = '10.32.3.254';

interface PodSpec { name: string; ns: string; labels: Labels; host: number; ip: string; ports: ContainerPort[] }

const PODS: PodSpec[] = [
  { name: 'xa', ns: 'x', labels: { app: 'a' }, host: 1, ip: '10.32.1.1', ports: [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] },
  { name: 'xb', ns: 'x', labels: { app: 'b' }, host: 1, ip: '10.32.1.2', ports: [] },
  { name: 'xc', ns: 'x', labels: { app: 'c' }, host: 2, ip: '10.32.1.3', ports: [{ name: 'http', containerPort: 80 }] },
  { name: 'ya', ns: 'y', labels: { app: 'a' }, host: 2, ip: '10.32.1.4', ports: [{ name: 'http', containerPort: 8080 }] },
  { name: 'za', ns: 'z', labels: { app: 'a' }, host: 3, ip: '10.32.1.5', ports: [] },
];
const NAMESPACES: Namespace[] = ['x', 'y', 'z'].map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels: { team: n } } }));

function np(ns: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec };
}

// The e2e suite's cases, as policies.
const DENY_INGRESS_X = np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
const A_FROM = np('x', 'a-from', {
  podSelector: { matchLabels: { app: 'a' } },
  ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }, { namespaceSelector: { matchLabels: { team: 'y' } }, podSelector: { matchLabels: { app: 'a' } } }] }],
});
const DENY_EGRESS_Y = np('y', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] });
const C_PORTS = np('x', 'c-ports', {
  podSelector: { matchLabels: { app: 'c' } },
  ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 'http' }, { protocol: 'UDP', port: 50, endPort: 60 }] }],
});
const A_EGRESS = np('x', 'a-egress', {
  podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Egress'],
  egress: [
    { ports: [{ protocol: 'UDP', port: 53 }] },
    { to: [{ ipBlock: { cidr: '192.168.77.0/24', except: ['192.168.77.0/28'] } }] },
    { to: [{ namespaceSelector: { matchLabels: { team: 'y' } } }], ports: [{ port: 'http' }] },
  ],
});

interface Bed {
  bed: Testbed;
  pods: Map<string, Container>;
  ext: Container;
  npc: Map<Host, SpawnedProcess>;
  labels: Map<string, Labels>;
}

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

function policyDir(h: Host): string {
  return join(h.dir, 'policy');
}

function podObjects(b: Bed, h: Host): Pod[] {
  return PODS.map((p) => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: p.name, namespace: p.ns, labels: { ...(b.labels.get(p.name) ?? p.labels) },
      // Only this host's pods name a namespace: the others are peers to select, enforced elsewhere.
      ...(p.host === h.index ? { annotations: { [NETNS_ANNOTATION]: (b.pods.get(p.name) as Container).netnsPath } } : {}),
    },
    spec: { containers: [{ name: 'main', ports: p.ports }] },
    status: { phase: 'Running', podIP: p.ip },
  }));
}

/** Writes a file atomically (the controller never reads half of it). */
function writeAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

function writeCluster(b: Bed): void {
  for (const h of b.bed.hosts) writeAtomically(join(policyDir(h), '00-cluster.json'), JSON.stringify({ kind: 'List', items: [...NAMESPACES, ...podObjects(b, h)] }));
}

function writePolicies(b: Bed, policies: NetworkPolicy[]): void {
  for (const h of b.bed.hosts) writeAtomically(join(policyDir(h), '50-policies.json'), JSON.stringify({ kind: 'List', items: policies }));
}

function startNpc(b: Bed, h: Host): void {
  b.npc.set(h, h.spawn(process.execPath, [NPC, '--policy-dir', policyDir(h), '--metrics-addr', '127.0.0.1:6781', '--blocked-log-interval', '1']));
}

/** Waits for the controller's first (full) sync. */
async function npcStarted(b: Bed, h: Host): Promise<void> {
  const npc = b.npc.get(h) as SpawnedProcess;
  const ok = await pollUntil(() => /"reason":"start"/.test(npc.output()), 20_000, 50);
  assert.ok(ok, `weave-npc on ${h.label} synced at start:\n${npc.output()}`);
}

interface Probe { from: string; to: string; protocol: 'tcp' | 'udp'; port: number }

function allProbes(): Probe[] {
  const addresses = [...PODS.map((p) => p.ip), ...EXT];
  const sources = [...PODS.map((p) => p.name), 'ext'];
  const out: Probe[] = [];
  for (const from of sources) {
    const own = from === 'ext' ? EXT : [PODS.find((p) => p.name === from)?.ip as string];
    for (const to of addresses) {
      if (own.includes(to)) continue;
      for (const port of TCP_PORTS) out.push({ from, to, protocol: 'tcp', port });
      for (const port of UDP_PORTS) out.push({ from, to, protocol: 'udp', port });
    }
  }
  return out;
}

function sourceIp(from: string): string {
  return from === 'ext' ? (EXT[0] as string) : (PODS.find((p) => p.name === from)?.ip as string);
}

function expected(b: Bed, policies: NetworkPolicy[], probes: Probe[]): boolean[] {
  const pods = podObjects(b, b.bed.hosts[0] as Host);
  const state = buildClusterState(NAMESPACES, pods, policies);
  return probes.map((p) => flowAllowed(state, { src: parseAddress(sourceIp(p.from)), dst: parseAddress(p.to), protocol: p.protocol === 'tcp' ? 'TCP' : 'UDP', port: p.port }));
}

async function runProbes(b: Bed, probes: Probe[]): Promise<boolean[]> {
  const bySource = new Map<string, number[]>();
  probes.forEach((p, i) => bySource.set(p.from, [...(bySource.get(p.from) ?? []), i]));
  const results: boolean[] = new Array<boolean>(probes.length).fill(false);
  await Promise.all([...bySource].map(async ([from, indexes]) => {
    const targets = indexes.map((i) => {
      const { to, protocol, port } = probes[i] as Probe;
      return { to, protocol, port };
    });
    const got = await askProbeAgent(controlSocket(b, from), targets, PROBE_TIMEOUT_MS);
    indexes.forEach((idx, k) => (results[idx] = got[k] === true));
  }));
  return results;
}

function controlSocket(b: Bed, name: string): string {
  return join(b.bed.dir, `probe-${name}.sock`);
}

function describe(probes: Probe[], got: boolean[], want: boolean[]): string {
  return probes.flatMap((p, i) => (got[i] === want[i] ? [] : [`${p.from} -> ${p.to} ${p.protocol}/${p.port}: ${got[i] ? 'allowed' : 'blocked'}, want ${want[i] ? 'allowed' : 'blocked'}`])).join('\n');
}

/**
 * Polls the whole matrix until it equals what the semantics say for
 * `policies`; asserts that it did within POLICY_BOUND_MS of `since` and returns the time taken.
 */
async function matrixSettles(b: Bed, policies: NetworkPolicy[], what: string, since = Date.now(), bound = POLICY_BOUND_MS): Promise<number> {
  const probes = allProbes();
  const want = expected(b, policies, probes);
  let got: boolean[] = [];
  let took = 0;
  const history: string[] = [];
  const ok = await pollUntil(async () => {
    got = await runProbes(b, probes);
    took = Date.now() - since;
    const wrong = describe(probes, got, want);
    history.push(`${took} ms: ${wrong === '' ? 'match' : `${wrong.split('\n').length} differ, e.g. ${wrong.split('\n')[0]}`}`);
    return wrong === '';
  }, bound + 10_000, 50);
  assert.ok(ok, `${what}: reachability differs from the policy semantics:\n${describe(probes, got, want)}`);
  assert.ok(took <= bound, `${what}: the matrix took ${took} ms to match (bound ${bound} ms; syncs ${lastSyncs(b)}):\n${history.join('\n')}`);
  const allowed = want.filter((x) => x).length;
  process.stdout.write(`# policy ${what}: ${allowed}/${want.length} flows allowed, matched after ${took} ms; last syncs ${lastSyncs(b)}\n`);
  return took;
}

/** The last sync of each host's controller as it logged it (loaded tables, ms), for the record. */
function lastSyncs(b: Bed): string {
  return [...b.npc].map(([h, p]) => {
    const lines = p.output().split('\n').filter((l) => l.includes('"policy synced"'));
    const last = JSON.parse(lines[lines.length - 1] ?? '{}') as { loaded?: number; ms?: number; time?: number };
    return `${h.label}: ${last.loaded ?? '?'} tables in ${last.ms ?? '?'} ms`;
  }).join(', ');
}

async function apply(b: Bed, policies: NetworkPolicy[], what: string): Promise<number> {
  const since = Date.now();
  writePolicies(b, policies);
  return matrixSettles(b, policies, what, since);
}

async function hasTable(c: Container): Promise<boolean> {
  return (await c.exec('nft', ['list', 'table', 'inet', 'weave-npc'])).code === 0;
}

async function setUp(bed: Testbed): Promise<Bed> {
  const hosts = bed.hosts as [Host, Host, Host];
  for (const h of hosts) {
    const others = hosts.filter((o) => o !== h).map((o) => o.address);
    await mustWeave(h, ['launch', '--nickname', h.label, ...(h.index === 3 ? ['--no-fastdp'] : []), ...others], envFor(bed, h));
  }
  await connectionsMatch(hosts[0], /established fastdp \S+\(h2\)/);
  await connectionsMatch(hosts[0], /established sleeve \S+\(h3\)/);
  await connectionsMatch(hosts[1], /established sleeve \S+\(h3\)/);
  const b: Bed = { bed, pods: new Map(), ext: undefined as unknown as Container, npc: new Map(), labels: new Map() };
  const serve = (name: string, addresses: string[]): string => JSON.stringify({ tcp: TCP_PORTS, udp: UDP_PORTS, addresses, control: controlSocket(b, name) });
  const servers: SpawnedProcess[] = [];
  for (const p of PODS) {
    const h = hosts[p.host - 1] as Host;
    const c = await h.addContainer(p.name);
    await mustWeave(h, ['attach', `${p.ip}/12`, '--netns', c.netnsPath], envFor(bed, h));
    await c.exec('ip', ['route', 'add', '192.168.77.0/24', 'dev', 'ethwe']);
    b.pods.set(p.name, c);
    servers.push(c.spawn(process.execPath, [PROBE, 'serve', serve(p.name, [p.ip])]));
  }
  b.ext = await hosts[2].addContainer('ext');
  await mustWeave(hosts[2], ['attach', `${EXT[0]}/24`, '--netns', b.ext.netnsPath], envFor(bed, hosts[2]));
  await mustExec('ip', ['-n', b.ext.namespace, 'addr', 'add', `${EXT[1]}/24`, 'dev', 'ethwe']);
  await mustExec('ip', ['-n', b.ext.namespace, 'route', 'add', '10.32.0.0/12', 'dev', 'ethwe']);
  servers.push(b.ext.spawn(process.execPath, [PROBE, 'serve', serve('ext', EXT)]));
  const ready = await pollUntil(() => servers.every((s) => s.output().includes('ready')), 15_000, 50);
  assert.ok(ready, `probe servers listening: ${servers.map((s) => s.output()).join('\n')}`);
  // h1's own address on the overlay: its traffic to its pods is never blocked (kubelet probes).
  await mustWeave(hosts[0], ['expose', `${HOST_EXPOSE}/12`], envFor(bed, hosts[0]));
  for (const h of hosts) mkdirSync(policyDir(h), { recursive: true });
  writeCluster(b);
  writePolicies(b, []);
  for (const h of hosts) startNpc(b, h);
  for (const h of hosts) await npcStarted(b, h);
  return b;
}

test('NetworkPolicy enforced on the eBPF fast datapath, the sleeve and between local containers; changes within the bound; restart resyncs', async (t) => {
  await withBpfWeaveBed(3, envFor, async (bed) => {
    const b = await setUp(bed);
    const [h1] = bed.hosts as [Host, Host, Host];

    await t.test('no policy: every flow allowed, no table in any pod (weaveworks/weave#3761)', async () => {
      // The first matrix also waits for ARP and the overlay; it is not a policy change, so no bound.
      const ok = await pollUntil(async () => (await runProbes(b, allProbes())).every((x) => x), 30_000, 200);
      assert.ok(ok, 'every flow is allowed without policy');
      await matrixSettles(b, [], 'none');
      for (const [name, c] of b.pods) assert.equal(await hasTable(c), false, `${name}: no weave-npc table while no policy selects it`);
    });

    const ingress = [DENY_INGRESS_X, A_FROM, C_PORTS];
    await t.test('ingress: default deny, from a label, from a namespace and label, named port and port range', async () => {
      await apply(b, ingress, 'ingress');
      for (const name of ['xa', 'xb', 'xc']) assert.equal(await hasTable(b.pods.get(name) as Container), true, `${name} is isolated`);
      assert.equal(await hasTable(b.pods.get('ya') as Container), false, 'ya is not selected: no table');
      const fromHost = await mustExec('ip', ['netns', 'exec', h1.namespace, process.execPath, PROBE, 'probe', JSON.stringify([{ to: '10.32.1.1', protocol: 'tcp', port: 8080 }]), String(PROBE_TIMEOUT_MS * 3)]);
      assert.equal(fromHost.stdout.trim(), '[true]', `h1 itself (${HOST_EXPOSE}, weave expose) reaches its isolated pod xa`);
    });

    const both = [...ingress, A_EGRESS];
    await t.test('egress too: DNS allowed to anywhere (weaveworks/weave#3764), ipBlock with except, named port on the destination', async () => {
      await apply(b, both, 'ingress+egress');
      const [udp53, ext7, ext100] = await runProbes(b, [
        { from: 'xa', to: EXT[0] as string, protocol: 'udp', port: 53 },
        { from: 'xa', to: EXT[0] as string, protocol: 'tcp', port: 80 },
        { from: 'xa', to: EXT[1] as string, protocol: 'tcp', port: 80 },
      ]);
      assert.deepEqual([udp53, ext7, ext100], [true, false, true], 'xa: DNS anywhere; the except blocks .7; .100 is in the block');
    });

    await t.test('blocked connections are counted by protocol and port and logged with the isolating policies', async () => {
      const npc = b.npc.get(h1) as SpawnedProcess;
      await runProbes(b, [{ from: 'za', to: '10.32.1.1', protocol: 'tcp', port: 8080 }]);
      const metrics = await mustExec('ip', ['netns', 'exec', h1.namespace, process.execPath, '-e', "fetch('http://127.0.0.1:6781/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"]);
      const m = /^weavenpc_blocked_connections_total\{dport="8080",protocol="tcp"\} (\d+)$/m.exec(metrics.stdout);
      assert.ok(m && Number(m[1]) >= 1, `blocked TCP 8080 counted:\n${metrics.stdout}`);
      assert.match(metrics.stdout, /^weavenpc_policy_enforcement_errors 0$/m);
      const logged = await pollUntil(() => /blocked ingress connections of x\/xa \(isolated by x\/a-from, x\/deny-all\)/.test(npc.output()), 5_000, 100);
      assert.ok(logged, `the block is logged with the policies:\n${npc.output().slice(-2000)}`);
    });

    await t.test('a policy changed while a connection is open: new connections follow it at once, the open one (tracked) carries on', async () => {
      const hold = (b.pods.get('ya') as Container).spawn(process.execPath, [PROBE, 'hold', JSON.stringify({ to: '10.32.1.1', port: 8080 })]);
      const echoes = (): number => Number(/echo (\d+)\n(?!.*echo)/s.exec(hold.output())?.[1] ?? 0);
      assert.ok(await pollUntil(() => echoes() > 2, 10_000, 50), `ya -> xa:8080 connection open: ${hold.output()}`);
      const tighter = [DENY_INGRESS_X, np('x', 'a-from', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }] }] }), C_PORTS, A_EGRESS];
      await apply(b, tighter, 'ya no longer allowed into xa');
      const at = echoes();
      assert.ok(await pollUntil(() => echoes() > at + 3, 5_000, 50), `the open connection still echoes after the change: ${hold.output().slice(-300)}`);
      await apply(b, [], 'all policies removed');
      assert.doesNotMatch(hold.output(), /closed/);
      hold.kill();
    });

    await t.test('a pod label changed: selection follows within the bound', async () => {
      await apply(b, both, 'ingress+egress again');
      b.labels.set('ya', { app: 'other' });
      const since = Date.now();
      writeCluster(b);
      await matrixSettles(b, both, 'ya relabelled', since);
      b.labels.delete('ya');
      const back = Date.now();
      writeCluster(b);
      await matrixSettles(b, both, 'ya label restored', back);
    });

    await t.test('default deny egress: nothing leaves y (not even to allowed x pods), replies to y still do', async () => {
      await apply(b, [...both, DENY_EGRESS_Y], 'ingress+egress+deny egress in y');
      assert.equal(await hasTable(b.pods.get('ya') as Container), true, 'ya is isolated for egress');
    });

    await t.test('restart: a table changed while weave-npc was down and policies edited meanwhile are resynced on start', async () => {
      const npc = b.npc.get(h1) as SpawnedProcess;
      npc.kill('SIGKILL');
      await npc.exited;
      // Drift behind its back: xb's table removed, xa's emptied; then the policies change.
      await mustExec('ip', ['netns', 'exec', (b.pods.get('xb') as Container).namespace, 'nft', 'delete', 'table', 'inet', 'weave-npc']);
      await mustExec('ip', ['netns', 'exec', (b.pods.get('xa') as Container).namespace, 'nft', 'flush', 'chain', 'inet', 'weave-npc', 'ingress']);
      const after = [DENY_INGRESS_X, np('x', 'a-from', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'z' } } }] }] })];
      writePolicies(b, after);
      const spawned = Date.now();
      startNpc(b, h1);
      // Node's start on a loaded machine is not the controller's doing: the bound
      // counts from its first sync; the process start has a looser bound of its own.
      await npcStarted(b, h1);
      const started = Date.now();
      assert.ok(started - spawned <= RESTART_BOUND_MS, `weave-npc restarted and synced within ${RESTART_BOUND_MS} ms (took ${started - spawned} ms)`);
      await matrixSettles(b, after, `after restart (process start ${started - spawned} ms)`, started);
    });
  });
});
