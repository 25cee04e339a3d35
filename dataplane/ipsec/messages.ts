// The CryptoInitSARemote fastdp control message (spec §7.2): the receiver of
// an SA tells the sender which nonce salted the key and which SPI to use.
import { IPSEC_NONCE_SIZE, isValidIPsecSpi } from '../../crypto/ipsec-keys.js';
import { CRYPTO_INIT_SA_REMOTE_SIZE } from './constants.js';

export interface CryptoInitSARemote {
  /** 32 random bytes, the HKDF salt of the sender's inbound key. */
  nonce: Uint8Array;
  /** SPI of the SA the sender of this message receives on. */
  spi: number;
}

export class CryptoInitSARemoteError extends Error {
  constructor(message: string) {
    super(`CryptoInitSARemote: ${message}`);
    this.name = 'CryptoInitSARemoteError';
  }
}

/** nonce(32) ‖ spi (u32 BE) ‖ 28 zero bytes: exactly 64 bytes (spec §7.2). */
export function encodeCryptoInitSARemote(msg: CryptoInitSARemote): Buffer {
  if (msg.nonce.length !== IPSEC_NONCE_SIZE) {
    throw new CryptoInitSARemoteError(`nonce must be ${IPSEC_NONCE_SIZE} bytes, got ${msg.nonce.length}`);
  }
  if (!isValidIPsecSpi(msg.spi)) throw new CryptoInitSARemoteError(`SPI ${msg.spi} is outside 0x100..0xffffffff`);
  const b = Buffer.alloc(CRYPTO_INIT_SA_REMOTE_SIZE);
  b.set(msg.nonce, 0);
  b.writeUInt32BE(msg.spi, IPSEC_NONCE_SIZE);
  return b;
}

/** Decodes the 64-byte body; any other length is rejected, as Weave does. The unused tail is ignored. */
export function decodeCryptoInitSARemote(body: Uint8Array): CryptoInitSARemote {
  if (body.length !== CRYPTO_INIT_SA_REMOTE_SIZE) {
    throw new CryptoInitSARemoteError(`body must be exactly ${CRYPTO_INIT_SA_REMOTE_SIZE} bytes, got ${body.length}`);
  }
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const spi = b.readUInt32BE(IPSEC_NONCE_SIZE);
  // SPIs 1..255 are reserved (RFC 4303) and 0 means none: a peer never announces them.
  if (!isValidIPsecSpi(spi)) throw new CryptoInitSARemoteError(`announced SPI 0x${spi.toString(16)} is outside 0x100..0xffffffff`);
  return { nonce: Buffer.from(b.subarray(0, IPSEC_NONCE_SIZE)), spi };
}
