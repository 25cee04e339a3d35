// One sleeve forwarder's state inside the packet worker (spec §5.5, §5.6,
// §5.7): heartbeats and their timeout, the ConnectionEstablished /
// FragmentationReceived / PMTUVerified exchange, the PMTU search, the choice
// of DF or non-DF path per frame, and the per-path send queues. It never does
// I/O itself: the worker flushes its queues and reports send errors back.
import type { PeerName } from '../../controlplane/mesh/types.js';
import { SleeveOpener, SleeveSealer } from '../../crypto/sleeve-crypto.js';
import { OVERLAY_HEARTBEAT_FAST_MS, OVERLAY_HEARTBEAT_SLOW_MS, OVERLAY_HEARTBEAT_TIMEOUT_MS } from '../../controlplane/well-known.js';
import {
  FRAGMENTATION_TEST_INTERVAL_MS, MAX_UDP_PAYLOAD, MTU_VERIFY_ATTEMPTS,
  MTU_VERIFY_FIRST_TIMEOUT_MS, PMTU_SEARCH_FLOOR, SleeveControlTag, UDP_IP_OVERHEAD, overheadDF,
  ENCRYPTED_PACKET_OVERHEAD, PLAIN_PACKET_OVERHEAD, ETHERNET_HEADER_SIZE,
} from './constants.js';
import { encodeSleeveControl, decodeSleeveControl } from './control-messages.js';
import type { SleeveFrame } from './frame-codec.js';
import { fragmentationTestFrame, heartbeatFrame, mtuTestFrame, pmtuDiscoveryFrame, type SpecialFrame } from './special-frames.js';
import { fragmentIPv4, icmpFragNeeded, isIPv4, isIPv4DF } from './ethernet.js';
import { connectUdp, sockaddrIn } from '../sys/sockets.js';
import type { AddForwarder, FromWorker, PmtuBounds } from './worker-protocol.js';

/** Initial overlay MTU before any PMTU discovery (spec §5.6). */
const INITIAL_MTU = 65535;
/**
 * Until the remote's first heartbeat arrives, the gap after our first one;
 * each next gap doubles up to the fast interval. The remote's router adds the
 * connection (and so its forwarder) a moment after ours at times, and drops
 * the heartbeats that come before: retried at 25, 50, 100, 200 ms, the
 * connection establishes that much sooner than at the next 500 ms tick.
 */
export const FIRST_HEARTBEAT_RETRY_MS = 25;

export interface ConnectionEvents {
  sendControl(subTag: number, payload: Uint8Array): void;
  established(): void;
  failed(reason: string): void;
  changed(): void;
  drop(reason: string, count?: number): void;
  /** A frame the local router must handle as if it arrived from `src` for `dst` (spec §5.7 ICMP). */
  deliver(src: PeerName, dst: PeerName, frame: Uint8Array): void;
  /** Connect the DF socket to a newly learned remote address. */
  connectDF(ip: string, port: number): void;
}

/** Where a forwarder's connection reports, in the packet worker or the keeper (keeper.ts). */
export interface ForwarderSink {
  /** Its events, as the worker posts them to the datapath. */
  post(m: FromWorker): void;
  drop: ConnectionEvents['drop'];
  deliver: ConnectionEvents['deliver'];
}

/**
 * The connection for an added forwarder, its events wired to `sink`: what it
 * learns (address, MTU, a search under way, whether it heard the remote) is
 * reported each time it changes, so that a new home can resume it.
 */
export function connectionForForwarder(msg: AddForwarder, ourName: PeerName, sink: ForwarderSink, now: number): SleeveConnection {
  const id = msg.id;
  const box: { conn?: SleeveConnection } = {};
  const report = (): void => {
    const c = box.conn;
    if (c) sink.post({ t: 'forwarder', id, remoteIp: c.remoteIp, remotePort: c.remotePort, mtu: c.mtu === INITIAL_MTU ? undefined : c.mtu, stackFrag: c.stackFrag, heartbeatSeen: c.heartbeatSeen, search: c.searchBounds, ...c.mtuLearning });
  };
  box.conn = new SleeveConnection(msg, ourName, {
    sendControl: (subTag, payload) => sink.post({ t: 'sendControl', id, subTag, payload }),
    established: () => {
      sink.post({ t: 'established', id });
      report();
    },
    failed: (reason) => sink.post({ t: 'failed', id, reason }),
    changed: report,
    drop: sink.drop,
    deliver: sink.deliver,
    connectDF: (ip, port) => {
      try {
        connectUdp(msg.dfFd, ip, port);
      } catch (e) {
        sink.post({ t: 'log', message: `sleeve: ${(e as Error).message}` });
      }
    },
  }, now);
  report(); // where it starts: an outbound connection knows the remote's address already
  return box.conn;
}

interface PmtuSearch {
  candidate: number;
  highestGood: number;
  lowestBad: number;
  attempt: number;
  timeoutMs: number;
  deadline: number;
  /** When the current candidate's first test went out: its answer's delay bounds the control path's round trip. */
  firstSentAt: number;
}

/** A search at `candidate` within its bounds, its first test not sent yet. */
function newSearch(candidate: number, highestGood: number, lowestBad: number, now: number): PmtuSearch {
  return { candidate, highestGood, lowestBad, attempt: 0, timeoutMs: MTU_VERIFY_FIRST_TIMEOUT_MS, deadline: 0, firstSentAt: now };
}

/**
 * The longest wait a slow control path can add to each MTU test's timeout.
 * A test's answer comes back through both routers' main threads and the TCP
 * connection (spec §5.5), so on a loaded host it can take longer than the
 * 10 ms the first timeout allows, which is sized for a black hole on an idle
 * path; bounded so that a real black hole is still found within seconds.
 */
export const MTU_VERIFY_SLOW_PATH_CAP_MS = 1_000;

/**
 * A resent MTU test of the size we answered less than this long ago gets no
 * second answer: the first is on its way over TCP, which does not lose it, and
 * the sender's search takes only one (spec §5.6). While a large mesh forms on
 * a loaded host every test is resent several times before its answer arrives,
 * and each answer crosses both routers' main threads. Past this, a test is
 * answered again, so a sender that lost our answer in a restart still gets one.
 */
export const MTU_TEST_REANSWER_AFTER_MS = 1_000;

export class SleeveConnection {
  readonly id: number;
  readonly remoteName: PeerName;
  readonly dfFd: number;
  readonly sealer: SleeveSealer | undefined;
  readonly opener: SleeveOpener | undefined;
  readonly packetOverhead: number;
  remoteIp: string | undefined;
  remotePort: number;
  remoteSockaddr: Buffer | undefined;
  established = false;
  failed = false;
  stackFrag = false;
  mtu = INITIAL_MTU;
  /** Largest UDP payload on the DF path (spec §5.6). */
  maxPayloadDF = INITIAL_MTU - UDP_IP_OVERHEAD;
  readonly dfQueue: SleeveFrame[] = [];
  readonly nonDfQueue: SleeveFrame[] = [];
  /** A heartbeat of the remote's arrived, and our ConnectionEstablished went back (spec §5.5). */
  heartbeatSeen = false;
  private interval = OVERLAY_HEARTBEAT_FAST_MS;
  private retryGap = FIRST_HEARTBEAT_RETRY_MS;
  private nextHeartbeat: number;
  private lastHeartbeat: number;
  private nextFragTest = Infinity;
  private search: PmtuSearch | undefined;
  /**
   * lowestBad as the latest EMSGSIZE set it (the kernel's own path MTU, less
   * the overhead, plus one): a size below it that the remote verifies is good
   * even when its answer came after the search gave up on it.
   */
  private mtuCeiling = INITIAL_MTU + 1;
  /** The shortest timeout of a test: twice the slowest answer seen, so a slow answer is not taken for a black hole. */
  private verifyFloorMs = 0;
  /** The remote's MTU test we last answered, and when (MTU_TEST_REANSWER_AFTER_MS). */
  private lastAnswered: { mtu: number; at: number } | undefined;
  private readonly connUID: bigint;
  private readonly overheadDF: number;

  constructor(msg: AddForwarder, private readonly ourName: PeerName, private readonly events: ConnectionEvents, now: number) {
    this.id = msg.id;
    this.remoteName = msg.remoteName;
    this.dfFd = msg.dfFd;
    this.connUID = msg.connUID;
    this.remotePort = msg.remotePort;
    const encrypted = msg.sessionKey !== undefined;
    if (msg.sessionKey) {
      this.sealer = new SleeveSealer(msg.sessionKey, msg.outbound, new BigUint64Array(msg.counters));
      this.opener = new SleeveOpener(msg.sessionKey, !msg.outbound);
    }
    this.packetOverhead = encrypted ? ENCRYPTED_PACKET_OVERHEAD : PLAIN_PACKET_OVERHEAD;
    this.overheadDF = overheadDF(encrypted);
    // Outbound: the remote's UDP address is the TCP one from the start (spec §5.1).
    if (msg.outbound) this.setRemote(msg.remoteIp, msg.remotePort);
    const r = msg.resume;
    if (r) {
      if (r.remoteIp !== undefined) this.setRemote(r.remoteIp, r.remotePort ?? msg.remotePort);
      this.stackFrag = r.stackFrag;
      if (r.mtu !== undefined) {
        this.mtu = r.mtu;
        this.maxPayloadDF = r.mtu + this.overheadDF - UDP_IP_OVERHEAD;
      }
      // Established (the remote heard us) and having heard the remote are separate: a forwarder handed
      // over between the two still owes the remote its ConnectionEstablished.
      this.heartbeatSeen = r.heartbeatSeen === true;
      if (r.established) {
        this.established = true;
        this.interval = OVERLAY_HEARTBEAT_SLOW_MS;
        this.nextFragTest = now + FRAGMENTATION_TEST_INTERVAL_MS;
      }
      // A search the previous home had under way goes on from its bounds: the discovery frame that
      // started it is sent only once, at ConnectionEstablished.
      if (r.mtuCeiling !== undefined) this.mtuCeiling = r.mtuCeiling;
      if (r.verifyFloorMs !== undefined) this.verifyFloorMs = r.verifyFloorMs;
      if (r.search && this.remoteSockaddr) {
        const { candidate, highestGood, lowestBad } = r.search;
        this.search = newSearch(candidate, highestGood, lowestBad, now);
        this.mtu = candidate;
        this.maxPayloadDF = lowestBad - 1 + this.overheadDF - UDP_IP_OVERHEAD;
        this.sendMtuTest(now);
      }
    }
    this.lastHeartbeat = now;
    this.nextHeartbeat = now;
  }

  get encrypted(): boolean {
    return this.sealer !== undefined;
  }

  /** What a new home for this forwarder needs to judge late MTU answers as this one would. */
  get mtuLearning(): { mtuCeiling?: number; verifyFloorMs?: number } {
    return {
      mtuCeiling: this.mtuCeiling > INITIAL_MTU ? undefined : this.mtuCeiling,
      verifyFloorMs: this.verifyFloorMs > 0 ? this.verifyFloorMs : undefined,
    };
  }

  /** The path MTU search under way, if any: what a new home for this forwarder resumes from. */
  get searchBounds(): PmtuBounds | undefined {
    const s = this.search;
    return s ? { candidate: s.candidate, highestGood: s.highestGood, lowestBad: s.lowestBad } : undefined;
  }

  private setRemote(ip: string, port: number): void {
    this.remoteIp = ip;
    this.remotePort = port;
    this.remoteSockaddr = sockaddrIn(ip, port);
    this.events.connectDF(ip, port);
  }

  private special(frame: Uint8Array): SleeveFrame {
    return { src: this.ourName, dst: this.remoteName, frame };
  }

  private sendHeartbeat(): void {
    if (this.remoteSockaddr) this.dfQueue.push(this.special(heartbeatFrame(this.connUID)));
  }

  /** Timers (spec §5.5); returns the next time it wants to run. */
  tick(now: number): number {
    if (this.failed) return Infinity;
    if (now - this.lastHeartbeat >= OVERLAY_HEARTBEAT_TIMEOUT_MS) {
      this.failed = true;
      this.events.failed('timed out waiting for UDP heartbeat');
      return Infinity;
    }
    if (now >= this.nextHeartbeat) {
      this.sendHeartbeat();
      this.nextHeartbeat = now + this.heartbeatGap();
    }
    if (now >= this.nextFragTest) {
      this.sendFragmentationTest();
      this.nextFragTest = now + FRAGMENTATION_TEST_INTERVAL_MS;
    }
    const s = this.search;
    if (s && now >= s.deadline) {
      s.attempt++;
      if (s.attempt < MTU_VERIFY_ATTEMPTS) {
        s.timeoutMs *= 2;
        this.sendMtuTest(now, false);
      } else {
        s.lowestBad = s.candidate;
        this.nextCandidate(now);
      }
    }
    let next = Math.min(this.nextHeartbeat, this.lastHeartbeat + OVERLAY_HEARTBEAT_TIMEOUT_MS, this.nextFragTest);
    if (this.search) next = Math.min(next, this.search.deadline);
    return next;
  }

  private heartbeatGap(): number {
    if (this.heartbeatSeen || this.established) return this.interval;
    const gap = Math.min(this.retryGap, this.interval);
    this.retryGap *= 2;
    return gap;
  }

  private sendFragmentationTest(): void {
    this.stackFrag = false;
    if (this.remoteSockaddr) this.nonDfQueue.push(this.special(fragmentationTestFrame()));
  }

  /** A special frame from the remote to us (spec §5.4). `from` is the datagram's source address. */
  handleSpecial(sf: SpecialFrame, from: { ip: string; port: number }, now: number): void {
    switch (sf.kind) {
      case 'heartbeat': {
        if (sf.connUID !== this.connUID) return;
        const hadAddress = this.remoteSockaddr !== undefined;
        if (this.remoteIp !== from.ip || this.remotePort !== from.port) {
          this.setRemote(from.ip, from.port);
          this.events.changed();
        }
        if (!hadAddress) this.sendHeartbeat();
        if (!this.heartbeatSeen) {
          this.heartbeatSeen = true;
          this.events.sendControl(SleeveControlTag.ConnectionEstablished, encodeSleeveControl({ type: 'ConnectionEstablished' }).subarray(1));
          this.events.changed();
        }
        this.lastHeartbeat = now;
        return;
      }
      case 'fragmentation-test':
        if (sf.allZero) this.events.sendControl(SleeveControlTag.FragmentationReceived, new Uint8Array(0));
        return;
      case 'mtu-test': {
        if (sf.mtu > 0xffff) return;
        const last = this.lastAnswered;
        if (last && last.mtu === sf.mtu && now - last.at < MTU_TEST_REANSWER_AFTER_MS) return;
        this.lastAnswered = { mtu: sf.mtu, at: now };
        this.events.sendControl(SleeveControlTag.PMTUVerified, encodeSleeveControl({ type: 'PMTUVerified', mtu: sf.mtu }).subarray(1));
      }
    }
  }

  /** A sleeve control message from the remote's forwarder (spec §5.5). */
  handleControl(subTag: number, payload: Uint8Array, now: number): void {
    const msg = decodeSleeveControl(Uint8Array.of(subTag, ...payload));
    switch (msg.type) {
      case 'ConnectionEstablished':
        if (this.established) return;
        this.established = true;
        this.interval = OVERLAY_HEARTBEAT_SLOW_MS;
        this.nextHeartbeat = now + this.interval;
        this.events.established();
        this.nextFragTest = now + FRAGMENTATION_TEST_INTERVAL_MS;
        this.sendFragmentationTest();
        if (this.remoteSockaddr) this.dfQueue.push(this.special(pmtuDiscoveryFrame()));
        return;
      case 'FragmentationReceived':
        this.stackFrag = true;
        this.events.changed();
        return;
      case 'PMTUVerified':
        this.verified(msg.mtu, now);
    }
  }

  /**
   * The remote received an MTU test of `mtu` (spec §5.6). The answer to the
   * current candidate raises highestGood, as in Weave. An answer to a size
   * tested earlier is also used: its timeouts ran out before it came, so the
   * search took a slow control path for a black hole and settled too low
   * (on a loaded host, as low as the 552 floor). That size works, so the
   * search goes on from it up to the kernel's ceiling, and this connection's
   * tests wait longer from then on. Repeats of an answer already used change
   * nothing.
   */
  private verified(mtu: number, now: number): void {
    const s = this.search;
    if (s && mtu === s.candidate) {
      this.learnAnswerDelay(now - s.firstSentAt);
      s.highestGood = mtu;
      this.nextCandidate(now);
      return;
    }
    const good = s ? s.highestGood : this.mtu;
    if (mtu <= good || mtu >= this.mtuCeiling || this.mtuCeiling > INITIAL_MTU) return;
    // It came after every timeout of its size had run out: from now on, each test waits the longest allowed.
    this.verifyFloorMs = MTU_VERIFY_SLOW_PATH_CAP_MS;
    if (s) {
      // Sizes above it were given up on by the same mistake, up to where it was itself given up on.
      if (mtu >= s.lowestBad) s.lowestBad = this.mtuCeiling;
      s.highestGood = mtu;
    } else {
      this.search = newSearch(mtu, mtu, this.mtuCeiling, now);
    }
    this.nextCandidate(now);
  }

  private learnAnswerDelay(ms: number): void {
    this.verifyFloorMs = Math.min(MTU_VERIFY_SLOW_PATH_CAP_MS, Math.max(this.verifyFloorMs, 2 * ms));
  }

  /** The DF socket refused a datagram with EMSGSIZE; the kernel's path MTU is `pathMtu` (spec §5.6). */
  handleMsgSize(pathMtu: number, now: number): void {
    const m = pathMtu - this.overheadDF;
    if (this.search && this.search.candidate <= m) return;
    if (m < PMTU_SEARCH_FLOOR) return;
    this.search = newSearch(m, PMTU_SEARCH_FLOOR, m + 1, now);
    this.mtuCeiling = m + 1;
    this.maxPayloadDF = pathMtu - UDP_IP_OVERHEAD;
    this.mtu = m;
    this.sendMtuTest(now);
    this.events.changed();
  }

  /** Sends the candidate's test; `first`: the candidate is new (its answer's delay is measured from here). */
  private sendMtuTest(now: number, first = true): void {
    const s = this.search!;
    if (first) s.firstSentAt = now;
    // Weave's timeouts (10 ms doubling), none shorter than the slowest answer this connection has had.
    s.deadline = now + Math.max(s.timeoutMs, this.verifyFloorMs);
    if (this.remoteSockaddr) this.dfQueue.push(this.special(mtuTestFrame(s.candidate)));
  }

  private nextCandidate(now: number): void {
    const s = this.search!;
    if (s.highestGood + 1 >= s.lowestBad) {
      this.mtu = s.highestGood;
      this.maxPayloadDF = this.mtu + this.overheadDF - UDP_IP_OVERHEAD;
      this.search = undefined;
      this.events.changed();
      return;
    }
    s.candidate = Math.floor((s.highestGood + s.lowestBad) / 2);
    s.attempt = 0;
    s.timeoutMs = MTU_VERIFY_FIRST_TIMEOUT_MS;
    this.sendMtuTest(now);
    this.events.changed(); // the search's bounds, for a handover
  }

  /** Queues an Ethernet frame for the remote, choosing the path (spec §5.7). */
  send(src: PeerName, dst: PeerName, frame: Uint8Array, broadcast: boolean): void {
    if (!this.remoteSockaddr) {
      this.events.drop('no-remote-address');
      return;
    }
    const limit = this.mtu + ETHERNET_HEADER_SIZE;
    if (isIPv4DF(frame)) {
      if (frame.length <= limit) this.dfQueue.push({ src, dst, frame });
      else if (broadcast) this.events.drop('df-too-big-broadcast');
      else {
        this.events.drop('df-too-big');
        const icmp = icmpFragNeeded(frame, this.mtu);
        if (icmp) this.events.deliver(dst, src, icmp);
      }
      return;
    }
    if (this.stackFrag || !isIPv4(frame)) this.nonDfQueue.push({ src, dst, frame });
    else if (frame.length <= limit) this.dfQueue.push({ src, dst, frame });
    else {
      const parts = fragmentIPv4(frame, this.mtu);
      if (parts.length === 0) this.events.drop('cannot-fragment');
      for (const p of parts) this.dfQueue.push({ src, dst, frame: p });
    }
  }

  /** Largest UDP payload for a datagram on the path (spec §5.7). */
  maxPayload(df: boolean): number {
    return df ? this.maxPayloadDF : MAX_UDP_PAYLOAD;
  }
}
