// Netlink message header (struct nlmsghdr, linux/netlink.h) encode/decode,
// and decoding of NLMSG_ERROR payloads including extended acks.

import { MalformedAttributeError, parseAttributes } from './attributes.js';

/** sizeof(struct nlmsghdr): u32 len, u16 type, u16 flags, u32 seq, u32 pid. */
export const NLMSG_HDRLEN = 16;
/** NLMSG_ALIGNTO: messages in one datagram start on 4-byte boundaries. */
export const NLMSG_ALIGNTO = 4;

// Control message types below NLMSG_MIN_TYPE (0x10), linux/netlink.h.
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

// nlmsg_flags, linux/netlink.h.
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
/** Set on a dump reply when the dump was interrupted by a concurrent change. */
export const NLM_F_DUMP_INTR = 0x10;
// GET modifiers.
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW modifiers.
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// ACK flags: NLM_F_CAPPED = request payload not echoed; NLM_F_ACK_TLVS = ext-ack TLVs follow.
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// enum nlmsgerr_attrs, linux/netlink.h: extended-ack TLVs after struct nlmsgerr.
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export function nlmsgAlign(len: number): number {
  return (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header (family header + attributes). */
  payload: Buffer;
}

export class MalformedMessageError extends Error {
  constructor(message: string) {
    super(`malformed netlink message: ${message}`);
    this.name = 'MalformedMessageError';
  }
}

export function encodeMessage(msg: NetlinkMessage): Buffer {
  const len = NLMSG_HDRLEN + msg.payload.length;
  const buf = Buffer.alloc(nlmsgAlign(len));
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(msg.type, 4);
  buf.writeUInt16LE(msg.flags, 6);
  buf.writeUInt32LE(msg.seq >>> 0, 8);
  buf.writeUInt32LE(msg.pid >>> 0, 12);
  msg.payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}

/** Splits one received datagram into its messages; payloads are views into `buf`. */
export function decodeMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) {
      throw new MalformedMessageError(`${buf.length - off} trailing bytes at offset ${off} are too short for a 16-byte header`);
    }
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new MalformedMessageError(`header at offset ${off} claims length ${len}, datagram has ${buf.length - off} bytes left`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += Math.min(nlmsgAlign(len), buf.length - off);
  }
  return out;
}

/** A decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NetlinkErrorPayload {
  /** Positive errno (the kernel sends it negated); 0 means success (ACK). */
  errno: number;
  /** Header of the request this answers. */
  request: { type: number; flags: number; seq: number; pid: number };
  /** NLMSGERR_ATTR_MSG: the kernel's human-readable reason, when it gave one. */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset in the request of the offending attribute. */
  offset?: number;
}

/** Decodes struct nlmsgerr { int error; struct nlmsghdr msg; } plus ext-ack TLVs. */
export function decodeErrorPayload(msg: NetlinkMessage): NetlinkErrorPayload {
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) {
    throw new MalformedMessageError(`NLMSG_ERROR payload of ${p.length} bytes is shorter than struct nlmsgerr (20)`);
  }
  const error = p.readInt32LE(0);
  const reqLen = p.readUInt32LE(4);
  const out: NetlinkErrorPayload = {
    errno: -error,
    request: { type: p.readUInt16LE(8), flags: p.readUInt16LE(10), seq: p.readUInt32LE(12), pid: p.readUInt32LE(16) },
  };
  if ((msg.flags & NLM_F_ACK_TLVS) !== 0) {
    // Unless NLM_F_CAPPED, the whole request is echoed before the TLVs.
    const tlvStart = (msg.flags & NLM_F_CAPPED) !== 0 ? 4 + NLMSG_HDRLEN : 4 + nlmsgAlign(reqLen);
    if (tlvStart <= p.length) {
      try {
        const attrs = parseAttributes(p.subarray(tlvStart));
        const text = attrs.string(NLMSGERR_ATTR_MSG);
        if (text) out.message = text;
        const offs = attrs.u32(NLMSGERR_ATTR_OFFS);
        if (offs !== undefined) out.offset = offs;
      } catch (e) {
        // A garbled ext-ack must not hide the errno itself.
        if (!(e instanceof MalformedAttributeError)) throw e;
      }
    }
  }
  return out;
}
