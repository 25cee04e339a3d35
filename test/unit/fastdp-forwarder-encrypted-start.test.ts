// An encrypted fastdp connection carries nothing until its outbound SA, policy
// and marking rules exist (spec §7.4 step 3): the overlay switch picks fastdp for
// a new connection at once, so the datapath asks the forwarder (outboundReady)
// before it tunnels a frame, and hears when that changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastdpForwarder, type ForwarderHost } from '../../dataplane/fastdp/forwarder.js';
import { FASTDP_CRYPTO_INIT_SA_REMOTE } from '../../dataplane/fastdp/heartbeat.js';
import type { FastdpIPsec } from '../../dataplane/ipsec/index.js';
import { IGNORED_EVENTS as EVENTS, forwarderParams, settle } from './fastdp-forwarder-support.js';

const PARAMS = forwarderParams();

interface Recorder {
  host: ForwarderHost;
  /** What the forwarder did, in order. */
  log: string[];
  /** Completes the outbound step (spec §7.4 step 3) the forwarder started. */
  finishOutbound(): void;
}

function recordingHost(ipsecAvailable = true): Recorder {
  const log: string[] = [];
  let finish: (() => void) | undefined;
  const ipsec = {
    initLocal: () => Promise.resolve(Buffer.alloc(8)),
    initRemote: () => new Promise<void>((resolve) => { log.push('outbound SA requested'); finish = resolve; }),
    teardown: () => Promise.resolve(),
  } as unknown as FastdpIPsec;
  const host: ForwarderHost = {
    mtu: 1413,
    ourShortId: () => 1,
    shortIdOf: () => 2,
    sendTunnelFrame: () => { log.push('heartbeat sent'); return Promise.resolve(); },
    forwarderStopped: () => undefined,
    outboundReady: () => log.push('datapath told: outbound ready'),
    warn: (m) => log.push(`warn ${m}`),
    ipsec: ipsecAvailable ? ipsec : undefined,
    ipsecUnavailableReason: ipsecAvailable ? undefined : 'no ESP in this kernel',
  };
  return { host, log, finishOutbound: () => { assert.ok(finish, 'the outbound step was started'); finish(); } };
}

/** The peer's CryptoInitSARemote arrives and our outbound step completes (spec §7.4 step 3). */
async function exchangeSAs(fwd: FastdpForwarder, r: Recorder): Promise<void> {
  fwd.handleControlMessage(FASTDP_CRYPTO_INIT_SA_REMOTE, new Uint8Array(8));
  await settle();
  r.finishOutbound();
  await settle();
}

/** An encrypted forwarder on `r`'s host, through its SA exchange. */
async function keyedForwarder(r: Recorder): Promise<FastdpForwarder> {
  const fwd = new FastdpForwarder(PARAMS, EVENTS, r.host);
  await settle();
  await exchangeSAs(fwd, r);
  return fwd;
}

test('an encrypted forwarder may carry frames only once its outbound SA and marking rules exist', async () => {
  const r = recordingHost();
  const fwd = new FastdpForwarder(PARAMS, EVENTS, r.host);
  await settle();
  assert.equal(fwd.outboundReady, false, 'not before the SA exchange');
  fwd.handleControlMessage(FASTDP_CRYPTO_INIT_SA_REMOTE, new Uint8Array(8));
  await settle();
  assert.equal(fwd.outboundReady, false, 'not while the outbound SA is being installed');
  assert.deepEqual(r.log, ['outbound SA requested'], 'nothing was sent before the outbound SA');
  r.finishOutbound();
  await settle();
  assert.equal(fwd.outboundReady, true);
  // The datapath hears first, then the first heartbeat goes out (spec §6.4 step 2).
  assert.deepEqual(r.log, ['outbound SA requested', 'datapath told: outbound ready', 'heartbeat sent']);
  fwd.stop();
  assert.equal(fwd.outboundReady, false, 'a stopped forwarder carries nothing');
});

test('a peer that re-keys does not announce the forwarder ready again', async () => {
  const r = recordingHost();
  const fwd = await keyedForwarder(r);
  await exchangeSAs(fwd, r);
  assert.equal(r.log.filter((l) => l === 'datapath told: outbound ready').length, 1, r.log.join('\n'));
  assert.equal(fwd.outboundReady, true);
  fwd.stop();
});

test('a plain forwarder may carry frames at once; one that cannot encrypt never may', async () => {
  const plain = new FastdpForwarder({ ...PARAMS, encrypt: false }, EVENTS, recordingHost().host);
  assert.equal(plain.outboundReady, true);
  plain.stop();
  const r = recordingHost(false);
  const noEsp = new FastdpForwarder(PARAMS, EVENTS, r.host);
  await settle();
  assert.equal(noEsp.outboundReady, false, 'without kernel ESP the connection stays on encrypted sleeve');
  assert.ok(!r.log.includes('heartbeat sent'));
});

test('an encrypted forwarder ignores heartbeats from an address its SAs do not cover; a plain one follows them', async () => {
  const r = recordingHost();
  const fwd = await keyedForwarder(r);
  fwd.heartbeatReceived('198.51.100.7', 14 + 1413);
  fwd.heartbeatReceived('198.51.100.7', 14 + 1413);
  assert.equal(fwd.tunnel.remoteIp, '192.0.2.2', 'frames keep going where the SAs and marking rules are');
  assert.equal(fwd.hearsRemote, false, 'a heartbeat from elsewhere did not come through the ESP');
  assert.deepEqual(r.log.filter((l) => l.startsWith('warn ')), ['warn fastdp: ignoring heartbeats for the encrypted connection to 192.0.2.2 that arrive from 198.51.100.7'], 'warned once');
  fwd.heartbeatReceived('192.0.2.2', 14 + 1413);
  assert.equal(fwd.hearsRemote, true);
  fwd.stop();

  const plain = new FastdpForwarder({ ...PARAMS, encrypt: false }, EVENTS, recordingHost().host);
  plain.heartbeatReceived('198.51.100.7', 14 + 1450);
  assert.equal(plain.tunnel.remoteIp, '198.51.100.7', 'a plain connection follows its peer\'s address');
  plain.stop();
});
