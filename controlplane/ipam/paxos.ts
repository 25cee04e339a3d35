// Paxos among the initial peers to agree on who the ring is first split
// between (spec §8.6). Each node gossips every claim it knows; consensus is an
// accepted value whose origin a quorum of nodes has accepted.
import type { PeerName } from './ring.js';

export interface NodeID { name: PeerName; uid: bigint }
/** Round 0 means "no proposal" (spec §8.6). */
export interface ProposalID { round: bigint; proposer: NodeID }
export interface AcceptedValue { value: PeerName[]; origin: ProposalID }
export interface NodeClaims { promise: ProposalID; accepted: ProposalID; acceptedVal: AcceptedValue }
/** All claims a node knows, keyed by `nodeKey` (spec §8.6 GossipState). */
export type PaxosState = Map<string, { id: NodeID; claims: NodeClaims }>;

export const NO_PROPOSAL: ProposalID = { round: 0n, proposer: { name: 0n, uid: 0n } };

export function nodeKey(id: NodeID): string { return `${id.name}/${id.uid}`; }

export function isValidProposal(p: ProposalID): boolean { return p.round > 0n; }

/** Ordered by (Round, Proposer.Name, Proposer.UID) (spec §8.6). */
export function proposalPrecedes(a: ProposalID, b: ProposalID): boolean {
  if (a.round !== b.round) return a.round < b.round;
  if (a.proposer.name !== b.proposer.name) return a.proposer.name < b.proposer.name;
  return a.proposer.uid < b.proposer.uid;
}

export function proposalEquals(a: ProposalID, b: ProposalID): boolean {
  return a.round === b.round && a.proposer.name === b.proposer.name && a.proposer.uid === b.proposer.uid;
}

function emptyClaims(): NodeClaims {
  return { promise: NO_PROPOSAL, accepted: NO_PROPOSAL, acceptedVal: { value: [], origin: NO_PROPOSAL } };
}

function copyClaims(c: NodeClaims): NodeClaims {
  return { promise: c.promise, accepted: c.accepted, acceptedVal: { value: [...c.acceptedVal.value], origin: c.acceptedVal.origin } };
}

/** One elector's view of the election. */
export class PaxosNode {
  private readonly knows: PaxosState = new Map();
  readonly id: NodeID;

  constructor(name: PeerName, uid: bigint, public quorum: number) {
    this.id = { name, uid };
    this.knows.set(nodeKey(this.id), { id: this.id, claims: emptyClaims() });
  }

  get knownNodes(): number { return this.knows.size; }

  /** Everything we know, for gossip. */
  state(): PaxosState {
    const out: PaxosState = new Map();
    for (const [k, v] of this.knows) out.set(k, { id: v.id, claims: copyClaims(v.claims) });
    return out;
  }

  private ours(): NodeClaims { return this.knows.get(nodeKey(this.id))!.claims; }

  /** Whether we have promised some proposal, i.e. an election is under way. */
  hasPromised(): boolean { return isValidProposal(this.ours().promise); }

  /** Propose: a promise one round above anything seen, from ourselves (spec §8.6). */
  propose(): void {
    let maxRound = 0n;
    for (const { claims } of this.knows.values()) {
      if (claims.promise.round > maxRound) maxRound = claims.promise.round;
      if (claims.accepted.round > maxRound) maxRound = claims.accepted.round;
    }
    this.ours().promise = { round: maxRound + 1n, proposer: this.id };
  }

  /** Merge received claims; true if anything we know changed. */
  update(received: PaxosState): boolean {
    let changed = false;
    for (const [key, { id, claims }] of received) {
      const known = this.knows.get(key);
      if (!known) { this.knows.set(key, { id, claims: copyClaims(claims) }); changed = true; continue; }
      if (key === nodeKey(this.id)) continue; // only we change our own claims
      if (proposalPrecedes(known.claims.promise, claims.promise)) { known.claims.promise = claims.promise; changed = true; }
      if (proposalPrecedes(known.claims.accepted, claims.accepted)) {
        known.claims.accepted = claims.accepted;
        known.claims.acceptedVal = { value: [...claims.acceptedVal.value], origin: claims.acceptedVal.origin };
        changed = true;
      }
    }
    return changed;
  }

  /** One step of the protocol (spec §8.6 Think); true if our claims changed. */
  think(): boolean {
    const ours = this.ours();
    const before = JSON.stringify(ours, bigintReplacer);
    // Proposer: with a quorum of promises for our proposal, accept a value.
    if (isValidProposal(ours.promise) && ours.promise.proposer.name === this.id.name && ours.promise.proposer.uid === this.id.uid) {
      let promises = 0;
      let latest: { accepted: ProposalID; val: AcceptedValue } | undefined;
      for (const { claims } of this.knows.values()) {
        if (!proposalEquals(claims.promise, ours.promise)) continue;
        promises++;
        if (isValidProposal(claims.accepted) && (!latest || proposalPrecedes(latest.accepted, claims.accepted))) {
          latest = { accepted: claims.accepted, val: claims.acceptedVal };
        }
      }
      if (promises >= this.quorum && !proposalEquals(ours.accepted, ours.promise)) {
        ours.accepted = ours.promise;
        ours.acceptedVal = latest
          ? { value: [...latest.val.value], origin: latest.val.origin }
          : { value: [...this.knows.values()].map((k) => k.id.name), origin: ours.promise };
      }
    }
    // Promise the latest proposal known.
    for (const { claims } of this.knows.values()) {
      if (proposalPrecedes(ours.promise, claims.promise)) ours.promise = claims.promise;
    }
    // Accept a value already accepted under the proposal we promised.
    for (const { claims } of this.knows.values()) {
      if (isValidProposal(claims.accepted) && proposalEquals(claims.accepted, ours.promise) && !proposalEquals(ours.accepted, claims.accepted)) {
        ours.accepted = claims.accepted;
        ours.acceptedVal = { value: [...claims.acceptedVal.value], origin: claims.acceptedVal.origin };
      }
    }
    return JSON.stringify(ours, bigintReplacer) !== before;
  }

  /** The agreed value once a quorum accepted the same origin (spec §8.6). */
  consensus(): AcceptedValue | undefined {
    const counts = new Map<string, number>();
    for (const { claims } of this.knows.values()) {
      if (!isValidProposal(claims.accepted)) continue;
      const o = claims.acceptedVal.origin;
      const key = `${o.round}/${o.proposer.name}/${o.proposer.uid}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n >= this.quorum) return claims.acceptedVal;
    }
    return undefined;
  }
}

function bigintReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
