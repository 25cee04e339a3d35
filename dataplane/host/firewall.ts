// The host firewall, as this project's own nftables table `inet weave`
// (the rules of user-surface spec §6.3 and §5.1, expressed in nft). The whole
// table is one value rendered from FirewallConfig and loaded in one `nft -f -`
// transaction that creates, flushes and refills it: applying is atomic (no
// moment without rules) and idempotent (the same config gives the same table).
// Nothing here touches iptables or any other table; removal deletes the table whole.
//
// The encrypted fast datapath's marking rules (wire spec §7.5) live in the same
// table as chains of their own. They change with the set of encrypted
// connections, independently of the rest, so the process keeps the current set
// here: a whole-table reload carries it along, and applyIPsecFirewall replaces
// just those chains. Every load goes through one queue so the two never race.
import { spawn } from 'node:child_process';
import { IPSEC_NFT_CHAINS, renderIPsecChains, type IPsecFirewallEntry } from '../ipsec/firewall-rules.js';
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
  /** `--docker-bridge`: its traffic into the weave bridge is dropped (spec §6.3, Weave's `-i docker0 -o weave -j DROP`). */
  dockerBridge?: string;
  /** Encrypted fast datapath connections (wire spec §7.5); default: the set last given to applyIPsecFirewall. */
  ipsec?: readonly IPsecFirewallEntry[];
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
    ...(config.dockerBridge && config.dockerBridge !== config.bridge ? [`    iifname ${quote(config.dockerBridge)} oifname ${br} drop`] : []),
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
  lines.push('  }');
  // Chains only while some connection is encrypted: a host without IPsec keeps a table without them.
  const ipsec = config.ipsec ?? [];
  if (ipsec.length > 0) lines.push(...renderIPsecChains(ipsec));
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * The nft script that replaces only the IPsec chains (creating the table if it
 * is absent): declare them, delete them, and define them again for `entries`,
 * in one transaction. No entries: the chains are removed.
 */
export function renderIPsecFirewallUpdate(entries: readonly IPsecFirewallEntry[]): string {
  const hooks: Record<string, string> = {
    [IPSEC_NFT_CHAINS.inMark]: 'type filter hook input priority mangle; policy accept;',
    [IPSEC_NFT_CHAINS.inFilter]: 'type filter hook input priority filter; policy accept;',
    [IPSEC_NFT_CHAINS.outMark]: 'type route hook output priority mangle; policy accept;',
    [IPSEC_NFT_CHAINS.outFilter]: 'type filter hook output priority filter; policy accept;',
  };
  const names = Object.keys(hooks);
  const lines = [
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    ...names.map((n) => `  chain ${n} { ${hooks[n]} }`),
    '}',
    ...names.map((n) => `delete chain ${NFT_FAMILY} ${NFT_TABLE} ${n}`),
  ];
  if (entries.length > 0) lines.push(`table ${NFT_FAMILY} ${NFT_TABLE} {`, ...renderIPsecChains(entries), '}');
  lines.push('');
  return lines.join('\n');
}

export interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs nft with `args` (and `input` on stdin), in the network namespace at path `netns` when given. */
export function runNft(args: string[], input?: string, netns?: string): Promise<NftResult> {
  return new Promise((resolve, reject) => {
    const argv = netns ? [`--net=${netns}`, '--', 'nft', ...args] : args;
    const child = spawn(netns ? 'nsenter' : 'nft', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
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

let ipsecEntries: readonly IPsecFirewallEntry[] = [];
let loads: Promise<unknown> = Promise.resolve();

/** Runs one table change after the previous ones, rendering it only when its turn comes. */
function serialLoad(render: () => string, what: string): Promise<void> {
  const run = async (): Promise<void> => {
    const r = await runNft(['-f', '-'], render());
    if (r.code !== 0) throw new FirewallError(`cannot load ${what} into nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${r.stderr.trim()}`);
  };
  const result = loads.then(run, run);
  loads = result.catch(() => undefined);
  return result;
}

/** Loads the table for `config`, replacing any previous one atomically. */
export function applyFirewall(config: FirewallConfig): Promise<void> {
  return serialLoad(() => renderFirewall({ ...config, ipsec: config.ipsec ?? ipsecEntries }), 'the host firewall');
}

/**
 * Replaces the encrypted fast datapath's chains (wire spec §7.5) with rules
 * for exactly `entries`, leaving the rest of the table alone; later
 * whole-table loads keep them.
 */
export function applyIPsecFirewall(entries: readonly IPsecFirewallEntry[]): Promise<void> {
  ipsecEntries = [...entries];
  return serialLoad(() => renderIPsecFirewallUpdate(ipsecEntries), 'the IPsec rules');
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
