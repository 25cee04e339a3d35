// The sleeve's heartbeats on the main thread while its packet worker is parked.
//
// Every connection keeps a sleeve forwarder beside its fastdp one, as Weave's
// do: it heartbeats, so that the connection falls back to the sleeve at once
// when fastdp stops. While every connection uses fastdp those heartbeats are
// all the worker thread does, and the thread costs the router ~8 MiB (its own
// V8 isolate and Node instance). So the datapath parks the worker and this
// keeper carries the same connections (connection.ts, unchanged) on the main
// thread's poller: heartbeats and their timeout, the fragmentation test, the
// control messages, PMTU verification. Frames are not its job: the first data
// frame a peer sends us over the sleeve, like a forwarding state that puts a
// peer on the sleeve, makes the datapath start the worker again and hand the
// connections back (each forwarder's resume: established, address, MTU; the
// sealers' counters are shared memory, so no nonce is used twice). A router
// with the sleeve alone has every peer on it from the start: its keeper also
// watches the capture port, and the first local frame to carry starts the
// worker.
import type { PeerName } from '../../controlplane/mesh/types.js';
import { SleeveCryptoError } from '../../crypto/sleeve-crypto.js';
import { Errno } from '../netlink/errors.js';
import * as libc from '../sys/libc.js';
import { poller } from '../sys/poller.js';
import { MsgBatch, pathMtu } from '../sys/sockets.js';
import { FRAME_HEADER_SIZE, NAME_SIZE, SECRETBOX_TAG_SIZE, SEQ_SIZE } from './constants.js';
import { connectionForForwarder, type SleeveConnection } from './connection.js';
import { framesThatFit, packAndSeal, packedLength } from './datagram-pack.js';
import { EarlyDatagrams } from './early-datagrams.js';
import { describeFrame, isLinkAnnouncement } from './link-announcements.js';
import { VNET_HDR_SIZE } from './inject-coalescer.js';
import { peerNameBytes, readPeerNameCached } from './frame-codec.js';
import { classifySpecialFrame } from './special-frames.js';
import type { AddForwarder, FromWorker, SleeveDropReason } from './worker-protocol.js';

/** Largest datagram, and largest UDP_GRO train, a receive can return. */
const SLOT = 65536;
/**
 * Bytes of a captured frame read to classify it: the virtio-net header, Ethernet, IPv6, a hop-by-hop
 * header and the ICMPv6 type (link-announcements.ts).
 */
const CAPTURE_PEEK_SIZE = 128;
/** Heartbeats come one every few seconds per connection: a small batch drains any burst in a few calls. */
const RECEIVE_BATCH = 4;

export interface KeeperEvents {
  /** What the worker would have posted for a forwarder: sendControl, established, failed, forwarder. */
  emit(m: FromWorker): void;
  /** A peer sends frames over the sleeve: the worker is needed. */
  traffic(from: PeerName): void;
  /** A datagram the keeper read but the worker must handle (one with data frames, or read after the keeper stopped). */
  handOver(datagram: Uint8Array, source: { ip: string; port: number }): void;
  /** The capture port has a frame to send (watched only when given a capture fd), described: the worker is needed. */
  captured(frame: string): void;
  drop(reason: SleeveDropReason, count?: number): void;
  log(message: string): void;
}

/** What the keeper counts, under the names the worker's stats use (worker-protocol.ts). */
export interface KeeperCounters {
  datagramsReceived: number;
  framesReceived: number;
  datagramsSent: number;
  framesSent: number;
}

export class SleeveKeeper {
  readonly counters: KeeperCounters = { datagramsReceived: 0, framesReceived: 0, datagramsSent: 0, framesSent: 0 };
  private readonly connections = new Map<number, SleeveConnection>();
  /** The forwarder datagrams from a sender name belong to (spec §5.2: the newest one). */
  private readonly byName = new Map<PeerName, SleeveConnection>();
  private readonly early = new EarlyDatagrams();
  private readonly received = new MsgBatch(RECEIVE_BATCH, SLOT);
  private readonly outgoing = new MsgBatch(1, SLOT);
  /** Opened bodies, and plaintext being sealed. */
  private readonly opened = new Uint8Array(SLOT);
  private readonly scratch = new Uint8Array(SLOT);
  private readonly ourNameBytes: Uint8Array;
  private readonly watched = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  /**
   * `captureFd`, when given, is the capture port to watch for a local frame to send: the router has
   * no other overlay, so the first such frame needs the worker. The frame stays queued for the
   * worker to read; the interfaces' announcements before it are dropped (link-announcements.ts).
   */
  constructor(private readonly ourName: PeerName, private readonly udpFd: number, private readonly events: KeeperEvents, private readonly captureFd?: number) {
    this.ourNameBytes = peerNameBytes(ourName);
    this.watch(udpFd);
    if (captureFd !== undefined) void this.watchCapture(captureFd);
  }

  /** Carries a forwarder: a new one, or one handed over from the worker with its resume. */
  add(msg: AddForwarder): void {
    if (this.stopped) return;
    const conn = connectionForForwarder(msg, this.ourName, {
      post: (m) => this.events.emit(m),
      drop: (reason, count) => this.events.drop(reason as SleeveDropReason, count),
      // Only data frames make ICMP replies, and the keeper sends none.
      deliver: () => this.events.drop('sleeve-parked'),
    }, Date.now());
    this.connections.set(msg.id, conn);
    this.byName.set(msg.remoteName, conn);
    this.watch(msg.dfFd);
    const now = Date.now();
    const held = this.early.take(msg.remoteName, now);
    if (held) this.handleDatagram(held.datagram, held.from, now);
    this.run(now);
  }

  remove(id: number): void {
    const c = this.connections.get(id);
    if (!c) return;
    this.connections.delete(id);
    // Its DF socket stays watched until the datapath closes it: connected to the peer's address, it
    // takes the peer's datagrams before the next connection's socket does, and they go by sender name.
    if (this.byName.get(c.remoteName) === c) {
      this.byName.delete(c.remoteName);
      for (const other of this.connections.values()) if (other.remoteName === c.remoteName) this.byName.set(c.remoteName, other);
    }
  }

  /** A sleeve control message from the remote's forwarder (spec §5.5). */
  control(id: number, subTag: number, payload: Uint8Array): void {
    const c = this.connections.get(id);
    if (!c) return;
    const now = Date.now();
    try {
      c.handleControl(subTag, payload, now);
    } catch (e) {
      this.events.log(`sleeve: bad control message from ${c.remoteName.toString(16)}: ${(e as Error).message}`);
    }
    this.run(now);
  }

  /** Stops polling and timing; the datapath hands the connections to a new worker. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const fd of [...this.watched]) this.unwatch(fd);
    if (this.captureFd !== undefined) poller().forget(this.captureFd, new Error('sleeve keeper stopped watching'));
  }

  private watch(fd: number): void {
    if (this.watched.has(fd)) return;
    this.watched.add(fd);
    const loop = async (): Promise<void> => {
      while (!this.stopped && this.watched.has(fd)) {
        try {
          await poller().waitReadable(fd);
        } catch {
          return; // forgotten: stopped, or the forwarder went
        }
        if (!this.stopped && this.watched.has(fd)) this.receive(fd);
      }
    };
    void loop();
  }

  /** Waits until the capture port holds a frame to carry (not an announcement), then calls `captured`. */
  private async watchCapture(fd: number): Promise<void> {
    const head = Buffer.alloc(CAPTURE_PEEK_SIZE);
    while (!this.stopped) {
      try {
        await poller().waitReadable(fd);
      } catch {
        return; // forgotten: the keeper stopped
      }
      if (this.stopped) return;
      for (;;) {
        const n = libc.recvfrom(fd, head, head.length, libc.MSG_PEEK | libc.MSG_DONTWAIT, null, null);
        if (n < 0) {
          const errno = libc.lastErrno();
          if (errno === Errno.EAGAIN || errno === Errno.EINTR) break; // nothing left: wait again
          return this.events.captured(`a frame that could not be peeked at (errno ${errno})`);
        }
        const frame = head.subarray(VNET_HDR_SIZE, n);
        if (!isLinkAnnouncement(frame)) return this.events.captured(describeFrame(frame));
        // Consumed: a packet socket's read takes the whole frame, however short the buffer.
        libc.recvfrom(fd, head, head.length, libc.MSG_DONTWAIT, null, null);
        this.events.drop('link-announcement');
      }
    }
  }

  /** The datapath is about to close `fd` (a removed forwarder's DF socket). */
  release(fd: number): void {
    this.unwatch(fd);
  }

  private unwatch(fd: number): void {
    if (this.watched.delete(fd)) poller().forget(fd, new Error('sleeve keeper stopped watching'));
  }

  private receive(fd: number): void {
    const now = Date.now();
    try {
      for (;;) {
        const n = this.received.receive(fd, true, true);
        for (let i = 0; i < n; i++) {
          const whole = this.received.received(i);
          const from = this.received.sourceOf(i);
          // UDP_GRO: the slot may hold a train of datagrams of groSize bytes (the last may be shorter).
          const seg = this.received.groSize(i);
          if (seg > 0 && seg < whole.length) {
            for (let off = 0; off < whole.length; off += seg) this.handleDatagram(whole.subarray(off, Math.min(off + seg, whole.length)), from, now);
          } else this.handleDatagram(whole, from, now);
        }
        if (n < RECEIVE_BATCH || this.stopped) break;
      }
    } catch (e) {
      this.events.log(`sleeve: receive on fd ${fd} failed: ${(e as Error).message}`);
    }
    this.run(now);
  }

  private handleDatagram(datagram: Uint8Array, from: { ip: string; port: number }, now: number): void {
    // The rest of a batch read before a data frame stopped the keeper: the worker's now (it reuses our buffers).
    if (this.stopped) return this.events.handOver(datagram.slice(), from);
    this.counters.datagramsReceived++;
    if (datagram.length < NAME_SIZE) return this.events.drop('datagram-too-short');
    const sender = readPeerNameCached(datagram, 0);
    const conn = this.byName.get(sender);
    if (!conn) {
      this.early.keep(sender, datagram, from, now);
      return this.events.drop('unknown-sender');
    }
    if (conn.failed) return this.events.drop('unknown-sender');
    let body = datagram.subarray(NAME_SIZE);
    if (conn.opener) {
      try {
        body = this.opened.subarray(0, conn.opener.openInto(body, this.opened));
      } catch (e) {
        if (e instanceof SleeveCryptoError) return this.events.drop(e.kind);
        throw e;
      }
    }
    let at = 0;
    while (body.length - at >= FRAME_HEADER_SIZE) {
      const len = (body[at + 12]! << 8) | body[at + 13]!;
      const start = at + FRAME_HEADER_SIZE;
      if (len > body.length - start) return this.events.drop('frame-too-short');
      const src = readPeerNameCached(body, at);
      const dst = readPeerNameCached(body, at + NAME_SIZE);
      const frame = body.subarray(start, start + len);
      at = start + len;
      this.counters.framesReceived++;
      const special = classifySpecialFrame(frame);
      if (special) {
        if (src === conn.remoteName && dst === this.ourName) conn.handleSpecial(special, from, now);
        else this.events.drop('special-frame-misaddressed');
        continue;
      }
      if (!conn.established) {
        this.events.drop('forwarder-not-established');
        continue;
      }
      // A data frame: this peer forwards to us over the sleeve. The worker takes it from here, this
      // datagram included, whole (its special frames, handled here already, are idempotent).
      this.events.handOver(datagram.slice(), from);
      this.events.traffic(conn.remoteName);
      return;
    }
    if (at !== body.length) this.events.drop('trailing-garbage');
  }

  /** Runs the connections' timers, sends what they queued, and sets the timer for the next one due. */
  private run(now: number): void {
    if (this.stopped) return;
    let wakeAt = Infinity;
    for (const conn of this.connections.values()) {
      wakeAt = Math.min(wakeAt, conn.tick(now));
      this.flush(conn, true, now);
      this.flush(conn, false, now);
    }
    if (wakeAt === this.timerAt && this.timer) return;
    clearTimeout(this.timer);
    this.timerAt = wakeAt;
    this.timer = wakeAt === Infinity ? undefined : setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.run(Date.now());
    }, Math.max(0, wakeAt - now)).unref();
  }

  /** Sends a connection's queue for one path (DF or not): pack, seal, one datagram per send. */
  private flush(conn: SleeveConnection, df: boolean, now: number): void {
    const queue = df ? conn.dfQueue : conn.nonDfQueue;
    if (queue.length === 0) return;
    const maxPayload = conn.maxPayload(df);
    const sealOverhead = conn.sealer ? SEQ_SIZE + SECRETBOX_TAG_SIZE : 0;
    const fd = df ? conn.dfFd : this.udpFd;
    let i = 0;
    while (i < queue.length) {
      const n = framesThatFit(queue, i, conn.packetOverhead, maxPayload);
      if (n === 0) {
        this.events.drop('frame-too-big');
        i++;
        continue;
      }
      const length = NAME_SIZE + sealOverhead + packedLength(queue, i, n);
      const slot = this.outgoing.slot(0);
      slot.set(this.ourNameBytes, 0);
      packAndSeal(conn, slot.subarray(NAME_SIZE, length), queue, i, n, df, this.scratch);
      this.outgoing.setSend(0, length, df ? undefined : conn.remoteSockaddr);
      const r = this.outgoing.send(fd, 0, 1);
      if (r > 0) {
        this.counters.datagramsSent++;
        this.counters.framesSent += n;
      } else {
        if (-r === Errno.EMSGSIZE && df) {
          this.events.drop('emsgsize', n);
          try {
            conn.handleMsgSize(pathMtu(fd), now);
          } catch {
            this.events.drop('path-mtu-unreadable');
          }
        } else this.events.drop(`send-errno-${-r}`, n);
      }
      i += n;
    }
    queue.length = 0;
  }
}
