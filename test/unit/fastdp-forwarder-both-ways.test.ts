// A fastdp forwarder is established only once the tunnel works both ways:
// our heartbeat acknowledged AND one of the peer's heartbeats received. Its
// ack goes out only after the datapath accepts the peer's tunnel frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastdpForwarder, type ForwarderHost } from '../../dataplane/fastdp/forwarder.js';
import { FASTDP_HEARTBEAT_ACK } from '../../dataplane/fastdp/heartbeat.js';
import type { ForwarderEvents } from '../../controlplane/router/datapath.js';
import { forwarderParams, settle } from './fastdp-forwarder-support.js';

const PARAMS = forwarderParams({ encrypt: false, sessionKey: undefined });

function recorder(log: string[]): ForwarderEvents {
  return {
    sendControlMessage: (subTag) => log.push(subTag === FASTDP_HEARTBEAT_ACK ? 'ack sent' : `control ${subTag}`),
    established: () => log.push('established'),
    healthChanged: (healthy) => log.push(healthy ? 'healthy' : 'unhealthy'),
    failed: (e) => log.push(`failed ${e.message}`),
  };
}

function host(log: string[], remoteHeard?: () => Promise<void>): ForwarderHost {
  return {
    mtu: 1450,
    ourShortId: () => 1,
    shortIdOf: () => 2,
    sendTunnelFrame: () => Promise.resolve(),
    forwarderStopped: () => undefined,
    warn: (m) => log.push(`warn ${m}`),
    ipsec: undefined,
    ipsecUnavailableReason: 'no password',
    ...(remoteHeard ? { remoteHeard } : {}),
  };
}

test('acknowledged but never heard from: stays initiating, and says which way fails', async () => {
  const log: string[] = [];
  const fwd = new FastdpForwarder(PARAMS, recorder(log), host(log));
  try {
    fwd.handleControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    await settle();
    assert.deepEqual(log, []);
    assert.equal(fwd.status().state, 'initiating');
    assert.match(fwd.status().reason ?? '', /acknowledges our heartbeats but none of its heartbeats reached us/);
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.deepEqual(log, ['ack sent', 'established']);
    assert.equal(fwd.status().state, 'established');
    assert.equal(fwd.status().reason, undefined);
  } finally {
    fwd.stop();
  }
});

test('heard from but not acknowledged: acks, stays initiating until the ack arrives', async () => {
  const log: string[] = [];
  const fwd = new FastdpForwarder(PARAMS, recorder(log), host(log));
  try {
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.deepEqual(log, ['ack sent']);
    assert.equal(fwd.status().state, 'initiating');
    assert.match(fwd.status().reason ?? '', /heartbeats reach us but it has not acknowledged ours/);
    fwd.handleControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    assert.deepEqual(log, ['ack sent', 'established']);
  } finally {
    fwd.stop();
  }
});

test('the ack waits for the datapath to accept the peer\'s frames', async () => {
  const log: string[] = [];
  let accept!: () => void;
  const accepted = new Promise<void>((resolve) => { accept = resolve; });
  const fwd = new FastdpForwarder(PARAMS, recorder(log), host(log, () => { log.push('datapath told'); return accepted; }));
  try {
    fwd.heartbeatReceived(undefined);
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.deepEqual(log, ['datapath told'], 'no ack before the peer\'s frames are accepted, and the datapath is told once');
    assert.equal(fwd.hearsRemote, true);
    accept();
    await settle();
    assert.deepEqual(log, ['datapath told', 'ack sent']);
  } finally {
    fwd.stop();
  }
});

test('verified both ways only after the heartbeat timeout: still reported established', async () => {
  const log: string[] = [];
  const fwd = new FastdpForwarder(PARAMS, recorder(log), host(log), { fastIntervalMs: 5, slowIntervalMs: 5, timeoutMs: 20 });
  try {
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(fwd.status().state, 'unhealthy');
    fwd.heartbeatReceived(undefined);
    await settle();
    fwd.handleControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    assert.deepEqual(log.filter((l) => l !== 'unhealthy' && l !== 'healthy'), ['ack sent', 'established']);
    assert.equal(fwd.status().state, 'established');
  } finally {
    fwd.stop();
  }
});

/** A forwarder whose tunnel frames (its heartbeats) are only counted. */
function countingForwarder(): { log: string[]; fwd: FastdpForwarder; sent: { frames: number } } {
  const log: string[] = [];
  const sent = { frames: 0 };
  const fwd = new FastdpForwarder(PARAMS, recorder(log), { ...host(log), sendTunnelFrame: () => { sent.frames++; return Promise.resolve(); } });
  return { log, fwd, sent };
}

test('heard from before acknowledged: our heartbeat goes out again at once, not at the next tick', async () => {
  const { log, fwd, sent } = countingForwarder();
  try {
    assert.equal(sent.frames, 1, 'the first heartbeat goes out as the forwarder starts');
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.equal(sent.frames, 2, 'the remote\'s forwarder runs now: ours again at once');
    fwd.handleControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    await settle();
    assert.deepEqual(log, ['ack sent', 'established']);
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.equal(sent.frames, 2, 'later heartbeats from the remote send nothing extra');
  } finally {
    fwd.stop();
  }
});

test('heard from after being acknowledged: no extra heartbeat', async () => {
  const { log, fwd, sent } = countingForwarder();
  try {
    fwd.handleControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    fwd.heartbeatReceived(undefined);
    await settle();
    assert.equal(sent.frames, 1);
    assert.deepEqual(log, ['ack sent', 'established']);
  } finally {
    fwd.stop();
  }
});
