// Netlink attribute (struct nlattr, linux/netlink.h) codec: a builder that
// writes typed attributes with 4-byte alignment, and a parser that returns
// attributes by type with repeated types preserved. Pure byte work: no kernel
// contact, so it is unit-tested without root.

/** NLA_ALIGNTO (linux/netlink.h): attributes start on 4-byte boundaries. */
export const NLA_ALIGNTO = 4;
/** NLA_HDRLEN: struct nlattr is { u16 nla_len; u16 nla_type; }. */
export const NLA_HDRLEN = 4;
/** NLA_F_NESTED (linux/netlink.h): the payload is itself a list of attributes. */
export const NLA_F_NESTED = 0x8000;
/** NLA_F_NET_BYTEORDER (linux/netlink.h): the payload is in network byte order. */
export const NLA_F_NET_BYTEORDER = 0x4000;
/** NLA_TYPE_MASK: the type with both flag bits cleared. */
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Rounds a length up to the next 4-byte boundary (NLA_ALIGN). */
export function nlaAlign(len: number): number {
  return (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

/** Thrown for bytes that do not form a well-formed attribute list. */
export class MalformedAttributeError extends Error {
  constructor(message: string) {
    super(`malformed netlink attribute: ${message}`);
    this.name = 'MalformedAttributeError';
  }
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) {
    throw new RangeError(`netlink attribute type ${type} is out of range 0..${NLA_TYPE_MASK}`);
  }
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`netlink ${name} value ${value} is out of range 0..${max}`);
  }
}

/**
 * Builds an attribute list. Each method appends one attribute and returns the
 * builder, so calls chain: `new AttributeWriter().string(IFLA_IFNAME, 'v0').u32(IFLA_MTU, 1400).build()`.
 */
export class AttributeWriter {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  /** Appends an attribute whose payload is `payload`, padded to 4 bytes. */
  bytes(type: number, payload: Uint8Array, flags = 0): this {
    checkType(type);
    const len = NLA_HDRLEN + payload.length;
    if (len > 0xffff) {
      throw new RangeError(`netlink attribute ${type} payload of ${payload.length} bytes exceeds the 65531-byte limit of nla_len`);
    }
    const buf = Buffer.alloc(nlaAlign(len));
    buf.writeUInt16LE(len, 0); // nla_len excludes the trailing padding
    buf.writeUInt16LE(type | flags, 2);
    buf.set(payload, NLA_HDRLEN);
    this.chunks.push(buf);
    this.length += buf.length;
    return this;
  }

  /** A zero-length attribute whose presence is the value (NLA_FLAG). */
  flag(type: number): this {
    return this.bytes(type, Buffer.alloc(0));
  }

  u8(type: number, value: number): this {
    checkUint('u8', value, 0xff);
    return this.bytes(type, Buffer.from([value]));
  }

  /** u16 in host byte order (little-endian on every platform this project targets). */
  u16(type: number, value: number): this {
    checkUint('u16', value, 0xffff);
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return this.bytes(type, b);
  }

  /** u16 in network byte order (__be16, e.g. IFLA_VXLAN_PORT). */
  u16be(type: number, value: number): this {
    checkUint('u16', value, 0xffff);
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return this.bytes(type, b);
  }

  u32(type: number, value: number): this {
    checkUint('u32', value, 0xffffffff);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return this.bytes(type, b);
  }

  /** u32 in network byte order (__be32). */
  u32be(type: number, value: number): this {
    checkUint('u32', value, 0xffffffff);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    return this.bytes(type, b);
  }

  /** Signed 32-bit host order (e.g. IFLA_NET_NS_FD is __s32 in effect). */
  s32(type: number, value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new RangeError(`netlink s32 value ${value} is out of range`);
    }
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.bytes(type, b);
  }

  u64(type: number, value: bigint | number): this {
    const v = BigInt(value);
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`netlink u64 value ${v} is out of range`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return this.bytes(type, b);
  }

  u64be(type: number, value: bigint | number): this {
    const v = BigInt(value);
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`netlink u64 value ${v} is out of range`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return this.bytes(type, b);
  }

  /** NUL-terminated string (NLA_NUL_STRING / NLA_STRING as the kernel expects for names). */
  string(type: number, value: string): this {
    if (value.includes('\0')) throw new RangeError(`netlink string attribute ${type} must not contain NUL: ${JSON.stringify(value)}`);
    return this.bytes(type, Buffer.from(value + '\0', 'utf8'));
  }

  /** A nested attribute list (sets NLA_F_NESTED, which strict kernel validation expects). */
  nested(type: number, fill: (inner: AttributeWriter) => void): this {
    const inner = new AttributeWriter();
    fill(inner);
    return this.bytes(type, inner.build(), NLA_F_NESTED);
  }

  /** A nested list written without NLA_F_NESTED, for families whose policy predates the flag. */
  nestedNoFlag(type: number, fill: (inner: AttributeWriter) => void): this {
    const inner = new AttributeWriter();
    fill(inner);
    return this.bytes(type, inner.build());
  }

  /** Appends already-encoded attribute bytes (must be a whole, aligned list). */
  raw(encoded: Uint8Array): this {
    const b = Buffer.from(encoded);
    if (b.length % NLA_ALIGNTO !== 0) throw new RangeError(`raw netlink attributes must be 4-byte aligned, got ${b.length} bytes`);
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }

  get byteLength(): number {
    return this.length;
  }

  build(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** One parsed attribute: its type (flags stripped), its flags, and its payload bytes. */
export interface Attribute {
  readonly type: number;
  readonly nested: boolean;
  readonly netByteOrder: boolean;
  readonly value: Buffer;
}

/** Parses an attribute list; throws MalformedAttributeError on any inconsistency. */
export function parseAttributes(buf: Uint8Array): Attributes {
  const data = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const index: number[] = [];
  let off = 0;
  while (off < data.length) {
    if (data.length - off < NLA_HDRLEN) {
      throw new MalformedAttributeError(`${data.length - off} trailing bytes at offset ${off} are too short for a 4-byte header`);
    }
    const len = data.readUInt16LE(off);
    const rawType = data.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN) {
      throw new MalformedAttributeError(`attribute type ${rawType & NLA_TYPE_MASK} at offset ${off} has length ${len} < 4`);
    }
    if (off + len > data.length) {
      throw new MalformedAttributeError(`attribute type ${rawType & NLA_TYPE_MASK} at offset ${off} has length ${len}, beyond the ${data.length}-byte buffer`);
    }
    index.push(rawType, off + NLA_HDRLEN, off + len);
    // The last attribute's padding may be absent; a shorter tail ends the loop.
    off += Math.min(nlaAlign(len), data.length - off);
  }
  return new Attributes(data, index);
}

/** Fields per attribute in Attributes' index: raw type (with flags), payload start, payload end. */
const INDEX_STRIDE = 3;

/**
 * Parsed attributes with typed accessors. Accessors return undefined when the
 * type is absent. Parsing only records where each attribute lies: a link
 * message carries some fifty attributes and its readers want a handful, so
 * payload views and Attribute objects are made for those alone (the router
 * decodes links on every container attach and detach).
 */
export class Attributes {
  private materialised: readonly Attribute[] | undefined;

  constructor(private readonly data: Buffer, private readonly index: readonly number[]) {}

  /** Every attribute, in wire order. */
  get list(): readonly Attribute[] {
    if (this.materialised === undefined) {
      const out: Attribute[] = [];
      for (let i = 0; i < this.index.length; i += INDEX_STRIDE) out.push(this.attributeAt(i));
      this.materialised = out;
    }
    return this.materialised;
  }

  private attributeAt(i: number): Attribute {
    const rawType = this.index[i]!;
    return {
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      value: this.data.subarray(this.index[i + 1], this.index[i + 2]),
    };
  }

  /** Where the first attribute of this type is in the index, or -1. */
  private find(type: number): number {
    for (let i = 0; i < this.index.length; i += INDEX_STRIDE) {
      if ((this.index[i]! & NLA_TYPE_MASK) === type) return i;
    }
    return -1;
  }

  has(type: number): boolean {
    return this.find(type) !== -1;
  }

  /** The first attribute of this type. */
  get(type: number): Attribute | undefined {
    const i = this.find(type);
    return i === -1 ? undefined : this.attributeAt(i);
  }

  /** Every attribute of this type, in wire order. */
  getAll(type: number): Attribute[] {
    const out: Attribute[] = [];
    for (let i = 0; i < this.index.length; i += INDEX_STRIDE) {
      if ((this.index[i]! & NLA_TYPE_MASK) === type) out.push(this.attributeAt(i));
    }
    return out;
  }

  bytes(type: number): Buffer | undefined {
    const i = this.find(type);
    return i === -1 ? undefined : this.data.subarray(this.index[i + 1], this.index[i + 2]);
  }

  /** The payload offset of a fixed-size attribute of this type, checked to hold `size` bytes. */
  private fixed(type: number, size: number, kind: string): number | undefined {
    const i = this.find(type);
    if (i === -1) return undefined;
    const start = this.index[i + 1]!;
    const length = this.index[i + 2]! - start;
    if (length < size) {
      throw new MalformedAttributeError(`attribute type ${type} (${kind}) has ${length} bytes, expected ${size}`);
    }
    return start;
  }

  u8(type: number): number | undefined {
    const at = this.fixed(type, 1, 'u8');
    return at === undefined ? undefined : this.data.readUInt8(at);
  }

  u16(type: number): number | undefined {
    const at = this.fixed(type, 2, 'u16');
    return at === undefined ? undefined : this.data.readUInt16LE(at);
  }

  u16be(type: number): number | undefined {
    const at = this.fixed(type, 2, 'be16');
    return at === undefined ? undefined : this.data.readUInt16BE(at);
  }

  u32(type: number): number | undefined {
    const at = this.fixed(type, 4, 'u32');
    return at === undefined ? undefined : this.data.readUInt32LE(at);
  }

  s32(type: number): number | undefined {
    const at = this.fixed(type, 4, 's32');
    return at === undefined ? undefined : this.data.readInt32LE(at);
  }

  u32be(type: number): number | undefined {
    const at = this.fixed(type, 4, 'be32');
    return at === undefined ? undefined : this.data.readUInt32BE(at);
  }

  u64(type: number): bigint | undefined {
    const at = this.fixed(type, 8, 'u64');
    return at === undefined ? undefined : this.data.readBigUInt64LE(at);
  }

  u64be(type: number): bigint | undefined {
    const at = this.fixed(type, 8, 'be64');
    return at === undefined ? undefined : this.data.readBigUInt64BE(at);
  }

  /** A string attribute, cut at the first NUL (the kernel NUL-terminates names). */
  string(type: number): string | undefined {
    const v = this.bytes(type);
    if (v === undefined) return undefined;
    const nul = v.indexOf(0);
    return v.toString('utf8', 0, nul === -1 ? v.length : nul);
  }

  /** Parses the payload of a nested attribute (with or without NLA_F_NESTED set). */
  nested(type: number): Attributes | undefined {
    const v = this.bytes(type);
    return v === undefined ? undefined : parseAttributes(v);
  }
}
