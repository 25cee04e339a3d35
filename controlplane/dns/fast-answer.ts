// The hot path of weaveDNS: a plain query with one A, AAAA or PTR question
// for a name in our table, read from and answered into bytes directly (no
// dns-packet objects, no per-query strings beyond the lookup key, nothing
// allocated but the reply). Whatever it is not sure about (compression,
// unusual characters, EDNS options, answers that need truncating, names that
// are not ours) it leaves to the general path in server.ts, which answers
// exactly as this would have: the two paths must not differ in what clients see.
import { Rcode, type NameLookup } from './answer.js';
import { MAX_LABEL_BYTES, MAX_NAME_TEXT_BYTES, MESSAGE_HEADER_BYTES as HEADER_BYTES, RR_FIXED_BYTES, UDP_MAX_PAYLOAD } from './constants.js';

const FLAG_QR = 0x8000;
const OPCODE_MASK = 0x7800;
const FLAG_AA = 0x0400;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_AAAA = 28;
const TYPE_OPT = 41;
const CLASS_IN = 1;
/** The OPT record we echo: root name, type, payload size, TTL (rcode/version/flags), empty RDATA (RFC 6891 §6.1.2). */
const OPT_RR_BYTES = 1 + RR_FIXED_BYTES;
const OPT_REPLY_PAYLOAD_SIZE = 4096;
const DOT = 0x2e;
const REVERSE_SUFFIX = '.in-addr.arpa';

/**
 * Label bytes the general path round-trips unchanged (dns-packet decodes a
 * label as UTF-8 and joins labels with dots): letters, digits, `-` and `_`.
 */
function plainLabelByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x5f;
}

function lowerAscii(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

export interface FastAnswerConfig {
  /** Normalised domain (lower case, trailing dot). */
  domain: string;
  ttl: number;
}

export class FastAnswerer {
  /** The domain's bytes; undefined when it is not plain ASCII (then everything takes the general path). */
  private readonly domain: Buffer | undefined;
  private readonly ttl: number;
  /** The question name as lower-case text (then qualified), built here to make one lookup key per query. */
  private readonly text: Buffer;
  /** Distinct addresses of one answer, shuffled in place. */
  private readonly addrs: number[] = [];

  constructor(private readonly names: NameLookup, cfg: FastAnswerConfig) {
    const domain = Buffer.from(cfg.domain, 'utf8');
    this.domain = domain.every((b) => b === DOT || plainLabelByte(b)) ? domain : undefined;
    // Room for the longest name plus a dot and the domain (single-label names are qualified).
    this.text = Buffer.allocUnsafe(MAX_NAME_TEXT_BYTES + 1 + domain.length);
    this.ttl = cfg.ttl;
  }

  /** The complete reply to `msg`, or undefined: take the general path. */
  answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    const domain = this.domain;
    if (!domain || msg.length < HEADER_BYTES) return undefined;
    const flags = msg.readUInt16BE(2);
    if ((flags & (FLAG_QR | OPCODE_MASK)) !== 0) return undefined;
    if (msg.readUInt16BE(4) !== 1 || msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) !== 0) return undefined;
    const additionals = msg.readUInt16BE(10);
    if (additionals > 1) return undefined;

    // The question name: plain labels only, no compression, not the root.
    const text = this.text;
    let at = HEADER_BYTES;
    let textLen = 0;
    let labels = 0;
    for (;;) {
      if (at >= msg.length) return undefined;
      const len = msg[at++]!;
      if (len === 0) break;
      if (len > MAX_LABEL_BYTES || at + len > msg.length) return undefined;
      if (labels > 0) text[textLen++] = DOT;
      if (textLen + len > MAX_NAME_TEXT_BYTES) return undefined;
      for (let i = 0; i < len; i++) {
        const b = msg[at + i]!;
        if (!plainLabelByte(b)) return undefined;
        text[textLen++] = lowerAscii(b);
      }
      at += len;
      labels++;
    }
    if (labels === 0) return undefined;
    const nameEnd = at;
    if (at + 4 > msg.length) return undefined;
    const qtype = msg.readUInt16BE(at);
    if (msg.readUInt16BE(at + 2) !== CLASS_IN) return undefined;
    if (qtype !== TYPE_A && qtype !== TYPE_AAAA && qtype !== TYPE_PTR) return undefined;
    at += 4;

    // An EDNS0 OPT record without options is echoed; anything else is the general path's.
    let udpLimit = UDP_MAX_PAYLOAD;
    if (additionals === 1) {
      if (at + OPT_RR_BYTES !== msg.length || msg[at] !== 0 || msg.readUInt16BE(at + 1) !== TYPE_OPT ||
        msg.readUInt16BE(at + 9) !== 0) return undefined;
      udpLimit = Math.max(UDP_MAX_PAYLOAD, msg.readUInt16BE(at + 3));
    } else if (at !== msg.length) {
      return undefined;
    }

    const question = msg.subarray(HEADER_BYTES, at);
    const nameBytes = nameEnd - HEADER_BYTES;
    const rd = (flags & FLAG_RD) !== 0;
    const id = msg.readUInt16BE(0);
    const limit = transport === 'udp' ? udpLimit : 0xffff;

    if (qtype === TYPE_PTR) {
      const addr = this.reverseAddress(textLen);
      if (addr === undefined) return undefined;
      const hits = this.names.reverseLookup(addr);
      if (hits.length === 0) return undefined;
      return this.ptrReply(id, rd, question, nameBytes, hits[0]!.hostname, additionals === 1, limit);
    }

    // Single-label names are qualified with our domain (user-surface spec §6.6).
    if (labels === 1) {
      text[textLen++] = DOT;
      textLen += domain.copy(text, textLen);
    } else {
      text[textLen++] = DOT;
      if (!this.inDomain(textLen)) return undefined;
    }
    const hits = this.names.lookup(text.toString('latin1', 0, textLen));
    if (hits.length === 0) return this.header(id, rd, Rcode.NXDOMAIN, question, 0, additionals === 1, 0, limit);
    if (qtype !== TYPE_A) return this.header(id, rd, Rcode.NOERROR, question, 0, additionals === 1, 0, limit);

    const addrs = this.addrs;
    addrs.length = 0;
    for (const e of hits) if (!addrs.includes(e.addr)) addrs.push(e.addr);
    for (let i = addrs.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      const t = addrs[i]!;
      addrs[i] = addrs[j]!;
      addrs[j] = t;
    }
    const answerBytes = nameBytes + RR_FIXED_BYTES + 4;
    const reply = this.header(id, rd, Rcode.NOERROR, question, addrs.length, additionals === 1, addrs.length * answerBytes, limit);
    if (!reply) return undefined;
    let out = HEADER_BYTES + question.length;
    for (const addr of addrs) {
      question.copy(reply, out, 0, nameBytes);
      out += nameBytes;
      reply.writeUInt16BE(TYPE_A, out);
      reply.writeUInt16BE(CLASS_IN, out + 2);
      reply.writeUInt32BE(this.ttl, out + 4);
      reply.writeUInt16BE(4, out + 8);
      reply.writeUInt32BE(addr, out + 10);
      out += RR_FIXED_BYTES + 4;
    }
    return reply;
  }

  /**
   * A reply buffer holding header, question and (last) the OPT record, with
   * `answerBytes` left for the answers after the question; undefined when it
   * would exceed `limit` (the general path then truncates).
   */
  private header(id: number, rd: boolean, rcode: number, question: Buffer, answers: number, edns: boolean,
    answerBytes: number, limit: number): Buffer | undefined {
    const size = HEADER_BYTES + question.length + answerBytes + (edns ? OPT_RR_BYTES : 0);
    if (size > limit) return undefined;
    const reply = Buffer.allocUnsafe(size);
    reply.writeUInt16BE(id, 0);
    reply.writeUInt16BE(FLAG_QR | FLAG_AA | FLAG_RA | (rd ? FLAG_RD : 0) | rcode, 2);
    reply.writeUInt16BE(1, 4);
    reply.writeUInt16BE(answers, 6);
    reply.writeUInt16BE(0, 8);
    reply.writeUInt16BE(edns ? 1 : 0, 10);
    question.copy(reply, HEADER_BYTES);
    if (edns) {
      const at = size - OPT_RR_BYTES;
      reply[at] = 0;
      reply.writeUInt16BE(TYPE_OPT, at + 1);
      reply.writeUInt16BE(OPT_REPLY_PAYLOAD_SIZE, at + 3);
      reply.writeUInt32BE(0, at + 5);
      reply.writeUInt16BE(0, at + 9);
    }
    return reply;
  }

  private ptrReply(id: number, rd: boolean, question: Buffer, nameBytes: number, hostname: string, edns: boolean,
    limit: number): Buffer | undefined {
    // The hostname as a wire name: plain labels of 1..63 bytes, an optional trailing dot.
    const host = hostname.endsWith('.') ? hostname.length - 1 : hostname.length;
    if (host === 0 || host > MAX_NAME_TEXT_BYTES) return undefined;
    let labelLen = 0;
    for (let i = 0; i < host; i++) {
      const c = hostname.charCodeAt(i);
      if (c === DOT) {
        if (labelLen === 0) return undefined;
        labelLen = 0;
      } else if (!plainLabelByte(c) || ++labelLen > MAX_LABEL_BYTES) {
        return undefined;
      }
    }
    if (labelLen === 0) return undefined;
    const dataBytes = host + 2;
    const reply = this.header(id, rd, Rcode.NOERROR, question, 1, edns, nameBytes + RR_FIXED_BYTES + dataBytes, limit);
    if (!reply) return undefined;
    let out = HEADER_BYTES + question.length;
    question.copy(reply, out, 0, nameBytes);
    out += nameBytes;
    reply.writeUInt16BE(TYPE_PTR, out);
    reply.writeUInt16BE(CLASS_IN, out + 2);
    reply.writeUInt32BE(this.ttl, out + 4);
    reply.writeUInt16BE(dataBytes, out + 8);
    out += RR_FIXED_BYTES;
    // Each dot becomes the length of the label after it.
    let lenAt = out++;
    for (let i = 0; i < host; i++) {
      const c = hostname.charCodeAt(i);
      if (c === DOT) {
        reply[lenAt] = out - lenAt - 1;
        lenAt = out++;
      } else {
        reply[out++] = c;
      }
    }
    reply[lenAt] = out - lenAt - 1;
    reply[out] = 0;
    return reply;
  }

  /** Whether the qualified lower-case name (with trailing dot) in `text` is the domain or inside it. */
  private inDomain(textLen: number): boolean {
    const domain = this.domain!;
    if (textLen < domain.length) return false;
    const start = textLen - domain.length;
    if (this.text.compare(domain, 0, domain.length, start, textLen) !== 0) return false;
    return start === 0 || this.text[start - 1] === DOT;
  }

  /** The address a lower-case `d.c.b.a.in-addr.arpa` name in `text` stands for (as parseReverseName). */
  private reverseAddress(textLen: number): number | undefined {
    const text = this.text;
    const suffixStart = textLen - REVERSE_SUFFIX.length;
    if (suffixStart <= 0 || text.toString('latin1', suffixStart, textLen) !== REVERSE_SUFFIX) return undefined;
    let addr = 0;
    let octets = 0;
    let at = 0;
    while (at < suffixStart) {
      let value = 0;
      let digits = 0;
      while (at < suffixStart && text[at] !== DOT) {
        const d = text[at]! - 0x30;
        if (d < 0 || d > 9 || ++digits > 3) return undefined;
        value = value * 10 + d;
        at++;
      }
      if (digits === 0 || value > 255 || octets === 4) return undefined;
      // The name lists the octets last first.
      addr += value * 256 ** octets;
      octets++;
      at++;
    }
    return octets === 4 ? addr : undefined;
  }
}
