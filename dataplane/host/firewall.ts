// The host firewall, as this project's own nftables table `inet weave`
// (the rules of user-surface spec §6.3 and §5.1). The whole table is one value
// built from FirewallConfig and loaded over netlink in one transaction that
// creates, deletes and refills it: applying is atomic (no moment without
// rules) and idempotent (the same config gives the same table). Nothing here
// touches iptables or any other table; removal deletes the table whole.
// `renderFirewall` gives the same transaction as an nft script.
//
// The encrypted fast datapath's marking rules (wire spec §7.5) live in the same
// table as chains of their own. They change with the set of encrypted
// connections, independently of the rest, so the process keeps the current set
// here: a whole-table reload carries it along, and applyIPsecFirewall replaces
// just those chains. Every load goes through one queue so the two never race.
import { ipsecChains, type IPsecFirewallEntry } from '../ipsec/firewall-rules.js';
import {
  deleteTable, Errno, NetlinkError, NFT_PRIORITY, renderReplaceChains, renderReplaceTable, replaceChains, replaceTable, type NftChain, type NftMatch,
} from '../netlink/index.js';
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

export class FirewallError extends Error {}

const CONTROL_PORT_COMMENT = 'Block non-local access to Weave Net control port';

/** The table's chains for `config`, the IPsec ones included while some connection is encrypted. */
export function firewallChains(config: FirewallConfig): NftChain[] {
  const subnets = [...new Set(config.exposed.map((e) => networkOf(e.cidr)))];
  const natted = [...new Set(config.exposed.filter((e) => e.masquerade).map((e) => networkOf(e.cidr)))];
  const inBridge: NftMatch = { kind: 'iifname', name: config.bridge };
  const outBridge: NftMatch = { kind: 'oifname', name: config.bridge };
  const replies: NftMatch = { kind: 'ctState', states: ['established', 'related'] };
  const filter = (hook: 'input' | 'forward'): NftChain['base'] => ({ type: 'filter', hook, priority: NFT_PRIORITY.filter, policy: 'accept' });
  const chains: NftChain[] = [
    {
      name: 'input',
      base: filter('input'),
      rules: config.controlApi ? [{
        match: [
          { kind: 'daddr', cidr: config.controlApi.address }, { kind: 'dport', protocol: 'tcp', port: config.controlApi.port },
          { kind: 'sourceNotLocal' }, { ...replies, not: true },
        ],
        action: { kind: 'drop' },
        comment: CONTROL_PORT_COMMENT,
      }] : [],
    },
    // spec §6.3 FORWARD block, in order: within the bridge, exposed subnets,
    // out of the bridge, replies into it.
    {
      name: 'forward',
      base: filter('forward'),
      rules: [
        ...(config.dockerBridge && config.dockerBridge !== config.bridge
          ? [{ match: [{ kind: 'iifname', name: config.dockerBridge } as const, outBridge], action: { kind: 'drop' } as const }]
          : []),
        { match: [inBridge, outBridge], action: { kind: 'accept' } },
        { match: [outBridge], action: { kind: 'jump', chain: 'expose' } },
        { match: [inBridge, { ...outBridge, not: true }], action: { kind: 'accept' } },
        { match: [outBridge, replies], action: { kind: 'accept' } },
      ],
    },
    { name: 'expose', rules: subnets.map((s) => ({ match: [{ kind: 'daddr', cidr: s }], action: { kind: 'accept' } })) },
    {
      name: 'postrouting',
      base: { type: 'nat', hook: 'postrouting', priority: NFT_PRIORITY.srcnat, policy: 'accept' },
      rules: natted.flatMap((s) => [
        { match: [{ kind: 'saddr', cidr: s }, { kind: 'daddr', cidr: MULTICAST_ROUTE }], action: { kind: 'return' } },
        { match: [{ kind: 'daddr', cidr: s }, { kind: 'saddr', cidr: s, not: true }], action: { kind: 'masquerade' } },
        { match: [{ kind: 'saddr', cidr: s }, { kind: 'daddr', cidr: s, not: true }], action: { kind: 'masquerade' } },
      ]),
    },
  ];
  // Chains only while some connection is encrypted: a host without IPsec keeps a table without them.
  const ipsec = config.ipsec ?? [];
  if (ipsec.length > 0) chains.push(...ipsecChains(ipsec));
  return chains;
}

/** applyFirewall's transaction for `config` as an nft script (nft loads it to the same table). */
export function renderFirewall(config: FirewallConfig): string {
  return renderReplaceTable(NFT_FAMILY, NFT_TABLE, firewallChains(config));
}

/** applyIPsecFirewall's transaction for `entries` as an nft script. */
export function renderIPsecFirewallUpdate(entries: readonly IPsecFirewallEntry[]): string {
  return renderReplaceChains(NFT_FAMILY, NFT_TABLE, ipsecChains(entries), entries.length > 0);
}

let ipsecEntries: readonly IPsecFirewallEntry[] = [];
let loads: Promise<unknown> = Promise.resolve();

/** errnos that mean this kernel has no nf_tables (or not the part a rule needs), not that a rule is wrong. */
const NO_NF_TABLES = new Set<number>([Errno.EPROTONOSUPPORT, Errno.EOPNOTSUPP, Errno.EAFNOSUPPORT]);

/** Runs one table change after the previous ones, building it only when its turn comes. */
function serialLoad(load: () => Promise<void>, what: string): Promise<void> {
  const run = async (): Promise<void> => {
    try {
      await load();
    } catch (err) {
      const hint = err instanceof NetlinkError && NO_NF_TABLES.has(err.errno) ? ' (does the kernel have nf_tables? modprobe nf_tables)' : '';
      throw new FirewallError(`cannot load ${what} into nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${(err as Error).message}${hint}`);
    }
  };
  const result = loads.then(run, run);
  loads = result.catch(() => undefined);
  return result;
}

/** Loads the table for `config`, replacing any previous one atomically. */
export function applyFirewall(config: FirewallConfig): Promise<void> {
  return serialLoad(() => replaceTable(NFT_FAMILY, NFT_TABLE, firewallChains({ ...config, ipsec: config.ipsec ?? ipsecEntries })), 'the host firewall');
}

/**
 * Replaces the encrypted fast datapath's chains (wire spec §7.5) with rules
 * for exactly `entries`, leaving the rest of the table alone; later
 * whole-table loads keep them.
 */
export function applyIPsecFirewall(entries: readonly IPsecFirewallEntry[]): Promise<void> {
  ipsecEntries = [...entries];
  return serialLoad(() => replaceChains(NFT_FAMILY, NFT_TABLE, ipsecChains(ipsecEntries), ipsecEntries.length > 0), 'the IPsec rules');
}

/** Deletes the table; returns false when it did not exist. */
export async function removeFirewall(): Promise<boolean> {
  try {
    return await deleteTable(NFT_FAMILY, NFT_TABLE);
  } catch (err) {
    throw new FirewallError(`cannot delete nftables table ${NFT_FAMILY} ${NFT_TABLE}: ${(err as Error).message}`);
  }
}
