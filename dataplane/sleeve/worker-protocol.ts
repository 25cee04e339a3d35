// Messages between SleeveDatapath (control-plane thread) and the sleeve packet
// worker. Small and infrequent: forwarder start/stop, control messages,
// forwarding state, events and stats snapshots. Packets never cross here.
import type { MessagePort } from 'node:worker_threads';
import type { PeerName } from '../../controlplane/mesh/types.js';
import type { ForwardingState } from '../../controlplane/router/datapath.js';
import type { SleeveCryptoErrorKind } from '../../crypto/sleeve-crypto.js';

/** What a restarted worker needs to pick a forwarder up where the old one was. */
/** A path MTU search's candidate and bounds (spec §5.6). */
export interface PmtuBounds {
  candidate: number;
  highestGood: number;
  lowestBad: number;
}

export interface ForwarderResume {
  established: boolean;
  /** The remote's heartbeat was seen and answered with ConnectionEstablished. */
  heartbeatSeen?: boolean;
  /** A path MTU search under way (spec §5.6): where it stood. */
  search?: PmtuBounds;
  /** The search's upper bound from the kernel's path MTU, and the shortest test timeout learnt (connection.ts). */
  mtuCeiling?: number;
  verifyFloorMs?: number;
  remoteIp?: string;
  remotePort?: number;
  mtu?: number;
  stackFrag: boolean;
}

export interface AddForwarder {
  t: 'add';
  id: number;
  remoteName: PeerName;
  remoteIp: string;
  remotePort: number;
  outbound: boolean;
  connUID: bigint;
  sessionKey?: Uint8Array;
  /** The DF socket, created by the main thread inside the datapath's namespace. */
  dfFd: number;
  /** Sealer counters [df, nonDF] shared with the main thread, so a restart never reuses a nonce. */
  counters: SharedArrayBuffer;
  resume?: ForwarderResume;
}

export type ToWorker =
  | AddForwarder
  | { t: 'remove'; id: number }
  | { t: 'control'; id: number; subTag: number; payload: Uint8Array }
  | { t: 'state'; state: ForwardingState }
  /** A datagram the keeper read before the worker started, to handle as if received (keeper.ts handOver). */
  | { t: 'datagram'; datagram: Uint8Array; ip: string; port: number }
  | { t: 'stop' };

/** Why the worker dropped a frame or datagram: the names of its `drops` counters. */
export type SleeveDropReason =
  // capture (frames from local containers)
  | 'runt' | 'stp' | 'src-mac-owned-by-peer' | 'local-destination' | 'no-route' | 'capture-gso-frame'
  // receive (datagrams from peers, spec §5.2-5.4)
  | 'datagram-too-short' | 'unknown-sender' | SleeveCryptoErrorKind | 'frame-too-short' | 'trailing-garbage'
  | 'special-frame-misaddressed' | 'unknown-peer' | 'forwarder-not-established'
  // send (pack, seal, batch, send; spec §5.6-5.7)
  | 'frame-too-big' | 'emsgsize' | 'path-mtu-unreadable' | 'send-buffer-full' | `send-errno-${number}`
  // inject (frames to local containers)
  | 'inject-buffer-full' | `inject-errno-${number}`
  // a data frame that came while the worker was parked (keeper.ts): it starts the worker
  | 'sleeve-parked'
  // an interface's announcement of itself captured while the worker was parked (link-announcements.ts)
  | 'link-announcement';

export interface WorkerStats {
  captured: number;
  injected: number;
  framesSent: number;
  framesReceived: number;
  datagramsSent: number;
  datagramsReceived: number;
  drops: { [R in SleeveDropReason]?: number };
  /** CPU time the worker thread used, microseconds. */
  cpuMicros: number;
  /** Full collections of the worker's heap (dataplane/sys/full-gc.ts). */
  fullCollections: number;
}

export type FromWorker =
  | { t: 'ready' }
  | { t: 'sendControl'; id: number; subTag: number; payload: Uint8Array }
  | { t: 'established'; id: number }
  | { t: 'failed'; id: number; reason: string }
  | { t: 'forwarder'; id: number; remoteIp?: string; remotePort?: number; mtu?: number; stackFrag: boolean; heartbeatSeen: boolean; search?: PmtuBounds; mtuCeiling?: number; verifyFloorMs?: number }
  | { t: 'stats'; stats: WorkerStats }
  | { t: 'log'; message: string };

export interface WorkerConfig {
  ourName: PeerName;
  port: number;
  epollFd: number;
  wakeFd: number;
  packetFd: number;
  udpFd: number;
  /** Port the main thread posts ToWorker messages on. */
  control: MessagePort;
}

