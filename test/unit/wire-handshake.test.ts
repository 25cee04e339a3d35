// Handshake and message link over real loopback TCP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { performHandshake, type HandshakeOptions, type HandshakeResult, decodeFeatures, parseFeatures } from '../../controlplane/mesh/wire/index.js';
import type { MessageLink } from '../../controlplane/mesh/types.js';
import { toHex } from './wire-helpers.js';

const alpha = { name: 0x0a0000000001n, nickName: 'alpha', uid: 9243940125061546774n, shortId: 954 };
const beta = { name: 0x0a0000000002n, nickName: 'beta', uid: 77n, shortId: 12 };
const pw = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Pair {
  client: net.Socket; server: net.Socket;
  /** Bytes each side received from the wire, for inspection. */
  clientRx: Buffer[]; serverRx: Buffer[];
  close(): void;
}

async function tcpPair(): Promise<Pair> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = once(srv, 'connection');
  const client = net.connect(port, '127.0.0.1');
  const [server] = (await accepted) as [net.Socket];
  await once(client, 'connect').catch(() => undefined).then(() => undefined);
  srv.close();
  const clientRx: Buffer[] = []; const serverRx: Buffer[] = [];
  client.on('data', (b: Buffer) => clientRx.push(b));
  server.on('data', (b: Buffer) => serverRx.push(b));
  client.on('error', () => undefined); server.on('error', () => undefined);
  return { client, server, clientRx, serverRx, close() { client.destroy(); server.destroy(); } };
}

function opts(identity: typeof alpha, outbound: boolean, extra: Partial<HandshakeOptions> = {}): HandshakeOptions {
  return { identity, outbound, trustedRemote: false, timeouts: { headerMs: 2000, readMs: 2000 }, ...extra };
}

async function handshakeBoth(a: Partial<HandshakeOptions>, b: Partial<HandshakeOptions>): Promise<{
  pair: Pair; ra: PromiseSettledResult<HandshakeResult>; rb: PromiseSettledResult<HandshakeResult>;
}> {
  const pair = await tcpPair();
  const [ra, rb] = await Promise.allSettled([
    performHandshake(pair.client, opts(alpha, true, a)),
    performHandshake(pair.server, opts(beta, false, b)),
  ]);
  return { pair, ra, rb };
}

function ok(r: PromiseSettledResult<HandshakeResult>): HandshakeResult {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** Starts a link and collects its messages; resolves `closed` with the close reason. */
function collect(link: MessageLink): { messages: Uint8Array[]; closed: Promise<Error | undefined>; waitFor(n: number): Promise<void> } {
  const messages: Uint8Array[] = [];
  const waiters: (() => void)[] = [];
  let resolveClosed!: (e: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((r) => { resolveClosed = r; });
  link.start({
    onMessage(b) { messages.push(b); waiters.splice(0).forEach((w) => w()); },
    onClose(e) { resolveClosed(e); waiters.splice(0).forEach((w) => w()); },
  });
  const waitFor = async (n: number): Promise<void> => {
    const deadline = Date.now() + 3000;
    while (messages.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} messages (have ${messages.length})`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 100); });
    }
  };
  return { messages, closed, waitFor };
}

test('plain V2 handshake: features, connUID, addresses; messages buffered until start', async () => {
  const { pair, ra, rb } = await handshakeBoth({ overlays: ['fastdp', 'sleeve'], connId: 0x1234n }, { trustedRemote: true, connId: 0xff00n });
  try {
    const a = ok(ra); const b = ok(rb);
    assert.equal(a.handshake.protocolVersion, 2);
    assert.equal(a.handshake.remote.name, beta.name);
    assert.equal(a.handshake.remote.trusted, true);
    assert.equal(a.handshake.remote.overlays, undefined);
    assert.equal(b.handshake.remote.nickName, 'alpha');
    assert.deepEqual(b.handshake.remote.overlays, ['fastdp', 'sleeve']);
    assert.equal(a.handshake.connUID, 0x1234n ^ 0xff00n);
    assert.equal(b.handshake.connUID, a.handshake.connUID);
    assert.equal(a.handshake.remoteAddr, b.handshake.localAddr);
    assert.equal(a.handshake.sessionKey, undefined);
    // Sent before the receiver starts: must be held, then delivered in order.
    a.link.send(Uint8Array.of(4, 1, 2, 3));
    a.link.send(Uint8Array.of(5, 9));
    const rx = collect(b.link);
    collect(a.link);
    await rx.waitFor(2);
    assert.deepEqual(rx.messages, [Uint8Array.of(4, 1, 2, 3), Uint8Array.of(5, 9)]);
    a.link.close();
    const reason = await rx.closed;
    assert.ok(reason instanceof Error, 'the remote close is reported as an Error');
  } finally { pair.close(); }
});

test('spec §1.9: our unencrypted V2 handshake bytes', async () => {
  const { pair, ra, rb } = await handshakeBoth({ connId: 11104099411011336216n }, {});
  try {
    ok(ra); ok(rb);
    const wire = Buffer.concat(pair.serverRx);
    assert.equal(toHex(wire.subarray(0, 12)), '77 65 61 76 65 01 02 00 00 00 00 9d');
    const features = decodeFeatures(wire.subarray(12, 12 + 157));
    assert.equal(features.size, 7);
    assert.deepEqual(parseFeatures(features), {
      name: alpha.name, nickName: 'alpha', uid: alpha.uid, connId: 11104099411011336216n, shortId: 954, trusted: false,
    });
  } finally { pair.close(); }
});

test('same password: encrypted both ways, no plaintext on the wire', async () => {
  const { pair, ra, rb } = await handshakeBoth({ password: pw('s3cret') }, { password: pw('s3cret') });
  try {
    const a = ok(ra); const b = ok(rb);
    assert.ok(a.handshake.sessionKey && b.handshake.sessionKey);
    assert.deepEqual(a.handshake.sessionKey, b.handshake.sessionKey);
    const ca = collect(a.link); const cb = collect(b.link);
    const secret = pw('KNOWN-PAYLOAD-do-not-leak');
    a.link.send(Uint8Array.from([4, ...secret]));
    b.link.send(Uint8Array.from([6, ...secret]));
    await cb.waitFor(1); await ca.waitFor(1);
    assert.deepEqual(cb.messages[0], Uint8Array.from([4, ...secret]));
    assert.deepEqual(ca.messages[0], Uint8Array.from([6, ...secret]));
    for (const rx of [pair.serverRx, pair.clientRx]) {
      const wire = Buffer.concat(rx);
      assert.equal(wire[7], 0x01, 'encryption flag set');
      assert.equal(wire.indexOf(Buffer.from(secret)), -1, 'payload must not appear in clear');
      assert.equal(wire.indexOf(Buffer.from('PeerNameFlavour')), -1, 'features must not appear in clear');
    }
  } finally { pair.close(); }
});

test('different passwords: both sides fail with a password-mismatch error', async () => {
  const { pair, ra, rb } = await handshakeBoth({ password: pw('one') }, { password: pw('two') });
  try {
    for (const r of [ra, rb]) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /password mismatch\?/);
    }
  } finally { pair.close(); }
});

test('password on one side only: both sides fail clearly', async () => {
  const { pair, ra, rb } = await handshakeBoth({ password: pw('one') }, {});
  try {
    assert.equal(ra.status, 'rejected');
    assert.match(String((ra as PromiseRejectedResult).reason), /peer requested an unencrypted connection/);
    assert.equal(rb.status, 'rejected');
    assert.match(String((rb as PromiseRejectedResult).reason), /no password is configured here/);
  } finally { pair.close(); }
});

test('version negotiation: 1..2 with 2..2 gives 2; 2..2 with 1..1 fails', async () => {
  const r1 = await handshakeBoth({}, { minVersion: 2 });
  try {
    assert.equal(ok(r1.ra).handshake.protocolVersion, 2);
    assert.equal(ok(r1.rb).handshake.protocolVersion, 2);
  } finally { r1.pair.close(); }
  const r2 = await handshakeBoth({ minVersion: 2 }, { maxVersion: 1 });
  try {
    for (const r of [r2.ra, r2.rb]) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /no common protocol version/);
    }
  } finally { r2.pair.close(); }
});

for (const password of [undefined, pw('legacy')]) {
  test(`protocol V1 (legacy) both directions${password ? ', encrypted' : ''}`, async () => {
    const { pair, ra, rb } = await handshakeBoth({ password, overlays: ['sleeve'] }, { password, maxVersion: 1 });
    try {
      const a = ok(ra); const b = ok(rb);
      assert.equal(a.handshake.protocolVersion, 1);
      assert.equal(b.handshake.remote.name, alpha.name);
      assert.equal(b.handshake.remote.overlays, undefined, 'V1 keeps only the basic keys');
      assert.equal(b.handshake.remote.shortId, undefined);
      const ca = collect(a.link); const cb = collect(b.link);
      a.link.send(Uint8Array.of(4, 42)); b.link.send(Uint8Array.of(6, 43)); a.link.send(Uint8Array.of(4, 44));
      await cb.waitFor(2); await ca.waitFor(1);
      assert.deepEqual(cb.messages, [Uint8Array.of(4, 42), Uint8Array.of(4, 44)]);
      assert.deepEqual(ca.messages, [Uint8Array.of(6, 43)]);
      const wire = Buffer.concat(pair.serverRx);
      assert.equal(wire.indexOf(Buffer.from('PublicKey')) >= 0, password !== undefined);
    } finally { pair.close(); }
  });
}

test('bad magic: a non-weave client is refused, and is not taken for a peer', async () => {
  const pair = await tcpPair();
  let peerHeaders = 0;
  try {
    pair.client.write('GET / HTTP/1.1\r\n\r\n');
    await assert.rejects(performHandshake(pair.server, opts(beta, false, { onPeerHeader: () => peerHeaders++ })), /"weave" protocol header/);
    assert.equal(peerHeaders, 0);
  } finally { pair.close(); }
});

test('a peer\'s header is reported once, before the handshake completes', async () => {
  const pair = await tcpPair();
  let calls = 0;
  let serverDone = false;
  let doneAtHeader: boolean | undefined;
  try {
    const server = performHandshake(pair.server, opts(beta, false, {
      onPeerHeader: () => {
        calls++;
        doneAtHeader = serverDone;
      },
    })).then((r) => {
      serverDone = true;
      return r;
    });
    await Promise.all([performHandshake(pair.client, opts(alpha, true)), server]);
    assert.equal(calls, 1);
    assert.equal(doneAtHeader, false);
  } finally { pair.close(); }
});

test('header timeout: a silent peer is refused', async () => {
  const pair = await tcpPair();
  try {
    await assert.rejects(performHandshake(pair.server, opts(beta, false, { timeouts: { headerMs: 100 } })), /timed out after 100 ms/);
  } finally { pair.close(); }
});

test('header deadline: headers that arrived while the event loop was stalled past the deadline are read, not timed out', async () => {
  const pair = await tcpPair();
  try {
    const timeouts = { headerMs: 100, readMs: 2000 };
    const both = Promise.allSettled([
      performHandshake(pair.client, opts(alpha, true, { timeouts })),
      performHandshake(pair.server, opts(beta, false, { timeouts })),
    ]);
    // Both headers are on the wire; the loop stays busy for three deadlines, as a router
    // starting on a loaded machine does. The deadline timers then come due before the
    // sockets are read.
    const until = Date.now() + 3 * timeouts.headerMs;
    while (Date.now() < until) { /* stalled */ }
    const [ra, rb] = await both;
    ok(ra).link.close();
    ok(rb).link.close();
  } finally { pair.close(); }
});

test('heartbeats flow on an idle link; a peer that goes quiet hits the read deadline', async () => {
  const { pair, ra, rb } = await handshakeBoth(
    { timeouts: { heartbeatMs: 30, readMs: 5000 } },
    { timeouts: { heartbeatMs: 60_000, readMs: 5000 } },
  );
  try {
    const a = ok(ra); const b = ok(rb);
    const before = Buffer.concat(pair.serverRx).length;
    collect(a.link);
    const cb = collect(b.link);
    const deadline = Date.now() + 3000;
    // heartbeat frame = 00 00 00 01 00
    while (Buffer.concat(pair.serverRx).length < before + 3 * 5) {
      assert.ok(Date.now() < deadline, 'expected at least three heartbeats');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(toHex(Buffer.concat(pair.serverRx).subarray(before, before + 5)), '00 00 00 01 00');
    assert.equal(cb.messages.length, 0, 'heartbeats are not delivered as messages');
  } finally { pair.close(); }

  const r2 = await handshakeBoth({ timeouts: { heartbeatMs: 60_000, readMs: 5000 } }, { timeouts: { heartbeatMs: 60_000, readMs: 150 } });
  try {
    const a = ok(r2.ra); const b = ok(r2.rb);
    collect(a.link);
    const cb = collect(b.link);
    assert.match(String(await cb.closed), /read timeout/);
  } finally { r2.pair.close(); }
});

test('oversized frame from the peer closes the link with a clear error', async () => {
  const { pair, ra, rb } = await handshakeBoth({}, {});
  try {
    ok(ra); const b = ok(rb);
    const cb = collect(b.link);
    pair.client.write(Buffer.from('ffffffff00', 'hex'));
    assert.match(String(await cb.closed), /over the 10485760-byte limit/);
  } finally { pair.close(); }
});

test('send refuses bodies over 10 MiB', async () => {
  const { pair, ra, rb } = await handshakeBoth({}, {});
  try {
    const a = ok(ra); ok(rb);
    assert.throws(() => a.link.send(new Uint8Array(10 * 1024 * 1024 + 1)), /exceeds the 10485760-byte limit/);
  } finally { pair.close(); }
});
