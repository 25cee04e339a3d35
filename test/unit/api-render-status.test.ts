// The status views against the exact samples of user-surface spec §2.1-2.4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderConnections, renderPeers, renderStatusSummary, renderTargets } from '../../controlplane/api/render-status.js';
import { goTimeString, type RouterStatus } from '../../controlplane/api/status-model.js';

function baseStatus(over: Partial<RouterStatus> = {}): RouterStatus {
  return {
    ready: true, protocolMinVersion: 1, protocolMaxVersion: 2, encryption: false, peerDiscovery: true,
    name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', port: 6783, peers: [], unicastRoutes: [], broadcastRoutes: [],
    connections: [], terminationCount: 0, targets: [], trustedSubnets: [], interface: 'datapath (via ODP)',
    overlayDiagnostics: {}, ...over,
  };
}

test('summary matches spec §2.1 layout (colon in column 16, sections, counts)', () => {
  const s = baseStatus({
    targets: ['10.2.2.1', 'host2'],
    connections: [
      { kind: 'connection', outbound: true, address: '10.2.2.1:6783', state: 'established', peerName: 'aa:00:00:00:00:02', peerNickName: 'host2', encrypted: false, overlay: { name: 'fastdp', mtu: 1376 } },
      { kind: 'target', address: 'host2:6783', state: 'failed', lastError: 'boom' },
    ],
    peers: [
      { name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', uid: 1n, shortId: 1, version: 2n, connections: [{ name: 'aa:00:00:00:00:02', nickName: 'host2', address: '10.2.2.1:6783', outbound: true, established: true }] },
      { name: 'aa:00:00:00:00:02', nickName: 'host2', uid: 2n, shortId: 2, version: 2n, connections: [{ name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', address: '10.2.2.2:40000', outbound: false, established: true }] },
    ],
  });
  const text = renderStatusSummary(s, '2.8.1 (version check update disabled)', [
    { service: 'ipam', fields: [['Status', 'ready'], ['Range', '10.32.0.0/12'], ['DefaultSubnet', '10.32.0.0/12']] },
  ]);
  assert.equal(
    text,
    [
      '        Version: 2.8.1 (version check update disabled)',
      '',
      '        Service: router',
      '       Protocol: weave 1..2',
      '           Name: 8a:3e:3e:3e:3e:3e(host1)',
      '     Encryption: disabled',
      '  PeerDiscovery: enabled',
      '        Targets: 2',
      '    Connections: 2 (1 established, 1 failed)',
      '          Peers: 2 (with 2 established connections)',
      ' TrustedSubnets: none',
      '',
      '        Service: ipam',
      '         Status: ready',
      '          Range: 10.32.0.0/12',
      '  DefaultSubnet: 10.32.0.0/12',
      '',
    ].join('\n'),
  );
});

test('summary: single protocol version, no connections, trusted subnets, encryption', () => {
  const s = baseStatus({
    protocolMinVersion: 2, encryption: true, peerDiscovery: false, trustedSubnets: ['10.0.0.0/8', '192.168.0.0/16'],
    peers: [{ name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', uid: 1n, shortId: 1, version: 1n, connections: [] }],
  });
  const lines = renderStatusSummary(s, 'v').split('\n');
  assert.equal(lines[3], '       Protocol: weave 2');
  assert.equal(lines[5], '     Encryption: enabled');
  assert.equal(lines[6], '  PeerDiscovery: disabled');
  assert.equal(lines[8], '    Connections: 0');
  assert.equal(lines[9], '          Peers: 1');
  assert.equal(lines[10], ' TrustedSubnets: 10.0.0.0/8, 192.168.0.0/16');
});

test('connections view reproduces the spec §2.3 samples byte for byte', () => {
  const plain = baseStatus({
    connections: [
      { kind: 'connection', outbound: true, address: '192.168.48.12:6783', state: 'established', peerName: '7e:21:4a:70:2f:45', peerNickName: 'host2', encrypted: false, overlay: { name: 'fastdp', mtu: 1376 } },
      { kind: 'connection', outbound: false, address: '192.168.48.13:60773', state: 'established', peerName: 'ee:38:33:a7:d9:71', peerNickName: 'host3', encrypted: false, overlay: { name: 'sleeve', mtu: 1438 } },
      { kind: 'connection', outbound: false, address: '192.168.48.15:51111', state: 'pending', peerName: '5e:11:22:33:44:55', peerNickName: 'host5', encrypted: false, overlay: { name: 'fastdp', mtu: 1376 } },
      { kind: 'target', address: '192.168.48.16:6783', state: 'retrying', lastError: 'dial tcp4 192.168.48.16:6783: connect: no route to host' },
      { kind: 'target', address: '10.2.2.1:6783', state: 'connecting' },
    ],
  });
  assert.equal(
    renderConnections(plain),
    '-> 192.168.48.12:6783    established fastdp 7e:21:4a:70:2f:45(host2) mtu=1376\n' +
      '<- 192.168.48.13:60773   established sleeve ee:38:33:a7:d9:71(host3) mtu=1438\n' +
      '<- 192.168.48.15:51111   pending     fastdp 5e:11:22:33:44:55(host5) mtu=1376\n' +
      '-> 192.168.48.16:6783    retrying    dial tcp4 192.168.48.16:6783: connect: no route to host \n' +
      '-> 10.2.2.1:6783         connecting   \n',
  );
  const withPassword = baseStatus({
    encryption: true,
    connections: [
      { kind: 'connection', outbound: true, address: '192.168.48.12:6783', state: 'established', peerName: '7e:21:4a:70:2f:45', peerNickName: 'host2', encrypted: true, overlay: { name: 'fastdp', mtu: 1376, encrypted: true } },
      { kind: 'connection', outbound: false, address: '192.168.48.14:41234', state: 'established', peerName: '8a:50:4c:23:11:ae', peerNickName: 'host4', encrypted: false, overlay: { name: 'sleeve', mtu: 1410 } },
    ],
  });
  assert.equal(
    renderConnections(withPassword),
    '-> 192.168.48.12:6783    established encrypted   fastdp 7e:21:4a:70:2f:45(host2) encrypted=truemtu=1376\n' +
      '<- 192.168.48.14:41234   established unencrypted sleeve 8a:50:4c:23:11:ae(host4) mtu=1410\n',
  );
});

test('failed targets carry the error and a Go-style retry time', () => {
  const at = new Date(Date.UTC(2021, 0, 25, 18, 55, 38, 246));
  const s = baseStatus({ connections: [{ kind: 'target', address: '192.168.48.17:6783', state: 'failed', lastError: 'dial tcp4 192.168.48.17:6783: connect: connection refused', retryAt: at }] });
  assert.match(
    renderConnections(s),
    /^-> 192\.168\.48\.17:6783    failed      dial tcp4 192\.168\.48\.17:6783: connect: connection refused, retry: 2021-01-25 18:55:38\.246000000 \+0000 UTC m=\+\d+\.\d{9} \n$/,
  );
  assert.equal(goTimeString(at, 64.101), '2021-01-25 18:55:38.246000000 +0000 UTC m=+64.101000000');
});

test('peers view matches spec §2.4', () => {
  const s = baseStatus({
    peers: [
      { name: 'ce:31:e0:06:45:1a', nickName: 'host1', uid: 1n, shortId: 1, version: 3n, connections: [
        { name: 'ea:2d:b2:e6:e4:f5', nickName: 'host2', address: '192.168.48.12:39634', outbound: false, established: true },
        { name: 'ee:38:33:a7:d9:71', nickName: 'host3', address: '192.168.48.13:49619', outbound: false, established: true },
      ] },
      { name: 'ea:2d:b2:e6:e4:f5', nickName: 'host2', uid: 2n, shortId: 2, version: 3n, connections: [
        { name: 'ce:31:e0:06:45:1a', nickName: 'host1', address: '192.168.48.11:6783', outbound: true, established: false },
      ] },
    ],
  });
  assert.equal(
    renderPeers(s),
    'ce:31:e0:06:45:1a(host1)\n' +
      '   <- 192.168.48.12:39634   ea:2d:b2:e6:e4:f5(host2)              established\n' +
      '   <- 192.168.48.13:49619   ee:38:33:a7:d9:71(host3)              established\n' +
      'ea:2d:b2:e6:e4:f5(host2)\n' +
      '   -> 192.168.48.11:6783    ce:31:e0:06:45:1a(host1)              pending\n',
  );
});

test('targets view: one per line as supplied, empty when none', () => {
  assert.equal(renderTargets(baseStatus({ targets: ['10.2.2.1', 'host2:6783'] })), '10.2.2.1\nhost2:6783\n');
  assert.equal(renderTargets(baseStatus()), '');
});

test('status connections says why a connection is not on its preferred overlay', () => {
  const s = baseStatus({
    connections: [
      {
        kind: 'connection', outbound: true, address: '192.168.48.12:6783', state: 'established',
        peerName: '7e:21:4a:70:2f:45', peerNickName: 'host2', encrypted: false, overlay: { name: 'sleeve', mtu: 1438 },
        fallbackReason: 'fastdp: no heartbeat acks from peer (UDP 6784 blocked?)',
      },
    ],
  });
  assert.equal(
    renderConnections(s),
    '-> 192.168.48.12:6783    established sleeve 7e:21:4a:70:2f:45(host2) mtu=1438 (fastdp: no heartbeat acks from peer (UDP 6784 blocked?))\n',
  );
});
