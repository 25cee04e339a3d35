// The packet-marking and protection rules of the encrypted fast datapath
// (spec §7.5), as nftables chains for this product's own table
// instead of Weave's iptables chains. The effect is the same, except that
// the plain-VXLAN rules match the peer's address alone, not our address too:
//  * outgoing VXLAN to a peer, from any of our addresses, is marked, so the
//    XFRM policy (which matches the mark) encrypts it; marked packets that
//    leave without a transform are dropped;
//  * incoming ESP with our inbound SPI is marked; plain VXLAN from that peer,
//    to any of our addresses, that did not arrive inside such ESP is dropped;
// and one more: a relayed frame that came in inside ESP leaves without the
// inbound mark, so a host relays between an encrypted and a trusted peer
// (with the spec §7.5 rules alone, the OUTPUT filter drops it).
// The host-firewall module includes ipsecChains() in its table; the chains
// carry their own hooks, so where they sit in the table does not matter.
import { parseIPv4 } from '../netlink/inet.js';
import { NFT_PRIORITY, type NftBaseChain, type NftChain, type NftRule } from '../netlink/nft-rules.js';
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

/** Takes the mark off an outgoing UDP packet that came in marked (see the OUTPUT marking chain). */
const RELAYED_MARK_CLEARED: NftRule = {
  match: [{ kind: 'udp' }, { kind: 'markBits', bits: IPSEC_MARK }],
  action: { kind: 'clearMarkBits', bits: IPSEC_MARK },
};

/**
 * The four chains, each with its hook. Each rule matches what the iptables
 * rule of spec §7.5 matches; the static OUTPUT drop uses `rt ipsec missing`
 * where iptables used `-m policy --dir out --pol none`.
 */
export function ipsecChains(entries: readonly IPsecFirewallEntry[]): NftChain[] {
  entries.forEach(checkEntry);
  const hooked = (type: NftBaseChain['type'], hook: NftBaseChain['hook'], priority: number): NftBaseChain => ({ type, hook, priority, policy: 'accept' });
  return [
    // mangle INPUT: ESP from R to L with our SPI gets the mark; it survives decryption.
    {
      name: IPSEC_NFT_CHAINS.inMark,
      base: hooked('filter', 'input', NFT_PRIORITY.mangle),
      // spec §7.5: "only if not present" — one marking rule per {R, L, SPI}.
      rules: unique(entries, (e) => `${e.remoteIp} ${e.localIp} ${e.spiIn}`).map((e) => ({
        match: [{ kind: 'saddr', cidr: e.remoteIp }, { kind: 'daddr', cidr: e.localIp }, { kind: 'espSpi', spi: e.spiIn }],
        action: { kind: 'setMarkBits', bits: IPSEC_MARK },
      })),
    },
    // filter INPUT: plain VXLAN from R that did not come out of that ESP is dropped,
    // whichever of our addresses it was sent to (Weave's rule names L only; frames
    // forged to another of our addresses would pass).
    {
      name: IPSEC_NFT_CHAINS.inFilter,
      base: hooked('filter', 'input', NFT_PRIORITY.filter),
      rules: unique(entries, (e) => `${e.remoteIp} ${e.vxlanPort}`).map((e) => ({
        match: [{ kind: 'saddr', cidr: e.remoteIp }, { kind: 'dport', protocol: 'udp', port: e.vxlanPort }, { kind: 'markBits', bits: IPSEC_MARK, not: true }],
        action: { kind: 'drop' },
      })),
    },
    // mangle OUTPUT: a `route` chain, so the kernel redoes the route and XFRM
    // lookup after the mark is set and the marked policy applies. Whatever
    // source address the packet has (the eBPF datapath on a kernel before 6.0
    // leaves it to routing): Weave's rule marks only packets from L, so one
    // from another of our addresses left in clear; marked, it finds no policy
    // for its source and the OUTPUT filter below drops it.
    // First, any mark a UDP packet carries is taken off: a frame that came in
    // inside ESP keeps the inbound mark through decapsulation, and the
    // datapath relaying it to a trusted peer (plain VXLAN, no SA) would
    // otherwise send it out marked, for the OUTPUT filter to drop. Packets to
    // an encrypted peer are marked again by the rules after it.
    {
      name: IPSEC_NFT_CHAINS.outMark,
      base: hooked('route', 'output', NFT_PRIORITY.mangle),
      rules: [
        ...(entries.length === 0 ? [] : [RELAYED_MARK_CLEARED]),
        ...unique(entries, (e) => `${e.remoteIp} ${e.vxlanPort}`).map((e): NftRule => ({
          match: [{ kind: 'daddr', cidr: e.remoteIp }, { kind: 'dport', protocol: 'udp', port: e.vxlanPort }],
          action: { kind: 'setMarkBits', bits: IPSEC_MARK },
        })),
      ],
    },
    // filter OUTPUT: a marked packet without a transform would leave in clear: drop it.
    // ESP itself passes (the encrypted packet goes through OUTPUT again).
    {
      name: IPSEC_NFT_CHAINS.outFilter,
      base: hooked('filter', 'output', NFT_PRIORITY.filter),
      rules: [{ match: [{ kind: 'notEsp' }, { kind: 'noIpsecRoute' }, { kind: 'markBits', bits: IPSEC_MARK }], action: { kind: 'drop' } }],
    },
  ];
}

/** `entries` without repeats by `key`, in first-seen order (two connections to one peer from different addresses). */
function unique(entries: readonly IPsecFirewallEntry[], key: (e: IPsecFirewallEntry) => string): IPsecFirewallEntry[] {
  const seen = new Map<string, IPsecFirewallEntry>();
  for (const e of entries) if (!seen.has(key(e))) seen.set(key(e), e);
  return [...seen.values()];
}
