// The seam between the nameserver and the mesh's gossip layer (wire spec §4).
// Types only: the mesh calls a Gossiper per channel and hands it a channel for
// broadcasting local changes. The shapes are the mesh's own.
import type { GossipChannel as MeshGossipChannel } from '../mesh/gossip-channel.js';

export type { GossipData, Gossiper } from '../mesh/gossip.js';

/** The mesh side of a channel, used to originate broadcasts (tag 6). */
export type GossipChannel = Pick<MeshGossipChannel, 'gossipBroadcast'>;
