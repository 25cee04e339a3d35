// The iperf3 helpers against real iperf3 in namespaces: a client that cannot
// connect fails loudly (iperf3 3.12 with -J exits 0 then), a started server
// listens before startIperfServer resolves, and a second server on a taken
// port is reported instead of waited for.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestbed, parseIperfJson, runIperfClient, startIperfServer, type Host, type Testbed,
} from './lib/index.js';

const notRoot = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

describe('iperf3 helpers', { skip: notRoot }, () => {
  let bed: Testbed | undefined;
  after(() => bed?.teardown());

  async function hosts(): Promise<[Host, Host]> {
    bed ??= await createTestbed({ hosts: 2, underlay: 'bridge' });
    return bed.hosts as [Host, Host];
  }

  test('a client against a port nobody listens on throws with iperf3\'s "Connection refused"', async () => {
    const [h1, h2] = await hosts();
    await assert.rejects(
      runIperfClient(h1, ['-c', h2.address, '-p', '5299', '-t', '1']),
      (err: Error) => {
        assert.match(err.message, /Connection refused/);
        assert.match(err.message, new RegExp(`-c ${h2.address.replace(/\./g, '\\.')} -p 5299`), 'the message names the command');
        return true;
      },
    );
  });

  test('a client against a started server returns both totals', async () => {
    const [h1, h2] = await hosts();
    const server = await startIperfServer(h2, { bind: h2.address, port: 5301 });
    try {
      // No retry: the server is known to listen.
      const r = await runIperfClient(h1, ['-c', h2.address, '-p', '5301', '-n', '1M']);
      assert.ok(r.sentBytes >= 1024 * 1024, `sent ${r.sentBytes} bytes`);
      assert.ok(r.receivedBytes > 0, `received ${r.receivedBytes} bytes`);
      assert.ok(r.receivedBitsPerSecond > 0 && r.sentBitsPerSecond > 0, 'rates are reported');
      assert.equal(r.json.error, undefined);
      assert.equal(await server.exited, 0, 'the one-off server ended after its test');
    } finally {
      await server.stop();
    }
  });

  test('a second server on a port already taken is reported, not waited for', async () => {
    const [, h2] = await hosts();
    const first = await startIperfServer(h2, { port: 5302, oneOff: false });
    try {
      const started = Date.now();
      await assert.rejects(startIperfServer(h2, { port: 5302 }), /exited \d+ before listening/);
      assert.ok(Date.now() - started < 25_000, 'the failure was noticed when the process exited, not at the deadline');
    } finally {
      await first.stop();
    }
    assert.notEqual(await first.exited, 0, 'stop() killed the long-running server');
  });
});

test('parseIperfJson takes the first report and keeps what follows it', () => {
  const text = '{"end":{"sum_sent":{"bytes":5,"bits_per_second":40}},"note":"a } in a string"}\niperf3: error - control socket has closed unexpectedly\n';
  const parsed = parseIperfJson(text);
  assert.ok(parsed);
  assert.equal(parsed.json.end?.sum_sent?.bytes, 5);
  assert.equal(parsed.trailing, 'iperf3: error - control socket has closed unexpectedly');
  assert.equal(parseIperfJson('iperf3: error - no JSON at all'), undefined);
  assert.equal(parseIperfJson('{"truncated": '), undefined);
});
