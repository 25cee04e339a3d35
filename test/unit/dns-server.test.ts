// The weaveDNS server on 127.0.0.1 with an ephemeral port (user-surface spec §6.6),
// over each UDP transport: node:dgram and the batched recvmmsg/sendmmsg one.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import { openNodeDatagramTransport, type OpenDatagramTransport } from '../../controlplane/dns/datagram-transport.js';
import { openBatchedUdpTransport } from '../../dataplane/sys/batched-udp.js';
import { TinyUpstream, dataOf, query, rcodeOf, ttlsOf, tcpQuery, tempResolvConf, udpQuery, udpRaw, udpSendAll, waitFor } from './dns-test-support.js';

const US = 0x0a0000000001n;
const MANY = 50;
const TRANSPORTS: [string, OpenDatagramTransport][] = [['node:dgram', openNodeDatagramTransport], ['recvmmsg/sendmmsg', openBatchedUdpTransport]];

for (const [transport, openUdp] of TRANSPORTS) describe(`DNS server over ${transport}`, { timeout: 60_000 }, () => {
  const ns = new Nameserver({ ourName: US, isKnownPeer: () => true });
  const upstream = new TinyUpstream();
  let resolv: { path: string; remove(): void };
  let server: DnsServer;
  let port = 0;

  before(async () => {
    ns.add('web.weave.local.', 'c1', 0x0a200001);
    ns.add('multi.weave.local.', 'm1', 0x0a200011);
    ns.add('multi.weave.local.', 'm2', 0x0a200012);
    ns.add('multi.weave.local.', 'm3', 0x0a200013);
    ns.add('multi.weave.local.', 'm4', 0x0a200014);
    ns.add('Mixed.Weave.Local.', 'x1', 0x0a200021);
    ns.add('gone.weave.local.', 'g1', 0x0a200031);
    ns.delete({ containerId: 'g1' });
    for (let i = 0; i < MANY; i++) ns.add('big.weave.local.', `b${i}`, 0x0a210000 + i);
    await upstream.start();
    resolv = tempResolvConf('# test resolver\nsearch example\nnameserver 127.0.0.1\n');
    server = new DnsServer({
      names: ns, listenAddress: '127.0.0.1:0', ttl: 7, resolvConf: resolv.path,
      upstreamPort: upstream.port, fallbackTimeoutMs: 1000, openUdp,
    });
    await server.start();
    port = server.address().port;
  });

  after(async () => {
    await server?.stop();
    await upstream.stop();
    resolv?.remove();
  });

  test('A record for a name in the domain, with TTL, AA and RA', async () => {
    const r = await udpQuery(port, query('web.weave.local'));
    assert.equal(rcodeOf(r), 'NOERROR');
    assert.ok(r.flag_aa && r.flag_ra && r.flag_rd);
    assert.deepEqual([r.answers!.map((a) => [a.type, a.name]), ttlsOf(r), dataOf(r)], [[['A', 'web.weave.local']], [7], ['10.32.0.1']]);
  });

  test('several addresses: all present, order varies between queries', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 30 && orders.size < 2; i++) {
      const r = await udpQuery(port, query('multi.weave.local'));
      const addrs = dataOf(r);
      assert.deepEqual([...addrs].sort(), ['10.32.0.17', '10.32.0.18', '10.32.0.19', '10.32.0.20']);
      orders.add(addrs.join(','));
    }
    assert.ok(orders.size >= 2, 'answers are shuffled');
  });

  test('lookups ignore case, and unqualified names are qualified with the domain', async () => {
    for (const name of ['MIXED.weave.LOCAL', 'mixed.weave.local', 'WEB.WEAVE.LOCAL', 'web']) {
      const r = await udpQuery(port, query(name));
      assert.equal(r.answers!.length, 1, name);
      assert.equal(r.answers![0].name, name, 'the answer repeats the name as asked');
    }
  });

  test('PTR for a known address, in any case', async () => {
    for (const name of ['1.0.32.10.in-addr.arpa', '1.0.32.10.IN-ADDR.ARPA']) {
      const r = await udpQuery(port, query(name, 'PTR'));
      assert.equal(rcodeOf(r), 'NOERROR');
      assert.deepEqual(dataOf(r), ['web.weave.local']);
    }
  });

  test('unknown and tombstoned names in the domain are NXDOMAIN; known name with other type is empty NOERROR', async () => {
    assert.equal(rcodeOf((await udpQuery(port, query('nobody.weave.local')))), 'NXDOMAIN');
    assert.equal(rcodeOf((await udpQuery(port, query('gone.weave.local')))), 'NXDOMAIN');
    const mx = await udpQuery(port, query('web.weave.local', 'MX'));
    assert.equal(rcodeOf(mx), 'NOERROR');
    assert.equal(mx.answers!.length, 0);
  });

  test('a big answer is truncated with TC over UDP and complete over TCP', async () => {
    const udp = await udpQuery(port, query('big.weave.local'));
    assert.ok(udp.flag_tc, 'TC set');
    assert.ok(udp.answers!.length < MANY);
    assert.ok(dnsPacket.encodingLength(udp) <= 512);
    const tcp = await tcpQuery(port, query('big.weave.local'));
    assert.equal(tcp.flag_tc, false);
    assert.equal(new Set(dataOf(tcp)).size, MANY);
    const edns = await udpQuery(port, query('big.weave.local', 'A', 4096));
    assert.equal(edns.flag_tc, false, 'EDNS0 buffer size raises the limit');
    assert.equal(edns.answers!.length, MANY);
    const small = await udpQuery(port, query('big.weave.local', 'A', 700));
    assert.ok(small.flag_tc && dnsPacket.encodingLength(small) <= 700);
  });

  test('other names are forwarded to the resolv.conf servers, over UDP and TCP', async () => {
    const a = await udpQuery(port, query('example.com'));
    assert.deepEqual(dataOf(a), ['192.0.2.10']);
    const mx = await tcpQuery(port, query('example.com', 'MX'));
    assert.equal(mx.answers![0].type, 'MX');
    const ptr = await udpQuery(port, query('10.2.0.192.in-addr.arpa', 'PTR'));
    assert.deepEqual(dataOf(ptr), ['example.com'], 'unknown addresses are asked upstream');
    assert.equal(rcodeOf((await udpQuery(port, query('nothing.example')))), 'NXDOMAIN');
    assert.ok(server.metrics.forwarded >= 4);
    assert.deepEqual(server.upstreams(), [{ address: '127.0.0.1', port: upstream.port }]);
  });

  test('no usable upstream gives SERVFAIL after the fallback timeout', async () => {
    const conf = tempResolvConf('nameserver 127.0.0.1\n');
    const deadEnd = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', resolvConf: conf.path, upstreamPort: 9, fallbackTimeoutMs: 200, openUdp });
    try {
      await deadEnd.start();
      const r = await udpQuery(deadEnd.address().port, query('example.com'));
      assert.equal(rcodeOf(r), 'SERVFAIL');
      assert.equal(deadEnd.metrics.servfail, 1);
    } finally {
      await deadEnd.stop();
      conf.remove();
    }
  });

  test('garbage with a header is answered FORMERR; shorter garbage and responses are dropped and counted', async () => {
    const garbage = Buffer.from('abcd0100000100000000000003', 'hex'); // claims 1 question, then truncated
    const r = await udpRaw(port, garbage);
    assert.ok(r, 'FORMERR reply');
    const decoded = dnsPacket.decode(r);
    assert.equal(rcodeOf(decoded), 'FORMERR');
    assert.equal(decoded.id, 0xabcd);
    const before = server.metrics.dropped;
    const response = dnsPacket.encode({ ...query('web.weave.local'), type: 'response' });
    await udpSendAll(port, [Buffer.from([1, 2, 3]), response]);
    await waitFor(() => server.metrics.dropped >= before + 2, 'drop counter');
    assert.equal((await udpQuery(port, query('web.weave.local'))).answers!.length, 1, 'still serving');
  });

  test('section counts the message cannot hold are FORMERR before any decoding; counts that fit exactly still decode', async () => {
    // A bare header claiming 65,535 of every section: dns-packet would make four such arrays first.
    const inflated = Buffer.from('beef0100ffffffffffffffff', 'hex');
    const root = Buffer.from('beef01000001000000000000' + '00' + '0001' + '0001', 'hex');
    const before = server.metrics.formerr;
    // The server's decoder is dns-packet's, looked up at each call: count the calls.
    const decode = dnsPacket.decode;
    let decoded = 0;
    dnsPacket.decode = ((...args: Parameters<typeof decode>) => { decoded++; return decode(...args); }) as typeof decode;
    let inflatedReply: Buffer | undefined;
    let rootReply: Buffer | undefined;
    try {
      inflatedReply = await server.handle(inflated, 'udp');
      assert.equal(decoded, 0, 'the inflated header is refused before dns-packet reads it');
      // One question of the smallest size (the root name, type A, class IN) fits its count exactly.
      rootReply = await server.handle(root, 'udp');
      assert.ok(decoded > 0, 'a question of 5 bytes is decoded');
    } finally {
      dnsPacket.decode = decode;
    }
    assert.equal(rcodeOf(dnsPacket.decode(inflatedReply!)), 'FORMERR');
    assert.equal(dnsPacket.decode(inflatedReply!).id, 0xbeef);
    assert.equal(server.metrics.formerr, before + 1, 'counted');
    assert.notEqual(rcodeOf(dnsPacket.decode(rootReply!)), 'FORMERR', 'and not refused');
  });
});

/**
 * Holds a loopback TCP port whose UDP twin is free. TCP and UDP draw ephemeral
 * ports from one range, so the kernel may hand out a TCP port whose UDP twin some
 * other process holds; the test needs that UDP port free to bind it itself.
 */
async function squatTcpPortWithFreeUdpTwin(): Promise<{ squatter: Server; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    const port = (squatter.address() as AddressInfo).port;
    const probe = createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => probe.close(() => r()));
    if (udpFree) return { squatter, port };
    await new Promise<void>((r) => squatter.close(() => r()));
    if (attempt === 20) throw new Error('no loopback port found with TCP and UDP both free');
  }
}

describe('DNS server listening on port 0', { timeout: 60_000 }, () => {
  test('an ephemeral UDP port whose TCP twin is taken is given up for another; a fixed port in use is an error', async () => {
    const { squatter, port: taken } = await squatTcpPortWithFreeUdpTwin();
    const ns = new Nameserver({ ourName: US, isKnownPeer: () => true });
    ns.add('web.weave.local.', 'c1', 0x0a200001);
    const asked: number[] = [];
    // The first "ephemeral" UDP port handed out is the one whose TCP twin the squatter holds.
    const openUdp: OpenDatagramTransport = (host, port) => {
      asked.push(port);
      return openNodeDatagramTransport(host, asked.length === 1 ? taken : port);
    };
    const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', resolvConf: '/nonexistent', openUdp });
    const fixed = new DnsServer({ names: ns, listenAddress: `127.0.0.1:${taken}`, resolvConf: '/nonexistent' });
    try {
      await server.start();
      // Another process may hold the next ephemeral port's TCP twin too: then a third is tried.
      assert.ok(asked.length >= 2 && asked.slice(1).every((port) => port === 0), `ephemeral UDP ports asked for again: ${asked.join(',')}`);
      assert.notEqual(server.address().port, taken);
      assert.deepEqual(dataOf(await udpQuery(server.address().port, query('web.weave.local'))), ['10.32.0.1']);
      assert.deepEqual(dataOf(await tcpQuery(server.address().port, query('web.weave.local'))), ['10.32.0.1']);
      await assert.rejects(fixed.start(), new RegExp(`Unable to start dns server: listen tcp 127.0.0.1:${taken}: .*EADDRINUSE`));
    } finally {
      await server.stop();
      await fixed.stop();
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });
});
