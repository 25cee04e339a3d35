// The 7-byte protocol header and version negotiation (spec §1.2).
import { WireDecodeError, HandshakeError } from './errors.js';

export const PROTOCOL_MAGIC = Uint8Array.from([0x77, 0x65, 0x61, 0x76, 0x65]); // "weave"
export const HEADER_SIZE = 7;
export const PROTOCOL_MIN_VERSION = 1;
export const PROTOCOL_MAX_VERSION = 2;

export interface VersionRange { min: number; max: number }

export function encodeHeader(range: VersionRange): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  out.set(PROTOCOL_MAGIC);
  out[5] = range.min;
  out[6] = range.max;
  return out;
}

export function parseHeader(bytes: Uint8Array): VersionRange {
  if (bytes.length !== HEADER_SIZE) throw new WireDecodeError(`protocol header must be ${HEADER_SIZE} bytes, got ${bytes.length}`);
  for (let i = 0; i < PROTOCOL_MAGIC.length; i++) {
    if (bytes[i] !== PROTOCOL_MAGIC[i]) {
      throw new WireDecodeError(`remote did not send the "weave" protocol header (got ${Buffer.from(bytes).toString('hex')}); is it a weave peer on this port?`);
    }
  }
  return { min: bytes[5]!, max: bytes[6]! };
}

/** Both sides compute the same answer: the highest version in the overlap (spec §1.2). */
export function negotiateVersion(ours: VersionRange, theirs: VersionRange): number {
  const lo = Math.max(ours.min, theirs.min);
  const hi = Math.min(ours.max, theirs.max);
  if (lo > hi) {
    throw new HandshakeError(`no common protocol version: we support ${ours.min}..${ours.max}, remote supports ${theirs.min}..${theirs.max}`);
  }
  return hi;
}
