// Text views of `weave status` and its sub-views, byte for byte as the
// user-surface spec §2.1-2.4 shows them (trailing spaces included).
import {
  CONNECTION_STATES,
  connectionAttrs,
  connectionInfo,
  type RouterStatus,
  type ServiceSection,
} from './status-model.js';

/** Labels are right-aligned so that the colon falls in column 16 (spec §2.1). */
function field(label: string, value: string): string {
  return `${label.padStart(15)}: ${value}`;
}

function protocolText(s: RouterStatus): string {
  return s.protocolMinVersion === s.protocolMaxVersion
    ? `weave ${s.protocolMinVersion}`
    : `weave ${s.protocolMinVersion}..${s.protocolMaxVersion}`;
}

function connectionsSummary(s: RouterStatus): string {
  const counts = new Map<string, number>();
  for (const c of s.connections) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
  const parts = CONNECTION_STATES.filter((st) => (counts.get(st) ?? 0) > 0).map((st) => `${counts.get(st)} ${st}`);
  return parts.length === 0 ? `${s.connections.length}` : `${s.connections.length} (${parts.join(', ')})`;
}

function peersSummary(s: RouterStatus): string {
  let established = 0;
  let pending = 0;
  for (const p of s.peers) {
    for (const c of p.connections) {
      if (c.established) established++;
      else pending++;
    }
  }
  if (established + pending === 0) return `${s.peers.length}`;
  const pendingPart = pending > 0 ? `, ${pending} pending` : '';
  return `${s.peers.length} (with ${established} established${pendingPart} connections)`;
}

/**
 * The summary (spec §2.1), without the blank lines the CLI frames it with.
 * `version` is the full version text, e.g. `2.8.1 (version check update disabled)`.
 */
export function renderStatusSummary(s: RouterStatus, version: string, sections: ServiceSection[] = []): string {
  const lines = [
    field('Version', version),
    '',
    field('Service', 'router'),
    field('Protocol', protocolText(s)),
    field('Name', `${s.name}(${s.nickName})`),
    field('Encryption', s.encryption ? 'enabled' : 'disabled'),
    field('PeerDiscovery', s.peerDiscovery ? 'enabled' : 'disabled'),
    field('Targets', String(s.targets.length)),
    field('Connections', connectionsSummary(s)),
    field('Peers', peersSummary(s)),
    field('TrustedSubnets', s.trustedSubnets.length === 0 ? 'none' : s.trustedSubnets.join(', ')),
  ];
  for (const section of sections) {
    lines.push('', field('Service', section.service));
    for (const [label, value] of section.fields) lines.push(field(label, value));
  }
  return lines.join('\n') + '\n';
}

/** `weave status targets` (spec §2.2). */
export function renderTargets(s: RouterStatus): string {
  return s.targets.map((t) => `${t}\n`).join('');
}

/** `weave status connections` (spec §2.3). */
export function renderConnections(s: RouterStatus): string {
  return s.connections
    .map((c) => {
      const inbound = c.kind === 'connection' ? !c.outbound : c.inbound === true;
      const dir = inbound ? '<-' : '->';
      const info = connectionInfo(c, s.encryption);
      const why = c.kind === 'connection' && c.fallbackReason ? ` (${c.fallbackReason})` : '';
      return `${dir} ${c.address.padEnd(21)} ${c.state.padEnd(11)} ${info} ${connectionAttrs(c)}${why}\n`;
    })
    .join('');
}

/** `weave status peers` (spec §2.4). */
export function renderPeers(s: RouterStatus): string {
  let out = '';
  for (const p of s.peers) {
    out += `${p.name}(${p.nickName})\n`;
    for (const c of p.connections) {
      const dir = c.outbound ? '->' : '<-';
      const who = `${c.name}(${c.nickName})`.padEnd(37);
      out += `   ${dir} ${c.address.padEnd(21)} ${who} ${c.established ? 'established' : 'pending'}\n`;
    }
  }
  return out;
}
