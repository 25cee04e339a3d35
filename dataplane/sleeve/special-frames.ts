// Frames the sleeve generates itself (spec §5.4): a 14-byte all-zero Ethernet
// header, told apart by total length — heartbeat (22 bytes, carries connUID),
// fragmentation test (60001), and PMTU probes / MTU tests (any other length,
// candidate MTU + 14). Only the bytes are here; when to send them is the
// forwarder's business (spec §5.5, §5.6).
import {
  ETHERNET_HEADER_SIZE, FRAGMENTATION_TEST_FRAME_SIZE, HEARTBEAT_FRAME_SIZE, MAX_FRAME_LENGTH, PMTU_DISCOVERY_FRAME_SIZE,
} from './constants.js';

export type SpecialFrame =
  | { kind: 'heartbeat'; connUID: bigint }
  | { kind: 'fragmentation-test'; allZero: boolean }
  /** A PMTU probe or MTU test: the peer replies PMTUVerified(mtu) (spec §5.4). */
  | { kind: 'mtu-test'; mtu: number };

const u64Max = (1n << 64n) - 1n;

/** Heartbeat: 14 zero bytes + u64 BE connUID, sent on the DF path (spec §5.4). */
export function heartbeatFrame(connUID: bigint): Uint8Array {
  if (typeof connUID !== 'bigint' || connUID < 0n || connUID > u64Max) {
    throw new RangeError(`sleeve heartbeat: connUID ${String(connUID)} is not a u64`);
  }
  const out = new Uint8Array(HEARTBEAT_FRAME_SIZE);
  new DataView(out.buffer).setBigUint64(ETHERNET_HEADER_SIZE, connUID);
  return out;
}

/** 60001 zero bytes, sent on the non-DF path to learn whether the stack fragments (spec §5.4). */
export function fragmentationTestFrame(): Uint8Array {
  return new Uint8Array(FRAGMENTATION_TEST_FRAME_SIZE);
}

/** 60000 zero bytes on the DF path, expected to fail locally with EMSGSIZE (spec §5.4). */
export function pmtuDiscoveryFrame(): Uint8Array {
  return new Uint8Array(PMTU_DISCOVERY_FRAME_SIZE);
}

/** MTU test for a candidate overlay MTU: mtu + 14 zero bytes on the DF path (spec §5.6). */
export function mtuTestFrame(mtu: number): Uint8Array {
  const size = mtu + ETHERNET_HEADER_SIZE;
  if (!Number.isInteger(mtu) || mtu < 0 || size > MAX_FRAME_LENGTH
    || size === HEARTBEAT_FRAME_SIZE || size === FRAGMENTATION_TEST_FRAME_SIZE) {
    throw new RangeError(`sleeve MTU test: candidate MTU ${mtu} gives no valid test frame length`);
  }
  return new Uint8Array(size);
}

let zeroTestFrame: Buffer | undefined;

/** One memcmp against a zero frame kept for it, rather than a callback per byte of 60001. */
function isAllZero(frame: Uint8Array): boolean {
  zeroTestFrame ??= Buffer.alloc(FRAGMENTATION_TEST_FRAME_SIZE);
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).equals(zeroTestFrame);
}

/**
 * Classifies a received frame: undefined when it is ordinary traffic (its first
 * 14 bytes are not all zero, or it is shorter than an Ethernet header). The
 * caller must still check src = remote and dst = local (spec §5.4).
 */
export function classifySpecialFrame(frame: Uint8Array): SpecialFrame | undefined {
  if (frame.length < ETHERNET_HEADER_SIZE) return undefined;
  for (let i = 0; i < ETHERNET_HEADER_SIZE; i++) if (frame[i] !== 0) return undefined;
  if (frame.length === HEARTBEAT_FRAME_SIZE) {
    return { kind: 'heartbeat', connUID: new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(ETHERNET_HEADER_SIZE) };
  }
  if (frame.length === FRAGMENTATION_TEST_FRAME_SIZE) {
    return { kind: 'fragmentation-test', allZero: isAllZero(frame) };
  }
  return { kind: 'mtu-test', mtu: frame.length - ETHERNET_HEADER_SIZE };
}
