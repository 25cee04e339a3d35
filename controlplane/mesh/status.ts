// The mesh's state as plain data for `weave status`, `status peers`,
// `status connections`, `status targets` and `weave report` (user-surface spec
// §2.1-2.4, wire spec §10.3). Rendering is the API layer's job.
import { once } from '../once.js';
import type { ConnectionMaker } from './connection-maker.js';
import type { Router } from './router.js';
import type { PeerName, PeerShortID, PeerUID } from './types.js';

export interface PeerConnectionStatus {
  name: PeerName;
  /** Empty when the remote is only known as a placeholder. */
  nickName: string;
  /** Remote TCP address as the owning peer sees it. */
  address: string;
  outbound: boolean;
  established: boolean;
}

export interface PeerStatus {
  name: PeerName;
  nickName: string;
  uid: PeerUID;
  shortId: PeerShortID;
  version: bigint;
  connections: PeerConnectionStatus[];
}

/** One line of `weave status connections`: a live connection or a target not connected yet. */
export type ConnectionStatus =
  | {
      kind: 'connection';
      outbound: boolean;
      address: string;
      state: 'established' | 'pending';
      peerName: PeerName;
      peerNickName: string;
      /** The control connection is encrypted (a password is in use and the peer is untrusted). */
      encrypted: boolean;
    }
  | {
      kind: 'target';
      address: string;
      state: 'connecting' | 'retrying' | 'failed';
      lastError?: string;
      /** Next attempt (state `failed` with a retry pending). */
      retryAt?: Date;
    };

export interface MeshStatus {
  name: PeerName;
  nickName: string;
  peers: PeerStatus[];
  unicastRoutes: { dest: PeerName; via: PeerName }[];
  broadcastRoutes: { source: PeerName; via: PeerName[] }[];
  connections: ConnectionStatus[];
  /** Direct peers exactly as supplied (`weave status targets`; the summary's Targets count). */
  targets: string[];
  terminationCount: number;
}

/**
 * The mesh's state now. The peers and the routes, O(n²) in a full mesh, are
 * computed when first read: read them in the same turn, before the mesh changes.
 */
export function meshStatus(router: Router, maker?: ConnectionMaker): MeshStatus {
  const peers = once(() => router.peers.all());
  const nick = (n: PeerName): string => router.peers.get(n)?.nickName ?? '';
  const peerStatus = once((): PeerStatus[] => peers().map((p) => {
    const connections = once(() => [...p.connections.values()].map((c) => ({
      name: c.name,
      nickName: nick(c.name),
      address: c.remoteTcpAddr,
      outbound: c.outbound,
      established: c.established,
    })));
    return { name: p.name, nickName: p.nickName, uid: p.uid, shortId: p.shortId, version: p.version, get connections() { return connections(); } };
  }));
  const unicastRoutes = once(() => [...router.routes.unicastTable(false)].map(([dest, via]) => ({ dest, via })));
  const broadcastRoutes = once(() => peers().map((p) => ({ source: p.name, via: router.routes.broadcastAllNextHops(p.name) })));
  const connections: ConnectionStatus[] = router.allConnections().map((c) => ({
    kind: 'connection',
    outbound: c.outbound,
    address: c.remoteAddr,
    state: c.established ? 'established' : 'pending',
    peerName: c.remoteName,
    peerNickName: c.remoteNickName,
    encrypted: c.handshake.sessionKey !== undefined,
  }));
  for (const t of maker?.targetInfo() ?? []) {
    if (t.state === 'connected' || t.state === 'suspended') continue;
    if (t.state === 'attempting') {
      connections.push(
        t.lastError === undefined
          ? { kind: 'target', address: t.address, state: 'connecting' }
          : { kind: 'target', address: t.address, state: 'retrying', lastError: t.lastError },
      );
    } else if (t.lastError === undefined) {
      connections.push({ kind: 'target', address: t.address, state: 'connecting' });
    } else {
      connections.push({
        kind: 'target',
        address: t.address,
        state: 'failed',
        lastError: t.lastError,
        ...(t.tryAfter !== undefined ? { retryAt: new Date(t.tryAfter) } : {}),
      });
    }
  }
  return {
    name: router.ourName,
    nickName: router.peers.ourselves.nickName,
    get peers() { return peerStatus(); },
    get unicastRoutes() { return unicastRoutes(); },
    get broadcastRoutes() { return broadcastRoutes(); },
    connections,
    targets: maker?.targets() ?? [],
    terminationCount: router.terminationCount,
  };
}
