// What `weave status`, `weave status ipam` and `/report` show about IPAM
// (user surface §2.1, §2.6, §3; wire spec §10.3).
import { cidrRange, formatAddress, formatCIDR, rangeSize } from './addr.js';
import type { AllocatorStatusData } from './allocator.js';
import type { PeerName } from './ring.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';

/** The `Status:` line of the ipam service in `weave status` (user surface §2.1). */
export function ipamStatusLine(d: AllocatorStatusData): string {
  if (d.ring && d.ring.entries.length > 0) {
    const owners = new Set(d.ringRanges.map((r) => r.peer));
    const allUnreachable = [...owners].every((p) => p !== d.ourName && !d.isKnownPeer(p));
    if (allUnreachable) return "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead";
    if (d.pendingAllocates.length + d.pendingClaims.length > 0) return 'waiting for IP(s) to become available';
    return 'ready';
  }
  if (d.consensusRunning && d.paxos) return `awaiting consensus (quorum: ${d.paxos.quorum}, known: ${d.paxos.knownNodes})`;
  if (d.observerPriming) return 'priming';
  return 'idle';
}

/** The ipam block of `weave status` (user surface §2.1), labels right-aligned to column 16. */
export function renderIpamSummary(d: AllocatorStatusData): string {
  const label = (l: string): string => l.padStart(15);
  return [
    `${label('Service')}: ipam`,
    `${label('Status')}: ${ipamStatusLine(d)}`,
    `${label('Range')}: ${formatCIDR(d.universe)}`,
    `${label('DefaultSubnet')}: ${formatCIDR(d.defaultSubnet)}`,
  ].join('\n') + '\n';
}

function peerLabel(d: AllocatorStatusData, peer: PeerName): string {
  return `${formatPeerName(peer)}(${d.nicknames.get(peer) ?? ''})`;
}

/** Go's %04.1f for a percentage. */
function percent(part: number, total: number): string {
  const text = (total === 0 ? 0 : (100 * part) / total).toFixed(1);
  return text.padStart(4, '0');
}

/**
 * `weave status ipam` (user surface §2.6): empty until the ring exists, then
 * our line first and one line per other owner.
 */
export function renderStatusIpam(d: AllocatorStatusData): string {
  if (!d.ring || d.ring.entries.length === 0) return '';
  const total = d.ring.end - d.ring.start;
  const owned = new Map<PeerName, number>();
  for (const r of d.ringRanges) owned.set(r.peer, (owned.get(r.peer) ?? 0) + rangeSize(r.range));
  const line = (peer: PeerName, info: string): string =>
    `${peerLabel(d, peer).padEnd(37)} ${String(owned.get(peer) ?? 0).padStart(8)} IPs (${percent(owned.get(peer) ?? 0, total)}% of total) ${info}\n`;
  let out = line(d.ourName, `(${d.activeIPs} active)`);
  for (const peer of owned.keys()) {
    if (peer === d.ourName) continue;
    out += line(peer, d.isKnownPeer(peer) ? '' : '- unreachable!');
  }
  return out;
}

/** The `IPAM` object of `/report` (user surface §3). */
export interface IpamReport {
  Paxos: { Elector: boolean; KnownNodes: number; Quorum: number } | null;
  Range: string;
  RangeNumIPs: number;
  ActiveIPs: number;
  DefaultSubnet: string;
  Entries: Array<{ Token: string; Size: number; Peer: string; Nickname: string; IsKnownPeer: boolean; Version: number }> | null;
  PendingClaims: Array<{ Ident: string; CIDR: { Addr: string; PrefixLen: number } }> | null;
  PendingAllocates: string[] | null;
}

export function ipamReport(d: AllocatorStatusData): IpamReport {
  const entries = d.ringRanges.map((r) => ({
    Token: formatAddress(r.range.start),
    Size: rangeSize(r.range),
    Peer: formatPeerName(r.peer),
    Nickname: d.nicknames.get(r.peer) ?? '',
    IsKnownPeer: r.peer === d.ourName || d.isKnownPeer(r.peer),
    Version: r.version,
  }));
  return {
    Paxos: d.paxos ? { Elector: d.paxos.elector, KnownNodes: d.paxos.knownNodes, Quorum: d.paxos.quorum } : null,
    Range: formatCIDR(d.universe),
    RangeNumIPs: rangeSize(cidrRange(d.universe)),
    ActiveIPs: d.activeIPs,
    DefaultSubnet: formatCIDR(d.defaultSubnet),
    Entries: entries.length > 0 ? entries : null,
    PendingClaims: d.pendingClaims.length > 0
      ? d.pendingClaims.map((c) => ({ Ident: c.ident, CIDR: { Addr: formatAddress(c.cidr.addr), PrefixLen: c.cidr.prefixLen } })) : null,
    PendingAllocates: d.pendingAllocates.length > 0
      ? d.pendingAllocates.map((a) => `${a.ident} ${formatAddress(a.range.start)}-${formatAddress(a.range.end - 1)}`) : null,
  };
}

/** The label/value lines under `Service: ipam` in `weave status` (user surface §2.1). */
export function ipamSummaryFields(d: AllocatorStatusData): [label: string, value: string][] {
  return [['Status', ipamStatusLine(d)], ['Range', formatCIDR(d.universe)], ['DefaultSubnet', formatCIDR(d.defaultSubnet)]];
}

/** A Prometheus gauge, shaped like the API's metric families (user surface §5.3). */
export interface IpamGauge { name: string; help: string; type: 'gauge'; samples: { labels?: Record<string, string>; value: number }[] }

/** IPAM metrics (user surface §5.3). */
export function ipamMetrics(d: AllocatorStatusData): IpamGauge[] {
  const total = rangeSize(cidrRange(d.universe));
  const unreachable = new Map<PeerName, number>();
  for (const r of d.ringRanges) {
    if (r.peer !== d.ourName && !d.isKnownPeer(r.peer)) unreachable.set(r.peer, (unreachable.get(r.peer) ?? 0) + rangeSize(r.range));
  }
  const unreachableIPs = [...unreachable.values()].reduce((n, x) => n + x, 0);
  const gauge = (name: string, help: string, value: number): IpamGauge => ({ name, help, type: 'gauge', samples: [{ value }] });
  return [
    // Weave's names, help and label: addresses this peer has handed out, and the size of the universe.
    { name: 'weave_ips', help: 'Number of IP addresses.', type: 'gauge', samples: [{ labels: { state: 'local-used' }, value: d.activeIPs }] },
    gauge('weave_max_ips', 'Size of IP address space used by allocator.', total),
    gauge('weave_ipam_unreachable_count', 'Number of unreachable peers.', unreachable.size),
    gauge('weave_ipam_unreachable_percentage', 'Percentage of IP addresses owned  by unreachable peers.' /* sic: Weave's help text */, total === 0 ? 0 : (100 * unreachableIPs) / total),
    gauge('weave_ipam_pending_allocates', 'Number of pending allocates.', d.pendingAllocates.length),
    gauge('weave_ipam_pending_claims', 'Number of pending claims.', d.pendingClaims.length),
  ];
}
