// Sleeve overlay constants (spec §5, §11), named as the spec names them.

/** Bytes in a peer name's binary form, `mac` flavour (spec §1.6). */
export const NAME_SIZE = 6;
/** Frame header: src peer name | dst peer name | u16 BE length (spec §5.2). */
export const FRAME_HEADER_SIZE = NAME_SIZE + NAME_SIZE + 2;
/** The largest frame a u16 length field can describe (spec §5.2). */
export const MAX_FRAME_LENGTH = 0xffff;
/** Receive buffer for one datagram (spec §5.2). */
export const MAX_DATAGRAM_SIZE = 65535;
/** u64 BE seqNoAndDF in front of an encrypted body (spec §5.3). */
export const SEQ_SIZE = 8;
/** Poly1305 tag in front of the secretbox ciphertext (spec §3.3). */
export const SECRETBOX_TAG_SIZE = 16;
/** Datagram overhead before the frames: sender name only (spec §5.3). */
export const PLAIN_PACKET_OVERHEAD = NAME_SIZE;
/** Datagram overhead before the frames: sender name, seqNoAndDF, tag = 30 (spec §5.3). */
export const ENCRYPTED_PACKET_OVERHEAD = NAME_SIZE + SEQ_SIZE + SECRETBOX_TAG_SIZE;
/** At most this many frames go into one datagram (spec §5.7). */
export const MAX_FRAMES_PER_DATAGRAM = 100;
/** IPv4 (20) + UDP (8) headers of the underlay datagram (spec §5.6). */
export const UDP_IP_OVERHEAD = 28;
/** Largest UDP payload over IPv4: the non-DF path limit for a datagram (spec §5.7). */
export const MAX_UDP_PAYLOAD = 65535 - UDP_IP_OVERHEAD;
/** Ethernet header of the inner frame (spec §5.6). */
export const ETHERNET_HEADER_SIZE = 14;

/** Special frames are told apart by total length (spec §5.4). */
export const HEARTBEAT_FRAME_SIZE = ETHERNET_HEADER_SIZE + 8;
export const FRAGMENTATION_TEST_FRAME_SIZE = 60001;
export const PMTU_DISCOVERY_FRAME_SIZE = 60000;
/** The lowest MTU the PMTU search assumes works (spec §5.6 highestGood). */
export const PMTU_SEARCH_FLOOR = 552;

/** Bit 63 of seqNoAndDF marks the DF path (spec §5.3). */
export const DF_BIT = 1n << 63n;
/** Replay window: offsets within a window are 20 bits (spec §5.3 `WindowSize`). */
export const REPLAY_WINDOW_BITS = 20;

/** Sleeve control message sub-tags (spec §2.4, §5.5). */
export const SleeveControlTag = {
  ConnectionEstablished: 1,
  FragmentationReceived: 2,
  PMTUVerified: 3,
} as const;

/** Timers (spec §5.5), in milliseconds; the heartbeat timers are controlplane/well-known.ts's. */
export const FRAGMENTATION_TEST_INTERVAL_MS = 5 * 60_000;
export const MTU_VERIFY_FIRST_TIMEOUT_MS = 10;
export const MTU_VERIFY_ATTEMPTS = 8;

/**
 * Bytes the underlay adds around one inner frame's payload on the DF path:
 * IPv4+UDP, packet overhead, frame header, inner Ethernet header — 86 encrypted,
 * 62 clear (spec §5.6).
 */
export function overheadDF(encrypted: boolean): number {
  return UDP_IP_OVERHEAD + (encrypted ? ENCRYPTED_PACKET_OVERHEAD : PLAIN_PACKET_OVERHEAD)
    + FRAME_HEADER_SIZE + ETHERNET_HEADER_SIZE;
}
