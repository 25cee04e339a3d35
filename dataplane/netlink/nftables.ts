// nf_tables over netlink (NETLINK_NETFILTER): whether a chain exists (at
// every start: which iptables the host uses, by its filter table), and the
// transactions that replace the router's own tables or some of their chains
// (the host firewall at start and on expose/hide, the IPsec marking rules as
// encrypted connections come and go, a container's multicast table at every
// attach). Running the nft command for them forked the router each time
// (~8 ms of its CPU here, page tables and all, and copy-on-write faults after)
// and ran an nft process (10-15 ms more): a tenth of a router's start, and at
// 10 attaches a second most of its CPU. The rules themselves are nft-rules.ts's.
// Each transaction also has its nft script form, which nft loads to the same
// table: for tests and for people.
import { AttributeWriter } from './attributes.js';
import { Errno, NetlinkError } from './errors.js';
import { NLM_F_APPEND, NLM_F_CREATE } from './message.js';
import { NFT_FAMILIES, renderNftChains, ruleUserData, writeRuleExpressions, type NftChain, type NftFamily, type NftHook, type NftIpFamily } from './nft-rules.js';
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
const NFT_MSG_DELCHAIN = 5;
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
/** linux/netfilter.h: the netfilter hooks of the IPv4 and inet families. */
const HOOKS: Record<NftHook, number> = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 };
const POLICIES = { drop: 0, accept: 1 } as const;
/** One reply and an ack; the default 4 MiB buffer is for dumps and event bursts. */
const RECEIVE_BUFFER_BYTES = 64 * 1024;

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

/** Builds one nf_tables transaction for a table: a batch's begin, messages, end. */
class TableTransaction {
  private readonly messages: BatchMessage[] = [{ type: NFNL_MSG_BATCH_BEGIN, payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES), ack: false }];

  constructor(private readonly family: NftIpFamily, private readonly table: string) {}

  private add(msg: number, fill: (w: AttributeWriter) => void, flags = 0): this {
    const w = new AttributeWriter();
    fill(w);
    this.messages.push({ type: nftMessageType(msg), flags, payload: Buffer.concat([nfgenmsg(NFT_FAMILIES[this.family]), w.build()]) });
    return this;
  }

  /** `table f t {}`: created if missing, left as it is otherwise. */
  declareTable(): this {
    return this.add(NFT_MSG_NEWTABLE, (w) => w.string(NFTA_TABLE_NAME, this.table), NLM_F_CREATE);
  }

  deleteTable(): this {
    return this.add(NFT_MSG_DELTABLE, (w) => w.string(NFTA_TABLE_NAME, this.table));
  }

  /** The chain itself, with its hook for a base chain; created if missing. */
  declareChain(chain: NftChain): this {
    return this.add(NFT_MSG_NEWCHAIN, (w) => {
      w.string(NFTA_CHAIN_TABLE, this.table).string(NFTA_CHAIN_NAME, chain.name);
      if (chain.base === undefined) return;
      const { hook, priority, policy, type } = chain.base;
      w.nested(NFTA_CHAIN_HOOK, (h) => h.u32be(NFTA_HOOK_HOOKNUM, HOOKS[hook]).u32be(NFTA_HOOK_PRIORITY, priority >>> 0))
        .u32be(NFTA_CHAIN_POLICY, POLICIES[policy]).string(NFTA_CHAIN_TYPE, type);
    }, NLM_F_CREATE);
  }

  /** Deletes the chain and its rules. */
  deleteChain(name: string): this {
    return this.add(NFT_MSG_DELCHAIN, (w) => w.string(NFTA_CHAIN_TABLE, this.table).string(NFTA_CHAIN_NAME, name));
  }

  /** Every chain first (a rule may jump to any of them), then their rules in order. */
  defineChains(chains: readonly NftChain[]): this {
    for (const chain of chains) this.declareChain(chain);
    for (const chain of chains) {
      for (const rule of chain.rules) {
        this.add(NFT_MSG_NEWRULE, (w) => {
          w.string(NFTA_RULE_TABLE, this.table).string(NFTA_RULE_CHAIN, chain.name)
            .nested(NFTA_RULE_EXPRESSIONS, (list) => writeRuleExpressions(list, this.family, rule));
          if (rule.comment !== undefined) w.bytes(NFTA_RULE_USERDATA, ruleUserData(rule.comment));
        }, NLM_F_CREATE | NLM_F_APPEND);
      }
    }
    return this;
  }

  end(): BatchMessage[] {
    return [...this.messages, { type: NFNL_MSG_BATCH_END, payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES), ack: false }];
  }
}

function checkTableName(table: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(table)) throw new RangeError(`nftables: table name ${JSON.stringify(table)} is not a plain identifier`);
}

/**
 * The messages of one transaction that leaves table `<family> <table>`
 * holding exactly `chains` (none: no table), as the nft script of
 * renderReplaceTable does: declare the table, delete it, define it.
 */
export function encodeReplaceTable(family: NftIpFamily, table: string, chains: readonly NftChain[]): BatchMessage[] {
  checkTableName(table);
  // Declared first, so that the delete after it always has a table to delete.
  const t = new TableTransaction(family, table).declareTable().deleteTable();
  if (chains.length > 0) t.declareTable().defineChains(chains);
  return t.end();
}

/** renderReplaceTable's transaction as an nft script. */
export function renderReplaceTable(family: NftIpFamily, table: string, chains: readonly NftChain[]): string {
  checkTableName(table);
  const lines = [`table ${family} ${table} {}`, `delete table ${family} ${table}`];
  if (chains.length > 0) lines.push(`table ${family} ${table} {`, ...renderNftChains(chains), '}');
  return `${lines.join('\n')}\n`;
}

/**
 * The messages of one transaction that replaces just `chains` in table
 * `<family> <table>` (creating the table if it is absent) and leaves the
 * rest of it alone; with `present` false the chains are removed instead.
 */
export function encodeReplaceChains(family: NftIpFamily, table: string, chains: readonly NftChain[], present: boolean): BatchMessage[] {
  checkTableName(table);
  const t = new TableTransaction(family, table).declareTable();
  // Declared (with their hooks) so the deletes always find them.
  for (const chain of chains) t.declareChain({ ...chain, rules: [] });
  for (const chain of chains) t.deleteChain(chain.name);
  if (present) t.defineChains(chains);
  return t.end();
}

/** encodeReplaceChains's transaction as an nft script. */
export function renderReplaceChains(family: NftIpFamily, table: string, chains: readonly NftChain[], present: boolean): string {
  checkTableName(table);
  const empty = chains.map((c) => ({ ...c, rules: [] }));
  const lines = [
    `table ${family} ${table} {`, ...renderNftChains(empty), '}',
    ...chains.map((c) => `delete chain ${family} ${table} ${c.name}`),
  ];
  if (present) lines.push(`table ${family} ${table} {`, ...renderNftChains(chains), '}');
  return `${lines.join('\n')}\n`;
}

async function commit(messages: readonly BatchMessage[], operation: string, netns: OpenOptions['netns'] | undefined): Promise<void> {
  const sock = openNetfilter(netns);
  try {
    await sock.requestBatch(messages, { operation });
  } finally {
    sock.close();
  }
}

/**
 * Replaces table `<family> <table>` in the namespace at `netns` (or this one)
 * with `chains`, in one transaction: the old table's rules apply until the
 * new ones do. Throws NetlinkError with the kernel's reason.
 */
export function replaceTable(family: NftIpFamily, table: string, chains: readonly NftChain[], netns?: OpenOptions['netns']): Promise<void> {
  return commit(encodeReplaceTable(family, table, chains), `replace nftables table ${family} ${table}`, netns);
}

/** Replaces (or, with `present` false, removes) `chains` of a table in one transaction; see encodeReplaceChains. */
export function replaceChains(family: NftIpFamily, table: string, chains: readonly NftChain[], present: boolean, netns?: OpenOptions['netns']): Promise<void> {
  const what = chains.map((c) => c.name).join(', ');
  return commit(encodeReplaceChains(family, table, chains, present), `${present ? 'replace' : 'remove'} chains ${what} of nftables table ${family} ${table}`, netns);
}

/** Deletes table `<family> <table>` with everything in it; false when there was none. */
export async function deleteTable(family: NftIpFamily, table: string, netns?: OpenOptions['netns']): Promise<boolean> {
  checkTableName(table);
  try {
    await commit(new TableTransaction(family, table).deleteTable().end(), `delete nftables table ${family} ${table}`, netns);
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === Errno.ENOENT) return false;
    throw err;
  }
}
