// IPsec key material for the encrypted fast datapath (spec §7.3, §7.4): each
// direction of a connection has its own ESP SA, keyed by HKDF-SHA256 over the
// control connection's session key (spec §3.1), salted with a nonce the
// receiving side chose, and bound to the receiving peer's name.
import { hkdfSync, randomBytes } from 'node:crypto';
import { SESSION_KEY_SIZE } from './session-key.js';

/** rfc4106(gcm(aes)) key format: 32-byte AES-256 key ‖ 4-byte salt (spec §7.3). */
export const IPSEC_KEY_SIZE = 36;
export const IPSEC_NONCE_SIZE = 32;
/** The SPI range the receiver asks the kernel to allocate from (spec §7.4). */
export const IPSEC_SPI_MIN = 0x100;
export const IPSEC_SPI_MAX = 0xffffffff;
/** A 48-bit `mac`-flavour peer name (spec §1.6). */
export const PEER_NAME_MAX = 0xffffffffffffn;

/** The HKDF info: the receiving peer's name as a u64, big-endian (`00 00` + 6 name bytes). */
export function ipsecKeyInfo(receiverName: bigint): Buffer {
  if (receiverName <= 0n || receiverName > PEER_NAME_MAX) {
    throw new RangeError(`IPsec key info needs a 48-bit non-zero peer name, got 0x${receiverName.toString(16)}`);
  }
  const info = Buffer.alloc(8);
  info.writeBigUInt64BE(receiverName);
  return info;
}

/**
 * keymat = HKDF-SHA256(IKM = sessionKey, salt = nonce, info = u64 BE receiver
 * name), 36 bytes: the AES-GCM key followed by the RFC 4106 salt (spec §7.3).
 */
export function deriveIPsecKey(sessionKey: Uint8Array, nonce: Uint8Array, receiverName: bigint): Buffer {
  if (sessionKey.length !== SESSION_KEY_SIZE) {
    throw new RangeError(`IPsec key derivation needs a ${SESSION_KEY_SIZE}-byte session key, got ${sessionKey.length} bytes`);
  }
  if (nonce.length !== IPSEC_NONCE_SIZE) {
    throw new RangeError(`IPsec key derivation needs a ${IPSEC_NONCE_SIZE}-byte nonce, got ${nonce.length} bytes`);
  }
  return Buffer.from(hkdfSync('sha256', sessionKey, nonce, ipsecKeyInfo(receiverName), IPSEC_KEY_SIZE));
}

/** A fresh HKDF salt for one inbound SA (spec §7.4 step 1). */
export function newIPsecNonce(): Buffer {
  return randomBytes(IPSEC_NONCE_SIZE);
}

/** Keys of the two SAs of one connection as seen from the local peer. */
export interface IPsecDirectionKeys {
  /** Key of the SA remote -> local: derived from our nonce and OUR name. */
  inbound: Buffer;
  /** Key of the SA local -> remote: derived from the remote's nonce and ITS name. */
  outbound: Buffer;
}

/**
 * Both keys of a connection (spec §7.4 steps 1 and 3). The remote, running the
 * same function with the roles swapped, gets inbound/outbound exchanged.
 */
export function deriveConnectionKeys(opts: {
  sessionKey: Uint8Array;
  localName: bigint;
  remoteName: bigint;
  localNonce: Uint8Array;
  remoteNonce: Uint8Array;
}): IPsecDirectionKeys {
  return {
    inbound: deriveIPsecKey(opts.sessionKey, opts.localNonce, opts.localName),
    outbound: deriveIPsecKey(opts.sessionKey, opts.remoteNonce, opts.remoteName),
  };
}

/** True for an SPI the receiver may announce (spec §7.4: kernel-allocated in 0x100..0xffffffff). */
export function isValidIPsecSpi(spi: number): boolean {
  return Number.isInteger(spi) && spi >= IPSEC_SPI_MIN && spi <= IPSEC_SPI_MAX;
}
