// The policy controller: from a snapshot of the API state (namespaces, pods,
// policies) to one table per local workload, loaded only where it changed.
//
// - Desired state as one value: every sync renders every local workload's
//   table from the whole snapshot; what was loaded is remembered by its script,
//   so an unchanged workload costs nothing and a change touches only the
//   namespaces whose rules changed.
// - No table where nothing isolates a workload (weaveworks/weave#3761): its
//   script only deletes the table.
// - Full resync: on start, and every resync interval, the memory is dropped
//   and every table is loaded again, so a table changed behind our back or
//   left by an earlier run never outlives one interval (weaveworks/weave#3829).
// - A workload or namespace that vanishes mid-sync is forgotten, not an error.
// - Syncs run one at a time; snapshots arriving meanwhile are coalesced into
//   the next run, and every caller learns when a run covering its snapshot ended.
import type { MetricFamily } from '../api/metrics.js';
import { buildClusterState, type BuildOptions } from './cluster.js';
import { compileWorkload, mergeSpans, type WorkloadRules } from './compile.js';
import type { PolicyEnforcer } from './enforcer.js';
import { DIRECTIONS, renderPolicyTable } from './render.js';
import { serviceFrontends } from './services.js';
import type { EndpointSlice, Namespace, NetworkPolicy, Pod, Service } from './types.js';

/** Where weave-npc serves its metrics (user-surface spec §6.4). */
export const NPC_METRICS_PORT = 6781;

/** Table loads in flight at once. */
const LOAD_CONCURRENCY = 4;

export interface PolicySnapshot {
  namespaces: readonly Namespace[];
  pods: readonly Pod[];
  policies: readonly NetworkPolicy[];
  /** Services and their EndpointSlices: egress allowed to pods reaches them through their Services too. */
  services?: readonly Service[];
  endpointSlices?: readonly EndpointSlice[];
}

/** What the controller logs through (pino's Logger fits). */
export interface PolicyLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PolicyControllerOptions {
  enforcer: PolicyEnforcer;
  log: PolicyLog;
  netnsOf?: BuildOptions['netnsOf'];
  /**
   * This host's own addresses on the overlay (the bridge's): a pod cannot
   * block access from its resident node (Kubernetes NetworkPolicy, "what you
   * can't do"), which kubelet's probes rely on. Read at every sync.
   */
  hostAddresses?: () => readonly number[];
}

export interface SyncStats {
  workloads: number;
  loaded: number;
  unchanged: number;
  errors: number;
  ms: number;
}

interface Applied {
  workload: string;
  script: string;
  rules: WorkloadRules;
}

export class PolicyController {
  private readonly applied = new Map<string, Applied>();
  private readonly seenBlocked = new Map<string, Map<string, number>>();
  private readonly blockedTotals = new Map<string, number>();
  private enforcementErrors = 0;
  private latest: PolicySnapshot | undefined;
  private forceAll = true;
  private queued: { resolve: (s: SyncStats) => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  lastSync: SyncStats | undefined;

  constructor(private readonly options: PolicyControllerOptions) {}

  /** Makes the kernel state match `snapshot`; resolves when a sync that saw it has finished. */
  update(snapshot: PolicySnapshot): Promise<SyncStats> {
    this.latest = snapshot;
    return this.schedule();
  }

  /** Reloads every table from the last snapshot, whether or not it looks changed. */
  resync(): Promise<SyncStats> {
    this.forceAll = true;
    return this.schedule();
  }

  private schedule(): Promise<SyncStats> {
    const done = new Promise<SyncStats>((resolve, reject) => this.queued.push({ resolve, reject }));
    if (!this.running) void this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queued.length > 0) {
      const waiting = this.queued;
      this.queued = [];
      try {
        const stats = await this.syncOnce();
        for (const w of waiting) w.resolve(stats);
      } catch (err) {
        for (const w of waiting) w.reject(err);
      }
    }
    this.running = false;
  }

  private async syncOnce(): Promise<SyncStats> {
    const started = Date.now();
    const snapshot = this.latest;
    const stats: SyncStats = { workloads: 0, loaded: 0, unchanged: 0, errors: 0, ms: 0 };
    if (!snapshot) return stats;
    const force = this.forceAll;
    this.forceAll = false;
    const state = {
      ...buildClusterState(snapshot.namespaces, snapshot.pods, snapshot.policies, this.options.netnsOf ? { netnsOf: this.options.netnsOf } : {}),
      services: serviceFrontends(snapshot.services ?? [], snapshot.endpointSlices ?? []),
    };
    const desired = new Map<string, Applied>();
    const host = (this.options.hostAddresses?.() ?? []).map((a) => ({ first: a, last: a }));
    for (const w of state.workloads) {
      if (!w.netns) continue;
      if (desired.has(w.netns)) {
        this.options.log.warn({ netns: w.netns, workload: w.key, other: desired.get(w.netns)?.workload }, 'two workloads share a network namespace; policy follows the first');
        continue;
      }
      const rules = compileWorkload(state, w);
      if (rules.ingress && host.length > 0) rules.ingress.any = mergeSpans([...rules.ingress.any, ...host]);
      desired.set(w.netns, { workload: w.key, rules, script: renderPolicyTable(rules) });
    }
    stats.workloads = desired.size;
    // Workloads that left the snapshot but whose namespace lingers lose their table.
    for (const [netns, was] of this.applied) {
      if (desired.has(netns)) continue;
      this.applied.delete(netns);
      this.seenBlocked.delete(netns);
      const none: WorkloadRules = { workload: was.workload, ip: was.rules.ip };
      await this.load(netns, renderPolicyTable(none), stats);
    }
    const changed = [...desired].filter(([netns, want]) => force || this.applied.get(netns)?.script !== want.script);
    stats.unchanged = desired.size - changed.length;
    // Namespaces are independent: a few loads at a time (each is an nft process).
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < changed.length) {
        const [netns, want] = changed[next++] as [string, Applied];
        const ok = await this.load(netns, want.script, stats);
        if (ok) {
          this.applied.set(netns, want);
          this.seenBlocked.delete(netns);
        } else {
          this.applied.delete(netns);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, changed.length) }, worker));
    stats.ms = Date.now() - started;
    this.lastSync = stats;
    return stats;
  }

  private async load(netns: string, script: string, stats: SyncStats): Promise<boolean> {
    try {
      const r = await this.options.enforcer.load(netns, script);
      if (r === 'netns-gone') return false;
      stats.loaded++;
      return true;
    } catch (err) {
      stats.errors++;
      this.enforcementErrors++;
      this.options.log.warn({ netns, err: (err as Error).message }, 'cannot load policy table (retried on the next sync)');
      // Not remembered as applied: the next sync tries again.
      return false;
    }
  }

  /**
   * Reads what every isolated workload's table blocked since the last call and
   * logs it, one line per workload and direction, naming the policies that
   * isolate it: the logging is bounded by how often this is called.
   */
  async pollBlocked(): Promise<void> {
    for (const [netns, a] of [...this.applied]) {
      if (!a.rules.ingress && !a.rules.egress) continue;
      let counts;
      try {
        counts = await this.options.enforcer.readBlocked(netns);
      } catch (err) {
        this.options.log.warn({ netns, err: (err as Error).message }, 'cannot read blocked counters');
        continue;
      }
      if (!counts) continue;
      const seen = this.seenBlocked.get(netns) ?? new Map<string, number>();
      const fresh = new Map<string, string[]>();
      for (const [key, packets] of counts.byPort) {
        const before = seen.get(key) ?? 0;
        // A counter lower than last time was reset by a reload: all of it is new.
        const delta = packets >= before ? packets - before : packets;
        seen.set(key, packets);
        if (delta === 0) continue;
        const [direction, protocol, port] = key.split(' ') as [string, string, string];
        const metricKey = `${protocol} ${port}`;
        this.blockedTotals.set(metricKey, (this.blockedTotals.get(metricKey) ?? 0) + delta);
        const list = fresh.get(direction) ?? [];
        list.push(`${protocol}/${port} x${delta}`);
        fresh.set(direction, list);
      }
      this.seenBlocked.set(netns, seen);
      for (const direction of DIRECTIONS) {
        const blocked = fresh.get(direction);
        const rules = a.rules[direction];
        if (!blocked || !rules) continue;
        this.options.log.info({ workload: a.workload, direction, blocked, policies: rules.policies }, `blocked ${direction} connections of ${a.workload} (isolated by ${rules.policies.join(', ')})`);
      }
    }
  }

  /** weave-npc's metrics (user-surface spec §5.3). */
  metricFamilies(): MetricFamily[] {
    return [
      {
        name: 'weavenpc_blocked_connections_total',
        help: 'Connection attempts blocked by policy controller.',
        type: 'counter',
        samples: [...this.blockedTotals].sort().map(([k, value]) => {
          const [protocol, dport] = k.split(' ') as [string, string];
          return { labels: { protocol, dport }, value };
        }),
      },
      {
        name: 'weavenpc_policy_enforcement_errors',
        help: 'Count of policy enforcement errors.',
        type: 'counter',
        samples: [{ value: this.enforcementErrors }],
      },
    ];
  }

  /** The rules loaded per namespace, for diagnostics and tests. */
  loadedRules(): Map<string, WorkloadRules> {
    return new Map([...this.applied].map(([netns, a]) => [netns, a.rules]));
  }
}
