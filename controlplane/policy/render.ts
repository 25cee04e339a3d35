// The nftables table enforcing one workload's rules, in the workload's own
// network namespace. Every packet to or from a container passes that
// namespace's input/output hooks whichever datapath carried it (the bridge,
// the eBPF programs' redirect straight into the container, OVS, the sleeve),
// with connection tracking of its own, so this is the one place where policy
// holds on every datapath (see dataplane/host/policy-table.ts).
//
// Per packet: loopback and replies of tracked connections pass; then one
// lookup in `<dir>-any` (address) and one in `<dir>-ports` (address . protocol
// . port); otherwise the packet is counted by protocol and port in a dynamic
// set (read back for weavenpc_blocked_connections_total) and dropped. The
// script replaces the table in one transaction: no moment without rules.
import { formatAddress } from '../ipam/addr.js';
import type { DirectionRules, PortElement, Span, WorkloadRules } from './compile.js';

export const POLICY_TABLE_FAMILY = 'inet';
export const POLICY_TABLE = 'weave-npc';
/** Distinct (protocol, port) pairs counted per direction; beyond it blocked packets are still dropped, uncounted by port. */
export const BLOCKED_SET_SIZE = 1024;
const COMMENT_MAX = 120;

export type Direction = 'ingress' | 'egress';
export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };

function addressSpan(s: Span): string {
  return s.first === s.last ? formatAddress(s.first) : `${formatAddress(s.first)}-${formatAddress(s.last)}`;
}

function portSpan(s: Span): string {
  return s.first === s.last ? String(s.first) : `${s.first}-${s.last}`;
}

function element(e: PortElement): string {
  return `${addressSpan(e.addresses)} . ${PROTOCOL_NAMES[e.protocol] ?? String(e.protocol)} . ${portSpan(e.ports)}`;
}

function elements(items: readonly string[]): string {
  return items.length === 0 ? '' : ` elements = { ${items.join(', ')} };`;
}

/** Which policies a drop is for, as a rule comment (nft limits comments to 128 bytes). */
export function dropComment(policies: readonly string[]): string {
  const text = `isolated by ${policies.join(' ')}`;
  const clean = text.replace(/["\\]/g, '');
  return clean.length <= COMMENT_MAX ? clean : `${clean.slice(0, COMMENT_MAX - 3)}...`;
}

function directionLines(dir: Direction, rules: DirectionRules): string[] {
  const [hook, remote, local] = dir === 'ingress' ? ['input', 'saddr', 'iif'] : ['output', 'daddr', 'oif'];
  return [
    `  set ${dir}-any { type ipv4_addr; flags interval;${elements(rules.any.map(addressSpan))} }`,
    `  set ${dir}-ports { type ipv4_addr . inet_proto . inet_service; flags interval;${elements(rules.ports.map(element))} }`,
    `  set ${dir}-blocked { type inet_proto . inet_service; flags dynamic; size ${BLOCKED_SET_SIZE}; counter; }`,
    `  counter ${dir}-blocked-total {}`,
    `  chain ${dir} {`,
    `    type filter hook ${hook} priority filter; policy accept;`,
    `    ${local} "lo" accept`,
    '    ct state established,related accept',
    `    ip ${remote} @${dir}-any accept`,
    `    ip ${remote} . meta l4proto . th dport @${dir}-ports accept`,
    // The overlay is IPv4: an isolated workload gets no IPv6 either, uncounted (neighbour discovery is not a connection).
    '    meta nfproto ipv6 drop',
    `    counter name "${dir}-blocked-total"`,
    `    meta l4proto { tcp, udp, sctp } add @${dir}-blocked { meta l4proto . th dport }`,
    `    drop comment "${dropComment(rules.policies)}"`,
    '  }',
  ];
}

/** Whether a workload needs a table at all: not while nothing isolates it (weaveworks/weave#3761). */
export function needsTable(rules: WorkloadRules): boolean {
  return rules.ingress !== undefined || rules.egress !== undefined;
}

/**
 * The nft script that makes the namespace's table exactly `rules`: created if
 * absent, deleted, and (when something isolates the workload) defined again.
 */
export function renderPolicyTable(rules: WorkloadRules): string {
  const lines = [
    `table ${POLICY_TABLE_FAMILY} ${POLICY_TABLE} {}`,
    `delete table ${POLICY_TABLE_FAMILY} ${POLICY_TABLE}`,
  ];
  if (needsTable(rules)) {
    lines.push(`table ${POLICY_TABLE_FAMILY} ${POLICY_TABLE} {`, `  comment "${rules.workload.replace(/["\\]/g, '')}"`);
    for (const dir of DIRECTIONS) {
      const r = rules[dir];
      if (r) lines.push(...directionLines(dir, r));
    }
    lines.push('}');
  }
  lines.push('');
  return lines.join('\n');
}
