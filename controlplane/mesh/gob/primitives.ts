// Gob's variable-length integers (spec §1.8.1, §1.8.2) and byte-level reader/writer.
import { GobDecodeError, GobEncodeError } from './errors.js';

const MAX_U64 = (1n << 64n) - 1n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** Largest magnitude whose zig-zag form (2|v| or 2|v|-1) is still a safe integer. */
const ZIGZAG_SAFE = Math.floor(Number.MAX_SAFE_INTEGER / 2);
const ZIGZAG_SAFE_BIG = BigInt(ZIGZAG_SAFE);
const utf8Encoder = new TextEncoder();

/** Bytes needed for a non-zero value below 2^32. */
function byteLength32(x: number): number {
  return x < 0x100 ? 1 : x < 0x10000 ? 2 : x < 0x1000000 ? 3 : 4;
}

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
    if (v <= MAX_SAFE_BIG) { this.uintNumber(Number(v)); return; }
    let n = 0;
    for (let x = v; x > 0n; x >>= 8n) n++;
    this.reserve(n + 1);
    this.buf[this.len++] = 0x100 - n;
    for (let i = n - 1; i >= 0; i--) this.buf[this.len++] = Number((v >> BigInt(8 * i)) & 0xffn);
  }

  /**
   * The same encoding for a number (a length, a count, a field delta, a small
   * value): no BigInt, as most of a message's integers are of this kind.
   */
  uintNumber(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new GobEncodeError(`uint ${v} is not a non-negative safe integer`);
    if (v < 0x80) { this.byte(v); return; }
    // Two 32-bit halves, so that every byte is a shift rather than a division.
    const hi = Math.floor(v / 0x100000000);
    const lo = v >>> 0;
    const n = hi > 0 ? 4 + byteLength32(hi) : byteLength32(lo);
    this.reserve(n + 1);
    const buf = this.buf;
    let at = this.len;
    buf[at++] = 0x100 - n;
    for (let shift = 8 * (n - 5); shift >= 0; shift -= 8) buf[at++] = (hi >>> shift) & 0xff;
    for (let shift = 8 * (Math.min(n, 4) - 1); shift >= 0; shift -= 8) buf[at++] = (lo >>> shift) & 0xff;
    this.len = at;
  }

  /** spec §1.8.2: zig-zag, then uint. */
  int(v: bigint): void {
    if (v < -(1n << 63n) || v >= (1n << 63n)) throw new GobEncodeError(`int ${v} is outside the int64 range`);
    if (v >= -ZIGZAG_SAFE_BIG && v <= ZIGZAG_SAFE_BIG) { this.intNumber(Number(v)); return; }
    this.uint(v >= 0n ? v << 1n : ((-v - 1n) << 1n) | 1n);
  }

  /** int() for a safe integer whose zig-zag form is still one. */
  intNumber(v: number): void {
    if (!Number.isSafeInteger(v)) throw new GobEncodeError(`int ${v} is not a safe integer`);
    if (v > ZIGZAG_SAFE || v < -ZIGZAG_SAFE) { this.int(BigInt(v)); return; }
    this.uintNumber(v >= 0 ? v * 2 : (-v - 1) * 2 + 1);
  }

  /** A string as gob sends it: its UTF-8 byte count, then the bytes, encoded in place. */
  utf8String(v: string): void {
    // A short ASCII string (a name, an id: nearly every string gossip carries)
    // is copied a char at a time; encodeInto would cost a view object per string.
    if (v.length < 0x80) {
      this.reserve(v.length + 1);
      const start = this.len + 1;
      let i = 0;
      for (; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[start + i] = c;
      }
      if (i === v.length) {
        this.buf[this.len] = v.length;
        this.len = start + v.length;
        return;
      }
    }
    const n = Buffer.byteLength(v, 'utf8');
    this.uintNumber(n);
    this.reserve(n);
    utf8Encoder.encodeInto(v, this.buf.subarray(this.len, this.len + n));
    this.len += n;
  }

  /** The bytes written so far, as a view of the writer's buffer (valid until the next write). */
  view(): Uint8Array { return this.buf.subarray(0, this.len); }

  toBytes(): Uint8Array { return this.buf.slice(0, this.len); }
}

/** The values of the one-byte encodings (0-127), shared: BigInts are immutable. */
const ONE_BYTE_UINTS: readonly bigint[] = Array.from({ length: 0x80 }, (_, b) => BigInt(b));
const ONE_BYTE_INTS: readonly bigint[] = Array.from({ length: 0x80 }, (_, b) => BigInt((b & 1) === 1 ? -(b >> 1) - 1 : b >> 1));

/** Reads gob primitives from a bounded window of a buffer; every overrun is a GobDecodeError. */
export class ByteReader {
  pos: number;
  /** The same bytes as a Buffer, made on the first string read. */
  private asBuffer: Buffer | undefined;

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
    return this.view(n).slice();
  }

  /** The next n bytes as a view of the message (no copy: for what is decoded at once, such as a string). */
  view(n: number): Uint8Array {
    if (n > this.remaining) throw new GobDecodeError(`length ${n} exceeds the ${this.remaining} bytes left in the message`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * The next n bytes decoded as UTF-8. Invalid sequences become U+FFFD (a JS
   * string cannot hold them) and a leading BOM is kept, as a Go string would
   * keep it. Decoded from the message in place: no view object per string.
   */
  utf8String(n: number): string {
    if (n > this.remaining) throw new GobDecodeError(`length ${n} exceeds the ${this.remaining} bytes left in the message`);
    this.asBuffer ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const out = this.asBuffer.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** How many big-endian bytes follow a uint's first byte (>= 0x80), checked against the limit and the message. */
  private uintByteCount(first: number): number {
    const n = 0x100 - first;
    if (n > 8) throw new GobDecodeError(`uint byte count ${n} is larger than 8 (byte 0x${first.toString(16)})`);
    if (n > this.remaining) throw new GobDecodeError('unexpected end of message inside a uint');
    return n;
  }

  uint(): bigint {
    const first = this.byte();
    if (first < 0x80) return ONE_BYTE_UINTS[first]!;
    return this.wideUint(this.uintByteCount(first));
  }

  /** The next n big-endian bytes as a number: exact below 2^53, rounded above (callers check). */
  private bigEndianNumber(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.bytes[this.pos++]!;
    return v;
  }

  /**
   * The n (1-8) big-endian bytes of a uint as one BigInt: the bytes are
   * gathered in two 32-bit numbers, so a 64-bit value costs two BigInts
   * rather than three per byte.
   */
  private wideUint(n: number): bigint {
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < n; i++) {
      hi = hi * 256 + (lo >>> 24);
      lo = (lo & 0xffffff) * 256 + this.bytes[this.pos++]!;
    }
    // Below 2^53 the value is exact in a double: one BigInt.
    return hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * A uint read as a number, for what is small by nature (a length, a count, a
   * field delta): no BigInt. Larger than 2^53 - 1 is returned as Infinity, which
   * every caller rejects as out of range.
   */
  uintNumber(): number {
    const first = this.byte();
    if (first < 0x80) return first;
    const v = this.bigEndianNumber(this.uintByteCount(first));
    return Number.isSafeInteger(v) ? v : Infinity;
  }

  int(): bigint {
    const first = this.byte();
    if (first < 0x80) return ONE_BYTE_INTS[first]!;
    const n = this.uintByteCount(first);
    if (n <= 6) {
      // Up to 48 bits: the zig-zag decoding is exact in a double.
      const u = this.bigEndianNumber(n);
      const half = Math.floor(u / 2);
      return BigInt(u % 2 === 1 ? -half - 1 : half);
    }
    const u = this.wideUint(n);
    return (u & 1n) === 1n ? -(u >> 1n) - 1n : u >> 1n;
  }

  /** A uint used as a count or length: must fit in `limit` (usually the bytes left). */
  count(what: string, limit: number): number {
    const v = this.uintNumber();
    if (v > limit) throw new GobDecodeError(`${what} ${v === Infinity ? 'beyond 2^53' : v} exceeds the ${limit} bytes left in the message`);
    return v;
  }
}
