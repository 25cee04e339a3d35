// Loopback DNS clients and a tiny upstream server for the weaveDNS tests.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';

let nextId = 1;

export function query(name: string, type: 'A' | 'PTR' | 'MX' | 'AAAA' = 'A', edns?: number): Packet {
  const p: Packet = { id: nextId++ & 0xffff, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] };
  if (edns) p.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
  return p;
}

/** Send raw bytes over UDP; resolves with the reply, or undefined after `timeoutMs`. */
export function udpRaw(port: number, bytes: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => { s.close(); resolve(undefined); }, timeoutMs);
    s.on('message', (msg) => { clearTimeout(timer); s.close(); resolve(msg); });
    s.send(bytes, port, '127.0.0.1');
  });
}

export async function udpQuery(port: number, p: Packet): Promise<DecodedPacket> {
  const reply = await udpRaw(port, dnsPacket.encode(p));
  if (!reply) throw new Error('no UDP reply');
  return dnsPacket.decode(reply);
}

export function tcpQuery(port: number, p: Packet): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write(dnsPacket.streamEncode(p)));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.destroy();
        resolve(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    sock.on('error', reject);
    sock.setTimeout(3000, () => { sock.destroy(); reject(new Error('TCP query timed out')); });
  });
}

/** A stand-in upstream resolver on 127.0.0.1 (UDP and TCP, one port) that knows a few names. */
export class TinyUpstream {
  port = 0;
  queries = 0;
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;

  private answer(msg: Buffer): Buffer {
    this.queries++;
    const q = dnsPacket.decode(msg);
    const question = q.questions![0];
    const base = { id: q.id, type: 'response' as const, flags: dnsPacket.RECURSION_AVAILABLE, questions: [question] };
    if (question.name === 'example.com' && question.type === 'A') {
      return dnsPacket.encode({ ...base, answers: [{ type: 'A', name: 'example.com', ttl: 60, data: '192.0.2.10' }] });
    }
    if (question.name === 'example.com' && question.type === 'MX') {
      return dnsPacket.encode({ ...base, answers: [{ type: 'MX', name: 'example.com', ttl: 60, data: { preference: 10, exchange: 'mail.example.com' } }] });
    }
    if (question.name === '10.2.0.192.in-addr.arpa' && question.type === 'PTR') {
      return dnsPacket.encode({ ...base, answers: [{ type: 'PTR', name: question.name, ttl: 60, data: 'example.com' }] });
    }
    return dnsPacket.encode({ ...base, flags: base.flags | 3 });
  }

  /**
   * UDP and TCP on one port: the UDP port is ephemeral, and the same TCP port
   * may be taken by another test's socket, so a clash picks another port
   * (waiting on a listen that failed would hang the file).
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const udp = createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      const tcp = this.tcpServer();
      const listened = await new Promise<Error | undefined>((r) => {
        tcp.once('error', r);
        tcp.listen(udp.address().port, '127.0.0.1', () => r(undefined));
      });
      if (listened) {
        await new Promise<void>((r) => udp.close(() => r()));
        if (attempt < 10) continue;
        throw listened;
      }
      this.port = udp.address().port;
      udp.on('message', (msg, rinfo) => udp.send(this.answer(msg), rinfo.port, rinfo.address));
      this.udp = udp;
      this.tcp = tcp;
      return;
    }
  }

  private tcpServer(): Server {
    return createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => sock.destroy());
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const reply = this.answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          sock.write(Buffer.concat([len, reply]));
        }
      });
    });
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }
}

/** A temporary resolv.conf; call the returned function to delete it. */
export function tempResolvConf(text: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'weave-dns-test-'));
  const path = join(dir, 'resolv.conf');
  writeFileSync(path, text);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Poll until `cond` holds, failing after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The response code name of a decoded packet. */
export function rcodeOf(p: DecodedPacket): string {
  return RCODES[(p.flags ?? 0) & 0xf] ?? `RCODE${(p.flags ?? 0) & 0xf}`;
}

/** Each answer's data as text (A/PTR data is a string). */
export function dataOf(p: DecodedPacket): string[] {
  return (p.answers ?? []).map((a) => ('data' in a ? String(a.data) : ''));
}

/** Each answer's TTL. */
export function ttlsOf(p: DecodedPacket): (number | undefined)[] {
  return (p.answers ?? []).map((a) => ('ttl' in a ? a.ttl : undefined));
}

/** Send datagrams without waiting for any reply. */
export async function udpSendAll(port: number, datagrams: Buffer[]): Promise<void> {
  const s = createSocket('udp4');
  s.on('message', () => { /* replies are not of interest */ });
  for (const d of datagrams) await new Promise<void>((r) => s.send(d, port, '127.0.0.1', () => r()));
  s.close();
}
