// Composes the API's RouterStatus view model (strings, user-surface spec
// §2-3) once per request from the mesh's status and the data plane's, joined
// by peer name: what `weave status`, `weave report` and /metrics render.
import type { DatapathCounters, LocalConnection, RouterStatus } from '../controlplane/api/status-model.js';
import type { MeshStatus } from '../controlplane/mesh/index.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import { formatPeerName, PROTOCOL_MAX_VERSION } from '../controlplane/mesh/wire/index.js';
import type { OverlayName } from '../controlplane/router/datapath.js';
import type { ConnectionOverlayStatus } from '../controlplane/router/overlay-switch.js';
import type { WeaverConfig } from './flags.js';
import { once } from '../controlplane/once.js';

/** An inbound connection we refused, kept for a while so `weave status connections` can show why. */
export interface InboundFailure {
  address: string;
  error: string;
  at: number;
}

/** The data plane's part of a status snapshot, read once. */
export interface DataPlaneStatus {
  /** The `Interface` line (spec §2.1): which datapath carries traffic. */
  interface: string;
  /** Our overlays in preference order. */
  overlays: readonly OverlayName[];
  /** The overlay switch's record per connected peer: overlay in use, encryption, why not a preferred one. */
  connections: ReadonlyMap<PeerName, ConnectionOverlayStatus>;
  /** The preferred datapath's counters. */
  datapath?: DatapathCounters;
}

/** Without a data plane there is no overlay interface to name. */
const NO_INTERFACE = 'none';

export type StatusConfig = Pick<WeaverConfig, 'minProtocolVersion' | 'password' | 'discovery' | 'port' | 'trustedSubnets'>;

/** As meshStatus, the peers and the routes are composed when first read (the same turn). */
export function composeRouterStatus(mesh: MeshStatus, config: StatusConfig, inboundFailures: readonly InboundFailure[], dataPlane?: DataPlaneStatus): RouterStatus {
  const peers = once(() => mesh.peers.map((p) => {
    const connections = once(() => p.connections.map((c) => ({
      name: formatPeerName(c.name),
      nickName: c.nickName,
      address: c.address,
      outbound: c.outbound,
      established: c.established,
    })));
    return {
      name: formatPeerName(p.name), nickName: p.nickName, uid: p.uid, shortId: p.shortId, version: p.version,
      get connections() { return connections(); },
    };
  }));
  const unicastRoutes = once(() => mesh.unicastRoutes.map((r) => ({ dest: formatPeerName(r.dest), via: formatPeerName(r.via) })));
  const broadcastRoutes = once(() => mesh.broadcastRoutes.map((r) => ({ source: formatPeerName(r.source), via: r.via.map(formatPeerName) })));
  const diagnostics: Record<string, unknown> = {};
  const connections: LocalConnection[] = mesh.connections.map((c): LocalConnection => {
    if (c.kind === 'target') return c;
    const peerName = formatPeerName(c.peerName);
    const line: LocalConnection = {
      kind: 'connection',
      outbound: c.outbound,
      address: c.address,
      state: c.state,
      peerName,
      peerNickName: c.peerNickName,
      encrypted: c.encrypted,
    };
    const dp = dataPlane?.connections.get(c.peerName);
    if (!dp) return line;
    diagnostics[peerName] = { overlay: dp.inUse?.overlay ?? 'none', ...(dp.reason ? { reason: dp.reason } : {}), forwarders: dp.forwarders };
    return {
      ...line,
      encrypted: dp.encrypted,
      ...(dp.inUse ? { overlay: { name: dp.inUse.overlay, mtu: dp.inUse.mtu, ...(dp.encrypted ? { encrypted: true } : {}) } } : {}),
      ...(dp.reason ? { fallbackReason: dp.reason } : {}),
    };
  });
  for (const f of inboundFailures) {
    connections.push({ kind: 'target', inbound: true, address: f.address, state: 'failed', lastError: f.error });
  }
  return {
    ready: true,
    protocolMinVersion: config.minProtocolVersion,
    protocolMaxVersion: PROTOCOL_MAX_VERSION,
    encryption: config.password !== '',
    peerDiscovery: config.discovery,
    name: formatPeerName(mesh.name),
    nickName: mesh.nickName,
    port: config.port,
    get peers() { return peers(); },
    get unicastRoutes() { return unicastRoutes(); },
    get broadcastRoutes() { return broadcastRoutes(); },
    connections,
    terminationCount: mesh.terminationCount,
    targets: mesh.targets,
    trustedSubnets: config.trustedSubnets,
    interface: dataPlane?.interface ?? NO_INTERFACE,
    overlayDiagnostics: dataPlane ? { overlays: [...dataPlane.overlays], connections: diagnostics } : {},
    ...(dataPlane?.datapath ? { datapath: dataPlane.datapath } : {}),
  };
}
