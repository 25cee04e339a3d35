// The router's status as plain data: what `weave status`, `weave report` and
// /metrics render (user-surface spec §2, §3, §5.3). The mesh produces a
// RouterStatus snapshot; the API layer only formats it. Types and small pure
// helpers only.

/** Connection states in the order the summary counts them (spec §2.1). */
export const CONNECTION_STATES = ['established', 'pending', 'retrying', 'failed', 'connecting'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

/** The selected forwarder's attributes (spec §2.3, §3 `Attrs`). */
export interface OverlayAttrs {
  /** `fastdp`, `sleeve`, `awsvpc`. */
  name: string;
  mtu: number;
  encrypted?: boolean;
}

/** One line of `weave status connections`: a real connection or a pending target. */
export type LocalConnection =
  | {
      kind: 'connection';
      outbound: boolean;
      /** Remote TCP `ip:port`. */
      address: string;
      state: 'established' | 'pending';
      /** Peer name string (`aa:bb:cc:dd:ee:ff`) and nickname of the remote. */
      peerName: string;
      peerNickName: string;
      /** Data-plane encryption in use on this connection (untrusted by either side). */
      encrypted: boolean;
      /** Selected forwarder, or undefined while none is selected yet (`none`). */
      overlay?: OverlayAttrs;
      /**
       * Why a preferred overlay is not the one in use (e.g. fastdp heartbeats not
       * acknowledged). Not in Weave's format: appended in parentheses so a user sees
       * why a connection is on sleeve instead of guessing.
       */
      fallbackReason?: string;
    }
  | {
      kind: 'target';
      /** `ip:port` with the default port filled in. */
      address: string;
      state: 'connecting' | 'retrying' | 'failed';
      /**
       * A recent inbound attempt this router refused (e.g. a password
       * mismatch), shown with `<-` so the refusing side can say why.
       */
      inbound?: boolean;
      lastError?: string;
      /** When the next attempt is due (state `failed`). */
      retryAt?: Date;
    };

export interface PeerConnectionStatus {
  name: string;
  nickName: string;
  address: string;
  outbound: boolean;
  established: boolean;
}

export interface PeerStatus {
  name: string;
  nickName: string;
  uid: bigint;
  shortId: number;
  version: bigint;
  connections: PeerConnectionStatus[];
}

export interface RouterStatus {
  /** False until every service the router runs is serving (spec §5.1: 503 meanwhile). */
  ready: boolean;
  protocolMinVersion: number;
  protocolMaxVersion: number;
  /** A password is configured. */
  encryption: boolean;
  peerDiscovery: boolean;
  name: string;
  nickName: string;
  port: number;
  /** Every known peer, ourselves included. */
  peers: PeerStatus[];
  unicastRoutes: { dest: string; via: string }[];
  broadcastRoutes: { source: string; via: string[] }[];
  connections: LocalConnection[];
  terminationCount: number;
  /** Direct peers exactly as supplied (spec §2.2). */
  targets: string[];
  trustedSubnets: string[];
  /** e.g. `datapath (via ODP)`, `vethwe-pcap (via pcap)`. */
  interface: string;
  overlayDiagnostics: Record<string, unknown>;
  /** Packet counters of the preferred datapath (fastdp when there is one); absent without a data plane. */
  datapath?: DatapathCounters;
}

/** What a datapath forwarded in the kernel, handed to userspace and dropped (by reason) since it was created. */
export interface DatapathCounters {
  /** `bpf`, `ovs`, `sleeve`. */
  kind: string;
  kernelForwarded: bigint;
  userspace: bigint;
  drops: Readonly<Record<string, bigint>>;
  /** Forwarding entries held in the kernel (OVS flows, eBPF MAC-table entries); absent for the sleeve. */
  flows?: number;
  /** The overlay MTU containers get now: ours, or lower when a neighbour announced less (fastdp only). */
  overlayMtu?: number;
}

/**
 * Another service's block in the `weave status` summary (spec §2.1), e.g.
 * IPAM or DNS: `Service: <service>` then right-aligned `label: value` lines.
 */
export interface ServiceSection {
  service: string;
  fields: [label: string, value: string][];
}

/** Go's `time.Time.String()` with a monotonic suffix, as printed for retry times (spec §2.3). */
export function goTimeString(t: Date, monotonicSeconds: number): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const date = `${t.getUTCFullYear()}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())}`;
  const time = `${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}.${p(t.getUTCMilliseconds(), 3)}000000`;
  return `${date} ${time} +0000 UTC m=+${monotonicSeconds.toFixed(9)}`;
}

/** Seconds since this process started, for Go's `m=+…` suffix. */
function processMonotonicSeconds(at: Date): number {
  const started = Date.now() - process.uptime() * 1000;
  return Math.max(0, (at.getTime() - started) / 1000);
}

/**
 * The `Info` text of a connection line (spec §2.3): overlay and peer for real
 * connections (prefixed by encrypted/unencrypted when a password is set), the
 * last error for targets.
 */
export function connectionInfo(c: LocalConnection, passwordSet: boolean): string {
  if (c.kind === 'target') {
    if (c.state === 'retrying') return c.lastError ?? '';
    if (c.state === 'failed') {
      const retry = c.retryAt ? `, retry: ${goTimeString(c.retryAt, processMonotonicSeconds(c.retryAt))}` : '';
      return `${c.lastError ?? ''}${retry}`;
    }
    return '';
  }
  const overlay = (c.overlay?.name ?? 'none').padEnd(6);
  const info = `${overlay} ${c.peerName}(${c.peerNickName})`;
  if (!passwordSet) return info;
  return `${(c.encrypted ? 'encrypted' : 'unencrypted').padEnd(11)} ${info}`;
}

/** Attributes as `key=value` pairs in sorted key order without `name`, no separator (spec §2.3 quirk). */
export function connectionAttrs(c: LocalConnection): string {
  if (c.kind === 'target' || !c.overlay) return '';
  const attrs: Record<string, string> = { mtu: String(c.overlay.mtu) };
  if (c.overlay.encrypted) attrs.encrypted = 'true';
  return Object.keys(attrs)
    .sort()
    .map((k) => `${k}=${attrs[k]}`)
    .join('');
}
