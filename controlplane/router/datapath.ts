// The one seam between the control plane and the data plane. Types only.
//
// Implementations live in dataplane/ovs, dataplane/bpf and dataplane/sleeve and
// are chosen by weaver's composition root; the router never imports them and
// they never import the router.
//
// Model (spec §5.9, §6.4): each datapath is an *overlay*. For every control
// connection the router asks each overlay both peers share for a *forwarder*,
// which runs its own heartbeat protocol and reports when it is established,
// unhealthy or failed; the router's overlay switch picks the best one per
// neighbour and tells every datapath the resulting forwarding state as one
// value, applied idempotently. Per-packet work (MAC learning, forwarding,
// encryption) happens in the kernel or in the sleeve process, never here.
import type { PeerName, PeerShortID } from '../mesh/types.js';

/** Overlay names as advertised in the `Overlays` handshake feature (spec §1.5). */
export type OverlayName = 'fastdp' | 'sleeve';

/** Which implementation carries an overlay. */
export type DatapathKind = 'ovs' | 'bpf' | 'sleeve';

/** What a forwarder needs to know about its control connection. */
export interface ForwarderParams {
  remoteName: PeerName;
  remoteShortId?: PeerShortID;
  /** Remote underlay IPv4 address (from the control connection's TCP peer address). */
  remoteIp: string;
  /** Remote UDP port (mesh port for sleeve, mesh port + 1 for fastdp; spec §0). */
  remotePort: number;
  localIp: string;
  outbound: boolean;
  /** ourConnID XOR theirConnID (spec §1.6), embedded in heartbeats. */
  connUID: bigint;
  /** Session key of the control connection, present when a password is set (spec §3.1). */
  sessionKey?: Uint8Array;
  /** Whether the traffic to this peer must be encrypted (password set and not trusted). */
  encrypt: boolean;
}

/** How a forwarder talks back to the router. */
export interface ForwarderEvents {
  /** Send an overlay control message to the remote's forwarder over the control connection (spec §2.4). */
  sendControlMessage(subTag: number, payload: Uint8Array): void;
  /** Heartbeat exchange completed: this forwarder can carry traffic. */
  established(): void;
  /** Heartbeats stopped (fastdp: put on hold, spec §5.9) or resumed. */
  healthChanged(healthy: boolean, reason?: string): void;
  /** The forwarder cannot work for this connection (e.g. UDP heartbeat timeout). */
  failed(reason: Error): void;
  /** The remote announced its overlay MTU (fastdp: the length of its heartbeats, spec §6.4); again only when it changes. */
  remoteMtu?(mtu: number): void;
}

export interface ForwarderStatus {
  state: 'initiating' | 'established' | 'unhealthy' | 'failed';
  encrypted: boolean;
  /** Overlay MTU in use on this path, when known (spec §5.6, §6.4). */
  mtu?: number;
  /** Why the forwarder is not (or no longer) working, for `weave status connections`. */
  reason?: string;
}

export interface OverlayForwarder {
  /** An overlay control message from the remote's forwarder (already unwrapped from tag 7). */
  handleControlMessage(subTag: number, payload: Uint8Array): void;
  status(): ForwarderStatus;
  stop(): void;
}

/** Forwarding state computed by the router, applied as one value (idempotent). */
export interface ForwardingState {
  ourName: PeerName;
  ourShortId: PeerShortID;
  /**
   * Every reachable peer: its short id (for fastdp VNIs), and the neighbour
   * that unicast traffic for it goes through (spec §4.6 `Unicast`).
   */
  peers: ReadonlyArray<{ name: PeerName; shortId?: PeerShortID; nextHop: PeerName }>;
  /** Per neighbour: the overlay chosen by the switch, and its underlay address. */
  neighbours: ReadonlyArray<{ name: PeerName; overlay: OverlayName; remoteIp: string }>;
  /** Broadcast next hops for traffic originating at each source peer (spec §4.6 `Broadcast(S)`). */
  broadcast: ReadonlyArray<{ source: PeerName; nextHops: ReadonlyArray<PeerName> }>;
}

export interface DatapathStats {
  /** Packets forwarded without entering userspace (kernel datapaths). */
  kernelForwarded: bigint;
  /** Packets that went up to userspace (misses, sleeve). */
  userspace: bigint;
  /** Drops by named reason. */
  drops: Readonly<Record<string, bigint>>;
  /** Forwarding entries the kernel holds now (OVS flows; eBPF MAC-table entries); absent without a kernel datapath. */
  flows?: number;
}

export interface Datapath {
  readonly overlay: OverlayName;
  readonly kind: DatapathKind;
  /** Overlay MTU offered to containers on this host (underlay MTU minus encapsulation, or --mtu; lowered by lowerMtu). */
  readonly mtu: number;
  /**
   * A neighbour accepts less than `mtu` (controlplane/router/overlay-mtu.ts):
   * the datapath's own interfaces and the MTU its heartbeats announce go down
   * to `mtu`. Optional: the sleeve fragments and discovers the path MTU itself.
   */
  lowerMtu?(mtu: number): Promise<void>;
  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder;
  /** Resolves (when it returns a promise) once the state is in place in the kernel. */
  applyForwardingState(state: ForwardingState): void | Promise<void>;
  /**
   * `weave attach` just put the container interface `ifname` (host side) on the
   * bridge: resolves once this datapath handles it, so attach returns only when
   * the container's first frames cannot be lost to the datapath still setting
   * the port up. Optional: a datapath with nothing to do per port leaves it out.
   * Failures are the datapath's to log; the promise does not reject.
   */
  portAdded?(ifname: string): Promise<void>;
  stats(): DatapathStats;
  /**
   * Stop the control side; kernel state stays so forwarding survives a router
   * restart. Removing that state is the kind's (DatapathDescriptor.teardown).
   */
  close(): Promise<void>;
}

/** What any datapath kind needs to open on this host (the composition root fills it from the flags). */
export interface DatapathOpenOptions {
  ourName: PeerName;
  /** The bridge containers are attached to. */
  bridge: string;
  /** Overlay MTU offered to containers. */
  mtu: number;
  /** Mesh TCP port: the sleeve's UDP port; fastdp's VXLAN port is port + 1. */
  port: number;
  /** `--host`: the address the sleeve binds, default all. */
  bindIp?: string;
  /** A password is set, so connections may be encrypted: kernel datapaths enable IPsec (spec §7). */
  ipsec: boolean;
  /**
   * A fast datapath is expected to carry the connections: the sleeve opens as
   * their fallback only, its heartbeats kept without a packet worker until a
   * connection uses it.
   */
  fallbackOnly?: boolean;
  log: (message: string) => void;
}

/**
 * Where a kind's kernel state is, for its descriptor's teardown. Every field
 * defaults to what a router in this namespace uses; tests and hosts running
 * several routers name their own.
 */
export interface DatapathTeardownOptions {
  /** Network namespace (a name under /run/netns or a path); default the current one. */
  netns?: string;
  /** The bridge the containers are attached to (the eBPF datapath hooks it and its ports); default `weave`. */
  bridge?: string;
  /** eBPF: the bpffs directory of the pinned maps; default WEAVE_BPF_PIN_DIR, else /sys/fs/bpf/weave. */
  pinDir?: string;
  /** Open vSwitch: the kernel datapath's name; default `datapath`. */
  ovsDatapathName?: string;
}

export type DatapathProbe = { available: true } | { available: false; reason: string };

/**
 * One datapath kind as the composition root sees it (as flannel's backends):
 * each folder dataplane/<kind>/ exports one. The root loops over them to
 * choose (probe, open), for `weave reset` (teardown) and for status.
 */
export interface DatapathDescriptor {
  readonly kind: DatapathKind;
  readonly overlay: OverlayName;
  /** The `Interface` line of `weave status` when this kind carries its overlay (user-surface spec §2.1). */
  readonly interfaceLabel: string;
  /** Can this kernel (and build) run it? If not, why, in words shown per connection in `weave status connections`. */
  probe(): Promise<DatapathProbe>;
  open(opts: DatapathOpenOptions): Promise<Datapath>;
  /**
   * Removes this kind's kernel state without the process that made it
   * (`weave reset`, also after a crash or a close). Idempotent.
   */
  teardown(opts?: DatapathTeardownOptions): Promise<void>;
}
