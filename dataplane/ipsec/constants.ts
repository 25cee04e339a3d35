// Constants of the encrypted fast datapath (spec §7), named as the spec names them.

/** Marks outgoing VXLAN packets that must be ESP-protected, and incoming ones that were (spec §7.5). Bit 17 avoids Kubernetes' bits 14/15. */
export const IPSEC_MARK = 0x20000;
/** The AEAD transform of every SA (spec §7.4): AES-GCM with RFC 4106 key‖salt. */
export const IPSEC_AEAD_ALGORITHM = 'rfc4106(gcm(aes))';
/** ICV length in bits (spec §7.4). */
export const IPSEC_ICV_BITS = 128;
/** ESN anti-replay window in packets, and its bitmap in u32 words (spec §7.4). */
export const IPSEC_REPLAY_WINDOW = 256;
export const IPSEC_REPLAY_BITMAP_WORDS = 8;
/**
 * reqid of the SAs and policy templates this product installs. It never
 * leaves the host (ESP carries only the SPI), so peers are unaffected; it lets
 * `weave reset` find our SAs after a crash without touching anyone else's.
 * (Weave itself uses reqid 0 and remembers its SAs in memory only.)
 */
export const IPSEC_REQID = 0x20000;
/** Length of the CryptoInitSARemote body (spec §7.2). */
export const CRYPTO_INIT_SA_REMOTE_SIZE = 64;
/** Fastdp control sub-tag of CryptoInitSARemote (spec §6.4). */
export const FASTDP_MSG_CRYPTO_INIT_SA_REMOTE = 1;
