// MAC address -> owning peer (spec §5.8): entries expire 10 min after their
// last refresh; refreshes are recorded at most once a minute so the hot path
// does no work for a MAC it saw a moment ago.
import type { PeerName } from '../../controlplane/mesh/types.js';

export const MAC_EXPIRY_MS = 10 * 60_000;
const REFRESH_MS = 60_000;

interface Entry {
  peer: PeerName;
  refreshed: number;
}

export type LearnResult = 'new' | 'refreshed' | 'moved';

export class MacCache {
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  lookup(mac: number): PeerName | undefined {
    return this.entries.get(mac)?.peer;
  }

  /** Associates `mac` with `peer`, replacing any other peer (a MAC that moved is relearned). */
  learn(mac: number, peer: PeerName): LearnResult {
    const e = this.entries.get(mac);
    const t = this.now();
    if (!e) {
      this.entries.set(mac, { peer, refreshed: t });
      return 'new';
    }
    if (e.peer !== peer) {
      e.peer = peer;
      e.refreshed = t;
      return 'moved';
    }
    if (t - e.refreshed >= REFRESH_MS) e.refreshed = t;
    return 'refreshed';
  }

  /** Drops entries not refreshed for MAC_EXPIRY_MS; returns how many. */
  expire(): number {
    const limit = this.now() - MAC_EXPIRY_MS;
    let n = 0;
    for (const [mac, e] of this.entries) {
      if (e.refreshed < limit) {
        this.entries.delete(mac);
        n++;
      }
    }
    return n;
  }

  /** Forgets every MAC of `peer` (it became unreachable). */
  forgetPeer(peer: PeerName): void {
    for (const [mac, e] of this.entries) if (e.peer === peer) this.entries.delete(mac);
  }

  get size(): number {
    return this.entries.size;
  }
}
