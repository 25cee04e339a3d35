// /metrics against Weave 2.8's router metrics (user-surface spec §5.3): the
// output is parsed as Prometheus text format, and every weave_* family Weave
// had comes out with Weave's name, type, help and label names, so dashboards
// and alerts written for Weave keep working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApiServer } from '../../controlplane/api/server.js';
import type { RouterControl } from '../../controlplane/api/router-control.js';
import type { RouterStatus } from '../../controlplane/api/status-model.js';
import { dnsMetricFamilies } from '../../controlplane/dns/status.js';
import { ipamMetrics, parseCIDR, type AllocatorStatusData, type PeerName } from '../../controlplane/ipam/index.js';

interface Family { type?: string; help?: string; series: { labels: Record<string, string>; value: number }[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/;

/** Prometheus text format 0.0.4, strictly: HELP/TYPE before samples, valid names, label syntax and values, no duplicate series. */
function parsePrometheusText(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { series: [] }));
    return f;
  };
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      assert.match(meta[2], NAME, line);
      const f = family(meta[2]);
      assert.equal(f.series.length, 0, `${line}: metadata after samples`);
      if (meta[1] === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]), line);
        f.type = meta[3];
      } else {
        f.help = meta[3];
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    const f = families.get(m[1]) ?? families.get(base);
    assert.ok(f?.type, `${m[1]}: sample without # TYPE`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest !== '') {
      const l = LABEL.exec(rest);
      assert.ok(l, `bad labels in ${line}`);
      assert.ok(!(l[1] in labels), `duplicate label in ${line}`);
      labels[l[1]] = l[2];
      rest = rest.slice(l[0].length);
    }
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `bad value in ${line}`);
    const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `duplicate series ${line}`);
    seen.add(key);
    f.series.push({ labels, value });
  }
  return families;
}

/** Weave 2.8's router metrics (prog/weaver/metrics.go): name -> type, help, label names. */
const WEAVE_METRICS: Record<string, { type: string; help: string; labels: string[] }> = {
  weave_connections: { type: 'gauge', help: 'Number of peer-to-peer connections.', labels: ['encryption', 'state', 'type'] },
  weave_connection_terminations_total: { type: 'counter', help: 'Number of peer-to-peer connections terminated.', labels: [] },
  weave_ips: { type: 'gauge', help: 'Number of IP addresses.', labels: ['state'] },
  weave_max_ips: { type: 'gauge', help: 'Size of IP address space used by allocator.', labels: [] },
  weave_dns_entries: { type: 'gauge', help: 'Number of DNS entries.', labels: [] },
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
    terminationCount: 2, targets: [], trustedSubnets: [], interface: 'none', overlayDiagnostics: {},
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

test("/metrics parses as Prometheus text and carries Weave's weave_* families with Weave's names, types, help and labels", async () => {
  const app = buildApiServer({
    router: router(),
    version: '2.8.1',
    metrics: () => [...ipamMetrics(ipamStatus()), ...dnsMetricFamilies([], A)],
  }, 'status');
  const res = await app.inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  const families = parsePrometheusText(res.body);
  for (const [name, want] of Object.entries(WEAVE_METRICS)) {
    const f = families.get(name);
    assert.ok(f, `${name} missing`);
    assert.deepEqual({ type: f.type, help: f.help }, { type: want.type, help: want.help }, name);
    assert.ok(f.series.length > 0, `${name} has samples`);
    for (const s of f.series) assert.deepEqual(Object.keys(s.labels).sort(), want.labels, `${name} label names`);
  }
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    families.get(name)?.series.find((s) => JSON.stringify(s.labels) === JSON.stringify(Object.fromEntries(Object.entries(labels).sort())))?.value;
  assert.equal(value('weave_ips', { state: 'local-used' }), 5);
  assert.equal(value('weave_max_ips'), 2 ** 20);
  assert.equal(value('weave_connections', { encryption: 'yes', state: 'established', type: 'fastdp' }), 1);
  assert.equal(value('weave_connections', { encryption: '', state: 'connecting', type: 'unknown' }), 1);
  assert.equal(value('weave_connection_terminations_total'), 2);
  // The process_* families a Prometheus client library exports, as Weave's Go client did.
  for (const name of ['process_resident_memory_bytes', 'process_start_time_seconds']) assert.equal(families.get(name)?.type, 'gauge', name);
});

test('the parser in this test rejects what Prometheus would', () => {
  for (const bad of ['x 1\n', '# TYPE x gauge\nx{a="1",a="2"} 1\n', '# TYPE x gauge\nx{a=1} 1\n', '# TYPE x gauge\nx 1\nx 2\n', '# TYPE x gauge\nx one\n', '# TYPE x gauge\nx 1']) {
    assert.throws(() => parsePrometheusText(bad), assert.AssertionError, JSON.stringify(bad));
  }
});
