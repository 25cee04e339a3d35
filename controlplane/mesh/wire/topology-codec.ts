// Topology gossip payload (spec §4.5): one gob stream of (peerSummary,
// []connectionSummary) pairs, one pair per peer.
import type { PeerRecord, PeerSummary, ConnectionSummary } from '../types.js';
import {
  encodeGobStream, decodeGobStream, GobDecodeError, gobStruct, gobBytes, gobString, gobUint, gobBool, gobSlice,
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

export function encodeTopology(records: readonly PeerRecord[], opts?: GobEncoderOptions): Uint8Array {
  const items: { type: GobType; value: GobValue }[] = [];
  for (const r of records) {
    const s = r.summary;
    items.push({
      type: peerSummaryGobType,
      value: {
        NameByte: peerNameToBytes(s.name), NickName: s.nickName, UID: s.uid, Version: s.version,
        ShortID: BigInt(s.shortId), HasShortID: s.hasShortId,
      },
    });
    items.push({
      type: connectionListGobType,
      value: r.connections.map((c) => ({
        NameByte: peerNameToBytes(c.name), RemoteTCPAddr: c.remoteTcpAddr, Outbound: c.outbound, Established: c.established,
      })),
    });
  }
  return encodeGobStream(items, opts);
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

export function decodeTopology(bytes: Uint8Array): PeerRecord[] {
  try {
    const values = decodeGobStream(bytes);
    if (values.length % 2 !== 0) throw new WireDecodeError(`topology: ${values.length} values, expected (peer, connections) pairs`);
    const out: PeerRecord[] = [];
    for (let i = 0; i < values.length; i += 2) {
      out.push({ summary: decodeSummary(values[i], i / 2), connections: decodeConnections(values[i + 1], i / 2) });
    }
    return out;
  } catch (err) {
    if (err instanceof GobDecodeError) throw new WireDecodeError(`topology: ${err.message}`);
    throw err;
  }
}
