// Network policy at scale: 1000 pods in 20 namespaces, 200 policies, 200
// Services of 5 endpoints each, 50 of the pods on this host (each in a real
// network namespace with its table).
//  - time to apply a change (a pod relabelled; a policy added), from the
//    snapshot to every affected table loaded: median and p99;
//  - what a sync costs without the kernel (compile + render only);
//  - iperf3 through a table compiled from this cluster vs no table (ratio of
//    medians, rounds alternated in one run);
//  - the controller's memory holding this state.
//
//   node dist/bench/policy-bench.js [changes=20] [iperf-rounds=3] [iperf-seconds=3] [services=200]
import { execFileSync } from 'node:child_process';
import { PolicyController, type PolicySnapshot } from '../controlplane/policy/controller.js';
import { NETNS_ANNOTATION } from '../controlplane/policy/cluster.js';
import type { BlockedCounts, LoadResult, PolicyEnforcer } from '../controlplane/policy/enforcer.js';
import type { EndpointSlice, NetworkPolicy, Pod, Service } from '../controlplane/policy/types.js';
import { nftPolicyEnforcer, loadPolicyTable } from '../dataplane/host/policy-table.js';
import { iperfNodeIn, runIperfClient, startIperfServer } from '../test/netns/lib/iperf.js';

const changes = Number(process.argv[2] ?? 20);
const rounds = Number(process.argv[3] ?? 3);
const seconds = Number(process.argv[4] ?? 3);
const PODS = 1000;
const NAMESPACES = 20;
const POLICIES = 200;
const LOCAL = 50;
const SERVICES = Number(process.argv[5] ?? 200);
const ENDPOINTS_PER_SERVICE = 5;
const PREFIX = `npb${process.pid % 10000}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] as number;
}

function podAt(i: number, app = `app${i % 50}`): Pod {
  const ns = `ns${i % NAMESPACES}`;
  return {
    metadata: { name: `p${i}`, namespace: ns, labels: { app, tier: ['web', 'db', 'cache'][i % 3] as string }, ...(i < LOCAL ? { annotations: { [NETNS_ANNOTATION]: `/run/netns/${PREFIX}-${i}` } } : {}) },
    spec: { containers: [{ name: 'm', ports: [{ name: 'http', containerPort: 8000 + (i % 7) }] }] },
    status: { phase: 'Running', podIP: podIp(i) },
  };
}

function policyAt(j: number): NetworkPolicy {
  const ns = `ns${j % NAMESPACES}`;
  const kinds: NetworkPolicy['spec'][] = [
    { podSelector: { matchLabels: { app: `app${j % 50}` } }, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 'http' }] }] },
    { podSelector: { matchLabels: { tier: 'db' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: j % 2 ? 'prod' : 'dev' } }, podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [`app${j % 50}`, `app${(j + 1) % 50}`] }] } }] }] },
    { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }, { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.${100 + (j % 50)}.0.0/16`] } }], ports: [{ port: 443 }, { port: 9000, endPort: 9100 }] }] },
    { podSelector: { matchLabels: { app: `app${(j * 7) % 50}` } }, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 80 }, { protocol: 'UDP', port: 5000, endPort: 5100 }] }] },
  ];
  return { metadata: { name: `pol${j}`, namespace: ns }, spec: kinds[j % kinds.length] as NetworkPolicy['spec'] };
}

function podIp(i: number): string {
  return `10.${32 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

/** Service k: cluster IP 10.96.x.y, ports 80 -> 8000+k%7 and 53/UDP, endpoints the pods k, k+200, ... */
function serviceAt(k: number): { service: Service; slice: EndpointSlice } {
  const ns = `ns${k % NAMESPACES}`;
  const name = `svc${k}`;
  return {
    service: { metadata: { name, namespace: ns }, spec: { clusterIP: `10.96.${k >> 8}.${k & 255}`, ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'dns', protocol: 'UDP', port: 53 }] } },
    slice: {
      metadata: { name: `${name}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4',
      endpoints: Array.from({ length: ENDPOINTS_PER_SERVICE }, (_, e) => ({ addresses: [podIp((k + e * SERVICES) % PODS)] })),
      ports: [{ name: 'http', protocol: 'TCP', port: 8000 + (k % 7) }, { name: 'dns', protocol: 'UDP', port: 53 }],
    },
  };
}
const services = Array.from({ length: SERVICES }, (_, k) => serviceAt(k));

function snapshot(pods: Pod[], policies: NetworkPolicy[]): PolicySnapshot {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({ metadata: { name: `ns${i}`, labels: { env: i % 2 ? 'prod' : 'dev' } } }));
  return { namespaces, pods, policies, services: services.map((s) => s.service), endpointSlices: services.map((s) => s.slice) };
}

const nullEnforcer: PolicyEnforcer = {
  load: (): Promise<LoadResult> => Promise.resolve('loaded'),
  readBlocked: (): Promise<BlockedCounts | undefined> => Promise.resolve(undefined),
};
const quiet = { info: (): void => undefined, warn: (): void => undefined };

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: 'ignore' });
}

const pods = Array.from({ length: PODS }, (_, i) => podAt(i));
const policies = Array.from({ length: POLICIES }, (_, j) => policyAt(j));
for (let i = 0; i < LOCAL; i++) sh('ip', ['netns', 'add', `${PREFIX}-${i}`]);
try {
  // Compile + render only: what a sync costs the control plane.
  const compileOnly = new PolicyController({ enforcer: nullEnforcer, log: quiet });
  const heapBefore = process.memoryUsage().heapUsed;
  await compileOnly.update(snapshot(pods, policies));
  const cpu: number[] = [];
  for (let k = 0; k < changes; k++) {
    const p = [...pods];
    p[(k * 37) % PODS] = podAt((k * 37) % PODS, `app${(k * 11) % 50}`);
    const t = performance.now();
    await compileOnly.update(snapshot(p, policies));
    cpu.push(performance.now() - t);
  }
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

  // The same with the kernel: real tables in 50 namespaces.
  const controller = new PolicyController({ enforcer: nftPolicyEnforcer, log: quiet });
  let t0 = performance.now();
  const first = await controller.update(snapshot(pods, policies));
  const fullMs = performance.now() - t0;
  const applied: number[] = [];
  const loaded: number[] = [];
  let current = pods;
  for (let k = 0; k < changes; k++) {
    const p = [...current];
    p[(k * 37) % PODS] = podAt((k * 37) % PODS, `app${(k * 11) % 50}`);
    current = p;
    const extra = k % 2 === 0 ? [] : [policyAt(POLICIES + k)];
    t0 = performance.now();
    const s = await controller.update(snapshot(current, [...policies, ...extra]));
    applied.push(performance.now() - t0);
    loaded.push(s.loaded);
  }
  const rss = process.memoryUsage().rss / 2 ** 20;
  const rules = controller.loadedRules();
  const biggest = Math.max(...[...rules.values()].map((r) => (r.ingress?.ports.length ?? 0) + (r.ingress?.any.length ?? 0) + (r.egress?.ports.length ?? 0) + (r.egress?.any.length ?? 0)));
  process.stdout.write(`policy: ${PODS} pods, ${POLICIES} policies, ${SERVICES} services x ${ENDPOINTS_PER_SERVICE} endpoints, ${LOCAL} local tables (largest ${biggest} set elements)\n`);
  process.stdout.write(`policy: full sync ${fullMs.toFixed(0)} ms (${first.loaded} tables); a change: median ${median(applied).toFixed(0)} ms, p99 ${p99(applied).toFixed(0)} ms, ${median(loaded)} tables reloaded (median); compile+render only: median ${median(cpu).toFixed(1)} ms, p99 ${p99(cpu).toFixed(1)} ms\n`);
  process.stdout.write(`policy: controller memory: heap +${heapMb.toFixed(1)} MiB for the state, rss ${rss.toFixed(0)} MiB\n`);

  // Throughput: the server isolated by the largest table compiled here (the client allowed) vs no table.
  const [srv, cli] = [`${PREFIX}-srv`, `${PREFIX}-cli`];
  sh('ip', ['netns', 'add', srv]);
  sh('ip', ['netns', 'add', cli]);
  try {
    sh('ip', ['-n', srv, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cli]);
    sh('ip', ['-n', srv, 'addr', 'add', '10.32.0.1/24', 'dev', 'eth0']);
    sh('ip', ['-n', cli, 'addr', 'add', '10.32.0.2/24', 'dev', 'eth0']);
    for (const n of [srv, cli]) for (const d of ['lo', 'eth0']) sh('ip', ['-n', n, 'link', 'set', d, 'up']);
    const [bigNs] = [...rules].sort((a, b) => ((b[1].ingress?.ports.length ?? 0) - (a[1].ingress?.ports.length ?? 0)))[0] ?? [];
    const bigRules = bigNs ? rules.get(bigNs) : undefined;
    const { renderPolicyTable } = await import('../controlplane/policy/render.js');
    const withClient = bigRules && bigRules.ingress
      ? { ...bigRules, egress: undefined, ingress: { ...bigRules.ingress, ports: [...bigRules.ingress.ports.filter((e) => e.addresses.last < 0x0a200002 || e.addresses.first > 0x0a200002), { addresses: { first: 0x0a200002, last: 0x0a200002 }, protocol: 6, ports: { first: 5201, last: 5201 } }] } }
      : undefined;
    const table = withClient ? renderPolicyTable(withClient) : '';
    const bps: Record<'none' | 'policy', number[]> = { none: [], policy: [] };
    const server = await startIperfServer(iperfNodeIn(srv), { oneOff: false });
    try {
      for (let r = 0; r < rounds; r++) {
        for (const mode of ['none', 'policy'] as const) {
          await loadPolicyTable(`/run/netns/${srv}`, mode === 'policy' ? table : 'table inet weave-npc {}\ndelete table inet weave-npc\n');
          const res = await runIperfClient(iperfNodeIn(cli), ['-c', '10.32.0.1', '-t', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
          bps[mode].push(res.receivedBitsPerSecond);
        }
      }
    } finally {
      await server.stop();
    }
    const [n, p] = [median(bps.none), median(bps.policy)];
    process.stdout.write(`policy: iperf3 over veth, ${rounds}x${seconds} s: no table ${(n / 1e9).toFixed(2)} Gbit/s, isolated by a ${withClient?.ingress?.ports.length ?? 0}-element table ${(p / 1e9).toFixed(2)} Gbit/s, ratio ${(p / n).toFixed(2)}\n`);
  } finally {
    sh('ip', ['netns', 'del', srv]);
    sh('ip', ['netns', 'del', cli]);
  }
} finally {
  for (let i = 0; i < LOCAL; i++) sh('ip', ['netns', 'del', `${PREFIX}-${i}`]);
}
