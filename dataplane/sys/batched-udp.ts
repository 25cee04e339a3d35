// A datagram transport for the DNS server (controlplane/dns/datagram-transport.ts)
// that moves every queued query in one recvmmsg and every reply in one
// sendmmsg, on a non-blocking IPv4 UDP socket.
//
// Why: through node:dgram each query costs one libuv receive callback, one
// send request and an address lookup on the reply, several times what
// answering it costs. Here a burst of queries costs two system calls.
//
// Waiting for the next query is left to libuv: a node:dgram socket wraps our
// fd, so the event loop's own epoll wakes us and libuv's recvmsg hands over
// the first queued datagram, with no other thread involved. (Waiting on a
// worker thread instead, as poller.ts does for netlink, costs two thread
// wake-ups per wait: at a steady trickle of queries, one per query, and that
// cost more CPU than answering them.) Each such callback takes the rest of the
// queue with one recvmmsg, answers all of it and sends every reply with one
// sendmmsg. While recvmmsg keeps finding queries, the queue is drained again
// once per event-loop turn (setImmediate), as the worker-thread version did;
// a flood therefore never starves the router's other I/O, and each batch is
// bounded by 1 + BATCH datagrams in fixed native memory.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type {
  DatagramHandler, DatagramPeer, DatagramTransport, DatagramTransportDrops, ReceivedDatagrams,
} from '../../controlplane/dns/datagram-transport.js';
import { NetlinkError } from '../netlink/errors.js';
import * as libc from './libc.js';
import { AF_INET, MsgBatch, SOCK_DGRAM, sockaddrIn, writeSockaddrIn } from './sockets.js';

/** Datagrams per recvmmsg: a queue of this many is answered with one recvmmsg and one sendmmsg. */
const BATCH = 64;
/** Replies per sendmmsg: one to the datagram libuv received, one to each of a full recvmmsg. */
const SEND_BATCH = BATCH + 1;
/**
 * The largest query handed over. A receive slot holds one byte more, so a
 * datagram that fills it was longer and has been cut short by the kernel.
 */
const MAX_DATAGRAM_BYTES = 4096;
const SOCKADDR_IN_SIZE = 16;
const EMPTY = Buffer.alloc(0);

/**
 * One batch: the datagram libuv received (when it fits), then those recvmmsg
 * took from the queue behind it.
 */
class BatchView implements ReceivedDatagrams {
  count = 0;
  /** 1 when index 0 is the datagram libuv handed over (`first`), else 0. */
  firstCount = 0;
  first: Buffer = EMPTY;
  firstPort = 0;
  firstAddress = '';
  /** Its sender as a sockaddr_in (for sendmmsg); filled when its reply is queued. */
  readonly firstName = new Uint8Array(SOCKADDR_IN_SIZE);
  /** Receive slot of each handed-over datagram behind the first (oversized ones are skipped). */
  readonly slots = new Int32Array(BATCH);

  constructor(private readonly transport: BatchedUdpTransport, private readonly recv: MsgBatch) {}

  message(i: number): Buffer {
    if (i < this.firstCount) return this.first;
    const slot = this.slots[i - this.firstCount]!;
    const bytes = this.recv.bytes;
    return Buffer.from(bytes.buffer, bytes.byteOffset + this.recv.slotOffset(slot), this.recv.receivedLength(slot));
  }

  reply(i: number, reply: Uint8Array): void {
    if (i < this.firstCount) {
      writeSockaddrIn(this.firstName, this.firstAddress, this.firstPort);
      this.transport.queueReply(this.firstName, reply);
    } else {
      this.transport.queueReply(this.recv.sourceName(this.slots[i - this.firstCount]!), reply);
    }
  }

  sender(i: number): DatagramPeer {
    if (i < this.firstCount) return { address: this.firstAddress, port: this.firstPort };
    const { ip, port } = this.recv.sourceOf(this.slots[i - this.firstCount]!);
    return { address: ip, port };
  }
}

export class BatchedUdpTransport implements DatagramTransport {
  readonly drops: DatagramTransportDrops = { oversized: 0, sendFailed: 0 };
  private readonly recv = new MsgBatch(BATCH, MAX_DATAGRAM_BYTES + 1);
  private readonly send = new MsgBatch(SEND_BATCH, MAX_DATAGRAM_BYTES);
  private readonly view = new BatchView(this, this.recv);
  private queued = 0;
  private handler: DatagramHandler | undefined;
  /** libuv's handle on our fd once started; it owns (and closes) the fd from then on. */
  private socket: Socket | undefined;
  private closed = false;

  private constructor(private readonly fd: number, readonly port: number) {}

  /** Binds a non-blocking UDP socket on an IPv4 address; throws with the errno (e.g. EADDRINUSE). */
  static open(host: string, port: number): BatchedUdpTransport {
    const fd = libc.socket(AF_INET, SOCK_DGRAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
    if (fd < 0) throw new NetlinkError(libc.lastErrno(), 'open DNS UDP socket');
    try {
      if (libc.bindSocket(fd, sockaddrIn(host, port), SOCKADDR_IN_SIZE) < 0) {
        throw new NetlinkError(libc.lastErrno(), `bind UDP ${host}:${port}`);
      }
      const bound = Buffer.alloc(SOCKADDR_IN_SIZE);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(SOCKADDR_IN_SIZE);
      if (libc.getsockname(fd, bound, len) < 0) throw new NetlinkError(libc.lastErrno(), 'read the bound DNS UDP port (getsockname)');
      return new BatchedUdpTransport(fd, bound.readUInt16BE(2));
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  /**
   * Hands the fd to libuv only now: node:dgram reads as soon as it is bound,
   * and queries queued before the handler exists must wait in the kernel.
   */
  start(handler: DatagramHandler): void {
    if (this.handler) throw new Error('weave: DNS UDP transport already started');
    this.handler = handler;
    const socket = createSocket('udp4');
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    // Receive errors on an unconnected socket are per datagram; the socket stays usable.
    socket.on('error', () => { this.drops.sendFailed++; });
    socket.bind({ fd: this.fd });
    // libuv sets SO_REUSEADDR on a socket it adopts; cleared, the port stays ours alone.
    clearReuseAddr(this.fd);
    this.socket = socket;
  }

  /** Queues one reply for the sendmmsg that ends the batch; one too big for a slot goes out alone. */
  queueReply(to: Uint8Array, reply: Uint8Array): void {
    if (reply.length > MAX_DATAGRAM_BYTES) {
      this.sendNow(reply, Buffer.from(to.buffer, to.byteOffset, to.length));
      return;
    }
    if (this.queued === SEND_BATCH) this.flush();
    this.send.slot(this.queued).set(reply);
    this.send.setSend(this.queued, reply.length, to);
    this.queued++;
  }

  sendTo(bytes: Uint8Array, to: DatagramPeer): void {
    if (this.closed) return;
    let name: Buffer;
    try {
      name = sockaddrIn(to.address, to.port);
    } catch {
      this.drops.sendFailed++;
      return;
    }
    this.sendNow(bytes, name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    else libc.close(this.fd);
  }

  /** libuv received one datagram: answer it together with whatever is queued behind it. */
  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const view = this.view;
    view.firstCount = 0;
    if (msg.length > MAX_DATAGRAM_BYTES) {
      this.drops.oversized++;
    } else {
      view.first = msg;
      view.firstAddress = rinfo.address;
      view.firstPort = rinfo.port;
      view.firstCount = 1;
    }
    this.answerBatch();
  }

  /**
   * While queries keep arriving, the queue is drained once more per loop turn
   * (after the loop's other I/O) until a recvmmsg finds it empty. Measured on
   * the loaded 2-core machine, leaving that to libuv's next wake-up instead
   * halved the throughput with 100 queries in flight.
   */
  private readonly pump = (): void => {
    this.pumping = false;
    if (this.closed) return;
    this.view.firstCount = 0;
    this.answerBatch();
  };

  private pumping = false;

  /** Takes the queue behind the view's first datagram with one recvmmsg, answers the batch and sends the replies. */
  private answerBatch(): void {
    const view = this.view;
    view.count = view.firstCount;
    let n: number;
    try {
      n = this.recv.receive(this.fd, true);
    } catch {
      // A socket error (not EAGAIN) is reported once and cleared by the kernel: answer what we have.
      n = 0;
    }
    for (let slot = 0; slot < n; slot++) {
      if (this.recv.receivedLength(slot) > MAX_DATAGRAM_BYTES) this.drops.oversized++;
      else view.slots[view.count++ - view.firstCount] = slot;
    }
    try {
      if (view.count > 0) this.handler!(view);
    } catch {
      // The handler answers what it can before it fails; those replies still go out below.
    }
    view.first = EMPTY;
    this.flush();
    if (n > 0 && !this.pumping) {
      this.pumping = true;
      setImmediate(this.pump);
    }
  }

  /** sendmmsg of the queued replies; a reply the kernel refuses is counted and skipped. */
  private flush(): void {
    let from = 0;
    const to = this.queued;
    this.queued = 0;
    while (from < to) {
      const sent = this.send.send(this.fd, from, to);
      if (sent > 0) {
        from += sent;
        continue;
      }
      this.drops.sendFailed++;
      from++;
    }
  }

  private sendNow(bytes: Uint8Array, name: Buffer): void {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    if (libc.sendto(this.fd, buf, buf.length, libc.MSG_DONTWAIT, name, SOCKADDR_IN_SIZE) < 0) this.drops.sendFailed++;
  }
}

function clearReuseAddr(fd: number): void {
  const off = Buffer.alloc(4);
  libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, off, 4);
}

/** An OpenDatagramTransport for IPv4 listen addresses. */
export function openBatchedUdpTransport(host: string, port: number): Promise<DatagramTransport> {
  return Promise.resolve().then(() => BatchedUdpTransport.open(host, port));
}
