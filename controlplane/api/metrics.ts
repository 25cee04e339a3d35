// Prometheus text exposition of the router metrics (user-surface spec §5.3).
import type { DatapathCounters, RouterStatus } from './status-model.js';

/** One metric family; other services (IPAM, DNS, datapath) add theirs the same way. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: { labels?: Record<string, string>; value: number | bigint }[];
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatMetricFamilies(families: MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const keys = Object.keys(s.labels ?? {}).sort();
      const labels = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escapeLabel(s.labels![k])}"`).join(',')}}`;
      out += `${f.name}${labels} ${s.value.toString()}\n`;
    }
  }
  return out;
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

/** The datapath's packet counters: kernel versus userspace, and drops by reason. */
export function datapathMetricFamilies(d: DatapathCounters | undefined): MetricFamily[] {
  if (!d) return [];
  return [
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

/** The process_* families a Prometheus client exports by default. */
export function processMetricFamilies(): MetricFamily[] {
  const mem = process.memoryUsage();
  return [
    {
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      type: 'gauge',
      samples: [{ value: mem.rss }],
    },
    {
      name: 'process_start_time_seconds',
      help: 'Start time of the process since unix epoch in seconds.',
      type: 'gauge',
      samples: [{ value: Math.floor(Date.now() / 1000 - process.uptime()) }],
    },
  ];
}
