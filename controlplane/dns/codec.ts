// Gob encoding of the `nameserver` gossip payload (wire spec §9.1, §1.8.9):
// one gob stream holding one `GossipData` struct.
import type { GobStruct, GobType, GobValue } from '../mesh/gob/types.js';
import { GobDecodeError, decodeGobStream, encodeGobStream, type GobEncoderOptions } from '../mesh/gob/index.js';
import { compareForWire, isStrictlyInWireOrder, type Entry } from './entries.js';
import { DnsGossipError, type GossipPayload } from './gossip-payload.js';

/**
 * `Entry` (wire spec §1.8.9): field order is the field number. Each field
 * names the `Entry` property it is encoded from, so the table's entries are
 * encoded as they are (the gob encoder takes safe-integer numbers as they are).
 */
export const ENTRY_TYPE: GobType = {
  kind: 'struct',
  name: 'Entry',
  fields: [
    { name: 'ContainerID', key: 'containerId', type: { kind: 'string' } },
    { name: 'Origin', key: 'origin', type: { kind: 'uint' } },
    { name: 'Addr', key: 'addr', type: { kind: 'uint' } },
    { name: 'Hostname', key: 'hostname', type: { kind: 'string' } },
    { name: 'Version', key: 'version', type: { kind: 'int' } },
    { name: 'Tombstone', key: 'tombstone', type: { kind: 'int' } },
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

/** A payload's entries as they are encoded: read, never changed. */
export interface EncodablePayload {
  timestamp: number;
  entries: readonly Readonly<Entry>[];
}

/**
 * The GossipData struct value, entries in wire order (wire spec §9.1: Go peers
 * check the order). Entries already in that order (the table's) are not copied.
 */
function gossipPayloadToGob(p: EncodablePayload): GobStruct {
  const sorted = isStrictlyInWireOrder(p.entries) ? p.entries : [...p.entries].sort(compareForWire);
  // ENTRY_TYPE reads an Entry's own properties.
  return { Timestamp: p.timestamp, Entries: sorted as unknown as GobValue[] };
}

/** Encode a payload as one gob stream (`opts.firstTypeId` only matters to tests reproducing captures). */
export function encodeGossipPayload(p: EncodablePayload, opts?: GobEncoderOptions): Uint8Array {
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

function timestampOf(s: GobStruct): number {
  return Number(intField(s, 'Timestamp', -MAX_SAFE, MAX_SAFE));
}

function entryFromGob(item: GobValue): Entry {
  if (!isStruct(item)) throw new DnsGossipError('an entry is not an Entry struct');
  return {
    containerId: stringField(item, 'ContainerID'),
    origin: intField(item, 'Origin', 0n, (1n << 64n) - 1n),
    addr: Number(intField(item, 'Addr', 0n, MAX_U32)),
    hostname: stringField(item, 'Hostname'),
    version: Number(intField(item, 'Version', -MAX_SAFE, MAX_SAFE)),
    tombstone: Number(intField(item, 'Tombstone', -MAX_SAFE, MAX_SAFE)),
  };
}

/** Where a payload goes as it is decoded (decodeGossipPayloadInto). */
export interface GossipPayloadSink {
  /** The sender's timestamp: called once, before the first entry. */
  begin(timestamp: number): void;
  /** Each entry in the order sent; the entry is the sink's to keep. */
  entry(e: Entry): void;
}

/**
 * Decodes one payload into `sink`, an entry at a time as the bytes are read:
 * a peer's whole table (thousands of tombstones under container churn, sent
 * every 30 s) is merged without first being held as a list. Any malformed
 * input raises DnsGossipError, possibly after `sink` has taken the entries
 * before it; whatever `sink` throws comes out as it was thrown.
 */
export function decodeGossipPayloadInto(bytes: Uint8Array, sink: GossipPayloadSink): void {
  let begun = false;
  const begin = (s: GobStruct): void => {
    if (begun) return;
    begun = true;
    sink.begin(timestampOf(s));
  };
  let values: GobValue[];
  try {
    values = decodeGobStream(bytes, {
      sliceVisitor: {
        typeName: 'Entries',
        visit: (item, enclosing) => {
          begin(enclosing);
          sink.entry(entryFromGob(item));
        },
      },
    });
  } catch (err) {
    if (!(err instanceof GobDecodeError)) throw err;
    throw new DnsGossipError(`undecodable payload: ${err.message}`);
  }
  if (values.length !== 1) throw new DnsGossipError(`expected one GossipData value, got ${values.length}`);
  const value = values[0];
  if (!isStruct(value)) throw new DnsGossipError('payload is not a GossipData struct');
  begin(value);
  // A sender whose entry list is not the named `Entries` slice: it was decoded whole.
  const rest = value.Entries ?? [];
  if (!Array.isArray(rest)) throw new DnsGossipError('Entries is not a list');
  for (const item of rest) sink.entry(entryFromGob(item));
}

/** Decode one payload whole; any malformed input raises DnsGossipError. */
export function decodeGossipPayload(bytes: Uint8Array): GossipPayload {
  const payload: GossipPayload = { timestamp: 0, entries: [] };
  decodeGossipPayloadInto(bytes, {
    begin: (timestamp) => { payload.timestamp = timestamp; },
    entry: (e) => { payload.entries.push(e); },
  });
  return payload;
}
