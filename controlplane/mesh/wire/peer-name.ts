// Peer names, `mac` flavour (spec §1.6): a 48-bit value shown as six hex bytes.
import type { PeerName } from '../types.js';
import { WireDecodeError } from './errors.js';

/** Bytes in a peer name's binary form (`NameSize` for the mac flavour). */
export const PEER_NAME_SIZE = 6;
/** Sentinel "no peer" (spec §1.6). */
export const UnknownPeerName: PeerName = 0n;

const HEX_GROUP = /^[0-9a-fA-F]{1,2}$/;

function parseGroups(part: string, text: string): number[] {
  if (part === '') return [];
  return part.split(':').map((g) => {
    if (!HEX_GROUP.test(g)) throw new WireDecodeError(`invalid peer name ${JSON.stringify(text)}: "${g}" is not 1-2 hex digits`);
    return parseInt(g, 16);
  });
}

/** The six big-endian bytes as a name: 48 bits are exact in a double, so one BigInt rather than three per byte. */
function peerNameOfBytes(bytes: ArrayLike<number>): PeerName {
  let n = 0;
  for (let i = 0; i < PEER_NAME_SIZE; i++) n = n * 256 + bytes[i]!;
  return BigInt(n);
}

/**
 * Parses `0a:00:00:00:00:01`, or an IPv6-like abbreviation where one `::`
 * stands for zero bytes and 1 to 4 bytes are written (spec §1.6).
 */
export function parsePeerName(text: string): PeerName {
  let bytes: number[];
  const halves = text.split('::');
  if (halves.length === 1) {
    bytes = parseGroups(text, text);
    if (bytes.length !== PEER_NAME_SIZE) {
      throw new WireDecodeError(`invalid peer name ${JSON.stringify(text)}: expected six hex bytes like 0a:00:00:00:00:01`);
    }
  } else if (halves.length === 2) {
    const left = parseGroups(halves[0]!, text);
    const right = parseGroups(halves[1]!, text);
    const written = left.length + right.length;
    if (written < 1 || written > 4) {
      throw new WireDecodeError(`invalid peer name ${JSON.stringify(text)}: a "::" form writes 1 to 4 bytes`);
    }
    bytes = [...left, ...new Array<number>(PEER_NAME_SIZE - written).fill(0), ...right];
  } else {
    throw new WireDecodeError(`invalid peer name ${JSON.stringify(text)}: "::" may appear only once`);
  }
  return peerNameOfBytes(bytes);
}

/** One past the largest name: 48 bits. */
const PEER_NAME_LIMIT = 1n << BigInt(8 * PEER_NAME_SIZE);

function checkPeerName(name: PeerName): void {
  if (name < 0n || name >= PEER_NAME_LIMIT) throw new RangeError(`peer name ${name} does not fit in 48 bits`);
}

/**
 * Formats as six lowercase 2-digit hex bytes separated by `:`. From one
 * number's hex digits (48 bits are exact in a double): `/report` of a 50-peer
 * mesh formats ~5,000 names.
 */
export function formatPeerName(name: PeerName): string {
  checkPeerName(name);
  const h = Number(name).toString(16).padStart(2 * PEER_NAME_SIZE, '0');
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}`;
}

/** Binary form (`NameByte`): 6 bytes, most significant first. */
export function peerNameToBytes(name: PeerName): Uint8Array {
  checkPeerName(name);
  const out = new Uint8Array(PEER_NAME_SIZE);
  let v = name;
  for (let i = PEER_NAME_SIZE - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

export function peerNameFromBytes(bytes: Uint8Array): PeerName {
  if (bytes.length !== PEER_NAME_SIZE) {
    throw new WireDecodeError(`peer name must be ${PEER_NAME_SIZE} bytes, got ${bytes.length} (a "hash"-flavour peer?)`);
  }
  return peerNameOfBytes(bytes);
}
