// Prometheus text exposition of the router metrics (user-surface spec §5.3).
// Services describe their metrics as MetricFamily snapshots taken at scrape
// time; prom-client renders them, next to its process_* and nodejs_* metrics
// (Weave's Go client exported process_* the same way).
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { DatapathCounters, RouterStatus } from './status-model.js';
import { compareOrdered } from '../order.js';

/** One metric family; other services (IPAM, DNS, datapath) add theirs the same way. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: { labels?: Record<string, string>; value: number | bigint }[];
}

/** The content type of the text format prom-client writes (0.0.4). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

let processMetrics: Registry | undefined;

/** One registry per process for process_* and nodejs_*: the collectors it starts (GC observer, event-loop monitor) are per process too. */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

/**
 * Renders MetricFamily snapshots through a prom-client registry, followed by
 * the process-wide process_* and nodejs_* metrics. Each render replaces every
 * family's samples with the snapshot's, and a family missing from the
 * snapshot (e.g. a datapath that went away) leaves the output.
 */
export class MetricsRegistry {
  private readonly registry = new Registry();
  /** Family name -> its prom-client metric and the shape it was registered with. */
  private readonly registered = new Map<string, { metric: Gauge | Counter; shape: string }>();

  constructor() {
    processRegistry();
  }

  async render(families: readonly MetricFamily[]): Promise<string> {
    const byName = new Map<string, MetricFamily>();
    for (const f of families) {
      const seen = byName.get(f.name);
      // Two services reporting one family (same help and type) add up their samples.
      byName.set(f.name, seen ? { ...seen, samples: [...seen.samples, ...f.samples] } : f);
    }
    for (const f of byName.values()) {
      // A family without samples has nothing to say; prom-client would print a 0 for it.
      if (f.samples.length === 0) {
        this.unregister(f.name);
        continue;
      }
      const metric = this.metricFor(f);
      metric.reset();
      for (const s of f.samples) {
        const value = Number(s.value);
        // prom-client writes labels in the object's order: sorted, the output is the same whatever order a service used.
        const labels = Object.fromEntries(Object.entries(s.labels ?? {}).sort(([a], [b]) => compareOrdered(a, b)));
        if (metric instanceof Counter) metric.inc(labels, value);
        else metric.set(labels, value);
      }
    }
    for (const name of [...this.registered.keys()]) if (!byName.has(name)) this.unregister(name);
    // Both texts are prom-client's; the families are set above in one synchronous run, so a scrape never sees half of another's.
    return (await this.registry.metrics()) + (await processRegistry().metrics());
  }

  private metricFor(f: MetricFamily): Gauge | Counter {
    const labelNames = [...new Set(f.samples.flatMap((s) => Object.keys(s.labels ?? {})))].sort();
    const shape = JSON.stringify([f.type, f.help, labelNames]);
    const known = this.registered.get(f.name);
    if (known?.shape === shape) return known.metric;
    this.unregister(f.name);
    const config = { name: f.name, help: f.help, labelNames, registers: [this.registry] };
    const metric = f.type === 'counter' ? new Counter(config) : new Gauge(config);
    this.registered.set(f.name, { metric, shape });
    return metric;
  }

  private unregister(name: string): void {
    if (!this.registered.delete(name)) return;
    this.registry.removeSingleMetric(name);
  }
}

/**
 * `weave_connections` per (state, type, encryption), both encryption values
 * for every observed (state, type) pair, and the termination counter.
 */
export function routerMetricFamilies(s: RouterStatus): MetricFamily[] {
  const counts = new Map<string, { state: string; type: string; yes: number; no: number }>();
  for (const c of s.connections) {
    const type = c.kind === 'connection' && c.overlay ? c.overlay.name : 'unknown';
    const encrypted = c.kind === 'connection' && c.overlay?.encrypted === true;
    const key = `${c.state}\u0000${type}`;
    const entry = counts.get(key) ?? { state: c.state, type, yes: 0, no: 0 };
    if (encrypted) entry.yes++;
    else entry.no++;
    counts.set(key, entry);
  }
  const samples: MetricFamily['samples'] = [];
  for (const e of counts.values()) {
    samples.push({ labels: { encryption: 'yes', state: e.state, type: e.type }, value: e.yes });
    samples.push({ labels: { encryption: '', state: e.state, type: e.type }, value: e.no });
  }
  return [
    { name: 'weave_connections', help: 'Number of peer-to-peer connections.', type: 'gauge', samples },
    {
      name: 'weave_connection_terminations_total',
      help: 'Number of peer-to-peer connections terminated.',
      type: 'counter',
      samples: [{ value: s.terminationCount }],
    },
    ...datapathMetricFamilies(s.datapath),
  ];
}

/**
 * The datapath's packet counters: kernel versus userspace, and drops by
 * reason; and Weave's `weave_flows`, the forwarding entries a kernel datapath
 * holds (Weave: ODP flows; only while there is a fast datapath).
 */
export function datapathMetricFamilies(d: DatapathCounters | undefined): MetricFamily[] {
  if (!d) return [];
  return [
    ...(d.flows === undefined ? [] : [{ name: 'weave_flows', help: 'Number of FastDP flows.', type: 'gauge' as const, samples: [{ value: d.flows }] }]),
    ...(d.overlayMtu === undefined ? [] : [{
      name: 'weave_overlay_mtu',
      help: 'MTU of the overlay on this host: its own, or the lowest a fastdp neighbour announced.',
      type: 'gauge' as const,
      samples: [{ value: d.overlayMtu }],
    }]),
    {
      name: 'weave_datapath_packets_total',
      help: 'Packets the datapath forwarded, by where: in the kernel or through userspace.',
      type: 'counter',
      samples: [
        { labels: { path: 'kernel' }, value: d.kernelForwarded },
        { labels: { path: 'userspace' }, value: d.userspace },
      ],
    },
    {
      name: 'weave_datapath_drops_total',
      help: 'Packets the datapath dropped, by reason.',
      type: 'counter',
      samples: Object.keys(d.drops).sort().map((reason) => ({ labels: { reason }, value: d.drops[reason] ?? 0n })),
    },
  ];
}
