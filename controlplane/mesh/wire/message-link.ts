// The MessageLink over one TCP control connection (spec §2): framing (V2) or a
// continuing gob stream of []byte values (V1), optional secretbox sealing,
// heartbeats and the read deadline.
import type { Socket } from 'node:net';
import type { MessageLink } from '../types.js';
import { ProtocolTag } from '../types.js';
import { GobEncoder, GobDecoder, GobDecodeError, type GobType } from '../gob/index.js';
import { ControlCipher, DecryptError, SECRETBOX_OVERHEAD } from '../../../crypto/index.js';
import { encodeFrame, FrameParser, MAX_TCP_MSG_SIZE } from './framing.js';
import { WireDecodeError } from './errors.js';

/** spec §2.3 */
export const HEARTBEAT_INTERVAL_MS = 30_000;
export const READ_TIMEOUT_MS = 60_000;

export interface LinkTimers {
  heartbeatMs: number;
  readTimeoutMs: number;
}

/** How bodies are delimited on the stream: V2 length prefix, or V1 gob []byte values (spec §1.4). */
export interface BodyTransport {
  wrap(body: Uint8Array): Uint8Array;
  /** Splits received bytes into (still sealed) bodies; throws on malformed input. */
  unwrap(chunk: Uint8Array): Uint8Array[];
}

export function framedTransport(): BodyTransport {
  const parser = new FrameParser();
  return { wrap: (b) => encodeFrame(b), unwrap: (c) => parser.push(c) };
}

const bytesT: GobType = { kind: 'bytes' };

/** V1: the rest of the stream continues the gob streams the features started. */
export function gobTransport(encoder: GobEncoder, decoder: GobDecoder): BodyTransport {
  return {
    wrap(body) { encoder.encode(bytesT, body); return encoder.takeBytes(); },
    unwrap(chunk) {
      return decoder.push(chunk).map((v) => {
        if (!(v instanceof Uint8Array)) throw new WireDecodeError('protocol v1: expected a gob []byte message');
        return v;
      });
    },
  };
}

type Handlers = Parameters<MessageLink['start']>[0];

export class TcpMessageLink implements MessageLink {
  private handlers: Handlers | undefined;
  private closed = false;
  /** The socket is corked until the end of this tick (send). */
  private corked = false;
  private closeReason: Error | undefined;
  private pendingRemoteEnd: Error | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readDeadline: NodeJS.Timeout | undefined;

  /**
   * `leftoverBytes` are stream bytes read during the handshake; `leftoverBodies`
   * are bodies already split out (V1). Nothing is delivered before start()
   * (spec §1.7); until then the socket stays paused.
   */
  constructor(
    private readonly socket: Socket,
    private readonly transport: BodyTransport,
    private readonly cipher: ControlCipher | undefined,
    private readonly timers: LinkTimers,
    private readonly leftoverBytes: Uint8Array,
    private readonly leftoverBodies: Uint8Array[] = [],
  ) {
    socket.pause();
    socket.on('error', (err) => this.remoteEnded(new Error(`control connection error: ${err.message}`)));
    socket.on('end', () => this.remoteEnded(new Error('control connection closed by peer (EOF)')));
    socket.on('close', () => this.remoteEnded(new Error('control connection closed')));
  }

  send(body: Uint8Array): void {
    const wireSize = body.length + (this.cipher ? SECRETBOX_OVERHEAD : 0);
    if (wireSize > MAX_TCP_MSG_SIZE) {
      throw new RangeError(`message of ${wireSize} bytes exceeds the ${MAX_TCP_MSG_SIZE}-byte limit of the control connection`);
    }
    if (this.closed) return;
    const sealed = this.cipher ? this.cipher.seal(body) : body;
    // Messages sent in one turn of the event loop (a gossip flush, relayed
    // broadcasts, a heartbeat) leave in one system call, not one each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(this.transport.wrap(sealed));
  }

  start(handlers: Handlers): void {
    if (this.handlers) throw new Error('MessageLink.start called twice');
    this.handlers = handlers;
    if (this.closed) { handlers.onClose(this.closeReason); return; }
    this.armReadDeadline();
    this.heartbeat = setInterval(() => this.send(Uint8Array.of(ProtocolTag.Heartbeat)), this.timers.heartbeatMs);
    this.heartbeat.unref?.();
    for (const b of this.leftoverBodies) { if (!this.deliver(b)) return; }
    if (this.leftoverBytes.length > 0) this.receive(this.leftoverBytes);
    if (this.closed) return;
    if (this.pendingRemoteEnd) { this.close(this.pendingRemoteEnd); return; }
    this.socket.on('data', (chunk: Buffer) => this.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    this.socket.resume();
  }

  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    clearInterval(this.heartbeat);
    clearTimeout(this.readDeadline);
    // Weave resets control connections on close (SO_LINGER 0, spec §1.1).
    if (!this.socket.destroyed) {
      // What was sent this tick goes out before the reset, as it did before sends were corked.
      if (this.corked) this.socket.uncork();
      if (typeof this.socket.resetAndDestroy === 'function' && this.socket.readyState === 'open') this.socket.resetAndDestroy();
      else this.socket.destroy();
    }
    this.handlers?.onClose(reason);
  }

  private remoteEnded(err: Error): void {
    if (this.closed) return;
    if (!this.handlers) { this.pendingRemoteEnd ??= err; return; }
    this.close(err);
  }

  private armReadDeadline(): void {
    clearTimeout(this.readDeadline);
    this.readDeadline = setTimeout(() => {
      this.close(new Error(`no message from peer for ${this.timers.readTimeoutMs} ms (read timeout; spec heartbeat is every 30 s)`));
    }, this.timers.readTimeoutMs);
    this.readDeadline.unref?.();
  }

  private receive(chunk: Uint8Array): void {
    if (this.closed) return;
    let bodies: Uint8Array[];
    try {
      bodies = this.transport.unwrap(chunk);
    } catch (err) {
      const msg = err instanceof WireDecodeError || err instanceof GobDecodeError ? err.message : String(err);
      this.close(new Error(`control connection: ${msg}`));
      return;
    }
    for (const b of bodies) { if (!this.deliver(b)) return; }
  }

  /** Returns false once the link has closed. */
  private deliver(sealed: Uint8Array): boolean {
    if (this.closed) return false;
    let body: Uint8Array;
    try {
      body = this.cipher ? this.cipher.open(sealed) : sealed;
    } catch (err) {
      this.close(err instanceof DecryptError ? new Error(`control connection: ${err.message}`) : new Error(String(err)));
      return false;
    }
    this.armReadDeadline();
    // spec §2.1/2.3: blank messages are ignored; heartbeats only refresh the deadline.
    if (body.length === 0 || body[0] === ProtocolTag.Heartbeat) return true;
    try {
      this.handlers!.onMessage(body);
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    return !this.closed;
  }
}
