// Gob's variable-length integers (spec §1.8.1, §1.8.2) and byte-level reader/writer.
import { GobDecodeError, GobEncodeError } from './errors.js';

const MAX_U64 = (1n << 64n) - 1n;

/** Appends gob primitives to a growing buffer. */
export class ByteWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  get length(): number { return this.len; }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b & 0xff;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** spec §1.8.1: < 128 as one byte, else negated byte count then BE bytes. */
  uint(v: bigint): void {
    if (v < 0n || v > MAX_U64) throw new GobEncodeError(`uint ${v} is outside 0..2^64-1`);
    if (v < 128n) { this.byte(Number(v)); return; }
    const bytes: number[] = [];
    let x = v;
    while (x > 0n) { bytes.unshift(Number(x & 0xffn)); x >>= 8n; }
    this.reserve(bytes.length + 1);
    this.buf[this.len++] = 0x100 - bytes.length;
    for (const b of bytes) this.buf[this.len++] = b;
  }

  /** spec §1.8.2: zig-zag, then uint. */
  int(v: bigint): void {
    if (v < -(1n << 63n) || v >= (1n << 63n)) throw new GobEncodeError(`int ${v} is outside the int64 range`);
    this.uint(v >= 0n ? v << 1n : ((-v - 1n) << 1n) | 1n);
  }

  toBytes(): Uint8Array { return this.buf.slice(0, this.len); }
}

/** Reads gob primitives from a bounded window of a buffer; every overrun is a GobDecodeError. */
export class ByteReader {
  pos: number;
  constructor(private readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get remaining(): number { return this.end - this.pos; }

  byte(): number {
    if (this.pos >= this.end) throw new GobDecodeError('unexpected end of message');
    return this.bytes[this.pos++]!;
  }

  /** The bytes left, one char per byte, without consuming them (a compact map key). */
  peekLatin1(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, this.remaining).toString('latin1');
  }

  take(n: number): Uint8Array {
    if (n > this.remaining) throw new GobDecodeError(`length ${n} exceeds the ${this.remaining} bytes left in the message`);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint(): bigint {
    const first = this.byte();
    if (first < 0x80) return BigInt(first);
    const n = 0x100 - first;
    if (n > 8) throw new GobDecodeError(`uint byte count ${n} is larger than 8 (byte 0x${first.toString(16)})`);
    if (n > this.remaining) throw new GobDecodeError('unexpected end of message inside a uint');
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.bytes[this.pos++]!);
    return v;
  }

  int(): bigint {
    const u = this.uint();
    return (u & 1n) === 1n ? -(u >> 1n) - 1n : u >> 1n;
  }

  /** A uint used as a count or length: must fit in `limit` (usually the bytes left). */
  count(what: string, limit: number): number {
    const v = this.uint();
    if (v > BigInt(limit)) throw new GobDecodeError(`${what} ${v} exceeds the ${limit} bytes left in the message`);
    return Number(v);
  }
}
