// Forwarding Docker Engine API traffic to the real daemon unchanged (user-
// surface spec §7.3.1): ordinary requests with their bodies streamed both ways
// (chunked uploads, `docker load`, `docker logs -f`, `docker events`), and
// hijacked connections (attach, exec start: `Upgrade: tcp` and 101) tunnelled
// as raw bytes with half-closes passed on, so `docker attach` sees stdin end.
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';

/** Where the real daemon listens, as `--docker-api` names it. */
export type DaemonAddress =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; tls?: ConnectionOptions };

/** Replies the proxy reads whole to rewrite (inspect) are far smaller; a bigger one is refused. */
export const MAX_BUFFERED_REPLY_BYTES = 16 * 1024 * 1024;

/** Headers that describe one hop, not the message: never copied when the body is replaced. */
const BODY_FRAMING = new Set(['content-length', 'transfer-encoding']);

export interface BufferedReply {
  status: number;
  /** As rawHeaders: name, value, name, value... */
  rawHeaders: string[];
  body: Buffer;
}

export class DaemonUnreachableError extends Error {}

export function dialDaemon(addr: DaemonAddress): Socket {
  if (addr.kind === 'unix') return netConnect({ path: addr.socketPath, allowHalfOpen: true });
  if (addr.tls) return tlsConnect({ host: addr.host, port: addr.port, servername: addr.host, ...addr.tls });
  return netConnect({ host: addr.host, port: addr.port, allowHalfOpen: true });
}

function headerPairs(raw: readonly string[], replaceBody: Buffer | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (replaceBody !== undefined && BODY_FRAMING.has(raw[i].toLowerCase())) continue;
    out.push(raw[i], raw[i + 1]);
  }
  if (replaceBody !== undefined) out.push('Content-Length', String(replaceBody.length));
  return out;
}

/** rawHeaders pairs as writeHead takes them, without the framing headers when the body was replaced. */
export function replyHeaders(raw: readonly string[], newBody?: Buffer): string[] {
  return headerPairs(raw, newBody);
}

export class DockerApiForwarder {
  constructor(readonly daemon: DaemonAddress) {}

  private send(req: IncomingMessage, body: Buffer | undefined): Promise<IncomingMessage> & { abort(): void } {
    const out = request({
      method: req.method,
      path: req.url,
      headers: headerPairs(req.rawHeaders, body),
      createConnection: () => dialDaemon(this.daemon),
      setHost: false,
    });
    const p = new Promise<IncomingMessage>((resolve, reject) => {
      out.on('response', resolve);
      out.on('error', (err: NodeJS.ErrnoException) => reject(new DaemonUnreachableError(`cannot reach Docker: ${err.code ?? err.message}`)));
    }) as Promise<IncomingMessage> & { abort(): void };
    p.abort = () => out.destroy();
    if (body !== undefined) {
      out.end(body);
    } else {
      req.pipe(out);
      // The client went away mid-upload: the daemon must not wait for the rest.
      req.on('aborted', () => out.destroy());
    }
    req.socket.once('close', () => out.destroy());
    return p;
  }

  /** Forwards a request (body streamed, or replaced by `body`) and streams the reply back as it comes. */
  async pipe(req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<void> {
    const up = await this.send(req, body);
    res.writeHead(up.statusCode ?? 502, up.statusMessage, headerPairs(up.rawHeaders, undefined));
    // Streams (events, logs -f) must not wait for a buffer to fill.
    res.flushHeaders();
    up.pipe(res);
    await new Promise<void>((resolve) => {
      res.on('close', () => {
        up.destroy();
        resolve();
      });
      up.on('end', resolve);
      up.on('error', () => { res.destroy(); resolve(); });
    });
  }

  /** Forwards a request and reads the whole reply, for calls whose answer the proxy looks at first. */
  async exchange(req: IncomingMessage, body?: Buffer): Promise<BufferedReply> {
    const up = await this.send(req, body);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of up as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BUFFERED_REPLY_BYTES) {
        up.destroy();
        throw new Error(`Docker's reply to ${req.method} ${req.url} is larger than ${MAX_BUFFERED_REPLY_BYTES} bytes`);
      }
      chunks.push(c);
    }
    return { status: up.statusCode ?? 502, rawHeaders: up.rawHeaders, body: Buffer.concat(chunks) };
  }

  /**
   * A hijacked connection (attach, exec start, BuildKit session): the request head is
   * replayed to the daemon and from then on bytes flow both ways untouched.
   */
  tunnel(req: IncomingMessage, client: Duplex, head: Buffer): void {
    const daemon = dialDaemon(this.daemon);
    // Both directions close on their own: a client closing stdin (Docker's CloseWrite, with TLS a
    // close_notify) must not end the output still coming. TLS sockets are not half-open by default.
    daemon.allowHalfOpen = true;
    (client as Socket).allowHalfOpen = true;
    const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    daemon.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) daemon.write(head);
    const fail = (): void => {
      client.destroy();
      daemon.destroy();
    };
    daemon.on('error', () => {
      if (!client.writableEnded && !(client as Socket).destroyed) {
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 22\r\nConnection: close\r\n\r\ncannot reach Docker\r\n\r\n');
      }
      fail();
    });
    client.on('error', fail);
    // pipe() ends the other side when one side ends: a half-close, the other direction stays open.
    daemon.pipe(client);
    client.pipe(daemon);
    // The daemon is done: let what is still queued reach the client. The client is gone: nobody reads any more.
    daemon.on('close', () => { if (!client.writableEnded) client.end(); });
    client.on('close', () => daemon.destroy());
  }
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}
