// The host firewall, as this project's own nftables table `inet weave`
// (the rules of user-surface spec §6.3 and §5.1, expressed in nft). The whole
// table is one value rendered from FirewallConfig and loaded in one `nft -f -`
// transaction that creates, flushes and refills it: applying is atomic (no
// moment without rules) and idempotent (the same config gives the same table).
// Nothing here touches iptables or any other table; removal deletes the table whole.
import { spawn } from 'node:child_process';
import { networkOf } from './cidr.js';
import { MULTICAST_ROUTE, NFT_FAMILY, NFT_TABLE } from './names.js';

export interface ExposedSubnet {
  /** A bridge address as CIDR, e.g. 10.32.0.254/12. */
  cidr: string;
  /** Masquerade traffic between the subnet and the outside (false = `--without-masquerade`). */
  masquerade: boolean;
}

export interface FirewallConfig {
  bridge: string;
  exposed: readonly ExposedSubnet[];
  /** The control API, protected from non-local access (spec §5.1); omit when it is not on a TCP loopback address. */
  controlApi?: { address: string; port: number };
}

/** Base chains of the table, for tests and diagnostics. */
export const FIREWALL_CHAINS = ['input', 'forward', 'expose', 'postrouting'] as const;

export class FirewallError extends Error {}

function quote(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new FirewallError(`interface name ${JSON.stringify(name)} cannot be used in a firewall rule`);
  return `"${name}"`;
}

/** The nft script for `config`: create-if-absent, delete, then define, so one transaction replaces the table. */
export function renderFirewall(config: FirewallConfig): string {
  const br = quote(config.bridge);
  const subnets = [...new Set(config.exposed.map((e) => networkOf(e.cidr)))];
  const natted = [...new Set(config.exposed.filter((e) => e.masquerade).map((e) => networkOf(e.cidr)))];
  const lines: string[] = [
    `table ${NFT_FAMILY} ${NFT_TABLE} {}`,
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
  ];
  if (config.controlApi) {
    lines.push(
      `    ip daddr ${config.controlApi.address} tcp dport ${config.controlApi.port} fib saddr type != local ct state != { established, related } drop comment "Block non-local access to Weave Net control port"`,
    );
  }
  lines.push(
    '  }',
    // spec §6.3 FORWARD block, in order: within the bridge, exposed subnets,
    // out of the bridge, replies into it.
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname ${br} oifname ${br} accept`,
    `    oifname ${br} jump expose`,
    `    iifname ${br} oifname != ${br} accept`,
    `    oifname ${br} ct state { established, related } accept`,
    '  }',
    '  chain expose {',
    ...subnets.map((s) => `    ip daddr ${s} accept`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
  );
  for (const s of natted) {
    lines.push(
      `    ip saddr ${s} ip daddr ${MULTICAST_ROUTE} return`,
      `    ip daddr ${s} ip saddr != ${s} masquerade`,
      `    ip saddr ${s} ip daddr != ${s} masquerade`,
    );
  }
  lines.push('  }', '}', '');
  return lines.join('\n');
}

interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runNft(args: string[], input?: string): Promise<NftResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(new FirewallError(`cannot run nft: ${err.code ?? err.message} (install the nftables package)`));
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Loads the table for `config`, replacing any previous one atomically. */
export async function applyFirewall(config: FirewallConfig): Promise<void> {
  const r = await runNft(['-f', '-'], renderFirewall(config));
  if (r.code !== 0) throw new FirewallError(`cannot load nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${r.stderr.trim()}`);
}

/** Deletes the table; returns false when it did not exist. */
export async function removeFirewall(): Promise<boolean> {
  const r = await runNft(['delete', 'table', NFT_FAMILY, NFT_TABLE]);
  if (r.code === 0) return true;
  if (/No such file or directory/.test(r.stderr)) return false;
  throw new FirewallError(`cannot delete nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${r.stderr.trim()}`);
}

/** The table as `nft list table` prints it, or undefined when absent. */
export async function listFirewall(): Promise<string | undefined> {
  const r = await runNft(['list', 'table', NFT_FAMILY, NFT_TABLE]);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return undefined;
  throw new FirewallError(`cannot list nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${r.stderr.trim()}`);
}
