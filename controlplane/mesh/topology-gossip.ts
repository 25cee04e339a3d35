// The `topology` channel (spec §4.5): the router's own gossiper. Its data is a
// set of peer names, encoded at send time from the live records.
import type { GossipData, Gossiper } from './gossip.js';
import type { MeshCodec } from './codec.js';
import type { Peers } from './peers.js';
import type { PeerName, PeerRecord } from './types.js';

export const TOPOLOGY_CHANNEL = 'topology';

export class TopologyGossipData implements GossipData {
  constructor(
    private readonly peers: Peers,
    private readonly codec: MeshCodec,
    readonly names: ReadonlySet<PeerName>,
  ) {}

  encode(): Uint8Array[] {
    return [this.codec.encodeTopology(this.peers.records(this.names))];
  }

  merge(other: GossipData): GossipData {
    if (!(other instanceof TopologyGossipData)) throw new Error('topology gossip can only merge with topology gossip');
    return new TopologyGossipData(this.peers, this.codec, new Set([...this.names, ...other.names]));
  }
}

export interface TopologyApplier {
  /** Merge decoded records; returns the improved and received name sets (spec §4.5). */
  applyTopology(records: PeerRecord[]): { improved: Set<PeerName>; received: Set<PeerName> };
}

export class TopologyGossiper implements Gossiper {
  constructor(
    private readonly peers: Peers,
    private readonly codec: MeshCodec,
    private readonly applier: TopologyApplier,
  ) {}

  data(names: Iterable<PeerName>): TopologyGossipData {
    return new TopologyGossipData(this.peers, this.codec, new Set(names));
  }

  onGossipUnicast(src: PeerName): void {
    throw new Error(`unexpected topology unicast from ${src.toString(16)}: topology is never unicast`);
  }

  /** Tag 6: the received set is what is relayed (spec §4.5 step 3). */
  onGossipBroadcast(_src: PeerName, payload: Uint8Array): GossipData | undefined {
    const { received } = this.applier.applyTopology(this.codec.decodeTopology(payload));
    return received.size > 0 ? this.data(received) : undefined;
  }

  /** Full state: every known peer. */
  gossip(): GossipData {
    return this.data(this.peers.all().map((p) => p.name));
  }

  /** Tag 4: relay the improved update. */
  onGossip(payload: Uint8Array): GossipData | undefined {
    const { improved } = this.applier.applyTopology(this.codec.decodeTopology(payload));
    return improved.size > 0 ? this.data(improved) : undefined;
  }
}
