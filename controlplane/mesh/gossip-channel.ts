// One named gossip channel (spec §4.1-4.2): originating unicast, broadcast and
// neighbour-subset gossip, and delivering/relaying what arrives for it.
import type { GossipData, Gossiper } from './gossip.js';
import type { GossipSender } from './gossip-sender.js';
import { formatPeerName } from './peer.js';
import type { Routes } from './routes.js';
import { ProtocolTag, type GossipEnvelope, type PeerName } from './types.js';

/** What a channel needs from the router. */
export interface GossipHost {
  readonly ourName: PeerName;
  readonly routes: Routes;
  /** The send queue of our connection to `peer` for `channel`, if connected. */
  senderTo(peer: PeerName, channel: string): GossipSender | undefined;
  /** Send a body as is on our connection to `peer`; false when not connected. */
  sendTo(peer: PeerName, body: Uint8Array): boolean;
  encodeEnvelope(e: GossipEnvelope): Uint8Array;
  warn(msg: string): void;
}

export class NoRouteError extends Error {
  constructor(channel: string, dst: PeerName) {
    super(`gossip channel ${channel}: no route to peer ${formatPeerName(dst)} (it is not connected to the mesh we can reach)`);
    this.name = 'NoRouteError';
  }
}

export class GossipChannel {
  constructor(
    readonly name: string,
    readonly gossiper: Gossiper,
    private readonly host: GossipHost,
  ) {}

  /** Send `payload` to `dst` only, via UnicastAll next hops (spec §4.2); throws NoRouteError. */
  gossipUnicast(dst: PeerName, payload: Uint8Array): void {
    if (dst === this.host.ourName) {
      this.gossiper.onGossipUnicast(dst, payload);
      return;
    }
    const body = this.host.encodeEnvelope({ tag: ProtocolTag.GossipUnicast, channel: this.name, src: this.host.ourName, dst, payload });
    const hop = this.host.routes.unicastAllNextHop(dst);
    if (hop === undefined || !this.host.sendTo(hop, body)) throw new NoRouteError(this.name, dst);
  }

  /** Broadcast `data` from us to every peer along the BroadcastAll tree (tag 6). */
  gossipBroadcast(data: GossipData): void {
    this.relayBroadcast(this.host.ourName, data);
  }

  /** Send `data` with tag 4 to a random subset of neighbours (spec §4.3). */
  gossipNeighbourSubset(data: GossipData): void {
    this.relayGossip(this.host.ourName, data);
  }

  /** Queue `data` with tag 4 on one connection only (gossip-down, spec §4.3). */
  gossipTo(peer: PeerName, data: GossipData): void {
    this.host.senderTo(peer, this.name)?.sendGossip(data);
  }

  // --- receiving (spec §4.2) ---

  /** Tag 5: ours goes to the handler; others' is forwarded unchanged (relay failures are only logged). */
  receiveUnicast(env: Extract<GossipEnvelope, { tag: ProtocolTag.GossipUnicast }>, body: Uint8Array): void {
    if (env.dst === this.host.ourName) {
      this.gossiper.onGossipUnicast(env.src, env.payload);
      return;
    }
    const hop = this.host.routes.unicastAllNextHop(env.dst);
    if (hop === undefined || !this.host.sendTo(hop, body)) {
      this.host.warn(`gossip channel ${this.name}: dropping unicast from ${formatPeerName(env.src)} to ${formatPeerName(env.dst)}: no route`);
    }
  }

  /** Tag 6: merge, then relay what the handler returns along BroadcastAll(src). */
  receiveBroadcast(env: Extract<GossipEnvelope, { tag: ProtocolTag.GossipBroadcast }>): void {
    const data = this.gossiper.onGossipBroadcast(env.src, env.payload);
    if (data) this.relayBroadcast(env.src, data);
  }

  /** Tag 4: merge, then relay the delta to random neighbours except the sender. */
  receiveGossip(env: Extract<GossipEnvelope, { tag: ProtocolTag.Gossip }>): void {
    const delta = this.gossiper.onGossip(env.payload);
    if (delta) this.relayGossip(env.src, delta);
  }

  private relayBroadcast(src: PeerName, data: GossipData): void {
    for (const hop of this.host.routes.broadcastAllNextHops(src)) this.host.senderTo(hop, this.name)?.sendBroadcast(src, data);
  }

  private relayGossip(except: PeerName, data: GossipData): void {
    this.host.routes.ensureRecalculated();
    for (const hop of this.host.routes.randomNeighbours(except)) this.host.senderTo(hop, this.name)?.sendGossip(data);
  }
}
