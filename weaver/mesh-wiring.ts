// Wires the mesh into weaver: the TCP listener on --port, the handshake on
// every inbound socket and every dial, the Router that owns the connections,
// and the ConnectionMaker that keeps dialling targets. Everything weaver knows
// about the mesh goes through here.
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RouterControl } from '../controlplane/api/router-control.js';
import type { RouterStatus } from '../controlplane/api/status-model.js';
import {
  ConnectionMaker,
  ConnectionRefusedError,
  DuplicateConnectionError,
  MAX_PENDING_HANDSHAKES,
  PendingHandshakes,
  PortNotListeningError,
  Router,
  SelfConnectionError,
  meshStatus,
  type AddConnectionOptions,
  type Handshake,
  type MeshConnection,
  type MeshLogger,
  type MessageLink,
  type PeerIdentity,
  type RouterOptions,
} from '../controlplane/mesh/index.js';
import { performHandshake, type HandshakeOptions, type HandshakeResult } from '../controlplane/mesh/wire/index.js';
import { joinHostPort, splitHostPort } from '../controlplane/host-port.js';
import { takeQueuedConnections } from '../dataplane/sys/accept-queue.js';
import { describeDialError } from './dial-error.js';
import type { WeaverConfig } from './flags.js';
import { composeRouterStatus, type InboundFailure } from './router-status.js';
import type { TrustedSubnets } from '../controlplane/router/trusted-subnets.js';
import type { RunningDataPlane } from './datapath-wiring.js';

/** A TCP connect that has not completed in this time is given up (the maker retries with backoff). */
export const DIAL_TIMEOUT_MS = 10_000;
/** How long a refused inbound attempt stays visible in `weave status connections`. */
export const INBOUND_FAILURE_TTL_MS = 5 * 60_000;
/** At most this many refused inbound attempts are remembered (one per remote IP). */
const MAX_INBOUND_FAILURES = 32;

export interface MeshOptions {
  identity: PeerIdentity;
  config: WeaverConfig;
  logger: Logger;
  /** Direct peers to connect to at start. */
  initialTargets: string[];
  /** Called with the whole direct-peer list whenever connect/forget changes it. */
  onTargetsChanged(targets: string[]): void;
  /**
   * The data plane the composition root started beside the mesh; the mesh
   * connects it to the Router and closes it with itself. Without it the mesh
   * runs control-only.
   */
  dataPlane?: RunningDataPlane;
  /** --trusted-subnets, built once by the composition root (also the data plane's). */
  trusted: TrustedSubnets;
  /** Our short id may have been reassigned after a collision (spec §4.8): called with the current one. */
  onShortIdsChanged?(ourShortId: number): void;
  /** Registers gossip channels (IPAM, DNS) before any connection is made, as Weave does. */
  beforeConnecting?(router: Router): Promise<void>;
  /** The mesh port opened early in startup (MeshListener.open); without it the mesh listens itself. */
  listener?: MeshListener;
  /** Startup phases as they are reached: the first dial and the first completed handshake (logged at debug level). */
  phase?(what: string): void;
}

export interface RunningMesh extends RouterControl {
  readonly router: Router;
  /** `weave attach` put `ifname` on the bridge: resolves once the data plane handles it (at once without one). */
  portAdded(ifname: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The mesh port, listening from early in startup, before the data plane has
 * loaded (most of a start). A peer that dials us meanwhile (every router of a
 * mesh launched together dials the first) waits in its handshake for our
 * protocol header, for up to its 10 s header deadline, instead of being
 * refused and backing off (2 s, then ×1.5 each time): its connection is
 * accepted and handed to the mesh when the mesh starts. At most
 * MAX_PENDING_HANDSHAKES sockets wait; more are closed at once.
 */
export class MeshListener {
  private readonly waiting = new Set<Socket>();
  private handler: ((socket: Socket) => void) | undefined;

  private constructor(readonly server: Server) {}

  static async open(host: string, port: number): Promise<MeshListener> {
    const listener = new MeshListener(createServer((socket) => listener.accepted(socket)));
    // Every peer already connected is taken at once, so that none waits for its protocol
    // header behind our busy turns (dataplane/sys/accept-queue.ts says why).
    takeQueuedConnections(listener.server, MAX_PENDING_HANDSHAKES);
    try {
      await listen(listener.server, host, port);
    } catch (err) {
      throw new Error(`Unable to listen on TCP port ${port}: ${(err as Error).message} (is another router using it? pass --port)`);
    }
    return listener;
  }

  /** From now on sockets go to `handler`, those waiting first. */
  handOver(handler: (socket: Socket) => void): void {
    this.handler = handler;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const s of waiting) if (!s.destroyed) handler(s);
  }

  close(): Promise<void> {
    for (const s of this.waiting) s.destroy();
    this.waiting.clear();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accepted(socket: Socket): void {
    if (this.handler) {
      this.handler(socket);
      return;
    }
    if (this.waiting.size >= MAX_PENDING_HANDSHAKES) {
      socket.destroy();
      return;
    }
    this.waiting.add(socket);
    socket.on('error', () => undefined); // read when handed over; a reset until then only closes it
    socket.once('close', () => this.waiting.delete(socket));
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

/** A connected TCP socket to `address` (`host:port`), or a rejection in Weave's words. */
function dialTcp(address: string, pending: Set<Socket>): Promise<Socket> {
  const { host, port } = splitHostPort(address) ?? { host: address };
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port: port ?? 0 });
    pending.add(socket);
    const fail = (err: unknown): void => {
      socket.destroy();
      pending.delete(socket);
      const message = describeDialError(address, err);
      reject((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? new PortNotListeningError(message) : new Error(message));
    };
    socket.setTimeout(DIAL_TIMEOUT_MS, () => fail(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      pending.delete(socket);
      resolve(socket);
    });
  });
}

function plainAddress(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * A Router that logs every refusal after a completed handshake (self, name
 * collision, duplicate, limit), whichever side dialled: the ConnectionMaker
 * records outbound refusals only as target state.
 */
class LoggingRouter extends Router {
  constructor(private readonly log: Logger, opts: RouterOptions) {
    super(opts);
  }

  override addConnection(handshake: Handshake, link: MessageLink, opts: AddConnectionOptions): MeshConnection {
    try {
      return super.addConnection(handshake, link, opts);
    } catch (err) {
      const routine = err instanceof DuplicateConnectionError || err instanceof SelfConnectionError;
      const line = `${handshake.outbound ? '->' : '<-'}[${handshake.remoteAddr}] connection refused: ${(err as Error).message}`;
      if (routine) this.log.info(line);
      else this.log.warn(line);
      throw err;
    }
  }
}

/** Start the mesh side of the router: listener, Router, ConnectionMaker. */
export async function startMesh(opts: MeshOptions): Promise<RunningMesh> {
  const { identity, config, logger } = opts;
  const { trusted } = opts;
  const password = config.password === '' ? undefined : new TextEncoder().encode(config.password);
  const meshLogger: MeshLogger = {
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    ...(logger.isLevelEnabled('debug') ? { debug: (m: string) => logger.debug(m) } : {}),
  };

  const { dataPlane } = opts;
  const router = new LoggingRouter(logger, {
    identity,
    logger: meshLogger,
    connLimit: config.connLimit,
    // The overlay switch confirms connections when a forwarder establishes (spec §2.5);
    // a control-only mesh has nothing to confirm them, so they count as established at once.
    establishImmediately: dataPlane === undefined,
    ...(dataPlane ? {
      overlay: dataPlane.overlayHandler,
      onRoutesChanged: () => dataPlane.routesChanged(),
    } : {}),
    onShortIdsChanged: () => {
      dataPlane?.routesChanged();
      opts.onShortIdsChanged?.(router.peers.ourselves.shortId);
    },
  });
  dataPlane?.bindRouter(router);
  try {
    await opts.beforeConnecting?.(router);
  } catch (err) {
    router.stop();
    await dataPlane?.close();
    throw err;
  }

  const handshakeOptions = (outbound: boolean, remoteIp: string): HandshakeOptions => ({
    identity,
    ...(password ? { password } : {}),
    outbound,
    trustedRemote: trusted.contains(remoteIp),
    // Our overlays in preference order (wire spec §1.5). Without a data plane we advertise
    // none, like a legacy mesh-only peer.
    overlays: dataPlane?.overlays,
    minVersion: config.minProtocolVersion === 2 ? 2 : 1,
  });

  // Sockets between accept/connect and the end of their handshake: closed on stop.
  const pending = new Set<Socket>();
  const inboundFailures = new Map<string, InboundFailure>();
  let stopping = false;

  const recordInboundFailure = (address: string, error: string): void => {
    const ip = splitHostPort(address)?.host ?? address;
    inboundFailures.delete(ip);
    inboundFailures.set(ip, { address, error, at: Date.now() });
    while (inboundFailures.size > MAX_INBOUND_FAILURES) inboundFailures.delete(inboundFailures.keys().next().value as string);
  };
  const liveInboundFailures = (): InboundFailure[] => {
    const cutoff = Date.now() - INBOUND_FAILURE_TTL_MS;
    for (const [ip, f] of inboundFailures) if (f.at < cutoff) inboundFailures.delete(ip);
    return [...inboundFailures.values()];
  };

  const phaseOnce = (what: string): (() => void) => {
    let reached = false;
    return () => {
      if (reached) return;
      reached = true;
      opts.phase?.(what);
    };
  };
  const firstDial = phaseOnce('first dial');
  const firstHandshake = phaseOnce('first handshake');
  const inboundHandshakes = new PendingHandshakes();
  const acceptInbound = async (socket: Socket): Promise<void> => {
    const remoteIp = plainAddress(socket.remoteAddress);
    const remote = joinHostPort(remoteIp, socket.remotePort ?? 0);
    const refusal = inboundHandshakes.admit(remoteIp);
    if (refusal) {
      socket.destroy();
      logger.warn(`<-[${remote}] connection refused before the handshake: ${refusal}`);
      return;
    }
    pending.add(socket);
    meshLogger.debug?.(`<-[${remote}] accepted, handshake begins`);
    let result: HandshakeResult;
    try {
      result = await performHandshake(socket, { ...handshakeOptions(false, remoteIp), onPeerHeader: () => {
        meshLogger.debug?.(`<-[${remote}] protocol header received`);
      } });
      firstHandshake();
    } catch (err) {
      const msg = (err as Error).message;
      logger.warn(`<-[${remote}] connection shutting down due to error during handshake: ${msg}`);
      recordInboundFailure(remote, msg);
      return;
    } finally {
      pending.delete(socket);
      inboundHandshakes.done(remoteIp);
    }
    if (stopping) {
      result.link.close(new Error('router stopping'));
      return;
    }
    try {
      router.addConnection(result.handshake, result.link, { direct: true });
      inboundFailures.delete(remoteIp);
    } catch (err) {
      // Duplicates (simultaneous dials) and ourselves (our own address among the targets) are routine.
      const routine = err instanceof DuplicateConnectionError || err instanceof SelfConnectionError;
      if (err instanceof ConnectionRefusedError && !routine) recordInboundFailure(remote, (err as Error).message);
    }
  };

  let listener: MeshListener;
  try {
    listener = opts.listener ?? await MeshListener.open(config.host, config.port);
  } catch (err) {
    router.stop();
    await dataPlane?.close();
    throw err;
  }
  listener.handOver((socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    void acceptInbound(socket);
  });

  const dial = async (address: string): Promise<HandshakeResult> => {
    logger.info(`->[${address}] attempting connection`);
    firstDial();
    try {
      const socket = await dialTcp(address, pending);
      socket.setNoDelay(true);
      pending.add(socket);
      try {
        const done = await performHandshake(socket, handshakeOptions(true, plainAddress(socket.remoteAddress)));
        firstHandshake();
        return done;
      } finally {
        pending.delete(socket);
      }
    } catch (err) {
      logger.warn(`->[${address}] error during connection attempt: ${(err as Error).message}`);
      throw err;
    }
  };

  const maker = new ConnectionMaker({
    router,
    dial,
    port: config.port,
    discovery: config.discovery,
    initialTargets: opts.initialTargets,
    inboundHandshakeFrom: (host) => inboundHandshakes.has(host),
  });
  router.start();

  const changed = (): void => opts.onTargetsChanged(maker.targets());

  return {
    router,
    status: (): RouterStatus => composeRouterStatus(meshStatus(router, maker), config, liveInboundFailures(), dataPlane?.status()),
    port: () => config.port,
    connect: (peers, replace) => {
      maker.connect(peers, replace);
      changed();
    },
    forget: (peers) => {
      maker.forget(peers);
      changed();
    },
    portAdded: async (ifname) => {
      await dataPlane?.portAdded(ifname);
    },
    close: async () => {
      stopping = true;
      maker.stop();
      router.stop();
      await dataPlane?.close();
      for (const s of pending) s.destroy();
      pending.clear();
      await listener.close();
    },
  };
}
