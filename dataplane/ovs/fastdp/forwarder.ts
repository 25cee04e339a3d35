// One fastdp forwarder per control connection (spec §6.4): heartbeats through
// the VXLAN tunnel at 500 ms until the remote acknowledges over the control
// connection, then every 10 s; a HeartbeatAck on the first valid heartbeat
// received; unhealthy after 60 s without one, healthy again when they resume.
//
// The forwarder holds no sockets: it sends through its ForwarderHost (the
// datapath's packet execute) and hears of received heartbeats from it.

import type { ForwarderEvents, ForwarderParams, ForwarderStatus, OverlayForwarder } from '../../../controlplane/router/datapath.js';
import type { PeerName, PeerShortID } from '../../../controlplane/mesh/types.js';
import {
  FASTDP_CRYPTO_INIT_SA_REMOTE,
  FASTDP_HEARTBEAT_ACK,
  HEARTBEAT_FAST_INTERVAL_MS,
  HEARTBEAT_SLOW_INTERVAL_MS,
  HEARTBEAT_TIMEOUT_MS,
  encodeHeartbeat,
} from './heartbeat.js';

/** Where a forwarder's tunnel frames go: VXLAN to `remoteIp` with the Weave tunnel id (spec §6.2). */
export interface TunnelEndpoint {
  localIp: string;
  remoteIp: string;
  /** The remote's VXLAN UDP port. */
  remotePort: number;
}

/** What a forwarder needs from its datapath. */
export interface ForwarderHost {
  readonly mtu: number;
  /** Our current short id, once the router has told us (undefined before the first forwarding state). */
  ourShortId(): PeerShortID | undefined;
  /** A peer's current short id from the forwarding state (the forwarder falls back to the handshake's). */
  shortIdOf(name: PeerName): PeerShortID | undefined;
  /** Sends one frame through the VXLAN vport with tunnel id src | dst << 12. */
  sendTunnelFrame(frame: Buffer, srcShortId: PeerShortID, dstShortId: PeerShortID, to: TunnelEndpoint): Promise<void>;
  forwarderStopped(forwarder: FastdpForwarder): void;
  /** Problems that are not the router's to handle (a failed send), for the log. */
  warn(message: string): void;
}

export interface ForwarderTimings {
  fastIntervalMs: number;
  slowIntervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_FORWARDER_TIMINGS: ForwarderTimings = {
  fastIntervalMs: HEARTBEAT_FAST_INTERVAL_MS,
  slowIntervalMs: HEARTBEAT_SLOW_INTERVAL_MS,
  timeoutMs: HEARTBEAT_TIMEOUT_MS,
};

export class FastdpForwarder implements OverlayForwarder {
  readonly remoteName: PeerName;
  readonly connUID: bigint;
  private readonly handshakeShortId: PeerShortID | undefined;
  private readonly endpoint: TunnelEndpoint;
  private state: ForwarderStatus['state'] = 'initiating';
  private reason: string | undefined;
  private acked = false;
  private heardFromRemote = false;
  private stopped = false;
  private sendTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;

  constructor(
    params: ForwarderParams,
    private readonly events: ForwarderEvents,
    private readonly host: ForwarderHost,
    private readonly timings: ForwarderTimings = DEFAULT_FORWARDER_TIMINGS,
  ) {
    this.remoteName = params.remoteName;
    this.connUID = params.connUID;
    this.handshakeShortId = params.remoteShortId;
    this.endpoint = { localIp: params.localIp, remoteIp: params.remoteIp, remotePort: params.remotePort };
    if (params.encrypt) {
      // spec §7: encrypted fastdp needs the IPsec SA exchange (CryptoInitSARemote)
      // before any heartbeat. Until that hook is wired to dataplane/ipsec this
      // forwarder refuses, so the connection uses encrypted sleeve and never
      // sends plaintext.
      this.fail('encrypted fast datapath (IPsec) is not available in this router; the connection uses encrypted sleeve');
      return;
    }
    this.sendHeartbeat();
    this.armTimeout();
  }

  /** Where this connection's tunnel frames go (the remote address follows its heartbeats, spec §6.4 step 3). */
  get tunnel(): Readonly<TunnelEndpoint> {
    return this.endpoint;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  handleControlMessage(subTag: number, payload: Uint8Array): void {
    if (this.stopped) return;
    switch (subTag) {
      case FASTDP_HEARTBEAT_ACK:
        this.acknowledged();
        break;
      case FASTDP_CRYPTO_INIT_SA_REMOTE:
        // spec §7.2: handled once encrypted fastdp is wired to dataplane/ipsec; refused above until then.
        this.host.warn(`fastdp: ignoring CryptoInitSARemote (${payload.length} bytes) from ${this.remoteName.toString(16)}: IPsec is not in use`);
        break;
      default:
        this.host.warn(`fastdp: ignoring unknown control message sub-tag ${subTag} from ${this.remoteName.toString(16)}`);
    }
  }

  /** A valid heartbeat with our connUID arrived from `fromIp` (spec §6.4 step 3). */
  heartbeatReceived(fromIp: string | undefined): void {
    if (this.stopped) return;
    if (fromIp !== undefined && fromIp !== this.endpoint.remoteIp) this.endpoint.remoteIp = fromIp;
    if (!this.heardFromRemote) {
      this.heardFromRemote = true;
      this.events.sendControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
    }
    this.armTimeout();
    if (this.state === 'unhealthy') {
      this.state = 'established';
      this.reason = undefined;
      this.events.healthChanged(true);
    }
  }

  status(): ForwarderStatus {
    return { state: this.state, encrypted: false, mtu: this.host.mtu, ...(this.reason !== undefined ? { reason: this.reason } : {}) };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.sendTimer);
    clearTimeout(this.timeoutTimer);
    this.host.forwarderStopped(this);
  }

  private acknowledged(): void {
    if (this.acked) return;
    this.acked = true;
    if (this.state === 'initiating') this.state = 'established';
    this.events.established();
    // spec §6.4 step 4: from now on the slow interval.
    this.scheduleHeartbeat();
  }

  private sendHeartbeat(): void {
    if (this.stopped) return;
    const ours = this.host.ourShortId();
    const theirs = this.host.shortIdOf(this.remoteName) ?? this.handshakeShortId;
    // Without both short ids there is no tunnel id; try again at the next tick (spec §6.2).
    if (ours !== undefined && theirs !== undefined) {
      const frame = encodeHeartbeat(this.connUID, this.host.mtu);
      this.host.sendTunnelFrame(frame, ours, theirs, this.endpoint).catch((e: unknown) => {
        if (!this.stopped) this.host.warn(`fastdp: heartbeat to ${this.endpoint.remoteIp}: ${(e as Error).message}`);
      });
    }
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    clearTimeout(this.sendTimer);
    // spec §6.4: 500 ms until acknowledged; 10 s afterwards and while timed out.
    const interval = this.acked || this.state === 'unhealthy' ? this.timings.slowIntervalMs : this.timings.fastIntervalMs;
    this.sendTimer = setTimeout(() => this.sendHeartbeat(), interval);
    this.sendTimer.unref();
  }

  private armTimeout(): void {
    clearTimeout(this.timeoutTimer);
    this.timeoutTimer = setTimeout(() => this.timedOut(), this.timings.timeoutMs);
    this.timeoutTimer.unref();
  }

  private timedOut(): void {
    if (this.stopped) return;
    const seconds = Math.round(this.timings.timeoutMs / 1000);
    this.reason = `no fastdp heartbeats for ${seconds}s from ${this.endpoint.remoteIp}:${this.endpoint.remotePort} (is UDP ${this.endpoint.remotePort} blocked, or the underlay MTU too small for ${this.host.mtu}?)`;
    // spec §6.4 step 5: not fatal; the overlay switch falls back to sleeve meanwhile.
    if (this.state !== 'unhealthy') {
      this.state = 'unhealthy';
      this.events.healthChanged(false, this.reason);
    }
    this.scheduleHeartbeat();
  }

  private fail(reason: string): void {
    this.state = 'failed';
    this.reason = reason;
    this.stopped = true;
    // Reported after the constructor returns, so the router has the forwarder in hand.
    queueMicrotask(() => this.events.failed(new Error(reason)));
  }
}
