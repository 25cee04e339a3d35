// Per connection and channel send queue (spec §4.2 "Sending side queues"):
// pending tag-4 data is merged into one item, pending broadcasts are merged
// per source peer; a flush sends gossip first, then broadcasts.
import type { GossipData } from './gossip.js';
import { ProtocolTag, type GossipEnvelope, type PeerName } from './types.js';

export class GossipSender {
  private pendingGossip: GossipData | undefined;
  private readonly pendingBroadcasts = new Map<PeerName, GossipData>();
  private flushScheduled = false;

  constructor(
    private readonly channel: string,
    private readonly ourName: PeerName,
    private readonly encodeEnvelope: (e: GossipEnvelope) => Uint8Array,
    private readonly send: (body: Uint8Array) => void,
  ) {}

  sendGossip(data: GossipData): void {
    this.pendingGossip = this.pendingGossip ? this.pendingGossip.merge(data) : data;
    this.scheduleFlush();
  }

  sendBroadcast(src: PeerName, data: GossipData): void {
    const cur = this.pendingBroadcasts.get(src);
    this.pendingBroadcasts.set(src, cur ? cur.merge(data) : data);
    this.scheduleFlush();
  }

  /** Drop everything pending (the connection closed). */
  discard(): void {
    this.pendingGossip = undefined;
    this.pendingBroadcasts.clear();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Coalesce everything queued in this turn into as few messages as possible.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  flush(): void {
    const gossip = this.pendingGossip;
    this.pendingGossip = undefined;
    if (gossip) {
      for (const payload of gossip.encode()) {
        this.send(this.encodeEnvelope({ tag: ProtocolTag.Gossip, channel: this.channel, src: this.ourName, payload }));
      }
    }
    const broadcasts = [...this.pendingBroadcasts];
    this.pendingBroadcasts.clear();
    for (const [src, data] of broadcasts) {
      for (const payload of data.encode()) {
        this.send(this.encodeEnvelope({ tag: ProtocolTag.GossipBroadcast, channel: this.channel, src, payload }));
      }
    }
  }
}
