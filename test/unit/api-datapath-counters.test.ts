// The datapath counters in `weave report` (Router.Datapath) and /metrics
// (weave_datapath_packets_total, weave_datapath_drops_total).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { datapathMetricFamilies, MetricsRegistry, routerMetricFamilies } from '../../controlplane/api/metrics.js';
import { routerReport } from '../../controlplane/api/report.js';
import { toJsonText } from '../../controlplane/api/json-text.js';
import type { DatapathCounters, RouterStatus } from '../../controlplane/api/status-model.js';

const COUNTERS: DatapathCounters = { kind: 'bpf', kernelForwarded: 18446744073709551615n, userspace: 12n, drops: { runt: 0n, no_route: 3n }, flows: 7 };

function status(datapath?: DatapathCounters): RouterStatus {
  return {
    ready: true, protocolMinVersion: 1, protocolMaxVersion: 2, encryption: false, peerDiscovery: true,
    name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', port: 6783, peers: [], unicastRoutes: [], broadcastRoutes: [],
    connections: [], terminationCount: 0, targets: [], trustedSubnets: [], interface: 'vxlan-6784 (via eBPF tc programs)',
    overlayDiagnostics: {}, ...(datapath ? { datapath } : {}),
  };
}

test('weave report: Router.Datapath carries kind, kernel/userspace counts and drops as exact numbers', () => {
  const report = routerReport(status(COUNTERS));
  assert.deepEqual(report.Datapath, { Kind: 'bpf', KernelForwarded: 18446744073709551615n, Userspace: 12n, Drops: { runt: 0n, no_route: 3n } });
  const text = toJsonText(report);
  assert.match(text, /"KernelForwarded":18446744073709551615/);
  assert.match(text, /"Drops":\{"runt":0,"no_route":3\}/);
  assert.equal(routerReport(status()).Datapath, undefined, 'no data plane: no Datapath section');
});

test('/metrics: packets by path, drops by reason and the kernel\'s forwarding entries', async () => {
  const registry = new MetricsRegistry();
  const text = await registry.render(routerMetricFamilies(status(COUNTERS)));
  assert.match(text, /^# TYPE weave_datapath_packets_total counter$/m);
  // Prometheus keeps float64 samples: a u64 counter near its end arrives rounded, as from any client library.
  assert.equal(Number(/^weave_datapath_packets_total\{path="kernel"\} (\S+)$/m.exec(text)?.[1]), Number(18446744073709551615n));
  assert.match(text, /^weave_datapath_packets_total\{path="userspace"\} 12$/m);
  assert.match(text, /^weave_datapath_drops_total\{reason="no_route"\} 3$/m);
  assert.match(text, /^weave_datapath_drops_total\{reason="runt"\} 0$/m);
  assert.match(text, /^# HELP weave_flows Number of FastDP flows\.\n# TYPE weave_flows gauge\nweave_flows 7$/m);
  assert.deepEqual(datapathMetricFamilies(undefined), []);
  const sleeveOnly = await registry.render(routerMetricFamilies(status({ ...COUNTERS, kind: 'sleeve', flows: undefined })));
  assert.doesNotMatch(sleeveOnly, /weave_flows/, 'no kernel datapath: no weave_flows, as Weave without fastdp');
  const none = await registry.render(routerMetricFamilies(status()));
  assert.doesNotMatch(none, /weave_datapath_|weave_flows/, 'families of a datapath that went away leave the output');
});
