// Sleeve datagram format (spec §5.2): a sender name, then either the frames in
// clear or `seqNoAndDF | secretbox(frames)` (the encrypted body is sealed and
// opened by crypto/sleeve-crypto.ts). Each frame is `src name | dst name |
// u16 BE length | Ethernet frame`. Decoding never throws anything but
// SleeveDecodeError, so the receive loop can log and drop.
import type { PeerName } from '../../controlplane/mesh/types.js';
import {
  FRAME_HEADER_SIZE, MAX_DATAGRAM_SIZE, MAX_FRAME_LENGTH, MAX_FRAMES_PER_DATAGRAM, NAME_SIZE,
} from './constants.js';

export type SleeveDecodeErrorKind =
  /** Fewer than 6 bytes: no sender name (spec §5.2: dropped silently). */
  | 'datagram-too-short'
  /** A frame header announces more bytes than remain (spec §5.2 "too short"). */
  | 'frame-too-short'
  /** 1..13 bytes after the last frame (spec §5.2 "trailing garbage"). */
  | 'trailing-garbage'
  /** A datagram longer than the 65535-byte receive buffer. */
  | 'datagram-too-long'
  /** A sleeve control message without its sub-tag or payload (spec §5.5). */
  | 'control-too-short'
  | 'unknown-control-tag';

export class SleeveDecodeError extends Error {
  constructor(readonly kind: SleeveDecodeErrorKind, message: string) {
    super(`sleeve decode: ${message}`);
    this.name = 'SleeveDecodeError';
  }
}

/** One Ethernet frame carried by the sleeve, with its origin and destination peers (spec §5.2). */
export interface SleeveFrame {
  /** The peer where the frame entered the overlay. */
  src: PeerName;
  /** The peer it is for (for broadcasts: the neighbour it is sent to, spec §5.8). */
  dst: PeerName;
  /** The Ethernet frame, starting with the destination MAC. */
  frame: Uint8Array;
}

/** A datagram split at its sender name; `body` is the frames, or `seqNoAndDF | box` when encrypted. */
export interface SleeveDatagram {
  sender: PeerName;
  body: Uint8Array;
}

/** What decodeFrames found: the frames before any error, and that error (spec §5.2: earlier frames still count). */
export interface DecodedFrames {
  frames: SleeveFrame[];
  error: SleeveDecodeError | undefined;
}

const maxName = (1n << 48n) - 1n;

function checkName(what: string, name: PeerName): void {
  if (typeof name !== 'bigint' || name < 0n || name > maxName) {
    throw new RangeError(`sleeve encode: ${what} peer name ${String(name)} is not a 48-bit value`);
  }
}

/** Writes a peer name's 6-byte binary form (spec §1.6 `NameByte`) at `offset`. */
export function writePeerName(out: Uint8Array, offset: number, name: PeerName): void {
  let v = name;
  for (let i = NAME_SIZE - 1; i >= 0; i--) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

const nameBytes = new Map<PeerName, Uint8Array>();
const namesByKey = new Map<number, PeerName>();
const NAME_CACHE_LIMIT = 4096;

/** The 6-byte form of `name`, cached: the hot path writes names without BigInt arithmetic. */
export function peerNameBytes(name: PeerName): Uint8Array {
  let b = nameBytes.get(name);
  if (!b) {
    b = new Uint8Array(NAME_SIZE);
    writePeerName(b, 0, name);
    if (nameBytes.size >= NAME_CACHE_LIMIT) nameBytes.clear();
    nameBytes.set(name, b);
  }
  return b;
}

/** Same as readPeerName, through a cache keyed by the 48-bit value as a number (no BigInt work for known names). */
export function readPeerNameCached(bytes: Uint8Array, offset: number): PeerName {
  const key = (bytes[offset]! * 2 ** 40) + (bytes[offset + 1]! * 2 ** 32)
    + ((bytes[offset + 2]! << 24) >>> 0) + (bytes[offset + 3]! << 16) + (bytes[offset + 4]! << 8) + bytes[offset + 5]!;
  let name = namesByKey.get(key);
  if (name === undefined) {
    name = BigInt(key);
    // Names come off the wire: bound the cache so garbage cannot grow it without limit.
    if (namesByKey.size >= NAME_CACHE_LIMIT) namesByKey.clear();
    namesByKey.set(key, name);
  }
  return name;
}

export function readPeerName(bytes: Uint8Array, offset: number): PeerName {
  let v = 0n;
  for (let i = 0; i < NAME_SIZE; i++) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
  return v;
}

/** Bytes `frames` take inside a datagram: 14 header bytes plus the frame, each. */
export function encodedFramesLength(frames: readonly SleeveFrame[]): number {
  return frames.reduce((n, f) => n + FRAME_HEADER_SIZE + f.frame.length, 0);
}

/** Concatenates frames with their headers: the clear body, or the plaintext to seal (spec §5.2). */
export function encodeFrames(frames: readonly SleeveFrame[]): Uint8Array {
  const out = new Uint8Array(encodedFramesLength(frames));
  let at = 0;
  for (const f of frames) {
    checkName('src', f.src);
    checkName('dst', f.dst);
    if (f.frame.length > MAX_FRAME_LENGTH) {
      throw new RangeError(`sleeve encode: frame of ${f.frame.length} bytes exceeds the u16 length field (max ${MAX_FRAME_LENGTH})`);
    }
    writePeerName(out, at, f.src);
    writePeerName(out, at + NAME_SIZE, f.dst);
    out[at + 12] = f.frame.length >> 8;
    out[at + 13] = f.frame.length & 0xff;
    out.set(f.frame, at + FRAME_HEADER_SIZE);
    at += FRAME_HEADER_SIZE + f.frame.length;
  }
  return out;
}

/**
 * Splits a body into frames (spec §5.2 parsing rule): while 14 or more bytes
 * remain, read a header; a length beyond the end is "too short" and 1..13
 * leftover bytes are "trailing garbage". Frames are views into `body`.
 */
export function decodeFrames(body: Uint8Array): DecodedFrames {
  const frames: SleeveFrame[] = [];
  let at = 0;
  while (body.length - at >= FRAME_HEADER_SIZE) {
    const len = (body[at + 12]! << 8) | body[at + 13]!;
    const start = at + FRAME_HEADER_SIZE;
    if (len > body.length - start) {
      return {
        frames,
        error: new SleeveDecodeError('frame-too-short',
          `frame ${frames.length + 1} at offset ${at} announces ${len} bytes but only ${body.length - start} remain`),
      };
    }
    frames.push({ src: readPeerName(body, at), dst: readPeerName(body, at + NAME_SIZE), frame: body.subarray(start, start + len) });
    at = start + len;
  }
  if (at !== body.length) {
    return {
      frames,
      error: new SleeveDecodeError('trailing-garbage', `${body.length - at} byte(s) after the last frame at offset ${at}`),
    };
  }
  return { frames, error: undefined };
}

/** `sender name | body` (spec §5.2), for clear and encrypted bodies alike. */
export function encodeDatagram(sender: PeerName, body: Uint8Array): Uint8Array {
  checkName('sender', sender);
  if (NAME_SIZE + body.length > MAX_DATAGRAM_SIZE) {
    throw new RangeError(`sleeve encode: datagram of ${NAME_SIZE + body.length} bytes exceeds ${MAX_DATAGRAM_SIZE}`);
  }
  const out = new Uint8Array(NAME_SIZE + body.length);
  writePeerName(out, 0, sender);
  out.set(body, NAME_SIZE);
  return out;
}

/** Reads the sender name, which picks the forwarder and key (spec §5.2). Throws SleeveDecodeError. */
export function decodeDatagram(datagram: Uint8Array): SleeveDatagram {
  if (datagram.length < NAME_SIZE) {
    throw new SleeveDecodeError('datagram-too-short', `datagram of ${datagram.length} byte(s) has no ${NAME_SIZE}-byte sender name`);
  }
  if (datagram.length > MAX_DATAGRAM_SIZE) {
    throw new SleeveDecodeError('datagram-too-long', `datagram of ${datagram.length} bytes exceeds ${MAX_DATAGRAM_SIZE}`);
  }
  return { sender: readPeerName(datagram, 0), body: datagram.subarray(NAME_SIZE) };
}

export interface BatchLimits {
  /** Largest UDP payload allowed on the path (DF: path-derived; non-DF: 65507) (spec §5.7). */
  maxPayload: number;
  /** Bytes in front of the frames: 6 clear, 30 encrypted (spec §5.3). */
  packetOverhead: number;
  /** Frames per datagram (default 100, spec §5.7). */
  maxFrames?: number;
}

export interface Batches {
  /** Frames grouped per datagram, in order. */
  datagrams: SleeveFrame[][];
  /** Frames that cannot fit in any datagram on their own (spec §5.7: dropped). */
  dropped: SleeveFrame[];
}

/**
 * Packs queued frames into datagrams (spec §5.7): a frame joins the current
 * datagram while overhead + frames so far + 14 + its length ≤ maxPayload and
 * fewer than maxFrames are in it; otherwise a new datagram starts.
 */
export function batchFrames(frames: readonly SleeveFrame[], limits: BatchLimits): Batches {
  const maxFrames = limits.maxFrames ?? MAX_FRAMES_PER_DATAGRAM;
  if (!Number.isInteger(maxFrames) || maxFrames < 1) throw new RangeError(`sleeve batch: maxFrames must be a positive integer, got ${maxFrames}`);
  const datagrams: SleeveFrame[][] = [];
  const dropped: SleeveFrame[] = [];
  let current: SleeveFrame[] = [];
  let size = limits.packetOverhead;
  for (const f of frames) {
    const need = FRAME_HEADER_SIZE + f.frame.length;
    if (limits.packetOverhead + need > limits.maxPayload) {
      dropped.push(f);
      continue;
    }
    if (current.length >= maxFrames || size + need > limits.maxPayload) {
      datagrams.push(current);
      current = [];
      size = limits.packetOverhead;
    }
    current.push(f);
    size += need;
  }
  if (current.length > 0) datagrams.push(current);
  return { datagrams, dropped };
}
