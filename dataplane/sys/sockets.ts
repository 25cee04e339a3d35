// UDP and AF_PACKET sockets (the sleeve's, spec §5.1, and the fastdp
// heartbeats') and batched I/O over them.
//
// Why native arenas: recvmmsg/sendmmsg move up to BATCH datagrams per system
// call, which is what lets a userspace overlay keep up with a TCP stream. Each
// MsgBatch is one block of memory (an ArrayBuffer, whose backing store does not
// move) holding the mmsghdr array, the iovecs, the socket addresses and the
// packet slots, wired together once by address; JS reads and writes the slots
// through a Uint8Array view of the same memory, so a packet is never copied
// between JS and C.
import koffi from 'koffi';
import * as libc from './libc.js';
import { Errno, NetlinkError } from '../netlink/errors.js';

const lib = koffi.load('libc.so.6');

type Fd = number;
/** Addresses are passed as plain numbers (uintptr_t): user-space pointers fit in 2^53. */
const recvmmsgC = lib.func('int recvmmsg(int fd, uintptr_t msgs, unsigned int vlen, int flags, void *timeout)') as
  (fd: Fd, msgs: number, vlen: number, flags: number, timeout: null) => number;
const sendmmsgC = lib.func('int sendmmsg(int fd, uintptr_t msgs, unsigned int vlen, int flags)') as
  (fd: Fd, msgs: number, vlen: number, flags: number) => number;
const connectC = lib.func('int connect(int fd, const void *addr, uint32_t len)') as (fd: Fd, addr: Buffer, len: number) => number;
const ioctlC = lib.func('int ioctl(int fd, unsigned long req, uintptr_t arg)') as (fd: Fd, req: number, arg: number) => number;
const ifNameToIndexC = lib.func('unsigned int if_nametoindex(const char *name)') as (name: string) => number;

export const AF_INET = 2;
export const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_STREAM = 1;
const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IP_MTU = 14;
/** IP_PMTUDISC_DONT: never set DF (spec §5.1 non-DF path). */
const IP_PMTUDISC_DONT = 0;
/** IP_PMTUDISC_DO: always set DF and fail with EMSGSIZE above the path MTU (spec §5.1 DF path). */
const IP_PMTUDISC_DO = 2;
const SO_REUSEPORT = 15;
const SOL_PACKET = 263;
/** PACKET_IGNORE_OUTGOING: frames we inject must not come back to us as captures. */
const PACKET_IGNORE_OUTGOING = 23;
const ETH_P_ALL = 0x0003;
const PACKET_VNET_HDR = 15;
const MSG_DONTWAIT = libc.MSG_DONTWAIT;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_LL_SIZE = 20;

function fail(what: string): never {
  throw new NetlinkError(libc.lastErrno(), what);
}

function setIntOption(fd: Fd, level: number, name: number, value: number, what: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  if (libc.setsockopt(fd, level, name, v, 4) < 0) fail(what);
}

export function sockaddrIn(ip: string, port: number): Buffer {
  const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
  writeSockaddrIn(sa, ip, port);
  return sa;
}

/** Writes the sockaddr_in of ip:port into the first 16 bytes of `out` (reused buffers: no allocation beyond the split). */
export function writeSockaddrIn(out: Uint8Array, ip: string, port: number): void {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new RangeError(`sleeve: "${ip}" is not an IPv4 address`);
  out[0] = AF_INET;
  out[1] = 0;
  out[2] = port >>> 8;
  out[3] = port & 0xff;
  for (let i = 0; i < 4; i++) {
    const octet = Number(parts[i]);
    if (!Number.isInteger(octet) || octet < 0 || octet > 255) throw new RangeError(`sleeve: "${ip}" is not an IPv4 address`);
    out[4 + i] = octet;
  }
  out.fill(0, 8, SOCKADDR_IN_SIZE);
}

/** A UDP socket on the sleeve port, shared with the other sleeve sockets (SO_REUSEPORT). */
export function openUdpSocket(bindIp: string, port: number, df: boolean): Fd {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) fail('open sleeve UDP socket');
  try {
    setIntOption(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, 1, 'set SO_REUSEADDR on sleeve socket');
    setIntOption(fd, libc.SOL_SOCKET, SO_REUSEPORT, 1, 'set SO_REUSEPORT on sleeve socket');
    setIntOption(fd, IPPROTO_IP, IP_MTU_DISCOVER, df ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT, 'set IP_MTU_DISCOVER on sleeve socket');
    setIntOption(fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, 8 << 20, 'set SO_RCVBUFFORCE on sleeve socket');
    setIntOption(fd, libc.SOL_SOCKET, 32 /* SO_SNDBUFFORCE */, 8 << 20, 'set SO_SNDBUFFORCE on sleeve socket');
    // Bulk traffic arrives as trains of same-sized datagrams: let the kernel hand them over in one piece.
    setIntOption(fd, 17 /* SOL_UDP */, 104 /* UDP_GRO */, 1, 'set UDP_GRO on sleeve socket');
    const sa = sockaddrIn(bindIp, port);
    if (libc.bindSocket(fd, sa, SOCKADDR_IN_SIZE) < 0) {
      fail(`bind sleeve UDP socket to ${bindIp}:${port} (is another router using port ${port}?)`);
    }
    return fd;
  } catch (e) {
    libc.close(fd);
    throw e;
  }
}

/** Connects a DF socket to its remote, so IP_MTU reports the path MTU (spec §5.1). */
export function connectUdp(fd: Fd, ip: string, port: number): void {
  connectInet(fd, ip, port, 'sleeve DF socket');
}

/** connect(2) of an IPv4 socket (blocking unless the socket is not); throws with the errno. */
export function connectInet(fd: Fd, ip: string, port: number, what: string): void {
  if (connectC(fd, sockaddrIn(ip, port), SOCKADDR_IN_SIZE) < 0) fail(`connect ${what} to ${ip}:${port}`);
}

/** The kernel's path MTU for a connected socket (spec §5.6). */
export function pathMtu(fd: Fd): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  if (libc.getsockopt(fd, IPPROTO_IP, IP_MTU, v, len) < 0) fail('read IP_MTU of sleeve DF socket');
  return v.readInt32LE(0);
}

export function interfaceIndex(name: string): number {
  const index = ifNameToIndexC(name);
  if (index === 0) throw new Error(`sleeve: no interface "${name}" in this namespace (create the capture pair first)`);
  return index;
}

/** AF_PACKET socket bound to one interface: captures what the bridge sends it, injects into the bridge. */
export function openPacketSocket(ifindex: number): Fd {
  const fd = openUnboundPacketSocket();
  try {
    bindPacketSocket(fd, ifindex);
    return fd;
  } catch (e) {
    libc.close(fd);
    throw e;
  }
}

/**
 * The capture socket before its bind, with its options set. Opened with protocol 0 it receives
 * nothing: one opened for ETH_P_ALL takes every frame of every interface in the namespace until
 * the bind narrows it to one, so a router starting beside traffic queued underlay frames (an ARP
 * broadcast on eth0) and carried them into the overlay as if the bridge had sent them.
 */
export function openUnboundPacketSocket(): Fd {
  const fd = libc.socket(AF_PACKET, libc.SOCK_RAW | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) fail('open AF_PACKET socket (needs CAP_NET_RAW)');
  try {
    setIntOption(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, 'set PACKET_IGNORE_OUTGOING');
    // Every frame in either direction carries a virtio-net header: lets the worker inject
    // coalesced TCP runs as one GSO packet (inject-coalescer.ts).
    setIntOption(fd, SOL_PACKET, PACKET_VNET_HDR, 1, 'set PACKET_VNET_HDR');
    setIntOption(fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, 8 << 20, 'set SO_RCVBUFFORCE on capture socket');
    setIntOption(fd, libc.SOL_SOCKET, 32 /* SO_SNDBUFFORCE */, 8 << 20, 'set SO_SNDBUFFORCE on capture socket');
    return fd;
  } catch (e) {
    libc.close(fd);
    throw e;
  }
}

/** Starts capture on `ifindex` alone: every protocol (ETH_P_ALL), from that interface only. */
export function bindPacketSocket(fd: Fd, ifindex: number): void {
  const proto = ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8); // htons
  const sll = Buffer.alloc(SOCKADDR_LL_SIZE);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeUInt16LE(proto, 2);
  sll.writeInt32LE(ifindex, 4);
  if (libc.bindSocket(fd, sll, SOCKADDR_LL_SIZE) < 0) fail(`bind AF_PACKET socket to ifindex ${ifindex}`);
}

const SIOCETHTOOL = 0x8946;
const ETHTOOL_STXCSUM = 0x17;

/**
 * Turns transmit checksum offload (and with it TSO/GSO) off on `ifname`, so the
 * kernel hands the capture socket finished, MTU-sized frames rather than 64 KiB
 * segments with partial checksums.
 */
export function disableTxOffload(ifname: string): void {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) fail('open socket for ethtool ioctl');
  const mem = koffi.alloc('uint8_t', 64);
  try {
    const base = Number(koffi.address(mem));
    const view = new DataView(koffi.view(mem, 64));
    // struct ethtool_value { u32 cmd; u32 data; } at +48; struct ifreq { char name[16]; void *data; } at 0.
    view.setUint32(48, ETHTOOL_STXCSUM, true);
    view.setUint32(52, 0, true);
    const name = Buffer.from(ifname);
    for (let i = 0; i < 16; i++) view.setUint8(i, i < name.length ? name[i]! : 0);
    view.setBigUint64(16, BigInt(base + 48), true);
    if (ioctlC(fd, SIOCETHTOOL, base) < 0) fail(`turn off tx checksum offload on ${ifname}`);
  } finally {
    koffi.free(mem);
    libc.close(fd);
  }
}

export function closeFd(fd: Fd): void {
  libc.close(fd);
}

export function lastErrno(): number {
  return libc.lastErrno();
}

const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;
const NAME_SLOT = 32;
/** One cmsghdr (16 bytes) with up to 16 bytes of data: room for UDP_SEGMENT / UDP_GRO. */
const CONTROL_SLOT = 32;
const CMSG_HEADER_SIZE = 16;
export const SOL_UDP = 17;
/** UDP_SEGMENT: the kernel splits one send into datagrams of this size (UDP GSO). */
export const UDP_SEGMENT = 103;
/** UDP_GRO: the kernel may hand us several same-sized datagrams of one flow as one receive. */
export const UDP_GRO = 104;
/** Datagrams one UDP GSO send may carry (the kernel allows 64 on every version that has it). */
export const UDP_MAX_SEGMENTS = 64;

/**
 * `count` message slots of `slotSize` bytes for recvmmsg/sendmmsg. The struct
 * layouts are the LP64 Linux ones (x86_64, arm64). Pointers never change after
 * construction; per call only lengths (32-bit writes) are touched, so the hot
 * path does no BigInt work.
 */
export class MsgBatch {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly base: number;
  private readonly iovBase: number;
  private readonly namesBase: number;
  private readonly controlBase: number;
  private readonly slotsBase: number;
  /** Slots whose header a receive may have changed (reset before the next receive). */
  private dirty: number;
  private readonly slotViews: Uint8Array[] = [];
  private readonly nameViews: Uint8Array[] = [];

  constructor(readonly count: number, readonly slotSize: number) {
    this.iovBase = count * MMSGHDR_SIZE;
    this.namesBase = this.iovBase + count * IOVEC_SIZE;
    this.controlBase = this.namesBase + count * NAME_SLOT;
    this.slotsBase = this.controlBase + count * CONTROL_SLOT;
    const total = this.slotsBase + count * slotSize;
    // An ArrayBuffer, not koffi.alloc: its backing store never moves and
    // belongs to the isolate, so it is freed with the batch's last reference
    // or with the thread (a worker that is terminated, as a crash ends it,
    // runs no cleanup code: natively allocated batches stayed behind, ~17 MB
    // per sleeve worker). New ArrayBuffers are zero-filled.
    const ab = new ArrayBuffer(total);
    this.base = Number(koffi.address(ab));
    this.bytes = new Uint8Array(ab);
    this.view = new DataView(ab);
    for (let i = 0; i < count; i++) {
      const h = i * MMSGHDR_SIZE;
      const iov = this.iovBase + i * IOVEC_SIZE;
      this.view.setBigUint64(h + 16, BigInt(this.base + iov), true); // msg_iov
      this.view.setBigUint64(h + 24, 1n, true); // msg_iovlen
      this.view.setBigUint64(iov, BigInt(this.base + this.slotsBase + i * slotSize), true);
      const start = this.slotsBase + i * slotSize;
      this.slotViews.push(this.bytes.subarray(start, start + slotSize));
      this.nameViews.push(this.bytes.subarray(this.namesBase + i * NAME_SLOT, this.namesBase + i * NAME_SLOT + SOCKADDR_IN_SIZE));
    }
    this.dirty = count;
  }

  /** The whole slot `i` (write a datagram here before send). */
  slot(i: number): Uint8Array {
    return this.slotViews[i]!;
  }

  /** Byte offset of slot `i` within `bytes`. */
  slotOffset(i: number): number {
    return this.slotsBase + i * this.slotSize;
  }

  /** The received bytes of slot `i`. */
  received(i: number): Uint8Array {
    const start = this.slotsBase + i * this.slotSize;
    return this.bytes.subarray(start, start + this.view.getUint32(i * MMSGHDR_SIZE + 56, true));
  }

  /** Length of the datagram received in slot `i`. */
  receivedLength(i: number): number {
    return this.view.getUint32(i * MMSGHDR_SIZE + 56, true);
  }

  /**
   * The segment size when the kernel coalesced several datagrams into slot `i`
   * (UDP_GRO control message), else 0: the slot then holds one datagram.
   */
  groSize(i: number): number {
    const h = i * MMSGHDR_SIZE;
    if (this.view.getUint32(h + 40, true) < CMSG_HEADER_SIZE + 2) return 0;
    const c = this.controlBase + i * CONTROL_SLOT;
    if (this.view.getInt32(c + 8, true) !== SOL_UDP || this.view.getInt32(c + 12, true) !== UDP_GRO) return 0;
    return this.view.getInt32(c + 16, true);
  }

  /** Source IPv4 address and port of a datagram received in slot `i`. */
  sourceOf(i: number): { ip: string; port: number } {
    const n = this.namesBase + i * NAME_SLOT;
    const b = this.bytes;
    return { ip: `${b[n + 4]}.${b[n + 5]}.${b[n + 6]}.${b[n + 7]}`, port: (b[n + 2]! << 8) | b[n + 3]! };
  }

  /** The IPv4 socket address (sockaddr_in) a datagram in slot `i` came from, as `setSend` takes it. */
  sourceName(i: number): Uint8Array {
    return this.nameViews[i]!;
  }

  /** Source of slot `i` as one number (IPv4 << 16 | port), for cheap comparison. */
  sourceKey(i: number): number {
    const n = this.namesBase + i * NAME_SLOT;
    const b = this.bytes;
    return ((b[n + 4]! * 2 ** 24) + (b[n + 5]! << 16) + (b[n + 6]! << 8) + b[n + 7]!) * 65536 + ((b[n + 2]! << 8) | b[n + 3]!);
  }

  private setIovLen(i: number, len: number): void {
    const iov = this.iovBase + i * IOVEC_SIZE + 8;
    this.view.setUint32(iov, len, true);
    this.view.setUint32(iov + 4, 0, true);
  }

  private setPointer(at: number, address: number): void {
    this.view.setUint32(at, address % 2 ** 32, true);
    this.view.setUint32(at + 4, Math.floor(address / 2 ** 32), true);
  }

  /** Receives up to `count` datagrams without blocking; returns how many (0 when none are queued). */
  receive(fd: Fd, wantSource: boolean, wantControl = false): number {
    for (let i = 0; i < this.dirty; i++) {
      const h = i * MMSGHDR_SIZE;
      this.setIovLen(i, this.slotSize);
      if (wantSource) {
        this.setPointer(h, this.base + this.namesBase + i * NAME_SLOT);
        this.view.setUint32(h + 8, NAME_SLOT, true);
      } else {
        this.setPointer(h, 0);
        this.view.setUint32(h + 8, 0, true);
      }
      if (wantControl) {
        this.setPointer(h + 32, this.base + this.controlBase + i * CONTROL_SLOT);
        this.view.setUint32(h + 40, CONTROL_SLOT, true);
      } else {
        this.setPointer(h + 32, 0);
        this.view.setUint32(h + 40, 0, true);
      }
      this.view.setUint32(h + 44, 0, true);
      this.view.setUint32(h + 48, 0, true);
    }
    const n = recvmmsgC(fd, this.base, this.count, MSG_DONTWAIT, null);
    if (n < 0) {
      this.dirty = 0;
      const errno = libc.lastErrno();
      if (errno === Errno.EAGAIN || errno === Errno.EINTR || errno === Errno.ECONNREFUSED) return 0;
      fail(`receive on fd ${fd}`);
    }
    this.dirty = n;
    return n;
  }

  /**
   * Marks slot `i` for sending `len` bytes (to `name`, or on a connected/bound
   * socket when omitted). `segment` > 0 asks the kernel to split the slot into
   * datagrams of that size (UDP GSO; the last may be shorter).
   */
  setSend(i: number, len: number, name?: Uint8Array, segment = 0): void {
    const h = i * MMSGHDR_SIZE;
    this.dirty = Math.max(this.dirty, i + 1);
    this.setIovLen(i, len);
    if (name) {
      const n = this.namesBase + i * NAME_SLOT;
      this.bytes.set(name, n);
      this.setPointer(h, this.base + n);
      this.view.setUint32(h + 8, name.length, true);
    } else {
      this.setPointer(h, 0);
      this.view.setUint32(h + 8, 0, true);
    }
    if (segment > 0 && segment < len) {
      const c = this.controlBase + i * CONTROL_SLOT;
      this.view.setUint32(c, CMSG_HEADER_SIZE + 2, true); // cmsg_len (u64)
      this.view.setUint32(c + 4, 0, true);
      this.view.setInt32(c + 8, SOL_UDP, true);
      this.view.setInt32(c + 12, UDP_SEGMENT, true);
      this.view.setUint16(c + 16, segment, true);
      this.setPointer(h + 32, this.base + c);
      this.view.setUint32(h + 40, CMSG_HEADER_SIZE + 8, true); // CMSG_SPACE(2)
    } else {
      this.setPointer(h + 32, 0);
      this.view.setUint32(h + 40, 0, true);
    }
    this.view.setUint32(h + 44, 0, true);
    this.view.setUint32(h + 48, 0, true); // msg_flags
  }

  /** sendmmsg of slots [from, to); returns the number sent, or -errno when the first one failed. */
  send(fd: Fd, from: number, to: number): number {
    const n = sendmmsgC(fd, this.base + from * MMSGHDR_SIZE, to - from, MSG_DONTWAIT);
    return n < 0 ? -libc.lastErrno() : n;
  }
}
