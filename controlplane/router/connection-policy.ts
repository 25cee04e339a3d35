// Per-connection decisions the overlay switch asks of the router: whether a
// connection's data plane is encrypted, and which UDP port its overlay uses.
// Pure functions of the connection and the router's flags.
import type { OverlayName } from './datapath.js';
import type { TrustedSubnets } from './trusted-subnets.js';
import { splitHostPort } from '../host-port.js';
import { fastdpPortFor } from '../well-known.js';

export interface ConnectionFacts {
  /** `ip:port` of the remote end of the control connection. */
  remoteAddr: string;
  /** Whether we dialled the remote (its mesh port is then the one in remoteAddr). */
  outbound: boolean;
  /** The remote's `Trusted` feature: it does not need encryption towards us (wire spec §1.5). */
  remoteTrustsUs: boolean;
}

/**
 * Data plane encryption (user-surface spec §8.4): with a password, every
 * connection is encrypted unless both ends trust each other, we by
 * --trusted-subnets, the remote by its `Trusted` feature.
 */
export function encryptionWanted(passwordSet: boolean, trusted: TrustedSubnets, conn: ConnectionFacts): boolean {
  if (!passwordSet) return false;
  const ip = splitHostPort(conn.remoteAddr)?.host ?? conn.remoteAddr;
  return !(trusted.contains(ip) && conn.remoteTrustsUs);
}

/**
 * The remote's UDP port for an overlay (wire spec §0): its mesh port for the
 * sleeve, mesh port + 1 for fastdp. Outbound we dialled its mesh port; inbound
 * we assume it uses ours (the sleeve learns the real one from its datagrams).
 */
export function remoteOverlayPort(overlay: OverlayName, conn: Pick<ConnectionFacts, 'remoteAddr' | 'outbound'>, ourMeshPort: number): number {
  const dialled = conn.outbound ? splitHostPort(conn.remoteAddr)?.port : undefined;
  const meshPort = dialled !== undefined && dialled > 0 ? dialled : ourMeshPort;
  return overlay === 'fastdp' ? fastdpPortFor(meshPort) : meshPort;
}
