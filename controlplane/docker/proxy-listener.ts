// Where the Docker API proxy listens (user-surface spec §7.3.1): `-H` values
// `unix:///path`, `/path`, `tcp://host:port` or `host:port`; TCP with TLS when
// the proxy was given certificates. Hostile clients are bounded here: headers
// must arrive within HEADERS_TIMEOUT_MS and fit Node's header limit, and the
// number of open connections is capped, so one client cannot starve others.
import { chmodSync, chownSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { joinHostPort, plainHost, splitHostPort } from '../host-port.js';

export type ProxyListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Default TCP port of the proxy (spec §1.12). */
export const DEFAULT_PROXY_PORT = 12375;
/** Default unix socket of the proxy (spec §7.3.1). */
export const DEFAULT_PROXY_SOCKET = '/var/run/weave/weave.sock';

/** A client must send its request headers within this time (slowloris). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Open client connections per listener; more are refused at accept. */
export const MAX_PROXY_CONNECTIONS = 1024;

export interface ProxyTls {
  key: Buffer;
  cert: Buffer;
  /** With --tlsverify: clients must present a certificate signed by this CA. */
  ca?: Buffer;
  verifyClients: boolean;
}

export class ProxyAddressError extends Error {}

export function parseProxyAddress(spec: string): ProxyListenAddress {
  if (spec.startsWith('unix://') || spec.startsWith('/')) {
    const path = spec.startsWith('unix://') ? spec.slice('unix://'.length) : spec;
    if (!path.startsWith('/')) throw new ProxyAddressError('When launching the proxy, unix sockets must be specified as an absolute path.');
    return { kind: 'unix', path };
  }
  const rest = spec.startsWith('tcp://') ? spec.slice('tcp://'.length) : spec;
  const hp = splitHostPort(rest);
  if (hp?.port === undefined || !plainHost(rest, hp.host)) {
    throw new ProxyAddressError(`invalid proxy address "${spec}": expected unix:///path, /path, tcp://host:port or host:port`);
  }
  return { kind: 'tcp', host: hp.host || '0.0.0.0', port: hp.port };
}

/** As `GET /proxyaddrs` and `weave env` show it. */
export function formatProxyAddress(a: ProxyListenAddress): string {
  return a.kind === 'unix' ? `unix://${a.path}` : `tcp://${joinHostPort(a.host, a.port)}`;
}

export interface ProxyHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface RunningProxyListener {
  address: ProxyListenAddress;
  server: Server;
  close(): Promise<void>;
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // nothing there
  }
}

export async function listenProxy(
  address: ProxyListenAddress,
  handlers: ProxyHandlers,
  opts: { tls?: ProxyTls; permissionsFrom?: string; headersTimeoutMs?: number } = {},
): Promise<RunningProxyListener> {
  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  // requestTimeout 0: uploads such as `docker load` may take long; only the head is timed.
  // Node checks the timeout every connectionsCheckingInterval (30 s by default): check often enough.
  const serverOpts = { headersTimeout, requestTimeout: 0, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 4)) };
  const server: Server = opts.tls && address.kind === 'tcp'
    ? createHttpsServer({
      ...serverOpts, key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca,
      requestCert: opts.tls.verifyClients, rejectUnauthorized: opts.tls.verifyClients,
    })
    : createHttpServer(serverOpts);
  server.maxConnections = MAX_PROXY_CONNECTIONS;
  server.on('request', handlers.request);
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', (_err: Error, socket: Socket) => {
    // Malformed or oversized request heads: answer once and drop the connection.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
  });
  if (address.kind === 'unix') removeStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (address.kind === 'unix') server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  if (address.kind === 'unix' && opts.permissionsFrom) {
    // The proxy socket grants what the Docker socket grants (spec §7.3.1).
    try {
      const st = statSync(opts.permissionsFrom);
      chmodSync(address.path, st.mode & 0o777);
      chownSync(address.path, st.uid, st.gid);
    } catch {
      // Docker's socket is not local: keep the default permissions.
    }
  }
  const sockets = new Set<Duplex>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (_req: IncomingMessage, s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    address,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      if (address.kind === 'unix') removeStaleSocket(address.path);
    }),
  };
}
