// Gob stream encoder (spec §1.8). One GobEncoder = one Go `Encoder` = one stream:
// each type is defined once, before the first value that needs it.
import type { GobType, GobValue, GobStruct } from './types.js';
import { GobTypeId } from './types.js';
import { ByteWriter } from './primitives.js';
import { GobEncodeError } from './errors.js';
import { wireTypeT } from './wire-types.js';

const MAX_TYPE_DEPTH = 64;

export interface GobEncoderOptions {
  /**
   * First id given to a user type in this stream (default 65). Go numbers types
   * process-wide (spec §1.8.6), so a test reproducing a capture from a Go process
   * that had already used some ids can start higher.
   */
  firstTypeId?: number;
}

function builtinId(t: GobType): number | undefined {
  switch (t.kind) {
    case 'bool': return GobTypeId.bool;
    case 'int': return GobTypeId.int;
    case 'uint': return GobTypeId.uint;
    case 'float': return GobTypeId.float;
    case 'bytes': return GobTypeId.bytes;
    case 'string': return GobTypeId.string;
    default: return undefined;
  }
}

const keyCache = new WeakMap<GobType, string>();

/** Structural identity of a type, so equal descriptors built separately share one id. */
function typeKey(t: GobType, depth = 0): string {
  const cached = keyCache.get(t);
  if (cached !== undefined) return cached;
  if (depth > MAX_TYPE_DEPTH) throw new GobEncodeError(`type nesting deeper than ${MAX_TYPE_DEPTH} (recursive type descriptor?)`);
  let key: string;
  switch (t.kind) {
    case 'struct':
      key = `struct ${JSON.stringify(t.name)}{${t.fields.map((f) => `${JSON.stringify(f.name)}:${typeKey(f.type, depth + 1)}`).join(',')}}`;
      break;
    case 'slice':
      key = `slice ${JSON.stringify(t.name ?? '')}[${typeKey(t.elem, depth + 1)}]`;
      break;
    case 'map':
      key = `map ${JSON.stringify(t.name ?? '')}[${typeKey(t.key, depth + 1)}]${typeKey(t.elem, depth + 1)}`;
      break;
    default:
      key = t.kind;
  }
  keyCache.set(t, key);
  return key;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'Uint8Array';
  if (v instanceof Map) return 'Map';
  return typeof v;
}

/**
 * Where in the value being encoded we are, for error messages: segments pushed
 * and popped as the encoder descends, joined only when something is wrong
 * (building a path string per value was most of what encoding allocated).
 * Encoding is synchronous, so one stack serves every encoder.
 */
type PathSegment = string | number | { mapKey: GobValue };
const pathStack: PathSegment[] = [];

function pathText(): string {
  return pathStack.map((seg, i) => {
    if (typeof seg === 'number') return `[${seg}]`;
    if (typeof seg === 'object') return `[${String(seg.mapKey)}]`;
    return i === 0 || seg === ' key' ? seg : `.${seg}`;
  }).join('');
}

function notA(what: string, v: GobValue | undefined): GobEncodeError {
  return new GobEncodeError(`${pathText()}: expected ${what}, got ${describe(v)}`);
}

/** Whether a struct field holding `v` is omitted (gob sends no zero scalars or empty collections, spec §1.8.5). */
function isOmitted(t: GobType, v: GobValue | undefined): boolean {
  if (v === undefined) return true;
  switch (t.kind) {
    case 'uint': case 'int': return v === 0n || v === 0;
    case 'bool': return v === false;
    case 'float': return v === 0;
    case 'string': return v === '';
    case 'bytes': return v instanceof Uint8Array && v.length === 0;
    case 'slice': return Array.isArray(v) && v.length === 0;
    case 'map': return v instanceof Map && v.size === 0;
    case 'struct': return false; // a present struct is always sent, even when empty (spec §1.8.5)
  }
}

/** Writes a value's encoding (no delta or singleton marker) per spec §1.8.3/§1.8.5; integers may be bigints or safe-integer numbers. */
function writeValue(w: ByteWriter, t: GobType, v: GobValue | undefined, depth: number): void {
  if (depth > MAX_TYPE_DEPTH) throw new GobEncodeError(`${pathText()}: value nesting deeper than ${MAX_TYPE_DEPTH}`);
  switch (t.kind) {
    case 'uint':
      if (typeof v === 'bigint') w.uint(v);
      else if (typeof v === 'number' && Number.isSafeInteger(v)) w.uintNumber(v);
      else throw notA('a bigint', v);
      return;
    case 'int':
      if (typeof v === 'bigint') w.int(v);
      else if (typeof v === 'number' && Number.isSafeInteger(v)) w.intNumber(v);
      else throw notA('a bigint', v);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw notA('a boolean', v);
      w.uintNumber(v ? 1 : 0);
      return;
    case 'float': {
      if (typeof v !== 'number') throw notA('a number', v);
      // Gob sends a float64's bytes reversed as a uint, so small exponents stay short.
      const dv = new DataView(new ArrayBuffer(8));
      dv.setFloat64(0, v, true);
      w.uint(dv.getBigUint64(0, false));
      return;
    }
    case 'string':
      if (typeof v !== 'string') throw notA('a string', v);
      w.utf8String(v);
      return;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw notA('a Uint8Array', v);
      w.uintNumber(v.length);
      w.raw(v);
      return;
    case 'slice':
      if (!Array.isArray(v)) throw notA('an array', v);
      w.uintNumber(v.length);
      for (let i = 0; i < v.length; i++) {
        pathStack.push(i);
        writeValue(w, t.elem, v[i], depth + 1);
        pathStack.pop();
      }
      return;
    case 'map':
      if (!(v instanceof Map)) throw notA('a Map', v);
      w.uintNumber(v.size);
      for (const [k, e] of v) {
        pathStack.push(' key');
        writeValue(w, t.key, k, depth + 1);
        pathStack.pop();
        pathStack.push({ mapKey: k });
        writeValue(w, t.elem, e, depth + 1);
        pathStack.pop();
      }
      return;
    case 'struct':
      writeStruct(w, t, v, depth);
      return;
  }
}

function writeStruct(w: ByteWriter, t: Extract<GobType, { kind: 'struct' }>, v: GobValue | undefined, depth: number): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array || v instanceof Map) {
    throw notA(`an object for struct ${t.name}`, v);
  }
  const s = v as GobStruct;
  let last = -1;
  for (let i = 0; i < t.fields.length; i++) {
    const f = t.fields[i]!;
    const key = f.key ?? f.name;
    const fv = Object.prototype.hasOwnProperty.call(s, key) ? s[key] : undefined;
    if (isOmitted(f.type, fv)) continue;
    w.uintNumber(i - last);
    last = i;
    pathStack.push(f.name);
    writeValue(w, f.type, fv, depth + 1);
    pathStack.pop();
  }
  w.byte(0);
}

/** Writes one top-level value; `root` names it in error messages. */
function writeTopLevel(write: () => void, root: string): void {
  pathStack.length = 0;
  pathStack.push(root);
  try {
    write();
  } finally {
    pathStack.length = 0;
  }
}

/** A stateful gob stream encoder. */
export class GobEncoder {
  private nextId: number;
  private readonly ids = new Map<string, number>();
  private readonly sent = new Set<number>();
  /** Framed messages since the last takeBytes, joined once there (no buffer regrown to the stream's size). */
  private out: Uint8Array[] = [];

  constructor(opts: GobEncoderOptions = {}) {
    this.nextId = opts.firstTypeId ?? GobTypeId.firstUserId;
    if (!Number.isInteger(this.nextId) || this.nextId < GobTypeId.firstUserId) {
      throw new GobEncodeError(`firstTypeId must be an integer >= ${GobTypeId.firstUserId}`);
    }
  }

  /** Appends one top-level value (and any type definitions it needs) to the stream. */
  encode(type: GobType, value: GobValue): void {
    const id = this.assignId(type, 0);
    this.sendType(type, 0);
    const body = new ByteWriter();
    body.intNumber(id);
    if (type.kind === 'struct') {
      writeTopLevel(() => writeStruct(body, type, value, 0), type.name || 'value');
    } else {
      body.byte(0); // spec §1.8.4: non-struct values carry a 00 marker
      writeTopLevel(() => writeValue(body, type, value, 0), 'value');
    }
    this.writeMessage(body);
  }

  /** Returns the bytes produced since the last call; the stream's type state is kept. */
  takeBytes(): Uint8Array {
    const chunks = this.out;
    this.out = [];
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    return bytes;
  }

  private writeMessage(body: ByteWriter): void {
    const length = new ByteWriter();
    length.uintNumber(body.length);
    this.out.push(length.view(), body.view());
  }

  /**
   * Gives ids the way Go's type registry does: a struct takes its id before its
   * field types; a slice or map after its element (and key) types. The topology
   * example (spec §4.5: peerSummary 66, connectionSummary 67, its slice 68) shows it.
   */
  private assignId(t: GobType, depth: number): number {
    const builtin = builtinId(t);
    if (builtin !== undefined) return builtin;
    if (depth > MAX_TYPE_DEPTH) throw new GobEncodeError(`type nesting deeper than ${MAX_TYPE_DEPTH}`);
    const key = typeKey(t);
    const existing = this.ids.get(key);
    if (existing !== undefined) return existing;
    switch (t.kind) {
      case 'struct': {
        const id = this.nextId++;
        this.ids.set(key, id);
        for (const f of t.fields) this.assignId(f.type, depth + 1);
        return id;
      }
      case 'slice': {
        this.assignId(t.elem, depth + 1);
        const id = this.nextId++;
        this.ids.set(key, id);
        return id;
      }
      case 'map': {
        this.assignId(t.key, depth + 1);
        this.assignId(t.elem, depth + 1);
        const id = this.nextId++;
        this.ids.set(key, id);
        return id;
      }
    }
    throw new GobEncodeError(`no id for type kind ${t.kind}`);
  }

  private idOf(t: GobType): number {
    return builtinId(t) ?? this.ids.get(typeKey(t))!;
  }

  /** Sends a definition, then those of its components (pre-order, spec §1.8.6). */
  private sendType(t: GobType, depth: number): void {
    if (builtinId(t) !== undefined) return;
    const id = this.idOf(t);
    if (this.sent.has(id)) return;
    this.sent.add(id);
    const common = (name: string | undefined): GobStruct => ({ Name: name ?? '', Id: id });
    let def: GobStruct;
    switch (t.kind) {
      case 'struct':
        def = {
          StructT: {
            CommonType: common(t.name),
            Field: t.fields.map((f) => ({ Name: f.name, Id: this.idOf(f.type) })),
          },
        };
        break;
      case 'slice':
        def = { SliceT: { CommonType: common(t.name), Elem: this.idOf(t.elem) } };
        break;
      case 'map':
        def = { MapT: { CommonType: common(t.name), Key: this.idOf(t.key), Elem: this.idOf(t.elem) } };
        break;
      default:
        return;
    }
    const body = new ByteWriter();
    body.intNumber(-id);
    writeTopLevel(() => writeStruct(body, wireTypeT as Extract<GobType, { kind: 'struct' }>, def, 0), 'wireType');
    this.writeMessage(body);
    switch (t.kind) {
      case 'struct': for (const f of t.fields) this.sendType(f.type, depth + 1); break;
      case 'slice': this.sendType(t.elem, depth + 1); break;
      case 'map': this.sendType(t.key, depth + 1); this.sendType(t.elem, depth + 1); break;
    }
  }
}

/** Encodes a whole stream (one encoder) holding the given values in order. */
export function encodeGobStream(items: ReadonlyArray<{ type: GobType; value: GobValue }>, opts?: GobEncoderOptions): Uint8Array {
  const enc = new GobEncoder(opts);
  for (const item of items) enc.encode(item.type, item.value);
  return enc.takeBytes();
}
