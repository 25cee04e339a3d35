// Datagrams from a peer the sleeve has no forwarder for yet. When two routers
// connect, each adds its forwarder once its own side of the handshake is done
// and the connection has reached the worker; the peer that gets there first
// starts heartbeating at once, and its first heartbeats reach a worker that
// would drop them. The sender then waits for its next retry (25 ms, doubling
// to 400 ms), which held a starting router's first connection up by ~50 ms.
// Keeping the latest datagram per sender for a moment lets the forwarder act
// on it as soon as it is added. Bounded: one datagram per sender, at most
// EARLY_SENDERS_MAX senders, EARLY_DATAGRAM_MAX_BYTES each, EARLY_HOLD_MS.
import type { PeerName } from '../../controlplane/mesh/types.js';

/** Heartbeats and the other special frames fit easily; a full-size data datagram is not worth keeping. */
export const EARLY_DATAGRAM_MAX_BYTES = 2048;
/** More than any mesh adds connections at once. */
export const EARLY_SENDERS_MAX = 64;
/** Longer than the control connection takes to reach the worker after the remote's does, even on a loaded host. */
export const EARLY_HOLD_MS = 2_000;

export interface EarlyDatagram {
  datagram: Uint8Array;
  from: { ip: string; port: number };
}

export class EarlyDatagrams {
  private readonly bySender = new Map<PeerName, EarlyDatagram & { at: number }>();

  /**
   * Holds a copy of `datagram` (a view into a receive buffer that is reused)
   * from `sender`, in place of any earlier one; the oldest sender's goes when
   * EARLY_SENDERS_MAX are held. Each was already counted as dropped.
   */
  keep(sender: PeerName, datagram: Uint8Array, from: { ip: string; port: number }, now: number): void {
    if (datagram.length > EARLY_DATAGRAM_MAX_BYTES) return;
    // Re-inserted, so that the Map's order stays oldest first.
    this.bySender.delete(sender);
    if (this.bySender.size >= EARLY_SENDERS_MAX) {
      const oldest = this.bySender.keys().next().value as PeerName;
      this.bySender.delete(oldest);
    }
    this.bySender.set(sender, { datagram: datagram.slice(), from: { ip: from.ip, port: from.port }, at: now });
  }

  /** The datagram held from `sender` if it is recent enough; it is forgotten either way. */
  take(sender: PeerName, now: number): EarlyDatagram | undefined {
    const held = this.bySender.get(sender);
    if (!held) return undefined;
    this.bySender.delete(sender);
    return now - held.at <= EARLY_HOLD_MS ? { datagram: held.datagram, from: held.from } : undefined;
  }

  get size(): number {
    return this.bySender.size;
  }
}
