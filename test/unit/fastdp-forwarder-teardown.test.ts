// An encrypted fastdp connection's IPsec state (SAs, policy, marking rules)
// goes only after the datapath has stopped sending to the peer through it:
// removed in the other order, a frame sent in between would leave in clear (spec §7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastdpForwarder, type ForwarderHost } from '../../dataplane/fastdp/forwarder.js';
import type { FastdpIPsec } from '../../dataplane/ipsec/index.js';
import { IGNORED_EVENTS as EVENTS, forwarderParams, settle } from './fastdp-forwarder-support.js';

const PARAMS = forwarderParams();

/** A datapath whose drop of the peer completes when the test says so; the log shows the order. */
function hostWithControlledDrain(drain: Promise<void>, log: string[]): ForwarderHost {
  const ipsec = {
    initLocal: () => Promise.resolve(Buffer.alloc(8)),
    initRemote: () => Promise.resolve(),
    teardown: (uid: bigint) => { log.push(`ipsec teardown ${uid.toString(16)}`); return Promise.resolve(); },
  } as unknown as FastdpIPsec;
  return {
    mtu: 1413,
    ourShortId: () => 1,
    shortIdOf: () => 2,
    sendTunnelFrame: () => Promise.resolve(),
    forwarderStopped: () => { log.push('datapath told'); return drain.then(() => { log.push('peer dropped'); }); },
    warn: (m) => log.push(`warn ${m}`),
    ipsec,
    ipsecUnavailableReason: undefined,
  };
}

test('an encrypted forwarder removes its IPsec state only after the datapath dropped the peer', async () => {
  const log: string[] = [];
  let release!: () => void;
  const drain = new Promise<void>((resolve) => { release = resolve; });
  const fwd = new FastdpForwarder(PARAMS, EVENTS, hostWithControlledDrain(drain, log));
  fwd.stop();
  await settle();
  assert.deepEqual(log, ['datapath told'], 'IPsec must stay while the datapath may still send');
  release();
  await settle();
  assert.deepEqual(log, ['datapath told', 'peer dropped', 'ipsec teardown 1234']);
});

test('when the datapath cannot drop the peer, the IPsec state stays and the failure is logged', async () => {
  const log: string[] = [];
  const fwd = new FastdpForwarder(PARAMS, EVENTS, hostWithControlledDrain(Promise.reject(new Error('map update failed')), log));
  fwd.stop();
  await settle();
  await settle();
  assert.ok(!log.some((l) => l.startsWith('ipsec teardown')), log.join('\n'));
  assert.ok(log.some((l) => /warn .*map update failed; keeping the IPsec state of connection 1234/.test(l)), log.join('\n'));
});
