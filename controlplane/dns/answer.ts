// Building DNS responses from the nameserver table (user-surface spec §6.6).
// Pure: no sockets; the server decides transport limits and forwarding.
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import dnsPacket from 'dns-packet';
import { formatIPv4, parseReverseName } from './address.js';
import { inDomain } from './domain.js';
import type { Entry } from './entries.js';

/** DNS response codes used here (RFC 1035 §4.1.1). */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

/** What the answerer needs from the nameserver. */
export interface NameLookup {
  /** Live entries for a name, ignoring case (the table's array: read it, do not keep it). */
  lookup(hostname: string): readonly Readonly<Entry>[];
  /** Live entries for an address, in display order. */
  reverseLookup(addr: number): readonly Readonly<Entry>[];
}

export interface AnswerConfig {
  /** Normalised domain (lower case, trailing dot). */
  domain: string;
  ttl: number;
}

/** The header flags of a response to `query` with this rcode (AA and RA set for local answers). */
function responseFlags(query: Pick<DecodedPacket, 'flag_rd'>, rcode: number, authoritative: boolean): number {
  let flags = dnsPacket.RECURSION_AVAILABLE | rcode;
  if (authoritative) flags |= dnsPacket.AUTHORITATIVE_ANSWER;
  if (query.flag_rd) flags |= dnsPacket.RECURSION_DESIRED;
  return flags;
}

/** An error response carrying the query's id (and question, when there was a readable one). */
export function errorResponse(id: number, rd: boolean, rcode: number, questions: Question[] = []): Packet {
  return { id, type: 'response', flags: responseFlags({ flag_rd: rd }, rcode, false), questions, answers: [] };
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * The local answer to a single-question query, or undefined when the query is
 * for someone else (to be forwarded upstream).
 */
export function answerLocally(query: DecodedPacket, names: NameLookup, cfg: AnswerConfig): Packet | undefined {
  const question = query.questions?.[0];
  if (!question) return undefined;
  const asked = question.name;
  const respond = (rcode: number, answers: Answer[]): Packet => ({
    id: query.id,
    type: 'response',
    flags: responseFlags(query, rcode, true),
    questions: [question],
    answers,
  });

  if (question.type === 'PTR') {
    const addr = parseReverseName(asked);
    if (addr === undefined) return undefined;
    const hits = names.reverseLookup(addr);
    if (hits.length === 0) return undefined;
    return respond(Rcode.NOERROR, [{ type: 'PTR', name: asked, ttl: cfg.ttl, data: hits[0].hostname }]);
  }

  // Single-label names are qualified with our domain (user-surface spec §6.6).
  const fqdn = asked.includes('.') ? `${asked}.` : `${asked}.${cfg.domain}`;
  if (asked === '' || !inDomain(fqdn, cfg.domain)) return undefined;
  const hits = names.lookup(fqdn);
  if (hits.length === 0) return respond(Rcode.NXDOMAIN, []);
  if (question.type !== 'A') return respond(Rcode.NOERROR, []);
  const addrs = shuffle([...new Set(hits.map((e) => e.addr))]);
  return respond(
    Rcode.NOERROR,
    addrs.map((a): Answer => ({ type: 'A', name: asked, ttl: cfg.ttl, data: formatIPv4(a) })),
  );
}

/** The largest UDP response the client accepts: 512, or its EDNS0 buffer size if larger. */
export function udpLimit(query: DecodedPacket): number {
  for (const rr of query.additionals ?? []) {
    if (rr.type === 'OPT') return Math.max(512, Math.min(65535, rr.udpPayloadSize));
  }
  return 512;
}

/**
 * Fit a response into `limit` bytes: drop answers from the end and set TC
 * when they do not all fit (user-surface spec §6.6).
 */
export function truncateToFit(response: Packet, limit: number): { packet: Packet; truncated: boolean } {
  if (dnsPacket.encodingLength(response) <= limit) return { packet: response, truncated: false };
  const answers = [...(response.answers ?? [])];
  const packet: Packet = { ...response, flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers, additionals: [] };
  while (answers.length > 0 && dnsPacket.encodingLength(packet) > limit) answers.pop();
  return { packet, truncated: true };
}
