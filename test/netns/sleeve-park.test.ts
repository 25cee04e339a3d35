// The sleeve opened parked, as beside a fast datapath (dataplane/sleeve/keeper.ts): with no packet
// worker at all, fresh connections establish from the main thread, plain and encrypted, one after
// another on the same sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil } from './lib/index.js';
import { applyTopology, connectNodes, SLEEVE_ESTABLISH_BOUND_MS, useSleevePair } from './sleeve-harness.js';

const CONTAINER_MTU = 1376;
const CONNECTIONS = 10;

const pair = useSleevePair(CONTAINER_MTU, { workerStart: 'sleeve-connection', parkIdleWorkerAfterMs: 100 }, { workerStart: 'sleeve-connection' });

test(`opened parked: ${CONNECTIONS} connections in a row establish from the main thread, plain and encrypted`, async () => {
  const { a, b } = pair;
  const took: number[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const started = Date.now();
    const link = connectNodes(a, b, i % 2 === 1);
    const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), SLEEVE_ESTABLISH_BOUND_MS).unref());
    const outcome = await Promise.race([link.established.then(() => 'ok'), timeout]);
    assert.equal(outcome, 'ok', `connection ${i}: a ${link.fa.status().state}, b ${link.fb.status().state}; a ${JSON.stringify(a.dp!.counters())} b ${JSON.stringify(b.dp!.counters())}`);
    took.push(Date.now() - started);
    assert.deepEqual(link.failures, []);
    link.fa.stop();
    link.fb.stop();
  }
  assert.equal(a.dp!.workerThreadId, undefined, 'no packet worker was started');
  assert.ok(a.dp!.parked && b.dp!.parked);
  process.stdout.write(`# established from the main thread in ${took.join(', ')} ms\n`);
});

test('one end starts its worker in the middle of the handshake, the other stays parked: both establish', async () => {
  const { a, b } = pair;
  const took: number[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const started = Date.now();
    const link = connectNodes(a, b, i % 2 === 1);
    // a (the dialling end) takes the sleeve i ms in, as a router does while its fast datapath loads.
    await new Promise((r) => setTimeout(r, i * 3));
    applyTopology([a, b], [[a, b]], 'sleeve', [a]);
    const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), SLEEVE_ESTABLISH_BOUND_MS).unref());
    const outcome = await Promise.race([link.established.then(() => 'ok'), timeout]);
    assert.equal(outcome, 'ok', `connection ${i}: a ${link.fa.status().state}, b ${link.fb.status().state}; a ${JSON.stringify(a.dp!.counters())} b ${JSON.stringify(b.dp!.counters())}`);
    took.push(Date.now() - started);
    assert.ok(!a.dp!.parked && b.dp!.parked, 'a runs its worker, b stays parked');
    link.fa.stop();
    link.fb.stop();
    // Back to parked for the next round.
    applyTopology([a, b], [[a, b]], 'fastdp');
    assert.ok(await pollUntil(() => a.dp!.parked, 5000, 10), 'a parks again');
  }
  process.stdout.write(`# established, one end unparking meanwhile, in ${took.join(', ')} ms\n`);
});
