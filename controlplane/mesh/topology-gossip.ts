// The `topology` channel (spec §4.5): the router's own gossiper. Its data is a
// set of peer names, encoded at send time from the live records.
import type { GossipData, Gossiper } from './gossip.js';
import type { EncodedTopologyRecord, MeshCodec, ReceivedPeerRecord } from './codec.js';
import type { Peer } from './peer.js';
import type { Peers } from './peers.js';
import type { PeerName, PeerSummary } from './types.js';

export const TOPOLOGY_CHANNEL = 'topology';

/**
 * Each peer's encoded record, kept while the record is unchanged. A record
 * changes only with its version, incarnation (uid) or short id (spec §4.5:
 * the local peer bumps its version on every change of its own record; a
 * received record replaces ours only when it wins on exactly these fields),
 * so those fields are the cache key. While a mesh forms, every router sends
 * nearly every record to each neighbour many times over.
 */
export class TopologyRecordCache {
  private readonly cache = new WeakMap<Peer, { key: PeerSummary; encoded: EncodedTopologyRecord }>();
  /** Records encoded, for tests and benchmarks: cache misses. */
  encodings = 0;

  constructor(private readonly codec: MeshCodec) {}

  encoded(peer: Peer): EncodedTopologyRecord {
    const hit = this.cache.get(peer);
    if (hit && sameRecordKey(hit.key, peer)) return hit.encoded;
    this.encodings++;
    const encoded = this.codec.encodeTopologyRecord(peer.record());
    this.cache.set(peer, { key: peer.summary(), encoded });
    return encoded;
  }
}

function sameRecordKey(k: PeerSummary, p: Peer): boolean {
  return k.version === p.version && k.uid === p.uid && k.shortId === p.shortId && k.hasShortId === p.hasShortId &&
    k.nickName === p.nickName;
}

export class TopologyGossipData implements GossipData {
  /**
   * The last payload and the encoded records it was joined from. A broadcast
   * is queued on every next hop with this same object, and each connection's
   * sender encodes it: the hub of a forming mesh would otherwise join (and
   * envelope) the same records once per neighbour. Records that changed in
   * between come back from the cache as new objects, so the payload is joined
   * again exactly when its bytes would differ.
   */
  private last: { parts: readonly EncodedTopologyRecord[]; payload: Uint8Array } | undefined;

  constructor(
    private readonly peers: Peers,
    private readonly codec: MeshCodec,
    private readonly cache: TopologyRecordCache,
    readonly names: ReadonlySet<PeerName>,
  ) {}

  encode(): Uint8Array[] {
    const parts = this.peers.known(this.names).map((p) => this.cache.encoded(p));
    const last = this.last;
    if (last && last.parts.length === parts.length && last.parts.every((e, i) => e === parts[i])) return [last.payload];
    const payload = this.codec.joinTopology(parts);
    this.last = { parts, payload };
    return [payload];
  }

  merge(other: GossipData): GossipData {
    if (!(other instanceof TopologyGossipData)) throw new Error('topology gossip can only merge with topology gossip');
    const names = new Set(this.names);
    for (const n of other.names) names.add(n);
    return new TopologyGossipData(this.peers, this.codec, this.cache, names);
  }
}

export interface TopologyApplier {
  /** Whether a received record would replace what we hold, so its connection list must be decoded. */
  wantsTopologyRecord(summary: PeerSummary): boolean;
  /** Merge decoded records; returns the improved and received name sets (spec §4.5). */
  applyTopology(records: readonly ReceivedPeerRecord[]): { improved: Set<PeerName>; received: Set<PeerName> };
}

export class TopologyGossiper implements Gossiper {
  readonly cache: TopologyRecordCache;

  constructor(
    private readonly peers: Peers,
    private readonly codec: MeshCodec,
    private readonly applier: TopologyApplier,
  ) {
    this.cache = new TopologyRecordCache(codec);
  }

  data(names: Iterable<PeerName>): TopologyGossipData {
    return new TopologyGossipData(this.peers, this.codec, this.cache, new Set(names));
  }

  private decode(payload: Uint8Array): ReceivedPeerRecord[] {
    return this.codec.decodeTopologyFiltered(payload, (s) => this.applier.wantsTopologyRecord(s));
  }

  onGossipUnicast(src: PeerName): void {
    throw new Error(`unexpected topology unicast from ${src.toString(16)}: topology is never unicast`);
  }

  /** Tag 6: the received set is what is relayed (spec §4.5 step 3). */
  onGossipBroadcast(_src: PeerName, payload: Uint8Array): GossipData | undefined {
    const { received } = this.applier.applyTopology(this.decode(payload));
    return received.size > 0 ? this.data(received) : undefined;
  }

  /** Full state: every known peer. */
  gossip(): GossipData {
    return this.data(this.peers.all().map((p) => p.name));
  }

  /** Tag 4: relay the improved update. */
  onGossip(payload: Uint8Array): GossipData | undefined {
    const { improved } = this.applier.applyTopology(this.decode(payload));
    return improved.size > 0 ? this.data(improved) : undefined;
  }
}
