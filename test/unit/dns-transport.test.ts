// The DNS server's UDP seam (controlplane/dns/datagram-transport.ts): how the
// server handles a batch (with a fake transport), and one suite every real
// transport passes on loopback sockets — node:dgram and the batched
// recvmmsg/sendmmsg one (dataplane/sys/batched-udp.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import {
  openNodeDatagramTransport, type DatagramHandler, type DatagramPeer, type DatagramTransport, type OpenDatagramTransport,
  type ReceivedDatagrams,
} from '../../controlplane/dns/datagram-transport.js';
import { openBatchedUdpTransport } from '../../dataplane/sys/batched-udp.js';
import { dataOf, query, rcodeOf, waitFor } from './dns-test-support.js';

/** Hands the server batches it is given and records what the server sends, and when. */
class FakeTransport implements DatagramTransport {
  readonly port = 5353;
  readonly drops = { oversized: 0, sendFailed: 0 };
  readonly inBatch: { index: number; reply: Buffer }[] = [];
  readonly later: { to: DatagramPeer; reply: Buffer }[] = [];
  private handler: DatagramHandler | undefined;

  start(handler: DatagramHandler): void {
    this.handler = handler;
  }

  /** Delivers `messages` as one batch, then overwrites them as a reused receive buffer would be. */
  deliver(messages: Buffer[]): void {
    const batch: ReceivedDatagrams = {
      count: messages.length,
      message: (i) => messages[i]!,
      reply: (i, reply) => { this.inBatch.push({ index: i, reply: Buffer.from(reply) }); },
      sender: (i) => ({ address: '10.0.0.1', port: 1000 + i }),
    };
    this.handler!(batch);
    for (const m of messages) m.fill(0);
  }

  sendTo(bytes: Uint8Array, to: DatagramPeer): void {
    this.later.push({ to, reply: Buffer.from(bytes) });
  }

  async close(): Promise<void> {}
}

test('a batch: local answers go out with it, the rest later to their own senders, garbage is dropped and counted', async () => {
  const ns = new Nameserver({ ourName: 1n, isKnownPeer: () => true });
  ns.add('web.weave.local.', 'c1', 0x0a200001);
  const fake = new FakeTransport();
  const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', openUdp: async () => fake });
  await server.start();
  try {
    const plain = dnsPacket.encode(query('web.weave.local'));
    // An EDNS option (padding) the hot path leaves to the dns-packet path.
    const cookie = dnsPacket.encode({
      ...query('web.weave.local'),
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 12, length: 8 }] }],
    });
    const response = dnsPacket.encode({ ...query('web.weave.local'), type: 'response' });
    const outside = dnsPacket.encode(query('example.com'));
    fake.deliver([plain, cookie, Buffer.from([1, 2, 3]), response, outside].map((b) => Buffer.from(b)));

    assert.deepEqual(fake.inBatch.map((r) => r.index), [0], 'only the hot-path answer is queued in the batch');
    assert.deepEqual(dataOf(dnsPacket.decode(fake.inBatch[0]!.reply)), ['10.32.0.1']);
    await waitFor(() => fake.later.length === 2, 'the general path answers');
    const byPort = new Map(fake.later.map((l) => [l.to.port, dnsPacket.decode(l.reply)]));
    assert.deepEqual(dataOf(byPort.get(1001)!), ['10.32.0.1'], 'answered from a copy of the query, not the reused buffer');
    assert.equal(rcodeOf(byPort.get(1004)!), 'SERVFAIL', 'no upstream for a name outside the domain');
    const m = server.metrics;
    assert.deepEqual([m.udpQueries, m.answeredLocally, m.dropped, m.servfail], [5, 2, 2, 1]);
    fake.drops.oversized = 3;
    fake.drops.sendFailed = 4;
    assert.deepEqual([server.metrics.dropped, server.metrics.sendFailed], [5, 4], 'the transport\'s drops are the server\'s');
  } finally {
    await server.stop();
  }
});

test('a handler that throws loses only its own batch', async () => {
  const transport = await openBatchedUdpTransport('127.0.0.1', 0);
  const client = await clientSocket();
  try {
    let calls = 0;
    transport.start((batch) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      for (let i = 0; i < batch.count; i++) batch.reply(i, batch.message(i));
    });
    client.socket.send(Buffer.from('first'), transport.port, '127.0.0.1');
    await waitFor(() => calls === 1, 'first batch');
    client.socket.send(Buffer.from('second'), transport.port, '127.0.0.1');
    assert.equal((await client.next()).toString(), 'second');
  } finally {
    client.socket.close();
    await transport.close();
  }
});

const TRANSPORTS: [string, OpenDatagramTransport, boolean][] = [
  ['node:dgram', openNodeDatagramTransport, false],
  ['recvmmsg/sendmmsg', openBatchedUdpTransport, true],
];

/** A loopback client socket collecting what it receives. */
async function clientSocket(): Promise<{ socket: Socket; received: Buffer[]; next(): Promise<Buffer> }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const received: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  socket.on('message', (m) => {
    const w = waiters.shift();
    if (w) w(m);
    else received.push(m);
  });
  return {
    socket, received,
    next: () => {
      const b = received.shift();
      if (b) return Promise.resolve(b);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no datagram within 2 s')), 2000);
        waiters.push((m) => { clearTimeout(timer); resolve(m); });
      });
    },
  };
}

function sendAll(socket: Socket, port: number, datagrams: Buffer[]): Promise<void[]> {
  return Promise.all(datagrams.map((d) => new Promise<void>((r) => socket.send(d, port, '127.0.0.1', () => r()))));
}

for (const [name, open, batches] of TRANSPORTS) describe(`UDP transport ${name}`, () => {
  test('every queued datagram is handed over and each reply reaches its own sender', async () => {
    const transport = await open('127.0.0.1', 0);
    assert.ok(transport.port > 0, 'port 0 picks a port');
    const clients = [await clientSocket(), await clientSocket(), await clientSocket()];
    try {
      const PER_CLIENT = 20;
      // Queued before the transport starts reading: a batching transport sees them in one batch.
      await Promise.all(clients.map((c, k) => sendAll(c.socket, transport.port,
        Array.from({ length: PER_CLIENT }, (_, i) => Buffer.from(`client ${k} query ${i}`)))));
      const sizes: number[] = [];
      transport.start((batch) => {
        sizes.push(batch.count);
        for (let i = 0; i < batch.count; i++) batch.reply(i, Buffer.from(`re: ${batch.message(i).toString()}`));
      });
      await waitFor(() => clients.every((c) => c.received.length === PER_CLIENT), 'every reply');
      clients.forEach((c, k) => {
        assert.deepEqual(c.received.map(String).sort(), Array.from({ length: PER_CLIENT }, (_, i) => `re: client ${k} query ${i}`).sort());
      });
      if (batches) assert.deepEqual(sizes, [3 * PER_CLIENT], 'one receive, one send');
      else assert.ok(sizes.every((n) => n === 1));
    } finally {
      for (const c of clients) c.socket.close();
      await transport.close();
    }
  });

  test('a reply sent after its batch reaches the sender; a second bind of the port fails; nothing arrives after close', async () => {
    const transport = await open('127.0.0.1', 0);
    const client = await clientSocket();
    let later: DatagramPeer | undefined;
    let handled = 0;
    transport.start((batch) => {
      handled += batch.count;
      later = batch.sender(0);
    });
    try {
      client.socket.send(Buffer.from('hello'), transport.port, '127.0.0.1');
      await waitFor(() => later !== undefined, 'the datagram');
      assert.deepEqual([later!.address, later!.port], ['127.0.0.1', client.socket.address().port]);
      transport.sendTo(Buffer.from('late answer'), later!);
      assert.equal((await client.next()).toString(), 'late answer');
      await assert.rejects(open('127.0.0.1', transport.port), /EADDRINUSE/);
      // Not even a socket asking to share the address (SO_REUSEADDR) may bind it.
      const sharing = createSocket({ type: 'udp4', reuseAddr: true });
      try {
        await assert.rejects(new Promise<void>((resolve, reject) => {
          sharing.once('error', reject);
          sharing.bind(transport.port, '127.0.0.1', resolve);
        }), /EADDRINUSE/);
      } finally {
        sharing.close();
      }
      await transport.close();
      // After close the port is free again and nothing is handed over.
      const again = await open('127.0.0.1', transport.port);
      await again.close();
      client.socket.send(Buffer.from('too late'), transport.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(handled, 1);
    } finally {
      client.socket.close();
      await transport.close();
    }
  });
});

describe('UDP transport recvmmsg/sendmmsg limits', () => {
  test('an oversized datagram is dropped and counted; replies beyond one batch and larger than a slot all go out', async () => {
    const transport = await openBatchedUdpTransport('127.0.0.1', 0);
    const client = await clientSocket();
    try {
      const seen: number[] = [];
      // Queued before the start: the first datagram reaches the transport through libuv's receive, the rest
      // through recvmmsg, and an oversized one is dropped on either path.
      await sendAll(client.socket, transport.port, [Buffer.alloc(5000, 1), Buffer.from('big'), Buffer.alloc(4097, 2), Buffer.from('many')]);
      transport.start((batch) => {
        for (let i = 0; i < batch.count; i++) {
          const m = batch.message(i);
          seen.push(m.length);
          if (m.toString() === 'big') batch.reply(i, Buffer.alloc(5000, 7));
          else if (m.toString() === 'many') for (let k = 0; k < 70; k++) batch.reply(i, Buffer.from(`reply ${k}`));
        }
      });
      await waitFor(() => client.received.length === 71, 'the big reply and 70 small ones');
      assert.deepEqual(seen, [3, 4], 'the 5000- and 4097-byte queries never reached the handler');
      assert.equal(transport.drops.oversized, 2);
      const big = client.received.find((b) => b.length === 5000);
      assert.ok(big?.every((b) => b === 7), 'the big reply is intact');
      assert.equal(new Set(client.received.filter((b) => b.length < 5000).map(String)).size, 70);
      assert.equal(transport.drops.sendFailed, 0);
    } finally {
      client.socket.close();
      await transport.close();
    }
  });
});
