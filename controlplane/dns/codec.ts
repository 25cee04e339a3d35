// Gob encoding of the `nameserver` gossip payload (wire spec §9.1, §1.8.9):
// one gob stream holding one `GossipData` struct.
import type { GobStruct, GobType, GobValue } from '../mesh/gob/types.js';
import { decodeGobStream, encodeGobStream, type GobEncoderOptions } from '../mesh/gob/index.js';
import { compareForWire, type Entry } from './entries.js';
import { DnsGossipError, type GossipPayload } from './gossip-payload.js';

/** `Entry` (wire spec §1.8.9): field order is the field number. */
export const ENTRY_TYPE: GobType = {
  kind: 'struct',
  name: 'Entry',
  fields: [
    { name: 'ContainerID', type: { kind: 'string' } },
    { name: 'Origin', type: { kind: 'uint' } },
    { name: 'Addr', type: { kind: 'uint' } },
    { name: 'Hostname', type: { kind: 'string' } },
    { name: 'Version', type: { kind: 'int' } },
    { name: 'Tombstone', type: { kind: 'int' } },
  ],
};

/** `Entries` (wire spec §1.8.9): a named slice of `Entry`. */
export const ENTRIES_TYPE: GobType = { kind: 'slice', name: 'Entries', elem: ENTRY_TYPE };

/** `GossipData` (wire spec §9.1). */
export const GOSSIP_DATA_TYPE: GobType = {
  kind: 'struct',
  name: 'GossipData',
  fields: [
    { name: 'Timestamp', type: { kind: 'int' } },
    { name: 'Entries', type: ENTRIES_TYPE },
  ],
};

const MAX_U32 = 0xffffffffn;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function entryToGob(e: Entry): GobStruct {
  // The gob encoder takes safe-integer numbers as they are: no BigInt per field.
  return { ContainerID: e.containerId, Origin: e.origin, Addr: e.addr, Hostname: e.hostname, Version: e.version, Tombstone: e.tombstone };
}

/** The GossipData struct value, entries in wire order (wire spec §9.1: Go peers check the order). */
export function gossipPayloadToGob(p: GossipPayload): GobStruct {
  const sorted = [...p.entries].sort(compareForWire);
  return { Timestamp: p.timestamp, Entries: sorted.map(entryToGob) };
}

/** Encode a payload as one gob stream (`opts.firstTypeId` only matters to tests reproducing captures). */
export function encodeGossipPayload(p: GossipPayload, opts?: GobEncoderOptions): Uint8Array {
  return encodeGobStream([{ type: GOSSIP_DATA_TYPE, value: gossipPayloadToGob(p) }], opts);
}

function isStruct(v: GobValue | undefined): v is GobStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map);
}

function stringField(s: GobStruct, name: string): string {
  const v = s[name];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new DnsGossipError(`field ${name} is not a string`);
  return v;
}

function intField(s: GobStruct, name: string, min: bigint, max: bigint): bigint {
  const v = s[name];
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint') throw new DnsGossipError(`field ${name} is not an integer`);
  if (v < min || v > max) throw new DnsGossipError(`field ${name} value ${v} is out of range`);
  return v;
}

/** Convert a decoded GossipData struct value. */
export function gossipPayloadFromGob(value: GobValue | undefined): GossipPayload {
  if (!isStruct(value)) throw new DnsGossipError('payload is not a GossipData struct');
  const timestamp = Number(intField(value, 'Timestamp', -MAX_SAFE, MAX_SAFE));
  const raw = value.Entries ?? [];
  if (!Array.isArray(raw)) throw new DnsGossipError('Entries is not a list');
  const entries = raw.map((item): Entry => {
    if (!isStruct(item)) throw new DnsGossipError('an entry is not an Entry struct');
    return {
      containerId: stringField(item, 'ContainerID'),
      origin: intField(item, 'Origin', 0n, (1n << 64n) - 1n),
      addr: Number(intField(item, 'Addr', 0n, MAX_U32)),
      hostname: stringField(item, 'Hostname'),
      version: Number(intField(item, 'Version', -MAX_SAFE, MAX_SAFE)),
      tombstone: Number(intField(item, 'Tombstone', -MAX_SAFE, MAX_SAFE)),
    };
  });
  return { timestamp, entries };
}

/** Decode one payload; any malformed input raises DnsGossipError. */
export function decodeGossipPayload(bytes: Uint8Array): GossipPayload {
  let values: GobValue[];
  try {
    values = decodeGobStream(bytes);
  } catch (err) {
    throw new DnsGossipError(`undecodable payload: ${(err as Error).message}`);
  }
  if (values.length !== 1) throw new DnsGossipError(`expected one GossipData value, got ${values.length}`);
  return gossipPayloadFromGob(values[0]);
}
