// One plugin socket: an HTTP server on a unix socket under Docker's plugin directory that
// dispatches Docker's POST /<Receiver>.<Method> calls to a network driver and, on the mesh
// socket, the IPAM driver (user-surface spec §7.1). A driver failure is 500 `{"Err": ...}`;
// a body that is not the JSON Docker sends is 400 with the reason; an unknown path is 404.
// Nothing a client sends can take the router down: every handler's failure ends as a reply.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IpamDriver } from './ipam-driver.js';
import type { NetworkDriver } from './network-driver.js';
import type { OnListening } from '../listening.js';
import {
  ACTIVATE_PATH, IPAM_RECEIVER, MAX_REQUEST_BYTES, NETWORK_RECEIVER, PluginError, PluginRequestError,
  parseCreateEndpoint, parseCreateNetwork, parseEndpoint, parseJoin, parseNetworkId, parsePoolId, parseReleaseAddress,
  parseRequestAddress, parseRequestPool,
} from './plugin-protocol.js';

/** Docker's plugin API media type. */
const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

type Handler = (body: unknown) => unknown;

export interface PluginServerStats {
  requests: number;
  /** 500 replies: the driver refused. */
  driverErrors: number;
  /** 400/404/405/413 replies: the request itself was wrong. */
  badRequests: number;
}

export interface PluginServerOptions {
  socketPath: string;
  network?: NetworkDriver;
  ipam?: IpamDriver;
  log?(message: string): void;
  /** Given the server before it listens (controlplane/listening.ts). */
  onListening?: OnListening;
}

function routes(network: NetworkDriver | undefined, ipam: IpamDriver | undefined): Map<string, Handler> {
  const r = new Map<string, Handler>();
  const implementsList: string[] = [];
  if (network) implementsList.push(NETWORK_RECEIVER);
  if (ipam) implementsList.push(IPAM_RECEIVER);
  r.set(ACTIVATE_PATH, () => ({ Implements: implementsList }));
  if (network) {
    const n = (method: string, h: Handler): void => { r.set(`/${NETWORK_RECEIVER}.${method}`, h); };
    n('GetCapabilities', () => network.capabilities());
    n('CreateNetwork', (b) => network.createNetwork(parseCreateNetwork(b)));
    n('DeleteNetwork', (b) => network.deleteNetwork(parseNetworkId(b)));
    n('AllocateNetwork', (b) => network.allocateNetwork(parseNetworkId(b), (b as { Options?: unknown }).Options));
    n('FreeNetwork', (b) => network.freeNetwork(parseNetworkId(b)));
    n('CreateEndpoint', (b) => network.createEndpoint(parseCreateEndpoint(b)));
    n('DeleteEndpoint', (b) => network.deleteEndpoint(parseEndpoint(b)));
    n('EndpointOperInfo', (b) => network.endpointOperInfo(parseEndpoint(b)));
    n('Join', (b) => network.join(parseJoin(b)));
    n('Leave', (b) => network.leave(parseEndpoint(b)));
    n('DiscoverNew', () => ({}));
    n('DiscoverDelete', () => ({}));
    n('ProgramExternalConnectivity', () => ({}));
    n('RevokeExternalConnectivity', () => ({}));
  }
  if (ipam) {
    const i = (method: string, h: Handler): void => { r.set(`/${IPAM_RECEIVER}.${method}`, h); };
    i('GetCapabilities', () => ipam.capabilities());
    i('GetDefaultAddressSpaces', () => ipam.defaultAddressSpaces());
    i('RequestPool', (b) => ipam.requestPool(parseRequestPool(b)));
    i('ReleasePool', (b) => ipam.releasePool(parsePoolId(b)));
    i('RequestAddress', (b) => ipam.requestAddress(parseRequestAddress(b)));
    i('ReleaseAddress', (b) => ipam.releaseAddress(parseReleaseAddress(b)));
  }
  return r;
}

export class PluginServer {
  readonly stats: PluginServerStats = { requests: 0, driverErrors: 0, badRequests: 0 };
  private readonly server: Server;
  private readonly handlers: Map<string, Handler>;
  private readonly log: (m: string) => void;

  constructor(readonly opts: PluginServerOptions) {
    this.handlers = routes(opts.network, opts.ipam);
    this.log = opts.log ?? (() => undefined);
    this.server = createServer((req, res) => { void this.handle(req, res); });
    // A client that stalls mid-request must not hold a socket for ever.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    opts.onListening?.(this.server);
  }

  /** Listens on the socket, replacing a stale one a killed router left behind. */
  async listen(): Promise<void> {
    mkdirSync(dirname(this.opts.socketPath), { recursive: true });
    rmSync(this.opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`cannot listen on plugin socket ${this.opts.socketPath}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      this.server.once('error', onError);
      this.server.listen(this.opts.socketPath, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** Stops listening, ends open connections and removes the socket file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    rmSync(this.opts.socketPath, { force: true });
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : PLUGIN_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const path = (req.url ?? '').split('?')[0]!;
    const handler = this.handlers.get(path);
    if (!handler) {
      this.stats.badRequests++;
      req.resume();
      this.reply(res, 404, '404 page not found\n');
      return;
    }
    if (req.method !== 'POST') {
      this.stats.badRequests++;
      req.resume();
      this.reply(res, 405, 'Method Not Allowed\n');
      return;
    }
    let text: string;
    try {
      text = await readBody(req);
    } catch (e) {
      this.stats.badRequests++;
      this.reply(res, 413, `${(e as Error).message}\n`);
      req.destroy();
      return;
    }
    let body: unknown = {};
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch (e) {
        this.stats.badRequests++;
        this.reply(res, 400, `Unable to decode JSON payload: ${(e as Error).message}\n`);
        return;
      }
    }
    try {
      this.reply(res, 200, await handler(body));
    } catch (e) {
      if (e instanceof PluginRequestError) {
        this.stats.badRequests++;
        this.reply(res, 400, `${e.message}\n`);
        return;
      }
      this.stats.driverErrors++;
      const message = (e as Error).message;
      if (!(e instanceof PluginError)) this.log(`[plugin] ${path}: ${message}`);
      this.reply(res, 500, { Err: message });
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(new Error(`request body larger than ${MAX_REQUEST_BYTES} bytes`));
        req.removeAllListeners('data');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
