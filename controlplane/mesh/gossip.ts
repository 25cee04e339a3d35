// The gossip API offered to IPAM, DNS and the topology (spec §4.1-4.4): a
// Gossiper handles a channel's messages, GossipData is mergeable state to send.
import type { PeerName } from './types.js';

/** Mergeable state to send; may encode to several payloads, one message each (spec §4.2). */
export interface GossipData {
  encode(): Uint8Array[];
  merge(other: GossipData): GossipData;
}

/**
 * A channel's message handlers. Throwing from a handler for a message
 * delivered locally closes the connection it arrived on (spec §4.2).
 */
export interface Gossiper {
  /** Tag 5 addressed to us. */
  onGossipUnicast(src: PeerName, payload: Uint8Array): void;
  /** Tag 6: merge, return what to relay onwards along the broadcast tree (or nothing). */
  onGossipBroadcast(src: PeerName, payload: Uint8Array): GossipData | undefined;
  /** The complete state, for periodic gossip and gossip-down (spec §4.3). */
  gossip(): GossipData | undefined;
  /** Tag 4: merge, return the delta (what was new) to relay, or nothing. */
  onGossip(payload: Uint8Array): GossipData | undefined;
}

/** Raw payloads relayed as they came (surrogate channels, spec §4.9). */
export class RawGossipData implements GossipData {
  constructor(readonly messages: Uint8Array[]) {}
  encode(): Uint8Array[] {
    return this.messages;
  }
  merge(other: GossipData): GossipData {
    return new RawGossipData([...this.messages, ...other.encode()]);
  }
}
