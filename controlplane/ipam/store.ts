// What IPAM keeps across restarts (spec §8.8): the ring and the allocations.
// Types only; persistence.ts implements the store on disk.
import type { Address } from './addr.js';
import type { PeerName, RingSnapshot } from './ring.js';

export interface PersistedIpam {
  /** Our peer name when the state was written; state for another name is discarded. */
  peerName: PeerName;
  /** The allocation universe the ring was built for. */
  range: { start: Address; end: number };
  /** Absent while no ring exists yet. */
  ring?: RingSnapshot;
  /** Addresses in use with their prefix lengths, by container id (or `weave:expose`, `_`). */
  allocations: Array<{ ident: string; addrs: Array<{ addr: Address; prefixLen: number }> }>;
}

export interface IpamStore {
  /** Where the state lives (a file path), for error messages. */
  readonly location: string;
  /** Undefined when nothing was stored yet. Throws a clear error for unreadable data. */
  load(): PersistedIpam | undefined;
  /** Durable before returning: an acknowledged allocation survives a crash. */
  save(state: PersistedIpam): void;
}
