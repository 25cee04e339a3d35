// The sleeve's path MTU search (spec §5.6) against a simulated remote: the
// search settles on the largest size that gets through, whatever the delay of
// the answers that come back over the control connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifySpecialFrame } from '../../dataplane/sleeve/special-frames.js';
import { encodeSleeveControl } from '../../dataplane/sleeve/control-messages.js';
import { SleeveControlTag, MTU_VERIFY_ATTEMPTS, MTU_VERIFY_FIRST_TIMEOUT_MS, overheadDF } from '../../dataplane/sleeve/constants.js';
import { MTU_TEST_REANSWER_AFTER_MS, SleeveConnection, type ConnectionEvents } from '../../dataplane/sleeve/connection.js';

const UNDERLAY_MTU = 1500;
/** What EMSGSIZE on a 1500-byte underlay makes the first candidate (spec §5.6). */
const FIRST_CANDIDATE = UNDERLAY_MTU - overheadDF(false);
/** Weave's whole wait for one candidate: 10 ms doubling, 8 sends. */
const WEAVE_WAIT_PER_CANDIDATE_MS = MTU_VERIFY_FIRST_TIMEOUT_MS * (2 ** MTU_VERIFY_ATTEMPTS - 1);

/** An outbound connection to 192.0.2.2, its control messages to `sendControl`, its other events ignored. */
function outboundConnection(sendControl: ConnectionEvents['sendControl'] = () => undefined): SleeveConnection {
  const events: ConnectionEvents = {
    sendControl, established: () => undefined, failed: () => undefined, changed: () => undefined,
    drop: () => undefined, deliver: () => undefined, connectDF: () => undefined,
  };
  return new SleeveConnection({
    t: 'add', id: 1, remoteName: 0x0a0b0c0d0e0fn, remoteIp: '192.0.2.2', remotePort: 6783, outbound: true, connUID: 0x77n,
    dfFd: -1, counters: new SharedArrayBuffer(16),
  }, 0x010203040506n, events, 0);
}

interface Run {
  mtu: number;
  searching: boolean;
  /** Candidates in the order their tests went out, repeats included. */
  testsSent: number[];
  /** Simulated ms from the EMSGSIZE until the search ended. */
  settledAfterMs: number | undefined;
}

/**
 * A connection on a 1500-byte underlay whose remote answers every MTU test of
 * at most `getsThrough` (larger ones are lost on the way), its answer arriving
 * `answerDelayMs` after the test was sent; run for `forMs` of simulated time.
 */
function simulate(getsThrough: number, answerDelayMs: number, forMs: number): Run {
  const conn = outboundConnection();
  const answers: { at: number; mtu: number }[] = [];
  const testsSent: number[] = [];
  let settledAfterMs: number | undefined;
  let now = 0;
  conn.handleMsgSize(UNDERLAY_MTU, now);
  while (now <= forMs) {
    let next = conn.tick(now);
    for (const f of conn.dfQueue.splice(0)) {
      const special = classifySpecialFrame(f.frame);
      if (special?.kind !== 'mtu-test') continue;
      testsSent.push(special.mtu);
      if (special.mtu <= getsThrough) answers.push({ at: now + answerDelayMs, mtu: special.mtu });
    }
    for (const a of answers.filter((x) => x.at <= now)) {
      answers.splice(answers.indexOf(a), 1);
      conn.handleControl(SleeveControlTag.PMTUVerified, encodeSleeveControl({ type: 'PMTUVerified', mtu: a.mtu }).subarray(1), now);
    }
    if (settledAfterMs === undefined && conn.searchBounds === undefined) settledAfterMs = now;
    if (conn.searchBounds !== undefined) settledAfterMs = undefined;
    for (const a of answers) next = Math.min(next, a.at);
    now = Math.max(now + 1, Math.min(next, forMs + 1));
  }
  return { mtu: conn.mtu, searching: conn.searchBounds !== undefined, testsSent, settledAfterMs };
}

test('answered at once: the first candidate, one test, settled at once (as Weave)', () => {
  const r = simulate(FIRST_CANDIDATE, 1, 10_000);
  assert.equal(r.mtu, FIRST_CANDIDATE);
  assert.deepEqual(r.testsSent, [FIRST_CANDIDATE]);
  assert.equal(r.settledAfterMs, 1);
});

test('a black hole above 1000 bytes: the search settles on exactly 1000, within the time Weave takes', () => {
  const r = simulate(1000, 1, 60_000);
  assert.equal(r.mtu, 1000);
  assert.equal(r.searching, false);
  // Each size lost costs Weave's full wait; sizes that get through cost a round trip.
  const lost = new Set(r.testsSent.filter((m) => m > 1000)).size;
  assert.ok(r.settledAfterMs! <= lost * (WEAVE_WAIT_PER_CANDIDATE_MS + 1) + 20, `settled after ${r.settledAfterMs} ms, ${lost} sizes lost`);
});

test('answers slower than all the timeouts of a test (a loaded host): still the full MTU, not the 552 floor', () => {
  // 3 s: longer than the 2.55 s Weave waits for a candidate before calling it too big.
  const r = simulate(FIRST_CANDIDATE, 3_000, 120_000);
  assert.equal(r.mtu, FIRST_CANDIDATE, `settled on ${r.mtu} after tests of ${[...new Set(r.testsSent)].join(', ')}`);
  assert.equal(r.searching, false);
  assert.ok(r.settledAfterMs! <= 15_000, `settled after ${r.settledAfterMs} ms`);
});

test('answers a little slower than the first timeouts: once one is measured, a size that gets through is sent once', () => {
  const r = simulate(1200, 300, 120_000);
  assert.equal(r.mtu, 1200);
  assert.equal(r.searching, false);
  const sends = new Map<number, number>();
  for (const m of r.testsSent) sends.set(m, (sends.get(m) ?? 0) + 1);
  const through = [...sends].filter(([m]) => m <= 1200);
  // The first is resent on Weave's 10, 20, 40 ... ms timeouts until its answer comes (5 sends in 300 ms);
  // after it, every test waits at least twice that answer's delay before it is sent again.
  assert.equal(through[0]![1], 5, `sends per size: ${[...sends].join(' ')}`);
  assert.ok(through.slice(1).every(([, n]) => n === 1), `sends per size: ${[...sends].join(' ')}`);
  // Sizes lost on the way still get Weave's 8 sends, so a real black hole is found as fast as before.
  assert.ok([...sends].filter(([m]) => m > 1200).every(([, n]) => n === MTU_VERIFY_ATTEMPTS), `sends per size: ${[...sends].join(' ')}`);
});

test('a repeated answer to a size already known good, or an answer above what the kernel allows, changes nothing', () => {
  const conn = outboundConnection();
  const verify = (mtu: number, now: number): void =>
    conn.handleControl(SleeveControlTag.PMTUVerified, encodeSleeveControl({ type: 'PMTUVerified', mtu }).subarray(1), now);
  verify(9000, 0);
  assert.equal(conn.mtu, 65535, 'no search ran: an unsolicited answer is not a path MTU');
  conn.handleMsgSize(UNDERLAY_MTU, 0);
  verify(FIRST_CANDIDATE, 5);
  assert.equal(conn.mtu, FIRST_CANDIDATE);
  verify(FIRST_CANDIDATE, 6);
  verify(900, 7);
  verify(FIRST_CANDIDATE + 1, 8);
  assert.equal(conn.mtu, FIRST_CANDIDATE);
  assert.equal(conn.searchBounds, undefined);
});

test('the remote\'s resent MTU test is answered once until MTU_TEST_REANSWER_AFTER_MS has passed; another size at once', () => {
  const answers: { at: number; mtu: number }[] = [];
  let now = 0;
  const conn = outboundConnection((subTag, payload) => {
    assert.equal(subTag, SleeveControlTag.PMTUVerified);
    answers.push({ at: now, mtu: (payload[0]! << 8) | payload[1]! });
  });
  const from = { ip: '192.0.2.2', port: 6783 };
  // Weave's resends of one test: 0, 10, 30, 70, 150, 310, 630, 1270 ms.
  for (const t of [0, 10, 30, 70, 150, 310, 630, 1270]) {
    now = t;
    conn.handleSpecial({ kind: 'mtu-test', mtu: 1438 }, from, now);
  }
  now = 1275;
  conn.handleSpecial({ kind: 'mtu-test', mtu: 995 }, from, now);
  assert.deepEqual(answers, [{ at: 0, mtu: 1438 }, { at: 1270, mtu: 1438 }, { at: 1275, mtu: 995 }]);
  assert.ok(1270 >= MTU_TEST_REANSWER_AFTER_MS && 630 < MTU_TEST_REANSWER_AFTER_MS);
});
