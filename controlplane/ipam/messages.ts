// IPAM gossip messages (spec §8.2): the `gossipState` payload carried by tags
// 4 and 6, and the unicast forms `kind byte | gob stream` carried by tag 5.
// This module maps them to and from gob values; the byte codec is injected.
import type { GobType, GobValue, GobStruct, GobMap } from '../mesh/gob/types.js';
import type { Range } from './addr.js';
import type { PeerName, RingEntry, RingSnapshot } from './ring.js';
import type { NodeClaims, NodeID, PaxosState, ProposalID } from './paxos.js';
import { nodeKey } from './paxos.js';
import { gossipStateType, rangeType } from './gob-types.js';

/** Decoded `gossipState` (spec §8.2). */
export interface GossipStateMessage {
  /** Sender's unix time in seconds; informational. */
  now: bigint;
  nicknames: Map<PeerName, string>;
  /** Present only while the sender has no ring and is an elector. */
  paxos?: PaxosState;
  /** Present only when the sender has a ring. */
  ring?: RingSnapshot;
}

/** Unicast kinds (spec §8.2). */
export const UnicastKind = { SpaceRequest: 0, RingUpdate: 1, SpaceRequestDenied: 2 } as const;

export type UnicastMessage =
  | { kind: 'spaceRequest'; range: Range }
  | { kind: 'ringUpdate'; state: GossipStateMessage }
  | { kind: 'spaceRequestDenied'; range: Range };

/** The gob byte codec this module needs (one stream per payload, spec §1.8). */
export interface GobStreamCodec {
  encode(type: GobType, value: GobValue): Uint8Array;
  decode(bytes: Uint8Array): GobValue[];
}

export class IpamMessageError extends Error {
  constructor(message: string) { super(`IPAM message: ${message}`); this.name = 'IpamMessageError'; }
}

// ---- to gob values ----

function nodeIDValue(id: NodeID): GobStruct { return { Name: id.name, UID: id.uid }; }
function proposalValue(p: ProposalID): GobStruct { return { Round: p.round, Proposer: nodeIDValue(p.proposer) }; }
function claimsValue(c: NodeClaims): GobStruct {
  return {
    Promise: proposalValue(c.promise),
    Accepted: proposalValue(c.accepted),
    AcceptedVal: { Value: c.acceptedVal.value.length > 0 ? [...c.acceptedVal.value] : undefined, Origin: proposalValue(c.acceptedVal.origin) },
  };
}

export function ringValue(r: RingSnapshot): GobStruct {
  return {
    Start: BigInt(r.start),
    End: BigInt(r.end),
    Peer: r.peer,
    Entries: r.entries.length > 0
      ? r.entries.map((e): GobStruct => ({ Token: BigInt(e.token), Peer: e.peer, Version: BigInt(e.version), Free: BigInt(e.free) }))
      : undefined,
    Seeds: r.seeds.length > 0 ? [...r.seeds] : undefined,
  };
}

export function gossipStateValue(s: GossipStateMessage): GobStruct {
  const nicknames: GobMap = new Map();
  for (const [name, nick] of s.nicknames) nicknames.set(name, nick);
  let paxos: GobMap | undefined;
  if (s.paxos && s.paxos.size > 0) {
    paxos = new Map();
    for (const { id, claims } of s.paxos.values()) paxos.set(nodeIDValue(id), claimsValue(claims));
  }
  return {
    Now: s.now,
    Nicknames: nicknames.size > 0 ? nicknames : undefined,
    Paxos: paxos,
    Ring: s.ring ? ringValue(s.ring) : undefined,
  };
}

export function rangeValue(r: Range): GobStruct { return { Start: BigInt(r.start), End: BigInt(r.end) }; }

// ---- from gob values (absent fields are zero, spec §1.8.5) ----

function asStruct(v: GobValue | undefined, what: string): GobStruct {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v instanceof Uint8Array || Array.isArray(v) || v instanceof Map) {
    throw new IpamMessageError(`${what} is not a struct`);
  }
  return v;
}

function asUint(v: GobValue | undefined, what: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint' || v < 0n) throw new IpamMessageError(`${what} is not an unsigned integer`);
  return v;
}

function asInt(v: GobValue | undefined, what: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint') throw new IpamMessageError(`${what} is not an integer`);
  return v;
}

function asNumber(v: GobValue | undefined, what: string, max: number): number {
  const n = asUint(v, what);
  if (n > BigInt(max)) throw new IpamMessageError(`${what} ${n} is out of range (max ${max})`);
  return Number(n);
}

function asList(v: GobValue | undefined, what: string): GobValue[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new IpamMessageError(`${what} is not a list`);
  return v;
}

function asMap(v: GobValue | undefined, what: string): GobMap {
  if (v === undefined) return new Map();
  if (!(v instanceof Map)) throw new IpamMessageError(`${what} is not a map`);
  return v;
}

const ADDR_END = 2 ** 32;
const U32 = 2 ** 32 - 1;

function nodeIDFrom(v: GobValue | undefined): NodeID {
  const s = asStruct(v, 'NodeID');
  return { name: asUint(s.Name, 'NodeID.Name'), uid: asUint(s.UID, 'NodeID.UID') };
}
function proposalFrom(v: GobValue | undefined): ProposalID {
  const s = asStruct(v, 'ProposalID');
  return { round: asUint(s.Round, 'ProposalID.Round'), proposer: nodeIDFrom(s.Proposer) };
}
function claimsFrom(v: GobValue | undefined): NodeClaims {
  const s = asStruct(v, 'NodeClaims');
  const av = asStruct(s.AcceptedVal, 'AcceptedValue');
  return {
    promise: proposalFrom(s.Promise),
    accepted: proposalFrom(s.Accepted),
    acceptedVal: { value: asList(av.Value, 'AcceptedValue.Value').map((x) => asUint(x, 'Value element')), origin: proposalFrom(av.Origin) },
  };
}

export function ringFrom(v: GobValue | undefined): RingSnapshot {
  const s = asStruct(v, 'Ring');
  const entries = asList(s.Entries, 'Ring.Entries').map((ev): RingEntry => {
    const e = asStruct(ev, 'entry');
    return {
      token: asNumber(e.Token, 'entry.Token', U32),
      peer: asUint(e.Peer, 'entry.Peer'),
      version: asNumber(e.Version, 'entry.Version', U32),
      free: asNumber(e.Free, 'entry.Free', ADDR_END),
    };
  });
  return {
    start: asNumber(s.Start, 'Ring.Start', U32),
    end: asNumber(s.End, 'Ring.End', ADDR_END),
    peer: asUint(s.Peer, 'Ring.Peer'),
    entries,
    seeds: asList(s.Seeds, 'Ring.Seeds').map((x) => asUint(x, 'Ring.Seeds element')),
  };
}

export function gossipStateFrom(v: GobValue | undefined): GossipStateMessage {
  const s = asStruct(v, 'gossipState');
  const nicknames = new Map<PeerName, string>();
  for (const [k, nick] of asMap(s.Nicknames, 'gossipState.Nicknames')) {
    if (typeof nick !== 'string') throw new IpamMessageError('gossipState.Nicknames value is not a string');
    nicknames.set(asUint(k, 'gossipState.Nicknames key'), nick);
  }
  const msg: GossipStateMessage = { now: asInt(s.Now, 'gossipState.Now'), nicknames };
  if (s.Paxos !== undefined) {
    const paxos: PaxosState = new Map();
    for (const [k, c] of asMap(s.Paxos, 'gossipState.Paxos')) {
      const id = nodeIDFrom(k);
      paxos.set(nodeKey(id), { id, claims: claimsFrom(c) });
    }
    if (paxos.size > 0) msg.paxos = paxos;
  }
  if (s.Ring !== undefined) msg.ring = ringFrom(s.Ring);
  return msg;
}

export function rangeFrom(v: GobValue | undefined): Range {
  const s = asStruct(v, 'Range');
  const range = { start: asNumber(s.Start, 'Range.Start', U32), end: asNumber(s.End, 'Range.End', ADDR_END) };
  if (!(range.start < range.end)) throw new IpamMessageError(`Range ${range.start}-${range.end} is empty`);
  return range;
}

// ---- bytes ----

function single(codec: GobStreamCodec, bytes: Uint8Array, what: string): GobValue {
  let values: GobValue[];
  try {
    values = codec.decode(bytes);
  } catch (err) {
    throw new IpamMessageError(`cannot decode ${what}: ${(err as Error).message}`);
  }
  if (values.length < 1) throw new IpamMessageError(`${what} payload holds no value`);
  return values[0]!;
}

export function encodeGossipState(codec: GobStreamCodec, s: GossipStateMessage): Uint8Array {
  return codec.encode(gossipStateType, gossipStateValue(s));
}

export function decodeGossipState(codec: GobStreamCodec, bytes: Uint8Array): GossipStateMessage {
  return gossipStateFrom(single(codec, bytes, 'gossipState'));
}

export function encodeUnicast(codec: GobStreamCodec, m: UnicastMessage): Uint8Array {
  const [kind, body] = m.kind === 'ringUpdate'
    ? [UnicastKind.RingUpdate, codec.encode(gossipStateType, gossipStateValue(m.state))]
    : [m.kind === 'spaceRequest' ? UnicastKind.SpaceRequest : UnicastKind.SpaceRequestDenied, codec.encode(rangeType, rangeValue(m.range))];
  const out = new Uint8Array(1 + body.length);
  out[0] = kind;
  out.set(body, 1);
  return out;
}

export function decodeUnicast(codec: GobStreamCodec, payload: Uint8Array): UnicastMessage {
  if (payload.length < 1) throw new IpamMessageError('empty unicast payload');
  const body = payload.subarray(1);
  switch (payload[0]) {
    case UnicastKind.SpaceRequest: return { kind: 'spaceRequest', range: rangeFrom(single(codec, body, 'SpaceRequest')) };
    case UnicastKind.RingUpdate: return { kind: 'ringUpdate', state: decodeGossipState(codec, body) };
    case UnicastKind.SpaceRequestDenied: return { kind: 'spaceRequestDenied', range: rangeFrom(single(codec, body, 'SpaceRequestDenied')) };
    default: throw new IpamMessageError(`unknown unicast kind ${payload[0]} (expected 0, 1 or 2)`);
  }
}
