// A datagram transport for the DNS server (controlplane/dns/datagram-transport.ts)
// that moves every queued query in one recvmmsg and every reply in one
// sendmmsg, on a non-blocking IPv4 UDP socket.
//
// Why: through node:dgram each query costs one libuv receive callback, one
// send request and an address lookup on the reply, several times what
// answering it costs. Here a burst of queries costs two system calls. The
// socket is drained on the event loop thread; only the wait for the next
// datagram runs on the shared epoll poller (poller.ts). Between batches the
// loop yields (setImmediate), so a query flood never starves the router's
// other I/O; each batch is bounded by BATCH slots of fixed native memory.
import type {
  DatagramHandler, DatagramPeer, DatagramTransport, DatagramTransportDrops, ReceivedDatagrams,
} from '../../controlplane/dns/datagram-transport.js';
import { NetlinkError } from '../netlink/errors.js';
import * as libc from './libc.js';
import { poller } from './poller.js';
import { AF_INET, MsgBatch, SOCK_DGRAM, sockaddrIn } from './sockets.js';

/** Datagrams per system call: a queue of this many is answered with one recvmmsg and one sendmmsg. */
const BATCH = 64;
/**
 * The largest query handed over. A receive slot holds one byte more, so a
 * datagram that fills it was longer and has been cut short by the kernel.
 */
const MAX_DATAGRAM_BYTES = 4096;
const SOCKADDR_IN_SIZE = 16;

class BatchView implements ReceivedDatagrams {
  count = 0;
  /** Receive slot of each handed-over datagram (oversized ones are skipped). */
  readonly slots = new Int32Array(BATCH);

  constructor(private readonly transport: BatchedUdpTransport, private readonly recv: MsgBatch) {}

  message(i: number): Buffer {
    const slot = this.slots[i]!;
    const bytes = this.recv.bytes;
    return Buffer.from(bytes.buffer, bytes.byteOffset + this.recv.slotOffset(slot), this.recv.receivedLength(slot));
  }

  reply(i: number, reply: Uint8Array): void {
    this.transport.queueReply(this.recv.sourceName(this.slots[i]!), reply);
  }

  sender(i: number): DatagramPeer {
    const { ip, port } = this.recv.sourceOf(this.slots[i]!);
    return { address: ip, port };
  }
}

export class BatchedUdpTransport implements DatagramTransport {
  readonly drops: DatagramTransportDrops = { oversized: 0, sendFailed: 0 };
  private readonly recv = new MsgBatch(BATCH, MAX_DATAGRAM_BYTES + 1);
  private readonly send = new MsgBatch(BATCH, MAX_DATAGRAM_BYTES);
  private readonly view = new BatchView(this, this.recv);
  private queued = 0;
  private handler: DatagramHandler | undefined;
  private closed = false;
  private readonly pump = (): void => this.drain();
  private readonly onWaitEnded = (): void => {
    if (!this.closed) this.drain();
  };

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

  start(handler: DatagramHandler): void {
    if (this.handler) throw new Error('weave: DNS UDP transport already started');
    this.handler = handler;
    this.drain();
  }

  /** Queues one reply for the sendmmsg that ends the batch; one too big for a slot goes out alone. */
  queueReply(to: Uint8Array, reply: Uint8Array): void {
    if (reply.length > MAX_DATAGRAM_BYTES) {
      this.sendNow(reply, Buffer.from(to.buffer, to.byteOffset, to.length));
      return;
    }
    if (this.queued === BATCH) this.flush();
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
    poller().forget(this.fd, new Error('DNS UDP transport closed'));
    libc.close(this.fd);
  }

  /** Answers what is queued, then yields to the event loop; with nothing queued, waits for the socket. */
  private drain(): void {
    if (this.closed) return;
    let n: number;
    try {
      n = this.recv.receive(this.fd, true);
    } catch {
      // A socket error (not EAGAIN) is reported once and cleared by the kernel: wait for the next datagram.
      n = 0;
    }
    if (n === 0) {
      poller().waitReadable(this.fd).then(this.onWaitEnded, () => { /* closed */ });
      return;
    }
    const view = this.view;
    view.count = 0;
    for (let slot = 0; slot < n; slot++) {
      if (this.recv.receivedLength(slot) > MAX_DATAGRAM_BYTES) this.drops.oversized++;
      else view.slots[view.count++] = slot;
    }
    try {
      if (view.count > 0) this.handler!(view);
    } catch {
      // The handler answers what it can before it fails; those replies still go out below.
    }
    this.flush();
    setImmediate(this.pump);
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

/** An OpenDatagramTransport for IPv4 listen addresses. */
export function openBatchedUdpTransport(host: string, port: number): Promise<DatagramTransport> {
  return Promise.resolve().then(() => BatchedUdpTransport.open(host, port));
}
