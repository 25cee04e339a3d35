// Fastdp heartbeat frames (spec §6.4): sent through VXLAN like data, with
// all-zero Ethernet addresses so the receiver recognises them as heartbeats
// (and never installs a flow for them), padded to the full overlay MTU so an
// underlay too small for fastdp prevents acknowledgement.
//
//   offset 0  : 14 zero bytes (dst MAC, src MAC, EtherType 0)
//   offset 14 : u64 BE connUID
//   offset 22 : u16 BE total frame length
//   offset 24 : zero padding up to 14 + MTU

export const ETHERNET_HEADER_BYTES = 14;
/** Shortest valid heartbeat: header + connUID + length (spec §6.4 step 3). */
export const HEARTBEAT_MIN_BYTES = 24;

/** Fastdp control sub-tags (spec §2.4, §6.4). */
export const FASTDP_HEARTBEAT_ACK = 0;
export const FASTDP_CRYPTO_INIT_SA_REMOTE = 1;


/** The heartbeat frame for a connection over a datapath of MTU `mtu`. */
export function encodeHeartbeat(connUID: bigint, mtu: number): Buffer {
  const total = ETHERNET_HEADER_BYTES + mtu;
  if (!Number.isInteger(mtu) || total < HEARTBEAT_MIN_BYTES || total > 0xffff) {
    throw new RangeError(`fastdp heartbeat: datapath MTU ${mtu} is out of range ${HEARTBEAT_MIN_BYTES - ETHERNET_HEADER_BYTES}..${0xffff - ETHERNET_HEADER_BYTES}`);
  }
  const frame = Buffer.alloc(total);
  frame.writeBigUInt64BE(BigInt.asUintN(64, connUID), 14);
  frame.writeUInt16BE(total, 22);
  return frame;
}

/** True when both Ethernet addresses are zero: a heartbeat, never a data frame (spec §6.5). */
export function hasZeroMacs(frame: Uint8Array): boolean {
  if (frame.length < 12) return false;
  for (let i = 0; i < 12; i++) if (frame[i] !== 0) return false;
  return true;
}

/**
 * The connUID of a valid heartbeat, or undefined when the frame is too short
 * or its embedded length differs from its received length (spec §6.4 step 3).
 */
export function parseHeartbeat(frame: Buffer): bigint | undefined {
  if (frame.length < HEARTBEAT_MIN_BYTES || !hasZeroMacs(frame)) return undefined;
  if (frame.readUInt16BE(22) !== frame.length) return undefined;
  return frame.readBigUInt64BE(14);
}
