// Short peer ids (spec §4.8): 12-bit ids used by the fast datapath. Several
// peers may claim the same id; the one with the lowest name is its principal.
import type { PeerName, PeerShortID } from './types.js';

export const SHORT_ID_BITS = 12;
export const SHORT_ID_COUNT = 1 << SHORT_ID_BITS;
/** Random tries before falling back to a uniform pick among free ids (spec §4.8). */
const RANDOM_TRIES = 10;

export class ShortIdIndex {
  private readonly claims = new Map<PeerShortID, Set<PeerName>>();
  /**
   * Bumped whenever some id's principal changes, so a caller can tell whether
   * a batch of changes moved any principal without comparing whole mappings.
   */
  principalChanges = 0;

  add(name: PeerName, id: PeerShortID): void {
    let set = this.claims.get(id);
    if (!set) this.claims.set(id, (set = new Set()));
    const before = this.principal(id);
    set.add(name);
    if (this.principal(id) !== before) this.principalChanges++;
  }

  remove(name: PeerName, id: PeerShortID): void {
    const set = this.claims.get(id);
    if (!set) return;
    const before = this.principal(id);
    set.delete(name);
    if (set.size === 0) this.claims.delete(id);
    if (this.principal(id) !== before) this.principalChanges++;
  }

  principal(id: PeerShortID): PeerName | undefined {
    const set = this.claims.get(id);
    if (!set) return undefined;
    let best: PeerName | undefined;
    for (const n of set) if (best === undefined || n < best) best = n;
    return best;
  }

  isUsed(id: PeerShortID): boolean {
    return this.claims.has(id);
  }

  /** A free id: 10 random tries, then uniform among all free ids; undefined when none is free. */
  chooseFree(random: () => number): PeerShortID | undefined {
    for (let i = 0; i < RANDOM_TRIES; i++) {
      const id = Math.floor(random() * SHORT_ID_COUNT);
      if (!this.isUsed(id)) return id;
    }
    const free: PeerShortID[] = [];
    for (let id = 0; id < SHORT_ID_COUNT; id++) if (!this.isUsed(id)) free.push(id);
    if (free.length === 0) return undefined;
    return free[Math.floor(random() * free.length)];
  }
}
