// Gob stream decoder (spec §1.8.7). It works from the type definitions received
// on the stream itself, so values come back in the sender's shape: structs as
// objects keyed by the sender's field names (fields not sent are absent).
// Every malformed input ends in a GobDecodeError; lengths are checked against
// the bytes actually present before anything is allocated.
import type { GobValue, GobStruct } from './types.js';
import { GobTypeId } from './types.js';
import { ByteReader } from './primitives.js';
import { GobDecodeError } from './errors.js';
import { builtinDefs, bootstrapDefs, type WireDef } from './wire-types.js';

export interface GobDecoderOptions {
  /** Largest accepted message (byte count prefix), default 10 MiB. */
  maxMessageSize?: number;
  /** Deepest accepted nesting of composite values, default 64. */
  maxDepth?: number;
  /** Most type definitions accepted in one stream, default 1024. */
  maxTypes?: number;
  /** Most values (fields, elements, map keys and values) in one message, default 2^20. */
  maxValues?: number;
  /** Takes a named slice's elements one by one instead of collecting them. */
  sliceVisitor?: GobSliceVisitor;
}

/**
 * Elements of a field of a message's top-level struct whose type is a slice
 * named `typeName` go to `visit` one by one, as each is decoded, and the field decodes as an empty
 * slice. A reader that merges a long list (the weaveDNS table, which every
 * peer sends whole every 30 s) then holds one element at a time rather than
 * all of them at once. An error thrown by `visit` ends the decode and comes
 * out of it as it was thrown.
 */
export interface GobSliceVisitor {
  typeName: string;
  /** `enclosing` holds the fields of the struct that come before the slice. */
  visit(element: GobValue, enclosing: Readonly<GobStruct>): void;
}

/** Carries an error thrown by a slice visitor out through the decoder's own error handling. */
class VisitorError extends Error {
  constructor(readonly thrown: unknown) {
    super('slice visitor failed');
  }
}

/** One top-level value with the wire id of its type. */
export interface GobMessage { typeId: number; value: GobValue }

/**
 * One top-level value not decoded yet: a reader that needs only some values of
 * a stream (topology gossip skips the connection lists of records it already
 * has) frames every message but decodes only those it wants.
 */
export interface LazyGobMessage {
  typeId: number;
  /** Decodes the value; throws GobDecodeError like an eager decode would. */
  decode(): GobValue;
}

const DEFAULT_MAX_MESSAGE = 10 * 1024 * 1024;
/**
 * An element can take a single byte (an empty struct), so without a cap a
 * 10 MiB message would become ten million objects (~900 MB of heap and many
 * seconds of decoding). 2^20 values is several times the largest real payload
 * (a topology of 1000 peers with 100 connections each is ~500k values).
 */
const DEFAULT_MAX_VALUES = 1 << 20;
const MAX_TYPE_ID = 0x7fffffff;

/**
 * Type definitions decoded recently, by id and encoded bytes. Every gossip
 * payload is a stream of its own that defines its types again (spec §1.8.6),
 * with the same bytes each time; decoding them anew was a large part of the
 * cost of topology gossip. Bounded: a peer inventing definitions only evicts.
 */
const recentDefinitions = new Map<string, WireDef>();
const MAX_RECENT_DEFINITIONS = 256;
/** Definitions longer than this are decoded every time rather than keyed. */
const MAX_KEYED_DEFINITION = 1024;

function definitionKey(id: number, r: ByteReader): string {
  if (r.remaining > MAX_KEYED_DEFINITION) return '';
  return `${id} ${r.peekLatin1()}`;
}

function setField(obj: GobStruct, name: string, value: GobValue): void {
  // defineProperty so that a field called "__proto__" is just a field; plain
  // assignment (several times faster) for every other name.
  if (name === '__proto__') Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
  else obj[name] = value;
}

/** A stateful decoder for one gob stream, fed incrementally. */
export class GobDecoder {
  private readonly maxMessageSize: number;
  private readonly maxDepth: number;
  private readonly maxTypes: number;
  private readonly maxValues: number;
  private readonly sliceVisitor: GobSliceVisitor | undefined;
  /** Values the message being decoded may still hold. */
  private valuesLeft = 0;
  private readonly userTypes = new Map<number, WireDef>();
  /** Received bytes not yet decoded, kept as they came until a whole message is present. */
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes needed before the next message is complete (0 = unknown yet). */
  private needed = 0;
  private failure: GobDecodeError | undefined;

  constructor(opts: GobDecoderOptions = {}) {
    this.maxMessageSize = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
    this.maxValues = opts.maxValues ?? DEFAULT_MAX_VALUES;
    this.maxDepth = opts.maxDepth ?? 64;
    this.maxTypes = opts.maxTypes ?? 1024;
    this.sliceVisitor = opts.sliceVisitor;
  }

  /** Bytes received that do not yet form a complete message. */
  get pendingBytes(): number { return this.buffered; }

  /** Feeds bytes; returns the top-level values completed by them, in order. */
  push(chunk: Uint8Array): GobValue[] {
    return this.pushMessages(chunk).map((m) => m.value);
  }

  /** Like push, but also reports each value's wire type id. */
  pushMessages(chunk: Uint8Array): GobMessage[] {
    return this.guarded(() => this.drain(chunk, (typeId, body) => ({ typeId, value: this.decodeBody(typeId, body) })));
  }

  /**
   * Like pushMessages, but only type definitions are decoded now: each value
   * is framed and its type id checked, and decoded when asked. `chunk` must
   * not change until then.
   */
  pushLazy(chunk: Uint8Array): LazyGobMessage[] {
    return this.guarded(() => this.drain(chunk, (typeId, body) => ({
      typeId,
      decode: () => this.guarded(() => this.decodeBody(typeId, body)),
    })));
  }

  private guarded<T>(fn: () => T): T {
    if (this.failure) throw this.failure;
    try {
      return fn();
    } catch (err) {
      if (err instanceof VisitorError) {
        this.failure = new GobDecodeError('decoding was abandoned by its reader');
        throw err.thrown;
      }
      this.failure = err instanceof GobDecodeError ? err : new GobDecodeError(`internal error: ${String(err)}`);
      throw this.failure;
    }
  }

  /** Declares the end of the stream: fails if a message was cut short. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.buffered > 0) throw new GobDecodeError(`stream ended inside a message (${this.buffered} bytes left over)`);
  }

  /** Frames the complete messages buffered, in order: defines types, hands each value message to `onValue`. */
  private drain<T>(chunk: Uint8Array, onValue: (typeId: number, body: ByteReader) => T): T[] {
    if (chunk.length > 0) { this.chunks.push(chunk); this.buffered += chunk.length; }
    // A large message arriving in many small chunks is joined once, not once per chunk.
    if (this.buffered === 0 || this.buffered < this.needed) return [];
    const buf = this.joined();
    const out: T[] = [];
    let pos = 0;
    this.needed = 0;
    for (;;) {
      const header = this.readLength(buf, pos);
      if (header === undefined) break;
      const [size, bodyStart] = header;
      if (bodyStart + size > buf.length) { this.needed = bodyStart + size - pos; break; }
      const msg = this.frameMessage(new ByteReader(buf, bodyStart, bodyStart + size));
      if (msg) out.push(onValue(msg.typeId, msg.body));
      pos = bodyStart + size;
    }
    const rest = buf.slice(pos);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  private joined(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const buf = new Uint8Array(this.buffered);
    let off = 0;
    for (const c of this.chunks) { buf.set(c, off); off += c.length; }
    return buf;
  }

  /** Reads a message's byte count at `pos`; undefined when more bytes are needed. */
  private readLength(buf: Uint8Array, pos: number): [number, number] | undefined {
    if (pos >= buf.length) return undefined;
    const first = buf[pos]!;
    let n = 0;
    if (first >= 0x80) {
      n = 0x100 - first;
      if (n > 8) throw new GobDecodeError(`bad message length byte 0x${first.toString(16)}`);
      if (pos + 1 + n > buf.length) return undefined;
    }
    const size = new ByteReader(buf, pos, pos + 1 + n).uint();
    if (size === 0n) throw new GobDecodeError('empty message');
    if (size > BigInt(this.maxMessageSize)) {
      throw new GobDecodeError(`message of ${size} bytes exceeds the ${this.maxMessageSize}-byte limit`);
    }
    return [Number(size), pos + 1 + n];
  }

  /** A type definition is applied at once; a value message comes back with its type id, positioned after it. */
  private frameMessage(r: ByteReader): { typeId: number; body: ByteReader } | undefined {
    this.valuesLeft = this.maxValues;
    const id = r.int();
    if (id < 0n) {
      this.defineType(-id, r);
      return undefined;
    }
    if (id === 0n || id > BigInt(MAX_TYPE_ID)) throw new GobDecodeError(`bad type id ${id}`);
    const typeId = Number(id);
    this.userDef(typeId);
    return { typeId, body: r };
  }

  private decodeBody(typeId: number, r: ByteReader): GobValue {
    this.valuesLeft = this.maxValues;
    const def = this.userDef(typeId);
    let value: GobValue;
    if (def.kind === 'struct') {
      value = this.decodeStruct(r, def, 0, (i) => this.userDef(i), this.sliceVisitor);
    } else {
      // spec §1.8.4: a non-struct top-level value starts with a zero delta.
      if (r.uint() !== 0n) throw new GobDecodeError(`non-zero singleton marker for type id ${typeId}`);
      value = this.decodeValue(r, typeId, 0, (i) => this.userDef(i));
    }
    if (r.remaining > 0) throw new GobDecodeError(`${r.remaining} bytes of extra data after a value of type id ${typeId}`);
    return value;
  }

  private userDef(id: number): WireDef {
    const def = builtinDefs.get(id) ?? this.userTypes.get(id);
    if (!def) {
      if (id === GobTypeId.complex || id === GobTypeId.interface) throw new GobDecodeError(`type id ${id} (complex/interface) is not supported`);
      throw new GobDecodeError(`type id ${id} used but not defined in this stream`);
    }
    return def;
  }

  private defineType(idBig: bigint, r: ByteReader): void {
    if (idBig < BigInt(GobTypeId.firstUserId) || idBig > BigInt(MAX_TYPE_ID)) {
      throw new GobDecodeError(`type definition for reserved or out-of-range id ${idBig}`);
    }
    const id = Number(idBig);
    if (this.userTypes.has(id)) throw new GobDecodeError(`type id ${id} defined twice`);
    if (this.userTypes.size >= this.maxTypes) throw new GobDecodeError(`more than ${this.maxTypes} type definitions`);
    const key = definitionKey(id, r);
    let def = key === '' ? undefined : recentDefinitions.get(key);
    if (def === undefined) {
      const wire = this.decodeStruct(r, bootstrapDefs.get(GobTypeId.wireType) as Extract<WireDef, { kind: 'struct' }>, 0,
        (i) => bootstrapDefs.get(i) ?? builtinDefs.get(i)!);
      if (r.remaining > 0) throw new GobDecodeError(`extra data after the definition of type id ${id}`);
      def = toWireDef(id, wire);
      if (recentDefinitions.size >= MAX_RECENT_DEFINITIONS) recentDefinitions.clear();
      if (key !== '') recentDefinitions.set(key, def);
    }
    this.userTypes.set(id, def);
  }

  /** `visitor`: for a message's top-level struct only (GobSliceVisitor). */
  private decodeStruct(r: ByteReader, def: Extract<WireDef, { kind: 'struct' }>, depth: number, lookup: (id: number) => WireDef,
    visitor?: GobSliceVisitor): GobStruct {
    const out: GobStruct = {};
    let field = -1;
    for (;;) {
      const delta = r.uintNumber();
      if (delta === 0) return out;
      const index = field + delta;
      if (index >= def.fields.length) {
        throw new GobDecodeError(`field number ${index === Infinity ? 'beyond 2^53' : index} out of range for struct ${def.name || '(unnamed)'} with ${def.fields.length} fields`);
      }
      field = index;
      const f = def.fields[field]!;
      let visit: ((element: GobValue) => void) | undefined;
      if (visitor !== undefined) {
        const fieldDef = lookup(f.id);
        if (fieldDef.kind === 'slice' && fieldDef.name === visitor.typeName) visit = (element) => visitor.visit(element, out);
      }
      setField(out, f.name, this.decodeValue(r, f.id, depth + 1, lookup, visit));
    }
  }

  /** `visit` (given for a slice only): its elements go to it as each is decoded, and the slice decodes empty (GobSliceVisitor). */
  private decodeValue(r: ByteReader, id: number, depth: number, lookup: (id: number) => WireDef, visit?: (element: GobValue) => void): GobValue {
    if (depth > this.maxDepth) throw new GobDecodeError(`values nested deeper than ${this.maxDepth}`);
    if (--this.valuesLeft < 0) throw new GobDecodeError(`message holds more than ${this.maxValues} values`);
    const def = lookup(id);
    switch (def.kind) {
      case 'builtin':
        switch (def.type) {
          case 'bool': return r.uint() !== 0n;
          case 'int': return r.int();
          case 'uint': return r.uint();
          case 'float': {
            const dv = new DataView(new ArrayBuffer(8));
            dv.setBigUint64(0, r.uint(), false);
            return dv.getFloat64(0, true);
          }
          case 'bytes': return r.take(r.count('byte string length', r.remaining));
          case 'string': return r.utf8String(r.count('string length', r.remaining));
        }
        break;
      case 'opaque': return r.take(r.count('marshaled value length', r.remaining));
      case 'struct': return this.decodeStruct(r, def, depth, lookup);
      case 'slice':
      case 'array': {
        // Every element takes at least one byte, so a count beyond the bytes left is forged.
        const n = r.count('element count', r.remaining);
        if (def.kind === 'array' && n !== def.len) throw new GobDecodeError(`array of length ${def.len} received with ${n} elements`);
        const out: GobValue[] = [];
        for (let i = 0; i < n; i++) {
          const element = this.decodeValue(r, def.elem, depth + 1, lookup);
          if (visit === undefined) {
            out.push(element);
            continue;
          }
          try {
            visit(element);
          } catch (err) {
            throw new VisitorError(err);
          }
        }
        return out;
      }
      case 'map': {
        const n = r.count('map entry count', Math.floor(r.remaining / 2));
        const out = new Map<GobValue, GobValue>();
        for (let i = 0; i < n; i++) {
          const k = this.decodeValue(r, def.key, depth + 1, lookup);
          out.set(k, this.decodeValue(r, def.elem, depth + 1, lookup));
        }
        return out;
      }
    }
    throw new GobDecodeError(`unsupported type id ${id}`);
  }
}

/** Checks a type id named inside a definition: a builtin we support, or a user id. */
function refId(v: GobValue | undefined, what: string): number {
  if (typeof v !== 'bigint') throw new GobDecodeError(`type definition lacks ${what}`);
  if (v >= 1n && v <= 6n) return Number(v);
  if (v >= BigInt(GobTypeId.firstUserId) && v <= BigInt(MAX_TYPE_ID)) return Number(v);
  throw new GobDecodeError(`type definition refers to unsupported type id ${v} (${what})`);
}

function asStruct(v: GobValue | undefined): GobStruct | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map)
    ? v as GobStruct : undefined;
}

function commonName(s: GobStruct): string {
  const common = asStruct(s.CommonType);
  return typeof common?.Name === 'string' ? common.Name : '';
}

/** Turns a decoded `wireType` into the decoder's own form (spec §1.8.6). */
function toWireDef(id: number, wire: GobStruct): WireDef {
  const present = Object.keys(wire);
  if (present.length !== 1) throw new GobDecodeError(`definition of type id ${id} must set exactly one kind, got ${present.length}`);
  const kind = present[0]!;
  const body = asStruct(wire[kind])!;
  const name = commonName(body);
  switch (kind) {
    case 'ArrayT': {
      const len = body.Len;
      if (typeof len !== 'bigint' && len !== undefined) throw new GobDecodeError('array definition with a bad length');
      const n = len ?? 0n;
      if (n < 0n || n > BigInt(MAX_TYPE_ID)) throw new GobDecodeError(`array definition with length ${n}`);
      return { kind: 'array', name, elem: refId(body.Elem, 'array element'), len: Number(n) };
    }
    case 'SliceT': return { kind: 'slice', name, elem: refId(body.Elem, 'slice element') };
    case 'MapT': return { kind: 'map', name, key: refId(body.Key, 'map key'), elem: refId(body.Elem, 'map element') };
    case 'StructT': {
      const fieldsRaw = body.Field ?? [];
      if (!Array.isArray(fieldsRaw)) throw new GobDecodeError('struct definition with bad fields');
      const fields = fieldsRaw.map((f, i) => {
        const fs = asStruct(f)!;
        return { name: typeof fs.Name === 'string' ? fs.Name : `field${i}`, id: refId(fs.Id, `field ${i}`) };
      });
      return { kind: 'struct', name, fields };
    }
    default:
      return { kind: 'opaque', name };
  }
}

/** Decodes a complete stream; fails if it ends inside a message. */
export function decodeGobStream(bytes: Uint8Array, opts?: GobDecoderOptions): GobValue[] {
  const dec = new GobDecoder(opts);
  const values = dec.push(bytes);
  dec.end();
  return values;
}
