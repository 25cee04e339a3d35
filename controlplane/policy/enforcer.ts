// The seam between the policy controller and the kernel (types only): the
// controller hands over one rendered table per workload namespace and reads
// back what was blocked; dataplane/host/policy-table.ts implements it.

export type LoadResult = 'loaded' | 'netns-gone';

/** Blocked first packets counted by a workload's table since it was loaded. */
export interface BlockedCounts {
  /** Key `${direction} ${protocol} ${port}`, e.g. "ingress tcp 80"; value in packets. */
  byPort: Map<string, number>;
  /** Per direction ("ingress" / "egress"): every blocked packet, also those not counted by port. */
  total: Map<string, number>;
}

export interface PolicyEnforcer {
  /** Replaces the table in the namespace at `netns` with `script`; throws on any failure but a vanished namespace. */
  load(netns: string, script: string): Promise<LoadResult>;
  /** The counters of the namespace's table (empty without one); undefined when the namespace is gone. */
  readBlocked(netns: string): Promise<BlockedCounts | undefined>;
}
