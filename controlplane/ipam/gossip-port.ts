// The seam between IPAM and the mesh gossip layer (spec §4.1-4.3). IPAM talks
// to one gossip channel (`IPallocation`) and is that channel's Gossiper; the
// shapes are the mesh's own.
import type { GossipChannel as MeshGossipChannel } from '../mesh/gossip-channel.js';

export type { GossipData, Gossiper } from '../mesh/gossip.js';

/** What IPAM may send on its channel. */
export type GossipChannel = Pick<MeshGossipChannel, 'gossipUnicast' | 'gossipBroadcast'>
  & Partial<Pick<MeshGossipChannel, 'gossipNeighbourSubset'>>;

/** The channel name IPAM gossips on (spec §4.4). */
export const IPAM_CHANNEL = 'IPallocation';
