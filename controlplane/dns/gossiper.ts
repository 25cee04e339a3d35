// The nameserver's face towards the mesh: gob payloads in, GossipData out
// (wire spec §4.2, §9.2, §9.3).
import { decodeGossipPayload, decodeGossipPayloadInto, encodeGossipPayload } from './codec.js';
import { mergeEntryLists, type Entry } from './entries.js';
import type { GossipPayload } from './gossip-payload.js';
import type { GossipChannel, GossipData, Gossiper } from './gossip-port.js';
import type { Nameserver, ReceiveResult } from './nameserver.js';

/**
 * A `GossipData` of nameserver entries; encodes to one gob stream (wire spec
 * §9.1), once: the same data goes to several neighbours.
 */
export class DnsGossipData implements GossipData {
  private payloadValue: GossipPayload | undefined;
  private encoded: Uint8Array[] | undefined;

  /** `{ encoded }`: data already encoded (the whole table, encoded where it lies), decoded again only if merged. */
  constructor(source: GossipPayload | { encoded: Uint8Array }) {
    if ('encoded' in source) this.encoded = [source.encoded];
    else this.payloadValue = source;
  }

  get payload(): GossipPayload {
    return (this.payloadValue ??= decodeGossipPayload(this.encoded![0]!));
  }

  encode(): Uint8Array[] {
    return (this.encoded ??= [encodeGossipPayload(this.payloadValue!)]);
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

/**
 * Gossip payloads received while the nameserver restores its saved entries
 * that are held for it: beyond this many the newest are dropped (counted), and
 * the next periodic gossip brings their entries again.
 */
export const MAX_HELD_PAYLOADS = 256;

export class NameserverGossiper implements Gossiper {
  /** Held payloads, with whether each came as a broadcast (tag 6: relayed whole) or as gossip (tag 4: what changed passed on). */
  private held: Array<{ payload: GossipPayload; broadcast: boolean }> = [];
  /** Payloads dropped because MAX_HELD_PAYLOADS were already held. */
  droppedWhileRestoring = 0;

  /** `log` hears of held gossip that could not be taken in once the restore was done. */
  constructor(private readonly nameserver: Nameserver, private readonly log: (message: string) => void = () => {}) {}

  /** Route local changes to the mesh as broadcasts (wire spec §9.2). */
  attach(channel: GossipChannel): void {
    this.nameserver.setBroadcaster((payload) => channel.gossipBroadcast(new DnsGossipData(payload)));
  }

  /** Unicasts are not used by the nameserver (wire spec §9.2). */
  onGossipUnicast(_src: bigint, _payload: Uint8Array): void {}

  onGossipBroadcast(_src: bigint, payload: Uint8Array): GossipData | undefined {
    if (this.nameserver.isRestoring()) {
      this.hold(decodeGossipPayload(payload), true);
      return undefined;
    }
    const { relay, timestamp } = this.receive(payload, true);
    // The relay keeps the originator's timestamp, as received (wire spec §9.3 step 5).
    return relay.length > 0 ? new DnsGossipData({ timestamp, entries: relay }) : undefined;
  }

  /** The whole table, encoded at once from the table's own entries rather than from a copy of them. */
  gossip(): GossipData | undefined {
    return new DnsGossipData({ encoded: encodeGossipPayload(this.nameserver.fullState()) });
  }

  onGossip(payload: Uint8Array): GossipData | undefined {
    if (this.nameserver.isRestoring()) {
      this.hold(decodeGossipPayload(payload), false);
      return undefined;
    }
    const { delta } = this.receive(payload, false);
    return delta.length > 0 ? new DnsGossipData({ timestamp: this.nameserver.now(), entries: delta }) : undefined;
  }

  /**
   * Merges a payload entry by entry as it is decoded: a peer's whole table is
   * never held decoded. A payload that fails part way has its entries before
   * the fault merged, saved and announced, and then throws DnsGossipError.
   * Also returns the sender's timestamp.
   */
  private receive(payload: Uint8Array, keepRelay: boolean): ReceiveResult & { timestamp: number } {
    const receiver = this.nameserver.receiver(keepRelay);
    let timestamp = 0;
    try {
      decodeGossipPayloadInto(payload, {
        begin: (t) => {
          receiver.begin(t);
          timestamp = t;
        },
        entry: (e) => receiver.entry(e),
      });
    } catch (err) {
      // Nothing merged (a refused clock, a fault before the first entry) finishes with nothing to save or announce.
      receiver.finish();
      throw err;
    }
    return { ...receiver.finish(), timestamp };
  }

  /**
   * While the nameserver restores, keeps a received payload for when it is
   * done, as Weave's nameserver took gossip only once its entries were
   * loaded. Held payloads are then received in order, and what would have been
   * relayed (broadcasts) or passed on (gossip) when they came is broadcast.
   */
  private hold(payload: GossipPayload, broadcast: boolean): void {
    if (this.held.length >= MAX_HELD_PAYLOADS) {
      this.droppedWhileRestoring++;
      return;
    }
    this.held.push({ payload, broadcast });
    if (this.held.length === 1) void this.nameserver.whenRestored().then(() => this.release());
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    let carried: Entry[] = [];
    for (const { payload, broadcast } of held) {
      try {
        const { relay, delta } = this.nameserver.receive(payload);
        carried = mergeEntryLists(carried, broadcast ? relay : delta);
      } catch (err) {
        this.log(`[dns] gossip received while restoring dropped: ${(err as Error).message}`);
      }
    }
    if (this.droppedWhileRestoring > 0) this.log(`[dns] ${this.droppedWhileRestoring} gossip messages dropped while restoring (over ${MAX_HELD_PAYLOADS} held); periodic gossip brings their names again`);
    if (carried.length > 0) this.nameserver.spread(carried);
  }
}
