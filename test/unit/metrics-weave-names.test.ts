// /metrics against Weave 2.8's router metrics (user-surface spec §5.3): the
// output is parsed as Prometheus text format by an independent parser, and
// every weave_* family Weave had comes out with Weave's name, type, help and
// label names, so dashboards and alerts written for Weave keep working; the
// process_* and nodejs_* families come from prom-client; every query of the
// shipped Grafana dashboard names a metric and labels that /metrics serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApiServer } from '../../controlplane/api/server.js';
import type { RouterControl } from '../../controlplane/api/router-control.js';
import type { RouterStatus } from '../../controlplane/api/status-model.js';
import { dnsMetricFamilies } from '../../controlplane/dns/status.js';
import { assertDashboardServed, promqlSelectors, scrapeFamilies } from '../support/metrics-text.js';
import { ipamMetrics, parseCIDR, type AllocatorStatusData, type PeerName } from '../../controlplane/ipam/index.js';

/** Weave 2.8's router metrics (prog/weaver/metrics.go): name -> type, help, label names. */
const WEAVE_METRICS: Record<string, { type: string; help: string; labels: string[] }> = {
  weave_connections: { type: 'gauge', help: 'Number of peer-to-peer connections.', labels: ['encryption', 'state', 'type'] },
  weave_connection_terminations_total: { type: 'counter', help: 'Number of peer-to-peer connections terminated.', labels: [] },
  weave_ips: { type: 'gauge', help: 'Number of IP addresses.', labels: ['state'] },
  weave_max_ips: { type: 'gauge', help: 'Size of IP address space used by allocator.', labels: [] },
  weave_dns_entries: { type: 'gauge', help: 'Number of DNS entries.', labels: [] },
  weave_flows: { type: 'gauge', help: 'Number of FastDP flows.', labels: [] },
  weave_ipam_unreachable_count: { type: 'gauge', help: 'Number of unreachable peers.', labels: [] },
  weave_ipam_unreachable_percentage: { type: 'gauge', help: 'Percentage of IP addresses owned  by unreachable peers.', labels: [] },
  weave_ipam_pending_allocates: { type: 'gauge', help: 'Number of pending allocates.', labels: [] },
  weave_ipam_pending_claims: { type: 'gauge', help: 'Number of pending claims.', labels: [] },
};

const A: PeerName = 0x8a3e3e3e3e3en;

function router(): RouterControl {
  const status: RouterStatus = {
    ready: true, protocolMinVersion: 1, protocolMaxVersion: 2, encryption: true, peerDiscovery: true,
    name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', port: 6783,
    peers: [], unicastRoutes: [], broadcastRoutes: [],
    connections: [
      { kind: 'connection', outbound: true, address: '10.0.0.2:6783', state: 'established', peerName: 'aa:00:00:00:00:02', peerNickName: 'h2', encrypted: true, overlay: { name: 'fastdp', mtu: 1376, encrypted: true } },
      { kind: 'target', address: '10.0.0.3:6783', state: 'connecting' },
    ],
    terminationCount: 2, targets: [], trustedSubnets: [], interface: 'vxlan-6784 (via eBPF tc programs)', overlayDiagnostics: {},
    datapath: { kind: 'bpf', kernelForwarded: 40n, userspace: 2n, drops: { no_route: 1n }, flows: 6 },
  };
  return { port: () => 6783, connect: () => undefined, forget: () => undefined, status: () => status };
}

function ipamStatus(): AllocatorStatusData {
  const universe = parseCIDR('10.32.0.0/12');
  return {
    ourName: A, universe, defaultSubnet: universe, ring: undefined,
    ringRanges: [{ peer: A, range: { start: universe.addr, end: universe.addr + 2 ** 20 }, version: 0 }],
    nicknames: new Map(), isKnownPeer: () => true, activeIPs: 5, paxos: undefined, observerPriming: false, consensusRunning: false,
    pendingClaims: [], pendingAllocates: [],
  };
}

function apiServer(): ReturnType<typeof buildApiServer> {
  return buildApiServer({
    router: router(),
    version: '2.8.1',
    metrics: () => [...ipamMetrics(ipamStatus()), ...dnsMetricFamilies(0)],
  }, 'status');
}

test("/metrics parses as Prometheus text and carries Weave's weave_* families with Weave's names, types, help and labels", async () => {
  const res = await apiServer().inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const families = scrapeFamilies(res.body);
  for (const [name, want] of Object.entries(WEAVE_METRICS)) {
    const f = families.get(name);
    assert.ok(f, `${name} missing`);
    assert.deepEqual({ type: f.type, help: f.help }, { type: want.type.toUpperCase(), help: want.help }, name);
    assert.ok(f.series.length > 0, `${name} has samples`);
    for (const s of f.series) assert.deepEqual(Object.keys(s.labels).sort(), want.labels, `${name} label names`);
  }
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    families.get(name)?.series.find((s) => JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))?.value;
  assert.equal(value('weave_ips', { state: 'local-used' }), 5);
  assert.equal(value('weave_max_ips'), 2 ** 20);
  assert.equal(value('weave_connections', { encryption: 'yes', state: 'established', type: 'fastdp' }), 1);
  assert.equal(value('weave_connections', { encryption: '', state: 'connecting', type: 'unknown' }), 1);
  assert.equal(value('weave_connection_terminations_total'), 2);
  assert.equal(value('weave_flows'), 6);
  // What prom-client's default collectors export, as Weave's Go client exported process_*.
  for (const [name, type] of [
    ['process_cpu_seconds_total', 'COUNTER'], ['process_resident_memory_bytes', 'GAUGE'], ['process_start_time_seconds', 'GAUGE'],
    ['process_open_fds', 'GAUGE'], ['nodejs_heap_size_used_bytes', 'GAUGE'], ['nodejs_eventloop_lag_p99_seconds', 'GAUGE'],
  ] as const) {
    assert.equal(families.get(name)?.type, type, name);
  }
  assert.ok((value('process_resident_memory_bytes') ?? 0) > 1e6, 'resident memory is this process\'s, not a placeholder');
  assert.ok(Math.abs((value('process_start_time_seconds') ?? 0) - (Date.now() / 1000 - process.uptime())) < 5, 'start time is this process\'s');
});

test('two scrapes in flight at once each get whole, valid output', async () => {
  const app = apiServer();
  const bodies = await Promise.all([1, 2, 3].map(() => app.inject({ url: '/metrics' })));
  for (const b of bodies) assert.equal(scrapeFamilies(b.body).get('weave_connections')?.series.length, 4);
});

test('the Grafana dashboard: every query names metrics and labels /metrics serves', async () => {
  const res = await apiServer().inject({ url: '/metrics' });
  const checked = assertDashboardServed(scrapeFamilies(res.body));
  assert.ok(checked >= 15, `${checked} selectors checked`);
});

test('the dashboard check finds what a query names and catches names and labels /metrics lacks', () => {
  assert.deepEqual(promqlSelectors('sum by (instance, state) (rate(weave_connections{job=~"$job", state="x"}[$__rate_interval]))'), [
    { metric: 'weave_connections', labels: ['job', 'state', 'instance', 'state'] },
  ]);
  assert.deepEqual(promqlSelectors('max(weave_max_ips) - sum(weave_ips{state="local-used"}) > 1e3').map((s) => s.metric), ['weave_max_ips', 'weave_ips']);
  const families = scrapeFamilies('# HELP weave_ips x\n# TYPE weave_ips gauge\nweave_ips{state="a"} 1\n');
  const dir = mkdtempSync(join(tmpdir(), 'weave-dashboard-'));
  try {
    const write = (expr: string): string => {
      const path = join(dir, 'd.json');
      writeFileSync(path, JSON.stringify({ panels: [{ type: 'row', panels: [{ title: 'p', targets: [{ expr }] }] }] }));
      return path;
    };
    assert.equal(assertDashboardServed(families, write('sum by (state) (weave_ips)')), 1);
    assert.throws(() => assertDashboardServed(families, write('weave_flows')), /weave_flows .* is not in \/metrics/);
    assert.throws(() => assertDashboardServed(families, write('weave_ips{type="fastdp"}')), /has no label type/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the text-format parser rejects what Prometheus would', () => {
  for (const bad of ['# TYPE x gauge\nx{a=1} 1\n', '# TYPE x gauge\nx one\n', '# TYPE x gauge widget\nx 1\n', '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n']) {
    assert.throws(() => scrapeFamilies(bad), JSON.stringify(bad));
  }
});
