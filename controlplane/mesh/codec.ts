// The byte codecs the mesh logic needs, behind one small interface so tests
// can swap them; the default is the wire layer's gob codecs (spec §4.1, §4.5).
import type { GossipEnvelope, PeerRecord, PeerSummary, ReceivedPeerRecord } from './types.js';
import { decodeGossipMessage, encodeGossipMessage } from './wire/envelope.js';
import {
  decodeTopology, decodeTopologyFiltered, encodeTopology, encodeTopologyRecord, joinTopology,
  type EncodedTopologyRecord,
} from './wire/topology-codec.js';

export type { EncodedTopologyRecord, ReceivedPeerRecord };

export interface MeshCodec {
  encodeTopology(records: readonly PeerRecord[]): Uint8Array;
  decodeTopology(bytes: Uint8Array): PeerRecord[];
  /** One record's part of a topology payload, to be cached while the record is unchanged. */
  encodeTopologyRecord(record: PeerRecord): EncodedTopologyRecord;
  /** A topology payload from encoded records (the same bytes encodeTopology gives). */
  joinTopology(records: readonly EncodedTopologyRecord[]): Uint8Array;
  /** decodeTopology, decoding connection lists only where `wantConnections` says so. */
  decodeTopologyFiltered(bytes: Uint8Array, wantConnections: (s: PeerSummary) => boolean): ReceivedPeerRecord[];
  /** Whole message body, tag byte first. */
  encodeEnvelope(e: GossipEnvelope): Uint8Array;
  decodeEnvelope(body: Uint8Array): GossipEnvelope;
}

export const wireCodec: MeshCodec = {
  encodeTopology: (records) => encodeTopology(records),
  decodeTopology,
  encodeTopologyRecord,
  joinTopology,
  decodeTopologyFiltered,
  encodeEnvelope: encodeGossipMessage,
  decodeEnvelope: decodeGossipMessage,
};
