// Structure-aware fuzz targets for every decoder that reads bytes from outside
// the router: the control connection (handshake, framing, gob, envelopes,
// topology), IPAM and DNS gossip as the gossipers apply it, sleeve datagrams
// and control messages, the frames containers send into the sleeve, fastdp
// heartbeats, Open vSwitch upcalls (a container's packet the kernel hands up),
// DNS queries, the HTTP API and the persisted state files; the JSON, YAML and text decoders (CNI, Docker plugin
// and proxy, policy files, Kubernetes objects) are in fuzz-targets-json.ts.
// Inputs are mutations of valid encodings (they get past the first checks and
// reach deep) mixed with plain noise. A target passes
// an input when decoding returns or throws one of its typed errors; anything
// else is a crash. The unit test runs a short pass, bench/fuzz-bench.ts millions.
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import type { HttpApi } from '../../controlplane/api/http-app.js';
import { GobDecoder, GobDecodeError } from '../../controlplane/mesh/gob/index.js';
import {
  FrameParser, HandshakeError, WireDecodeError, buildFeatures, decodeFeatures, decodeGossipMessage, decodeTopology,
  encodeFeatures, encodeFrame, encodeGossipMessage, encodeTopology, parseFeatures, performHandshake,
} from '../../controlplane/mesh/wire/index.js';
import { encodeHeader, negotiateVersion, parseHeader } from '../../controlplane/mesh/wire/header.js';
import { featuresGobType } from '../../controlplane/mesh/wire/features.js';
import { GobEncoder, type GobValue } from '../../controlplane/mesh/gob/index.js';
import { ProtocolTag, type PeerRecord } from '../../controlplane/mesh/types.js';
import {
  Allocator, IpamError, IpamMessageError, encodeGossipState, encodeUnicast, gobStreamCodec, parseCIDR, registerIpamRoutes,
} from '../../controlplane/ipam/index.js';
import { parseIpam, serialiseIpam } from '../../controlplane/ipam/persistence.js';
import { RingMergeError } from '../../controlplane/ipam/ring.js';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { NameserverGossiper } from '../../controlplane/dns/gossiper.js';
import { encodeGossipPayload } from '../../controlplane/dns/codec.js';
import { DnsGossipError } from '../../controlplane/dns/gossip-payload.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import { FileDnsEntryStore, parseDnsEntries, parseDnsJournal, serialiseDnsEntries } from '../../controlplane/dns/persistence.js';
import { buildApiServer } from '../../controlplane/api/server.js';
import type { RouterStatus } from '../../controlplane/api/status-model.js';
import { decodeDatagram, decodeFrames, encodeDatagram, encodeFrames, SleeveDecodeError } from '../../dataplane/sleeve/frame-codec.js';
import { classifySpecialFrame, heartbeatFrame } from '../../dataplane/sleeve/special-frames.js';
import { dstMac, fragmentIPv4, icmpFragNeeded, internetChecksum, isIPv4DF, isMulticastMac, isStpFrame, srcMac } from '../../dataplane/sleeve/ethernet.js';
import { describeFrame, isLinkAnnouncement } from '../../dataplane/sleeve/link-announcements.js';
import { ETHERNET_HEADER_SIZE } from '../../dataplane/sleeve/constants.js';
import { decodeUpcall } from '../../dataplane/ovs/packet.js';
import { encodeFlowKey, weaveTunnelId } from '../../dataplane/ovs/flow-key.js';
import { MalformedOdpError } from '../../dataplane/ovs/errors.js';
import { OVS_PACKET_ATTR_KEY, OVS_PACKET_ATTR_PACKET, OVS_PACKET_ATTR_USERDATA, OVS_PACKET_CMD_ACTION, OVS_PACKET_CMD_MISS } from '../../dataplane/ovs/constants.js';
import { AttributeWriter } from '../../dataplane/netlink/attributes.js';
import { encodeGenlHeader } from '../../dataplane/netlink/genl.js';
import { decodeSleeveControl, encodeSleeveControl } from '../../dataplane/sleeve/control-messages.js';
import { encodeHeartbeat, parseHeartbeat } from '../../dataplane/fastdp/heartbeat.js';
import { SleeveCryptoError, SleeveOpener, SleeveSealer } from '../../crypto/sleeve-crypto.js';
import { parseTargets } from '../../weaver/targets-store.js';
import { parsePeerName } from '../../weaver/peer-name.js';
import { jsonFuzzTargets } from './fuzz-targets-json.js';

type ErrorClass = abstract new (...args: never[]) => Error;

export interface FuzzTarget<T = unknown> {
  name: string;
  /** One input: a mutated valid encoding or noise. */
  input: fc.Arbitrary<T>;
  /** Feeds one input to the decoder; may throw only the `expected` errors. */
  run(input: T): void | Promise<void>;
  expected: readonly ErrorClass[];
  /**
   * For formats that carry lengths or counts: valid encodings, and how one
   * becomes an input; the forged-length test sets each position to 2^31.
   */
  lengthPrefixed?: { seeds: readonly Uint8Array[]; input(bytes: Uint8Array): T };
  /** Frees what the target holds (servers, timers). */
  close?(): Promise<void>;
}

/**
 * Plain Errors are how the state-file parsers report a problem; TypeError and
 * RangeError from inside them mean a check is missing, so they are crashes.
 */
export class StateFileProblem extends Error {
  static override [Symbol.hasInstance](err: unknown): boolean {
    return err instanceof Error && err.constructor === Error;
  }
}

/** A decoder raised something other than its typed errors. */
export class FuzzCrash extends Error {
  constructor(readonly target: string, readonly input: unknown, readonly error: unknown) {
    super(`${target}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} on input ${describeInput(input)}`);
    this.name = 'FuzzCrash';
  }
}

function describeInput(input: unknown): string {
  if (input instanceof Uint8Array) return `hex ${Buffer.from(input).toString('hex').slice(0, 400)}`;
  return JSON.stringify(input, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))
    .slice(0, 400);
}

/** Runs one input; returns the crash, or undefined when the target behaved. */
export async function fuzzOne<T>(target: FuzzTarget<T>, input: T): Promise<FuzzCrash | undefined> {
  try {
    await target.run(input);
    return undefined;
  } catch (err) {
    if (target.expected.some((t) => err instanceof t)) return undefined;
    return new FuzzCrash(target.name, input, err);
  }
}

// ---- input shapes ----

/** Random edits of a valid encoding: truncation, byte flips, insertions, forged length bytes, splices. */
export function mutated(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    { weight: 2, arbitrary: seed.chain((s) => fc.nat(s.length).map((n) => s.slice(0, n))) },
    { weight: 4, arbitrary: seed.chain((s) => fc.array(fc.tuple(fc.nat(Math.max(0, s.length - 1)), fc.nat(255)), { minLength: 1, maxLength: 8 })
      .map((edits) => {
        const b = Uint8Array.from(s);
        for (const [i, v] of edits) if (i < b.length) b[i] = v;
        return b;
      })) },
    { weight: 2, arbitrary: seed.chain((s) => fc.tuple(fc.nat(s.length), fc.uint8Array({ minLength: 1, maxLength: 16 }))
      .map(([i, ins]) => Uint8Array.from([...s.subarray(0, i), ...ins, ...s.subarray(i)]))) },
    // Bytes gob and the framings read as lengths or counts, set to the largest values.
    { weight: 3, arbitrary: seed.chain((s) => fc.tuple(fc.nat(Math.max(0, s.length - 1)),
      fc.constantFrom([0xf8], [0xfc, 0x7f, 0xff, 0xff, 0xff], [0xfb, 0x7f, 0xff, 0xff, 0xff, 0xff], [0x7f, 0xff, 0xff, 0xff], [0xff, 0xff], [0x80, 0, 0, 0]))
      .map(([i, forged]) => {
        const b = Uint8Array.from(s);
        b.set(forged.slice(0, b.length - i), i);
        return b;
      })) },
    { weight: 1, arbitrary: fc.tuple(seed, seed, fc.nat(), fc.nat()).map(([a, b, i, j]) =>
      Uint8Array.from([...a.subarray(0, i % (a.length + 1)), ...b.subarray(j % (b.length + 1))])) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  );
}

function seeded<T>(input: fc.Arbitrary<T>, ...seeds: T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 20, arbitrary: input }, { weight: 1, arbitrary: fc.constantFrom(...seeds) });
}

// ---- valid encodings to mutate ----

const NAME_A = 0x8a3e3e3e3e3en;
const NAME_B = 0xea2db2e6e4f5n;
const records: PeerRecord[] = [
  {
    summary: { name: NAME_A, nickName: 'alpha', uid: 1234n, version: 7n, shortId: 0x123, hasShortId: true },
    connections: [{ name: NAME_B, remoteTcpAddr: '192.168.1.2:6783', outbound: true, established: true }],
  },
  { summary: { name: NAME_B, nickName: 'beta', uid: 5678n, version: 3n, shortId: 0x456, hasShortId: true }, connections: [] },
];
const topology = encodeTopology(records);
const features = encodeFeatures(buildFeatures({ identity: { name: NAME_A, nickName: 'alpha', uid: 9n, shortId: 3 }, connId: 4n, overlays: ['fastdp', 'sleeve'] }));
const envelopes = [
  encodeGossipMessage({ tag: ProtocolTag.GossipUnicast, channel: 'IPallocation', src: NAME_A, dst: NAME_B, payload: Uint8Array.of(1, 2) }),
  encodeGossipMessage({ tag: ProtocolTag.GossipBroadcast, channel: 'topology', src: NAME_A, payload: topology }),
  encodeGossipMessage({ tag: ProtocolTag.Gossip, channel: 'nameserver', src: NAME_A, payload: Uint8Array.of(3) }),
];

const universe = parseCIDR('10.32.0.0/12');
const U = universe.addr;
const ipamState = {
  now: 1_700_000_000n,
  nicknames: new Map([[NAME_A, 'alpha'], [NAME_B, 'beta']]),
  ring: {
    start: U, end: U + 2 ** 20, peer: NAME_A, seeds: [NAME_A, NAME_B],
    entries: [{ token: U, peer: NAME_A, version: 2, free: 1000 }, { token: U + 2 ** 19, peer: NAME_B, version: 1, free: 5 }],
  },
};
const ipamSeeds = {
  gossip: [encodeGossipState(gobStreamCodec, ipamState), encodeGossipState(gobStreamCodec, { now: 5n, nicknames: new Map() })],
  unicast: [
    encodeUnicast(gobStreamCodec, { kind: 'ringUpdate', state: ipamState }),
    encodeUnicast(gobStreamCodec, { kind: 'spaceRequest', range: { start: U + 16, end: U + 32 } }),
    encodeUnicast(gobStreamCodec, { kind: 'spaceRequestDenied', range: { start: U + 16, end: U + 32 } }),
  ],
};
const dnsSeeds = [
  encodeGossipPayload({ timestamp: 1_700_000_000, entries: [
    { containerId: 'c1', origin: NAME_B, addr: 0x0a200001, hostname: 'web.weave.local.', version: 1, tombstone: 0 },
    { containerId: 'c2', origin: NAME_B, addr: 0x0a200002, hostname: 'db.weave.local.', version: 0, tombstone: 1_700_000_000 },
  ] }),
];

function sleeveSeeds(): Uint8Array[] {
  const eth = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, ...new Uint8Array(28)]);
  return [
    encodeDatagram(NAME_A, encodeFrames([{ src: NAME_A, dst: NAME_B, frame: eth }, { src: NAME_A, dst: NAME_B, frame: heartbeatFrame(77n) }])),
    encodeDatagram(NAME_A, encodeFrames([{ src: NAME_A, dst: NAME_B, frame: new Uint8Array(1400) }])),
  ];
}

/** Frames a container sends: IGMPv3 and MLDv2 reports, an ARP request, IPv4 UDP with and without DF, larger than the MTU. */
function containerFrames(): { igmp: Uint8Array; mld: Uint8Array; arp: Uint8Array; udpDF: Uint8Array; udp: Uint8Array } {
  const eth = (dst: number[], ethertype: number, payload: number[] | Uint8Array): Uint8Array =>
    Uint8Array.from([...dst, 2, 0, 0, 0, 0, 1, ethertype >> 8, ethertype & 0xff, ...payload]);
  const ipv4 = (proto: number, options: number[], payload: Uint8Array, df: boolean): number[] => {
    const ihl = 20 + options.length;
    const total = ihl + payload.length;
    return [0x40 | (ihl / 4), 0, total >> 8, total & 0xff, 0, 1, df ? 0x40 : 0, 0, 64, proto, 0, 0, 10, 32, 0, 1, 10, 32, 0, 2, ...options, ...payload];
  };
  const routerAlert = [0x94, 0x04, 0, 0];
  const igmp = eth([0x01, 0x00, 0x5e, 0, 0, 0x16], 0x0800, ipv4(2, routerAlert, Uint8Array.from([0x22, 0, 0, 0, 0, 0, 0, 0]), false));
  const ipv6Hdr = (nextHeader: number, payloadLen: number): number[] => [0x60, 0, 0, 0, 0, payloadLen, nextHeader, 1, ...new Array<number>(32).fill(0)];
  const mld = eth([0x33, 0x33, 0, 0, 0, 0x16], 0x86dd, [...ipv6Hdr(0, 36), 58, 0, 5, 2, 0, 0, 1, 0, 143, 0, 0, 0, 0, 0, 0, 1, ...new Array<number>(20).fill(0)]);
  const arp = eth([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0x0806, [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 32, 0, 1, 0, 0, 0, 0, 0, 0, 10, 32, 0, 2]);
  const datagram = new Uint8Array(1472).map((_, i) => i & 0xff);
  const unicast = [0x02, 0, 0, 0, 0, 2];
  return { igmp, mld, arp, udpDF: eth(unicast, 0x0800, ipv4(17, [], datagram, true)), udp: eth(unicast, 0x0800, ipv4(17, [], datagram, false)) };
}

/** The overlay MTU the fuzzed frames are cut to (Weave's floor for the sleeve is 552). */
const FUZZ_MTU = 576;

/**
 * What the router does with a frame a container sends into the sleeve: the
 * keeper's look at it while the worker is parked, the worker's MAC reads, and
 * the connection's fragmentation or ICMP reply for a packet over the MTU. The
 * fragments must carry the packet's payload whole and fit the MTU, and the
 * ICMP reply must have valid checksums, whatever the header claims.
 */
function runCapturedFrame(frame: Uint8Array): void {
  isLinkAnnouncement(frame);
  describeFrame(frame);
  if (frame.length >= ETHERNET_HEADER_SIZE) {
    dstMac(frame);
    srcMac(frame);
    isMulticastMac(frame);
    isStpFrame(frame);
  }
  if (isIPv4DF(frame)) {
    const reply = icmpFragNeeded(frame, FUZZ_MTU);
    if (!reply) throw new Error('no ICMP reply for an IPv4 DF frame');
    if (internetChecksum(reply, ETHERNET_HEADER_SIZE, ETHERNET_HEADER_SIZE + 20) !== 0) throw new Error('ICMP reply: bad IP header checksum');
    if (internetChecksum(reply, ETHERNET_HEADER_SIZE + 20, reply.length) !== 0) throw new Error('ICMP reply: bad ICMP checksum');
    return;
  }
  const fragments = fragmentIPv4(frame, FUZZ_MTU);
  let carried = 0;
  for (const f of fragments) {
    if (f.length > ETHERNET_HEADER_SIZE + FUZZ_MTU) throw new Error(`a ${f.length}-byte fragment exceeds the MTU`);
    const ihl = (f[ETHERNET_HEADER_SIZE]! & 0x0f) * 4;
    if (internetChecksum(f, ETHERNET_HEADER_SIZE, ETHERNET_HEADER_SIZE + ihl) !== 0) throw new Error('fragment: bad IP header checksum');
    carried += f.length - ETHERNET_HEADER_SIZE - ihl;
  }
  if (fragments.length > 0) {
    const ihl = (frame[ETHERNET_HEADER_SIZE]! & 0x0f) * 4;
    const claimed = (frame[ETHERNET_HEADER_SIZE + 2]! << 8) | frame[ETHERNET_HEADER_SIZE + 3]!;
    const payload = Math.max(0, Math.min(claimed, frame.length - ETHERNET_HEADER_SIZE) - ihl);
    if (carried !== payload) throw new Error(`fragments carry ${carried} of the packet's ${payload} payload bytes`);
  }
}

/**
 * ovs_packet messages as the kernel sends them up (genl header, ovs_header,
 * attributes): a miss from a local port, a miss from the VXLAN vport with its
 * tunnel key, and a userspace action's upcall with userdata.
 */
function upcallSeeds(): Uint8Array[] {
  const { arp } = containerFrames();
  const upcall = (cmd: number, key: Parameters<typeof encodeFlowKey>[0], userdata?: Uint8Array): Uint8Array => {
    const ovsHeader = Buffer.alloc(4);
    ovsHeader.writeInt32LE(7, 0);
    const attrs = new AttributeWriter().bytes(OVS_PACKET_ATTR_PACKET, arp).bytes(OVS_PACKET_ATTR_KEY, encodeFlowKey(key));
    if (userdata) attrs.bytes(OVS_PACKET_ATTR_USERDATA, userdata);
    return Buffer.concat([encodeGenlHeader(cmd, 1), ovsHeader, attrs.build()]);
  };
  const ethernet = { src: '02:00:00:00:00:01', dst: 'ff:ff:ff:ff:ff:ff' };
  return [
    upcall(OVS_PACKET_CMD_MISS, { priority: 0, inPort: 2, ethernet, ethertype: 0x0806, skbMark: 0, recircId: 0, dpHash: 0 }),
    upcall(OVS_PACKET_CMD_MISS, { inPort: 1, ethernet, ethertype: 0x0806, tunnel: { id: weaveTunnelId(3, 5), ipv4Src: '192.168.1.2', ipv4Dst: '192.168.1.1', tos: 0, ttl: 64, dontFragment: true, tpSrc: 40000, tpDst: 6784 } }),
    upcall(OVS_PACKET_CMD_ACTION, { inPort: 3, ethernet, ethertype: 0x0800 }, Uint8Array.from([1, 2, 3, 4])),
  ];
}

/** The generic netlink family id the kernel gave ovs_packet (any: decodeUpcall does not look at it). */
const OVS_PACKET_FAMILY = 0x20;

// ---- targets ----

function bytesTarget(name: string, seeds: Uint8Array[], run: (b: Uint8Array) => void, ...expected: ErrorClass[]): FuzzTarget<Uint8Array> {
  return { name, input: mutated(seeds), run, expected, lengthPrefixed: { seeds, input: (b) => b } };
}

/** A stand-in for the TCP socket the handshake reads: the fuzzed bytes arrive in chunks, then EOF. */
class ScriptedSocket extends EventEmitter {
  destroyed = false;
  readyState = 'open';
  remoteAddress = '10.0.0.9';
  remotePort = 40000;
  localAddress = '10.0.0.1';
  localPort = 6783;
  write(): boolean { return true; }
  pause(): this { return this; }
  resume(): this { return this; }
  setNoDelay(): this { return this; }
  destroy(): this { this.destroyed = true; return this; }
  resetAndDestroy(): this { return this.destroy(); }
}

async function handshakeWith(bytes: Uint8Array, password: Uint8Array | undefined, chunk: number): Promise<void> {
  const socket = new ScriptedSocket();
  const done = performHandshake(socket as unknown as Socket, {
    identity: { name: NAME_B, nickName: 'beta', uid: 5n, shortId: 9 },
    outbound: false, trustedRemote: false, overlays: ['sleeve'],
    ...(password ? { password } : {}),
    timeouts: { headerMs: 1_000, readMs: 1_000 },
  });
  for (let i = 0; i < bytes.length; i += chunk) socket.emit('data', Buffer.from(bytes.subarray(i, i + chunk)));
  socket.emit('end');
  const { link } = await done;
  link.close();
}

function handshakeSeeds(): Uint8Array[] {
  const v2 = Uint8Array.from([...encodeHeader({ min: 1, max: 2 }), 0x00, ...encodeFrame(features)]);
  const enc = new GobEncoder();
  enc.encode(featuresGobType, new Map([['PeerNameFlavour', 'mac'], ['Name', '8a:3e:3e:3e:3e:3e'], ['NickName', 'alpha'], ['UID', '9'], ['ConnID', '4']]) as Map<GobValue, GobValue>);
  const v1 = Uint8Array.from([...encodeHeader({ min: 1, max: 1 }), ...enc.takeBytes()]);
  const v2enc = Uint8Array.from([...encodeHeader({ min: 1, max: 2 }), 0x01, ...new Uint8Array(32).fill(7), ...encodeFrame(new Uint8Array(120))]);
  return [v2, v1, v2enc];
}

/** A journal as the store writes it: a header and two changed entries. */
function dnsJournalSeed(ourName: bigint): string {
  const dir = mkdtempSync(join(tmpdir(), 'weave-fuzz-dns-'));
  try {
    const store = new FileDnsEntryStore(dir, ourName);
    const web = { containerId: '/run/netns/c1', origin: ourName, addr: 0x0a200001, hostname: 'web.weave.local.', version: 0, tombstone: 0 };
    store.save([]);
    store.record([web], () => [web]);
    store.record([{ ...web, version: 1, tombstone: 1_700_000_000 }], () => [web]);
    return readFileSync(store.journalPath, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ipamAllocator(): Allocator {
  return new Allocator({
    name: NAME_A, uid: 1n, nickname: 'alpha', universe, init: { mode: 'seed', seeds: [NAME_A, NAME_B] },
    isKnownPeer: () => true, codec: gobStreamCodec, random: () => 0.5,
  });
}

function fakeStatus(): RouterStatus {
  return {
    ready: true, protocolMinVersion: 1, protocolMaxVersion: 2, encryption: false, peerDiscovery: true,
    name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', port: 6783,
    peers: [{ name: '8a:3e:3e:3e:3e:3e', nickName: 'host1', uid: 1n, shortId: 7, version: 1n, connections: [] }],
    unicastRoutes: [], broadcastRoutes: [], connections: [], terminationCount: 0, targets: [], trustedSubnets: [],
    interface: 'none', overlayDiagnostics: {},
  };
}

interface HttpInput { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; contentType: string; body: string }

const segment = fc.oneof(
  fc.constantFrom('c1', 'weave:extern', '10.32.0.5', '10.32.0.0', '24', '32', '0', '-1', '99999999999999999999', '8a:3e:3e:3e:3e:3e',
    '%00', '%ff', '%2F', '..', '', 'web.weave.local.', '::1', '10.32.0.5%2F12', 'true'),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.stringMatching(/^[0-9.:a-fA-F%/]{0,20}$/),
);

function httpInputs(): fc.Arbitrary<HttpInput> {
  const route = fc.constantFrom('ip', 'name', 'peer', 'connect', 'forget', 'expose', 'status', 'report', 'ring', 'ipinfo', 'metrics', 'domain');
  const path = fc.tuple(route, fc.array(segment, { maxLength: 3 })).map(([r, rest]) => `/${[r, ...rest].join('/')}`);
  const query = fc.array(fc.tuple(fc.constantFrom('fqdn', 'check-alive', 'peer', 'format', 'replace', 'x'), segment), { maxLength: 3 })
    .map((kv) => (kv.length === 0 ? '' : `?${kv.map(([k, v]) => `${k}=${v}`).join('&')}`));
  const body = fc.oneof(
    fc.constant(''),
    fc.array(fc.tuple(fc.constantFrom('peer', 'fqdn', 'replace', 'check-alive'), segment), { maxLength: 4 })
      .map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('&')),
    fc.string({ maxLength: 80 }),
  );
  return fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    url: fc.tuple(path, query).map(([p, q]) => p + q),
    contentType: fc.constantFrom('application/x-www-form-urlencoded', 'text/plain', 'application/json', ''),
    body,
  });
}

/** HTTP API bodies and params: every request gets an answer below 500 (a 500 is an unhandled error). */
async function httpTarget(): Promise<FuzzTarget<HttpInput>> {
  const targets: string[] = [];
  const app: HttpApi = buildApiServer({
    router: { status: fakeStatus, port: () => 6783, connect: (p) => { targets.push(...p); }, forget: () => {} },
    version: '2.8.1',
    registerControlRoutes: (a) => registerIpamRoutes(a, ipamAllocator(), { tracker: '' }),
  }, 'control');
  return {
    name: 'http-api',
    input: httpInputs(),
    expected: [],
    async run(req) {
      // `weave rmpeer` of ourselves (DELETE /peer) is a valid command that stops IPAM for good; keep it serving.
      if (req.method === 'DELETE' && /^\/peer\/*(\?|$)/.test(req.url)) return;
      const res = await app.inject({
        method: req.method, url: req.url, payload: req.body,
        headers: req.contentType === '' ? {} : { 'content-type': req.contentType },
      });
      if (res.statusCode >= 500 && res.statusCode !== 503) throw new Error(`HTTP ${res.statusCode} for ${req.method} ${req.url}: ${res.body.slice(0, 200)}`);
      if (targets.length > 10_000) targets.length = 0;
    },
    close: () => app.close(),
  };
}

export interface FuzzSuite {
  targets: FuzzTarget[];
  /** Frees the servers and timers the targets hold. */
  close(): Promise<void>;
}

/** Every decoder target. */
export async function fuzzTargets(): Promise<FuzzSuite> {
  const allocator = ipamAllocator();
  const nameserver = new Nameserver({ ourName: NAME_A, isKnownPeer: () => true, now: () => 1_700_000_100 });
  const dnsGossiper = new NameserverGossiper(nameserver);
  nameserver.add('web.weave.local.', 'c9', 0x0a200009);
  const dnsServer = new DnsServer({ names: nameserver, listenAddress: '127.0.0.1:0' });
  const key = new Uint8Array(32).fill(42);
  const sealer = new SleeveSealer(key, true);
  const sealedBodies = [false, true, false].map((df) => sealer.seal(encodeFrames([{ src: NAME_A, dst: NAME_B, frame: new Uint8Array(60).fill(1) }]), df));
  const validQuery = Buffer.from(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'web.weave.local' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }));
  const ptrQuery = Buffer.from(dnsPacket.encode({ type: 'query', id: 8, questions: [{ type: 'PTR', name: '9.0.32.10.in-addr.arpa' }] }));
  const ipamFile = new TextEncoder().encode(serialiseIpam({
    peerName: NAME_A, range: { start: U, end: U + 2 ** 20 },
    ring: { ...ipamState.ring },
    allocations: [{ ident: 'c1', addrs: [{ addr: U + 1, prefixLen: 12 }] }],
  }));
  const dnsFile = new TextEncoder().encode(serialiseDnsEntries(NAME_A, [
    { containerId: '/run/netns/c1', origin: NAME_A, addr: 0x0a200001, hostname: 'web.weave.local.', version: 2, tombstone: 0 },
    { containerId: 'weave:extern', origin: NAME_A, addr: 0xc0000207, hostname: 'ext.weave.local.', version: 0, tombstone: 1_700_000_000 },
  ]));
  const dnsJournal = new TextEncoder().encode(dnsJournalSeed(NAME_A));
  const utf8 = new TextDecoder();
  const json = jsonFuzzTargets();
  const framingSeeds = [encodeFrame(envelopes[0]!), Uint8Array.from([...encodeFrame(Uint8Array.of(0)), ...encodeFrame(topology)])];
  const gobSeeds = [topology, features, ipamSeeds.gossip[0]!, dnsSeeds[0]!];

  const targets: FuzzTarget[] = [
    bytesTarget('handshake-header', [encodeHeader({ min: 1, max: 2 })], (b) => {
      negotiateVersion({ min: 1, max: 2 }, parseHeader(b));
    }, WireDecodeError, HandshakeError),
    {
      name: 'handshake-stream',
      input: fc.tuple(mutated(handshakeSeeds()), fc.boolean(), fc.integer({ min: 1, max: 64 })),
      run: ([b, encrypted, chunk]) => handshakeWith(b, encrypted ? new TextEncoder().encode('secret') : undefined, chunk),
      expected: [HandshakeError],
      lengthPrefixed: { seeds: handshakeSeeds(), input: (b) => [b, b[8] === 1, 64] },
    } satisfies FuzzTarget<[Uint8Array, boolean, number]>,
    bytesTarget('features', [features], (b) => { parseFeatures(decodeFeatures(b)); }, WireDecodeError),
    {
      name: 'framing',
      input: fc.tuple(mutated(framingSeeds), fc.integer({ min: 1, max: 40 })),
      run: ([b, step]) => {
        const p = new FrameParser();
        for (let i = 0; i < b.length; i += step) p.push(b.subarray(i, i + step));
        if (p.pendingBytes > b.length) throw new Error(`parser holds ${p.pendingBytes} bytes of a ${b.length}-byte input`);
      },
      expected: [WireDecodeError],
      lengthPrefixed: { seeds: framingSeeds, input: (b) => [b, 40] },
    } satisfies FuzzTarget<[Uint8Array, number]>,
    {
      name: 'gob-stream',
      input: fc.tuple(mutated(gobSeeds), fc.integer({ min: 1, max: 64 })),
      run: ([b, step]) => {
        const dec = new GobDecoder();
        for (let i = 0; i < b.length; i += step) dec.push(b.subarray(i, i + step));
        dec.end();
      },
      expected: [GobDecodeError],
      lengthPrefixed: { seeds: gobSeeds, input: (b) => [b, 64] },
    } satisfies FuzzTarget<[Uint8Array, number]>,
    bytesTarget('gossip-envelope', envelopes, (b) => { decodeGossipMessage(b); }, WireDecodeError),
    bytesTarget('topology', [topology], (b) => { decodeTopology(b); }, WireDecodeError),
    bytesTarget('ipam-gossip', ipamSeeds.gossip, (b) => {
      // As the mesh delivers it: tag 4 and tag 6 both go through the allocator's merge.
      allocator.onGossip(b);
      allocator.onGossipBroadcast(NAME_B, b);
    }, IpamMessageError, IpamError, RingMergeError),
    bytesTarget('ipam-unicast', ipamSeeds.unicast, (b) => { allocator.onGossipUnicast(NAME_B, b); }, IpamMessageError, IpamError, RingMergeError),
    bytesTarget('dns-gossip', dnsSeeds, (b) => {
      dnsGossiper.onGossip(b);
      dnsGossiper.onGossipBroadcast(NAME_B, b);
    }, DnsGossipError),
    bytesTarget('sleeve-datagram', sleeveSeeds(), (b) => {
      const { body } = decodeDatagram(b);
      for (const f of decodeFrames(body).frames) classifySpecialFrame(f.frame);
    }, SleeveDecodeError),
    bytesTarget('sleeve-encrypted', sealedBodies, (b) => {
      // A fresh opener each time: a forged body must fail authentication, never decode.
      const opened = new SleeveOpener(key, true).open(b);
      if (!sealedBodies.some((s) => Buffer.compare(Buffer.from(s), Buffer.from(b)) === 0)) {
        throw new Error(`forged body of ${b.length} bytes opened as #${opened.seq}`);
      }
    }, SleeveCryptoError),
    bytesTarget('captured-frame', Object.values(containerFrames()), runCapturedFrame),
    bytesTarget('ovs-upcall', upcallSeeds(), (b) => {
      decodeUpcall({ type: OVS_PACKET_FAMILY, flags: 0, seq: 0, pid: 0, payload: Buffer.from(b) });
    }, MalformedOdpError),
    bytesTarget('sleeve-control', [encodeSleeveControl({ type: 'PMTUVerified', mtu: 1400 }), encodeSleeveControl({ type: 'ConnectionEstablished' })],
      (b) => { decodeSleeveControl(b); }, SleeveDecodeError),
    bytesTarget('fastdp-heartbeat', [encodeHeartbeat(99n, 1410), encodeHeartbeat(1n, 10)], (b) => { parseHeartbeat(Buffer.from(b)); }),
    {
      name: 'dns-query',
      input: mutated([validQuery, ptrQuery]),
      expected: [],
      lengthPrefixed: { seeds: [validQuery, ptrQuery], input: (b) => b },
      async run(b) {
        const reply = await dnsServer.handle(Buffer.from(b), 'udp');
        if (reply) dnsPacket.decode(reply);
      },
    } satisfies FuzzTarget<Uint8Array>,
    bytesTarget('state-ipam-file', [ipamFile], (b) => { parseIpam(utf8.decode(b)); }, SyntaxError, StateFileProblem),
    bytesTarget('state-dns-file', [dnsFile], (b) => { parseDnsEntries(utf8.decode(b), NAME_A); }, SyntaxError, StateFileProblem),
    bytesTarget('state-dns-journal', [dnsJournal], (b) => { parseDnsJournal(utf8.decode(b), NAME_A); }, SyntaxError, StateFileProblem),
    {
      name: 'state-peer-files',
      input: seeded(fc.oneof(fc.string({ maxLength: 40 }), fc.json({ maxDepth: 2 })), '["10.0.0.2","host2:6783"]', '8a:3e:3e:3e:3e:3e'),
      run: (text: string) => {
        try { parsePeerName(text); } catch (err) { if (!(err instanceof StateFileProblem)) throw err; }
        parseTargets(text, '/var/lib/weave/peers.json');
      },
      expected: [StateFileProblem],
    } satisfies FuzzTarget<string>,
    await httpTarget(),
    ...json.targets,
  ];
  return { targets, close: async () => { for (const t of targets) await t.close?.(); await dnsServer.stop(); json.close(); } };
}


export interface FuzzReport {
  name: string;
  inputs: number;
  /** The first crashes found (at most `keepCrashes`), and how many there were in all. */
  crashes: FuzzCrash[];
  crashCount: number;
  ms: number;
}

const BATCH = 2_000;

/**
 * Feeds `count` generated inputs to a target, in batches drawn from `seed`;
 * with `budgetMs`, stops after the batch that runs past it.
 */
export async function fuzzTarget(target: FuzzTarget, count: number, seed: number, keepCrashes = 5, budgetMs = Infinity): Promise<FuzzReport> {
  const report: FuzzReport = { name: target.name, inputs: 0, crashes: [], crashCount: 0, ms: 0 };
  const start = performance.now();
  for (let batch = 0; report.inputs < count && performance.now() - start < budgetMs; batch++) {
    const inputs = fc.sample(target.input, { numRuns: Math.min(BATCH, count - report.inputs), seed: seed + batch });
    for (const input of inputs) {
      const crash = await fuzzOne(target, input);
      report.inputs++;
      if (!crash) continue;
      report.crashCount++;
      if (report.crashes.length < keepCrashes) report.crashes.push(crash);
    }
  }
  report.ms = performance.now() - start;
  return report;
}
