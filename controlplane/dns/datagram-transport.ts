// The UDP seam of the DNS server: what it needs from a datagram socket, in
// batches. Answering a local name costs a few microseconds; receiving and
// sending it one datagram per callback and system call costs several times
// that, so an implementation may hand over every queued query at once and send
// all their replies in one call (dataplane/sys/batched-udp.ts does, with
// recvmmsg/sendmmsg). NodeDatagramTransport here is the portable one: one
// datagram per batch over node:dgram (IPv6 listen addresses, unit tests).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6Literal } from '../host-port.js';

/** Where a datagram came from; what a reply sent later is addressed to. */
export interface DatagramPeer {
  readonly address: string;
  readonly port: number;
}

/**
 * Datagrams received together. Valid only during the handler call: message
 * views may be reused for the next batch, so a query answered later must be copied.
 */
export interface ReceivedDatagrams {
  readonly count: number;
  /** The bytes of datagram `i`. */
  message(i: number): Buffer;
  /** Queue `reply` to the sender of datagram `i`; queued replies go out when the handler returns. */
  reply(i: number, reply: Uint8Array): void;
  /** The sender of datagram `i`, for a reply sent after the handler returned. */
  sender(i: number): DatagramPeer;
}

export type DatagramHandler = (batch: ReceivedDatagrams) => void;

/** Datagrams the transport dropped instead of handing over or sending, by reason. */
export interface DatagramTransportDrops {
  /** Received datagrams larger than the receive buffer (cut short by the kernel). */
  oversized: number;
  /** Replies the kernel refused (full send buffer, unreachable sender). */
  sendFailed: number;
}

export interface DatagramTransport {
  /** The bound port (the one asked for, or the one the kernel picked for port 0). */
  readonly port: number;
  readonly drops: DatagramTransportDrops;
  /** Start handing received datagrams to `handler`; called once. */
  start(handler: DatagramHandler): void;
  /** Send one datagram now (replies that were not ready during their batch). */
  sendTo(bytes: Uint8Array, to: DatagramPeer): void;
  /** Stops receiving and releases the socket; closing twice is harmless. */
  close(): Promise<void>;
}

/** Binds a transport on host:port; rejects with the socket's error (e.g. EADDRINUSE). */
export type OpenDatagramTransport = (host: string, port: number) => Promise<DatagramTransport>;

/** node:dgram, one datagram per batch. */
export class NodeDatagramTransport implements DatagramTransport {
  readonly drops: DatagramTransportDrops = { oversized: 0, sendFailed: 0 };
  private readonly onSent = (err: Error | null): void => {
    if (err) this.drops.sendFailed++;
  };

  private closed = false;

  private constructor(private readonly socket: Socket, readonly port: number) {}

  static async open(host: string, port: number): Promise<NodeDatagramTransport> {
    const socket = createSocket(isIPv6Literal(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const transport = new NodeDatagramTransport(socket, socket.address().port);
    // Per-datagram errors (ICMP unreachable from a departed client) must not stop the server.
    socket.on('error', () => { transport.drops.sendFailed++; });
    return transport;
  }

  start(handler: DatagramHandler): void {
    let message: Buffer = Buffer.alloc(0);
    let sender: DatagramPeer = { address: '', port: 0 };
    // One reusable batch object: a query costs no allocation here beyond what node:dgram makes.
    const batch: ReceivedDatagrams = {
      count: 1,
      message: () => message,
      reply: (_i, reply) => this.sendTo(reply, sender),
      sender: () => sender,
    };
    this.socket.on('message', (msg, rinfo) => {
      message = msg;
      sender = rinfo;
      handler(batch);
    });
  }

  sendTo(bytes: Uint8Array, to: DatagramPeer): void {
    this.socket.send(bytes, to.port, to.address, this.onSent);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export const openNodeDatagramTransport: OpenDatagramTransport = (host, port) => NodeDatagramTransport.open(host, port);
