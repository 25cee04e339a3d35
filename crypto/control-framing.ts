// Secretbox sealing of control-connection messages (spec §3.2, §3.3): one
// sequence counter per direction, nonce byte 0 marks the sender's side.
import { sodium } from './sodium.js';

export const SECRETBOX_OVERHEAD = 16;
const NONCE_SIZE = 24;

/** Nonce byte 0 for messages sent by the outbound / inbound side (spec §3.2). */
export const TCP_NONCE_OUTBOUND = 0xc0;
export const TCP_NONCE_INBOUND = 0x40;

/** A message that failed authentication: wrong password or corrupted stream. */
export class DecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptError';
  }
}

/** spec §3.2: byte 0 flags, bytes 16..23 the u64 BE sequence number. */
export function controlNonce(senderOutbound: boolean, seq: bigint): Uint8Array {
  const nonce = new Uint8Array(NONCE_SIZE);
  nonce[0] = senderOutbound ? TCP_NONCE_OUTBOUND : TCP_NONCE_INBOUND;
  new DataView(nonce.buffer).setBigUint64(16, seq, false);
  return nonce;
}

/** secretbox.Seal: 16-byte tag then ciphertext (libsodium's "easy" layout). */
export function sealSecretbox(plain: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(plain.length + SECRETBOX_OVERHEAD);
  sodium().crypto_secretbox_easy(out, plain, nonce, key);
  return out;
}

/** Returns undefined when authentication fails. */
export function openSecretbox(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  if (box.length < SECRETBOX_OVERHEAD) return undefined;
  const out = new Uint8Array(box.length - SECRETBOX_OVERHEAD);
  return sodium().crypto_secretbox_open_easy(out, box, nonce, key) ? out : undefined;
}

/** Seals what we send and opens what we receive on one control connection. */
export class ControlCipher {
  private sendSeq = 0n;
  private recvSeq = 0n;

  constructor(private readonly sessionKey: Uint8Array, private readonly outbound: boolean) {
    if (sessionKey.length !== sodium().crypto_secretbox_KEYBYTES) throw new RangeError('session key must be 32 bytes');
  }

  seal(plain: Uint8Array): Uint8Array {
    const box = sealSecretbox(plain, controlNonce(this.outbound, this.sendSeq), this.sessionKey);
    this.sendSeq++;
    return box;
  }

  /** Throws DecryptError when the message does not authenticate. */
  open(box: Uint8Array): Uint8Array {
    const plain = openSecretbox(box, controlNonce(!this.outbound, this.recvSeq), this.sessionKey);
    if (plain === undefined) {
      throw new DecryptError(`unable to decrypt control message #${this.recvSeq} (password mismatch?)`);
    }
    this.recvSeq++;
    return plain;
  }
}
