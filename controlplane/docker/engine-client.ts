// A small client for the Docker Engine API (JSON over HTTP on a unix socket or TCP), as the
// router's Docker integrations need it: the network plugin creates and removes its network
// and inspects containers, the event watcher (events.ts) follows container life cycles, the
// API proxy reuses both. The API version is negotiated once (GET /version) and then every
// path is prefixed `/v<version>`, never above what this client was written against.
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { compareDottedVersions } from '../dotted-version.js';
import { joinHostPort, plainHost, splitHostPort } from '../host-port.js';

/** node:https, and with it node:tls, loaded for a TLS Docker host only: they were ~8 ms of every `weave` command's start. */
function https(): typeof import('node:https') {
  return createRequire(import.meta.url)('node:https') as typeof import('node:https');
}

/** The default daemon address when neither `--docker-api` nor DOCKER_HOST says otherwise. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/**
 * The newest Engine API version this client speaks (Docker 20.10). A newer daemon is asked
 * for this version; an older one for its own.
 */
export const MAX_API_VERSION = '1.41';
/** The oldest Engine API version the fields used here exist in (Docker 1.12, network aliases). */
export const MIN_API_VERSION = '1.24';

const DEFAULT_TIMEOUT_MS = 10_000;
/** Replies larger than this are refused rather than buffered (a list of many containers is far smaller). */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

export type DockerEndpoint =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number };

/** Docker could not be reached at all (no socket, refused, timed out). */
export class DockerUnreachableError extends Error {
  constructor(readonly endpoint: string, readonly reason: string) {
    super(`Docker is not reachable at ${endpoint}: ${reason}`);
    this.name = 'DockerUnreachableError';
  }
}

/** Docker answered with an error status; `message` is the daemon's own text where it sent one. */
export class DockerApiError extends Error {
  constructor(readonly status: number, readonly method: string, readonly path: string, readonly daemonMessage: string) {
    super(`Docker ${method} ${path}: ${status} ${daemonMessage}`);
    this.name = 'DockerApiError';
  }
}

/** 404: no such container/network/image. */
export class DockerNotFoundError extends DockerApiError {
  constructor(method: string, path: string, daemonMessage: string) {
    super(404, method, path, daemonMessage);
    this.name = 'DockerNotFoundError';
  }
}

/** Docker's reply was not what the API documents (not JSON, wrong shape). */
export class DockerProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DockerProtocolError';
  }
}

/**
 * Parses a Docker host address: `unix:///path`, an absolute `/path`, `tcp://host:port`
 * or `host:port` (as DOCKER_HOST and `--docker-api` take them).
 */
export function parseDockerHost(spec: string): DockerEndpoint {
  const s = spec.trim();
  if (s.startsWith('unix://')) {
    const socketPath = s.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new Error(`invalid Docker address "${spec}": unix:// needs an absolute socket path`);
    return { kind: 'unix', socketPath };
  }
  if (s.startsWith('/')) return { kind: 'unix', socketPath: s };
  const rest = s.startsWith('tcp://') ? s.slice('tcp://'.length) : s.startsWith('http://') ? s.slice('http://'.length) : s;
  const hp = splitHostPort(rest.endsWith('/') ? rest.slice(0, -1) : rest);
  if (hp?.port === undefined || hp.port < 1 || hp.host === '' || !plainHost(rest, hp.host)) {
    throw new Error(`invalid Docker address "${spec}": expected unix:///path, tcp://host:port or host:port`);
  }
  return { kind: 'tcp', host: hp.host, port: hp.port };
}

/** The Docker address to use: the flag if given, else DOCKER_HOST, else the default socket. */
export function dockerHostFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag !== undefined && flag !== '') return flag;
  if (env.DOCKER_HOST !== undefined && env.DOCKER_HOST !== '') return env.DOCKER_HOST;
  return DEFAULT_DOCKER_HOST;
}

export function formatDockerEndpoint(e: DockerEndpoint): string {
  return e.kind === 'unix' ? `unix://${e.socketPath}` : `tcp://${joinHostPort(e.host, e.port)}`;
}

// ---- Typed views of the replies (only the fields the router uses; Docker sends more) ----

export interface EngineVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
}

export interface EndpointSettings {
  NetworkID: string;
  EndpointID: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  Gateway?: string;
  Aliases?: string[] | null;
  DNSNames?: string[] | null;
}

export interface ContainerInspect {
  Id: string;
  /** With Docker's leading slash, e.g. `/web`. */
  Name: string;
  Image?: string;
  Created?: string;
  RestartCount?: number;
  State: { Status: string; Running: boolean; Paused?: boolean; Restarting?: boolean; Pid: number; ExitCode?: number; StartedAt?: string };
  Config: {
    Hostname: string;
    Domainname: string;
    Image?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
  };
  HostConfig: { NetworkMode: string; RestartPolicy?: { Name: string; MaximumRetryCount?: number }; [k: string]: unknown };
  NetworkSettings: { SandboxKey?: string; Networks: Record<string, EndpointSettings> | null; [k: string]: unknown };
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Status: string;
  Labels?: Record<string, string> | null;
  HostConfig?: { NetworkMode: string };
  NetworkSettings?: { Networks: Record<string, EndpointSettings> | null };
}

export interface IpamPoolConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  CheckDuplicate?: boolean;
  Internal?: boolean;
  Attachable?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: IpamPoolConfig[]; Options?: Record<string, string> };
  Options?: Record<string, string>;
  Labels?: Record<string, string>;
}

export interface NetworkInspect {
  Name: string;
  Id: string;
  Scope: string;
  Driver: string;
  IPAM: { Driver: string; Config: IpamPoolConfig[] | null; Options?: Record<string, string> | null };
  Options: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  Containers?: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> | null;
}

/** Docker's list filters: `{ label: ['a=b'], network: ['weave'] }`. */
export type DockerFilters = Record<string, readonly string[]>;

export interface EngineClientOptions {
  /** Per-request timeout (not for streams), default 10 s. */
  timeoutMs?: number;
  /** Skip negotiation and use this version (tests, or a caller that already knows). */
  apiVersion?: string;
  /** TLS client settings (key, cert, ca) for a daemon that listens with TLS on TCP. */
  tls?: Pick<ConnectionOptions, 'key' | 'cert' | 'ca'>;
}

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface StreamOptions {
  /** Aborting ends the stream (the iterator returns). */
  signal?: AbortSignal;
}

/** An open streaming reply (events, logs): the status is known, the body flows. */
export interface OpenStream {
  status: number;
  response: IncomingMessage;
  /** Ends the stream from our side. */
  close(): void;
}

export class EngineClient {
  readonly endpoint: DockerEndpoint;
  private readonly timeoutMs: number;
  private readonly tls: EngineClientOptions['tls'];
  private negotiated: Promise<string> | undefined;

  constructor(endpoint: DockerEndpoint | string, opts: EngineClientOptions = {}) {
    this.endpoint = typeof endpoint === 'string' ? parseDockerHost(endpoint) : endpoint;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.tls = opts.tls;
    if (opts.apiVersion !== undefined) this.negotiated = Promise.resolve(opts.apiVersion);
  }

  /** `unix:///path` or `tcp://host:port`, for messages. */
  get address(): string {
    return formatDockerEndpoint(this.endpoint);
  }

  // ---- version ----

  /** GET /_ping: resolves when the daemon answers OK. */
  async ping(): Promise<void> {
    const res = await this.raw('GET', '/_ping');
    if (res.status !== 200) throw this.apiError(res, 'GET', '/_ping');
  }

  /** GET /version (unversioned path, works on every daemon). */
  async version(): Promise<EngineVersion> {
    const v = await this.json<EngineVersion>('GET', '/version', undefined, false);
    if (typeof v.ApiVersion !== 'string' || typeof v.Version !== 'string') throw new DockerProtocolError(`Docker /version reply lacks Version/ApiVersion`);
    return v;
  }

  /**
   * The API version every later request uses: the daemon's, capped at MAX_API_VERSION.
   * Negotiated once; a failure is not cached (the next call tries again).
   */
  apiVersion(): Promise<string> {
    if (this.negotiated === undefined) {
      const p = this.version().then((v) => {
        if (compareDottedVersions(v.ApiVersion, MIN_API_VERSION) < 0) {
          throw new DockerProtocolError(`Docker ${v.Version} speaks API ${v.ApiVersion}, older than the ${MIN_API_VERSION} needed`);
        }
        return compareDottedVersions(v.ApiVersion, MAX_API_VERSION) > 0 ? MAX_API_VERSION : v.ApiVersion;
      });
      this.negotiated = p;
      p.catch(() => { if (this.negotiated === p) this.negotiated = undefined; });
    }
    return this.negotiated;
  }

  // ---- containers ----

  async inspectContainer(idOrName: string): Promise<ContainerInspect> {
    const c = await this.json<ContainerInspect>('GET', `/containers/${encodeURIComponent(idOrName)}/json`);
    if (typeof c.Id !== 'string' || typeof c.State !== 'object' || c.State === null) throw new DockerProtocolError(`Docker container inspect reply for ${idOrName} lacks Id/State`);
    return c;
  }

  /** GET /containers/json; `all` includes stopped containers. */
  async listContainers(opts: { all?: boolean; filters?: DockerFilters } = {}): Promise<ContainerSummary[]> {
    const q = new URLSearchParams();
    if (opts.all) q.set('all', '1');
    if (opts.filters) q.set('filters', JSON.stringify(opts.filters));
    const list = await this.json<ContainerSummary[]>('GET', `/containers/json${q.size > 0 ? `?${q}` : ''}`);
    if (!Array.isArray(list)) throw new DockerProtocolError('Docker container list reply is not an array');
    return list;
  }

  // ---- networks ----

  async inspectNetwork(idOrName: string): Promise<NetworkInspect> {
    const n = await this.json<NetworkInspect>('GET', `/networks/${encodeURIComponent(idOrName)}`);
    if (typeof n.Id !== 'string') throw new DockerProtocolError(`Docker network inspect reply for ${idOrName} lacks Id`);
    return n;
  }

  async listNetworks(filters?: DockerFilters): Promise<NetworkInspect[]> {
    const q = filters ? `?${new URLSearchParams({ filters: JSON.stringify(filters) })}` : '';
    const list = await this.json<NetworkInspect[]>('GET', `/networks${q}`);
    if (!Array.isArray(list)) throw new DockerProtocolError('Docker network list reply is not an array');
    return list;
  }

  /** POST /networks/create; resolves with the new network's id. */
  async createNetwork(req: NetworkCreateRequest): Promise<{ Id: string; Warning?: string }> {
    const r = await this.json<{ Id: string; Warning?: string }>('POST', '/networks/create', req);
    if (typeof r.Id !== 'string') throw new DockerProtocolError('Docker network create reply lacks Id');
    return r;
  }

  async removeNetwork(idOrName: string): Promise<void> {
    await this.call('DELETE', `/networks/${encodeURIComponent(idOrName)}`);
  }

  // ---- generic ----

  /** A versioned request with a JSON body (if any) whose reply is JSON; error statuses throw. */
  async json<T>(method: string, path: string, body?: unknown, versioned = true): Promise<T> {
    const res = await this.call(method, path, body, versioned);
    const text = res.body.toString('utf8');
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new DockerProtocolError(`Docker ${method} ${path}: reply is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** A versioned request; 2xx/304 replies are returned, others throw DockerApiError (404: DockerNotFoundError). */
  async call(method: string, path: string, body?: unknown, versioned = true): Promise<RawResponse> {
    const full = versioned ? `/v${await this.apiVersion()}${path}` : path;
    const res = await this.raw(method, full, body);
    if ((res.status >= 200 && res.status < 300) || res.status === 304) return res;
    throw this.apiError(res, method, path);
  }

  /** One request with no status interpretation (the path is sent as given). */
  raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = this.request({ ...this.target(), method, path, headers: this.headers(payload), timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) {
            req.destroy(new DockerProtocolError(`Docker ${method} ${path}: reply larger than ${MAX_REPLY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (e) => reject(this.transportError(e)));
      });
      req.on('timeout', () => req.destroy(new DockerUnreachableError(this.address, `no reply to ${method} ${path} within ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(this.transportError(e)));
      req.end(payload);
    });
  }

  /**
   * Opens a versioned streaming GET (e.g. /events); resolves once the status line arrived.
   * Error statuses throw as in call(). No timeout applies to the open stream.
   */
  async openStream(path: string, opts: StreamOptions = {}): Promise<OpenStream> {
    const full = `/v${await this.apiVersion()}${path}`;
    return new Promise((resolve, reject) => {
      const req = this.request({ ...this.target(), method: 'GET', path: full, headers: this.headers(undefined), timeout: this.timeoutMs });
      const onAbort = (): void => { req.destroy(); };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('timeout', () => req.destroy(new DockerUnreachableError(this.address, `no reply to GET ${path} within ${this.timeoutMs} ms`)));
      req.on('error', (e) => { opts.signal?.removeEventListener('abort', onAbort); reject(this.transportError(e)); });
      req.on('response', (res) => {
        req.setTimeout(0);
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => reject(this.apiError({ status, headers: res.headers, body: Buffer.concat(chunks) }, 'GET', path)));
          return;
        }
        res.on('close', () => opts.signal?.removeEventListener('abort', onAbort));
        resolve({ status, response: res, close: () => { req.destroy(); } });
      });
      if (opts.signal?.aborted) req.destroy();
      req.end();
    });
  }

  private request(opts: RequestOptions, onResponse?: (res: IncomingMessage) => void): ClientRequest {
    if (this.tls !== undefined && this.endpoint.kind === 'tcp') return https().request({ ...opts, ...this.tls }, onResponse);
    return httpRequest(opts, onResponse);
  }

  private target(): { socketPath: string } | { host: string; port: number } {
    return this.endpoint.kind === 'unix' ? { socketPath: this.endpoint.socketPath } : { host: this.endpoint.host, port: this.endpoint.port };
  }

  private headers(payload: Buffer | undefined): Record<string, string> {
    // Docker checks Host on TCP; over a unix socket any value is accepted.
    const h: Record<string, string> = { host: this.endpoint.kind === 'unix' ? 'docker' : `${this.endpoint.host}:${this.endpoint.port}`, accept: 'application/json' };
    if (payload !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = String(payload.length);
    }
    return h;
  }

  private transportError(e: Error): Error {
    if (e instanceof DockerUnreachableError || e instanceof DockerProtocolError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    return new DockerUnreachableError(this.address, code ?? e.message);
  }

  private apiError(res: RawResponse, method: string, path: string): DockerApiError {
    const text = res.body.toString('utf8').trim();
    let message = text;
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch { /* plain-text error body */ }
    if (res.status === 404) return new DockerNotFoundError(method, path, message);
    return new DockerApiError(res.status, method, path, message);
  }
}
