// The sleeve packet worker: a worker thread running one synchronous loop —
// wait (epoll), receive a batch, route, seal, send a batch — so per-packet work
// never touches the control plane's event loop. Read the pipeline top to
// bottom: captureBatch -> routeLocal -> Connection.send -> flush (seal, sendmmsg);
// receiveBatch -> open -> routeReceived -> inject / relay.
//
// Where the time goes is the kernel, once per packet: so runs of equal-sized
// datagrams leave as one UDP GSO send and arrive as one UDP_GRO receive, and
// in-order TCP segments are injected as one GSO frame (inject-coalescer.ts).
// The wire format is unchanged: every datagram the kernel cuts is a plain sleeve datagram (spec §5.2).
//
// Sockets are created by the main thread inside the datapath's namespace and
// handed over as fds, so a restarted worker reuses them and never needs setns.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import * as libc from '../sys/libc.js';
import { Errno } from '../netlink/errors.js';
import { EPOLL_CTL_ADD, EPOLL_EVENT_SIZE, EPOLLIN, epollControl, readyFd } from '../sys/epoll.js';
import type { PeerName } from '../../controlplane/mesh/types.js';
import type { ForwardingState } from '../../controlplane/router/datapath.js';
import { SleeveCryptoError } from '../../crypto/sleeve-crypto.js';
import { FRAME_HEADER_SIZE, MAX_UDP_PAYLOAD, NAME_SIZE, SEQ_SIZE, SECRETBOX_TAG_SIZE } from './constants.js';
import { peerNameBytes, readPeerNameCached } from './frame-codec.js';
import { classifySpecialFrame } from './special-frames.js';
import { dstMac, isMulticastMac, isStpFrame, srcMac } from './ethernet.js';
import { MacCache } from './mac-cache.js';
import { InjectCoalescer, VNET_HDR_SIZE } from './inject-coalescer.js';
import { connectionForForwarder, type SleeveConnection } from './connection.js';
import { framesThatFit, packAndSeal, packedLength } from './datagram-pack.js';
import { EarlyDatagrams } from './early-datagrams.js';
import { MsgBatch, UDP_MAX_SEGMENTS, pathMtu } from '../sys/sockets.js';
import { exposedCollector, fullGcIntervalMs, type Collect } from '../sys/full-gc.js';
import type { FromWorker, SleeveDropReason, ToWorker, WorkerConfig, WorkerStats } from './worker-protocol.js';

/**
 * Messages per recvmmsg/sendmmsg. Under bulk TCP every slot carries a GSO or
 * GRO datagram of up to SLOT bytes, so the batches (capture, receive, send,
 * inject, and the arena the receive batch is opened into) touch up to
 * 5 x BATCH x SLOT bytes: 20 MiB at 64, which a router then kept resident.
 * At 32 a receiving router peaked 4 MiB lower under iperf3 (81 -> 77 MiB),
 * at the same throughput: 32 such datagrams are already ~1,400 frames a call.
 */
const BATCH = 32;
const SLOT = 65536;
const STATS_INTERVAL_MS = 500;
const MAC_EXPIRY_CHECK_MS = 60_000;

const config = workerData as WorkerConfig;
const ourName: PeerName = config.ourName;

function post(msg: FromWorker): void {
  parentPort!.postMessage(msg);
}

const stats: WorkerStats = {
  captured: 0, injected: 0, framesSent: 0, framesReceived: 0, datagramsSent: 0, datagramsReceived: 0, drops: {}, cpuMicros: 0, fullCollections: 0,
};
function drop(reason: SleeveDropReason, count = 1): void {
  stats.drops[reason] = (stats.drops[reason] ?? 0) + count;
}

// ---- forwarding state (spec §5.8)

let nextHops = new Map<PeerName, PeerName>();
let broadcastHops = new Map<PeerName, PeerName[]>();
let sleeveNeighbours = new Set<PeerName>();
let knownPeers = new Set<PeerName>([ourName]);
const macs = new MacCache();

function applyState(state: ForwardingState): void {
  nextHops = new Map(state.peers.map((p) => [p.name, p.nextHop]));
  broadcastHops = new Map(state.broadcast.map((b) => [b.source, [...b.nextHops]]));
  sleeveNeighbours = new Set(state.neighbours.filter((n) => n.overlay === 'sleeve').map((n) => n.name));
  knownPeers = new Set([ourName, ...state.peers.map((p) => p.name)]);
}

// ---- connections

const connections = new Map<number, SleeveConnection>();
/** The forwarder datagrams from a sender name belong to (spec §5.2: the newest one). */
const byName = new Map<PeerName, SleeveConnection>();

function usable(name: PeerName): SleeveConnection | undefined {
  const c = byName.get(name);
  return c && c.established && !c.failed && sleeveNeighbours.has(name) ? c : undefined;
}

function addConnection(msg: Extract<ToWorker, { t: 'add' }>): void {
  const conn = connectionForForwarder(msg, ourName, { post, drop, deliver: routeReceived }, Date.now());
  connections.set(msg.id, conn);
  byName.set(msg.remoteName, conn);
  // The remote got here first and its heartbeat is already waiting: answer it now, not at its next retry.
  const now = Date.now();
  const held = early.take(msg.remoteName, now);
  if (held) {
    openDatagram(conn, held.datagram, held.from, now);
    endOfReceived(now);
  }
}

function removeConnection(id: number): void {
  const c = connections.get(id);
  if (!c) return;
  connections.delete(id);
  if (byName.get(c.remoteName) === c) {
    byName.delete(c.remoteName);
    for (const other of connections.values()) if (other.remoteName === c.remoteName) byName.set(c.remoteName, other);
  }
}

// ---- routing (spec §5.8)

const injectQueue: Uint8Array[] = [];

function unicast(src: PeerName, dst: PeerName, frame: Uint8Array): void {
  const hop = nextHops.get(dst);
  const conn = hop === undefined ? undefined : usable(hop);
  if (!conn) {
    drop('no-route');
    return;
  }
  conn.send(src, dst, frame, false);
}

function broadcast(src: PeerName, frame: Uint8Array): void {
  for (const hop of broadcastHops.get(src) ?? []) {
    const conn = usable(hop);
    if (conn) conn.send(src, hop, frame, true);
  }
}

/** A frame captured from the local bridge. */
function routeLocal(frame: Uint8Array): void {
  stats.captured++;
  if (frame.length < 14) return drop('runt');
  if (isStpFrame(frame)) return drop('stp');
  if (!isMulticastMac(frame, 6)) {
    const src = srcMac(frame);
    const owner = macs.lookup(src);
    if (owner !== undefined && owner !== ourName) return drop('src-mac-owned-by-peer');
    macs.learn(src, ourName);
  }
  if (isMulticastMac(frame, 0)) return broadcast(ourName, frame);
  const owner = macs.lookup(dstMac(frame));
  if (owner === undefined) return broadcast(ourName, frame);
  if (owner === ourName) return drop('local-destination');
  unicast(ourName, owner, frame);
}

/** A frame from a peer (or generated locally on its behalf). */
function routeReceived(src: PeerName, dst: PeerName, frame: Uint8Array): void {
  if (dst !== ourName) return unicast(src, dst, frame);
  if (frame.length < 14) return drop('runt');
  if (!isMulticastMac(frame, 6)) macs.learn(srcMac(frame), src);
  injectQueue.push(frame);
  if (isMulticastMac(frame, 0) || macs.lookup(dstMac(frame)) !== ourName) broadcast(src, frame);
}

// ---- receive pipeline

const udpBatch = new MsgBatch(BATCH, SLOT);
const captureBatch = new MsgBatch(BATCH, SLOT);
const sendBatch = new MsgBatch(BATCH, SLOT);
const scratch = new Uint8Array(SLOT);
/**
 * Decrypted bodies of one receive batch. Frames routed from them are views
 * until the batch is flushed, so the arena is only rewound after flushAll; it
 * holds at least everything one recvmmsg can return.
 */
const openArena = new Uint8Array(BATCH * SLOT);
let openArenaAt = 0;
const ourNameBytes = peerNameBytes(ourName);

/** The latest datagram of each sender we have no forwarder for yet, replayed when its forwarder is added. */
const early = new EarlyDatagrams();

function handleDatagram(datagram: Uint8Array, from: { ip: string; port: number }, now: number): void {
  stats.datagramsReceived++;
  if (datagram.length < NAME_SIZE) return drop('datagram-too-short');
  const sender = readPeerNameCached(datagram, 0);
  const conn = byName.get(sender);
  if (!conn) {
    early.keep(sender, datagram, from, now);
    return drop('unknown-sender');
  }
  if (conn.failed) return drop('unknown-sender');
  openDatagram(conn, datagram, from, now);
}

function openDatagram(conn: SleeveConnection, datagram: Uint8Array, from: { ip: string; port: number }, now: number): void {
  let body = datagram.subarray(NAME_SIZE);
  if (conn.opener) {
    try {
      const out = openArena.subarray(openArenaAt);
      const len = conn.opener.openInto(body, out);
      body = out.subarray(0, len);
      openArenaAt += len;
    } catch (e) {
      if (e instanceof SleeveCryptoError) return drop(e.kind);
      throw e;
    }
  }
  let at = 0;
  while (body.length - at >= FRAME_HEADER_SIZE) {
    const len = (body[at + 12]! << 8) | body[at + 13]!;
    const start = at + FRAME_HEADER_SIZE;
    if (len > body.length - start) return drop('frame-too-short');
    const src = readPeerNameCached(body, at);
    const dst = readPeerNameCached(body, at + NAME_SIZE);
    const frame = body.subarray(start, start + len);
    at = start + len;
    stats.framesReceived++;
    const special = classifySpecialFrame(frame);
    if (special) {
      if (src === conn.remoteName && dst === ourName) conn.handleSpecial(special, from, now);
      else drop('special-frame-misaddressed');
      continue;
    }
    if (!knownPeers.has(src) || !knownPeers.has(dst)) {
      drop('unknown-peer');
      continue;
    }
    if (!conn.established) {
      drop('forwarder-not-established');
      continue;
    }
    routeReceived(src, dst, frame);
  }
  if (at !== body.length) drop('trailing-garbage');
}

// ---- send pipeline: pack -> seal -> batch -> send

/** Whether UDP GSO works on this underlay; turned off for good when the kernel refuses it. */
let gsoUsable = true;

/**
 * Batch and send: datagrams go into sendmmsg slots. On the DF path a run of
 * equal-sized datagrams (bulk TCP) shares one slot and the kernel splits it
 * (UDP GSO): the underlay carries the same datagrams, but the stack is walked
 * once per run instead of once per datagram.
 */
class DatagramBatcher {
  private conn!: SleeveConnection;
  private df = false;
  private fd = 0;
  private name: Uint8Array | undefined;
  private gso = false;
  private now = 0;
  private slots = 0;
  /** Frames per datagram, slot by slot: what a failed send lost. */
  private readonly segmentsBySlot: number[][] = [];
  private slotSegments: number[] = [];
  // The slot being filled: bytes used, datagram size of its run, datagrams in it.
  private used = 0;
  private segSize = 0;
  private segCount = 0;

  begin(conn: SleeveConnection, df: boolean, now: number): void {
    this.conn = conn;
    this.df = df;
    this.now = now;
    this.fd = df ? conn.dfFd : config.udpFd;
    this.name = df ? undefined : conn.remoteSockaddr;
    this.gso = df && gsoUsable;
  }

  /** Where the next datagram of `length` bytes goes: its offset in `slot`, the open run's when it may join it. */
  place(length: number): number {
    // A datagram joins the open run when every earlier one was exactly segSize
    // and it is no larger (the kernel's rule: only the last may be shorter).
    const joins = this.gso && this.segCount > 0 && this.segCount < UDP_MAX_SEGMENTS && length <= this.segSize && this.used + length <= MAX_UDP_PAYLOAD;
    if (!joins) {
      this.closeSlot();
      this.segSize = length;
    }
    return this.used;
  }

  get slot(): Uint8Array {
    return sendBatch.slot(this.slots);
  }

  /** The datagram placed last, of `frames` frames, is written. */
  commit(length: number, frames: number): void {
    this.used += length;
    this.segCount++;
    this.slotSegments.push(frames);
    stats.framesSent += frames;
    if (length < this.segSize) this.closeSlot();
  }

  finish(): void {
    this.closeSlot();
    this.send();
  }

  private closeSlot(): void {
    if (this.segCount === 0) return;
    sendBatch.setSend(this.slots, this.used, this.name, this.segCount > 1 ? this.segSize : 0);
    this.segmentsBySlot.push(this.slotSegments);
    this.slotSegments = [];
    this.slots++;
    this.used = 0;
    this.segCount = 0;
    if (this.slots === BATCH) this.send();
  }

  private send(): void {
    const { conn, df, fd, segmentsBySlot } = this;
    let from = 0;
    while (from < this.slots) {
      const r = sendBatch.send(fd, from, this.slots);
      if (r > 0) {
        for (let k = from; k < from + r; k++) stats.datagramsSent += segmentsBySlot[k]!.length;
        from += r;
        continue;
      }
      const errno = -r;
      const lost = segmentsBySlot[from]!.length;
      if ((errno === Errno.EMSGSIZE || (errno === Errno.EINVAL && lost > 1)) && df) {
        // EINVAL: a GSO run whose datagram size no longer fits the path MTU.
        drop('emsgsize', lost);
        try {
          conn.handleMsgSize(pathMtu(fd), this.now);
        } catch {
          drop('path-mtu-unreadable');
        }
      } else if (errno === Errno.EAGAIN) {
        let rest = 0;
        for (let k = from; k < this.slots; k++) rest += segmentsBySlot[k]!.length;
        drop('send-buffer-full', rest);
        break;
      } else {
        if (lost > 1 && (errno === Errno.EIO || errno === Errno.EINVAL)) {
          gsoUsable = false;
          post({ t: 'log', message: `sleeve: UDP segmentation offload refused (errno ${errno}); sending datagrams one by one` });
        }
        drop(`send-errno-${errno}`, lost);
      }
      from++;
    }
    this.slots = 0;
    segmentsBySlot.length = 0;
  }
}

const batcher = new DatagramBatcher();

/** Sends a connection's queue for one path (DF or not): pack, seal, batch, send. */
function flushQueue(conn: SleeveConnection, df: boolean, now: number): void {
  const queue = df ? conn.dfQueue : conn.nonDfQueue;
  if (queue.length === 0) return;
  const maxPayload = conn.maxPayload(df);
  const sealOverhead = conn.sealer ? SEQ_SIZE + SECRETBOX_TAG_SIZE : 0;
  batcher.begin(conn, df, now);
  let i = 0;
  while (i < queue.length) {
    const n = framesThatFit(queue, i, conn.packetOverhead, maxPayload);
    if (n === 0) {
      drop('frame-too-big');
      i++;
      continue;
    }
    const length = NAME_SIZE + sealOverhead + packedLength(queue, i, n);
    const at = batcher.place(length);
    const slot = batcher.slot;
    slot.set(ourNameBytes, at);
    packAndSeal(conn, slot.subarray(at + NAME_SIZE, at + length), queue, i, n, df, scratch);
    batcher.commit(length, n);
    i += n;
  }
  batcher.finish();
  queue.length = 0;
}

function flushAll(now: number): void {
  for (const conn of connections.values()) {
    flushQueue(conn, true, now);
    flushQueue(conn, false, now);
  }
  if (injectQueue.length === 0) return;
  // Frames are views into receive slots; one copy into the inject slots is cheap next to the syscall.
  for (const f of injectQueue) coalescer.add(f, nextInjectSlot);
  coalescer.finish();
  sendInjectSlots(injectSlotCount);
  stats.injected += injectQueue.length;
  injectQueue.length = 0;
}

/** Slot memory for the coalescer's next frame; sends the batch first when it is full. */
function nextInjectSlot(): Uint8Array {
  if (injectSlotCount === BATCH) sendInjectSlots(BATCH);
  return injectBatch.slot(injectSlotCount);
}

const injectBatch = new MsgBatch(BATCH, SLOT);
let injectSlotCount = 0;
const coalescer = new InjectCoalescer((length) => {
  injectBatch.setSend(injectSlotCount, length);
  injectSlotCount++;
});

function sendInjectSlots(n: number): void {
  let sent = 0;
  while (sent < n) {
    const r = injectBatch.send(config.packetFd, sent, n);
    if (r > 0) {
      sent += r;
    } else {
      drop(-r === Errno.EAGAIN ? 'inject-buffer-full' : `inject-errno-${-r}`);
      sent++;
    }
  }
  injectSlotCount = 0;
}

/** This thread's CPU time in microseconds (utime + stime from /proc/thread-self/stat, in clock ticks of 10 ms). */
function threadCpuMicros(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return 0;
  }
}

// ---- the loop

const events = Buffer.alloc(EPOLL_EVENT_SIZE * 8);
for (const fd of [config.wakeFd, config.packetFd, config.udpFd]) watch(fd);

function watch(fd: number): void {
  // EEXIST after a restart: the epoll set is new per worker, so this only happens for a re-added fd.
  epollControl(config.epollFd, EPOLL_CTL_ADD, fd, EPOLLIN);
}

let running = true;

function drainControl(now: number): void {
  for (;;) {
    const m = receiveMessageOnPort(config.control);
    if (!m) return;
    const msg = m.message as ToWorker;
    switch (msg.t) {
      case 'add':
        addConnection(msg);
        watch(msg.dfFd);
        break;
      case 'remove':
        removeConnection(msg.id);
        break;
      case 'control': {
        const c = connections.get(msg.id);
        try {
          c?.handleControl(msg.subTag, msg.payload, now);
        } catch (e) {
          post({ t: 'log', message: `sleeve: bad control message from ${c?.remoteName.toString(16)}: ${(e as Error).message}` });
        }
        break;
      }
      case 'state':
        applyState(msg.state);
        break;
      case 'datagram':
        handleDatagram(msg.datagram, { ip: msg.ip, port: msg.port }, now);
        endOfReceived(now);
        break;
      case 'stop':
        running = false;
        break;
    }
  }
}

function receiveUdp(fd: number, now: number): void {
  const n = udpBatch.receive(fd, true, true);
  for (let i = 0; i < n; i++) {
    const whole = udpBatch.received(i);
    const from = udpBatch.sourceOf(i);
    // UDP_GRO: the slot may hold a train of datagrams of groSize bytes (the last may be shorter).
    const seg = udpBatch.groSize(i);
    if (seg > 0 && seg < whole.length) {
      for (let off = 0; off < whole.length; off += seg) handleDatagram(whole.subarray(off, Math.min(off + seg, whole.length)), from, now);
    } else handleDatagram(whole, from, now);
  }
  endOfReceived(now);
}

/** After received datagrams are handled: send and inject what they routed, then reuse the arena their frames were opened into. */
function endOfReceived(now: number): void {
  flushAll(now);
  openArenaAt = 0;
}

function receiveCapture(now: number): void {
  const n = captureBatch.receive(config.packetFd, false);
  for (let i = 0; i < n; i++) {
    // Each capture starts with the socket's virtio-net header (PACKET_VNET_HDR). Offloads are
    // off on the bridge side, so a segmentation request means the port was reconfigured.
    const c = captureBatch.received(i);
    if (c.length < VNET_HDR_SIZE) drop('runt');
    else if (c[1] !== 0) drop('capture-gso-frame');
    else routeLocal(c.subarray(VNET_HDR_SIZE));
  }
  flushAll(now);
}

let nextStats = 0;
let nextMacExpiry = Date.now() + MAC_EXPIRY_CHECK_MS;
// This isolate's heap, collected as the router collects its own (full-gc.ts), once
// the router has exposed V8's collection (it does when it has started: the flag
// would otherwise cost its modules Node's code cache); until then, none.
const fullGcEveryMs = fullGcIntervalMs(process.env);
let nextFullGc = fullGcEveryMs > 0 ? Date.now() + fullGcEveryMs : Infinity;
let collect: Collect | undefined;
const wakeBuf = Buffer.alloc(8);

post({ t: 'ready' });
while (running) {
  let now = Date.now();
  let wakeAt = Math.min(nextStats, nextMacExpiry, nextFullGc);
  for (const conn of connections.values()) wakeAt = Math.min(wakeAt, conn.tick(now));
  flushAll(now);
  const timeout = Math.max(0, Math.min(1000, wakeAt - now));
  const n = libc.epollWait(config.epollFd, events, 8, timeout);
  now = Date.now();
  drainControl(now);
  for (let i = 0; i < n; i++) {
    const fd = readyFd(events, i);
    if (fd === config.wakeFd) libc.read(config.wakeFd, wakeBuf, 8);
    else if (fd === config.packetFd) receiveCapture(now);
    else receiveUdp(fd, now);
  }
  if (now >= nextMacExpiry) {
    macs.expire();
    nextMacExpiry = now + MAC_EXPIRY_CHECK_MS;
  }
  if (now >= nextFullGc) {
    collect ??= exposedCollector();
    if (collect) {
      collect();
      stats.fullCollections++;
    }
    nextFullGc = now + fullGcEveryMs;
  }
  if (now >= nextStats) {
    stats.cpuMicros = threadCpuMicros();
    post({ t: 'stats', stats });
    nextStats = now + STATS_INTERVAL_MS;
  }
}
// The packet batches belong to this thread's isolate and go with it (also when the worker is terminated).
process.exit(0);
