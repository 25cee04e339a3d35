// How the CLI talks to the router's HTTP API (user-surface spec §0.3):
// 2xx -> body to stdout, 404 -> status 4 ("feature disabled"), other codes ->
// body to stderr and status 1; no answer -> a message saying the router is not
// running.
import { request } from 'node:http';
import { splitHostPort } from '../host-port.js';

export interface ApiResponse {
  code: number;
  body: string;
}

export class RouterUnreachableError extends Error {}

export interface CallOptions {
  form?: [string, string][];
  accept?: string;
  /** Connect timeout, spec §0.3 uses 3 s. */
  timeoutMs?: number;
}

/** One HTTP call to `addr` (`host:port` or an absolute unix socket path). */
export function callRouter(addr: string, method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  const hp = addr.startsWith('/') ? undefined : splitHostPort(addr);
  if (!addr.startsWith('/') && hp?.port === undefined) return Promise.reject(new Error(`invalid router address "${addr}": expected host:port or an absolute unix socket path`));
  const target = hp ? { host: hp.host, port: hp.port } : { socketPath: addr };
  const headers: Record<string, string> = {};
  if (opts.accept) headers.accept = opts.accept;
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method, path, headers, timeout: opts.timeoutMs ?? 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new RouterUnreachableError(`timed out connecting to the router API at ${addr}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err instanceof RouterUnreachableError ? err : new RouterUnreachableError(`cannot reach the router API at ${addr}: ${err.code ?? err.message}`));
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Exit status for a response per spec §0.3, writing the body where it belongs. */
export function relayResponse(res: ApiResponse, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  if (res.code >= 200 && res.code < 300) {
    out.write(res.body);
    return 0;
  }
  if (res.code === 404) return 4;
  err.write(res.body);
  return 1;
}
