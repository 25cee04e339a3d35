// Random bytes at the weaveDNS UDP and TCP ports must never stop it answering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import { openNodeDatagramTransport } from '../../controlplane/dns/datagram-transport.js';
import { openBatchedUdpTransport } from '../../dataplane/sys/batched-udp.js';
import { dataOf, query, tcpQuery, udpQuery, udpSendAll, waitFor } from './dns-test-support.js';

for (const [transport, openUdp] of [['node:dgram', openNodeDatagramTransport], ['recvmmsg/sendmmsg', openBatchedUdpTransport]] as const) test(`fuzzed datagrams (${transport}) and streams leave the server answering`, async () => {
  const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
  ns.add('web.weave.local.', 'c1', 0x0a200001);
  const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', openUdp });
  await server.start();
  const port = server.address().port;
  try {
    const noise = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 600 }), 300).map((b) => Buffer.from(b));
    // Mutated valid queries reach deeper into the parser than pure noise.
    const valid = Buffer.from((await import('dns-packet')).default.encode(query('web.weave.local')));
    const mutated = fc.sample(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }), 300)
      .map((edits) => {
        const b = Buffer.from(valid);
        for (const [i, v] of edits) b[i] = v;
        return b;
      });
    // In batches, so the socket's receive buffer never overflows and every datagram is seen.
    const all = [...noise, ...mutated];
    for (let i = 0; i < all.length; i += 25) {
      const batch = all.slice(i, i + 25);
      await udpSendAll(port, batch);
      await waitFor(() => server.metrics.udpQueries >= i + batch.length, `datagrams ${i}..${i + batch.length} handled`);
    }
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
      await new Promise<void>((resolve) => {
        const sock = connect({ host: '127.0.0.1', port }, () => sock.end(Buffer.from(bytes)));
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.resume();
        sock.setTimeout(200, () => sock.destroy());
      });
    }), { numRuns: 50 });

    const r = await udpQuery(port, query('web.weave.local'));
    assert.deepEqual(dataOf(r), ['10.32.0.1']);
    const t = await tcpQuery(port, query('web.weave.local'));
    assert.deepEqual(dataOf(t), ['10.32.0.1']);
    const m = server.metrics;
    assert.ok(m.udpQueries >= 600, 'every datagram was seen');
    assert.ok(m.formerr + m.dropped + m.notimp > 0, 'malformed input was counted');
  } finally {
    await server.stop();
  }
});
