// SleeveDatapath: the sleeve overlay (spec §5) behind the Datapath seam.
//
// This object lives on the control plane's thread and only exchanges small
// messages with the packet worker (worker.ts). It owns every kernel resource —
// the capture port, the UDP sockets, the epoll set — so that when the worker
// dies it can start a new one on the same sockets and re-create the forwarders
// where they were (established, address, MTU, encryption counters): the
// router's connections stay up and traffic resumes.
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import type { PeerName } from '../../controlplane/mesh/types.js';
import type {
  Datapath, DatapathStats, ForwarderEvents, ForwarderParams, ForwarderStatus, ForwardingState, OverlayForwarder,
} from '../../controlplane/router/datapath.js';
import * as libc from '../sys/libc.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, EPOLL_CLOEXEC } from '../sys/epoll.js';
import { Rtnl, withNetns } from '../netlink/index.js';
import { ensureCapturePort } from './capture.js';
import { closeFd, openPacketSocket, openUdpSocket } from '../sys/sockets.js';
import type {
  AddForwarder, ForwarderResume, FromWorker, SleeveDropReason, ToWorker, WorkerConfig, WorkerStats,
} from './worker-protocol.js';
import { SLEEVE_WORKER_RESOURCE_LIMITS, SLEEVE_WORKER_URL } from './worker-url.js';
import { SleeveKeeper } from './keeper.js';
import { DEFAULT_BRIDGE, DEFAULT_MESH_PORT } from '../../controlplane/well-known.js';

/** Weave's default overlay MTU for containers (user-surface spec: --mtu default). */
export const DEFAULT_OVERLAY_MTU = 1376;

/** What wakes the worker: an eventfd counts the 8-byte little-endian values written to it. */
const WAKE_ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/**
 * When the packet worker (a thread with its own V8 isolate, ~8 MiB) starts:
 * - 'at-open': when the datapath opens;
 * - 'first-forwarder': with the first connection's forwarder, so a router
 *   with no connection over the sleeve pays neither its memory nor its start;
 * - 'sleeve-connection': opened parked, the keeper (keeper.ts) heartbeating on
 *   the main thread, until a connection uses the sleeve. For a router whose
 *   connections a fast datapath is expected to carry;
 * - 'first-frame': opened parked until frames are to cross the sleeve: a frame
 *   on the capture port (not an interface's announcement of itself,
 *   link-announcements.ts), or a peer's data datagram. For a router whose only
 *   overlay is the sleeve, where the forwarding state puts every peer on it
 *   from the first connection: without traffic, the keeper's heartbeats are all
 *   the sleeve does, and a worker per router is not needed for them.
 */
export type WorkerStart = 'at-open' | 'first-forwarder' | 'sleeve-connection' | 'first-frame';

export interface SleeveDatapathOptions {
  /** This router's peer name: the sender name of every datagram (spec §5.2). */
  ourName: PeerName;
  /** The bridge containers are attached to (default `weave`). */
  bridge?: string;
  /** Namespace holding the bridge and the underlay (name under /run/netns or a path); current one when omitted. */
  netns?: string;
  /** Sleeve UDP port, equal to the mesh TCP port (spec §0). */
  port?: number;
  /** Address to bind (`--host`), default all. */
  bindIp?: string;
  /** Overlay MTU offered to containers (default 1376). */
  mtu?: number;
  /** Restart the worker when it dies (default true). */
  restartWorker?: boolean;
  /** When the packet worker starts (default 'at-open'); see WorkerStart. */
  workerStart?: WorkerStart;
  /**
   * Park the packet worker once no connection has used the sleeve for this
   * long, its heartbeats kept on the main thread (keeper.ts); 0 or absent:
   * never. It starts again as soon as a connection needs the sleeve.
   */
  parkIdleWorkerAfterMs?: number;
  log?: (message: string) => void;
}

/**
 * Datagrams kept for a starting worker: the burst one peer's first frames make
 * while the worker boots (its own receive queue holds what comes after).
 */
const MAX_HANDED_OVER = 64;

class SleeveForwarder implements OverlayForwarder {
  state: ForwarderStatus['state'] = 'initiating';
  reason: string | undefined;
  resume: ForwarderResume = { established: false, stackFrag: false };
  readonly counters = new SharedArrayBuffer(16);
  stopped = false;

  constructor(
    readonly id: number,
    readonly params: ForwarderParams,
    readonly events: ForwarderEvents,
    readonly dfFd: number,
    private readonly owner: SleeveDatapath,
  ) {}

  addMessage(): AddForwarder {
    const p = this.params;
    return {
      t: 'add', id: this.id, remoteName: p.remoteName, remoteIp: p.remoteIp, remotePort: p.remotePort,
      outbound: p.outbound, connUID: p.connUID, sessionKey: p.encrypt ? p.sessionKey : undefined,
      dfFd: this.dfFd, counters: this.counters, resume: this.resume.established || this.resume.remoteIp ? this.resume : undefined,
    };
  }

  handleControlMessage(subTag: number, payload: Uint8Array): void {
    if (this.stopped) return;
    this.owner.deliverControl(this.id, subTag, Uint8Array.from(payload));
  }

  status(): ForwarderStatus {
    return { state: this.state, encrypted: this.params.encrypt, mtu: this.resume.mtu, reason: this.reason };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.owner.removeForwarder(this);
  }
}

function emptyStats(): WorkerStats {
  return { captured: 0, injected: 0, framesSent: 0, framesReceived: 0, datagramsSent: 0, datagramsReceived: 0, drops: {}, cpuMicros: 0, fullCollections: 0 };
}

/** `into` plus `s`, counter by counter: what workers that have exited counted stays counted. */
function addStats(into: WorkerStats, s: WorkerStats): void {
  into.captured += s.captured;
  into.injected += s.injected;
  into.framesSent += s.framesSent;
  into.framesReceived += s.framesReceived;
  into.datagramsSent += s.datagramsSent;
  into.datagramsReceived += s.datagramsReceived;
  into.cpuMicros += s.cpuMicros;
  into.fullCollections += s.fullCollections;
  for (const [k, v] of Object.entries(s.drops) as Array<[SleeveDropReason, number | undefined]>) into.drops[k] = (into.drops[k] ?? 0) + (v ?? 0);
}

function toBigStats(s: WorkerStats): DatapathStats {
  const drops: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(s.drops)) if (v !== undefined) drops[k] = BigInt(v);
  return { kernelForwarded: 0n, userspace: BigInt(s.captured + s.framesReceived), drops };
}

export class SleeveDatapath implements Datapath {
  readonly overlay = 'sleeve' as const;
  readonly kind = 'sleeve' as const;
  readonly mtu: number;
  private readonly forwarders = new Map<number, SleeveForwarder>();
  private nextId = 1;
  private worker: Worker | undefined;
  private control: MessagePort | undefined;
  private epollFd = -1;
  private state: ForwardingState | undefined;
  private lastStats: WorkerStats | undefined;
  /** What earlier workers, and the keeper while the worker was parked, counted. */
  private readonly carried = emptyStats();
  /** Carries the forwarders' heartbeats while the worker is parked. */
  private keeper: SleeveKeeper | undefined;
  /** Datagrams the keeper read that the worker must handle when it starts (keeper.ts handOver). */
  private handedOver: Array<{ datagram: Uint8Array; ip: string; port: number }> = [];
  /** The worker is stopping to be parked: forwarders and control messages wait for the keeper. */
  private parking: Array<{ id: number; subTag: number; payload: Uint8Array }> | undefined;
  private parkTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private restarts = 0;
  private readonly log: (message: string) => void;
  private readyWaiters: Array<() => void> = [];
  private wakeQueued = false;
  private fdsClosed = false;

  private constructor(
    private readonly opts: SleeveDatapathOptions,
    private readonly packetFd: number,
    private readonly udpFd: number,
    private readonly wakeFd: number,
  ) {
    this.mtu = opts.mtu ?? DEFAULT_OVERLAY_MTU;
    this.log = opts.log ?? ((m) => process.emitWarning(m));
  }

  /** Sets up the capture port on the bridge, opens the sockets and starts the packet worker. */
  static async create(opts: SleeveDatapathOptions): Promise<SleeveDatapath> {
    const bridge = opts.bridge ?? DEFAULT_BRIDGE;
    const port = opts.port ?? DEFAULT_MESH_PORT;
    const rtnl = Rtnl.open({ netns: opts.netns });
    let ifindex: number;
    try {
      ifindex = await ensureCapturePort(rtnl, { bridge, netns: opts.netns });
    } finally {
      rtnl.close();
    }
    const inNs = <T>(fn: () => T): T => (opts.netns ? withNetns(opts.netns, fn) : fn());
    const packetFd = inNs(() => openPacketSocket(ifindex));
    let udpFd = -1;
    try {
      udpFd = inNs(() => openUdpSocket(opts.bindIp ?? '0.0.0.0', port, false));
    } catch (e) {
      closeFd(packetFd);
      throw e;
    }
    const wakeFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const dp = new SleeveDatapath(opts, packetFd, udpFd, wakeFd);
    const workerStart = opts.workerStart ?? 'at-open';
    if (workerStart === 'sleeve-connection' || workerStart === 'first-frame') {
      dp.startKeeper([]);
      dp.log(`sleeve: packet worker parked until ${workerStart === 'first-frame' ? 'a frame crosses the sleeve' : 'a connection uses the sleeve'}; its heartbeats run on the main thread`);
    } else if (workerStart === 'at-open') await dp.startWorker();
    return dp;
  }

  /** How many times the worker was restarted after dying. */
  get workerRestarts(): number {
    return this.restarts;
  }

  /** The worker's thread id (tests and diagnostics). */
  get workerThreadId(): number | undefined {
    return this.worker?.threadId;
  }

  private startWorker(): Promise<void> {
    if (this.epollFd >= 0) closeFd(this.epollFd);
    this.epollFd = libc.epollCreate1(EPOLL_CLOEXEC);
    if (this.epollFd < 0) throw new Error(`sleeve: epoll_create1 failed: errno ${libc.lastErrno()}`);
    const { port1, port2 } = new MessageChannel();
    this.control = port1;
    const config: WorkerConfig = {
      ourName: this.opts.ourName, port: this.opts.port ?? DEFAULT_MESH_PORT,
      epollFd: this.epollFd, wakeFd: this.wakeFd, packetFd: this.packetFd, udpFd: this.udpFd, control: port2,
    };
    const worker = new Worker(SLEEVE_WORKER_URL, { workerData: config, transferList: [port2], resourceLimits: SLEEVE_WORKER_RESOURCE_LIMITS });
    this.worker = worker;
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    worker.on('message', (m: FromWorker) => this.onWorkerMessage(m));
    worker.on('error', (err) => this.log(`sleeve: packet worker failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (this.lastStats) addStats(this.carried, this.lastStats);
      this.lastStats = undefined;
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.closed || this.opts.restartWorker === false) return;
      this.log(`sleeve: packet worker exited (code ${code}); restarting it`);
      this.restarts++;
      void this.startWorker().catch((e: Error) => this.log(`sleeve: cannot restart packet worker: ${e.message}`));
    });
    for (const f of this.forwarders.values()) this.post(f.addMessage());
    if (this.state) this.post({ t: 'state', state: this.state });
    for (const d of this.handedOver.splice(0)) this.post({ t: 'datagram', ...d });
    this.parkLater();
    return ready;
  }

  /**
   * Sends a message to the worker and wakes it from epoll_wait, once per turn
   * of the event loop: woken, the worker drains every message queued, and
   * while a mesh forms the messages (control messages, forwarders, states)
   * come in bursts.
   */
  post(msg: ToWorker): void {
    if (!this.control) return;
    this.control.postMessage(msg);
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    queueMicrotask(() => {
      this.wakeQueued = false;
      if (!this.fdsClosed) libc.write(this.wakeFd, WAKE_ONE, 8);
    });
  }

  private onWorkerMessage(m: FromWorker): void {
    if (m.t === 'ready') {
      for (const w of this.readyWaiters.splice(0)) w();
      return;
    }
    if (m.t === 'stats') {
      this.lastStats = m.stats;
      return;
    }
    if (m.t === 'log') {
      this.log(m.message);
      return;
    }
    this.forwarderEvent(m);
  }

  /** An event of one forwarder, from the worker or the keeper. */
  private forwarderEvent(m: Extract<FromWorker, { id: number }>): void {
    const f = this.forwarders.get(m.id);
    if (!f || f.stopped) return;
    switch (m.t) {
      case 'sendControl':
        f.events.sendControlMessage(m.subTag, m.payload);
        break;
      case 'established':
        if (f.state !== 'established') {
          f.state = 'established';
          f.resume.established = true;
          f.events.established();
        }
        break;
      case 'failed':
        f.state = 'failed';
        f.reason = m.reason;
        f.events.failed(new Error(m.reason));
        break;
      case 'forwarder':
        f.resume.remoteIp = m.remoteIp;
        f.resume.remotePort = m.remotePort;
        f.resume.mtu = m.mtu;
        f.resume.stackFrag = m.stackFrag;
        f.resume.heartbeatSeen = m.heartbeatSeen;
        f.resume.search = m.search;
        f.resume.mtuCeiling = m.mtuCeiling;
        f.resume.verifyFloorMs = m.verifyFloorMs;
        break;
    }
  }

  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder {
    if (this.closed) throw new Error('sleeve: datapath is closed; cannot create a forwarder');
    if (params.encrypt && (!params.sessionKey || params.sessionKey.length !== 32)) {
      throw new Error(`sleeve: connection to ${params.remoteName.toString(16)} must be encrypted but has no 32-byte session key`);
    }
    const port = this.opts.port ?? DEFAULT_MESH_PORT;
    const open = (): number => openUdpSocket(this.opts.bindIp ?? '0.0.0.0', port, true);
    const dfFd = this.opts.netns ? withNetns(this.opts.netns, open) : open();
    const f = new SleeveForwarder(this.nextId++, params, events, dfFd, this);
    this.forwarders.set(f.id, f);
    // A worker starting now is sent every forwarder (this one included) as it starts; one being parked
    // leaves them all to the keeper.
    if (this.keeper) this.keeper.add(f.addMessage());
    else if (this.control) this.post(f.addMessage());
    else if (!this.parking) void this.startWorker();
    return f;
  }

  removeForwarder(f: SleeveForwarder): void {
    this.forwarders.delete(f.id);
    this.keeper?.remove(f.id);
    this.post({ t: 'remove', id: f.id });
    // The worker may still be in the middle of a send on this fd; close it once the remove was handled.
    setTimeout(() => {
      this.keeper?.release(f.dfFd);
      closeFd(f.dfFd);
    }, 2000).unref();
  }

  applyForwardingState(state: ForwardingState): void {
    this.state = state;
    const onSleeve = state.neighbours.find((n) => n.overlay === 'sleeve');
    if (onSleeve) {
      clearTimeout(this.parkTimer);
      this.parkTimer = undefined;
      if (this.keeper && this.opts.workerStart !== 'first-frame') this.unpark(`connection to ${onSleeve.name.toString(16)} uses the sleeve`);
    } else this.parkLater();
    this.post({ t: 'state', state });
  }

  /** A sleeve control message from the remote's forwarder, for whoever carries the forwarder now. */
  deliverControl(id: number, subTag: number, payload: Uint8Array): void {
    if (this.keeper) this.keeper.control(id, subTag, payload);
    else if (this.parking) this.parking.push({ id, subTag, payload });
    else this.post({ t: 'control', id, subTag, payload });
  }

  /** Whether the packet worker is parked (its forwarders' heartbeats on the main thread). */
  get parked(): boolean {
    return this.keeper !== undefined;
  }

  private sleeveInUse(): boolean {
    return this.state?.neighbours.some((n) => n.overlay === 'sleeve') ?? false;
  }

  /**
   * Parks the worker once, for the configured time, no connection of ours
   * has used the sleeve and no peer has sent us frames over it (a peer whose
   * fastdp towards us failed uses the sleeve while ours to it works).
   */
  private parkLater(): void {
    const after = this.opts.parkIdleWorkerAfterMs ?? 0;
    if (after <= 0 || this.parkTimer || !this.worker || this.closed || this.sleeveInUse()) return;
    const injected = (): number => this.lastStats?.injected ?? 0; // no stats yet: a worker just started
    const injectedBefore = injected();
    this.parkTimer = setTimeout(() => {
      this.parkTimer = undefined;
      if (injected() !== injectedBefore) {
        this.parkLater();
        return;
      }
      void this.park().catch((e: Error) => this.log(`sleeve: parking the packet worker failed: ${e.message}`));
    }, after).unref();
  }

  /**
   * Stops the worker and hands its forwarders to the keeper. Their resume is
   * current (the worker reports every change); control messages that come
   * while it stops are held and given to the keeper.
   */
  private async park(): Promise<void> {
    const w = this.worker;
    if (!w || this.closed || this.sleeveInUse() || this.parking) return;
    this.parking = [];
    this.worker = undefined; // its exit is not a crash: no restart
    await this.stopWorker(w);
    this.control?.close();
    this.control = undefined;
    const held = this.parking;
    this.parking = undefined;
    if (this.closed) return;
    if (this.sleeveInUse()) {
      // A connection took the sleeve while the worker stopped: start a new one at once.
      await this.startWorker();
      for (const c of held) this.post({ t: 'control', ...c });
      return;
    }
    this.startKeeper(held);
    this.log(`sleeve: no connection uses the sleeve; packet worker parked, ${this.forwarders.size} forwarders heartbeat from the main thread`);
  }

  /** The keeper takes every forwarder, and the control messages held for them. */
  private startKeeper(held: ReadonlyArray<{ id: number; subTag: number; payload: Uint8Array }>): void {
    const countDrop = (reason: SleeveDropReason, count = 1): void => {
      this.carried.drops[reason] = (this.carried.drops[reason] ?? 0) + count;
    };
    const keeper = new SleeveKeeper(this.opts.ourName, this.udpFd, {
      emit: (m) => this.onWorkerMessage(m),
      traffic: (from) => this.unpark(`${from.toString(16)} sends frames over the sleeve`),
      handOver: (datagram, source) => {
        if (this.handedOver.length < MAX_HANDED_OVER) this.handedOver.push({ datagram, ip: source.ip, port: source.port });
        else countDrop('sleeve-parked');
      },
      captured: (frame) => this.unpark(`a local frame is to cross the sleeve: ${frame}`),
      drop: countDrop,
      log: (m) => this.log(m),
    }, this.opts.workerStart === 'first-frame' ? this.packetFd : undefined);
    this.keeper = keeper;
    for (const f of this.forwarders.values()) keeper.add(f.addMessage());
    for (const c of held) keeper.control(c.id, c.subTag, c.payload);
  }

  /** Asks the worker to stop after the messages already posted; ends it if it has not within 3 s. */
  private async stopWorker(w: Worker): Promise<void> {
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    this.post({ t: 'stop' });
    const kill = setTimeout(() => void w.terminate(), 3000);
    await exited;
    clearTimeout(kill);
  }

  /** Starts the worker again with the keeper's forwarders, where the keeper left them. */
  private unpark(why: string): void {
    const keeper = this.keeper;
    if (!keeper || this.closed) return;
    keeper.stop();
    this.keeper = undefined;
    addStats(this.carried, { ...emptyStats(), ...keeper.counters });
    this.log(`sleeve: ${why}; packet worker started again`);
    void this.startWorker().catch((e: Error) => this.log(`sleeve: cannot start packet worker: ${e.message}`));
  }

  stats(): DatapathStats {
    return toBigStats(this.counters());
  }

  /** The sleeve's counters since it opened: every worker's so far, the keeper's, the running worker's. */
  counters(): WorkerStats {
    const s = emptyStats();
    addStats(s, this.carried);
    if (this.keeper) addStats(s, { ...emptyStats(), ...this.keeper.counters });
    if (this.lastStats) addStats(s, this.lastStats);
    return s;
  }

  /** The worker's raw counters (frames, datagrams, CPU time). */
  workerStats(): WorkerStats | undefined {
    return this.lastStats;
  }

  /** Ends the packet worker abruptly, as a crash would (crash-resilience tests); a parked one is started first. */
  async killWorkerForTest(): Promise<void> {
    if (this.keeper) {
      this.unpark('test fault');
      await new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    }
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.parkTimer);
    this.keeper?.stop();
    this.keeper = undefined;
    if (this.worker) await this.stopWorker(this.worker);
    this.control?.close();
    for (const f of this.forwarders.values()) closeFd(f.dfFd);
    this.forwarders.clear();
    this.fdsClosed = true;
    for (const fd of [this.packetFd, this.udpFd, this.wakeFd, this.epollFd]) if (fd >= 0) closeFd(fd);
  }
}
