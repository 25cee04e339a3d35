// Control-connection key agreement (spec §3.1): a fresh Curve25519 key pair per
// connection; sessionKey = SHA-256(NaCl box.Precompute(remote, local) ‖ password).
import { sodium } from './sodium.js';
import { hsalsa20 } from './hsalsa20.js';

export const PUBLIC_KEY_SIZE = 32;
export const SESSION_KEY_SIZE = 32;

export interface EphemeralKeyPair { publicKey: Uint8Array; secretKey: Uint8Array }

/** NaCl box.GenerateKey: 32 random bytes, public = X25519 base point multiple. */
export function generateEphemeralKeyPair(): EphemeralKeyPair {
  const publicKey = new Uint8Array(sodium().crypto_box_PUBLICKEYBYTES);
  const secretKey = new Uint8Array(sodium().crypto_box_SECRETKEYBYTES);
  sodium().crypto_box_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

/** The key pair for a given secret key (fixed keys for test vectors). */
export function keyPairFromSecretKey(secretKey: Uint8Array): EphemeralKeyPair {
  if (secretKey.length !== 32) throw new RangeError('Curve25519 secret key must be 32 bytes');
  const publicKey = new Uint8Array(PUBLIC_KEY_SIZE);
  sodium().crypto_scalarmult_base(publicKey, secretKey);
  return { publicKey, secretKey: Uint8Array.from(secretKey) };
}

/** NaCl crypto_box_beforenm: HSalsa20(X25519(local secret, remote public), 0^16). */
export function precomputeSharedKey(remotePublic: Uint8Array, localSecret: Uint8Array): Uint8Array {
  if (remotePublic.length !== PUBLIC_KEY_SIZE) {
    throw new RangeError(`remote public key must be ${PUBLIC_KEY_SIZE} bytes, got ${remotePublic.length}`);
  }
  const shared = new Uint8Array(sodium().crypto_scalarmult_BYTES);
  try {
    sodium().crypto_scalarmult(shared, localSecret, remotePublic);
  } catch {
    throw new RangeError('remote public key is a low-order Curve25519 point; refusing it');
  }
  const key = hsalsa20(shared, new Uint8Array(16));
  sodium().sodium_memzero(shared);
  return key;
}

/** spec §3.1: sessionKey = SHA-256(shared ‖ password bytes). */
export function deriveSessionKey(remotePublic: Uint8Array, localSecret: Uint8Array, password: Uint8Array): Uint8Array {
  const shared = precomputeSharedKey(remotePublic, localSecret);
  const input = new Uint8Array(shared.length + password.length);
  input.set(shared);
  input.set(password, shared.length);
  const out = new Uint8Array(SESSION_KEY_SIZE);
  sodium().crypto_hash_sha256(out, input);
  sodium().sodium_memzero(input);
  sodium().sodium_memzero(shared);
  return out;
}
