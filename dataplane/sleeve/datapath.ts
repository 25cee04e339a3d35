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
import type { AddForwarder, ForwarderResume, FromWorker, ToWorker, WorkerConfig, WorkerConfigMessage, WorkerStats } from './worker-protocol.js';
import { SLEEVE_WORKER_URL } from './worker-url.js';
import { adoptPrestartedWorker, hasPrestartedWorker } from './prestart.js';
import { DEFAULT_BRIDGE, DEFAULT_MESH_PORT } from '../../controlplane/well-known.js';

/** Weave's default overlay MTU for containers (user-surface spec: --mtu default). */
export const DEFAULT_OVERLAY_MTU = 1376;

/** What wakes the worker: an eventfd counts the 8-byte little-endian values written to it. */
const WAKE_ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

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
  /**
   * Start the packet worker with the first forwarder rather than at once
   * (default false): a router with no connection over the sleeve then pays
   * neither the worker thread's memory nor its start-up time.
   */
  lazyWorker?: boolean;
  log?: (message: string) => void;
}

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
    this.owner.post({ t: 'control', id: this.id, subTag, payload: Uint8Array.from(payload) });
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

function toBigStats(s: WorkerStats | undefined): DatapathStats {
  const drops: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(s?.drops ?? {})) if (v !== undefined) drops[k] = BigInt(v);
  return { kernelForwarded: 0n, userspace: BigInt((s?.captured ?? 0) + (s?.framesReceived ?? 0)), drops };
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
    if (!opts.lazyWorker) await dp.startWorker();
    // A worker prestarted for a router about to dial is adopted now, not at the dial.
    else if (hasPrestartedWorker()) dp.warmUp();
    return dp;
  }

  /**
   * A connection is on its way (we are dialling, or a peer's header came in): start the packet worker
   * now, beside the TCP connect and the handshake, instead of when the
   * connection's forwarder asks for it. Does nothing once it runs.
   */
  warmUp(): void {
    if (this.closed || this.worker) return;
    try {
      void this.startWorker();
    } catch (e) {
      // The first forwarder tries again and reports it.
      this.log(`sleeve: cannot start packet worker: ${(e as Error).message}`);
    }
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
    const prestarted = adoptPrestartedWorker();
    const worker = prestarted ?? new Worker(SLEEVE_WORKER_URL, { workerData: config, transferList: [port2] });
    if (prestarted) prestarted.postMessage({ t: 'config', config } satisfies WorkerConfigMessage, [port2]);
    this.worker = worker;
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    worker.on('message', (m: FromWorker) => this.onWorkerMessage(m));
    worker.on('error', (err) => this.log(`sleeve: packet worker failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.closed || this.opts.restartWorker === false) return;
      this.log(`sleeve: packet worker exited (code ${code}); restarting it`);
      this.restarts++;
      void this.startWorker().catch((e: Error) => this.log(`sleeve: cannot restart packet worker: ${e.message}`));
    });
    for (const f of this.forwarders.values()) this.post(f.addMessage());
    if (this.state) this.post({ t: 'state', state: this.state });
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
    if (m.t === 'loaded') return; // for prestart.ts
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
    // A worker starting now is sent every forwarder (this one included) as it starts.
    if (this.control) this.post(f.addMessage());
    else void this.startWorker();
    return f;
  }

  removeForwarder(f: SleeveForwarder): void {
    this.forwarders.delete(f.id);
    this.post({ t: 'remove', id: f.id });
    // The worker may still be in the middle of a send on this fd; close it once the remove was handled.
    setTimeout(() => closeFd(f.dfFd), 2000).unref();
  }

  applyForwardingState(state: ForwardingState): void {
    this.state = state;
    this.post({ t: 'state', state });
  }

  stats(): DatapathStats {
    return toBigStats(this.lastStats);
  }

  /** The worker's raw counters (frames, datagrams, CPU time). */
  workerStats(): WorkerStats | undefined {
    return this.lastStats;
  }

  /** Ends the packet worker abruptly, as a crash would (crash-resilience tests). */
  async killWorkerForTest(): Promise<void> {
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.worker;
    if (w) {
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      this.post({ t: 'stop' });
      const timer = setTimeout(() => void w.terminate(), 3000);
      await exited;
      clearTimeout(timer);
    }
    this.control?.close();
    for (const f of this.forwarders.values()) closeFd(f.dfFd);
    this.forwarders.clear();
    this.fdsClosed = true;
    for (const fd of [this.packetFd, this.udpFd, this.wakeFd, this.epollFd]) if (fd >= 0) closeFd(fd);
  }
}
