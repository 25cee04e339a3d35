// Heartbeat I/O for the eBPF fast datapath (spec §6.4).
//
// Sending: a heartbeat is an ordinary UDP datagram to the peer's VXLAN port
// carrying a VXLAN header (spec §6.2: flags 0x08, VNI = source | destination
// << 12) and the padded heartbeat frame, from an ephemeral-port socket with DF
// set, so an underlay whose MTU is too small for the overlay MTU drops it and
// the connection never establishes on fastdp (Weave's intent).
//
// Receiving: the kernel decapsulates it on the VXLAN device; from-tunnel hands
// frames with zero MACs up to the stack (TC_ACT_OK). A zero EtherType is an
// 802.3 length, so the stack classifies the frame as ETH_P_802_2 (or
// ETH_P_802_3 when the payload starts with 0xffff); AF_PACKET sockets bound to
// just those protocols on the tunnel device see heartbeats only, never data
// (which an ETH_P_ALL tap would copy before tc even runs). The outer source
// address is gone at that point; the connUID inside identifies the connection.

import { poller } from '../../sys/poller.js';
import * as libc from '../../sys/libc.js';
import { Errno } from '../../netlink/errors.js';
import { AF_PACKET, openUdpSocket, sockaddrIn } from '../../sys/sockets.js';
import { vniFor } from '../layout.js';

/** VXLAN header (RFC 7348): I flag, 24-bit VNI (spec §6.2). */
export const VXLAN_HEADER_BYTES = 8;
const VXLAN_FLAG_VNI = 0x08;
const ETH_P_802_3 = 0x0001;
const ETH_P_802_2 = 0x0004;
const SOCKADDR_LL_SIZE = 20;
const RECV_BUFFER_BYTES = 65_536;

/** The UDP payload of a heartbeat: VXLAN header + frame. */
export function vxlanDatagram(frame: Uint8Array, srcShortId: number, dstShortId: number): Buffer {
  const out = Buffer.alloc(VXLAN_HEADER_BYTES + frame.length);
  out[0] = VXLAN_FLAG_VNI;
  out.writeUIntBE(vniFor(srcShortId, dstShortId), 4, 3);
  out.set(frame, VXLAN_HEADER_BYTES);
  return out;
}

export class HeartbeatSender {
  private fd: number;
  /**
   * A socket per local address heartbeats leave from: they take the path the
   * connection's tunnel frames take (from its local address, which an
   * encrypted connection's SAs and marking rules cover). As many as the host
   * has addresses that peers reach it on.
   */
  private readonly bound = new Map<string, number>();
  private closed = false;

  constructor() {
    // Port 0: an ephemeral port; the VXLAN device owns the fastdp port itself.
    this.fd = openUdpSocket('0.0.0.0', 0, true);
  }

  /**
   * Sends one heartbeat datagram, from local address `from` when given (else
   * the route's choice); throws with errno (EMSGSIZE when the underlay MTU is
   * too small).
   */
  send(datagram: Buffer, ip: string, port: number, from?: string): void {
    if (this.closed) throw new Error('fastdp heartbeat socket is closed');
    const fd = from === undefined ? this.fd : this.socketFrom(from);
    const n = libc.sendto(fd, datagram, datagram.length, 0, sockaddrIn(ip, port), 16);
    if (n < 0) {
      const errno = libc.lastErrno();
      const hint = errno === Errno.EMSGSIZE ? ' (EMSGSIZE: the underlay MTU is smaller than the fastdp MTU + 50)' : '';
      throw new Error(`send fastdp heartbeat to ${ip}:${port}${from === undefined ? '' : ` from ${from}`} failed (errno ${errno})${hint}`);
    }
  }

  private socketFrom(address: string): number {
    let fd = this.bound.get(address);
    if (fd === undefined) {
      fd = openUdpSocket(address, 0, true);
      this.bound.set(address, fd);
    }
    return fd;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    for (const fd of this.bound.values()) libc.close(fd);
    this.bound.clear();
  }
}

function openHeartbeatSocket(ifindex: number, protocol: number): number {
  const proto = ((protocol & 0xff) << 8) | (protocol >> 8); // htons
  const fd = libc.socket(AF_PACKET, libc.SOCK_RAW | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, proto);
  if (fd < 0) throw new Error(`open AF_PACKET socket for fastdp heartbeats failed (errno ${libc.lastErrno()}; needs CAP_NET_RAW)`);
  const sll = Buffer.alloc(SOCKADDR_LL_SIZE);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeUInt16LE(proto, 2);
  sll.writeInt32LE(ifindex, 4);
  if (libc.bindSocket(fd, sll, SOCKADDR_LL_SIZE) < 0) {
    const errno = libc.lastErrno();
    libc.close(fd);
    throw new Error(`bind the fastdp heartbeat socket to ifindex ${ifindex} failed (errno ${errno})`);
  }
  return fd;
}

/** Reads heartbeat frames arriving on the tunnel device and hands each to `onFrame`. */
export class HeartbeatReceiver {
  private readonly fds: number[] = [];
  private closed = false;
  private readonly loops: Promise<void>[] = [];
  /** Frames read (heartbeats, valid or not). */
  received = 0;

  constructor(tunnelIfindex: number, private readonly onFrame: (frame: Buffer) => void, private readonly onError: (e: Error) => void) {
    try {
      for (const p of [ETH_P_802_2, ETH_P_802_3]) this.fds.push(openHeartbeatSocket(tunnelIfindex, p));
    } catch (e) {
      for (const fd of this.fds) libc.close(fd);
      throw e;
    }
    for (const fd of this.fds) this.loops.push(this.loop(fd));
  }

  private async loop(fd: number): Promise<void> {
    const buf = Buffer.alloc(RECV_BUFFER_BYTES);
    while (!this.closed) {
      try {
        await poller().waitReadable(fd);
      } catch (e) {
        if (this.closed) return;
        this.onError(e as Error);
        return;
      }
      for (;;) {
        if (this.closed) return;
        const n = libc.recvfrom(fd, buf, buf.length, libc.MSG_DONTWAIT, null, null);
        if (n < 0) {
          const errno = libc.lastErrno();
          if (errno !== Errno.EAGAIN && errno !== Errno.EINTR) this.onError(new Error(`receive fastdp heartbeat failed (errno ${errno})`));
          break;
        }
        this.received++;
        this.onFrame(Buffer.from(buf.subarray(0, n)));
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) poller().forget(fd, new Error('fastdp heartbeat receiver closed'));
    await Promise.allSettled(this.loops);
    for (const fd of this.fds) libc.close(fd);
  }
}
