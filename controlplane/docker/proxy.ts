// The Docker API proxy (user-surface spec §7.3): users point their Docker
// client at it and keep their usual commands. Everything is forwarded to the
// real daemon unchanged except the calls below, which put containers on the
// weave network before their first instruction runs:
//
//   POST /containers/create        attach decision; waiter at /w, entrypoint, hostname, DNS
//   POST /containers/{id}/(re)start  the reply waits until the container is attached
//   POST /containers/{id}/exec     exec'd commands wait for the network too
//   GET  /containers/{id}/json     --rewrite-inspect: the weave address and MAC
//
// Containers Docker starts by itself (restart policies) are attached from the
// event stream, and at proxy start every running weave container is attached
// again (retrying with back-off).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { decideAttach, WeaveCidrError, type AttachDecision } from './attach-decision.js';
import { DockerApiForwarder, headerValue, replyHeaders, type BufferedReply } from './api-forwarder.js';
import {
  addDnsSettings, addWaiterBind, CreateRequestError, isWeaveManaged, objectField, rewriteCreate, WAITER_ENTRYPOINT,
  type JsonObject,
} from './create-rewrite.js';
import { renderHostsFile, writeHostsFile } from './hosts-file.js';
import type { HostnameRules } from './hostname.js';
import { HostnameRuleError } from './hostname.js';

/** The container fields the proxy reads (a subset of Docker's inspect reply). */
export interface ContainerDetails {
  Id: string;
  Name: string;
  HostsPath?: string;
  State: { Running: boolean; Pid: number };
  Config: { Hostname: string; Domainname: string; Env?: string[] | null; Entrypoint?: string[] | null };
  HostConfig: { NetworkMode: string; [k: string]: unknown };
}

/** What the proxy needs from Docker besides forwarding (the router's Engine API client). */
export interface ProxyDocker {
  inspectContainer(idOrName: string): Promise<ContainerDetails>;
  /** Image config: `{ Config: { Entrypoint, Cmd } }`. */
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
  listContainers(opts?: { all?: boolean }): Promise<Array<{ Id: string }>>;
}

/** What the proxy needs from the router: IPAM, the bridge and weaveDNS. */
export interface ProxyWeave {
  /** Allocates in `subnet` (default subnet when undefined) for the container; idempotent. Returns a CIDR. */
  allocate(containerId: string, subnet?: string): Promise<string>;
  claim(containerId: string, cidr: string): Promise<void>;
  /** Puts `ethwe` with `cidrs` in the process's namespace; resolves once the datapath has the port. */
  attach(req: { pid: number; containerId: string; cidrs: string[]; multicastRoute: boolean }): Promise<void>;
  /** The container's weave MAC and addresses, if attached. */
  addresses(containerId: string): Promise<{ mac: string; cidrs: string[] } | undefined>;
  registerName(containerId: string, ip: string, fqdn: string): Promise<void>;
  /** weaveDNS domain and the server address containers use; undefined when weaveDNS is off. */
  dns(): Promise<{ domain: string; server: string } | undefined>;
}

export interface ProxyOptions {
  /** Folder holding the waiter builds: w/, w-nomcast/, w-noop/ (each with the binary `w`). */
  waiterRoot: string;
  noDefaultIpalloc: boolean;
  noRewriteHosts: boolean;
  withoutDns: boolean;
  noMulticastRoute: boolean;
  rewriteInspect: boolean;
  hostnameRules: HostnameRules;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

/** Bodies the proxy reads whole to rewrite (create, start, exec) are small JSON; more is refused. */
export const MAX_INTERCEPTED_BODY_BYTES = 1024 * 1024;
/** A client that takes longer than this to send such a body is dropped (slow trickle). */
export const INTERCEPTED_BODY_TIMEOUT_MS = 30_000;

const API_PREFIX = '(?:/v[0-9.]*)?';
const CREATE_PATH = new RegExp(`^${API_PREFIX}/containers/create$`);
const START_PATH = new RegExp(`^${API_PREFIX}/containers/([^/]+)/(?:re)?start$`);
const EXEC_PATH = new RegExp(`^${API_PREFIX}/containers/([^/]+)/exec$`);
const INSPECT_PATH = new RegExp(`^${API_PREFIX}/containers/([^/]+)/json$`);

/** Back-off of the attach retries at proxy start (spec §7.3.3). */
const REATTACH_FIRST_MS = 2_000;
const REATTACH_FACTOR = 1.5;
const REATTACH_MAX_MS = 60_000;

/** An error answered to the client with `status` (404 no such container/image, 500 otherwise). */
export class ProxyError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function isNotFound(err: unknown): boolean {
  return (err as { status?: unknown }).status === 404;
}

function errorText(err: unknown): string {
  const e = err as { daemonMessage?: unknown; message?: unknown };
  return typeof e.daemonMessage === 'string' && e.daemonMessage !== '' ? e.daemonMessage : String(e.message ?? err);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(`${message}\n`) });
  res.end(`${message}\n`);
}

function sendReply(res: ServerResponse, reply: BufferedReply, newBody?: Buffer): void {
  res.writeHead(reply.status, replyHeaders(reply.rawHeaders, newBody));
  res.end(newBody ?? reply.body);
}

/** Reads a request body of at most MAX_INTERCEPTED_BODY_BYTES within INTERCEPTED_BODY_TIMEOUT_MS. */
export function readBoundedBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      reject(new ProxyError(408, `request body not received within ${INTERCEPTED_BODY_TIMEOUT_MS / 1000} s`));
      req.destroy();
    }, INTERCEPTED_BODY_TIMEOUT_MS);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_INTERCEPTED_BODY_BYTES) {
        clearTimeout(timer);
        reject(new ProxyError(413, `request body larger than ${MAX_INTERCEPTED_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function parseJsonObject(body: Buffer, what: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ProxyError(500, `malformed ${what} request body: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProxyError(500, `malformed ${what} request body: expected a JSON object`);
  return v as JsonObject;
}

function containerIdOf(re: RegExp, path: string): string | undefined {
  const m = re.exec(path);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

function ipOf(cidr: string): string {
  return cidr.split('/')[0];
}

export interface ProxyStats {
  requests: number;
  intercepted: number;
  attached: number;
  attachFailures: number;
  refused: number;
}

export class DockerProxy {
  readonly stats: ProxyStats = { requests: 0, intercepted: 0, attached: 0, attachFailures: 0, refused: 0 };
  /** Containers whose start a client is waiting on: the event stream leaves them to that call. */
  private readonly clientStarts = new Map<string, number>();
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;

  constructor(
    private readonly forwarder: DockerApiForwarder,
    private readonly docker: ProxyDocker,
    private readonly weave: ProxyWeave,
    private readonly opts: ProxyOptions,
  ) {}

  // ------------------------------------------------------------ requests

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    this.route(req, res).catch((err: unknown) => {
      const status = err instanceof ProxyError ? err.status : isNotFound(err) ? 404 : 500;
      if (status === 408 || status === 413) this.stats.refused++;
      sendError(res, status, errorText(err));
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.stats.requests++;
    this.forwarder.tunnel(req, socket, head);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (method === 'POST' && CREATE_PATH.test(path)) return this.create(req, res);
    if (method === 'POST') {
      const started = containerIdOf(START_PATH, path);
      if (started !== undefined) return this.start(req, res, started);
      const exec = containerIdOf(EXEC_PATH, path);
      if (exec !== undefined) return this.createExec(req, res, exec);
    }
    if (method === 'GET' && this.opts.rewriteInspect) {
      const inspected = containerIdOf(INSPECT_PATH, path);
      if (inspected !== undefined) return this.inspect(req, res);
    }
    return this.forwarder.pipe(req, res);
  }

  private waiterDir(networkMode: string): string {
    const variant = networkMode === 'host' || networkMode.startsWith('container:')
      ? 'w-noop'
      : this.opts.noMulticastRoute ? 'w-nomcast' : 'w';
    return `${this.opts.waiterRoot}/${variant}`;
  }

  private async dns(): Promise<{ domain: string; server: string } | undefined> {
    return this.opts.withoutDns ? undefined : this.weave.dns();
  }

  private async create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.intercepted++;
    const body = parseJsonObject(await readBoundedBody(req), 'create');
    const hostConfig = body.HostConfig;
    const networkMode = typeof hostConfig === 'object' && hostConfig !== null && typeof (hostConfig as JsonObject).NetworkMode === 'string'
      ? ((hostConfig as JsonObject).NetworkMode as string)
      : '';
    let decision: AttachDecision;
    try {
      decision = decideAttach(networkMode, Array.isArray(body.Env) ? body.Env : undefined, this.opts.noDefaultIpalloc);
    } catch (err) {
      if (err instanceof WeaveCidrError) throw new ProxyError(500, err.message);
      throw err;
    }
    if (!decision.attach) {
      this.opts.log('info', decision.reason);
      return this.forwarder.pipe(req, res, Buffer.from(JSON.stringify(body)));
    }
    const name = new URL(req.url ?? '/', 'http://docker').searchParams.get('name') ?? '';
    try {
      const warnings = await rewriteCreate(body, name, {
        waiterDir: this.waiterDir(networkMode),
        dns: await this.dns(),
        hostnameRules: this.opts.hostnameRules,
        imageCommand: (image) => this.imageCommand(image),
      });
      for (const w of warnings) this.opts.log('warn', w);
    } catch (err) {
      if (err instanceof CreateRequestError || err instanceof HostnameRuleError) throw new ProxyError(500, err.message);
      throw err;
    }
    this.opts.log('info', `Creating container${name ? ` ${name}` : ''} with WEAVE_CIDR "${decision.addresses.map((a) => (a.kind === 'net' ? `net:${a.subnet ?? 'default'}` : a.cidr)).join(' ')}"`);
    return this.forwarder.pipe(req, res, Buffer.from(JSON.stringify(body)));
  }

  private async imageCommand(image: string): Promise<{ Entrypoint?: unknown; Cmd?: unknown }> {
    try {
      const info = await this.docker.json<{ Config?: { Entrypoint?: unknown; Cmd?: unknown } | null }>('GET', `/images/${encodeURIComponent(image)}/json`);
      return info.Config ?? {};
    } catch (err) {
      if (isNotFound(err)) throw new ProxyError(404, `No such image: ${image}`);
      throw err;
    }
  }

  private async inspectOrFail(id: string): Promise<ContainerDetails> {
    try {
      return await this.docker.inspectContainer(id);
    } catch (err) {
      if (isNotFound(err)) throw new ProxyError(404, `No such container: ${id}`);
      throw err;
    }
  }

  private async start(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    this.stats.intercepted++;
    const before = await this.inspectOrFail(id);
    const managed = isWeaveManaged(before.Config.Entrypoint);
    let body: Buffer | undefined;
    // Old clients send the HostConfig with start: put our bind and DNS back in (spec §7.3.2).
    if (managed && headerValue(req.headers, 'content-type').startsWith('application/json')) {
      const raw = await readBoundedBody(req);
      if (raw.length > 0) {
        const parsed = parseJsonObject(raw, 'start');
        const hostConfig = parsed.HostConfig === undefined ? parsed : objectField(parsed, 'HostConfig');
        addWaiterBind(hostConfig, this.waiterDir(before.HostConfig.NetworkMode));
        const dns = await this.dns();
        if (dns) {
          addDnsSettings({ Hostname: before.Config.Hostname }, hostConfig, '', {
            waiterDir: '', dns, hostnameRules: this.opts.hostnameRules, imageCommand: () => Promise.resolve({}),
          });
        }
        body = Buffer.from(JSON.stringify(parsed));
      } else {
        body = raw;
      }
    }
    if (!managed) return this.forwarder.pipe(req, res, body);
    const full = before.Id;
    this.clientStarts.set(full, (this.clientStarts.get(full) ?? 0) + 1);
    try {
      const reply = await this.forwarder.exchange(req, body);
      if (reply.status >= 200 && reply.status < 300) {
        try {
          await this.attach(full);
        } catch (err) {
          this.stats.attachFailures++;
          this.opts.log('error', `attaching container ${full.slice(0, 12)} failed: ${errorText(err)}; killing it`);
          await this.docker.call('POST', `/containers/${full}/kill`).catch(() => undefined);
          throw new ProxyError(500, `weave: attaching container ${id} failed: ${errorText(err)}`);
        }
      }
      sendReply(res, reply);
    } finally {
      const n = (this.clientStarts.get(full) ?? 1) - 1;
      if (n <= 0) this.clientStarts.delete(full);
      else this.clientStarts.set(full, n);
    }
  }

  private async createExec(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    this.stats.intercepted++;
    const container = await this.inspectOrFail(id);
    if (!isWeaveManaged(container.Config.Entrypoint)) return this.forwarder.pipe(req, res);
    const body = parseJsonObject(await readBoundedBody(req), 'exec');
    const cmd = Array.isArray(body.Cmd) ? (body.Cmd as unknown[]) : [];
    if (cmd[0] !== WAITER_ENTRYPOINT) body.Cmd = [WAITER_ENTRYPOINT, ...cmd];
    return this.forwarder.pipe(req, res, Buffer.from(JSON.stringify(body)));
  }

  private async inspect(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.intercepted++;
    const reply = await this.forwarder.exchange(req);
    if (reply.status !== 200) return sendReply(res, reply);
    let info: JsonObject;
    try {
      info = parseJsonObject(reply.body, 'inspect');
    } catch {
      return sendReply(res, reply);
    }
    const id = typeof info.Id === 'string' ? info.Id : '';
    const weave = id === '' ? undefined : await this.weave.addresses(id);
    if (!weave || weave.cidrs.length === 0) return sendReply(res, reply);
    const settings = objectField(info, 'NetworkSettings');
    const [ip, len] = weave.cidrs[0].split('/');
    settings.MacAddress = weave.mac;
    settings.IPAddress = ip;
    settings.IPPrefixLen = Number(len);
    sendReply(res, reply, Buffer.from(JSON.stringify(info)));
  }

  // ------------------------------------------------------------ attaching

  /** The container's addresses: allocated or claimed under its id (idempotent, so a restart keeps them). */
  private async addressesFor(id: string, decision: AttachDecision & { attach: true }): Promise<string[]> {
    const cidrs: string[] = [];
    for (const a of decision.addresses) {
      if (a.kind === 'net') {
        cidrs.push(await this.weave.allocate(id, a.subnet));
      } else {
        await this.weave.claim(id, a.cidr);
        cidrs.push(a.cidr);
      }
    }
    return cidrs;
  }

  /** Rewrites /etc/hosts as Weave did: into the file the container has, then unlinked and written anew. */
  private rewriteHosts(c: ContainerDetails, cidrs: string[]): void {
    if (this.opts.noRewriteHosts || !c.HostsPath) return;
    const extra = Array.isArray(c.HostConfig.ExtraHosts) ? (c.HostConfig.ExtraHosts as unknown[]).filter((h): h is string => typeof h === 'string') : [];
    const text = renderHostsFile({ ips: cidrs.map(ipOf), hostname: c.Config.Hostname, domain: c.Config.Domainname, extraHosts: extra });
    writeHostsFile(c.HostsPath, text);
  }

  /** Attaches a running weave-managed container (no-op for others). */
  async attach(idOrName: string): Promise<boolean> {
    const c = await this.inspectOrFail(idOrName);
    if (!isWeaveManaged(c.Config.Entrypoint)) return false;
    const decision = decideAttach(c.HostConfig.NetworkMode, c.Config.Env ?? undefined, this.opts.noDefaultIpalloc);
    if (!decision.attach) return false;
    if (!c.State.Running || c.State.Pid <= 0) return false;
    const cidrs = await this.addressesFor(c.Id, decision);
    this.rewriteHosts(c, cidrs);
    await this.weave.attach({ pid: c.State.Pid, containerId: c.Id, cidrs, multicastRoute: !this.opts.noMulticastRoute });
    const dns = await this.dns();
    if (dns && c.Config.Hostname !== '' && c.Config.Domainname !== '') {
      const fqdn = `${c.Config.Hostname}.${c.Config.Domainname}`;
      for (const cidr of cidrs) await this.weave.registerName(c.Id, ipOf(cidr), fqdn);
    }
    this.stats.attached++;
    this.opts.log('info', `attached container ${c.Id.slice(0, 12)} to weave: ${cidrs.join(' ')}`);
    return true;
  }

  /**
   * A container Docker started without a client waiting through us (restart policy, a
   * start through the real socket): attach it; if that fails its process is killed.
   */
  async containerStarted(id: string): Promise<void> {
    if (this.closed || this.clientStarts.has(id)) return;
    try {
      await this.attach(id);
    } catch (err) {
      if (isNotFound(err)) return;
      this.stats.attachFailures++;
      this.opts.log('error', `attaching container ${id.slice(0, 12)} failed: ${errorText(err)}; killing it`);
      await this.docker.call('POST', `/containers/${id}/kill`).catch(() => undefined);
    }
  }

  /** At proxy start: (re)attach every running weave container, each retried with back-off until it works. */
  async reattachRunning(): Promise<void> {
    const running = await this.docker.listContainers();
    for (const { Id } of running) this.retryAttach(Id, REATTACH_FIRST_MS);
  }

  private retryAttach(id: string, delayMs: number): void {
    if (this.closed) return;
    this.attach(id).catch((err: unknown) => {
      if (this.closed || isNotFound(err)) return;
      this.opts.log('warn', `re-attaching container ${id.slice(0, 12)} failed: ${errorText(err)}; retrying in ${delayMs / 1000} s`);
      const t = setTimeout(() => {
        this.retryTimers.delete(t);
        this.retryAttach(id, Math.min(delayMs * REATTACH_FACTOR, REATTACH_MAX_MS));
      }, delayMs);
      this.retryTimers.add(t);
    });
  }

  close(): void {
    this.closed = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }
}
