// The nftables rules this project writes, as data. Each match and action has
// two forms that say the same thing: the kernel's expressions (what nft
// compiles its text to, as `nft --debug=netlink` prints them, dependencies
// included) and nft's text. The router loads the first over netlink; the
// second is for people (`renderNftChains`) and for tests, which load it with
// nft beside ours and compare what nft lists.
//
// Only what the router's tables need is here: interface names, IPv4
// addresses and prefixes, TCP/UDP destination ports, ESP SPIs, connection
// state, the reverse-path type of the source, packet marks and IPsec routes.
import { endianness } from 'node:os';
import { AttributeWriter } from './attributes.js';
import { parseIPv4, parseIPv4Prefix } from './inet.js';

/** linux/netfilter/nf_tables.h: expression lists and expression attributes */
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_META_DREG = 1;
const NFTA_META_KEY = 2;
const NFTA_META_SREG = 3;
const NFT_META_MARK = 3;
const NFT_META_IIFNAME = 6;
const NFT_META_OIFNAME = 7;
const NFT_META_NFPROTO = 15;
const NFT_META_L4PROTO = 16;
const NFTA_PAYLOAD_DREG = 1;
const NFTA_PAYLOAD_BASE = 2;
const NFTA_PAYLOAD_OFFSET = 3;
const NFTA_PAYLOAD_LEN = 4;
const NFT_PAYLOAD_NETWORK_HEADER = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER = 2;
const NFTA_BITWISE_SREG = 1;
const NFTA_BITWISE_DREG = 2;
const NFTA_BITWISE_LEN = 3;
const NFTA_BITWISE_MASK = 4;
const NFTA_BITWISE_XOR = 5;
const NFTA_CMP_SREG = 1;
const NFTA_CMP_OP = 2;
const NFTA_CMP_DATA = 3;
const NFT_CMP_EQ = 0;
const NFT_CMP_NEQ = 1;
const NFTA_CT_DREG = 1;
const NFTA_CT_KEY = 2;
const NFT_CT_STATE = 0;
const NFTA_FIB_DREG = 1;
const NFTA_FIB_RESULT = 2;
const NFTA_FIB_FLAGS = 3;
const NFT_FIB_RESULT_ADDRTYPE = 3;
const NFTA_FIB_F_SADDR = 1;
const NFTA_RT_DREG = 1;
const NFTA_RT_KEY = 2;
const NFT_RT_XFRM = 4;
const NFTA_IMMEDIATE_DREG = 1;
const NFTA_IMMEDIATE_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
/** Registers: the verdict register, and the first 16-byte data register nft uses. */
const NFT_REG_VERDICT = 0;
const NFT_REG_1 = 1;
/** linux/netfilter.h and nf_tables.h: verdict codes. */
const VERDICT_CODES = { drop: 0, accept: 1, jump: -3, return: -5 } as const;
/** NFPROTO_IPV4: the family an `ip ...` match in an inet table depends on. */
const NFPROTO_IPV4 = 2;
/** IP protocol numbers. */
const IP_PROTOCOLS = { tcp: 6, udp: 17, esp: 50 } as const;
/** RTN_LOCAL (linux/rtnetlink.h): an address of this host, for `fib ... type local`. */
const RTN_LOCAL = 2;
/** nf_conntrack_common.h: a connection's state bits, as `ct state` compares them. */
export const CT_STATES = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 } as const;
/** IFNAMSIZ: nft compares an interface name as 16 bytes, NUL-padded. */
const IFNAMSIZ = 16;
/** struct iphdr: where the addresses are; the transport header: where ports and the ESP SPI are. */
const IPV4_SADDR_OFFSET = 12;
const IPV4_DADDR_OFFSET = 16;
const DPORT_OFFSET = 2;
const ESP_SPI_OFFSET = 0;
/** libnftnl's rule user data: a comment, as a type-length-value. */
const NFTNL_UDATA_RULE_COMMENT = 0;
const MAX_COMMENT_BYTES = 255;
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

export type CtState = keyof typeof CT_STATES;

/** What a rule matches; `not` inverts one match. All of a rule's matches must hold. */
export type NftMatch =
  /** `iifname "x"`, `oifname != "x"` */
  | { kind: 'iifname' | 'oifname'; name: string; not?: boolean }
  /** `ip saddr a.b.c.d/n`, `ip daddr != a.b.c.d` */
  | { kind: 'saddr' | 'daddr'; cidr: string; not?: boolean }
  /** `tcp dport 6784` */
  | { kind: 'dport'; protocol: 'tcp' | 'udp'; port: number }
  /** `esp spi 0x1234` */
  | { kind: 'espSpi'; spi: number }
  /** `meta l4proto != esp` */
  | { kind: 'notEsp' }
  /** `meta l4proto udp` */
  | { kind: 'udp' }
  /** `fib saddr type != local`: the source is not an address of this host. */
  | { kind: 'sourceNotLocal' }
  /**
   * `ct state established,related`: any of `states`; with `not`, none of them
   * (`ct state ! ...`). A packet's connection is in one state (one bit), so
   * this is what a set lookup (`ct state { a, b }`) matches, without a set.
   */
  | { kind: 'ctState'; states: readonly CtState[]; not?: boolean }
  /** `meta mark and m == m` (all bits of `bits` set), or `!= m` with `not`. */
  | { kind: 'markBits'; bits: number; not?: boolean }
  /** `rt ipsec missing`: the packet's route has no IPsec transform. */
  | { kind: 'noIpsecRoute' };

/** What a rule does when it matches. */
export type NftAction =
  | { kind: 'accept' | 'drop' | 'return' | 'masquerade' }
  | { kind: 'jump'; chain: string }
  /** `meta mark set meta mark or m` */
  | { kind: 'setMarkBits'; bits: number }
  /** `meta mark set meta mark and ~m` */
  | { kind: 'clearMarkBits'; bits: number };

export interface NftRule {
  match: readonly NftMatch[];
  action: NftAction;
  comment?: string;
}

export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

/** A chain's hook: `type <type> hook <hook> priority <priority>; policy <policy>;`. */
export interface NftBaseChain {
  type: 'filter' | 'nat' | 'route';
  hook: NftHook;
  priority: number;
  policy: 'accept' | 'drop';
}

/** A chain and its rules; without `base` it is a regular chain, entered by jumps. */
export interface NftChain {
  name: string;
  base?: NftBaseChain;
  rules: readonly NftRule[];
}

/** nf_tables' table families, by nft's names (linux/netfilter.h NFPROTO_*). */
export const NFT_FAMILIES = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;
export type NftFamily = keyof typeof NFT_FAMILIES;

/** The families whose rules can match IPv4 headers: inet (with a family check first) and ip. */
export type NftIpFamily = 'inet' | 'ip';

/** Named nft priorities (nft's standard values for these families). */
export const NFT_PRIORITY = { mangle: -150, filter: 0, srcnat: 100 } as const;

export class NftRuleError extends Error {}

type Encoder = (list: AttributeWriter) => void;

function expression(name: string, fill?: (data: AttributeWriter) => void): Encoder {
  return (w) => w.nested(NFTA_LIST_ELEM, (e) => {
    e.string(NFTA_EXPR_NAME, name);
    e.nested(NFTA_EXPR_DATA, fill ?? (() => undefined));
  });
}

const value = (bytes: Uint8Array) => (w: AttributeWriter): void => void w.bytes(NFTA_DATA_VALUE, bytes);

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A register value as the kernel keeps meta, ct and fib keys: in host byte order. */
function hostU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (HOST_LITTLE_ENDIAN) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
}

function cmp(bytes: Uint8Array, not = false): Encoder {
  return expression('cmp', (d) => d.u32be(NFTA_CMP_SREG, NFT_REG_1).u32be(NFTA_CMP_OP, not ? NFT_CMP_NEQ : NFT_CMP_EQ).nested(NFTA_CMP_DATA, value(bytes)));
}

function metaLoad(key: number): Encoder {
  return expression('meta', (d) => d.u32be(NFTA_META_DREG, NFT_REG_1).u32be(NFTA_META_KEY, key));
}

/** reg1 = (reg1 & mask) ^ xor, over `mask.length` bytes. */
function bitwise(mask: Buffer, xor: Buffer): Encoder {
  return expression('bitwise', (d) => d
    .u32be(NFTA_BITWISE_SREG, NFT_REG_1).u32be(NFTA_BITWISE_DREG, NFT_REG_1).u32be(NFTA_BITWISE_LEN, mask.length)
    .nested(NFTA_BITWISE_MASK, value(mask)).nested(NFTA_BITWISE_XOR, value(xor)));
}

function payloadLoad(base: number, offset: number, length: number): Encoder {
  return expression('payload', (d) => d
    .u32be(NFTA_PAYLOAD_DREG, NFT_REG_1).u32be(NFTA_PAYLOAD_BASE, base)
    .u32be(NFTA_PAYLOAD_OFFSET, offset).u32be(NFTA_PAYLOAD_LEN, length));
}

function l4protoIs(protocol: number, not = false): Encoder[] {
  return [metaLoad(NFT_META_L4PROTO), cmp(Uint8Array.of(protocol), not)];
}

function interfaceName(name: string): Buffer {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new NftRuleError(`interface name ${JSON.stringify(name)} cannot be used in a firewall rule`);
  }
  const padded = Buffer.alloc(IFNAMSIZ);
  padded.write(name);
  return padded;
}

/** `a.b.c.d/n` as nft loads it: the network's address and the prefix's mask, 4 bytes each. */
function ipv4Prefix(cidr: string): { address: Buffer; mask: Buffer; bits: number } {
  const { address: text, prefixLen: bits } = cidr.includes('/') ? parseIPv4Prefix(cidr) : { address: cidr, prefixLen: 32 };
  const maskNumber = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { address: u32((parseIPv4(text).readUInt32BE(0) & maskNumber) >>> 0), mask: u32(maskNumber), bits };
}

function checkU32(what: string, n: number, min = 0): void {
  if (!Number.isInteger(n) || n < min || n > 0xffffffff) throw new NftRuleError(`${what} ${n} is not a 32-bit value`);
}

function matchExpressions(match: NftMatch): Encoder[] {
  switch (match.kind) {
    case 'iifname':
    case 'oifname':
      return [metaLoad(match.kind === 'iifname' ? NFT_META_IIFNAME : NFT_META_OIFNAME), cmp(interfaceName(match.name), match.not)];
    case 'saddr':
    case 'daddr': {
      const { address, mask, bits } = ipv4Prefix(match.cidr);
      // As nft does: a prefix of whole bytes loads and compares just those bytes (all four for an
      // address); any other is loaded whole and masked first.
      const wholeBytes = bits % 8 === 0 && bits > 0;
      const length = wholeBytes ? bits / 8 : 4;
      const load = payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, match.kind === 'saddr' ? IPV4_SADDR_OFFSET : IPV4_DADDR_OFFSET, length);
      if (wholeBytes) return [load, cmp(address.subarray(0, length), match.not)];
      return [load, bitwise(mask, Buffer.alloc(4)), cmp(address, match.not)];
    }
    case 'dport': {
      if (!Number.isInteger(match.port) || match.port < 0 || match.port > 0xffff) throw new NftRuleError(`${match.port} is not a port`);
      const port = Buffer.alloc(2);
      port.writeUInt16BE(match.port);
      return [...l4protoIs(IP_PROTOCOLS[match.protocol]), payloadLoad(NFT_PAYLOAD_TRANSPORT_HEADER, DPORT_OFFSET, 2), cmp(port)];
    }
    case 'espSpi':
      checkU32('ESP SPI', match.spi);
      return [...l4protoIs(IP_PROTOCOLS.esp), payloadLoad(NFT_PAYLOAD_TRANSPORT_HEADER, ESP_SPI_OFFSET, 4), cmp(u32(match.spi))];
    case 'notEsp':
      return l4protoIs(IP_PROTOCOLS.esp, true);
    case 'udp':
      return l4protoIs(IP_PROTOCOLS.udp);
    case 'sourceNotLocal':
      return [
        expression('fib', (d) => d.u32be(NFTA_FIB_DREG, NFT_REG_1).u32be(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE).u32be(NFTA_FIB_FLAGS, NFTA_FIB_F_SADDR)),
        cmp(hostU32(RTN_LOCAL), true),
      ];
    case 'ctState': {
      if (match.states.length === 0) throw new NftRuleError('a ct state match names no state');
      const bits = match.states.reduce((acc, s) => acc | CT_STATES[s], 0);
      // Any of the states: (state & bits) != 0; none of them: == 0, as nft compiles `ct state ! a,b`.
      return [
        expression('ct', (d) => d.u32be(NFTA_CT_DREG, NFT_REG_1).u32be(NFTA_CT_KEY, NFT_CT_STATE)),
        bitwise(hostU32(bits), Buffer.alloc(4)),
        cmp(Buffer.alloc(4), !match.not),
      ];
    }
    case 'markBits':
      checkU32('mark', match.bits, 1);
      return [metaLoad(NFT_META_MARK), bitwise(hostU32(match.bits), Buffer.alloc(4)), cmp(hostU32(match.bits), match.not)];
    case 'noIpsecRoute':
      return [expression('rt', (d) => d.u32be(NFTA_RT_DREG, NFT_REG_1).u32be(NFTA_RT_KEY, NFT_RT_XFRM)), cmp(Uint8Array.of(0))];
  }
}

function verdict(code: number, chain?: string): Encoder {
  return expression('immediate', (d) => d.u32be(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT).nested(NFTA_IMMEDIATE_DATA, (v) => v.nested(NFTA_DATA_VERDICT, (c) => {
    c.u32be(NFTA_VERDICT_CODE, code >>> 0);
    if (chain !== undefined) c.string(NFTA_VERDICT_CHAIN, chain);
  })));
}

function actionExpressions(action: NftAction): Encoder[] {
  switch (action.kind) {
    case 'accept':
    case 'drop':
    case 'return':
      return [verdict(VERDICT_CODES[action.kind])];
    case 'jump':
      return [verdict(VERDICT_CODES.jump, action.chain)];
    case 'masquerade':
      return [expression('masq')];
    case 'setMarkBits':
    case 'clearMarkBits':
      checkU32('mark', action.bits, 1);
      // (mark & ~bits) ^ bits sets them, ^ 0 clears them: what nft compiles `or` and `and` into.
      return [
        metaLoad(NFT_META_MARK),
        bitwise(hostU32(~action.bits), action.kind === 'setMarkBits' ? hostU32(action.bits) : Buffer.alloc(4)),
        expression('meta', (d) => d.u32be(NFTA_META_KEY, NFT_META_MARK).u32be(NFTA_META_SREG, NFT_REG_1)),
      ];
  }
}

function isIpHeaderMatch(m: NftMatch): boolean {
  return m.kind === 'saddr' || m.kind === 'daddr';
}

/**
 * The rule's expressions, written into NFTA_RULE_EXPRESSIONS. In an inet
 * table the first IPv4 header match is preceded by the family check nft adds
 * (`meta nfproto ipv4`), so IPv6 packets never match it.
 */
export function writeRuleExpressions(list: AttributeWriter, family: NftIpFamily, rule: NftRule): void {
  const encoders: Encoder[] = [];
  let familyChecked = family !== 'inet';
  for (const m of rule.match) {
    if (!familyChecked && isIpHeaderMatch(m)) {
      encoders.push(metaLoad(NFT_META_NFPROTO), cmp(Uint8Array.of(NFPROTO_IPV4)));
      familyChecked = true;
    }
    encoders.push(...matchExpressions(m));
  }
  encoders.push(...actionExpressions(rule.action));
  for (const e of encoders) e(list);
}

/** The rule's comment as libnftnl's user data (NFTA_RULE_USERDATA). */
export function ruleUserData(comment: string): Buffer {
  checkComment(comment);
  const text = Buffer.from(`${comment}\0`);
  return Buffer.concat([Buffer.from([NFTNL_UDATA_RULE_COMMENT, text.length]), text]);
}

function checkComment(comment: string): void {
  if (comment.includes('"') || comment.includes('\0') || Buffer.byteLength(comment) + 1 > MAX_COMMENT_BYTES) {
    throw new NftRuleError(`rule comment ${JSON.stringify(comment)} cannot be stored (no quotes, at most ${MAX_COMMENT_BYTES - 1} bytes)`);
  }
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

function matchText(m: NftMatch): string {
  const not = 'not' in m && m.not === true;
  switch (m.kind) {
    case 'iifname':
    case 'oifname':
      interfaceName(m.name);
      return `${m.kind} ${not ? '!= ' : ''}"${m.name}"`;
    case 'saddr':
    case 'daddr':
      return `ip ${m.kind} ${not ? '!= ' : ''}${m.cidr}`;
    case 'dport':
      return `${m.protocol} dport ${m.port}`;
    case 'espSpi':
      return `esp spi ${hex(m.spi)}`;
    case 'notEsp':
      return 'meta l4proto != esp';
    case 'udp':
      return 'meta l4proto udp';
    case 'sourceNotLocal':
      return 'fib saddr type != local';
    case 'ctState':
      return `ct state ${not ? '! ' : ''}${m.states.join(',')}`;
    case 'markBits':
      return `meta mark and ${hex(m.bits)} ${not ? '!=' : '=='} ${hex(m.bits)}`;
    case 'noIpsecRoute':
      return 'rt ipsec missing';
  }
}

function actionText(a: NftAction): string {
  switch (a.kind) {
    case 'jump':
      return `jump ${a.chain}`;
    case 'setMarkBits':
      return `meta mark set meta mark or ${hex(a.bits)}`;
    case 'clearMarkBits':
      return `meta mark set meta mark and ${hex(~a.bits)}`;
    default:
      return a.kind;
  }
}

/** One rule in nft's syntax, e.g. `iifname "weave" oifname "weave" accept`. */
export function renderNftRule(rule: NftRule): string {
  const parts = [...rule.match.map(matchText), actionText(rule.action)];
  if (rule.comment !== undefined) {
    checkComment(rule.comment);
    parts.push(`comment "${rule.comment}"`);
  }
  return parts.join(' ');
}

/** Chains as the body of an nft table block, indented by two spaces. */
export function renderNftChains(chains: readonly NftChain[]): string[] {
  return chains.flatMap((c) => [
    `  chain ${c.name} {`,
    ...(c.base ? [`    type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority}; policy ${c.base.policy};`] : []),
    ...c.rules.map((r) => `    ${renderNftRule(r)}`),
    '  }',
  ]);
}
