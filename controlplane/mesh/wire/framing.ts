// Length-prefixed messages after the V2 handshake (spec §2.1).
import { WireDecodeError } from './errors.js';

/** `maxTCPMsgSize`: the largest frame body either side accepts or sends. */
export const MAX_TCP_MSG_SIZE = 10 * 1024 * 1024;
export const FRAME_HEADER_SIZE = 4;

/** Prefixes a body with its u32 BE length; refuses bodies over the limit. */
export function encodeFrame(body: Uint8Array, maxSize = MAX_TCP_MSG_SIZE): Uint8Array {
  if (body.length > maxSize) {
    throw new RangeError(`message of ${body.length} bytes exceeds the ${maxSize}-byte limit of the control connection`);
  }
  const out = new Uint8Array(FRAME_HEADER_SIZE + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Splits a byte stream into frame bodies. Received chunks are kept as they are
 * until a whole frame is present, and an oversized length is refused as soon
 * as its 4 bytes arrive, before anything is allocated for the body.
 */
export class FrameParser {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private failure: WireDecodeError | undefined;

  constructor(private readonly maxSize = MAX_TCP_MSG_SIZE) {}

  get pendingBytes(): number { return this.buffered; }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) { this.chunks.push(chunk); this.buffered += chunk.length; }
    const out: Uint8Array[] = [];
    while (this.buffered >= FRAME_HEADER_SIZE) {
      const header = this.peek(FRAME_HEADER_SIZE);
      const size = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_SIZE).getUint32(0, false);
      if (size > this.maxSize) {
        this.failure = new WireDecodeError(`received a message of ${size} bytes, over the ${this.maxSize}-byte limit`);
        throw this.failure;
      }
      if (this.buffered < FRAME_HEADER_SIZE + size) break;
      this.consume(FRAME_HEADER_SIZE);
      out.push(this.consume(size));
    }
    return out;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.chunks) {
      const take = Math.min(c.length, n - off);
      out.set(c.subarray(0, take), off);
      off += take;
      if (off === n) break;
    }
    return out;
  }

  private consume(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - off);
      out.set(c.subarray(0, take), off);
      off += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.buffered -= n;
    return out;
  }
}
