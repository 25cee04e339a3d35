// The byte codecs the mesh logic needs, behind one small interface so tests
// can swap them; the default is the wire layer's gob codecs (spec §4.1, §4.5).
import type { GossipEnvelope, PeerRecord } from './types.js';
import { decodeGossipMessage, encodeGossipMessage } from './wire/envelope.js';
import { decodeTopology, encodeTopology } from './wire/topology-codec.js';

export interface MeshCodec {
  encodeTopology(records: readonly PeerRecord[]): Uint8Array;
  decodeTopology(bytes: Uint8Array): PeerRecord[];
  /** Whole message body, tag byte first. */
  encodeEnvelope(e: GossipEnvelope): Uint8Array;
  decodeEnvelope(body: Uint8Array): GossipEnvelope;
}

export const wireCodec: MeshCodec = {
  encodeTopology: (records) => encodeTopology(records),
  decodeTopology,
  encodeEnvelope: encodeGossipMessage,
  decodeEnvelope: decodeGossipMessage,
};
