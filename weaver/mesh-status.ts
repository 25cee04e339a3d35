// Maps the mesh's own status (bigint names, mesh types) onto the API's
// RouterStatus view model (strings, user-surface spec §2-3).
import type { LocalConnection, RouterStatus } from '../controlplane/api/status-model.js';
import type { MeshStatus } from '../controlplane/mesh/index.js';
import { formatPeerName } from '../controlplane/mesh/wire/index.js';
import type { WeaverConfig } from './flags.js';

/** An inbound connection we refused, kept for a while so `weave status connections` can show why. */
export interface InboundFailure {
  address: string;
  error: string;
  at: number;
}

export function toRouterStatus(mesh: MeshStatus, config: WeaverConfig, inboundFailures: InboundFailure[]): RouterStatus {
  const connections: LocalConnection[] = mesh.connections.map((c): LocalConnection => {
    if (c.kind === 'target') return c;
    return {
      kind: 'connection',
      outbound: c.outbound,
      address: c.address,
      state: c.state,
      peerName: formatPeerName(c.peerName),
      peerNickName: c.peerNickName,
      encrypted: c.encrypted,
      ...(c.overlay ? { overlay: c.overlay } : {}),
    };
  });
  for (const f of inboundFailures) {
    connections.push({ kind: 'target', inbound: true, address: f.address, state: 'failed', lastError: f.error });
  }
  return {
    ready: true,
    protocolMinVersion: config.minProtocolVersion,
    protocolMaxVersion: 2,
    encryption: config.password !== '',
    peerDiscovery: config.discovery,
    name: formatPeerName(mesh.name),
    nickName: mesh.nickName,
    port: config.port,
    peers: mesh.peers.map((p) => ({
      name: formatPeerName(p.name),
      nickName: p.nickName,
      uid: p.uid,
      shortId: p.shortId,
      version: p.version,
      connections: p.connections.map((c) => ({
        name: formatPeerName(c.name),
        nickName: c.nickName,
        address: c.address,
        outbound: c.outbound,
        established: c.established,
      })),
    })),
    unicastRoutes: mesh.unicastRoutes.map((r) => ({ dest: formatPeerName(r.dest), via: formatPeerName(r.via) })),
    broadcastRoutes: mesh.broadcastRoutes.map((r) => ({ source: formatPeerName(r.source), via: r.via.map(formatPeerName) })),
    connections,
    terminationCount: mesh.terminationCount,
    targets: mesh.targets,
    trustedSubnets: config.trustedSubnets,
    // No data plane is wired into the router yet, so there is no overlay interface to name.
    interface: 'none',
    overlayDiagnostics: {},
  };
}
