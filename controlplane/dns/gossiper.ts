// The nameserver's face towards the mesh: gob payloads in, GossipData out
// (wire spec §4.2, §9.2, §9.3).
import { decodeGossipPayload, encodeGossipPayload } from './codec.js';
import { mergeEntryLists } from './entries.js';
import type { GossipPayload } from './gossip-payload.js';
import type { GossipChannel, GossipData, Gossiper } from './gossip-port.js';
import type { Nameserver } from './nameserver.js';

/** A `GossipData` of nameserver entries; encodes to one gob stream (wire spec §9.1). */
export class DnsGossipData implements GossipData {
  constructor(readonly payload: GossipPayload) {}

  encode(): Uint8Array[] {
    return [encodeGossipPayload(this.payload)];
  }

  /** Union of both entry sets (same merge rules as the table), the later timestamp. */
  merge(other: GossipData): GossipData {
    if (!(other instanceof DnsGossipData)) {
      throw new TypeError('nameserver gossip can only merge with nameserver gossip (a channel mix-up in the mesh)');
    }
    return new DnsGossipData({
      timestamp: Math.max(this.payload.timestamp, other.payload.timestamp),
      entries: mergeEntryLists(this.payload.entries, other.payload.entries),
    });
  }
}

export class NameserverGossiper implements Gossiper {
  constructor(private readonly nameserver: Nameserver) {}

  /** Route local changes to the mesh as broadcasts (wire spec §9.2). */
  attach(channel: GossipChannel): void {
    this.nameserver.setBroadcaster((payload) => channel.gossipBroadcast(new DnsGossipData(payload)));
  }

  /** Unicasts are not used by the nameserver (wire spec §9.2). */
  onGossipUnicast(_src: bigint, _payload: Uint8Array): void {}

  onGossipBroadcast(_src: bigint, payload: Uint8Array): GossipData | undefined {
    const received = decodeGossipPayload(payload);
    const { relay } = this.nameserver.receive(received);
    // The relay keeps the originator's timestamp, as received (wire spec §9.3 step 5).
    return relay.length > 0 ? new DnsGossipData({ timestamp: received.timestamp, entries: relay }) : undefined;
  }

  gossip(): GossipData | undefined {
    return new DnsGossipData(this.nameserver.fullState());
  }

  onGossip(payload: Uint8Array): GossipData | undefined {
    const { delta } = this.nameserver.receive(decodeGossipPayload(payload));
    return delta.length > 0 ? new DnsGossipData({ timestamp: this.nameserver.now(), entries: delta }) : undefined;
  }
}
