// Forwarding queries we are not authoritative for to the resolv.conf servers,
// in order, each with the fallback timeout (user-surface spec §4.3, §6.6).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { isIPv6Literal } from '../host-port.js';
import type { UpstreamServer } from './resolv-conf.js';

/** Ask one server over UDP; resolves with the reply carrying the query's id, or undefined. */
export function queryUdp(query: Buffer, server: UpstreamServer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6Literal(server.address) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    let done = false;
    const finish = (reply: Buffer | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('error', () => finish(undefined));
    socket.on('message', (msg, rinfo) => {
      // Only the server we asked, answering our id, counts (spoofed or stray datagrams are ignored).
      if (rinfo.port !== server.port || msg.length < 12 || msg.readUInt16BE(0) !== id) return;
      finish(msg);
    });
    socket.send(query, server.port, server.address, (err) => {
      if (err) finish(undefined);
    });
  });
}

/** Ask one server over TCP (2-byte length framing, RFC 1035 §4.2.2). */
export function queryTcp(query: Buffer, server: UpstreamServer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.address, port: server.port });
    let buffered = Buffer.alloc(0);
    let done = false;
    const finish = (reply: Buffer | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('error', () => finish(undefined));
    socket.on('close', () => finish(undefined));
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      socket.write(Buffer.concat([len, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const n = buffered.readUInt16BE(0);
      if (buffered.length >= 2 + n) finish(buffered.subarray(2, 2 + n));
    });
  });
}

/** Try each server in order; the first reply wins, undefined when none answered. */
export async function forward(
  query: Buffer,
  servers: UpstreamServer[],
  transport: 'udp' | 'tcp',
  timeoutMs: number,
): Promise<Buffer | undefined> {
  for (const server of servers) {
    const reply = transport === 'udp'
      ? await queryUdp(query, server, timeoutMs)
      : await queryTcp(query, server, timeoutMs);
    if (reply) return reply;
  }
  return undefined;
}
