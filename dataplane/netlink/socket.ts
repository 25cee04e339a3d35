// A netlink socket: request/reply with sequence matching, multipart dumps,
// ACK/errno decoding with extended acks, and multicast subscriptions.
//
// The socket is non-blocking. Receives run on the event loop thread and never
// block; waiting for data is delegated to the shared epoll worker (poller.ts).
// One request is in flight per socket at a time (calls queue up), which is how
// the kernel's per-socket dump state expects to be used.

import * as libc from '../sys/libc.js';
import { Errno, NetlinkError, errnoName } from './errors.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  decodeErrorPayload,
  decodeMessages,
  encodeMessage,
  type NetlinkMessage,
} from './message.js';
import { poller } from '../sys/poller.js';
import { NetnsHandle, withNetns } from './netns.js';

// Protocols, linux/netlink.h.
export const NETLINK_ROUTE = 0;
export const NETLINK_XFRM = 6;
export const NETLINK_NETFILTER = 12;
export const NETLINK_GENERIC = 16;

/** SOL_NETLINK (linux/socket.h): level for the netlink socket options below. */
const SOL_NETLINK = 270;
// Socket options, linux/netlink.h.
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_DROP_MEMBERSHIP = 2;
/** NETLINK_CAP_ACK: error replies do not echo our whole request back. */
const NETLINK_CAP_ACK = 10;
/** NETLINK_EXT_ACK: errors carry NLMSGERR_ATTR_MSG, the kernel's reason in words. */
const NETLINK_EXT_ACK = 11;
/** sizeof(struct sockaddr_nl): u16 family, u16 pad, u32 pid, u32 groups. */
const SOCKADDR_NL_SIZE = 12;
/** Dumps interrupted by a concurrent change (NLM_F_DUMP_INTR) are retried this many times. */
const DUMP_RETRIES = 5;
/** Unread events kept in memory (beyond the kernel's own receive buffer). */
const MAX_QUEUED_EVENTS = 65536;

export interface OpenOptions {
  /** Create the socket inside this namespace (handle, name under /run/netns, or path). */
  netns?: NetnsHandle | string;
  /** Receive buffer size; large so a burst of events or a big dump is not dropped. Default 4 MiB. */
  receiveBufferBytes?: number;
  /** Multicast groups to join at once (e.g. RTNLGRP_LINK). */
  groups?: number[];
}

export interface Request {
  type: number;
  /** Extra flags; NLM_F_REQUEST is always set, NLM_F_ACK on non-dump requests. */
  flags?: number;
  /** Family header plus attributes. */
  payload: Buffer;
}

/** One message of a batch (requestBatch). */
export interface BatchMessage extends Request {
  /** Whether the kernel acks it (NLM_F_ACK) and the batch waits for that ack; default true. */
  ack?: boolean;
}

export interface RequestOptions {
  /** Words for errors: e.g. `create link "v0"`. */
  operation?: string;
  timeoutMs?: number;
}

interface Pending {
  /** The request's sequence number; a batch's run from seq to lastSeq. */
  seq: number;
  lastSeq: number;
  /** Acks still to come (a request's one, a batch's each); an error or a dump's end ends it sooner. */
  acksDue: number;
  operation: string;
  replies: NetlinkMessage[];
  interrupted: boolean;
  done: boolean;
  error?: Error;
}

function kernelAddress(): Buffer {
  const a = Buffer.alloc(SOCKADDR_NL_SIZE);
  a.writeUInt16LE(libc.AF_NETLINK, 0);
  return a; // nl_pid 0 = the kernel
}

export class NetlinkSocket {
  /** The port id the kernel gave this socket (nl_pid). */
  readonly portId: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private closed = false;
  private recvBuf = Buffer.alloc(64 * 1024);
  private readonly addrBuf = Buffer.alloc(SOCKADDR_NL_SIZE);
  private readonly addrLen = Buffer.alloc(4);
  private readonly peekBuf = Buffer.alloc(16);
  private readonly kernel = kernelAddress();
  private queue: Promise<unknown> = Promise.resolve();
  private pending: Pending | null = null;
  private readonly events: NetlinkMessage[] = [];
  private readonly groups = new Set<number>();
  private readable: Promise<void> | null = null;
  private receiveError: Error | null = null;

  private constructor(
    readonly fd: number,
    readonly protocol: number,
  ) {
    const addr = Buffer.alloc(SOCKADDR_NL_SIZE);
    this.addrLen.writeUInt32LE(SOCKADDR_NL_SIZE);
    if (libc.getsockname(fd, addr, this.addrLen) !== 0) {
      const errno = libc.lastErrno();
      libc.close(fd);
      throw new NetlinkError(errno, 'read netlink socket address (getsockname)');
    }
    this.portId = addr.readUInt32LE(4);
  }

  /** Opens and binds a netlink socket for `protocol` (NETLINK_ROUTE, NETLINK_GENERIC, NETLINK_XFRM, NETLINK_NETFILTER). */
  static open(protocol: number, options: OpenOptions = {}): NetlinkSocket {
    const create = (): number => {
      const fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, protocol);
      if (fd < 0) throw new NetlinkError(libc.lastErrno(), `open netlink socket (protocol ${protocol})`);
      return fd;
    };
    const fd = options.netns === undefined ? create() : withNetns(options.netns, create);
    try {
      const rcvbuf = options.receiveBufferBytes ?? 4 << 20;
      // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it SO_RCVBUF is capped at net.core.rmem_max.
      if (!setIntOption(fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, rcvbuf, 'SO_RCVBUFFORCE', true)) {
        setIntOption(fd, libc.SOL_SOCKET, libc.SO_RCVBUF, rcvbuf, 'SO_RCVBUF', false);
      }
      // Both are best effort: kernels before 4.12 lack them and still work.
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'NETLINK_EXT_ACK', true);
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, 'NETLINK_CAP_ACK', true);
      const local = Buffer.alloc(SOCKADDR_NL_SIZE);
      local.writeUInt16LE(libc.AF_NETLINK, 0); // nl_pid 0: the kernel picks a unique port id
      if (libc.bindSocket(fd, local, SOCKADDR_NL_SIZE) !== 0) {
        throw new NetlinkError(libc.lastErrno(), `bind netlink socket (protocol ${protocol})`);
      }
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    const sock = new NetlinkSocket(fd, protocol);
    try {
      for (const g of options.groups ?? []) sock.join(g);
    } catch (e) {
      sock.close();
      throw e;
    }
    return sock;
  }

  /** Receive buffer size the kernel granted (it reports double the requested value). */
  receiveBufferBytes(): number {
    const v = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(4);
    if (libc.getsockopt(this.fd, libc.SOL_SOCKET, libc.SO_RCVBUF, v, len) !== 0) {
      throw new NetlinkError(libc.lastErrno(), 'read SO_RCVBUF');
    }
    return v.readUInt32LE(0);
  }

  /** Joins a multicast group (e.g. RTNLGRP_LINK, or a genl family's group id). */
  join(group: number): void {
    this.assertOpen();
    setIntOption(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, `join multicast group ${group}`, false);
    this.groups.add(group);
  }

  leave(group: number): void {
    this.assertOpen();
    setIntOption(this.fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group, `leave multicast group ${group}`, false);
    this.groups.delete(group);
  }

  /**
   * Sends one request and resolves with its reply messages (none for a plain
   * ACK; every part of a dump). Rejects with NetlinkError on a kernel error.
   */
  request(req: Request, options: RequestOptions = {}): Promise<NetlinkMessage[]> {
    return this.inTurn(async () => {
      const isDump = ((req.flags ?? 0) & NLM_F_DUMP) === NLM_F_DUMP;
      for (let attempt = 0; ; attempt++) {
        const p = await this.requestOnce(req, isDump, options);
        if (!p.interrupted || attempt >= DUMP_RETRIES) return p.replies;
      }
    });
  }

  /**
   * Sends `messages` in one datagram, each with its own sequence number, and
   * waits for the ack of every one that asks for it: a transaction for the
   * subsystems that take one (nf_tables: a batch begin, the changes, a batch
   * end). Rejects with the first error the kernel returns for any of them.
   */
  requestBatch(messages: readonly BatchMessage[], options: RequestOptions = {}): Promise<void> {
    return this.inTurn(async () => {
      this.assertOpen();
      // seq 0 is what notifications carry, and a batch's numbers must not wrap inside it.
      if (this.seq + messages.length + 1 > 0xffffffff) this.seq = 0;
      const first = this.seq + 1;
      const wires = messages.map((m, i) => encodeMessage({
        type: m.type, flags: NLM_F_REQUEST | (m.flags ?? 0) | (m.ack === false ? 0 : NLM_F_ACK), seq: first + i, pid: 0, payload: m.payload,
      }));
      this.seq = first + messages.length - 1;
      const acksDue = messages.filter((m) => m.ack !== false).length;
      await this.exchange(Buffer.concat(wires), first, this.seq, acksDue, options.operation ?? 'netlink batch', options.timeoutMs);
    });
  }

  /** Runs `exchange` once the requests queued before it have ended (one in flight per socket). */
  private inTurn<T>(exchange: () => Promise<T>): Promise<T> {
    const result = this.queue.then(exchange, exchange);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async requestOnce(req: Request, isDump: boolean, options: RequestOptions): Promise<Pending> {
    this.assertOpen();
    this.seq = (this.seq + 1) >>> 0 || 1; // seq 0 is what notifications carry; never use it
    const flags = NLM_F_REQUEST | (req.flags ?? 0) | (isDump ? 0 : NLM_F_ACK);
    const wire = encodeMessage({ type: req.type, flags, seq: this.seq, pid: 0, payload: req.payload });
    return this.exchange(wire, this.seq, this.seq, 1, options.operation ?? `netlink request type ${req.type}`, options.timeoutMs);
  }

  /** Sends `wire` (sequence numbers seq..lastSeq) and reads until the kernel has answered it. */
  private async exchange(wire: Buffer, seq: number, lastSeq: number, acksDue: number, operation: string, timeoutMs = 30_000): Promise<Pending> {
    const pending: Pending = { seq, lastSeq, acksDue, operation, replies: [], interrupted: false, done: false };
    this.pending = pending;
    try {
      if (libc.sendto(this.fd, wire, wire.length, 0, this.kernel, SOCKADDR_NL_SIZE) < 0) {
        throw new NetlinkError(libc.lastErrno(), `${operation} (send)`);
      }
      const deadline = Date.now() + timeoutMs;
      while (!pending.done) {
        if (!(await this.readSome(deadline))) {
          throw new Error(`${operation}: no netlink reply within ${timeoutMs} ms`);
        }
      }
      if (pending.error) throw pending.error;
      return pending;
    } finally {
      this.pending = null;
    }
  }

  /**
   * Resolves with the next multicast/unsolicited messages (everything queued,
   * at least one), or an empty array after `timeoutMs`. Throws NetlinkError
   * ENOBUFS if the kernel dropped events because the buffer overflowed; the
   * caller should then re-read the full state with a dump.
   */
  async receive(timeoutMs = Infinity): Promise<NetlinkMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length === 0) {
      if (!(await this.readSome(deadline))) return [];
    }
    return this.events.splice(0);
  }

  /** Async iteration over event messages until the socket is closed. */
  async *messages(): AsyncGenerator<NetlinkMessage> {
    while (!this.closed) {
      let batch: NetlinkMessage[];
      try {
        batch = await this.receive();
      } catch (e) {
        if (this.closed) return;
        throw e;
      }
      yield* batch;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new Error(`netlink socket (protocol ${this.protocol}) was closed`);
    poller().forget(this.fd, err);
    libc.close(this.fd);
    if (this.pending && !this.pending.done) {
      this.pending.error = err;
      this.pending.done = true;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`netlink socket (protocol ${this.protocol}) is closed`);
  }

  /**
   * Reads and dispatches whatever is queued; waits (off-thread) if nothing is.
   * Returns false once `deadline` passes with nothing read.
   */
  private async readSome(deadline: number): Promise<boolean> {
    for (;;) {
      this.assertOpen();
      if (this.receiveError) {
        const e = this.receiveError;
        this.receiveError = null;
        throw e;
      }
      if (this.readAvailable()) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      this.readable ??= poller()
        .waitReadable(this.fd)
        .finally(() => {
          this.readable = null;
        });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.readable.then(() => false),
        new Promise<boolean>((resolve) => {
          if (Number.isFinite(left)) timer = setTimeout(() => resolve(true), left);
        }),
      ]).finally(() => clearTimeout(timer));
      // On timeout, end the shared wait; any other reader sharing it just
      // wakes, finds nothing, and waits again with its own deadline.
      if (timedOut) poller().cancel(this.fd);
    }
  }

  /** Drains every datagram queued on the socket. Returns true if any was read. */
  private readAvailable(): boolean {
    let any = false;
    for (;;) {
      const n = this.recvDatagram();
      if (n === null) return any;
      any = true;
      const fromGroups = this.addrBuf.readUInt32LE(8);
      const fromPid = this.addrBuf.readUInt32LE(4);
      if (fromPid !== 0) continue; // only the kernel talks to us
      for (const msg of decodeMessages(Buffer.from(this.recvBuf.subarray(0, n)))) this.dispatch(msg, fromGroups !== 0);
    }
  }

  /** One non-blocking recv; the datagram is left in recvBuf. null when nothing is queued. */
  private recvDatagram(): number | null {
    // Peek with MSG_TRUNC first: it reports the full datagram size, so the
    // buffer can grow instead of silently cutting a large dump part or upcall.
    const size = libc.recvfrom(this.fd, this.peekBuf, this.peekBuf.length, libc.MSG_PEEK | libc.MSG_TRUNC | libc.MSG_DONTWAIT, null, null);
    if (size < 0) return this.recvFailed(libc.lastErrno());
    if (size > this.recvBuf.length) this.recvBuf = Buffer.alloc(Math.max(size, this.recvBuf.length * 2));
    this.addrLen.writeUInt32LE(SOCKADDR_NL_SIZE);
    const n = libc.recvfrom(this.fd, this.recvBuf, this.recvBuf.length, libc.MSG_DONTWAIT | libc.MSG_TRUNC, this.addrBuf, this.addrLen);
    if (n < 0) return this.recvFailed(libc.lastErrno());
    if (n > this.recvBuf.length) {
      throw new Error(`netlink datagram of ${n} bytes was truncated to ${this.recvBuf.length}`);
    }
    return n;
  }

  private recvFailed(errno: number): null {
    if (errno === Errno.EAGAIN || errno === Errno.EINTR) return null;
    if (errno === Errno.ENOBUFS) {
      // The kernel dropped messages: a pending request may have lost its reply
      // and subscribers have lost events. Both must start over.
      const err = new NetlinkError(
        Errno.ENOBUFS,
        `netlink socket receive buffer overflowed; messages were lost (re-dump state, or open with a larger receiveBufferBytes)`,
      );
      if (this.pending && !this.pending.done) {
        this.pending.error = err;
        this.pending.done = true;
      } else {
        this.receiveError = err;
      }
      return null;
    }
    throw new NetlinkError(errno, `receive on netlink socket (protocol ${this.protocol}): ${errnoName(errno)}`);
  }

  private dispatch(msg: NetlinkMessage, multicast: boolean): void {
    const p = this.pending;
    if (multicast || p === null || p.done || msg.seq < p.seq || msg.seq > p.lastSeq || msg.pid !== this.portId) {
      // Notifications; and replies to requests that timed out are dropped.
      if (multicast || msg.seq === 0) {
        if (this.events.length >= MAX_QUEUED_EVENTS) {
          // Nobody is reading: behave like a full kernel buffer rather than grow without bound.
          this.events.length = 0;
          this.receiveError = new NetlinkError(Errno.ENOBUFS, `netlink event queue exceeded ${MAX_QUEUED_EVENTS} unread messages; events were dropped (re-dump state)`);
        }
        this.events.push(msg);
      }
      return;
    }
    if ((msg.flags & NLM_F_DUMP_INTR) !== 0) p.interrupted = true;
    switch (msg.type) {
      case NLMSG_NOOP:
        return;
      case NLMSG_ERROR: {
        const e = decodeErrorPayload(msg);
        if (e.errno !== 0) {
          // A batch that failed anywhere failed whole; the acks of its other messages, if any
          // follow, carry sequence numbers no later request uses and are dropped.
          p.error = new NetlinkError(e.errno, p.operation, e.message);
          p.done = true;
          return;
        }
        // A batch is answered once every message that asked for an ack has one.
        p.done = --p.acksDue === 0;
        return;
      }
      case NLMSG_DONE: {
        // A dump may end with a negative errno in NLMSG_DONE's payload.
        const status = msg.payload.length >= 4 ? msg.payload.readInt32LE(0) : 0;
        if (status < 0) p.error = new NetlinkError(-status, p.operation);
        p.done = true;
        return;
      }
      case NLMSG_OVERRUN:
        p.error = new Error(`${p.operation}: kernel reported NLMSG_OVERRUN (data lost)`);
        p.done = true;
        return;
      default:
        p.replies.push(msg);
    }
  }
}

/** Sets an int socket option; returns false instead of throwing when `soft`. */
function setIntOption(fd: number, level: number, name: number, value: number, what: string, soft: boolean): boolean {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(value >>> 0);
  if (libc.setsockopt(fd, level, name, v, 4) === 0) return true;
  if (soft) return false;
  throw new NetlinkError(libc.lastErrno(), `set socket option ${what}`);
}
