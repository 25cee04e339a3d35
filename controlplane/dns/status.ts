// What weaveDNS reports: the `weave status dns` lines (user-surface spec §2.5),
// its block in the `weave status` summary (§2.1), the `DNS` section of
// `weave report` (§3) and the `weave_dns_entries` metric (§5.3).
import type { MetricFamily } from '../api/metrics.js';
import type { ServiceSection } from '../api/status-model.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';
import { formatIPv4 } from './address.js';
import { stripDomain } from './domain.js';
import { compareForDisplay, type Entry } from './entries.js';

export interface DnsStatus {
  /** Normalised domain, e.g. `weave.local.`. */
  domain: string;
  /** Upstream server addresses in use. */
  upstream: string[];
  /** The DNS server's `ip:port`. */
  address: string;
  ttl: number;
  /** All entries, tombstones included. */
  entries: Entry[];
}

/** `weave status dns`: one line per live entry, display order (user-surface spec §2.5). */
export function renderDnsStatus(s: Pick<DnsStatus, 'domain' | 'entries'>): string {
  return s.entries
    .filter((e) => e.tombstone === 0)
    .sort(compareForDisplay)
    .map((e) => {
      const host = stripDomain(e.hostname, s.domain).padEnd(12);
      const ip = formatIPv4(e.addr).padEnd(15);
      const cid = e.containerId.slice(0, 12).padStart(12);
      return `${host} ${ip} ${cid} ${formatPeerName(e.origin)}\n`;
    })
    .join('');
}

/** The `Service: dns` block of `weave status` (user-surface spec §2.1). */
export function dnsSummarySection(s: DnsStatus): ServiceSection {
  return {
    service: 'dns',
    fields: [
      ['Domain', s.domain],
      ['Upstream', s.upstream.length > 0 ? s.upstream.join(', ') : 'none'],
      ['TTL', String(s.ttl)],
      ['Entries', String(s.entries.filter((e) => e.tombstone === 0).length)],
    ],
  };
}

/** The `DNS` object of `weave report` (user-surface spec §3): entries include tombstones. */
export function dnsReportSection(s: DnsStatus): Record<string, unknown> {
  return {
    Domain: s.domain,
    Upstream: s.upstream,
    Address: s.address,
    TTL: s.ttl,
    Entries: s.entries.length === 0 ? null : s.entries.map((e) => ({
      Hostname: e.hostname,
      Origin: formatPeerName(e.origin),
      ContainerID: e.containerId,
      Address: formatIPv4(e.addr),
      Version: e.version,
      Tombstone: e.tombstone,
    })),
  };
}

/** `weave_dns_entries`: live entries originated by this peer (user-surface spec §5.3). */
export function dnsMetricFamilies(liveOwnedEntries: number): MetricFamily[] {
  return [{ name: 'weave_dns_entries', help: 'Number of DNS entries.', type: 'gauge', samples: [{ value: liveOwnedEntries }] }];
}
