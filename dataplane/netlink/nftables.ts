// nf_tables over netlink (NETLINK_NETFILTER), for the two things the router
// does often: ask whether a chain exists (at every start: which iptables the
// host uses, by its filter table), and replace a small table of its own in a
// container's namespace (at every attach and detach: container-multicast.ts).
// Running the nft command for them forked the router each time (~8 ms of its
// CPU here, page tables and all, and copy-on-write faults after) and ran an
// nft process (~15 ms): at 10 attaches a second, most of the router's CPU.
// Only the expressions those rules need are encoded (nft --debug=netlink
// shows the same for the same rules); the host firewall's tables, rendered
// whole, still go through nft.
import { AttributeWriter } from './attributes.js';
import { NetlinkError } from './errors.js';
import { parseIPv4, parseIPv4Prefix } from './inet.js';
import { NLM_F_APPEND, NLM_F_CREATE } from './message.js';
import { NETLINK_NETFILTER, NetlinkSocket, type BatchMessage, type OpenOptions } from './socket.js';

/** linux/netfilter/nfnetlink.h */
const NFNL_SUBSYS_NFTABLES = 10;
const NFNETLINK_V0 = 0;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
/** linux/netfilter/nf_tables.h: messages */
const NFT_MSG_NEWTABLE = 0;
const NFT_MSG_DELTABLE = 2;
const NFT_MSG_NEWCHAIN = 3;
const NFT_MSG_GETCHAIN = 4;
const NFT_MSG_NEWRULE = 6;
/** ... table, chain, hook and rule attributes */
const NFTA_TABLE_NAME = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_CHAIN_TYPE = 7;
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_RULE_USERDATA = 7;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
/** ... expression attributes: meta, payload, bitwise, cmp, immediate, and their data */
const NFTA_META_DREG = 1;
const NFTA_META_KEY = 2;
const NFT_META_IIFNAME = 6;
const NFTA_PAYLOAD_DREG = 1;
const NFTA_PAYLOAD_BASE = 2;
const NFTA_PAYLOAD_OFFSET = 3;
const NFTA_PAYLOAD_LEN = 4;
const NFT_PAYLOAD_NETWORK_HEADER = 1;
const NFTA_BITWISE_SREG = 1;
const NFTA_BITWISE_DREG = 2;
const NFTA_BITWISE_LEN = 3;
const NFTA_BITWISE_MASK = 4;
const NFTA_BITWISE_XOR = 5;
const NFTA_CMP_SREG = 1;
const NFTA_CMP_OP = 2;
const NFTA_CMP_DATA = 3;
const NFT_CMP_EQ = 0;
const NFTA_IMMEDIATE_DREG = 1;
const NFTA_IMMEDIATE_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
/** Registers: the verdict register, and the first 16-byte data register nft uses. */
const NFT_REG_VERDICT = 0;
const NFT_REG_1 = 1;
/** linux/netfilter.h: verdicts (NF_DROP, NF_ACCEPT), and the IPv4 input hook. */
const VERDICTS = { drop: 0, accept: 1 } as const;
const NF_INET_LOCAL_IN = 1;
/** libnftnl's rule user data: a comment, as a type-length-value. */
const NFTNL_UDATA_RULE_COMMENT = 0;
/** IFNAMSIZ: nft compares an interface name as 16 bytes, NUL-padded. */
const IFNAMSIZ = 16;
/** struct iphdr: where the addresses are. */
const IPV4_SADDR_OFFSET = 12;
const IPV4_DADDR_OFFSET = 16;
/** One reply and an ack; the default 4 MiB buffer is for dumps and event bursts. */
const RECEIVE_BUFFER_BYTES = 64 * 1024;

/** nf_tables' address families, by nft's names (linux/netfilter.h NFPROTO_*). */
export const NFT_FAMILIES = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;
export type NftFamily = keyof typeof NFT_FAMILIES;

/** nf_tables messages are typed within nfnetlink's subsystem. */
const nftMessageType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

/** A socket for one request or batch; small, and in namespace `netns` when given. */
function openNetfilter(netns: OpenOptions['netns'] | undefined): NetlinkSocket {
  return NetlinkSocket.open(NETLINK_NETFILTER, { receiveBufferBytes: RECEIVE_BUFFER_BYTES, ...(netns === undefined ? {} : { netns }) });
}

/** struct nfgenmsg: u8 family, u8 version, be16 res_id (the subsystem, in a batch's begin and end). */
function nfgenmsg(family: number, resId = 0): Buffer {
  const b = Buffer.from([family, NFNETLINK_V0, 0, 0]);
  b.writeUInt16BE(resId, 2);
  return b;
}

/** struct nfgenmsg, then the attributes naming the chain. */
export function encodeGetChain(family: NftFamily, table: string, chain: string): Buffer {
  return Buffer.concat([nfgenmsg(NFT_FAMILIES[family]), new AttributeWriter().string(NFTA_CHAIN_TABLE, table).string(NFTA_CHAIN_NAME, chain).build()]);
}

/**
 * Whether chain `chain` of table `table` exists in this network namespace
 * (or `netns`), as `nft list chain <family> <table> <chain>` succeeding says. Any refusal
 * by the kernel counts as no: no such table or chain (ENOENT), no nf_tables
 * in this kernel (EPROTONOSUPPORT, EOPNOTSUPP), no permission.
 */
export async function nftChainExists(family: NftFamily, table: string, chain: string, netns?: OpenOptions['netns']): Promise<boolean> {
  let sock: NetlinkSocket;
  try {
    sock = openNetfilter(netns);
  } catch (err) {
    if (err instanceof NetlinkError) return false;
    throw err;
  }
  try {
    await sock.request(
      { type: nftMessageType(NFT_MSG_GETCHAIN), payload: encodeGetChain(family, table, chain) },
      { operation: `get nftables chain ${family} ${table} ${chain}` },
    );
    return true;
  } catch (err) {
    if (err instanceof NetlinkError) return false;
    throw err;
  } finally {
    sock.close();
  }
}

/** What a rule of ours matches, all of it: `iifname "x"`, `ip saddr a.b.c.d/n`, `ip daddr a.b.c.d/n`. */
export type NftMatch =
  | { kind: 'iifname'; name: string }
  | { kind: 'saddr' | 'daddr'; cidr: string };

export interface NftRule {
  match: readonly NftMatch[];
  verdict: keyof typeof VERDICTS;
  comment?: string;
}

/** A base chain of an ip table: `type filter hook input priority <n>; policy <p>;`. */
export interface NftInputChain {
  name: string;
  priority: number;
  policy: keyof typeof VERDICTS;
  rules: readonly NftRule[];
}

function expression(name: string, fill: (data: AttributeWriter) => void): (w: AttributeWriter) => void {
  return (w) => w.nested(NFTA_LIST_ELEM, (e) => e.string(NFTA_EXPR_NAME, name).nested(NFTA_EXPR_DATA, fill));
}

const value = (bytes: Uint8Array) => (w: AttributeWriter): void => void w.bytes(NFTA_DATA_VALUE, bytes);

function cmpEq(bytes: Uint8Array): (w: AttributeWriter) => void {
  return expression('cmp', (d) => d.u32be(NFTA_CMP_SREG, NFT_REG_1).u32be(NFTA_CMP_OP, NFT_CMP_EQ).nested(NFTA_CMP_DATA, value(bytes)));
}

/** `a.b.c.d/n` as nft loads it: the network's address and the prefix's mask, 4 bytes each. */
function ipv4Prefix(cidr: string): { address: Buffer; mask: Buffer; bits: number } {
  const { address: text, prefixLen: bits } = parseIPv4Prefix(cidr);
  const maskNumber = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(maskNumber);
  const address = Buffer.alloc(4);
  address.writeUInt32BE((parseIPv4(text).readUInt32BE(0) & maskNumber) >>> 0);
  return { address, mask, bits };
}

function matchExpressions(match: NftMatch): Array<(w: AttributeWriter) => void> {
  if (match.kind === 'iifname') {
    const name = Buffer.alloc(IFNAMSIZ);
    if (Buffer.byteLength(match.name) >= IFNAMSIZ || match.name.includes('\0')) throw new RangeError(`nftables: interface name ${JSON.stringify(match.name)} is not one`);
    name.write(match.name);
    return [expression('meta', (d) => d.u32be(NFTA_META_DREG, NFT_REG_1).u32be(NFTA_META_KEY, NFT_META_IIFNAME)), cmpEq(name)];
  }
  const { address, mask, bits } = ipv4Prefix(match.cidr);
  // As nft does: a prefix of whole bytes loads and compares just those bytes (all four for an
  // address); any other is loaded whole and masked first.
  const wholeBytes = bits % 8 === 0 && bits > 0;
  const length = wholeBytes ? bits / 8 : 4;
  const load = expression('payload', (d) => d
    .u32be(NFTA_PAYLOAD_DREG, NFT_REG_1).u32be(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
    .u32be(NFTA_PAYLOAD_OFFSET, match.kind === 'saddr' ? IPV4_SADDR_OFFSET : IPV4_DADDR_OFFSET).u32be(NFTA_PAYLOAD_LEN, length));
  if (wholeBytes) return [load, cmpEq(address.subarray(0, length))];
  const masked = expression('bitwise', (d) => d
    .u32be(NFTA_BITWISE_SREG, NFT_REG_1).u32be(NFTA_BITWISE_DREG, NFT_REG_1).u32be(NFTA_BITWISE_LEN, 4)
    .nested(NFTA_BITWISE_MASK, value(mask)).nested(NFTA_BITWISE_XOR, value(Buffer.alloc(4))));
  return [load, masked, cmpEq(address)];
}

function ruleUserData(comment: string): Buffer {
  const text = Buffer.from(`${comment}\0`);
  if (text.length > 255) throw new RangeError(`nftables: rule comment of ${text.length} bytes is longer than 255`);
  return Buffer.concat([Buffer.from([NFTNL_UDATA_RULE_COMMENT, text.length]), text]);
}

/**
 * The messages of one transaction that leaves table `ip <table>` holding
 * exactly `chains` (none: no table), as the nft script `table ip t {}`,
 * `delete table ip t`, then the table does.
 */
export function encodeReplaceIpTable(table: string, chains: readonly NftInputChain[]): BatchMessage[] {
  const family = NFT_FAMILIES.ip;
  const type = nftMessageType;
  const body = (fill: (w: AttributeWriter) => void): Buffer => {
    const w = new AttributeWriter();
    fill(w);
    return Buffer.concat([nfgenmsg(family), w.build()]);
  };
  const tableBody = body((w) => w.string(NFTA_TABLE_NAME, table));
  const messages: BatchMessage[] = [
    { type: NFNL_MSG_BATCH_BEGIN, payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES), ack: false },
    // Created if missing, so that the delete after it always has a table to delete.
    { type: type(NFT_MSG_NEWTABLE), flags: NLM_F_CREATE, payload: tableBody },
    { type: type(NFT_MSG_DELTABLE), payload: tableBody },
  ];
  if (chains.length > 0) messages.push({ type: type(NFT_MSG_NEWTABLE), flags: NLM_F_CREATE, payload: tableBody });
  for (const chain of chains) {
    messages.push({
      type: type(NFT_MSG_NEWCHAIN), flags: NLM_F_CREATE,
      payload: body((w) => w.string(NFTA_CHAIN_TABLE, table).string(NFTA_CHAIN_NAME, chain.name)
        .nested(NFTA_CHAIN_HOOK, (h) => h.u32be(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_IN).u32be(NFTA_HOOK_PRIORITY, chain.priority >>> 0))
        .u32be(NFTA_CHAIN_POLICY, VERDICTS[chain.policy]).string(NFTA_CHAIN_TYPE, 'filter')),
    });
    for (const rule of chain.rules) {
      const expressions = [
        ...rule.match.flatMap(matchExpressions),
        expression('immediate', (d) => d.u32be(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT)
          .nested(NFTA_IMMEDIATE_DATA, (v) => v.nested(NFTA_DATA_VERDICT, (c) => c.u32be(NFTA_VERDICT_CODE, VERDICTS[rule.verdict])))),
      ];
      messages.push({
        type: type(NFT_MSG_NEWRULE), flags: NLM_F_CREATE | NLM_F_APPEND,
        payload: body((w) => {
          w.string(NFTA_RULE_TABLE, table).string(NFTA_RULE_CHAIN, chain.name).nested(NFTA_RULE_EXPRESSIONS, (l) => {
            for (const e of expressions) e(l);
          });
          if (rule.comment !== undefined) w.bytes(NFTA_RULE_USERDATA, ruleUserData(rule.comment));
        }),
      });
    }
  }
  messages.push({ type: NFNL_MSG_BATCH_END, payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES), ack: false });
  return messages;
}

/**
 * Replaces table `ip <table>` in the namespace at `netns` (or this one) with
 * `chains`, in one transaction: the old table's rules apply until the new
 * ones do. Throws NetlinkError with the kernel's reason.
 */
export async function replaceIpTable(table: string, chains: readonly NftInputChain[], netns?: OpenOptions['netns']): Promise<void> {
  const sock = openNetfilter(netns);
  try {
    await sock.requestBatch(encodeReplaceIpTable(table, chains), { operation: `replace nftables table ip ${table}` });
  } finally {
    sock.close();
  }
}
