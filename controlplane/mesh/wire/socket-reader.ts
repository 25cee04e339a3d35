// Exact-length reads from a socket during the handshake, with the leftover
// bytes handed on intact to the message link afterwards.
import type { Socket } from 'node:net';
import { HandshakeError } from './errors.js';

export class SocketReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve(b: Uint8Array): void; reject(e: Error): void } | undefined;
  private failure: Error | undefined;

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    this.buffered += chunk.length;
    this.settle();
  };
  private readonly onEnd = (): void => this.fail(new HandshakeError('connection closed by peer during the handshake'));
  private readonly onError = (err: Error): void => this.fail(new HandshakeError(`connection error during the handshake: ${err.message}`));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Resolves with exactly n bytes. */
  read(n: number): Promise<Uint8Array> {
    if (this.waiter) return Promise.reject(new Error('SocketReader: concurrent reads'));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.settle();
    });
  }

  /** Resolves with whatever is buffered, or the next chunk. */
  readSome(): Promise<Uint8Array> {
    return this.read(0);
  }

  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.settle();
  }

  /** Stops reading (the socket is left paused) and returns the unread bytes. */
  detach(): Uint8Array {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.take(this.buffered);
  }

  private settle(): void {
    const w = this.waiter;
    if (!w) return;
    const want = w.n === 0 ? (this.buffered > 0 ? this.buffered : -1) : w.n;
    if (want > 0 && this.buffered >= want) {
      this.waiter = undefined;
      w.resolve(this.take(want));
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
