// Topology gossip payload (spec §4.5): one gob stream of (peerSummary,
// []connectionSummary) pairs, one pair per peer.
import type { PeerRecord, PeerSummary, ConnectionSummary, ReceivedPeerRecord } from '../types.js';
import {
  encodeGobStream, GobDecoder, GobEncoder, GobDecodeError, gobStruct, gobBytes, gobString, gobUint, gobBool, gobSlice,
  type GobType, type GobValue, type GobEncoderOptions,
} from '../gob/index.js';
import { peerNameFromBytes, peerNameToBytes } from './peer-name.js';
import { WireDecodeError } from './errors.js';

export const TOPOLOGY_CHANNEL = 'topology';

export const peerSummaryGobType: GobType = {
  kind: 'struct', name: 'peerSummary', fields: [
    { name: 'NameByte', type: { kind: 'bytes' } },
    { name: 'NickName', type: { kind: 'string' } },
    { name: 'UID', type: { kind: 'uint' } },
    { name: 'Version', type: { kind: 'uint' } },
    { name: 'ShortID', type: { kind: 'uint' } },
    { name: 'HasShortID', type: { kind: 'bool' } },
  ],
};

export const connectionSummaryGobType: GobType = {
  kind: 'struct', name: 'connectionSummary', fields: [
    { name: 'NameByte', type: { kind: 'bytes' } },
    { name: 'RemoteTCPAddr', type: { kind: 'string' } },
    { name: 'Outbound', type: { kind: 'bool' } },
    { name: 'Established', type: { kind: 'bool' } },
  ],
};

/** Unnamed at top level, so its definition carries no name (spec §1.8.6). */
export const connectionListGobType: GobType = { kind: 'slice', elem: connectionSummaryGobType };

const MAX_SHORT_ID = 0xfff;

function summaryValue(s: PeerSummary): GobValue {
  return {
    NameByte: peerNameToBytes(s.name), NickName: s.nickName, UID: s.uid, Version: s.version,
    ShortID: BigInt(s.shortId), HasShortID: s.hasShortId,
  };
}

function connectionsValue(connections: readonly ConnectionSummary[]): GobValue {
  return connections.map((c) => ({
    NameByte: peerNameToBytes(c.name), RemoteTCPAddr: c.remoteTcpAddr, Outbound: c.outbound, Established: c.established,
  }));
}

export function encodeTopology(records: readonly PeerRecord[], opts?: GobEncoderOptions): Uint8Array {
  const items: { type: GobType; value: GobValue }[] = [];
  for (const r of records) {
    items.push({ type: peerSummaryGobType, value: summaryValue(r.summary) });
    items.push({ type: connectionListGobType, value: connectionsValue(r.connections) });
  }
  return encodeGobStream(items, opts);
}

/**
 * One peer's two value messages of a topology stream (its peerSummary, then its
 * connection list), encoded once and reused in every stream that carries the
 * same record: a router re-sends most records many times while a mesh forms.
 */
export interface EncodedTopologyRecord {
  readonly summary: Uint8Array;
  readonly connections: Uint8Array;
}

/**
 * The stream's type definitions, which precede the first record's summary and
 * its connection list (spec §1.8.6), and an encoder that has sent them, whose
 * output is therefore value messages only. Type ids are those of a fresh stream,
 * so joined streams are byte for byte what encodeTopology produces.
 */
interface TopologyStreamParts {
  summaryTypes: Uint8Array;
  connectionTypes: Uint8Array;
  values: GobEncoder;
}

let streamParts: TopologyStreamParts | undefined;

function topologyStreamParts(): TopologyStreamParts {
  if (streamParts) return streamParts;
  const values = new GobEncoder();
  const withoutValue = (type: GobType, zero: GobValue): Uint8Array => {
    values.encode(type, zero);
    const typesAndValue = values.takeBytes();
    values.encode(type, zero);
    return typesAndValue.slice(0, typesAndValue.length - values.takeBytes().length);
  };
  streamParts = {
    summaryTypes: withoutValue(peerSummaryGobType, {}),
    connectionTypes: withoutValue(connectionListGobType, []),
    values,
  };
  return streamParts;
}

export function encodeTopologyRecord(r: PeerRecord): EncodedTopologyRecord {
  const { values } = topologyStreamParts();
  values.encode(peerSummaryGobType, summaryValue(r.summary));
  const summary = values.takeBytes();
  values.encode(connectionListGobType, connectionsValue(r.connections));
  return { summary, connections: values.takeBytes() };
}

/** The topology stream holding these records, in order (equal to encodeTopology of the records). */
export function joinTopology(records: readonly EncodedTopologyRecord[]): Uint8Array {
  if (records.length === 0) return new Uint8Array(0);
  const { summaryTypes, connectionTypes } = topologyStreamParts();
  let size = summaryTypes.length + connectionTypes.length;
  for (const r of records) size += r.summary.length + r.connections.length;
  const out = new Uint8Array(size);
  let off = 0;
  const put = (b: Uint8Array): void => { out.set(b, off); off += b.length; };
  records.forEach((r, i) => {
    if (i === 0) put(summaryTypes);
    put(r.summary);
    if (i === 0) put(connectionTypes);
    put(r.connections);
  });
  return out;
}

function decodeSummary(v: GobValue | undefined, i: number): PeerSummary {
  const what = `topology record ${i}`;
  const s = gobStruct(v, what);
  const shortId = gobUint(s.ShortID, `${what} ShortID`);
  if (shortId > BigInt(MAX_SHORT_ID)) throw new WireDecodeError(`${what}: short id ${shortId} does not fit in 12 bits`);
  return {
    name: peerNameFromBytes(gobBytes(s.NameByte, `${what} NameByte`)),
    nickName: gobString(s.NickName, `${what} NickName`),
    uid: gobUint(s.UID, `${what} UID`),
    version: gobUint(s.Version, `${what} Version`),
    shortId: Number(shortId),
    hasShortId: gobBool(s.HasShortID, `${what} HasShortID`),
  };
}

function decodeConnections(v: GobValue | undefined, i: number): ConnectionSummary[] {
  return gobSlice(v, `topology record ${i} connections`).map((e, j) => {
    const what = `topology record ${i} connection ${j}`;
    const c = gobStruct(e, what);
    return {
      name: peerNameFromBytes(gobBytes(c.NameByte, `${what} NameByte`)),
      remoteTcpAddr: gobString(c.RemoteTCPAddr, `${what} RemoteTCPAddr`),
      outbound: gobBool(c.Outbound, `${what} Outbound`),
      established: gobBool(c.Established, `${what} Established`),
    };
  });
}

/**
 * Decodes a topology stream, the connection lists only of the records for
 * which `wantConnections` says yes: a router receives most records again and
 * again while a mesh forms, and their connection lists are the bulk of the bytes.
 * Every message is still framed and its type checked.
 */
export function decodeTopologyFiltered(bytes: Uint8Array, wantConnections: (s: PeerSummary) => boolean): ReceivedPeerRecord[] {
  try {
    const dec = new GobDecoder();
    const messages = dec.pushLazy(bytes);
    dec.end();
    if (messages.length % 2 !== 0) throw new WireDecodeError(`topology: ${messages.length} values, expected (peer, connections) pairs`);
    const out: ReceivedPeerRecord[] = [];
    for (let i = 0; i < messages.length; i += 2) {
      const summary = decodeSummary(messages[i]!.decode(), i / 2);
      const connections = wantConnections(summary) ? decodeConnections(messages[i + 1]!.decode(), i / 2) : undefined;
      out.push({ summary, connections });
    }
    return out;
  } catch (err) {
    if (err instanceof GobDecodeError) throw new WireDecodeError(`topology: ${err.message}`);
    throw err;
  }
}

export function decodeTopology(bytes: Uint8Array): PeerRecord[] {
  return decodeTopologyFiltered(bytes, () => true).map((r) => ({ summary: r.summary, connections: r.connections! }));
}
