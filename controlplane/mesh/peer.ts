// One peer's record as known locally (spec §4.5): identity, the version of
// its own record, its short id and the connections it reported.
import type { ConnectionSummary, PeerName, PeerRecord, PeerShortID, PeerSummary, PeerUID } from './types.js';
import { formatPeerName } from './wire/peer-name.js';

/** Sentinel for "no peer" (spec §1.6); also the next hop recorded for the BFS start. */
export const UNKNOWN_PEER_NAME: PeerName = 0n;

export class Peer {
  name: PeerName;
  nickName: string;
  uid: PeerUID;
  version: bigint;
  shortId: PeerShortID;
  hasShortId: boolean;
  /** This peer's connections keyed by remote peer name. */
  readonly connections = new Map<PeerName, ConnectionSummary>();

  constructor(summary: PeerSummary, connections: readonly ConnectionSummary[] = []) {
    this.name = summary.name;
    this.nickName = summary.nickName;
    this.uid = summary.uid;
    this.version = summary.version;
    this.shortId = summary.shortId;
    this.hasShortId = summary.hasShortId;
    this.setConnections(connections);
  }

  /** A peer only referenced by another peer's connection (spec §4.5 step 1). */
  static placeholder(name: PeerName): Peer {
    return new Peer({ name, nickName: '', uid: 0n, version: 0n, shortId: 0, hasShortId: false });
  }

  setConnections(connections: readonly ConnectionSummary[]): void {
    this.connections.clear();
    for (const c of connections) this.connections.set(c.name, { ...c });
  }

  summary(): PeerSummary {
    return {
      name: this.name,
      nickName: this.nickName,
      uid: this.uid,
      version: this.version,
      shortId: this.shortId,
      hasShortId: this.hasShortId,
    };
  }

  record(): PeerRecord {
    return { summary: this.summary(), connections: [...this.connections.values()].map((c) => ({ ...c })) };
  }

  /** `name(nickname)` as the status views print it. */
  toString(): string {
    return `${formatPeerName(this.name)}(${this.nickName})`;
  }
}

export { formatPeerName };
