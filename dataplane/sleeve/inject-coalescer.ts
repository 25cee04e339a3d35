// Receive-side segment coalescing (GRO in userspace) for frames the sleeve
// injects into the bridge. A bulk TCP stream arrives as a train of MTU-sized
// segments; handing each to the kernel walks the bridge, netfilter, veth and
// TCP once per segment. Consecutive in-order segments of one flow are merged
// here into one frame with a virtio-net header asking for TCP segmentation
// (the packet socket has PACKET_VNET_HDR), so the kernel carries the run as a
// single GSO packet up to the container — as it does for local TCP.
//
// Every injected frame starts with a 10-byte struct virtio_net_hdr (native
// byte order on a packet socket): flags u8, gso_type u8, hdr_len u16,
// gso_size u16, csum_start u16, csum_offset u16. Frames that are not merged get
// an all-zero header and go out byte for byte as received.

export const VNET_HDR_SIZE = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const ETH = 14;
const IP = ETH; // IPv4 header offset (only option-less headers are merged)
const TCP = ETH + 20;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
/** Largest IPv4 total length. */
const MAX_IP_TOTAL = 65535;
/** Segments in one merged frame (the kernel's GSO limit is higher; this keeps runs short for latency). */
const MAX_SEGMENTS = 44;

/** TCP payload length when `f` is a mergeable IPv4 TCP segment (no IP options, not fragmented, ACK or ACK|PSH only), else -1. */
function mergeablePayload(f: Uint8Array): number {
  if (f.length < TCP + 20) return -1;
  if (f[12] !== 0x08 || f[13] !== 0x00 || f[IP] !== 0x45 || f[IP + 9] !== 6) return -1;
  if (((f[IP + 6]! & 0x3f) | f[IP + 7]!) !== 0) return -1; // MF or fragment offset
  const total = (f[IP + 2]! << 8) | f[IP + 3]!;
  if (total !== f.length - ETH) return -1; // Ethernet padding or truncation: leave alone
  const thl = (f[TCP + 12]! >> 4) * 4;
  if (thl < 20 || 20 + thl >= total) return -1;
  const flags = f[TCP + 13]!;
  if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return -1;
  return total - 20 - thl;
}

function sum16(b: Uint8Array, start: number, end: number, acc: number): number {
  for (let i = start; i < end; i += 2) acc += (b[i]! << 8) | b[i + 1]!;
  return acc;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/**
 * Builds injection slots from a stream of frames. Call add() per frame with
 * the slot memory to use, then finish() for the last slot; each call that
 * completes a slot reports its length through `emit`.
 */
export class InjectCoalescer {
  private slot: Uint8Array | undefined;
  private used = 0;
  private segments = 0;
  private mss = 0;
  private nextSeq = 0;
  /** The open slot ended with a short or PSH segment: nothing may follow it. */
  private closed = true;
  /** Frames merged into an earlier one (for statistics). */
  merged = 0;

  constructor(private readonly emit: (length: number) => void) {}

  /** Whether `f` continues the open run. */
  private continues(f: Uint8Array, payload: number): boolean {
    const s = this.slot!;
    const b = VNET_HDR_SIZE;
    if (this.closed || this.segments >= MAX_SEGMENTS || payload > this.mss) return false;
    if (this.used + payload > s.length || this.used - b - ETH + payload > MAX_IP_TOTAL) return false;
    const thl = (f[TCP + 12]! >> 4) * 4;
    if (((s[b + TCP + 12]! >> 4) * 4) !== thl) return false;
    const seq = ((f[TCP + 4]! << 24) | (f[TCP + 5]! << 16) | (f[TCP + 6]! << 8) | f[TCP + 7]!) >>> 0;
    if (seq !== this.nextSeq) return false;
    // Same Ethernet header, TOS, addresses and ports, ack number, window and options.
    for (let i = 0; i < ETH; i++) if (s[b + i] !== f[i]) return false;
    if (s[b + IP + 1] !== f[IP + 1]) return false;
    for (let i = IP + 12; i < TCP + 4; i++) if (s[b + i] !== f[i]) return false;
    for (let i = TCP + 8; i < TCP + 12; i++) if (s[b + i] !== f[i]) return false;
    if (s[b + TCP + 14] !== f[TCP + 14] || s[b + TCP + 15] !== f[TCP + 15]) return false;
    for (let i = TCP + 20; i < TCP + thl; i++) if (s[b + i] !== f[i]) return false;
    return true;
  }

  /** Adds one frame; `nextSlot` supplies fresh slot memory when a new slot is needed. */
  add(f: Uint8Array, nextSlot: () => Uint8Array): void {
    const payload = mergeablePayload(f);
    if (payload > 0 && this.slot && this.continues(f, payload)) {
      const thl = (f[TCP + 12]! >> 4) * 4;
      this.slot.set(f.subarray(TCP + thl), this.used);
      this.used += payload;
      this.segments++;
      this.merged++;
      this.nextSeq = (this.nextSeq + payload) >>> 0;
      if (payload < this.mss || (f[TCP + 13]! & TCP_PSH) !== 0) {
        this.slot[VNET_HDR_SIZE + TCP + 13]! |= f[TCP + 13]! & TCP_PSH;
        this.closed = true;
      }
      return;
    }
    this.finish();
    const s = nextSlot();
    s.fill(0, 0, VNET_HDR_SIZE);
    s.set(f, VNET_HDR_SIZE);
    this.slot = s;
    this.used = VNET_HDR_SIZE + f.length;
    this.segments = 1;
    this.closed = payload <= 0 || (f[TCP + 13]! & TCP_PSH) !== 0;
    if (!this.closed) {
      this.mss = payload;
      const seq = ((f[TCP + 4]! << 24) | (f[TCP + 5]! << 16) | (f[TCP + 6]! << 8) | f[TCP + 7]!) >>> 0;
      this.nextSeq = (seq + payload) >>> 0;
    }
  }

  /** Completes the open slot (rewrites headers of a merged run) and emits it. */
  finish(): void {
    const s = this.slot;
    if (!s) return;
    this.slot = undefined;
    if (this.segments > 1) {
      const b = VNET_HDR_SIZE;
      const ipTotal = this.used - b - ETH;
      s[b + IP + 2] = ipTotal >> 8;
      s[b + IP + 3] = ipTotal & 0xff;
      s[b + IP + 10] = 0;
      s[b + IP + 11] = 0;
      const ipSum = 0xffff - fold(sum16(s, b + IP, b + IP + 20, 0));
      s[b + IP + 10] = ipSum >> 8;
      s[b + IP + 11] = ipSum & 0xff;
      // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; the rest is the kernel's (or nobody's, locally).
      const tcpLen = ipTotal - 20;
      const pseudo = fold(sum16(s, b + IP + 12, b + IP + 20, 6 + tcpLen));
      s[b + TCP + 16] = pseudo >> 8;
      s[b + TCP + 17] = pseudo & 0xff;
      const thl = (s[b + TCP + 12]! >> 4) * 4;
      const v = new DataView(s.buffer, s.byteOffset, VNET_HDR_SIZE);
      v.setUint8(0, VIRTIO_NET_HDR_F_NEEDS_CSUM);
      v.setUint8(1, VIRTIO_NET_HDR_GSO_TCPV4);
      v.setUint16(2, TCP + thl, true);
      v.setUint16(4, this.mss, true);
      v.setUint16(6, TCP, true);
      v.setUint16(8, 16, true);
    }
    this.emit(this.used);
  }
}
