// The router status composed once from the mesh's status and the data
// plane's per-peer record (weaver/router-status.ts), and what the status text,
// report and /metrics then show of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderConnections, renderStatusSummary } from '../../controlplane/api/render-status.js';
import { routerMetricFamilies } from '../../controlplane/api/metrics.js';
import { buildReport, routerReport, type ReportServices } from '../../controlplane/api/report.js';
import { renderTemplate } from '../../controlplane/api/report-template.js';
import { toJsonText } from '../../controlplane/api/json-text.js';
import { once } from '../../controlplane/once.js';
import type { MeshStatus } from '../../controlplane/mesh/index.js';
import type { PeerName } from '../../controlplane/mesh/types.js';
import type { ConnectionOverlayStatus } from '../../controlplane/router/overlay-switch.js';
import { composeRouterStatus, type DataPlaneStatus, type StatusConfig } from '../../weaver/router-status.js';

const US: PeerName = 0x8a3e3e3e3e3en;
const FAST: PeerName = 0xaa0000000002n;
const SLOW: PeerName = 0xaa0000000003n;
/** Connected at the mesh level, but the switch holds no record of it (e.g. being removed). */
const GONE: PeerName = 0xaa0000000004n;

const config: StatusConfig = { minProtocolVersion: 1, password: 'secret', discovery: true, port: 6783, trustedSubnets: ['10.9.0.0/16'] };

function mesh(): MeshStatus {
  const conn = (peerName: PeerName, address: string, nick: string) => ({
    kind: 'connection' as const, outbound: true, address, state: 'established' as const, peerName, peerNickName: nick, encrypted: true,
  });
  return {
    name: US, nickName: 'host1', peers: [], unicastRoutes: [], broadcastRoutes: [],
    connections: [
      conn(FAST, '10.2.2.2:6783', 'host2'),
      conn(SLOW, '10.2.2.3:6783', 'host3'),
      conn(GONE, '10.2.2.4:6783', 'host4'),
      { kind: 'target', address: '10.2.2.9:6783', state: 'retrying', lastError: 'connection refused' },
    ],
    targets: ['10.2.2.9'], terminationCount: 4,
  };
}

function dataPlane(): DataPlaneStatus {
  const connections = new Map<PeerName, ConnectionOverlayStatus>([
    [FAST, { peer: FAST, inUse: { overlay: 'fastdp', mtu: 1376 }, encrypted: true, forwarders: [{ overlay: 'fastdp', state: 'established' }, { overlay: 'sleeve', state: 'established' }] }],
    [SLOW, {
      peer: SLOW, inUse: { overlay: 'sleeve', mtu: 1438 }, encrypted: false, reason: 'fastdp: not offered by peer',
      forwarders: [{ overlay: 'sleeve', state: 'established' }],
    }],
  ]);
  return {
    interface: 'vxlan-6784 (via eBPF tc programs)', overlays: ['fastdp', 'sleeve'], connections,
    datapath: { kind: 'bpf', kernelForwarded: 10n, userspace: 2n, drops: {}, overlayMtu: 1376 },
  };
}

test('without a data plane: the mesh view only, Interface none, no overlay on any connection', () => {
  const s = composeRouterStatus(mesh(), config, []);
  assert.equal(s.interface, 'none');
  assert.deepEqual(s.overlayDiagnostics, {});
  assert.equal(s.datapath, undefined);
  const lines = s.connections.filter((c) => c.kind === 'connection');
  assert.equal(lines.length, 3);
  for (const c of lines) {
    assert.equal(c.overlay, undefined);
    assert.equal(c.encrypted, true, 'the control connection\'s encryption stands when no data plane says otherwise');
  }
});

test('each connection line takes the overlay, encryption and reason of its own peer, joined by name', () => {
  const s = composeRouterStatus(mesh(), config, [{ address: '10.2.2.7:51000', error: 'password mismatch', at: 0 }], dataPlane());
  assert.deepEqual(s.connections, [
    {
      kind: 'connection', outbound: true, address: '10.2.2.2:6783', state: 'established', peerName: 'aa:00:00:00:00:02', peerNickName: 'host2',
      encrypted: true, overlay: { name: 'fastdp', mtu: 1376, encrypted: true },
    },
    {
      kind: 'connection', outbound: true, address: '10.2.2.3:6783', state: 'established', peerName: 'aa:00:00:00:00:03', peerNickName: 'host3',
      encrypted: false, overlay: { name: 'sleeve', mtu: 1438 }, fallbackReason: 'fastdp: not offered by peer',
    },
    {
      kind: 'connection', outbound: true, address: '10.2.2.4:6783', state: 'established', peerName: 'aa:00:00:00:00:04', peerNickName: 'host4',
      encrypted: true,
    },
    { kind: 'target', address: '10.2.2.9:6783', state: 'retrying', lastError: 'connection refused' },
    { kind: 'target', inbound: true, address: '10.2.2.7:51000', state: 'failed', lastError: 'password mismatch' },
  ]);
  assert.equal(s.interface, 'vxlan-6784 (via eBPF tc programs)');
  assert.deepEqual(s.datapath, { kind: 'bpf', kernelForwarded: 10n, userspace: 2n, drops: {}, overlayMtu: 1376 });
  assert.deepEqual(s.overlayDiagnostics, {
    overlays: ['fastdp', 'sleeve'],
    connections: {
      'aa:00:00:00:00:02': { overlay: 'fastdp', forwarders: [{ overlay: 'fastdp', state: 'established' }, { overlay: 'sleeve', state: 'established' }] },
      'aa:00:00:00:00:03': { overlay: 'sleeve', reason: 'fastdp: not offered by peer', forwarders: [{ overlay: 'sleeve', state: 'established' }] },
    },
  });
});

test('a connection with no forwarder selected yet shows none and why', () => {
  const dp = dataPlane();
  const pending = new Map(dp.connections);
  pending.set(FAST, { peer: FAST, encrypted: true, reason: 'fastdp: heartbeats not acknowledged yet', forwarders: [{ overlay: 'fastdp', state: 'initiating' }] });
  const s = composeRouterStatus(mesh(), config, [], { ...dp, connections: pending });
  const line = s.connections[0]!;
  assert.equal(line.kind === 'connection' && line.overlay, undefined);
  assert.match(renderConnections(s), /^-> 10\.2\.2\.2:6783\s+established encrypted {3}none {3}aa:00:00:00:00:02\(host2\)  \(fastdp: heartbeats not acknowledged yet\)\n/);
});

test('status text, report and /metrics all show the one composed record', () => {
  const s = composeRouterStatus(mesh(), config, [], dataPlane());
  const text = renderConnections(s).split('\n');
  assert.equal(text[0], '-> 10.2.2.2:6783         established encrypted   fastdp aa:00:00:00:00:02(host2) encrypted=truemtu=1376');
  assert.equal(text[1], '-> 10.2.2.3:6783         established unencrypted sleeve aa:00:00:00:00:03(host3) mtu=1438 (fastdp: not offered by peer)');
  assert.match(renderStatusSummary(s, '2.8.1'), /\n {4}Connections: 4 \(3 established, 1 retrying\)\n/);
  const report = routerReport(s) as { Connections: Array<{ Attrs: { name: string } | null }>; Interface: string };
  assert.deepEqual(report.Connections.slice(0, 3).map((c) => c.Attrs?.name ?? null), ['fastdp', 'sleeve', null]);
  assert.equal(report.Interface, s.interface);
  const samples = routerMetricFamilies(s).find((f) => f.name === 'weave_connections')!.samples;
  const count = (type: string, encryption: string): number | bigint | undefined =>
    samples.find((x) => x.labels?.type === type && x.labels.encryption === encryption && x.labels.state === 'established')?.value;
  assert.equal(count('fastdp', 'yes'), 1);
  assert.equal(count('sleeve', ''), 1);
  assert.equal(count('unknown', ''), 1, 'the connection the switch holds no record of has no type');
});

test('a report template reads only what it names: no peer lists, routes or service sections built for it; the JSON report has them all, in Go\'s order', () => {
  const reads = { peers: 0, connections: 0, unicast: 0, broadcast: 0, ipam: 0, dns: 0 };
  const m = mesh();
  const lazyMesh: MeshStatus = {
    ...m,
    get peers() {
      reads.peers++;
      return [{ name: FAST, nickName: 'host2', uid: 7n, shortId: 2, version: 3n, get connections() { reads.connections++; return []; } }];
    },
    get unicastRoutes() { reads.unicast++; return [{ dest: FAST, via: FAST }]; },
    get broadcastRoutes() { reads.broadcast++; return []; },
  };
  const services: ReportServices = {};
  // As weaver/main.ts gives them: getters, each section built once.
  Object.defineProperty(services, 'IPAM', { enumerable: true, get: once(() => { reads.ipam++; return { Range: '10.32.0.0/12' }; }) });
  Object.defineProperty(services, 'DNS', { enumerable: true, get: once(() => { reads.dns++; return { Domain: 'weave.local.' }; }) });
  const report = buildReport(composeRouterStatus(lazyMesh, config, [], dataPlane()), '2.8.1', services);
  assert.equal(renderTemplate('{{range .Router.Connections}}{{.State}} {{end}}', report), 'established established established retrying ');
  assert.deepEqual(reads, { peers: 0, connections: 0, unicast: 0, broadcast: 0, ipam: 0, dns: 0 });
  // The mesh bench's poll: the peers are listed, their connection lists are not built.
  assert.equal(renderTemplate('{{len .Router.Peers}}', report), '1');
  assert.deepEqual(reads, { peers: 1, connections: 0, unicast: 0, broadcast: 0, ipam: 0, dns: 0 });

  const json = JSON.parse(toJsonText(report)) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(json), ['Ready', 'Version', 'VersionCheck', 'Router', 'IPAM', 'DNS']);
  const routerKeys = Object.keys(json['Router']!);
  assert.deepEqual(routerKeys.slice(routerKeys.indexOf('Port'), routerKeys.indexOf('Port') + 5), ['Port', 'Peers', 'UnicastRoutes', 'BroadcastRoutes', 'Connections']);
  assert.deepEqual(json['Router']!['Peers'], [{ Name: 'aa:00:00:00:00:02', NickName: 'host2', UID: 7, ShortID: 2, Version: 3, Connections: [] }]);
  assert.deepEqual(json['IPAM'], { Range: '10.32.0.0/12' });
  // Each part built once, however often it is read.
  assert.equal(renderTemplate('{{len .Router.Peers}} {{len .Router.Peers}} {{len .Router.UnicastRoutes}}', report), '1 1 1');
  assert.deepEqual(reads, { peers: 1, connections: 1, unicast: 1, broadcast: 1, ipam: 1, dns: 1 });
});
