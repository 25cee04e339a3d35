// The weaveDNS server: UDP and TCP on one address and port, answering names in
// our domain from the nameserver and forwarding the rest upstream
// (user-surface spec §6.6). Bad input is answered FORMERR or dropped, and
// counted; it never stops the server.
import { createServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import { Rcode, answerLocally, errorResponse, truncateToFit, udpLimit, type NameLookup } from './answer.js';
import {
  DEFAULT_DOMAIN, DEFAULT_FALLBACK_TIMEOUT_MS, DEFAULT_LISTEN_ADDRESS, DEFAULT_TTL_SECONDS, MAX_LABEL_BYTES, MAX_NAME_TEXT_BYTES, MESSAGE_HEADER_BYTES,
  QUESTION_FIXED_BYTES, RR_FIXED_BYTES,
} from './constants.js';
import {
  openNodeDatagramTransport, type DatagramPeer, type DatagramTransport, type DatagramTransportDrops, type OpenDatagramTransport, type ReceivedDatagrams,
} from './datagram-transport.js';
import { normaliseDomain } from './domain.js';
import { FastAnswerer } from './fast-answer.js';
import { parseListenAddress, type ListenAddress } from './listen-address.js';
import { ResolvConfWatcher, type UpstreamServer } from './resolv-conf.js';
import { forward } from './upstream.js';
import type { OnListening } from '../listening.js';

export interface DnsServerConfig {
  names: NameLookup;
  /** `--dns-listen-address` (default 0.0.0.0:53); port 0 picks a free port for both UDP and TCP. */
  listenAddress?: string;
  /** `--dns-domain` (default weave.local.). */
  domain?: string;
  /** `--dns-ttl` in seconds (default 1). */
  ttl?: number;
  /** `--dns-fallback-timeout` in milliseconds (default 5000). */
  fallbackTimeoutMs?: number;
  /** `--resolv-conf`: where upstream servers are listed; empty or absent = no forwarding. */
  resolvConf?: string;
  /** Port the upstream servers listen on (resolv.conf cannot say; default 53). */
  upstreamPort?: number;
  /** How the UDP socket is opened (default node:dgram, one datagram at a time). */
  openUdp?: OpenDatagramTransport;
  /** Given the TCP server before it listens (controlplane/listening.ts). */
  onTcpListening?: OnListening;
}

/** Counters for `/metrics` and tests; every query ends in exactly one outcome. */
export interface DnsServerMetrics {
  udpQueries: number;
  tcpQueries: number;
  answeredLocally: number;
  nxdomain: number;
  forwarded: number;
  servfail: number;
  formerr: number;
  notimp: number;
  /** Datagrams/messages too broken to answer (not even a DNS header), or larger than the receive buffer. */
  dropped: number;
  truncated: number;
  /** UDP replies the kernel refused to send (the client retries). */
  sendFailed: number;
}

const TCP_IDLE_TIMEOUT_MS = 10_000;
/** Ephemeral UDP ports tried before giving up when each one's TCP twin is taken. */
const EPHEMERAL_PORT_ATTEMPTS = 10;

/**
 * Whether the header's section counts fit the message: every question takes
 * at least a root name and its type and class, every record a root name and
 * its fixed fields. dns-packet makes an array the length of each count before
 * it reads a byte of them: a 12-byte datagram claiming 65,535 of each cost
 * 2 MB of allocation and ~0.4 ms, forty times a real query.
 */
function sectionCountsFit(msg: Buffer): boolean {
  const questions = msg.readUInt16BE(4);
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  return MESSAGE_HEADER_BYTES + questions * (1 + QUESTION_FIXED_BYTES) + records * (1 + RR_FIXED_BYTES) <= msg.length;
}

/** The message decoded, or undefined when dns-packet finds it malformed. */
function decodeOrUndefined(msg: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
}

/**
 * Whether a decoded question name can be written back into a reply. The
 * decoder joins labels with dots without escaping, so a label holding a dot
 * (or bytes that are not UTF-8) comes back as a name that would encode to a
 * different, possibly malformed, wire name; such a query is answered FORMERR.
 */
function encodableName(name: string): boolean {
  if (name === '' || name === '.') return true;
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (Buffer.byteLength(trimmed) > MAX_NAME_TEXT_BYTES) return false;
  return trimmed.split('.').every((label) => label !== '' && Buffer.byteLength(label) <= MAX_LABEL_BYTES);
}

export class DnsServer {
  /** What the server itself counts; the UDP transport counts its own drops. */
  private readonly counts: Omit<DnsServerMetrics, 'sendFailed'> = {
    udpQueries: 0, tcpQueries: 0, answeredLocally: 0, nxdomain: 0, forwarded: 0,
    servfail: 0, formerr: 0, notimp: 0, dropped: 0, truncated: 0,
  };
  private udpDrops: DatagramTransportDrops = { oversized: 0, sendFailed: 0 };
  readonly domain: string;
  readonly ttl: number;
  private readonly fallbackTimeoutMs: number;
  private readonly names: NameLookup;
  private readonly fast: FastAnswerer;
  private readonly requested: ListenAddress;
  private readonly resolvConfPath: string;
  private readonly upstreamPort: number;
  private resolv: ResolvConfWatcher | undefined;
  private readonly openUdp: OpenDatagramTransport;
  private readonly onTcpListening: OnListening | undefined;
  private udp: DatagramTransport | undefined;
  private tcp: TcpServer | undefined;
  private readonly tcpClients = new Set<TcpSocket>();
  private bound: ListenAddress | undefined;

  constructor(cfg: DnsServerConfig) {
    this.names = cfg.names;
    this.domain = normaliseDomain(cfg.domain ?? DEFAULT_DOMAIN);
    this.ttl = cfg.ttl ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(this.ttl) || this.ttl < 0) throw new Error(`weave: invalid --dns-ttl ${this.ttl} (give whole seconds >= 0)`);
    this.fallbackTimeoutMs = cfg.fallbackTimeoutMs ?? DEFAULT_FALLBACK_TIMEOUT_MS;
    this.requested = parseListenAddress(cfg.listenAddress ?? DEFAULT_LISTEN_ADDRESS);
    this.resolvConfPath = cfg.resolvConf ?? '';
    this.upstreamPort = cfg.upstreamPort ?? 53;
    this.openUdp = cfg.openUdp ?? openNodeDatagramTransport;
    this.onTcpListening = cfg.onTcpListening;
    this.fast = new FastAnswerer(this.names, { domain: this.domain, ttl: this.ttl });
  }

  get metrics(): DnsServerMetrics {
    return { ...this.counts, dropped: this.counts.dropped + this.udpDrops.oversized, sendFailed: this.udpDrops.sendFailed };
  }

  /** The bound address (after start), e.g. for `GET /dns-address-port`. */
  address(): ListenAddress {
    if (!this.bound) throw new Error('weave: DNS server is not started');
    return { ...this.bound };
  }

  /** Upstream servers currently in use (for `weave status`). */
  upstreams(): UpstreamServer[] {
    return this.resolv?.upstreams() ?? [];
  }

  async start(): Promise<void> {
    // UDP and TCP share one port. With port 0 the UDP port is ephemeral and
    // its TCP twin may be in use by someone else: then another port is tried.
    for (let attempt = 1; ; attempt++) {
      const udp = await this.openUdp(this.requested.host, this.requested.port).catch((err: Error) => {
        throw new Error(`Unable to start dns server: listen udp ${this.requested.host}:${this.requested.port}: ${err.message}`);
      });
      // Started at once: a node:dgram socket drops what arrives before it has a handler.
      udp.start((batch) => this.onUdpBatch(batch));
      const tcp = createServer((sock) => this.onTcpConnection(sock));
      this.onTcpListening?.(tcp);
      const failed = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        tcp.once('error', resolve);
        tcp.listen(udp.port, this.requested.host, () => {
          tcp.off('error', resolve);
          resolve(undefined);
        });
      });
      if (failed) {
        await udp.close();
        if (this.requested.port === 0 && failed.code === 'EADDRINUSE' && attempt < EPHEMERAL_PORT_ATTEMPTS) continue;
        throw new Error(`Unable to start dns server: listen tcp ${this.requested.host}:${udp.port}: ${failed.message}`);
      }
      this.listenOn(udp, tcp);
      return;
    }
  }

  private listenOn(udp: DatagramTransport, tcp: TcpServer): void {
    const port = udp.port;
    this.udpDrops = udp.drops;
    this.udp = udp;
    tcp.on('error', () => { /* accept errors are transient */ });
    this.tcp = tcp;
    this.bound = { host: this.requested.host, port };
    this.resolv = new ResolvConfWatcher(this.resolvConfPath, this.upstreamPort, { address: this.bound.host, port });
  }

  async stop(): Promise<void> {
    for (const c of this.tcpClients) c.destroy();
    this.tcpClients.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await udp.close();
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  /** Answer one query message; undefined = drop. Exposed for the transports and tests. */
  async handle(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    return this.answerFast(msg, transport) ?? this.answerGeneral(msg, transport);
  }

  /** The hot path (fast-answer.ts): a local answer straight from bytes, or undefined. */
  private answerFast(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    const reply = this.fast.answer(msg, transport);
    if (reply) {
      if ((reply[3]! & 0xf) === Rcode.NXDOMAIN) this.counts.nxdomain++;
      else this.counts.answeredLocally++;
    }
    return reply;
  }

  /** Every query the hot path leaves: decoded with dns-packet, answered locally or forwarded. */
  private async answerGeneral(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (msg.length < MESSAGE_HEADER_BYTES) {
      this.counts.dropped++;
      return undefined;
    }
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    const rd = (flags & 0x0100) !== 0;
    // Responses sent to us are never answered: answering could loop between two servers.
    if ((flags & 0x8000) !== 0) {
      this.counts.dropped++;
      return undefined;
    }
    const query = sectionCountsFit(msg) ? decodeOrUndefined(msg) : undefined;
    if (!query) {
      this.counts.formerr++;
      return dnsPacket.encode(errorResponse(id, rd, Rcode.FORMERR));
    }
    const opcode = (flags >> 11) & 0xf;
    if (opcode !== 0) {
      this.counts.notimp++;
      return dnsPacket.encode(errorResponse(id, rd, Rcode.NOTIMP));
    }
    if (query.questions?.length !== 1 || !encodableName(query.questions[0]!.name)) {
      this.counts.formerr++;
      return dnsPacket.encode(errorResponse(id, rd, Rcode.FORMERR));
    }
    const local = answerLocally(query, this.names, { domain: this.domain, ttl: this.ttl });
    if (local) {
      if (((local.flags ?? 0) & 0xf) === Rcode.NXDOMAIN) this.counts.nxdomain++;
      else this.counts.answeredLocally++;
      try {
        return this.encodeForTransport(withEdns(local, query), query, transport);
      } catch {
        // A gossiped hostname that is not a valid DNS name cannot be encoded.
        this.counts.servfail++;
        return dnsPacket.encode(errorResponse(id, rd, Rcode.SERVFAIL));
      }
    }
    const upstreams = this.upstreams();
    const reply = upstreams.length > 0
      ? await forward(msg, upstreams, transport, this.fallbackTimeoutMs)
      : undefined;
    if (reply) {
      this.counts.forwarded++;
      return reply;
    }
    this.counts.servfail++;
    return dnsPacket.encode(errorResponse(id, rd, Rcode.SERVFAIL, query.questions));
  }

  private encodeForTransport(response: Packet, query: DecodedPacket, transport: 'udp' | 'tcp'): Buffer {
    if (transport === 'tcp') return dnsPacket.encode(response);
    const { packet, truncated } = truncateToFit(response, udpLimit(query));
    if (truncated) this.counts.truncated++;
    return dnsPacket.encode(packet);
  }

  /**
   * Local answers are queued into the batch synchronously (no promise, no
   * closure per query); the rest take the general path with a copy of their
   * query, since the batch's views are reused once this returns.
   */
  private onUdpBatch(batch: ReceivedDatagrams): void {
    for (let i = 0; i < batch.count; i++) {
      this.counts.udpQueries++;
      const msg = batch.message(i);
      const reply = this.answerFast(msg, 'udp');
      if (reply) batch.reply(i, reply);
      else void this.onUdp(Buffer.from(msg), batch.sender(i));
    }
  }

  private async onUdp(msg: Buffer, from: DatagramPeer): Promise<void> {
    let reply: Buffer | undefined;
    try {
      reply = await this.answerGeneral(msg, 'udp');
    } catch {
      this.counts.dropped++;
      return;
    }
    if (reply && this.udp) this.udp.sendTo(reply, from);
  }

  private onTcpConnection(sock: TcpSocket): void {
    this.tcpClients.add(sock);
    let buffered = Buffer.alloc(0);
    sock.setTimeout(TCP_IDLE_TIMEOUT_MS, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.tcpClients.delete(sock));
    sock.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const n = buffered.readUInt16BE(0);
        if (buffered.length < 2 + n) break;
        const msg = buffered.subarray(2, 2 + n);
        buffered = buffered.subarray(2 + n);
        void this.onTcpMessage(sock, msg);
      }
    });
  }

  private async onTcpMessage(sock: TcpSocket, msg: Buffer): Promise<void> {
    this.counts.tcpQueries++;
    let reply: Buffer | undefined;
    try {
      reply = await this.handle(msg, 'tcp');
    } catch {
      reply = undefined;
    }
    if (!reply) {
      // A message we cannot answer ends the stream: the framing can no longer be trusted.
      sock.destroy();
      return;
    }
    if (sock.destroyed || reply.length > 0xffff) return;
    const len = Buffer.alloc(2);
    len.writeUInt16BE(reply.length);
    sock.write(Buffer.concat([len, reply]));
  }
}

/** Echo EDNS0 in the response when the query used it (RFC 6891 §6.1.1). */
function withEdns(response: Packet, query: DecodedPacket): Packet {
  const opt = (query.additionals ?? []).find((rr) => rr.type === 'OPT');
  if (!opt) return response;
  return {
    ...response,
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  };
}
