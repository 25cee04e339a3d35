// A router whose only overlay is the sleeve (dataplane/sleeve/datapath.ts, workerStart 'first-frame'): the
// announcements the bridge and the containers' interfaces send when they come up are dropped and
// counted, not taken for traffic (link-announcements.ts); its
// connections establish and stay up on the keeper's heartbeats with no packet worker, although the
// forwarding state puts the peer on the sleeve; the first frame starts the worker on both ends, the
// sender's from its capture port, the receiver's from the datagram, which is handed over, not lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mustExec, pollUntil, waitForPing } from './lib/index.js';
import { applyTopology, connectNodes, SLEEVE_ESTABLISH_BOUND_MS, useSleevePair } from './sleeve-harness.js';

const CONTAINER_MTU = 1376;
/**
 * An interface that comes up reports its multicast groups, probes its link-local address (1 s),
 * then reports again and solicits routers: 17 frames from the three interfaces of a host here
 * within 2 s of coming up (21-23 within 6 s), the rest as the reports are repeated.
 */
const ANNOUNCEMENTS_BOUND_MS = 6000;
const ANNOUNCEMENTS_AWAITED = 16;
/**
 * The first ping starts both workers (~100 ms each on a quiet host) before its reply; an ARP lost on
 * the way would cost the container's 1 s retry.
 */
const FIRST_PING_BOUND_MS = 1500;

const pair = useSleevePair(CONTAINER_MTU, { workerStart: 'first-frame' }, { workerStart: 'first-frame' });

test('sleeve only: the bridge and a container coming up announce themselves and the packet worker stays parked', async () => {
  const { a, b } = pair;
  for (const node of [a, b]) {
    for (const [ns, link] of [[node.host.namespace, 'weave'], [node.container.namespace, 'eth0']] as const) {
      await mustExec('ip', ['-n', ns, 'link', 'set', link, 'down']);
      await mustExec('ip', ['-n', ns, 'link', 'set', link, 'up']);
    }
  }
  const started = Date.now();
  const announced = (): boolean => [a, b].every((n) => (n.dp!.counters().drops['link-announcement'] ?? 0) >= ANNOUNCEMENTS_AWAITED);
  assert.ok(await pollUntil(announced, ANNOUNCEMENTS_BOUND_MS, 20), `announcements dropped: a ${JSON.stringify(a.dp!.counters().drops)}, b ${JSON.stringify(b.dp!.counters().drops)}`);
  process.stdout.write(`# ${ANNOUNCEMENTS_AWAITED} announcements dropped on each host within ${Date.now() - started} ms\n`);
  assert.ok(a.dp!.parked && b.dp!.parked, 'an announcement started a packet worker');
  assert.equal(a.dp!.workerThreadId, undefined);
});

test('sleeve only: established and routed over the sleeve with no packet worker; the first ping starts both and gets its reply', async (t) => {
  const { a, b } = pair;
  for (const encrypt of [false, true]) {
    await t.test(encrypt ? 'encrypted' : 'plain', async () => {
      const started = Date.now();
      const link = connectNodes(a, b, encrypt);
      applyTopology([a, b], [[a, b]], 'sleeve');
      const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), SLEEVE_ESTABLISH_BOUND_MS).unref());
      assert.equal(await Promise.race([link.established.then(() => 'ok'), timeout]), 'ok', `a ${link.fa.status().state}, b ${link.fb.status().state}`);
      const establishedAfter = Date.now() - started;
      if (!encrypt) {
        assert.ok(a.dp!.parked && b.dp!.parked, 'no packet worker while no frame crossed the sleeve');
        assert.equal(a.dp!.workerThreadId, undefined);
      }
      const pingAt = Date.now();
      assert.ok(await waitForPing(a.container, b.ip, 10_000), 'a cannot ping b');
      const firstReplyAfter = Date.now() - pingAt;
      assert.ok(!a.dp!.parked && !b.dp!.parked, 'the first frame started both workers');
      assert.ok(await pollUntil(() => a.dp!.workerThreadId !== undefined && b.dp!.workerThreadId !== undefined, 3000, 20));
      for (const dp of [a.dp!, b.dp!]) assert.equal(dp.counters().drops['sleeve-parked'] ?? 0, 0, `datagrams lost while a worker started: ${JSON.stringify(dp.counters().drops)}`);
      process.stdout.write(`# sleeve only, ${encrypt ? 'encrypted' : 'plain'}: established in ${establishedAfter} ms with no worker; first ping reply ${firstReplyAfter} ms after it was sent\n`);
      assert.ok(firstReplyAfter < FIRST_PING_BOUND_MS, `first ping took ${firstReplyAfter} ms`);
      link.fa.stop();
      link.fb.stop();
    });
  }
});
