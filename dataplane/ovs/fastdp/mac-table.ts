// Where each MAC lives, as the fastdp virtual bridge learned it (spec §5.8,
// §6.5): on a local bridge port (a netdev/internal vport) or behind a remote
// peer. Learning reports whether a MAC moved, because a move invalidates
// every installed flow.

import type { PeerName } from '../../../controlplane/mesh/types.js';

export type MacLocation = { kind: 'port'; portNo: number } | { kind: 'peer'; peer: PeerName };

interface Entry {
  where: MacLocation;
  seenAt: number;
}

function same(a: MacLocation, b: MacLocation): boolean {
  return a.kind === 'port' ? b.kind === 'port' && a.portNo === b.portNo : b.kind === 'peer' && a.peer === b.peer;
}

/** Bit 0 of the first byte: group (broadcast/multicast) addresses are never learned (spec §6.5). */
export function isGroupMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export class MacTable {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  lookup(mac: string): MacLocation | undefined {
    return this.entries.get(mac)?.where;
  }

  /** Records `mac` at `where`; returns 'new', 'same' or 'moved'. Group MACs are ignored ('same'). */
  learn(mac: string, where: MacLocation, now = Date.now()): 'new' | 'same' | 'moved' {
    if (isGroupMac(mac)) return 'same';
    const old = this.entries.get(mac);
    this.entries.set(mac, { where, seenAt: now });
    if (old === undefined) return 'new';
    return same(old.where, where) ? 'same' : 'moved';
  }

  /** Marks `mac` as still in use where it is (a flow carrying it was used). */
  touch(mac: string, now = Date.now()): void {
    const e = this.entries.get(mac);
    if (e) e.seenAt = now;
  }

  /** Forgets entries not seen since `cutoff`; returns how many. */
  expire(cutoff: number): number {
    let n = 0;
    for (const [mac, e] of this.entries) {
      if (e.seenAt < cutoff) {
        this.entries.delete(mac);
        n++;
      }
    }
    return n;
  }

  /** Forgets everything behind `peer` (it left the network) or on `portNo` (the vport went). */
  forget(match: (where: MacLocation) => boolean): number {
    let n = 0;
    for (const [mac, e] of this.entries) {
      if (match(e.where)) {
        this.entries.delete(mac);
        n++;
      }
    }
    return n;
  }

  entriesList(): Array<{ mac: string; where: MacLocation }> {
    return [...this.entries].map(([mac, e]) => ({ mac, where: e.where }));
  }
}
