// The overlay switch against fake datapaths (control-plane logic only; the
// real datapaths are exercised in test/netns).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OverlaySwitch, PREFERRED_OVERLAY_WAIT_MS, SILENT_PATH_AFTER_MS, hostOf, type SwitchConnection } from '../../controlplane/router/overlay-switch.js';
import type {
  Datapath, DatapathStats, ForwarderEvents, ForwarderParams, ForwarderStatus, ForwardingState, OverlayForwarder, OverlayName,
} from '../../controlplane/router/datapath.js';
import type { Handshake, PeerName } from '../../controlplane/mesh/types.js';
import { OpeningDatapath } from '../../controlplane/router/opening-datapath.js';
import { within } from '../support/within.js';

class FakeForwarder implements OverlayForwarder {
  received: Array<[number, number[]]> = [];
  stopped = false;
  state: ForwarderStatus['state'] = 'initiating';
  constructor(readonly params: ForwarderParams, readonly events: ForwarderEvents, private readonly mtu: number) {}
  handleControlMessage(subTag: number, payload: Uint8Array): void {
    this.received.push([subTag, [...payload]]);
  }
  status(): ForwarderStatus {
    return { state: this.state, encrypted: this.params.encrypt, mtu: this.mtu };
  }
  stop(): void {
    this.stopped = true;
  }
}

class FakeDatapath implements Datapath {
  readonly kind = 'sleeve' as const;
  forwarders: FakeForwarder[] = [];
  states: ForwardingState[] = [];
  refuse: string | undefined;
  constructor(readonly overlay: OverlayName, readonly mtu: number) {}
  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder {
    if (this.refuse) throw new Error(this.refuse);
    const f = new FakeForwarder(params, events, this.mtu);
    this.forwarders.push(f);
    return f;
  }
  get last(): FakeForwarder {
    const f = this.forwarders.at(-1);
    assert.ok(f, `${this.overlay} has a forwarder`);
    return f;
  }
  applyForwardingState(state: ForwardingState): void {
    this.states.push(state);
  }
  stats(): DatapathStats {
    return { kernelForwarded: 0n, userspace: 0n, drops: {} };
  }
  async close(): Promise<void> {}
}

const PEER: PeerName = 0xaabbccddeeffn;

interface FakeConn extends SwitchConnection {
  sent: number[][];
  closedWith?: Error;
}

function fakeConn(overlays: string[] | undefined, opts: { sessionKey?: Uint8Array; onClose?: (c: FakeConn) => void } = {}): FakeConn {
  const handshake: Handshake = {
    protocolVersion: 2, outbound: true, remoteAddr: '192.168.1.2:6783', localAddr: '192.168.1.1:40000',
    remote: { name: PEER, nickName: 'peer', uid: 1n, connId: 2n, shortId: 7, ...(overlays ? { overlays } : {}) },
    connUID: 0x1234n, ...(opts.sessionKey ? { sessionKey: opts.sessionKey } : {}),
  };
  let closed = false;
  const conn: FakeConn = {
    remoteName: PEER, remoteNickName: 'peer', outbound: true, remoteAddr: handshake.remoteAddr, localAddr: handshake.localAddr,
    connUID: handshake.connUID, handshake, sent: [],
    send(body: Uint8Array) { conn.sent.push([...body]); },
    close(reason?: Error) {
      if (closed) return;
      closed = true;
      conn.closedWith = reason;
      opts.onClose?.(conn);
    },
    get closed() { return closed; },
  };
  return conn;
}

/**
 * A switch over fake datapaths. `waitMs` is how long a new connection waits for a preferred overlay still
 * starting: 0 unless a test is about that wait, so the others see the choice spec §5.9 makes at once.
 */
function setup(names: OverlayName[], extra: { unavailable?: Map<OverlayName, string>; encrypt?: boolean; waitMs?: number } = {}) {
  const dps = names.map((n) => new FakeDatapath(n, n === 'fastdp' ? 1376 : 65535));
  const established: Array<[PeerName, boolean]> = [];
  const logs: string[] = [];
  let clock = 0;
  let selections = 0;
  let selectionWaiters: Array<() => void> = [];
  const sw = new OverlaySwitch({
    preferredOverlayWaitMs: extra.waitMs ?? 0,
    datapaths: dps,
    mesh: { setConnectionEstablished: (n, e) => { established.push([n, e]); return true; } },
    encryptFor: () => extra.encrypt ?? false,
    remotePortFor: (o) => (o === 'fastdp' ? 6784 : 6783),
    ...(extra.unavailable ? { unavailable: extra.unavailable } : {}),
    onSelectionChanged: () => {
      selections++;
      const waiters = selectionWaiters;
      selectionWaiters = [];
      for (const w of waiters) w();
    },
    log: (m) => logs.push(m),
    now: () => clock,
  });
  const dp = (n: OverlayName): FakeDatapath => dps.find((d) => d.overlay === n)!;
  /** Resolves with the next selection change. */
  const nextSelection = (): Promise<void> => new Promise((resolve) => selectionWaiters.push(resolve));
  return { sw, dp, established, logs, advance: (ms: number) => { clock += ms; }, selections: () => selections, nextSelection };
}

test('a forwarder starts on every shared overlay with the connection parameters', () => {
  const { sw, dp } = setup(['fastdp', 'sleeve'], { encrypt: true });
  const key = new Uint8Array(32).fill(9);
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve'], { sessionKey: key }));
  const f = dp('fastdp').last.params;
  assert.equal(f.remoteIp, '192.168.1.2');
  assert.equal(f.localIp, '192.168.1.1');
  assert.equal(f.remotePort, 6784);
  assert.equal(f.remoteShortId, 7);
  assert.equal(f.connUID, 0x1234n);
  assert.equal(f.encrypt, true);
  assert.deepEqual(f.sessionKey, key);
  assert.equal(dp('sleeve').last.params.remotePort, 6783);
  assert.deepEqual(sw.overlayNames(), ['fastdp', 'sleeve']);
});

test('preference order: fastdp is chosen over sleeve once established, whatever order they establish in', () => {
  const { sw, dp, established } = setup(['fastdp', 'sleeve']);
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  assert.equal(sw.chosenOverlay(PEER), 'fastdp', 'with none established the first working one is selected');
  assert.deepEqual(established, []);
  dp('sleeve').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.deepEqual(established, [[PEER, true]], 'the connection is established by the first forwarder');
  assert.deepEqual(sw.status(PEER)?.inUse, { overlay: 'sleeve', mtu: 65535 });
  dp('fastdp').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  assert.deepEqual(sw.status(PEER)?.inUse, { overlay: 'fastdp', mtu: 1376 });
  assert.deepEqual(established, [[PEER, true]], 'reported once');
  assert.deepEqual(sw.neighbours(), [{ name: PEER, overlay: 'fastdp', remoteIp: '192.168.1.2' }]);
});

test('an unhealthy fastdp falls back to sleeve with the reason, and comes back when it recovers', () => {
  const { sw, dp, logs } = setup(['fastdp', 'sleeve']);
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  dp('fastdp').last.events.established();
  dp('sleeve').last.events.established();
  dp('fastdp').last.events.healthChanged(false, 'no heartbeat from peer for 60 s');
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.equal(sw.status(PEER)?.reason, 'fastdp: no heartbeat from peer for 60 s');
  assert.ok(logs.some((l) => /using sleeve \(fastdp: no heartbeat from peer for 60 s\)/.test(l)), logs.join('\n'));
  dp('fastdp').last.events.healthChanged(true);
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  assert.equal(sw.status(PEER)?.reason, undefined);
});

test('a fastdp that never gets acknowledged is reported as probably blocked', () => {
  const { sw, dp, advance } = setup(['fastdp', 'sleeve']);
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  dp('sleeve').last.events.established();
  assert.equal(sw.status(PEER)?.reason, 'fastdp: heartbeats not acknowledged yet');
  advance(SILENT_PATH_AFTER_MS + 1);
  const s = sw.status(PEER);
  assert.equal(s?.inUse?.overlay, 'sleeve');
  assert.equal(s?.reason, 'fastdp: no heartbeat acks from peer (UDP 6784 blocked?)');
  assert.deepEqual(s?.forwarders.map((f) => f.overlay), ['fastdp', 'sleeve']);
});

test('a failed forwarder is dropped; when all failed the control connection closes', () => {
  const { sw, dp } = setup(['fastdp', 'sleeve']);
  const conn = fakeConn(['fastdp', 'sleeve'], { onClose: (c) => sw.connectionRemoved(c) });
  sw.connectionAdded(conn);
  dp('fastdp').last.events.failed(new Error('VXLAN port in use'));
  assert.equal(dp('fastdp').last.stopped, true);
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.equal(sw.status(PEER)?.reason, 'fastdp: VXLAN port in use');
  assert.equal(conn.closed, false);
  dp('sleeve').last.events.failed(new Error('timed out waiting for UDP heartbeat'));
  assert.equal(conn.closed, true);
  assert.match(conn.closedWith?.message ?? '', /^no working forwarders to aa:bb:cc:dd:ee:ff\(peer\)/);
  assert.equal(sw.status(PEER), undefined, 'the connection is forgotten once removed');
  assert.equal(dp('sleeve').last.stopped, true);
});

test('a datapath that cannot create a forwarder is skipped with its reason', () => {
  const { sw, dp, logs } = setup(['fastdp', 'sleeve']);
  dp('fastdp').refuse = 'peer address is not IPv4';
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  dp('sleeve').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.equal(sw.status(PEER)?.reason, 'fastdp: peer address is not IPv4');
  assert.ok(logs.includes('Unable to use fastdp for connection to aa:bb:cc:dd:ee:ff(peer): peer address is not IPv4'));
});

test('tag-7 wrapping uses the index among shared overlays in our order', () => {
  const { sw, dp } = setup(['fastdp', 'sleeve']);
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  dp('sleeve').last.events.sendControlMessage(3, Uint8Array.of(0x05, 0x5c));
  dp('fastdp').last.events.sendControlMessage(0, new Uint8Array(0));
  assert.deepEqual(conn.sent, [[7, 1, 3, 0x05, 0x5c], [7, 0, 0]]);
  sw.message(conn, Uint8Array.of(7, 1, 1));
  sw.message(conn, Uint8Array.of(7, 0, 0));
  assert.deepEqual(dp('sleeve').last.received, [[1, []]]);
  assert.deepEqual(dp('fastdp').last.received, [[0, []]]);
});

test('with a sleeve-only peer, sleeve is index 0 and fastdp starts no forwarder', () => {
  const { sw, dp } = setup(['fastdp', 'sleeve']);
  const conn = fakeConn(['sleeve']);
  sw.connectionAdded(conn);
  assert.equal(dp('fastdp').forwarders.length, 0);
  dp('sleeve').last.events.sendControlMessage(1, new Uint8Array(0));
  assert.deepEqual(conn.sent, [[7, 0, 1]], 'verified form: ConnectionEstablished is 07 00 01');
  sw.message(conn, Uint8Array.of(7, 0, 2));
  assert.deepEqual(dp('sleeve').last.received, [[2, []]]);
  dp('sleeve').last.events.established();
  assert.equal(sw.status(PEER)?.reason, 'fastdp: not offered by peer');
});

test('out-of-range indices are never sent and are ignored on receipt', () => {
  const { sw, dp } = setup(['sleeve']);
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  sw.message(conn, Uint8Array.of(7, 1, 1));
  sw.message(conn, Uint8Array.of(7, 255, 1));
  assert.deepEqual(dp('sleeve').last.received, []);
  assert.throws(() => sw.message(conn, Uint8Array.of(7, 0)), /at least 3/);
  dp('sleeve').last.events.sendControlMessage(300, new Uint8Array(0));
  assert.deepEqual(conn.sent, [], 'a sub-tag that does not fit a byte is not sent');
});

test('compatibility mode: a peer without Overlays gets bare sleeve tags 1-3', () => {
  const { sw, dp } = setup(['fastdp', 'sleeve']);
  const conn = fakeConn(undefined);
  sw.connectionAdded(conn);
  assert.equal(dp('fastdp').forwarders.length, 0);
  const f = dp('sleeve').last;
  f.events.sendControlMessage(3, Uint8Array.of(0x05, 0xdc));
  f.events.sendControlMessage(1, new Uint8Array(0));
  assert.deepEqual(conn.sent, [[3, 0x05, 0xdc], [1]]);
  sw.message(conn, Uint8Array.of(2));
  sw.message(conn, Uint8Array.of(3, 0x05, 0xdc));
  sw.message(conn, Uint8Array.of(7, 0, 1));
  assert.deepEqual(f.received, [[2, []], [3, [0x05, 0xdc]], [1, []]]);
});

test('no overlay in common closes the connection and says which', () => {
  const { sw } = setup(['sleeve']);
  const conn = fakeConn(['awsvpc']);
  sw.connectionAdded(conn);
  assert.equal(conn.closed, true);
  assert.match(conn.closedWith?.message ?? '', /no overlay in common .*ours \[sleeve\], theirs \[awsvpc\]/);
});

test('status: overlay, encryption, mtu and the reason fastdp is not available on this host', () => {
  const { sw, dp } = setup(['sleeve'], { encrypt: true, unavailable: new Map([['fastdp', 'kernel has neither OVS nor BPF VXLAN support']]) });
  const conn = fakeConn(['fastdp', 'sleeve'], { sessionKey: new Uint8Array(32) });
  sw.connectionAdded(conn);
  dp('sleeve').last.events.established();
  assert.deepEqual(sw.status(PEER), {
    peer: PEER, inUse: { overlay: 'sleeve', mtu: 65535 }, encrypted: true,
    reason: 'fastdp: kernel has neither OVS nor BPF VXLAN support',
    forwarders: [{ overlay: 'sleeve', state: 'initiating' }],
  });
  assert.deepEqual([...sw.statuses().keys()], [PEER], 'statuses() is keyed by peer name');
});

test('events from a replaced connection are ignored', () => {
  const { sw, dp, established } = setup(['sleeve']);
  const first = fakeConn(['sleeve']);
  sw.connectionAdded(first);
  const stale = dp('sleeve').last;
  const second = fakeConn(['sleeve']);
  sw.connectionAdded(second);
  assert.equal(stale.stopped, true);
  stale.events.established();
  stale.events.sendControlMessage(1, new Uint8Array(0));
  assert.deepEqual(established, []);
  assert.deepEqual(second.sent, []);
  sw.connectionRemoved(first);
  assert.ok(sw.status(PEER), 'removing the old connection leaves the new one');
});

test('hostOf strips ports, brackets and IPv4-mapped prefixes', () => {
  assert.equal(hostOf('10.0.0.1:6783'), '10.0.0.1');
  assert.equal(hostOf('[fe80::1]:6783'), 'fe80::1');
  assert.equal(hostOf('::ffff:10.0.0.1:5000'), '10.0.0.1');
});

/** A fastdp still opening in front of the sleeve: the switch as the router builds it at startup. */
function setupOpening(waitMs = 0) {
  const fastdp = new FakeDatapath('fastdp', 1376);
  const sleeve = new FakeDatapath('sleeve', 65535);
  let open!: (dp: Datapath) => void;
  let fail!: (err: Error) => void;
  const opening = new OpeningDatapath('bpf', 'fastdp', 1376, new Promise<Datapath>((resolve, reject) => { open = resolve; fail = reject; }));
  const established: Array<[PeerName, boolean]> = [];
  const sw = new OverlaySwitch({
    preferredOverlayWaitMs: waitMs,
    datapaths: [opening, sleeve],
    mesh: { setConnectionEstablished: (n, e) => { established.push([n, e]); return true; } },
    encryptFor: () => false,
    remotePortFor: (o) => (o === 'fastdp' ? 6784 : 6783),
  });
  return { sw, fastdp, sleeve, opening, established, open: async () => { open(fastdp); await opening.ready; }, fail: async (m: string) => { fail(new Error(m)); await opening.ready; } };
}

test('fastdp still opening: advertised, the connection establishes on the sleeve, and moves to fastdp once it opens', async () => {
  const { sw, fastdp, sleeve, opening, established, open } = setupOpening();
  assert.deepEqual(sw.overlayNames(), ['fastdp', 'sleeve'], 'advertised from the start');
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  assert.equal(fastdp.forwarders.length, 0, 'no fastdp forwarder before the datapath opens');
  assert.deepEqual(sw.status(PEER)?.forwarders[0], { overlay: 'fastdp', state: 'initiating', reason: 'the bpf datapath is still loading' });
  sleeve.last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.deepEqual(established, [[PEER, true]], 'established on the sleeve while fastdp loads');
  // The peer's fastdp forwarder may talk first: kept for ours.
  sw.message(conn, Uint8Array.of(7, 0, 4, 1, 2));
  const state: ForwardingState = { ourName: 1n, ourShortId: 1, peers: [], neighbours: [], broadcast: [] };
  const applied = opening.applyForwardingState(state);
  assert.deepEqual(fastdp.states, []);
  await open();
  await applied;
  assert.deepEqual(fastdp.states, [state], 'the state given while opening is applied once open');
  assert.equal(fastdp.last.params.remotePort, 6784);
  assert.deepEqual(fastdp.last.received, [[4, [1, 2]]], 'queued control messages reach the new forwarder');
  fastdp.last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  assert.deepEqual(sw.status(PEER)?.inUse, { overlay: 'fastdp', mtu: 1376 });
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  assert.equal(fastdp.forwarders.length, 2, 'once open, forwarders are created at once');
  assert.equal(fastdp.forwarders[0]!.stopped, true, 'the replaced connection stopped its forwarder through the wrapper');
});

test('fastdp still opening: a state it fails to apply once open fails for the caller, so the forwarding updater tries again', async () => {
  const { fastdp, opening, open } = setupOpening();
  fastdp.applyForwardingState = () => { throw new Error('map full'); };
  const applied = opening.applyForwardingState({ ourName: 1n, ourShortId: 1, peers: [], neighbours: [], broadcast: [] });
  await open();
  await assert.rejects(Promise.resolve(applied), /map full/);
});

test('fastdp that cannot open: its forwarders fail with why, the connection stays on the sleeve', async () => {
  const { sw, sleeve, opening, established, fail } = setupOpening();
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  await fail('loading from-container.bpf.o: Operation not permitted');
  assert.equal(opening.failed, 'loading from-container.bpf.o: Operation not permitted');
  assert.equal(conn.closed, false);
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.equal(sw.status(PEER)?.reason, 'fastdp: cannot start: loading from-container.bpf.o: Operation not permitted');
  sleeve.last.events.established();
  assert.deepEqual(established, [[PEER, true]]);
  // Later connections: the fastdp slot fails at once.
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.match(sw.status(PEER)?.reason ?? '', /^fastdp: cannot start: loading from-container\.bpf\.o/);
  await opening.applyForwardingState({ ourName: 1n, ourShortId: 1, peers: [], neighbours: [], broadcast: [] });
});

test('a forwarder stopped while fastdp opens is never created', async () => {
  const { sw, fastdp, open } = setupOpening();
  const conn = fakeConn(['fastdp', 'sleeve'], { onClose: (c) => sw.connectionRemoved(c) });
  sw.connectionAdded(conn);
  sw.connectionRemoved(conn);
  await open();
  assert.equal(fastdp.forwarders.length, 0);
});

test('a new connection waits for its preferred overlay still starting: the sleeve established first carries nothing', () => {
  const { sw, dp, established, logs, selections } = setup(['fastdp', 'sleeve'], { waitMs: PREFERRED_OVERLAY_WAIT_MS });
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  const before = selections();
  dp('sleeve').last.events.established();
  assert.deepEqual(established, [[PEER, true]], 'established for the mesh at once');
  assert.equal(sw.chosenOverlay(PEER), 'fastdp', 'the data plane waits for fastdp');
  assert.equal(selections(), before, 'the forwarding state never names the sleeve');
  assert.equal(sw.status(PEER)?.reason, `fastdp: not acknowledged yet, waited for up to ${PREFERRED_OVERLAY_WAIT_MS} ms before sleeve`);
  assert.ok(logs.some((l) => new RegExp(`sleeve established; waiting up to ${PREFERRED_OVERLAY_WAIT_MS} ms for fastdp`).test(l)), logs.join('\n'));
  dp('fastdp').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  assert.equal(selections(), before);
  assert.equal(sw.status(PEER)?.reason, undefined);
  assert.deepEqual(established, [[PEER, true]]);
});

test('a preferred overlay that does not establish within the wait: the sleeve takes over when it ends, with the reason', async () => {
  const waitMs = 30;
  const { sw, dp, advance, nextSelection } = setup(['fastdp', 'sleeve'], { waitMs });
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  advance(10);
  dp('sleeve').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  const changed = nextSelection();
  advance(waitMs - 10);
  // The switch's wait timer is unref'd (it must not keep a router alive): within's ref'd one keeps the test waiting.
  await within(changed, 2000, 'the sleeve chosen when the wait ends');
  assert.equal(sw.chosenOverlay(PEER), 'sleeve');
  assert.equal(sw.status(PEER)?.reason, 'fastdp: heartbeats not acknowledged yet');
  dp('fastdp').last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp', 'and fastdp once it establishes, as ever');
});

test('only a new connection waits: a sleeve established after the wait, a failed or unhealthy fastdp are taken at once', () => {
  const late = setup(['fastdp', 'sleeve'], { waitMs: PREFERRED_OVERLAY_WAIT_MS });
  late.sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  late.advance(PREFERRED_OVERLAY_WAIT_MS);
  late.dp('sleeve').last.events.established();
  assert.equal(late.sw.chosenOverlay(PEER), 'sleeve');

  const failed = setup(['fastdp', 'sleeve'], { waitMs: PREFERRED_OVERLAY_WAIT_MS });
  failed.sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  failed.dp('sleeve').last.events.established();
  failed.dp('fastdp').last.events.failed(new Error('vxlan gone'));
  assert.equal(failed.sw.chosenOverlay(PEER), 'sleeve');

  const unhealthy = setup(['fastdp', 'sleeve'], { waitMs: PREFERRED_OVERLAY_WAIT_MS });
  unhealthy.sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  unhealthy.dp('sleeve').last.events.established();
  unhealthy.dp('fastdp').last.events.healthChanged(false, 'no heartbeat from peer');
  assert.equal(unhealthy.sw.chosenOverlay(PEER), 'sleeve');
});

test('a connection removed while waiting selects nothing more when its wait would have ended', async () => {
  const waitMs = 20;
  const { sw, dp, selections, advance } = setup(['fastdp', 'sleeve'], { waitMs });
  const conn = fakeConn(['fastdp', 'sleeve']);
  sw.connectionAdded(conn);
  dp('sleeve').last.events.established();
  sw.connectionRemoved(conn);
  const after = selections();
  advance(waitMs);
  // Nothing to wait on for something that must not happen: outlast the timer it would have used.
  await new Promise((r) => setTimeout(r, waitMs * 3));
  assert.equal(selections(), after);
  assert.equal(sw.chosenOverlay(PEER), undefined);
});

test('fastdp still opening at a router start: the connection establishes on the sleeve but waits for fastdp to carry it', async () => {
  const { sw, fastdp, sleeve, established, open } = setupOpening(PREFERRED_OVERLAY_WAIT_MS);
  sw.connectionAdded(fakeConn(['fastdp', 'sleeve']));
  sleeve.last.events.established();
  assert.deepEqual(established, [[PEER, true]]);
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  await open();
  fastdp.last.events.established();
  assert.equal(sw.chosenOverlay(PEER), 'fastdp');
  sw.stop();
});
