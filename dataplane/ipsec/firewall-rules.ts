// The packet-marking and protection rules of the encrypted fast datapath
// (spec §7.5), rendered as nftables chains for this product's own table
// instead of Weave's iptables chains. The effect is the same, except that
// the plain-VXLAN rules match the peer's address alone, not our address too:
//  * outgoing VXLAN to a peer, from any of our addresses, is marked, so the
//    XFRM policy (which matches the mark) encrypts it; marked packets that
//    leave without a transform are dropped;
//  * incoming ESP with our inbound SPI is marked; plain VXLAN from that peer,
//    to any of our addresses, that did not arrive inside such ESP is dropped.
// The host-firewall module includes renderIPsecChains() inside its table; the
// chains carry their own hooks, so where they sit in the table does not matter.
import { parseIPv4 } from '../netlink/inet.js';
import { IPSEC_MARK } from './constants.js';

export interface IPsecFirewallEntry {
  localIp: string;
  remoteIp: string;
  /** The forwarder's remote VXLAN UDP port (spec §7.5 P). */
  vxlanPort: number;
  /** Our inbound SPI for this peer (spec §7.5 S). */
  spiIn: number;
}

/** Chain names, one per iptables chain of spec §7.5 (mangle and filter, in and out). */
export const IPSEC_NFT_CHAINS = {
  inMark: 'ipsec-in-mark',
  inFilter: 'ipsec-in',
  outMark: 'ipsec-out-mark',
  outFilter: 'ipsec-out',
} as const;

export class IPsecFirewallError extends Error {}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function checkEntry(e: IPsecFirewallEntry): void {
  try {
    parseIPv4(e.localIp);
    parseIPv4(e.remoteIp);
  } catch (err) {
    throw new IPsecFirewallError(`IPsec firewall rule: ${(err as Error).message}`);
  }
  if (!Number.isInteger(e.vxlanPort) || e.vxlanPort < 1 || e.vxlanPort > 0xffff) {
    throw new IPsecFirewallError(`IPsec firewall rule: VXLAN port ${e.vxlanPort} is not a UDP port`);
  }
  if (!Number.isInteger(e.spiIn) || e.spiIn < 0x100 || e.spiIn > 0xffffffff) {
    throw new IPsecFirewallError(`IPsec firewall rule: SPI ${e.spiIn} is outside 0x100..0xffffffff`);
  }
}

/**
 * The four chains as nft script lines (indented for a table body). Works in an
 * `ip` or `inet` table. Each rule matches what the iptables rule of spec §7.5
 * matches; the static OUTPUT drop uses `rt ipsec missing` where iptables used
 * `-m policy --dir out --pol none`.
 */
export function renderIPsecChains(entries: readonly IPsecFirewallEntry[]): string[] {
  entries.forEach(checkEntry);
  const m = hex(IPSEC_MARK);
  return [
    // mangle INPUT: ESP from R to L with our SPI gets the mark; it survives decryption.
    `  chain ${IPSEC_NFT_CHAINS.inMark} {`,
    '    type filter hook input priority mangle; policy accept;',
    // spec §7.5: "only if not present" — one marking rule per {R, L, SPI}.
    ...unique(entries.map((e) => `    ip saddr ${e.remoteIp} ip daddr ${e.localIp} esp spi ${hex(e.spiIn)} meta mark set meta mark or ${m}`)),
    '  }',
    // filter INPUT: plain VXLAN from R that did not come out of that ESP is dropped,
    // whichever of our addresses it was sent to (Weave's rule names L only; frames
    // forged to another of our addresses would pass).
    `  chain ${IPSEC_NFT_CHAINS.inFilter} {`,
    '    type filter hook input priority filter; policy accept;',
    ...unique(entries.map((e) => `    ip saddr ${e.remoteIp} udp dport ${e.vxlanPort} meta mark and ${m} != ${m} drop`)),
    '  }',
    // mangle OUTPUT: a `route` chain, so the kernel redoes the route and XFRM
    // lookup after the mark is set and the marked policy applies. Whatever
    // source address the packet has (the eBPF datapath on a kernel before 6.0
    // leaves it to routing): Weave's rule marks only packets from L, so one
    // from another of our addresses left in clear; marked, it finds no policy
    // for its source and the OUTPUT filter below drops it.
    `  chain ${IPSEC_NFT_CHAINS.outMark} {`,
    '    type route hook output priority mangle; policy accept;',
    ...unique(entries.map((e) => `    ip daddr ${e.remoteIp} udp dport ${e.vxlanPort} meta mark set meta mark or ${m}`)),
    '  }',
    // filter OUTPUT: a marked packet without a transform would leave in clear: drop it.
    // ESP itself passes (the encrypted packet goes through OUTPUT again).
    `  chain ${IPSEC_NFT_CHAINS.outFilter} {`,
    '    type filter hook output priority filter; policy accept;',
    `    meta l4proto != esp rt ipsec missing meta mark and ${m} == ${m} drop`,
    '  }',
  ];
}

/**
 * A complete nft script that creates (or replaces, in one transaction) a table
 * holding only the IPsec chains. For hosts or tests without the product's main
 * firewall table; the main firewall includes renderIPsecChains() instead.
 */
export function renderIPsecTable(family: 'ip' | 'inet', table: string, entries: readonly IPsecFirewallEntry[]): string {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(table)) throw new IPsecFirewallError(`nft table name ${JSON.stringify(table)} is not a plain identifier`);
  return [`table ${family} ${table} {}`, `delete table ${family} ${table}`, `table ${family} ${table} {`, ...renderIPsecChains(entries), '}', ''].join('\n');
}

/** `lines` without repeats, in first-seen order (two connections to one peer from different addresses). */
function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}
