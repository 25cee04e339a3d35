// Gratuitous ARP for a container's new addresses (user-surface spec §1.8):
// peers that cached another MAC for an address that was just re-used learn
// the new one at once, instead of after their neighbour entry ages out
// (seconds of lost traffic). Weave sends one per new address on attach
// (net/veth.go); the Docker plugin and CNI attach call this too.
//
// The frame is an ARP request for the address itself (sender = target
// address, broadcast destination): Linux updates an existing neighbour entry
// from such a request (arp_process), and a request also reaches hosts that
// ignore unsolicited replies.
import * as libc from '../sys/libc.js';
import { NetlinkError } from '../netlink/errors.js';
import { parseIPv4, parseMac, withNetns, type NetnsHandle } from '../netlink/index.js';
import { parseCidr } from './cidr.js';

const AF_PACKET = 17;
const ETH_P_ARP = 0x0806;
const ARP_HTYPE_ETHERNET = 1;
const ARP_PTYPE_IPV4 = 0x0800;
const ARP_OP_REQUEST = 1;
const ETH_HEADER_LEN = 14;
const ARP_IPV4_LEN = 28;
const SOCKADDR_LL_SIZE = 20;
const BROADCAST_MAC = Buffer.alloc(6, 0xff);

/** The Ethernet frame announcing that `ip` is at `mac`. */
export function gratuitousArpFrame(mac: string, ip: string): Buffer {
  const src = parseMac(mac);
  const addr = parseIPv4(ip);
  const frame = Buffer.alloc(ETH_HEADER_LEN + ARP_IPV4_LEN);
  BROADCAST_MAC.copy(frame, 0);
  src.copy(frame, 6);
  frame.writeUInt16BE(ETH_P_ARP, 12);
  const arp = ETH_HEADER_LEN;
  frame.writeUInt16BE(ARP_HTYPE_ETHERNET, arp);
  frame.writeUInt16BE(ARP_PTYPE_IPV4, arp + 2);
  frame.writeUInt8(6, arp + 4);
  frame.writeUInt8(4, arp + 5);
  frame.writeUInt16BE(ARP_OP_REQUEST, arp + 6);
  src.copy(frame, arp + 8);
  addr.copy(frame, arp + 14);
  BROADCAST_MAC.copy(frame, arp + 18);
  addr.copy(frame, arp + 24);
  return frame;
}

/**
 * Sends one gratuitous ARP per address out of interface `ifindex` (of MAC
 * `mac`) inside the namespace `netns`. Best effort by nature: a failure is
 * returned for the caller to log, never thrown, since the attach itself worked.
 */
export function announceAddresses(netns: NetnsHandle, ifindex: number, mac: string, cidrs: readonly string[]): Error | undefined {
  if (cidrs.length === 0) return undefined;
  const frames = cidrs.map((c) => gratuitousArpFrame(mac, parseCidr(c).ip));
  try {
    withNetns(netns, () => {
      // Protocol 0: a send-only socket, so nothing is queued to it.
      const fd = libc.socket(AF_PACKET, libc.SOCK_RAW | libc.SOCK_CLOEXEC, 0);
      if (fd < 0) throw new NetlinkError(libc.lastErrno(), 'open AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)');
      try {
        const sll = Buffer.alloc(SOCKADDR_LL_SIZE);
        sll.writeUInt16LE(AF_PACKET, 0);
        sll.writeUInt16BE(ETH_P_ARP, 2);
        sll.writeInt32LE(ifindex, 4);
        sll.writeUInt8(6, 11);
        BROADCAST_MAC.copy(sll, 12);
        for (const f of frames) {
          if (libc.sendto(fd, f, f.length, 0, sll, SOCKADDR_LL_SIZE) < 0) {
            throw new NetlinkError(libc.lastErrno(), `send gratuitous ARP on ifindex ${ifindex}`);
          }
        }
      } finally {
        libc.close(fd);
      }
    });
  } catch (e) {
    return e as Error;
  }
  return undefined;
}
