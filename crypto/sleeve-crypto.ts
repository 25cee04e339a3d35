// Sleeve datagram encryption (spec §5.3): the body after the sender name is
// `u64 BE seqNoAndDF | secretbox(frames)`, sealed with the connection's session
// key (spec §3.1, used as is). Bit 63 of seqNoAndDF marks the DF path; DF and
// non-DF datagrams have independent counters and independent replay windows.
// The nonce is `0x80 if the sender's control connection side is outbound, else
// 0x00 | 15 zero bytes | seqNoAndDF`; bit 6 stays clear, so sleeve nonces never
// collide with the TCP stream's (spec §3.2).
import { ReplayWindow } from './replay.js';
import { sodium } from './sodium.js';

export const SESSION_KEY_SIZE = 32;
export const NONCE_SIZE = 24;
export const SEQ_SIZE = 8;
export const TAG_SIZE = 16;
/** Bit 63 of seqNoAndDF (spec §5.3). */
export const DF_FLAG = 1n << 63n;
const seqMask = DF_FLAG - 1n;

export type SleeveCryptoErrorKind =
  /** Shorter than seqNoAndDF + tag: cannot be a sealed body. */
  | 'too-short'
  /** The tag did not verify: wrong key, forged, corrupted, or sent in clear. */
  | 'authentication-failed'
  /** Authentic, but this sequence number was seen already or is too old (spec §5.3). */
  | 'replayed'
  /** 2^63 datagrams sent on one path: the connection must be re-established. */
  | 'sequence-exhausted';

export class SleeveCryptoError extends Error {
  constructor(readonly kind: SleeveCryptoErrorKind, message: string) {
    super(`sleeve crypto: ${message}`);
    this.name = 'SleeveCryptoError';
  }
}

function checkKey(key: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== SESSION_KEY_SIZE) {
    throw new RangeError(`sleeve crypto: session key must be ${SESSION_KEY_SIZE} bytes, got ${key?.length}`);
  }
  return Uint8Array.from(key);
}

/** The 24-byte nonce for one datagram (spec §5.3). */
export function sleeveNonce(senderIsOutbound: boolean, seqNoAndDF: bigint): Uint8Array {
  const nonce = new Uint8Array(NONCE_SIZE);
  nonce[0] = senderIsOutbound ? 0x80 : 0x00;
  new DataView(nonce.buffer).setBigUint64(16, seqNoAndDF);
  return nonce;
}

/** Seals outgoing datagram bodies for one connection; owns the DF and non-DF counters. */
export class SleeveSealer {
  private readonly key: Uint8Array;
  /** [next DF seq, next non-DF seq]; may live in shared memory so a restarted sender continues the sequence. */
  private readonly nextSeq: BigUint64Array;
  /** Reused for every datagram: byte 0 is fixed, bytes 16..23 take the sequence number. */
  private readonly nonce: Uint8Array;
  private readonly nonceView: DataView;

  /**
   * `localIsOutbound`: this side initiated the TCP control connection (spec §5.3 nonce byte 0).
   * `counters`: optional storage for the two counters (two u64), continued from its current values.
   */
  constructor(sessionKey: Uint8Array, localIsOutbound: boolean, counters?: BigUint64Array) {
    this.key = checkKey(sessionKey);
    if (counters !== undefined && counters.length < 2) throw new RangeError('sleeve crypto: counter storage needs two u64 slots');
    this.nextSeq = counters ?? new BigUint64Array(2);
    this.nonce = sleeveNonce(localIsOutbound, 0n);
    this.nonceView = new DataView(this.nonce.buffer);
  }

  private take(df: boolean): bigint {
    const slot = df ? 0 : 1;
    const seq = this.nextSeq[slot]!;
    if (seq > seqMask) throw new SleeveCryptoError('sequence-exhausted', `${df ? 'DF' : 'non-DF'} sequence numbers exhausted; the connection must be re-established`);
    this.nextSeq[slot] = seq + 1n;
    return df ? seq | DF_FLAG : seq;
  }

  /** Returns `seqNoAndDF | tag | ciphertext` for `plaintext` (the encoded frames) on the given path. */
  seal(plaintext: Uint8Array, df: boolean): Uint8Array {
    const out = new Uint8Array(SEQ_SIZE + TAG_SIZE + plaintext.length);
    this.sealInto(out, plaintext, df);
    return out;
  }

  /** Writes `seqNoAndDF | tag | ciphertext` at the start of `out`; returns the bytes written. */
  sealInto(out: Uint8Array, plaintext: Uint8Array, df: boolean): number {
    const len = SEQ_SIZE + TAG_SIZE + plaintext.length;
    if (out.length < len) throw new RangeError(`sleeve crypto: output of ${out.length} bytes cannot hold ${len}`);
    const seqNoAndDF = this.take(df);
    this.nonceView.setBigUint64(16, seqNoAndDF);
    out.set(this.nonce.subarray(16), 0);
    sodium().crypto_secretbox_easy(out.subarray(SEQ_SIZE, len), plaintext, this.nonce, this.key);
    return len;
  }
}

export interface OpenedBody {
  plaintext: Uint8Array;
  df: boolean;
  /** The 63-bit sequence number (without the DF bit). */
  seq: bigint;
}

/** Opens incoming datagram bodies from one connection's remote and drops replays. */
export class SleeveOpener {
  private readonly key: Uint8Array;
  private readonly windows = { df: new ReplayWindow(), nonDF: new ReplayWindow() };

  /** `remoteIsOutbound`: the remote initiated the TCP control connection (i.e. we are the inbound side). */
  private readonly nonce: Uint8Array;
  private readonly nonceView: DataView;
  /** Path and sequence number of the body last opened by openInto. */
  lastDF = false;
  lastSeq = 0n;

  constructor(sessionKey: Uint8Array, private readonly remoteIsOutbound: boolean) {
    this.key = checkKey(sessionKey);
    this.nonce = sleeveNonce(remoteIsOutbound, 0n);
    this.nonceView = new DataView(this.nonce.buffer);
  }

  /**
   * Like open, but decrypts into `out` (at least body length - 24 bytes) and
   * returns the plaintext length; the path and sequence number are left in
   * lastDF / lastSeq. Allocates nothing, for the packet worker's hot path.
   */
  openInto(body: Uint8Array, out: Uint8Array): number {
    if (body.length < SEQ_SIZE + TAG_SIZE) {
      throw new SleeveCryptoError('too-short', `encrypted body of ${body.length} byte(s) is shorter than seqNoAndDF + tag (${SEQ_SIZE + TAG_SIZE})`);
    }
    const len = body.length - SEQ_SIZE - TAG_SIZE;
    if (out.length < len) throw new RangeError(`sleeve crypto: output of ${out.length} bytes cannot hold ${len}`);
    this.nonce.set(body.subarray(0, SEQ_SIZE), 16);
    const seqNoAndDF = this.nonceView.getBigUint64(16);
    const df = (seqNoAndDF & DF_FLAG) !== 0n;
    const seq = seqNoAndDF & seqMask;
    if (!sodium().crypto_secretbox_open_easy(out.subarray(0, len), body.subarray(SEQ_SIZE), this.nonce, this.key)) {
      throw new SleeveCryptoError('authentication-failed', `datagram ${df ? 'DF' : 'non-DF'} #${seq} failed authentication (wrong key or tampered)`);
    }
    if (!this.windows[df ? 'df' : 'nonDF'].accept(seq)) {
      throw new SleeveCryptoError('replayed', `datagram ${df ? 'DF' : 'non-DF'} #${seq} was already received or is too old`);
    }
    this.lastDF = df;
    this.lastSeq = seq;
    return len;
  }

  /** Decrypts `seqNoAndDF | box`; throws SleeveCryptoError, and only advances replay state for authentic bodies. */
  open(body: Uint8Array): OpenedBody {
    if (body.length < SEQ_SIZE + TAG_SIZE) {
      throw new SleeveCryptoError('too-short', `encrypted body of ${body.length} byte(s) is shorter than seqNoAndDF + tag (${SEQ_SIZE + TAG_SIZE})`);
    }
    const seqNoAndDF = new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(0);
    const df = (seqNoAndDF & DF_FLAG) !== 0n;
    const seq = seqNoAndDF & seqMask;
    const box = body.subarray(SEQ_SIZE);
    const plaintext = new Uint8Array(box.length - TAG_SIZE);
    if (!sodium().crypto_secretbox_open_easy(plaintext, box, sleeveNonce(this.remoteIsOutbound, seqNoAndDF), this.key)) {
      throw new SleeveCryptoError('authentication-failed', `datagram ${df ? 'DF' : 'non-DF'} #${seq} failed authentication (wrong key or tampered)`);
    }
    if (!this.windows[df ? 'df' : 'nonDF'].accept(seq)) {
      throw new SleeveCryptoError('replayed', `datagram ${df ? 'DF' : 'non-DF'} #${seq} was already received or is too old`);
    }
    return { plaintext, df, seq };
  }
}
