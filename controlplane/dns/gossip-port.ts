// The seam between the nameserver and the mesh's gossip layer (wire spec §4).
// Types only: the mesh calls a Gossiper per channel and hands it a channel for
// broadcasting local changes.

/** Data a gossiper hands to the mesh for sending; the mesh may merge pending items (spec §4.2). */
export interface GossipData {
  /** One gob stream per element; each element is one gossip message payload. */
  encode(): Uint8Array[];
  /** The union of this and `other` (neither is modified). */
  merge(other: GossipData): GossipData;
}

/**
 * The handlers the mesh calls for one channel. Thrown errors are fatal to the
 * connection the message came on (spec §4.2).
 */
export interface Gossiper {
  /** Tag 5 addressed to us. */
  onGossipUnicast(src: bigint, payload: Uint8Array): void;
  /** Tag 6: returns what to relay to BroadcastAll(src), or nothing. */
  onGossipBroadcast(src: bigint, payload: Uint8Array): GossipData | undefined;
  /** The complete state, for periodic gossip and gossip-down (spec §4.3). */
  gossip(): GossipData | undefined;
  /** Tag 4: merge and return the delta to pass on, or nothing. */
  onGossip(payload: Uint8Array): GossipData | undefined;
}

/** The mesh side of a channel, used to originate broadcasts (tag 6). */
export interface GossipChannel {
  gossipBroadcast(data: GossipData): void;
}
