// The gob byte codec IPAM uses on the wire: one stream per payload (spec §1.8).
import { decodeGobStream, encodeGobStream } from '../mesh/gob/index.js';
import type { GobStreamCodec } from './messages.js';

export const gobStreamCodec: GobStreamCodec = {
  encode: (type, value) => encodeGobStream([{ type, value }]),
  decode: (bytes) => decodeGobStream(bytes),
};
