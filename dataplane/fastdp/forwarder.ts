// One fastdp forwarder per control connection (spec §6.4): heartbeats through
// the VXLAN tunnel at 500 ms until the remote acknowledges over the control
// connection, then every 10 s; a HeartbeatAck on the first valid heartbeat
// received; unhealthy after 60 s without one, healthy again when they resume.
//
// Established means the tunnel works both ways: the remote acknowledged our
// heartbeat (ours reach it) AND we received one of its heartbeats (its reach
// us). Both ends learn those two facts within a control message of each
// other, so they switch to fastdp together; were the ack alone enough, an
// underlay that passes heartbeats one way only would leave one end on fastdp
// and the other on the sleeve for good, and neither end's replies would
// reach the other (the sleeve only carries traffic for its own neighbours).
//
// The forwarder holds no sockets: it sends through its ForwarderHost (the
// datapath's packet execute) and hears of received heartbeats from it.

import type { ForwarderEvents, ForwarderParams, ForwarderStatus, OverlayForwarder } from '../../controlplane/router/datapath.js';
import type { PeerName, PeerShortID } from '../../controlplane/mesh/types.js';
import { OVERLAY_HEARTBEAT_FAST_MS, OVERLAY_HEARTBEAT_SLOW_MS, OVERLAY_HEARTBEAT_TIMEOUT_MS } from '../../controlplane/well-known.js';
import {
  ETHERNET_HEADER_BYTES,
  FASTDP_CRYPTO_INIT_SA_REMOTE,
  FASTDP_HEARTBEAT_ACK,
  encodeHeartbeat,
} from './heartbeat.js';
import type { FastdpIPsec, FastdpIPsecConnection } from '../ipsec/fastdp-ipsec.js';

/** Where a forwarder's tunnel frames go: VXLAN to `remoteIp` with the Weave tunnel id (spec §6.2). */
export interface TunnelEndpoint {
  localIp: string;
  remoteIp: string;
  /** The remote's VXLAN UDP port. */
  remotePort: number;
}

/** The unspecified address: a connection whose local address is not known. */
const ANY_IPV4 = '0.0.0.0';

/**
 * The address a tunnel's frames leave from: our address of the connection
 * (Weave sets it in the OVS tunnel action), undefined when none is known and
 * the route chooses.
 */
export function tunnelSource(endpoint: Readonly<TunnelEndpoint>): string | undefined {
  return endpoint.localIp && endpoint.localIp !== ANY_IPV4 ? endpoint.localIp : undefined;
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
  /**
   * The forwarder stopped. Resolves once the datapath no longer sends to the
   * peer through this connection: an encrypted connection's SAs and marking
   * rules go only after that, so no frame leaves in clear (spec §7).
   */
  forwarderStopped(forwarder: FastdpForwarder): void | Promise<void>;
  /** Problems that are not the router's to handle (a failed send), for the log. */
  warn(message: string): void;
  /**
   * The first heartbeat from the remote arrived: the datapath must accept the
   * remote's tunnel frames before we acknowledge it (the remote may switch to
   * fastdp as soon as the ack arrives). The ack goes out once this resolves.
   */
  remoteHeard?(forwarder: FastdpForwarder): void | Promise<void>;
  /**
   * An encrypted forwarder's outbound SA, policy and marking rules are in place
   * (spec §7.4 step 3): frames to the remote may now take this tunnel.
   */
  outboundReady?(forwarder: FastdpForwarder): void;
  /** Kernel IPsec for encrypted connections (spec §7); absent when the datapath has none. */
  readonly ipsec: FastdpIPsec | undefined;
  /** Why there is no IPsec, for the reason an encrypted connection stays on sleeve. */
  readonly ipsecUnavailableReason: string | undefined;
}

export interface ForwarderTimings {
  fastIntervalMs: number;
  slowIntervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_FORWARDER_TIMINGS: ForwarderTimings = {
  fastIntervalMs: OVERLAY_HEARTBEAT_FAST_MS,
  slowIntervalMs: OVERLAY_HEARTBEAT_SLOW_MS,
  timeoutMs: OVERLAY_HEARTBEAT_TIMEOUT_MS,
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
  /** events.established() went out (once: both ways verified, possibly after a timeout). */
  private establishedReported = false;
  private stopped = false;
  /** The datapath MTU the remote's heartbeats last announced. */
  private remoteMtu: number | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** The IPsec connection when this forwarder encrypts (spec §7). */
  private readonly ipsecConn: FastdpIPsecConnection | undefined;
  /** spec §7.4 step 1 done: our inbound SA exists and our CryptoInitSARemote went out. */
  private localSAReady = false;
  /** The peer's CryptoInitSARemote when it arrived before step 1 finished. */
  private pendingRemoteInit: Uint8Array | undefined;
  private remoteSAReady = false;
  /** A heartbeat from an address the encrypted connection does not cover was reported (once). */
  private warnedStrayHeartbeat = false;

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
      // spec §7: an encrypted connection never sends plaintext. Without kernel
      // ESP (or a session key) this forwarder fails, and the overlay switch
      // keeps the connection on encrypted sleeve.
      const why = host.ipsec === undefined
        ? `encrypted fastdp needs kernel IPsec: ${host.ipsecUnavailableReason ?? 'not enabled on this datapath'}; the connection uses encrypted sleeve`
        : params.sessionKey === undefined
          ? 'encrypted fastdp needs the connection\'s session key, and the handshake gave none; the connection uses encrypted sleeve'
          : undefined;
      if (why !== undefined) {
        this.fail(why);
        return;
      }
      this.ipsecConn = {
        connUID: params.connUID,
        localIp: params.localIp,
        remoteIp: params.remoteIp,
        remoteName: params.remoteName,
        sessionKey: params.sessionKey!,
        vxlanPort: params.remotePort,
      };
      // spec §6.4 step 2: heartbeats wait for the SA exchange.
      this.initLocalSA(host.ipsec!, this.ipsecConn);
      this.armTimeout();
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

  /** The remote's short id as the forwarding state knows it, else as its handshake gave it. */
  get remoteShortId(): PeerShortID | undefined {
    return this.host.shortIdOf(this.remoteName) ?? this.handshakeShortId;
  }

  /**
   * Frames may go to the remote through this tunnel: at once on a plain
   * connection; on an encrypted one only once the outbound SA, the policy and
   * the marking rules exist. Until then a frame would leave in clear (before
   * our inbound step installs the marking rules) or be dropped (spec §7).
   */
  get outboundReady(): boolean {
    return !this.stopped && (this.ipsecConn === undefined || this.remoteSAReady);
  }

  /** A heartbeat from the remote arrived: its tunnel frames reach us. */
  get hearsRemote(): boolean {
    return this.heardFromRemote;
  }

  handleControlMessage(subTag: number, payload: Uint8Array): void {
    if (this.stopped) return;
    switch (subTag) {
      case FASTDP_HEARTBEAT_ACK:
        this.acknowledged();
        break;
      case FASTDP_CRYPTO_INIT_SA_REMOTE:
        this.cryptoInitSARemote(payload);
        break;
      default:
        this.host.warn(`fastdp: ignoring unknown control message sub-tag ${subTag} from ${this.remoteName.toString(16)}`);
    }
  }

  /**
   * A valid heartbeat with our connUID arrived from `fromIp` (spec §6.4 step 3:
   * the tunnel follows the address heartbeats come from, except on an encrypted
   * connection); `length`, its total length, is 14 + the remote's datapath MTU.
   */
  heartbeatReceived(fromIp: string | undefined, length?: number): void {
    if (this.stopped) return;
    if (fromIp !== undefined && fromIp !== this.endpoint.remoteIp) {
      if (this.ipsecConn !== undefined) {
        // The SAs, policy and marking rules of an encrypted connection cover the address it
        // was set up with only: tunnelling to another would send in clear (spec §7), and a
        // heartbeat from another did not come through the connection's ESP.
        if (!this.warnedStrayHeartbeat) {
          this.warnedStrayHeartbeat = true;
          this.host.warn(`fastdp: ignoring heartbeats for the encrypted connection to ${this.endpoint.remoteIp} that arrive from ${fromIp}`);
        }
        return;
      }
      this.endpoint.remoteIp = fromIp;
    }
    if (length !== undefined && length - ETHERNET_HEADER_BYTES !== this.remoteMtu) {
      this.remoteMtu = length - ETHERNET_HEADER_BYTES;
      this.events.remoteMtu?.(this.remoteMtu);
    }
    if (!this.heardFromRemote) {
      this.heardFromRemote = true;
      // The remote's forwarder runs now. Ours may have started first (the remote loaded its
      // datapath later, or handled the connection a moment after us): what we sent before was
      // dropped, so one more goes now rather than at the next fast tick, up to 500 ms away.
      if (!this.acked) this.sendHeartbeat();
      const ack = (): void => {
        if (this.stopped) return;
        this.events.sendControlMessage(FASTDP_HEARTBEAT_ACK, new Uint8Array(0));
        this.establishIfBothWays();
      };
      const ready = this.host.remoteHeard?.(this);
      if (ready === undefined) ack();
      else ready.then(ack, (e: unknown) => {
        this.host.warn(`fastdp: accepting frames from ${this.endpoint.remoteIp}: ${(e as Error).message}`);
        ack();
      });
    }
    this.armTimeout();
    if (this.state === 'unhealthy') {
      // Heartbeats resumed: back to where the forwarder was before they stopped.
      this.state = this.establishedReported ? 'established' : 'initiating';
      this.reason = undefined;
      this.events.healthChanged(true);
    }
  }

  status(): ForwarderStatus {
    const reason = this.reason ?? this.oneWayReason();
    return { state: this.state, encrypted: this.ipsecConn !== undefined, mtu: this.host.mtu, ...(reason !== undefined ? { reason } : {}) };
  }

  /** While initiating with the tunnel known to work one way only: which way. */
  private oneWayReason(): string | undefined {
    if (this.state !== 'initiating' || this.acked === this.heardFromRemote) return undefined;
    const port = this.endpoint.remotePort;
    return this.acked
      ? `peer acknowledges our heartbeats but none of its heartbeats reached us yet (UDP ${port} to this host blocked?)`
      : `peer's heartbeats reach us but it has not acknowledged ours yet (UDP ${port} to ${this.endpoint.remoteIp} blocked?)`;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.release();
  }

  private release(): void {
    clearTimeout(this.sendTimer);
    clearTimeout(this.timeoutTimer);
    const drained = Promise.resolve(this.host.forwarderStopped(this));
    const ipsec = this.host.ipsec;
    const conn = this.ipsecConn;
    if (conn === undefined || ipsec === undefined) {
      drained.catch((e: unknown) => this.host.warn(`fastdp: ${(e as Error).message}`));
      return;
    }
    // If the datapath could not drop the peer, the SAs stay (weave reset removes them): the
    // marking rules then keep matching, and the policy's block rule stops what is unmatched.
    drained.then(
      () => ipsec.teardown(conn.connUID),
      (e: unknown) => { throw new Error(`${(e as Error).message}; keeping the IPsec state of connection ${conn.connUID.toString(16)} so nothing leaves in clear`); },
    ).catch((e: unknown) => this.host.warn(`fastdp: ${(e as Error).message}`));
  }

  // ---- spec §7.4: the SA exchange of an encrypted connection

  private initLocalSA(ipsec: FastdpIPsec, conn: FastdpIPsecConnection): void {
    ipsec.initLocal(conn).then(
      (body) => {
        if (this.stopped) return;
        this.events.sendControlMessage(FASTDP_CRYPTO_INIT_SA_REMOTE, body);
        this.localSAReady = true;
        const pending = this.pendingRemoteInit;
        this.pendingRemoteInit = undefined;
        if (pending !== undefined) this.initRemoteSA(pending);
      },
      (e: unknown) => this.failLater(`cannot set up the inbound IPsec SA from ${conn.remoteIp}: ${(e as Error).message}; the connection uses encrypted sleeve`),
    );
  }

  private cryptoInitSARemote(payload: Uint8Array): void {
    if (this.ipsecConn === undefined) {
      // spec §7.1: a peer that encrypts talks to one that does not: nothing to install.
      this.host.warn(`fastdp: ignoring CryptoInitSARemote from ${this.remoteName.toString(16)}: this connection is not encrypted`);
      return;
    }
    if (!this.localSAReady) this.pendingRemoteInit = Uint8Array.from(payload);
    else this.initRemoteSA(payload);
  }

  private initRemoteSA(body: Uint8Array): void {
    const conn = this.ipsecConn!;
    this.host.ipsec!.initRemote(conn, body).then(
      () => {
        if (this.stopped) return;
        // spec §7.4 step 3: heartbeats start now (again, if the peer re-keyed).
        const first = !this.remoteSAReady;
        this.remoteSAReady = true;
        if (!first) return;
        this.host.outboundReady?.(this);
        this.sendHeartbeat();
      },
      (e: unknown) => this.failLater(`cannot set up the outbound IPsec SA to ${conn.remoteIp}: ${(e as Error).message}; the connection uses encrypted sleeve`),
    );
  }

  private acknowledged(): void {
    if (this.acked) return;
    this.acked = true;
    this.establishIfBothWays();
    // spec §6.4 step 4: from now on the slow interval.
    this.scheduleHeartbeat();
  }

  /** Acknowledged and heard from: the tunnel works in both directions. */
  private establishIfBothWays(): void {
    if (!this.acked || !this.heardFromRemote || this.establishedReported || this.stopped) return;
    this.establishedReported = true;
    // Verified both ways after a timeout (a slow start): established all the same.
    if (this.state === 'initiating' || this.state === 'unhealthy') {
      this.state = 'established';
      this.reason = undefined;
    }
    this.events.established();
  }

  private sendHeartbeat(): void {
    if (this.stopped) return;
    // spec §6.4 step 2: an encrypted connection sends nothing before its outbound SA exists.
    if (this.ipsecConn !== undefined && !this.remoteSAReady) return;
    const ours = this.host.ourShortId();
    const theirs = this.remoteShortId;
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

  /** A failure after construction: also releases the timers, the host's record and any IPsec state. */
  private failLater(reason: string): void {
    if (this.stopped) return;
    this.state = 'failed';
    this.reason = reason;
    this.stopped = true;
    this.release();
    this.events.failed(new Error(reason));
  }
}
