// The router's HTTP API server: node:http and a route table of static and
// `:param` path segments. The API is a few dozen small text routes; a web
// framework cost about a quarter of the router's startup (its modules alone
// took longer to load than the whole mesh took to start). Behaviour kept from
// the framework the API was first served with, so clients see no change:
//  - routes match the path without the query; `:name` matches one non-empty
//    segment (possibly empty), percent-decoded;
//  - a GET route answers HEAD too; any other method/path answers 404
//    `404 page not found` (Go's text);
//  - bodies are read for every method but GET/HEAD: urlencoded and
//    text/plain bodies arrive as text (Go's FormValue reads them), JSON is
//    parsed, another content type answers 415, more than BODY_LIMIT 413;
//  - a handler that throws answers 500 (or the error's statusCode) with the
//    message as text;
//  - a path that cannot be percent-decoded (400) or has a parameter longer
//    than MAX_PARAM_LENGTH (414) answers with the JSON error object fastify
//    wrote, {error, code: FST_ERR_*, message, statusCode}.
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';

/** Largest request body read, in bytes. */
export const BODY_LIMIT = 1024 * 1024;
/** Longest `:param` value; a longer one answers 414. */
export const MAX_PARAM_LENGTH = 100;
/** Idle keep-alive connections are closed after this long. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;
const TEXT = 'text/plain; charset=utf-8';
const NOT_FOUND_BODY = '404 page not found\n';
const STARTING_BODY = 'the router is starting\n';

export type RouteParams = Record<string, string | undefined>;

export interface ApiRequest<P extends RouteParams = RouteParams> {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly params: P;
  /** Text for urlencoded and text/plain bodies, the parsed value for JSON, undefined without a body. */
  readonly body: unknown;
  readonly raw: IncomingMessage;
}

/** An error answered with its own status code (4xx/5xx) and message. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export class ApiReply {
  private status = 200;
  private readonly headers = new Map<string, string>();
  private done = false;

  constructor(readonly raw: ServerResponse) {}

  get sent(): boolean {
    return this.done;
  }

  code(status: number): this {
    this.status = status;
    return this;
  }

  type(contentType: string): this {
    return this.header('content-type', contentType);
  }

  header(name: string, value: string): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

  /** Sends the answer; a string without a type is sent as UTF-8 text, JSON gets charset=utf-8. Later calls are ignored. */
  send(body?: string | Buffer): this {
    if (this.done) return this;
    this.done = true;
    const res = this.raw;
    res.statusCode = this.status;
    const contentType = this.headers.get('content-type');
    if (body !== undefined && contentType === undefined) {
      this.headers.set('content-type', typeof body === 'string' ? TEXT : 'application/octet-stream');
    } else if (typeof body === 'string' && contentType !== undefined && isJsonWithoutCharset(contentType)) {
      // JSON text is UTF-8: say so, as clients of this API have always been told.
      this.headers.set('content-type', `${contentType}; charset=utf-8`);
    }
    const bodyless = this.status === 204 || this.status === 304 || this.status < 200;
    if (!bodyless) this.headers.set('content-length', String(body === undefined ? 0 : Buffer.byteLength(body)));
    for (const [name, value] of this.headers) res.setHeader(name, value);
    res.end(bodyless ? undefined : body);
    return this;
  }
}

export type RouteHandler<P extends RouteParams = RouteParams> = (req: ApiRequest<P>, reply: ApiReply) => unknown;

interface Route {
  /** Path segments; `:name` ones capture. */
  segments: string[];
  handler: RouteHandler;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The outcome of routing: a handler and its parameters, or an error answered as JSON. */
type Match = { route: Route; params: RouteParams } | { status: number; error: string; code: string; message: string } | undefined;

export interface InjectRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  payload?: string;
}

export interface InjectResponse {
  statusCode: number;
  headers: OutgoingHttpHeaders;
  body: string;
}

export class HttpApi {
  private readonly routes = new Map<string, Route[]>();
  readonly server: Server;
  /**
   * Set while the router is starting: its services' routes are not all
   * registered yet, so an unknown path answers 503 (try again) instead of 404.
   */
  starting = false;

  constructor() {
    this.server = createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, (req, res) => void this.handle(req, res));
  }

  get<P extends RouteParams = RouteParams>(path: string, handler: RouteHandler<P>): void {
    this.add('GET', path, handler);
  }

  post<P extends RouteParams = RouteParams>(path: string, handler: RouteHandler<P>): void {
    this.add('POST', path, handler);
  }

  put<P extends RouteParams = RouteParams>(path: string, handler: RouteHandler<P>): void {
    this.add('PUT', path, handler);
  }

  delete<P extends RouteParams = RouteParams>(path: string, handler: RouteHandler<P>): void {
    this.add('DELETE', path, handler);
  }

  private add<P extends RouteParams>(method: Method, path: string, handler: RouteHandler<P>): void {
    const list = this.routes.get(method) ?? [];
    const segments = path.split('/');
    if (list.some((r) => r.segments.join('/') === segments.join('/'))) throw new Error(`route ${method} ${path} registered twice`);
    // Static segments win over parameters at the same position, as in the usual routers.
    list.push({ segments, handler: handler as RouteHandler });
    this.routes.set(method, list);
  }

  private match(method: string, url: string): Match {
    const path = url.split('?', 1)[0]!;
    const list = this.routes.get(method === 'HEAD' ? 'GET' : method);
    if (!list) return undefined;
    const parts = path.split('/');
    let decoded: string[];
    try {
      decoded = parts.map((p) => (p.includes('%') ? decodeURIComponent(p) : p));
    } catch {
      return { status: 400, error: 'Bad Request', code: 'BAD_URL', message: `'${path}' is not a valid url component` };
    }
    let best: { route: Route; params: RouteParams; statics: number } | undefined;
    for (const route of list) {
      if (route.segments.length !== decoded.length) continue;
      const params: RouteParams = {};
      let statics = 0;
      let ok = true;
      for (let i = 0; i < decoded.length && ok; i++) {
        const want = route.segments[i]!;
        const got = decoded[i]!;
        if (want.startsWith(':')) {
          if (got.length > MAX_PARAM_LENGTH) {
            return { status: 414, error: 'Bad Request', code: 'MAX_PARAM_LENGTH', message: `'${path}' is exceeding the max param length` };
          }
          params[want.slice(1)] = got;
        } else {
          ok = want === got;
          statics++;
        }
      }
      if (ok && (!best || statics > best.statics)) best = { route, params, statics };
    }
    return best;
  }

  /** Node's request listener: exposed for tests and in-process callers. */
  async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = new ApiReply(res);
    const method = raw.method ?? 'GET';
    const url = raw.url ?? '/';
    try {
      const m = this.match(method, url);
      if (m === undefined) {
        if (this.starting) reply.code(503).type(TEXT).send(STARTING_BODY);
        else reply.code(404).type(TEXT).send(NOT_FOUND_BODY);
        return;
      }
      if ('status' in m) {
        const { status, error, code, message } = m;
        const text = JSON.stringify({ error, code: `FST_ERR_${code}`, message, statusCode: status });
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
        return;
      }
      let body: unknown;
      try {
        body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(raw);
      } catch (err) {
        // The rest of the body is not read: the connection cannot carry another request.
        reply.header('connection', 'close');
        throw err;
      }
      const req: ApiRequest = { method, url, headers: raw.headers, params: m.params, body, raw };
      await m.route.handler(req, reply);
      if (!reply.sent) throw new Error(`${method} ${url.split('?', 1)[0]!} did not answer`);
    } catch (err) {
      const e = err as Error & { statusCode?: number };
      const code = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
      if (!reply.sent) reply.code(code).type(TEXT).send(`${e.message}\n`);
    }
  }

  async listen(where: { path: string } | { host: string; port: number }): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(where, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening, ends idle keep-alive connections and waits for requests in flight. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  /**
   * Runs a request through the handler in memory, without a socket (tests and
   * in-process callers); light-my-request is loaded only then. Required, not
   * imported: the router is compiled from V8's code cache (weaver/code-cache.cts),
   * and a script compiled from a cache has no dynamic import() under Node 20.
   */
  async inject(req: InjectRequest): Promise<InjectResponse> {
    const { inject } = createRequire(import.meta.url)('light-my-request') as typeof import('light-my-request');
    const res = await inject((raw, out) => void this.handle(raw, out), {
      method: (req.method ?? 'GET') as 'GET',
      url: req.url,
      ...(req.headers ? { headers: req.headers } : {}),
      ...(req.payload !== undefined ? { payload: req.payload } : {}),
    });
    return { statusCode: res.statusCode, headers: res.headers, body: res.body };
  }
}

function isJsonWithoutCharset(contentType: string): boolean {
  const [mediaType, ...parameters] = contentType.split(';');
  return mediaType!.includes('json') && !parameters.some((p) => p.trim().toLowerCase().startsWith('charset='));
}

/** The request body by its content type (see the header comment). */
async function readBody(raw: IncomingMessage): Promise<unknown> {
  const contentType = raw.headers['content-type'];
  const length = raw.headers['content-length'];
  const chunked = raw.headers['transfer-encoding'] !== undefined;
  if (contentType === undefined && !chunked && (length === undefined || length === '0')) return undefined;
  const mediaType = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  const json = mediaType === 'application/json';
  if (!json && mediaType !== 'application/x-www-form-urlencoded' && mediaType !== 'text/plain') {
    throw new HttpError(415, 'Unsupported Media Type');
  }
  if (length !== undefined && Number(length) > BODY_LIMIT) throw new HttpError(413, 'Request body is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new HttpError(413, 'Request body is too large');
    chunks.push(chunk as Buffer);
  }
  if (length !== undefined && Number(length) !== size) throw new HttpError(400, 'Request body size did not match Content-Length');
  const text = Buffer.concat(chunks).toString('utf8');
  if (!json) return text;
  if (text === '') throw new HttpError(400, "Body cannot be empty when content-type is set to 'application/json'");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, "Body is not valid JSON but content-type is set to 'application/json'");
  }
}
