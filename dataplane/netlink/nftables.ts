// nf_tables over netlink (NETLINK_NETFILTER): whether a chain exists. The
// router asks this at every start (which iptables the host uses, by its
// filter table); asking the nft command instead forked the router (~8 ms of
// its CPU here, page tables and all) and ran an nft process (~15 ms), which
// a mesh starting together on few cores pays once per router. Rule changes
// still go through nft and iptables, which own their formats.
import { AttributeWriter } from './attributes.js';
import { NetlinkError } from './errors.js';
import { NETLINK_NETFILTER, NetlinkSocket, type OpenOptions } from './socket.js';

/** linux/netfilter/nfnetlink.h */
const NFNL_SUBSYS_NFTABLES = 10;
const NFNETLINK_V0 = 0;
/** linux/netfilter/nf_tables.h */
const NFT_MSG_GETCHAIN = 4;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
/** One reply and an ack; the default 4 MiB buffer is for dumps and event bursts. */
const RECEIVE_BUFFER_BYTES = 64 * 1024;

/** nf_tables' address families, by nft's names (linux/netfilter.h NFPROTO_*). */
export const NFT_FAMILIES = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;
export type NftFamily = keyof typeof NFT_FAMILIES;

/** struct nfgenmsg, then the attributes naming the chain. */
export function encodeGetChain(family: NftFamily, table: string, chain: string): Buffer {
  const header = Buffer.from([NFT_FAMILIES[family], NFNETLINK_V0, 0, 0]); // u8 family, u8 version, be16 res_id
  return Buffer.concat([header, new AttributeWriter().string(NFTA_CHAIN_TABLE, table).string(NFTA_CHAIN_NAME, chain).build()]);
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
    sock = NetlinkSocket.open(NETLINK_NETFILTER, { receiveBufferBytes: RECEIVE_BUFFER_BYTES, ...(netns === undefined ? {} : { netns }) });
  } catch (err) {
    if (err instanceof NetlinkError) return false;
    throw err;
  }
  try {
    await sock.request(
      { type: (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN, payload: encodeGetChain(family, table, chain) },
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
