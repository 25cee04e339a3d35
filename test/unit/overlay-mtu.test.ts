// Mixed meshes: a host follows the lowest overlay MTU a fastdp neighbour
// announces through the length of its heartbeats (wire spec §6.1, §6.4), never
// raises it while running, and ignores announcements no IPv4 host could use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loweringMessage, MIN_OVERLAY_MTU, OverlayMtu } from '../../controlplane/router/overlay-mtu.js';
import { FastdpForwarder, type ForwarderHost } from '../../dataplane/fastdp/forwarder.js';
import { encodeHeartbeat } from '../../dataplane/fastdp/heartbeat.js';
import type { ForwarderParams } from '../../controlplane/router/datapath.js';

/** Weave 2.8's default fastdp MTU (wire spec §6.1). */
const WEAVE_DEFAULT_MTU = 1376;

test('a neighbour announcing less lowers the effective MTU; more, equal or a leaving neighbour never raise it', () => {
  const m = new OverlayMtu(1450);
  assert.equal(m.effective, 1450);
  assert.deepEqual(m.announced(1450), { action: 'keep' });
  assert.deepEqual(m.announced(8950), { action: 'keep' });
  assert.deepEqual(m.announced(WEAVE_DEFAULT_MTU), { action: 'lower', from: 1450, to: WEAVE_DEFAULT_MTU });
  assert.equal(m.effective, WEAVE_DEFAULT_MTU);
  // Announced again (another connection to the same kind of peer): nothing more to do.
  assert.deepEqual(m.announced(WEAVE_DEFAULT_MTU), { action: 'keep' });
  assert.deepEqual(m.announced(1450), { action: 'keep' });
  assert.equal(m.effective, WEAVE_DEFAULT_MTU);
  assert.deepEqual(m.announced(1300), { action: 'lower', from: WEAVE_DEFAULT_MTU, to: 1300 });
  assert.equal(m.ours, 1450);
});

test('announcements below the IPv4 minimum or not integers are ignored with a reason', () => {
  const m = new OverlayMtu(1450);
  for (const bad of [0, 10, MIN_OVERLAY_MTU - 1, 1000.5, Number.NaN]) {
    const d = m.announced(bad);
    assert.equal(d.action, 'ignore', `MTU ${bad}`);
    assert.match(d.action === 'ignore' ? d.reason : '', /below 576/);
  }
  assert.equal(m.effective, 1450);
  assert.deepEqual(m.announced(MIN_OVERLAY_MTU), { action: 'lower', from: 1450, to: MIN_OVERLAY_MTU });
});

test('the log line names the peer and both MTUs', () => {
  assert.equal(loweringMessage('aa:bb:cc:dd:ee:ff(h2)', 1450, 1376), 'peer aa:bb:cc:dd:ee:ff(h2) announces MTU 1376 < ours 1450: lowering overlay MTU to 1376');
});

test('a fastdp forwarder reports the MTU a heartbeat length announces, once per change', () => {
  const params: ForwarderParams = {
    remoteName: 0x0a0b0c0d0e0fn, remoteIp: '192.0.2.2', remotePort: 6784, localIp: '192.0.2.1', outbound: true, connUID: 0x1234n, encrypt: false,
  };
  let hostMtu = 1450;
  const host: ForwarderHost = {
    get mtu() {
      return hostMtu;
    },
    ourShortId: () => 1,
    shortIdOf: () => 2,
    sendTunnelFrame: () => Promise.resolve(),
    forwarderStopped: () => undefined,
    warn: () => undefined,
    ipsec: undefined,
    ipsecUnavailableReason: 'no password',
  };
  const announced: number[] = [];
  const fwd = new FastdpForwarder(params, {
    sendControlMessage: () => undefined,
    established: () => undefined,
    healthChanged: () => undefined,
    failed: () => undefined,
    remoteMtu: (mtu) => announced.push(mtu),
  }, host);
  try {
    // Weave 2.8's heartbeat: 1390 bytes (14 + 1376).
    const weaveHeartbeat = encodeHeartbeat(params.connUID, WEAVE_DEFAULT_MTU);
    assert.equal(weaveHeartbeat.length, 1390);
    fwd.heartbeatReceived(undefined, weaveHeartbeat.length);
    fwd.heartbeatReceived(undefined, weaveHeartbeat.length);
    fwd.heartbeatReceived(undefined);
    fwd.heartbeatReceived(undefined, 14 + 1300);
    assert.deepEqual(announced, [WEAVE_DEFAULT_MTU, 1300]);
    // The forwarder's own status follows the host's (lowered) MTU.
    hostMtu = WEAVE_DEFAULT_MTU;
    assert.equal(fwd.status().mtu, WEAVE_DEFAULT_MTU);
  } finally {
    fwd.stop();
  }
});
