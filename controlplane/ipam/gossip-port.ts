// The seam between IPAM and the mesh gossip layer (spec §4.1-4.3). IPAM talks
// to one gossip channel (`IPallocation`) and is that channel's Gossiper.
import type { PeerName } from './ring.js';

/** Data handed to the gossip layer; merged while queued (spec §4.2). */
export interface GossipData {
  encode(): Uint8Array[];
  merge(other: GossipData): GossipData;
}

/** What IPAM may send on its channel. */
export interface GossipChannel {
  gossipUnicast(dst: PeerName, payload: Uint8Array): void;
  gossipBroadcast(data: GossipData): void;
  gossipNeighbourSubset?(data: GossipData): void;
}

/**
 * What the gossip layer calls. Throwing from a handler rejects the message
 * and closes the connection it arrived on (spec §4.2).
 */
export interface Gossiper {
  onGossipUnicast(src: PeerName, payload: Uint8Array): void;
  /** Tag 6: returns what to relay onwards. */
  onGossipBroadcast(src: PeerName, payload: Uint8Array): GossipData | undefined;
  /** Complete state for periodic gossip and gossip-down (tag 4). */
  gossip(): GossipData | undefined;
  /** Tag 4: returns the delta to pass on (IPAM: never). */
  onGossip(payload: Uint8Array): GossipData | undefined;
}

/** The channel name IPAM gossips on (spec §4.4). */
export const IPAM_CHANNEL = 'IPallocation';
