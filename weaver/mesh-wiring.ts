// Wires the mesh into weaver: the TCP listener on --port, the handshake on
// every inbound socket and every dial, and the Router that owns the
// connections. Everything weaver knows about the mesh goes through here.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RouterControl } from '../controlplane/api/router-control.js';
import type { LocalConnection, RouterStatus } from '../controlplane/api/status-model.js';
import { formatPeerAddress, parsePeerAddress } from '../controlplane/api/peer-address.js';
import type { PeerIdentity } from '../controlplane/mesh/types.js';
import type { WeaverConfig } from './flags.js';
import { formatPeerName } from './peer-name.js';

/** True once the mesh Router and the wire handshake are wired in (the netns mesh tests depend on it). */
export const MESH_WIRED: boolean = false;

export interface MeshOptions {
  identity: PeerIdentity;
  config: WeaverConfig;
  logger: Logger;
  /** Direct peers to connect to at start. */
  initialTargets: string[];
  /** Called with the whole direct-peer list whenever connect/forget changes it. */
  onTargetsChanged(targets: string[]): void;
}

export interface RunningMesh extends RouterControl {
  close(): Promise<void>;
}

/** Target list bookkeeping shared by every wiring: order kept, duplicates dropped. */
class Targets {
  private list: string[] = [];
  constructor(initial: string[], private readonly changed: (t: string[]) => void) {
    this.add(initial, false);
  }
  all(): string[] {
    return [...this.list];
  }
  add(peers: string[], replace: boolean): void {
    if (replace) this.list = [];
    for (const p of peers) if (!this.list.includes(p)) this.list.push(p);
    this.changed(this.all());
  }
  remove(peers: string[]): void {
    this.list = this.list.filter((t) => !peers.includes(t));
    this.changed(this.all());
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host === '' ? undefined : host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Start the mesh side of the router. Until the mesh Router and the wire
 * handshake are available this serves the local peer only: the port is
 * bound, inbound control connections are closed with a log line, and
 * targets are listed as `connecting`.
 */
export async function startMesh(opts: MeshOptions): Promise<RunningMesh> {
  const { identity, config, logger } = opts;
  const targets = new Targets(opts.initialTargets, opts.onTargetsChanged);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    logger.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'mesh connections are not available in this build; closing');
    socket.destroy();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  try {
    await listen(server, config.host, config.port);
  } catch (err) {
    throw new Error(`Unable to listen on TCP port ${config.port}: ${(err as Error).message} (is another router using it? pass --port)`);
  }

  const status = (): RouterStatus => ({
    ready: true,
    protocolMinVersion: config.minProtocolVersion,
    protocolMaxVersion: 2,
    encryption: config.password !== '',
    peerDiscovery: config.discovery,
    name: formatPeerName(identity.name),
    nickName: identity.nickName,
    port: config.port,
    peers: [{ name: formatPeerName(identity.name), nickName: identity.nickName, uid: identity.uid, shortId: identity.shortId, version: 1n, connections: [] }],
    unicastRoutes: [],
    broadcastRoutes: [],
    connections: targets.all().map(
      (t): LocalConnection => ({ kind: 'target', address: formatPeerAddress(parsePeerAddress(t, config.port)), state: 'connecting' }),
    ),
    terminationCount: 0,
    targets: targets.all(),
    trustedSubnets: config.trustedSubnets,
    interface: 'none',
    overlayDiagnostics: {},
  });

  return {
    status,
    port: () => config.port,
    connect: (peers, replace) => targets.add(peers, replace),
    forget: (peers) => targets.remove(peers),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
