// Packing queued frames into sleeve datagrams (spec §5.3, §5.4, §5.7): which
// frames fit one datagram, their packed bytes, and the seal. Shared by the
// packet worker and the keeper that heartbeats on the main thread while the
// worker is parked (keeper.ts).
import { FRAME_HEADER_SIZE, MAX_FRAMES_PER_DATAGRAM, NAME_SIZE } from './constants.js';
import { peerNameBytes, type SleeveFrame } from './frame-codec.js';
import type { SleeveConnection } from './connection.js';

/** How many queued frames from `first` fit one datagram (spec §5.7); 0 when the first alone is too big. */
export function framesThatFit(queue: readonly SleeveFrame[], first: number, overhead: number, maxPayload: number): number {
  let size = overhead;
  let n = 0;
  while (first + n < queue.length && n < MAX_FRAMES_PER_DATAGRAM) {
    const need = FRAME_HEADER_SIZE + queue[first + n]!.frame.length;
    if (size + need > maxPayload) break;
    size += need;
    n++;
  }
  return n;
}

/** The bytes frames [first, first + n) take packed. */
export function packedLength(queue: readonly SleeveFrame[], first: number, n: number): number {
  let len = 0;
  for (let k = first; k < first + n; k++) len += FRAME_HEADER_SIZE + queue[k]!.frame.length;
  return len;
}

/** Frames [first, first + n) as source name, destination name, length, frame (spec §5.3); returns the bytes written. */
function packFrames(out: Uint8Array, queue: readonly SleeveFrame[], first: number, n: number): number {
  let at = 0;
  for (let k = first; k < first + n; k++) {
    const f = queue[k]!;
    out.set(peerNameBytes(f.src), at);
    out.set(peerNameBytes(f.dst), at + NAME_SIZE);
    out[at + 12] = f.frame.length >> 8;
    out[at + 13] = f.frame.length & 0xff;
    out.set(f.frame, at + FRAME_HEADER_SIZE);
    at += FRAME_HEADER_SIZE + f.frame.length;
  }
  return at;
}

/**
 * Pack and seal one datagram into `body` (the bytes after our name): in place
 * when the connection is not encrypted, else packed into `scratch` and sealed
 * from there (spec §5.4).
 */
export function packAndSeal(
  conn: SleeveConnection, body: Uint8Array, queue: readonly SleeveFrame[], first: number, n: number, df: boolean, scratch: Uint8Array,
): void {
  if (!conn.sealer) {
    packFrames(body, queue, first, n);
    return;
  }
  conn.sealer.sealInto(body, scratch.subarray(0, packFrames(scratch, queue, first, n)), df);
}
