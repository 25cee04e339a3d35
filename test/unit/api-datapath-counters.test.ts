// The datapath counters in `weave report` (Router.Datapath) and /metrics
// (weave_datapath_packets_total, weave_datapath_drops_total).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { datapathMetricFamilies, formatMetricFamilies, routerMetricFamilies } from '../../controlplane/api/metrics.js';
import { routerReport } from '../../controlplane/api/report.js';
import { toJsonText } from '../../controlplane/api/json-text.js';
import type { DatapathCounters, RouterStatus } from '../../controlplane/api/status-model.js';

const COUNTERS: DatapathCounters = { kind: 'bpf', kernelForwarded: 18446744073709551615n, userspace: 12n, drops: { runt: 0n, no_route: 3n } };

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

test('/metrics: packets by path and drops by reason', () => {
  const text = formatMetricFamilies(routerMetricFamilies(status(COUNTERS)));
  assert.match(text, /^# TYPE weave_datapath_packets_total counter$/m);
  assert.match(text, /^weave_datapath_packets_total\{path="kernel"\} 18446744073709551615$/m);
  assert.match(text, /^weave_datapath_packets_total\{path="userspace"\} 12$/m);
  assert.match(text, /^weave_datapath_drops_total\{reason="no_route"\} 3$/m);
  assert.match(text, /^weave_datapath_drops_total\{reason="runt"\} 0$/m);
  assert.deepEqual(datapathMetricFamilies(undefined), []);
  assert.doesNotMatch(formatMetricFamilies(routerMetricFamilies(status())), /weave_datapath_/);
});
